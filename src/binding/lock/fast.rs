//! `withLock` / `withSemaphore` on the fast path: the acquisition and the release go out in the
//! service's ordinary batch from the JS thread (one round trip each, no thread hop), the
//! callback is called where the acquisition's reply is read, and the lease is handed to the
//! service's `Keeper` for renewal, without a round trip or a wake-up of its own. A first try that
//! finds the lock taken, with `waitMs` to wait, continues on the runtime (`core::lock::guard`:
//! jittered retries, woken at once by a release in this process).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use redis::Value;

use super::guarded::{Guarded, Release};
use super::policy;
use crate::binding::js::Js;
use crate::binding::service::RedisService;
use crate::core::lock::{self, Keeper, KeptLease, LeaseHooks, LockOptions, Notices, Target};
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
    /// When the acquisition was queued: the lease is valid until this + TTL at the latest.
    sent_at: Instant,
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
        let call = Call {
            shared: Arc::clone(&self.shared),
            token: opts.token(),
            sent_at: Instant::now(),
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
        let (target, token) = (call.rest.target.clone(), call.token.clone());
        let ttl = call.rest.opts.ttl_ms;
        send(
            &self.batcher,
            env,
            d,
            move |by_hash| target.acquire_cmd(&token, ttl, by_hash),
            policy(&self.client),
            move |js, d, r| call.acquired(js, d, r),
        );
    }
}

impl Call {
    /// The acquisition answered (`Ok(None)`: degraded under `lockFailOpen`).
    fn acquired(self, js: &Js, d: Deferred, r: Result<Option<Value>, Error>) {
        let lease = match r {
            Ok(None) => None,
            Ok(Some(v)) => match self.rest.target.acquired(&v, &self.token, self.sent_at) {
                Some(a) => Some(a),
                None if self.rest.opts.wait_ms > 0 => return self.wait(js, d),
                None => {
                    let e = self.rest.target.not_acquired(0);
                    return self.reject(js, d, &e);
                }
            },
            Err(e) => return self.reject(js, d, &e),
        };
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

    /// Refused at once with `waitMs` to wait: the runtime waits and runs the call.
    fn wait(self, js: &Js, d: Deferred) {
        let (g, rest) = self.guarded(js, d);
        let rt = match crate::core::connection::runtime() {
            Ok(rt) => rt,
            Err(e) => return g.fail_here(js, &e),
        };
        let (client, target, opts, notices) = (rest.client, rest.target, rest.opts, rest.notices);
        rt.spawn(async move {
            let p = policy(&client);
            let task = lock::guard(&client, &target, &opts, p, Some(&notices), &g);
            if std::panic::AssertUnwindSafe(task)
                .catch_unwind()
                .await
                .is_err()
            {
                g.fail(Error::Connection(
                    "internal error in @app/redis (please report it)".into(),
                ));
            }
        });
    }

    /// The call's JS side, settling `d`; counted as pending (keeping the process alive) until
    /// it settles. The rest of the call comes back for the lease.
    fn guarded(self, js: &Js, d: Deferred) -> (Arc<Guarded>, Rest) {
        self.shared.begin(js.env());
        let key = self.rest.target.user_key.clone();
        let g = Guarded::new(&self.shared, d, self.func, self.this, key);
        (g, self.rest)
    }

    fn reject(self, js: &Js, d: Deferred, e: &Error) {
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
