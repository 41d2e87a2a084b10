//! The gate (README "Protect an API"): on a host other than the issuer's, a request whose
//! path falls under a gate route is checked (token, method, scopes) with the same decision as
//! introspection, then either answered here (RFC 6750 / RFC 9728 challenges) or handed to the
//! runtime layer to forward, with the caller's identity. Also serves each route's RFC 9728
//! protected resource metadata.
//!
//! Sans-IO towards the upstream: this module says what to forward; the runtime does the fetch
//! and passes the body streams through untouched.
//!
//! It owns the gate's answers (`answer.rs`), the check of a request on a route (`check.rs`) and
//! the routes' metadata (`metadata.rs`); it may use the shared pieces of `app/` (the isolate's
//! route table, API resources), the tokens capability's decision through its face, storage
//! traits and the pure gate rules (`crate::gate`: route matching, what is forwarded). The runtime
//! calls [`gate`] for requests on hosts other than the issuer's; the admin API edits the routes.

mod answer;
mod check;
mod metadata;

pub use answer::{bad_gateway, Forward, GateAnswer, GateRequest};
pub use check::ASSERTION_LIFETIME_SECS;

use crate::app::ctx::Ctx;
use crate::app::isolate::Lookup;
use crate::error::Error;
use crate::gate::cors;
use crate::gate::matching;
use crate::gate::route::GateRoute;
use crate::store::Backend;
use answer::{finish, preflight};
use metadata::METADATA_PATH;
use std::rc::Rc;

/// Loads the route table through the isolate cache (one value for all routes; the registry
/// tables' policy: a failed refresh serves the cached table within `registry_max_stale_secs`).
pub async fn load_routes<B: Backend>(ctx: &Ctx<'_, B>) -> Result<Rc<Vec<GateRoute>>, Error> {
    let (c, now) = (ctx.cfg, ctx.now);
    let lookup = ctx
        .isolate
        .lookup_routes(now, c.registry_cache_secs, c.registry_max_stale_secs);
    match lookup {
        Lookup::Fresh(Some(t)) => Ok(t),
        Lookup::Stale(Some(old)) => match ctx.backend.list_routes().await {
            Ok(rows) => {
                let t = Rc::new(rows);
                ctx.isolate.store_routes(now, t.clone());
                Ok(t)
            }
            Err(_) => Ok(old),
        },
        _ => {
            let t = Rc::new(ctx.backend.list_routes().await?);
            ctx.isolate.store_routes(now, t.clone());
            Ok(t)
        }
    }
}

/// Whether `req` is gate traffic, and if so the answer or what to forward.
pub async fn gate<B: Backend>(ctx: &Ctx<'_, B>, req: &GateRequest<'_>) -> GateAnswer {
    if matching::is_issuer_host(&ctx.cfg.issuer, req.authority) {
        return GateAnswer::NotGate;
    }
    let routes = match load_routes(ctx).await {
        Ok(r) => r,
        Err(e) => {
            ctx.isolate.error(&e);
            return GateAnswer::Respond(finish(e.into_response()).into());
        }
    };
    if let Some(suffix) = req.path.strip_prefix(METADATA_PATH) {
        if let Some(r) =
            matching::find_by_metadata_suffix(&routes, &ctx.cfg.issuer, req.authority, suffix)
        {
            let resp = match metadata::metadata(ctx, req, r).await {
                Ok(r) => r,
                Err(e) => {
                    ctx.isolate.error(&e);
                    e.into_response()
                }
            };
            return GateAnswer::Respond(finish(resp).into());
        }
    }
    let Some(r) = matching::find(&routes, &ctx.cfg.issuer, req.authority, req.path) else {
        return GateAnswer::NotGate;
    };
    if let Some(policy) = &r.cors {
        // Before any token is looked at: a browser's preflight never carries one.
        if cors::is_preflight(req.method, &req.cors) {
            return GateAnswer::Respond(finish(preflight(ctx, r, policy, &req.cors)).into());
        }
    }
    let answer = match check::check(ctx, req, r).await {
        Ok(a) => a,
        Err(e) => {
            ctx.isolate.error(&e);
            GateAnswer::Respond(finish(e.into_response()).into())
        }
    };
    let Some(policy) = &r.cors else {
        return answer;
    };
    match answer {
        GateAnswer::Respond(mut o) => {
            o.response
                .headers
                .extend(policy.actual(req.cors.origin, true));
            GateAnswer::Respond(o)
        }
        GateAnswer::Forward(mut f) => {
            f.cors = Some(policy.actual(req.cors.origin, false));
            GateAnswer::Forward(f)
        }
        GateAnswer::NotGate => GateAnswer::NotGate,
    }
}
