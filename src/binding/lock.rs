//! Locks and semaphores on `RedisService`: argument checks, the lock degradation policy
//! (`lockFailOpen`), and wiring `withLock`/`withSemaphore` to the lease keeper in `core::lock`.

use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use napi::bindgen_prelude::{Env, Object, This, Unknown};
use napi::sys;
use napi_derive::napi;
use serde_json::json;

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Decode, Empty, Out};
use crate::binding::error::JsResult;
use crate::binding::guarded::Guarded;
use crate::binding::js::Js;
use crate::binding::service::{JsPromise, RedisService};
use crate::core::lock::{self, AcquireOptions, HoldOptions, Target};
use crate::core::policy::{Decision, Feature};
use crate::core::{Client, Error};
use crate::engine::batch::{Policy, Shape};
use crate::engine::js_thread::JsEnv;

/// TTL when none is given: 30 seconds.
const DEFAULT_TTL_MS: u64 = 30_000;
/// Base delay between acquisition attempts while waiting, in milliseconds.
const DEFAULT_RETRY_DELAY_MS: u64 = 50;
/// Longest TTL / wait accepted: about 24.8 days, in milliseconds.
const MAX_MS: f64 = 2_147_483_647.0;

/// Parsed lock options.
#[derive(Clone, Debug)]
struct LockOpts {
    ttl_ms: u64,
    token: Option<String>,
    wait_ms: u64,
    retry_delay_ms: u64,
    auto_extend: bool,
    max_hold_ms: Option<u64>,
}

impl Default for LockOpts {
    fn default() -> Self {
        LockOpts {
            ttl_ms: DEFAULT_TTL_MS,
            token: None,
            wait_ms: 0,
            retry_delay_ms: DEFAULT_RETRY_DELAY_MS,
            auto_extend: true,
            max_hold_ms: None,
        }
    }
}

impl LockOpts {
    fn acquire(&self) -> AcquireOptions {
        AcquireOptions {
            ttl_ms: self.ttl_ms,
            wait_ms: self.wait_ms,
            retry_delay_ms: self.retry_delay_ms,
        }
    }

    fn hold(&self) -> HoldOptions {
        HoldOptions {
            ttl_ms: self.ttl_ms,
            auto_extend: self.auto_extend,
            max_hold_ms: self.max_hold_ms,
        }
    }
}

/// Every lock option, in the order `lock_opts` reads them.
const ALL_KEYS: &[&str] = &[
    "ttlMs",
    "ttlSeconds",
    "token",
    "waitMs",
    "retryDelayMs",
    "autoExtend",
    "maxHoldMs",
];
/// Options `acquireLock` / `acquireSemaphore` accept.
const ACQUIRE_KEYS: &[&str] = &["ttlMs", "ttlSeconds", "token", "waitMs", "retryDelayMs"];
/// Options `withLock` / `withSemaphore` accept.
const WITH_KEYS: &[&str] = &[
    "ttlMs",
    "ttlSeconds",
    "waitMs",
    "retryDelayMs",
    "autoExtend",
    "maxHoldMs",
];
/// Options `extendLock` / `extendSemaphore` accept.
const TTL_KEYS: &[&str] = &["ttlMs", "ttlSeconds"];

fn ms(c: Ctx, name: &str, a: Arg, scale: f64, min: f64) -> Result<u64, Error> {
    ms_named(c, a, scale, min, || name.to_string())
}

/// [`ms`] naming the argument `name()` only when it is refused.
fn ms_named(
    c: Ctx,
    a: Arg,
    scale: f64,
    min: f64,
    name: impl FnOnce() -> String,
) -> Result<u64, Error> {
    let Some(n) = a.finite() else {
        return Err(c.bad(name(), "a finite number", a));
    };
    let v = (n * scale).round();
    if n <= 0.0 && min > 0.0 || v < min || v > MAX_MS {
        return Err(c.bad(
            name(),
            if min > 0.0 {
                "a positive number (at most 2147483647 ms)"
            } else {
                "a non-negative number (at most 2147483647 ms)"
            },
            a,
        ));
    }
    Ok(v as u64)
}

fn boolean(c: Ctx, name: &str, a: Arg) -> Result<bool, Error> {
    if a.kind() == sys::ValueType::napi_boolean {
        let b = a.bool().unwrap_or(false);
        return Ok(b);
    }
    Err(c.bad(name, "a boolean", a))
}

/// `ttl`: a number of seconds, or an options object (only `allowed` keys), or nothing (defaults).
fn lock_opts(c: Ctx, name: &str, a: Arg, allowed: &[&str]) -> Result<LockOpts, Error> {
    let mut o = LockOpts::default();
    if a.is_nullish() {
        return Ok(o);
    }
    if a.kind() == sys::ValueType::napi_number {
        o.ttl_ms = ms(c, name, a, 1000.0, 1.0)?;
        return Ok(o);
    }
    if !a.is_plain_object() {
        return Err(c.bad(name, "a number of seconds or an options object", a));
    }
    // One pass over the given keys: no lookups, allocations or messages unless one is wrong.
    let mut vals: [Option<Arg>; 7] = [None; 7];
    for (k, v) in a.entries(c, name)? {
        match ALL_KEYS.iter().position(|x| k.str_eq(x)) {
            // An option set to `undefined` counts as not given.
            Some(i) if allowed.contains(&ALL_KEYS[i]) => {
                vals[i] = Some(v).filter(|v| !v.is_undefined())
            }
            _ => {
                let k = k.text().unwrap_or_default();
                return Err(Error::arg(format!(
                    "{}(): unknown option `{name}.{k}` (accepted: {})",
                    c.method,
                    allowed.join(", ")
                )));
            }
        }
    }
    let [ttl_ms, ttl_s, token, wait, retry, auto, max_hold] = vals;
    let at = |k: &str| format!("{name}.{k}");
    match (ttl_ms, ttl_s) {
        (Some(_), Some(_)) => {
            return Err(Error::arg(format!(
                "{}(): give `{name}.ttlMs` or `{name}.ttlSeconds`, not both",
                c.method
            )))
        }
        (Some(v), None) => o.ttl_ms = ms_named(c, v, 1.0, 1.0, || at("ttlMs"))?,
        (None, Some(v)) => o.ttl_ms = ms_named(c, v, 1000.0, 1.0, || at("ttlSeconds"))?,
        (None, None) => {}
    }
    if let Some(v) = token {
        let n = at("token");
        let t = v.string(c, &n)?;
        if t.is_empty() {
            return Err(c.bad(&n, "a non-empty string", v));
        }
        o.token = Some(t);
    }
    if let Some(v) = wait {
        o.wait_ms = ms_named(c, v, 1.0, 0.0, || at("waitMs"))?;
    }
    if let Some(v) = retry {
        o.retry_delay_ms = ms_named(c, v, 1.0, 1.0, || at("retryDelayMs"))?;
    }
    if let Some(v) = auto {
        o.auto_extend = boolean(c, &at("autoExtend"), v)?;
    }
    if let Some(v) = max_hold {
        o.max_hold_ms = Some(ms_named(c, v, 1.0, 1.0, || at("maxHoldMs"))?);
    }
    Ok(o)
}

fn token(c: Ctx, a: Arg) -> Result<String, Error> {
    let t = a.string(c, "token")?;
    if t.is_empty() {
        return Err(c.bad("token", "a non-empty string", a));
    }
    Ok(t)
}

fn limit(c: Ctx, a: Arg) -> Result<u32, Error> {
    match a.positive(c, "limit") {
        Ok(n) if n <= i64::from(u32::MAX) => Ok(n as u32),
        _ => Err(c.bad("limit", "a positive integer", a)),
    }
}

fn function(c: Ctx, a: Arg) -> Result<sys::napi_value, Error> {
    if a.kind() == sys::ValueType::napi_function {
        Ok(a.raw())
    } else {
        Err(c.bad("fn", "a function", a))
    }
}

fn policy(client: &Client) -> Policy {
    Policy::of(&client.cfg, Feature::Locks)
}

impl RedisService {
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
        parsed: Result<(Target, LockOpts), Error>,
        decode: Decode,
        empty: Empty,
    ) -> JsResult<JsPromise> {
        if let Ok((_, o)) = &parsed {
            if o.wait_ms > 0 {
                let fenced = decode == Decode::Fenced;
                return self.lock_op(
                    env,
                    parsed,
                    move || Out::Empty(empty),
                    move |client, (t, o)| async move {
                        let token = o.token.clone().unwrap_or_else(lock::new_token);
                        let a = lock::acquire(&client, &t, &token, &o.acquire()).await?;
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
        let parsed = parsed.map(|(t, o)| {
            let token = o.token.clone().unwrap_or_else(lock::new_token);
            (t, (token, o.ttl_ms))
        });
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
                        crate::core::dispatch::Work::One(cmd),
                        Shape::Custom(convert),
                        policy(&self.client),
                    );
                }
            }
        }
        self.lock_cmd(
            env,
            parsed,
            true,
            |t, (token, ttl), h| t.acquire_cmd(token, *ttl, h),
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
        self.lock_cmd(
            env,
            parsed,
            true,
            |t, token, h| t.release_cmd(token, h),
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

    /// `withLock` / `withSemaphore`: acquire, run `fn` on the JS thread while the core keeps the
    /// lease, release, settle with `fn`'s outcome.
    fn guarded(
        &self,
        env: &Env,
        this: sys::napi_value,
        parsed: Result<(Target, LockOpts, sys::napi_value), Error>,
    ) -> JsResult<JsPromise> {
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        let (target, opts, func) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.shared.settle_now(raw, d, Err(e));
                return Ok(JsPromise(promise));
            }
        };
        let client = Arc::clone(&self.client);
        let policy = policy(&client);
        let degrade_now = match policy.when_disabled(&client) {
            Some(Decision::Fail(e)) => {
                self.shared.settle_now(raw, d, Err(e));
                return Ok(JsPromise(promise));
            }
            Some(Decision::Degrade) => true,
            None => false,
        };
        let rt = match crate::core::connection::runtime() {
            Ok(rt) => rt,
            Err(e) => {
                self.shared.settle_now(raw, d, Err(e));
                return Ok(JsPromise(promise));
            }
        };
        let g = Guarded::new(
            &Js::new(raw),
            &self.shared,
            d,
            func,
            this,
            target.user_key.clone(),
        );
        // Pending (keeps the process alive) until `fn` starts, and again while releasing.
        self.shared.begin(raw);
        if degrade_now {
            g.start(None);
            return Ok(JsPromise(promise));
        }
        let task = {
            let g = Arc::clone(&g);
            async move {
                let token = opts.token.clone().unwrap_or_else(lock::new_token);
                match lock::acquire(&client, &target, &token, &opts.acquire()).await {
                    Ok(Some(a)) => {
                        let settled = g.on_settled();
                        g.start(Some(a.clone()));
                        let lose = Arc::clone(&g);
                        let end = lock::hold(&client, &target, &a, &opts.hold(), settled, |e| {
                            lose.lose(e)
                        })
                        .await;
                        g.finish(end);
                    }
                    Ok(None) => g.fail(target.not_acquired(opts.wait_ms)),
                    Err(e) => match policy.after(&client, e) {
                        Decision::Degrade => g.start(None),
                        Decision::Fail(e) => g.fail(e),
                    },
                }
            }
        };
        rt.spawn(async move {
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
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            Ok((
                Target::lock(self.prefix(), &k),
                lock_opts(c, "ttl", Arg::from(ttl), ACQUIRE_KEYS)?,
            ))
        });
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
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            Ok((
                Target::lock(self.prefix(), &k),
                lock_opts(c, "ttl", Arg::from(ttl), ACQUIRE_KEYS)?,
            ))
        });
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
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            Ok((
                Target::lock(self.prefix(), &k),
                self::token(c, Arg::from(token))?,
            ))
        });
        self.release(&env, parsed)
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
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            Ok((
                Target::lock(self.prefix(), &k),
                self::token(c, Arg::from(token))?,
                lock_opts(c, "ttl", Arg::from(ttl), TTL_KEYS)?,
            ))
        });
        self.lock_cmd(
            &env,
            parsed.map(|(t, tok, o)| (t, (tok, o.ttl_ms))),
            true,
            |t, (tok, ttl), h| t.extend_cmd(tok, *ttl, h),
            Decode::Bool,
            Empty::True,
        )
    }

    /// Whether anyone holds the lock `key` right now.
    #[napi(ts_args_type = "key: RedisKey", ts_return_type = "Promise<boolean>")]
    pub fn is_locked(&self, env: Env, key: Unknown) -> JsResult<JsPromise> {
        let c = Ctx { method: "isLocked" };
        let parsed = Arg::from(key)
            .key(c, "key")
            .map(|k| (Target::lock(self.prefix(), &k), ()));
        self.lock_cmd(
            &env,
            parsed,
            false,
            |t, _, _| {
                let mut cmd = redis::cmd("EXISTS");
                cmd.arg(t.redis_key());
                cmd
            },
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
        let parsed = Arg::from(key)
            .key(c, "key")
            .map(|k| (Target::lock(self.prefix(), &k), ()));
        self.lock_cmd(
            &env,
            parsed,
            false,
            |t, _, _| {
                let mut cmd = redis::cmd("PTTL");
                cmd.arg(t.redis_key());
                cmd
            },
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
        let c = Ctx { method: "withLock" };
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            let f = function(c, Arg::from(func))?;
            Ok((
                Target::lock(self.prefix(), &k),
                lock_opts(c, "ttl", Arg::from(ttl), WITH_KEYS)?,
                f,
            ))
        });
        self.guarded(&env, this.object.raw(), parsed)
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
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            let n = self::limit(c, Arg::from(limit))?;
            Ok((
                Target::semaphore(self.prefix(), &k, n),
                lock_opts(c, "ttl", Arg::from(ttl), ACQUIRE_KEYS)?,
            ))
        });
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
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            Ok((
                Target::semaphore(self.prefix(), &k, 1),
                self::token(c, Arg::from(token))?,
            ))
        });
        self.release(&env, parsed)
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
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            Ok((
                Target::semaphore(self.prefix(), &k, 1),
                self::token(c, Arg::from(token))?,
                lock_opts(c, "ttl", Arg::from(ttl), TTL_KEYS)?,
            ))
        });
        self.lock_cmd(
            &env,
            parsed.map(|(t, tok, o)| (t, (tok, o.ttl_ms))),
            true,
            |t, (tok, ttl), h| t.extend_cmd(tok, *ttl, h),
            Decode::Bool,
            Empty::True,
        )
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
        let c = Ctx {
            method: "withSemaphore",
        };
        let parsed = Arg::from(key).key(c, "key").and_then(|k| {
            let n = self::limit(c, Arg::from(limit))?;
            let f = function(c, Arg::from(func))?;
            Ok((
                Target::semaphore(self.prefix(), &k, n),
                lock_opts(c, "options", Arg::from(options), WITH_KEYS)?,
                f,
            ))
        });
        self.guarded(&env, this.object.raw(), parsed)
    }
}
