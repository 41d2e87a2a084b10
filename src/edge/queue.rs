//! Webhook deliveries through a Cloudflare Queue (wrangler.toml `[[queues.producers]]` and
//! `[[queues.consumers]]`, binding `WEBHOOK_QUEUE`; both in this Worker): the producer
//! ([`DeliveryQueue`]), outbound POSTs ([`WebhookSender`]), the fan-out after a response, and the
//! consumer entry point [`queue`] called by the shim's `queue` handler.

use super::backend::EdgeBackend;
use super::config;
use super::isolate::{write_events, ISOLATE};
use super::js::{err, now_secs};
use crate::app::{self, webhooks::Verdict};
use crate::events::Event;
use crate::store::{DeliveryQueue, StoreError, WebhookSender};
use crate::webhook::Delivery;
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Context, Env};

/// The queue's binding name.
const BINDING: &str = "WEBHOOK_QUEUE";

#[wasm_bindgen]
extern "C" {
    /// A Queue producer binding.
    type Producer;
    #[wasm_bindgen(method, catch, js_name = sendBatch)]
    fn send_batch(this: &Producer, messages: js_sys::Array) -> Result<js_sys::Promise, JsValue>;

    /// The consumer's batch.
    type Batch;
    #[wasm_bindgen(method, catch, getter)]
    fn messages(this: &Batch) -> Result<JsValue, JsValue>;
    /// The name of the queue the batch comes from.
    #[wasm_bindgen(method, catch, getter, js_name = queue)]
    fn queue_name(this: &Batch) -> Result<JsValue, JsValue>;

    /// One message of a batch.
    type QueueMessage;
    #[wasm_bindgen(method, catch, getter)]
    fn body(this: &QueueMessage) -> Result<JsValue, JsValue>;
    /// 1 on the first delivery.
    #[wasm_bindgen(method, catch, getter)]
    fn attempts(this: &QueueMessage) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn ack(this: &QueueMessage) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn retry(this: &QueueMessage, options: &JsValue) -> Result<(), JsValue>;
}

impl DeliveryQueue for EdgeBackend {
    async fn enqueue(&self, msgs: &[Delivery]) -> Result<(), StoreError> {
        let producer = js_sys::Reflect::get(&self.env, &JsValue::from_str(BINDING))
            .ok()
            .filter(JsValue::is_object)
            .ok_or_else(|| err(format!("no queue binding {BINDING}")))?
            .unchecked_into::<Producer>();
        let batch = js_sys::Array::new();
        for m in msgs {
            let body = serde_json::to_string(m).map_err(err)?;
            let msg = js_sys::Object::new();
            js_sys::Reflect::set(&msg, &"body".into(), &JsValue::from_str(&body))
                .map_err(|e| err(format!("{e:?}")))?;
            batch.push(&msg);
        }
        let promise = producer
            .send_batch(batch)
            .map_err(|e| err(format!("sendBatch: {e:?}")))?;
        wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map_err(|e| err(format!("sendBatch: {e:?}")))?;
        Ok(())
    }
}

impl WebhookSender for EdgeBackend {
    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
        timeout_secs: u32,
    ) -> Result<u16, StoreError> {
        let h = worker::Headers::new();
        for (k, v) in headers {
            h.set(k, v).map_err(err)?;
        }
        let mut init = worker::RequestInit::new();
        init.with_method(worker::Method::Post)
            .with_headers(h)
            .with_body(Some(JsValue::from_str(body)))
            // A redirect is an answer like any other non-2xx: retried, never followed.
            .with_redirect(worker::RequestRedirect::Manual);
        let req = worker::Request::new_with_init(url, &init).map_err(err)?;
        let controller = worker::AbortController::default();
        let signal = controller.signal();
        let sent = super::fetch::within(timeout_secs, async move {
            worker::Fetch::Request(req).send_with_signal(&signal).await
        });
        match sent.await {
            Some(Ok(resp)) => Ok(resp.status_code()),
            Some(Err(e)) => Err(err(format!("request failed: {e}"))),
            None => {
                controller.abort();
                Err(err(format!("no answer within {timeout_secs} s")))
            }
        }
    }
}

/// After a response: queues the webhook deliveries of `events` (and any sampling summary that
/// is due), in `wait_until`, so that nothing here delays or changes the answer. Skipped without
/// any work when this isolate knows that no endpoint is registered, and when sampling leaves
/// nothing to deliver (a sampled event past the first of its window costs no read and no send).
pub(super) fn fan_out_later(env: &Env, ctx: &Context, cfg: &Rc<app::Config>, events: &[Event]) {
    let isolate = ISOLATE.with(Rc::clone);
    let now = now_secs();
    if !app::webhooks::any_deliverable(events) && !isolate.sampler().summary_due(now) {
        return;
    }
    if app::webhooks::none_registered(cfg, &isolate, now) {
        // Nobody to tell: a due summary is dropped, not kept for a later endpoint.
        isolate.sampler().take_due(now);
        return;
    }
    let items = app::webhooks::outgoing(&isolate, now, events);
    if items.is_empty() {
        return;
    }
    let env = env.clone();
    let cfg = cfg.clone();
    ctx.wait_until(async move {
        let backend = EdgeBackend::new(&env);
        let isolate = ISOLATE.with(Rc::clone);
        let out = app::webhooks::queue_outgoing(&cfg, &backend, &isolate, now_secs(), &items).await;
        write_events(&out.warnings);
    });
}

/// Queues the deliveries of `events` now (the scheduled handler awaits this itself): what was
/// queued and what was not.
pub(super) async fn fan_out_now(
    env: &Env,
    cfg: &app::Config,
    events: &[Event],
) -> app::webhooks::FanOut {
    let backend = EdgeBackend::new(env);
    let isolate = ISOLATE.with(Rc::clone);
    let out = app::webhooks::fan_out(cfg, &backend, &isolate, now_secs(), events).await;
    write_events(&out.warnings);
    out
}

/// Whether a queue is the webhook queue's dead-letter queue (wrangler.toml: its name ends in
/// `-dlq`, e.g. `patgate-webhooks-dlq`).
fn is_dead_letter_queue(name: &str) -> bool {
    name.ends_with("-dlq")
}

/// The queue consumer (wrangler.toml `[[queues.consumers]]`), called by the shim's `queue`
/// handler with the batch: delivers every message at once (each with its own timeout), then
/// acks it or asks for a retry after the backoff delay. One log line per attempt. A batch from
/// the dead-letter queue is not delivered: each message is logged as `webhook.failed` and acked
/// ([`app::webhooks::dead_lettered`]).
#[wasm_bindgen]
pub fn queue(batch: JsValue, env: Env) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let batch = batch.unchecked_into::<Batch>();
        let messages: js_sys::Array = batch.messages()?.dyn_into()?;
        let name = batch.queue_name()?.as_string().unwrap_or_default();
        if is_dead_letter_queue(&name) {
            for m in messages.iter() {
                let m = m.unchecked_into::<QueueMessage>();
                let (body, attempts) = message_parts(&m)?;
                let log = app::webhooks::dead_lettered(&body, attempts);
                worker::console_warn!("{}", log.line());
                m.ack()?;
            }
            return Ok(JsValue::UNDEFINED);
        }
        let cfg =
            config::load(&env).map_err(|e| JsValue::from_str(&format!("configuration: {e}")))?;
        let pending = js_sys::Array::new();
        for m in messages.iter() {
            let m = m.unchecked_into::<QueueMessage>();
            let env = env.clone();
            let cfg = cfg.clone();
            pending.push(&wasm_bindgen_futures::future_to_promise(async move {
                deliver_one(&env, &cfg, &m).await?;
                Ok(JsValue::UNDEFINED)
            }));
        }
        wasm_bindgen_futures::JsFuture::from(js_sys::Promise::all(&pending)).await?;
        Ok(JsValue::UNDEFINED)
    })
}

/// A message's body (a string; anything else reads as empty, a malformed message) and its
/// delivery attempt (1 on the first).
fn message_parts(m: &QueueMessage) -> Result<(String, u32), JsValue> {
    let body = m.body()?.as_string().unwrap_or_default();
    let attempt = m
        .attempts()?
        .as_f64()
        .filter(|a| a.is_finite() && *a >= 1.0)
        .map_or(1, |a| a.min(1e6) as u32);
    Ok((body, attempt))
}

async fn deliver_one(env: &Env, cfg: &app::Config, m: &QueueMessage) -> Result<(), JsValue> {
    let (body, attempt) = message_parts(m)?;
    let backend = EdgeBackend::new(env);
    let (verdict, log) = app::webhooks::deliver(cfg, &backend, &body, attempt, now_secs()).await;
    if log.event == "webhook.delivered" {
        worker::console_log!("{}", log.line());
    } else {
        worker::console_warn!("{}", log.line());
    }
    match verdict {
        Verdict::Ack => m.ack(),
        Verdict::Retry(delay) => {
            let opts = js_sys::Object::new();
            js_sys::Reflect::set(&opts, &"delaySeconds".into(), &JsValue::from(delay))?;
            m.retry(&opts)
        }
    }
}
