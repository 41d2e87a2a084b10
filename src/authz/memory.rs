//! In-memory implementation of the authorization server's storage traits, for host tests and
//! host tools: every write can be made to fail one call at a time (lost, or landed but reported
//! as failed, as `crate::testing` does for the rest of the backend), and a hook can run right
//! after a write to interleave a concurrent request.

use super::code::CodeUse;
use super::records::{
    AppGrant, AuthorizationCode, ClientProfile, ClientSource, GrantEnd, PendingConsent,
    RefreshTokenRecord, RememberedApproval,
};
use super::store::{
    AppGrants, AuthorizationCodes, ClientDirectory, ConsentRequests, Fetched, GrantRevoked,
    MetadataFetcher, RememberedApprovals,
};
use crate::model::{Client, SecretSet};
use crate::oauth::metadata_document::FetchableUrl;
use crate::revocation::stamp::FeedStamp;
use crate::secret::SecretHash;
use crate::store::{StoreError, Write};
use crate::testing::fault::Fault;
use crate::token::TokenHash;
use std::cell::{Cell, RefCell};

/// The writes that can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzStep {
    ClientWrite,
    ConsentInsert,
    ConsentTake,
    ApprovalWrite,
    CodeInsert,
    CodeConsume,
    GrantInsert,
    GrantRevoke,
    RefreshRotate,
    Touch,
    /// The clean-up's deletes of ended codes, consent requests and grants.
    Cleanup,
}

/// Every step, for tests that inject a fault into each in turn.
pub const AUTHZ_STEPS: [AuthzStep; 11] = [
    AuthzStep::ClientWrite,
    AuthzStep::ConsentInsert,
    AuthzStep::ConsentTake,
    AuthzStep::ApprovalWrite,
    AuthzStep::CodeInsert,
    AuthzStep::CodeConsume,
    AuthzStep::GrantInsert,
    AuthzStep::GrantRevoke,
    AuthzStep::RefreshRotate,
    AuthzStep::Touch,
    AuthzStep::Cleanup,
];

/// Something another request does right after a write.
pub type AuthzHook = Box<dyn FnOnce(&AuthzMemory)>;

/// A client as stored: the record, its profile, when it was created.
pub type StoredClient = (Client, ClientProfile, i64);

#[derive(Default)]
pub struct AuthzMemory {
    pub clients: RefCell<Vec<StoredClient>>,
    pub consents: RefCell<Vec<PendingConsent>>,
    pub approvals: RefCell<Vec<RememberedApproval>>,
    pub codes: RefCell<Vec<AuthorizationCode>>,
    pub grants: RefCell<Vec<AppGrant>>,
    pub refresh: RefCell<Vec<RefreshTokenRecord>>,
    /// Access tokens issued from grants: (grant id, token hash, revoked). In D1 these are
    /// `tokens` rows with `grant_id`.
    pub access: RefCell<Vec<(String, TokenHash, bool)>>,
    /// Metadata documents by URL (absent: the fetch fails), and the URLs fetched.
    pub documents: RefCell<Vec<(String, Fetched)>>,
    pub fetched: RefCell<Vec<String>>,
    /// One-shot faults, by step, in order.
    pub faults: RefCell<Vec<(AuthzStep, Fault)>>,
    /// One-shot hooks run right after a write of that step applied.
    pub after: RefCell<Vec<(AuthzStep, AuthzHook)>>,
    /// Make every call fail.
    pub broken: Cell<bool>,
    /// Calls made (reads and writes).
    pub calls: Cell<u32>,
    uid_seq: Cell<u32>,
}

impl AuthzMemory {
    pub fn inject(&self, step: AuthzStep, fault: Fault) {
        self.faults.borrow_mut().push((step, fault));
    }

    pub fn after_step(&self, step: AuthzStep, hook: impl FnOnce(&AuthzMemory) + 'static) {
        self.after.borrow_mut().push((step, Box::new(hook)));
    }

    /// Records an access token issued from grant `grant_id` (D1: its `tokens.grant_id`).
    pub fn bind_access_token(&self, grant_id: &str, hash: TokenHash) {
        self.access
            .borrow_mut()
            .push((grant_id.to_owned(), hash, false));
    }

    fn call(&self) -> Result<(), StoreError> {
        self.calls.set(self.calls.get() + 1);
        if self.broken.get() {
            return Err(StoreError("D1 unavailable (injected)".into()));
        }
        Ok(())
    }

    pub(super) fn write<T>(
        &self,
        step: AuthzStep,
        apply: impl FnOnce() -> T,
    ) -> Result<T, StoreError> {
        self.call()?;
        let fault = {
            let mut f = self.faults.borrow_mut();
            f.iter()
                .position(|(s, _)| *s == step)
                .map(|i| f.remove(i).1)
        };
        if fault == Some(Fault::Lost) {
            return Err(StoreError(format!("{step:?} lost (injected)")));
        }
        let out = apply();
        let hook = {
            let mut a = self.after.borrow_mut();
            a.iter()
                .position(|(s, _)| *s == step)
                .map(|i| a.remove(i).1)
        };
        if let Some(h) = hook {
            h(self);
        }
        if fault == Some(Fault::LandedButFailed) {
            return Err(StoreError(format!(
                "{step:?} landed, then failed (injected)"
            )));
        }
        Ok(out)
    }

    fn next_uid(&self) -> String {
        self.uid_seq.set(self.uid_seq.get() + 1);
        format!("cuid{}", self.uid_seq.get())
    }
}

impl ClientDirectory for AuthzMemory {
    async fn client_profile(
        &self,
        id: &str,
    ) -> Result<Option<(Client, ClientProfile)>, StoreError> {
        self.call()?;
        Ok(self
            .clients
            .borrow()
            .iter()
            .find(|(c, _, _)| c.id == id)
            .map(|(c, p, _)| (c.clone(), p.clone())))
    }

    async fn admin_clients(&self) -> Result<Vec<(Client, ClientProfile)>, StoreError> {
        self.call()?;
        let mut v: Vec<_> = self
            .clients
            .borrow()
            .iter()
            .filter(|(_, p, _)| p.source == ClientSource::Admin)
            .map(|(c, p, _)| (c.clone(), p.clone()))
            .collect();
        v.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(v)
    }

    async fn put_metadata_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        self.write(AuthzStep::ClientWrite, || {
            let mut all = self.clients.borrow_mut();
            match all.iter_mut().find(|(c, _, _)| c.id == client.id) {
                Some((_, p, _)) if p.source != ClientSource::MetadataDocument => None,
                Some((c, p, _)) => {
                    // As in D1: a new fetch replaces the document's members, never the uid or
                    // a secret an administrator gave the client.
                    let uid = c.uid.clone();
                    *c = Client {
                        uid: uid.clone(),
                        secret: c.secret.take(),
                        ..client.clone()
                    };
                    *p = profile.clone();
                    Some(uid)
                }
                None => {
                    let uid = self.next_uid();
                    let c = Client {
                        uid: uid.clone(),
                        ..client.clone()
                    };
                    all.push((c, profile.clone(), now));
                    Some(uid)
                }
            }
        })
    }

    async fn register_client(
        &self,
        client: &Client,
        profile: &ClientProfile,
        now: i64,
    ) -> Result<Write, StoreError> {
        self.write(AuthzStep::ClientWrite, || {
            let mut all = self.clients.borrow_mut();
            if all.iter().any(|(c, _, _)| c.id == client.id) {
                return Write::Conflict;
            }
            let c = Client {
                uid: self.next_uid(),
                ..client.clone()
            };
            all.push((c, profile.clone(), now));
            Write::Done
        })
    }

    async fn set_client_secret(
        &self,
        id: &str,
        uid: &str,
        expected: Option<&SecretHash>,
        secret: &SecretSet,
    ) -> Result<Write, StoreError> {
        self.write(AuthzStep::ClientWrite, || {
            match self.clients.borrow_mut().iter_mut().find(|(c, _, _)| {
                c.id == id && c.uid == uid && c.secret.as_ref().map(|s| &s.current) == expected
            }) {
                Some((c, _, _)) => {
                    c.secret = Some(secret.clone());
                    Write::Done
                }
                None => Write::NotFound,
            }
        })
    }

    async fn touch_client(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.write(AuthzStep::Touch, || {
            if let Some((_, p, _)) = self
                .clients
                .borrow_mut()
                .iter_mut()
                .find(|(c, _, _)| c.id == id)
            {
                p.last_used_at = Some(now);
            }
        })
    }

    async fn expire_dynamic_clients(
        &self,
        unused_since: i64,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        self.write(AuthzStep::ClientWrite, || {
            let grants = self.grants.borrow();
            let mut all = self.clients.borrow_mut();
            let mut gone = Vec::new();
            all.retain(|(c, p, created)| {
                let unused = p.source == ClientSource::Dynamic
                    && p.last_used_at.unwrap_or(*created) < unused_since
                    && !grants
                        .iter()
                        .any(|g| g.client_uid == c.uid && g.revoked_at.is_none());
                if unused && gone.len() < limit as usize {
                    gone.push(c.id.clone());
                    return false;
                }
                true
            });
            gone
        })
    }
}

impl ConsentRequests for AuthzMemory {
    async fn insert_consent(&self, c: &PendingConsent) -> Result<(), StoreError> {
        self.write(AuthzStep::ConsentInsert, || {
            self.consents.borrow_mut().push(c.clone());
        })
    }

    async fn consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError> {
        self.call()?;
        Ok(self
            .consents
            .borrow()
            .iter()
            .find(|c| open_consent(c, handle, subject, now))
            .cloned())
    }

    async fn take_consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError> {
        self.write(AuthzStep::ConsentTake, || {
            let mut all = self.consents.borrow_mut();
            let c = all
                .iter_mut()
                .find(|c| open_consent(c, handle, subject, now))?;
            c.used_at = Some(now);
            Some(c.clone())
        })
    }
}

fn open_consent(c: &PendingConsent, handle: &TokenHash, subject: &str, now: i64) -> bool {
    c.handle_hash == *handle
        && c.request.subject == subject
        && c.used_at.is_none()
        && now < c.expires_at
}

impl RememberedApprovals for AuthzMemory {
    async fn remembered_approval(
        &self,
        subject: &str,
        client_uid: &str,
        redirect_key: &str,
        resource: &str,
    ) -> Result<Option<RememberedApproval>, StoreError> {
        self.call()?;
        Ok(self
            .approvals
            .borrow()
            .iter()
            .find(|a| {
                a.subject == subject
                    && a.client_uid == client_uid
                    && a.redirect_key == redirect_key
                    && a.resource == resource
            })
            .cloned())
    }

    async fn remember_approval(&self, a: &RememberedApproval) -> Result<(), StoreError> {
        self.write(AuthzStep::ApprovalWrite, || {
            let mut all = self.approvals.borrow_mut();
            let same = |b: &RememberedApproval| {
                b.subject == a.subject
                    && b.client_uid == a.client_uid
                    && b.redirect_key == a.redirect_key
                    && b.resource == a.resource
            };
            if let Some(b) = all.iter_mut().find(|b| same(b)) {
                for s in &a.scopes {
                    if !b.scopes.contains(s) {
                        b.scopes.push(s.clone());
                    }
                }
                b.approved_at = a.approved_at;
            } else {
                all.push(a.clone());
            }
        })
    }

    async fn forget_approvals(&self, subject: &str, client_uid: &str) -> Result<(), StoreError> {
        self.write(AuthzStep::ApprovalWrite, || {
            self.approvals
                .borrow_mut()
                .retain(|a| !(a.subject == subject && a.client_uid == client_uid));
        })
    }
}

impl AuthorizationCodes for AuthzMemory {
    async fn insert_code(&self, c: &AuthorizationCode) -> Result<(), StoreError> {
        self.write(AuthzStep::CodeInsert, || {
            self.codes.borrow_mut().push(c.clone());
        })
    }

    async fn consume_code(&self, hash: &TokenHash, now: i64) -> Result<CodeUse, StoreError> {
        self.write(AuthzStep::CodeConsume, || {
            let mut all = self.codes.borrow_mut();
            let Some(c) = all.iter_mut().find(|c| c.hash == *hash) else {
                return CodeUse::Unknown;
            };
            if c.used_at.is_some() {
                return CodeUse::Replayed(c.clone());
            }
            if now >= c.expires_at {
                return CodeUse::Expired;
            }
            c.used_at = Some(now);
            CodeUse::First(c.clone())
        })
    }
}

impl AppGrants for AuthzMemory {
    async fn insert_grant(
        &self,
        g: &AppGrant,
        first_refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        self.write(AuthzStep::GrantInsert, || {
            self.grants.borrow_mut().push(g.clone());
            if let Some(r) = first_refresh {
                self.refresh.borrow_mut().push(r.clone());
            }
        })
    }

    async fn grant(&self, id: &str) -> Result<Option<AppGrant>, StoreError> {
        self.call()?;
        Ok(self.grants.borrow().iter().find(|g| g.id == id).cloned())
    }

    async fn grants_of(
        &self,
        subject: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<AppGrant>, StoreError> {
        self.call()?;
        let mut v: Vec<AppGrant> = self
            .grants
            .borrow()
            .iter()
            .filter(|g| g.subject == subject && g.is_live(now))
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        v.truncate(limit as usize);
        Ok(v)
    }

    async fn grants_replaced_by(&self, g: &AppGrant, now: i64) -> Result<Vec<String>, StoreError> {
        self.call()?;
        Ok(self
            .grants
            .borrow()
            .iter()
            .filter(|o| {
                o.id != g.id
                    && o.is_live(now)
                    && o.subject == g.subject
                    && o.client_uid == g.client_uid
                    && o.redirect_key == g.redirect_key
                    && o.audience.resource == g.audience.resource
            })
            .map(|o| o.id.clone())
            .collect())
    }

    /// The feed entry is not kept here: the in-memory backend that holds this store
    /// (`testing::flow`) appends it when this write applied.
    async fn revoke_grant(
        &self,
        id: &str,
        now: i64,
        why: GrantEnd,
        _feed: &FeedStamp,
    ) -> Result<Option<GrantRevoked>, StoreError> {
        self.write(AuthzStep::GrantRevoke, || {
            let mut grants = self.grants.borrow_mut();
            let g = grants.iter_mut().find(|g| g.id == id)?;
            let newly = g.revoked_at.is_none();
            if newly {
                g.revoked_at = Some(now);
                g.revoked_reason = Some(why);
            }
            let mut access_tokens = Vec::new();
            for (gid, h, revoked) in self.access.borrow_mut().iter_mut() {
                if gid == id && !*revoked {
                    *revoked = true;
                    access_tokens.push(*h);
                }
            }
            Some(GrantRevoked {
                newly,
                access_tokens,
            })
        })
    }

    async fn touch_grant(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.write(AuthzStep::Touch, || {
            if let Some(g) = self.grants.borrow_mut().iter_mut().find(|g| g.id == id) {
                g.last_used_at = Some(now);
            }
        })
    }

    async fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.call()?;
        Ok(self
            .refresh
            .borrow()
            .iter()
            .find(|r| r.hash == *hash)
            .cloned())
    }

    async fn rotate_refresh(
        &self,
        next: &RefreshTokenRecord,
        presented: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(AuthzStep::RefreshRotate, || {
            let mut grants = self.grants.borrow_mut();
            let Some(g) = grants.iter_mut().find(|g| {
                g.id == next.grant_id
                    && g.refresh_generation == next.generation - 1
                    && g.revoked_at.is_none()
                    && now < g.expires_at
            }) else {
                return false;
            };
            g.refresh_generation = next.generation;
            g.rotated_generation = presented;
            g.last_used_at = Some(now);
            let mut refresh = self.refresh.borrow_mut();
            for r in refresh.iter_mut() {
                if r.grant_id == next.grant_id
                    && r.generation < next.generation
                    && r.rotated_at.is_none()
                {
                    r.rotated_at = Some(now);
                }
            }
            refresh.push(next.clone());
            true
        })
    }
}

impl MetadataFetcher for AuthzMemory {
    async fn fetch_metadata(
        &self,
        url: &FetchableUrl,
        max_bytes: usize,
        _timeout_ms: u32,
    ) -> Result<Fetched, StoreError> {
        let url = url.as_str();
        self.fetched.borrow_mut().push(url.to_owned());
        let found = self
            .documents
            .borrow()
            .iter()
            .find(|(u, _)| u == url)
            .map(|(_, f)| f.clone());
        let mut f = found.ok_or_else(|| StoreError(format!("fetch of {url} failed")))?;
        f.body.truncate(max_bytes + 1);
        Ok(f)
    }
}
