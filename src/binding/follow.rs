//! Calling a user's callback that may return a value, return a promise (or any thenable), or
//! throw synchronously, and hearing once how it settled, on the JS thread. The callback's value
//! never leaves JS (cache loaders; the same contract as `withLock`'s callback).

use std::cell::RefCell;
use std::rc::Rc;

use napi::sys;

use crate::binding::js::Js;
use crate::core::Error;
use crate::engine::per_env;

/// Called once with `(js, fulfilled, value)`.
pub type OnSettled = Box<dyn FnOnce(&Js, bool, sys::napi_value)>;

type Slot = Rc<RefCell<Option<OnSettled>>>;

fn fire(slot: &Slot, js: &Js, ok: bool, v: sys::napi_value) {
    let f = slot.borrow_mut().take();
    if let Some(f) = f {
        f(js, ok, v);
    }
}

/// Calls `func(...args)` and reports its outcome to `done`, at once for a value or a throw,
/// later for a promise.
pub fn call(js: &Js, func: sys::napi_value, args: &[sys::napi_value], done: OnSettled) {
    let ret = match js.call(std::ptr::null_mut(), func, args) {
        Ok(v) => v,
        Err(e) => return done(js, false, e),
    };
    let kind = js.type_of(ret);
    if kind != sys::ValueType::napi_object && kind != sys::ValueType::napi_function {
        return done(js, true, ret);
    }
    let then = match js.get_named(ret, c"then") {
        Ok(t) => t,
        Err(e) => return done(js, false, e),
    };
    if js.type_of(then) != sys::ValueType::napi_function {
        return done(js, true, ret);
    }
    // Promise.resolve(ret).then(ok, err) adopts any thenable. The originals taken at load are
    // called: user code may have replaced `Promise` or `Promise.prototype.then`.
    let env = js.env();
    let (Some(promise_ctor), Some(resolve), Some(p_then)) = (
        per_env::get(env, per_env::Fn::Promise),
        per_env::get(env, per_env::Fn::PromiseResolve),
        per_env::get(env, per_env::Fn::PromiseThen),
    ) else {
        let e = Error::Connection("the environment is shutting down".into());
        return done(js, false, js.error(&e));
    };
    let p = match js.call(promise_ctor, resolve, &[ret]) {
        Ok(p) => p,
        Err(e) => return done(js, false, e),
    };
    let slot: Slot = Rc::new(RefCell::new(Some(done)));
    let on_ok = Rc::clone(&slot);
    let ok = js.once_fn(c"onFulfilled", move |js, v| fire(&on_ok, js, true, v));
    let on_err = Rc::clone(&slot);
    let err = js.once_fn(c"onRejected", move |js, v| fire(&on_err, js, false, v));
    if let Err(e) = js.call(p, p_then, &[ok, err]) {
        fire(&slot, js, false, e);
    }
}
