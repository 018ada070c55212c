//! Locks and semaphores on `RedisService`: argument checks, the lock degradation policy
//! (`lockFailOpen`), and wiring `withLock`/`withSemaphore` to the lease keeper in `core::lock`.

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Object, This, Unknown};
use napi::sys;
use napi_derive::napi;
use serde_json::json;

mod fast;
mod guarded;
mod options;

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Decode, Empty, Out};
use crate::binding::error::JsPromise;
use crate::binding::error::JsResult;
use crate::binding::service::RedisService;
use crate::core::lock::{self, LockOptions, Target};
use crate::core::policy::{Decision, Feature};
use options::{function, lock_opts, ACQUIRE_KEYS, TTL_KEYS, WITH_KEYS};

use crate::core::{Client, Error};
use crate::engine::batch::{Policy, Shape};
use crate::engine::js_thread::{JsEnv, JsRef};

/// `(target, options)` for the acquire methods.
fn acquire_opts(c: Ctx, t: Target, ttl: Unknown) -> Result<(Target, LockOptions), Error> {
    Ok((t, lock_opts(c, "ttl", Arg::from(ttl), ACQUIRE_KEYS)?))
}

/// `(target, token)` for the release methods.
fn with_token(c: Ctx, t: Target, token: Unknown) -> Result<(Target, String), Error> {
    Ok((t, options::token(c, Arg::from(token))?))
}

fn policy(client: &Client) -> Policy {
    Policy::of(&client.cfg, Feature::Locks)
}

impl RedisService {
    /// The lock named by the `key` argument.
    fn lock_target(&self, c: Ctx, key: Unknown) -> Result<Target, Error> {
        let k = Arg::from(key).key(c, "key")?;
        Ok(Target::lock(self.prefix(), &k))
    }

    /// The semaphore named by the `key` argument, with the `limit` argument (1 where the method
    /// takes none: release and extend do not need it).
    fn sem_target(&self, c: Ctx, key: Unknown, limit: Option<Unknown>) -> Result<Target, Error> {
        let k = Arg::from(key).key(c, "key")?;
        let n = limit.map_or(Ok(1), |l| options::limit(c, Arg::from(l)))?;
        Ok(Target::semaphore(self.prefix(), &k, n))
    }

    /// `extendLock` / `extendSemaphore`.
    fn extend(
        &self,
        env: &Env,
        c: Ctx,
        target: Result<Target, Error>,
        token: Unknown,
        ttl: Unknown,
    ) -> JsResult<JsPromise> {
        let parsed = target.and_then(|t| {
            let tok = options::token(c, Arg::from(token))?;
            let o = lock_opts(c, "ttl", Arg::from(ttl), TTL_KEYS)?;
            Ok((t, (tok, o.ttl_ms)))
        });
        self.lock_cmd(
            env,
            parsed,
            true,
            |t, (tok, ttl), h| t.extend_cmd(tok, *ttl, h),
            Decode::Bool,
            Empty::True,
        )
    }

    /// `isLocked` / `getLockTtl`: one plain command on the lock's key.
    fn on_key(
        &self,
        env: &Env,
        target: Result<Target, Error>,
        name: &'static str,
        decode: Decode,
        empty: Empty,
    ) -> JsResult<JsPromise> {
        let make = move |t: &Target, _: &(), _| {
            let mut cmd = redis::cmd(name);
            cmd.arg(t.redis_key());
            cmd
        };
        self.lock_cmd(env, target.map(|t| (t, ())), false, make, decode, empty)
    }

    /// Sends one lock command in the service's ordinary batch (one round trip, no task), under
    /// the lock degradation policy. `make(target, args, by_hash)` builds it; scripts go out as
    /// `EVALSHA` with their `EVAL` form kept for a `NOSCRIPT` reply.
    fn lock_cmd<X>(
        &self,
        env: &Env,
        parsed: Result<(Target, X), Error>,
        script: bool,
        make: impl Fn(&Target, &X, bool) -> redis::Cmd,
        decode: Decode,
        empty: Empty,
    ) -> JsResult<JsPromise> {
        self.submit_built(
            env,
            parsed.map(|(t, x)| move |h| make(&t, &x, h)),
            script,
            Shape::One(decode, empty),
            policy(&self.client),
        )
    }

    /// `acquireLock` and friends: one script call in the batch, or with `waitMs` a retry loop on
    /// the runtime. `decode` shapes the reply of a success (`LockToken`, `Fenced`, `Auto`).
    fn acquire(
        &self,
        env: &Env,
        parsed: Result<(Target, LockOptions), Error>,
        decode: Decode,
        empty: Empty,
    ) -> JsResult<JsPromise> {
        if let Ok((_, o)) = &parsed {
            if o.wait_ms > 0 {
                let fenced = decode == Decode::Fenced;
                let notices = Arc::clone(&self.notices);
                return self.lock_op(
                    env,
                    parsed,
                    move || Out::Empty(empty),
                    move |client, (t, o)| async move {
                        let n = Some(&notices);
                        let a = lock::acquire(&client, &t, &o.token(), &o.acquire(), n).await?;
                        Ok(Out::Json(match a {
                            None => serde_json::Value::Null,
                            Some(a) if fenced => {
                                json!({ "token": a.token, "fencingToken": a.fencing_token })
                            }
                            Some(a) => json!(a.token),
                        }))
                    },
                );
            }
        }
        let parsed = parsed.map(|(t, o)| (t, (o.token(), o.ttl_ms)));
        if decode == Decode::LockToken {
            if let Ok((t, (token, ttl))) = &parsed {
                if let Some(cmd) = t.plain_acquire_cmd(token, *ttl) {
                    let token = token.clone();
                    let convert: crate::engine::batch::Convert = Box::new(move |v| {
                        Ok(match v? {
                            Some(redis::Value::Okay) => Out::Json(serde_json::Value::String(token)),
                            Some(_) => Out::Empty(Empty::Null),
                            None => Out::Empty(empty),
                        })
                    });
                    return self.submit_work(
                        env,
                        crate::core::work::Work::One(cmd),
                        Shape::Custom(convert),
                        policy(&self.client),
                    );
                }
            }
        }
        let origin = self.client.waiters.origin().to_vec();
        self.lock_cmd(
            env,
            parsed,
            true,
            move |t, (token, ttl), h| t.acquire_cmd(token, *ttl, &origin, h),
            decode,
            empty,
        )
    }

    /// `releaseLock` / `releaseSemaphore`. When this process has callers waiting for the same
    /// key, the release goes through the runtime so it can wake one of them at once.
    fn release(&self, env: &Env, parsed: Result<(Target, String), Error>) -> JsResult<JsPromise> {
        if let Ok((t, _)) = &parsed {
            if self.client.waiters.has(t.redis_key()) {
                return self.lock_op(
                    env,
                    parsed,
                    || Out::Empty(Empty::True),
                    |client, (t, token)| async move {
                        Ok(Out::Json(json!(lock::release(&client, &t, &token).await?)))
                    },
                );
            }
        }
        let origin = self.client.waiters.origin().to_vec();
        self.lock_cmd(
            env,
            parsed,
            true,
            move |t, token, h| t.release_cmd(token, &origin, h),
            Decode::Bool,
            Empty::True,
        )
    }

    /// Runs a lock operation under the lock degradation policy: while Redis is unreachable (or
    /// the service disabled) it rejects, or with `lockFailOpen` resolves `degraded` after one
    /// warning per outage.
    fn lock_op<P, F, Fut>(
        &self,
        env: &Env,
        parsed: Result<P, Error>,
        degraded: impl FnOnce() -> Out,
        op: F,
    ) -> JsResult<JsPromise>
    where
        P: Send + 'static,
        F: FnOnce(Arc<Client>, P) -> Fut,
        Fut: Future<Output = Result<Out, Error>> + Send + 'static,
    {
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.shared.settle_now(raw, d, Err(e));
                return Ok(JsPromise(promise));
            }
        };
        let client = Arc::clone(&self.client);
        let policy = policy(&client);
        if let Some(decision) = policy.when_disabled(&client) {
            let r = match decision {
                Decision::Degrade => Ok(degraded()),
                Decision::Fail(e) => Err(e),
            };
            self.shared.settle_now(raw, d, r);
            return Ok(JsPromise(promise));
        }
        let fut = op(Arc::clone(&client), parsed);
        let fallback = degraded();
        self.shared.spawn(raw, d, async move {
            match fut.await {
                Err(e) => match policy.after(&client, e) {
                    Decision::Degrade => Ok(fallback),
                    Decision::Fail(e) => Err(e),
                },
                ok => ok,
            }
        });
        Ok(JsPromise(promise))
    }

    /// `withLock` / `withSemaphore`: reads the arguments, then runs the call on the fast path
    /// (`fast.rs`).
    #[allow(clippy::too_many_arguments)]
    fn guarded(
        &self,
        env: &Env,
        this: sys::napi_value,
        c: Ctx,
        target: Result<Target, Error>,
        func: Unknown,
        (opts_name, opts): (&str, Unknown),
    ) -> JsResult<JsPromise> {
        let parsed = target.and_then(|t| {
            let f = function(c, Arg::from(func))?;
            Ok((t, lock_opts(c, opts_name, Arg::from(opts), WITH_KEYS)?, f))
        });
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        match parsed {
            Ok((target, opts, func)) => {
                let (func, this) = (JsRef::new(raw, func), JsRef::new(raw, this));
                self.guard_fast(raw, d, target, opts, func, this);
            }
            Err(e) => self.shared.settle_now(raw, d, Err(e)),
        }
        Ok(JsPromise(promise))
    }
}

#[napi]
impl RedisService {
    /// Tries to take the lock `key`: resolves its token (pass it to `releaseLock`/`extendLock`),
    /// or `null` when someone else holds it. `ttl` is a number of **seconds** (default 30) or
    /// `{ ttlMs | ttlSeconds, token?, waitMs?, retryDelayMs? }`: `waitMs` (default 0 = try once)
    /// keeps retrying, `retryDelayMs` (default 50, jittered ±50%) apart. The lock expires by itself
    /// after the TTL. Rejects with `ERR_CONNECTION` while Redis is unreachable unless `lockFailOpen`.
    ///
    /// `const token = await redis.acquireLock('process:123', 300); // 300 s`
    #[napi(
        ts_args_type = "key: RedisKey, ttl?: number | AcquireLockOptions",
        ts_return_type = "Promise<string | null>"
    )]
    pub fn acquire_lock(&self, env: Env, key: Unknown, ttl: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "acquireLock",
        };
        let parsed = self
            .lock_target(c, key)
            .and_then(|t| acquire_opts(c, t, ttl));
        self.acquire(&env, parsed, Decode::LockToken, Empty::Token)
    }

    /// Like `acquireLock`, but resolves `{ token, fencingToken }` (or `null`): `fencingToken`
    /// increases strictly with every acquisition of `key`, so a resource can refuse writes that
    /// carry an older one (see the README on fencing).
    #[napi(
        ts_args_type = "key: RedisKey, ttl?: number | AcquireLockOptions",
        ts_return_type = "Promise<FencedLock | null>"
    )]
    pub fn acquire_lock_with_fencing(
        &self,
        env: Env,
        key: Unknown,
        ttl: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "acquireLockWithFencing",
        };
        let parsed = self
            .lock_target(c, key)
            .and_then(|t| acquire_opts(c, t, ttl));
        self.acquire(&env, parsed, Decode::Fenced, Empty::FencedToken)
    }

    /// Releases the lock `key` if `token` holds it (atomic compare-and-delete): `true` only then.
    /// Never deletes a lock someone else acquired after yours expired.
    #[napi(
        ts_args_type = "key: RedisKey, token: string",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn release_lock(&self, env: Env, key: Unknown, token: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "releaseLock",
        };
        self.release(
            &env,
            self.lock_target(c, key)
                .and_then(|t| with_token(c, t, token)),
        )
    }

    /// Resets the lock's TTL if `token` holds it: `true` only then. `ttl` is a number of
    /// **seconds** (default 30) or `{ ttlMs | ttlSeconds }`.
    #[napi(
        ts_args_type = "key: RedisKey, token: string, ttl?: number | TtlOptions",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn extend_lock(
        &self,
        env: Env,
        key: Unknown,
        token: Unknown,
        ttl: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "extendLock",
        };
        self.extend(&env, c, self.lock_target(c, key), token, ttl)
    }

    /// Whether anyone holds the lock `key` right now.
    #[napi(ts_args_type = "key: RedisKey", ts_return_type = "Promise<boolean>")]
    pub fn is_locked(&self, env: Env, key: Unknown) -> JsResult<JsPromise> {
        let c = Ctx { method: "isLocked" };
        self.on_key(
            &env,
            self.lock_target(c, key),
            "EXISTS",
            Decode::Bool,
            Empty::False,
        )
    }

    /// Milliseconds until the lock `key` expires, or `null` when nobody holds it.
    #[napi(
        ts_args_type = "key: RedisKey",
        ts_return_type = "Promise<number | null>"
    )]
    pub fn get_lock_ttl(&self, env: Env, key: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "getLockTtl",
        };
        self.on_key(
            &env,
            self.lock_target(c, key),
            "PTTL",
            Decode::TtlMs,
            Empty::Null,
        )
    }

    /// Runs `fn` while holding the lock `key`, and resolves what `fn` returns (its rejection is
    /// passed through as the same error object). `ttl` is a number of **seconds** (default 30)
    /// or `{ ttlMs | ttlSeconds, waitMs?, retryDelayMs?, autoExtend?, maxHoldMs? }`.
    ///
    /// `fn` receives `{ token, fencingToken, signal, degraded }`. The lease is renewed from Rust
    /// about every third of the TTL while `fn` runs (`autoExtend`, default true; up to `maxHoldMs`
    /// if given), even when the JS event loop is blocked. `signal` aborts the moment the lock is
    /// known lost; the call then rejects with `ERR_LOCK_LOST` after `fn` settles. Not acquired
    /// within `waitMs` (default 0 = one try): rejects with `ERR_LOCK_NOT_ACQUIRED` (`err.key`).
    /// The lock is released on every path.
    #[napi(
        ts_generic_types = "T",
        ts_args_type = "key: RedisKey, fn: (lock: LockContext) => T | PromiseLike<T>, ttl?: number | WithLockOptions",
        ts_return_type = "Promise<Awaited<T>>"
    )]
    pub fn with_lock<'a>(
        &self,
        env: Env,
        this: This<'a, Object<'a>>,
        key: Unknown,
        func: Unknown,
        ttl: Unknown,
    ) -> JsResult<JsPromise> {
        use napi::JsValue;
        self.with_lock_on(env, this.object.raw(), key, func, ttl)
    }

    /// Takes one of `limit` slots of the semaphore `key`: resolves a token, or `null` when all are
    /// taken. `ttl` as for `acquireLock` (seconds, default 30): a crashed holder's slot frees
    /// itself after it.
    #[napi(
        ts_args_type = "key: RedisKey, limit: number, ttl?: number | AcquireLockOptions",
        ts_return_type = "Promise<string | null>"
    )]
    pub fn acquire_semaphore(
        &self,
        env: Env,
        key: Unknown,
        limit: Unknown,
        ttl: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "acquireSemaphore",
        };
        let parsed = self
            .sem_target(c, key, Some(limit))
            .and_then(|t| acquire_opts(c, t, ttl));
        self.acquire(&env, parsed, Decode::Auto, Empty::Token)
    }

    /// Frees the semaphore slot held by `token`: `true` when it still held one.
    #[napi(
        ts_args_type = "key: RedisKey, token: string",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn release_semaphore(&self, env: Env, key: Unknown, token: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "releaseSemaphore",
        };
        let target = self.sem_target(c, key, None);
        self.release(&env, target.and_then(|t| with_token(c, t, token)))
    }

    /// Extends the semaphore slot held by `token` to `ttl` from now (seconds, or
    /// `{ ttlMs | ttlSeconds }`): `true` when it still held one.
    #[napi(
        ts_args_type = "key: RedisKey, token: string, ttl?: number | TtlOptions",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn extend_semaphore(
        &self,
        env: Env,
        key: Unknown,
        token: Unknown,
        ttl: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "extendSemaphore",
        };
        self.extend(&env, c, self.sem_target(c, key, None), token, ttl)
    }

    /// Runs `fn` while holding one of `limit` slots of the semaphore `key`; everything else as
    /// `withLock` (`fencingToken` is `null`). `options`: seconds or
    /// `{ ttlMs | ttlSeconds, waitMs?, retryDelayMs?, autoExtend?, maxHoldMs? }`.
    #[napi(
        ts_generic_types = "T",
        ts_args_type = "key: RedisKey, limit: number, fn: (lock: LockContext) => T | PromiseLike<T>, options?: number | WithLockOptions",
        ts_return_type = "Promise<Awaited<T>>"
    )]
    pub fn with_semaphore<'a>(
        &self,
        env: Env,
        this: This<'a, Object<'a>>,
        key: Unknown,
        limit: Unknown,
        func: Unknown,
        options: Unknown,
    ) -> JsResult<JsPromise> {
        use napi::JsValue;
        self.with_semaphore_on(env, this.object.raw(), key, limit, func, options)
    }
}

/// `withLock` / `withSemaphore` given the receiver's JS object (`this`), for the generated
/// methods and the direct entry points (`commands::hot`) alike.
impl RedisService {
    pub(crate) fn with_lock_on(
        &self,
        env: Env,
        this: sys::napi_value,
        key: Unknown,
        func: Unknown,
        ttl: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx { method: "withLock" };
        let target = self.lock_target(c, key);
        self.guarded(&env, this, c, target, func, ("ttl", ttl))
    }

    pub(crate) fn with_semaphore_on(
        &self,
        env: Env,
        this: sys::napi_value,
        key: Unknown,
        limit: Unknown,
        func: Unknown,
        options: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "withSemaphore",
        };
        let target = self.sem_target(c, key, Some(limit));
        self.guarded(&env, this, c, target, func, ("options", options))
    }
}
