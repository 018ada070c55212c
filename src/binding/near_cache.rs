//! The near cache (`clientCache`, `core::near_cache`) in front of the reads it serves: a hit
//! settles at once from process memory; a miss goes out with the key's `PTTL` in the same round
//! trip and its reply is offered to the cache. `clientCacheStats()` and `clearClientCache()`.

use std::sync::Arc;
use std::time::Instant;

use napi_derive::napi;
use redis::{Cmd, Value};

use crate::binding::service::RedisService;
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

/// What to send for a call, after the near cache had its say.
enum Through {
    /// Answered from the cache (the promise is settled).
    Hit,
    Send(Deferred, Work, Shape),
}

impl RedisService {
    /// A one-command call `cmd` that settles as `Shape::One(decode, empty)`: served from the near
    /// cache when it holds the answer, else sent (with `PTTL` when the reply may be kept).
    fn through_cache(
        &self,
        raw: JsEnv,
        d: Deferred,
        cmd: Cmd,
        decode: Decode,
        empty: Empty,
    ) -> Through {
        let plain = |d, cmd| Through::Send(d, Work::One(cmd), Shape::One(decode, empty));
        let Some(near) = self.client.near.as_ref() else {
            return plain(d, cmd);
        };
        let Some(key) = cached_key(&cmd) else {
            return plain(d, cmd);
        };
        let packed = cmd.get_packed_command();
        if let Some(v) = near.lookup(&packed, Instant::now()) {
            self.shared.settle_now(raw, d, Ok(Out::Reply(v, decode)));
            return Through::Hit;
        }
        let Some(ticket) = near.begin(&key) else {
            return plain(d, cmd);
        };
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(&key);
        let client = Arc::clone(&self.client);
        let convert: Convert = Box::new(move |r| {
            let keep = |kept: Option<(Value, i64)>| {
                if let Some(near) = client.near.as_ref() {
                    near.finish(ticket, &key, packed, kept);
                }
            };
            match r {
                Ok(Some(Value::Array(mut both))) if both.len() == 2 => {
                    let ttl = both.pop();
                    let v = both.pop().unwrap_or(Value::Nil);
                    match (reply(v), ttl) {
                        (Ok(v), Some(Value::Int(ms))) => {
                            keep(Some((v.clone(), ms)));
                            Ok(Out::Reply(v, decode))
                        }
                        (Ok(v), _) => {
                            keep(None);
                            Ok(Out::Reply(v, decode))
                        }
                        (Err(e), _) => {
                            keep(None);
                            Err(e)
                        }
                    }
                }
                Ok(Some(other)) => {
                    keep(None);
                    Err(Error::Reply(format!("unexpected reply: {other:?}")))
                }
                Ok(None) => {
                    keep(None);
                    Ok(Out::Empty(empty))
                }
                Err(e) => {
                    keep(None);
                    Err(e)
                }
            }
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
        if let Through::Send(d, work, shape) = self.through_cache(raw, d, cmd, decode, empty) {
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

    /// Drops everything the near cache holds (the next reads go to Redis).
    #[napi]
    pub fn clear_client_cache(&self) {
        if let Some(n) = self.client.near.as_ref() {
            n.flush();
        }
    }
}
