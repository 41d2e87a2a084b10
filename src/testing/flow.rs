//! In memory: the authorization code flow's storage, delegated to `authz::memory::AuthzMemory`
//! (its faults and hooks by `AuthzStep`), with the one thing D1 does across tables: revoking a
//! grant revokes the `tokens` rows that name it and appends its revocation feed entry, in the
//! same batch.

use super::MemoryBackend;
use crate::authz::code::CodeUse;
use crate::authz::records::{
    AppGrant, AuthorizationCode, GrantEnd, PendingConsent, RefreshTokenRecord, RememberedApproval,
};
use crate::authz::store::{
    AppGrants, AuthorizationCodes, ConsentRequests, EndedState, GrantRevoked, RememberedApprovals,
};
use crate::revocation::feed::Key;
use crate::storage::feed::{FeedStamp, Kind};
use crate::store::StoreError;
use crate::token::TokenHash;

impl ConsentRequests for MemoryBackend {
    async fn insert_consent(&self, c: &PendingConsent) -> Result<(), StoreError> {
        self.flow.insert_consent(c).await
    }
    async fn consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError> {
        self.flow.consent(handle, subject, now).await
    }
    async fn take_consent(
        &self,
        handle: &TokenHash,
        subject: &str,
        now: i64,
    ) -> Result<Option<PendingConsent>, StoreError> {
        self.flow.take_consent(handle, subject, now).await
    }
}

impl RememberedApprovals for MemoryBackend {
    async fn remembered_approval(
        &self,
        subject: &str,
        client_uid: &str,
        redirect_key: &str,
        resource: &str,
    ) -> Result<Option<RememberedApproval>, StoreError> {
        self.flow
            .remembered_approval(subject, client_uid, redirect_key, resource)
            .await
    }
    async fn remember_approval(&self, a: &RememberedApproval) -> Result<(), StoreError> {
        self.flow.remember_approval(a).await
    }
    async fn forget_approvals(&self, subject: &str, client_uid: &str) -> Result<(), StoreError> {
        self.flow.forget_approvals(subject, client_uid).await
    }
}

impl AuthorizationCodes for MemoryBackend {
    async fn insert_code(&self, c: &AuthorizationCode) -> Result<(), StoreError> {
        self.flow.insert_code(c).await
    }
    async fn consume_code(&self, hash: &TokenHash, now: i64) -> Result<CodeUse, StoreError> {
        self.flow.consume_code(hash, now).await
    }
}

impl AppGrants for MemoryBackend {
    async fn insert_grant(
        &self,
        g: &AppGrant,
        first_refresh: Option<&RefreshTokenRecord>,
    ) -> Result<(), StoreError> {
        let r = self.flow.insert_grant(g, first_refresh).await;
        if self.flow.grants.borrow().iter().any(|x| x.id == g.id) {
            self.app_grants.borrow_mut().push(g.clone());
        }
        r
    }
    async fn grant(&self, id: &str) -> Result<Option<AppGrant>, StoreError> {
        self.flow.grant(id).await
    }
    async fn grants_of(
        &self,
        subject: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<AppGrant>, StoreError> {
        self.flow.grants_of(subject, now, limit).await
    }
    async fn grants_replaced_by(&self, g: &AppGrant, now: i64) -> Result<Vec<String>, StoreError> {
        self.flow.grants_replaced_by(g, now).await
    }
    async fn revoke_grant(
        &self,
        id: &str,
        now: i64,
        why: GrantEnd,
        feed: &FeedStamp,
    ) -> Result<Option<GrantRevoked>, StoreError> {
        let revoked = |m: &Self| {
            m.flow
                .grants
                .borrow()
                .iter()
                .any(|g| g.id == id && g.revoked_at.is_some())
        };
        let before = revoked(self);
        let r = self.flow.revoke_grant(id, now, why, feed).await;
        // The batch applied (also when it then reported an error): the grant's tokens with it,
        // and the feed entry if this call revoked the grant.
        let applied = revoked(self);
        if applied && !before {
            self.append_feed_entry(Key::Grant(id.to_owned()), Kind::Grant, feed);
        }
        let mut hashes: Vec<TokenHash> = Vec::new();
        if applied {
            for g in self.app_grants.borrow_mut().iter_mut() {
                if g.id == id && g.revoked_at.is_none() {
                    g.revoked_at = Some(now);
                }
            }
            for t in self.tokens.borrow_mut().iter_mut() {
                if t.grant_id.as_deref() == Some(id) {
                    t.revoked_at = t.revoked_at.or(Some(now));
                    hashes.push(t.hash);
                }
            }
        }
        r.map(|o| {
            o.map(|mut g| {
                for h in hashes {
                    if !g.access_tokens.contains(&h) {
                        g.access_tokens.push(h);
                    }
                }
                g
            })
        })
    }
    async fn touch_grant(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.flow.touch_grant(id, now).await
    }
    async fn refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.flow.refresh_token(hash).await
    }
    async fn rotate_refresh(
        &self,
        next: &RefreshTokenRecord,
        presented: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.flow.rotate_refresh(next, presented, now).await
    }
}

impl EndedState for MemoryBackend {
    async fn delete_expired_codes(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        self.flow.delete_expired_codes(before, limit).await
    }
    async fn delete_expired_consents(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        self.flow.delete_expired_consents(before, limit).await
    }
    async fn delete_ended_grants(&self, before: i64, limit: u32) -> Result<u32, StoreError> {
        self.flow.delete_ended_grants(before, limit).await
    }
}
