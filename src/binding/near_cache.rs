//! The near cache (`clientCache`, `core::near_cache`) in front of the reads it serves: a hit
//! settles at once from process memory; a miss goes out with the key's `PTTL` in the same round
//! trip and its reply is offered to the cache. `clientCacheStats()` and `clearClientCache()`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use napi_derive::napi;
use redis::{Cmd, Value};

use crate::binding::service::RedisService;
use crate::core::cluster::key_slot;
use crate::core::reply::{Decode, Empty};
use crate::core::work::{reply, Work};
use crate::core::Error;
use crate::engine::batch::{Convert, Shape};
use crate::engine::js_thread::{Deferred, JsEnv};
use crate::engine::outcome::Out;

/// The reads the cache serves (one key each, the key first): their replies depend on that key
/// alone, and reading it makes Redis track it for this connection.
const CACHED: &[&[u8]] = &[b"GET", b"HGET", b"HGETALL", b"HMGET", b"EXISTS", b"STRLEN"];

/// The key `cmd` reads, when the near cache may serve it.
fn cached_key(cmd: &Cmd) -> Option<Vec<u8>> {
    let mut args = cmd.args_iter();
    let redis::Arg::Simple(name) = args.next()? else {
        return None;
    };
    if !CACHED.iter().any(|c| c.eq_ignore_ascii_case(name)) {
        return None;
    }
    let redis::Arg::Simple(key) = args.next()? else {
        return None;
    };
    // `EXISTS a b` counts several keys: one entry per key is not what it answers.
    if name.eq_ignore_ascii_case(b"EXISTS") && args.next().is_some() {
        return None;
    }
    Some(key.to_vec())
}

/// The keys of an `MGET`, which the cache answers key by key (as `GET`s of each).
fn mget_keys(cmd: &Cmd) -> Option<Vec<Vec<u8>>> {
    let mut args = cmd.args_iter();
    let redis::Arg::Simple(name) = args.next()? else {
        return None;
    };
    if !name.eq_ignore_ascii_case(b"MGET") {
        return None;
    }
    args.map(|a| match a {
        redis::Arg::Simple(k) => Some(k.to_vec()),
        _ => None,
    })
    .collect()
}

/// The command bytes of `GET key`: the entry an `MGET` of `key` shares with `get(key)`.
fn get_bytes(key: &[u8]) -> Vec<u8> {
    let mut get = redis::cmd("GET");
    get.arg(key);
    get.get_packed_command()
}

/// What to send for a call, after the near cache had its say.
enum Through {
    /// Answered from the cache (the promise is settled).
    Hit,
    Send(Deferred, Work, Shape),
}

/// The outcome of a one-command call as its `shape` makes it (`Ok(None)`: degraded).
fn answer(shape: Shape, r: Result<Option<Value>, Error>) -> Result<Out, Error> {
    match (shape, r) {
        (Shape::Custom(f), r) => f(r),
        (Shape::One(decode, _), Ok(Some(v))) => Ok(Out::Reply(v, decode)),
        (Shape::One(_, empty), Ok(None)) => Ok(Out::Empty(empty)),
        (_, Err(e)) => Err(e),
        (Shape::Many(_), Ok(_)) => Err(Error::Reply("internal error: a pipeline shape".into())),
    }
}

impl RedisService {
    /// A one-command call `cmd` that settles as `shape` (`One` or `Custom`): answered from the
    /// near cache when it holds the reply, else sent (with `PTTL` when the reply may be kept).
    fn through_cache(&self, raw: JsEnv, d: Deferred, cmd: Cmd, shape: Shape) -> Through {
        let near = self.client.near.as_ref();
        if let (Some(near), Some(keys)) = (near, mget_keys(&cmd)) {
            return self.mget_through(raw, d, near, keys, shape);
        }
        let Some((near, key)) = near.and_then(|n| Some((n, cached_key(&cmd)?))) else {
            return Through::Send(d, Work::One(cmd), shape);
        };
        let packed = cmd.get_packed_command();
        if let Some(v) = near.lookup(&packed, Instant::now()) {
            self.shared.settle_now(raw, d, answer(shape, Ok(Some(v))));
            return Through::Hit;
        }
        let Some(ticket) = near.begin(&key) else {
            return Through::Send(d, Work::One(cmd), shape);
        };
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(&key);
        let client = Arc::clone(&self.client);
        let convert: Convert = Box::new(move |r| {
            // What to keep: the reply and its key's PTTL, when both came.
            let (kept, r) = match r {
                Ok(Some(Value::Array(mut both))) if both.len() == 2 => {
                    let ttl = both.pop();
                    match (reply(both.pop().unwrap_or(Value::Nil)), ttl) {
                        (Ok(v), Some(Value::Int(ms))) => (Some((v.clone(), ms)), Ok(Some(v))),
                        (Ok(v), _) => (None, Ok(Some(v))),
                        (Err(e), _) => (None, Err(e)),
                    }
                }
                Ok(Some(other)) => (
                    None,
                    Err(Error::Reply(format!("unexpected reply: {other:?}"))),
                ),
                r => (None, r),
            };
            if let Some(near) = client.near.as_ref() {
                near.finish(ticket, &key, packed, kept);
            }
            answer(shape, r)
        });
        Through::Send(
            d,
            Work::Many {
                cmds: vec![cmd, pttl],
                atomic: false,
            },
            Shape::Custom(convert),
        )
    }
}

impl RedisService {
    /// `MGET` key by key: the keys the cache holds are answered from it, the others read with
    /// one `MGET` and their `PTTL`s in the same round trip, and kept.
    fn mget_through(
        &self,
        raw: JsEnv,
        d: Deferred,
        near: &crate::core::near_cache::NearCache,
        keys: Vec<Vec<u8>>,
        shape: Shape,
    ) -> Through {
        let now = Instant::now();
        let mut values: Vec<Option<Value>> = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        // Each key's entry name, made once: looked up now, and kept under it after a miss.
        let mut gets: Vec<Vec<u8>> = keys.iter().map(|k| get_bytes(k)).collect();
        for (i, g) in gets.iter().enumerate() {
            let v = near.lookup(g, now);
            if v.is_none() {
                missing.push(i);
            }
            values.push(v);
        }
        if missing.is_empty() {
            let all = values
                .into_iter()
                .map(|v| v.unwrap_or(Value::Nil))
                .collect();
            self.shared
                .settle_now(raw, d, answer(shape, Ok(Some(Value::Array(all)))));
            return Through::Hit;
        }
        // Cluster mode: missing keys of several slots are read (one MGET cut per slot) but not
        // kept, as their replies do not come back on the connections that track them (the
        // lanes, one per master, carry pipelines of one slot).
        let keep = !self.client.is_cluster() || {
            let mut slots = missing.iter().map(|&i| key_slot(&keys[i]));
            let first = slots.next();
            slots.all(|s| Some(s) == first)
        };
        let tickets: Vec<_> = missing
            .iter()
            .map(|&i| if keep { near.begin(&keys[i]) } else { None })
            .collect();
        let mut mget = redis::cmd("MGET");
        let mut cmds = Vec::with_capacity(missing.len() + 1);
        for &i in &missing {
            mget.arg(&keys[i]);
        }
        cmds.push(mget);
        for &i in missing.iter().filter(|_| keep) {
            let mut pttl = redis::cmd("PTTL");
            pttl.arg(&keys[i]);
            cmds.push(pttl);
        }
        let client = Arc::clone(&self.client);
        let convert: Convert = Box::new(move |r| {
            let near = client.near.as_ref();
            // The MGET's values (for the keys missing) and their PTTLs, or why there are none.
            let got = match r {
                // Not kept: the MGET alone.
                Ok(Some(Value::Array(read))) if !keep && read.len() == missing.len() => {
                    Ok(Some((read, vec![Value::Nil; missing.len()])))
                }
                Ok(Some(Value::Array(mut parts))) if keep && parts.len() == missing.len() + 1 => {
                    let ttls = parts.split_off(1);
                    match reply(parts.pop().unwrap_or(Value::Nil)) {
                        Ok(Value::Array(read)) if read.len() == missing.len() => {
                            Ok(Some((read, ttls)))
                        }
                        Ok(other) => Err(Error::Reply(format!("unexpected MGET reply: {other:?}"))),
                        Err(e) => Err(e),
                    }
                }
                Ok(Some(other)) => Err(Error::Reply(format!("unexpected reply: {other:?}"))),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            let (read, ttls) = match got {
                Ok(Some(both)) => both,
                failed => {
                    // Failed or degraded: nothing is kept.
                    for (t, &i) in tickets.into_iter().zip(&missing) {
                        if let (Some(near), Some(t)) = (near, t) {
                            near.finish(t, &keys[i], std::mem::take(&mut gets[i]), None);
                        }
                    }
                    return answer(shape, failed.map(|_| None));
                }
            };
            for (((t, &i), v), ttl) in tickets.into_iter().zip(&missing).zip(read).zip(ttls) {
                if let (Some(near), Some(t)) = (near, t) {
                    let kept = match ttl {
                        Value::Int(ms) => Some((v.clone(), ms)),
                        _ => None,
                    };
                    near.finish(t, &keys[i], std::mem::take(&mut gets[i]), kept);
                }
                values[i] = Some(v);
            }
            let all = values
                .into_iter()
                .map(|v| v.unwrap_or(Value::Nil))
                .collect();
            answer(shape, Ok(Some(Value::Array(all))))
        });
        let work = match (keep, cmds.pop()) {
            (false, Some(mget)) => Work::One(mget),
            (_, last) => {
                cmds.extend(last);
                Work::Many {
                    cmds,
                    atomic: false,
                }
            }
        };
        Through::Send(d, work, Shape::Custom(convert))
    }

    /// Sends `work` (settling as `shape`) under `policy`; a single command goes through the near
    /// cache (see [`RedisService::through_cache`]).
    pub(crate) fn send_through(
        &self,
        raw: JsEnv,
        d: Deferred,
        work: Work,
        shape: Shape,
        policy: crate::engine::batch::Policy,
    ) {
        let (d, work, shape) = match work {
            Work::One(cmd) if self.client.near.is_some() => {
                match self.through_cache(raw, d, cmd, shape) {
                    Through::Hit => return,
                    Through::Send(d, work, shape) => (d, work, shape),
                }
            }
            work => (d, work, shape),
        };
        self.batcher.submit_with(raw, d, work, shape, policy, None);
    }

    /// Sends the one-command call `cmd` (settling as `Shape::One(decode, empty)`) under
    /// `policy`, through the near cache (see [`RedisService::through_cache`]).
    pub(crate) fn send_read(
        &self,
        raw: JsEnv,
        d: Deferred,
        cmd: Cmd,
        (decode, empty): (Decode, Empty),
        policy: crate::engine::batch::Policy,
    ) {
        let shape = Shape::One(decode, empty);
        if let Through::Send(d, work, shape) = self.through_cache(raw, d, cmd, shape) {
            self.batcher.submit_with(raw, d, work, shape, policy, None);
        }
    }

    /// [`RedisService::send_read`] with its promise; an argument error settles it at once.
    pub(crate) fn read_through(
        &self,
        env: &napi::Env,
        cmd: Result<Cmd, Error>,
        shape: (Decode, Empty),
        policy: crate::engine::batch::Policy,
    ) -> crate::binding::error::JsResult<crate::binding::error::JsPromise> {
        let raw = JsEnv::of(env);
        let (d, promise) = self.shared.promise(raw)?;
        match cmd {
            Err(e) => self.shared.settle_now(raw, d, Err(e)),
            Ok(cmd) => self.send_read(raw, d, cmd, shape, policy),
        }
        Ok(crate::binding::error::JsPromise(promise))
    }
}

/// What `clientCacheStats()` returns.
#[napi(object)]
pub struct ClientCacheStats {
    /// Reads answered from process memory.
    pub hits: f64,
    /// Reads the cache could have answered but did not hold (sent to Redis).
    pub misses: f64,
    /// Entries held now.
    pub entries: f64,
    /// About how many bytes they take (keys, values and bookkeeping).
    pub bytes: f64,
    /// Entries let go to stay within `maxEntries` / `maxBytes`, least recently used first.
    pub evictions: f64,
    /// Keys Redis said changed (each drops the entries read from that key).
    pub invalidations: f64,
    /// Times everything was dropped: the connection carrying the invalidations was lost (or
    /// failed over), `FLUSHDB`/`FLUSHALL`, or `clearClientCache()`.
    pub flushes: f64,
}

#[napi]
impl RedisService {
    /// The near cache's counters since the service was made (all zero when `clientCache` is
    /// off).
    #[napi]
    pub fn client_cache_stats(&self) -> ClientCacheStats {
        let s = self
            .client
            .near
            .as_ref()
            .map(|n| n.stats())
            .unwrap_or_default();
        ClientCacheStats {
            hits: s.hits as f64,
            misses: s.misses as f64,
            entries: s.entries as f64,
            bytes: s.bytes as f64,
            evictions: s.evictions as f64,
            invalidations: s.invalidations as f64,
            flushes: s.flushes as f64,
        }
    }

    /// Internal (js/near-mirror.js): the near cache's [`Signals`] as an `ArrayBuffer`, the
    /// first time it is asked for; `null` after that, or with the cache off, or where the runtime
    /// cannot share the memory.
    #[napi(skip_typescript, js_name = "__nearCacheSignals")]
    pub fn near_cache_signals(&self, env: napi::Env) -> crate::binding::error::JsRaw {
        let js = crate::binding::js::Js::of(&env);
        let shared = self.client.near.as_ref().and_then(|n| {
            if n.signals.handed.swap(true, Ordering::AcqRel) {
                return None;
            }
            js.shared_memory(Arc::clone(&n.signals))
        });
        crate::binding::error::JsRaw(shared.unwrap_or_else(|| js.null()))
    }

    /// Drops everything the near cache holds (the next reads go to Redis).
    #[napi]
    pub fn clear_client_cache(&self) {
        if let Some(n) = self.client.near.as_ref() {
            n.flush();
        }
    }
}
