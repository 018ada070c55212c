//! What belongs to one Node environment (the main thread's, a worker's, or a second load of the
//! addon after the require cache was cleared), kept in that environment's instance data:
//!
//! - the global JS functions the addon calls (`queueMicrotask`, `JSON.parse`, `JSON.stringify`,
//!   `Array.of`, `Promise.resolve`, `Promise.prototype.then`), taken when the addon registers,
//!   and the helpers `js/addon-realm.js` hands over at load (`withLock`'s context). User code that later replaces one of those
//!   globals (a test that stubs `queueMicrotask` for a tick, a library that patches `JSON`)
//!   cannot stall the engine or see our values: the engine keeps calling the originals;
//! - the JS-thread connections (`Driver`s) opened in it, and whether it is being torn down
//!   ([`Teardown`]). An environment cleanup hook closes every connection's libuv handles before
//!   Node closes the loop (a worker's `terminate()` or `process.exit()`, or the process exit),
//!   and marks the environment gone, so that no `Drop` run later by a finalizer calls Node-API
//!   on it. Without it, a worker ended with commands in flight aborted the process
//!   (`uv_loop_close() while having open handles`) or crashed in a callback into a disposed
//!   isolate.

use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use napi::sys;

use crate::engine::js_thread::JsEnv;

/// Told that its environment is being torn down (JS thread, inside the cleanup hook): close
/// libuv handles now, call no JS.
pub(crate) trait Teardown: Send + Sync {
    fn teardown(&self);
}

/// Set once the environment's cleanup hook has run: from then on nothing may call Node-API on
/// that environment (a `Drop` run by a finalizer checks it first).
#[derive(Clone, Default)]
pub(crate) struct Gone(Arc<AtomicBool>);

impl Gone {
    pub fn is_gone(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// An environment's data.
struct PerEnv {
    queue_microtask: sys::napi_ref,
    json_parse: sys::napi_ref,
    json_stringify: sys::napi_ref,
    array_of: sys::napi_ref,
    promise: sys::napi_ref,
    promise_resolve: sys::napi_ref,
    promise_then: sys::napi_ref,
    /// `withLock`'s context maker and its abort, from `js/addon-realm.js` (NULL until set).
    lock_context: std::cell::Cell<sys::napi_ref>,
    abort_lock_context: std::cell::Cell<sys::napi_ref>,
    /// The compiled helper behind `Js::pairs` (made on first use), or NULL.
    pairs: std::cell::Cell<sys::napi_ref>,
    /// The module's exports object (a realm that loads index.js registers its `console` on it).
    exports: std::cell::Cell<sys::napi_ref>,
    /// Property keys of records: a reference to a JS array of key strings, and their names
    /// (index = position in the array); made on first use.
    record_keys: std::cell::RefCell<Option<(sys::napi_ref, Vec<&'static str>)>>,
    gone: Gone,
    open: Mutex<Vec<Weak<dyn Teardown>>>,
}

/// Which original to call.
#[derive(Clone, Copy)]
pub enum Fn {
    QueueMicrotask,
    JsonParse,
    JsonStringify,
    ArrayOf,
    /// The `Promise` constructor itself (the `this` of `Promise.resolve`).
    Promise,
    PromiseResolve,
    /// `Promise.prototype.then`.
    PromiseThen,
    /// `(token, fencingToken, degraded) => context` for `withLock`'s callback.
    LockContext,
    /// `(context, reason)`: aborts the context's `signal` (now, or when first read).
    AbortLockContext,
}

/// Reads `obj[name]`, which must be a function; NULL otherwise.
///
/// # Safety
/// JS thread, inside a callback or the module init of `env`; `obj` a live value of `env`.
unsafe fn function(
    env: sys::napi_env,
    obj: sys::napi_value,
    name: &std::ffi::CStr,
) -> sys::napi_ref {
    let mut f = ptr::null_mut();
    let mut t = sys::ValueType::napi_undefined;
    let mut r = ptr::null_mut();
    // SAFETY: the caller's contract; every out pointer is a valid local, and each status is
    // checked before its result is used.
    unsafe {
        if sys::napi_get_named_property(env, obj, name.as_ptr(), &mut f) != sys::Status::napi_ok
            || sys::napi_typeof(env, f, &mut t) != sys::Status::napi_ok
            || t != sys::ValueType::napi_function
            || sys::napi_create_reference(env, f, 1, &mut r) != sys::Status::napi_ok
        {
            return ptr::null_mut();
        }
    }
    r
}

/// Whether this host's libuv exports are stubs that abort when called: Bun
/// (`process.versions.bun`). A `process` that cannot be read (a throwing getter) counts as Node;
/// the exception is cleared.
///
/// # Safety
/// Module init of `env` on its JS thread; `global` is its global object.
unsafe fn host_stubs_libuv(env: sys::napi_env, global: sys::napi_value) -> bool {
    let mut process = ptr::null_mut();
    let mut versions = ptr::null_mut();
    let mut bun = false;
    // SAFETY: the caller's contract; every out pointer is a valid local; statuses are checked.
    let read = unsafe {
        sys::napi_get_named_property(env, global, c"process".as_ptr(), &mut process)
            == sys::Status::napi_ok
            && !process.is_null()
            && sys::napi_get_named_property(env, process, c"versions".as_ptr(), &mut versions)
                == sys::Status::napi_ok
            && !versions.is_null()
            && sys::napi_has_named_property(env, versions, c"bun".as_ptr(), &mut bun)
                == sys::Status::napi_ok
    };
    if !read {
        let mut pending = false;
        let mut err = ptr::null_mut();
        // SAFETY: as above; a pending exception from a getter is taken and dropped.
        unsafe {
            if sys::napi_is_exception_pending(env, &mut pending) == sys::Status::napi_ok && pending
            {
                sys::napi_get_and_clear_last_exception(env, &mut err);
            }
        }
    }
    read && bun
}

/// Takes the originals from `globalThis` (module init).
pub fn install(env: JsEnv) -> napi::Result<()> {
    let env = env.raw();
    let mut global = ptr::null_mut();
    let mut json = ptr::null_mut();
    let mut array = ptr::null_mut();
    let mut promise = ptr::null_mut();
    let mut promise_proto = ptr::null_mut();
    // SAFETY: module init of `env` on its thread (the token's proof); statuses checked.
    let data = unsafe {
        if sys::napi_get_global(env, &mut global) != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"JSON".as_ptr(), &mut json)
                != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"Array".as_ptr(), &mut array)
                != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"Promise".as_ptr(), &mut promise)
                != sys::Status::napi_ok
            || sys::napi_get_named_property(env, promise, c"prototype".as_ptr(), &mut promise_proto)
                != sys::Status::napi_ok
        {
            return Err(napi::Error::from_reason(
                "@app/redis: the global JSON, Array and Promise objects are not readable",
            ));
        }
        if host_stubs_libuv(env, global) {
            crate::engine::uv::refuse();
        }
        let mut promise_ref = ptr::null_mut();
        sys::napi_create_reference(env, promise, 1, &mut promise_ref);
        PerEnv {
            queue_microtask: function(env, global, c"queueMicrotask"),
            json_parse: function(env, json, c"parse"),
            json_stringify: function(env, json, c"stringify"),
            array_of: function(env, array, c"of"),
            promise: promise_ref,
            promise_resolve: function(env, promise, c"resolve"),
            promise_then: function(env, promise_proto, c"then"),
            lock_context: std::cell::Cell::new(ptr::null_mut()),
            abort_lock_context: std::cell::Cell::new(ptr::null_mut()),
            pairs: std::cell::Cell::new(ptr::null_mut()),
            exports: std::cell::Cell::new(ptr::null_mut()),
            record_keys: std::cell::RefCell::new(None),
            gone: Gone::default(),
            open: Mutex::new(Vec::new()),
        }
    };
    // Two owners: the instance data (released by its finalizer) and the cleanup hook (released
    // when it runs), so neither depends on the order Node runs them in.
    // `Rc`: both owners run on this environment's JS thread.
    let data = Rc::new(data);
    let for_hook = Rc::into_raw(Rc::clone(&data)) as *mut std::ffi::c_void;
    let for_instance = Rc::into_raw(data) as *mut std::ffi::c_void;
    let hint = ptr::null_mut();
    // SAFETY: `for_instance` is an owned Rc pointer; Node hands it to `finalize` once, at teardown.
    let status = unsafe { sys::napi_set_instance_data(env, for_instance, Some(finalize), hint) };
    if status != sys::Status::napi_ok {
        // SAFETY: Node took neither pointer: both counts are still ours to release.
        unsafe {
            drop(Rc::from_raw(for_instance as *const PerEnv));
            drop(Rc::from_raw(for_hook as *const PerEnv));
        }
        return Err(napi::Error::from_reason(
            "@app/redis: could not set instance data",
        ));
    }
    // SAFETY: `for_hook` is an owned Rc pointer, released by `cleanup` when Node runs it;
    // `(cleanup, for_hook)` is unique (one allocation per environment).
    let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(cleanup), for_hook) };
    if status != sys::Status::napi_ok {
        // SAFETY: the hook was not added: its count is ours to release.
        unsafe { drop(Rc::from_raw(for_hook as *const PerEnv)) };
        return Err(napi::Error::from_reason(
            "@app/redis: could not add the cleanup hook",
        ));
    }
    Ok(())
}

/// The environment's data, if the addon registered in it.
fn data<'a>(env: JsEnv<'a>) -> Option<&'a PerEnv> {
    let mut data = ptr::null_mut();
    // SAFETY: `env` proves a callback of its env on this thread; `data` is a valid local.
    if unsafe { sys::napi_get_instance_data(env.raw(), &mut data) } != sys::Status::napi_ok
        || data.is_null()
    {
        return None;
    }
    // SAFETY: our only instance data is an `Rc<PerEnv>` count (`install`), released at teardown,
    // after which no callback of `env` runs, so it outlives the callback `'a` (the token's).
    Some(unsafe { &*(data as *const PerEnv) })
}

/// The reference to the pipeline-pairs helper compiled in `env` (NULL until `set_pairs`).
pub(crate) fn pairs(env: JsEnv) -> sys::napi_ref {
    data(env).map_or(ptr::null_mut(), |d| d.pairs.get())
}

/// Keeps `r` (a strong reference of `env`) as the pipeline-pairs helper; `false` if `env` has
/// no data (the caller then deletes `r` itself).
pub(crate) fn set_pairs(env: JsEnv, r: sys::napi_ref) -> bool {
    match data(env) {
        Some(d) => {
            d.pairs.set(r);
            true
        }
        None => false,
    }
}

/// Keeps `withLock`'s context helpers (module init, after `install`): `make` and `abort` must
/// be functions of `env`.
pub(crate) fn set_lock_helpers(env: JsEnv, make: sys::napi_value, abort: sys::napi_value) {
    let Some(d) = data(env) else {
        return;
    };
    for (slot, f) in [(&d.lock_context, make), (&d.abort_lock_context, abort)] {
        let mut r = ptr::null_mut();
        // SAFETY: module init of `env`; `f` is a live value of it; `r` a valid local. A slot is
        // set once per environment (module init runs once per environment).
        if unsafe { sys::napi_create_reference(env.raw(), f, 1, &mut r) } == sys::Status::napi_ok {
            slot.set(r);
        }
    }
}

/// Keeps a strong reference to the module's exports object (module init, after `install`).
pub(crate) fn set_exports(env: JsEnv, exports: sys::napi_value) {
    let Some(d) = data(env) else {
        return;
    };
    let mut r = ptr::null_mut();
    // SAFETY: module init of `env`; `exports` is its live exports object; `r` a valid local.
    if unsafe { sys::napi_create_reference(env.raw(), exports, 1, &mut r) } == sys::Status::napi_ok
    {
        d.exports.set(r);
    }
}

/// The module's exports object in `env`, if kept.
pub(crate) fn exports(env: JsEnv) -> Option<sys::napi_value> {
    let r = data(env)?.exports.get();
    let mut v = ptr::null_mut();
    // SAFETY: `r`, when set, is a strong reference of `env`, kept for its lifetime.
    let ok = !r.is_null()
        && unsafe { sys::napi_get_reference_value(env.raw(), r, &mut v) } == sys::Status::napi_ok;
    (ok && !v.is_null()).then_some(v)
}

/// Runs `f` with `env`'s record-keys slot (see `Js::keys`); `None` if `env` has no data.
///
/// `f` must not call back into this function (the slot is borrowed; a nested call gets `None`).
pub(crate) fn with_record_keys<R>(
    env: JsEnv,
    f: impl FnOnce(&mut Option<(sys::napi_ref, Vec<&'static str>)>) -> R,
) -> Option<R> {
    let d = data(env)?;
    let mut slot = d.record_keys.try_borrow_mut().ok()?;
    Some(f(&mut slot))
}

/// The environment's gone flag (a fresh, never-set one if the addon did not register in it).
pub(crate) fn gone(env: JsEnv) -> Gone {
    data(env).map(|d| d.gone.clone()).unwrap_or_default()
}

/// Registers something with libuv handles in `env`, to be torn down with it.
pub(crate) fn track(env: JsEnv, item: Weak<dyn Teardown>) {
    if let Some(d) = data(env) {
        if let Ok(mut open) = d.open.lock() {
            // Forget what is already gone, so the list stays as long as what is open.
            open.retain(|w| w.strong_count() > 0);
            open.push(item);
        }
    }
}

/// The environment is being torn down: mark it gone, then close everything still open.
unsafe extern "C" fn cleanup(arg: *mut std::ffi::c_void) {
    if arg.is_null() {
        return;
    }
    // SAFETY: `arg` is the hook's own Rc count from `install`, handed back once.
    let d = unsafe { Rc::from_raw(arg as *const PerEnv) };
    d.gone.0.store(true, Ordering::Release);
    let open = d
        .open
        .lock()
        .map(|mut o| std::mem::take(&mut *o))
        .unwrap_or_default();
    for item in open.iter().filter_map(Weak::upgrade) {
        item.teardown();
    }
}

/// The original function `which` in `env`, or `None` (it was not a function at load, or the
/// environment is shutting down).
pub fn get(env: JsEnv, which: Fn) -> Option<sys::napi_value> {
    let i = data(env)?;
    let r = match which {
        Fn::QueueMicrotask => i.queue_microtask,
        Fn::JsonParse => i.json_parse,
        Fn::JsonStringify => i.json_stringify,
        Fn::ArrayOf => i.array_of,
        Fn::Promise => i.promise,
        Fn::PromiseResolve => i.promise_resolve,
        Fn::PromiseThen => i.promise_then,
        Fn::LockContext => i.lock_context.get(),
        Fn::AbortLockContext => i.abort_lock_context.get(),
    };
    if r.is_null() {
        return None;
    }
    let mut f = ptr::null_mut();
    // SAFETY: `r` is a strong reference of `env`, never deleted before teardown.
    let ok = unsafe { sys::napi_get_reference_value(env.raw(), r, &mut f) } == sys::Status::napi_ok;
    (ok && !f.is_null()).then_some(f)
}

unsafe extern "C" fn finalize(
    _env: sys::napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    if data.is_null() {
        return;
    }
    // Its references are freed by Node with the environment (deleting them mid-teardown is not
    // allowed). SAFETY: `data` is the instance data's Rc count from `install`, handed back once.
    drop(unsafe { Rc::from_raw(data as *const PerEnv) });
}
