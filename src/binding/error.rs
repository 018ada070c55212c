//! The one conversion from core errors to JS errors: an `Error` (or `TypeError` for bad input)
//! whose `code` is the core's stable code.

use std::ptr;

use napi::sys;

use crate::core::Error;

/// Result of a synchronous `#[napi]` call.
pub type JsResult<T> = napi::Result<T>;

/// Throws `e` as a JS error with our `code` (a `TypeError` for bad input), and returns the
/// marker napi-rs needs to leave that exception in place.
pub fn throw(env: sys::napi_env, e: Error) -> napi::Error {
    // SAFETY: callers pass the env of the JS call they are in (on its thread).
    unsafe { sys::napi_throw(env, js_error(env, &e)) };
    napi::Error::new(napi::Status::PendingException, e.to_string())
}

/// `Err` (the exception left in place) when a JS exception is pending on `env`: user code run
/// while the arguments were read (a getter, a Proxy trap) threw, and the call must stop before
/// it creates or sends anything. A failed check counts as pending.
pub fn check_no_exception(env: sys::napi_env) -> napi::Result<()> {
    let mut pending = false;
    // SAFETY: `env` is the env of the current callback; `pending` is a valid out pointer.
    let status = unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if status != sys::Status::napi_ok || pending {
        return Err(napi::Error::new(
            napi::Status::PendingException,
            "a JS exception is pending (thrown while the arguments were read)",
        ));
    }
    Ok(())
}

/// Creates a JS error object for `e`, with `code` set: a `TypeError` for invalid arguments.
///
/// # Safety
/// `env` must be the current JS thread's env.
pub unsafe fn js_error(env: sys::napi_env, e: &Error) -> sys::napi_value {
    let code = e.code();
    let msg = e.to_string();
    let mut code_v = ptr::null_mut();
    let mut msg_v = ptr::null_mut();
    let mut out = ptr::null_mut();
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        sys::napi_create_string_utf8(env, code.as_ptr().cast(), code.len() as isize, &mut code_v);
        sys::napi_create_string_utf8(env, msg.as_ptr().cast(), msg.len() as isize, &mut msg_v);
        if matches!(e, Error::InvalidArgument(_)) {
            sys::napi_create_type_error(env, code_v, msg_v, &mut out);
        } else {
            sys::napi_create_error(env, code_v, msg_v, &mut out);
        }
        if let Some(key) = e.lock_key() {
            let mut key_v = ptr::null_mut();
            sys::napi_create_string_utf8(env, key.as_ptr().cast(), key.len() as isize, &mut key_v);
            sys::napi_set_named_property(env, out, c"key".as_ptr(), key_v);
        }
    }
    out
}
