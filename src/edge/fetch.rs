//! Outbound `fetch`: [`JwksFetcher`] (the identity provider's JWKS, the secret scanning partner's
//! keys) and [`MetadataFetcher`] (client ID metadata documents), bounded in time and size, and
//! [`within`], the timeout every outbound request uses.

use super::backend::EdgeBackend;
use super::js::err;
use crate::authz::store::{Fetched, MetadataFetcher};
use crate::oauth::metadata_document::FetchableUrl;
use crate::store::{JwksFetcher, StoreError};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A key document fetch gives up after this long (connection, answer and body).
pub const FETCH_TIMEOUT_SECS: u32 = 5;
/// Largest key document read; a larger one is refused (a JWKS or GitHub's key list is a few
/// KiB).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The first of two futures to finish: `Some` from `a`, `None` if `b` (the timer) came first.
struct Race<A, B> {
    a: Pin<Box<A>>,
    b: Pin<Box<B>>,
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Option<A::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.a.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if self.b.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

/// `fut`'s output, or `None` if `secs` seconds pass first (the caller aborts what it started).
pub(super) async fn within<F: Future>(secs: u32, fut: F) -> Option<F::Output> {
    within_ms(secs.saturating_mul(1000), fut).await
}

/// [`within`], in milliseconds.
pub(super) async fn within_ms<F: Future>(millis: u32, fut: F) -> Option<F::Output> {
    Race {
        a: Box::pin(fut),
        b: Box::pin(Timer::new_ms(millis)),
    }
    .await
}

/// A `setTimeout` as a future. Not `worker::Delay`: that one wakes its task before it records
/// that the time has come, so a poll right inside the wake-up (what the request executor does,
/// `executor.rs`) still finds it pending, and nothing wakes it again: a request waiting on it
/// would never be answered. Here the flag is set first.
struct Timer {
    millis: i32,
    state: Rc<TimerState>,
    callback: Option<Closure<dyn FnMut()>>,
    id: Option<JsValue>,
}

#[derive(Default)]
struct TimerState {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Timer {
    fn new_ms(millis: u32) -> Self {
        Timer {
            millis: i32::try_from(millis).unwrap_or(i32::MAX),
            state: Rc::default(),
            callback: None,
            id: None,
        }
    }
}

fn global_fn(name: &str) -> Option<js_sys::Function> {
    js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str(name))
        .ok()?
        .dyn_into()
        .ok()
}

impl Future for Timer {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.state.fired.get() {
            return Poll::Ready(());
        }
        *self.state.waker.borrow_mut() = Some(cx.waker().clone());
        if self.callback.is_none() {
            let state = self.state.clone();
            let callback = Closure::<dyn FnMut()>::new(move || {
                state.fired.set(true);
                let waker = state.waker.borrow_mut().take();
                if let Some(w) = waker {
                    w.wake();
                }
            });
            let id = global_fn("setTimeout").and_then(|set| {
                set.call2(
                    &JsValue::UNDEFINED,
                    callback.as_ref(),
                    &JsValue::from(self.millis),
                )
                .ok()
            });
            if id.is_none() {
                // No timer available: never time out rather than at once.
                return Poll::Pending;
            }
            self.id = id;
            self.callback = Some(callback);
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let (Some(id), Some(clear)) = (self.id.take(), global_fn("clearTimeout")) {
            let _ = clear.call1(&JsValue::UNDEFINED, &id);
        }
    }
}

fn js(e: &JsValue) -> StoreError {
    err(format!("{e:?}"))
}

/// Reads a response body, refusing (and cancelling) it past `max` bytes.
async fn read_bounded(resp: &worker::Response, max: usize) -> Result<Vec<u8>, StoreError> {
    let body = read_at_most(resp, max.saturating_add(1)).await?;
    if body.len() > max {
        return Err(err(format!("more than {max} bytes")));
    }
    Ok(body)
}

/// Reads at most `limit` bytes of a response body, cancelling the rest unread.
async fn read_at_most(resp: &worker::Response, limit: usize) -> Result<Vec<u8>, StoreError> {
    let stream: &JsValue = match resp.body() {
        worker::ResponseBody::Empty => return Ok(Vec::new()),
        worker::ResponseBody::Body(b) => return Ok(b[..b.len().min(limit)].to_vec()),
        worker::ResponseBody::Stream(s) => s.as_ref(),
    };
    let method = |target: &JsValue, name: &str| -> Result<js_sys::Function, StoreError> {
        js_sys::Reflect::get(target, &JsValue::from_str(name))
            .map_err(|e| js(&e))?
            .dyn_into::<js_sys::Function>()
            .map_err(|e| js(&e))
    };
    let reader = method(stream, "getReader")?
        .call0(stream)
        .map_err(|e| js(&e))?;
    let read = method(&reader, "read")?;
    let mut out = Vec::new();
    loop {
        let promise: js_sys::Promise = read
            .call0(&reader)
            .map_err(|e| js(&e))?
            .dyn_into()
            .map_err(|e| js(&e))?;
        let chunk = wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|e| js(&e))?;
        if js_sys::Reflect::get(&chunk, &JsValue::from_str("done"))
            .map_err(|e| js(&e))?
            .as_bool()
            == Some(true)
        {
            return Ok(out);
        }
        let bytes: js_sys::Uint8Array = js_sys::Reflect::get(&chunk, &JsValue::from_str("value"))
            .map_err(|e| js(&e))?
            .dyn_into()
            .map_err(|e| js(&e))?;
        let room = limit - out.len();
        let chunk = bytes.to_vec();
        if chunk.len() >= room {
            out.extend_from_slice(&chunk[..room]);
            if let Ok(cancel) = method(&reader, "cancel") {
                let _ = cancel.call0(&reader);
            }
            return Ok(out);
        }
        out.extend(chunk);
    }
}

impl JwksFetcher for EdgeBackend {
    /// Also fetches the secret scanning public keys (`SECRET_SCANNING_KEYS_URL`): GitHub's API
    /// refuses requests without a `User-Agent`. At most [`FETCH_TIMEOUT_SECS`] and
    /// [`MAX_DOCUMENT_BYTES`] (both URLs are the operator's configuration).
    async fn fetch_jwks(&self, url: &str) -> Result<String, StoreError> {
        let headers = worker::Headers::new();
        headers.set("user-agent", "patgate").map_err(err)?;
        headers.set("accept", "application/json").map_err(err)?;
        let mut init = worker::RequestInit::new();
        init.with_headers(headers);
        let req = worker::Request::new_with_init(url, &init).map_err(err)?;
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let fetched = within(FETCH_TIMEOUT_SECS, async move {
            let resp = worker::Fetch::Request(req)
                .send_with_signal(&signal)
                .await
                .map_err(err)?;
            if resp.status_code() != 200 {
                return Err(err(format!(
                    "key document URL answered {}",
                    resp.status_code()
                )));
            }
            let declared = resp
                .headers()
                .get("content-length")
                .ok()
                .flatten()
                .and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > MAX_DOCUMENT_BYTES) {
                return Err(err(format!("more than {MAX_DOCUMENT_BYTES} bytes")));
            }
            let body = read_bounded(&resp, MAX_DOCUMENT_BYTES).await?;
            String::from_utf8(body).map_err(err)
        })
        .await;
        fetched.unwrap_or_else(|| {
            controller.abort();
            Err(err(format!("no answer within {FETCH_TIMEOUT_SECS} s")))
        })
    }
}

/// A response header, if present and readable.
fn header(resp: &worker::Response, name: &str) -> Option<String> {
    resp.headers().get(name).ok().flatten()
}

impl MetadataFetcher for EdgeBackend {
    /// `GET` of a client ID metadata document: only a [`FetchableUrl`] (the network guard
    /// accepted it), redirects not followed (`redirect: "manual"`: a 3xx comes back as it is,
    /// and its `Location` is never requested), no credentials or cookies, at most `max_bytes +
    /// 1` bytes read (the rest cancelled, so that an oversized document is seen as such without
    /// being read whole), given up after `timeout_ms` (the request aborted). A status other than
    /// 200 is returned without reading the body.
    async fn fetch_metadata(
        &self,
        url: &FetchableUrl,
        max_bytes: usize,
        timeout_ms: u32,
    ) -> Result<Fetched, StoreError> {
        let headers = worker::Headers::new();
        headers.set("user-agent", "patgate").map_err(err)?;
        headers.set("accept", "application/json").map_err(err)?;
        let mut init = worker::RequestInit::new();
        init.with_headers(headers)
            .with_redirect(worker::RequestRedirect::Manual);
        let req = worker::Request::new_with_init(url.as_str(), &init).map_err(err)?;
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let fetched = within_ms(timeout_ms, async move {
            let resp = worker::Fetch::Request(req)
                .send_with_signal(&signal)
                .await
                .map_err(err)?;
            let status = resp.status_code();
            let body = if status == 200 {
                read_at_most(&resp, max_bytes.saturating_add(1)).await?
            } else {
                if let worker::ResponseBody::Stream(s) = resp.body() {
                    if let Ok(cancel) =
                        js_sys::Reflect::get(s.as_ref(), &JsValue::from_str("cancel"))
                            .and_then(JsCast::dyn_into::<js_sys::Function>)
                    {
                        let _ = cancel.call0(s.as_ref());
                    }
                }
                Vec::new()
            };
            Ok(Fetched {
                status,
                body,
                cache_control: header(&resp, "cache-control"),
                expires: header(&resp, "expires"),
                date: header(&resp, "date"),
                age: header(&resp, "age"),
            })
        })
        .await;
        fetched.unwrap_or_else(|| {
            controller.abort();
            Err(err(format!("no answer within {timeout_ms} ms")))
        })
    }
}
