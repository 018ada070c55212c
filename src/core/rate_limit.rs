//! Rate limits: fixed window, exact sliding window, token bucket, alone or several at once
//! (all-or-nothing), checked and consumed in one Lua script with the server's clock.
//!
//! Key layout (after `keyPrefix`), one hash tag per limited key so every script touches one slot:
//! `rl:{K}:fw:<windowMs>` (counter), `rl:{K}:sw:<windowMs>` (sorted set of hits),
//! `rl:{K}:tb:<windowMs>` (hash of tokens and last refill), `rl:{K}:block` (the `blockMs` flag);
//! `throttler:{K}:hits:<name>` / `throttler:{K}:block:<name>` for the @nestjs/throttler storage.

use redis::{Cmd, Value};

use crate::core::keys::{escape_glob, tagged};
use crate::core::script::Lua;
use crate::core::Error;

static RATE_LIMIT: Lua = Lua::new(include_str!("scripts/rate_limit.lua"));
static FIXED_WINDOW: Lua = Lua::new(include_str!("scripts/fixed_window.lua"));
static THROTTLER: Lua = Lua::new(include_str!("scripts/throttler.lua"));

/// How hits are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `limit` per window starting at the window's first hit (INCR + PEXPIRE, atomically).
    FixedWindow,
    /// Never more than `limit` within any span of `windowMs` (a log of hits).
    SlidingWindow,
    /// A bucket of `limit` tokens refilled evenly over the window.
    TokenBucket,
}

impl Algorithm {
    /// Parses the JS name.
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "fixed-window" => Some(Algorithm::FixedWindow),
            "sliding-window" => Some(Algorithm::SlidingWindow),
            "token-bucket" => Some(Algorithm::TokenBucket),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        match self {
            Algorithm::FixedWindow => 1,
            Algorithm::SlidingWindow => 2,
            Algorithm::TokenBucket => 3,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Algorithm::FixedWindow => "fw",
            Algorithm::SlidingWindow => "sw",
            Algorithm::TokenBucket => "tb",
        }
    }
}

/// One limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub algorithm: Algorithm,
    pub limit: u64,
    pub window_ms: u64,
}

/// The outcome for one limit (or, for several, the one that decides).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Milliseconds until the limit is fully available again.
    pub reset_ms: u64,
    /// Milliseconds until this request would be allowed (0 when allowed).
    pub retry_after_ms: u64,
    /// Server time (epoch ms) + `reset_ms`.
    pub reset_time: u64,
    /// Allowed without asking Redis (unreachable, and rate limits fail open).
    pub degraded: bool,
}

impl Outcome {
    /// What a request gets while Redis is unreachable and rate limits fail open: allowed, as if
    /// `cost` were the first use of a fresh window (nothing is counted).
    pub fn degraded(l: &Limit, cost: u64, now_ms: u64) -> Outcome {
        Outcome {
            allowed: true,
            limit: l.limit,
            remaining: l.limit.saturating_sub(cost),
            reset_ms: 0,
            retry_after_ms: 0,
            reset_time: now_ms,
            degraded: true,
        }
    }
}

/// Every limit's outcome, plus the combined one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub overall: Outcome,
    pub each: Vec<Outcome>,
}

impl Checked {
    /// The degraded result of a check against `limits` (see [`Outcome::degraded`]); the limit
    /// with the least room speaks for all.
    pub fn degraded(limits: &[Limit], cost: u64) -> Checked {
        let now = crate::core::now_ms();
        let each: Vec<Outcome> = limits
            .iter()
            .map(|l| Outcome::degraded(l, cost, now))
            .collect();
        let overall = each
            .iter()
            .min_by_key(|o| o.limit)
            .cloned()
            .unwrap_or(Outcome {
                limit: 0,
                ..Outcome::degraded(&DEGRADED_NONE, 0, now)
            });
        Checked { overall, each }
    }
}

/// Stands in for the limit when a degraded check had none.
const DEGRADED_NONE: Limit = Limit {
    algorithm: Algorithm::FixedWindow,
    limit: 0,
    window_ms: 0,
};

/// The Redis key of one limit of `key`.
pub fn limit_key(prefix: &[u8], key: &[u8], l: &Limit) -> Vec<u8> {
    let suffix = format!(":{}:{}", l.algorithm.tag(), l.window_ms);
    tagged(&[prefix, b"rl:"], key, &[suffix.as_bytes()])
}

/// The glob pattern matching every key of `key`'s limits (for `resetRateLimit`).
pub fn pattern(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(prefix.len() + key.len() + 8);
    escape_glob(&mut p, prefix);
    p.extend_from_slice(b"rl:{");
    escape_glob(&mut p, key);
    p.extend_from_slice(b"}:*");
    p
}

/// Checks that no two limits share a key.
///
/// # Errors
/// `InvalidArgument` for two limits with the same algorithm and window.
pub fn validate(limits: &[Limit]) -> Result<(), Error> {
    for (i, a) in limits.iter().enumerate() {
        if limits[..i]
            .iter()
            .any(|b| b.algorithm == a.algorithm && b.window_ms == a.window_ms)
        {
            return Err(Error::arg(
                "rateLimitMany(): two limits have the same algorithm and window; merge them",
            ));
        }
    }
    Ok(())
}

/// The commonest check (one fixed window, consuming a cost of 1, no `blockMs`) as three plain
/// commands for Redis 7+: `INCR`, `PEXPIRE <window> NX` (starts the window on its first request,
/// and repairs a counter ever left without a TTL) and `PTTL`. The server spends about a third of
/// the script's time on them, which is what bounds throughput with many checks in flight. A
/// refused request is counted too: with a cost of 1 that changes nothing observable (the count
/// only grows past `limit` when the window is already full, and it ends with the window).
/// `None` when the check needs the script.
pub fn fast_check(
    prefix: &[u8],
    key: &[u8],
    limits: &[Limit],
    cost: u64,
    block_ms: u64,
    consume: bool,
) -> Option<(Vec<Cmd>, Limit)> {
    let [l] = limits else { return None };
    if !consume || cost != 1 || block_ms != 0 || l.algorithm != Algorithm::FixedWindow {
        return None;
    }
    let k = limit_key(prefix, key, l);
    let mut incr = redis::cmd("INCR");
    incr.arg(&k);
    let mut expire = redis::cmd("PEXPIRE");
    expire.arg(&k).arg(l.window_ms).arg("NX");
    let mut pttl = redis::cmd("PTTL");
    pttl.arg(&k);
    Some((vec![incr, expire, pttl], *l))
}

/// Reads the replies of [`fast_check`]'s commands.
///
/// # Errors
/// `Reply` when a reply is an error or not the expected shape.
pub fn parse_fast(v: &Value, l: &Limit) -> Result<Checked, Error> {
    let reply = |x: Option<&Value>| match x {
        Some(Value::Int(n)) => Ok(*n),
        Some(Value::ServerError(e)) => {
            Err(Error::Reply(crate::core::error::pipeline_error_text(e)))
        }
        _ => Err(Error::Reply(format!("unexpected rate-limit reply: {v:?}"))),
    };
    let Value::Array(items) = v else {
        return Err(Error::Reply(format!("unexpected rate-limit reply: {v:?}")));
    };
    let used = u64::try_from(reply(items.first())?).unwrap_or(0);
    reply(items.get(1))?;
    // -1 / -2 (no TTL, gone): the window was just (re)started.
    let reset_ms = u64::try_from(reply(items.get(2))?).unwrap_or(l.window_ms);
    let allowed = used <= l.limit;
    let o = Outcome {
        allowed,
        limit: l.limit,
        remaining: l.limit.saturating_sub(used),
        reset_ms,
        retry_after_ms: if allowed { 0 } else { reset_ms },
        reset_time: crate::core::now_ms() + reset_ms,
        degraded: false,
    };
    Ok(Checked {
        overall: o.clone(),
        each: vec![o],
    })
}

/// The script call checking (`consume`: and consuming) `limits` of `key` (see [`validate`]).
pub fn check_cmd(
    prefix: &[u8],
    key: &[u8],
    limits: &[Limit],
    cost: u64,
    block_ms: u64,
    consume: bool,
    by_hash: bool,
) -> Cmd {
    if let [l] = limits {
        if consume && block_ms == 0 && l.algorithm == Algorithm::FixedWindow {
            let k = limit_key(prefix, key, l);
            return FIXED_WINDOW.cmd(by_hash, 1, &|c| {
                c.arg(&k).arg(cost).arg(l.limit).arg(l.window_ms);
            });
        }
    }
    let keys: Vec<Vec<u8>> = limits.iter().map(|l| limit_key(prefix, key, l)).collect();
    let block = tagged(&[prefix, b"rl:"], key, &[b":block"]);
    RATE_LIMIT.cmd(by_hash, limits.len() + 1, &|c| {
        for k in &keys {
            c.arg(k);
        }
        c.arg(&block)
            .arg(if consume { 1 } else { 0 })
            .arg(cost)
            .arg(block_ms)
            .arg(limits.len());
        for l in limits {
            c.arg(l.algorithm.code()).arg(l.limit).arg(l.window_ms);
        }
    })
}

fn int(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Int(n)) => (*n).max(0) as u64,
        _ => 0,
    }
}

/// Reads the script's reply for `limits`.
///
/// # Errors
/// `Reply` when the reply does not have the expected shape.
pub fn parse(v: &Value, limits: &[Limit]) -> Result<Checked, Error> {
    let Value::Array(items) = v else {
        return Err(Error::Reply(format!("unexpected rate-limit reply: {v:?}")));
    };
    if items.len() != 2 + 4 * limits.len() {
        return Err(Error::Reply("unexpected rate-limit reply length".into()));
    }
    // 0: the fixed-window script, which needs no clock; date the reset with ours.
    let now = match int(items.first()) {
        0 => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        n => n,
    };
    let blocked = int(items.get(1));
    let mut each = Vec::with_capacity(limits.len());
    for (i, l) in limits.iter().enumerate() {
        let base = 2 + 4 * i;
        let reset_ms = int(items.get(base + 2));
        let allowed = int(items.get(base)) == 1;
        let retry = if allowed {
            0
        } else {
            int(items.get(base + 3)).max(blocked)
        };
        each.push(Outcome {
            allowed,
            limit: l.limit,
            remaining: int(items.get(base + 1)),
            reset_ms: reset_ms.max(blocked),
            retry_after_ms: retry,
            reset_time: now + reset_ms.max(blocked),
            degraded: false,
        });
    }
    let allowed = each.iter().all(|o| o.allowed);
    // The deciding limit: when refused, the one that makes the caller wait longest; when
    // allowed, the one with the least left.
    let decider = if allowed {
        each.iter()
            .min_by_key(|o| (o.remaining, std::cmp::Reverse(o.reset_ms)))
    } else {
        each.iter()
            .max_by_key(|o| (o.retry_after_ms, std::cmp::Reverse(o.remaining)))
    };
    let mut overall = decider
        .cloned()
        .ok_or_else(|| Error::Reply("no limits".into()))?;
    overall.allowed = allowed;
    overall.reset_ms = each.iter().map(|o| o.reset_ms).max().unwrap_or(0);
    overall.reset_time = now + overall.reset_ms;
    Ok(Checked { overall, each })
}

/// The @nestjs/throttler storage call.
pub fn throttler_cmd(
    prefix: &[u8],
    key: &[u8],
    name: &str,
    ttl_ms: u64,
    limit: u64,
    block_ms: u64,
    by_hash: bool,
) -> Cmd {
    let hits = tagged(&[prefix, b"throttler:"], key, &[b":hits:", name.as_bytes()]);
    let block = tagged(
        &[prefix, b"throttler:"],
        key,
        &[b":block:", name.as_bytes()],
    );
    THROTTLER.cmd(by_hash, 2, &|c| {
        c.arg(&hits)
            .arg(&block)
            .arg(ttl_ms)
            .arg(limit)
            .arg(block_ms);
    })
}

/// One @nestjs/throttler hit, as its guard expects it (times in seconds, rounded up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottlerHit {
    pub total_hits: i64,
    pub time_to_expire_s: u64,
    pub is_blocked: bool,
    pub time_to_block_expire_s: u64,
}

fn secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000)
}

impl ThrottlerHit {
    /// Reads the reply of [`throttler_cmd`]: `[hits, ttl ms, blocked 0/1, block ttl ms]`.
    ///
    /// # Errors
    /// `Reply` for any other shape.
    pub fn parse(v: &Value) -> Result<ThrottlerHit, Error> {
        match v {
            Value::Array(a) if a.len() == 4 => {
                let n = |i: usize| match a.get(i) {
                    Some(Value::Int(n)) => *n,
                    _ => 0,
                };
                Ok(ThrottlerHit {
                    total_hits: n(0),
                    time_to_expire_s: secs(n(1)),
                    is_blocked: n(2) == 1,
                    time_to_block_expire_s: secs(n(3)),
                })
            }
            other => Err(Error::Reply(format!(
                "unexpected throttler reply: {other:?}"
            ))),
        }
    }

    /// While Redis is unreachable and rate limits fail open: the first hit of a fresh window.
    pub fn degraded(ttl_ms: u64) -> ThrottlerHit {
        ThrottlerHit {
            total_hits: 1,
            time_to_expire_s: secs(i64::try_from(ttl_ms).unwrap_or(i64::MAX)),
            is_blocked: false,
            time_to_block_expire_s: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FW: Limit = Limit {
        algorithm: Algorithm::FixedWindow,
        limit: 10,
        window_ms: 1000,
    };
    const SW: Limit = Limit {
        algorithm: Algorithm::SlidingWindow,
        limit: 100,
        window_ms: 60000,
    };

    #[test]
    fn keys_share_the_limited_keys_hash_tag() {
        assert_eq!(limit_key(b"app:", b"ip:1", &FW), b"app:rl:{ip:1}:fw:1000");
        assert_eq!(pattern(b"a*:", b"u[1]"), b"a\\*:rl:{u\\[1\\]}:*");
    }

    #[test]
    fn same_algorithm_and_window_twice_is_refused() {
        let e = validate(&[FW, FW]).err();
        assert_eq!(e.map(|e| e.code()), Some("ERR_INVALID_ARGUMENT"));
        assert!(validate(&[FW, SW]).is_ok());
    }

    #[test]
    fn the_deciding_limit_is_reported() {
        let v = Value::Array(
            [1000, 0, 1, 3, 400, 0, 1, 90, 50_000, 0]
                .iter()
                .map(|n| Value::Int(*n))
                .collect(),
        );
        let c = parse(&v, &[FW, SW]).ok();
        let c = c.as_ref().map(|c| &c.overall);
        assert_eq!(
            c,
            Some(&Outcome {
                allowed: true,
                limit: 10,
                remaining: 3,
                reset_ms: 50_000,
                retry_after_ms: 0,
                reset_time: 51_000,
                degraded: false,
            })
        );
        let refused = Value::Array(
            [1000, 0, 0, 0, 400, 400, 1, 90, 50_000, 0]
                .iter()
                .map(|n| Value::Int(*n))
                .collect(),
        );
        let r = parse(&refused, &[FW, SW]).ok();
        assert_eq!(r.as_ref().map(|c| c.overall.allowed), Some(false));
        assert_eq!(r.as_ref().map(|c| c.overall.retry_after_ms), Some(400));
        assert_eq!(r.as_ref().map(|c| c.overall.limit), Some(10));
    }

    #[test]
    fn degraded_checks_allow_without_counting_and_say_so() {
        let c = Checked::degraded(&[SW, FW], 3);
        assert_eq!(c.each.len(), 2);
        assert!(c.each.iter().all(|o| o.allowed && o.degraded));
        // The tightest limit speaks for all.
        assert_eq!((c.overall.limit, c.overall.remaining), (10, 7));
        assert_eq!((c.overall.reset_ms, c.overall.retry_after_ms), (0, 0));
        let none = Checked::degraded(&[], 1);
        assert!(none.overall.allowed && none.overall.degraded && none.each.is_empty());
    }

    #[test]
    fn throttler_hits_are_read_in_whole_seconds_rounded_up() {
        let v = Value::Array([3, 1001, 1, 0].iter().map(|n| Value::Int(*n)).collect());
        assert_eq!(
            ThrottlerHit::parse(&v).ok(),
            Some(ThrottlerHit {
                total_hits: 3,
                time_to_expire_s: 2,
                is_blocked: true,
                time_to_block_expire_s: 0,
            })
        );
        assert!(ThrottlerHit::parse(&Value::Nil).is_err());
        let d = ThrottlerHit::degraded(60_000);
        assert_eq!(
            (d.total_hits, d.time_to_expire_s, d.is_blocked),
            (1, 60, false)
        );
    }
}
