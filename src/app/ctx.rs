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
}

/// Work done after the response is sent (`wait_until`), never delaying it.
#[derive(Debug, Clone, PartialEq)]
pub enum Deferred {
    /// Tell the token's Durable Object it was used.
    RecordUse {
        token_id: String,
        at: i64,
        uses: u32,
    },
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
