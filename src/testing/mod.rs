//! In-memory implementations of the storage traits for host tests, with failure injection and
//! operation counters (the same counters the runtime layer exposes in dev builds).
//!
//! The backend and its fault injection and hooks are here; the trait implementations by storage:
//! [`tokens`] (grants, token records, last use), [`registry`] (resources, clients, admin writes,
//! routes, rate limits, expiry notices), [`clients`] (clients one by one with their profiles,
//! metadata documents), [`webhooks`], [`usage`] (the `LastUsed` objects, usage rows, the
//! inventory, the webhook delivery log).

mod clients;
pub mod fault;
mod feed;
mod flow;
mod registry;
mod tokens;
mod usage;
mod webhooks;

use crate::gate::route::GateRoute;
use crate::model::{ApiResource, Client, Grant, TokenRecord};
use crate::store::StoreError;
use crate::token::TokenHash;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub kv_get: u32,
    pub kv_put: u32,
    pub kv_delete: u32,
    pub d1_query: u32,
    pub do_call: u32,
    /// Page queries of the revocation feed (D1), and reads and writes of the location's
    /// snapshot (Cache API).
    pub feed_query: u32,
    pub cache_read: u32,
    pub cache_write: u32,
}

pub use fault::Fault;

/// The storage steps that can be made to fail, one call at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    KvPut,
    KvDelete,
    TokenInsert,
    TokenRevoke,
    TokenRotate,
    TokenRead,
    RetiredRead,
    TokenDelete,
    ClientWrite,
    ResourceWrite,
    /// The D1 update that records a detected reuse.
    ReuseRecord,
    /// The D1 delete that releases claimed expiry notices.
    NoticeRelease,
    /// A read of a PAT by owner and id (no fault; hooks run after it, to interleave a
    /// concurrent request between a read and what the reader does next).
    PatRead,
    /// The D1 write that keeps a leak report's URL.
    LeakRecord,
    /// A self-registered client stored (RFC 7591 registration, a fetched metadata document).
    ClientRegister,
    /// The D1 write of a dynamic client's last use.
    ClientTouch,
    /// A usage report to a token's Durable Object.
    UseRecord,
    /// The insert of a webhook delivery attempt.
    AttemptRecord,
    /// The update of a webhook endpoint's health.
    HealthWrite,
    /// A page query of the revocation feed.
    FeedRead,
    /// A read of the location's feed snapshot (Cache API).
    SnapshotRead,
    /// The read of the summed uses of grants' access tokens.
    GrantUses,
}

/// Every writing step, for tests that inject a fault into each in turn.
pub const WRITE_STEPS: [Step; 9] = [
    Step::KvPut,
    Step::KvDelete,
    Step::TokenInsert,
    Step::TokenRevoke,
    Step::TokenRotate,
    Step::ClientWrite,
    Step::ResourceWrite,
    Step::ReuseRecord,
    Step::NoticeRelease,
];

/// One token's `LastUsed` object: its state and day buckets.
#[derive(Debug, Default, Clone)]
pub struct UsageObject {
    pub state: crate::last_use::UseState,
    pub days: std::collections::BTreeMap<i64, crate::last_use::DayBucket>,
}

#[derive(Default)]
pub struct MemoryBackend {
    pub kv: RefCell<HashMap<TokenHash, Grant>>,
    pub tokens: RefCell<Vec<TokenRecord>>,
    pub resources: RefCell<Vec<ApiResource>>,
    pub clients: RefCell<Vec<Client>>,
    /// Usage reports received (one per Durable Object call), in order.
    pub uses: RefCell<Vec<crate::last_use::UseRecord>>,
    /// The `LastUsed` objects (state and day buckets) and D1 `token_usage` rows (see `usage`).
    pub objects: RefCell<HashMap<String, UsageObject>>,
    pub usage_rows: RefCell<Vec<(String, crate::usage::book::UsageRow)>>,
    /// The objects' clock (`None`: a record's own `at`).
    pub object_now: Cell<Option<i64>>,
    /// The webhook delivery log (D1 `webhook_deliveries`).
    pub attempts: RefCell<Vec<crate::store_usage::Attempt>>,
    /// The document every outbound key fetch (JWKS, secret scanning keys) gets; `None`: the
    /// fetch fails (a network error or a timeout). Fetches are counted.
    pub jwks: RefCell<Option<String>>,
    pub jwks_fetches: Cell<u32>,
    pub denied: RefCell<Vec<(String, i64)>>,
    pub routes: RefCell<Vec<GateRoute>>,
    pub counts: Cell<Counts>,
    /// Make every KV call fail.
    pub break_kv: Cell<bool>,
    /// Make every D1 call fail.
    pub break_d1: Cell<bool>,
    /// One-shot faults: the next call of that step fails as described (then the entry is gone).
    pub faults: RefCell<Vec<(Step, Fault)>>,
    /// Retired token hashes.
    pub retired: RefCell<Vec<RetiredRow>>,
    /// Rate limits: events allowed per key (absent: unlimited), and the counts so far.
    pub limits: RefCell<HashMap<crate::store::Limit, u32>>,
    pub limit_counts: RefCell<HashMap<(crate::store::Limit, String), u32>>,
    /// Make every rate-limiter call fail.
    pub break_limiter: Cell<bool>,
    /// The last uid the store assigned (D1 assigns random ones).
    pub uid_seq: Cell<u32>,
    /// Until when each KV grant lives (see [`MemoryBackend::expire_kv`]).
    pub kv_until: RefCell<HashMap<TokenHash, i64>>,
    /// Expiry notices sent: (token id, threshold days).
    pub notices: RefCell<Vec<(String, i64)>>,
    /// One-shot hooks run right after a write of that step applied, or a read of
    /// [`Step::PatRead`] (to interleave a concurrent request at an exact point).
    pub after: RefCell<Vec<(Step, Hook)>>,
    /// Webhooks: endpoints, the delivery queue, one-shot enqueue faults (in order), the POSTs
    /// sent (url, headers, body) and the answers to give them (default 200).
    pub webhooks: RefCell<Vec<crate::store::WebhookEndpoint>>,
    pub queue: RefCell<Vec<crate::webhook::Delivery>>,
    pub queue_faults: RefCell<Vec<Fault>>,
    pub posts: RefCell<Vec<WebhookPost>>,
    pub post_answers: RefCell<std::collections::VecDeque<Result<u16, StoreError>>>,
    /// Where "the request" comes from ([`crate::store::RequestOrigin`]), and how often it was
    /// asked.
    pub origin: RefCell<crate::origin::ClientOrigin>,
    pub origin_reads: Cell<u32>,
    /// Sealed tokens of the page (KV `s:`): value and expiry. Written through [`Step::KvPut`].
    pub sealed: RefCell<HashMap<TokenHash, (String, i64)>>,
    /// The authorization-code side of [`MemoryBackend::clients`], by client id (absent: an
    /// administrator-made client from before, `ClientProfile::legacy`).
    pub profiles: RefCell<HashMap<String, crate::authz::records::ClientProfile>>,
    /// Client ID metadata documents by URL: what a fetch gets (`Err`: the fetch fails with that
    /// message, e.g. a timeout); absent: the fetch fails. The URLs fetched, in order.
    pub documents: RefCell<HashMap<String, Result<crate::authz::store::Fetched, String>>>,
    pub fetched: RefCell<Vec<String>>,
    /// The authorization server's grants (D1 `app_grants`): a live one keeps a dynamic client
    /// from expiring.
    pub app_grants: RefCell<Vec<crate::authz::records::AppGrant>>,
    /// The revocation feed (D1 `revocation_feed`), and the location's snapshot of it (one Cache
    /// API object).
    pub feed: RefCell<crate::revocation::feed::FeedLog>,
    pub snapshot: RefCell<Option<String>>,
    /// Make every read of the feed and of its snapshot fail.
    pub break_feed: Cell<bool>,
    /// The authorization code flow's storage (consent requests, remembered approvals, codes,
    /// grants, refresh tokens), with its own one-shot faults by step (see `flow.rs`).
    pub flow: crate::authz::memory::AuthzMemory,
}

/// A webhook POST the in-memory sender received.
#[derive(Debug, Clone)]
pub struct WebhookPost {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub timeout_secs: u32,
}

impl WebhookPost {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A retired hash: (hash, token id, retired at, grace until).
pub type RetiredRow = (TokenHash, String, i64, Option<i64>);

/// A hook: something another request does at that moment.
pub type Hook = Box<dyn FnOnce(&MemoryBackend)>;

/// An active PAT record of `subject` (scope `demo_api:read`, expiring a day after `now`, default
/// options), for tests and tools: change fields with struct update syntax.
pub fn pat_record(id: &str, subject: &str, hash: TokenHash, now: i64) -> TokenRecord {
    TokenRecord {
        id: id.to_owned(),
        kind: crate::token::TokenKind::Pat,
        hash,
        subject: subject.to_owned(),
        client_id: crate::model::PAT_CLIENT_ID.to_owned(),
        name: None,
        scopes: vec!["demo_api:read".to_owned()],
        created_at: now,
        expires_at: now + 86_400,
        revoked_at: None,
        last_used_at: None,
        use_count: 0,
        generation: 0,
        client_uid: None,
        scope_owners: None,
        revoked_reason: None,
        revoked_url: None,
        allow_self_rotation: false,
        revoke_on_reuse: false,
        reuse: None,
        leak_urls: Vec::new(),
        daily_uses: crate::usage::summary::DailyUses::default(),
        last_used_from: Vec::new(),
        revoked_message: None,
        grant_id: None,
        audience: None,
    }
}

impl MemoryBackend {
    fn bump(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }

    fn kv(&self, f: impl FnOnce(&mut Counts)) -> Result<(), StoreError> {
        self.bump(f);
        if self.break_kv.get() {
            return Err(StoreError("KV is broken (test)".into()));
        }
        Ok(())
    }

    fn d1(&self) -> Result<(), StoreError> {
        self.bump(|c| c.d1_query += 1);
        if self.break_d1.get() {
            return Err(StoreError("D1 is broken (test)".into()));
        }
        Ok(())
    }

    fn next_uid(&self) -> String {
        self.uid_seq.set(self.uid_seq.get() + 1);
        format!("uid{}", self.uid_seq.get())
    }

    /// Makes the next call of `step` fail as `fault` says.
    pub fn inject(&self, step: Step, fault: Fault) {
        self.faults.borrow_mut().push((step, fault));
    }

    /// Runs `hook` right after the next write of `step` applies (for [`Step::PatRead`]: right
    /// after the next read, whose result it does not change).
    pub fn after_step(&self, step: Step, hook: impl FnOnce(&MemoryBackend) + 'static) {
        self.after.borrow_mut().push((step, Box::new(hook)));
    }

    /// KV entries whose life ended by `now` disappear, as KV expirations do.
    pub fn expire_kv(&self, now: i64) {
        let until = self.kv_until.borrow();
        self.kv
            .borrow_mut()
            .retain(|h, _| until.get(h).is_none_or(|u| *u > now));
    }

    fn take_fault(&self, step: Step) -> Option<Fault> {
        let mut f = self.faults.borrow_mut();
        let i = f.iter().position(|(s, _)| *s == step)?;
        Some(f.remove(i).1)
    }

    /// Runs a write under the injected fault of `step`, if any.
    fn write<T>(&self, step: Step, apply: impl FnOnce() -> T) -> Result<T, StoreError> {
        let fault = self.take_fault(step);
        if fault == Some(Fault::Lost) {
            return Err(StoreError(format!("{step:?} lost (test)")));
        }
        let v = apply();
        self.run_hook(step);
        if fault == Some(Fault::LandedButFailed) {
            return Err(StoreError(format!("{step:?} landed but failed (test)")));
        }
        Ok(v)
    }

    /// Runs the next hook registered for `step`, if any.
    fn run_hook(&self, step: Step) {
        let hook = {
            let mut after = self.after.borrow_mut();
            let i = after.iter().position(|(s, _)| *s == step);
            i.map(|i| after.remove(i).1)
        };
        if let Some(hook) = hook {
            hook(self);
        }
    }

    fn read_fault(&self, step: Step) -> Result<(), StoreError> {
        match self.take_fault(step) {
            Some(_) => Err(StoreError(format!("{step:?} failed (test)"))),
            None => Ok(()),
        }
    }

    pub fn take_counts(&self) -> Counts {
        self.counts.replace(Counts::default())
    }
}
