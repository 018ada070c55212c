//! Argument conversion: every JS argument arrives as a raw value and is checked here, so bad
//! input gets `ERR_INVALID_ARGUMENT` naming the argument, never napi's own `StringExpected`.

use std::fmt::Display;
use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::sys;
use napi::JsValue;

use crate::binding::js::Js;
use crate::core::Error;
use crate::engine::js_thread::JsEnv;

/// The most elements an array argument may have (4,194,304): far above any real command
/// (an `mget` that long is a 100 MB request), far below what would exhaust memory.
pub const MAX_ELEMENTS: u32 = 1 << 22;

/// A JS argument with its env, read during the call that received it.
///
/// Only made from what napi-rs hands a `#[napi]` method (`Unknown`), by the `unsafe`
/// [`Arg::new`] at a raw entry point, or from another `Arg` (its properties and elements); so an
/// `Arg` is always a value of the Node-API callback running now, on its thread, and its safe
/// methods rely on that. Its fields are private for that reason.
#[derive(Clone, Copy)]
pub struct Arg {
    env: sys::napi_env,
    v: sys::napi_value,
}

impl From<Unknown<'_>> for Arg {
    fn from(u: Unknown<'_>) -> Self {
        let raw = u.value();
        Arg {
            env: raw.env,
            v: raw.value,
        }
    }
}

impl Arg {
    /// # Safety
    /// `v` is a value (or NULL) of the Node-API callback of `env` running now on this thread,
    /// and the `Arg` does not outlive that callback.
    pub unsafe fn new(env: sys::napi_env, v: sys::napi_value) -> Arg {
        Arg { env, v }
    }

    /// The raw value, to hand to a [`Js`] method or keep in a `JsRef`.
    pub fn raw(&self) -> sys::napi_value {
        self.v
    }

    /// The [`Js`] of the call this argument came with.
    pub fn js(&self) -> Js<'_> {
        // SAFETY: an `Arg` is a value of the callback running now on this thread (see above);
        // the `Js` borrows the `Arg`, which lives no longer than that callback.
        Js::new(unsafe { JsEnv::assume(self.env) })
    }

    /// The value as napi-rs's `Unknown` (to call a `#[napi]` method with it).
    pub fn unknown<'a>(&self) -> Unknown<'a> {
        // SAFETY: `Unknown` accepts every value; this one is of the callback running now (the
        // `Arg` invariant), in which the `Unknown` is used.
        unsafe { Unknown::from_raw_unchecked(self.env, self.v) }
    }

    /// A boolean's value (`None` for anything else).
    pub fn bool(&self) -> Option<bool> {
        self.js().get_bool(self.v)
    }

    /// A string's text, lone surrogates as U+FFFD (`None` for anything else).
    pub fn text(&self) -> Option<String> {
        self.js().get_string(self.v)
    }

    /// A `Date`'s time in milliseconds since the epoch (`None` for anything else).
    pub fn date_ms(&self) -> Option<f64> {
        let mut is_date = false;
        let mut ms = 0.0;
        // SAFETY: the `Arg` invariant (a value of the callback running now on this thread);
        // out pointers are valid locals; each status is checked.
        let ok = unsafe {
            sys::napi_is_date(self.env, self.v, &mut is_date) == sys::Status::napi_ok
                && is_date
                && sys::napi_get_date_value(self.env, self.v, &mut ms) == sys::Status::napi_ok
        };
        ok.then_some(ms)
    }
}

fn buffer_bytes(env: sys::napi_env, v: sys::napi_value) -> Option<Vec<u8>> {
    // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
    // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
    unsafe {
        let mut is_buf = false;
        sys::napi_is_buffer(env, v, &mut is_buf);
        if is_buf {
            let mut data = ptr::null_mut();
            let mut len = 0usize;
            sys::napi_get_buffer_info(env, v, &mut data, &mut len);
            if len == 0 {
                return Some(Vec::new());
            }
            return Some(std::slice::from_raw_parts(data as *const u8, len).to_vec());
        }
        let mut is_ta = false;
        sys::napi_is_typedarray(env, v, &mut is_ta);
        if is_ta {
            let mut kind = 0;
            let mut len = 0usize;
            let mut data = ptr::null_mut();
            let mut ab = ptr::null_mut();
            let mut off = 0usize;
            sys::napi_get_typedarray_info(
                env, v, &mut kind, &mut len, &mut data, &mut ab, &mut off,
            );
            if kind == sys::TypedarrayType::uint8_array {
                if len == 0 {
                    return Some(Vec::new());
                }
                return Some(std::slice::from_raw_parts(data as *const u8, len).to_vec());
            }
        }
        None
    }
}

fn is_array(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut b = false;
    // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
    // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
    unsafe { sys::napi_is_array(env, v, &mut b) };
    b
}

/// How a value is described in error messages (never its content: it may be a secret).
pub fn describe(a: Arg) -> &'static str {
    match a.js().type_of(a.v) {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "a boolean",
        sys::ValueType::napi_number => match num(a) {
            Some(n) if n.is_nan() => "NaN",
            Some(n) if n.is_infinite() => "Infinity",
            _ => "a number",
        },
        sys::ValueType::napi_string => "a string",
        sys::ValueType::napi_symbol => "a symbol",
        sys::ValueType::napi_function => "a function",
        sys::ValueType::napi_bigint => "a bigint",
        _ if is_array(a.env, a.v) => "an array",
        _ => "an object",
    }
}

fn num(a: Arg) -> Option<f64> {
    let mut n = 0f64;
    // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
    // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
    let ok = unsafe { sys::napi_get_value_double(a.env, a.v, &mut n) } == sys::Status::napi_ok;
    ok.then_some(n)
}

/// `object.field` in an error message about an object's field; the field's name is read only
/// when the message is made.
#[derive(Clone, Copy)]
pub struct FieldOf<'a>(pub &'a str, pub Arg);

impl Display for FieldOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = self.1.js().read_string(self.1.v).unwrap_or_default();
        write!(f, "{}.{field}", self.0)
    }
}

/// The calling method and argument, for messages like "get(key): ...".
#[derive(Clone, Copy)]
pub struct Ctx {
    pub method: &'static str,
}

impl Ctx {
    pub fn bad(&self, arg: impl Display, want: &str, got: Arg) -> Error {
        Error::arg(format!(
            "{}(): argument `{arg}` must be {want}, got {}",
            self.method,
            describe(got)
        ))
    }
}

impl Arg {
    pub fn is_undefined(&self) -> bool {
        self.js().type_of(self.v) == sys::ValueType::napi_undefined
    }
    pub fn is_nullish(&self) -> bool {
        matches!(
            self.js().type_of(self.v),
            sys::ValueType::napi_undefined | sys::ValueType::napi_null
        )
    }
    pub fn kind(&self) -> sys::napi_valuetype {
        self.js().type_of(self.v)
    }
    pub fn is_array(&self) -> bool {
        is_array(self.env, self.v)
    }
    pub fn is_buffer(&self) -> bool {
        buffer_bytes_len_check(self.env, self.v)
    }

    /// A key: a non-empty string or Buffer, or a finite number (as its decimal text).
    pub fn key(self, c: Ctx, name: impl Display + Copy) -> Result<Vec<u8>, Error> {
        self.key_with(c, name, <[u8]>::to_vec)
    }

    /// [`Arg::key`] lent to `f` (no copy of a short string key).
    pub fn key_with<R>(
        self,
        c: Ctx,
        name: impl Display + Copy,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        const WANT: &str = "a non-empty string or Buffer";
        let nonempty = |b: &[u8]| (!b.is_empty()).then(|| f(b));
        let r = match self.kind() {
            sys::ValueType::napi_string => self.js().with_string_bytes(self.v, nonempty).flatten(),
            sys::ValueType::napi_number => match num(self) {
                Some(n) if n.is_finite() => self.coerce_string().and_then(|b| nonempty(&b)),
                _ => None,
            },
            sys::ValueType::napi_object => {
                buffer_bytes(self.env, self.v).and_then(|b| nonempty(&b))
            }
            _ => None,
        };
        r.ok_or_else(|| c.bad(name, WANT, self))
    }

    /// A value: string, Buffer/Uint8Array, finite number or bigint (sent as decimal text).
    pub fn value(self, c: Ctx, name: impl Display + Copy) -> Result<Vec<u8>, Error> {
        self.value_with(c, name, <[u8]>::to_vec)
    }

    /// [`Arg::value`] lent to `f` (no copy of a short string value).
    pub fn value_with<R>(
        self,
        c: Ctx,
        name: impl Display + Copy,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, Error> {
        const WANT: &str = "a string, Buffer or finite number";
        let r = match self.kind() {
            sys::ValueType::napi_string => self.js().with_string_bytes(self.v, f),
            sys::ValueType::napi_number => match num(self) {
                Some(n) if n.is_finite() => self.coerce_string().map(|b| f(&b)),
                _ => None,
            },
            sys::ValueType::napi_bigint => self.coerce_string().map(|b| f(&b)),
            sys::ValueType::napi_object => buffer_bytes(self.env, self.v).map(|b| f(&b)),
            _ => None,
        };
        r.ok_or_else(|| c.bad(name, WANT, self))
    }

    /// A string (for options such as tokens and patterns).
    pub fn string(self, c: Ctx, name: &str) -> Result<String, Error> {
        if self.kind() == sys::ValueType::napi_string {
            if let Some(s) = self.js().read_string(self.v) {
                return Ok(s);
            }
        }
        Err(c.bad(name, "a string", self))
    }

    fn coerce_string(self) -> Option<Vec<u8>> {
        let mut s = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        if unsafe { sys::napi_coerce_to_string(self.env, self.v, &mut s) } != sys::Status::napi_ok {
            return None;
        }
        self.js().read_string_bytes(s)
    }

    /// A finite number.
    pub fn float(self, c: Ctx, name: impl Display + Copy) -> Result<f64, Error> {
        match (self.kind(), num(self)) {
            (sys::ValueType::napi_number, Some(n)) if n.is_finite() => Ok(n),
            _ => Err(c.bad(name, "a finite number", self)),
        }
    }

    /// A safe integer.
    pub fn int(self, c: Ctx, name: impl Display + Copy) -> Result<i64, Error> {
        match (self.kind(), num(self)) {
            (sys::ValueType::napi_number, Some(n))
                if n.is_finite() && n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0 =>
            {
                Ok(n as i64)
            }
            _ => Err(c.bad(name, "an integer", self)),
        }
    }

    /// A TTL or other count that must be a positive integer.
    pub fn positive(self, c: Ctx, name: impl Display + Copy) -> Result<i64, Error> {
        match self.int(c, name) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(c.bad(name, "a positive integer", self)),
        }
    }

    /// A non-negative integer.
    pub fn non_negative(self, c: Ctx, name: &str) -> Result<i64, Error> {
        match self.int(c, name) {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(c.bad(name, "a non-negative integer", self)),
        }
    }

    /// A score bound: a number, or a string such as "-inf", "+inf", "(5".
    pub fn bound(self, c: Ctx, name: &str) -> Result<Vec<u8>, Error> {
        match self.kind() {
            sys::ValueType::napi_number => match num(self) {
                Some(n) if n.is_nan() => {
                    Err(c.bad(name, "a number or a bound such as \"-inf\" or \"(5\"", self))
                }
                Some(n) if n == f64::INFINITY => Ok(b"+inf".to_vec()),
                Some(n) if n == f64::NEG_INFINITY => Ok(b"-inf".to_vec()),
                _ => self
                    .coerce_string()
                    .ok_or_else(|| c.bad(name, "a number", self)),
            },
            sys::ValueType::napi_string => {
                let s = self.js().read_string_bytes(self.v).unwrap_or_default();
                if s.is_empty() {
                    Err(c.bad(name, "a number or a bound such as \"-inf\" or \"(5\"", self))
                } else {
                    Ok(s)
                }
            }
            _ => Err(c.bad(name, "a number or a bound such as \"-inf\" or \"(5\"", self)),
        }
    }

    /// Array elements (for `[a, b]` arguments), refused (`ERR_INVALID_ARGUMENT` naming `name`)
    /// past [`MAX_ELEMENTS`] before anything is allocated: a sparse array's `length` can be
    /// 2^32 - 1 with one element in it. A hole reads as `undefined`.
    pub fn elements(self, c: Ctx, name: impl Display) -> Result<Vec<Arg>, Error> {
        let mut len = 0u32;
        // SAFETY: `self` is a live value of the current callback's env; `len` a valid local.
        if unsafe { sys::napi_get_array_length(self.env, self.v, &mut len) } != sys::Status::napi_ok
        {
            return Err(c.bad(name, "an array", self));
        }
        if len > MAX_ELEMENTS {
            return Err(Error::arg(format!(
                "{}(): argument `{name}` has {len} elements; at most {MAX_ELEMENTS} are accepted",
                c.method
            )));
        }
        Ok((0..len)
            .map(|i| {
                let mut v = ptr::null_mut();
                // SAFETY: as above; a failed read (a throwing getter) leaves NULL, read as
                // `undefined`, and its exception pending, which stops the call (`Shared::promise`).
                unsafe { sys::napi_get_element(self.env, self.v, i, &mut v) };
                Arg { env: self.env, v }
            })
            .collect())
    }

    /// A property of an object argument (undefined when missing).
    pub fn get(self, name: &str) -> Arg {
        let mut v = ptr::null_mut();
        // Option names are short: NUL-terminate them on the stack rather than allocating.
        let mut buf = [0u8; 64];
        if name.len() < buf.len() && !name.as_bytes().contains(&0) {
            buf[..name.len()].copy_from_slice(name.as_bytes());
            // SAFETY: `env` and the values come from the current Node-API callback, on its JS
            // thread (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
            unsafe { sys::napi_get_named_property(self.env, self.v, buf.as_ptr().cast(), &mut v) };
        } else if let Ok(c) = std::ffi::CString::new(name) {
            // SAFETY: `env` and the values come from the current Node-API callback, on its JS
            // thread (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
            unsafe { sys::napi_get_named_property(self.env, self.v, c.as_ptr(), &mut v) };
        }
        Arg { env: self.env, v }
    }

    /// `undefined`, for an option that was not given.
    pub fn undefined(self) -> Arg {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        unsafe { sys::napi_get_undefined(self.env, &mut v) };
        Arg { env: self.env, v }
    }

    /// A finite number, or `None` (callers build their own message, only when it is needed).
    pub fn finite(self) -> Option<f64> {
        if self.kind() != sys::ValueType::napi_number {
            return None;
        }
        num(self).filter(|n| n.is_finite())
    }

    /// Whether this string value equals `s` (read without allocating for short strings).
    pub fn str_eq(self, s: &str) -> bool {
        let mut buf = [0u8; 64];
        let mut written = 0usize;
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let ok = unsafe {
            sys::napi_get_value_string_utf8(
                self.env,
                self.v,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut written,
            )
        } == sys::Status::napi_ok;
        ok && written < buf.len() - 4 && &buf[..written] == s.as_bytes()
    }

    /// Own enumerable string keys of a plain object, with their values (at most
    /// [`MAX_ELEMENTS`]; more is refused, naming `name`).
    pub fn entries(self, c: Ctx, name: impl Display) -> Result<Vec<(Arg, Arg)>, Error> {
        let mut names = ptr::null_mut();
        // SAFETY: `self` is a live value of the current callback's env; `names` a valid local.
        // A throwing Proxy trap leaves NULL and its exception pending (see `Shared::promise`).
        unsafe { sys::napi_get_property_names(self.env, self.v, &mut names) };
        if names.is_null() {
            return Ok(Vec::new());
        }
        let names = Arg {
            env: self.env,
            v: names,
        };
        Ok(names
            .elements(c, name)?
            .into_iter()
            .map(|k| {
                let mut v = ptr::null_mut();
                // SAFETY: the `Arg` invariant (values of the callback running now, on its
                // thread); `v` is a valid local.
                unsafe { sys::napi_get_property(self.env, self.v, k.v, &mut v) };
                (k, Arg { env: self.env, v })
            })
            .collect())
    }

    /// A plain object (not an array, Buffer, or null).
    pub fn is_plain_object(&self) -> bool {
        self.kind() == sys::ValueType::napi_object && !self.is_array() && !self.is_buffer()
    }
}

fn buffer_bytes_len_check(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut is_buf = false;
    // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
    // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
    unsafe { sys::napi_is_buffer(env, v, &mut is_buf) };
    if is_buf {
        return true;
    }
    let mut is_ta = false;
    // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
    // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
    unsafe { sys::napi_is_typedarray(env, v, &mut is_ta) };
    is_ta
}
