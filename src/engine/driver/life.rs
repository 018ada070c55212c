//! A driver's life: a new socket attached (from the runtime, after a connect or a reconnect),
//! detached, the service shut down, everything closed with its environment (workers, reloads),
//! and libuv's callbacks, the raw entry points that wake the driver on the JS thread.

use super::*;

impl Driver {
    /// The service is gone (JS thread): closes now, or once the replies still due are in.
    pub fn shutdown(&self) {
        if let Ok(mut g) = self.inner.lock() {
            let inner = &mut *g;
            if inner.inflight.is_empty() || inner.conn.is_none() {
                let mut after = After::default();
                self.close(inner, &mut after);
                drop(g);
                self.finish(after);
            } else {
                inner.closing = self.me.upgrade();
            }
        }
    }

    /// Closes the socket and the timer for good; anything still waiting fails.
    fn close(&self, inner: &mut Inner, after: &mut After) {
        if inner.closed {
            return;
        }
        inner.closed = true;
        self.detach_conn(inner);
        Self::fail_waiting(
            inner,
            &Error::Connection("the service was closed".into()),
            after,
        );
        // SAFETY: the timer is open (this is the one close, guarded by `closed`) and closed once.
        unsafe {
            (self.uv.timer_stop)(inner.timer);
            (self.uv.close)(inner.timer, uv::free_handle);
        }
    }

    /// After a callback: a service that is gone closes once nothing is due.
    fn maybe_close(&self, inner: &mut Inner, after: &mut After) -> Option<DriverRef> {
        if inner.closing.is_some() && (inner.inflight.is_empty() || inner.conn.is_none()) {
            self.close(inner, after);
            return inner.closing.take();
        }
        None
    }
}

impl Teardown for JsThread<Driver> {
    fn teardown(&self) {
        // The cleanup hook runs on the environment's JS thread.
        if let Some(d) = self.get() {
            d.teardown_now();
        }
    }
}

impl Driver {
    /// Closes the socket and timer handles before Node closes the loop. What was still waiting
    /// is dropped unsettled: the environment cannot run JS any more.
    fn teardown_now(&self) {
        let keep = match self.inner.lock() {
            Ok(mut g) => {
                let inner = &mut *g;
                if !inner.closed {
                    inner.closed = true;
                    self.detach_conn(inner);
                    // SAFETY: the timer handle is open (it is closed only here and in `close`,
                    // both after setting `closed`), on this environment's loop, on its thread.
                    unsafe {
                        (self.uv.timer_stop)(inner.timer);
                        (self.uv.close)(inner.timer, uv::free_handle);
                    }
                    drop(inner.inflight.drain());
                    inner.out.clear();
                }
                // Released after the lock: it may be the last reference to this driver.
                inner.closing.take()
            }
            Err(_) => None,
        };
        drop(keep);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.gone.is_gone() {
            // Node frees the environment's references and async contexts itself; calling
            // Node-API here (a finalizer during teardown) crashed.
            return;
        }
        // Every owner lives on the JS thread, so this runs there (after any callback scope
        // opened with the context has closed).
        // SAFETY: the environment is not torn down (checked above), and this runs on its JS thread
        // (a `JsThread` drops its value only there); both were made by `new` in this env.
        unsafe {
            sys::napi_async_destroy(self.env, self.async_ctx);
            sys::napi_delete_reference(self.env, self.resource);
        }
    }
}

impl PlainHooks for JsThread<Driver> {
    fn attach(&self, env: JsEnv, socket: Socket, gen: u64) {
        // Hand-overs run on the JS thread (through the completion queue).
        if let Some(d) = self.get() {
            d.attach(env, socket, gen);
        }
    }

    fn detach(&self, env: JsEnv) {
        if let Some(d) = self.get() {
            d.detach(env);
        }
    }
}

impl Driver {
    /// A new socket from the runtime: watch it and write what is queued.
    fn attach(&self, _env: JsEnv, socket: Socket, gen: u64) {
        let Socket { tcp: stream, tls } = socket;
        let mut after = After::default();
        if let Ok(mut g) = self.inner.lock() {
            let inner = &mut *g;
            if inner.closed {
                return;
            }
            if inner.conn.is_some() {
                // A newer connection replaces one that failed before we noticed.
                self.broken(inner, "replaced by a new connection", &mut after);
                after.lost = None;
            }
            let _ = stream.set_nonblocking(true);
            let poll = uv::alloc_handle(self.uv, uv::UV_POLL);
            if poll.is_null() {
                return;
            }
            #[cfg(unix)]
            let fd = std::os::fd::AsRawFd::as_raw_fd(&stream) as c_int;
            #[cfg(not(unix))]
            let fd: c_int = -1;
            let mut loop_ = ptr::null_mut();
            // SAFETY: JS thread of `self.env` (this method's contract); `poll` is fresh memory from
            // `alloc_handle`; it is unref'd and its data points at this driver, which outlives it.
            unsafe {
                sys::napi_get_uv_event_loop(self.env, &mut loop_);
                if (self.uv.poll_init)(loop_.cast(), poll, fd) != 0 {
                    uv::free_handle(poll);
                    return;
                }
                (self.uv.set_data)(poll, self as *const Driver as *mut c_void);
                (self.uv.unref)(poll);
                (self.uv.poll_start)(poll, uv::UV_READABLE, on_poll);
            }
            inner.conn = Some(Conn {
                stream,
                tls,
                stage: Vec::new(),
                poll,
                gen,
                writable: false,
            });
            self.flush(inner, &mut after);
            self.arm_timer(inner);
        }
        self.finish(after);
    }

    /// The runtime lost the connection: stop watching it; what was waiting fails.
    fn detach(&self, _env: JsEnv) {
        let mut after = After::default();
        if let Ok(mut g) = self.inner.lock() {
            let inner = &mut *g;
            self.detach_conn(inner);
            let e = Error::Connection("disconnected: call connect() to reconnect".into());
            Self::fail_waiting(inner, &e, &mut after);
        }
        self.finish(after);
    }
}

/// The driver a libuv handle of ours belongs to.
///
/// # Safety
/// `handle` must be a live poll or timer handle set up by a `Driver`.
unsafe fn driver_of<'a>(handle: *mut Handle) -> Option<&'a Driver> {
    let uv = uv::uv()?;
    // SAFETY: `handle` is live (the caller's contract).
    let data = unsafe { (uv.get_data)(handle) };
    // SAFETY: the handles are closed (no more callbacks) before their driver is dropped.
    (!data.is_null()).then(|| unsafe { &*(data as *const Driver) })
}

pub(super) unsafe extern "C" fn on_poll(handle: *mut Handle, status: c_int, events: c_int) {
    // SAFETY: libuv calls this only for our open poll handles.
    let Some(d) = (unsafe { driver_of(handle) }) else {
        return;
    };
    let mut keep = None;
    d.callback(|d, after| {
        let Ok(mut g) = d.inner.lock() else { return };
        let inner = &mut *g;
        // A callback for a socket already replaced or closed.
        if inner.conn.as_ref().map(|c| c.poll) != Some(handle) {
            return;
        }
        if status < 0 {
            d.broken(inner, &format!("socket error {status}"), after);
        } else {
            if events & uv::UV_WRITABLE != 0 {
                d.flush(inner, after);
            }
            if events & uv::UV_READABLE != 0 {
                d.read(inner, after);
            }
            d.arm_timer(inner);
        }
        keep = d.maybe_close(inner, after);
    });
    drop(keep);
}

pub(super) unsafe extern "C" fn on_timer(handle: *mut Handle) {
    // SAFETY: libuv calls this only for our open timer handle.
    let Some(d) = (unsafe { driver_of(handle) }) else {
        return;
    };
    let mut keep = None;
    d.callback(|d, after| {
        d.expire(after);
        if let Ok(mut g) = d.inner.lock() {
            keep = d.maybe_close(&mut g, after);
        }
    });
    drop(keep);
}
