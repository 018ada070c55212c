//! Reading lock arguments: the TTL / options argument (seconds or an options object with only
//! the keys a method accepts), tokens, semaphore limits and callbacks.

use napi::sys;

use crate::binding::args::{Arg, Ctx};
use crate::core::lock::{LockOptions, MAX_MS};
use crate::core::Error;

/// Every lock option, in the order `lock_opts` reads them.
const ALL_KEYS: &[&str] = &[
    "ttlMs",
    "ttlSeconds",
    "token",
    "waitMs",
    "retryDelayMs",
    "autoExtend",
    "maxHoldMs",
];
/// Options `acquireLock` / `acquireSemaphore` accept.
pub const ACQUIRE_KEYS: &[&str] = &["ttlMs", "ttlSeconds", "token", "waitMs", "retryDelayMs"];
/// Options `withLock` / `withSemaphore` accept.
pub const WITH_KEYS: &[&str] = &[
    "ttlMs",
    "ttlSeconds",
    "waitMs",
    "retryDelayMs",
    "autoExtend",
    "maxHoldMs",
];
/// Options `extendLock` / `extendSemaphore` accept.
pub const TTL_KEYS: &[&str] = &["ttlMs", "ttlSeconds"];

fn ms(c: Ctx, name: &str, a: Arg, scale: f64, min: f64) -> Result<u64, Error> {
    ms_named(c, a, scale, min, || name.to_string())
}

/// [`ms`] naming the argument `name()` only when it is refused.
fn ms_named(
    c: Ctx,
    a: Arg,
    scale: f64,
    min: f64,
    name: impl FnOnce() -> String,
) -> Result<u64, Error> {
    let Some(n) = a.finite() else {
        return Err(c.bad(name(), "a finite number", a));
    };
    let v = (n * scale).round();
    if n <= 0.0 && min > 0.0 || v < min || v > MAX_MS as f64 {
        return Err(c.bad(
            name(),
            if min > 0.0 {
                "a positive number (at most 2147483647 ms)"
            } else {
                "a non-negative number (at most 2147483647 ms)"
            },
            a,
        ));
    }
    Ok(v as u64)
}

fn boolean(c: Ctx, name: &str, a: Arg) -> Result<bool, Error> {
    if a.kind() == sys::ValueType::napi_boolean {
        let b = a.bool().unwrap_or(false);
        return Ok(b);
    }
    Err(c.bad(name, "a boolean", a))
}

/// `ttl`: a number of seconds, or an options object (only `allowed` keys), or nothing (defaults).
pub fn lock_opts(c: Ctx, name: &str, a: Arg, allowed: &[&str]) -> Result<LockOptions, Error> {
    let mut o = LockOptions::default();
    if a.is_nullish() {
        return Ok(o);
    }
    if a.kind() == sys::ValueType::napi_number {
        o.ttl_ms = ms(c, name, a, 1000.0, 1.0)?;
        return Ok(o);
    }
    if !a.is_plain_object() {
        return Err(c.bad(name, "a number of seconds or an options object", a));
    }
    // One pass over the given keys: no lookups, allocations or messages unless one is wrong.
    let mut vals: [Option<Arg>; 7] = [None; 7];
    for (k, v) in a.entries(c, name)? {
        match ALL_KEYS.iter().position(|x| k.str_eq(x)) {
            // An option set to `undefined` counts as not given.
            Some(i) if allowed.contains(&ALL_KEYS[i]) => {
                vals[i] = Some(v).filter(|v| !v.is_undefined())
            }
            _ => {
                let k = k.text().unwrap_or_default();
                return Err(Error::arg(format!(
                    "{}(): unknown option `{name}.{k}` (accepted: {})",
                    c.method,
                    allowed.join(", ")
                )));
            }
        }
    }
    let [ttl_ms, ttl_s, token, wait, retry, auto, max_hold] = vals;
    let at = |k: &str| format!("{name}.{k}");
    match (ttl_ms, ttl_s) {
        (Some(_), Some(_)) => {
            return Err(Error::arg(format!(
                "{}(): give `{name}.ttlMs` or `{name}.ttlSeconds`, not both",
                c.method
            )))
        }
        (Some(v), None) => o.ttl_ms = ms_named(c, v, 1.0, 1.0, || at("ttlMs"))?,
        (None, Some(v)) => o.ttl_ms = ms_named(c, v, 1000.0, 1.0, || at("ttlSeconds"))?,
        (None, None) => {}
    }
    if let Some(v) = token {
        let n = at("token");
        let t = v.string(c, &n)?;
        if t.is_empty() {
            return Err(c.bad(&n, "a non-empty string", v));
        }
        o.token = Some(t);
    }
    if let Some(v) = wait {
        o.wait_ms = ms_named(c, v, 1.0, 0.0, || at("waitMs"))?;
    }
    if let Some(v) = retry {
        o.retry_delay_ms = ms_named(c, v, 1.0, 1.0, || at("retryDelayMs"))?;
    }
    if let Some(v) = auto {
        o.auto_extend = boolean(c, &at("autoExtend"), v)?;
    }
    if let Some(v) = max_hold {
        o.max_hold_ms = Some(ms_named(c, v, 1.0, 1.0, || at("maxHoldMs"))?);
    }
    Ok(o)
}

pub fn token(c: Ctx, a: Arg) -> Result<String, Error> {
    let t = a.string(c, "token")?;
    if t.is_empty() {
        return Err(c.bad("token", "a non-empty string", a));
    }
    Ok(t)
}

pub fn limit(c: Ctx, a: Arg) -> Result<u32, Error> {
    match a.positive(c, "limit") {
        Ok(n) if n <= i64::from(u32::MAX) => Ok(n as u32),
        _ => Err(c.bad("limit", "a positive integer", a)),
    }
}

pub fn function(c: Ctx, a: Arg) -> Result<sys::napi_value, Error> {
    if a.kind() == sys::ValueType::napi_function {
        Ok(a.raw())
    } else {
        Err(c.bad("fn", "a function", a))
    }
}
