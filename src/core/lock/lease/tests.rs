//! The lease's tests: the pure parts, and against a real redis-server (`TestServer`).
use std::sync::Mutex;

use super::*;
use crate::core::config::Settings;
use crate::core::connection::runtime;
use crate::core::connection::testing::Quiet;
use crate::core::lock::Notices;
use crate::core::policy::Feature;
use crate::core::test_server::TestServer;
use crate::core::Config;

#[test]
fn jitter_stays_within_half_and_one_and_a_half() {
    for _ in 0..200 {
        let d = jitter(100).as_millis();
        assert!((50..=150).contains(&d), "{d}");
    }
    assert!(jitter(0).as_millis() >= 1);
}

/// What `guard` told the caller's side, in order.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);
impl LeaseHooks for Seen {
    fn start(&self, lease: Option<Acquired>) -> oneshot::Receiver<()> {
        let what = if lease.is_some() {
            "leased"
        } else {
            "degraded"
        };
        self.0.lock().unwrap().push(format!("start {what}"));
        oneshot::channel().1
    }
    fn lost(&self, e: Error) {
        self.0.lock().unwrap().push(format!("lost {}", e.code()));
    }
    fn finish(&self, end: HoldEnd) {
        self.0.lock().unwrap().push(format!("finish {end:?}"));
    }
    fn fail(&self, e: Error) {
        self.0.lock().unwrap().push(format!("fail {}", e.code()));
    }
}

/// Runs `guard` on a service that was never connected (Redis unreachable) or is disabled.
fn guarded(enabled: bool, lock_fail_open: bool) -> Vec<String> {
    let cfg = Config::resolve(Settings {
        enabled: Some(enabled),
        lock_fail_open: Some(lock_fail_open),
        ..Settings::default()
    })
    .unwrap();
    let policy = Policy::of(&cfg, Feature::Locks);
    let client = Client::new(cfg, Arc::new(Quiet)).unwrap();
    let seen = Seen::default();
    let t = Target::lock(b"", b"k");
    runtime().unwrap().block_on(guard(
        &client,
        &t,
        &LockOptions::default(),
        policy,
        None,
        &seen,
    ));
    seen.0.into_inner().unwrap()
}

#[test]
fn without_redis_the_callback_runs_only_with_lock_fail_open() {
    // Unreachable: rejects with the transport error, or runs unguarded (lockFailOpen).
    assert_eq!(guarded(true, false), ["fail ERR_CONNECTION"]);
    assert_eq!(guarded(true, true), ["start degraded"]);
    // Disabled: ERR_DISABLED, or runs unguarded (lockFailOpen).
    assert_eq!(guarded(false, false), ["fail ERR_DISABLED"]);
    assert_eq!(guarded(false, true), ["start degraded"]);
}

/// Hooks that record events and let the test decide when the callback settles.
struct Held {
    seen: Mutex<Vec<String>>,
    settle: Mutex<Option<oneshot::Sender<()>>>,
    started: tokio::sync::Notify,
}

impl Held {
    fn new() -> Arc<Held> {
        Arc::new(Held {
            seen: Mutex::new(Vec::new()),
            settle: Mutex::new(None),
            started: tokio::sync::Notify::new(),
        })
    }
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
    fn settle(&self) {
        self.settle.lock().unwrap().take().map(|tx| tx.send(()));
    }
}

impl LeaseHooks for Arc<Held> {
    fn start(&self, lease: Option<Acquired>) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let fence = lease.as_ref().and_then(|a| a.fencing_token);
        self.seen
            .lock()
            .unwrap()
            .push(format!("start fence={fence:?}"));
        *self.settle.lock().unwrap() = Some(tx);
        self.started.notify_one();
        rx
    }
    fn lost(&self, e: Error) {
        self.seen.lock().unwrap().push(format!("lost {}", e.code()));
    }
    fn finish(&self, end: HoldEnd) {
        self.seen.lock().unwrap().push(format!("finish {end:?}"));
    }
    fn fail(&self, e: Error) {
        self.seen.lock().unwrap().push(format!("fail {}", e.code()));
    }
}

/// Runs `guard` on the runtime and waits until the callback would start.
fn started(
    client: &Arc<Client>,
    t: &Target,
    o: LockOptions,
) -> (Arc<Held>, tokio::task::JoinHandle<()>) {
    let policy = Policy::of(&client.cfg, Feature::Locks);
    let held = Held::new();
    let task = {
        let (client, t, held) = (Arc::clone(client), t.clone(), Arc::clone(&held));
        runtime()
            .unwrap()
            .spawn(async move { guard(&client, &t, &o, policy, None, &held).await })
    };
    runtime().unwrap().block_on(held.started.notified());
    (held, task)
}

/// Waits until `held` has seen `n` events.
fn wait_for(held: &Held, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.seen().len() < n {
        assert!(Instant::now() < deadline, "{:?}", held.seen());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn exists(client: &Arc<Client>, key: &[u8]) -> bool {
    let mut c = redis::cmd("EXISTS");
    c.arg(key);
    let h = client.handle().unwrap();
    runtime().unwrap().block_on(client.query(h, &c)) == Ok(Value::Int(1))
}

#[test]
fn a_guarded_call_holds_the_lock_until_its_callback_settles_then_releases_it() {
    let server = TestServer::start();
    let client = server.client(|_| {});
    let rt = runtime().unwrap();
    let t = Target::lock(b"", b"job");
    let o = LockOptions::default();
    let (held, task) = started(&client, &t, o);
    assert!(
        exists(&client, t.redis_key()),
        "held while the callback runs"
    );
    // A second guarded call on the same key is refused while the first holds it.
    let other = Held::new();
    rt.block_on(guard(
        &client,
        &t,
        &LockOptions::default(),
        Policy::of(&client.cfg, Feature::Locks),
        None,
        &other,
    ));
    assert_eq!(other.seen(), ["fail ERR_LOCK_NOT_ACQUIRED"]);
    held.settle();
    rt.block_on(task).unwrap();
    assert_eq!(
        held.seen(),
        ["start fence=Some(1)", "finish Released(true)"]
    );
    assert!(
        !exists(&client, t.redis_key()),
        "released after the callback settled"
    );
}

#[test]
fn a_lease_taken_away_is_reported_lost_while_the_callback_runs() {
    let server = TestServer::start();
    let client = server.client(|_| {});
    let rt = runtime().unwrap();
    let t = Target::lock(b"", b"job");
    let o = LockOptions {
        ttl_ms: 300,
        ..LockOptions::default()
    };
    let (held, task) = started(&client, &t, o);
    // Someone else takes the key: the next renewal (about 100 ms in) finds it gone.
    let mut steal = redis::cmd("SET");
    steal.arg(t.redis_key()).arg("someone-else");
    rt.block_on(client.query(client.handle().unwrap(), &steal))
        .unwrap();
    wait_for(&held, 2);
    assert_eq!(held.seen()[1], "lost ERR_LOCK_LOST");
    held.settle();
    rt.block_on(task).unwrap();
    assert!(
        held.seen()[2].starts_with("finish Lost("),
        "{:?}",
        held.seen()
    );
    assert!(
        exists(&client, t.redis_key()),
        "the new holder's key is left alone"
    );
}

#[test]
fn renewal_keeps_a_lease_past_its_ttl_and_stops_at_max_hold() {
    let server = TestServer::start();
    let client = server.client(|_| {});
    let rt = runtime().unwrap();
    let t = Target::lock(b"", b"long");
    let o = LockOptions {
        ttl_ms: 200,
        max_hold_ms: Some(700),
        ..LockOptions::default()
    };
    let (held, task) = started(&client, &t, o);
    std::thread::sleep(Duration::from_millis(450));
    assert!(exists(&client, t.redis_key()), "renewed past two TTLs");
    assert_eq!(held.seen().len(), 1, "{:?}", held.seen());
    wait_for(&held, 2);
    assert_eq!(held.seen()[1], "lost ERR_LOCK_LOST");
    held.settle();
    rt.block_on(task).unwrap();
}

/// The waiter's outcome and when it came.
type Waited = tokio::task::JoinHandle<(Result<Option<Acquired>, Error>, Instant)>;

/// `holder` takes `t` as "first"; `waiter` (another client, listening for notices) then
/// waits for it as "second", retrying only 1 to 3 s apart (so only a notice hands it over
/// sooner). Resolves the waiter's outcome and when it came.
fn held_and_waited_for(
    rt: &tokio::runtime::Runtime,
    holder: &Arc<Client>,
    waiter: &Arc<Client>,
    t: &Target,
) -> (Acquired, Waited) {
    let a = rt
        .block_on(try_acquire(holder, t, "first", 10_000))
        .unwrap()
        .expect("acquired");
    let o = AcquireOptions {
        ttl_ms: 10_000,
        wait_ms: 5_000,
        retry_delay_ms: 2_000,
    };
    let (waiter, t) = (Arc::clone(waiter), t.clone());
    let task = rt.spawn(async move {
        let notices = Arc::new(Notices::default());
        let r = acquire(&waiter, &t, "second", &o, Some(&notices)).await;
        (r, Instant::now())
    });
    // The waiter is listening and marked as waiting by then.
    std::thread::sleep(Duration::from_millis(300));
    (a, task)
}

#[test]
fn a_release_by_another_process_wakes_a_waiter_at_once() {
    let server = TestServer::start();
    let (holder, waiter) = (server.client(|_| {}), server.client(|_| {}));
    let rt = runtime().unwrap();
    let t = Target::lock(b"", b"handed");
    let (a, task) = held_and_waited_for(rt, &holder, &waiter, &t);
    let released_at = Instant::now();
    assert_eq!(rt.block_on(release(&holder, &t, &a.token)), Ok(true));
    let (r, acquired_at) = rt.block_on(task).unwrap();
    assert_eq!(r.unwrap().map(|a| a.token), Some("second".to_string()));
    let handover = acquired_at - released_at;
    assert!(handover < Duration::from_millis(500), "{handover:?}");
}

/// The hand-over policy: a holder that releases while a client of another process waits
/// cannot take the lock straight back (the waiter, woken by the notice, gets its turn);
/// with nobody waiting nothing is reserved.
#[test]
fn a_releaser_cannot_take_back_a_lock_another_process_waits_for() {
    let server = TestServer::start();
    let (holder, waiter) = (server.client(|_| {}), server.client(|_| {}));
    let rt = runtime().unwrap();
    for t in [
        Target::lock(b"", b"fair"),
        Target::semaphore(b"", b"fair", 1),
    ] {
        let (a, task) = held_and_waited_for(rt, &holder, &waiter, &t);
        // Released and asked for again at once, before the notice can have been acted on.
        let (released, again) = rt.block_on(async {
            let r = release(&holder, &t, &a.token).await;
            (r, try_acquire(&holder, &t, "third", 10_000).await)
        });
        assert_eq!(released, Ok(true));
        assert_eq!(again.map(|a| a.is_none()), Ok(true), "{:?}", t.kind);
        let got = rt
            .block_on(task)
            .unwrap()
            .0
            .unwrap()
            .expect("the waiter's turn");
        assert_eq!(got.token, "second");
        assert_eq!(rt.block_on(release(&waiter, &t, "second")), Ok(true));
        // Nobody waits now: the releaser takes it back at once.
        let b = rt
            .block_on(try_acquire(&waiter, &t, "fourth", 10_000))
            .unwrap();
        assert!(b.is_some(), "{:?}", t.kind);
        assert_eq!(rt.block_on(release(&waiter, &t, "fourth")), Ok(true));
    }
}
