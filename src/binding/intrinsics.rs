//! The global JS functions the addon calls (`queueMicrotask`, `JSON.parse`, `JSON.stringify`,
//! `Array.of`), taken once per environment when the addon registers and kept in the
//! environment's instance data. User code that later replaces one of those globals (a test that
//! stubs `queueMicrotask` for a tick, a library that patches `JSON`) cannot stall the engine or
//! see our values: the engine keeps calling the originals.
//!
//! Instance data belongs to one registration of the addon in one environment (a worker, or a
//! second load after the require cache was cleared, gets its own), and Node frees it with that
//! environment.

use std::ptr;

use napi::sys;

/// References to the originals (strong: they live as long as the environment).
struct Intrinsics {
    queue_microtask: sys::napi_ref,
    json_parse: sys::napi_ref,
    json_stringify: sys::napi_ref,
    array_of: sys::napi_ref,
}

/// Which original to call.
#[derive(Clone, Copy)]
pub enum Fn {
    QueueMicrotask,
    JsonParse,
    JsonStringify,
    ArrayOf,
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

/// Takes the originals from `globalThis` (module init).
///
/// # Safety
/// Module init of `env`, on its JS thread.
pub unsafe fn install(env: sys::napi_env) -> napi::Result<()> {
    let mut global = ptr::null_mut();
    let mut json = ptr::null_mut();
    let mut array = ptr::null_mut();
    // SAFETY: module init of `env` (this function's contract); statuses checked.
    let data = unsafe {
        if sys::napi_get_global(env, &mut global) != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"JSON".as_ptr(), &mut json)
                != sys::Status::napi_ok
            || sys::napi_get_named_property(env, global, c"Array".as_ptr(), &mut array)
                != sys::Status::napi_ok
        {
            return Err(napi::Error::from_reason(
                "@app/redis: the global JSON and Array objects are not readable",
            ));
        }
        Intrinsics {
            queue_microtask: function(env, global, c"queueMicrotask"),
            json_parse: function(env, json, c"parse"),
            json_stringify: function(env, json, c"stringify"),
            array_of: function(env, array, c"of"),
        }
    };
    let data = Box::into_raw(Box::new(data));
    // SAFETY: `data` is a fresh Box pointer, handed to Node, which passes it to `finalize`
    // exactly once when the environment is torn down.
    let status =
        unsafe { sys::napi_set_instance_data(env, data.cast(), Some(finalize), ptr::null_mut()) };
    if status != sys::Status::napi_ok {
        // SAFETY: Node did not take `data`: it is still ours alone.
        drop(unsafe { Box::from_raw(data) });
        return Err(napi::Error::from_reason(
            "@app/redis: could not set instance data",
        ));
    }
    Ok(())
}

/// The original function `which` in `env`, or `None` (it was not a function at load, or the
/// environment is shutting down).
///
/// # Safety
/// JS thread, inside a callback of `env`.
pub unsafe fn get(env: sys::napi_env, which: Fn) -> Option<sys::napi_value> {
    let mut data = ptr::null_mut();
    // SAFETY: the caller's contract; `data` is a valid local.
    if unsafe { sys::napi_get_instance_data(env, &mut data) } != sys::Status::napi_ok
        || data.is_null()
    {
        return None;
    }
    // SAFETY: the only instance data this addon sets is an `Intrinsics` (in `install`), alive
    // until `finalize` at environment teardown, after which no callback of `env` runs.
    let i = unsafe { &*(data as *const Intrinsics) };
    let r = match which {
        Fn::QueueMicrotask => i.queue_microtask,
        Fn::JsonParse => i.json_parse,
        Fn::JsonStringify => i.json_stringify,
        Fn::ArrayOf => i.array_of,
    };
    if r.is_null() {
        return None;
    }
    let mut f = ptr::null_mut();
    // SAFETY: `r` is a strong reference of `env`, never deleted before teardown.
    let ok = unsafe { sys::napi_get_reference_value(env, r, &mut f) } == sys::Status::napi_ok;
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
    // SAFETY: `data` is the Box leaked in `install`, handed back once. The references in it are
    // freed by Node with the environment (deleting them here, mid-teardown, is not allowed).
    drop(unsafe { Box::from_raw(data as *mut Intrinsics) });
}
