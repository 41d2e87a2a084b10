//! The request context and what a handler hands back: [`Ctx`] (configuration, storage, this
//! isolate's state, the time), [`Outcome`] (the response and the [`Deferred`] work that the
//! runtime runs after sending it, in `wait_until`). Shared by every capability.

use super::config::Config;
use super::isolate::IsolateState;
use crate::http::Response;
use crate::model::Grant;
use crate::token::TokenHash;

/// What a handler needs: configuration, storage, this isolate's caches, and the time.
pub struct Ctx<'a, B> {
    pub cfg: &'a Config,
    pub backend: &'a B,
    pub isolate: &'a IsolateState,
    /// Unix seconds, from the runtime's clock.
    pub now: i64,
    /// The same moment in Unix milliseconds (the revocation feed's clock).
    pub now_ms: i64,
}

impl<B> Ctx<'_, B> {
    /// The stamp of a revocation written now: its feed entries' time and how long they stay.
    pub fn feed_stamp(&self) -> crate::storage::feed::FeedStamp {
        crate::storage::feed::FeedStamp {
            at_ms: self.now_ms,
            retention: self.cfg.retention(),
        }
    }
}

/// Work done after the response is sent (`wait_until`), never delaying it.
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred {
    /// Tell the token's Durable Object of its uses (one coalesced report).
    RecordUse(Box<crate::last_use::UseRecord>),
    /// After `after_secs`, send the uses held in this isolate whose window of `window` seconds
    /// has passed (see [`crate::usage::coalesce`]).
    FlushUses { after_secs: u64, window: i64 },
    /// Rewrite a stale KV grant with what D1 said (fresh for [`Config::grant_cache_secs`]).
    CacheGrant { hash: TokenHash, grant: Box<Grant> },
    /// Delete grants from KV after `after_secs`, retrying a failed delete a few times. Revocation
    /// and rotation send the hashes whose delete failed with `after_secs: 0`, and every hash they
    /// retired again after [`REVOCATION_RECHECK_SECS`](super::config::REVOCATION_RECHECK_SECS): a
    /// repair that read D1 just before the change, or a concurrent rotation's KV write, may land in
    /// KV after the first delete.
    PurgeGrants {
        hashes: Vec<TokenHash>,
        after_secs: u64,
    },
    /// Write reuse markers (see `tokens::reuse`) after `after_secs`, retrying a failed write a few
    /// times (and deleting the entry if that keeps failing: never leave a live grant). Rotation
    /// sends every marker it wrote again after
    /// [`REVOCATION_RECHECK_SECS`](super::config::REVOCATION_RECHECK_SECS), for the same reason as
    /// [`Deferred::PurgeGrants`]. A marker never makes a token active, so writing one late is
    /// always safe.
    PutMarkers {
        markers: Vec<(TokenHash, Box<Grant>)>,
        after_secs: u64,
    },
    /// Refresh this isolate's view of the revocation feed (it is over 2 s old; the request
    /// that found it so already marked the fetch as under way): see `super::revocations`.
    RefreshRevocations,
}

/// A response plus the work to do after sending it.
#[derive(Debug)]
pub struct Outcome {
    pub response: Response,
    pub deferred: Vec<Deferred>,
}

impl From<Response> for Outcome {
    fn from(response: Response) -> Self {
        Outcome {
            response,
            deferred: Vec::new(),
        }
    }
}
