//! Configuration: explicit options > `REDIS_URL` > discrete `REDIS_*` variables > defaults.
//!
//! Pure parsing with unit tests; the binding only turns JS values into a [`Settings`] layer.

use std::collections::HashMap;

use crate::core::Error;

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

/// Parses a `redis://` or `rediss://` URL (`[user[:password]@]host[:port][/db]`).
///
/// # Errors
/// `InvalidArgument` naming `setting` (`url` or `REDIS_URL`); the message never contains the URL's password.
pub fn parse_url(raw: &str, setting: &str) -> Result<Settings, Error> {
    let bad = |why: &str| Error::arg(format!("{setting} is not a valid Redis URL: {why}"));
    let parsed = url::Url::parse(raw.trim()).map_err(|e| bad(&e.to_string()))?;
    let tls = match parsed.scheme() {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        other => {
            return Err(bad(&format!(
                "scheme must be redis:// or rediss://, got {other}://"
            )))
        }
    };
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("missing host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = match parsed.port() {
        Some(0) => return Err(bad("port must be from 1 to 65535, got 0")),
        p => p,
    };
    let decode = |s: &str| -> Result<String, Error> {
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| bad("bad percent-encoding in credentials"))
    };
    let username = match parsed.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = match parsed.password() {
        None | Some("") => None,
        Some(p) => Some(decode(p)?),
    };
    let path = parsed.path().trim_start_matches('/');
    let db = if path.is_empty() {
        None
    } else {
        Some(
            path.parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or_else(|| bad(&format!("db must be a non-negative integer, got /{path}")))?,
        )
    };
    let insecure = parsed.fragment() == Some("insecure");
    Ok(Settings {
        host: Some(host),
        port,
        username,
        password,
        db,
        tls_enabled: Some(tls),
        tls: tls.then(|| TlsOptions {
            reject_unauthorized: !insecure,
            ..TlsOptions::default()
        }),
        ..Settings::default()
    })
}

/// Parses a boolean setting: true/false, 1/0, yes/no, on/off (any case).
///
/// # Errors
/// `InvalidArgument` naming `setting`.
pub fn parse_bool(raw: &str, setting: &str) -> Result<bool, Error> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(Error::arg(format!(
            "{setting} must be true or false, got \"{other}\""
        ))),
    }
}

/// Parses a port: an integer from 1 to 65535.
///
/// # Errors
/// `InvalidArgument` naming `setting`.
pub fn parse_port(raw: &str, setting: &str) -> Result<u16, Error> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|p| (1..=65535).contains(p))
        .map(|p| p as u16)
        .ok_or_else(|| {
            Error::arg(format!(
                "{setting} must be an integer from 1 to 65535, got \"{}\"",
                raw.trim()
            ))
        })
}

/// Parses a database index: a non-negative integer.
///
/// # Errors
/// `InvalidArgument` naming `setting`.
pub fn parse_db(raw: &str, setting: &str) -> Result<i64, Error> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|d| *d >= 0)
        .ok_or_else(|| {
            Error::arg(format!(
                "{setting} must be a non-negative integer, got \"{}\"",
                raw.trim()
            ))
        })
}

/// Parses one node: `host:port`, `[v6]:port` or a `redis://host:port` URL (port defaults to
/// 6379, or 26379 for a sentinel).
///
/// # Errors
/// `InvalidArgument` naming `setting`.
pub fn parse_node(raw: &str, setting: &str, default_port: u16) -> Result<Node, Error> {
    let raw = raw.trim();
    let bad = || {
        Error::arg(format!(
            "{setting} must be host:port (or a redis:// URL), got \"{raw}\""
        ))
    };
    if raw.contains("://") {
        let s = parse_url(raw, setting)?;
        let host = s.host.ok_or_else(bad)?;
        return Ok((host, s.port.unwrap_or(default_port)));
    }
    let (host, port) = match raw.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (!h.contains(':') || h.starts_with('[')) => {
            (h, Some(p))
        }
        _ => (raw, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        Some(p) => parse_port(p, setting)?,
        None => default_port,
    };
    Ok((host.to_string(), port))
}

/// Parses a comma-separated node list (`REDIS_CLUSTER_NODES`, `REDIS_SENTINELS`).
///
/// # Errors
/// `InvalidArgument` naming `setting`.
pub fn parse_node_list(raw: &str, setting: &str, default_port: u16) -> Result<Vec<Node>, Error> {
    raw.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| parse_node(p, setting, default_port))
        .collect()
}

/// Default Sentinel port.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// The variables [`from_env`] reads for the connection itself.
pub const CONNECTION_VARS: [&str; 12] = [
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_DB",
    "REDIS_TLS",
    "REDIS_CLUSTER_NODES",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_USERNAME",
    "REDIS_SENTINEL_PASSWORD",
];

fn var<'a>(env: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    env.get(name)
        .map(|s| s.as_str())
        .filter(|s| !s.trim().is_empty())
}

/// Builds the environment layer: `REDIS_URL` over the discrete variables.
///
/// # Errors
/// `InvalidArgument` naming the variable whose value is invalid.
pub fn from_env(env: &HashMap<String, String>) -> Result<Settings, Error> {
    let mut discrete = Settings {
        host: var(env, "REDIS_HOST").map(|s| s.trim().to_string()),
        port: var(env, "REDIS_PORT")
            .map(|s| parse_port(s, "REDIS_PORT"))
            .transpose()?,
        username: var(env, "REDIS_USERNAME").map(str::to_string),
        password: var(env, "REDIS_PASSWORD").map(str::to_string),
        db: var(env, "REDIS_DB")
            .map(|s| parse_db(s, "REDIS_DB"))
            .transpose()?,
        tls_enabled: var(env, "REDIS_TLS")
            .map(|s| parse_bool(s, "REDIS_TLS"))
            .transpose()?,
        key_prefix: env.get("REDIS_KEY_PREFIX").cloned(),
        enabled: var(env, "REDIS_ENABLED")
            .map(|s| parse_bool(s, "REDIS_ENABLED"))
            .transpose()?,
        fail_open: var(env, "REDIS_FAIL_OPEN")
            .map(|s| parse_bool(s, "REDIS_FAIL_OPEN"))
            .transpose()?,
        cluster_nodes: var(env, "REDIS_CLUSTER_NODES")
            .map(|s| parse_node_list(s, "REDIS_CLUSTER_NODES", DEFAULT_PORT))
            .transpose()?,
        sentinels: var(env, "REDIS_SENTINELS")
            .map(|s| parse_node_list(s, "REDIS_SENTINELS", DEFAULT_SENTINEL_PORT))
            .transpose()?,
        sentinel_master: var(env, "REDIS_SENTINEL_MASTER").map(|s| s.trim().to_string()),
        sentinel_username: var(env, "REDIS_SENTINEL_USERNAME").map(str::to_string),
        sentinel_password: var(env, "REDIS_SENTINEL_PASSWORD").map(str::to_string),
        ..Settings::default()
    };
    if let Some(url) = var(env, "REDIS_URL") {
        let from_url = parse_url(url, "REDIS_URL")?;
        // The URL decides the connection; REDIS_TLS=true may still turn TLS on for a redis:// URL.
        let tls_override = discrete.tls_enabled.filter(|t| *t);
        discrete = from_url.over(discrete);
        if tls_override.is_some() {
            discrete.tls_enabled = Some(true);
        }
    }
    Ok(discrete)
}

/// Whether any Redis connection setting is present (and Redis is not switched off).
pub fn is_configured(env: &HashMap<String, String>) -> bool {
    if let Some(v) = var(env, "REDIS_ENABLED") {
        if parse_bool(v, "REDIS_ENABLED") == Ok(false) {
            return false;
        }
    }
    CONNECTION_VARS.iter().any(|k| var(env, k).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve_env(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        Config::resolve(from_env(&env(pairs))?)
    }

    #[test]
    fn defaults() {
        let c = resolve_env(&[]).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("localhost", 6379, 0));
        assert_eq!(c.connect_timeout_ms, 5000);
        assert_eq!(c.command_timeout_ms, 5000);
        assert!(c.enabled && !c.fail_open && c.tls.is_none());
    }

    #[test]
    fn url_forms() {
        let c = resolve_env(&[("REDIS_URL", "redis://h1:7000/3")]).unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("h1", 7000, 3));
        let c = resolve_env(&[("REDIS_URL", "redis://:s3cret@h2")]).unwrap();
        assert_eq!(
            (c.port, c.username.clone(), c.password.as_deref()),
            (6379, None, Some("s3cret"))
        );
        let c = resolve_env(&[("REDIS_URL", "redis://alice:p%40ss@h3:6380")]).unwrap();
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        let c = resolve_env(&[("REDIS_URL", "rediss://h4:6390")]).unwrap();
        assert!(c.tls.as_ref().unwrap().reject_unauthorized);
        let c = resolve_env(&[("REDIS_URL", "rediss://h4:6390/#insecure")]).unwrap();
        assert!(!c.tls.unwrap().reject_unauthorized);
        let c = resolve_env(&[("REDIS_URL", "redis://[::1]:6379")]).unwrap();
        assert_eq!(c.host, "::1");
    }

    #[test]
    fn precedence() {
        // URL beats discrete variables.
        let c = resolve_env(&[
            ("REDIS_URL", "redis://fromurl:1111/2"),
            ("REDIS_HOST", "fromhost"),
            ("REDIS_PORT", "2222"),
            ("REDIS_DB", "5"),
            ("REDIS_PASSWORD", "envpw"),
        ])
        .unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("fromurl", 1111, 2));
        // A URL without a password keeps the discrete one.
        assert_eq!(c.password.as_deref(), Some("envpw"));
        // Explicit options beat everything.
        let opts = Settings {
            host: Some("explicit".into()),
            ..Settings::default()
        };
        let c =
            Config::resolve(opts.over(from_env(&env(&[("REDIS_URL", "redis://u:1/1")])).unwrap()))
                .unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("explicit", 1, 1));
        // Discrete variables beat defaults.
        let c = resolve_env(&[
            ("REDIS_HOST", "dh"),
            ("REDIS_PORT", "7001"),
            ("REDIS_TLS", "true"),
        ])
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("dh", 7001));
        assert!(c.tls.is_some());
    }

    #[test]
    fn flags() {
        let c = resolve_env(&[
            ("REDIS_ENABLED", "false"),
            ("REDIS_FAIL_OPEN", "yes"),
            ("REDIS_KEY_PREFIX", "app:"),
        ])
        .unwrap();
        assert!(!c.enabled && c.fail_open);
        assert_eq!(c.key_prefix, "app:");
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("REDIS_URL", "not a url")], "REDIS_URL"),
            (&[("REDIS_URL", "http://h:1")], "REDIS_URL"),
            (&[("REDIS_PORT", "0")], "REDIS_PORT"),
            (&[("REDIS_PORT", "70000")], "REDIS_PORT"),
            (&[("REDIS_DB", "-1")], "REDIS_DB"),
            (&[("REDIS_TLS", "maybe")], "REDIS_TLS"),
            (&[("REDIS_URL", "redis://h:70000")], "REDIS_URL"),
        ];
        for (vars, name) in cases {
            let err = resolve_env(vars).unwrap_err();
            assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
            assert!(err.to_string().contains(name), "{err} should name {name}");
        }
    }

    #[test]
    fn url_errors_never_echo_password() {
        let err = parse_url("redis://u:topsecret@h:99999", "REDIS_URL").unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
        let c = resolve_env(&[("REDIS_URL", "redis://u:topsecret@h:1")]).unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
        assert_eq!(c.redacted_url(), "redis://u:***@h:1/0");
    }

    #[test]
    fn configured_detection() {
        assert!(!is_configured(&env(&[])));
        assert!(is_configured(&env(&[("REDIS_URL", "redis://x")])));
        assert!(is_configured(&env(&[("REDIS_HOST", "x")])));
        assert!(!is_configured(&env(&[
            ("REDIS_HOST", "x"),
            ("REDIS_ENABLED", "false")
        ])));
        assert!(!is_configured(&env(&[("REDIS_HOST", "  ")])));
    }

    #[test]
    fn option_validation() {
        let bad = Settings {
            command_timeout_ms: Some(0),
            ..Settings::default()
        };
        assert!(Config::resolve(bad)
            .unwrap_err()
            .to_string()
            .contains("commandTimeoutMs"));
        let bad = Settings {
            db: Some(-1),
            ..Settings::default()
        };
        assert!(Config::resolve(bad).unwrap_err().to_string().contains("db"));
    }

    #[test]
    fn topology_from_env() {
        let c = resolve_env(&[("REDIS_CLUSTER_NODES", "10.0.0.1:7000, 10.0.0.2:7001,h3")]).unwrap();
        assert_eq!(
            c.topology,
            Topology::Cluster {
                nodes: vec![
                    ("10.0.0.1".into(), 7000),
                    ("10.0.0.2".into(), 7001),
                    ("h3".into(), 6379)
                ]
            }
        );
        let c = resolve_env(&[
            ("REDIS_SENTINELS", "s1:26380,[::1]:26381,s3"),
            ("REDIS_SENTINEL_MASTER", "mymaster"),
            ("REDIS_SENTINEL_PASSWORD", "sentpw"),
        ])
        .unwrap();
        assert_eq!(
            c.topology,
            Topology::Sentinel {
                sentinels: vec![
                    ("s1".into(), 26380),
                    ("::1".into(), 26381),
                    ("s3".into(), 26379)
                ],
                master_name: "mymaster".into()
            }
        );
        assert_eq!(c.sentinel_password.as_deref(), Some("sentpw"));
        assert!(!format!("{c:?}").contains("sentpw"));
        assert_eq!(resolve_env(&[]).unwrap().topology.mode(), "standalone");
    }

    #[test]
    fn topology_errors_name_the_setting() {
        for (pairs, needle) in [
            (&[("REDIS_CLUSTER_NODES", "h:0")][..], "REDIS_CLUSTER_NODES"),
            (&[("REDIS_CLUSTER_NODES", "h:x")][..], "REDIS_CLUSTER_NODES"),
            (
                &[("REDIS_SENTINELS", "s1:26379")][..],
                "REDIS_SENTINEL_MASTER",
            ),
            (
                &[("REDIS_SENTINELS", "s:1"), ("REDIS_CLUSTER_NODES", "c:1")][..],
                "cluster and sentinel",
            ),
            (
                &[("REDIS_CLUSTER_NODES", "c:1"), ("REDIS_DB", "2")][..],
                "cluster mode",
            ),
            (&[("REDIS_CLUSTER_NODES", ",")][..], "cluster.nodes"),
        ] {
            let err = resolve_env(pairs).unwrap_err().to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}
