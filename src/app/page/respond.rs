//! The page's answers: HTML with the headers every page carries (CSP, no framing, no caching),
//! redirects, the icon, and the failure pages (a message for the user, the cause to the log).

use super::{assets, views};
use crate::app::ctx::Ctx;
use crate::error::Error;
use crate::events::Event;
use crate::http::{Method, Request, Response};
use crate::store::Backend;
use maud::Markup;

/// Why a page request fails (rendered as HTML, never JSON).
#[derive(Debug)]
pub(super) enum Fail {
    Core(Error),
    /// Cross-site request or bad CSRF token: 403, nothing changed.
    Forbidden(&'static str),
    /// No valid identity; the cause is logged.
    SignInRequired(Option<String>),
    /// `SESSION_SECRET` is missing or too short.
    NotConfigured,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Core(e)
    }
}

pub(super) fn rng(e: getrandom::Error) -> Fail {
    Fail::Core(Error::Internal(format!("randomness unavailable: {e}")))
}

/// Headers on every page response.
fn secure_headers(mut r: Response) -> Response {
    r.headers.extend([
        ("content-security-policy", assets::csp()),
        ("x-content-type-options", "nosniff".to_owned()),
        ("referrer-policy", "no-referrer".to_owned()),
        ("cache-control", "no-store".to_owned()),
        ("x-frame-options", "DENY".to_owned()),
        ("cross-origin-opener-policy", "same-origin".to_owned()),
    ]);
    r
}

pub(super) fn html(status: u16, markup: Markup) -> Response {
    let mut r = Response::empty(status);
    r.headers
        .push(("content-type", "text/html; charset=utf-8".to_owned()));
    r.body = markup.into_string().into_bytes();
    secure_headers(r)
}

/// 303 See Other (POST/redirect/GET).
pub(super) fn redirect(location: &str) -> Response {
    secure_headers(Response::empty(303).with_header("location", location.to_owned()))
}

pub(super) fn icon() -> Response {
    let mut r = Response::empty(200);
    r.headers.extend([
        ("content-type", "image/svg+xml".to_owned()),
        ("cache-control", "public, max-age=86400".to_owned()),
        ("content-security-policy", "default-src 'none'".to_owned()),
        ("x-content-type-options", "nosniff".to_owned()),
    ]);
    r.body = assets::ICON_SVG.as_bytes().to_vec();
    r
}

pub(super) fn fail_page<B: Backend>(ctx: &Ctx<'_, B>, req: &Request, f: Fail) -> Response {
    let msg = |status, title, text: &str| html(status, views::message(None, title, text, None));
    let back = Some(("/tokens", "Back to your tokens"));
    match f {
        Fail::Forbidden(why) => {
            let r = html(
                403,
                views::message(
                    None,
                    "Request refused",
                    "This request did not come from this page (or the page was open too long). \
                     Nothing was changed. Reload the page and try again.",
                    back,
                ),
            );
            log_cause(
                ctx,
                403,
                "forbidden",
                format!("token page: refused {}: {why}", req.path),
            );
            r
        }
        Fail::SignInRequired(cause) => {
            // A presented but invalid Access assertion gets the 401 page, not the dev form.
            if ctx.cfg.page.dev_sign_in && req.method == Method::Get && cause.is_none() {
                return redirect("/tokens/sign-in");
            }
            let text = if ctx.cfg.page.dev_sign_in {
                "Sign in first."
            } else {
                "This page is for signed-in members of the organisation. Open it through your \
                 organisation's sign-in (Cloudflare Access)."
            };
            let link = ctx
                .cfg
                .page
                .dev_sign_in
                .then_some(("/tokens/sign-in", "Sign in"));
            let r = html(401, views::message(None, "Sign-in required", text, link)).with_header(
                "www-authenticate",
                format!("Bearer realm=\"{}\"", crate::error::REALM),
            );
            if let Some(c) = cause {
                log_cause(
                    ctx,
                    401,
                    "sign_in_required",
                    format!("token page: sign-in refused: {c}"),
                );
            }
            r
        }
        Fail::NotConfigured => {
            log_cause(
                ctx,
                503,
                "not_configured",
                "token page: SESSION_SECRET is missing or shorter than 32 bytes".into(),
            );
            msg(
                503,
                "Not configured",
                "The token page is not configured on this server yet.",
            )
        }
        Fail::Core(e) => core_failure_page(ctx, &e),
    }
}

/// The page for a core error: a message, the headers the error calls for, its cause logged.
fn core_failure_page<B>(ctx: &Ctx<'_, B>, e: &Error) -> Response {
    let back = Some(("/tokens", "Back to your tokens"));
    let status = e.status();
    let (title, text, log): (&str, String, Option<String>) = match e {
        Error::NotFound => (
            "Not found",
            "There is no such page or token, or it is not yours.".into(),
            None,
        ),
        Error::MethodNotAllowed(_) => ("Method not allowed", String::new(), None),
        Error::InvalidRequest(m) | Error::Conflict(m) | Error::InvalidScope(m) => {
            ("Bad request", ucfirst(m), None)
        }
        Error::PayloadTooLarge(_) | Error::UnsupportedMediaType(_) => {
            ("Bad request", "The form could not be read.".into(), None)
        }
        Error::RateLimited(what, secs) => (
            "Too many requests",
            format!(
                "Too many {what} for now. Try again in {} minutes.",
                secs.div_ceil(60)
            ),
            None,
        ),
        Error::Unavailable(c) => (
            "Temporarily unavailable",
            "Storage is temporarily unavailable. Nothing may have changed; try again in a moment."
                .into(),
            Some(c.clone()),
        ),
        other => (
            "Something went wrong",
            "An internal error occurred. Try again later.".into(),
            Some(format!("{other:?}")),
        ),
    };
    let title = if status == 409 { "Conflict" } else { title };
    let mut r = html(status, views::message(None, title, &text, back));
    match e {
        Error::MethodNotAllowed(allow) => r.headers.push(("allow", (*allow).to_owned())),
        Error::RateLimited(_, secs) => r.headers.push(("retry-after", secs.to_string())),
        _ => {}
    }
    if let Some(l) = log {
        log_cause(ctx, status, e.code(), format!("token page: {l}"));
    }
    r
}

/// Logs why the page refused or failed a request (the `error` event; never shown on the page).
fn log_cause<B>(ctx: &Ctx<'_, B>, status: u16, error: &'static str, cause: String) {
    ctx.isolate.emit(Event::ErrorCause {
        status,
        error,
        cause,
    });
}

pub(super) fn ucfirst(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

pub(super) fn message_of(e: &Error) -> String {
    match e {
        Error::InvalidRequest(m) | Error::InvalidScope(m) | Error::Conflict(m) => ucfirst(m),
        _ => "The token could not be created.".into(),
    }
}
