//! Reply decoding on the JS thread: `redis::Value` to the JS shapes node-redis users expect.

use napi::sys;
use redis::Value;

use crate::binding::js::Js;
pub use crate::core::reply::{Decode, Empty, Field, Record};
use crate::core::{keys, Error};
pub use crate::engine::outcome::Out;

impl Js<'_> {
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

/// Converts a reply. `Err` carries a JS error value to reject with: Redis's error, or
/// `ERR_REPLY` when a part of the reply cannot become a JS value (a string past
/// [`crate::binding::js::MAX_JS_STRING`]); never a value with a hole or a NULL in it.
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
        return Err(js.unrepresentable());
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
        Value::ServerError(e) => {
            js.error(&Error::Reply(crate::core::error::pipeline_error_text(&e)))
        }
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
        return Err(js.unrepresentable());
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
            let v = r.take(js.env());
            match err {
                None => Ok(v),
                Some(e) => Err(js.error(&e)),
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
                        js.error(&Error::Reply(crate::core::error::pipeline_error_text(&e))),
                        js.null(),
                    ),
                    Ok(v) => match reply(js, v, d, prefix) {
                        Ok(x) => (js.null(), x),
                        Err(e) => (e, js.null()),
                    },
                    Err(e) => (js.error(&e), js.null()),
                };
                flat.push(err);
                flat.push(val);
            }
            Ok(js.pairs(&flat))
        }
    }
}

/// The binding's side of settling: the engine's completions become JS values here.
pub struct ToJs;

/// The one [`ToJs`], handed to every service's completion queue.
pub static TO_JS: ToJs = ToJs;

impl crate::engine::outcome::Settle for ToJs {
    fn value(
        &self,
        env: crate::engine::js_thread::JsEnv,
        o: Out,
        prefix: &[u8],
    ) -> Result<sys::napi_value, sys::napi_value> {
        out(&Js::new(env), o, prefix)
    }

    fn error(&self, env: crate::engine::js_thread::JsEnv, e: &Error) -> sys::napi_value {
        Js::new(env).error(e)
    }

    fn log(
        &self,
        env: crate::engine::js_thread::JsEnv,
        logger: sys::napi_value,
        level: crate::core::Level,
        text: &str,
    ) {
        let js = Js::new(env);
        let method = match level {
            crate::core::Level::Info => c"log",
            crate::core::Level::Warn => c"warn",
            crate::core::Level::Error => c"error",
        };
        let Ok(f) = js.get_named(logger, method) else {
            return;
        };
        if js.type_of(f) == sys::ValueType::napi_function {
            // A throwing logger must not take the process down: its exception is dropped.
            let _ = js.call(logger, f, &[js.str(text.as_bytes())]);
        }
    }

    fn connection(&self, env: crate::engine::js_thread::JsEnv, e: &crate::core::ConnectionEvent) {
        // js/observe.js registers the publisher (per realm, the last one loaded wins).
        let js = Js::new(env);
        let Some(exports) = crate::engine::per_env::exports(env) else {
            return;
        };
        let Ok(f) = js.get_property(exports, js.symbol_for(c"@app/redis.connectionEvent")) else {
            return;
        };
        if js.type_of(f) != sys::ValueType::napi_function {
            return;
        }
        let o = js.object();
        js.set_named(o, "event", js.str(e.event.as_bytes()));
        js.set_named(o, "serverAddress", js.str(e.host.as_bytes()));
        js.set_named(o, "serverPort", js.num(f64::from(e.port)));
        if let Some(r) = &e.reason {
            js.set_named(o, "reason", js.str(r.as_bytes()));
        }
        if let Some(a) = e.attempt {
            js.set_named(o, "attempt", js.num(f64::from(a)));
        }
        // A throwing subscriber must not take the process down: its exception is dropped.
        let _ = js.call(exports, f, &[o]);
    }
}
