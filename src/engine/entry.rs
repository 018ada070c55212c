//! Direct Node-API entry points: what a method installed over a generated `#[napi]` method
//! needs to do napi-rs's per-call work itself, cheaper. Knows no class or feature: the binding
//! names the classes (`T`) and the methods.
//!
//! A generated method on `&self` registers and releases a borrow of the instance and converts
//! its arguments and result through generic wrappers on every call (about a quarter of the CPU
//! of a `get` with hundreds in flight, measured). An entry point instead checks `this` as
//! napi-rs does (the type tag on every instance) and reads its arguments raw. That check is two
//! private-property lookups, so each thread remembers its few most recently called instances
//! per class by weak reference ([`Receivers`]): a call on one of them costs an identity
//! comparison.

use std::ptr;

use napi::bindgen_prelude::TypeTag;
use napi::sys;

use crate::engine::js_thread::JsEnv;

/// How many recently called instances [`receiver`] remembers per class and JS thread.
const RECENT: usize = 4;

/// An instance recently called on this thread: its env, a weak reference to its JS object and
/// its Rust instance (valid while the object lives).
#[derive(Clone, Copy)]
struct Recent {
    env: sys::napi_env,
    obj: sys::napi_ref,
    native: *mut std::ffi::c_void,
}

/// The instances of one class recently called on this thread (keep one per class in a
/// `thread_local!`). Entries carry their env: another env's entry (a worker, a second load of
/// the addon) is skipped, and dropped without deleting its reference, which dies with its env.
pub struct Receivers(std::cell::Cell<[Option<Recent>; RECENT]>);

impl Receivers {
    pub const fn new() -> Self {
        Receivers(std::cell::Cell::new([None; RECENT]))
    }
}

/// The `this` of a call, if it is an instance of the `#[napi]` class `T` (whose recent instances
/// `seen` remembers). The pointer is napi-rs's `Box<T>`, alive while `this` is (at least for the
/// call).
pub fn receiver<T: TypeTag>(
    seen: &'static std::thread::LocalKey<Receivers>,
    env: JsEnv,
    this: sys::napi_value,
) -> Option<*mut T> {
    let mut recent = seen.with(|s| s.0.get());
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
        seen.with(|s| s.0.set(recent));
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

/// The `this` of a call and its first `N - 1` arguments, the missing ones (and the last slot,
/// always) `undefined`; `None` (an exception pending) when Node-API refuses.
pub fn call_info<const N: usize>(
    env: JsEnv,
    info: sys::napi_callback_info,
) -> Option<(sys::napi_value, [sys::napi_value; N])> {
    let mut argc = N - 1;
    let mut argv = [ptr::null_mut(); N];
    let mut this = ptr::null_mut();
    let mut undefined = ptr::null_mut();
    // SAFETY: a Node-API callback on the JS thread of `env` (the token's proof), with this
    // callback's `info`; `argv` has room for `argc` values; statuses are checked.
    let ok = unsafe {
        sys::napi_get_cb_info(
            env.raw(),
            info,
            &mut argc,
            argv.as_mut_ptr(),
            &mut this,
            ptr::null_mut(),
        ) == sys::Status::napi_ok
            && sys::napi_get_undefined(env.raw(), &mut undefined) == sys::Status::napi_ok
    };
    ok.then(|| (this, argv.map(|v| if v.is_null() { undefined } else { v })))
}

/// A Node-API callback, as installed by [`install_on`].
pub type Entry = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// Defines each `(name, entry)` on `exports[class].prototype` (module init).
pub fn install_on<'a>(
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
