//! JS option objects → core settings. Parsed by hand so every bad value is refused with
//! `ERR_INVALID_ARGUMENT` naming the option (never napi's own conversion errors).

use napi::sys;
use napi_derive::napi;

use crate::binding::args::{Arg, Ctx};
use crate::core::config::{self, NearCacheOptions, Settings, TlsOptions};
use crate::core::Error;

/// Options for `new RedisService(options)`, `RedisService.connect(options)` and the overrides
/// of `RedisService.fromEnv(env, overrides)`. Explicit options beat `url`, which beats defaults.
#[napi(object)]
pub struct RedisOptions {
    /// `redis://[user[:password]@]host[:port][/db]` or `rediss://...` (TLS). Fields given
    /// separately below win over the URL's.
    pub url: Option<String>,
    /// Server host name or IP. Default `localhost`.
    pub host: Option<String>,
    /// Server port. Default `6379`.
    pub port: Option<u32>,
    /// ACL user name (Redis 6+). Default none (the `default` user).
    pub username: Option<String>,
    /// Password. Never appears in errors, logs, `healthCheck()` or `util.inspect`.
    pub password: Option<String>,
    /// Database index. Default `0`.
    pub db: Option<u32>,
    /// `true` for TLS with the system trust store, or details. Default off (`rediss://` turns it on).
    #[napi(ts_type = "boolean | RedisTlsOptions")]
    pub tls: Option<bool>,
    /// Prefix added to every key argument, to `scan` patterns, and stripped from returned keys. Default `''`.
    pub key_prefix: Option<String>,
    /// Milliseconds to wait for a connection (TCP + TLS + AUTH). Default `5000`.
    pub connect_timeout_ms: Option<u32>,
    /// Milliseconds to wait for each reply before rejecting with `ERR_TIMEOUT`. Default `5000`.
    pub command_timeout_ms: Option<u32>,
    /// First delay in milliseconds between reconnect attempts after a connection loss. Default `50`.
    pub reconnect_min_delay_ms: Option<u32>,
    /// Largest delay in milliseconds between reconnect attempts (the delay doubles up to it). Default `500`.
    pub reconnect_max_delay_ms: Option<u32>,
    /// `false` makes a disabled service: nothing connects, reads resolve empty, writes are no-ops. Default `true`.
    pub enabled: Option<bool>,
    /// `true`: while Redis is unreachable, reads resolve empty (`null`, `[]`, `{}`, `0`) and writes
    /// are no-ops, with one warning per outage. Default `false` (reject with `ERR_CONNECTION`).
    pub fail_open: Option<bool>,
    /// `true`: while Redis is unreachable (or disabled), `withLock`/`withSemaphore` run the callback
    /// anyway with `degraded: true` and lock calls pretend success, with one warning per outage.
    /// This gives up mutual exclusion. Default `false` (locks reject with `ERR_CONNECTION`).
    pub lock_fail_open: Option<bool>,
    /// `true` (the default): while Redis is unreachable (or disabled), rate limits allow every
    /// request with `degraded: true`, with one warning per outage. `false`: they reject with
    /// `ERR_CONNECTION`.
    pub rate_limit_fail_open: Option<bool>,
    /// Namespace of session keys, after `keyPrefix`. Default `'sess:'`.
    pub session_prefix: Option<String>,
    /// Where outage warnings go: any object with `log`/`warn`/`error` (a NestJS `Logger`, `console`).
    /// `false` silences them. Default `console`.
    #[napi(ts_type = "RedisLogger | false")]
    pub logger: Option<bool>,
    /// Name shown in `CLIENT LIST` (no spaces). Default none.
    pub client_name: Option<String>,
    /// Redis Cluster mode: the seed nodes (`'host:port'`, `redis://host:port` or `{ host, port }`);
    /// the rest of the cluster is discovered from them. `username`, `password` and `tls` apply to
    /// every node. Default none (standalone). Env: `REDIS_CLUSTER_NODES=host:port,host:port`.
    pub cluster: Option<RedisClusterOptions>,
    /// Sentinel mode: the master is looked up from these Sentinels on every (re)connect, so a
    /// failover is followed. `username`, `password`, `db` and `tls` apply to the data nodes.
    /// Default none. Env: `REDIS_SENTINELS=host:port,...` + `REDIS_SENTINEL_MASTER`.
    pub sentinel: Option<RedisSentinelOptions>,
    /// The near cache: reads it serves (`get`, `getBuffer`, `getJson`, `hGet`, `hGetAll`,
    /// `hmGet`, `mget`, `exists` of one key, `strlen`, `getSession`, `wrap`'s read) are kept in
    /// process memory and dropped when Redis says their key changed (RESP3 client tracking).
    /// `true` for the defaults or limits. Default off. Env: `REDIS_CLIENT_CACHE=true`.
    /// Standalone and Sentinel; refused in cluster mode.
    #[napi(ts_type = "boolean | RedisClientCacheOptions")]
    pub client_cache: Option<bool>,
}

/// Limits of the near cache (`clientCache`); the least recently used entries go first.
#[napi(object)]
pub struct RedisClientCacheOptions {
    /// Most entries kept. Default 10,000.
    pub max_entries: Option<u32>,
    /// Most bytes kept (keys, values and bookkeeping, approximately). Default 64 MiB.
    pub max_bytes: Option<f64>,
    /// Longest an entry is served, in milliseconds, on top of its key's own TTL. Default none.
    pub ttl_ms: Option<u32>,
}

/// Cluster mode settings.
#[napi(object)]
pub struct RedisClusterOptions {
    /// Seed nodes; at least one must be reachable. Port defaults to `6379`.
    #[napi(ts_type = "Array<string | { host: string; port?: number }>")]
    pub nodes: Vec<String>,
}

/// Sentinel mode settings.
#[napi(object)]
pub struct RedisSentinelOptions {
    /// The Sentinels (`'host:port'` or `{ host, port }`). Port defaults to `26379`.
    #[napi(ts_type = "Array<string | { host: string; port?: number }>")]
    pub sentinels: Vec<String>,
    /// The master's name in the Sentinel configuration (`sentinel monitor <name> ...`).
    pub master_name: String,
    /// ACL user for the Sentinels themselves, when they require one. Default none.
    pub username: Option<String>,
    /// Password for the Sentinels themselves, when they require one. Default none. Never logged.
    pub password: Option<String>,
}

/// TLS details. PEM text or Buffers.
#[napi(object)]
pub struct RedisTlsOptions {
    /// CA certificate(s) to trust instead of the system store.
    #[napi(ts_type = "string | Buffer")]
    pub ca: Option<String>,
    /// Client certificate, for mutual TLS.
    #[napi(ts_type = "string | Buffer")]
    pub cert: Option<String>,
    /// Client private key, for mutual TLS.
    #[napi(ts_type = "string | Buffer")]
    pub key: Option<String>,
    /// Name to verify the server certificate against (and send as SNI), when it differs from `host`.
    pub servername: Option<String>,
    /// `false` accepts any certificate: for tests only. Default `true`.
    pub reject_unauthorized: Option<bool>,
}

/// A logger: `console`, a NestJS `Logger`, pino, winston...
#[napi(object)]
pub struct RedisLogger {
    #[napi(ts_type = "(message: string) => void")]
    pub log: Option<bool>,
    #[napi(ts_type = "(message: string) => void")]
    pub warn: Option<bool>,
    #[napi(ts_type = "(message: string) => void")]
    pub error: Option<bool>,
}

/// Parsed options: the settings layer and the logger value (null = silent).
pub struct Parsed {
    pub settings: Settings,
    pub logger: LoggerChoice,
}

pub enum LoggerChoice {
    Default,
    Silent,
    Given(sys::napi_value),
}

const C: Ctx = Ctx {
    method: "RedisService",
};

fn opt_string(o: Arg, name: &str) -> Result<Option<String>, Error> {
    let v = o.get(name);
    if v.is_nullish() {
        return Ok(None);
    }
    v.string(C, &format!("options.{name}")).map(Some)
}

fn opt_bool(o: Arg, name: &str) -> Result<Option<bool>, Error> {
    let v = o.get(name);
    if v.is_nullish() {
        return Ok(None);
    }
    if v.kind() != sys::ValueType::napi_boolean {
        return Err(C.bad(format!("options.{name}"), "a boolean", v));
    }
    let b = v.bool().unwrap_or(false);
    Ok(Some(b))
}

fn opt_int(o: Arg, name: &str, min: i64, max: i64) -> Result<Option<i64>, Error> {
    let v = o.get(name);
    if v.is_nullish() {
        return Ok(None);
    }
    match v.int(C, &format!("options.{name}")) {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(C.bad(
            format!("options.{name}"),
            &format!("an integer from {min} to {max}"),
            v,
        )),
    }
}

/// `clientCache`: `true`, `false` or `{ maxEntries?, maxBytes?, ttlMs? }`.
fn client_cache(o: Arg) -> Result<Option<Option<NearCacheOptions>>, Error> {
    let v = o.get("clientCache");
    match v.kind() {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(None),
        sys::ValueType::napi_boolean => Ok(Some(
            v.bool().unwrap_or(false).then(NearCacheOptions::default),
        )),
        sys::ValueType::napi_object if v.is_plain_object() => {
            for (k, _) in v.entries(C, "options.clientCache")? {
                let k = k.text().unwrap_or_default();
                if !["maxEntries", "maxBytes", "ttlMs"].contains(&k.as_str()) {
                    return Err(Error::arg(format!(
                        "RedisService(): unknown option `options.clientCache.{k}` (accepted: \
                         maxEntries, maxBytes, ttlMs)"
                    )));
                }
            }
            let int = |name: &str, min: i64, max: i64| -> Result<Option<i64>, Error> {
                let x = v.get(name);
                if x.is_nullish() {
                    return Ok(None);
                }
                let full = format!("options.clientCache.{name}");
                match x.int(C, &full) {
                    Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                    _ => Err(C.bad(full, &format!("an integer from {min} to {max}"), x)),
                }
            };
            let d = NearCacheOptions::default();
            Ok(Some(Some(NearCacheOptions {
                max_entries: int("maxEntries", 1, 100_000_000)?
                    .map_or(d.max_entries, |n| n as usize),
                max_bytes: int("maxBytes", 1024, 1 << 40)?.map_or(d.max_bytes, |n| n as usize),
                ttl_ms: int("ttlMs", 1, 2_147_483_647)?.map(|n| n as u64),
            })))
        }
        _ => Err(C.bad(
            "options.clientCache",
            "true, false or an object { maxEntries?, maxBytes?, ttlMs? }",
            v,
        )),
    }
}

fn pem(o: Arg, name: &str) -> Result<Option<Vec<u8>>, Error> {
    let v = o.get(name);
    if v.is_nullish() {
        return Ok(None);
    }
    v.value(C, &format!("options.tls.{name}")).map(Some)
}

type TopologyParts = (
    Option<Vec<config::Node>>,
    Option<Vec<config::Node>>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Reads `options.cluster` and `options.sentinel`.
fn topology(o: Arg) -> Result<TopologyParts, Error> {
    let cluster = o.get("cluster");
    let cluster_nodes = if cluster.is_nullish() {
        None
    } else {
        if !cluster.is_plain_object() {
            return Err(C.bad("options.cluster", "an object { nodes: [...] }", cluster));
        }
        Some(nodes(
            cluster.get("nodes"),
            "options.cluster.nodes",
            config::DEFAULT_PORT,
        )?)
    };
    let sentinel = o.get("sentinel");
    if sentinel.is_nullish() {
        return Ok((cluster_nodes, None, None, None, None));
    }
    if !sentinel.is_plain_object() {
        return Err(C.bad(
            "options.sentinel",
            "an object { sentinels: [...], masterName }",
            sentinel,
        ));
    }
    let list = nodes(
        sentinel.get("sentinels"),
        "options.sentinel.sentinels",
        config::DEFAULT_SENTINEL_PORT,
    )?;
    let field = |name: &str| -> Result<Option<String>, Error> {
        let v = sentinel.get(name);
        if v.is_nullish() {
            return Ok(None);
        }
        v.string(C, &format!("options.sentinel.{name}")).map(Some)
    };
    let master = field("masterName")?.ok_or_else(|| {
        C.bad(
            "options.sentinel.masterName",
            "the master's name",
            sentinel.get("masterName"),
        )
    })?;
    Ok((
        cluster_nodes,
        Some(list),
        Some(master),
        field("username")?,
        field("password")?,
    ))
}

/// A node list: strings (`host:port`, URL) or `{ host, port }` objects.
fn nodes(v: Arg, name: &str, default_port: u16) -> Result<Vec<config::Node>, Error> {
    if !v.is_array() {
        return Err(C.bad(name, "an array of 'host:port' strings or { host, port }", v));
    }
    let mut out = Vec::new();
    for (i, n) in v.elements(C, name)?.into_iter().enumerate() {
        let at = format!("{name}[{i}]");
        if n.kind() == sys::ValueType::napi_string {
            out.push(config::parse_node(&n.string(C, &at)?, &at, default_port)?);
        } else if n.is_plain_object() {
            let host = n.get("host").string(C, &format!("{at}.host"))?;
            if host.trim().is_empty() {
                return Err(C.bad(format!("{at}.host"), "a host name", n.get("host")));
            }
            let port = match n.get("port") {
                p if p.is_nullish() => default_port,
                p => match p.int(C, &format!("{at}.port")) {
                    Ok(x) if (1..=65535).contains(&x) => x as u16,
                    _ => return Err(C.bad(format!("{at}.port"), "an integer from 1 to 65535", p)),
                },
            };
            out.push((host, port));
        } else {
            return Err(C.bad(&at, "'host:port' or { host, port }", n));
        }
    }
    if out.is_empty() {
        return Err(C.bad(name, "a non-empty array", v));
    }
    Ok(out)
}

/// Reads an options object (or `undefined`).
pub fn parse(o: Arg) -> Result<Parsed, Error> {
    if o.is_nullish() {
        return Ok(Parsed {
            settings: Settings::default(),
            logger: LoggerChoice::Default,
        });
    }
    if o.kind() == sys::ValueType::napi_string {
        // `new RedisService('redis://...')`, as `new Redis(url)` in ioredis: the same as
        // `{ url }`, checked the same way.
        let url = o.string(C, "options")?;
        return Ok(Parsed {
            settings: config::parse_url(&url, "options")?,
            logger: LoggerChoice::Default,
        });
    }
    if !o.is_plain_object() {
        return Err(C.bad("options", "an object or a redis:// URL", o));
    }
    const MAX_MS: i64 = 2_147_483_647;
    let tls_v = o.get("tls");
    let (tls_enabled, tls) = match tls_v.kind() {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => (None, None),
        sys::ValueType::napi_boolean => (opt_bool(o, "tls")?, None),
        sys::ValueType::napi_object if tls_v.is_plain_object() => {
            let reject = opt_bool(tls_v, "rejectUnauthorized").map_err(|_| {
                C.bad(
                    "options.tls.rejectUnauthorized",
                    "a boolean",
                    tls_v.get("rejectUnauthorized"),
                )
            })?;
            let servername = match tls_v.get("servername") {
                s if s.is_nullish() => None,
                s => Some(s.string(C, "options.tls.servername")?),
            };
            (
                Some(true),
                Some(TlsOptions {
                    ca: pem(tls_v, "ca")?,
                    cert: pem(tls_v, "cert")?,
                    key: pem(tls_v, "key")?,
                    servername,
                    reject_unauthorized: reject.unwrap_or(true),
                }),
            )
        }
        _ => {
            return Err(C.bad(
                "options.tls",
                "true, false or an object { ca, cert, key, servername, rejectUnauthorized }",
                tls_v,
            ))
        }
    };
    let explicit = Settings {
        host: opt_string(o, "host")?,
        port: opt_int(o, "port", 1, 65535)?.map(|p| p as u16),
        username: opt_string(o, "username")?,
        password: opt_string(o, "password")?,
        db: opt_int(o, "db", 0, 1_000_000)?,
        tls_enabled,
        tls,
        key_prefix: opt_string(o, "keyPrefix")?,
        connect_timeout_ms: opt_int(o, "connectTimeoutMs", 1, MAX_MS)?.map(|n| n as u64),
        command_timeout_ms: opt_int(o, "commandTimeoutMs", 1, MAX_MS)?.map(|n| n as u64),
        reconnect_min_delay_ms: opt_int(o, "reconnectMinDelayMs", 1, MAX_MS)?.map(|n| n as u64),
        reconnect_max_delay_ms: opt_int(o, "reconnectMaxDelayMs", 1, MAX_MS)?.map(|n| n as u64),
        enabled: opt_bool(o, "enabled")?,
        fail_open: opt_bool(o, "failOpen")?,
        lock_fail_open: opt_bool(o, "lockFailOpen")?,
        rate_limit_fail_open: opt_bool(o, "rateLimitFailOpen")?,
        session_prefix: opt_string(o, "sessionPrefix")?,
        client_name: opt_string(o, "clientName")?,
        client_cache: client_cache(o)?,
        ..Settings::default()
    };
    let (cluster_nodes, sentinels, sentinel_master, sentinel_username, sentinel_password) =
        topology(o)?;
    let explicit = Settings {
        cluster_nodes,
        sentinels,
        sentinel_master,
        sentinel_username,
        sentinel_password,
        ..explicit
    };
    let settings = match opt_string(o, "url")? {
        Some(u) => explicit.over(config::parse_url(&u, "options.url")?),
        None => explicit,
    };
    let lv = o.get("logger");
    let logger = match lv.kind() {
        sys::ValueType::napi_undefined | sys::ValueType::napi_null => LoggerChoice::Default,
        sys::ValueType::napi_boolean => {
            let b = lv.bool().unwrap_or(true);
            if b {
                LoggerChoice::Default
            } else {
                LoggerChoice::Silent
            }
        }
        sys::ValueType::napi_object => LoggerChoice::Given(lv.raw()),
        _ => {
            return Err(C.bad(
                "options.logger",
                "an object with log/warn/error methods, or false",
                lv,
            ))
        }
    };
    Ok(Parsed { settings, logger })
}

/// Reads the `REDIS_*` variables from an env-like object.
pub fn env_vars(env_obj: Arg) -> Result<std::collections::HashMap<String, String>, Error> {
    if env_obj.kind() != sys::ValueType::napi_object {
        return Err(Ctx { method: "fromEnv" }.bad("env", "an object such as process.env", env_obj));
    }
    let mut out = std::collections::HashMap::new();
    for name in config::CONNECTION_VARS.iter().chain(
        [
            "REDIS_ENABLED",
            "REDIS_KEY_PREFIX",
            "REDIS_FAIL_OPEN",
            "REDIS_CLIENT_CACHE",
        ]
        .iter(),
    ) {
        let v = env_obj.get(name);
        match v.kind() {
            sys::ValueType::napi_undefined | sys::ValueType::napi_null => {}
            sys::ValueType::napi_string => {
                if let Some(s) = v.text() {
                    out.insert((*name).to_string(), s);
                }
            }
            _ => {
                return Err(Ctx { method: "fromEnv" }.bad(format!("env.{name}"), "a string", v));
            }
        }
    }
    Ok(out)
}
