//! In-memory implementations of the storage traits for host tests, with failure injection and
//! operation counters (the same counters the runtime layer exposes in dev builds).

use crate::gate::route::GateRoute;
use crate::model::{ApiResource, Client, Grant, TokenRecord};
use crate::store::{
    Cursor, GrantCache, JwksFetcher, Registry, Retired, RevocationNote, Revoked, StoreError,
    TokenStore, UsageRecorder, Write,
};
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
}

/// How an injected fault behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write does not happen and the call reports an error.
    Lost,
    /// The write happens, then the call reports an error (a timeout after the commit).
    LandedButFailed,
}

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

#[derive(Default)]
pub struct MemoryBackend {
    pub kv: RefCell<HashMap<TokenHash, Grant>>,
    pub tokens: RefCell<Vec<TokenRecord>>,
    pub resources: RefCell<Vec<ApiResource>>,
    pub clients: RefCell<Vec<Client>>,
    pub uses: RefCell<Vec<(String, i64, u32)>>,
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
        client_id: crate::app::PAT_CLIENT_ID.to_owned(),
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
                }
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
    async fn end_grace(&self, hash: &TokenHash, now: i64) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::TokenRevoke, || {
            for r in self.retired.borrow_mut().iter_mut() {
                if r.0 == *hash && r.3.is_some_and(|g| g > now) {
                    r.3 = Some(now);
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

impl Registry for MemoryBackend {
    async fn api_resource(&self, id: &str) -> Result<Option<ApiResource>, StoreError> {
        self.d1()?;
        Ok(self.resources.borrow().iter().find(|r| r.id == id).cloned())
    }
    async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.d1()?;
        Ok(self.clients.borrow().iter().find(|c| c.id == id).cloned())
    }
}

impl UsageRecorder for MemoryBackend {
    async fn record_use(&self, token_id: &str, at: i64, uses: u32) -> Result<(), StoreError> {
        self.bump(|c| c.do_call += 1);
        self.uses.borrow_mut().push((token_id.to_owned(), at, uses));
        Ok(())
    }
}

impl crate::store::RequestOrigin for MemoryBackend {
    fn request_origin(&self) -> crate::origin::ClientOrigin {
        self.origin_reads.set(self.origin_reads.get() + 1);
        self.origin.borrow().clone()
    }
}

impl JwksFetcher for MemoryBackend {
    async fn fetch_jwks(&self, _url: &str) -> Result<String, StoreError> {
        self.jwks_fetches.set(self.jwks_fetches.get() + 1);
        self.jwks
            .borrow()
            .clone()
            .ok_or_else(|| StoreError("no JWKS (test)".into()))
    }
}

impl crate::store::AdminStore for MemoryBackend {
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.d1()?;
        Ok(self.clients.borrow().clone())
    }
    async fn create_client(&self, c: &Client, _now: i64) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            let mut all = self.clients.borrow_mut();
            if all.iter().any(|x| x.id == c.id) {
                return Write::Conflict;
            }
            let mut c = c.clone();
            c.uid = self.next_uid();
            all.push(c);
            Write::Done
        })
    }
    async fn update_client(&self, c: &Client) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            replace_where(&mut self.clients.borrow_mut(), c, |x| x.id == c.id)
        })
    }
    async fn delete_client(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ClientWrite, || {
            remove_where(&mut self.clients.borrow_mut(), |x| x.id == id)
        })
    }
    async fn list_resources(&self) -> Result<Vec<ApiResource>, StoreError> {
        self.d1()?;
        Ok(self.resources.borrow().clone())
    }
    async fn create_resource(&self, r: &ApiResource, _now: i64) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ResourceWrite, || {
            let mut all = self.resources.borrow_mut();
            let taken = all
                .iter()
                .any(|x| x.id == r.id || x.scopes.iter().any(|s| r.scopes.contains(s)));
            if taken {
                return Write::Conflict;
            }
            let mut r = r.clone();
            r.uid = self.next_uid();
            all.push(r);
            Write::Done
        })
    }
    async fn update_resource(&self, r: &ApiResource) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ResourceWrite, || {
            let mut all = self.resources.borrow_mut();
            if all
                .iter()
                .any(|x| x.id != r.id && x.scopes.iter().any(|s| r.scopes.contains(s)))
            {
                return Write::Conflict;
            }
            replace_where(&mut all, r, |x| x.id == r.id)
        })
    }
    async fn delete_resource(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        self.write(Step::ResourceWrite, || {
            remove_where(&mut self.resources.borrow_mut(), |x| x.id == id)
        })
    }
}

impl crate::store::RouteStore for MemoryBackend {
    async fn list_routes(&self) -> Result<Vec<GateRoute>, StoreError> {
        self.d1()?;
        let mut v = self.routes.borrow().clone();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
    async fn put_route(&self, r: &GateRoute, _now: i64) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.routes.borrow_mut();
        if all
            .iter()
            .any(|x| x.id != r.id && x.host == r.host && x.path_prefix == r.path_prefix)
        {
            return Ok(Write::Conflict);
        }
        all.retain(|x| x.id != r.id);
        all.push(r.clone());
        Ok(Write::Done)
    }
    async fn delete_route(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        Ok(remove_where(&mut self.routes.borrow_mut(), |x| x.id == id))
    }
}

fn replace_where<T: Clone>(all: &mut [T], item: &T, same: impl Fn(&T) -> bool) -> Write {
    match all.iter_mut().find(|x| same(x)) {
        Some(x) => {
            *x = item.clone();
            Write::Done
        }
        None => Write::NotFound,
    }
}

fn remove_where<T>(all: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> Write {
    let before = all.len();
    all.retain(|x| !matches(x));
    if all.len() < before {
        Write::Done
    } else {
        Write::NotFound
    }
}

impl crate::store::RateLimiter for MemoryBackend {
    async fn over_limit(&self, limit: crate::store::Limit, key: &str) -> Result<bool, StoreError> {
        if self.break_limiter.get() {
            return Err(StoreError("rate limiter is broken (test)".into()));
        }
        let Some(max) = self.limits.borrow().get(&limit).copied() else {
            return Ok(false);
        };
        let mut counts = self.limit_counts.borrow_mut();
        let n = counts.entry((limit, key.to_owned())).or_insert(0);
        *n += 1;
        Ok(*n > max)
    }
}

impl crate::store::ExpiryNotices for MemoryBackend {
    async fn claim_expiry_notices(
        &self,
        threshold_days: i64,
        from: i64,
        to: i64,
        _now: i64,
        limit: u32,
    ) -> Result<Vec<crate::store::ExpiryNotice>, StoreError> {
        self.d1()?;
        let mut notices = self.notices.borrow_mut();
        let mut out = Vec::new();
        for t in self.tokens.borrow().iter() {
            if out.len() >= limit as usize {
                break;
            }
            let due = t.kind == crate::token::TokenKind::Pat
                && t.revoked_at.is_none()
                && t.expires_at > from
                && t.expires_at <= to;
            let key = (t.id.clone(), threshold_days);
            if due && !notices.contains(&key) {
                notices.push(key);
                out.push(crate::store::ExpiryNotice {
                    token_id: t.id.clone(),
                    subject: t.subject.clone(),
                    expires_at: t.expires_at,
                });
            }
        }
        Ok(out)
    }

    async fn release_expiry_notices(&self, released: &[(String, i64)]) -> Result<(), StoreError> {
        self.d1()?;
        self.write(Step::NoticeRelease, || {
            self.notices.borrow_mut().retain(|n| !released.contains(n));
        })
    }
}

impl crate::store::WebhookStore for MemoryBackend {
    async fn list_webhooks(&self) -> Result<Vec<crate::store::WebhookEndpoint>, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow().clone();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    async fn webhook(&self, id: &str) -> Result<Option<crate::store::WebhookEndpoint>, StoreError> {
        self.d1()?;
        Ok(self.webhooks.borrow().iter().find(|w| w.id == id).cloned())
    }

    async fn create_webhook(&self, w: &crate::store::WebhookEndpoint) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow_mut();
        if all.iter().any(|x| x.id == w.id) {
            return Ok(Write::Conflict);
        }
        all.push(w.clone());
        Ok(Write::Done)
    }

    async fn update_webhook_secrets(
        &self,
        w: &crate::store::WebhookEndpoint,
    ) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow_mut();
        match all.iter_mut().find(|x| x.id == w.id) {
            Some(x) => {
                x.secret = w.secret.clone();
                x.previous_secret.clone_from(&w.previous_secret);
                Ok(Write::Done)
            }
            None => Ok(Write::NotFound),
        }
    }

    async fn delete_webhook(&self, id: &str) -> Result<Write, StoreError> {
        self.d1()?;
        let mut all = self.webhooks.borrow_mut();
        let before = all.len();
        all.retain(|w| w.id != id);
        Ok(if all.len() < before {
            Write::Done
        } else {
            Write::NotFound
        })
    }
}

/// What Cloudflare Queues measure of a message (its JSON body and about 100 bytes of metadata),
/// measured here independently of the producer's own estimate.
fn platform_message_bytes(d: &crate::webhook::Delivery) -> usize {
    serde_json::to_string(d).map_or(usize::MAX / 4, |b| b.len()) + 100
}

impl crate::store::DeliveryQueue for MemoryBackend {
    /// Refuses a batch the platform would refuse (over 100 messages, a message over 128 KB, or
    /// over 256 KB in all), then applies the next injected fault.
    async fn enqueue(&self, msgs: &[crate::webhook::Delivery]) -> Result<(), StoreError> {
        let sizes: Vec<usize> = msgs.iter().map(platform_message_bytes).collect();
        if msgs.len() > 100
            || sizes.iter().any(|n| *n > 128_000)
            || sizes.iter().sum::<usize>() > 256_000
        {
            return Err(StoreError(format!(
                "batch of {} messages, {} bytes: over the Queues limits (test)",
                msgs.len(),
                sizes.iter().sum::<usize>()
            )));
        }
        let fault = {
            let mut f = self.queue_faults.borrow_mut();
            (!f.is_empty()).then(|| f.remove(0))
        };
        if fault == Some(Fault::Lost) {
            return Err(StoreError("enqueue lost (test)".into()));
        }
        self.queue.borrow_mut().extend_from_slice(msgs);
        if fault == Some(Fault::LandedButFailed) {
            return Err(StoreError("enqueue landed but failed (test)".into()));
        }
        Ok(())
    }
}

impl crate::store::WebhookSender for MemoryBackend {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
        timeout_secs: u32,
    ) -> Result<u16, StoreError> {
        self.posts.borrow_mut().push(WebhookPost {
            url: url.to_owned(),
            headers: headers.to_vec(),
            body: body.to_owned(),
            timeout_secs,
        });
        self.post_answers
            .borrow_mut()
            .pop_front()
            .unwrap_or(Ok(200))
    }
}
