//! The stamp every revoking storage write carries: when it was written (the writer's clock,
//! Unix milliseconds) and how long its revocation feed entries stay ([`Retention`]).

use super::feed::{Key, Retention, TOKEN_PREFIX_LEN};

/// When a revocation is written and how long its entries stay: handed to every storage write
/// that revokes, which stamps its feed entries with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStamp {
    /// The writer's clock, Unix milliseconds.
    pub at_ms: i64,
    pub retention: Retention,
}

impl FeedStamp {
    /// Until when an entry of `kind` written now is kept (a `j` entry: see
    /// [`FeedStamp::until_jti`]).
    pub fn until(&self, kind: Kind) -> i64 {
        let key = match kind {
            Kind::Token => Key::Token([0; TOKEN_PREFIX_LEN]),
            Kind::Record => Key::Record(String::new()),
            Kind::Generation => Key::Generation(String::new(), 0),
            Kind::Grant => Key::Grant(String::new()),
            Kind::Client => Key::Client(String::new()),
        };
        self.retention.until(&key, self.at_ms, None)
    }

    /// When a rotation's old token dies, as its `t` entry says (the entry's `at`): now without a
    /// grace; at the end of a grace (`grace_until`, seconds) that ends before the entry's
    /// `until`, because a grant of the old token read before the rotation (which knows nothing
    /// of the grace) may be trusted somewhere until then and no write happens when a grace runs
    /// out; `None` for a longer grace (every such grant is stale by its end, and D1 answers).
    pub fn old_token_dies_at(&self, grace_until: Option<i64>) -> Option<i64> {
        match grace_until {
            None => Some(self.at_ms),
            Some(secs) => {
                let end_ms = secs.saturating_mul(1000);
                (end_ms < self.until(Kind::Token)).then_some(end_ms.max(self.at_ms))
            }
        }
    }

    /// Until when the entry of a JWT whose `exp` is `exp_secs` is kept.
    pub fn until_jti(&self, exp_secs: i64) -> i64 {
        self.retention.until(
            &Key::Jti(String::new()),
            self.at_ms,
            Some(exp_secs.saturating_mul(1000)),
        )
    }
}

/// The kinds whose retention does not depend on the entry (all but `j`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Token,
    Record,
    Generation,
    Grant,
    Client,
}
