//! A minimal executor for request futures: poll right away, and poll again right inside the
//! wake-up.
//!
//! `wasm_bindgen_futures::future_to_promise` schedules every poll through `queueMicrotask` and
//! allocates a task and two JS closures per future; on the introspection hot path (one KV read)
//! that glue was ~15% of the isolate's CPU in the V8 profile (`node bench/profile.mjs active`).
//! Here a request future is polled once synchronously by [`run`]: if it completes (no I/O), its
//! value is returned as is; otherwise it is parked in a per-isolate table and a JS `Promise` is
//! returned. Its waker carries the table index: when a JS promise the future awaits settles
//! (a `JsFuture` callback, itself a microtask), the wake-up polls the future at once, in that
//! callback, and settles the returned `Promise` when it completes.
//!
//! Re-entrancy: a wake-up that arrives while its own future is being polled (a future that wakes
//! itself) only marks it, and the poll loop polls again. Wake-ups for a finished task are ignored.
//! Everything runs on the isolate's one thread.
//!
//! Traps: a panic while a parked task is polled fails that task's promise first
//! ([`fail_current`], from the panic hook), so its request is answered; a trap without a panic
//! is failed the same way right after ([`fail_trapped`], from the shim). After a trap the shim
//! stops sending requests here, waits for [`parked_requests`] to reach zero (the requests in
//! flight finish on this instance), and, before it resets the instance, fails whatever is still
//! parked ([`abandon_requests`]).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::JsValue;

type TaskFuture = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

struct Parked {
    future: Option<TaskFuture>,
    /// Set when woken while being polled: poll again before parking.
    woken: bool,
    resolve: js_sys::Function,
    reject: js_sys::Function,
}

#[derive(Default)]
struct Table {
    slots: Vec<Option<Parked>>,
    free: Vec<usize>,
    /// The slot being polled synchronously by `run` before it has a `Parked` entry.
    first_poll: Option<(usize, bool)>,
}

thread_local! {
    static TASKS: RefCell<Table> = RefCell::new(Table::default());
    /// The parked task being polled by a wake-up, if any.
    static POLLING: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The error a trapped or abandoned task's promise is rejected with: a `RuntimeError`, like the
/// trap itself, so the shim answers it as one.
fn trap_error(message: &str) -> JsValue {
    js_sys::WebAssembly::RuntimeError::new(message).into()
}

/// Rejects the promise of the parked task being polled (called by the panic hook, just before
/// the instance traps). Nothing for a task's first poll: that trap reaches its caller directly.
pub fn fail_current(message: &str) {
    let Some(slot) = POLLING.with(std::cell::Cell::get) else {
        return;
    };
    let parked = TASKS.with(|t| {
        let mut t = t.try_borrow_mut().ok()?;
        t.slots.get_mut(slot)?.take()
    });
    if let Some(p) = parked {
        let _ = p.reject.call1(&JsValue::UNDEFINED, &trap_error(message));
    }
}

/// Rejects the promise of the parked task whose wake-up trapped without a panic (the shim saw
/// the trap as an unhandled `RuntimeError`): the trap unwound [`wake`] before it cleared
/// [`POLLING`], so the slot is still there.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn fail_trapped() {
    fail_current("wasm trap");
}

/// How many requests are parked (awaiting I/O); `u32::MAX` if the table cannot be read.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn parked_requests() -> u32 {
    TASKS.with(|t| {
        t.try_borrow().map_or(u32::MAX, |t| {
            u32::try_from(t.slots.iter().filter(|s| s.is_some()).count()).unwrap_or(u32::MAX)
        })
    })
}

/// Rejects every parked request (the shim answers each `503`): called on a trapped instance
/// right before it is reset, for the requests that did not finish in time.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn abandon_requests() {
    let parked: Vec<Parked> = TASKS.with(|t| {
        t.try_borrow_mut()
            .map(|mut t| t.slots.iter_mut().filter_map(Option::take).collect())
            .unwrap_or_default()
    });
    for p in parked {
        let _ = p.reject.call1(
            &JsValue::UNDEFINED,
            &trap_error("patgate: abandoned by a reset"),
        );
    }
}

fn reserve() -> usize {
    TASKS.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(i) = t.free.pop() {
            i
        } else {
            t.slots.push(None);
            t.slots.len() - 1
        }
    })
}

fn release(i: usize) {
    TASKS.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(slot) = t.slots.get_mut(i) {
            *slot = None;
            t.free.push(i);
        }
    });
}

/// A waker that carries its task's slot index.
struct SlotWaker(usize);

impl std::task::Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        wake(self.0);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        wake(self.0);
    }
}

fn waker(slot: usize) -> Waker {
    Waker::from(Arc::new(SlotWaker(slot)))
}

/// Polls `future` once. Ready: its value (a `Response`, or a rejected promise for an error).
/// Pending: a `Promise` that settles with its value.
pub fn run(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> JsValue {
    let i = reserve();
    let mut future: TaskFuture = Box::pin(future);
    let w = waker(i);
    let mut cx = Context::from_waker(&w);
    loop {
        TASKS.with(|t| t.borrow_mut().first_poll = Some((i, false)));
        let poll = future.as_mut().poll(&mut cx);
        let woken = TASKS.with(|t| t.borrow_mut().first_poll.take().is_some_and(|(_, w)| w));
        match poll {
            Poll::Ready(v) => {
                release(i);
                return match v {
                    Ok(v) => v,
                    Err(e) => js_sys::Promise::reject(&e).into(),
                };
            }
            Poll::Pending if woken => {}
            Poll::Pending => break,
        }
    }
    let mut future = Some(future);
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let parked = Parked {
            future: future.take(),
            woken: false,
            resolve,
            reject,
        };
        TASKS.with(|t| {
            if let Some(slot) = t.borrow_mut().slots.get_mut(i) {
                *slot = Some(parked);
            }
        });
    });
    promise.into()
}

/// A wake-up for slot `i`: poll its future now (unless it is being polled: then mark it).
fn wake(slot: usize) {
    let taken = TASKS.with(|t| {
        let mut t = t.borrow_mut();
        if let Some((first, woken)) = t.first_poll.as_mut() {
            if *first == slot {
                *woken = true;
                return None;
            }
        }
        let parked = t.slots.get_mut(slot)?.as_mut()?;
        let future = parked.future.take();
        // None: being polled further up the stack.
        parked.woken |= future.is_none();
        future
    });
    let Some(future) = taken else { return };
    let outer = POLLING.with(|p| p.replace(Some(slot)));
    poll_parked(slot, future);
    POLLING.with(|p| p.set(outer));
}

/// Polls a parked task's future until it is done (settling its promise) or pending (parking it
/// again).
fn poll_parked(slot: usize, mut future: TaskFuture) {
    let own = waker(slot);
    let mut cx = Context::from_waker(&own);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(value) => {
                let settle = TASKS.with(|t| {
                    let mut t = t.borrow_mut();
                    let p = t.slots.get_mut(slot)?.take()?;
                    t.free.push(slot);
                    Some((p.resolve, p.reject))
                });
                if let Some((resolve, reject)) = settle {
                    // A throwing `resolve` cannot happen for a fresh promise; nothing to do if it did.
                    let _ = match value {
                        Ok(ok) => resolve.call1(&JsValue::UNDEFINED, &ok),
                        Err(e) => reject.call1(&JsValue::UNDEFINED, &e),
                    };
                }
                return;
            }
            Poll::Pending => {
                let again = TASKS.with(|t| {
                    let mut t = t.borrow_mut();
                    match t.slots.get_mut(slot).and_then(Option::as_mut) {
                        Some(p) if p.woken => {
                            p.woken = false;
                            true
                        }
                        _ => false,
                    }
                });
                if again {
                    continue;
                }
                TASKS.with(|t| {
                    if let Some(p) = t.borrow_mut().slots.get_mut(slot).and_then(Option::as_mut) {
                        p.future = Some(future);
                    }
                });
                return;
            }
        }
    }
}
