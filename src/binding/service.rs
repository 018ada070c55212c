//! The `RedisService` class: construction, lifecycle, health, and the shared `run` path every
//! command method goes through.

use std::future::Future;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, JavaScriptClassExt, Object, This, ToNapiValue, Unknown};
use napi::sys;
use napi_derive::napi;

use crate::binding::args::Arg;
use crate::binding::decode::{Empty, Out};
use crate::binding::error::{check_no_exception, throw, JsPromise, JsResult};
use crate::binding::js::Js;
use crate::binding::options::{self, LoggerChoice, Parsed};
use crate::core::config::{self, Config, Settings};
use crate::core::connection::install_crypto_provider;
use crate::core::reply::Prep;
use crate::core::work::Work;
use crate::core::{Client, Error};
use crate::engine::batch::{Batcher, Shape};
use crate::engine::completer::{Shared, Sink};
use crate::engine::js_thread::JsEnv;
use crate::engine::js_thread::JsRef;

/// A Redis connection with the commands, health checks and degradation policy of @app/redis.
/// Create it with `new RedisService(options)` then `await service.connect()`, or in one step
/// with `await RedisService.connect(options)`, or from `REDIS_*` variables with `RedisService.fromEnv()`.
#[napi]
pub struct RedisService {
    pub(crate) client: Arc<Client>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) batcher: Rc<Batcher>,
    /// `wrap` loads in progress in this process, by key.
    pub(crate) flights: Arc<crate::core::cache::Flights<crate::engine::js_thread::Deferred>>,
    /// Subscriptions and their handlers.
    pub(crate) pubsub: Arc<crate::binding::subscriptions::PubSub>,
    /// The leases `withLock` holds on the fast path, renewed from the runtime.
    pub(crate) keeper: Arc<crate::core::lock::Keeper>,
    /// Listening for releases by other processes while a lock is waited for.
    pub(crate) notices: Arc<crate::core::lock::Notices>,
}

/// The default logger: the `console` of the realm that last loaded index.js (a jest test file's
/// own console, so its spies and buffering see our lines), else this realm's global `console`.
fn console(js: &Js) -> sys::napi_value {
    let registered = crate::engine::per_env::exports(js.env())
        .and_then(|exports| {
            js.get_property(exports, js.symbol_for(c"@app/redis.console"))
                .ok()
        })
        .filter(|v| js.type_of(*v) == sys::ValueType::napi_object);
    registered.unwrap_or_else(|| {
        js.get_named(js.global(), c"console")
            .unwrap_or_else(|_| js.undefined())
    })
}

/// `process.env` of this realm.
fn process_env(env: &Env) -> Arg {
    let js = Js::of(env);
    let penv = js
        .get_named(js.global(), c"process")
        .and_then(|p| js.get_named(p, c"env"))
        .unwrap_or_else(|_| js.undefined());
    // SAFETY: `penv` is a value of the `#[napi]` call `env` belongs to, used within it.
    unsafe { Arg::new(env.raw(), penv) }
}

impl RedisService {
    fn build(env: &Env, layer: Settings, logger: LoggerChoice) -> Result<Self, Error> {
        install_crypto_provider();
        let cfg = Config::resolve(layer)?;
        let js = Js::of(env);
        let env = js.env();
        let logger_v = match logger {
            LoggerChoice::Default => console(&js),
            LoggerChoice::Silent => ptr::null_mut(),
            LoggerChoice::Given(v) => v,
        };
        let shared = Shared::new(
            env,
            cfg.key_prefix.as_bytes().to_vec(),
            logger_v,
            cfg.password.clone(),
            &crate::binding::decode::TO_JS,
        )
        .map_err(|e| Error::Connection(e.reason.clone()))?;
        let built = Client::new(cfg, Arc::new(Sink(Arc::clone(&shared))))
            .and_then(|client| Batcher::new(env, &client, &shared).map(|b| (client, b)));
        let (client, batcher) = match built {
            Ok(parts) => parts,
            Err(e) => {
                shared.on_drop();
                return Err(e);
            }
        };
        let batcher = Rc::new(batcher);
        Ok(RedisService {
            client,
            shared,
            batcher,
            flights: Default::default(),
            pubsub: Default::default(),
            keeper: Default::default(),
            notices: Default::default(),
        })
    }

    pub(crate) fn prefix(&self) -> &[u8] {
        &self.shared.prefix
    }

    /// Sends a prepared command and returns its promise. Validation errors and degraded results
    /// settle at once, on this thread; everything else settles through the completion queue.
    pub(crate) fn run(&self, env: &Env, prep: Result<Prep, Error>) -> JsResult<JsPromise> {
        self.run_with(env, prep, true)
    }

    /// [`RedisService::run`] for `call(...)`, which the near cache never answers (the way to
    /// read from the server whatever the cache holds).
    pub(crate) fn run_uncached(&self, env: &Env, prep: Result<Prep, Error>) -> JsResult<JsPromise> {
        self.run_with(env, prep, false)
    }

    fn run_with(&self, env: &Env, prep: Result<Prep, Error>, cache: bool) -> JsResult<JsPromise> {
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        let prep = match prep {
            Ok(p) => p,
            Err(e) => {
                self.shared.settle_now(raw, d, Err(e));
                return Ok(JsPromise(promise));
            }
        };
        if let Some(reply) = prep.answer {
            // An empty collection: answered here, nothing sent.
            self.shared
                .settle_now(raw, d, Ok(Out::Reply(reply, prep.decode)));
            return Ok(JsPromise(promise));
        }
        if cache && self.client.near.is_some() {
            let policy = crate::engine::batch::Policy::of(
                &self.client.cfg,
                crate::core::policy::Feature::Commands,
            );
            self.send_read(raw, d, prep.cmd, (prep.decode, prep.empty), policy);
        } else {
            let shape = Shape::One(prep.decode, prep.empty);
            self.batcher.submit(raw, d, Work::One(prep.cmd), shape);
        }
        Ok(JsPromise(promise))
    }

    /// Sends one command built by `make(by_hash)` in the ordinary batch under a feature's
    /// degradation `policy`. For a script (`script`), `make(true)` is its `EVALSHA` and `make(false)`
    /// its `EVAL`, resent when the server answers `NOSCRIPT` (the runtime-thread fallback sends
    /// `EVAL` at once). An argument error settles the promise at once.
    pub(crate) fn submit_built(
        &self,
        env: &Env,
        make: Result<impl Fn(bool) -> redis::Cmd, Error>,
        script: bool,
        shape: crate::engine::batch::Shape,
        policy: crate::engine::batch::Policy,
    ) -> JsResult<JsPromise> {
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        match make {
            Err(e) => self.shared.settle_now(raw, d, Err(e)),
            Ok(make) => {
                let by_hash = script && self.batcher.scripts_by_hash();
                let cmd = make(by_hash);
                let retry = by_hash.then(|| make(false));
                self.batcher
                    .submit_with(raw, d, Work::One(cmd), shape, policy, retry);
            }
        }
        Ok(JsPromise(promise))
    }

    /// Sends a ready-made job (a feature's own pipeline) under `policy`.
    pub(crate) fn submit_work(
        &self,
        env: &Env,
        work: Work,
        shape: crate::engine::batch::Shape,
        policy: crate::engine::batch::Policy,
    ) -> JsResult<JsPromise> {
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        self.batcher.submit_with(raw, d, work, shape, policy, None);
        Ok(JsPromise(promise))
    }

    /// Creates a promise settled by `fut`.
    pub(crate) fn spawn<F>(&self, env: &Env, fut: F) -> JsResult<JsPromise>
    where
        F: Future<Output = Result<Out, Error>> + Send + 'static,
    {
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        self.shared.spawn(raw, d, fut);
        Ok(JsPromise(promise))
    }

    /// Connects once the `disconnect()` calls made before this call are done (the last call
    /// wins: see `core::closing`).
    fn connect_future(&self) -> impl Future<Output = Result<Out, Error>> + Send + 'static {
        let client = Arc::clone(&self.client);
        let after = client.closes.now();
        async move {
            client.closes.wait(after).await;
            client.connect().await?;
            Ok(Out::Empty(Empty::Undefined))
        }
    }
}

#[napi]
impl RedisService {
    /// Creates a service; nothing connects until `connect()`. Only the given options and the
    /// defaults apply (use `RedisService.fromEnv()` to read `REDIS_*` variables). `options` may
    /// be a URL string, the same as `{ url }`: `new RedisService('redis://localhost:6379')`.
    /// Throws `ERR_INVALID_ARGUMENT` naming the option when one is invalid.
    #[napi(constructor, ts_args_type = "options?: RedisOptions | string")]
    pub fn new(env: Env, options: Unknown) -> napi::Result<Self> {
        let parsed = options::parse(Arg::from(options));
        check_no_exception(JsEnv::of(&env))?;
        let Parsed { settings, logger } = parsed.map_err(|e| throw(JsEnv::of(&env), e))?;
        Self::build(&env, settings, logger).map_err(|e| throw(JsEnv::of(&env), e))
    }

    /// Creates a service from `REDIS_*` variables (`env` defaults to `process.env`), with
    /// `overrides` on top: options > `REDIS_URL` > discrete variables > defaults.
    // Writable: index.js replaces it with a wrapper that defaults `env` in the caller's realm.
    #[napi(
        factory,
        writable = true,
        configurable = true,
        ts_args_type = "env?: Record<string, string | undefined>, overrides?: RedisOptions | string"
    )]
    pub fn from_env(env: Env, vars: Unknown, overrides: Unknown) -> napi::Result<Self> {
        let map = env_map(&env, vars)?;
        let env_layer = config::from_env(&map).map_err(|e| throw(JsEnv::of(&env), e))?;
        let parsed = options::parse(Arg::from(overrides));
        check_no_exception(JsEnv::of(&env))?;
        let Parsed { settings, logger } = parsed.map_err(|e| throw(JsEnv::of(&env), e))?;
        Self::build(&env, settings.over(env_layer), logger).map_err(|e| throw(JsEnv::of(&env), e))
    }

    /// Creates a service and connects it: resolves the connected service, or rejects with
    /// `ERR_CONNECTION` / `ERR_TIMEOUT` / `ERR_AUTH` within `connectTimeoutMs`. `options` may be
    /// a URL string (`RedisService.connect('redis://localhost:6379')`).
    #[napi(
        js_name = "connect",
        ts_args_type = "options?: RedisOptions | string",
        ts_return_type = "Promise<RedisService>"
    )]
    pub fn connect_new(env: Env, options: Unknown) -> JsResult<JsPromise> {
        let parsed = options::parse(Arg::from(options));
        check_no_exception(JsEnv::of(&env))?;
        let Parsed { settings, logger } = parsed.map_err(|e| throw(JsEnv::of(&env), e))?;
        let svc = Self::build(&env, settings, logger).map_err(|e| throw(JsEnv::of(&env), e))?;
        let fut = svc.connect_future();
        let shared = Arc::clone(&svc.shared);
        let instance = svc.into_instance(&env)?;
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        let raw_instance = unsafe { ToNapiValue::to_napi_value(env.raw(), instance) }?;
        let Some(keep) = JsRef::new(JsEnv::of(&env), raw_instance) else {
            return Err(throw(
                JsEnv::of(&env),
                Error::Connection("the environment is shutting down".into()),
            ));
        };
        let (d, promise) = shared.promise(JsEnv::of(&env))?;
        // Resolve the instance itself; the reference is released on every path.
        shared.spawn(JsEnv::of(&env), d, async move {
            Ok(Out::Ref(keep, fut.await.err()))
        });
        Ok(JsPromise(promise))
    }

    /// Connects. Idempotent: concurrent calls share one attempt. Rejects with `ERR_CONNECTION`,
    /// `ERR_TIMEOUT` or `ERR_AUTH` within `connectTimeoutMs`; with `failOpen` it resolves anyway
    /// (one warning is logged) and keeps reconnecting in the background. A disabled service resolves at once.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect(&self, env: Env) -> JsResult<JsPromise> {
        self.pubsub.reopen();
        self.notices.reopen();
        self.spawn(&env, self.connect_future())
    }

    /// Closes the connection after in-flight commands finish. Idempotent. Nothing of the service
    /// keeps the process alive afterwards.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn disconnect(&self, env: Env) -> JsResult<JsPromise> {
        self.pubsub.close(JsEnv::of(&env), &self.shared);
        self.notices.close();
        let client = Arc::clone(&self.client);
        let limit = std::time::Duration::from_millis(self.client.cfg.command_timeout_ms + 1000);
        let drained = self.batcher.drain_future(limit);
        let lanes = self.batcher.lanes();
        let shared = Arc::clone(&self.shared);
        // Taken now, in call order: a `connect()` called after this waits for the close.
        let ticket = client.closes.begin();
        self.spawn(&env, async move {
            drained.await;
            client.disconnect().await;
            drop(ticket);
            if let Some(lanes) = lanes {
                // Upgraded on the JS thread only: the lanes hold JS-thread handles.
                shared.run_on_js(Box::new(move |_| {
                    if let Some(l) = lanes.upgrade() {
                        l.reset();
                    }
                }));
            }
            Ok(Out::Empty(Empty::Undefined))
        })
    }

    /// NestJS lifecycle hook: calls `disconnect()`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn on_module_destroy(&self, env: Env) -> JsResult<JsPromise> {
        self.disconnect(env)
    }

    /// NestJS lifecycle hook: calls `disconnect()`.
    #[napi(ts_args_type = "signal?: string", ts_return_type = "Promise<void>")]
    pub fn on_application_shutdown(&self, env: Env, _signal: Unknown) -> JsResult<JsPromise> {
        self.disconnect(env)
    }

    /// Whether the connection is up right now.
    #[napi(getter)]
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Whether commands will reach Redis right now: enabled and connected (synchronous).
    #[napi]
    pub fn is_available(&self) -> bool {
        self.client.cfg.enabled && self.client.is_connected()
    }

    /// Whether the service was created enabled (`enabled` option / `REDIS_ENABLED`).
    #[napi(getter)]
    pub fn is_enabled(&self) -> bool {
        self.client.cfg.enabled
    }

    /// The key prefix applied to every key.
    #[napi(getter)]
    pub fn key_prefix(&self) -> String {
        self.client.cfg.key_prefix.clone()
    }

    /// The namespace of session keys after the key prefix (`sessionPrefix`, default `'sess:'`).
    #[napi(getter)]
    pub fn session_prefix(&self) -> String {
        self.client.cfg.session_prefix.clone()
    }

    /// Connection target with the password masked: `redis://user:***@host:port/db`.
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.client.cfg.redacted_url()
    }

    /// Never rejects: `{ status: 'connected' | 'disconnected' | 'disabled', latencyMs, host, port,
    /// db, mode, nodes }`. `latencyMs` is the PING round trip in milliseconds (`null` unless
    /// connected). `mode` is `'standalone' | 'cluster' | 'sentinel'`; `host`/`port` are the server
    /// commands go to (the current master in sentinel mode, a seed node in cluster mode);
    /// `nodes` lists what the service sees: `{ host, port, role: 'master' | 'replica' |
    /// 'sentinel', ok }` (every cluster node, from `CLUSTER NODES`).
    #[napi(ts_return_type = "Promise<HealthCheckResult>")]
    pub fn health_check(&self, env: Env) -> JsResult<JsPromise> {
        let client = Arc::clone(&self.client);
        self.spawn(&env, async move {
            let cfg = &client.cfg;
            let (status, latency) = if !cfg.enabled {
                ("disabled", None)
            } else {
                let h = client.health().await;
                (
                    if h.connected {
                        "connected"
                    } else {
                        "disconnected"
                    },
                    h.latency_ms,
                )
            };
            let (host, port) = client.target();
            let nodes: Vec<serde_json::Value> = if cfg.enabled {
                client
                    .nodes()
                    .await
                    .into_iter()
                    .map(|n| {
                        serde_json::json!({
                            "host": n.host,
                            "port": n.port,
                            "role": n.role,
                            "ok": !n.failed && status == "connected",
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Ok(Out::Json(serde_json::json!({
                "status": status,
                "latencyMs": latency.map(|l| (l * 1000.0).round() / 1000.0),
                "host": host,
                "port": port,
                "db": cfg.db,
                "mode": cfg.topology.mode(),
                "nodes": nodes,
            })))
        })
    }

    /// Returns the service itself, so code written against a raw client
    /// (`redisService.getClient().lPush(...)`) keeps working.
    #[napi(ts_return_type = "this")]
    pub fn get_client<'a>(&self, this: This<'a, Object<'a>>) -> Object<'a> {
        this.object
    }
}

/// Whether any Redis setting (`REDIS_URL`, `REDIS_HOST`, `REDIS_PORT`, ...) is present in `env`
/// (default `process.env`) and `REDIS_ENABLED` is not false.
#[napi(
    ts_args_type = "env?: Record<string, string | undefined>",
    ts_return_type = "boolean"
)]
pub fn is_redis_configured(env: Env, vars: Unknown) -> JsResult<bool> {
    Ok(config::is_configured(&env_map(&env, vars)?))
}

/// The variables `vars` gives (default: this realm's `process.env`), as strings.
fn env_map(env: &Env, vars: Unknown) -> napi::Result<std::collections::HashMap<String, String>> {
    let vars = Arg::from(vars);
    let vars = if vars.is_nullish() {
        process_env(env)
    } else {
        vars
    };
    options::env_vars(vars).map_err(|e| throw(JsEnv::of(env), e))
}
