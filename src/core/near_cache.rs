//! The near cache (`clientCache`): replies to cacheable reads kept in process memory, and dropped
//! the moment Redis says their key changed (RESP3 client tracking: the connection that read a key
//! receives an `invalidate` push for it when any client writes it, or when it expires or is
//! evicted).
//!
//! The rules, each enforced here:
//! - A value is never served after its invalidation arrived, and a reply that races an
//!   invalidation of its own key is not kept: a read registers as pending when it is sent
//!   ([`NearCache::begin`]); an invalidation of a key with reads pending marks them, and a marked
//!   read's reply is handed to its caller but not stored ([`NearCache::finish`]).
//! - A flush (the connection that carries the invalidations was lost, `FLUSHDB`, a failover)
//!   drops everything and every pending read with it: a reply sent before the flush is never
//!   stored after it.
//! - An entry is never served after its key's TTL: each miss reads the key's `PTTL` in the same
//!   round trip, and the entry expires at the time the read was sent plus that TTL (the server
//!   may process the expiry later; we do not wait for its push). `ttlMs` bounds it further.
//! - Bounded by entries and by bytes, least recently used out first.
//!
//! One cache per client, shared by its reads on the JS-thread connection (the one with tracking
//! on). The lock is held for map operations only, never across I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use redis::Value;

/// Limits of a near cache, from the `clientCache` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NearCacheOptions {
    pub max_entries: usize,
    pub max_bytes: usize,
    /// An extra bound on how long an entry is kept, in milliseconds (none by default).
    pub ttl_ms: Option<u64>,
}

pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

impl Default for NearCacheOptions {
    fn default() -> Self {
        NearCacheOptions {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            ttl_ms: None,
        }
    }
}

/// The counters `clientCacheStats()` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NearCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: u64,
    pub bytes: u64,
    pub evictions: u64,
    pub invalidations: u64,
    pub flushes: u64,
}

struct Entry {
    value: Value,
    /// The Redis key the entry was read from (what an invalidation names).
    key: Vec<u8>,
    expires: Option<Instant>,
    bytes: usize,
}

/// Reads in flight for one key.
struct Pending {
    readers: u32,
    /// Bumped by each invalidation of the key while reads are in flight.
    gen: u64,
}

struct Inner {
    /// By the read's command bytes (`GET k` and `HGET k f` are different entries of key `k`).
    entries: LruCache<Vec<u8>, Entry>,
    /// Redis key -> the entries read from it.
    by_key: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    pending: HashMap<Vec<u8>, Pending>,
    /// Bumped by every flush: a read sent before one is never stored.
    epoch: u64,
    bytes: usize,
    stats: NearCacheStats,
}

/// What a read sent with the cache on must hand back to [`NearCache::finish`].
#[derive(Debug)]
pub struct Ticket {
    epoch: u64,
    gen: u64,
    sent: Instant,
}

/// What the JS side's copy of the hits (`js/near-mirror.js`) reads without calling in: shared
/// memory, a JS `Uint32Array` over it.
#[repr(C)]
#[derive(Default)]
pub struct Signals {
    /// Bumped whenever an entry goes (invalidated, evicted, replaced, expired, flushed): a copy
    /// taken at another epoch is never served.
    pub epoch: AtomicU32,
    /// Bumped by every hit [`NearCache::lookup`] serves (on the JS thread, during the call).
    pub hits: AtomicU32,
    /// That hit's entry's remaining life in milliseconds (`u32::MAX`: no expiry).
    pub hit_ttl_ms: AtomicU32,
    /// Whether the memory was handed to JS already (one `ArrayBuffer` per cache).
    pub handed: AtomicBool,
}

pub struct NearCache {
    /// Shared with the JS side's copy (see [`Signals`]).
    pub signals: Arc<Signals>,
    opts: NearCacheOptions,
    inner: Mutex<Inner>,
    /// The longest key a read was ever sent for: an argument longer than this is no cached key
    /// (see [`NearCache::keys_in`]).
    longest_key: AtomicUsize,
}

/// Per-entry bookkeeping counted against `maxBytes` besides the key and value bytes.
const ENTRY_OVERHEAD: usize = 96;

impl NearCache {
    pub fn new(opts: NearCacheOptions) -> NearCache {
        NearCache {
            opts,
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                by_key: HashMap::new(),
                pending: HashMap::new(),
                epoch: 0,
                bytes: 0,
                stats: NearCacheStats::default(),
            }),
            longest_key: AtomicUsize::new(0),
            signals: Arc::default(),
        }
    }

    /// An entry went: copies taken before are not to be served.
    fn gone(&self) {
        self.signals.epoch.fetch_add(1, Ordering::Release);
    }

    /// The value cached for the read `cmd` (its command bytes), if any and still fresh.
    pub fn lookup(&self, cmd: &[u8], now: Instant) -> Option<Value> {
        let mut g = self.inner.lock().ok()?;
        let inner = &mut *g;
        let fresh = match inner.entries.get(cmd) {
            None => {
                inner.stats.misses += 1;
                return None;
            }
            Some(e) => e.expires.is_none_or(|t| now < t),
        };
        if !fresh {
            inner.remove(cmd);
            inner.stats.misses += 1;
            self.gone();
            return None;
        }
        inner.stats.hits += 1;
        let e = inner.entries.peek(cmd)?;
        let ttl = e.expires.map_or(u32::MAX, |t| {
            u32::try_from(t.saturating_duration_since(now).as_millis()).unwrap_or(u32::MAX - 1)
        });
        self.signals.hit_ttl_ms.store(ttl, Ordering::Relaxed);
        self.signals.hits.fetch_add(1, Ordering::Relaxed);
        Some(e.value.clone())
    }

    /// A read of `key` is being sent.
    pub fn begin(&self, key: &[u8]) -> Option<Ticket> {
        self.longest_key.fetch_max(key.len(), Ordering::Relaxed);
        let mut g = self.inner.lock().ok()?;
        let epoch = g.epoch;
        let p = g
            .pending
            .entry(key.to_vec())
            .or_insert(Pending { readers: 0, gen: 0 });
        p.readers += 1;
        Some(Ticket {
            epoch,
            gen: p.gen,
            sent: Instant::now(),
        })
    }

    /// The read `ticket` of `key` (command bytes `cmd`) came back: `Some((value, pttl))` to keep
    /// (`pttl` as Redis answers `PTTL`: milliseconds, `-1` no expiry, `-2` no key), `None` when it
    /// failed. Kept only if neither an invalidation of `key` nor a flush came since it was sent.
    pub fn finish(&self, ticket: Ticket, key: &[u8], cmd: Vec<u8>, reply: Option<(Value, i64)>) {
        let Ok(mut g) = self.inner.lock() else { return };
        let inner = &mut *g;
        let current = if ticket.epoch != inner.epoch {
            // Flushed since: the pending entry went with it.
            false
        } else {
            match inner.pending.get_mut(key) {
                Some(p) => {
                    let same = p.gen == ticket.gen;
                    p.readers -= 1;
                    if p.readers == 0 {
                        inner.pending.remove(key);
                    }
                    same
                }
                None => false,
            }
        };
        let Some((value, pttl)) = reply else { return };
        if !current {
            return;
        }
        let mut expires = match pttl {
            t if t >= 0 => Some(ticket.sent + Duration::from_millis(t as u64)),
            _ => None,
        };
        if let Some(ms) = self.opts.ttl_ms {
            let cap = ticket.sent + Duration::from_millis(ms);
            expires = Some(expires.map_or(cap, |t| t.min(cap)));
        }
        if expires.is_some_and(|t| t <= Instant::now()) {
            return;
        }
        let bytes = ENTRY_OVERHEAD + 2 * cmd.len() + key.len() + value_bytes(&value);
        if bytes > self.opts.max_bytes || self.opts.max_entries == 0 {
            return;
        }
        if inner.remove(&cmd) {
            self.gone();
        }
        while inner.entries.len() >= self.opts.max_entries
            || inner.bytes + bytes > self.opts.max_bytes
        {
            match inner.entries.pop_lru() {
                Some((c, e)) => {
                    inner.unlink(&c, &e);
                    inner.stats.evictions += 1;
                    self.gone();
                }
                None => break,
            }
        }
        inner
            .by_key
            .entry(key.to_vec())
            .or_default()
            .push(cmd.clone());
        inner.bytes += bytes;
        inner.entries.push(
            cmd,
            Entry {
                value,
                key: key.to_vec(),
                expires,
                bytes,
            },
        );
    }

    /// Redis said these keys changed (`None`: everything, as after `FLUSHDB`).
    pub fn invalidate(&self, keys: Option<&[Vec<u8>]>) {
        let Some(keys) = keys else {
            return self.flush();
        };
        let Ok(mut g) = self.inner.lock() else { return };
        let inner = &mut *g;
        for k in keys {
            inner.stats.invalidations += 1;
            if inner.drop_key(k) {
                self.gone();
            }
        }
    }

    /// The arguments of `cmd` that may name a key this cache holds or reads (short enough), copied
    /// into `out`: what [`NearCache::touched`] is given once the command's reply came.
    pub fn keys_in(&self, cmd: &redis::Cmd, out: &mut Vec<Vec<u8>>) {
        let longest = self.longest_key.load(Ordering::Relaxed);
        if longest == 0 {
            return;
        }
        for a in cmd.args_iter() {
            if let redis::Arg::Simple(b) = a {
                if b.len() <= longest {
                    out.push(b.to_vec());
                }
            }
        }
    }

    /// A command that may have read or written these keys was answered on a connection whose
    /// invalidations this cache does not see in order with its replies (cluster mode's shared
    /// connection): their entries go, and reads of them in flight are not kept, before that reply
    /// reaches its caller. (Its arguments, not only its keys: a value that happens to equal a key
    /// costs that key one miss.)
    pub fn touched(&self, candidates: &[Vec<u8>]) {
        if candidates.is_empty() {
            return;
        }
        let Ok(mut g) = self.inner.lock() else { return };
        let inner = &mut *g;
        for k in candidates {
            if inner.drop_key(k) {
                inner.stats.invalidations += 1;
                self.gone();
            }
        }
    }

    /// Drops every entry and every pending read (the invalidations may have been missed).
    pub fn flush(&self) {
        let Ok(mut g) = self.inner.lock() else { return };
        g.entries.clear();
        g.by_key.clear();
        g.pending.clear();
        g.bytes = 0;
        g.epoch += 1;
        g.stats.flushes += 1;
        self.gone();
    }

    pub fn stats(&self) -> NearCacheStats {
        self.inner.lock().map_or_else(
            |_| NearCacheStats::default(),
            |g| NearCacheStats {
                entries: g.entries.len() as u64,
                bytes: g.bytes as u64,
                ..g.stats
            },
        )
    }
}

impl Inner {
    /// Drops the entries read from `key` and marks its reads in flight (not to be kept); whether
    /// it held any.
    fn drop_key(&mut self, key: &[u8]) -> bool {
        if let Some(p) = self.pending.get_mut(key) {
            p.gen += 1;
        }
        let Some(cmds) = self.by_key.remove(key) else {
            return false;
        };
        for c in cmds {
            if let Some(e) = self.entries.pop(&c) {
                self.bytes -= e.bytes;
            }
        }
        true
    }

    /// Whether there was an entry to remove.
    fn remove(&mut self, cmd: &[u8]) -> bool {
        let Some(e) = self.entries.pop(cmd) else {
            return false;
        };
        self.unlink(cmd, &e);
        true
    }

    /// Forgets an entry already out of `entries`.
    fn unlink(&mut self, cmd: &[u8], e: &Entry) {
        self.bytes -= e.bytes;
        if let Some(v) = self.by_key.get_mut(&e.key) {
            v.retain(|c| c != cmd);
            if v.is_empty() {
                self.by_key.remove(&e.key);
            }
        }
    }
}

/// About how much memory a reply takes.
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::BulkString(b) => b.len(),
        Value::SimpleString(s) => s.len(),
        Value::Array(xs) | Value::Set(xs) => xs.iter().map(|x| 16 + value_bytes(x)).sum(),
        Value::Map(kv) => kv
            .iter()
            .map(|(k, v)| 32 + value_bytes(k) + value_bytes(v))
            .sum(),
        _ => 8,
    }
}

/// What an `invalidate` push names.
#[derive(Debug, PartialEq, Eq)]
pub enum Invalidated {
    Keys(Vec<Vec<u8>>),
    /// Every key (`FLUSHDB`, `FLUSHALL`).
    All,
}

/// What `v` invalidates, or `None` when it is another push (or no push).
pub fn invalidated_keys(v: &Value) -> Option<Invalidated> {
    let Value::Push { kind, data } = v else {
        return None;
    };
    if *kind != redis::PushKind::Invalidate {
        return None;
    }
    Some(match data.first() {
        Some(Value::Array(keys)) => Invalidated::Keys(
            keys.iter()
                .filter_map(|k| match k {
                    Value::BulkString(b) => Some(b.clone()),
                    Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
                    _ => None,
                })
                .collect(),
        ),
        _ => Invalidated::All,
    })
}

impl NearCache {
    /// Applies an `invalidate` push.
    pub fn apply(&self, what: Invalidated) {
        match what {
            Invalidated::Keys(keys) => self.invalidate(Some(&keys)),
            Invalidated::All => self.flush(),
        }
    }
}

#[cfg(test)]
mod tests;
