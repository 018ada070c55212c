//! Holding a lock: acquiring (one try, or jittered retries woken early by a release of this
//! process), the lease keeper that renews a held lease, and `guard`, the sequence behind
//! `withLock`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use tokio::sync::oneshot;

use super::clock::{LeaseClock, Tick, TAKEN};
use super::notices::Notices;
use super::{
    AcquireOptions, Acquired, HoldOptions, Kind, LockOptions, Target, LOCK_EXTEND, LOCK_RELEASE,
    SEM_EXTEND,
};
use crate::core::policy::{Decision, Policy};
use crate::core::{Client, Error};

pub(super) fn jitter(base_ms: u64) -> Duration {
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
    let (script, keys) = t.acquire_script();
    let origin = client.waiters.origin();
    let v = script
        .run(client, keys, |c| t.acquire_args(c, token, ttl_ms, origin))
        .await?;
    Ok(t.acquired(&v, token, sent_at))
}

/// Acquires, retrying with jittered delays for up to `o.wait_ms`. `Ok(None)` when the wait ran
/// out. A transport error ends the wait at once (fail fast while Redis is down). While waiting,
/// a release by this process wakes the caller at once, and so does a release by another
/// process when `notices` listens for them (see `notices.rs`).
///
/// # Errors
/// As [`try_acquire`].
pub async fn acquire(
    client: &Arc<Client>,
    t: &Target,
    token: &str,
    o: &AcquireOptions,
    notices: Option<&Arc<Notices>>,
) -> Result<Option<Acquired>, Error> {
    if o.wait_ms == 0 {
        return try_acquire(client, t, token, o.ttl_ms).await;
    }
    let deadline = Instant::now() + Duration::from_millis(o.wait_ms);
    let waiting = client.waiters.enter(&t.key);
    // Marked as waited for before the next try, so no release slips between the two.
    let _listening = match notices {
        Some(n) => Some(n.listen(client, t, deadline).await),
        None => None,
    };
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
    let released = flag(
        t.release_script()
            .run(client, 3, |c| {
                t.release_args(c, token, client.waiters.origin())
            })
            .await?,
    );
    if released {
        client.waiters.wake(&t.key);
    }
    Ok(released)
}

/// Reads the reply of a release sent from the JS thread (`Target::release_cmd`): whether the
/// token still held the lock, waking a caller of this process that waits for it. `Ok(None)`
/// (no reply: Redis unreachable) is an error.
///
/// # Errors
/// The release's own error; `Connection` without a reply.
pub fn released(
    client: &Client,
    t: &Target,
    reply: Result<Option<Value>, Error>,
) -> Result<bool, Error> {
    let held = match reply? {
        Some(v) => flag(v),
        None => return Err(Error::Connection("Redis is unreachable".into())),
    };
    if held {
        client.waiters.wake(&t.key);
    }
    Ok(held)
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

/// Keeps a held lease until `done` fires (or its sender is dropped), renewing it as its
/// [`LeaseClock`] says; then releases it. `on_lost` is called once, the moment the lease is known
/// lost: renewal refused (key taken or deleted), or its TTL ran out without a confirmed renewal
/// (Redis unreachable, `maxHoldMs` reached, or no auto-extension).
pub async fn hold(
    client: &Arc<Client>,
    t: &Target,
    a: &Acquired,
    o: &HoldOptions,
    mut done: oneshot::Receiver<()>,
    on_lost: impl FnOnce(Error),
) -> HoldEnd {
    let mut clock = LeaseClock::new(a.sent_at, o);
    let lost = loop {
        match clock.tick(Instant::now()) {
            Tick::Wait(at) => tokio::select! {
                _ = &mut done => break None,
                _ = tokio::time::sleep_until(at.into()) => {}
            },
            Tick::Lost(why) => break Some(why),
            Tick::Renew(budget) => {
                let sent = Instant::now();
                match tokio::time::timeout(budget, extend(client, t, &a.token, o.ttl_ms)).await {
                    Ok(Ok(true)) => clock.renewed(sent),
                    Ok(Ok(false)) => break Some(TAKEN.to_string()),
                    Ok(Err(_)) | Err(_) => clock.renew_failed(Instant::now()),
                }
            }
        }
    };
    if let Some(why) = &lost {
        on_lost(t.lost(why));
        // Wait for the holder to finish before cleaning up (the lease is gone either way).
        let _ = done.await;
    }
    ended(lost, release(client, t, &a.token).await)
}

/// How a lease ended, from whether it was lost (and why) and what its release answered (`true`:
/// it still held the lock).
pub fn ended(lost: Option<String>, released: Result<bool, Error>) -> HoldEnd {
    match (lost, released) {
        (Some(why), _) => HoldEnd::Lost(why),
        (None, Ok(true)) => HoldEnd::Released(true),
        (None, Ok(false)) => {
            HoldEnd::Lost("it expired or was taken before the callback finished".to_string())
        }
        (None, Err(e)) => HoldEnd::Unreleased(e),
    }
}

/// The caller's side of a guarded call (`withLock`): the binding runs the user's callback on
/// the JS thread and settles the caller's promise. `guard` calls `start` then `finish`, with
/// `lost` in between when the lease is lost; or `fail` alone.
pub trait LeaseHooks: Send + Sync + 'static {
    /// Run the callback while holding `lease` (`None`: degraded, no lease and no exclusion).
    /// The returned receiver fires (or its sender is dropped) once the callback settled; with no
    /// lease nobody waits for it and the caller's side settles by itself.
    fn start(&self, lease: Option<Acquired>) -> oneshot::Receiver<()>;
    /// The lease was lost while the callback runs.
    fn lost(&self, e: Error);
    /// The lease ended after the callback settled: settle with the callback's outcome.
    fn finish(&self, end: HoldEnd);
    /// The callback never ran: reject with `e`.
    fn fail(&self, e: Error);
}

/// `withLock` / `withSemaphore`: acquire `t` (waiting up to `o.wait_ms`), run the callback
/// through `hooks` while the lease is kept (renewed as `o` says), release it on every path, and
/// hand over how it ended. While Redis is disabled or unreachable, `policy` decides: reject, or
/// run the callback without a lease (`lockFailOpen`). `notices`: see [`acquire`].
pub async fn guard<H: LeaseHooks>(
    client: &Arc<Client>,
    t: &Target,
    o: &LockOptions,
    policy: Policy,
    notices: Option<&Arc<Notices>>,
    hooks: &H,
) {
    let acquired = match policy.when_disabled(client) {
        Some(d) => Err(d),
        None => match acquire(client, t, &o.token(), &o.acquire(), notices).await {
            Ok(a) => Ok(a),
            Err(e) => Err(policy.after(client, e)),
        },
    };
    match acquired {
        Ok(Some(a)) => {
            let settled = hooks.start(Some(a.clone()));
            let end = hold(client, t, &a, &o.hold(), settled, |e| hooks.lost(e)).await;
            hooks.finish(end);
        }
        Ok(None) => hooks.fail(t.not_acquired(o.wait_ms)),
        Err(Decision::Degrade) => {
            hooks.start(None);
        }
        Err(Decision::Fail(e)) => hooks.fail(e),
    }
}

#[cfg(test)]
mod tests;
