//! The JS-thread half of `withLock` / `withSemaphore`: call the user's callback with
//! `{ token, fencingToken, signal, degraded }`, follow whatever it returns (a value, a promise, a
//! synchronous throw) without the value ever leaving JS, tell the lease keeper when it settled,
//! abort the `AbortSignal` when the keeper reports the lease lost, and finally settle the
//! caller's promise with the callback's own value or error object.
//!
//! The lease itself (acquire, renewal, release) lives in `core::lock`; this file only moves
//! events between it and JS. On the fast path (`fast.rs`) the callback is started right where the
//! acquisition's reply is read, and its settling hands the caller's promise to the release.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::sys;
use tokio::sync::oneshot;

use crate::binding::follow;
use crate::binding::js::Js;
use crate::core::lock::{Acquired, HoldEnd, LeaseHooks};
use crate::core::{Error, Level};
use crate::engine::completer::Shared;
use crate::engine::js_thread::{Deferred, JsRef, JsThread};
use crate::engine::per_env;

/// What the callback settled with: the value or error, kept (see `Js::keep`); `None` when it
/// could not be kept (the environment is shutting down).
enum Outcome {
    Value(Option<JsRef>),
    Thrown(Option<JsRef>),
}

#[derive(Default)]
struct JsSide {
    deferred: Option<Deferred>,
    func: Option<JsRef>,
    /// The service object, kept alive (with its completion queue) until the call settles.
    this: Option<JsRef>,
    /// The callback's context, kept to abort its signal while `fn` runs.
    ctx: Option<JsRef>,
    outcome: Option<Outcome>,
    done: Option<oneshot::Sender<()>>,
    /// Whether this call is counted as pending (keeping the process alive): from the call until
    /// it settles, except after the lease was reported lost while `fn` still runs.
    counted: bool,
    /// The fast path's release, run when `fn` settles (instead of telling a keeper task).
    release: Option<JsThread<RefCell<Option<Release>>>>,
}

/// Releases a fast-path lease once the callback settled: sends the release with the caller's
/// promise, which [`Guarded::released`] gets back with the outcome.
pub type Release = Box<dyn FnOnce(&Js, Deferred, Arc<Guarded>)>;

/// `core::lock::guard`'s events, moved onto the JS thread.
impl LeaseHooks for Arc<Guarded> {
    /// Runs the callback on the JS thread (`None` = degraded, no lease: nobody waits for it to
    /// settle, so the call settles by itself).
    fn start(&self, lease: Option<Acquired>) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if lease.is_some() {
            if let Ok(mut js) = self.js.lock() {
                js.done = Some(tx);
            }
        }
        let me = Arc::clone(self);
        self.shared
            .run_on_js(Box::new(move |env| me.call(&Js::new(env), lease)));
        rx
    }

    /// Marks the lease lost and aborts the signal on the JS thread.
    fn lost(&self, err: Error) {
        self.lost.store(true, Ordering::Release);
        self.stats.locks_lost.fetch_add(1, Ordering::Relaxed);
        let me = Arc::clone(self);
        self.shared
            .run_on_js(Box::new(move |env| me.abort(&Js::new(env), &err)));
    }

    /// The lease ended; settles the caller's promise.
    fn finish(&self, end: HoldEnd) {
        let me = Arc::clone(self);
        self.shared
            .run_on_js(Box::new(move |env| me.complete(&Js::new(env), end)));
    }

    /// The lease was never acquired; rejects with `e`.
    fn fail(&self, e: Error) {
        self.stats.locks_failed.fetch_add(1, Ordering::Relaxed);
        let me = Arc::clone(self);
        self.shared.run_on_js(Box::new(move |env| {
            let js = Js::new(env);
            me.settle(&js, false, js.error(&e));
        }));
    }
}

/// One `withLock`/`withSemaphore` call.
pub struct Guarded {
    shared: Arc<Shared>,
    /// The service's counters (`stats()`), and when the call's first try went out.
    stats: Arc<crate::core::stats::Stats>,
    made: std::time::Instant,
    /// The user's key, for `ERR_LOCK_LOST`.
    key: String,
    lost: AtomicBool,
    js: Mutex<JsSide>,
}

impl Guarded {
    /// Prepares a call: `d` settles with the callback's outcome; `func` is the callback and
    /// `this` the service (kept alive until then). The call counts as pending (the caller has
    /// already called `shared.begin`).
    pub fn new(
        shared: &Arc<Shared>,
        stats: &Arc<crate::core::stats::Stats>,
        made: std::time::Instant,
        d: Deferred,
        func: Option<JsRef>,
        this: Option<JsRef>,
        key: String,
    ) -> Arc<Guarded> {
        Arc::new(Guarded {
            shared: Arc::clone(shared),
            stats: Arc::clone(stats),
            made,
            key,
            lost: AtomicBool::new(false),
            js: Mutex::new(JsSide {
                deferred: Some(d),
                func,
                this,
                counted: true,
                ..JsSide::default()
            }),
        })
    }

    /// Runs the callback now, on the JS thread (`None`: degraded, no lease); `release` (the fast
    /// path's) runs when it settles.
    pub fn run(self: &Arc<Self>, js: &Js, lease: Option<Acquired>, release: Option<Release>) {
        if let Some(r) = release {
            if let Ok(mut s) = self.js.lock() {
                s.release = Some(JsThread::new(RefCell::new(Some(r))));
            }
        }
        self.call(js, lease);
    }

    /// The fast path's release answered: settles the caller's promise `d` as the lease ended.
    pub fn released(self: &Arc<Self>, js: &Js, d: Deferred, end: HoldEnd) {
        if let Ok(mut s) = self.js.lock() {
            s.deferred = Some(d);
        }
        self.complete(js, end);
    }

    /// Rejects with `e` now, on the JS thread (the callback never ran).
    pub fn fail_here(&self, js: &Js, e: &Error) {
        self.stats.locks_failed.fetch_add(1, Ordering::Relaxed);
        self.settle(js, false, js.error(e));
    }

    /// `{ token, fencingToken, signal, degraded }` for the callback (`js/addon-realm.js`'s
    /// `LockContext`: `signal` is made on first read).
    fn context(js: &Js, lease: &Option<Acquired>) -> sys::napi_value {
        let (token, fence) = match lease {
            Some(a) => (
                js.str(a.token.as_bytes()),
                a.fencing_token.map_or_else(|| js.null(), |f| js.int(f)),
            ),
            None => (js.null(), js.null()),
        };
        let degraded = js.bool(lease.is_none());
        per_env::get(js.env(), per_env::Fn::LockContext)
            .and_then(|make| {
                js.call(js.undefined(), make, &[token, fence, degraded])
                    .ok()
            })
            .unwrap_or_else(|| {
                // Not set up (the environment is shutting down): a plain object, no signal.
                let ctx = js.object();
                js.set_named(ctx, "token", token);
                js.set_named(ctx, "fencingToken", fence);
                js.set_named(ctx, "degraded", degraded);
                ctx
            })
    }

    fn call(self: &Arc<Self>, js: &Js, lease: Option<Acquired>) {
        match &lease {
            Some(a) => self.stats.lock_acquired(
                u64::try_from(a.sent_at.saturating_duration_since(self.made).as_micros())
                    .unwrap_or(u64::MAX),
            ),
            None => {
                self.stats.locks_degraded.fetch_add(1, Ordering::Relaxed);
            }
        }
        let ctx = Self::context(js, &lease);
        let func = match self.js.lock() {
            Ok(mut s) => {
                s.ctx = JsRef::new(js.env(), ctx);
                s.func.take()
            }
            Err(_) => None,
        };
        let Some(func) = func else {
            return self.settled(js, Outcome::Value(None));
        };
        let func = func.take(js.env());
        let me = Arc::clone(self);
        follow::call(
            js,
            func,
            &[ctx],
            Box::new(move |js, ok, v| {
                let kept = js.keep(v);
                me.settled(
                    js,
                    if ok {
                        Outcome::Value(kept)
                    } else {
                        Outcome::Thrown(kept)
                    },
                );
            }),
        );
    }

    /// The callback settled: record it, then let the keeper release (or finish at once when
    /// there is no lease).
    fn settled(self: &Arc<Self>, js: &Js, outcome: Outcome) {
        let (done, ctx, recount, release) = match self.js.lock() {
            Ok(mut s) => {
                if s.outcome.is_some() {
                    return;
                }
                s.outcome = Some(outcome);
                let recount = !s.counted;
                s.counted = true;
                let release = match s
                    .release
                    .take()
                    .and_then(|r| r.get().and_then(|r| r.borrow_mut().take()))
                {
                    Some(r) => s.deferred.take().map(|d| (r, d)),
                    None => None,
                };
                (s.done.take(), s.ctx.take(), recount, release)
            }
            Err(_) => return,
        };
        // Pending again until the release is answered.
        if recount {
            self.shared.begin(js.env());
        }
        // Settled: a later loss no longer aborts anything (the call rejects instead).
        js.release(ctx);
        if let Some((release, d)) = release {
            // The fast path: the release goes out now; `released` settles the call.
            return release(js, d, Arc::clone(self));
        }
        match done.map(|tx| tx.send(())) {
            // The keeper releases, then `finish` settles the call.
            Some(Ok(())) => {}
            // No lease (degraded), or the keeper is gone: settle now.
            _ => self.complete(js, HoldEnd::Released(true)),
        }
    }

    fn abort(&self, js: &Js, err: &Error) {
        let (ctx, uncount) = match self.js.lock() {
            Ok(mut s) => {
                // Lost while `fn` runs: from now on only `fn`'s own work keeps the process alive
                // (a callback that never settles cannot hold it open forever).
                let uncount = s.counted && s.outcome.is_none();
                if uncount {
                    s.counted = false;
                }
                (s.ctx.take(), uncount)
            }
            Err(_) => (None, false),
        };
        if uncount {
            self.shared.end(js.env());
        }
        let Some(ctx) = ctx else { return };
        let ctx = ctx.take(js.env());
        let aborted = per_env::get(js.env(), per_env::Fn::AbortLockContext)
            .ok_or(())
            .and_then(|abort| {
                js.call(js.undefined(), abort, &[ctx, js.error(err)])
                    .map_err(|_| ())
            });
        if aborted.is_err() {
            // An abort listener threw: report it, never crash the process.
            self.shared.log_now(
                js.env(),
                Level::Error,
                "an AbortSignal listener threw while a lock was reported lost",
            );
        }
    }

    fn complete(&self, js: &Js, end: HoldEnd) {
        let (outcome, this) = match self.js.lock() {
            Ok(mut s) => (s.outcome.take(), s.this.take()),
            Err(_) => return,
        };
        js.release(this);
        let lost = match end {
            HoldEnd::Lost(why) => Some(why),
            HoldEnd::Released(_) if self.lost.load(Ordering::Acquire) => {
                Some("renewal failed".to_string())
            }
            HoldEnd::Released(_) => None,
            HoldEnd::Unreleased(e) => {
                self.shared.log_now(
                    js.env(),
                    Level::Warn,
                    &format!(
                        "a lock could not be released ({e}); it expires at the end of its TTL"
                    ),
                );
                None
            }
        };
        let (ok, v) = match outcome {
            Some(Outcome::Value(r)) => (true, r.map_or_else(|| js.undefined(), |r| js.kept(r))),
            Some(Outcome::Thrown(r)) => (
                false,
                r.map_or_else(
                    || {
                        js.error(&Error::Connection(
                            "the callback threw while the environment was shutting down".into(),
                        ))
                    },
                    |r| js.kept(r),
                ),
            ),
            None => (true, js.undefined()),
        };
        match lost {
            None => self.settle(js, ok, v),
            Some(why) => {
                let key = self.key.clone();
                let err = js.error(&Error::LockLost {
                    msg: format!("\"{key}\" was lost while its callback ran: {why}"),
                    key,
                });
                if !ok {
                    js.set_named(err, "cause", v);
                }
                self.settle(js, false, err);
            }
        }
    }

    fn settle(&self, js: &Js, ok: bool, v: sys::napi_value) {
        let taken = match self.js.lock() {
            Ok(mut s) => {
                let counted = std::mem::replace(&mut s.counted, false);
                Some((
                    s.deferred.take(),
                    [s.func.take(), s.ctx.take(), s.this.take()],
                    counted,
                ))
            }
            Err(_) => None,
        };
        let Some((d, refs, counted)) = taken else {
            return;
        };
        if counted {
            self.shared.end(js.env());
        }
        for r in refs {
            js.release(r);
        }
        if let Some(d) = d {
            d.settle(js.env(), ok, v);
        }
    }
}
