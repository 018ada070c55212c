//! The environment layer: `REDIS_URL` over the discrete `REDIS_*` variables.

use std::collections::HashMap;

use super::parse::{parse_bool, parse_db, parse_node_list, parse_port, parse_url};
use super::{NearCacheOptions, Settings, DEFAULT_PORT};
use crate::core::Error;

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
        client_cache: var(env, "REDIS_CLIENT_CACHE")
            .map(|s| parse_bool(s, "REDIS_CLIENT_CACHE"))
            .transpose()?
            .map(|on| on.then(NearCacheOptions::default)),
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
    use crate::core::config::*;

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
