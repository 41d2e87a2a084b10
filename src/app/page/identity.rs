//! Who is signed in: Cloudflare Access's `Cf-Access-Jwt-Assertion` (verified like the management
//! API's user JWT), or, in local development only (`DEV_SIGN_IN`), a signed session cookie from
//! the sign-in form; the CSRF token bound to either; and the cross-site checks of every POST.

use super::form::{self, PageForm};
use super::respond::{html, redirect, rng, Fail};
use super::session::{self, Key, Session};
use super::views::{self, SignOut, Viewer};
use crate::app::ctx::{Ctx, Outcome};
use crate::app::user;
use crate::error::Error;
use crate::http::Request;
use crate::store::Backend;

/// The signed-in user and what their CSRF tokens are bound to.
pub(super) struct Who {
    pub user: String,
    pub binding: Vec<u8>,
    pub access: bool,
}

pub(super) async fn identify<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
) -> Result<Who, Fail> {
    if let Some(jwt) = req.get_header("cf-access-jwt-assertion")? {
        return match user::verify(ctx, jwt).await {
            Ok(user) => Ok(Who {
                user,
                binding: session::binding_of("access", jwt),
                access: true,
            }),
            Err(Error::InvalidToken { cause, .. }) => Err(Fail::SignInRequired(Some(cause))),
            Err(e) => Err(e.into()),
        };
    }
    if ctx.cfg.page.dev_sign_in {
        let cookie = session::cookie(req.get_header("cookie")?, session::SESSION_COOKIE);
        if let Some(s) = cookie.and_then(|v| Session::decode(v, key, ctx.now)) {
            return Ok(Who {
                user: s.user,
                binding: session::binding_of("session", &s.id),
                access: false,
            });
        }
    }
    Err(Fail::SignInRequired(None))
}

pub(super) fn csrf_for(key: &Key, who: &Who) -> Result<String, Fail> {
    session::csrf_token(key, &who.binding).map_err(rng)
}

pub(super) fn viewer<'a>(who: &'a Who, csrf: &'a str) -> Viewer<'a> {
    Viewer {
        user: &who.user,
        sign_out: if who.access {
            SignOut::Access
        } else {
            SignOut::Dev { csrf }
        },
    }
}

/// The cross-site checks of every POST: origin, then form, then the CSRF token for `binding`.
pub(super) fn checked_form(
    ctx: &Ctx<'_, impl Backend>,
    req: &Request,
    key: &Key,
    binding: &[u8],
) -> Result<PageForm, Fail> {
    form::same_origin(req, &form::origin_of(&ctx.cfg.issuer)).map_err(Fail::Forbidden)?;
    let f = PageForm::parse(req)?;
    if !session::csrf_valid(key, binding, f.one("csrf")?) {
        return Err(Fail::Forbidden("missing or invalid CSRF token"));
    }
    Ok(f)
}

pub(super) fn sign_in_form<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    user: &str,
    error: Option<&str>,
) -> Result<Outcome, Fail> {
    if !ctx.cfg.page.dev_sign_in {
        return Err(Error::NotFound.into());
    }
    let cookies = req.get_header("cookie")?;
    if error.is_none() {
        let signed_in = session::cookie(cookies, session::SESSION_COOKIE)
            .and_then(|v| Session::decode(v, key, ctx.now));
        if signed_in.is_some() {
            return Ok(redirect(&return_to(req).unwrap_or_else(|| "/tokens".into())).into());
        }
    }
    let pre = match session::cookie(cookies, session::SIGNIN_COOKIE) {
        Some(v) if v.len() == 43 => v.to_owned(),
        _ => session::random_b64(32).map_err(rng)?,
    };
    let csrf = session::csrf_token(key, &session::binding_of("signin", &pre)).map_err(rng)?;
    let status = if error.is_some() { 400 } else { 200 };
    let action = match return_to(req) {
        Some(_) => format!("/tokens/sign-in?{}", req.query.as_deref().unwrap_or("")),
        None => "/tokens/sign-in".to_owned(),
    };
    Ok(html(status, views::sign_in(&csrf, user, error, &action))
        .with_header(
            "set-cookie",
            session::set_cookie(session::SIGNIN_COOKIE, &pre, 3600),
        )
        .into())
}

pub(super) fn sign_in<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
) -> Result<Outcome, Fail> {
    if !ctx.cfg.page.dev_sign_in {
        return Err(Error::NotFound.into());
    }
    let pre = session::cookie(req.get_header("cookie")?, session::SIGNIN_COOKIE)
        .ok_or(Fail::Forbidden("no sign-in cookie"))?;
    let f = checked_form(ctx, req, key, &session::binding_of("signin", pre))?;
    let user = f.one("user")?.trim();
    if !session::valid_user(user) {
        return sign_in_form(
            ctx,
            req,
            key,
            user,
            Some("Enter a user id of 1 to 64 letters, digits or . _ @ -"),
        );
    }
    let s = Session::new(user, ctx.now).map_err(rng)?;
    Ok(
        redirect(&return_to(req).unwrap_or_else(|| "/tokens".into()))
            .with_header(
                "set-cookie",
                session::set_cookie(
                    session::SESSION_COOKIE,
                    &s.encode(key),
                    session::SESSION_SECS,
                ),
            )
            .with_header(
                "set-cookie",
                session::set_cookie(session::SIGNIN_COOKIE, "", 0),
            )
            .into(),
    )
}

pub(super) fn sign_out<B: Backend>(
    ctx: &Ctx<'_, B>,
    req: &Request,
    key: &Key,
    who: &Who,
) -> Result<Outcome, Fail> {
    checked_form(ctx, req, key, &who.binding)?;
    if who.access {
        return Ok(redirect(views::ACCESS_LOGOUT).into());
    }
    Ok(redirect("/tokens/sign-in")
        .with_header(
            "set-cookie",
            session::set_cookie(session::SESSION_COOKIE, "", 0),
        )
        .into())
}

/// Where the sign-in sends the user back (`?return_to=`): only an authorization request on this
/// host (`/authorize?...`, printable ASCII without spaces or backslashes), so that the sign-in
/// is no open redirector. Anything else: `None` (the token list).
pub(super) fn return_to(req: &Request) -> Option<String> {
    let query = req.query.as_deref()?;
    let raw = query
        .split('&')
        .find_map(|p| p.strip_prefix("return_to="))?;
    let to = crate::http::percent_decode(raw.as_bytes()).ok()?;
    let ok = to.starts_with("/authorize?")
        && to.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !to.contains("/..");
    ok.then_some(to)
}
