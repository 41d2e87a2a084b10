//! RFC 8693 token exchange at `POST /oauth/token`.
//!
//! - Single sign-on to PAT: an identity-provider JWT (`subject_token_type` `...:jwt`,
//!   `...:id_token` or `...:access_token`) exchanged by the public `pat_client` for a new PAT,
//!   with `name`, `scope` and `expires_in_days` or `expires_at` as parameters. A CLI gets a PAT
//!   without a browser page.
//! - PAT to JWT: a PAT (`subject_token_type` `...:access_token`) exchanged for a short-lived
//!   (at most one hour, never past the PAT), optionally down-scoped RFC 9068 JWT that APIs can
//!   verify offline against `/.well-known/jwks.json`. Holding the PAT is enough: the public
//!   `pat_client` may ask without a secret.
//!
//! A subject token that is well-formed but not acceptable (revoked, expired, unknown, bad
//! signature) is `invalid_grant`: it is the grant of this request (RFC 6749 section 5.2);
//! malformed requests, unsupported token types and `actor_token` are `invalid_request`.

use super::token_endpoint::{requested_scopes, TokenResponse};
use super::{client_auth, jwt_tokens, pats, user, Ctx, PAT_CLIENT_ID};
use crate::error::Error;
use crate::http::Form;
use crate::model::Status;
use crate::store::Backend;
use crate::token::{PlainToken, TokenKind};

pub const TT_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TT_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TT_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";

pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    presented: client_auth::Presented,
    form: &Form,
    ip: &str,
) -> Result<TokenResponse, Error> {
    // Authenticated against the cached registry first, so that a forged subject token costs no
    // D1 query; the client is read fresh from D1 right before anything is issued.
    let client =
        client_auth::authenticate_client(ctx, presented, client_auth::Freshness::Cached, ip)
            .await?;
    let subject_token = form.require("subject_token")?;
    let subject_type = form.require("subject_token_type")?;
    let requested = form.get("requested_token_type");
    if form.get("actor_token").is_some() {
        return Err(Error::InvalidRequest(
            "delegation (actor_token) is not supported".into(),
        ));
    }
    match PlainToken::parse(subject_token) {
        Ok(pat) if pat.kind() == TokenKind::Pat => {
            if subject_type != TT_ACCESS_TOKEN {
                return Err(Error::InvalidRequest(format!(
                    "a PAT has subject_token_type {TT_ACCESS_TOKEN}"
                )));
            }
            if requested.is_some_and(|r| r != TT_JWT) {
                return Err(Error::InvalidRequest(format!(
                    "a PAT can be exchanged only for requested_token_type {TT_JWT}"
                )));
            }
            if ctx.cfg.signing_keys.is_none() {
                // RFC 8693 2.2.2: a subject token unacceptable by policy is invalid_request.
                return Err(Error::InvalidRequest(
                    "this server issues no JWTs (no signing keys are configured), so a PAT cannot be exchanged".into(),
                ));
            }
            pat_to_jwt(ctx, &client, &pat, form).await
        }
        _ => {
            if ![TT_JWT, TT_ID_TOKEN, TT_ACCESS_TOKEN].contains(&subject_type) {
                return Err(Error::InvalidRequest(format!(
                    "unsupported subject_token_type {subject_type}"
                )));
            }
            if requested.is_some_and(|r| r != TT_ACCESS_TOKEN) {
                return Err(Error::InvalidRequest(format!(
                    "an identity-provider token can be exchanged only for requested_token_type {TT_ACCESS_TOKEN} (a PAT)"
                )));
            }
            if client.id != PAT_CLIENT_ID {
                return Err(Error::UnauthorizedClient(format!(
                    "only {PAT_CLIENT_ID} may exchange identity-provider tokens for PATs"
                )));
            }
            sso_to_pat(ctx, &client, subject_token, form).await
        }
    }
}

async fn sso_to_pat<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &crate::model::Client,
    jwt: &str,
    form: &Form,
) -> Result<TokenResponse, Error> {
    let sub = user::verify(ctx, jwt).await.map_err(|_| {
        Error::InvalidGrant("subject_token is not a valid identity-provider token".into())
    })?;
    still_enabled(ctx, client).await?;
    let expires_in_days = form
        .get("expires_in_days")
        .map(|d| {
            d.parse::<i64>()
                .map_err(|_| Error::InvalidRequest("expires_in_days must be an integer".into()))
        })
        .transpose()?;
    let body = pats::CreatePat {
        name: form.require("name")?.to_owned(),
        scopes: form
            .require("scope")
            .map_err(|_| Error::InvalidScope("scope is required".into()))?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        expires_at: form.get("expires_at").map(str::to_owned),
        expires_in_days,
        allow_self_rotation: false,
        revoke_on_reuse: false,
    };
    let (rec, token, _log) = pats::issue(ctx, sub, body).await?;
    Ok(TokenResponse {
        access_token: token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: rec.expires_at - ctx.now,
        scope: rec.scopes.join(" "),
        issued_token_type: Some(TT_ACCESS_TOKEN),
    })
}

async fn pat_to_jwt<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &crate::model::Client,
    pat: &PlainToken,
    form: &Form,
) -> Result<TokenResponse, Error> {
    let inactive = || Error::InvalidGrant("subject_token is not an active token".into());
    if !super::decision::may_exist(ctx, &pat.hash()).await {
        return Err(inactive());
    }
    // Then the source of truth, not KV: a PAT revoked a second ago must not mint a JWT here.
    let Some(rec) = ctx.backend.token_by_hash(&pat.hash()).await? else {
        // A token rotated away: used after its grace, a detected reuse (see `reuse`).
        // (This answer carries no work for after it: what failed is logged as a warning.)
        let done = super::reuse::check_unknown(ctx, &pat.hash()).await?;
        if let Some(message) = done.and_then(|d| d.log) {
            ctx.isolate.emit(super::events::Event::Warning { message });
        }
        return Err(inactive());
    };
    let rec = Some(rec)
        .filter(|r| r.status(ctx.now) == Status::Active)
        .ok_or_else(inactive)?;
    // A PAT of a disabled client is inactive everywhere: it mints nothing either.
    if !client_auth::load_client(ctx, &rec.client_id)
        .await?
        .is_some_and(|c| c.enabled && super::decision::same_uid(rec.client_uid.as_deref(), &c.uid))
    {
        return Err(inactive());
    }
    still_enabled(ctx, client).await?;
    let scopes = requested_scopes(form, &rec.scopes)?;
    // Offline verifiers cannot see the PAT's revocation: keep the JWT short (README).
    let lifetime = ctx.cfg.exchanged_jwt_secs.min(rec.expires_at - ctx.now);
    let access_token = jwt_tokens::sign_access_token(
        ctx,
        client,
        &rec.subject,
        &scopes,
        lifetime,
        Some((&rec.id, rec.generation)),
    )
    .await?;
    ctx.isolate.emit(super::events::Event::TokenIssued {
        client_id: client.id.clone(),
        sub: rec.subject.clone(),
        format: "jwt",
        grant: "token_exchange",
    });
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime,
        scope: scopes.join(" "),
        issued_token_type: Some(TT_JWT),
    })
}

/// Issuing: a client disabled a moment ago (at any location) gets nothing. One D1 read.
async fn still_enabled<B: Backend>(
    ctx: &Ctx<'_, B>,
    client: &crate::model::Client,
) -> Result<(), Error> {
    client_auth::load_client_with(ctx, &client.id, client_auth::Freshness::Fresh)
        .await?
        .filter(|c| c.enabled)
        .map(|_| ())
        .ok_or_else(|| Error::InvalidClient(format!("client {} is disabled", client.id)))
}
