//! Thread affinity as a type. Node-API handles, libuv handles and references may only be used on
//! the JS thread that made them, yet the structs holding them are shared with the runtime
//! through `Arc`s and closures (a socket opened on a runtime thread is handed to its driver
//! through the completion queue, which runs the hand-over on the JS thread). [`JsThread`] lets
//! such a value travel while keeping every use on its thread: each access checks the calling
//! thread, and a drop on any other thread leaks the value instead of running its `Drop` there.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use napi::sys;

/// The proof that code runs on the JS thread of an env, inside one of its Node-API callbacks
/// (a method call, a completion-queue task, a promise reaction, a libuv callback with a handle
/// scope open), for the lifetime `'s` of that callback.
///
/// Made only by the `unsafe` [`JsEnv::assume`], at the few raw entry points; everything that
/// needs the JS thread takes one instead of being an `unsafe fn` with that rule in a comment.
/// It is neither `Send` nor `Sync`, and its lifetime keeps it from being stored past the
/// callback (where the env may already be torn down).
#[derive(Clone, Copy)]
pub struct JsEnv<'s> {
    raw: sys::napi_env,
    _scope: PhantomData<&'s ()>,
    _not_send: PhantomData<*const ()>,
}

impl JsEnv<'_> {
    /// # Safety
    /// `raw` is the env of the Node-API callback running now on this thread, and the caller
    /// lets the token live no longer than that callback.
    pub unsafe fn assume(raw: sys::napi_env) -> Self {
        JsEnv {
            raw,
            _scope: PhantomData,
            _not_send: PhantomData,
        }
    }

    /// The token of a `#[napi]` method's env: napi-rs passes an `Env` only to callbacks on its
    /// JS thread, and the token lives no longer than the borrow.
    pub fn of(env: &napi::Env) -> JsEnv<'_> {
        // SAFETY: as just said.
        unsafe { JsEnv::assume(env.raw()) }
    }

    /// The env, for a raw Node-API or libuv call (sound on this thread, during the callback).
    pub fn raw(self) -> sys::napi_env {
        self.raw
    }
}

/// A process-unique number per thread (thread ids of ended threads are never reused).
fn current_thread() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ID.with(|id| *id)
}

/// A `T` that is only ever touched, and dropped, on the thread that made it.
pub(crate) struct JsThread<T> {
    owner: u64,
    value: ManuallyDrop<T>,
}

// SAFETY: `value` is reached only through `get` and `Deref`, which check that the calling
// thread is `owner`, and dropped only on `owner` (elsewhere it leaks). So `T` is used by one
// thread only, whatever its own `Send`/`Sync`; other threads merely move or share the wrapper.
unsafe impl<T> Send for JsThread<T> {}
// SAFETY: as above: a shared `&JsThread<T>` gives no other thread access to `T`.
unsafe impl<T> Sync for JsThread<T> {}

impl<T> JsThread<T> {
    /// Binds `value` to the calling thread.
    pub fn new(value: T) -> Self {
        JsThread {
            owner: current_thread(),
            value: ManuallyDrop::new(value),
        }
    }

    /// The value, on its own thread; `None` elsewhere.
    pub fn get(&self) -> Option<&T> {
        (current_thread() == self.owner).then_some(&*self.value)
    }
}

impl<T> std::ops::Deref for JsThread<T> {
    type Target = T;

    /// The value. Reaching it from another thread is a bug in this crate, stopped here: it
    /// panics on that (runtime) thread, where the task's panic is caught, instead of racing
    /// the JS thread.
    fn deref(&self) -> &T {
        match self.get() {
            Some(v) => v,
            None => panic!("@app/redis: a JS-thread value was used on another thread"),
        }
    }
}

impl<T> Drop for JsThread<T> {
    fn drop(&mut self) {
        if current_thread() == self.owner {
            // SAFETY: dropped once, here, on its own thread; never used again.
            unsafe { ManuallyDrop::drop(&mut self.value) };
        }
        // Elsewhere the value leaks: its `Drop` may call Node-API, which only its thread may.
    }
}

// Promise handles and references: Node-API handles usable only on their JS thread.

/// A `napi_deferred` (never NULL: see `Shared::promise`). It travels with its command through
/// the runtime and back, and is settled on the JS thread that made it: the `JsThread` wrapper
/// checks that (a settle anywhere else does nothing).
pub struct Deferred(JsThread<sys::napi_deferred>);

impl Deferred {
    /// Wraps a deferred just made on this thread (by `Shared::promise`).
    pub(crate) fn new(d: sys::napi_deferred) -> Deferred {
        Deferred(JsThread::new(d))
    }

    /// Resolves (`ok`) or rejects with `v` (a value of the current callback).
    pub fn settle(self, env: JsEnv, ok: bool, v: sys::napi_value) {
        let Some(&d) = self.0.get() else { return };
        // `d` is live (made by `Shared::promise`, settled once: `self` is consumed).
        // SAFETY: `d` as said, on its own thread (checked above), in a callback (`env`).
        unsafe {
            if ok {
                sys::napi_resolve_deferred(env.raw(), d, v);
            } else {
                sys::napi_reject_deferred(env.raw(), d, v);
            }
        }
    }
}

/// A strong reference to a JS value, created and consumed on the JS thread (checked).
pub struct JsRef(JsThread<sys::napi_ref>);

impl JsRef {
    /// References `v` (a value of the current callback) strongly; `None` when Node-API
    /// refuses (a NULL value, or the environment is shutting down).
    pub fn new(env: JsEnv, v: sys::napi_value) -> Option<JsRef> {
        if v.is_null() {
            return None;
        }
        let mut r = ptr::null_mut();
        // SAFETY: `env` proves the current callback's thread; `v` is not NULL; `r` a valid local.
        let s = unsafe { sys::napi_create_reference(env.raw(), v, 1, &mut r) };
        (s == sys::Status::napi_ok && !r.is_null()).then(|| JsRef(JsThread::new(r)))
    }

    /// The referenced value, kept referenced; `None` off its thread or once collected.
    pub fn get(&self, env: JsEnv) -> Option<sys::napi_value> {
        let r = self.raw();
        if r.is_null() {
            return None;
        }
        let mut v = ptr::null_mut();
        // SAFETY: `r` is a live reference made on this thread (`raw` checked that), read inside
        // a callback of its env (the token's proof).
        let s = unsafe { sys::napi_get_reference_value(env.raw(), r, &mut v) };
        (s == sys::Status::napi_ok && !v.is_null()).then_some(v)
    }

    /// The raw reference (to read it without deleting it); NULL off its thread.
    pub fn raw(&self) -> sys::napi_ref {
        self.0.get().copied().unwrap_or(ptr::null_mut())
    }

    /// The referenced value; the reference is deleted. NULL off its thread.
    pub fn take(self, env: JsEnv) -> sys::napi_value {
        let mut v = ptr::null_mut();
        let r = self.raw();
        if r.is_null() {
            return v;
        }
        // SAFETY: `r` is a live reference made on this thread (`raw` checked that), whose env
        // `env` is inside a callback of; deleted once (`self` is consumed).
        unsafe {
            sys::napi_get_reference_value(env.raw(), r, &mut v);
            sys::napi_delete_reference(env.raw(), r);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn usable_on_its_thread_only_and_never_dropped_elsewhere() {
        struct Noisy(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for Noisy {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let here = JsThread::new(Noisy(Arc::clone(&drops)));
        assert!(here.get().is_some());
        let moved = JsThread::new(Noisy(Arc::clone(&drops)));
        let seen_elsewhere = std::thread::spawn(move || {
            let seen = moved.get().is_none();
            drop(moved); // leaks: not its thread
            seen
        })
        .join()
        .unwrap();
        assert!(seen_elsewhere);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(here);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
