//! Parsing one setting's text (URLs, flags, ports, databases, `host:port` lists), shared by the
//! environment layer and the binding's options. Errors name the setting, never echo a password.

use super::{Node, Settings, TlsOptions};
use crate::core::Error;

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
