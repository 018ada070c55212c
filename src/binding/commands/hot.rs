//! The command methods (and the hottest feature methods) as direct Node-API entry points
//! (`engine::entry` does the raw part: receiver check, argument reading, installation). A
//! generated `#[napi]` method on `&self` registers and releases a borrow of the instance and
//! converts its arguments and result through generic wrappers on every call; with hundreds of
//! calls in flight that was about a quarter of the CPU per `get` (1.2 -> 0.9 µs, measured).
//! `RedisService` has no `&mut self` method, so the borrow tracking guards nothing here. These
//! entry points check `this` as napi-rs does, then run exactly what the generated method runs
//! (`commands::preps` + `RedisService::run`); a recently called instance costs an identity
//! comparison (0.97 -> 0.83 µs per `get` with 256 in flight, measured). Pipeline builder methods
//! get the same treatment (`chain`). Module init installs the entry points over the generated
//! methods; the typings and docs stay on those.

use std::ptr;

use napi::bindgen_prelude::{Env, Unknown};
use napi::sys;

use crate::binding::args::{Arg, Ctx};
use crate::binding::commands::Pipeline;
use crate::binding::commands::{entry, pipeline_entry, B};
use crate::binding::error::JsPromise;
use crate::binding::error::{check_no_exception, JsResult};
use crate::binding::js::Js;
use crate::binding::service::RedisService;
use crate::core::reply::Prep;
use crate::core::Error;
use crate::engine::entry::{call_info, install_on, receiver, Receivers};
use crate::engine::js_thread::JsEnv;

/// Most arguments a command method takes; the slot after them holds `undefined`.
pub const MAX_ARGS: usize = 4;

thread_local! {
    /// Checking a `this` costs two private-property lookups (the type tag and the wrapped
    /// pointer), about a tenth of a `get`'s CPU with many calls in flight; a call on an instance
    /// seen recently costs one weak-reference read and one identity comparison instead.
    static SERVICES: Receivers = const { Receivers::new() };
    static PIPELINES: Receivers = const { Receivers::new() };
}

/// The arguments of a call (missing ones are `undefined`) and its `this`; `None` with an
/// exception pending when they cannot be read.
fn args_of(
    env: JsEnv,
    info: sys::napi_callback_info,
) -> Option<(sys::napi_value, [Arg; MAX_ARGS + 1])> {
    let (this, argv) = call_info::<{ MAX_ARGS + 1 }>(env, info)?;
    // SAFETY: each value is an argument (or `undefined`) of this callback of `env`, and the
    // `Arg`s are used within it.
    Some((this, argv.map(|v| unsafe { Arg::new(env.raw(), v) })))
}

/// Throws "`method`(): must be called on a `class`".
fn wrong_this(env: JsEnv, method: &str, class: &str) {
    Js::new(env).throw_error(&Error::arg(format!(
        "{method}(): must be called on a {class}"
    )));
}

/// The receiver (checked), the `this` it came from and the arguments of a call (missing ones
/// are `undefined`); `None` after throwing when `this` is not a `RedisService`.
fn receive<'a>(
    env: JsEnv,
    info: sys::napi_callback_info,
    method: &str,
) -> Option<(&'a RedisService, sys::napi_value, [Arg; MAX_ARGS + 1])> {
    let (this, args) = args_of(env, info)?;
    match receiver::<RedisService>(&SERVICES, env, this) {
        // SAFETY: alive (see `engine::entry::receiver`); `RedisService` is only ever borrowed shared.
        Some(svc) => Some((unsafe { &*svc }, this, args)),
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
    let Some((svc, _, args)) = receive(env, info, method) else {
        return ptr::null_mut();
    };
    let built = prep(B::new(Ctx { method }, svc.prefix()), &args);
    let env_ = Env::from_raw(env.raw());
    let r = if method == "call" {
        svc.run_uncached(&env_, built)
    } else {
        svc.run(&env_, built)
    };
    promise(env, r)
}

/// Queues command `method` on the pipeline `this` (`prep` builds it from the arguments) and
/// returns `this`, or throws the argument error.
pub fn chain(
    env: JsEnv,
    info: sys::napi_callback_info,
    method: &'static str,
    prep: impl FnOnce(B<'_>, &[Arg; MAX_ARGS + 1]) -> Result<Prep, Error>,
) -> sys::napi_value {
    let Some((this, args)) = args_of(env, info) else {
        return ptr::null_mut();
    };
    let Some(p) = receiver::<Pipeline>(&PIPELINES, env, this) else {
        wrong_this(env, method, "Pipeline");
        return ptr::null_mut();
    };
    // No reference into the pipeline is held while `prep` reads the arguments (which may run
    // JS, even a call on this pipeline): only its prefix, which never changes.
    // SAFETY: `p` is alive (see `engine::entry::receiver`); only its immutable prefix is read.
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
            // SAFETY: alive (see `engine::entry::receiver`), and no other reference to it is live now.
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

/// Entry points for the feature methods (they keep their `#[napi]` definitions, which carry the
/// typings and docs); each calls the same method the generated wrapper calls. `@this,` before the
/// arguments passes the receiver's JS object first (the lock methods keep it alive while their
/// callback runs).
macro_rules! feature_entries {
    ($($js:literal => $method:ident($(@$this:ident,)? $($arg:ident),*)),* $(,)?) => {
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
                    #[allow(unused_variables)]
                    let Some((svc, this, a)) = receive(env, info, $js) else {
                        return ptr::null_mut();
                    };
                    #[allow(unused_mut, unused_variables)]
                    let mut next = a.iter();
                    let r = svc.$method(
                        Env::from_raw(env.raw())
                        $(, { let _ = stringify!($this); this })?
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
    "createSession" => create_session(user_id, data, ttl_seconds),
    "setSession" => set_session(id, data, ttl_seconds),
    "updateSession" => update_session(id, patch),
    "refreshSession" => refresh_session(id, ttl_seconds),
    "destroySession" => destroy_session(id),
    "wrap" => wrap(key, ttl_seconds, loader, options),
    "withLock" => with_lock_on(@this, key, func, ttl),
    "withSemaphore" => with_semaphore_on(@this, key, limit, func, options),
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
