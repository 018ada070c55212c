//! The JS-thread half of `withLock` / `withSemaphore`: call the user's callback with
//! `{ token, fencingToken, signal, degraded }`, follow whatever it returns (a value, a promise, a
//! synchronous throw) without the value ever leaving JS, tell the lease keeper when it settled,
//! abort the `AbortSignal` when the keeper reports the lease lost, and finally settle the
//! caller's promise with the callback's own value or error object.
//!
//! The lease itself (acquire, renewal, release) lives in `core::lock`; this file only moves
//! events between it and JS.

use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::sys;
use tokio::sync::oneshot;

use crate::binding::decode::Js;
use crate::binding::error::js_error;
use crate::binding::follow;
use crate::core::lock::{Acquired, HoldEnd};
use crate::core::{Error, Level};
use crate::engine::completer::{Deferred, JsRef, Shared};
use crate::engine::per_env;

/// What the callback settled with: the value or error, boxed in a one-element array (Node-API
/// cannot reference primitives directly).
enum Outcome {
    Value(JsRef),
    Thrown(JsRef),
}

#[derive(Default)]
struct JsSide {
    deferred: Option<Deferred>,
    func: Option<JsRef>,
    /// The service object, kept alive (with its completion queue) until the call settles.
    this: Option<JsRef>,
    controller: Option<JsRef>,
    outcome: Option<Outcome>,
    done: Option<oneshot::Sender<()>>,
    /// Whether this call is counted as pending (keeping the process alive): from the call until
    /// it settles, except after the lease was reported lost while `fn` still runs.
    counted: bool,
}

/// One `withLock`/`withSemaphore` call.
pub struct Guarded {
    shared: Arc<Shared>,
    /// The user's key, for `ERR_LOCK_LOST`.
    key: String,
    lost: AtomicBool,
    js: Mutex<JsSide>,
}

/// Boxes `v` in `[v]` and references the box.
unsafe fn boxed(env: sys::napi_env, v: sys::napi_value) -> JsRef {
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        let mut arr = ptr::null_mut();
        sys::napi_create_array_with_length(env, 1, &mut arr);
        sys::napi_set_element(env, arr, 0, v);
        JsRef::new(env, arr)
    }
}

unsafe fn unboxed(env: sys::napi_env, r: JsRef) -> sys::napi_value {
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        let arr = r.take(env);
        let mut v = ptr::null_mut();
        sys::napi_get_element(env, arr, 0, &mut v);
        v
    }
}

unsafe fn take_exception(env: sys::napi_env) -> sys::napi_value {
    let mut exc = ptr::null_mut();
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe { sys::napi_get_and_clear_last_exception(env, &mut exc) };
    exc
}

/// Deletes a reference that is no longer needed.
unsafe fn free(env: sys::napi_env, r: Option<JsRef>) {
    if let Some(r) = r {
        // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
        // there.
        unsafe { r.take(env) };
    }
}

impl Guarded {
    /// Prepares a call: `d` settles with the callback's outcome. The call counts as pending
    /// (the caller has already called `shared.begin`).
    ///
    /// # Safety
    /// JS thread only; `func` a function and `this` an object of `env`.
    pub unsafe fn new(
        env: sys::napi_env,
        shared: &Arc<Shared>,
        d: Deferred,
        func: sys::napi_value,
        this: sys::napi_value,
        key: String,
    ) -> Arc<Guarded> {
        Arc::new(Guarded {
            shared: Arc::clone(shared),
            key,
            lost: AtomicBool::new(false),
            js: Mutex::new(JsSide {
                deferred: Some(d),
                // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all
                // run there.
                func: Some(unsafe { JsRef::new(env, func) }),
                // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all
                // run there.
                this: Some(unsafe { JsRef::new(env, this) }),
                counted: true,
                ..JsSide::default()
            }),
        })
    }

    /// Arms the "callback settled" notification for the lease keeper (before `start` runs).
    pub fn on_settled(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut js) = self.js.lock() {
            js.done = Some(tx);
        }
        rx
    }

    /// From the keeper: the lease is lost. Marks it and aborts the signal on the JS thread.
    pub fn lose(self: &Arc<Self>, err: Error) {
        self.lost.store(true, Ordering::Release);
        let me = Arc::clone(self);
        self.shared
            // SAFETY: completion-queue tasks run on the JS thread of this service's env.
            .run_on_js(Box::new(move |env| unsafe { me.abort(env, &err) }));
    }

    /// From the keeper: runs the callback on the JS thread (`None` = degraded, no lease).
    pub fn start(self: &Arc<Self>, lease: Option<Acquired>) {
        let me = Arc::clone(self);
        self.shared
            // SAFETY: completion-queue tasks run on the JS thread of this service's env.
            .run_on_js(Box::new(move |env| unsafe { me.call(env, lease) }));
    }

    /// From the keeper: the lease was never acquired; rejects with `e`.
    pub fn fail(self: &Arc<Self>, e: Error) {
        let me = Arc::clone(self);
        // SAFETY: completion-queue tasks run on the JS thread of this service's env.
        self.shared.run_on_js(Box::new(move |env| unsafe {
            let err = js_error(env, &e);
            me.settle(env, false, err);
        }));
    }

    /// From the keeper: the lease ended; settles the caller's promise.
    pub fn finish(self: &Arc<Self>, end: HoldEnd) {
        let me = Arc::clone(self);
        self.shared
            // SAFETY: completion-queue tasks run on the JS thread of this service's env.
            .run_on_js(Box::new(move |env| unsafe { me.complete(env, end) }));
    }

    unsafe fn call(self: &Arc<Self>, env: sys::napi_env, lease: Option<Acquired>) {
        let js = Js::new(env);
        // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
        // there.
        unsafe {
            // The original `AbortController` (taken at load): the signal is ours whatever user
            // code did to the global since.
            let ctor = per_env::get(env, per_env::Fn::AbortController).unwrap_or(ptr::null_mut());
            let mut controller = ptr::null_mut();
            sys::napi_new_instance(env, ctor, 0, ptr::null(), &mut controller);
            let mut signal = ptr::null_mut();
            sys::napi_get_named_property(env, controller, c"signal".as_ptr(), &mut signal);
            let mut ctx = ptr::null_mut();
            sys::napi_create_object(env, &mut ctx);
            let (token, fence) = match &lease {
                Some(a) => (
                    js.str(a.token.as_bytes()),
                    a.fencing_token.map_or_else(|| js.null(), |f| js.int(f)),
                ),
                None => (js.null(), js.null()),
            };
            sys::napi_set_named_property(env, ctx, c"token".as_ptr(), token);
            sys::napi_set_named_property(env, ctx, c"fencingToken".as_ptr(), fence);
            sys::napi_set_named_property(env, ctx, c"signal".as_ptr(), signal);
            sys::napi_set_named_property(env, ctx, c"degraded".as_ptr(), js.bool(lease.is_none()));
            let func = match self.js.lock() {
                Ok(mut s) => {
                    if !controller.is_null() {
                        s.controller = Some(JsRef::new(env, controller));
                    }
                    s.func.take()
                }
                Err(_) => None,
            };
            let Some(func) = func else {
                self.settled(env, Outcome::Value(boxed(env, js.undefined())));
                return;
            };
            let func = func.take(env);
            let me = Arc::clone(self);
            follow::call(
                env,
                func,
                &[ctx],
                Box::new(move |env, ok, v| {
                    let boxed = boxed(env, v);
                    me.settled(
                        env,
                        if ok {
                            Outcome::Value(boxed)
                        } else {
                            Outcome::Thrown(boxed)
                        },
                    );
                }),
            );
        }
    }

    /// The callback settled: record it, then let the keeper release (or finish at once when
    /// there is no lease).
    unsafe fn settled(self: &Arc<Self>, env: sys::napi_env, outcome: Outcome) {
        let (done, controller, recount) = match self.js.lock() {
            Ok(mut s) => {
                if s.outcome.is_some() {
                    return;
                }
                s.outcome = Some(outcome);
                let recount = !s.counted;
                s.counted = true;
                (s.done.take(), s.controller.take(), recount)
            }
            Err(_) => return,
        };
        // Pending again until the release is answered.
        if recount {
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe { self.shared.begin(env) };
        }
        // Settled: a later loss no longer aborts anything (the call rejects instead).
        // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
        // there.
        unsafe { free(env, controller) };
        match done.map(|tx| tx.send(())) {
            // The keeper releases, then `finish` settles the call.
            Some(Ok(())) => {}
            // No lease (degraded), or the keeper is gone: settle now.
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            _ => unsafe { self.complete(env, HoldEnd::Released(true)) },
        }
    }

    unsafe fn abort(&self, env: sys::napi_env, err: &Error) {
        let (controller, uncount) = match self.js.lock() {
            Ok(mut s) => {
                // Lost while `fn` runs: from now on only `fn`'s own work keeps the process alive
                // (a callback that never settles cannot hold it open forever).
                let uncount = s.counted && s.outcome.is_none();
                if uncount {
                    s.counted = false;
                }
                (s.controller.take(), uncount)
            }
            Err(_) => (None, false),
        };
        if uncount {
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe { self.shared.end(env) };
        }
        let Some(controller) = controller else { return };
        // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
        // there.
        unsafe {
            let controller = controller.take(env);
            let mut abort = ptr::null_mut();
            sys::napi_get_named_property(env, controller, c"abort".as_ptr(), &mut abort);
            let reason = js_error(env, err);
            let mut out = ptr::null_mut();
            if sys::napi_call_function(env, controller, abort, 1, &reason, &mut out)
                != sys::Status::napi_ok
            {
                // An abort listener threw: report it, never crash the process.
                take_exception(env);
                self.shared.log_now(
                    env,
                    Level::Error,
                    "an AbortSignal listener threw while a lock was reported lost",
                );
            }
        }
    }

    unsafe fn complete(&self, env: sys::napi_env, end: HoldEnd) {
        let (outcome, this) = match self.js.lock() {
            Ok(mut s) => (s.outcome.take(), s.this.take()),
            Err(_) => return,
        };
        // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
        // there.
        unsafe {
            free(env, this);
            let lost = match end {
                HoldEnd::Lost(why) => Some(why),
                HoldEnd::Released(_) if self.lost.load(Ordering::Acquire) => {
                    Some("renewal failed".to_string())
                }
                HoldEnd::Released(_) => None,
                HoldEnd::Unreleased(e) => {
                    self.shared.log_now(
                        env,
                        Level::Warn,
                        &format!(
                            "a lock could not be released ({e}); it expires at the end of its TTL"
                        ),
                    );
                    None
                }
            };
            let (ok, v) = match outcome {
                Some(Outcome::Value(r)) => (true, unboxed(env, r)),
                Some(Outcome::Thrown(r)) => (false, unboxed(env, r)),
                None => (true, Js::new(env).undefined()),
            };
            match lost {
                None => self.settle(env, ok, v),
                Some(why) => {
                    let key = self.key.clone();
                    let err = js_error(
                        env,
                        &Error::LockLost {
                            msg: format!("\"{key}\" was lost while its callback ran: {why}"),
                            key,
                        },
                    );
                    if !ok {
                        sys::napi_set_named_property(env, err, c"cause".as_ptr(), v);
                    }
                    self.settle(env, false, err);
                }
            }
        }
    }

    unsafe fn settle(&self, env: sys::napi_env, ok: bool, v: sys::napi_value) {
        let taken = match self.js.lock() {
            Ok(mut s) => {
                let counted = std::mem::replace(&mut s.counted, false);
                Some((
                    s.deferred.take(),
                    [s.func.take(), s.controller.take(), s.this.take()],
                    counted,
                ))
            }
            Err(_) => None,
        };
        let Some((d, refs, counted)) = taken else {
            return;
        };
        if counted {
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe { self.shared.end(env) };
        }
        for r in refs {
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe { free(env, r) };
        }
        if let Some(d) = d {
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe { d.settle(env, ok, v) };
        }
    }
}
