//! RFC 7591 dynamic client registration (`POST /oauth/register`), for clients that still use it
//! (the MCP specification prefers metadata documents). Off unless `DYNAMIC_REGISTRATION=true`
//! (then `404` like any unknown path); rate limited per IP (`RL_REGISTER_IP`). The request is
//! validated by `oauth::registration`; the client is public (`none`: a requested secret method
//! is replaced, RFC 7591 3.2.1) and gets a `pgd_` id tagged with the first `CLIENT_ID_KEYS` key,
//! so that a forged id costs no storage read. Registrations unused for
//! `DYNAMIC_CLIENT_UNUSED_DAYS` expire (`app::clients::expire_unused`, from the cron).

use crate::app::clients;
use crate::app::ctx::{Ctx, Outcome};
use crate::app::ratelimit;
use crate::authz::records::{ClientProfile, ClientSource};
use crate::authz::secrets::generate_dynamic_id;
use crate::error::Error;
use crate::events::Event;
use crate::http::{Request, Response};
use crate::oauth::client_metadata::GrantType;
use crate::oauth::registration::{parse_request, RegistrationResponse};
use crate::store::{Backend, Limit, Write};

/// `POST /oauth/register`.
pub async fn serve<B: Backend>(ctx: &Ctx<'_, B>, req: &Request) -> Result<Outcome, Error> {
    let cfg = &ctx.cfg.clients;
    let Some(key) = cfg.id_keys.first().filter(|_| cfg.dynamic_registration) else {
        return Err(Error::NotFound);
    };
    ratelimit::count(ctx, Limit::RegistrationsPerIp, ratelimit::client_ip(req)).await?;
    if !req.has_media_type("application/json") {
        return Err(Error::UnsupportedMediaType("application/json"));
    }
    let meta = match parse_request(&req.body, ctx.cfg.redirect_policy()) {
        Ok(m) => m,
        Err(e) => {
            ctx.isolate
                .error(&Error::InvalidRequest(format!("registration refused: {e}")));
            return Ok(Response::json(400, &e.body()).into());
        }
    };
    let id = generate_dynamic_id(key).map_err(|e| Error::Internal(format!("rng: {e}")))?;
    let client = clients::self_registered(ctx.cfg, &id);
    let profile = ClientProfile {
        source: ClientSource::Dynamic,
        display_name: meta.client_name.clone(),
        logo_uri: meta.logo_uri.clone(),
        redirect_uris: meta.redirect_uris.clone(),
        grant_types: Some(meta.grant_types.clone()),
        refresh_tokens: meta.uses(GrantType::RefreshToken),
        metadata_expires_at: None,
        // Registration counts as a use: unused registrations expire from here.
        last_used_at: Some(ctx.now),
    };
    match ctx
        .backend
        .register_client(&client, &profile, ctx.now)
        .await?
    {
        Write::Done => {}
        // 132 random bits: a taken id is a fault, not a collision worth retrying.
        other => {
            return Err(Error::Unavailable(format!(
                "registering client {id}: {other:?}"
            )))
        }
    }
    ctx.isolate.emit(Event::ClientRegistered {
        client_id: id.clone(),
        source: ClientSource::Dynamic.as_db(),
    });
    Ok(Response::json(201, &RegistrationResponse::new(id, ctx.now, &meta)).into())
}
