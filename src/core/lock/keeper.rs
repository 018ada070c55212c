//! The leases held on the fast path, renewed from the runtime: one task per service renews
//! every lease whose renewal is due, independently of the JS event loop. A lease is handed over
//! and taken back without a round trip or a thread wake-up of its own: the task is woken only
//! when a new lease needs it earlier than it planned to wake anyway (the first lease after an
//! idle spell), and it ends once it keeps nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Notify;

use super::clock::{LeaseClock, Tick, TAKEN};
use super::{extend, Acquired, HoldOptions, Target};
use crate::core::{Client, Error};

/// Called once when a kept lease is lost.
pub type OnLost = Box<dyn FnOnce(Error) + Send>;

struct Kept {
    target: Target,
    token: String,
    ttl_ms: u64,
    clock: LeaseClock,
    /// A renewal is on its way.
    renewing: bool,
    /// Why it was lost (the holder learns at `end`).
    lost: Option<String>,
    on_lost: Option<OnLost>,
}

#[derive(Default)]
struct State {
    leases: HashMap<u64, Kept>,
    next_id: u64,
    /// Whether the renewal task runs.
    running: bool,
    /// When the task plans to wake next (`None`: it is working, or waits for a lease).
    wake_at: Option<Instant>,
}

/// One service's fast-path leases.
#[derive(Default)]
pub struct Keeper {
    state: Mutex<State>,
    wake: Notify,
}

impl Keeper {
    /// Keeps `a` (on `t`) renewed as `o` says until the returned handle ends (or drops);
    /// `on_lost` hears once if it is lost first.
    ///
    /// # Errors
    /// `Connection` when the runtime cannot start (nothing is kept).
    pub fn keep(
        self: &Arc<Self>,
        client: &Arc<Client>,
        t: &Target,
        a: &Acquired,
        o: &HoldOptions,
        on_lost: OnLost,
    ) -> Result<KeptLease, Error> {
        let clock = LeaseClock::new(a.sent_at, o);
        let first = match clock.tick(a.sent_at) {
            Tick::Wait(at) => Some(at),
            _ => None,
        };
        let mut s = self.state.lock().map_err(poisoned)?;
        s.next_id += 1;
        let id = s.next_id;
        s.leases.insert(
            id,
            Kept {
                target: t.clone(),
                token: a.token.clone(),
                ttl_ms: o.ttl_ms,
                clock,
                renewing: false,
                lost: None,
                on_lost: Some(on_lost),
            },
        );
        if !s.running {
            let rt = match crate::core::connection::runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    s.leases.remove(&id);
                    return Err(e);
                }
            };
            s.running = true;
            s.wake_at = None;
            rt.spawn(renew(Arc::clone(self), Arc::clone(client)));
        } else if first.is_none() || s.wake_at.is_none_or(|w| first < Some(w)) {
            // The task would not look at this lease in time (it waits for something later, or
            // for nothing): wake it. A spare wake-up only costs it one look.
            self.wake.notify_one();
        }
        Ok(KeptLease {
            keeper: Arc::clone(self),
            id,
            ended: false,
        })
    }

    fn end(&self, id: u64) -> Option<String> {
        let mut s = self.state.lock().ok()?;
        let lost = s.leases.remove(&id).and_then(|k| k.lost);
        if s.leases.is_empty() && s.running && s.wake_at.is_none() {
            // The task waits for nothing (its last leases were lost): let it end now. Otherwise
            // it ends when it next wakes, without a wake-up per lease.
            self.wake.notify_one();
        }
        lost
    }

    /// How many leases are kept (for tests).
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.leases.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A lease the keeper renews, until [`KeptLease::end`] (or its drop) takes it back.
pub struct KeptLease {
    keeper: Arc<Keeper>,
    id: u64,
    ended: bool,
}

impl KeptLease {
    /// Stops renewing: why the lease was lost, if it was (`None`: still held, as far as the
    /// keeper knows).
    pub fn end(mut self) -> Option<String> {
        self.ended = true;
        self.keeper.end(self.id)
    }
}

impl Drop for KeptLease {
    fn drop(&mut self) {
        if !self.ended {
            self.keeper.end(self.id);
        }
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Connection("internal state lock poisoned".into())
}

/// A renewal on its way: the lease, when it was sent, and what came back in time.
type Renewal = (
    u64,
    Instant,
    Result<Result<bool, Error>, tokio::time::error::Elapsed>,
);

/// The renewal task: wakes when a renewal is due, a lease runs out, a renewal answers, or a new
/// lease needs it sooner; ends when it keeps nothing.
async fn renew(keeper: Arc<Keeper>, client: Arc<Client>) {
    let mut inflight = FuturesUnordered::new();
    loop {
        let now = Instant::now();
        let mut lost: Vec<(OnLost, Error)> = Vec::new();
        let mut due = Vec::new();
        let wake = {
            let Ok(mut s) = keeper.state.lock() else {
                return;
            };
            if s.leases.is_empty() && inflight.is_empty() {
                s.running = false;
                return;
            }
            let mut wake: Option<Instant> = None;
            for (id, k) in s.leases.iter_mut() {
                if k.renewing || k.lost.is_some() {
                    continue;
                }
                match k.clock.tick(now) {
                    Tick::Wait(at) => wake = Some(wake.map_or(at, |w| w.min(at))),
                    Tick::Renew(budget) => {
                        k.renewing = true;
                        due.push((*id, k.target.clone(), k.token.clone(), k.ttl_ms, budget));
                    }
                    Tick::Lost(why) => {
                        if let Some(f) = k.on_lost.take() {
                            lost.push((f, k.target.lost(&why)));
                        }
                        k.lost = Some(why);
                    }
                }
            }
            s.wake_at = wake;
            wake
        };
        // Outside the lock: the callbacks post to the JS thread.
        for (f, e) in lost {
            f(e);
        }
        for (id, t, token, ttl_ms, budget) in due {
            let client = Arc::clone(&client);
            inflight.push(async move {
                let sent = Instant::now();
                let r = tokio::time::timeout(budget, extend(&client, &t, &token, ttl_ms)).await;
                (id, sent, r)
            });
        }
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = keeper.wake.notified() => {}
            _ = sleep => {}
            Some(done) = inflight.next(), if !inflight.is_empty() => renewed(&keeper, done),
        }
    }
}

/// Applies a renewal's answer to its lease (if it is still kept).
fn renewed(keeper: &Keeper, (id, sent, r): Renewal) {
    let mut lost = None;
    if let Ok(mut s) = keeper.state.lock() {
        if let Some(k) = s.leases.get_mut(&id) {
            k.renewing = false;
            match r {
                Ok(Ok(true)) => k.clock.renewed(sent),
                Ok(Ok(false)) => {
                    lost = k.on_lost.take().map(|f| (f, k.target.lost(TAKEN)));
                    k.lost = Some(TAKEN.to_string());
                }
                Ok(Err(_)) | Err(_) => k.clock.renew_failed(Instant::now()),
            }
        }
    }
    if let Some((f, e)) = lost {
        f(e);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::core::connection::runtime;
    use crate::core::test_server::TestServer;

    fn exists(client: &Arc<Client>, key: &[u8]) -> bool {
        let mut c = redis::cmd("EXISTS");
        c.arg(key);
        let h = client.handle().unwrap();
        runtime().unwrap().block_on(client.query(h, &c)) == Ok(redis::Value::Int(1))
    }

    fn renewed_every_50_ms() -> HoldOptions {
        HoldOptions {
            ttl_ms: 150,
            auto_extend: true,
            max_hold_ms: None,
        }
    }

    /// Takes `t` with a token, as the fast path's acquisition does.
    fn take(client: &Arc<Client>, t: &Target, ttl_ms: u64) -> Acquired {
        let rt = runtime().unwrap();
        rt.block_on(super::super::try_acquire(client, t, "tok", ttl_ms))
            .unwrap()
            .expect("acquired")
    }

    #[test]
    fn kept_leases_outlive_their_ttl_until_ended_and_the_task_ends_with_the_last() {
        let server = TestServer::start();
        let client = server.client(|_| {});
        let keeper = Arc::new(Keeper::default());
        let o = renewed_every_50_ms();
        let lost = Arc::new(AtomicUsize::new(0));
        let mut held = Vec::new();
        for k in ["a", "b", "c"] {
            let t = Target::lock(b"", k.as_bytes());
            let a = take(&client, &t, o.ttl_ms);
            let l = Arc::clone(&lost);
            let on_lost: OnLost = Box::new(move |_| {
                l.fetch_add(1, Ordering::SeqCst);
            });
            let kept = keeper.keep(&client, &t, &a, &o, on_lost).unwrap();
            held.push((t, kept));
        }
        std::thread::sleep(Duration::from_millis(400));
        for (t, _) in &held {
            assert!(exists(&client, t.redis_key()), "renewed past two TTLs");
        }
        assert_eq!(lost.load(Ordering::SeqCst), 0);
        assert_eq!(keeper.len(), 3);
        let (_, first) = held.remove(0);
        assert_eq!(first.end(), None, "still held when ended");
        drop(held);
        assert!(keeper.is_empty(), "a dropped handle ends its lease");
        std::thread::sleep(Duration::from_millis(400));
        assert!(
            !keeper.state.lock().unwrap().running,
            "the task ends with its last lease"
        );
    }

    #[test]
    fn a_lease_taken_by_someone_else_is_reported_lost_once() {
        let server = TestServer::start();
        let client = server.client(|_| {});
        let keeper = Arc::new(Keeper::default());
        let o = renewed_every_50_ms();
        let t = Target::lock(b"", b"k");
        let a = take(&client, &t, o.ttl_ms);
        let lost = Arc::new(AtomicUsize::new(0));
        let l = Arc::clone(&lost);
        let lease = keeper
            .keep(
                &client,
                &t,
                &a,
                &o,
                Box::new(move |e| {
                    assert_eq!(e.code(), "ERR_LOCK_LOST");
                    l.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .unwrap();
        let mut steal = redis::cmd("SET");
        steal.arg(t.redis_key()).arg("other");
        let rt = runtime().unwrap();
        rt.block_on(client.query(client.handle().unwrap(), &steal))
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(lost.load(Ordering::SeqCst), 1);
        assert!(lease
            .end()
            .is_some_and(|why| why.contains("another holder")));
        // Its only lease lost and ended, the task has nothing to wait for: it ends.
        std::thread::sleep(Duration::from_millis(100));
        assert!(!keeper.state.lock().unwrap().running);
    }
}
