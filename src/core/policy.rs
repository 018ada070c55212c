//! The one degradation policy: what each feature does while Redis is disabled (`enabled:
//! false`) or unreachable. Every path asks here (the JS-thread engine before sending and when a
//! job fails, the features that run on the runtime), so the rule and its messages exist once.
//!
//! | feature | unreachable | disabled |
//! |---|---|---|
//! | commands, sessions, scans | `failOpen`: the empty result; else `ERR_CONNECTION` | the empty result |
//! | locks | `lockFailOpen`: granted without exclusion; else `ERR_CONNECTION` | `lockFailOpen`: granted; else `ERR_DISABLED` |
//! | rate limits | `rateLimitFailOpen` (default on): allowed, `degraded: true`; else `ERR_CONNECTION` | allowed |
//! | cache (`wrap`) | the loader runs directly, nothing cached | the same |
//! | pub/sub | `ERR_CONNECTION` | `ERR_DISABLED` |
//!
//! A feature that degrades says so once per outage through the logger (`warning`).

use crate::core::{Client, Config, Error};

/// A feature, as far as degradation is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Commands,
    Sessions,
    Locks,
    RateLimits,
    Cache,
    PubSub,
}

/// How one feature of one service behaves while Redis is unavailable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    feature: Feature,
    /// Degrade (instead of rejecting) while Redis is unreachable.
    fail_open: bool,
    /// Degrade (instead of rejecting with `ERR_DISABLED`) while Redis is disabled.
    open_when_disabled: bool,
}

/// What to do instead of (or with the outcome of) a call to Redis.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Resolve the feature's degraded result.
    Degrade,
    /// Reject with this error.
    Fail(Error),
}

impl Policy {
    /// `feature`'s policy under `cfg`.
    pub fn of(cfg: &Config, feature: Feature) -> Policy {
        let (fail_open, open_when_disabled) = match feature {
            Feature::Commands | Feature::Sessions => (cfg.fail_open, true),
            Feature::Locks => (cfg.lock_fail_open, cfg.lock_fail_open),
            Feature::RateLimits => (cfg.rate_limit_fail_open, true),
            Feature::Cache => (true, true),
            Feature::PubSub => (false, false),
        };
        Policy {
            feature,
            fail_open,
            open_when_disabled,
        }
    }

    /// `feature` without degradation: every failure rejects (a step that must report what
    /// really happened, such as the release at the end of `withLock`).
    pub fn strict(feature: Feature) -> Policy {
        Policy {
            feature,
            fail_open: false,
            open_when_disabled: false,
        }
    }

    pub fn feature(&self) -> Feature {
        self.feature
    }

    /// Whether an unreachable Redis degrades (rather than rejects) this feature's calls.
    pub fn fail_open(&self) -> bool {
        self.fail_open
    }

    /// Before a call: `None` when Redis is enabled and connected (go ahead); else what to do
    /// now, without queueing anything behind the outage. Warns once per outage on `Degrade`.
    pub fn before(&self, client: &Client) -> Option<Decision> {
        if let Some(d) = self.when_disabled(client) {
            return Some(d);
        }
        let e = client.check().err()?;
        Some(self.noted(client, self.on(e)))
    }

    /// `None` when Redis is enabled; else what a call does while it is disabled (for calls that
    /// run on the runtime, where an unreachable server shows in the outcome: see
    /// [`Policy::after`]). Warns once on `Degrade`.
    pub fn when_disabled(&self, client: &Client) -> Option<Decision> {
        if client.cfg.enabled {
            return None;
        }
        let decision = if self.open_when_disabled {
            Decision::Degrade
        } else {
            Decision::Fail(disabled(self.feature))
        };
        Some(self.noted(client, decision))
    }

    /// After a call failed with `e`: degrade when Redis was unreachable and this feature fails
    /// open, else reject with `e`. Warns once per outage on `Degrade`.
    pub fn after(&self, client: &Client, e: Error) -> Decision {
        let decision = self.on(e);
        self.noted(client, decision)
    }

    fn on(&self, e: Error) -> Decision {
        if self.fail_open && e.is_unavailable() {
            Decision::Degrade
        } else {
            Decision::Fail(e)
        }
    }

    fn noted(&self, client: &Client, d: Decision) -> Decision {
        if d == Decision::Degrade {
            if let Some((name, what)) = warning(self.feature) {
                client.warn_degraded(name, what);
            }
        }
        d
    }
}

/// The error of a call that needs Redis while it is disabled.
pub fn disabled(feature: Feature) -> Error {
    const BASE: &str = "Redis is disabled (enabled: false / REDIS_ENABLED=false)";
    Error::Disabled(match feature {
        Feature::Locks => {
            format!("{BASE}: locks cannot be granted (set lockFailOpen to run without them)")
        }
        Feature::PubSub => format!("{BASE}: nothing to subscribe to"),
        _ => BASE.to_string(),
    })
}

/// The once-per-outage warning of a feature that degrades: `(feature name, what happens)`.
pub fn warning(feature: Feature) -> Option<(&'static str, &'static str)> {
    match feature {
        Feature::Commands | Feature::PubSub => None,
        Feature::Sessions => Some((
            "sessions",
            "Redis is unreachable and failOpen is on: sessions read as missing and are not written until it is back",
        )),
        Feature::Locks => Some((
            "locks",
            "Redis is unreachable and lockFailOpen is on: locks are granted WITHOUT mutual exclusion until it is back",
        )),
        Feature::RateLimits => Some((
            "rate limits",
            "Redis is unreachable: rate limits are NOT enforced (requests are allowed with degraded: true) until it is back",
        )),
        Feature::Cache => Some((
            "cache",
            "Redis is unreachable: wrap() calls loaders directly (nothing is cached) until it is back",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::Settings;

    fn cfg(f: impl FnOnce(&mut Settings)) -> Config {
        let mut s = Settings::default();
        f(&mut s);
        Config::resolve(s).unwrap()
    }

    fn down() -> Error {
        Error::Connection("down".into())
    }

    #[test]
    fn commands_and_sessions_fail_closed_unless_fail_open_and_degrade_when_disabled() {
        for f in [Feature::Commands, Feature::Sessions] {
            let closed = Policy::of(&cfg(|_| {}), f);
            assert!(!closed.fail_open());
            assert!(matches!(
                closed.on(down()),
                Decision::Fail(Error::Connection(_))
            ));
            assert!(closed.open_when_disabled);
            let open = Policy::of(&cfg(|s| s.fail_open = Some(true)), f);
            assert_eq!(open.on(down()), Decision::Degrade);
        }
    }

    #[test]
    fn locks_never_degrade_unless_lock_fail_open() {
        let p = Policy::of(&cfg(|s| s.fail_open = Some(true)), Feature::Locks);
        assert!(matches!(p.on(down()), Decision::Fail(_)));
        assert!(!p.open_when_disabled);
        let open = Policy::of(&cfg(|s| s.lock_fail_open = Some(true)), Feature::Locks);
        assert_eq!(open.on(down()), Decision::Degrade);
        assert!(open.open_when_disabled);
    }

    #[test]
    fn rate_limits_fail_open_by_default_and_cache_always_degrades() {
        assert!(Policy::of(&cfg(|_| {}), Feature::RateLimits).fail_open());
        let closed = Policy::of(
            &cfg(|s| s.rate_limit_fail_open = Some(false)),
            Feature::RateLimits,
        );
        assert!(matches!(closed.on(down()), Decision::Fail(_)));
        assert_eq!(
            Policy::of(&cfg(|_| {}), Feature::Cache).on(down()),
            Decision::Degrade
        );
    }

    #[test]
    fn a_reply_error_is_never_degraded() {
        let p = Policy::of(&cfg(|s| s.fail_open = Some(true)), Feature::Commands);
        assert!(matches!(
            p.on(Error::Reply("WRONGTYPE".into())),
            Decision::Fail(Error::Reply(_))
        ));
    }

    #[test]
    fn pub_sub_always_rejects_and_disabled_names_the_feature() {
        let p = Policy::of(&cfg(|s| s.fail_open = Some(true)), Feature::PubSub);
        assert!(matches!(p.on(down()), Decision::Fail(_)));
        assert!(disabled(Feature::PubSub)
            .to_string()
            .contains("nothing to subscribe to"));
        assert!(disabled(Feature::Locks)
            .to_string()
            .contains("lockFailOpen"));
        assert_eq!(disabled(Feature::Commands).code(), "ERR_DISABLED");
    }
}
