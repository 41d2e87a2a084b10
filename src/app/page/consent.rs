//! `GET /authorize` and `POST /authorize/consent`: the authorization endpoint as the signed-in
//! user sees it. The decisions are the OAuth server's (`server::authorize`: check, begin,
//! answer); this file identifies the user exactly as the token page does (sending someone not
//! signed in to the sign-in and back), renders the consent page (its CSP lets the answer end at
//! the application's redirect URI, nothing else), and holds the answer to the page's cross-site
//! checks (same origin, the CSRF token bound to the session).

use super::authz_views;
use super::identity::{checked_form, csrf_for, identify, viewer};
use super::respond::{html, Fail};
use super::session::Key;
use super::{assets, respond};
use crate::app::ctx::{Ctx, Outcome};
use crate::app::server::{self, Next, Refused};
use crate::error::Error;
use crate::http::{Request, Response};
use crate::store::Backend;

/// `GET /authorize`.
pub(super) async fn authorize<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
) -> Result<Outcome, Fail> {
    let query = req.query.as_deref().unwrap_or("");
    let checked = match server::check_authorization(ctx, query.as_bytes()).await? {
        Ok(c) => c,
        Err(Refused::Page(why)) => return Ok(refused(&why).into()),
        Err(Refused::Redirect(to)) => return Ok(found(&to).into()),
    };
    let who = match identify(ctx, req, key).await {
        Ok(w) => w,
        Err(Fail::SignInRequired(None)) if ctx.cfg.page.dev_sign_in => {
            let back = format!("/authorize?{query}");
            return Ok(
                respond::redirect(&format!("/tokens/sign-in?return_to={}", encode(&back))).into(),
            );
        }
        Err(f) => return Err(f),
    };
    match server::begin_authorization(ctx, checked, &who.user).await? {
        Next::Redirect(to) => Ok(found(&to).into()),
        Next::Consent(v) => {
            let csrf = csrf_for(key, &who)?;
            let page = authz_views::consent(&viewer(&who, &csrf), &csrf, &v);
            Ok(with_form_target(html(200, page), &v.form_target).into())
        }
    }
}

/// `POST /authorize/consent`: Approve or Deny.
pub(super) async fn answer<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
) -> Result<Outcome, Fail> {
    let who = identify(ctx, req, key).await?;
    let f = checked_form(ctx, req, key, &who.binding)?;
    let approve = match f.one("decision")? {
        "approve" => true,
        "deny" => false,
        _ => return Err(Error::InvalidRequest("decision must be approve or deny".into()).into()),
    };
    match server::answer_consent(ctx, f.one("handle")?, &who.user, approve).await? {
        Ok(to) => Ok(respond::redirect(&to).into()),
        Err(why) => Ok(refused(&why).into()),
    }
}

/// A refusal that must not go back to the application: a 400 page.
fn refused(why: &str) -> Response {
    html(400, authz_views::authorize_error(None, why))
}

/// 302 Found to the application (RFC 6749 4.1.2).
fn found(location: &str) -> Response {
    let mut r = respond::redirect(location);
    r.status = 302;
    r
}

fn with_form_target(mut r: Response, target: &str) -> Response {
    for (k, v) in &mut r.headers {
        if *k == "content-security-policy" {
            *v = assets::csp_with_form_target(target);
        }
    }
    r
}

/// Percent-encodes everything but unreserved characters (a query parameter's value).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
