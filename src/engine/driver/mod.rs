//! The JS-thread connection: commands are written to the socket straight from the call (one
//! `write` per batch), libuv wakes the JS thread when replies arrive, and promises are settled
//! right there: no thread hop either way, the same path ioredis takes but with packing, parsing
//! and decoding in Rust.
//!
//! The runtime still opens the connection (TCP, the TLS handshake, `HELLO 3`, AUTH, SELECT: see
//! `core::wire`) and reconnects after a loss; it hands each new socket over through the
//! completion queue, with its rustls session over TLS. The JS thread then drives that session
//! without I/O of its own: plaintext in, records out to the socket on write; records in from the
//! socket, plaintext out to the reply reader on read (see `tls_io`). Only used on hosts that
//! export libuv; otherwise the runtime-thread dispatcher is used.

use std::ffi::{c_int, c_void};
use std::io::{ErrorKind, Write};
use std::ptr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use napi::sys;
use redis::Value;

use crate::core::near_cache::invalidated_keys;
use crate::core::wire::{Inflight, Reader, Socket};
use crate::core::work::Job;
use crate::core::{Client, Error};
use crate::engine::completer::{PlainHooks, Shared};
use crate::engine::js_thread::{JsEnv, JsThread};
use crate::engine::per_env::{self, Gone, Teardown};
use crate::engine::tag::{settle_tags, Tag};
use crate::engine::uv::{self, Handle, Uv};

mod life;
mod tls_io;

use life::{on_poll, on_timer};

/// A write buffer grown past this (by a big value) is freed once it has been sent.
const OUT_SHRINK_ABOVE: usize = 1024 * 1024;

struct Conn {
    stream: std::net::TcpStream,
    /// The TLS session (`None`: plain TCP) and its read buffer.
    tls: Option<Box<rustls::ClientConnection>>,
    stage: Vec<u8>,
    poll: *mut Handle,
    gen: u64,
    writable: bool,
}

struct Inner {
    conn: Option<Conn>,
    inflight: Inflight<Tag>,
    reader: Reader,
    /// Encoded commands not yet written (also while no socket is attached).
    out: Vec<u8>,
    timer: *mut Handle,
    timer_due: Option<Instant>,
    closed: bool,
    /// The service is gone but replies are still due: close once they are in, keeping the
    /// driver alive until then.
    closing: Option<DriverRef>,
}

/// How a driver is held: shared, and usable on its JS thread only.
pub(crate) type DriverRef = Arc<JsThread<Driver>>;

/// One service's JS-thread connection.
pub(crate) struct Driver {
    env: sys::napi_env,
    uv: &'static Uv,
    shared: Arc<Shared>,
    client: Arc<Client>,
    outstanding: Arc<AtomicUsize>,
    timeout_ms: u64,
    async_ctx: sys::napi_async_context,
    resource: sys::napi_ref,
    /// A cluster lane's batch (see `lanes`): hears about redirects, settlements and losses.
    events: Option<std::sync::Weak<dyn LaneEvents>>,
    /// Set when the environment is torn down: no Node-API call from then on.
    gone: Gone,
    /// This driver's own `Arc` (to keep it alive while it closes).
    me: std::sync::Weak<JsThread<Driver>>,
    inner: Mutex<Inner>,
}

/// What a cluster lane's driver reports to its batch.
pub(crate) trait LaneEvents: Send + Sync {
    /// Jobs the node redirected (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), not run there: to be sent
    /// again through the crate's routing.
    fn redirected(&self, jobs: Vec<Job<Tag>>);
    /// Jobs settled: the lane may be idle now.
    fn settled(&self);
    /// The lane's connection was lost.
    fn lost(&self);
}

/// Writes as much of `out` as the socket takes now: `(bytes written, why it failed)`.
fn write_plain(stream: &std::net::TcpStream, out: &[u8]) -> (usize, Option<String>) {
    let mut written = 0;
    while written < out.len() {
        match (&*stream).write(&out[written..]) {
            Ok(0) => {
                return (
                    written,
                    Some("the connection was closed while writing".into()),
                )
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (written, Some(format!("write failed: {e}"))),
        }
    }
    (written, None)
}

/// Reads what the socket has into `reader`: `Some(why)` when the connection is over.
fn read_plain(stream: &std::net::TcpStream, reader: &mut Reader) -> Option<String> {
    loop {
        match reader.read_from(&mut &*stream) {
            Ok(0) => return Some("the server closed the connection".to_string()),
            // A short read emptied the socket (libuv wakes us again for more).
            Ok(n) if n < 64 * 1024 => return None,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Some(format!("read failed: {e}")),
        }
    }
}

/// What to do once the lock is released.
#[derive(Default)]
struct After {
    settle: Vec<(Tag, Result<Value, Error>)>,
    lost: Option<(u64, String)>,
}

impl Driver {
    /// A driver for `client`, or `None` when libuv is not available here.
    pub fn new(
        env: JsEnv,
        client: &Arc<Client>,
        shared: &Arc<Shared>,
        outstanding: &Arc<AtomicUsize>,
        events: Option<std::sync::Weak<dyn LaneEvents>>,
    ) -> Option<DriverRef> {
        let uv = uv::uv()?;
        let mut loop_ = ptr::null_mut();
        // SAFETY: JS thread of `env` (the `JsEnv` token proves it); `loop_` is a valid local.
        unsafe {
            if sys::napi_get_uv_event_loop(env.raw(), &mut loop_) != sys::Status::napi_ok
                || loop_.is_null()
            {
                return None;
            }
        }
        let timer = uv::alloc_handle(uv, uv::UV_TIMER);
        if timer.is_null() {
            return None;
        }
        // SAFETY: `timer` is fresh memory of the size libuv asked for (`alloc_handle`), initialised
        // on this environment's loop on its own thread; it is unref'd so it never keeps Node alive.
        unsafe {
            if (uv.timer_init)(loop_.cast(), timer) != 0 {
                uv::free_handle(timer);
                return None;
            }
            (uv.unref)(timer);
        }
        if !client.want_plain() {
            // SAFETY: `timer` was initialised just above and is closed once; `free_handle` frees
            // it.
            unsafe { (uv.close)(timer, uv::free_handle) };
            return None;
        }
        // SAFETY: JS thread of `env`; every out pointer is a valid local. A failure leaves NULLs,
        // which `callback` and `Drop` tolerate (Node-API refuses NULL handles with a status).
        let (async_ctx, resource) = unsafe {
            let mut obj = ptr::null_mut();
            let mut name = ptr::null_mut();
            let mut ctx = ptr::null_mut();
            let mut r = ptr::null_mut();
            sys::napi_create_object(env.raw(), &mut obj);
            sys::napi_create_string_utf8(env.raw(), c"@app/redis".as_ptr(), 10, &mut name);
            sys::napi_async_init(env.raw(), obj, name, &mut ctx);
            sys::napi_create_reference(env.raw(), obj, 1, &mut r);
            (ctx, r)
        };
        let d = Arc::new_cyclic(|me| {
            JsThread::new(Driver {
                env: env.raw(),
                uv,
                shared: Arc::clone(shared),
                client: Arc::clone(client),
                outstanding: Arc::clone(outstanding),
                timeout_ms: client.cfg.command_timeout_ms,
                async_ctx,
                resource,
                events,
                gone: per_env::gone(env),
                me: me.clone(),
                inner: Mutex::new(Inner {
                    conn: None,
                    inflight: Inflight::new(Duration::from_millis(client.cfg.command_timeout_ms)),
                    reader: Reader::default(),
                    out: Vec::new(),
                    timer,
                    timer_due: None,
                    closed: false,
                    closing: None,
                }),
            })
        });
        // The handles point at the driver itself, inside its `JsThread` (as `driver_of` reads it).
        // SAFETY: `timer` is a live handle of this loop; the pointer stays valid while the handle
        // is open (the driver outlives its handles: see `driver_of`).
        unsafe { (uv.set_data)(timer, &**d as *const Driver as *mut c_void) };
        let teardown: std::sync::Weak<dyn Teardown> = Arc::downgrade(&d) as _;
        per_env::track(env, teardown);
        Some(d)
    }

    /// Whether a socket is attached (jobs sent now are written at once).
    pub fn attached(&self) -> bool {
        self.inner
            .lock()
            .is_ok_and(|g| g.conn.is_some() && !g.closed)
    }

    /// Whether jobs are written or queued and not yet answered.
    pub fn busy(&self) -> bool {
        self.inner
            .lock()
            .map_or(true, |g| !g.inflight.is_empty() || !g.out.is_empty())
    }

    /// Writes `jobs` (or queues them until a socket is attached).
    pub fn send(&self, jobs: Vec<Job<Tag>>) {
        let mut after = After::default();
        if let Ok(mut g) = self.inner.lock() {
            let inner = &mut *g;
            if inner.closed {
                let e = Error::Connection("the service was closed".into());
                after.settle = jobs.into_iter().map(|j| (j.tag, Err(e.clone()))).collect();
            } else {
                let now = Instant::now();
                inner.out.reserve(jobs.len() * 32);
                for j in jobs {
                    after
                        .settle
                        .extend(inner.inflight.push(&j.work, j.tag, &mut inner.out, now));
                }
                self.flush(inner, &mut after);
                self.arm_timer(inner);
            }
        }
        self.finish(after);
    }

    /// Writes what is buffered; on `WouldBlock` waits for the socket to become writable.
    fn flush(&self, inner: &mut Inner, after: &mut After) {
        let Some(conn) = inner.conn.as_mut() else {
            return;
        };
        let (written, failed) = match conn.tls.as_mut() {
            None => write_plain(&conn.stream, &inner.out),
            Some(tls) => tls_io::write(&conn.stream, tls, &inner.out),
        };
        inner.out.drain(..written);
        if inner.out.is_empty() && inner.out.capacity() > OUT_SHRINK_ABOVE {
            // A big write's room is let go once it is sent (not kept per connection).
            inner.out = Vec::new();
        }
        if let Some(why) = failed {
            self.broken(inner, &why, after);
            return;
        }
        let want_write =
            !inner.out.is_empty() || conn.tls.as_ref().is_some_and(|t| t.wants_write());
        if want_write != conn.writable {
            conn.writable = want_write;
            let events = uv::UV_READABLE | if want_write { uv::UV_WRITABLE } else { 0 };
            // SAFETY: `conn.poll` is open (closed only with the connection, which then leaves
            // `inner`); JS thread (every driver method runs there: `JsThread`).
            unsafe { (self.uv.poll_start)(conn.poll, events, on_poll) };
        }
    }

    /// Reads everything available and matches the replies.
    fn read(&self, inner: &mut Inner, after: &mut After) {
        let Some(conn) = inner.conn.as_mut() else {
            return;
        };
        let mut failed = match conn.tls.as_mut() {
            None => read_plain(&conn.stream, &mut inner.reader),
            Some(tls) => tls_io::read(&conn.stream, tls, &mut inner.reader, &mut conn.stage),
        };
        after.settle.reserve(inner.inflight.len());
        // Invalidations (`clientCache`) take effect where they come in the stream, before the
        // replies that follow them are settled.
        let near = self.client.near.as_ref();
        let taken = inner
            .inflight
            .take_with(&mut inner.reader, &mut after.settle, |push| {
                if let (Some(near), Some(what)) = (near, invalidated_keys(push)) {
                    near.apply(what);
                }
            });
        if let Err(e) = taken {
            failed = Some(e.to_string());
        }
        if let Some(why) = failed {
            self.broken(inner, &why, after);
        } else if inner
            .conn
            .as_ref()
            .and_then(|c| c.tls.as_ref())
            .is_some_and(|t| t.wants_write())
        {
            // TLS: reading may have queued records to send (an alert, a key update).
            self.flush(inner, after);
        }
    }

    /// The socket failed: every waiting job fails, and the core reconnects.
    fn broken(&self, inner: &mut Inner, why: &str, after: &mut After) {
        if let Some(conn) = self.detach_conn(inner) {
            after.lost = Some((conn, why.to_string()));
        }
        let e = Error::Connection(format!("Redis connection lost: {why}"));
        Self::fail_waiting(inner, &e, after);
    }

    /// Fails every job written or queued, and forgets the bytes of the old stream.
    fn fail_waiting(inner: &mut Inner, e: &Error, after: &mut After) {
        after.settle.extend(
            inner
                .inflight
                .drain()
                .into_iter()
                .map(|t| (t, Err(e.clone()))),
        );
        inner.out.clear();
        inner.reader = Reader::default();
    }

    /// Stops watching the socket and closes it; returns its generation.
    fn detach_conn(&self, inner: &mut Inner) -> Option<u64> {
        let conn = inner.conn.take()?;
        // SAFETY: the connection's poll handle is open until here and is closed exactly once, as
        // the connection leaves `inner`; `free_handle` frees it after libuv is done.
        unsafe {
            (self.uv.poll_stop)(conn.poll);
            (self.uv.close)(conn.poll, uv::free_handle);
        }
        Some(conn.gen)
    }

    fn arm_timer(&self, inner: &mut Inner) {
        if inner.timer_due.is_some() {
            return;
        }
        if let Some(due) = inner.inflight.next_deadline() {
            inner.timer_due = Some(due);
            let ms = due.saturating_duration_since(Instant::now()).as_millis() as u64;
            // SAFETY: the timer is open until `close`/`teardown_now`, which set `closed` first and
            // stop it; JS thread.
            unsafe { (self.uv.timer_start)(inner.timer, on_timer, ms, 0) };
        }
    }

    fn expire(&self, after: &mut After) {
        let Ok(mut g) = self.inner.lock() else { return };
        let inner = &mut *g;
        inner.timer_due = None;
        let (expired, _) = inner.inflight.expire(Instant::now());
        let e = Error::Timeout(format!(
            "Redis did not answer within commandTimeoutMs ({} ms)",
            self.timeout_ms
        ));
        let stuck = !expired.is_empty() && inner.reader.has_partial();
        after
            .settle
            .extend(expired.into_iter().map(|t| (t, Err(e.clone()))));
        if stuck {
            // A reply began and did not complete in time: the stream cannot be trusted to ever
            // complete it, so the connection is reset (every later reply would wait behind it).
            self.broken(
                inner,
                "a reply was cut short (incomplete after commandTimeoutMs)",
                after,
            );
        }
        self.arm_timer(inner);
    }

    /// Settles and reports outside the lock (settling may run code that calls `send`).
    fn finish(&self, after: After) {
        if self.gone.is_gone() {
            // The environment is torn down: its promises die with it (settling one would call
            // into a disposed environment).
            return;
        }
        let events = self.events.as_ref().and_then(std::sync::Weak::upgrade);
        if !after.settle.is_empty() {
            // Driver methods run only on the JS thread of `self.env` (`JsThread` checks every
            // access), inside a libuv callback or a JS call of that env, not torn down (above).
            // SAFETY: as just said; the token lives for this call only.
            let env = unsafe { JsEnv::assume(self.env) };
            let (again, redirected) = settle_tags(
                env,
                &self.shared,
                &self.client,
                &self.outstanding,
                after.settle,
            );
            if !again.is_empty() {
                self.send(again);
            }
            if let Some(ev) = &events {
                if !redirected.is_empty() {
                    ev.redirected(redirected);
                }
            }
        }
        if let Some((gen, why)) = after.lost {
            self.client.lost(gen, &why);
            if let Some(ev) = &events {
                ev.lost();
            }
        }
        if let Some(ev) = events {
            ev.settled();
        }
    }

    /// Runs `f` as a libuv callback: inside a handle scope and a callback scope, so promise
    /// reactions (the awaiting code) run when it returns.
    fn callback(&self, f: impl FnOnce(&Self, &mut After)) {
        if self.gone.is_gone() {
            return;
        }
        let env = self.env;
        // SAFETY: a libuv callback on the JS thread of a live environment (`gone` checked above);
        // scopes are opened and closed in order; `resource` and `async_ctx` are this driver's own.
        unsafe {
            let mut hs = ptr::null_mut();
            sys::napi_open_handle_scope(env, &mut hs);
            let mut resource = ptr::null_mut();
            sys::napi_get_reference_value(env, self.resource, &mut resource);
            let mut cs = ptr::null_mut();
            let scoped = sys::napi_open_callback_scope(env, resource, self.async_ctx, &mut cs)
                == sys::Status::napi_ok;
            let mut after = After::default();
            f(self, &mut after);
            self.finish(after);
            if scoped {
                sys::napi_close_callback_scope(env, cs);
            }
            sys::napi_close_handle_scope(env, hs);
        }
    }
}
