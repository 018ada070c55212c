//! Rate limits on `RedisService`: option checks, one script call in the ordinary batch, and the
//! rate-limit degradation policy (`rateLimitFailOpen`, on by default).

use std::sync::Arc;

use napi::bindgen_prelude::{Env, Unknown};
use napi_derive::napi;
use serde_json::json;

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Field, Out, Record};
use crate::binding::error::JsPromise;
use crate::binding::error::JsResult;
use crate::binding::service::RedisService;
use crate::core::policy::Feature;
use crate::core::rate_limit::{self, Algorithm, Checked, Limit, Outcome, ThrottlerHit};
use crate::core::Error;
use crate::engine::batch::{Policy, Shape};

/// Largest window, cost or block accepted: about 24.8 days in milliseconds.
const MAX: f64 = 2_147_483_647.0;

const LIMIT_KEYS: &[&str] = &[
    "limit",
    "windowMs",
    "windowSeconds",
    "algorithm",
    "cost",
    "blockMs",
];
const MANY_KEYS: &[&str] = &["cost", "blockMs"];

fn unknown_key(c: Ctx, name: &str, k: Arg, allowed: &[&str]) -> Error {
    let k = k.text().unwrap_or_default();
    Error::arg(format!(
        "{}(): unknown option `{name}.{k}` (accepted: {})",
        c.method,
        allowed.join(", ")
    ))
}

fn check_keys(c: Ctx, name: &str, a: Arg, allowed: &[&str]) -> Result<(), Error> {
    for (k, _) in a.entries(c, name)? {
        if !allowed.iter().any(|x| k.str_eq(x)) {
            return Err(unknown_key(c, name, k, allowed));
        }
    }
    Ok(())
}

/// A whole number from `min` to [`MAX`]; the error names the argument `name()`, built only then.
fn whole_named(c: Ctx, a: Arg, min: f64, name: impl FnOnce() -> String) -> Result<u64, Error> {
    match a.finite() {
        Some(n) if n.fract() == 0.0 && n >= min && n <= MAX => Ok(n as u64),
        _ => Err(c.bad(
            name(),
            if min > 0.0 {
                "a positive integer"
            } else {
                "a non-negative integer"
            },
            a,
        )),
    }
}

fn whole(c: Ctx, name: &str, a: Arg, min: f64) -> Result<u64, Error> {
    whole_named(c, a, min, || name.to_string())
}

/// [`whole`] for option `key` of the object named `name`.
fn whole_in(c: Ctx, name: &str, key: &str, a: Arg, min: f64) -> Result<u64, Error> {
    whole_named(c, a, min, || format!("{name}.{key}"))
}

/// `{ limit, windowMs | windowSeconds, algorithm?, cost?, blockMs? }`.
struct Parsed {
    limit: Limit,
    cost: Option<u64>,
    block_ms: Option<u64>,
}

/// Reads a limit in one pass over the object's keys: every rate-limit call parses one, so no
/// per-option lookups, allocations or messages unless something is wrong.
fn limit_opts(c: Ctx, name: &str, a: Arg, allowed: &[&str]) -> Result<Parsed, Error> {
    if !a.is_plain_object() {
        return Err(c.bad(
            name,
            "an object { limit, windowMs | windowSeconds, algorithm?, cost?, blockMs? }",
            a,
        ));
    }
    let mut vals: [Option<Arg>; 6] = [None; 6];
    for (k, v) in a.entries(c, name)? {
        match LIMIT_KEYS.iter().position(|x| k.str_eq(x)) {
            Some(i) if allowed.contains(&LIMIT_KEYS[i]) => vals[i] = Some(v),
            _ => return Err(unknown_key(c, name, k, allowed)),
        }
    }
    let undef = a.undefined();
    let [limit_v, wm, ws, algorithm_v, cost_v, block_v] = vals.map(|v| v.unwrap_or(undef));
    let limit = whole_in(c, name, "limit", limit_v, 1.0)?;
    let window_ms = match (wm.is_undefined(), ws.is_undefined()) {
        (false, true) => whole_in(c, name, "windowMs", wm, 1.0)?,
        (true, false) => {
            let ms = ws.finite().map(|s| (s * 1000.0).round());
            match ms {
                Some(ms) if (1.0..=MAX).contains(&ms) => ms as u64,
                _ => return Err(c.bad(format!("{name}.windowSeconds"), "a positive number", ws)),
            }
        }
        (false, false) => {
            return Err(Error::arg(format!(
                "{}(): give `{name}.windowMs` or `{name}.windowSeconds`, not both",
                c.method
            )))
        }
        (true, true) => {
            return Err(Error::arg(format!(
                "{}(): `{name}.windowMs` (or `{name}.windowSeconds`) is required",
                c.method
            )))
        }
    };
    let algorithm = if algorithm_v.is_undefined() {
        Algorithm::FixedWindow
    } else {
        let n = format!("{name}.algorithm");
        let s = algorithm_v.string(c, &n)?;
        Algorithm::parse(&s).ok_or_else(|| {
            c.bad(
                &n,
                "'fixed-window', 'sliding-window' or 'token-bucket'",
                algorithm_v,
            )
        })?
    };
    let cost = if cost_v.is_undefined() {
        None
    } else {
        Some(whole_in(c, name, "cost", cost_v, 1.0)?)
    };
    let block_ms = if block_v.is_undefined() {
        None
    } else {
        Some(whole_in(c, name, "blockMs", block_v, 0.0)?)
    };
    Ok(Parsed {
        limit: Limit {
            algorithm,
            limit,
            window_ms,
        },
        cost,
        block_ms,
    })
}

/// A request: the limits, the cost and the block time.
struct Request {
    key: Vec<u8>,
    limits: Vec<Limit>,
    cost: u64,
    block_ms: u64,
    many: bool,
}

fn check_cost(c: Ctx, req: &Request) -> Result<(), Error> {
    if let Some(l) = req.limits.iter().find(|l| req.cost > l.limit) {
        return Err(Error::arg(format!(
            "{}(): `cost` ({}) is larger than `limit` ({}): it could never be allowed",
            c.method, req.cost, l.limit
        )));
    }
    Ok(())
}

fn single(c: Ctx, key: Arg, options: Arg) -> Result<Request, Error> {
    let key = key.key(c, "key")?;
    let p = limit_opts(c, "options", options, LIMIT_KEYS)?;
    let req = Request {
        key,
        limits: vec![p.limit],
        cost: p.cost.unwrap_or(1),
        block_ms: p.block_ms.unwrap_or(0),
        many: false,
    };
    check_cost(c, &req)?;
    Ok(req)
}

fn many(c: Ctx, key: Arg, list: Arg, o: Option<Arg>) -> Result<Request, Error> {
    let key = key.key(c, "key")?;
    if !list.is_array() || list.elements(c, "limits")?.is_empty() {
        return Err(c.bad("limits", "a non-empty array of limits", list));
    }
    let mut out = Vec::new();
    for (i, l) in list.elements(c, "limits")?.into_iter().enumerate() {
        let keys = &LIMIT_KEYS[..4];
        out.push(limit_opts(c, &format!("limits[{i}]"), l, keys)?.limit);
    }
    let (mut cost, mut block_ms) = (1, 0);
    if let Some(o) = o.filter(|o| !o.is_nullish()) {
        if !o.is_plain_object() {
            return Err(c.bad("options", "an object { cost?, blockMs? }", o));
        }
        check_keys(c, "options", o, MANY_KEYS)?;
        if !o.get("cost").is_undefined() {
            cost = whole(c, "options.cost", o.get("cost"), 1.0)?;
        }
        if !o.get("blockMs").is_undefined() {
            block_ms = whole(c, "options.blockMs", o.get("blockMs"), 0.0)?;
        }
    }
    let req = Request {
        key,
        limits: out,
        cost,
        block_ms,
        many: true,
    };
    check_cost(c, &req)?;
    Ok(req)
}

fn outcome_record(o: &Outcome) -> Record {
    let mut r = vec![
        ("allowed", Field::Bool(o.allowed)),
        ("limit", Field::Num(o.limit as f64)),
        ("remaining", Field::Num(o.remaining as f64)),
        ("resetMs", Field::Num(o.reset_ms as f64)),
        ("retryAfterMs", Field::Num(o.retry_after_ms as f64)),
        ("resetTime", Field::Num(o.reset_time as f64)),
    ];
    if o.degraded {
        r.push(("degraded", Field::Bool(true)));
    }
    r
}

/// The result object of a check (with `limits` for `rateLimitMany`).
fn checked_out(c: &Checked, many: bool) -> Out {
    let mut r = outcome_record(&c.overall);
    if many {
        r.push((
            "limits",
            Field::Records(c.each.iter().map(outcome_record).collect()),
        ));
    }
    Out::Record(r)
}

impl RedisService {
    fn rate_policy(&self) -> Policy {
        Policy::of(&self.client.cfg, Feature::RateLimits)
    }

    fn send_check(
        &self,
        env: &Env,
        req: Result<Request, Error>,
        consume: bool,
    ) -> JsResult<JsPromise> {
        let req = req.and_then(|r| rate_limit::validate(&r.limits).map(|()| r));
        let (limits, cost, many) = match &req {
            Ok(r) => (r.limits.clone(), r.cost, r.many),
            Err(_) => (Vec::new(), 1, false),
        };
        let prefix = self.prefix().to_vec();
        let stats = Arc::clone(&self.client.stats);
        // A consuming check is a decision: counted in `stats()`.
        let decided = move |c: Checked| {
            if consume {
                stats.rate_limit(c.overall.allowed, c.overall.degraded);
            }
            checked_out(&c, many)
        };
        if let Ok(r) = &req {
            let fast =
                rate_limit::fast_check(&prefix, &r.key, &r.limits, r.cost, r.block_ms, consume)
                    .filter(|_| self.client.server_major() >= 7);
            if let Some((cmds, limit)) = fast {
                let decided = decided.clone();
                let convert: crate::engine::batch::Convert = Box::new(move |v| {
                    Ok(match v? {
                        Some(v) => decided(rate_limit::parse_fast(&v, &limit)?),
                        None => decided(Checked::degraded(&limits, cost)),
                    })
                });
                let work = crate::core::work::Work::Many {
                    cmds,
                    atomic: false,
                };
                return self.submit_work(env, work, Shape::Custom(convert), self.rate_policy());
            }
        }
        let make = req.map(|r| {
            move |h| {
                rate_limit::check_cmd(&prefix, &r.key, &r.limits, r.cost, r.block_ms, consume, h)
            }
        });
        let convert: crate::engine::batch::Convert = Box::new(move |v| {
            Ok(match v? {
                Some(v) => decided(rate_limit::parse(&v, &limits)?),
                None => decided(Checked::degraded(&limits, cost)),
            })
        });
        self.submit_built(env, make, true, Shape::Custom(convert), self.rate_policy())
    }
}

#[napi]
impl RedisService {
    /// Counts one request (or `cost` units) against a limit on `key` and says whether it is
    /// allowed, in one round trip with the server's clock:
    /// `{ allowed, limit, remaining, resetMs, retryAfterMs, resetTime }` (`resetMs`: milliseconds
    /// until fully available again; `retryAfterMs`: until this request would pass, 0 when allowed;
    /// `resetTime`: epoch milliseconds). Refused requests consume nothing.
    ///
    /// `options`: `{ limit, windowMs | windowSeconds, algorithm?: 'fixed-window' | 'sliding-window'
    /// | 'token-bucket', cost? = 1, blockMs? = 0 }`; `blockMs` keeps the key refused that long
    /// after it first exceeds the limit. While Redis is unreachable it resolves
    /// `{ allowed: true, degraded: true, ... }` (unless `rateLimitFailOpen: false`).
    #[napi(
        ts_args_type = "key: RedisKey, options: RateLimitOptions",
        ts_return_type = "Promise<RateLimitResult>"
    )]
    pub fn rate_limit(&self, env: Env, key: Unknown, options: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "rateLimit",
        };
        self.send_check(&env, single(c, Arg::from(key), Arg::from(options)), true)
    }

    /// Several limits on one key at once (say 10 per second and 1000 per hour), all-or-nothing:
    /// nothing is consumed unless every limit allows it. Resolves the deciding limit's result
    /// with every limit's own in `limits`. `options`: `{ cost? = 1, blockMs? = 0 }`.
    #[napi(
        ts_args_type = "key: RedisKey, limits: RateLimitRule[], options?: { cost?: number; blockMs?: number }",
        ts_return_type = "Promise<RateLimitResult & { limits: RateLimitResult[] }>"
    )]
    pub fn rate_limit_many(
        &self,
        env: Env,
        key: Unknown,
        limits: Unknown,
        options: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "rateLimitMany",
        };
        let req = many(
            c,
            Arg::from(key),
            Arg::from(limits),
            Some(Arg::from(options)),
        );
        self.send_check(&env, req, true)
    }

    /// Peeks at a limit without consuming: the result `rateLimit` would give (`allowed`: whether
    /// a request of `cost` would pass now). Pass an array of limits to peek at several.
    #[napi(
        ts_args_type = "key: RedisKey, options: RateLimitOptions | RateLimitRule[]",
        ts_return_type = "Promise<RateLimitResult>"
    )]
    pub fn get_rate_limit(&self, env: Env, key: Unknown, options: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "getRateLimit",
        };
        let o = Arg::from(options);
        let req = if o.is_array() {
            many(c, Arg::from(key), o, None)
        } else {
            single(c, Arg::from(key), o)
        };
        self.send_check(&env, req, false)
    }

    /// Clears every limit (and block) of `key`: resolves how many Redis keys were deleted.
    #[napi(ts_args_type = "key: RedisKey", ts_return_type = "Promise<number>")]
    pub fn reset_rate_limit(&self, env: Env, key: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "resetRateLimit",
        };
        let pattern = Arg::from(key)
            .key(c, "key")
            .map(|k| rate_limit::pattern(self.prefix(), &k));
        let client = Arc::clone(&self.client);
        match pattern {
            Err(e) => self.spawn(&env, async move { Err(e) }),
            Ok(p) => self.spawn(&env, async move {
                let n = crate::core::cache::scan_delete(&client, &p).await?;
                Ok(Out::Json(json!(n)))
            }),
        }
    }

    /// The storage operation of @nestjs/throttler (`RedisThrottlerStorage` calls it): one hit for
    /// `key` under throttler `name`, with that package's semantics. Resolves
    /// `{ totalHits, timeToExpire, isBlocked, timeToBlockExpire }`, times in **seconds** (rounded
    /// up) as the guard expects. Fails open like `rateLimit`.
    #[napi(
        ts_args_type = "key: string, ttlMs: number, limit: number, blockDurationMs: number, name: string",
        ts_return_type = "Promise<{ totalHits: number; timeToExpire: number; isBlocked: boolean; timeToBlockExpire: number }>"
    )]
    pub fn throttler_increment(
        &self,
        env: Env,
        key: Unknown,
        ttl_ms: Unknown,
        limit: Unknown,
        block_ms: Unknown,
        name: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "throttlerIncrement",
        };
        let parsed = (|| {
            let key = Arg::from(key).key(c, "key")?;
            let ttl = whole(c, "ttlMs", Arg::from(ttl_ms), 0.0)?;
            let limit = whole(c, "limit", Arg::from(limit), 0.0)?;
            let block = whole(c, "blockDurationMs", Arg::from(block_ms), 0.0)?;
            let name = Arg::from(name).string(c, "name")?;
            Ok::<_, Error>((key, ttl, limit, block, name))
        })();
        let ttl = parsed.as_ref().map_or(0, |p| p.1);
        let prefix = self.prefix().to_vec();
        let make = parsed.map(|(key, ttl, limit, block, name)| {
            move |h| rate_limit::throttler_cmd(&prefix, &key, &name, ttl, limit, block, h)
        });
        let convert: crate::engine::batch::Convert = Box::new(move |v| {
            let hit = match v? {
                Some(v) => ThrottlerHit::parse(&v)?,
                None => ThrottlerHit::degraded(ttl),
            };
            Ok(Out::Record(vec![
                ("totalHits", Field::Num(hit.total_hits as f64)),
                ("timeToExpire", Field::Num(hit.time_to_expire_s as f64)),
                ("isBlocked", Field::Bool(hit.is_blocked)),
                (
                    "timeToBlockExpire",
                    Field::Num(hit.time_to_block_expire_s as f64),
                ),
            ]))
        });
        self.submit_built(&env, make, true, Shape::Custom(convert), self.rate_policy())
    }
}
