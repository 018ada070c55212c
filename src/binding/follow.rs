//! Calling a user's callback that may return a value, return a promise (or any thenable), or
//! throw synchronously, and hearing once how it settled, on the JS thread. The callback's value
//! never leaves JS (cache loaders; the same contract as `withLock`'s callback).

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::rc::Rc;

use napi::sys;

use crate::binding::args::type_of;
use crate::binding::decode::Js;
use crate::engine::per_env;

/// Called once with `(env, fulfilled, value)`.
pub type OnSettled = Box<dyn FnOnce(sys::napi_env, bool, sys::napi_value)>;

type Slot = Rc<RefCell<Option<OnSettled>>>;

unsafe fn take_exception(env: sys::napi_env) -> sys::napi_value {
    let mut exc = ptr::null_mut();
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe { sys::napi_get_and_clear_last_exception(env, &mut exc) };
    exc
}

fn fire(slot: &Slot, env: sys::napi_env, ok: bool, v: sys::napi_value) {
    let f = slot.borrow_mut().take();
    if let Some(f) = f {
        f(env, ok, v);
    }
}

/// Calls `func(...args)` and reports its outcome to `done`, at once for a value or a throw,
/// later for a promise.
///
/// # Safety
/// JS thread only; `func` a function of `env`.
pub unsafe fn call(
    env: sys::napi_env,
    func: sys::napi_value,
    args: &[sys::napi_value],
    done: OnSettled,
) {
    let slot: Slot = Rc::new(RefCell::new(Some(done)));
    let js = Js::new(env);
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        let mut ret = ptr::null_mut();
        if sys::napi_call_function(
            env,
            js.undefined(),
            func,
            args.len(),
            args.as_ptr(),
            &mut ret,
        ) != sys::Status::napi_ok
        {
            return fire(&slot, env, false, take_exception(env));
        }
        let kind = type_of(env, ret);
        if kind != sys::ValueType::napi_object && kind != sys::ValueType::napi_function {
            return fire(&slot, env, true, ret);
        }
        let mut then = ptr::null_mut();
        if sys::napi_get_named_property(env, ret, c"then".as_ptr(), &mut then)
            != sys::Status::napi_ok
        {
            return fire(&slot, env, false, take_exception(env));
        }
        if type_of(env, then) != sys::ValueType::napi_function {
            return fire(&slot, env, true, ret);
        }
        // Promise.resolve(ret).then(ok, err) adopts any thenable. The originals taken at load
        // are called: user code may have replaced `Promise` or `Promise.prototype.then`.
        let (Some(promise_ctor), Some(resolve), Some(p_then)) = (
            per_env::get(env, per_env::Fn::Promise),
            per_env::get(env, per_env::Fn::PromiseResolve),
            per_env::get(env, per_env::Fn::PromiseThen),
        ) else {
            let e = crate::core::Error::Connection("the environment is shutting down".into());
            return fire(&slot, env, false, crate::binding::error::js_error(env, &e));
        };
        let mut p = ptr::null_mut();
        if sys::napi_call_function(env, promise_ctor, resolve, 1, &ret, &mut p)
            != sys::Status::napi_ok
        {
            return fire(&slot, env, false, take_exception(env));
        }
        let ok = reaction(env, &slot, c"onFulfilled", on_fulfilled);
        let err = reaction(env, &slot, c"onRejected", on_rejected);
        let fns = [ok, err];
        let mut out = ptr::null_mut();
        if sys::napi_call_function(env, p, p_then, 2, fns.as_ptr(), &mut out)
            != sys::Status::napi_ok
        {
            fire(&slot, env, false, take_exception(env));
        }
    }
}

unsafe fn reaction(
    env: sys::napi_env,
    slot: &Slot,
    name: &std::ffi::CStr,
    cb: unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value,
) -> sys::napi_value {
    let data = Box::into_raw(Box::new(Rc::clone(slot))) as *mut c_void;
    let mut f = ptr::null_mut();
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        let len = name.to_bytes().len() as isize;
        if sys::napi_create_function(env, name.as_ptr(), len, Some(cb), data, &mut f)
            != sys::Status::napi_ok
        {
            drop(Box::from_raw(data as *mut Slot));
            return ptr::null_mut();
        }
        sys::napi_add_finalizer(
            env,
            f,
            data,
            Some(drop_slot),
            ptr::null_mut(),
            ptr::null_mut(),
        );
    }
    f
}

unsafe extern "C" fn on_fulfilled(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: Node-API calls this on the JS thread of `env`, with this callback's `info`.
    unsafe { settle(env, info, true) }
}

unsafe extern "C" fn on_rejected(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: Node-API calls this on the JS thread of `env`, with this callback's `info`.
    unsafe { settle(env, info, false) }
}

unsafe fn settle(env: sys::napi_env, info: sys::napi_callback_info, ok: bool) -> sys::napi_value {
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        let mut argc = 1usize;
        let mut argv = [ptr::null_mut(); 1];
        let mut data = ptr::null_mut();
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        );
        if data.is_null() {
            return ptr::null_mut();
        }
        let v = if argc > 0 && !argv[0].is_null() {
            argv[0]
        } else {
            Js::new(env).undefined()
        };
        // SAFETY: `data` is the Slot box owned by this function until its finalizer runs.
        let slot = &*(data as *const Slot);
        fire(slot, env, ok, v);
    }
    ptr::null_mut()
}

unsafe extern "C" fn drop_slot(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if !data.is_null() {
        // SAFETY: the box leaked in `reaction`.
        unsafe { drop(Box::from_raw(data as *mut Slot)) };
    }
}
