//! Distributed locks and semaphores: what is locked (`Target`: keys, scripts, errors), the
//! options and their defaults, and (in `lease`) acquiring with jittered waits, the lease keeper
//! that renews a held lock independently of the JS event loop, and `guard`, the whole
//! acquire → run → release sequence of `withLock` behind the `LeaseHooks` the binding implements.
//!
//! Key layout (after the service's `keyPrefix`):
//! - lock `K`: `lock:{K}` holds the owner's token with a millisecond TTL; `lock:{K}:fence` is the
//!   fencing counter (no TTL, so tokens keep increasing across expiries). One hash tag, one slot.
//! - semaphore `K`: `sem:{K}`, a sorted set of holder tokens scored by their expiry (server time).

mod clock;
mod keeper;
mod lease;
mod notices;
mod turn;

use std::time::Instant;

use redis::Cmd;

use crate::core::keys::tagged;
use crate::core::script::Lua;
use crate::core::Error;

pub use clock::{LeaseClock, Tick};
pub use keeper::{Keeper, KeptLease};
pub use lease::{
    acquire, ended, extend, guard, hold, release, release_key, released, try_acquire, HoldEnd,
    LeaseHooks,
};
pub use notices::{Listening, Notices};
pub use turn::Turn;

static LOCK_ACQUIRE: Lua = Lua::new(include_str!("../scripts/lock_acquire.lua"));
static LOCK_RELEASE: Lua = Lua::new(include_str!("../scripts/lock_release.lua"));
/// A release that hands over to other processes: the shared hand-over, then the script itself.
macro_rules! handing_over {
    ($file:literal) => {
        Lua::new(concat!(
            include_str!("../scripts/handover_lib.lua"),
            include_str!(concat!("../scripts/", $file))
        ))
    };
}

static LOCK_RELEASE_NOTIFY: Lua = handing_over!("lock_release_notify.lua");
static WAIT_MARK: Lua = Lua::new(include_str!("../scripts/lock_wait_mark.lua"));
static LOCK_EXTEND: Lua = Lua::new(include_str!("../scripts/lock_extend.lua"));
static SEM_ACQUIRE: Lua = Lua::new(include_str!("../scripts/sem_acquire.lua"));
static SEM_RELEASE: Lua = handing_over!("sem_release.lua");
static SEM_EXTEND: Lua = Lua::new(include_str!("../scripts/sem_extend.lua"));

/// The suffix of the channel a release is announced on (the release scripts append it to the
/// lock's key).
pub const FREE: &[u8] = b":free";

/// TTL when none is given: 30 seconds.
pub const DEFAULT_TTL_MS: u64 = 30_000;
/// How long a release that found another client waiting keeps the releasing client from taking
/// the lock (or a slot) back, in milliseconds: the notice reaches a waiter in well under a
/// millisecond here (p99 0.7 ms), so a woken waiter of another process gets its turn, and no
/// process keeps a lock that others wait for by taking it back at once. When no waiter takes
/// it, the releaser's own callers wait at most this long more.
pub const HANDOVER_MS: u64 = 3;

/// Base delay between acquisition attempts while waiting, in milliseconds.
pub const DEFAULT_RETRY_DELAY_MS: u64 = 50;
/// Longest TTL / wait accepted: about 24.8 days (the largest timer delay), in milliseconds.
pub const MAX_MS: u64 = 2_147_483_647;

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
    /// The clients waiting for it (any process): a release publishes on `channel` when another
    /// client than the releaser's waits.
    waiting: Vec<u8>,
    channel: Vec<u8>,
    /// The hand-over reservation: set by a release that found another client waiting, it keeps
    /// the releasing client from taking the lock back for [`HANDOVER_MS`].
    handover: Vec<u8>,
}

impl Target {
    /// The lock named `key` (without the service prefix).
    pub fn lock(prefix: &[u8], key: &[u8]) -> Target {
        Target {
            kind: Kind::Lock,
            user_key: String::from_utf8_lossy(key).into_owned(),
            key: tagged(&[prefix, b"lock:"], key, &[]),
            fence: tagged(&[prefix, b"lock:"], key, &[b":fence"]),
            waiting: tagged(&[prefix, b"lock:"], key, &[b":waiting"]),
            channel: tagged(&[prefix, b"lock:"], key, &[FREE]),
            handover: tagged(&[prefix, b"lock:"], key, &[b":handover"]),
        }
    }

    /// The semaphore named `key` with `limit` slots.
    pub fn semaphore(prefix: &[u8], key: &[u8], limit: u32) -> Target {
        Target {
            kind: Kind::Semaphore { limit },
            user_key: String::from_utf8_lossy(key).into_owned(),
            key: tagged(&[prefix, b"sem:"], key, &[]),
            fence: Vec::new(),
            waiting: tagged(&[prefix, b"sem:"], key, &[b":waiting"]),
            channel: tagged(&[prefix, b"sem:"], key, &[FREE]),
            handover: tagged(&[prefix, b"sem:"], key, &[b":handover"]),
        }
    }

    /// The Redis key holding the lock (or the semaphore's holders).
    pub fn redis_key(&self) -> &[u8] {
        &self.key
    }

    /// The acquisition script: replies `[token, fencingToken]` (lock) or the token (semaphore),
    /// nil when not acquired. `by_hash`: `EVALSHA`, else `EVAL`.
    pub fn acquire_cmd(&self, token: &str, ttl_ms: u64, origin: &[u8], by_hash: bool) -> Cmd {
        let (script, keys) = self.acquire_script();
        script.cmd(by_hash, keys, &|c| {
            self.acquire_args(c, token, ttl_ms, origin)
        })
    }

    /// The acquisition script and how many of its arguments are keys.
    pub(super) fn acquire_script(&self) -> (&'static Lua, usize) {
        match self.kind {
            Kind::Lock => (&LOCK_ACQUIRE, 3),
            Kind::Semaphore { .. } => (&SEM_ACQUIRE, 2),
        }
    }

    /// The acquisition's arguments; `origin`: the acquiring client (see the hand-over).
    pub(super) fn acquire_args(&self, c: &mut Cmd, token: &str, ttl_ms: u64, origin: &[u8]) {
        match self.kind {
            Kind::Lock => {
                c.arg(&self.key).arg(&self.fence).arg(&self.handover);
                c.arg(token).arg(ttl_ms).arg(origin);
            }
            Kind::Semaphore { limit } => {
                c.arg(&self.key).arg(&self.handover);
                c.arg(limit).arg(token).arg(ttl_ms).arg(origin);
            }
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

    /// The release script: replies 1 when `token` held it, else 0; tells waiting processes,
    /// naming the releasing client (`origin`: `Waiters::origin`).
    pub fn release_cmd(&self, token: &str, origin: &[u8], by_hash: bool) -> Cmd {
        self.release_script()
            .cmd(by_hash, 3, &|c| self.release_args(c, token, origin))
    }

    pub(super) fn release_script(&self) -> &'static Lua {
        match self.kind {
            Kind::Lock => &LOCK_RELEASE_NOTIFY,
            Kind::Semaphore { .. } => &SEM_RELEASE,
        }
    }

    pub(super) fn release_args(&self, c: &mut Cmd, token: &str, origin: &[u8]) {
        c.arg(&self.key).arg(&self.waiting).arg(&self.handover);
        c.arg(token).arg(origin).arg(HANDOVER_MS);
    }

    /// The sorted set of clients waiting for this lock (scored by when their wait ends).
    pub fn waiting_key(&self) -> &[u8] {
        &self.waiting
    }

    /// The channel a release of this lock is announced on (to waiters in other processes).
    pub fn channel(&self) -> &[u8] {
        &self.channel
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

    /// Reads the reply of the acquisition script sent at `sent_at` for `token`: the lease, or
    /// `None` when someone else holds it (all slots, for a semaphore).
    pub fn acquired(&self, v: &redis::Value, token: &str, sent_at: Instant) -> Option<Acquired> {
        let fencing_token = match (&self.kind, v) {
            (Kind::Lock, redis::Value::Array(a)) => match a.get(1) {
                Some(redis::Value::Int(n)) => Some(*n),
                _ => return None,
            },
            (Kind::Semaphore { .. }, redis::Value::Nil) => return None,
            (Kind::Semaphore { .. }, _) => None,
            _ => return None,
        };
        Some(Acquired {
            token: token.to_string(),
            fencing_token,
            sent_at,
        })
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

/// Everything a lock call can be told (`acquireLock`, `withLock` and their semaphore twins), with
/// the documented defaults: 30 s TTL, one try, 50 ms between tries, renewed while held.
#[derive(Clone, Debug, PartialEq)]
pub struct LockOptions {
    pub ttl_ms: u64,
    /// The token to hold it with; a fresh random one when `None`.
    pub token: Option<String>,
    pub wait_ms: u64,
    pub retry_delay_ms: u64,
    pub auto_extend: bool,
    pub max_hold_ms: Option<u64>,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl_ms: DEFAULT_TTL_MS,
            token: None,
            wait_ms: 0,
            retry_delay_ms: DEFAULT_RETRY_DELAY_MS,
            auto_extend: true,
            max_hold_ms: None,
        }
    }
}

impl LockOptions {
    /// The given token, or a fresh one.
    pub fn token(&self) -> String {
        self.token.clone().unwrap_or_else(new_token)
    }

    pub fn acquire(&self) -> AcquireOptions {
        AcquireOptions {
            ttl_ms: self.ttl_ms,
            wait_ms: self.wait_ms,
            retry_delay_ms: self.retry_delay_ms,
        }
    }

    pub fn hold(&self) -> HoldOptions {
        HoldOptions {
            ttl_ms: self.ttl_ms,
            auto_extend: self.auto_extend,
            max_hold_ms: self.max_hold_ms,
        }
    }
}

/// How to keep a lease.
#[derive(Clone, Debug)]
pub struct HoldOptions {
    pub ttl_ms: u64,
    pub auto_extend: bool,
    /// Stop renewing after this long (the lease then runs out at its TTL).
    pub max_hold_ms: Option<u64>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let t = Target::lock(b"app:", b"order:1");
        assert_eq!(t.key, b"app:lock:{order:1}");
        assert_eq!(t.fence, b"app:lock:{order:1}:fence");
        assert_eq!(t.waiting, b"app:lock:{order:1}:waiting");
        assert_eq!(t.channel(), b"app:lock:{order:1}:free");
        let s = Target::semaphore(b"", b"jobs", 3);
        assert_eq!(s.key, b"sem:{jobs}");
        assert_eq!(s.kind, Kind::Semaphore { limit: 3 });
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = LockOptions::default();
        assert_eq!((o.ttl_ms, o.wait_ms, o.retry_delay_ms), (30_000, 0, 50));
        assert!(o.auto_extend && o.max_hold_ms.is_none());
        assert_ne!(o.token(), o.token(), "a fresh token each time");
        let given = LockOptions {
            token: Some("mine".into()),
            ..o
        };
        assert_eq!(given.token(), "mine");
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
