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

use super::events::Event;
use super::revoke::revoke_record_because;
use super::{decision, Ctx, Deferred, Outcome};
use crate::error::Error;
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
/// An unknown key identifier refetches the keys, at most once per this many seconds.
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
            Err(_) => FALSE,
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

/// Kills one reported token if it is live: `true_positive` if D1 knows it (revoked now or
/// before, or a rotated-away token whose grace this ends), `false_positive` otherwise. A token KV
/// does not know (never issued, or revoked or expired long ago) costs no D1 read.
async fn judge<B: Backend>(
    ctx: &Ctx<'_, B>,
    m: &Match,
    hash: TokenHash,
    deferred: &mut Vec<Deferred>,
) -> Result<&'static str, Error> {
    if !decision::may_exist(ctx, &hash).await {
        return Ok(FALSE);
    }
    let url = secret_scanning::keepable_url(m.url.as_deref());
    let source = m
        .source
        .as_deref()
        .map(|s| s.chars().take(MAX_SOURCE_CHARS).collect::<String>());
    if let Some(rec) = ctx.backend.token_by_hash(&hash).await? {
        let note = RevocationNote {
            reason: "leaked",
            url: url.clone(),
            message: None,
        };
        let Some(done) = revoke_record_because(ctx, &rec.id, &hash, Some(&note)).await? else {
            return Ok(FALSE);
        };
        deferred.extend(done.deferred);
        ctx.isolate.emit(Event::revoked(&rec, done.newly, "leaked"));
        ctx.isolate.emit(Event::TokenLeaked {
            token_id: rec.id,
            kind: rec.kind.as_str(),
            newly: done.newly,
            grace_ended: false,
            url,
            source,
        });
        return Ok(TRUE);
    }
    // A rotated-away token still working in its grace period: the grace ends now.
    if let Some(ended) = super::lifecycle::end_grace(ctx, hash).await? {
        deferred.extend(ended.deferred);
        ctx.isolate.emit(Event::TokenLeaked {
            token_id: ended.token_id,
            kind: "pat",
            newly: false,
            grace_ended: ended.was_in_grace,
            url,
            source,
        });
        return Ok(TRUE);
    }
    Ok(FALSE)
}

/// The keys that may know `key_id`: the inline keys, then the fetched ones (cached per isolate
/// for [`KEYS_TTL_SECS`]; an unknown key identifier refetches at most every
/// [`KEYS_REFETCH_SECS`], as GitHub rotates keys; if the URL fails, the last keys fetched are
/// used for up to [`KEYS_MAX_STALE_SECS`]).
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
        Err(e) => match cached {
            Some((at, keys)) if ctx.now - at < KEYS_MAX_STALE_SECS => Ok(keys),
            _ => Err(Error::Unavailable(format!(
                "secret scanning keys from {url}: {e}"
            ))),
        },
    }
}
