//! The command methods (and the hottest feature methods) without napi-rs's per-call bookkeeping. A generated `#[napi]` method on
//! `&self` registers and releases a borrow of the instance and converts its arguments and result
//! through generic wrappers on every call; with hundreds of calls in flight that was about a
//! quarter of the CPU per `get` (1.2 -> 0.9 µs, measured). `RedisService` has no `&mut self`
//! method, so the borrow tracking guards nothing here. These entry points unwrap `this`
//! themselves, after the same class check napi-rs makes (the type tag it puts on every instance),
//! then run exactly what the generated method runs (`commands::preps` + `RedisService::run`).
//! Module init installs them over the generated methods; the typings and docs stay on those.

use std::ptr;

use napi::bindgen_prelude::{Env, TypeTag, Unknown};
use napi::sys;

use crate::binding::args::{Arg, Ctx};
use crate::binding::commands::{entry, Prep, B};
use crate::binding::error::{js_error, JsResult};
use crate::binding::service::{JsPromise, RedisService};
use crate::core::Error;

/// Most arguments a command method takes; the slot after them holds `undefined`.
pub const MAX_ARGS: usize = 4;

/// The `this` of a call, if it is a `RedisService` instance.
///
/// # Safety
/// JS thread, inside a callback of `env`.
unsafe fn service<'a>(env: sys::napi_env, this: sys::napi_value) -> Option<&'a RedisService> {
    let mut wrapped = ptr::null_mut();
    let tag = RedisService::type_tag();
    let mut tagged = false;
    unsafe {
        if sys::napi_check_object_type_tag(env, this, &tag, &mut tagged) != sys::Status::napi_ok
            || !tagged
            || sys::napi_unwrap(env, this, &mut wrapped) != sys::Status::napi_ok
            || wrapped.is_null()
        {
            return None;
        }
        // napi-rs wraps each instance as a `Box<RedisService>` pointer, freed by its finalizer
        // only once the object is garbage (and it is alive: it is `this`).
        Some(&*(wrapped as *const RedisService))
    }
}

/// The receiver (checked) and the arguments of a call (missing ones are `undefined`); `None`
/// after throwing when `this` is not a `RedisService`.
///
/// # Safety
/// Called by Node-API on the JS thread.
unsafe fn receive<'a>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    method: &str,
) -> Option<(&'a RedisService, [Arg; MAX_ARGS + 1])> {
    let mut argc = MAX_ARGS;
    let mut argv = [ptr::null_mut(); MAX_ARGS + 1];
    let mut this = ptr::null_mut();
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            &mut this,
            ptr::null_mut(),
        );
        let Some(svc) = service(env, this) else {
            let e = Error::arg(format!("{method}(): must be called on a RedisService"));
            sys::napi_throw(env, js_error(env, &e));
            return None;
        };
        let mut undefined = ptr::null_mut();
        sys::napi_get_undefined(env, &mut undefined);
        let args = argv.map(|v| Arg {
            env,
            v: if v.is_null() { undefined } else { v },
        });
        Some((svc, args))
    }
}

/// Runs command `method`: `prep` builds it from the arguments.
///
/// # Safety
/// Called by Node-API on the JS thread.
pub unsafe fn call(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    method: &'static str,
    prep: impl FnOnce(B<'_>, &[Arg; MAX_ARGS + 1]) -> Result<Prep, Error>,
) -> sys::napi_value {
    let Some((svc, args)) = (unsafe { receive(env, info, method) }) else {
        return ptr::null_mut();
    };
    let built = prep(B::new(Ctx { method }, svc.prefix()), &args);
    promise(env, svc.run(&Env::from_raw(env), built))
}

/// The promise a method returned, or `NULL` with its exception thrown.
fn promise(env: sys::napi_env, r: JsResult<JsPromise>) -> sys::napi_value {
    match r {
        Ok(p) => p.0,
        // Our methods throw before returning an error (`error::throw`); anything else is thrown here.
        Err(e) if e.status == napi::Status::PendingException => ptr::null_mut(),
        Err(e) => {
            unsafe { sys::napi_throw(env, js_error(env, &Error::Reply(e.reason.clone()))) };
            ptr::null_mut()
        }
    }
}

/// Entry points for the hottest feature methods (they keep their `#[napi]` definitions, which
/// carry the typings and docs); each calls the same method the generated wrapper calls.
macro_rules! feature_entries {
    ($($js:literal => $method:ident($($arg:ident),*)),* $(,)?) => {
        mod feature_entry {
            use super::*;
            $(
                /// # Safety
                /// Called by Node-API on the JS thread.
                pub unsafe extern "C" fn $method(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                    const _: () = assert!(<[&str]>::len(&[$(stringify!($arg)),*]) <= MAX_ARGS);
                    let Some((svc, a)) = (unsafe { receive(env, info, $js) }) else {
                        return ptr::null_mut();
                    };
                    #[allow(unused_mut, unused_variables)]
                    let mut next = a.iter();
                    let r = svc.$method(
                        Env::from_raw(env)
                        $(, { let _ = stringify!($arg); unknown(next.next().unwrap_or(&a[MAX_ARGS])) })*
                    );
                    promise(env, r)
                }
            )*
            pub const ALL: &[(&str, unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value)] = &[
                $(($js, $method),)*
            ];
        }
    };
}

feature_entries! {
    "rateLimit" => rate_limit(key, options),
    "acquireLock" => acquire_lock(key, ttl),
    "releaseLock" => release_lock(key, token),
    "extendLock" => extend_lock(key, token, ttl),
    "getSession" => get_session(id),
}

/// An argument as napi-rs's `Unknown` (which any value converts to).
fn unknown<'a>(a: &Arg) -> Unknown<'a> {
    // SAFETY: `Unknown` accepts every value; `a` is a live argument of the current call.
    unsafe { Unknown::from_raw_unchecked(a.env, a.v) }
}

/// Installs the entry points over the generated methods of `exports.RedisService.prototype`.
///
/// # Safety
/// Module init, on the JS thread.
pub unsafe fn install(env: sys::napi_env, exports: sys::napi_value) {
    let mut class = ptr::null_mut();
    let mut proto = ptr::null_mut();
    unsafe {
        if sys::napi_get_named_property(env, exports, c"RedisService".as_ptr(), &mut class)
            != sys::Status::napi_ok
            || sys::napi_get_named_property(env, class, c"prototype".as_ptr(), &mut proto)
                != sys::Status::napi_ok
        {
            return;
        }
        for (name, cb) in entry::ALL.iter().chain(feature_entry::ALL) {
            let mut f = ptr::null_mut();
            let mut key = ptr::null_mut();
            if sys::napi_create_function(
                env,
                name.as_ptr().cast(),
                name.len() as isize,
                Some(*cb),
                ptr::null_mut(),
                &mut f,
            ) != sys::Status::napi_ok
                || sys::napi_create_string_utf8(
                    env,
                    name.as_ptr().cast(),
                    name.len() as isize,
                    &mut key,
                ) != sys::Status::napi_ok
            {
                continue;
            }
            let desc = sys::napi_property_descriptor {
                utf8name: ptr::null(),
                name: key,
                method: None,
                getter: None,
                setter: None,
                value: f,
                attributes: sys::PropertyAttributes::writable
                    | sys::PropertyAttributes::configurable,
                data: ptr::null_mut(),
            };
            sys::napi_define_properties(env, proto, 1, &desc);
        }
    }
}
