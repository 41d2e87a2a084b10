//! KV `GRANTS`: token grants (`g:{sha256 hex}`) and the JWT denylist (`d:{jti}`).

use super::backend::{err, EdgeBackend};
use super::counters::{bump, Op};
use crate::model::Grant;
use crate::store::{GrantCache, StoreError};
use crate::token::TokenHash;

/// KV key prefix for grants: `g:{hex sha256}`. Persisted format: never change it.
const GRANT_PREFIX: &str = "g:";
/// KV key prefix for revoked JWT ids: `d:{jti}`, expiring with the JWT. Persisted format.
const DENY_PREFIX: &str = "d:";
/// KV refuses expirations less than 60 s ahead.
const KV_MIN_TTL: i64 = 60;

fn grant_key(hash: &TokenHash) -> String {
    let mut k = String::with_capacity(66);
    k.push_str(GRANT_PREFIX);
    k.push_str(&hash.to_hex());
    k
}

impl GrantCache for EdgeBackend {
    async fn get_grant(&self, hash: &TokenHash) -> Result<Option<Grant>, StoreError> {
        bump(Op::KvGet);
        let text = self.kv()?.get(&grant_key(hash)).text().await.map_err(err)?;
        match text {
            None => Ok(None),
            // An unreadable record is treated as a miss: D1 answers and the record is rewritten.
            Some(t) => Ok(serde_json::from_str(&t).ok()),
        }
    }

    async fn put_grant(&self, hash: &TokenHash, grant: &Grant) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let now = super::now_secs();
        let value = serde_json::to_string(grant).map_err(err)?;
        let exp = grant.kv_expires_at().max(now + KV_MIN_TTL);
        self.kv()?
            .put(&grant_key(hash), value)
            .map_err(err)?
            .expiration(exp as u64)
            .execute()
            .await
            .map_err(err)
    }

    async fn delete_grant(&self, hash: &TokenHash) -> Result<(), StoreError> {
        bump(Op::KvDelete);
        self.kv()?.delete(&grant_key(hash)).await.map_err(err)
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        bump(Op::KvGet);
        let key = format!("{DENY_PREFIX}{jti}");
        Ok(self.kv()?.get(&key).text().await.map_err(err)?.is_some())
    }

    async fn revoke_jti(&self, jti: &str, exp: i64) -> Result<(), StoreError> {
        bump(Op::KvPut);
        let exp = exp.max(super::now_secs() + KV_MIN_TTL);
        self.kv()?
            .put(&format!("{DENY_PREFIX}{jti}"), "1")
            .map_err(err)?
            .expiration(exp as u64)
            .execute()
            .await
            .map_err(err)
    }
}
