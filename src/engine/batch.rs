//! Per-tick batching on the JS thread: calls made in one synchronous stretch of JS are collected
//! and handed on together when the microtask queue next runs, so 256 calls in a loop become one
//! pipeline rather than 256 writes. A long burst goes out in chunks as it grows (8 calls, then
//! 16, 32, and 64 at most), so the server works on its first calls while JS still makes the
//! rest: with the server on another core, the two then overlap instead of taking turns (256
//! GETs in flight: 0.85 -> 1.4 million per second on this 2-core machine, at the same CPU per
//! call; 64 `withLock` callers 76,000 -> 113,000 cycles per second). Only on the one JS-thread
//! connection of a standalone or Sentinel service, where every chunk keeps its place in line.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use napi::sys;

use crate::core::dispatch::Dispatcher;
use crate::core::policy::{Decision, Feature};
use crate::core::work::{Job, Settled, Work};
use crate::core::{Client, Error};
use crate::engine::completer::{PlainHooks, Shared};
use crate::engine::driver::{Driver, DriverRef, LaneEvents};
use crate::engine::js_thread::{Deferred, JsEnv, JsThread};
use crate::engine::lanes::Lanes;
use crate::engine::per_env;
use crate::engine::tag::Tag;
pub(crate) use crate::engine::tag::{Convert, Policy, Shape};

struct Batch {
    jobs: Mutex<Vec<Job<Tag>>>,
    scheduled: AtomicBool,
    /// The last flushed tick queued at most one call (see [`Batcher::push`]).
    lone: AtomicBool,
    dispatcher: Mutex<Option<Dispatcher<Tag>>>,
    /// The JS-thread connection, when available (else the dispatcher is used).
    driver: Option<DriverRef>,
    shared: Arc<Shared>,
    /// Jobs queued or sent and not yet settled.
    outstanding: Arc<AtomicUsize>,
    /// Cluster mode on plain TCP: the JS-thread connections to the masters.
    lanes: Option<Arc<JsThread<Lanes>>>,
    /// Cluster mode: jobs waiting for their turn, in call order (see [`Batch::pump`]).
    held: Mutex<VecDeque<Job<Tag>>>,
    /// Cluster mode: jobs sent through the dispatcher and not yet answered.
    slow_out: Arc<AtomicUsize>,
    /// [`Batch::pump`] is running (it may be re-entered from a settlement).
    pumping: AtomicBool,
    repump: AtomicBool,
    /// How many queued jobs go out before the tick ends (see [`Batcher::push`]).
    chunk: AtomicUsize,
    /// The service's counters (`stats()`).
    stats: Arc<crate::core::stats::Stats>,
    /// When this tick's first call was made (`core::stats::now_us`; 0 before it): the birth
    /// time of every call of the tick (one clock read per tick).
    tick_born: AtomicU32,
}

/// The first chunk of a tick's burst that goes out before the tick ends; each next one is twice
/// as large, up to [`LARGEST_CHUNK`] (measured: 8 then doubling to 64 beat fixed chunks of 8 to
/// 64 and a cap of 128 on GETs, lock cycles and rate limits in flight).
const FIRST_CHUNK: usize = 8;
const LARGEST_CHUNK: usize = 64;

/// Where the next run of held jobs goes.
enum Run {
    /// Per lane (in call order within each).
    Lanes(Vec<(usize, DriverRef, Vec<Job<Tag>>)>),
    Dispatcher(Vec<Job<Tag>>),
    /// The other path still has jobs out.
    Wait,
}

impl Batch {
    /// The end of a tick: sends what is queued.
    fn flush(&self) {
        self.scheduled.store(false, Ordering::Release);
        self.tick_born.store(0, Ordering::Relaxed);
        let Some(jobs) = self.take() else { return };
        // A chunk went out early in this tick: it was a burst, not a lone call.
        let early = self.chunk.swap(FIRST_CHUNK, Ordering::Relaxed) != FIRST_CHUNK;
        self.lone
            .store(jobs.len() <= 1 && !early, Ordering::Relaxed);
        if !jobs.is_empty() {
            self.send(jobs);
        }
    }

    /// Within a tick: sends the full chunk queued so far; the next one may be twice as large.
    fn flush_chunk(&self) {
        let Some(jobs) = self.take() else { return };
        let c = self.chunk.load(Ordering::Relaxed);
        self.chunk
            .store((c * 2).min(LARGEST_CHUNK), Ordering::Relaxed);
        self.send(jobs);
    }

    fn take(&self) -> Option<Vec<Job<Tag>>> {
        match self.jobs.lock() {
            // The next tick likely queues as many: no regrowing the queue call by call.
            Ok(mut j) => {
                let cap = j.len();
                Some(std::mem::replace(&mut *j, Vec::with_capacity(cap)))
            }
            Err(_) => None,
        }
    }

    fn send(&self, jobs: Vec<Job<Tag>>) {
        // Counted once per batch (a retry or a redirect is not a new command).
        self.stats
            .commands
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        if self.lanes.is_some() {
            if let Ok(mut h) = self.held.lock() {
                h.extend(jobs);
            }
            self.pump();
            return;
        }
        if let Some(d) = &self.driver {
            d.send(jobs);
            return;
        }
        self.dispatch(jobs);
    }

    /// Cluster mode: sends held jobs in call order. A run of jobs that each fit one lane (a
    /// single command whose keys share a slot whose master's lane is connected) goes out on the
    /// lanes, and a run of the others through the dispatcher (the crate's cluster routing); a
    /// run waits while the other path still has jobs out, so no call overtakes an earlier one.
    /// JS thread only.
    fn pump(&self) {
        let Some(lanes) = &self.lanes else { return };
        if self.pumping.swap(true, Ordering::AcqRel) {
            self.repump.store(true, Ordering::Release);
            return;
        }
        loop {
            self.repump.store(false, Ordering::Release);
            match self.next_run(lanes) {
                Run::Lanes(groups) => {
                    for (_, driver, jobs) in groups {
                        driver.send(jobs);
                    }
                }
                Run::Dispatcher(jobs) => self.dispatch(jobs),
                Run::Wait => {
                    if !self.repump.load(Ordering::Acquire) {
                        break;
                    }
                }
            }
        }
        self.pumping.store(false, Ordering::Release);
    }

    fn next_run(&self, lanes: &Arc<JsThread<Lanes>>) -> Run {
        let Ok(mut held) = self.held.lock() else {
            return Run::Wait;
        };
        // Each job is routed once: `route` is the front job's lane, if it has one.
        let Some(mut route) = held.front().map(|f| lanes.route(&f.work)) else {
            return Run::Wait;
        };
        if route.is_some() {
            if self.slow_out.load(Ordering::Acquire) > 0 {
                return Run::Wait;
            }
            let mut groups: Vec<(usize, DriverRef, Vec<Job<Tag>>)> = Vec::new();
            while let Some((i, driver)) = route {
                let Some(mut job) = held.pop_front() else {
                    break;
                };
                job.tag.redirect = Some(Box::new(job.work.clone()));
                match groups.iter_mut().find(|g| g.0 == i) {
                    Some(g) => g.2.push(job),
                    None => groups.push((i, driver, vec![job])),
                }
                route = held.front().and_then(|f| lanes.route(&f.work));
            }
            return Run::Lanes(groups);
        }
        if lanes.busy() {
            return Run::Wait;
        }
        let mut run = Vec::new();
        while let Some(job) = held.pop_front() {
            run.push(job);
            if held.front().is_some_and(|f| lanes.route(&f.work).is_some()) {
                break;
            }
        }
        Run::Dispatcher(run)
    }

    /// Sends through the runtime-thread dispatcher.
    fn dispatch(&self, jobs: Vec<Job<Tag>>) {
        if jobs.is_empty() {
            return;
        }
        if self.lanes.is_some() {
            self.slow_out.fetch_add(jobs.len(), Ordering::AcqRel);
        }
        let refused = match self.dispatcher.lock() {
            Ok(d) => match d.as_ref() {
                Some(d) => d.send(jobs).err(),
                None => Some(jobs),
            },
            Err(_) => Some(jobs),
        };
        if let Some(jobs) = refused {
            if self.lanes.is_some() {
                self.slow_out.fetch_sub(jobs.len(), Ordering::AcqRel);
            }
            self.outstanding.fetch_sub(jobs.len(), Ordering::AcqRel);
            let e = Error::Connection("the service was closed".into());
            self.shared
                .settle_many(jobs.into_iter().map(|j| (j.tag.deferred, Err(e.clone()))));
        }
    }
}

/// The JS-thread side of batching for one service (shared with its pipelines).
pub(crate) struct Batcher {
    batch: Arc<Batch>,
    client: Arc<Client>,
    env: sys::napi_env,
    flush_fn: std::cell::Cell<sys::napi_ref>,
    /// Set when the environment is torn down: no Node-API call from then on.
    gone: per_env::Gone,
}

impl Batcher {
    /// Starts the service's dispatcher.
    ///
    /// # Errors
    /// `Connection` if the runtime could not start.
    pub fn new(env: JsEnv, client: &Arc<Client>, shared: &Arc<Shared>) -> Result<Self, Error> {
        let outstanding = Arc::new(AtomicUsize::new(0));
        let driver = Driver::new(env, client, shared, &outstanding, None);
        if let Some(d) = &driver {
            let hooks: Arc<dyn PlainHooks> = Arc::clone(d) as Arc<dyn PlainHooks>;
            shared.set_plain_hooks(Arc::downgrade(&hooks));
        }
        let slow_out = Arc::new(AtomicUsize::new(0));
        let batch = Arc::new_cyclic(|me: &Weak<Batch>| {
            let events: Weak<dyn LaneEvents> = me.clone();
            Batch {
                jobs: Mutex::new(Vec::new()),
                scheduled: AtomicBool::new(false),
                lone: AtomicBool::new(true),
                dispatcher: Mutex::new(None),
                lanes: Lanes::new(env, client, shared, &outstanding, events),
                driver,
                shared: Arc::clone(shared),
                outstanding: Arc::clone(&outstanding),
                held: Mutex::new(VecDeque::new()),
                slow_out: Arc::clone(&slow_out),
                pumping: AtomicBool::new(false),
                repump: AtomicBool::new(false),
                chunk: AtomicUsize::new(FIRST_CHUNK),
                tick_born: AtomicU32::new(0),
                stats: Arc::clone(&client.stats),
            }
        });
        if client.is_cluster() && client.near.is_some() && batch.lanes.is_none() {
            // The cache's reads must come back on connections that track their keys (the lanes);
            // the crate's cluster connection does not hand us its invalidations in order.
            return Err(Error::arg(
                "clientCache in cluster mode needs Node.js's event loop (the JS-thread \
                 connections to the masters); on Bun, Deno or with APP_REDIS_NO_UV=1 it works \
                 with a standalone server or Sentinel only",
            ));
        }
        let settle_to = Arc::clone(shared);
        let settled_count = Arc::clone(&outstanding);
        let weak = Arc::downgrade(client);
        let cluster = batch.lanes.is_some();
        let me = Arc::downgrade(&batch);
        let dispatcher = Dispatcher::start(client, move |settled: Settled<Tag>| {
            let n = settled.len();
            let Some(client) = weak.upgrade() else {
                return;
            };
            // Counted before the settlements reach JS: a caller that reads `stats()` once its
            // promise resolved sees its call.
            let outs: Vec<_> = {
                let mut tally =
                    crate::core::stats::Tally::new(&client.stats, crate::core::stats::now_us());
                settled
                    .into_iter()
                    .map(|(t, r)| t.out(r, &client, &mut tally))
                    .collect()
            };
            settle_to.settle_many(outs);
            settled_count.fetch_sub(n, Ordering::AcqRel);
            if cluster && slow_out.fetch_sub(n, Ordering::AcqRel) == n {
                // The crate's path is idle: lane jobs held behind it may go. (The batch is
                // only upgraded, and so perhaps dropped, on the JS thread.)
                let me = me.clone();
                settle_to.run_on_js(Box::new(move |_| {
                    if let Some(b) = me.upgrade() {
                        b.pump();
                    }
                }));
            }
        })?;
        if let Ok(mut d) = batch.dispatcher.lock() {
            *d = Some(dispatcher);
        }
        Ok(Batcher {
            batch,
            client: Arc::clone(client),
            env: env.raw(),
            flush_fn: std::cell::Cell::new(ptr::null_mut()),
            gone: per_env::gone(env),
        })
    }

    /// Calls sent (or queued) and not yet settled.
    pub fn in_flight(&self) -> usize {
        self.batch.outstanding.load(Ordering::Relaxed)
    }

    /// Cluster mode: the connections to the masters, to close after `disconnect()` (on the JS
    /// thread: `Lanes::reset`; the next command after a new `connect()` opens them again).
    pub fn lanes(&self) -> Option<Weak<JsThread<Lanes>>> {
        self.batch.lanes.as_ref().map(Arc::downgrade)
    }

    /// Queues `work` whose outcome settles `d`. While the connection is down it settles at once:
    /// `ERR_CONNECTION`, or the degraded value with `failOpen` (and always when disabled).
    pub fn submit(&self, env: JsEnv, d: Deferred, work: Work, shape: Shape) {
        let policy = Policy::of(&self.client.cfg, Feature::Commands);
        self.submit_with(env, d, work, shape, policy, None)
    }

    /// Whether scripts go out as `EVALSHA` (the JS-thread connection resends them as `EVAL` on
    /// `NOSCRIPT`); the runtime-thread fallback sends them as `EVAL` directly.
    pub fn scripts_by_hash(&self) -> bool {
        self.batch.driver.is_some()
    }

    /// [`Batcher::submit`] with a feature's own degradation `policy`; `retry` is the `EVAL` form
    /// of an `EVALSHA` job.
    pub fn submit_with(
        &self,
        env: JsEnv,
        d: Deferred,
        work: Work,
        shape: Shape,
        policy: Policy,
        retry: Option<redis::Cmd>,
    ) {
        let shared = &self.batch.shared;
        let stats = &self.client.stats;
        // Disabled or down: settled now, so no queue grows behind an outage.
        if let Some(decision) = policy.before(&self.client) {
            stats.commands.fetch_add(1, Ordering::Relaxed);
            use crate::core::stats::Ending;
            let r = match decision {
                Decision::Degrade => {
                    stats.settled(0, 0, Ending::Degraded);
                    Ok(shape.degraded())
                }
                Decision::Fail(e) => {
                    stats.settled(0, 0, Ending::Failed(&e));
                    shape.failed(e)
                }
            };
            shared.settle_now(env, d, r);
            return;
        }
        let born = match self.batch.tick_born.load(Ordering::Relaxed) {
            0 => {
                let now = crate::core::stats::now_us();
                self.batch.tick_born.store(now, Ordering::Relaxed);
                now
            }
            t => t,
        };
        shared.begin(env);
        self.push(
            env,
            Job {
                work,
                tag: Tag {
                    deferred: d,
                    shape,
                    policy,
                    retry: retry.map(Box::new),
                    redirect: None,
                    born,
                },
            },
        );
    }

    /// Sends what is queued now, then waits (up to `limit`) until every job has settled.
    pub fn drain_future(
        &self,
        limit: Duration,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.batch.flush();
        let outstanding = Arc::clone(&self.batch.outstanding);
        async move {
            let start = Instant::now();
            while outstanding.load(Ordering::Acquire) > 0 && start.elapsed() < limit {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// Queues a job; the first job of a tick schedules the flush.
    fn push(&self, env: JsEnv, job: Job<Tag>) {
        // Nothing queued or in flight, and the last tick's calls were a lone one too: send at
        // once (no microtask round for one call awaited at a time). Calls that follow in the
        // same tick queue behind it and go out together. After a tick of many calls, the first
        // call of a tick waits for the others, so a burst is a few writes (a few server
        // wake-ups): a full chunk goes out at once, the rest when the tick ends.
        if self.batch.outstanding.fetch_add(1, Ordering::AcqRel) == 0
            && self.batch.lone.load(Ordering::Relaxed)
        {
            // No flush ends this tick for it: the next call reads the clock again.
            self.batch.tick_born.store(0, Ordering::Relaxed);
            self.batch.send(vec![job]);
            return;
        }
        let full = match self.batch.jobs.lock() {
            Ok(mut j) => {
                j.push(job);
                // Only onto the one JS-thread connection, which keeps every chunk in call order;
                // through the dispatcher (cluster routing, the runtime path) separate batches
                // may travel separate connections, so a tick stays one batch there.
                self.batch.driver.is_some() && j.len() >= self.batch.chunk.load(Ordering::Relaxed)
            }
            Err(_) => false,
        };
        if full {
            self.batch.flush_chunk();
        }
        if !self.batch.scheduled.swap(true, Ordering::AcqRel) && !self.schedule(env) {
            // No microtask queue available (should not happen): send right away.
            self.batch.flush();
        }
    }

    fn schedule(&self, env: JsEnv) -> bool {
        // SAFETY: JS thread of `env` (the `JsEnv` token proves it); statuses are checked.
        unsafe {
            let f = self.flush_function(env);
            if f.is_null() {
                return false;
            }
            // The original `queueMicrotask` (taken at load): a replaced one may never call us.
            let Some(qm) = per_env::get(env, per_env::Fn::QueueMicrotask) else {
                return false;
            };
            let mut global = ptr::null_mut();
            sys::napi_get_global(env.raw(), &mut global);
            let mut out = ptr::null_mut();
            sys::napi_call_function(env.raw(), global, qm, 1, &f, &mut out) == sys::Status::napi_ok
        }
    }

    fn flush_function(&self, env: JsEnv) -> sys::napi_value {
        // SAFETY: JS thread of `env` (the `JsEnv` token proves it). `data` is an Arc count owned by
        // the function's finalizer (`drop_batch`), released there once; statuses are checked.
        unsafe {
            let mut f = ptr::null_mut();
            let r = self.flush_fn.get();
            if !r.is_null() {
                sys::napi_get_reference_value(env.raw(), r, &mut f);
                return f;
            }
            let data = Arc::into_raw(Arc::clone(&self.batch)) as *mut c_void;
            if sys::napi_create_function(
                env.raw(),
                c"flush".as_ptr(),
                5,
                Some(flush_cb),
                data,
                &mut f,
            ) != sys::Status::napi_ok
            {
                drop(Arc::from_raw(data as *const Batch));
                return ptr::null_mut();
            }
            sys::napi_add_finalizer(
                env.raw(),
                f,
                data,
                Some(drop_batch),
                ptr::null_mut(),
                ptr::null_mut(),
            );
            let mut r = ptr::null_mut();
            sys::napi_create_reference(env.raw(), f, 1, &mut r);
            self.flush_fn.set(r);
            f
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        if self.gone.is_gone() {
            // A finalizer during environment teardown: the drivers were closed by the cleanup
            // hook, nothing can be settled, and Node frees our references itself.
            if let Ok(mut d) = self.batch.dispatcher.lock() {
                d.take();
            }
            return;
        }
        // Queued jobs still go out; afterwards the dispatcher stops once its replies are in.
        self.batch.flush();
        if let Ok(mut d) = self.batch.dispatcher.lock() {
            d.take();
        }
        if let Some(d) = &self.batch.driver {
            d.shutdown();
        }
        if let Some(l) = &self.batch.lanes {
            l.close();
        }
        let r = self.flush_fn.replace(ptr::null_mut());
        if !r.is_null() {
            // SAFETY: a `Batcher` is held by an `Rc` in its service, so this runs on the JS thread
            // of `self.env`, which is not torn down (checked above); `r` is its live reference.
            unsafe { sys::napi_delete_reference(self.env, r) };
        }
        // The last owner (the service, or a pipeline or iterator that outlived it) is gone:
        // release the completion queue once its pending promises have settled.
        self.batch.shared.on_drop();
    }
}

unsafe extern "C" fn flush_cb(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut data = ptr::null_mut();
    let mut argc = 0usize;
    // SAFETY: called by Node-API on the JS thread with this callback's `info`; `data` is
    // the Arc the function was created with, alive until its finalizer.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut data,
        );
        if !data.is_null() {
            (*(data as *const Batch)).flush();
        }
    }
    ptr::null_mut()
}

unsafe extern "C" fn drop_batch(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if !data.is_null() {
        // SAFETY: `data` is the Arc leaked in `flush_function`.
        unsafe { drop(Arc::from_raw(data as *const Batch)) };
    }
}

impl LaneEvents for Batch {
    fn redirected(&self, jobs: Vec<Job<Tag>>) {
        if let Some(l) = &self.lanes {
            l.refresh();
        }
        // Not run by the node: the crate follows the redirect (and refreshes its slot map).
        self.dispatch(jobs);
    }

    fn settled(&self) {
        self.pump();
    }

    fn lost(&self) {
        if let Some(l) = &self.lanes {
            l.refresh();
        }
    }
}
