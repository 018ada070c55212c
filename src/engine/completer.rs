//! Promise delivery: one threadsafe function per service, and batched completions.
//!
//! napi's `async fn` creates a threadsafe function (and a libuv handle) for every call. Here each
//! call creates only a raw promise; finished futures push `(deferred, result)` into a queue and
//! wake the JS thread once for however many completions are waiting. While promises are
//! pending the threadsafe function is ref'd (the process stays alive for them); when none are,
//! it is unref'd, so an idle or forgotten service never keeps Node running.

use std::ffi::c_void;
use std::future::Future;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::FutureExt;
use napi::sys;

use crate::core::wire::Socket;
use crate::core::{Error, EventSink, Level};
use crate::engine::js_thread::{Deferred, JsEnv, JsRef};
use crate::engine::outcome::{Out, Settle};

/// A threadsafe function. Calling and releasing it are documented as safe from any thread;
/// `ref`/`unref` happen only on the JS thread (in `begin`/`end_many`, which take a `JsEnv`, the proof of
/// that contract).
struct Tsfn(sys::napi_threadsafe_function);
// SAFETY: `napi_call_threadsafe_function` and `napi_release_threadsafe_function` are documented
// as callable from any thread; the JS-thread-only calls are fenced as said above.
unsafe impl Send for Tsfn {}
// SAFETY: as above; the handle itself is never mutated after creation.
unsafe impl Sync for Tsfn {}

/// Work to run on the JS thread (see [`Shared::run_on_js`]).
pub type JsTask = Box<dyn FnOnce(JsEnv) + Send>;

enum Done {
    Settle(Deferred, Result<Out, Error>),
    Log(Level, String),
    Connection(crate::core::ConnectionEvent),
    /// A closure for the JS thread (it calls [`Shared::end`] itself if it ends an operation).
    Run(JsTask),
}

/// Receives the sockets (plain or TLS) the core opens for the JS-thread connection (see `driver`).
pub trait PlainHooks: Send + Sync {
    fn attach(&self, env: JsEnv, socket: Socket, gen: u64);
    fn detach(&self, env: JsEnv);
}

/// State shared between the JS-facing service and the futures it spawns.
pub struct Shared {
    plain: Mutex<Option<std::sync::Weak<dyn PlainHooks>>>,
    tsfn: RwLock<Option<Tsfn>>,
    queue: Mutex<Vec<Done>>,
    scheduled: AtomicBool,
    inflight: AtomicUsize,
    dropped: AtomicBool,
    pub prefix: Vec<u8>,
    logger: Mutex<Option<JsRef>>,
    secret: Option<String>,
    /// Makes the JS values settled with (the binding's).
    to_js: &'static dyn Settle,
}

/// Forwards core log lines to the JS logger through the same queue.
pub struct Sink(pub Arc<Shared>);

impl EventSink for Sink {
    fn log(&self, level: Level, msg: String) {
        self.0.push(Done::Log(level, msg));
    }

    fn connection(&self, event: crate::core::ConnectionEvent) {
        self.0.connection_event(event);
    }

    fn attach(&self, socket: Socket, gen: u64) {
        let hooks = self.0.plain.lock().ok().and_then(|h| h.clone());
        self.0.run_on_js(Box::new(move |env| {
            if let Some(h) = hooks.and_then(|h| h.upgrade()) {
                h.attach(env, socket, gen);
            }
        }));
    }

    fn detach(&self) {
        let hooks = self.0.plain.lock().ok().and_then(|h| h.clone());
        self.0.run_on_js(Box::new(move |env| {
            if let Some(h) = hooks.and_then(|h| h.upgrade()) {
                h.detach(env);
            }
        }));
    }
}

impl Shared {
    /// Creates the shared state and its threadsafe function (unref'd); `logger` is a value of
    /// the current callback, or NULL.
    pub fn new(
        env: JsEnv,
        prefix: Vec<u8>,
        logger: sys::napi_value,
        secret: Option<String>,
        to_js: &'static dyn Settle,
    ) -> napi::Result<Arc<Shared>> {
        let shared = Arc::new(Shared {
            plain: Mutex::new(None),
            tsfn: RwLock::new(None),
            queue: Mutex::new(Vec::new()),
            scheduled: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            dropped: AtomicBool::new(false),
            prefix,
            logger: Mutex::new(JsRef::new(env, logger)),
            secret,
            to_js,
        });
        let ctx = Arc::into_raw(Arc::clone(&shared)) as *mut c_void;
        let mut name = ptr::null_mut();
        let mut tsfn = ptr::null_mut();
        let env = env.raw();
        // SAFETY: JS thread of `env` (the token's proof); `ctx` is an Arc count handed to the
        // tsfn, released by `finalize` (or just below when creation fails).
        let status = unsafe {
            sys::napi_create_string_utf8(env, c"app-redis".as_ptr(), 9, &mut name);
            sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                ctx,
                Some(finalize),
                ctx,
                Some(call_js),
                &mut tsfn,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: the tsfn was not created, so its finalizer will never drop this count.
            unsafe { drop(Arc::from_raw(ctx as *const Shared)) };
            return Err(napi::Error::from_reason(
                "could not create the completion queue",
            ));
        }
        // SAFETY: JS thread of `env`; `tsfn` was just created.
        unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
        if let Ok(mut t) = shared.tsfn.write() {
            *t = Some(Tsfn(tsfn));
        }
        Ok(shared)
    }

    /// Routes the core's plain sockets to `hooks`.
    pub fn set_plain_hooks(&self, hooks: std::sync::Weak<dyn PlainHooks>) {
        if let Ok(mut h) = self.plain.lock() {
            *h = Some(hooks);
        }
    }

    /// Creates a promise whose deferred is settled later by a completion.
    ///
    /// Fails while a JS exception is pending: user code that ran while the arguments were read
    /// (an option getter, a Proxy trap) threw. Node-API then creates nothing, and the caller
    /// must return at once so the exception reaches the caller of the method: no command is
    /// sent, no deferred exists to settle later (a NULL one would crash Node when settled).
    ///
    pub fn promise(&self, env: JsEnv) -> napi::Result<(Deferred, sys::napi_value)> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        // SAFETY: `env` proves the current callback's thread; both out pointers are valid locals.
        let status = unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) };
        if status != sys::Status::napi_ok || deferred.is_null() || promise.is_null() {
            return Err(napi::Error::new(
                napi::Status::PendingException,
                "a JS exception is pending (thrown while the arguments were read)",
            ));
        }
        Ok((Deferred::new(deferred), promise))
    }

    /// Marks one more pending completion (JS thread): keeps the process alive while any are.
    pub fn begin(&self, env: JsEnv) {
        if self.inflight.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Ok(t) = self.tsfn.read() {
                if let Some(t) = t.as_ref() {
                    // SAFETY: JS thread of `env` (the token's proof); the tsfn is live while it
                    // is in `self.tsfn`.
                    unsafe { sys::napi_ref_threadsafe_function(env.raw(), t.0) };
                }
            }
        }
    }

    /// Runs `fut` on the runtime and settles `d` with its result; a panic in it becomes an
    /// `ERR_CONNECTION` rejection instead of reaching Node.
    pub fn spawn<F>(self: &Arc<Self>, env: JsEnv, d: Deferred, fut: F)
    where
        F: Future<Output = Result<Out, Error>> + Send + 'static,
    {
        let rt = match crate::core::connection::runtime() {
            Ok(rt) => rt,
            Err(e) => {
                self.settle_now(env, d, Err(e));
                return;
            }
        };
        self.begin(env);
        let shared = Arc::clone(self);
        rt.spawn(async move {
            let r = match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                Ok(r) => r,
                Err(_) => Err(Error::Connection(
                    "internal error in @app/redis (please report it)".into(),
                )),
            };
            shared.settle(d, r);
        });
    }

    /// Settles `d` on a worker thread's behalf (called from futures).
    pub fn settle(&self, d: Deferred, r: Result<Out, Error>) {
        self.push(Done::Settle(d, r));
    }

    /// Runs `task` on the JS thread (inside a handle scope) with the next batch of completions.
    pub fn run_on_js(&self, task: JsTask) {
        self.push(Done::Run(task));
    }

    /// Settles a batch with one lock and at most one wake-up of the JS thread.
    pub fn settle_many(&self, items: impl IntoIterator<Item = (Deferred, Result<Out, Error>)>) {
        if let Ok(mut q) = self.queue.lock() {
            q.extend(items.into_iter().map(|(d, r)| Done::Settle(d, r)));
        }
        self.wake();
    }

    fn push(&self, d: Done) {
        if let Ok(mut q) = self.queue.lock() {
            q.push(d);
        }
        self.wake();
    }

    fn wake(&self) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            if let Ok(t) = self.tsfn.read() {
                if let Some(t) = t.as_ref() {
                    // The handle is live while it is in `self.tsfn` (removed, under the write
                    // lock, before release).
                    // SAFETY: `napi_call_threadsafe_function` may be called from any thread.
                    unsafe {
                        sys::napi_call_threadsafe_function(
                            t.0,
                            ptr::null_mut(),
                            sys::ThreadsafeFunctionCallMode::nonblocking,
                        )
                    };
                }
            }
        }
    }

    /// Settles a promise right away on the JS thread (validation errors, degraded results).
    pub fn settle_now(&self, env: JsEnv, d: Deferred, r: Result<Out, Error>) {
        let r = match r {
            Ok(Out::Then(next)) => return next(env, d),
            r => r,
        };
        let (ok, value) = match r {
            Ok(o) => match self.to_js.value(env, o, &self.prefix) {
                Ok(v) => (true, v),
                Err(e) => (false, e),
            },
            Err(e) => (false, self.to_js.error(env, &self.scrub(e))),
        };
        d.settle(env, ok, value);
    }

    fn scrub(&self, e: Error) -> Error {
        let Some(s) = self.secret.as_deref().filter(|s| !s.is_empty()) else {
            return e;
        };
        let fix = |m: String| crate::core::error::redact(&m, Some(s));
        match e {
            Error::Connection(m) => Error::Connection(fix(m)),
            Error::Timeout(m) => Error::Timeout(fix(m)),
            Error::Reply(m) => Error::Reply(fix(m)),
            Error::Auth(m) => Error::Auth(fix(m)),
            Error::InvalidArgument(m) => Error::InvalidArgument(fix(m)),
            Error::Disabled(m) => Error::Disabled(fix(m)),
            other @ (Error::LockNotAcquired { .. } | Error::LockLost { .. }) => other,
        }
    }

    fn drain(&self, env: JsEnv) {
        self.scheduled.store(false, Ordering::Release);
        let items = match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        let mut settled = 0;
        for item in items {
            let mut scope = ptr::null_mut();
            // SAFETY: JS thread (drain runs in the tsfn's call_js); scopes open and close in order.
            unsafe { sys::napi_open_handle_scope(env.raw(), &mut scope) };
            match item {
                Done::Settle(d, r) => {
                    settled += 1;
                    self.settle_now(env, d, r);
                }
                Done::Log(level, msg) => self.log_now(env, level, &msg),
                Done::Connection(e) => self.to_js.connection(env, &e),
                Done::Run(task) => task(env),
            }
            // SAFETY: the scope opened above, still the innermost one.
            unsafe { sys::napi_close_handle_scope(env.raw(), scope) };
        }
        if settled > 0 {
            self.end_many(env, settled);
        }
    }

    /// Ends one operation counted by [`Shared::begin`]: once none is pending, the process may exit.
    pub fn end(&self, env: JsEnv) {
        self.end_many(env, 1);
    }

    /// Ends `settled` operations at once (see [`Shared::end`]).
    pub fn end_many(&self, env: JsEnv, settled: usize) {
        {
            // Saturating: an unbalanced end must never wrap the count (the process would then
            // be kept alive forever).
            let before = self
                .inflight
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(settled))
                })
                .unwrap_or(0);
            if before > 0 && before <= settled {
                if let Ok(t) = self.tsfn.read() {
                    if let Some(t) = t.as_ref() {
                        // SAFETY: JS thread of `env` (the token's proof); the tsfn is live while
                        // it is in `self.tsfn`.
                        unsafe { sys::napi_unref_threadsafe_function(env.raw(), t.0) };
                    }
                }
                if self.dropped.load(Ordering::Relaxed) {
                    self.release();
                }
            }
        }
    }

    /// Sends `msg` to the logger now (JS thread). A logger that throws is ignored: logging
    /// must not take the process down.
    /// Queues a connection's change of state for the JS thread (see `Settle::connection`).
    pub fn connection_event(&self, event: crate::core::ConnectionEvent) {
        self.push(Done::Connection(event));
    }

    pub fn log_now(&self, env: JsEnv, level: Level, msg: &str) {
        // The lock is released before the user's logger runs: a logger whose call leads back
        // here (it logs through the same service) must not wait on it.
        let logger = match self.logger.lock() {
            Ok(guard) => guard.as_ref().and_then(|r| r.get(env)),
            Err(_) => None,
        };
        let Some(logger) = logger else {
            return;
        };
        let text =
            crate::core::error::redact(&format!("[@app/redis] {msg}"), self.secret.as_deref());
        self.to_js.log(env, logger, level, &text);
    }

    /// Called when the JS object is garbage-collected: release now, or after the last pending
    /// promise settles.
    pub fn on_drop(&self) {
        self.dropped.store(true, Ordering::Relaxed);
        if self.inflight.load(Ordering::Relaxed) == 0 {
            self.release();
        }
    }

    fn release(&self) {
        if let Ok(mut t) = self.tsfn.write() {
            if let Some(t) = t.take() {
                // SAFETY: release is callable from any thread; the handle left `self.tsfn` under
                // the write lock, so it is released once.
                unsafe {
                    sys::napi_release_threadsafe_function(
                        t.0,
                        sys::ThreadsafeFunctionReleaseMode::release,
                    )
                };
            }
        }
    }
}

unsafe extern "C" fn call_js(
    env: sys::napi_env,
    _f: sys::napi_value,
    ctx: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() || ctx.is_null() {
        return;
    }
    // SAFETY: ctx is the Arc<Shared> pointer owned by this tsfn until `finalize`.
    let shared = unsafe { &*(ctx as *const Shared) };
    // SAFETY: Node calls call_js on the JS thread with a live env (checked non-NULL above);
    // the token lives for this call only.
    shared.drain(unsafe { JsEnv::assume(env) });
}

unsafe extern "C" fn finalize(env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if data.is_null() {
        return;
    }
    // SAFETY: `data` is the Arc<Shared> leaked in `Shared::new`.
    let shared = unsafe { Arc::from_raw(data as *const Shared) };
    // Node is done with the tsfn (released, or torn down with the environment): never touch it again.
    if let Ok(mut t) = shared.tsfn.write() {
        *t = None;
    }
    if !env.is_null() {
        if let Ok(mut l) = shared.logger.lock() {
            if let Some(r) = l.take() {
                // SAFETY: `env` is live (non-NULL) and this finalizer runs on its JS thread.
                unsafe { sys::napi_delete_reference(env, r.raw()) };
            }
        }
    }
}
