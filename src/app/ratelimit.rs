//! Rate limits: brute force and abuse get `429` with `Retry-After` past configured rates
//! (README "Security"). Counting goes to a [`RateLimiter`] (Cloudflare's Rate Limiting binding,
//! shared by the isolates of a location); a key found over its limit is also blocked in this
//! isolate for the limit's period, so that even a correct secret is refused meanwhile. A limiter
//! that fails lets the request through: a limiter outage must not lock everyone out.

use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::events::Event;
use crate::http::Request;
use crate::store::{Backend, Limit};

/// The caller's IP as Cloudflare reports it (`CF-Connecting-IP`), or `unknown`; borrowed from
/// the request (no copy per request).
pub fn client_ip(req: &Request) -> &str {
    req.get_header("cf-connecting-ip")
        .ok()
        .flatten()
        .filter(|ip| !ip.is_empty() && ip.len() <= 64)
        .unwrap_or("unknown")
}

fn name(limit: Limit) -> &'static str {
    match limit {
        Limit::FailedAuthPerClient => "failed client authentications per client id",
        Limit::FailedAuthPerIp => "failed client authentications per IP",
        Limit::PatCreationsPerUser => "PAT creations per user",
        Limit::TokenEndpointPerIp => "token endpoint calls per IP",
        Limit::RotationsPerPat => "rotations of this token",
        Limit::RegistrationsPerIp => "client registrations per IP",
        Limit::MetadataFetches => "client metadata document fetches",
    }
}

fn limited(limit: Limit) -> Error {
    Error::RateLimited(name(limit), Limit::PERIOD_SECS)
}

/// Refuses a key this isolate found over `limit` within the period.
pub fn check_blocked<B>(ctx: &Ctx<'_, B>, limit: Limit, key: &str) -> Result<(), Error> {
    if ctx.isolate.is_blocked(limit, key, ctx.now) {
        return Err(limited(limit));
    }
    Ok(())
}

/// Counts one event for `key`; past the limit: blocked in this isolate for the period, and 429.
pub async fn count<B: Backend>(ctx: &Ctx<'_, B>, limit: Limit, key: &str) -> Result<(), Error> {
    check_blocked(ctx, limit, key)?;
    match ctx.backend.over_limit(limit, key).await {
        Ok(false) => Ok(()),
        Ok(true) => {
            ctx.isolate
                .block(limit, key, ctx.now + Limit::PERIOD_SECS as i64);
            ctx.isolate.emit(Event::RateLimited {
                limit: name(limit),
                key: key.to_owned(),
            });
            Err(limited(limit))
        }
        Err(e) => {
            ctx.isolate.emit(Event::Warning {
                message: format!("rate limiter failed, request let through: {}", e.0),
            });
            Ok(())
        }
    }
}

/// A failed client or resource authentication: counted per client id and per IP. Returns the
/// error to answer: the authentication failure, or 429 once past a limit.
pub async fn failed_auth<B: Backend>(ctx: &Ctx<'_, B>, id: &str, ip: &str, e: Error) -> Error {
    ctx.isolate.emit(Event::ClientAuthFailed {
        client_id: id.to_owned(),
        ip: ip.to_owned(),
        reason: match &e {
            Error::InvalidClient(cause) => cause.clone(),
            other => other.code().to_owned(),
        },
    });
    if let Err(limited) = count(ctx, Limit::FailedAuthPerClient, id).await {
        return limited;
    }
    if let Err(limited) = count(ctx, Limit::FailedAuthPerIp, ip).await {
        return limited;
    }
    e
}
