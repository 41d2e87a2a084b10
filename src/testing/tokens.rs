//! The in-memory token storage: grants (KV), token records and retired hashes (D1), last use
//! (the Durable Object), where a request came from.

use super::{MemoryBackend, Step};
use crate::model::{Grant, TokenRecord};
use crate::revocation::feed::Key;
use crate::storage::feed::{FeedStamp, Kind};
use crate::store::{Cursor, GrantCache, Retired, RevocationNote, Revoked, StoreError, TokenStore};
use crate::token::TokenHash;

impl GrantCache for MemoryBackend {
    async fn get_grant(&self, hash: &TokenHash) -> Result<Option<Grant>, StoreError> {
        self.kv(|c| c.kv_get += 1)?;
        Ok(self.kv.borrow().get(hash).cloned())
    }
    async fn put_grant(&self, hash: &TokenHash, grant: &Grant) -> Result<(), StoreError> {
        self.kv(|c| c.kv_put += 1)?;
        self.write(Step::KvPut, || {
            self.kv.borrow_mut().insert(*hash, grant.clone());
            self.kv_until
                .borrow_mut()
                .insert(*hash, grant.kv_expires_at());
        })
    }
    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.kv(|c| c.kv_delete += 1)?;
        self.write(Step::KvDelete, || {
            self.kv.borrow_mut().remove(hash);
        })
    }
    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.kv(|c| c.kv_get += 1)?;
        Ok(self.denied.borrow().iter().any(|(j, _)| j == jti))
    }
    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        self.kv(|c| c.kv_put += 1)?;
        self.denied.borrow_mut().push((jti.to_owned(), exp));
        Ok(())
    }
    async fn put_sealed(
        &self,
        hash: &TokenHash,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.kv(|c| c.kv_put += 1)?;
        self.write(Step::KvPut, || {
            self.sealed
                .borrow_mut()
                .insert(*hash, (sealed.to_owned(), expires_at));
        })
    }
    async fn get_sealed(&self, hash: &TokenHash) -> Result<Option<String>, StoreError> {
        self.kv(|c| c.kv_get += 1)?;
        Ok(self.sealed.borrow().get(hash).map(|(v, _)| v.clone()))
    }
}

impl TokenStore for MemoryBackend {
    async fn insert_token(&self, rec: &TokenRecord) -> Result<(), StoreError> {
        self.d1()?;
        // D1's PRIMARY KEY (id) and UNIQUE (token_hash).
        if self
            .tokens
            .borrow()
            .iter()
            .any(|t| t.id == rec.id || t.hash == rec.hash)
        {
            return Err(StoreError("UNIQUE constraint failed: tokens (test)".into()));
        }
        self.write(Step::TokenInsert, || {
            self.tokens.borrow_mut().push(rec.clone());
        })
    }
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        self.d1()?;
        self.read_fault(Step::TokenRead)?;
        Ok(self
            .tokens
            .borrow()
            .iter()
            .find(|t| t.hash == *hash)
            .cloned())
    }
    async fn pat_for_subject(
        &self,
        subject: &str,
        id: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.d1()?;
        let found = self
            .tokens
            .borrow()
            .iter()
            .find(|t| t.id == id && t.subject == subject && t.kind == crate::token::TokenKind::Pat)
            .cloned();
        self.run_hook(Step::PatRead);
        Ok(found)
    }
    async fn list_pats(
        &self,
        subject: &str,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.d1()?;
        let mut v: Vec<TokenRecord> = self
            .tokens
            .borrow()
            .iter()
            .filter(|t| t.subject == subject && t.kind == crate::token::TokenKind::Pat)
            .filter(|t| after.is_none_or(|(ts, id)| (t.created_at, &t.id) < (*ts, id)))
            .cloned()
            .collect();
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v.truncate(limit as usize);
        Ok(v)
    }
    async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.d1()?;
        self.read_fault(Step::TokenRead)?;
        Ok(self.tokens.borrow().iter().find(|t| t.id == id).cloned())
    }
    async fn revoke_token(
        &self,
        id: &str,
        now: i64,
        why: Option<&RevocationNote>,
        feed: &FeedStamp,
    ) -> Result<Option<Revoked>, StoreError> {
        self.d1()?;
        self.write(Step::TokenRevoke, || {
            let mut tokens = self.tokens.borrow_mut();
            let t = tokens.iter_mut().find(|t| t.id == id)?;
            let newly = t.revoked_at.is_none();
            if newly {
                t.revoked_at = Some(now);
                if let Some(why) = why {
                    t.revoked_reason = Some(why.reason.to_owned());
                    t.revoked_url.clone_from(&why.url);
                    t.revoked_message.clone_from(&why.message);
                }
                self.append_feed_entry(Key::Record(id.to_owned()), Kind::Record, feed);
            }
            Some(Revoked {
                hash: t.hash,
                newly,
            })
        })
    }
    async fn rotate_token(
        &self,
        id: &str,
        old: &TokenHash,
        new: &TokenHash,
        now: i64,
        grace_until: Option<i64>,
        feed: &FeedStamp,
    ) -> Result<bool, StoreError> {
        self.d1()?;
        self.write(Step::TokenRotate, || {
            let mut tokens = self.tokens.borrow_mut();
            let Some(t) = tokens.iter_mut().find(|t| {
                t.id == id && t.hash == *old && t.revoked_at.is_none() && t.expires_at > now
            }) else {
                return false;
            };
            t.hash = *new;
            t.generation += 1;
            let generation = Key::Generation(id.to_owned(), t.generation);
            self.append_feed_entry(generation, Kind::Generation, feed);
            if let Some(dies_at) = feed.old_token_dies_at(grace_until) {
                self.feed
                    .borrow_mut()
                    .append(Key::token(old), dies_at, feed.until(Kind::Token));
            }
            self.retired
                .borrow_mut()
                .push((*old, id.to_owned(), now, grace_until));
            true
        })
    }
    async fn retired_hashes(&self, id: &str, since: i64) -> Result<Vec<Retired>, StoreError> {
        self.d1()?;
        self.read_fault(Step::RetiredRead)?;
        Ok(self
            .retired
            .borrow()
            .iter()
            .filter(|(_, t, at, g)| t == id && (*at >= since || g.is_some_and(|g| g >= since)))
            .map(|(h, t, at, g)| Retired {
                hash: *h,
                token_id: t.clone(),
                retired_at: *at,
                grace_until: *g,
            })
            .collect())
    }
    async fn retired_by_hash(&self, hash: &TokenHash) -> Result<Option<Retired>, StoreError> {
        self.d1()?;
        self.read_fault(Step::RetiredRead)?;
        Ok(self
            .retired
            .borrow()
            .iter()
            .find(|(h, ..)| h == hash)
            .map(|(h, t, at, g)| Retired {
                hash: *h,
                token_id: t.clone(),
                retired_at: *at,
                grace_until: *g,
            }))
    }
    async fn end_grace(
        &self,
        hash: &TokenHash,
        now: i64,
        feed: &FeedStamp,
    ) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::TokenRevoke, || {
            for r in self.retired.borrow_mut().iter_mut() {
                if r.0 == *hash && r.3.is_some_and(|g| g > now) {
                    r.3 = Some(now);
                    self.append_feed_entry(Key::token(hash), Kind::Token, feed);
                }
            }
        })
    }

    async fn record_reuse(
        &self,
        id: &str,
        at: i64,
        origin: &crate::origin::ClientOrigin,
        rotated_at: i64,
    ) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::ReuseRecord, || {
            if let Some(t) = self.tokens.borrow_mut().iter_mut().find(|t| t.id == id) {
                let r = t.reuse.get_or_insert_with(|| crate::model::ReuseInfo {
                    first_at: at,
                    ..Default::default()
                });
                r.count += 1;
                r.last_at = at;
                r.last_origin = origin.clone();
                r.last_rotated_at = Some(rotated_at);
            }
        })
    }

    async fn token_by_any_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(TokenRecord, Option<Retired>)>, StoreError> {
        self.d1()?;
        self.read_fault(Step::TokenRead)?;
        let tokens = self.tokens.borrow();
        if let Some(t) = tokens.iter().find(|t| t.hash == *hash) {
            return Ok(Some((t.clone(), None)));
        }
        let retired = self.retired.borrow();
        let Some((h, id, at, grace)) = retired.iter().find(|(h, ..)| h == hash) else {
            return Ok(None);
        };
        Ok(tokens.iter().find(|t| t.id == *id).map(|t| {
            let r = Retired {
                hash: *h,
                token_id: id.clone(),
                retired_at: *at,
                grace_until: *grace,
            };
            (t.clone(), Some(r))
        }))
    }

    async fn record_leak_url(&self, id: &str, url: &str, _at: i64) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::LeakRecord, || {
            for t in self.tokens.borrow_mut().iter_mut().filter(|t| t.id == id) {
                t.leak_urls.retain(|u| u != url);
                t.leak_urls.insert(0, url.to_owned());
                t.leak_urls.truncate(crate::model::MAX_LEAK_URLS);
            }
        })
    }

    async fn delete_token(&self, id: &str) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::TokenDelete, || {
            self.tokens.borrow_mut().retain(|t| t.id != id);
        })
    }
}

impl crate::store::RequestOrigin for MemoryBackend {
    fn request_origin(&self) -> crate::origin::ClientOrigin {
        self.origin_reads.set(self.origin_reads.get() + 1);
        self.origin.borrow().clone()
    }
}
