//! One multiplexed connection per service (or one cluster connection), with our own reconnect
//! state machine.
//!
//! Sentinel mode asks the Sentinels for the master's address on every (re)connect and checks
//! `ROLE` before using it, so a failover is followed by the ordinary reconnect. Cluster mode uses
//! the crate's cluster connection, which follows MOVED/ASK, refreshes slots and reconnects to
//! single nodes by itself; our state machine then only tracks outages for the logger.
//!
//! Why not the crate's `ConnectionManager`: while the server is down its commands wait for the
//! reconnect, and we want them to fail fast (`ERR_CONNECTION`) and to know exactly when an outage
//! starts and ends, so the logger hears about it once each way.
//!
//! Here: the client, its state and the runtime. `open.rs` opens connections (Sentinel, TLS names,
//! cluster, server version), `outage.rs` handles loss and reconnects, `query.rs` sends commands
//! and pipelines, `nodes.rs` answers what the health check and SCAN need to know of the servers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, Cmd, PushInfo, PushKind, Value};

use crate::core::config::{Node, Topology};
use crate::core::error::server_error_text;
use crate::core::{Config, Error};

mod nodes;
mod open;
mod outage;
mod query;

pub use nodes::{parse_cluster_nodes, Health, NodeInfo};

use open::build_redis_client;

/// Severity of a log line sent to the user's logger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Where the core sends log lines; the binding forwards them to the JS `logger`.
/// A connection changed state: what the `app-redis:connection` channel publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionEvent {
    /// `connecting`, `ready`, `failed` (a first connect), `lost`, `reconnecting` or `closed`.
    pub event: &'static str,
    pub host: String,
    pub port: u16,
    /// Why (`failed`, `lost`, a `reconnecting` after a failed attempt), without secrets.
    pub reason: Option<String>,
    /// `reconnecting`: the how-many-th attempt of this outage.
    pub attempt: Option<u32>,
}

pub trait EventSink: Send + Sync + 'static {
    fn log(&self, level: Level, msg: String);
    /// A connection changed state.
    fn connection(&self, _event: ConnectionEvent) {}
    /// A connection for the JS thread is ready (generation `gen`); see [`Client::want_plain`].
    fn attach(&self, _socket: crate::core::wire::Socket, _gen: u64) {}
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

/// A live connection: to one server (standalone, or the master the Sentinels name), or to a
/// whole cluster.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    async fn one(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => c.send_packed_command(cmd).await,
            Conn::Cluster(c) => redis::aio::ConnectionLike::req_packed_command(c, cmd).await,
        }
    }

    async fn many(
        &mut self,
        pipe: &redis::Pipeline,
        count: usize,
    ) -> redis::RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.send_packed_commands(pipe, 0, count).await,
            Conn::Cluster(c) => {
                redis::aio::ConnectionLike::req_packed_commands(c, pipe, 0, count).await
            }
        }
    }
}

enum State {
    /// Never connected, or `disconnect()`ed.
    Idle(&'static str),
    Up {
        conn: Conn,
        gen: u64,
    },
    /// Lost; a reconnect loop for `gen` is running.
    Down {
        gen: u64,
    },
}

/// What a command needs to run: a connection handle and the generation it belongs to.
#[derive(Clone)]
pub struct Handle {
    pub conn: Conn,
    gen: u64,
}

impl Handle {
    /// Whether this is a cluster connection (pipelines are then split per command).
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }
}

/// A connection to one Redis server and its lifecycle.
pub struct Client {
    pub cfg: Config,
    /// Address of the server commands go to: `host:port`, or the master the Sentinels named
    /// last, or (cluster) the first seed node.
    target: RwLock<Node>,
    state: RwLock<State>,
    /// Mirrors `state` being `Up` (written under its lock): the per-call check reads only this.
    up: std::sync::atomic::AtomicBool,
    gen: AtomicU64,
    gate: tokio::sync::Mutex<()>,
    outage_since: Mutex<Option<Instant>>,
    /// Mirrors `outage_since.is_some()` for the per-command check in cluster mode.
    in_outage: std::sync::atomic::AtomicBool,
    /// See [`Client::server_major`].
    server_major: AtomicU64,
    /// Features that already warned about running degraded in the current outage.
    degraded_warned: Mutex<Vec<&'static str>>,
    sink: Arc<dyn EventSink>,
    /// Local wake-ups for lock waiters.
    pub waiters: crate::core::waiters::Waiters,
    /// Whether each connect also opens a connection for the JS thread.
    plain: std::sync::atomic::AtomicBool,
    /// The JS-thread connection's TLS settings, made at its first connect and kept (so a
    /// reconnect can resume the TLS session).
    js_tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
    /// `disconnect()` calls not yet done (see [`crate::core::closing`]).
    pub closes: Arc<crate::core::closing::Closes>,
    /// The near cache (`clientCache`), flushed whenever a connection is lost. In cluster mode the
    /// lanes' clients share the service's.
    pub near: Option<Arc<crate::core::near_cache::NearCache>>,
    /// What `stats()` reports (shared with the cluster lanes' clients).
    pub stats: Arc<crate::core::stats::Stats>,
}

fn lock_err<T>(_: T) -> Error {
    Error::Connection("internal state lock poisoned".into())
}

impl Client {
    /// Builds a client; nothing is connected yet.
    ///
    /// # Errors
    /// `InvalidArgument` when the TLS material cannot be used.
    pub fn new(cfg: Config, sink: Arc<dyn EventSink>) -> Result<Arc<Self>, Error> {
        let near = cfg
            .client_cache
            .clone()
            .map(|o| Arc::new(crate::core::near_cache::NearCache::new(o)));
        Self::build(cfg, sink, near, Arc::default())
    }

    /// [`Client::new`] with `parent`'s near cache and counters rather than its own (a cluster
    /// lane's client: the service's).
    ///
    /// # Errors
    /// As [`Client::new`].
    pub fn sharing(
        cfg: Config,
        sink: Arc<dyn EventSink>,
        parent: &Client,
    ) -> Result<Arc<Self>, Error> {
        Self::build(cfg, sink, parent.near.clone(), Arc::clone(&parent.stats))
    }

    fn build(
        cfg: Config,
        sink: Arc<dyn EventSink>,
        near: Option<Arc<crate::core::near_cache::NearCache>>,
        stats: Arc<crate::core::stats::Stats>,
    ) -> Result<Arc<Self>, Error> {
        let target = match &cfg.topology {
            Topology::Cluster { nodes } => nodes
                .first()
                .cloned()
                .ok_or_else(|| Error::arg("cluster.nodes must list at least one host:port"))?,
            _ => (cfg.host.clone(), cfg.port),
        };
        // Builds one client now so unusable TLS material fails at construction.
        build_redis_client(&cfg, &target, false)?;
        Ok(Arc::new(Client {
            cfg,
            target: RwLock::new(target),
            state: RwLock::new(State::Idle("not connected: call connect() first")),
            up: std::sync::atomic::AtomicBool::new(false),
            gen: AtomicU64::new(0),
            gate: tokio::sync::Mutex::new(()),
            outage_since: Mutex::new(None),
            in_outage: std::sync::atomic::AtomicBool::new(false),
            server_major: AtomicU64::new(0),
            degraded_warned: Mutex::new(Vec::new()),
            sink,
            waiters: Default::default(),
            plain: std::sync::atomic::AtomicBool::new(false),
            js_tls: std::sync::OnceLock::new(),
            closes: Default::default(),
            near,
            stats,
        }))
    }

    fn secret(&self) -> Option<&str> {
        self.cfg.password.as_deref()
    }

    /// Tells the sink that the connection to the current target changed state.
    pub(super) fn emit(&self, event: &'static str, reason: Option<&str>, attempt: Option<u32>) {
        let (host, port) = self.target();
        self.sink.connection(ConnectionEvent {
            event,
            host,
            port,
            reason: reason.map(|r| crate::core::error::redact(r, self.secret())),
            attempt,
        });
    }

    /// Whether this service talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.cfg.topology, Topology::Cluster { .. })
    }

    /// The server commands go to (see the `target` field).
    pub fn target(&self) -> Node {
        match self.target.read() {
            Ok(t) => t.clone(),
            Err(_) => (self.cfg.host.clone(), self.cfg.port),
        }
    }

    /// What we are connected to, for messages: never carries credentials.
    pub fn describe(&self) -> String {
        let (host, port) = self.target();
        match &self.cfg.topology {
            Topology::Standalone => format!("Redis at {host}:{port}"),
            Topology::Sentinel { master_name, .. } => {
                format!("Redis master '{master_name}' (last at {host}:{port}, via Sentinel)")
            }
            Topology::Cluster { nodes } => format!(
                "Redis Cluster (seed nodes {})",
                nodes
                    .iter()
                    .map(|(h, p)| format!("{h}:{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Asks every (re)connect to also open a connection for the JS thread (plain TCP or TLS),
    /// handed to [`EventSink::attach`]. Ignored in cluster mode (commands must be routed by
    /// slot: each master's lane is a standalone client of its own).
    pub fn want_plain(&self) -> bool {
        let ok = !self.is_cluster();
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
        if self.up.load(Ordering::Acquire) {
            return Ok(());
        }
        self.with_up(|_, _| ())
    }

    /// Replaces the state (under its write lock) and mirrors whether it is up.
    fn put(&self, st: &mut State, new: State) {
        self.up
            .store(matches!(new, State::Up { .. }), Ordering::Release);
        *st = new;
    }

    fn with_up<R>(&self, f: impl FnOnce(&Conn, u64) -> R) -> Result<R, Error> {
        match &*self.state.read().map_err(lock_err)? {
            State::Up { conn, gen } => Ok(f(conn, *gen)),
            State::Down { .. } => Err(Error::Connection(format!(
                "{} is unreachable; reconnecting in the background",
                self.describe()
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
        self.emit("connecting", None, None);
        match self.open(gen).await {
            Ok(conn) => {
                self.put(
                    &mut *self.state.write().map_err(lock_err)?,
                    State::Up { conn, gen },
                );
                self.emit("ready", None, None);
                self.end_outage();
                Ok(())
            }
            Err(e) => {
                self.emit("failed", Some(&e.to_string()), None);
                if self.cfg.fail_open {
                    self.put(
                        &mut *self.state.write().map_err(lock_err)?,
                        State::Down { gen },
                    );
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
            let was = !matches!(*st, State::Idle(_));
            self.put(
                &mut st,
                State::Idle("disconnected: call connect() to reconnect"),
            );
            drop(st);
            if was {
                self.emit("closed", None, None);
            }
        }
        if let Ok(mut o) = self.outage_since.lock() {
            *o = None;
        }
        self.sink.detach();
    }
}

fn redact_server(e: &redis::RedisError, secret: Option<&str>) -> String {
    crate::core::error::redact(&server_error_text(e), secret)
}

/// Installs the process-wide rustls crypto provider (ring) once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
pub mod testing;

#[cfg(test)]
mod tests {
    use super::open::{master_addr, min_major};
    use super::*;

    #[test]
    fn server_version_is_read_from_info() {
        let one = Value::BulkString(
            b"# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n".to_vec(),
        );
        assert_eq!(min_major(&one), Some(7));
        let nodes = Value::Map(vec![
            (Value::SimpleString("a".into()), one),
            (
                Value::SimpleString("b".into()),
                Value::VerbatimString {
                    format: redis::VerbatimFormat::Text,
                    text: "redis_version:6.2.1\r\n".into(),
                },
            ),
        ]);
        assert_eq!(min_major(&nodes), Some(6));
        assert_eq!(min_major(&Value::Nil), None);
    }

    #[test]
    fn sentinel_master_reply() {
        let v = [
            Value::BulkString(b"10.0.0.5".to_vec()),
            Value::BulkString(b"6380".to_vec()),
        ];
        assert_eq!(master_addr(&v), Some(("10.0.0.5".into(), 6380)));
        assert_eq!(master_addr(&v[..1]), None);
    }
}
