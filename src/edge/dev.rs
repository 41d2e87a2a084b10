//! The dev-only routes under `/_dev/`, answered only when the var `DEV_COUNTERS` is `"true"`
//! (local dev, the tests and the benchmark; `wrangler.toml` sets it to `"false"`), and only on
//! the issuer's host: elsewhere, or without the var, they do not exist (the request goes on to
//! patgate's routes, which answer 404 like for any unknown path).
//!
//! - `GET`/`HEAD /_dev/counters`: this isolate's operation counters ([`counters`]).
//! - `/_dev/floor`: the benchmark's floor W ([`counters::floor`]).
//! - `GET /_dev/trap?how=panic|unreachable&ms=N`: traps this wasm instance after an async step
//!   (a timer of `N` ms, at least 1) during the request: `panic` through a Rust panic (the panic
//!   hook sees it first), `unreachable` through a bare `unreachable` instruction (nothing in Rust
//!   sees it). `when=sync` traps before any await instead. It exists to test that a trap ends
//!   its instance cleanly (`scripts/worker-shim.js`, "Wasm traps").
//! - `GET /_dev/client?client_id=ID`: the client `ID` as the authorization endpoint identifies
//!   it (`app::clients::client_for`: the isolate's caches, D1, and for a metadata document URL
//!   the guarded fetch, validated and stored), as JSON `{found, source, display_name,
//!   redirect_uris, why}`. It exists so that local MCP clients and the tests can see why a
//!   client id is refused, and to test the real fetch of metadata documents on workerd.

use super::backend::EdgeBackend;
use super::counters;
use super::settle::Settled;
use crate::error::Error;
use crate::http::Response;
use wasm_bindgen::JsCast as _;
use worker::worker_sys::web_sys;
use worker::Env;

/// The answer to a `/_dev/` request, or `None` when the dev routes are off or not on this host.
pub async fn serve(
    env: &Env,
    method: &str,
    authority: &str,
    path: &str,
    query: Option<&str>,
    body: Option<Vec<u8>>,
) -> Option<Response> {
    if !counters::enabled(env) || !on_issuer_host(env, authority) {
        return None;
    }
    let get = method == "GET" || method == "HEAD";
    Some(match path {
        "/_dev/counters" if get => counters::respond(),
        "/_dev/counters" => Error::MethodNotAllowed("GET, HEAD").into_response(),
        "/_dev/floor" => counters::floor(&EdgeBackend::new(env), method, body).await,
        "/_dev/trap" if method == "GET" => trap(query).await,
        "/_dev/client" if method == "GET" => client(env, query).await,
        "/_dev/trap" | "/_dev/client" => Error::MethodNotAllowed("GET").into_response(),
        _ => Error::NotFound.into_response(),
    })
}

fn on_issuer_host(env: &Env, authority: &str) -> bool {
    super::config::load(env)
        .is_ok_and(|cfg| crate::gate::matching::is_issuer_host(&cfg.issuer, authority))
}

fn param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Traps the instance, never returns normally.
async fn trap(query: Option<&str>) -> Response {
    if param(query, "when") != Some("sync") {
        let ms = param(query, "ms")
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(1)
            .clamp(1, 10_000);
        // A JS timer awaited like any I/O (`worker::Delay` sets its flag after waking the task,
        // which this executor polls at once).
        let timer = js_sys::Promise::new(&mut |resolve, _| {
            let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
            let _ = global.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        });
        let _ = Settled::new(timer).await;
    }
    if param(query, "how") == Some("unreachable") {
        core::arch::wasm32::unreachable()
    }
    #[allow(clippy::panic)] // the point of this dev-only route
    {
        panic!("patgate: injected trap (/_dev/trap)")
    }
}

/// `GET /_dev/client?client_id=ID` (see the module's header).
async fn client(env: &Env, query: Option<&str>) -> Response {
    use crate::app::clients::{client_for, ClientLookup};
    let id = param(query, "client_id")
        .and_then(|v| crate::http::percent_decode(v.as_bytes()).ok())
        .filter(|v| !v.is_empty());
    let Some(id) = id else {
        return Error::InvalidRequest("missing parameter client_id".into()).into_response();
    };
    let cfg = match super::config::load(env) {
        Ok(c) => c,
        Err(e) => return Error::Internal(format!("configuration: {e}")).into_response(),
    };
    let isolate = super::isolate::ISOLATE.with(std::rc::Rc::clone);
    let backend = EdgeBackend::new(env);
    let ctx = crate::app::Ctx {
        cfg: &cfg,
        backend: &backend,
        isolate: &isolate,
        now: super::js::now_secs(),
    };
    let found = client_for(&ctx, &id).await;
    super::isolate::write_events(&isolate.take_events());
    match found {
        Ok(ClientLookup::Found(c)) => Response::json(
            200,
            &serde_json::json!({
                "found": true,
                "client_id": c.client.id,
                "source": c.profile.source.as_db(),
                "display_name": c.profile.display_name,
                "redirect_uris": c.profile.redirect_uris,
                "public": c.client.secret.is_none(),
                "enabled": c.client.enabled,
            }),
        ),
        Ok(ClientLookup::Unknown(why)) => Response::json(
            200,
            &serde_json::json!({ "found": false, "client_id": id, "why": &*why }),
        ),
        Err(e) => e.into_response(),
    }
}
