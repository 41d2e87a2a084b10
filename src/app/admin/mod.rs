//! The admin API (`/admin/*`): the operator's API for clients ([`clients`]; [`confidential`]:
//! a public client, self-registered ones too, made confidential) and API resources
//! ([`registry`]), gate routes ([`routes`]), webhook endpoints ([`webhooks`]) and their deliveries
//! ([`deliveries`]), the inventory of tokens across users ([`pats`]: filters, usage, revoke
//! with a reason), and users' authorization grants ([`grants`]). Authenticated with the
//! `ADMIN_TOKEN` secret (`Authorization: Bearer`, constant-time compare); without that secret the
//! admin API does not exist (404). Every write is logged as one `admin.change` event. All changes
//! go to D1; this isolate forgets its cached copies at once. It may use the shared pieces of
//! `app/`, the OAuth server's face (to forget the cached metadata, which lists scopes and clients),
//! the webhooks' face (the limit on endpoints), the tokens' face (the one status, the one
//! revocation path, usage, ending a grant), storage traits and the pure layer; only the router
//! uses it.

mod checks;
mod clients;
mod confidential;
mod deliveries;
mod grants;
mod pats;
mod registry;
mod routes;
mod webhooks;

use crate::app::ctx::{Ctx, Outcome};
use crate::app::server;
use crate::error::Error;
use crate::events::Event;
use crate::http::{Method, Request, Response};
use crate::secret::{ct_eq_str, ClientSecret};
use crate::store::Backend;

fn authorize(ctx: &Ctx<'_, impl Backend>, req: &Request) -> Result<(), Error> {
    let Some(expected) = ctx
        .cfg
        .admin_token
        .as_ref()
        .map(ClientSecret::expose_secret)
    else {
        return Err(Error::NotFound);
    };
    let presented = req.bearer()?.ok_or(Error::MissingBearer)?;
    if ct_eq_str(presented, expected) {
        Ok(())
    } else {
        Err(Error::InvalidToken {
            description: "the admin token is not valid",
            cause: "wrong admin token".into(),
        })
    }
}

/// The admin API's entry point. Every call that is not a read is logged as one `admin.change`
/// security event with its outcome (failed admin authentication included).
pub async fn handle<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    rest: &str,
) -> Result<Outcome, Error> {
    let result = dispatch(ctx, req, rest).await;
    if req.method != Method::Get {
        let (status, outcome) = match &result {
            Ok(r) => (r.response.status, "ok"),
            Err(e) => (e.status(), e.code()),
        };
        ctx.isolate.emit(Event::AdminChange {
            method: match req.method {
                Method::Post => "POST",
                Method::Put => "PUT",
                Method::Patch => "PATCH",
                Method::Delete => "DELETE",
                _ => "OTHER",
            },
            target: rest.chars().take(200).collect(),
            status,
            outcome,
        });
    }
    result
}

async fn dispatch<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    rest: &str,
) -> Result<Outcome, Error> {
    authorize(ctx, req)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let result = match parts.as_slice() {
        // The token inventory answers with work after the response (a revocation's KV deletes).
        ["pats", more @ ..] => pats::handle(ctx, req, more).await,
        // One endpoint's deliveries, its test ping, enabling it again.
        ["webhooks", id, more @ ..]
            if matches!(more.first(), Some(&("deliveries" | "ping" | "enable"))) =>
        {
            let w = ctx.backend.webhook(id).await?.ok_or(Error::NotFound)?;
            deliveries::handle(ctx, req, &w, more).await.map(Into::into)
        }
        _ => route(ctx, req, &parts).await.map(Into::into),
    };
    if req.method != Method::Get {
        // Scopes, clients and their state are in the discovery document.
        server::forget_metadata();
    }
    result
}

/// The table of `/admin/*`: (path segments, method) to the handler.
async fn route<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    parts: &[&str],
) -> Result<Response, Error> {
    match (parts, req.method) {
        (["routes", ..], _) => routes::handle(ctx, req, &parts[1..]).await,
        (["webhooks", ..], _) => webhooks::handle(ctx, req, &parts[1..]).await,
        (["grants"], Method::Get) => grants::list(ctx, req).await,
        (["grants", id], Method::Delete) => grants::revoke(ctx, id).await,
        (["grants"], _) => Err(Error::MethodNotAllowed("GET")),
        (["grants", _], _) => Err(Error::MethodNotAllowed("DELETE")),
        (["clients"], Method::Get) => clients::list(ctx).await,
        (["clients"], Method::Post) => clients::create(ctx, req).await,
        (["clients", id], Method::Get) => clients::get(ctx, id).await,
        (["clients", id], Method::Patch) => clients::update(ctx, req, id).await,
        (["clients", id], Method::Delete) => clients::delete(ctx, req, id).await,
        (["clients", id, "rotate-secret"], Method::Post) => {
            clients::rotate_secret(ctx, req, id).await
        }
        (["clients", id, "confidential"], Method::Post) => {
            confidential::make_confidential(ctx, req, id).await
        }
        (["resources"], Method::Get) => registry::list_resources(ctx).await,
        (["resources"], Method::Post) => registry::create_resource(ctx, req).await,
        (["resources", id], Method::Get) => registry::get_resource(ctx, id).await,
        (["resources", id], Method::Patch) => registry::update_resource(ctx, req, id).await,
        (["resources", id], Method::Delete) => registry::delete_resource(ctx, req, id).await,
        (["resources", id, "rotate-secret"], Method::Post) => {
            registry::rotate_resource_secret(ctx, req, id).await
        }
        (["clients" | "resources"], _) => Err(Error::MethodNotAllowed("GET, POST")),
        (["clients" | "resources", _], _) => Err(Error::MethodNotAllowed("GET, PATCH, DELETE")),
        (["clients" | "resources", _, "rotate-secret"] | ["clients", _, "confidential"], _) => {
            Err(Error::MethodNotAllowed("POST"))
        }
        _ => Err(Error::NotFound),
    }
}

/// Every admin JSON body type (fuzzing and property tests).
#[cfg(test)]
pub fn parse_bodies(body: &[u8]) {
    registry::parse_bodies(body);
    clients::parse_bodies(body);
    webhooks::parse_bodies(body);
}
