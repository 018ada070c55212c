//! One multiplexed connection per service, with our own reconnect state machine.
//!
//! Why not the crate's `ConnectionManager`: while the server is down its commands wait for the
//! reconnect, and we want them to fail fast (`ERR_CONNECTION`) and to know exactly when an outage
//! starts and ends, so the logger hears about it once each way.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, PushInfo, PushKind, Value};

use crate::core::{Config, Error};

/// Severity of a log line sent to the user's logger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Where the core sends log lines; the binding forwards them to the JS `logger`.
pub trait EventSink: Send + Sync + 'static {
    fn log(&self, level: Level, msg: String);
    /// A plain connection for the JS thread is ready (generation `gen`); see [`Client::want_plain`].
    fn attach(&self, _stream: std::net::TcpStream, _gen: u64) {}
    /// The service was disconnected: drop the JS-thread connection.
    fn detach(&self) {}
}

/// The shared tokio runtime: a small multi-thread runtime (workers default to 1, tunable with
/// `APP_REDIS_WORKER_THREADS`): the work per command is tiny and the Node thread needs the other core.
static RUNTIME: LazyLock<Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
    let workers = std::env::var("APP_REDIS_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("app-redis")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
});

/// The runtime every future of this crate runs on.
///
/// # Errors
/// `Connection` if the OS refused to start its threads.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    RUNTIME
        .as_ref()
        .map_err(|e| Error::Connection(format!("could not start the I/O runtime: {e}")))
}

enum State {
    /// Never connected, or `disconnect()`ed.
    Idle(&'static str),
    Up {
        conn: MultiplexedConnection,
        gen: u64,
    },
    /// Lost; a reconnect loop for `gen` is running.
    Down { gen: u64 },
}

/// What a command needs to run: a connection handle and the generation it belongs to.
pub struct Handle {
    pub conn: MultiplexedConnection,
    gen: u64,
}

/// Health snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub connected: bool,
    pub latency_ms: Option<f64>,
}

/// A connection to one Redis server and its lifecycle.
pub struct Client {
    pub cfg: Config,
    redis: redis::Client,
    state: RwLock<State>,
    gen: AtomicU64,
    gate: tokio::sync::Mutex<()>,
    outage_since: Mutex<Option<Instant>>,
    /// Features that already warned about running degraded in the current outage.
    degraded_warned: Mutex<Vec<&'static str>>,
    sink: Arc<dyn EventSink>,
    /// Local wake-ups for lock waiters.
    pub waiters: crate::core::lock::Waiters,
    /// Whether each connect also opens a plain connection for the JS thread.
    plain: std::sync::atomic::AtomicBool,
}

fn lock_err<T>(_: T) -> Error {
    Error::Connection("internal state lock poisoned".into())
}

/// Maps the TLS `servername` to the real host, so the certificate is checked against the name
/// while the socket goes to the address.
struct ServernameResolver {
    name: String,
    real_host: String,
}

impl redis::io::AsyncDNSResolver for ServernameResolver {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        host: &'b str,
        port: u16,
    ) -> redis::RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        let target = if host == self.name {
            self.real_host.clone()
        } else {
            host.to_string()
        };
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.as_str(), port))
                .await?
                .collect();
            Ok(Box::new(addrs.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

impl Client {
    /// Builds a client; nothing is connected yet.
    ///
    /// # Errors
    /// `InvalidArgument` when the TLS material cannot be used.
    pub fn new(cfg: Config, sink: Arc<dyn EventSink>) -> Result<Arc<Self>, Error> {
        let redis = build_redis_client(&cfg)?;
        Ok(Arc::new(Client {
            cfg,
            redis,
            state: RwLock::new(State::Idle("not connected: call connect() first")),
            gen: AtomicU64::new(0),
            gate: tokio::sync::Mutex::new(()),
            outage_since: Mutex::new(None),
            degraded_warned: Mutex::new(Vec::new()),
            sink,
            waiters: Default::default(),
            plain: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    fn secret(&self) -> Option<&str> {
        self.cfg.password.as_deref()
    }

    /// Asks every (re)connect to also open a plain connection handed to [`EventSink::attach`].
    /// Ignored with TLS (the JS-thread connection speaks plain TCP only).
    pub fn want_plain(&self) -> bool {
        let ok = self.cfg.tls.is_none();
        self.plain.store(ok, Ordering::Relaxed);
        ok
    }

    /// Reports that a connection of generation `gen` failed: starts the reconnect loop once.
    pub fn lost(self: &Arc<Self>, gen: u64, reason: &str) {
        self.on_lost(gen, reason);
    }

    /// Sends a line to the logger.
    pub fn log(&self, level: Level, msg: &str) {
        self.sink.log(level, msg.to_string());
    }

    /// Logs, once per outage (once in all for a disabled service), that `feature` runs degraded.
    pub fn warn_degraded(&self, feature: &'static str, what: &str) {
        let Ok(mut w) = self.degraded_warned.lock() else {
            return;
        };
        if w.contains(&feature) {
            return;
        }
        w.push(feature);
        drop(w);
        self.sink.log(Level::Warn, format!("{feature}: {what}"));
    }

    /// Converts a crate error, scrubbing the password.
    pub fn error(&self, e: &redis::RedisError) -> Error {
        Error::from_redis(e, self.secret())
    }

    /// Whether a connection is up right now.
    pub fn is_connected(&self) -> bool {
        matches!(
            self.state.read().map(|s| matches!(*s, State::Up { .. })),
            Ok(true)
        )
    }

    /// The connection to run a command on, or why there is none (fails fast while down).
    ///
    /// # Errors
    /// `Connection` when not connected, reconnecting, or disconnected.
    pub fn handle(&self) -> Result<Handle, Error> {
        self.with_up(|conn, gen| Handle {
            conn: conn.clone(),
            gen,
        })
    }

    /// Whether a command could be sent right now, without taking a connection handle (the
    /// per-call fail-fast check on the JS thread).
    ///
    /// # Errors
    /// As [`Client::handle`].
    pub fn check(&self) -> Result<(), Error> {
        self.with_up(|_, _| ())
    }

    fn with_up<R>(&self, f: impl FnOnce(&MultiplexedConnection, u64) -> R) -> Result<R, Error> {
        match &*self.state.read().map_err(lock_err)? {
            State::Up { conn, gen } => Ok(f(conn, *gen)),
            State::Down { .. } => Err(Error::Connection(format!(
                "Redis at {}:{} is unreachable; reconnecting in the background",
                self.cfg.host, self.cfg.port
            ))),
            State::Idle(why) => Err(Error::Connection((*why).to_string())),
        }
    }

    /// Connects (idempotent; concurrent calls share one attempt).
    ///
    /// # Errors
    /// `Connection`, `Timeout` or `Auth` when the server cannot be reached within
    /// `connectTimeoutMs`; with `failOpen` the failure is logged instead and reconnection continues
    /// in the background.
    pub async fn connect(self: &Arc<Self>) -> Result<(), Error> {
        if !self.cfg.enabled || self.is_connected() {
            return Ok(());
        }
        let _gate = self.gate.lock().await;
        if self.is_connected() {
            return Ok(());
        }
        let gen = self.gen.fetch_add(1, Ordering::SeqCst) + 1;
        match self.open(gen).await {
            Ok(conn) => {
                *self.state.write().map_err(lock_err)? = State::Up { conn, gen };
                self.end_outage();
                Ok(())
            }
            Err(e) => {
                if self.cfg.fail_open {
                    *self.state.write().map_err(lock_err)? = State::Down { gen };
                    self.start_outage(&e.to_string());
                    self.spawn_reconnect(gen);
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Closes the connection. Commands already sent still get their replies (they hold the
    /// connection); new ones fail with `ERR_CONNECTION` until `connect()` is called again.
    pub async fn disconnect(&self) {
        let _gate = self.gate.lock().await;
        if let Ok(mut st) = self.state.write() {
            *st = State::Idle("disconnected: call connect() to reconnect");
        }
        if let Ok(mut o) = self.outage_since.lock() {
            *o = None;
        }
        self.sink.detach();
    }

    /// Runs one command on `h`, noting a dropped connection.
    ///
    /// # Errors
    /// `Reply` for an error reply, `Connection`/`Timeout` for transport failures.
    pub async fn query(self: &Arc<Self>, mut h: Handle, cmd: &Cmd) -> Result<Value, Error> {
        match h.conn.send_packed_command(cmd).await {
            Ok(Value::ServerError(e)) => Err(Error::Reply(server_error_text(&e.into()))),
            Ok(v) => Ok(v),
            Err(e) => Err(self.classify(&e, h.gen)),
        }
    }

    /// Runs a (non-atomic) pipeline and returns one raw value per command; error replies stay in
    /// place as `Value::ServerError`.
    ///
    /// # Errors
    /// `Connection`/`Timeout` for transport failures.
    pub async fn query_pipeline(
        self: &Arc<Self>,
        mut h: Handle,
        pipe: &redis::Pipeline,
        count: usize,
    ) -> Result<Vec<Value>, Error> {
        if count == 0 {
            return Ok(Vec::new());
        }
        h.conn
            .send_packed_commands(pipe, 0, count)
            .await
            .map_err(|e| self.classify(&e, h.gen))
    }

    fn classify(self: &Arc<Self>, e: &redis::RedisError, gen: u64) -> Error {
        if let redis::ErrorKind::Server(_) = e.kind() {
            return Error::Reply(redact_server(e, self.secret()));
        }
        let err = self.error(e);
        if matches!(err, Error::Connection(_)) {
            self.on_lost(gen, &err.to_string());
        }
        err
    }

    /// PINGs and measures the round trip in milliseconds.
    pub async fn health(self: &Arc<Self>) -> Health {
        let Ok(h) = self.handle() else {
            return Health {
                connected: false,
                latency_ms: None,
            };
        };
        let start = Instant::now();
        match self.query(h, &redis::cmd("PING")).await {
            Ok(_) => Health {
                connected: true,
                latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
            },
            Err(_) => Health {
                connected: false,
                latency_ms: None,
            },
        }
    }

    async fn open(self: &Arc<Self>, gen: u64) -> Result<MultiplexedConnection, Error> {
        let weak: Weak<Client> = Arc::downgrade(self);
        let mut conn = self
            .connect_with(move |info: PushInfo| {
                if info.kind == PushKind::Disconnection {
                    if let Some(c) = weak.upgrade() {
                        c.on_lost(gen, "the server closed the connection");
                    }
                }
            })
            .await?;
        if let Some(name) = &self.cfg.client_name {
            let mut c = redis::cmd("CLIENT");
            c.arg("SETNAME").arg(name);
            conn.send_packed_command(&c)
                .await
                .map_err(|e| self.error(&e))?;
        }
        if self.plain.load(Ordering::Relaxed) {
            let stream = crate::core::wire::open_plain(&self.cfg).await?;
            self.sink.attach(stream, gen);
        }
        Ok(conn)
    }

    /// Opens one multiplexed RESP3 connection whose server pushes (and the crate's
    /// `Disconnection` notice) go to `push`: the service's own, or a subscriber's.
    ///
    /// # Errors
    /// `Connection`, `Timeout` (within `connectTimeoutMs`) or `Auth`.
    pub async fn connect_with(
        &self,
        push: impl Fn(PushInfo) + Send + Sync + 'static,
    ) -> Result<MultiplexedConnection, Error> {
        let connect_timeout = Duration::from_millis(self.cfg.connect_timeout_ms);
        let mut conf = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(Duration::from_millis(self.cfg.command_timeout_ms)))
            .set_push_sender(move |info: PushInfo| {
                push(info);
                Ok::<(), ()>(())
            });
        if let Some(name) = self.cfg.tls.as_ref().and_then(|t| t.servername.clone()) {
            conf = conf.set_dns_resolver(ServernameResolver {
                name,
                real_host: self.cfg.host.clone(),
            });
        }
        let fut = self
            .redis
            .get_multiplexed_async_connection_with_config(&conf);
        let conn = match tokio::time::timeout(connect_timeout, fut).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let err = self.error(&e);
                return Err(match err {
                    Error::Reply(m) => Error::Connection(format!("Redis connection failed: {m}")),
                    other => other,
                });
            }
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "could not connect to Redis at {}:{} within connectTimeoutMs ({} ms)",
                    self.cfg.host, self.cfg.port, self.cfg.connect_timeout_ms
                )))
            }
        };
        Ok(conn)
    }

    fn on_lost(self: &Arc<Self>, gen: u64, reason: &str) {
        let Ok(mut st) = self.state.write() else {
            return;
        };
        if !matches!(&*st, State::Up { gen: g, .. } if *g == gen) {
            return;
        }
        *st = State::Down { gen };
        drop(st);
        self.start_outage(reason);
        self.spawn_reconnect(gen);
    }

    fn spawn_reconnect(self: &Arc<Self>, gen: u64) {
        let Ok(rt) = runtime() else { return };
        let me = Arc::clone(self);
        rt.spawn(async move { me.reconnect_loop(gen).await });
    }

    fn still_down(&self, gen: u64) -> bool {
        matches!(
            self.state
                .read()
                .map(|s| matches!(*s, State::Down { gen: g } if g == gen)),
            Ok(true)
        )
    }

    async fn reconnect_loop(self: Arc<Self>, gen: u64) {
        let mut delay = self.cfg.reconnect_min_delay_ms.max(1);
        loop {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            if !self.still_down(gen) {
                return;
            }
            let attempt = {
                let _gate = self.gate.lock().await;
                if !self.still_down(gen) {
                    return;
                }
                let new_gen = self.gen.fetch_add(1, Ordering::SeqCst) + 1;
                match self.open(new_gen).await {
                    Ok(conn) => {
                        if let Ok(mut st) = self.state.write() {
                            *st = State::Up { conn, gen: new_gen };
                        }
                        true
                    }
                    Err(_) => false,
                }
            };
            if attempt {
                self.end_outage();
                return;
            }
            delay = (delay * 2).min(self.cfg.reconnect_max_delay_ms.max(1));
        }
    }

    fn start_outage(&self, reason: &str) {
        let Ok(mut o) = self.outage_since.lock() else {
            return;
        };
        if o.is_none() {
            *o = Some(Instant::now());
            drop(o);
            self.sink.log(
                Level::Warn,
                format!(
                    "Redis unavailable at {}:{} ({}); reconnecting in the background",
                    self.cfg.host,
                    self.cfg.port,
                    crate::core::error::redact(reason, self.secret())
                ),
            );
        }
    }

    fn end_outage(&self) {
        let Ok(mut o) = self.outage_since.lock() else {
            return;
        };
        if let Some(since) = o.take() {
            drop(o);
            if let Ok(mut w) = self.degraded_warned.lock() {
                w.clear();
            }
            self.sink.log(
                Level::Info,
                format!(
                    "Redis connection to {}:{} restored after {} ms",
                    self.cfg.host,
                    self.cfg.port,
                    since.elapsed().as_millis()
                ),
            );
        }
    }
}

/// Redis's own error text: `CODE detail`, as the server sent it.
fn server_error_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

fn redact_server(e: &redis::RedisError, secret: Option<&str>) -> String {
    crate::core::error::redact(&server_error_text(e), secret)
}

/// Reply text of an error value inside a pipeline result.
pub fn pipeline_error_text(e: &redis::ServerError) -> String {
    server_error_text(&e.clone().into())
}

fn build_redis_client(cfg: &Config) -> Result<redis::Client, Error> {
    let host = cfg
        .tls
        .as_ref()
        .and_then(|t| t.servername.clone())
        .unwrap_or_else(|| cfg.host.clone());
    let addr = match &cfg.tls {
        None => redis::ConnectionAddr::Tcp(host, cfg.port),
        Some(t) => redis::ConnectionAddr::TcpTls {
            host,
            port: cfg.port,
            insecure: !t.reject_unauthorized,
            tls_params: None,
        },
    };
    // RESP3 (Redis 6+): the connection then reports its own loss at once, so an outage is
    // noticed when it happens, not at the next command.
    let mut rinfo = redis::RedisConnectionInfo::default()
        .set_protocol(redis::ProtocolVersion::RESP3)
        .set_db(cfg.db)
        .set_lib_name("app-redis", env!("CARGO_PKG_VERSION"));
    if let Some(u) = &cfg.username {
        rinfo = rinfo.set_username(u);
    }
    if let Some(p) = &cfg.password {
        rinfo = rinfo.set_password(p);
    }
    let info = redis::IntoConnectionInfo::into_connection_info(addr)
        .map_err(|e| Error::arg(format!("invalid connection settings: {e}")))?
        .set_redis_settings(rinfo);
    match &cfg.tls {
        Some(t) if t.ca.is_some() || t.cert.is_some() || t.key.is_some() => {
            let client_tls = match (&t.cert, &t.key) {
                (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
                (None, None) => None,
                _ => return Err(Error::arg("tls.cert and tls.key must be given together")),
            };
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls,
                    root_cert: t.ca.clone(),
                },
            )
            .map_err(|e| Error::arg(format!("tls settings are not usable: {e}")))
        }
        _ => redis::Client::open(info)
            .map_err(|e| Error::arg(format!("invalid connection settings: {e}"))),
    }
}

/// Installs the process-wide rustls crypto provider (ring) once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
