//! Reading JS values, calling into JS (which may run user code and throw), errors, keeping
//! values past the callback, and JS functions backed by Rust closures.

use std::cell::RefCell;
use std::ffi::{c_void, CStr};
use std::ptr;

use napi::sys;

use super::{Js, MAX_JS_STRING};
use crate::core::Error;
use crate::engine::js_thread::{JsEnv, JsRef};

/// Raw calls that read or call into JS (which may run user code and throw).
impl Js<'_> {
    /// Takes the pending exception (NULL when none is pending).
    pub fn take_exception(&self) -> sys::napi_value {
        let mut exc = ptr::null_mut();
        // SAFETY: `self.0` is the env of the current callback on this thread (the `Js` contract);
        // `exc` is a valid local.
        unsafe { sys::napi_get_and_clear_last_exception(self.0, &mut exc) };
        exc
    }

    /// `Err` with the thrown value (or an error saying Node-API refused) when `status` failed.
    fn outcome(
        &self,
        status: sys::napi_status,
        v: sys::napi_value,
    ) -> Result<sys::napi_value, sys::napi_value> {
        if status == sys::Status::napi_ok && !v.is_null() {
            return Ok(v);
        }
        let exc = self.take_exception();
        if exc.is_null() {
            Err(self.error(&Error::Connection(
                "a JS value could not be made (the environment is shutting down)".into(),
            )))
        } else {
            Err(exc)
        }
    }

    /// `func.call(this, ...args)`; `Err` holds what it threw.
    pub fn call(
        &self,
        this: sys::napi_value,
        func: sys::napi_value,
        args: &[sys::napi_value],
    ) -> Result<sys::napi_value, sys::napi_value> {
        if func.is_null() || args.iter().any(|a| a.is_null()) {
            return self.outcome(sys::Status::napi_invalid_arg, ptr::null_mut());
        }
        let this = if this.is_null() {
            self.undefined()
        } else {
            this
        };
        let mut out = ptr::null_mut();
        // SAFETY: the `Js` contract (current callback's env and thread); no argument is NULL
        // (checked above); `args` outlives the call; `out` is a valid local.
        let s = unsafe {
            sys::napi_call_function(self.0, this, func, args.len(), args.as_ptr(), &mut out)
        };
        self.outcome(s, out)
    }

    /// `new ctor(...args)`; `Err` holds what it threw.
    pub fn construct(
        &self,
        ctor: sys::napi_value,
        args: &[sys::napi_value],
    ) -> Result<sys::napi_value, sys::napi_value> {
        if ctor.is_null() || args.iter().any(|a| a.is_null()) {
            return self.outcome(sys::Status::napi_invalid_arg, ptr::null_mut());
        }
        let mut out = ptr::null_mut();
        // SAFETY: as in `call`.
        let s =
            unsafe { sys::napi_new_instance(self.0, ctor, args.len(), args.as_ptr(), &mut out) };
        self.outcome(s, out)
    }

    /// `obj[name]` (a getter may run and throw: `Err` holds what it threw).
    pub fn get_named(
        &self,
        obj: sys::napi_value,
        name: &CStr,
    ) -> Result<sys::napi_value, sys::napi_value> {
        if obj.is_null() {
            return self.outcome(sys::Status::napi_invalid_arg, ptr::null_mut());
        }
        let mut out = ptr::null_mut();
        // SAFETY: the `Js` contract; `obj` is not NULL; `name` is NUL-terminated; `out` a local.
        let s = unsafe { sys::napi_get_named_property(self.0, obj, name.as_ptr(), &mut out) };
        self.outcome(s, out)
    }

    /// `obj[key]` for any key value (a symbol, say); `Err` holds what a getter threw.
    pub fn get_property(
        &self,
        obj: sys::napi_value,
        key: sys::napi_value,
    ) -> Result<sys::napi_value, sys::napi_value> {
        if obj.is_null() || key.is_null() {
            return self.outcome(sys::Status::napi_invalid_arg, ptr::null_mut());
        }
        let mut out = ptr::null_mut();
        // SAFETY: the `Js` contract; neither value is NULL; `out` is a valid local.
        let s = unsafe { sys::napi_get_property(self.0, obj, key, &mut out) };
        self.outcome(s, out)
    }

    /// `globalThis`.
    pub fn global(&self) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract; `v` is a valid local.
        let s = unsafe { sys::napi_get_global(self.0, &mut v) };
        self.made(s, v)
    }

    /// `Symbol.for(name)`.
    pub fn symbol_for(&self, name: &CStr) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: the `Js` contract; `name` is NUL-terminated and its length is given.
        let s = unsafe {
            sys::node_api_symbol_for(self.0, name.as_ptr(), name.count_bytes() as isize, &mut v)
        };
        self.made(s, v)
    }

    /// `arr[i]` (`Err` holds what a getter threw).
    pub fn get_index(
        &self,
        arr: sys::napi_value,
        i: u32,
    ) -> Result<sys::napi_value, sys::napi_value> {
        if arr.is_null() {
            return self.outcome(sys::Status::napi_invalid_arg, ptr::null_mut());
        }
        let mut out = ptr::null_mut();
        // SAFETY: the `Js` contract; `arr` is not NULL; `out` is a valid local.
        let s = unsafe { sys::napi_get_element(self.0, arr, i, &mut out) };
        self.outcome(s, out)
    }

    /// `typeof v` (`undefined` for NULL).
    pub fn type_of(&self, v: sys::napi_value) -> sys::napi_valuetype {
        let mut t = sys::ValueType::napi_undefined;
        if v.is_null() {
            return t;
        }
        // SAFETY: the `Js` contract; `v` is not NULL; `t` is a valid local.
        if unsafe { sys::napi_typeof(self.0, v, &mut t) } != sys::Status::napi_ok {
            return sys::ValueType::napi_undefined;
        }
        t
    }

    /// A JS boolean's value (`None` for anything else).
    pub fn get_bool(&self, v: sys::napi_value) -> Option<bool> {
        if self.type_of(v) != sys::ValueType::napi_boolean {
            return None;
        }
        let mut b = false;
        // SAFETY: the `Js` contract; `v` is a boolean (checked); `b` is a valid local.
        (unsafe { sys::napi_get_value_bool(self.0, v, &mut b) } == sys::Status::napi_ok)
            .then_some(b)
    }

    /// `String(v)` (which may run user code: `None` when it throws, the exception cleared).
    pub fn coerce_string(&self, v: sys::napi_value) -> Option<String> {
        if v.is_null() {
            return None;
        }
        let mut text = ptr::null_mut();
        // SAFETY: the `Js` contract; `v` is not NULL; `text` is a valid local.
        let s = unsafe { sys::napi_coerce_to_string(self.0, v, &mut text) };
        match self.outcome(s, text) {
            Ok(t) => self.read_string(t),
            Err(_) => None,
        }
    }

    /// A JS string's text (lone surrogates become U+FFFD); `None` for anything else.
    pub fn get_string(&self, v: sys::napi_value) -> Option<String> {
        if self.type_of(v) != sys::ValueType::napi_string {
            return None;
        }
        self.read_string(v)
    }

    /// The JS error for `e`: an `Error` (a `TypeError` for bad input) with our `code`, and the
    /// lock's `key` for lock errors.
    pub fn error(&self, e: &Error) -> sys::napi_value {
        let code = self.str(e.code().as_bytes());
        let msg = self.str(e.to_string().as_bytes());
        let mut out = ptr::null_mut();
        // SAFETY: the `Js` contract; `code` and `msg` are strings of this env (NULL ones make
        // Node-API fail with a status, checked below); `out` is a valid local.
        let s = unsafe {
            if matches!(e, Error::InvalidArgument(_)) {
                sys::napi_create_type_error(self.0, code, msg, &mut out)
            } else {
                sys::napi_create_error(self.0, code, msg, &mut out)
            }
        };
        let out = self.made(s, out);
        if let Some(key) = e.lock_key() {
            self.set_named(out, "key", self.str(key.as_bytes()));
        }
        out
    }

    /// Throws `v` (NULL: nothing is thrown; a value that could not be made is already
    /// remembered).
    pub fn throw(&self, v: sys::napi_value) {
        if !v.is_null() {
            // SAFETY: the `Js` contract; `v` is a value of this callback (not NULL).
            unsafe { sys::napi_throw(self.0, v) };
        }
    }

    /// Throws the JS error for `e` (see [`Js::error`]).
    pub fn throw_error(&self, e: &Error) {
        self.throw(self.error(e));
    }

    /// Whether an exception is pending (a failed check counts as pending).
    pub fn exception_pending(&self) -> bool {
        let mut pending = false;
        // SAFETY: the `Js` contract; `pending` is a valid local.
        let s = unsafe { sys::napi_is_exception_pending(self.0, &mut pending) };
        s != sys::Status::napi_ok || pending
    }

    /// The rejection of a reply some part of which could not become a JS value.
    pub fn unrepresentable(&self) -> sys::napi_value {
        self.error(&Error::Reply(format!(
            "the reply cannot become a JS value: a string in it is longer than V8's limit of \
             {MAX_JS_STRING} characters (read such values with getBuffer())"
        )))
    }
}

/// Reading strings.
impl Js<'_> {
    /// Reads a JS string as UTF-8 (lone surrogates become U+FFFD); `None` for anything else.
    pub fn read_string(&self, v: sys::napi_value) -> Option<String> {
        self.read_string_bytes(v)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// A JS string's UTF-8 bytes; `None` for anything else.
    pub fn read_string_bytes(&self, v: sys::napi_value) -> Option<Vec<u8>> {
        self.with_string_bytes(v, <[u8]>::to_vec)
    }

    /// Calls `f` with a JS string's UTF-8 bytes; short strings (most keys and values) are read
    /// into a stack buffer and never touch the heap. `None` for anything but a string.
    pub fn with_string_bytes<R>(
        &self,
        v: sys::napi_value,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Option<R> {
        if v.is_null() {
            return None;
        }
        // Short strings in one call: V8 never splits a character, so a result of at most 251
        // bytes in a 256-byte buffer is the whole string (a cut one leaves at most 3 bytes free).
        let mut stack = [0u8; 256];
        let mut written = 0usize;
        // SAFETY: the `Js` contract (`self.0` is the env of the callback running now on this
        // thread; `v` is a value of that callback); the buffer and out pointer are valid locals.
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                self.0,
                v,
                stack.as_mut_ptr().cast(),
                stack.len(),
                &mut written,
            )
        };
        if status != sys::Status::napi_ok {
            return None;
        }
        if written <= 251 {
            return Some(f(&stack[..written]));
        }
        let mut len = 0usize;
        // SAFETY: as above; `buf` has room for `len + 1` bytes, of which Node-API writes
        // `written` (checked status) before `set_len` exposes them.
        unsafe {
            if sys::napi_get_value_string_utf8(self.0, v, ptr::null_mut(), 0, &mut len)
                != sys::Status::napi_ok
            {
                return None;
            }
            let mut buf: Vec<u8> = Vec::with_capacity(len + 1);
            let mut written = 0usize;
            if sys::napi_get_value_string_utf8(
                self.0,
                v,
                buf.as_mut_ptr().cast(),
                len + 1,
                &mut written,
            ) != sys::Status::napi_ok
            {
                return None;
            }
            buf.set_len(written.min(len));
            Some(f(&buf))
        }
    }
}

/// Keeping values past the callback.
impl Js<'_> {
    /// Keeps `v`, whatever it is (Node-API references only objects on older Node versions, so
    /// it is boxed in a one-element array); `None` when Node-API refuses.
    pub fn keep(&self, v: sys::napi_value) -> Option<JsRef> {
        let arr = self.array(1);
        self.set_index(arr, 0, v);
        JsRef::new(self.env(), arr)
    }

    /// The value [`Js::keep`] kept (the reference is released); `undefined` when it cannot be
    /// read.
    pub fn kept(&self, r: JsRef) -> sys::napi_value {
        let arr = r.take(self.env());
        self.get_index(arr, 0).unwrap_or_else(|_| self.undefined())
    }

    /// Releases a kept value that is no longer needed.
    pub fn release(&self, r: Option<JsRef>) {
        if let Some(r) = r {
            r.take(self.env());
        }
    }
}

/// A closure called with a JS value on the JS thread.
type Callback = Box<dyn FnOnce(&Js, sys::napi_value)>;

/// The Rust side of a [`Js::once_fn`] function: run at most once, freed with the function.
type Once = RefCell<Option<Callback>>;

/// JS functions backed by Rust closures.
impl Js<'_> {
    /// A JS function named `name` that runs `f` with its first argument (`undefined` when
    /// none) the first time it is called, and does nothing after; `f` is dropped when the
    /// function is garbage-collected. NULL (remembered) when Node-API refuses.
    pub fn once_fn(
        &self,
        name: &CStr,
        f: impl FnOnce(&Js, sys::napi_value) + 'static,
    ) -> sys::napi_value {
        let boxed: Callback = Box::new(f);
        let data = Box::into_raw(Box::new(Once::new(Some(boxed)))) as *mut c_void;
        let mut func = ptr::null_mut();
        let len = name.to_bytes().len() as isize;
        // `data` is a leaked `Box<Once>` owned by the function from here on (freed by `drop_once`
        // when it is collected, or right below when it was not made).
        // SAFETY: the `Js` contract; `data` as said; `name` is NUL-terminated, `len` its length.
        unsafe {
            if sys::napi_create_function(
                self.0,
                name.as_ptr(),
                len,
                Some(call_once),
                data,
                &mut func,
            ) != sys::Status::napi_ok
                || func.is_null()
            {
                drop(Box::from_raw(data as *mut Once));
                return self.made(sys::Status::napi_generic_failure, ptr::null_mut());
            }
            if sys::napi_add_finalizer(
                self.0,
                func,
                data,
                Some(drop_once),
                ptr::null_mut(),
                ptr::null_mut(),
            ) != sys::Status::napi_ok
            {
                // Without a finalizer the closure would never be freed; it is leaked rather
                // than freed while the function may still call it.
                self.take_exception();
            }
        }
        func
    }
}

unsafe extern "C" fn call_once(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut argc = 1usize;
    let mut argv = [ptr::null_mut(); 1];
    let mut data = ptr::null_mut();
    // SAFETY: Node-API calls this on the JS thread of `env`, with this callback's `info`;
    // `argv` has room for `argc` values.
    let s = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if s != sys::Status::napi_ok || data.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: as above; the token lives for this call only.
    let js = Js::new(unsafe { JsEnv::assume(env) });
    let v = if argc > 0 && !argv[0].is_null() {
        argv[0]
    } else {
        js.undefined()
    };
    // SAFETY: `data` is the `Box<Once>` made in `once_fn`, alive until the function's
    // finalizer, which cannot run while the function is being called.
    let once = unsafe { &*(data as *const Once) };
    // Taken before the call: a re-entrant call (the closure calling the function) finds `None`.
    let f = once.borrow_mut().take();
    if let Some(f) = f {
        f(&js, v);
    }
    ptr::null_mut()
}

unsafe extern "C" fn drop_once(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    if !data.is_null() {
        // SAFETY: `data` is the `Box<Once>` leaked in `once_fn`, handed to this finalizer once.
        unsafe { drop(Box::from_raw(data as *mut Once)) };
    }
}
