//! The revocation feed and the location's snapshot of it, in memory: [`RevocationFeed`] over a
//! [`FeedLog`](crate::revocation::feed::FeedLog) (the entries the revoking writes append in their
//! own "transaction", see `tokens.rs` and `registry.rs`), [`SnapshotCache`] over one string.

use super::{MemoryBackend, Step};
use crate::revocation::feed::Page;
use crate::storage::feed::{FeedStamp, Kind, PAGE_LIMIT};
use crate::store::{FeedAppend, RevocationFeed, SnapshotCache, StoreError};

impl MemoryBackend {
    fn feed_fault(&self, step: Step) -> Result<(), StoreError> {
        if self.break_feed.get() {
            return Err(StoreError("the feed is unreadable (test)".into()));
        }
        self.read_fault(step)
    }

    /// Appends an entry of `kind` (inside a write that already applied).
    pub(super) fn append_feed_entry(
        &self,
        key: crate::revocation::feed::Key,
        kind: Kind,
        stamp: &FeedStamp,
    ) {
        self.feed
            .borrow_mut()
            .append(key, stamp.at_ms, stamp.until(kind));
    }
}

impl RevocationFeed for MemoryBackend {
    async fn feed_since(&self, after: u64) -> Result<Page, StoreError> {
        self.bump(|c| c.feed_query += 1);
        if self.break_d1.get() {
            return Err(StoreError("D1 is broken (test)".into()));
        }
        self.feed_fault(Step::FeedRead)?;
        Ok(self.feed.borrow().since(after, PAGE_LIMIT))
    }

    async fn append_feed(&self, entries: &[FeedAppend]) -> Result<(), StoreError> {
        self.d1()?;
        let mut feed = self.feed.borrow_mut();
        for e in entries {
            feed.append(e.key.clone(), e.at_ms, e.until_ms);
        }
        Ok(())
    }

    async fn jti_in_feed(&self, jti: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.d1()?;
        let feed = self.feed.borrow();
        Ok(feed.since(0, usize::MAX).entries.iter().any(|e| {
            e.until >= now_ms && e.key == crate::revocation::feed::Key::Jti(jti.to_owned())
        }))
    }

    async fn trim_feed(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.d1()?;
        Ok(self.feed.borrow_mut().trim(before_ms, 0) as u64)
    }
}

impl SnapshotCache for MemoryBackend {
    async fn load_snapshot(&self) -> Result<Option<String>, StoreError> {
        self.bump(|c| c.cache_read += 1);
        self.feed_fault(Step::SnapshotRead)?;
        Ok(self.snapshot.borrow().clone())
    }

    async fn store_snapshot(&self, body: &str) -> Result<(), StoreError> {
        self.bump(|c| c.cache_write += 1);
        if self.break_feed.get() {
            return Err(StoreError("the Cache API is unreadable (test)".into()));
        }
        *self.snapshot.borrow_mut() = Some(body.to_owned());
        Ok(())
    }
}
