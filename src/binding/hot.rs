//! The command methods (and the hottest feature methods) without napi-rs's per-call bookkeeping. A generated `#[napi]` method on
//! `&self` registers and releases a borrow of the instance and converts its arguments and result
//! through generic wrappers on every call; with hundreds of calls in flight that was about a
//! quarter of the CPU per `get` (1.2 -> 0.9 µs, measured). `RedisService` has no `&mut self`
//! method, so the borrow tracking guards nothing here. These entry points unwrap `this`
//! themselves, after the same class check napi-rs makes (the type tag it puts on every instance),
//! then run exactly what the generated method runs (`commands::preps` + `RedisService::run`).
//! That check is two private-property lookups, so each thread remembers its few most recently
//! called instances by weak reference: a call on one of them costs an identity comparison
//! (0.97 -> 0.83 µs per `get` with 256 in flight, measured). Pipeline builder methods get the
//! same treatment (`chain`). Module init installs the entry points over the generated methods;
//! the typings and docs stay on those.

use std::ptr;

use napi::bindgen_prelude::{Env, TypeTag, Unknown};
use napi::sys;

use crate::binding::args::{Arg, Ctx};
use crate::binding::commands::{entry, pipeline_entry, Prep, B};
use crate::binding::error::{check_no_exception, JsResult};
use crate::binding::js::Js;
use crate::binding::pipeline::Pipeline;
use crate::binding::service::{JsPromise, RedisService};
use crate::core::Error;
use crate::engine::js_thread::JsEnv;

/// Most arguments a command method takes; the slot after them holds `undefined`.
pub const MAX_ARGS: usize = 4;

/// How many recently called instances [`unwrap`] remembers per class and JS thread.
const RECENT: usize = 4;

/// An instance recently called on this thread: its env, a weak reference to its JS object and
/// its Rust instance (valid while the object lives).
#[derive(Clone, Copy)]
struct Recent {
    env: sys::napi_env,
    obj: sys::napi_ref,
    native: *mut std::ffi::c_void,
}

type Seen = std::cell::Cell<[Option<Recent>; RECENT]>;

thread_local! {
    /// Checking a `this` costs two private-property lookups (the type tag and the wrapped
    /// pointer), about a tenth of a `get`'s CPU with many calls in flight; a call on an instance
    /// seen recently costs one weak-reference read and one identity comparison instead.
    static SERVICES: Seen = const { std::cell::Cell::new([None; RECENT]) };
    static PIPELINES: Seen = const { std::cell::Cell::new([None; RECENT]) };
}

/// The `this` of a call, if it is an instance of the `#[napi]` class `T` (whose recent instances
/// `seen` remembers).
fn unwrap<T: TypeTag>(
    seen: &'static std::thread::LocalKey<Seen>,
    env: JsEnv,
    this: sys::napi_value,
) -> Option<*mut T> {
    let mut recent = seen.with(std::cell::Cell::get);
    for r in recent.iter().flatten() {
        if r.env != env.raw() {
            continue;
        }
        let mut obj = ptr::null_mut();
        let mut same = false;
        // SAFETY: `r.obj` is a live reference of `env` (references are only deleted on their
        // eviction from this cache); a weak reference to a collected object reads as NULL.
        unsafe {
            if sys::napi_get_reference_value(env.raw(), r.obj, &mut obj) == sys::Status::napi_ok
                && !obj.is_null()
                && sys::napi_strict_equals(env.raw(), obj, this, &mut same) == sys::Status::napi_ok
                && same
            {
                // `this` is that object, so it is alive and so is the instance it wraps.
                return Some(r.native.cast());
            }
        }
    }
    let native = checked::<T>(env, this)?;
    let mut obj = ptr::null_mut();
    // SAFETY: JS thread of `env`; `this` is a live value of this call; `obj` a valid local.
    if unsafe { sys::napi_create_reference(env.raw(), this, 0, &mut obj) } == sys::Status::napi_ok {
        // The newest first; the oldest is forgotten.
        if let Some(old) = recent[RECENT - 1].take().filter(|old| old.env == env.raw()) {
            // SAFETY: references are only deleted here, on eviction, in the env they belong to
            // (checked: another env's entry is dropped without deleting; it dies with that env).
            unsafe { sys::napi_delete_reference(old.env, old.obj) };
        }
        recent.rotate_right(1);
        recent[0] = Some(Recent {
            env: env.raw(),
            obj,
            native: native.cast(),
        });
        seen.with(|s| s.set(recent));
    }
    Some(native)
}

/// The `this` of a call, if it is an instance of the `#[napi]` class `T`, checked as napi-rs
/// checks it (the type tag it puts on every instance).
fn checked<T: TypeTag>(env: JsEnv, this: sys::napi_value) -> Option<*mut T> {
    let mut wrapped = ptr::null_mut();
    let tag = T::type_tag();
    let mut tagged = false;
    // SAFETY: a callback of `env` on its thread (the token's proof); every status is checked
    // before the next call uses its result.
    unsafe {
        if sys::napi_check_object_type_tag(env.raw(), this, &tag, &mut tagged)
            != sys::Status::napi_ok
            || !tagged
            || sys::napi_unwrap(env.raw(), this, &mut wrapped) != sys::Status::napi_ok
            || wrapped.is_null()
        {
            return None;
        }
    }
    // napi-rs wraps each instance as a `Box<T>` pointer, freed by its finalizer only once the
    // object is garbage (and it is alive: it is `this`).
    Some(wrapped.cast())
}

/// The arguments of a call (missing ones are `undefined`) and its `this`.
fn args_of(env: JsEnv, info: sys::napi_callback_info) -> (sys::napi_value, [Arg; MAX_ARGS + 1]) {
    let mut argc = MAX_ARGS;
    let mut argv = [ptr::null_mut(); MAX_ARGS + 1];
    let mut this = ptr::null_mut();
    let mut undefined = ptr::null_mut();
    // SAFETY: a Node-API callback on the JS thread of `env` (the token's proof), with this
    // callback's `info`; `argv` has room for `argc` values.
    unsafe {
        sys::napi_get_cb_info(
            env.raw(),
            info,
            &mut argc,
            argv.as_mut_ptr(),
            &mut this,
            ptr::null_mut(),
        );
        sys::napi_get_undefined(env.raw(), &mut undefined);
    }
    // SAFETY: each value is an argument (or `undefined`) of this callback of `env`, and the
    // `Arg`s are used within it.
    let args =
        argv.map(|v| unsafe { Arg::new(env.raw(), if v.is_null() { undefined } else { v }) });
    (this, args)
}

/// Throws "`method`(): must be called on a `class`".
fn wrong_this(env: JsEnv, method: &str, class: &str) {
    Js::new(env).throw_error(&Error::arg(format!(
        "{method}(): must be called on a {class}"
    )));
}

/// The receiver (checked) and the arguments of a call (missing ones are `undefined`); `None`
/// after throwing when `this` is not a `RedisService`.
fn receive<'a>(
    env: JsEnv,
    info: sys::napi_callback_info,
    method: &str,
) -> Option<(&'a RedisService, [Arg; MAX_ARGS + 1])> {
    let (this, args) = args_of(env, info);
    match unwrap::<RedisService>(&SERVICES, env, this) {
        // SAFETY: alive (see `unwrap`); `RedisService` is only ever borrowed shared.
        Some(svc) => Some((unsafe { &*svc }, args)),
        None => {
            wrong_this(env, method, "RedisService");
            None
        }
    }
}

/// Runs command `method`: `prep` builds it from the arguments.
pub fn call(
    env: JsEnv,
    info: sys::napi_callback_info,
    method: &'static str,
    prep: impl FnOnce(B<'_>, &[Arg; MAX_ARGS + 1]) -> Result<Prep, Error>,
) -> sys::napi_value {
    let Some((svc, args)) = receive(env, info, method) else {
        return ptr::null_mut();
    };
    let built = prep(B::new(Ctx { method }, svc.prefix()), &args);
    promise(env, svc.run(&Env::from_raw(env.raw()), built))
}

/// Queues command `method` on the pipeline `this` (`prep` builds it from the arguments) and
/// returns `this`, or throws the argument error.
pub fn chain(
    env: JsEnv,
    info: sys::napi_callback_info,
    method: &'static str,
    prep: impl FnOnce(B<'_>, &[Arg; MAX_ARGS + 1]) -> Result<Prep, Error>,
) -> sys::napi_value {
    let (this, args) = args_of(env, info);
    let Some(p) = unwrap::<Pipeline>(&PIPELINES, env, this) else {
        wrong_this(env, method, "Pipeline");
        return ptr::null_mut();
    };
    // No reference into the pipeline is held while `prep` reads the arguments (which may run
    // JS, even a call on this pipeline): only its prefix, which never changes.
    // SAFETY: `p` is alive (see `unwrap`); only its immutable prefix is read.
    let prefix: *const [u8] = unsafe { (*p).prefix() };
    // SAFETY: the prefix is never changed or freed while the pipeline lives, and the pipeline
    // lives through this call (it is `this`).
    let built = prep(B::new(Ctx { method }, unsafe { &*prefix }), &args);
    if check_no_exception(env).is_err() {
        // A getter or Proxy trap threw while the arguments were read: nothing is queued, and
        // the exception reaches the caller.
        return ptr::null_mut();
    }
    match built {
        Ok(prep) => {
            // SAFETY: alive (see `unwrap`), and no other reference to it is live now.
            unsafe { (*p).queue(prep) };
            this
        }
        Err(e) => {
            Js::new(env).throw_error(&e);
            ptr::null_mut()
        }
    }
}

/// The promise a method returned, or `NULL` with its exception thrown.
fn promise(env: JsEnv, r: JsResult<JsPromise>) -> sys::napi_value {
    match r {
        Ok(p) => p.0,
        // Our methods throw before returning an error (`error::throw`); anything else is thrown here.
        Err(e) if e.status == napi::Status::PendingException => ptr::null_mut(),
        Err(e) => {
            Js::new(env).throw_error(&Error::Reply(e.reason.clone()));
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
                    // SAFETY: Node-API calls this on the JS thread of `env`; the token lives for
                    // this call only.
                    let env = unsafe { JsEnv::assume(env) };
                    let Some((svc, a)) = receive(env, info, $js) else {
                        return ptr::null_mut();
                    };
                    #[allow(unused_mut, unused_variables)]
                    let mut next = a.iter();
                    let r = svc.$method(
                        Env::from_raw(env.raw())
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
    a.unknown()
}

/// `Class.method` for every entry point [`install`] puts in place: they check `this`
/// themselves (`ERR_INVALID_ARGUMENT`), so the module's JS glue leaves them unwrapped.
pub fn checked_names() -> Vec<String> {
    let service = entry::ALL.iter().chain(feature_entry::ALL);
    service
        .map(|(n, _)| format!("RedisService.{n}"))
        .chain(
            pipeline_entry::ALL
                .iter()
                .map(|(n, _)| format!("Pipeline.{n}")),
        )
        .collect()
}

/// Installs the entry points over the generated methods of `exports.RedisService.prototype` and
/// `exports.Pipeline.prototype`.
pub fn install(env: JsEnv, exports: sys::napi_value) {
    install_on(
        env,
        exports,
        c"RedisService",
        entry::ALL.iter().chain(feature_entry::ALL),
    );
    install_on(env, exports, c"Pipeline", pipeline_entry::ALL.iter());
}

type Entry = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// Defines each `(name, entry)` on `exports[class].prototype`.
fn install_on<'a>(
    env: JsEnv,
    exports: sys::napi_value,
    class: &std::ffi::CStr,
    entries: impl Iterator<Item = &'a (&'a str, Entry)>,
) {
    let mut ctor = ptr::null_mut();
    let mut proto = ptr::null_mut();
    // SAFETY: module init on the JS thread of `env` (the `JsEnv` token proves it); statuses are
    // checked and a failed definition only leaves the generated method in place.
    unsafe {
        if sys::napi_get_named_property(env.raw(), exports, class.as_ptr(), &mut ctor)
            != sys::Status::napi_ok
            || sys::napi_get_named_property(env.raw(), ctor, c"prototype".as_ptr(), &mut proto)
                != sys::Status::napi_ok
        {
            return;
        }
        for (name, cb) in entries {
            let mut f = ptr::null_mut();
            let mut key = ptr::null_mut();
            if sys::napi_create_function(
                env.raw(),
                name.as_ptr().cast(),
                name.len() as isize,
                Some(*cb),
                ptr::null_mut(),
                &mut f,
            ) != sys::Status::napi_ok
                || sys::napi_create_string_utf8(
                    env.raw(),
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
            sys::napi_define_properties(env.raw(), proto, 1, &desc);
        }
    }
}
