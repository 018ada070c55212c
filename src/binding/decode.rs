//! Reply decoding on the JS thread: `redis::Value` to the JS shapes node-redis users expect.

use std::ptr;

use napi::sys;
use redis::Value;

use crate::binding::error::js_error;
use crate::core::{keys, Error};
use crate::engine::per_env;

/// How a command's reply becomes a JS value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// nil → null, integer → number, bulk/status → string, array → array.
    Auto,
    /// Bulk replies as Buffers.
    Buffer,
    /// Integer 0/1 → boolean.
    Bool,
    /// Bulk text → number (INCRBYFLOAT, ZSCORE); nil → null.
    Float,
    /// Flat field/value list → plain object (HGETALL).
    Object,
    /// Flat member/score list → `[{ value, score }]`.
    WithScores,
    /// `[cursor, keys]` → `{ cursor, keys }` with the key prefix stripped.
    Scan,
    /// Bulk text → `JSON.parse(text)`; nil → null.
    Json,
    /// Always `undefined` (JSON writes, lifecycle calls).
    Void,
    /// A lock acquisition `[token, fencingToken]` → the token; nil → null.
    LockToken,
    /// A lock acquisition `[token, fencingToken]` → `{ token, fencingToken }`; nil → null.
    Fenced,
    /// PTTL → milliseconds, or null when the key does not exist (negative replies).
    TtlMs,
}

/// The value a command resolves with when Redis is unavailable and the service degrades
/// (`failOpen`, or a disabled service): reads empty, writes no-ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Empty {
    Null,
    Zero,
    False,
    Array,
    Object,
    Undefined,
    Scan,
    True,
    /// A fresh random token (a lock granted without Redis, `lockFailOpen`).
    Token,
    /// `{ token, fencingToken: null, degraded: true }`.
    FencedToken,
}

/// Something to hand to JS once a future completes.
pub enum Out {
    Reply(Value, Decode),
    /// Pipeline results: one `[error | null, result]` pair per command.
    Pipeline(Vec<(Result<Value, Error>, Decode)>),
    Empty(Empty),
    /// `[empty, ...]` pairs for a degraded pipeline.
    EmptyPipeline(Vec<Empty>),
    Json(serde_json::Value),
    /// A small object with fixed key names (hot results such as rate-limit checks), built in one
    /// `napi_define_properties` call with cached keys: no serde map, no key strings per call.
    Record(Record),
    /// An iterator step: `{ done: false, value }` or `{ done: true, value: undefined }`.
    IterItem(Option<Vec<u8>>),
    /// Hands the promise to a continuation on the JS thread instead of settling it (a cache miss
    /// goes on to load the value).
    Then(Box<dyn FnOnce(sys::napi_env, crate::engine::completer::Deferred) + Send>),
    /// A JS value held by reference until now (the service `RedisService.connect()` resolves),
    /// or the error to reject with instead (the reference is released either way).
    Ref(crate::engine::completer::JsRef, Option<Error>),
}

/// Fields of an [`Out::Record`], in order.
pub type Record = Vec<(&'static str, Field)>;

/// A value in an [`Out::Record`].
pub enum Field {
    Bool(bool),
    Num(f64),
    Records(Vec<Record>),
}

/// Appends `[a, b]` to `out` for each two of the further arguments.
const PAIRS_SRC: &str =
    "(function (out, ...f) { for (let i = 0; i + 1 < f.length; i += 2) out.push([f[i], f[i + 1]]); })";

/// Most values [`Js::pairs`] hands over in one call (well inside V8's argument limits).
const PAIRS_CHUNK: usize = 2048;

/// V8's longest string, in UTF-16 code units (`v8::String::kMaxLength` on 64-bit builds).
pub const MAX_JS_STRING: usize = 536_870_888;

/// Shorthand for creating values on the JS thread. A value Node-API cannot create (a string past
/// [`MAX_JS_STRING`], or any value while the environment shuts down) comes back as NULL and is
/// remembered: [`reply`] and [`out`] then reject with [`too_long`]-style `ERR_REPLY` instead of
/// passing NULL on (which crashed Node in `napi_set_element` or left a promise unsettled).
pub struct Js(pub sys::napi_env, std::cell::Cell<bool>);

impl Js {
    pub fn new(env: sys::napi_env) -> Js {
        Js(env, std::cell::Cell::new(false))
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

    pub fn null(&self) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let s = unsafe { sys::napi_get_null(self.0, &mut v) };
        self.made(s, v)
    }
    pub fn undefined(&self) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let s = unsafe { sys::napi_get_undefined(self.0, &mut v) };
        self.made(s, v)
    }
    pub fn bool(&self, b: bool) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let s = unsafe { sys::napi_get_boolean(self.0, b, &mut v) };
        self.made(s, v)
    }
    pub fn num(&self, n: f64) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let s = unsafe { sys::napi_create_double(self.0, n, &mut v) };
        self.made(s, v)
    }
    pub fn int(&self, n: i64) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let s = unsafe { sys::napi_create_int64(self.0, n, &mut v) };
        self.made(s, v)
    }
    /// UTF-8 text; invalid sequences become U+FFFD (use `getBuffer` for binary data). ASCII, the
    /// common case, skips V8's UTF-8 decoding.
    /// Text past V8's limit comes back as NULL, remembered (see [`Js`]).
    pub fn str(&self, s: &[u8]) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
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
                let of = per_env::get(self.0, per_env::Fn::ArrayOf).unwrap_or(ptr::null_mut());
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
                // SAFETY: `env` and the values come from the current Node-API callback, on its JS
                // thread (an `Arg` or a `Js` is only made inside one); out pointers are valid
                // locals.
                let status = unsafe {
                    sys::napi_call_function(self.0, out, f, argv.len(), argv.as_ptr(), &mut ret)
                };
                if status != sys::Status::napi_ok {
                    let mut exc = ptr::null_mut();
                    // SAFETY: `env` and the values come from the current Node-API callback, on its
                    // JS thread (an `Arg` or a `Js` is only made inside one); out pointers are
                    // valid locals.
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
        // SAFETY: JS thread of `env` (a `Js` is only made inside a callback of its env).
        let r = unsafe { per_env::pairs(env) };
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
                && !per_env::set_pairs(env, r)
            {
                sys::napi_delete_reference(env, r);
            }
        }
        Some(f)
    }

    pub fn buffer(&self, bytes: &[u8]) -> sys::napi_value {
        let mut v = ptr::null_mut();
        let mut data = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
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
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
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
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let s = unsafe { sys::napi_set_element(self.0, arr, i, item) };
        if s != sys::Status::napi_ok {
            self.1.set(true);
        }
    }
    pub fn object(&self) -> sys::napi_value {
        let mut v = ptr::null_mut();
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        let s = unsafe { sys::napi_create_object(self.0, &mut v) };
        self.made(s, v)
    }
    /// `obj[key] = val`; NULL parts are not stored (see [`Js::set_index`]).
    pub fn set_prop(&self, obj: sys::napi_value, key: sys::napi_value, val: sys::napi_value) {
        if obj.is_null() || key.is_null() || val.is_null() {
            self.1.set(true);
            return;
        }
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
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
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        unsafe { sys::napi_typeof(self.0, out, &mut t) };
        if t != sys::ValueType::napi_string {
            return Ok(None);
        }
        Ok(crate::binding::args::read_string(self.0, out))
    }

    /// Calls the original `JSON.parse` / `JSON.stringify` (taken at load) with `arg`.
    fn call_json(
        &self,
        which: per_env::Fn,
        arg: sys::napi_value,
    ) -> Result<sys::napi_value, sys::napi_value> {
        if arg.is_null() {
            // The text could not become a JS string (past V8's limit): nothing to call with.
            return Err(unrepresentable(self));
        }
        // SAFETY: `self.0` is the env of the current JS-thread callback; out pointers are
        // valid locals and each status is checked.
        unsafe {
            let Some(f) = per_env::get(self.0, which) else {
                return Err(unrepresentable(self));
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
                    unrepresentable(self)
                } else {
                    exc
                })
            }
        }
    }

    pub fn empty(&self, e: Empty) -> sys::napi_value {
        match e {
            Empty::Null => self.null(),
            Empty::Zero => self.int(0),
            Empty::False => self.bool(false),
            Empty::Array => self.array(0),
            Empty::Object => self.object(),
            Empty::Undefined => self.undefined(),
            Empty::Scan => {
                let o = self.object();
                self.set_named(o, "cursor", self.str(b"0"));
                self.set_named(o, "keys", self.array(0));
                o
            }
            Empty::True => self.bool(true),
            Empty::Token => self.str(crate::core::lock::new_token().as_bytes()),
            Empty::FencedToken => {
                let o = self.object();
                self.set_named(
                    o,
                    "token",
                    self.str(crate::core::lock::new_token().as_bytes()),
                );
                self.set_named(o, "fencingToken", self.null());
                self.set_named(o, "degraded", self.bool(true));
                o
            }
        }
    }

    /// The cached key strings for `names`, in order (created on first use).
    fn keys(&self, names: &[&'static str]) -> Vec<sys::napi_value> {
        let env = self.0;
        // SAFETY: JS thread of `env` (a `Js` is only made inside a callback of its env); the
        // closure does not reach `with_record_keys` again.
        let keys = unsafe {
            per_env::with_record_keys(env, |slot| {
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
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        unsafe { sys::napi_define_properties(self.0, o, descs.len(), descs.as_ptr()) };
        o
    }

    /// Converts a serde_json value (health results and other small objects).
    pub fn json(&self, v: &serde_json::Value) -> sys::napi_value {
        match v {
            serde_json::Value::Null => self.null(),
            serde_json::Value::Bool(b) => self.bool(*b),
            serde_json::Value::Number(n) => self.num(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => self.str(s.as_bytes()),
            serde_json::Value::Array(a) => {
                let arr = self.array(a.len());
                for (i, x) in a.iter().enumerate() {
                    self.set_index(arr, i, self.json(x));
                }
                arr
            }
            serde_json::Value::Object(m) => {
                let o = self.object();
                for (k, x) in m {
                    self.set_named(o, k, self.json(x));
                }
                o
            }
        }
    }
}

/// The rejection of a reply some part of which could not become a JS value.
fn unrepresentable(js: &Js) -> sys::napi_value {
    let e = Error::Reply(format!(
        "the reply cannot become a JS value: a string in it is longer than V8's limit of \
         {MAX_JS_STRING} characters (read such values with getBuffer())"
    ));
    // SAFETY: `js.0` is the env of the current JS-thread callback.
    unsafe { js_error(js.0, &e) }
}

/// Converts a reply. `Err` carries a JS error value to reject with: Redis's error, or
/// `ERR_REPLY` when a part of the reply cannot become a JS value (a string past
/// [`MAX_JS_STRING`]); never a value with a hole or a NULL in it.
pub fn reply(
    js: &Js,
    v: Value,
    d: Decode,
    prefix: &[u8],
) -> Result<sys::napi_value, sys::napi_value> {
    js.clear_failed();
    let r = reply_value(js, v, d, prefix)?;
    if js.failed() {
        js.clear_failed();
        return Err(unrepresentable(js));
    }
    Ok(r)
}

fn reply_value(
    js: &Js,
    v: Value,
    d: Decode,
    prefix: &[u8],
) -> Result<sys::napi_value, sys::napi_value> {
    Ok(match d {
        Decode::Void => js.undefined(),
        Decode::Auto => auto(js, v, false),
        Decode::Buffer => auto(js, v, true),
        Decode::Bool => match v {
            Value::Int(i) => js.bool(i != 0),
            Value::Boolean(b) => js.bool(b),
            Value::Nil => js.bool(false),
            other => auto(js, other, false),
        },
        Decode::Float => match v {
            Value::Nil => js.null(),
            Value::Int(i) => js.int(i),
            Value::Double(f) => js.num(f),
            Value::BulkString(b) => js.num(parse_float(&b)),
            Value::SimpleString(s) => js.num(parse_float(s.as_bytes())),
            other => auto(js, other, false),
        },
        Decode::Object => {
            let o = js.object();
            match v {
                Value::Array(items) => {
                    let mut it = items.into_iter();
                    while let (Some(k), Some(val)) = (it.next(), it.next()) {
                        js.set_prop(o, auto(js, k, false), auto(js, val, false));
                    }
                }
                Value::Map(pairs) => {
                    for (k, val) in pairs {
                        js.set_prop(o, auto(js, k, false), auto(js, val, false));
                    }
                }
                _ => {}
            }
            o
        }
        Decode::WithScores => match v {
            Value::Array(items) => {
                // RESP3 nests [member, score] pairs; RESP2 flattens them.
                let pairs: Vec<(Value, Value)> = if items
                    .iter()
                    .all(|x| matches!(x, Value::Array(p) if p.len() == 2))
                {
                    items
                        .into_iter()
                        .filter_map(|x| match x {
                            Value::Array(mut p) => {
                                let s = p.pop()?;
                                let m = p.pop()?;
                                Some((m, s))
                            }
                            _ => None,
                        })
                        .collect()
                } else {
                    let mut out = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(m), Some(s)) = (it.next(), it.next()) {
                        out.push((m, s));
                    }
                    out
                };
                let arr = js.array(pairs.len());
                for (i, (m, s)) in pairs.into_iter().enumerate() {
                    let o = js.object();
                    js.set_named(o, "value", auto(js, m, false));
                    let score = match s {
                        Value::BulkString(b) => parse_float(&b),
                        Value::Double(f) => f,
                        Value::Int(n) => n as f64,
                        _ => f64::NAN,
                    };
                    js.set_named(o, "score", js.num(score));
                    js.set_index(arr, i, o);
                }
                arr
            }
            other => auto(js, other, false),
        },
        Decode::Scan => match v {
            Value::Array(mut parts) if parts.len() == 2 => {
                let keys = parts.pop().unwrap_or(Value::Nil);
                let cursor = parts.pop().unwrap_or(Value::Nil);
                let o = js.object();
                js.set_named(o, "cursor", auto(js, cursor, false));
                let list = match keys {
                    Value::Array(ks) => {
                        let arr = js.array(ks.len());
                        for (i, k) in ks.into_iter().enumerate() {
                            let item = match k {
                                Value::BulkString(b) => js.str(keys::strip(prefix, &b)),
                                other => auto(js, other, false),
                            };
                            js.set_index(arr, i, item);
                        }
                        arr
                    }
                    _ => js.array(0),
                };
                js.set_named(o, "keys", list);
                o
            }
            other => auto(js, other, false),
        },
        Decode::Json => match v {
            Value::Nil => js.null(),
            // Not JSON (written by other code): JSON.parse's SyntaxError, with our reply code.
            Value::BulkString(b) => {
                return js
                    .json_parse(&b)
                    .inspect_err(|e| js.set_named(*e, "code", js.str(b"ERR_REPLY")))
            }
            other => auto(js, other, false),
        },
        Decode::LockToken => match v {
            Value::Array(mut a) if a.len() == 2 => auto(js, a.swap_remove(0), false),
            _ => js.null(),
        },
        Decode::Fenced => match v {
            Value::Array(a) if a.len() == 2 => {
                let mut it = a.into_iter();
                let o = js.object();
                if let (Some(token), Some(fence)) = (it.next(), it.next()) {
                    js.set_named(o, "token", auto(js, token, false));
                    js.set_named(o, "fencingToken", auto(js, fence, false));
                }
                o
            }
            _ => js.null(),
        },
        Decode::TtlMs => match v {
            Value::Int(n) if n >= 0 => js.int(n),
            _ => js.null(),
        },
    })
}

fn parse_float(b: &[u8]) -> f64 {
    let s = std::str::from_utf8(b).unwrap_or("nan").trim();
    match s {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

fn auto(js: &Js, v: Value, buffers: bool) -> sys::napi_value {
    match v {
        Value::Nil => js.null(),
        Value::Int(i) => js.int(i),
        Value::BulkString(b) => {
            if buffers {
                js.buffer(&b)
            } else {
                js.str(&b)
            }
        }
        Value::SimpleString(s) => js.str(s.as_bytes()),
        Value::Okay => js.str(b"OK"),
        Value::Double(f) => js.num(f),
        Value::Boolean(b) => js.bool(b),
        Value::Array(items) | Value::Set(items) => {
            let values: Vec<sys::napi_value> =
                items.into_iter().map(|x| auto(js, x, buffers)).collect();
            js.array_of(&values)
        }
        Value::Map(pairs) => {
            let o = js.object();
            for (k, x) in pairs {
                js.set_prop(o, auto(js, k, false), auto(js, x, buffers));
            }
            o
        }
        // SAFETY: `env` and the values come from the current Node-API callback, on its JS thread
        // (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
        Value::ServerError(e) => unsafe {
            js_error(
                js.0,
                &Error::Reply(crate::core::connection::pipeline_error_text(&e)),
            )
        },
        Value::VerbatimString { text, .. } => js.str(text.as_bytes()),
        Value::BigNumber(n) => js.str(&n),
        Value::Attribute { data, .. } => auto(js, *data, buffers),
        Value::Push { data, .. } => auto(js, Value::Array(data), buffers),
        _ => js.null(),
    }
}

/// Converts a completed output.
/// Converts a completed operation's outcome (see [`reply`] for `Err`).
pub fn out(js: &Js, o: Out, prefix: &[u8]) -> Result<sys::napi_value, sys::napi_value> {
    js.clear_failed();
    let r = out_value(js, o, prefix)?;
    if js.failed() {
        js.clear_failed();
        return Err(unrepresentable(js));
    }
    Ok(r)
}

fn out_value(js: &Js, o: Out, prefix: &[u8]) -> Result<sys::napi_value, sys::napi_value> {
    match o {
        Out::Reply(v, d) => reply(js, v, d, prefix),
        Out::Empty(e) => Ok(js.empty(e)),
        Out::Json(j) => Ok(js.json(&j)),
        Out::Record(r) => Ok(js.record(&r)),
        Out::IterItem(item) => {
            let o = js.object();
            js.set_named(o, "done", js.bool(item.is_none()));
            let v = match item {
                Some(k) => js.str(keys::strip(prefix, &k)),
                None => js.undefined(),
            };
            js.set_named(o, "value", v);
            Ok(o)
        }
        // Handled by `Shared::settle_now`; never reaches here.
        Out::Then(_) => Ok(js.undefined()),
        Out::Ref(r, err) => {
            // SAFETY: `env` and the values come from the current Node-API callback, on its JS
            // thread (an `Arg` or a `Js` is only made inside one); out pointers are valid locals.
            let v = unsafe { r.take(js.0) };
            match err {
                None => Ok(v),
                // SAFETY: `env` and the values come from the current Node-API callback, on its JS
                // thread (an `Arg` or a `Js` is only made inside one); out pointers are valid
                // locals.
                Some(e) => Err(unsafe { js_error(js.0, &e) }),
            }
        }
        Out::EmptyPipeline(list) => {
            let mut flat = Vec::with_capacity(list.len() * 2);
            for e in list {
                flat.push(js.null());
                flat.push(js.empty(e));
            }
            Ok(js.pairs(&flat))
        }
        Out::Pipeline(items) => {
            let mut flat = Vec::with_capacity(items.len() * 2);
            for (res, d) in items {
                let (err, val) = match res {
                    Ok(Value::ServerError(e)) => (
                        // SAFETY: `env` and the values come from the current Node-API callback, on
                        // its JS thread (an `Arg` or a `Js` is only made inside one); out pointers
                        // are valid locals.
                        unsafe {
                            js_error(
                                js.0,
                                &Error::Reply(crate::core::connection::pipeline_error_text(&e)),
                            )
                        },
                        js.null(),
                    ),
                    Ok(v) => match reply(js, v, d, prefix) {
                        Ok(x) => (js.null(), x),
                        Err(e) => (e, js.null()),
                    },
                    // SAFETY: `env` and the values come from the current Node-API callback, on its
                    // JS thread (an `Arg` or a `Js` is only made inside one); out pointers are
                    // valid locals.
                    Err(e) => (unsafe { js_error(js.0, &e) }, js.null()),
                };
                flat.push(err);
                flat.push(val);
            }
            Ok(js.pairs(&flat))
        }
    }
}
