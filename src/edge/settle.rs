//! Awaiting a JS `Promise` without two fresh wasm closures per await.
//!
//! `JsFuture::from(promise)` creates a `Closure::once` for each outcome (a closure-table entry, a
//! JS wrapper and a finalizer registration each) on every await. [`Settled`] instead passes
//! `promise.then` two JS functions bound to a slot number (`Function.prototype.bind`, once per
//! slot; slots are reused) around two callbacks created once per isolate; the callback stores the
//! outcome in the slot and wakes the waiting future. Used where an await is on the hot path (the KV read of an introspection).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast as _, JsValue};

#[wasm_bindgen]
extern "C" {
    /// A promise, seen only through `then(onFulfilled, onRejected)`.
    type Thenable;
    #[wasm_bindgen(method, js_name = then)]
    fn then_fns(this: &Thenable, ok: &Callback, err: &Callback) -> JsValue;

    /// `(slot, value) => ...`, seen through `bind`.
    #[derive(Clone)]
    type Callback;
    #[wasm_bindgen(method, js_name = bind)]
    fn bind_slot(this: &Callback, this_arg: &JsValue, slot: u32) -> Callback;
}

enum Slot {
    Waiting(Option<Waker>),
    Done(Result<JsValue, JsValue>),
    /// The future was dropped before the promise settled: free the slot when it does.
    Abandoned,
}

#[derive(Default)]
struct Slots {
    entries: Vec<Option<Slot>>,
    /// Per slot, the callbacks bound to its number: made when the slot is first used and kept,
    /// since slots are reused (there are as many as awaits in flight at once).
    bound: Vec<(Callback, Callback)>,
    free: Vec<usize>,
}

thread_local! {
    static SLOTS: RefCell<Slots> = RefCell::new(Slots::default());
    /// `(on_fulfilled, on_rejected)`: `(slot, value) => ...`, created once per isolate.
    static CALLBACKS: (Callback, Callback) = (callback(true), callback(false));
}

fn callback(ok: bool) -> Callback {
    Closure::<dyn FnMut(u32, JsValue)>::new(move |slot: u32, value: JsValue| {
        settle(slot as usize, if ok { Ok(value) } else { Err(value) });
    })
    .into_js_value()
    .unchecked_into()
}

fn settle(slot: usize, outcome: Result<JsValue, JsValue>) {
    let waker = SLOTS.with(|s| {
        let mut s = s.borrow_mut();
        let entry = s.entries.get_mut(slot)?;
        match entry.take() {
            Some(Slot::Waiting(waker)) => {
                *entry = Some(Slot::Done(outcome));
                waker
            }
            Some(Slot::Abandoned) => {
                s.free.push(slot);
                None
            }
            other => {
                *entry = other;
                None
            }
        }
    });
    if let Some(w) = waker {
        w.wake();
    }
}

/// A `Promise`'s outcome, as a future.
pub struct Settled {
    slot: Option<usize>,
    promise: Option<js_sys::Promise>,
}

impl Settled {
    pub fn new(promise: js_sys::Promise) -> Self {
        Settled {
            slot: None,
            promise: Some(promise),
        }
    }
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(promise) = self.promise.take() {
            let (slot, ok, err) = SLOTS.with(|s| {
                let mut s = s.borrow_mut();
                let waiting = Some(Slot::Waiting(Some(cx.waker().clone())));
                let slot = if let Some(i) = s.free.pop() {
                    s.entries[i] = waiting;
                    i
                } else {
                    let i = s.entries.len();
                    let n = u32::try_from(i).unwrap_or(u32::MAX);
                    let fns = CALLBACKS.with(|(ok, err)| {
                        (
                            ok.bind_slot(&JsValue::UNDEFINED, n),
                            err.bind_slot(&JsValue::UNDEFINED, n),
                        )
                    });
                    s.entries.push(waiting);
                    s.bound.push(fns);
                    i
                };
                let (ok, err) = s.bound[slot].clone();
                (slot, ok, err)
            });
            self.slot = Some(slot);
            // A settled promise calls back later (a microtask), never during this call.
            promise.unchecked_ref::<Thenable>().then_fns(&ok, &err);
            return Poll::Pending;
        }
        let Some(slot) = self.slot else {
            return Poll::Ready(Err(JsValue::from_str("polled after completion")));
        };
        SLOTS.with(|s| {
            let mut s = s.borrow_mut();
            match s.entries.get_mut(slot).and_then(Option::take) {
                Some(Slot::Done(outcome)) => {
                    s.free.push(slot);
                    self.slot = None;
                    Poll::Ready(outcome)
                }
                Some(Slot::Waiting(_)) | None => {
                    s.entries[slot] = Some(Slot::Waiting(Some(cx.waker().clone())));
                    Poll::Pending
                }
                Some(Slot::Abandoned) => {
                    s.entries[slot] = Some(Slot::Abandoned);
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            SLOTS.with(|s| {
                let mut s = s.borrow_mut();
                if let Some(entry) = s.entries.get_mut(slot) {
                    if matches!(entry, Some(Slot::Done(_))) {
                        *entry = None;
                        s.free.push(slot);
                    } else {
                        *entry = Some(Slot::Abandoned);
                    }
                }
            });
        }
    }
}
