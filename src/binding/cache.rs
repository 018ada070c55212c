//! `wrap`, `invalidate`, `invalidatePrefix` on `RedisService`: the JS side of cache-aside.
//!
//! The decisions live in `core::cache` (`Wrap`: the read and what it found, filling a cold key
//! across processes, storing; `Flights`: single flight in this process). Here: the first read goes
//! out in the ordinary batch (one round trip on the JS-thread connection); the loader runs on the
//! JS thread and its value becomes JSON there; every caller that joined gets the same value (or
//! the loader's very error).

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Env, Unknown};
use napi::sys;
use napi_derive::napi;

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Decode, Empty, Out};
use crate::binding::error::JsPromise;
use crate::binding::error::JsResult;
use crate::binding::follow;
use crate::binding::js::Js;
use crate::binding::service::RedisService;
use crate::core::cache::{self, Next, Read, Wrap};
use crate::core::policy::Feature;
use crate::core::reply::Prep;
use crate::core::{Client, Error, Level};
use crate::engine::batch::{Convert, Policy, Shape};
use crate::engine::completer::Shared;
use crate::engine::js_thread::JsEnv;
use crate::engine::js_thread::{Deferred, JsRef};

const MAX_S: f64 = 2_147_483.0;

/// The callers waiting, per cache key, for a load in progress in this process.
pub type Flights = cache::Flights<Deferred>;

/// One `wrap` call that leads a load.
struct Load {
    shared: Arc<Shared>,
    client: Arc<Client>,
    flights: Arc<Flights>,
    spec: Wrap,
    loader: Mutex<Option<JsRef>>,
}

impl Load {
    /// Settles the leader and everyone who joined, all with `v`.
    fn settle_all(&self, js: &Js, lead: Option<Deferred>, ok: bool, v: sys::napi_value) {
        let mut all = self.flights.take(&self.spec.value_key);
        all.extend(lead);
        for d in all {
            d.settle(js.env(), ok, v);
        }
    }

    /// Runs `then` on the JS thread, keeping `v` until then; the load stays pending meanwhile.
    fn settle_later(
        self: &Arc<Self>,
        js: &Js,
        lead: Deferred,
        ok: bool,
        v: sys::napi_value,
        before: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let keep = js.keep(v);
        let Ok(rt) = crate::core::connection::runtime() else {
            self.settle_all(js, Some(lead), ok, v);
            self.shared.end(js.env());
            return;
        };
        let me = Arc::clone(self);
        rt.spawn(async move {
            before.await;
            let me2 = Arc::clone(&me);
            me.shared.run_on_js(Box::new(move |env| {
                let js = Js::new(env);
                let v = keep.map_or_else(|| js.undefined(), |k| js.kept(k));
                me2.settle_all(&js, Some(lead), ok, v);
                me2.shared.end(env);
            }));
        });
    }

    /// Resolves everyone with the cached JSON (a miss when it no longer parses).
    fn from_json(self: &Arc<Self>, js: &Js, lead: Deferred, json: &[u8]) {
        match js.json_parse(json) {
            Ok(v) => self.settle_all(js, Some(lead), true, v),
            Err(_) => self.miss(js, lead),
        }
    }

    /// A cold key: take the lock or wait for whoever holds it, then load.
    fn miss(self: &Arc<Self>, js: &Js, lead: Deferred) {
        let Ok(rt) = crate::core::connection::runtime() else {
            return self.load(js, lead, None);
        };
        // Pending (keeps the process alive) while waiting for the lock or the value.
        self.shared.begin(js.env());
        let me = Arc::clone(self);
        rt.spawn(async move {
            let next = me
                .spec
                .fill(&me.client, Policy::of(&me.client.cfg, Feature::Cache))
                .await;
            let me2 = Arc::clone(&me);
            me.shared.run_on_js(Box::new(move |env| {
                let js = Js::new(env);
                me2.shared.end(env);
                match next {
                    Next::Serve(json) => me2.from_json(&js, lead, &json),
                    Next::Load(token) => me2.load(&js, lead, token),
                    Next::Fail(e) => me2.settle_all(&js, Some(lead), false, js.error(&e)),
                }
            }));
        });
    }

    /// The loader function, once (`None` after it was taken).
    fn take_loader(&self, js: &Js) -> Option<sys::napi_value> {
        let loader = self.loader.lock().ok().and_then(|mut l| l.take())?;
        Some(loader.take(js.env()))
    }

    /// Runs the loader; stores its JSON (releasing `token`'s lock); settles everyone.
    fn load(self: &Arc<Self>, js: &Js, lead: Deferred, token: Option<String>) {
        let Some(func) = self.take_loader(js) else {
            return self.settle_all(js, Some(lead), true, js.undefined());
        };
        let me = Arc::clone(self);
        self.shared.begin(js.env());
        follow::call(
            js,
            func,
            &[],
            Box::new(move |js, ok, v| me.loaded(js, lead, token, ok, v)),
        );
    }

    fn loaded(
        self: &Arc<Self>,
        js: &Js,
        lead: Deferred,
        token: Option<String>,
        ok: bool,
        v: sys::napi_value,
    ) {
        let json = if ok { js.json_stringify(v) } else { Err(v) };
        match json {
            // `undefined` (or a function): returned, never cached.
            Ok(None) => self.release_then_settle(js, lead, token, true, v),
            Ok(Some(text)) => {
                let me = Arc::clone(self);
                let store = async move {
                    let stored = me.spec.store(&me.client, text.as_bytes(), token.as_deref());
                    if let Err(e) = stored.await {
                        // Not stored: the value is still returned (the policy warns once when
                        // Redis is unreachable).
                        let _ = Policy::of(&me.client.cfg, Feature::Cache).after(&me.client, e);
                    }
                };
                self.settle_later(js, lead, true, v, store);
            }
            // The loader failed (or its value cannot be JSON): every caller gets that error.
            Err(e) => self.release_then_settle(js, lead, token, false, e),
        }
    }

    /// Releases our loading lock first (so a caller retrying at once does not wait for it),
    /// then settles everyone with `v`, and ends the pending load.
    fn release_then_settle(
        self: &Arc<Self>,
        js: &Js,
        lead: Deferred,
        token: Option<String>,
        ok: bool,
        v: sys::napi_value,
    ) {
        let Some(token) = token else {
            self.settle_all(js, Some(lead), ok, v);
            self.shared.end(js.env());
            return;
        };
        let me = Arc::clone(self);
        let unlock = async move {
            let _ = me.spec.unlock(&me.client, &token).await;
        };
        self.settle_later(js, lead, ok, v, unlock);
    }

    /// Releases our loading lock in the background.
    fn release(self: &Arc<Self>, token: Option<String>) {
        let (Some(token), Ok(rt)) = (token, crate::core::connection::runtime()) else {
            return;
        };
        let me = Arc::clone(self);
        rt.spawn(async move {
            let _ = me.spec.unlock(&me.client, &token).await;
        });
    }

    /// Serves stale, and lets one caller across processes refresh in the background.
    fn stale(self: &Arc<Self>, js: &Js, lead: Deferred, json: &[u8]) {
        let Ok(v) = js.json_parse(json) else {
            return self.miss(js, lead);
        };
        self.settle_all(js, Some(lead), true, v);
        let Ok(rt) = crate::core::connection::runtime() else {
            return;
        };
        let me = Arc::clone(self);
        rt.spawn(async move {
            let Some(token) = me.spec.lock_for_refresh(&me.client).await else {
                return;
            };
            let me2 = Arc::clone(&me);
            me.shared
                .run_on_js(Box::new(move |env| me2.refresh(&Js::new(env), token)));
        });
    }

    fn refresh(self: &Arc<Self>, js: &Js, token: String) {
        let Some(func) = self.take_loader(js) else {
            return self.release(Some(token));
        };
        let me = Arc::clone(self);
        follow::call(
            js,
            func,
            &[],
            Box::new(move |js, ok, v| {
                let text = if ok {
                    js.json_stringify(v).ok().flatten()
                } else {
                    None
                };
                let Some(text) = text else {
                    me.shared.log_now(
                        js.env(),
                        Level::Warn,
                        "a background cache refresh failed; the stale value stays until it expires",
                    );
                    return me.release(Some(token));
                };
                if let Ok(rt) = crate::core::connection::runtime() {
                    let me2 = Arc::clone(&me);
                    rt.spawn(async move {
                        let _ = me2
                            .spec
                            .store(&me2.client, text.as_bytes(), Some(&token))
                            .await;
                    });
                }
            }),
        );
    }

    /// Redis unreachable: the loader runs directly, nothing is cached.
    fn degraded(self: &Arc<Self>, js: &Js, lead: Deferred) {
        let Some(func) = self.take_loader(js) else {
            return self.settle_all(js, Some(lead), true, js.undefined());
        };
        let me = Arc::clone(self);
        follow::call(
            js,
            func,
            &[],
            Box::new(move |js, ok, v| me.settle_all(js, Some(lead), ok, v)),
        );
    }
}

fn seconds(c: Ctx, name: &str, a: Arg, min: f64) -> Result<u64, Error> {
    match a.float(c, name) {
        Ok(n) if n.fract() == 0.0 && n >= min && n <= MAX_S => Ok(n as u64),
        _ => Err(c.bad(
            name,
            if min > 0.0 {
                "a positive integer (seconds)"
            } else {
                "a non-negative integer (seconds)"
            },
            a,
        )),
    }
}

struct WrapArgs {
    key: Vec<u8>,
    ttl_s: u64,
    stale_s: u64,
    lock_ms: u64,
    loader: sys::napi_value,
}

fn wrap_args(
    c: Ctx,
    key: Unknown,
    ttl: Unknown,
    loader: Unknown,
    options: Unknown,
) -> Result<WrapArgs, Error> {
    let key = Arg::from(key).key(c, "key")?;
    let ttl_s = seconds(c, "ttlSeconds", Arg::from(ttl), 1.0)?;
    let loader = Arg::from(loader);
    if loader.kind() != sys::ValueType::napi_function {
        return Err(c.bad("loader", "a function", loader));
    }
    let o = Arg::from(options);
    let (mut stale_s, mut lock_ms) = (0, cache::DEFAULT_LOCK_MS);
    if !o.is_nullish() {
        if !o.is_plain_object() {
            return Err(c.bad("options", "an object { staleSeconds?, lockMs? }", o));
        }
        for (k, _) in o.entries(c, "options")? {
            let k = k.text().unwrap_or_default();
            if k != "staleSeconds" && k != "lockMs" {
                return Err(Error::arg(format!(
                    "wrap(): unknown option `options.{k}` (accepted: staleSeconds, lockMs)"
                )));
            }
        }
        if !o.get("staleSeconds").is_undefined() {
            stale_s = seconds(c, "options.staleSeconds", o.get("staleSeconds"), 0.0)?;
        }
        if !o.get("lockMs").is_undefined() {
            lock_ms = match o.get("lockMs").float(c, "options.lockMs") {
                Ok(n) if n.fract() == 0.0 && (1.0..=2_147_483_647.0).contains(&n) => n as u64,
                _ => {
                    return Err(c.bad(
                        "options.lockMs",
                        "a positive integer (milliseconds)",
                        o.get("lockMs"),
                    ))
                }
            };
        }
    }
    Ok(WrapArgs {
        key,
        ttl_s,
        stale_s,
        lock_ms,
        loader: loader.raw(),
    })
}

#[napi]
impl RedisService {
    /// Cache-aside with stampede protection: resolves the value cached under `key`, or calls
    /// `loader()` (a value or a promise), stores its result as JSON for `ttlSeconds`, and resolves
    /// it. Concurrent calls for one key share one loader call in this process; across processes,
    /// one holds a short lock (`lockMs`, default 5000 ms) while the others wait for the value.
    /// `staleSeconds` serves the value that long past its TTL while one caller refreshes it in the
    /// background. A loader rejection reaches every waiting caller; nothing is cached on failure,
    /// and `undefined` is never cached. With Redis unreachable the loader runs directly.
    #[napi(
        ts_generic_types = "T",
        ts_args_type = "key: RedisKey, ttlSeconds: number, loader: () => T | PromiseLike<T>, options?: { staleSeconds?: number; lockMs?: number }",
        ts_return_type = "Promise<Awaited<T>>"
    )]
    pub fn wrap(
        &self,
        env: Env,
        key: Unknown,
        ttl_seconds: Unknown,
        loader: Unknown,
        options: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx { method: "wrap" };
        let raw = JsEnv::of(&env);
        // Arguments first: an option getter that throws must leave nothing behind (no promise,
        // no load), its exception reaching the caller.
        let a = wrap_args(c, key, ttl_seconds, loader, options);
        let (d, promise) = self.shared.promise(raw)?;
        let a = match a {
            Ok(a) => a,
            Err(e) => {
                self.shared.settle_now(raw, d, Err(e));
                return Ok(JsPromise(promise));
            }
        };
        let spec = Wrap::new(self.prefix(), &a.key, a.ttl_s, a.stale_s, a.lock_ms);
        let d = match self.flights.join(&spec.value_key, d) {
            Ok(()) => return Ok(JsPromise(promise)),
            Err(d) => d,
        };
        let work = spec.read();
        let load = Arc::new(Load {
            shared: Arc::clone(&self.shared),
            client: Arc::clone(&self.client),
            flights: Arc::clone(&self.flights),
            spec,
            loader: Mutex::new(JsRef::new(raw, a.loader)),
        });
        let convert: Convert = Box::new(move |r| {
            Ok(Out::Then(Box::new(move |env, d| {
                let js = Js::new(env);
                match r {
                    Ok(Some(v)) => match load.spec.classify(v) {
                        Read::Hit(json) => load.from_json(&js, d, &json),
                        Read::Stale(json) => load.stale(&js, d, &json),
                        Read::Miss => load.miss(&js, d),
                    },
                    Ok(None) => load.degraded(&js, d),
                    Err(e) => load.settle_all(&js, Some(d), false, js.error(&e)),
                }
            })))
        });
        let policy = Policy::of(&self.client.cfg, Feature::Cache);
        // A plain read (no stale window) may be answered by the near cache.
        self.send_through(raw, d, work, Shape::Custom(convert), policy);
        Ok(JsPromise(promise))
    }

    /// Deletes cached values (the keys given to `wrap`): resolves how many existed.
    #[napi(
        ts_args_type = "...keys: RedisKey[]",
        ts_return_type = "Promise<number>"
    )]
    pub fn invalidate(&self, env: Env, keys: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "invalidate",
        };
        let list = Arg::from(keys);
        let items = if list.is_array() {
            match list.elements(c, "keys") {
                Ok(items) => items,
                Err(e) => return self.run(&env, Err(e)),
            }
        } else {
            vec![list]
        };
        if items.is_empty() {
            // Nothing to invalidate: none deleted.
            let none = Prep::answered(redis::Value::Int(0), Decode::Auto, Empty::Zero);
            return self.run(&env, Ok(none));
        }
        let mut cmd = redis::cmd("UNLINK");
        let mut bad = None;
        for k in items {
            match k.key(c, "key") {
                Ok(k) => {
                    cmd.arg(cache::value_key(self.prefix(), &k));
                }
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        let prep = match bad {
            Some(e) => Err(e),
            None => Ok(Prep {
                cmd,
                decode: Decode::Auto,
                empty: Empty::Zero,
                answer: None,
            }),
        };
        self.run(&env, prep)
    }

    /// Deletes every cached value whose key starts with `prefix` (SCAN + UNLINK in batches):
    /// resolves how many.
    #[napi(ts_args_type = "prefix: string", ts_return_type = "Promise<number>")]
    pub fn invalidate_prefix(&self, env: Env, prefix: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "invalidatePrefix",
        };
        let pattern = Arg::from(prefix)
            .string(c, "prefix")
            .map(|p| cache::prefix_pattern(self.prefix(), p.as_bytes()));
        let client = Arc::clone(&self.client);
        self.spawn(&env, async move {
            let n = cache::scan_delete(&client, &pattern?).await?;
            Ok(Out::Json(serde_json::json!(n)))
        })
    }
}
