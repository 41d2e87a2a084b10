//! Issuing reference tokens (PATs and client access tokens): the one place that generates the
//! secret, writes the record to D1 (the truth) and then the grant to KV (the read path).

use super::Ctx;
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
}

/// Stores a new token and returns it with its record, plus a line to log if the KV write failed:
/// D1 has the record, so the first introspection finds it there and repairs KV.
pub async fn issue<B: Backend>(
    ctx: &Ctx<'_, B>,
    new: NewToken,
) -> Result<(TokenRecord, PlainToken, Option<String>), Error> {
    let id = random_id().map_err(rng)?;
    issue_with_id(ctx, new, id).await
}

fn rng(e: getrandom::Error) -> Error {
    Error::Internal(format!("randomness unavailable: {e}"))
}

/// [`issue`] with a caller-chosen record id (unique: the D1 insert fails on a duplicate).
pub async fn issue_with_id<B: Backend>(
    ctx: &Ctx<'_, B>,
    new: NewToken,
    id: String,
) -> Result<(TokenRecord, PlainToken, Option<String>), Error> {
    let token = PlainToken::generate(new.kind).map_err(rng)?;
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
    };
    ctx.backend.insert_token(&rec).await?;
    let log = ctx
        .backend
        .put_grant(&rec.hash, &rec.grant(), rec.expires_at)
        .await
        .err()
        .map(|e| {
            format!(
                "KV write after issuing a {} token failed: {}",
                rec.kind.as_str(),
                e.0
            )
        });
    Ok((rec, token, log))
}
