//! The leaked-token kill switch: `POST /secret-scanning/github` accepts GitHub secret scanning
//! partner reports (see [`crate::secret_scanning`]) and revokes every reported token that is a
//! live patgate token, through the same revocation path as everywhere ([`revoke_record_because`]:
//! conditional D1 update, KV purge with retries), recording the reason `leaked` and the report's
//! URL. The answer is GitHub's partner format, one label per reported match.
//!
//! Refused, with nothing changed: a body over [`MAX_REPORT_BODY`] (413), a missing or unknown key
//! identifier, a missing, malformed or wrong signature (401 `invalid_signature`), a body that is
//! not a JSON array of matches or has more than [`MAX_MATCHES`] (400, checked only after the
//! signature). Without any configured key the endpoint does not exist (404).

use super::lifecycle;
use super::revocation::{revoke_record_because, revoked_event};
use crate::app::ctx::{Ctx, Deferred, Outcome};
use crate::authz::records::GrantEnd;
use crate::authz::secrets::{GrantSecret, SecretKind};
use crate::error::Error;
use crate::events::Event;
use crate::http::{Request, Response};
use crate::secret_scanning::{self, KeySet, Label, Match};
use crate::store::{Backend, RevocationNote};
use crate::token::{PlainToken, TokenHash};
use std::rc::Rc;

/// The endpoint's path.
pub const PATH: &str = "/secret-scanning/github";
/// Largest report accepted (the Worker's shim reads at most 64 KiB).
pub const MAX_REPORT_BODY: usize = crate::http::MAX_REPORT_BODY;
/// Most matches in one report (each costs a KV read; a live one a few D1 and KV calls).
pub const MAX_MATCHES: usize = 200;
/// Fetched keys are used this long before they are fetched again.
const KEYS_TTL_SECS: i64 = 600;
/// The key URL is asked at most once per this many seconds per isolate (an unknown key
/// identifier, or a failed fetch, waits for it).
const KEYS_REFETCH_SECS: i64 = 60;
/// While the key URL fails, the last keys fetched stay in use this long.
const KEYS_MAX_STALE_SECS: i64 = 86_400;
/// Longest `source` kept in the event.
const MAX_SOURCE_CHARS: usize = 64;

const KEY_ID_HEADER: &str = "github-public-key-identifier";
const SIGNATURE_HEADER: &str = "github-public-key-signature";
/// The headers the runtime layer must pass for this path.
pub const HEADERS: [&str; 2] = [KEY_ID_HEADER, SIGNATURE_HEADER];

pub async fn handle<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let lc = &ctx.cfg.lifecycle;
    if lc.scanning_keys.is_none() && lc.scanning_keys_url.is_none() {
        return Err(Error::NotFound);
    }
    if req.body.len() > MAX_REPORT_BODY {
        return Err(Error::PayloadTooLarge(MAX_REPORT_BODY));
    }
    let key_id = req
        .get_header(KEY_ID_HEADER)?
        .ok_or_else(|| Error::InvalidSignature("no key identifier header".into()))?;
    let signature = req
        .get_header(SIGNATURE_HEADER)?
        .ok_or_else(|| Error::InvalidSignature("no signature header".into()))?;
    let keys = keys_for(ctx, key_id).await?;
    secret_scanning::verify(&keys, key_id, signature, &req.body)
        .map_err(|r| Error::InvalidSignature(format!("{} (key {key_id:?})", r.as_str())))?;

    let matches: Vec<Match> = serde_json::from_slice(&req.body)
        .map_err(|e| Error::InvalidRequest(format!("not a secret scanning report: {e}")))?;
    if matches.len() > MAX_MATCHES {
        return Err(Error::InvalidRequest(format!(
            "at most {MAX_MATCHES} matches per report"
        )));
    }
    let mut deferred = Vec::new();
    let mut seen: Vec<(TokenHash, &'static str)> = Vec::new();
    let mut labels = Vec::with_capacity(matches.len());
    for m in &matches {
        let label = match PlainToken::parse(&m.token) {
            // An app's refresh token (its grant ends), or nothing patgate issued.
            Err(_) => match GrantSecret::parse(&m.token, SecretKind::Refresh) {
                Ok(r) => judge_refresh(ctx, m, r.hash(), &mut deferred).await?,
                Err(_) => FALSE,
            },
            Ok(token) => {
                let hash = token.hash();
                if let Some((_, l)) = seen.iter().find(|(h, _)| *h == hash) {
                    l
                } else {
                    let l = judge(ctx, m, hash, &mut deferred).await?;
                    seen.push((hash, l));
                    l
                }
            }
        };
        labels.push(Label {
            token_raw: &m.token,
            token_type: &m.token_type,
            label,
        });
    }
    let response = Response::json(200, &labels);
    Ok(Outcome { response, deferred })
}

const TRUE: &str = "true_positive";
const FALSE: &str = "false_positive";

/// Judges one reported token (the report's signature is verified): `true_positive` for every
/// token patgate issued, whatever it is now (active, rotated away, revoked, expired: a second
/// report of a token the first one revoked is as real as the first), `false_positive` only for a
/// token it never issued. One D1 read finds the token by its current or a retired hash. Then a
/// live token is revoked (reason `leaked`), a rotated-away token in its grace period loses its
/// grace, a revoked token KV still caches is purged again, and the report's URL is kept for the
/// owner (the newest [`crate::model::MAX_LEAK_URLS`] distinct ones, [`record_url`]).
async fn judge<B: Backend>(
    ctx: &Ctx<'_, B>,
    m: &Match,
    hash: TokenHash,
    deferred: &mut Vec<Deferred>,
) -> Result<&'static str, Error> {
    let Some((rec, retired)) = ctx.backend.token_by_any_hash(&hash).await? else {
        ctx.isolate.mark_inactive(hash, ctx.now);
        return Ok(FALSE);
    };
    let url = secret_scanning::keepable_url(m.url.as_deref());
    let source = m
        .source
        .as_deref()
        .map(|s| s.chars().take(MAX_SOURCE_CHARS).collect::<String>());
    let leaked =
        |token_id: String, kind: &'static str, newly: bool, grace_ended: bool| Event::TokenLeaked {
            token_id,
            kind,
            newly,
            grace_ended,
            url: url.clone(),
            source: source.clone(),
        };
    if let Some(retired) = retired {
        // A rotated-away token: still working in its grace period, the grace ends now (the
        // current token, held by the owner, is untouched); else it is dead already.
        let (mut pat_id, mut grace_ended) = (rec.id, false);
        if retired.in_grace(ctx.now) {
            if let Some(ended) = lifecycle::end_grace(ctx, hash).await? {
                deferred.extend(ended.deferred);
                grace_ended = ended.was_in_grace;
                pat_id = ended.token_id;
            }
        }
        record_url(ctx, &pat_id, url.as_deref()).await?;
        ctx.isolate
            .emit(leaked(pat_id, rec.kind.as_str(), false, grace_ended));
        return Ok(TRUE);
    }
    let live = rec.revoked_at.is_none() && rec.expires_at > ctx.now;
    // Revoked before, but still in KV (a delete that failed): the repeated revocation purges it.
    let cached = !live
        && rec.revoked_at.is_some()
        && matches!(ctx.backend.get_grant(&hash).await, Ok(Some(_)) | Err(_));
    let mut newly = false;
    if live || cached {
        let note = RevocationNote {
            reason: "leaked",
            url: url.clone(),
            message: None,
        };
        if let Some(done) = revoke_record_because(ctx, &rec.id, &hash, Some(&note)).await? {
            deferred.extend(done.deferred);
            newly = done.newly;
            ctx.isolate.emit(revoked_event(&rec, done.newly, "leaked"));
        }
    }
    record_url(ctx, &rec.id, url.as_deref()).await?;
    ctx.isolate
        .emit(leaked(rec.id, rec.kind.as_str(), newly, false));
    Ok(TRUE)
}

/// Judges a reported refresh token of an app's grant (`pgr_`): `true_positive` if patgate issued
/// it, whatever its state; its grant (every access and refresh token issued from it) ends
/// (`token_revoked`) if it is still live.
async fn judge_refresh<B: Backend>(
    ctx: &Ctx<'_, B>,
    m: &Match,
    hash: TokenHash,
    deferred: &mut Vec<Deferred>,
) -> Result<&'static str, Error> {
    let Some(rec) = ctx.backend.refresh_token(&hash).await? else {
        return Ok(FALSE);
    };
    let mut newly = false;
    if let Some(g) = ctx.backend.grant(&rec.grant_id).await? {
        if let Some(done) = super::grants::end_grant(ctx, &g, GrantEnd::TokenRevoked).await? {
            newly = done.newly;
            deferred.extend(done.deferred);
        }
    }
    ctx.isolate.emit(Event::TokenLeaked {
        token_id: rec.grant_id,
        kind: "refresh",
        newly,
        grace_ended: false,
        url: secret_scanning::keepable_url(m.url.as_deref()),
        source: m
            .source
            .as_deref()
            .map(|s| s.chars().take(MAX_SOURCE_CHARS).collect()),
    });
    Ok(TRUE)
}

/// Keeps a report's URL for the token's owner. A failure fails the report (503): GitHub sends it
/// again, and every step before this one is safe to repeat.
async fn record_url<B: Backend>(
    ctx: &Ctx<'_, B>,
    token_id: &str,
    url: Option<&str>,
) -> Result<(), Error> {
    if let Some(url) = url {
        ctx.backend.record_leak_url(token_id, url, ctx.now).await?;
    }
    Ok(())
}

/// The keys that may know `key_id`: the inline keys, then the fetched ones (cached per isolate
/// for [`KEYS_TTL_SECS`]; an unknown key identifier refetches, as GitHub rotates keys; if the URL
/// fails, the last keys fetched are used for up to [`KEYS_MAX_STALE_SECS`]).
///
/// The key URL is asked at most once per [`KEYS_REFETCH_SECS`] per isolate, whatever the outcome
/// of the last try: while it fails (or times out: the runtime gives up after a few seconds and
/// refuses an oversized document), requests with an unknown key identifier are answered from
/// the cache (401) or with 503, without an outbound fetch each.
async fn keys_for<B: Backend>(ctx: &Ctx<'_, B>, key_id: &str) -> Result<Rc<KeySet>, Error> {
    let lc = &ctx.cfg.lifecycle;
    let inline = lc.scanning_keys.clone().unwrap_or_default();
    if inline.get(key_id).is_some() {
        return Ok(inline);
    }
    let Some(url) = lc.scanning_keys_url.as_deref() else {
        return Ok(inline);
    };
    let cached = ctx.isolate.scanning_keys();
    if let Some((at, keys)) = &cached {
        let age = ctx.now - at;
        if age < KEYS_TTL_SECS && (keys.get(key_id).is_some() || age < KEYS_REFETCH_SECS) {
            return Ok(keys.clone());
        }
    }
    let stale_or = |why: String| match &cached {
        Some((at, keys)) if ctx.now - at < KEYS_MAX_STALE_SECS => Ok(keys.clone()),
        _ => Err(Error::Unavailable(format!(
            "secret scanning keys from {url}: {why}"
        ))),
    };
    if !ctx
        .isolate
        .claim_scanning_keys_fetch(ctx.now, KEYS_REFETCH_SECS)
    {
        return stale_or(format!(
            "asked less than {KEYS_REFETCH_SECS} s ago (and it failed or lacked this key); not asked again yet"
        ));
    }
    let fetched = match ctx.backend.fetch_jwks(url).await {
        Ok(text) => KeySet::parse(&text).map_err(|e| format!("keys unusable: {e}")),
        Err(e) => Err(e.0),
    };
    match fetched {
        Ok(keys) => {
            let keys = Rc::new(keys);
            ctx.isolate.store_scanning_keys(ctx.now, keys.clone());
            Ok(keys)
        }
        Err(e) => {
            ctx.isolate.warn(format!(
                "fetching the secret scanning keys failed (not asked again for {KEYS_REFETCH_SECS} s): {e}"
            ));
            stale_or(e)
        }
    }
}
