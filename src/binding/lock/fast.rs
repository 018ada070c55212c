//! `withLock` / `withSemaphore` on the fast path: the acquisition and the release go out in the
//! service's ordinary batch from the JS thread (one round trip each, no thread hop), the
//! callback is called where the acquisition's reply is read, and the lease is handed to the
//! service's `Keeper` for renewal, without a round trip or a wake-up of its own. A try that finds
//! the lock taken, with `waitMs` left, waits on the runtime (`core::lock::Turn`: woken at once by
//! a release in this process or a notice from another, else by its jittered retry delay) and
//! then tries again from the JS thread the same way, so the callback, the lease and the release
//! stay on this path however long the wait.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use super::guarded::{Guarded, Release};
use super::policy;
use crate::binding::js::Js;
use crate::binding::service::RedisService;
use crate::core::lock::{self, Keeper, KeptLease, LeaseHooks, LockOptions, Notices, Target, Turn};
use crate::core::policy::{Feature, Policy};
use crate::core::work::Work;
use crate::core::{Client, Error};
use crate::engine::batch::{Batcher, Convert, Shape};
use crate::engine::completer::Shared;
use crate::engine::js_thread::{Deferred, JsEnv, JsRef, JsThread};
use crate::engine::outcome::Out;

/// One call between its acquisition and its callback.
struct Call {
    shared: Arc<Shared>,
    /// What the call needs after its JS side exists.
    rest: Rest,
    token: String,
    /// When the latest try was queued: the lease is valid until this + TTL at the latest.
    sent_at: Instant,
    /// When the first try was queued (`waitMs` counts from there).
    first_sent: Instant,
    func: Option<JsRef>,
    this: Option<JsRef>,
}

/// What a call still needs once its JS side exists.
struct Rest {
    client: Arc<Client>,
    keeper: Arc<Keeper>,
    notices: Arc<Notices>,
    batcher: JsThread<Rc<Batcher>>,
    target: Target,
    opts: LockOptions,
}

/// Sends `cmd` (a script: `EVALSHA` with its `EVAL` form kept for `NOSCRIPT`, when the batcher
/// sends by hash) in the ordinary batch; `then` gets its reply on the JS thread with `d`.
fn send(
    batcher: &Batcher,
    env: JsEnv,
    d: Deferred,
    make: impl Fn(bool) -> redis::Cmd,
    policy: Policy,
    then: impl FnOnce(&Js, Deferred, Result<Option<Value>, Error>) + Send + 'static,
) {
    let by_hash = batcher.scripts_by_hash();
    let retry = by_hash.then(|| make(false));
    let convert: Convert =
        Box::new(move |r| Ok(Out::Then(Box::new(move |env, d| then(&Js::new(env), d, r)))));
    batcher.submit_with(
        env,
        d,
        Work::One(make(by_hash)),
        Shape::Custom(convert),
        policy,
        retry,
    );
}

impl RedisService {
    /// `withLock` / `withSemaphore` from the JS thread: acquires, then runs `func` (see the
    /// module doc). `d` settles with `func`'s outcome.
    pub(super) fn guard_fast(
        &self,
        env: JsEnv,
        d: Deferred,
        target: Target,
        opts: LockOptions,
        func: Option<JsRef>,
        this: Option<JsRef>,
    ) {
        let now = Instant::now();
        let call = Call {
            shared: Arc::clone(&self.shared),
            token: opts.token(),
            sent_at: now,
            first_sent: now,
            rest: Rest {
                client: Arc::clone(&self.client),
                keeper: Arc::clone(&self.keeper),
                notices: Arc::clone(&self.notices),
                batcher: JsThread::new(Rc::clone(&self.batcher)),
                target,
                opts,
            },
            func,
            this,
        };
        call.try_now(env, d, None);
    }
}

impl Call {
    /// Sends a try in the service's batch; `turn`: the wait it belongs to, after a refusal.
    fn try_now(mut self, env: JsEnv, d: Deferred, turn: Option<Turn>) {
        let Some(batcher) = self.rest.batcher.get().map(Rc::clone) else {
            // Not the service's thread (cannot happen: tries run on the JS thread).
            let e = Error::Connection("internal error in @app/redis (please report it)".into());
            return self.reject(&Js::new(env), d, &e);
        };
        self.sent_at = Instant::now();
        let (target, token) = (self.rest.target.clone(), self.token.clone());
        let ttl = self.rest.opts.ttl_ms;
        let p = policy(&self.rest.client);
        let origin = self.rest.client.waiters.origin().to_vec();
        send(
            &batcher,
            env,
            d,
            move |by_hash| target.acquire_cmd(&token, ttl, &origin, by_hash),
            p,
            move |js, d, r| self.acquired(js, d, r, turn),
        );
    }

    /// A try answered (`Ok(None)`: degraded under `lockFailOpen`).
    fn acquired(self, js: &Js, d: Deferred, r: Result<Option<Value>, Error>, turn: Option<Turn>) {
        let lease = match r {
            Ok(None) => None,
            Ok(Some(v)) => match self.rest.target.acquired(&v, &self.token, self.sent_at) {
                Some(a) => Some(a),
                None if self.rest.opts.wait_ms > 0 => return self.wait(js, d, turn),
                None => {
                    let e = self.rest.target.not_acquired(0);
                    return self.reject(js, d, &e);
                }
            },
            Err(e) => return self.reject(js, d, &e),
        };
        // Acquired: no longer among the waiters.
        drop(turn);
        let (g, rest) = self.guarded(js, d);
        let Some(a) = lease else {
            // Degraded (no lease): the callback still starts after this call returns, as always.
            g.start(None);
            return;
        };
        let on_lost = {
            let g = Arc::clone(&g);
            Box::new(move |e| g.lost(e))
        };
        match rest
            .keeper
            .keep(&rest.client, &rest.target, &a, &rest.opts.hold(), on_lost)
        {
            Ok(kept) => {
                let token = a.token.clone();
                let release = release(rest.batcher, rest.client, rest.target, token, kept);
                g.run(js, Some(a), Some(release));
            }
            // No runtime to renew it: the lock runs out by its TTL.
            Err(e) => g.fail_here(js, &e),
        }
    }

    /// Refused with `waitMs` not yet spent: waits on the runtime for its turn, then tries again
    /// from the JS thread. The first refusal starts the wait (listening for releases) and tries
    /// again at once, since a release may have come between the try and the listening.
    fn wait(self, js: &Js, d: Deferred, turn: Option<Turn>) {
        let wait_ms = self.rest.opts.wait_ms;
        if turn.as_ref().is_some_and(|t| t.expired(Instant::now())) {
            let e = self.rest.target.not_acquired(wait_ms);
            return self.reject(js, d, &e);
        }
        let rt = match crate::core::connection::runtime() {
            Ok(rt) => rt,
            Err(e) => return self.reject(js, d, &e),
        };
        // Pending (keeping the process alive) while it waits off the JS thread.
        self.shared.begin(js.env());
        let shared = Arc::clone(&self.shared);
        let deadline = self.first_sent + Duration::from_millis(wait_ms);
        rt.spawn(async move {
            let turn = match turn {
                Some(t) => {
                    t.next().await;
                    t
                }
                None => {
                    let r = &self.rest;
                    let notices = Some(&r.notices);
                    Turn::start(
                        &r.client,
                        &r.target,
                        deadline,
                        r.opts.retry_delay_ms,
                        notices,
                    )
                    .await
                }
            };
            let back = Arc::clone(&shared);
            back.run_on_js(Box::new(move |env| {
                shared.end(env);
                self.try_now(env, d, Some(turn));
            }));
        });
    }

    /// The call's JS side, settling `d`; counted as pending (keeping the process alive) until
    /// it settles. The rest of the call comes back for the lease.
    fn guarded(self, js: &Js, d: Deferred) -> (Arc<Guarded>, Rest) {
        self.shared.begin(js.env());
        let key = self.rest.target.user_key.clone();
        let g = Guarded::new(
            &self.shared,
            &self.rest.client.stats,
            self.first_sent,
            d,
            self.func,
            self.this,
            key,
        );
        (g, self.rest)
    }

    fn reject(self, js: &Js, d: Deferred, e: &Error) {
        // A call that never got its lease.
        self.rest
            .client
            .stats
            .locks_failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        js.release(self.func);
        js.release(self.this);
        d.settle(js.env(), false, js.error(e));
    }
}

/// What runs when the callback settles: the keeper stops renewing, the release goes out, and its
/// answer settles the call.
fn release(
    batcher: JsThread<Rc<Batcher>>,
    client: Arc<Client>,
    target: Target,
    token: String,
    kept: KeptLease,
) -> Release {
    Box::new(move |js, d, g| {
        // Renewal stops before the release goes out, so a late renewal cannot find the lock gone
        // and call it lost.
        let lost = kept.end();
        let t = target.clone();
        let origin = client.waiters.origin().to_vec();
        send(
            &batcher,
            js.env(),
            d,
            move |by_hash| t.release_cmd(&token, &origin, by_hash),
            Policy::strict(Feature::Locks),
            move |js, d, r| {
                let end = lock::ended(lost, lock::released(&client, &target, r));
                g.released(js, d, end);
            },
        );
    })
}
