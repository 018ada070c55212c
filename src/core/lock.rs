//! Distributed locks and semaphores: atomic acquire / release / extend scripts, waiting with
//! jitter (and an immediate wake-up when a lock of this process is released), and the lease
//! keeper that renews a held lock independently of the JS event loop.
//!
//! Key layout (after the service's `keyPrefix`):
//! - lock `K`: `lock:{K}` holds the owner's token with a millisecond TTL; `lock:{K}:fence` is the
//!   fencing counter (no TTL, so tokens keep increasing across expiries). One hash tag, one slot.
//! - semaphore `K`: `sem:{K}`, a sorted set of holder tokens scored by their expiry (server time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{Cmd, Value};
use tokio::sync::{oneshot, Notify};

use crate::core::script::Lua;
use crate::core::{Client, Error};

static LOCK_ACQUIRE: Lua = Lua::new(include_str!("scripts/lock_acquire.lua"));
static LOCK_RELEASE: Lua = Lua::new(include_str!("scripts/lock_release.lua"));
static LOCK_EXTEND: Lua = Lua::new(include_str!("scripts/lock_extend.lua"));
static SEM_ACQUIRE: Lua = Lua::new(include_str!("scripts/sem_acquire.lua"));
static SEM_RELEASE: Lua = Lua::new(include_str!("scripts/sem_release.lua"));
static SEM_EXTEND: Lua = Lua::new(include_str!("scripts/sem_extend.lua"));

/// Shortest renewal interval, in milliseconds.
const MIN_RENEW_MS: u64 = 10;
/// Delay before retrying a renewal that failed on the transport, in milliseconds.
const RENEW_RETRY_MS: u64 = 100;

/// What is being held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Lock,
    Semaphore { limit: u32 },
}

/// A lock or semaphore: its Redis keys and the user's key (for error messages).
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: Kind,
    pub user_key: String,
    key: Vec<u8>,
    fence: Vec<u8>,
}

fn tagged(prefix: &[u8], ns: &[u8], key: &[u8], suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + ns.len() + key.len() + suffix.len() + 2);
    out.extend_from_slice(prefix);
    out.extend_from_slice(ns);
    out.push(b'{');
    out.extend_from_slice(key);
    out.push(b'}');
    out.extend_from_slice(suffix);
    out
}

impl Target {
    /// The lock named `key` (without the service prefix).
    pub fn lock(prefix: &[u8], key: &[u8]) -> Target {
        Target {
            kind: Kind::Lock,
            user_key: String::from_utf8_lossy(key).into_owned(),
            key: tagged(prefix, b"lock:", key, b""),
            fence: tagged(prefix, b"lock:", key, b":fence"),
        }
    }

    /// The semaphore named `key` with `limit` slots.
    pub fn semaphore(prefix: &[u8], key: &[u8], limit: u32) -> Target {
        Target {
            kind: Kind::Semaphore { limit },
            user_key: String::from_utf8_lossy(key).into_owned(),
            key: tagged(prefix, b"sem:", key, b""),
            fence: Vec::new(),
        }
    }

    /// The Redis key holding the lock (or the semaphore's holders).
    pub fn redis_key(&self) -> &[u8] {
        &self.key
    }

    /// The acquisition script: replies `[token, fencingToken]` (lock) or the token (semaphore),
    /// nil when not acquired. `by_hash`: `EVALSHA`, else `EVAL`.
    pub fn acquire_cmd(&self, token: &str, ttl_ms: u64, by_hash: bool) -> Cmd {
        match self.kind {
            Kind::Lock => LOCK_ACQUIRE.cmd(by_hash, 2, &|c| {
                c.arg(&self.key).arg(&self.fence).arg(token).arg(ttl_ms);
            }),
            Kind::Semaphore { limit } => SEM_ACQUIRE.cmd(by_hash, 1, &|c| {
                c.arg(&self.key).arg(limit).arg(token).arg(ttl_ms);
            }),
        }
    }

    /// A lock taken without a fencing token (`acquireLock`): a plain `SET key token NX PX ttl`,
    /// replying `OK` or nil, which costs the server a fraction of the script. The fencing counter
    /// is only drawn by acquisitions that hand out a fencing token, so it still increases with
    /// every one of those. `None` for a semaphore.
    pub fn plain_acquire_cmd(&self, token: &str, ttl_ms: u64) -> Option<Cmd> {
        match self.kind {
            Kind::Lock => {
                let mut c = redis::cmd("SET");
                c.arg(&self.key).arg(token).arg("NX").arg("PX").arg(ttl_ms);
                Some(c)
            }
            Kind::Semaphore { .. } => None,
        }
    }

    /// The release script: replies 1 when `token` held it, else 0.
    pub fn release_cmd(&self, token: &str, by_hash: bool) -> Cmd {
        let script = match self.kind {
            Kind::Lock => &LOCK_RELEASE,
            Kind::Semaphore { .. } => &SEM_RELEASE,
        };
        script.cmd(by_hash, 1, &|c| {
            c.arg(&self.key).arg(token);
        })
    }

    /// The extension script: replies 1 when `token` held it (TTL reset to `ttl_ms`), else 0.
    pub fn extend_cmd(&self, token: &str, ttl_ms: u64, by_hash: bool) -> Cmd {
        let script = match self.kind {
            Kind::Lock => &LOCK_EXTEND,
            Kind::Semaphore { .. } => &SEM_EXTEND,
        };
        script.cmd(by_hash, 1, &|c| {
            c.arg(&self.key).arg(token).arg(ttl_ms);
        })
    }

    fn what(&self) -> &'static str {
        match self.kind {
            Kind::Lock => "lock",
            Kind::Semaphore { .. } => "semaphore",
        }
    }

    /// The error for "not acquired within `wait_ms`".
    pub fn not_acquired(&self, wait_ms: u64) -> Error {
        Error::LockNotAcquired {
            key: self.user_key.clone(),
            msg: format!(
                "could not acquire {} \"{}\" within {} ms (held by someone else); raise waitMs to wait longer",
                self.what(),
                self.user_key,
                wait_ms
            ),
        }
    }

    /// The error for a lost lease.
    pub fn lost(&self, why: &str) -> Error {
        Error::LockLost {
            key: self.user_key.clone(),
            msg: format!(
                "{} \"{}\" was lost while held: {why}",
                self.what(),
                self.user_key
            ),
        }
    }
}

/// A fresh random token (UUID v4: 122 random bits).
pub fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// How to acquire.
#[derive(Clone, Debug)]
pub struct AcquireOptions {
    pub ttl_ms: u64,
    /// Keep retrying this long (0 = try once).
    pub wait_ms: u64,
    /// Base delay between retries; each is jittered between 50% and 150% of it.
    pub retry_delay_ms: u64,
}

/// A successful acquisition.
#[derive(Clone, Debug)]
pub struct Acquired {
    pub token: String,
    /// Strictly increasing per lock key; `None` for semaphores.
    pub fencing_token: Option<i64>,
    /// When the acquiring request was sent: the lease is valid until this + TTL at the latest.
    pub sent_at: Instant,
}

/// Process-local wake-ups: a release by this process wakes one local waiter at once instead of
/// leaving it to its retry timer.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<Vec<u8>, WaitEntry>>,
}

/// One key's wake-up and how many tasks wait on it.
type WaitEntry = (Arc<Notify>, usize);

struct Waiting<'a> {
    waiters: &'a Waiters,
    key: Vec<u8>,
    notify: Arc<Notify>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.waiters.map.lock() {
            if let Some(e) = m.get_mut(&self.key) {
                e.1 -= 1;
                if e.1 == 0 {
                    m.remove(&self.key);
                }
            }
        }
    }
}

impl Waiters {
    fn enter(&self, key: &[u8]) -> Option<Waiting<'_>> {
        let mut m = self.map.lock().ok()?;
        let e = m
            .entry(key.to_vec())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        e.1 += 1;
        Some(Waiting {
            waiters: self,
            key: key.to_vec(),
            notify: Arc::clone(&e.0),
        })
    }

    /// Whether a caller of this process waits for `key`.
    pub fn has(&self, key: &[u8]) -> bool {
        self.map.lock().is_ok_and(|m| m.contains_key(key))
    }

    fn wake(&self, key: &[u8]) {
        if let Ok(m) = self.map.lock() {
            if let Some((n, _)) = m.get(key) {
                n.notify_one();
            }
        }
    }
}

fn jitter(base_ms: u64) -> Duration {
    let r = (uuid::Uuid::new_v4().as_u128() % 1000) as u64;
    Duration::from_millis((base_ms.max(1) * (500 + r) / 1000).max(1))
}

fn flag(v: Value) -> bool {
    matches!(v, Value::Int(1) | Value::Okay)
}

/// One attempt. `Ok(None)` when someone else holds it.
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable; `Reply` for a server error.
pub async fn try_acquire(
    client: &Arc<Client>,
    t: &Target,
    token: &str,
    ttl_ms: u64,
) -> Result<Option<Acquired>, Error> {
    let sent_at = Instant::now();
    let v = match t.kind {
        Kind::Lock => {
            LOCK_ACQUIRE
                .run(client, 2, |c| {
                    c.arg(&t.key).arg(&t.fence).arg(token).arg(ttl_ms);
                })
                .await?
        }
        Kind::Semaphore { limit } => {
            SEM_ACQUIRE
                .run(client, 1, |c| {
                    c.arg(&t.key).arg(limit).arg(token).arg(ttl_ms);
                })
                .await?
        }
    };
    let fencing_token = match (&t.kind, v) {
        (Kind::Lock, Value::Array(a)) => match a.get(1) {
            Some(Value::Int(n)) => Some(*n),
            _ => return Ok(None),
        },
        (Kind::Semaphore { .. }, Value::Nil) => return Ok(None),
        (Kind::Semaphore { .. }, _) => None,
        _ => return Ok(None),
    };
    Ok(Some(Acquired {
        token: token.to_string(),
        fencing_token,
        sent_at,
    }))
}

/// Acquires, retrying with jittered delays for up to `o.wait_ms`. `Ok(None)` when the wait ran
/// out. A transport error ends the wait at once (fail fast while Redis is down).
///
/// # Errors
/// As [`try_acquire`].
pub async fn acquire(
    client: &Arc<Client>,
    t: &Target,
    token: &str,
    o: &AcquireOptions,
) -> Result<Option<Acquired>, Error> {
    if o.wait_ms == 0 {
        return try_acquire(client, t, token, o.ttl_ms).await;
    }
    let deadline = Instant::now() + Duration::from_millis(o.wait_ms);
    let waiting = client.waiters.enter(&t.key);
    loop {
        if let Some(a) = try_acquire(client, t, token, o.ttl_ms).await? {
            return Ok(Some(a));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let pause = jitter(o.retry_delay_ms).min(deadline - now);
        match &waiting {
            Some(w) => {
                tokio::select! {
                    _ = w.notify.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            None => tokio::time::sleep(pause).await,
        }
    }
}

/// Releases if `token` holds it. `true` only when it did.
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
pub async fn release(client: &Arc<Client>, t: &Target, token: &str) -> Result<bool, Error> {
    let script = match t.kind {
        Kind::Lock => &LOCK_RELEASE,
        Kind::Semaphore { .. } => &SEM_RELEASE,
    };
    let released = flag(
        script
            .run(client, 1, |c| {
                c.arg(&t.key).arg(token);
            })
            .await?,
    );
    if released {
        client.waiters.wake(&t.key);
    }
    Ok(released)
}

/// Deletes `key` only if it holds `token` (a plain lock key, such as a cache loading lock).
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
pub async fn release_key(client: &Arc<Client>, key: &[u8], token: &str) -> Result<bool, Error> {
    Ok(flag(
        LOCK_RELEASE
            .run(client, 1, |c| {
                c.arg(key).arg(token);
            })
            .await?,
    ))
}

/// Resets the TTL to `ttl_ms` if `token` holds it. `true` only when it did.
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
pub async fn extend(
    client: &Arc<Client>,
    t: &Target,
    token: &str,
    ttl_ms: u64,
) -> Result<bool, Error> {
    let script = match t.kind {
        Kind::Lock => &LOCK_EXTEND,
        Kind::Semaphore { .. } => &SEM_EXTEND,
    };
    Ok(flag(
        script
            .run(client, 1, |c| {
                c.arg(&t.key).arg(token).arg(ttl_ms);
            })
            .await?,
    ))
}

/// How a held lease ended.
#[derive(Debug, PartialEq)]
pub enum HoldEnd {
    /// Released by its holder (`false`: the release found it no longer held).
    Released(bool),
    /// Lost while held (reason); a release was still attempted.
    Lost(String),
    /// The release could not reach Redis: the lease expires by its TTL.
    Unreleased(Error),
}

/// How to keep a lease.
#[derive(Clone, Debug)]
pub struct HoldOptions {
    pub ttl_ms: u64,
    pub auto_extend: bool,
    /// Stop renewing after this long (the lease then runs out at its TTL).
    pub max_hold_ms: Option<u64>,
}

/// Keeps a held lease until `done` fires (or its sender is dropped), renewing it about every third
/// of the TTL when `auto_extend`; then releases it. `on_lost` is called once, the moment the
/// lease is known lost: renewal refused (key taken or deleted), or its TTL ran out without a
/// confirmed renewal (Redis unreachable, `maxHoldMs` reached, or no auto-extension).
pub async fn hold(
    client: &Arc<Client>,
    t: &Target,
    a: &Acquired,
    o: &HoldOptions,
    mut done: oneshot::Receiver<()>,
    on_lost: impl FnOnce(Error),
) -> HoldEnd {
    let ttl = Duration::from_millis(o.ttl_ms);
    let interval = Duration::from_millis((o.ttl_ms / 3).max(MIN_RENEW_MS));
    let stop_renewing = o.max_hold_ms.map(|m| a.sent_at + Duration::from_millis(m));
    let mut valid_until = a.sent_at + ttl;
    let mut next_renewal = a.sent_at + interval;
    let mut on_lost = Some(on_lost);
    let mut lost: Option<String> = None;
    while lost.is_none() {
        let renew = o.auto_extend
            && next_renewal < valid_until
            && stop_renewing.is_none_or(|s| next_renewal < s);
        let wake = if renew { next_renewal } else { valid_until };
        tokio::select! {
            _ = &mut done => break,
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        if !renew || now >= valid_until {
            let why = if !o.auto_extend {
                format!(
                    "its TTL ({} ms) ran out before the callback finished",
                    o.ttl_ms
                )
            } else if stop_renewing.is_some_and(|s| now >= s) {
                format!(
                    "it was held longer than maxHoldMs ({} ms) and expired",
                    o.max_hold_ms.unwrap_or(0)
                )
            } else {
                "its TTL ran out while Redis could not be reached to renew it".to_string()
            };
            lost = Some(why);
            break;
        }
        let budget = valid_until - now;
        match tokio::time::timeout(budget, extend(client, t, &a.token, o.ttl_ms)).await {
            Ok(Ok(true)) => {
                valid_until = now + ttl;
                next_renewal = now + interval;
            }
            Ok(Ok(false)) => {
                lost = Some("another holder took it or it was deleted".to_string());
            }
            Ok(Err(_)) | Err(_) => {
                next_renewal = Instant::now() + Duration::from_millis(RENEW_RETRY_MS);
            }
        }
    }
    if let Some(why) = &lost {
        if let Some(f) = on_lost.take() {
            f(t.lost(why));
        }
        // Wait for the holder to finish before cleaning up (the lease is gone either way).
        let _ = done.await;
    }
    match release(client, t, &a.token).await {
        Ok(still_held) => match lost {
            Some(why) => HoldEnd::Lost(why),
            None if still_held => HoldEnd::Released(true),
            None => {
                HoldEnd::Lost("it expired or was taken before the callback finished".to_string())
            }
        },
        Err(e) => match lost {
            Some(why) => HoldEnd::Lost(why),
            None => HoldEnd::Unreleased(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let t = Target::lock(b"app:", b"order:1");
        assert_eq!(t.key, b"app:lock:{order:1}");
        assert_eq!(t.fence, b"app:lock:{order:1}:fence");
        let s = Target::semaphore(b"", b"jobs", 3);
        assert_eq!(s.key, b"sem:{jobs}");
        assert_eq!(s.kind, Kind::Semaphore { limit: 3 });
    }

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        for _ in 0..200 {
            let d = jitter(100).as_millis();
            assert!((50..=150).contains(&d), "{d}");
        }
        assert!(jitter(0).as_millis() >= 1);
    }

    #[test]
    fn lock_errors_carry_the_key_and_code() {
        let t = Target::lock(b"p:", b"k");
        let e = t.not_acquired(250);
        assert_eq!(e.code(), "ERR_LOCK_NOT_ACQUIRED");
        assert_eq!(e.lock_key(), Some("k"));
        assert!(e.to_string().contains("250 ms"));
        assert_eq!(t.lost("x").code(), "ERR_LOCK_LOST");
    }

    #[test]
    fn tokens_are_random_uuids() {
        let a = new_token();
        assert_eq!(a.len(), 36);
        assert_ne!(a, new_token());
    }
}
