//! Configuration: explicit options > `REDIS_URL` > discrete `REDIS_*` variables > defaults.
//!
//! Pure parsing with unit tests; the binding only turns JS values into a [`Settings`] layer.

mod env;
mod parse;

pub use crate::core::near_cache::NearCacheOptions;
use crate::core::Error;

pub use env::{from_env, is_configured, CONNECTION_VARS, DEFAULT_SENTINEL_PORT};
pub use parse::{parse_bool, parse_db, parse_node, parse_node_list, parse_port, parse_url};

/// TLS settings. PEM bytes for `ca`, `cert`, `key`.
#[derive(Clone, Default, PartialEq)]
pub struct TlsOptions {
    /// Trusted CA certificates (PEM). `None` uses the system trust store.
    pub ca: Option<Vec<u8>>,
    /// Client certificate (PEM), for mutual TLS.
    pub cert: Option<Vec<u8>>,
    /// Client private key (PEM), for mutual TLS.
    pub key: Option<Vec<u8>>,
    /// Name to verify the server certificate against (and send as SNI) instead of `host`.
    pub servername: Option<String>,
    /// `false` accepts any certificate (testing only).
    pub reject_unauthorized: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca.as_ref().map(|_| "<pem>"))
            .field("cert", &self.cert.as_ref().map(|_| "<pem>"))
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("servername", &self.servername)
            .field("reject_unauthorized", &self.reject_unauthorized)
            .finish()
    }
}

/// One layer of settings; every field optional so layers can be merged.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct Settings {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: Option<i64>,
    /// `Some(None)`-like states are folded: `tls_enabled` says on/off, `tls` carries details.
    pub tls_enabled: Option<bool>,
    pub tls: Option<TlsOptions>,
    pub key_prefix: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub command_timeout_ms: Option<u64>,
    pub reconnect_min_delay_ms: Option<u64>,
    pub reconnect_max_delay_ms: Option<u64>,
    pub enabled: Option<bool>,
    pub fail_open: Option<bool>,
    pub lock_fail_open: Option<bool>,
    pub rate_limit_fail_open: Option<bool>,
    pub session_prefix: Option<String>,
    pub client_name: Option<String>,
    /// Seed nodes of a Redis Cluster: cluster mode when set.
    pub cluster_nodes: Option<Vec<Node>>,
    /// Sentinels to ask for the master's address: sentinel mode when set.
    pub sentinels: Option<Vec<Node>>,
    pub sentinel_master: Option<String>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    /// The near cache: `Some(None)` off (explicitly), `Some(Some(limits))` on.
    pub client_cache: Option<Option<NearCacheOptions>>,
}

/// A `host:port` pair.
pub type Node = (String, u16);

/// How the service reaches Redis.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Topology {
    /// One server at `host:port`.
    #[default]
    Standalone,
    /// A Redis Cluster, discovered from these seed nodes.
    Cluster { nodes: Vec<Node> },
    /// The master that these Sentinels name `master_name`, looked up on every (re)connect.
    Sentinel {
        sentinels: Vec<Node>,
        master_name: String,
    },
}

impl Topology {
    /// `standalone`, `cluster` or `sentinel`, as `healthCheck()` reports it.
    pub fn mode(&self) -> &'static str {
        match self {
            Topology::Standalone => "standalone",
            Topology::Cluster { .. } => "cluster",
            Topology::Sentinel { .. } => "sentinel",
        }
    }
}

impl Settings {
    /// Fields of `self` win; missing ones come from `lower`.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            host: self.host.or(lower.host),
            port: self.port.or(lower.port),
            username: self.username.or(lower.username),
            password: self.password.or(lower.password),
            db: self.db.or(lower.db),
            tls_enabled: self.tls_enabled.or(lower.tls_enabled),
            tls: self.tls.or(lower.tls),
            key_prefix: self.key_prefix.or(lower.key_prefix),
            connect_timeout_ms: self.connect_timeout_ms.or(lower.connect_timeout_ms),
            command_timeout_ms: self.command_timeout_ms.or(lower.command_timeout_ms),
            reconnect_min_delay_ms: self.reconnect_min_delay_ms.or(lower.reconnect_min_delay_ms),
            reconnect_max_delay_ms: self.reconnect_max_delay_ms.or(lower.reconnect_max_delay_ms),
            enabled: self.enabled.or(lower.enabled),
            fail_open: self.fail_open.or(lower.fail_open),
            lock_fail_open: self.lock_fail_open.or(lower.lock_fail_open),
            rate_limit_fail_open: self.rate_limit_fail_open.or(lower.rate_limit_fail_open),
            session_prefix: self.session_prefix.or(lower.session_prefix),
            client_name: self.client_name.or(lower.client_name),
            cluster_nodes: self.cluster_nodes.or(lower.cluster_nodes),
            sentinels: self.sentinels.or(lower.sentinels),
            sentinel_master: self.sentinel_master.or(lower.sentinel_master),
            sentinel_username: self.sentinel_username.or(lower.sentinel_username),
            sentinel_password: self.sentinel_password.or(lower.sentinel_password),
            client_cache: self.client_cache.or(lower.client_cache),
        }
    }
}

/// The resolved configuration of one service.
#[derive(Clone, PartialEq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    pub tls: Option<TlsOptions>,
    pub key_prefix: String,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    pub reconnect_min_delay_ms: u64,
    pub reconnect_max_delay_ms: u64,
    pub enabled: bool,
    pub fail_open: bool,
    /// Locks run their callback without mutual exclusion while Redis is unreachable.
    pub lock_fail_open: bool,
    /// Rate limits allow (with `degraded: true`) while Redis is unreachable. Default on.
    pub rate_limit_fail_open: bool,
    /// Namespace of session keys (after `key_prefix`). Default `sess:`.
    pub session_prefix: String,
    pub client_name: Option<String>,
    /// Standalone, cluster or sentinel.
    pub topology: Topology,
    /// ACL user for the Sentinels themselves (the data nodes use `username`).
    pub sentinel_username: Option<String>,
    /// Password for the Sentinels themselves (the data nodes use `password`).
    pub sentinel_password: Option<String>,
    /// The near cache's limits, when `clientCache` is on (off by default).
    pub client_cache: Option<NearCacheOptions>,
}

/// Defaults, documented in the README's configuration table.
pub const DEFAULT_HOST: &str = "localhost";
pub const DEFAULT_PORT: u16 = 6379;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_RECONNECT_MIN_DELAY_MS: u64 = 50;
pub const DEFAULT_RECONNECT_MAX_DELAY_MS: u64 = 500;

impl Default for Config {
    fn default() -> Self {
        // Resolving an empty layer cannot fail: every default is valid.
        Config {
            host: DEFAULT_HOST.into(),
            port: DEFAULT_PORT,
            username: None,
            password: None,
            db: 0,
            tls: None,
            key_prefix: String::new(),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
            reconnect_min_delay_ms: DEFAULT_RECONNECT_MIN_DELAY_MS,
            reconnect_max_delay_ms: DEFAULT_RECONNECT_MAX_DELAY_MS,
            enabled: true,
            fail_open: false,
            lock_fail_open: false,
            rate_limit_fail_open: true,
            session_prefix: "sess:".into(),
            client_name: None,
            topology: Topology::Standalone,
            sentinel_username: None,
            sentinel_password: None,
            client_cache: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.redacted_url())
            .field("tls", &self.tls)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("enabled", &self.enabled)
            .field("fail_open", &self.fail_open)
            .field("topology", &self.topology)
            .finish()
    }
}

impl Config {
    /// Resolves layers (highest first) over the defaults and validates the result.
    ///
    /// # Errors
    /// `InvalidArgument` naming the setting when a value is out of range.
    pub fn resolve(layer: Settings) -> Result<Config, Error> {
        let d = Config::default();
        let tls = match (layer.tls_enabled, layer.tls) {
            (Some(false), _) => None,
            (_, Some(t)) => Some(t),
            (Some(true), None) => Some(TlsOptions {
                reject_unauthorized: true,
                ..TlsOptions::default()
            }),
            (None, None) => None,
        };
        let topology = match (layer.cluster_nodes, layer.sentinels) {
            (Some(_), Some(_)) => {
                return Err(Error::arg(
                    "cluster and sentinel cannot both be set: choose one mode",
                ))
            }
            (Some(nodes), None) => Topology::Cluster { nodes },
            (None, Some(sentinels)) => Topology::Sentinel {
                sentinels,
                master_name: layer
                    .sentinel_master
                    .filter(|m| !m.trim().is_empty())
                    .ok_or_else(|| {
                        Error::arg(
                            "sentinel.masterName (REDIS_SENTINEL_MASTER) is required with sentinels",
                        )
                    })?,
            },
            (None, None) => Topology::Standalone,
        };
        let cfg = Config {
            host: layer.host.unwrap_or(d.host),
            port: layer.port.unwrap_or(d.port),
            username: layer.username.filter(|u| !u.is_empty()),
            password: layer.password.filter(|p| !p.is_empty()),
            db: layer.db.unwrap_or(d.db),
            tls,
            key_prefix: layer.key_prefix.unwrap_or(d.key_prefix),
            connect_timeout_ms: layer.connect_timeout_ms.unwrap_or(d.connect_timeout_ms),
            command_timeout_ms: layer.command_timeout_ms.unwrap_or(d.command_timeout_ms),
            reconnect_min_delay_ms: layer
                .reconnect_min_delay_ms
                .unwrap_or(d.reconnect_min_delay_ms),
            reconnect_max_delay_ms: layer
                .reconnect_max_delay_ms
                .unwrap_or(d.reconnect_max_delay_ms),
            enabled: layer.enabled.unwrap_or(d.enabled),
            fail_open: layer.fail_open.unwrap_or(d.fail_open),
            lock_fail_open: layer.lock_fail_open.unwrap_or(d.lock_fail_open),
            rate_limit_fail_open: layer.rate_limit_fail_open.unwrap_or(d.rate_limit_fail_open),
            session_prefix: layer.session_prefix.unwrap_or(d.session_prefix),
            client_name: layer.client_name,
            topology,
            sentinel_username: layer.sentinel_username.filter(|u| !u.is_empty()),
            sentinel_password: layer.sentinel_password.filter(|p| !p.is_empty()),
            client_cache: layer.client_cache.flatten(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), Error> {
        if self.host.is_empty() {
            return Err(Error::arg("host must not be empty"));
        }
        if self.port == 0 {
            return Err(Error::arg("port must be an integer from 1 to 65535, got 0"));
        }
        if !(0..=1_000_000).contains(&self.db) {
            return Err(Error::arg(format!(
                "db must be a non-negative integer, got {}",
                self.db
            )));
        }
        for (name, v) in [
            ("connectTimeoutMs", self.connect_timeout_ms),
            ("commandTimeoutMs", self.command_timeout_ms),
        ] {
            if v == 0 {
                return Err(Error::arg(format!(
                    "{name} must be a positive integer (milliseconds), got 0"
                )));
            }
        }
        if self.reconnect_min_delay_ms > self.reconnect_max_delay_ms {
            return Err(Error::arg(format!(
                "reconnectMinDelayMs ({}) must not exceed reconnectMaxDelayMs ({})",
                self.reconnect_min_delay_ms, self.reconnect_max_delay_ms
            )));
        }
        match &self.topology {
            Topology::Cluster { nodes } if nodes.is_empty() => {
                return Err(Error::arg("cluster.nodes must list at least one host:port"))
            }
            Topology::Cluster { .. } if self.db != 0 => {
                return Err(Error::arg(format!(
                    "db must be 0 in cluster mode (a Redis Cluster has one database), got {}",
                    self.db
                )))
            }
            Topology::Cluster { .. }
                if self.tls.as_ref().is_some_and(|t| t.servername.is_some()) =>
            {
                return Err(Error::arg(
                    "tls.servername is not supported in cluster mode: each node's certificate is \
                     checked against the address the cluster announces for that node",
                ))
            }
            Topology::Sentinel { sentinels, .. } if sentinels.is_empty() => {
                return Err(Error::arg(
                    "sentinel.sentinels must list at least one host:port",
                ))
            }
            _ => {}
        }
        if let Some(name) = &self.client_name {
            if name.chars().any(|c| c.is_whitespace()) {
                return Err(Error::arg("clientName must not contain spaces"));
            }
        }
        Ok(())
    }

    /// `redis[s]://[user:***@]host:port/db`: never carries the password.
    pub fn redacted_url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_string(),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        format!("{scheme}://{auth}{}:{}/{}", self.host, self.port, self.db)
    }
}
