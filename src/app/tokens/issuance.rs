//! Issuing reference tokens (PATs and client access tokens): the one place that generates the
//! secret, writes the record to D1 (the truth) and then the grant to KV (the read path).

use crate::app::client_auth;
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::model::TokenRecord;
use crate::store::Backend;
use crate::token::{random_id, PlainToken, TokenKind};

/// What a new reference token is for.
pub struct NewToken {
    pub kind: TokenKind,
    pub subject: String,
    pub client_id: String,
    pub name: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: i64,
    /// The issuing client's uid (see [`TokenRecord::client_uid`]).
    pub client_uid: String,
    /// See [`TokenRecord::allow_self_rotation`] (PATs only).
    pub allow_self_rotation: bool,
    /// See [`TokenRecord::revoke_on_reuse`] (PATs only).
    pub revoke_on_reuse: bool,
    /// See [`TokenRecord::grant_id`] (access tokens of an authorization grant only).
    pub grant_id: Option<String>,
    /// See [`TokenRecord::audience`] (access tokens of an authorization grant only).
    pub audience: Option<String>,
}

/// Stores a new token (D1 record, then KV grant) and returns it with its record. If either write
/// fails, both are undone (best effort) and the error returned: the token was never shown, so a
/// retry by the caller leaves exactly one token.
pub async fn issue<B: Backend>(
    ctx: &Ctx<'_, B>,
    new: NewToken,
) -> Result<(TokenRecord, PlainToken), Error> {
    let id = random_id().map_err(rng)?;
    store(ctx, new, id, None).await
}

fn rng(e: getrandom::Error) -> Error {
    Error::Internal(format!("randomness unavailable: {e}"))
}

/// [`issue`] with a caller-chosen record id and token (the token page derives the id from a
/// one-time form id, and keeps the token sealed before it exists, see `page::replay`). The D1
/// insert fails on a duplicate id; the record already under that id is then left alone.
pub async fn issue_with_id<B: Backend>(
    ctx: &Ctx<'_, B>,
    new: NewToken,
    id: String,
    token: PlainToken,
) -> Result<(TokenRecord, PlainToken), Error> {
    store(ctx, new, id, Some(token)).await
}

async fn store<B: Backend>(
    ctx: &Ctx<'_, B>,
    new: NewToken,
    id: String,
    chosen: Option<PlainToken>,
) -> Result<(TokenRecord, PlainToken), Error> {
    let chosen_id = chosen.is_some();
    let token = match chosen {
        Some(t) => t,
        None => PlainToken::generate(new.kind).map_err(rng)?,
    };
    let scope_owners = client_auth::scope_owners(ctx, &new.scopes).await?;
    let rec = TokenRecord {
        id,
        kind: new.kind,
        hash: token.hash(),
        subject: new.subject,
        client_id: new.client_id,
        name: new.name,
        scopes: new.scopes,
        created_at: ctx.now,
        expires_at: new.expires_at,
        revoked_at: None,
        last_used_at: None,
        use_count: 0,
        generation: 0,
        client_uid: Some(new.client_uid),
        scope_owners: Some(scope_owners),
        revoked_reason: None,
        revoked_url: None,
        allow_self_rotation: new.allow_self_rotation,
        revoke_on_reuse: new.revoke_on_reuse,
        reuse: None,
        daily_uses: crate::usage::summary::DailyUses::default(),
        last_used_from: Vec::new(),
        revoked_message: None,
        leak_urls: Vec::new(),
        grant_id: new.grant_id,
        audience: new.audience,
    };
    if let Err(e) = ctx.backend.insert_token(&rec).await {
        // The insert may have landed although it reported an error: undo it, so that a retry
        // by the caller does not leave a second, never-shown token behind. A caller-chosen id may
        // instead have failed as a duplicate (a form posted twice at once): delete only our own.
        let ours = !chosen_id
            || matches!(ctx.backend.token_by_id(&rec.id).await, Ok(Some(r)) if r.hash == rec.hash);
        if ours {
            let _ = ctx.backend.delete_token(&rec.id).await;
        }
        return Err(e.into());
    }
    // KV is what makes the token known everywhere (a hash KV does not know is inactive): if the
    // grant cannot be written, the token would never work. Undo the record instead and fail.
    if let Err(e) = put_grant_retrying(ctx, &rec).await {
        let _ = ctx.backend.delete_token(&rec.id).await;
        let _ = ctx.backend.delete_grant(&rec.hash).await;
        return Err(e);
    }
    Ok((rec, token))
}

/// Writes the record's KV grant (fresh for `grant_cache_secs`), trying twice.
pub async fn put_grant_retrying<B: Backend>(
    ctx: &Ctx<'_, B>,
    rec: &TokenRecord,
) -> Result<(), Error> {
    let grant = rec.grant(ctx.now + ctx.cfg.grant_cache_secs);
    if ctx.backend.put_grant(&rec.hash, &grant).await.is_ok() {
        return Ok(());
    }
    ctx.backend.put_grant(&rec.hash, &grant).await.map_err(|e| {
        Error::Unavailable(format!(
            "KV write of a new {} token failed: {}",
            rec.kind.as_str(),
            e.0
        ))
    })
}
