//! Raw JS values on the JS thread: the one place feature code goes through to make, read and
//! call JS values. [`Js`] is the JS-thread token; its methods check every Node-API status and
//! turn a thrown exception into an `Err` holding it (so nothing is left pending by accident).
//! This file makes values; `call.rs` reads them, calls into JS, keeps values past a callback and
//! makes JS functions of Rust closures.

mod call;

use std::cell::Cell;
use std::ptr;

use napi::sys;

use crate::core::reply::{Field, Record};
use crate::engine::js_thread::JsEnv;
use crate::engine::per_env;

/// Appends `[a, b]` to `out` for each two of the further arguments.
const PAIRS_SRC: &str =
    "(function (out, ...f) { for (let i = 0; i + 1 < f.length; i += 2) out.push([f[i], f[i + 1]]); })";

/// Most values [`Js::pairs`] hands over in one call (well inside V8's argument limits).
const PAIRS_CHUNK: usize = 2048;

/// V8's longest string, in UTF-16 code units (`v8::String::kMaxLength` on 64-bit builds).
pub const MAX_JS_STRING: usize = 536_870_888;

/// The JS thread of one environment, and the values made on it.
///
/// A `Js` wraps the engine's [`JsEnv`] token (the proof that the code runs on the JS thread of
/// its env, inside one of its callbacks, for the lifetime `'s`), so holding one is that proof
/// too: the ways to get one are [`Js::new`] from a `JsEnv` and [`Js::of`] from the `Env`
/// napi-rs hands a `#[napi]` method. It is neither `Send` nor `Sync`, and cannot outlive the
/// callback; a value to keep longer goes into a `JsRef`. Every method is therefore safe, and
/// checks Node-API's status.
///
/// A value Node-API cannot create (a string past [`MAX_JS_STRING`], or any value while the
/// environment shuts down) comes back as NULL and is remembered: `decode::reply` and
/// `decode::out` then reject with `ERR_REPLY` instead of passing NULL on (which crashed Node in
/// `napi_set_element` or left a promise unsettled).
pub struct Js<'s>(sys::napi_env, Cell<bool>, JsEnv<'s>);

impl<'s> Js<'s> {
    pub fn new(env: JsEnv<'s>) -> Js<'s> {
        Js(env.raw(), Cell::new(false), env)
    }

    /// The `Js` of a `#[napi]` method's env.
    pub fn of(env: &'s napi::Env) -> Js<'s> {
        // SAFETY: napi-rs passes an `Env` only to callbacks on its JS thread, and the borrow
        // ends with the method.
        Js::new(unsafe { JsEnv::assume(env.raw()) })
    }

    /// The engine's token, for engine calls.
    pub fn env(&self) -> JsEnv<'s> {
        self.2
    }

    /// Whether a value could not be created since the last [`Js::clear_failed`].
    pub fn failed(&self) -> bool {
        self.1.get()
    }

    pub fn clear_failed(&self) {
        self.1.set(false);
    }

    /// `v` if Node-API made it; else NULL, remembered as a failure.
    fn made(&self, status: sys::napi_status, v: sys::napi_value) -> sys::napi_value {
        if status != sys::Status::napi_ok || v.is_null() {
            self.1.set(true);
            return ptr::null_mut();
        }
        v
    }

    /// An `ArrayBuffer` over `owner`'s own memory (not a copy): what Rust stores there, JS reads
    /// at once. The buffer holds one count of `owner`, dropped when it is collected (or its
    /// environment goes). `None` where the runtime refuses external memory or would copy it (a
    /// copy would never change). Call it once per `owner`: V8 refuses two buffers over one
    /// address.
    pub fn shared_memory<T: Send + Sync + 'static>(
        &self,
        owner: std::sync::Arc<T>,
    ) -> Option<sys::napi_value> {
        unsafe extern "C" fn release<T>(
            _env: sys::napi_env,
            _data: *mut std::ffi::c_void,
            hint: *mut std::ffi::c_void,
        ) {
            // SAFETY: `hint` is the count `shared_memory` leaked with `Arc::into_raw` for this
            // very buffer; Node calls a finalizer once.
            unsafe { drop(std::sync::Arc::from_raw(hint as *const T)) };
        }
        let data = std::sync::Arc::into_raw(owner);
        let mut buf = ptr::null_mut();
        // `data`'s bytes live until the finalizer releases the count leaked above; on failure
        // no finalizer runs and the count is taken back below.
        // SAFETY: `Js` contract (this callback's env, this thread); `data` outlives the buffer.
        let status = unsafe {
            sys::napi_create_external_arraybuffer(
                self.0,
                data as *mut std::ffi::c_void,
                std::mem::size_of::<T>(),
                Some(release::<T>),
                data as *mut std::ffi::c_void,
                &mut buf,
            )
        };
        if status != sys::Status::napi_ok || buf.is_null() {
            // SAFETY: not handed to Node: this is the count leaked above.
            unsafe { drop(std::sync::Arc::from_raw(data)) };
            return None;
        }
        // A runtime that copied the bytes would show a snapshot: check the buffer is ours.
        let mut at = ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: as above; `buf` is the value just made, the out pointers are locals.
        let ok = unsafe { sys::napi_get_arraybuffer_info(self.0, buf, &mut at, &mut len) }
            == sys::Status::napi_ok;
        (ok && at as *const T == data).then_some(buf)
    }

    pub fn null(&self) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_get_null(self.0, &mut v) };
        self.made(s, v)
    }
    pub fn undefined(&self) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_get_undefined(self.0, &mut v) };
        self.made(s, v)
    }
    pub fn bool(&self, b: bool) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_get_boolean(self.0, b, &mut v) };
        self.made(s, v)
    }
    pub fn num(&self, n: f64) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_create_double(self.0, n, &mut v) };
        self.made(s, v)
    }
    pub fn int(&self, n: i64) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_create_int64(self.0, n, &mut v) };
        self.made(s, v)
    }
    /// UTF-8 text; invalid sequences become U+FFFD (use `getBuffer` for binary data). ASCII, the
    /// common case, skips V8's UTF-8 decoding.
    /// Text past V8's limit comes back as NULL, remembered (see [`Js`]).
    pub fn str(&self, s: &[u8]) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let status = unsafe {
            if s.is_ascii() {
                sys::napi_create_string_latin1(self.0, s.as_ptr().cast(), s.len() as isize, &mut v)
            } else {
                sys::napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len() as isize, &mut v)
            }
        };
        self.made(status, v)
    }

    /// An array of `items`: short ones element by element, long ones with one `Array.of` call
    /// (V8 builds the array natively instead of one property store per element).
    pub fn array_of(&self, items: &[sys::napi_value]) -> sys::napi_value {
        if items.iter().any(|v| v.is_null()) {
            // An element could not be made (remembered): never hand NULL to a JS call.
            self.1.set(true);
            return ptr::null_mut();
        }
        if items.len() >= 16 {
            // SAFETY: `self.0` is the env of the current JS-thread callback; no item is NULL
            // (checked above); statuses checked.
            unsafe {
                let mut array = ptr::null_mut();
                let mut out = ptr::null_mut();
                // The original `Array.of` (taken at load), with `this` undefined: it then makes
                // a plain array, whatever `globalThis.Array` is now.
                let of = per_env::get(self.2, per_env::Fn::ArrayOf).unwrap_or(ptr::null_mut());
                sys::napi_get_undefined(self.0, &mut array);
                let status = sys::napi_call_function(
                    self.0,
                    array,
                    of,
                    items.len(),
                    items.as_ptr(),
                    &mut out,
                );
                if status == sys::Status::napi_ok {
                    return out;
                }
                let mut exc = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(self.0, &mut exc);
            }
        }
        let arr = self.array(items.len());
        for (i, x) in items.iter().enumerate() {
            self.set_index(arr, i, *x);
        }
        arr
    }
    /// `[[a, b], [c, d], ...]` from `[a, b, c, d, ...]` (a pipeline's result). A small compiled
    /// function builds the pairs: one Node-API element store per slot cost more than the rest
    /// of a pipeline's settlement (measured: 17% of its CPU).
    pub fn pairs(&self, flat: &[sys::napi_value]) -> sys::napi_value {
        if flat.iter().any(|v| v.is_null()) {
            self.1.set(true);
            return ptr::null_mut();
        }
        if let Some(f) = self.pairs_fn() {
            let out = self.array(0);
            let mut argv = Vec::with_capacity(PAIRS_CHUNK.min(flat.len()) + 1);
            let mut ok = true;
            for chunk in flat.chunks(PAIRS_CHUNK) {
                argv.clear();
                argv.push(out);
                argv.extend_from_slice(chunk);
                let mut ret = ptr::null_mut();
                // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on
                // this thread; values are of that callback); out pointers are valid locals.
                let status = unsafe {
                    sys::napi_call_function(self.0, out, f, argv.len(), argv.as_ptr(), &mut ret)
                };
                if status != sys::Status::napi_ok {
                    let mut exc = ptr::null_mut();
                    // SAFETY: the `Js` contract (`self.0` is the env of the callback running now
                    // on this thread; values are of that callback); out pointers are valid locals.
                    unsafe { sys::napi_get_and_clear_last_exception(self.0, &mut exc) };
                    ok = false;
                    break;
                }
            }
            if ok {
                return out;
            }
        }
        let arr = self.array(flat.len() / 2);
        for (i, two) in flat.chunks_exact(2).enumerate() {
            let pair = self.array(2);
            self.set_index(pair, 0, two[0]);
            self.set_index(pair, 1, two[1]);
            self.set_index(arr, i, pair);
        }
        arr
    }

    /// The helper behind [`Js::pairs`], compiled on first use in this env.
    fn pairs_fn(&self) -> Option<sys::napi_value> {
        let env = self.0;
        let mut f = ptr::null_mut();
        let r = per_env::pairs(self.2);
        if !r.is_null()
            // SAFETY: `r` is a strong reference of `env`, kept for the environment's lifetime.
            && unsafe { sys::napi_get_reference_value(env, r, &mut f) } == sys::Status::napi_ok
            && !f.is_null()
        {
            return Some(f);
        }
        // SAFETY: JS thread of `env`; statuses are checked and a compile error is cleared.
        unsafe {
            if sys::napi_run_script(env, self.str(PAIRS_SRC.as_bytes()), &mut f)
                != sys::Status::napi_ok
            {
                let mut exc = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut exc);
                return None;
            }
            let mut r = ptr::null_mut();
            if sys::napi_create_reference(env, f, 1, &mut r) == sys::Status::napi_ok
                && !per_env::set_pairs(self.2, r)
            {
                sys::napi_delete_reference(env, r);
            }
        }
        Some(f)
    }

    pub fn buffer(&self, bytes: &[u8]) -> sys::napi_value {
        let mut v = ptr::null_mut();
        let mut data = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe {
            sys::napi_create_buffer_copy(
                self.0,
                bytes.len(),
                bytes.as_ptr().cast(),
                &mut data,
                &mut v,
            )
        };
        self.made(s, v)
    }
    pub fn array(&self, len: usize) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_create_array_with_length(self.0, len, &mut v) };
        self.made(s, v)
    }
    /// `arr[i] = item`; a NULL `arr` or `item` (a value that could not be made) is not stored
    /// (the failure is already remembered) and neither is an index past the array limit.
    pub fn set_index(&self, arr: sys::napi_value, i: usize, item: sys::napi_value) {
        let Ok(i) = u32::try_from(i) else {
            self.1.set(true);
            return;
        };
        if arr.is_null() || item.is_null() {
            self.1.set(true);
            return;
        }
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_set_element(self.0, arr, i, item) };
        if s != sys::Status::napi_ok {
            self.1.set(true);
        }
    }
    pub fn object(&self) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_create_object(self.0, &mut v) };
        self.made(s, v)
    }
    /// `obj[key] = val`; NULL parts are not stored (see [`Js::set_index`]).
    pub fn set_prop(&self, obj: sys::napi_value, key: sys::napi_value, val: sys::napi_value) {
        if obj.is_null() || key.is_null() || val.is_null() {
            self.1.set(true);
            return;
        }
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        let s = unsafe { sys::napi_set_property(self.0, obj, key, val) };
        if s != sys::Status::napi_ok {
            self.1.set(true);
        }
    }
    pub fn set_named(&self, obj: sys::napi_value, key: &str, val: sys::napi_value) {
        let k = self.str(key.as_bytes());
        self.set_prop(obj, k, val);
    }

    /// Calls `JSON.parse(text)`; a thrown SyntaxError comes back as `Err(error value)`.
    pub fn json_parse(&self, text: &[u8]) -> Result<sys::napi_value, sys::napi_value> {
        self.call_json(per_env::Fn::JsonParse, self.str(text))
    }

    /// Calls `JSON.stringify(value)`; `Ok(None)` when it yields `undefined`.
    pub fn json_stringify(
        &self,
        value: sys::napi_value,
    ) -> Result<Option<String>, sys::napi_value> {
        let out = self.call_json(per_env::Fn::JsonStringify, value)?;
        let mut t = sys::ValueType::napi_undefined;
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        unsafe { sys::napi_typeof(self.0, out, &mut t) };
        if t != sys::ValueType::napi_string {
            return Ok(None);
        }
        Ok(self.read_string(out))
    }

    /// Calls the original `JSON.parse` / `JSON.stringify` (taken at load) with `arg`.
    fn call_json(
        &self,
        which: per_env::Fn,
        arg: sys::napi_value,
    ) -> Result<sys::napi_value, sys::napi_value> {
        if arg.is_null() {
            // The text could not become a JS string (past V8's limit): nothing to call with.
            return Err(self.unrepresentable());
        }
        // SAFETY: `self.0` is the env of the current JS-thread callback; out pointers are
        // valid locals and each status is checked.
        unsafe {
            let Some(f) = per_env::get(self.2, which) else {
                return Err(self.unrepresentable());
            };
            let mut undefined = ptr::null_mut();
            sys::napi_get_undefined(self.0, &mut undefined);
            let mut out = ptr::null_mut();
            let status = sys::napi_call_function(self.0, undefined, f, 1, &arg, &mut out);
            if status == sys::Status::napi_ok {
                Ok(out)
            } else {
                let mut exc = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(self.0, &mut exc);
                Err(if exc.is_null() {
                    self.unrepresentable()
                } else {
                    exc
                })
            }
        }
    }

    /// The cached key strings for `names`, in order (created on first use).
    fn keys(&self, names: &[&'static str]) -> Vec<sys::napi_value> {
        let env = self.0;
        // SAFETY: JS thread of `env` (a `Js` is only made inside a callback of its env); the
        // closure does not reach `with_record_keys` again.
        let keys = unsafe {
            per_env::with_record_keys(self.2, |slot| {
                if slot.is_none() {
                    let arr = self.array(0);
                    let mut r = ptr::null_mut();
                    sys::napi_create_reference(env, arr, 1, &mut r);
                    *slot = Some((r, Vec::new()));
                }
                let Some((r, known)) = slot.as_mut() else {
                    return Vec::new();
                };
                let mut arr = ptr::null_mut();
                sys::napi_get_reference_value(env, *r, &mut arr);
                names
                    .iter()
                    .map(|name| {
                        let i = match known.iter().position(|k| k == name) {
                            Some(i) => i,
                            None => {
                                known.push(name);
                                let i = known.len() - 1;
                                self.set_index(arr, i, self.str(name.as_bytes()));
                                i
                            }
                        };
                        let mut k = ptr::null_mut();
                        sys::napi_get_element(env, arr, i as u32, &mut k);
                        k
                    })
                    .collect()
            })
        };
        // Without the environment's data (it is shutting down): plain strings.
        keys.unwrap_or_else(|| names.iter().map(|n| self.str(n.as_bytes())).collect())
    }

    /// Builds an [`Out::Record`].
    pub fn record(&self, fields: &Record) -> sys::napi_value {
        let names: Vec<&'static str> = fields.iter().map(|(k, _)| *k).collect();
        let keys = self.keys(&names);
        let descs: Vec<sys::napi_property_descriptor> = fields
            .iter()
            .zip(keys)
            .map(|((_, f), key)| sys::napi_property_descriptor {
                utf8name: ptr::null(),
                name: key,
                method: None,
                getter: None,
                setter: None,
                value: match f {
                    Field::Bool(b) => self.bool(*b),
                    Field::Num(n) => self.num(*n),
                    Field::Records(rs) => {
                        let arr = self.array(rs.len());
                        for (i, r) in rs.iter().enumerate() {
                            self.set_index(arr, i, self.record(r));
                        }
                        arr
                    }
                },
                attributes: sys::PropertyAttributes::writable
                    | sys::PropertyAttributes::enumerable
                    | sys::PropertyAttributes::configurable,
                data: ptr::null_mut(),
            })
            .collect();
        let o = self.object();
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; values are of that callback); out pointers are valid locals.
        unsafe { sys::napi_define_properties(self.0, o, descs.len(), descs.as_ptr()) };
        o
    }
}
