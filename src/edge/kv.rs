//! KV `GRANTS`: token grants (`g:{sha256 hex}`), the JWT denylist (`d:{jti}`) and, for a minute
//! each, tokens the page showed, sealed (`s:{sha256 hex}`); the keys and values are
//! [`crate::storage::kv`]. The binding itself is [`super::kv_namespace`].

use super::backend::EdgeBackend;
use super::counters::{bump, Op};
use super::js::{err, now_secs};
use crate::model::Grant;
use crate::storage::kv::{self as kv_format, Denied, DenyKey, GrantKey, KvKey as _, SealedKey};
use crate::store::{GrantCache, StoreError};
use crate::token::TokenHash;

impl GrantCache for EdgeBackend {
    async fn get_grant(&self, hash: &TokenHash) -> Result<Option<Grant>, StoreError> {
        bump(Op::KvGet);
        let text = self.kv()?.get_text(&GrantKey(hash).key()).await?;
        Ok(text.as_deref().and_then(kv_format::parse_grant))
    }

    async fn put_grant(&self, hash: &TokenHash, grant: &Grant) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let now = now_secs();
        let value = kv_format::grant_value(grant).map_err(err)?;
        let exp = kv_format::expiration(grant.kv_expires_at(), now);
        self.kv()?
            .put_text(&GrantKey(hash).key(), &value, exp)
            .await
    }

    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError> {
        bump(Op::KvDelete);
        self.kv()?.delete_key(&GrantKey(hash).key()).await
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        bump(Op::KvGet);
        Ok(self.kv()?.get_text(&DenyKey(jti).key()).await?.is_some())
    }

    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let exp = kv_format::expiration(exp, now_secs());
        self.kv()?
            .put_text(&DenyKey(jti).key(), Denied::VALUE, exp)
            .await
    }

    async fn put_sealed(
        &self,
        hash: &TokenHash,
        sealed: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let exp = kv_format::expiration(expires_at, super::js::now_secs());
        self.kv()?
            .put_text(&SealedKey(hash).key(), sealed, exp)
            .await
    }

    async fn get_sealed(&self, hash: &TokenHash) -> Result<Option<String>, StoreError> {
        bump(Op::KvGet);
        self.kv()?.get_text(&SealedKey(hash).key()).await
    }
}
