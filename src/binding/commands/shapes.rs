//! The argument shapes that take more than a builder chain: option objects (`set`, `getex`,
//! `scan`), the several forms of `hSet`, `zAdd`, `mset`, `eval`, and the empty collections that
//! change the command (`lPush(key, [])`).

use napi::sys;
use redis::Value;

use super::build::{flat_items, B, R};
use crate::binding::args::{Arg, FieldOf};
use crate::binding::decode::{Decode, Empty};
use crate::core::{keys, Error};

/// `set`'s options: `{ EX, PX, EXAT, PXAT, NX, XX, KEEPTTL, GET }`, ioredis tokens
/// (`'EX', 60, 'NX'`), or one token (`'NX'`).
pub(super) fn set_options(mut b: B<'_>, opts: Arg) -> R {
    let c = b.c;
    let mut expiry: Option<(&'static str, i64)> = None;
    let mut keep_ttl = false;
    let (mut nx, mut xx, mut get) = (false, false, false);
    let set_expiry = |slot: &mut Option<(&'static str, i64)>, which: &'static str, n: i64| {
        if let Some((prev, _)) = slot {
            return Err(Error::arg(format!(
                "set(): options {prev} and {which} cannot be combined"
            )));
        }
        *slot = Some((which, n));
        Ok(())
    };
    if opts.is_undefined() {
    } else if opts.is_plain_object() {
        for which in ["EX", "PX", "EXAT", "PXAT"] {
            let v = opts.get(which);
            if !v.is_nullish() {
                let n = v.positive(c, &format!("options.{which}"))?;
                set_expiry(&mut expiry, which, n)?;
            }
        }
        let flag = |name: &str| -> Result<bool, Error> {
            let v = opts.get(name);
            match v.kind() {
                sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(false),
                sys::ValueType::napi_boolean => {
                    let out = v.bool().unwrap_or(false);
                    Ok(out)
                }
                _ => Err(c.bad(format!("options.{name}"), "a boolean", v)),
            }
        };
        nx = flag("NX")?;
        xx = flag("XX")?;
        keep_ttl = flag("KEEPTTL")?;
        get = flag("GET")?;
    } else {
        let tokens = if opts.is_array() {
            opts.elements(c, "options")?
        } else {
            vec![opts]
        };
        let mut it = tokens.into_iter();
        while let Some(t) = it.next() {
            let word = t.string(c, "option token")?.to_ascii_uppercase();
            match word.as_str() {
                "EX" | "PX" | "EXAT" | "PXAT" => {
                    let which: &'static str = match word.as_str() {
                        "EX" => "EX",
                        "PX" => "PX",
                        "EXAT" => "EXAT",
                        _ => "PXAT",
                    };
                    let n = it
                        .next()
                        .ok_or_else(|| Error::arg(format!("set(): option {which} needs a number after it")))?
                        .positive(c, which)?;
                    set_expiry(&mut expiry, which, n)?;
                }
                "NX" => nx = true,
                "XX" => xx = true,
                "KEEPTTL" => keep_ttl = true,
                "GET" => get = true,
                other => {
                    return Err(Error::arg(format!(
                        "set(): unknown option token \"{other}\" (expected EX, PX, EXAT, PXAT, NX, XX, KEEPTTL or GET)"
                    )))
                }
            }
        }
    }
    if nx && xx {
        return Err(Error::arg("set(): options NX and XX cannot be combined"));
    }
    if keep_ttl && expiry.is_some() {
        return Err(Error::arg(
            "set(): KEEPTTL cannot be combined with an expiry",
        ));
    }
    if let Some((which, n)) = expiry {
        b = b.lit(which);
        b.cmd.arg(n);
    }
    if nx {
        b = b.lit("NX");
    }
    if xx {
        b = b.lit("XX");
    }
    if keep_ttl {
        b = b.lit("KEEPTTL");
    }
    if get {
        b = b.lit("GET");
    }
    b.done(Decode::Auto, Empty::Null)
}

pub(super) fn getex_options(mut b: B<'_>, opts: Arg) -> R {
    let c = b.c;
    if opts.is_undefined() {
        return b.done(Decode::Auto, Empty::Null);
    }
    if !opts.is_plain_object() {
        return Err(c.bad(
            "options",
            "an object such as { EX: 60 } or { PERSIST: true }",
            opts,
        ));
    }
    let mut chosen = 0;
    for which in ["EX", "PX", "EXAT", "PXAT"] {
        let v = opts.get(which);
        if !v.is_nullish() {
            let n = v.positive(c, &format!("options.{which}"))?;
            b = b.lit(which);
            b.cmd.arg(n);
            chosen += 1;
        }
    }
    let persist = opts.get("PERSIST");
    if !persist.is_nullish() && persist.kind() == sys::ValueType::napi_boolean {
        let on = persist.bool().unwrap_or(false);
        if on {
            b = b.lit("PERSIST");
            chosen += 1;
        }
    }
    if chosen > 1 {
        return Err(Error::arg(
            "getex(): choose one of EX, PX, EXAT, PXAT, PERSIST",
        ));
    }
    b.done(Decode::Auto, Empty::Null)
}

/// Fields/values from `hSet(key, field, value)` or `hSet(key, { field: value })`.
/// `LPUSH`/`RPUSH`; with no element it asks `LLEN` instead (pushing nothing leaves the list as
/// long as it is, which is what the push would resolve).
pub(super) fn push_args(b: B<'_>, cmd: &str, key: Arg, elements: Arg) -> R {
    let c = b.c;
    if flat_items(c, elements, "elements")?.is_empty() {
        return b
            .lit("LLEN")
            .key(key, "key")?
            .done(Decode::Auto, Empty::Zero);
    }
    b.lit(cmd)
        .key(key, "key")?
        .vals(elements, "elements", Value::Int(0))?
        .done(Decode::Auto, Empty::Zero)
}

pub(super) fn hset_args(mut b: B<'_>, field: Arg, value: Arg) -> R {
    if field.is_plain_object() {
        if !value.is_undefined() {
            return Err(Error::arg(
                "hSet(): pass either (key, field, value) or (key, object), not both",
            ));
        }
        let entries = field.entries(b.c, "field")?;
        if entries.is_empty() {
            // No field to set: none added.
            return b.answer(Value::Int(0)).done(Decode::Auto, Empty::Zero);
        }
        for (k, v) in entries {
            b = b.val(k, "field")?;
            b = b.val(v, FieldOf("object", k))?;
        }
    } else {
        b = b.val(field, "field")?.val(value, "value")?;
    }
    b.done(Decode::Auto, Empty::Zero)
}

/// Members from `zAdd(key, [{ score, value }])`, `zAdd(key, { score, value })` or `zAdd(key, score, member)`.
pub(super) fn zadd_args(mut b: B<'_>, a: Arg, member: Arg) -> R {
    let c = b.c;
    if a.kind() == sys::ValueType::napi_number {
        b = b.float(a, "score")?.val(member, "member")?;
        return b.done(Decode::Auto, Empty::Zero);
    }
    let items = if a.is_array() {
        a.elements(c, "members")?
    } else {
        vec![a]
    };
    if items.is_empty() {
        // No member to add: none added.
        return b.answer(Value::Int(0)).done(Decode::Auto, Empty::Zero);
    }
    if !items.iter().all(|i| i.is_plain_object()) {
        return Err(c.bad("members", "{ score, value } or an array of them", a));
    }
    for (i, m) in items.into_iter().enumerate() {
        b = b
            .float(m.get("score"), format_args!("members[{i}].score"))?
            .val(m.get("value"), format_args!("members[{i}].value"))?;
    }
    b.done(Decode::Auto, Empty::Zero)
}

pub(super) fn mset_args(mut b: B<'_>, a: Arg) -> R {
    let c = b.c;
    if a.is_plain_object() {
        let entries = a.entries(c, "entries")?;
        if entries.is_empty() {
            // Nothing to set: MSET's own reply.
            return b.answer(Value::Okay).done(Decode::Auto, Empty::Null);
        }
        for (k, v) in entries {
            b = b.key(k, "key")?;
            b = b.val(v, FieldOf("entries", k))?;
        }
        return b.done(Decode::Auto, Empty::Null);
    }
    if !a.is_array() {
        return Err(c.bad(
            "entries",
            "an object, an array of [key, value] pairs, or a flat [key, value, ...] array",
            a,
        ));
    }
    let items = a.elements(c, "entries")?;
    if items.is_empty() {
        return b.answer(Value::Okay).done(Decode::Auto, Empty::Null);
    }
    if items[0].is_array() {
        for (i, pair) in items.into_iter().enumerate() {
            let p = pair.elements(c, format!("entries[{i}]"))?;
            if p.len() != 2 {
                return Err(c.bad(format!("entries[{i}]"), "a [key, value] pair", pair));
            }
            b = b
                .key(p[0], format_args!("entries[{i}][0]"))?
                .val(p[1], format_args!("entries[{i}][1]"))?;
        }
    } else {
        if !items.len().is_multiple_of(2) {
            return Err(Error::arg(
                "mset(): a flat array needs an even number of items (key, value, ...)",
            ));
        }
        for (i, pair) in items.chunks(2).enumerate() {
            b = b
                .key(pair[0], format_args!("entries[{}]", 2 * i))?
                .val(pair[1], format_args!("entries[{}]", 2 * i + 1))?;
        }
    }
    b.done(Decode::Auto, Empty::Null)
}

pub(super) fn scan_args(b: B<'_>, cursor: Arg, opts: Arg) -> R {
    let c = b.c;
    let cur = match cursor.kind() {
        sys::ValueType::napi_string => cursor.string(c, "cursor")?,
        sys::ValueType::napi_number => cursor.non_negative(c, "cursor")?.to_string(),
        _ => return Err(c.bad("cursor", "a cursor string or number (start with 0)", cursor)),
    };
    if cur.is_empty() || !cur.bytes().all(|ch| ch.is_ascii_digit()) {
        return Err(Error::arg(
            "scan(): argument `cursor` must be the cursor a previous scan returned (digits), or 0",
        ));
    }
    let (mut pattern, mut count, mut kind) = (None, None, None);
    if opts.is_plain_object() {
        let m = opts.get("MATCH");
        if !m.is_nullish() {
            pattern = Some(m.string(c, "options.MATCH")?);
        }
        let n = opts.get("COUNT");
        if !n.is_nullish() {
            count = Some(n.positive(c, "options.COUNT")?);
        }
        let t = opts.get("TYPE");
        if !t.is_nullish() {
            kind = Some(t.string(c, "options.TYPE")?);
        }
    } else if !opts.is_undefined() {
        return Err(c.bad("options", "an object such as { MATCH, COUNT, TYPE }", opts));
    }
    scan_cmd(b, &cur, pattern.as_deref(), count, kind.as_deref())
}

/// `SCAN cursor MATCH prefix+pattern [COUNT n] [TYPE t]`: the prefix confines the scan.
pub fn scan_cmd(
    b: B<'_>,
    cursor: &str,
    pattern: Option<&str>,
    count: Option<i64>,
    kind: Option<&str>,
) -> R {
    let prefix = b.prefix.to_vec();
    let mut b = b.lit("SCAN").lit(cursor);
    if pattern.is_some() || !prefix.is_empty() {
        let mut m = Vec::with_capacity(prefix.len() + 8);
        keys::escape_glob(&mut m, &prefix);
        m.extend_from_slice(pattern.unwrap_or("*").as_bytes());
        b = b.lit("MATCH").raw(&m);
    }
    if let Some(n) = count {
        b = b.lit("COUNT");
        b.cmd.arg(n);
    }
    if let Some(t) = kind {
        b = b.lit("TYPE").lit(t);
    }
    b.done(Decode::Scan, Empty::Scan)
}

pub(super) fn expire_at_arg(b: B<'_>, when: Arg) -> R {
    let c = b.c;
    // A Date counts as its epoch seconds.
    let secs = if let Some(ms) = when.date_ms() {
        if !ms.is_finite() {
            return Err(c.bad("timestamp", "a valid Date or epoch seconds", when));
        }
        (ms / 1000.0).floor() as i64
    } else {
        when.positive(c, "timestampSeconds")?
    };
    let mut b = b;
    b.cmd.arg(secs);
    b.done(Decode::Bool, Empty::False)
}

pub(super) fn lpop_args(b: B<'_>, count: Arg) -> R {
    if count.is_undefined() {
        b.done(Decode::Auto, Empty::Null)
    } else {
        b.pos(count, "count")?.done(Decode::Auto, Empty::Array)
    }
}

pub(super) fn call_args(b: B<'_>, command: Arg, args: Arg) -> R {
    let c = b.c;
    let name = command.string(c, "command")?;
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(c.bad(
            "command",
            "a single Redis command name such as \"GET\" (arguments go after it)",
            command,
        ));
    }
    let mut b = b.lit(&name);
    if !args.is_undefined() {
        let items = if args.is_array() {
            args.elements(c, "args")?
        } else {
            vec![args]
        };
        for (i, a) in items.into_iter().enumerate() {
            b = b.val(a, &format!("args[{i}]"))?;
        }
    }
    b.done(Decode::Auto, Empty::Null)
}

/// `eval(script, numKeys, ...keysThenArgs)` (ioredis) or `eval(script, { keys, arguments })` (node-redis).
pub(super) fn eval_args(b: B<'_>, script: Arg, spec: Arg, rest: Arg) -> R {
    let c = b.c;
    let mut b = b.lit("EVAL").val(script, "script")?;
    if spec.is_plain_object() {
        let keys = spec.get("keys");
        let argv = spec.get("arguments");
        let keys = if keys.is_nullish() {
            Vec::new()
        } else if keys.is_array() {
            keys.elements(c, "options.keys")?
        } else {
            return Err(c.bad("options.keys", "an array of keys", keys));
        };
        let argv = if argv.is_nullish() {
            Vec::new()
        } else if argv.is_array() {
            argv.elements(c, "options.arguments")?
        } else {
            return Err(c.bad("options.arguments", "an array of values", argv));
        };
        b.cmd.arg(keys.len());
        for (i, k) in keys.into_iter().enumerate() {
            b = b.key(k, &format!("keys[{i}]"))?;
        }
        for (i, a) in argv.into_iter().enumerate() {
            b = b.val(a, &format!("arguments[{i}]"))?;
        }
        return b.done(Decode::Auto, Empty::Null);
    }
    let num_keys = spec.non_negative(c, "numKeys")? as usize;
    let items = if rest.is_undefined() {
        Vec::new()
    } else if rest.is_array() {
        rest.elements(c, "args")?
    } else {
        vec![rest]
    };
    if items.len() < num_keys {
        return Err(Error::arg(format!(
            "eval(): numKeys is {num_keys} but only {} arguments follow",
            items.len()
        )));
    }
    b.cmd.arg(num_keys);
    for (i, a) in items.into_iter().enumerate() {
        b = if i < num_keys {
            b.key(a, &format!("keys[{i}]"))?
        } else {
            b.val(a, &format!("args[{}]", i - num_keys))?
        };
    }
    b.done(Decode::Auto, Empty::Null)
}

pub(super) fn set_json_args(b: B<'_>, value: Arg, ttl: Arg) -> R {
    let c = b.c;
    let text = match value.js().json_stringify(value.raw()) {
        Ok(Some(t)) => t,
        Ok(None) => return Err(c.bad("value", "a JSON-serialisable value (not undefined, a function or a symbol)", value)),
        Err(_) => {
            return Err(Error::arg(
                "setJson(): argument `value` could not be serialised by JSON.stringify (circular or BigInt?)",
            ))
        }
    };
    let mut b = b.raw(text.as_bytes());
    if !ttl.is_undefined() {
        b = b.lit("EX").pos(ttl, "ttlSeconds")?;
    }
    b.done(Decode::Void, Empty::Undefined)
}
