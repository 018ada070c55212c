//! The command surface. Each command is written once, in the `commands!` table below; the macro
//! generates the `RedisService` method (sends it, resolves a promise) and the `Pipeline` method
//! (queues it, returns the pipeline), with the same doc comment and argument types. The builder
//! lives in `build.rs`, the argument shapes that take more than a chain (option objects, the
//! forms of `set`, `zAdd`, `mset`, `eval`) in `shapes.rs`.

mod build;
pub(crate) mod hot;
mod pipeline;
mod shapes;

use napi::bindgen_prelude::{Env, Object, This, Unknown};
use napi::sys;
use napi_derive::napi;
use redis::{Cmd, Value};

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Decode, Empty};
use crate::binding::error::JsPromise;
use crate::binding::error::JsResult;
use crate::binding::service::RedisService;
use crate::engine::js_thread::JsEnv;

use crate::core::reply::Prep;
pub use build::B;
use build::R;
pub use pipeline::Pipeline;
pub use shapes::scan_cmd;
use shapes::*;

macro_rules! commands {
    ($(
        $(#[doc = $doc:tt])*
        #[js = $js:literal, args = $targs:literal, ret = $tret:literal]
        fn $name:ident($b:ident $(, $arg:ident)*) $body:block
    )*) => {
        pub(crate) mod preps {
            #[allow(unused_imports)]
            use super::*;
            $(
                pub fn $name($b: B<'_> $(, $arg: Arg)*) -> R $body
            )*
        }

        /// The same methods as direct Node-API entry points (see `hot.rs`), installed over the
        /// generated ones at module init.
        pub(crate) mod entry {
            #[allow(unused_imports)]
            use super::*;
            $(
                /// # Safety
                /// Called by Node-API on the JS thread.
                pub unsafe extern "C" fn $name(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                    const _: () = assert!(<[&str]>::len(&[$(stringify!($arg)),*]) <= crate::binding::commands::hot::MAX_ARGS);
                    // SAFETY: Node-API calls this on the JS thread of `env`, with this callback's
                    // `info`; the token lives for this call only.
                    let env = unsafe { crate::engine::js_thread::JsEnv::assume(env) };
                    crate::binding::commands::hot::call(env, info, $js, |b, a| {
                        #[allow(unused_mut, unused_variables)]
                        let mut next = a.iter().copied();
                        preps::$name(b $(, { let _ = stringify!($arg); next.next().unwrap_or(a[crate::binding::commands::hot::MAX_ARGS]) })*)
                    })
                }
            )*
            /// Every command: its JS name and entry point.
            pub const ALL: &[(&str, unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value)] = &[
                $(($js, $name),)*
            ];
        }

        /// The pipeline's methods as direct Node-API entry points (see `hot.rs`).
        pub(crate) mod pipeline_entry {
            #[allow(unused_imports)]
            use super::*;
            $(
                /// # Safety
                /// Called by Node-API on the JS thread.
                pub unsafe extern "C" fn $name(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                    // SAFETY: Node-API calls this on the JS thread of `env`, with this callback's
                    // `info`; the token lives for this call only.
                    let env = unsafe { crate::engine::js_thread::JsEnv::assume(env) };
                    crate::binding::commands::hot::chain(env, info, $js, |b, a| {
                        #[allow(unused_mut, unused_variables)]
                        let mut next = a.iter().copied();
                        preps::$name(b $(, { let _ = stringify!($arg); next.next().unwrap_or(a[crate::binding::commands::hot::MAX_ARGS]) })*)
                    })
                }
            )*
            pub const ALL: &[(&str, unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value)] = &[
                $(($js, $name),)*
            ];
        }

        #[napi]
        impl RedisService {
            $(
                $(#[doc = $doc])*
                #[napi(js_name = $js, ts_args_type = $targs, ts_return_type = $tret)]
                pub fn $name(&self, env: Env $(, $arg: Unknown)*) -> JsResult<JsPromise> {
                    let prep = preps::$name(B::new(Ctx { method: $js }, self.prefix()) $(, Arg::from($arg))*);
                    if $js == "call" { self.run_uncached(&env, prep) } else { self.run(&env, prep) }
                }
            )*
        }

        #[napi]
        impl Pipeline {
            $(
                $(#[doc = $doc])*
                #[napi(js_name = $js, ts_args_type = $targs, ts_return_type = "this")]
                pub fn $name<'a>(&mut self, env: Env, this: This<'a, Object<'a>> $(, $arg: Unknown)*) -> JsResult<Object<'a>> {
                    let prep = preps::$name(B::new(Ctx { method: $js }, self.prefix()) $(, Arg::from($arg))*);
                    self.push(&env, prep)?;
                    Ok(this.object)
                }
            )*
        }
    };
}

commands! {
    // ---------------------------------------------------------------- strings
    #[doc = " Value of `key`, or `null` when it does not exist. [GET](https://redis.io/docs/latest/commands/get/)"]
    #[js = "get", args = "key: RedisKey", ret = "Promise<string | null>"]
    fn get(b, key) { b.lit("GET").key(key, "key")?.done(Decode::Auto, Empty::Null) }

    #[doc = " Value of `key` as a Buffer (binary-safe), or `null`."]
    #[js = "getBuffer", args = "key: RedisKey", ret = "Promise<Buffer | null>"]
    fn get_buffer(b, key) { b.lit("GET").key(key, "key")?.done(Decode::Buffer, Empty::Null) }

    #[doc = " Sets `key`. Options as an object (`{ EX: 60, NX: true }`; EX/PX/EXAT/PXAT are seconds,"]
    #[doc = " milliseconds, epoch seconds, epoch milliseconds) or ioredis tokens (`'EX', 60, 'NX'`)."]
    #[doc = " Resolves `'OK'`, or `null` when NX/XX prevented the write (with `GET`: the old value)."]
    #[doc = " [SET](https://redis.io/docs/latest/commands/set/)"]
    #[js = "set", args = "key: RedisKey, value: RedisValue, ...options: SetArgs", ret = "Promise<'OK' | string | null>"]
    fn set(b, key, value, options) { set_options(b.lit("SET").key(key, "key")?.val(value, "value")?, options) }

    #[doc = " Sets `key` with a TTL in seconds. [SETEX](https://redis.io/docs/latest/commands/setex/)"]
    #[js = "setex", args = "key: RedisKey, ttlSeconds: number, value: RedisValue", ret = "Promise<'OK' | null>"]
    fn setex(b, key, ttl_seconds, value) { b.lit("SETEX").key(key, "key")?.pos(ttl_seconds, "ttlSeconds")?.val(value, "value")?.done(Decode::Auto, Empty::Null) }

    #[doc = " Sets `key` with a TTL in milliseconds. [PSETEX](https://redis.io/docs/latest/commands/psetex/)"]
    #[js = "psetex", args = "key: RedisKey, ttlMs: number, value: RedisValue", ret = "Promise<'OK' | null>"]
    fn psetex(b, key, ttl_ms, value) { b.lit("PSETEX").key(key, "key")?.pos(ttl_ms, "ttlMs")?.val(value, "value")?.done(Decode::Auto, Empty::Null) }

    #[doc = " Gets and deletes `key`. [GETDEL](https://redis.io/docs/latest/commands/getdel/)"]
    #[js = "getdel", args = "key: RedisKey", ret = "Promise<string | null>"]
    fn getdel(b, key) { b.lit("GETDEL").key(key, "key")?.done(Decode::Auto, Empty::Null) }

    #[doc = " Gets `key` and changes its expiry: `{ EX | PX | EXAT | PXAT: number }` or `{ PERSIST: true }`."]
    #[doc = " [GETEX](https://redis.io/docs/latest/commands/getex/)"]
    #[js = "getex", args = "key: RedisKey, options?: GetExOptions", ret = "Promise<string | null>"]
    fn getex(b, key, options) { getex_options(b.lit("GETEX").key(key, "key")?, options) }

    #[doc = " Values of several keys (`null` for missing ones), in order. [MGET](https://redis.io/docs/latest/commands/mget/)"]
    #[js = "mget", args = "...keys: Array<RedisKey | RedisKey[]>", ret = "Promise<Array<string | null>>"]
    fn mget(b, keys) { b.lit("MGET").keys(keys, "keys", Value::Array(Vec::new()))?.done(Decode::Auto, Empty::Array) }

    #[doc = " Sets several keys: `{ k: v }`, `[[k, v], ...]` or `[k, v, ...]`. [MSET](https://redis.io/docs/latest/commands/mset/)"]
    #[js = "mset", args = "entries: Record<string, RedisValue> | Array<[RedisKey, RedisValue]> | RedisValue[]", ret = "Promise<'OK' | null>"]
    fn mset(b, entries) { mset_args(b.lit("MSET"), entries) }

    #[doc = " Increments by 1; resolves the new value. [INCR](https://redis.io/docs/latest/commands/incr/)"]
    #[js = "incr", args = "key: RedisKey", ret = "Promise<number>"]
    fn incr(b, key) { b.lit("INCR").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Increments by an integer. [INCRBY](https://redis.io/docs/latest/commands/incrby/)"]
    #[js = "incrBy", args = "key: RedisKey, increment: number", ret = "Promise<number>"]
    fn incr_by(b, key, increment) { b.lit("INCRBY").key(key, "key")?.int(increment, "increment")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Decrements by 1. [DECR](https://redis.io/docs/latest/commands/decr/)"]
    #[js = "decr", args = "key: RedisKey", ret = "Promise<number>"]
    fn decr(b, key) { b.lit("DECR").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Decrements by an integer. [DECRBY](https://redis.io/docs/latest/commands/decrby/)"]
    #[js = "decrBy", args = "key: RedisKey, decrement: number", ret = "Promise<number>"]
    fn decr_by(b, key, decrement) { b.lit("DECRBY").key(key, "key")?.int(decrement, "decrement")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Increments by a float; resolves the new value as a number. [INCRBYFLOAT](https://redis.io/docs/latest/commands/incrbyfloat/)"]
    #[js = "incrByFloat", args = "key: RedisKey, increment: number", ret = "Promise<number>"]
    fn incr_by_float(b, key, increment) { b.lit("INCRBYFLOAT").key(key, "key")?.float(increment, "increment")?.done(Decode::Float, Empty::Zero) }

    #[doc = " Appends; resolves the new length. [APPEND](https://redis.io/docs/latest/commands/append/)"]
    #[js = "append", args = "key: RedisKey, value: RedisValue", ret = "Promise<number>"]
    fn append(b, key, value) { b.lit("APPEND").key(key, "key")?.val(value, "value")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Length of the string at `key` in bytes. [STRLEN](https://redis.io/docs/latest/commands/strlen/)"]
    #[js = "strlen", args = "key: RedisKey", ret = "Promise<number>"]
    fn strlen(b, key) { b.lit("STRLEN").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Parses the JSON stored at `key`; `null` when missing. Rejects with the SyntaxError if the value is not JSON."]
    #[js = "getJson", args = "key: RedisKey", ret = "Promise<any>"]
    fn get_json(b, key) { b.lit("GET").key(key, "key")?.done(Decode::Json, Empty::Null) }

    #[doc = " Stores `JSON.stringify(value)` at `key`, with an optional TTL in seconds. `undefined` is refused."]
    #[js = "setJson", args = "key: RedisKey, value: unknown, ttlSeconds?: number", ret = "Promise<void>"]
    fn set_json(b, key, value, ttl_seconds) { set_json_args(b.lit("SET").key(key, "key")?, value, ttl_seconds) }

    // ---------------------------------------------------------------- keys
    #[doc = " Deletes keys (one, several, or an array); resolves how many existed. [DEL](https://redis.io/docs/latest/commands/del/)"]
    #[js = "del", args = "...keys: Array<RedisKey | RedisKey[]>", ret = "Promise<number>"]
    fn del(b, keys) { b.lit("DEL").keys(keys, "keys", Value::Int(0))?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Deletes keys without blocking the server. [UNLINK](https://redis.io/docs/latest/commands/unlink/)"]
    #[js = "unlink", args = "...keys: Array<RedisKey | RedisKey[]>", ret = "Promise<number>"]
    fn unlink(b, keys) { b.lit("UNLINK").keys(keys, "keys", Value::Int(0))?.done(Decode::Auto, Empty::Zero) }

    #[doc = " How many of the keys exist. [EXISTS](https://redis.io/docs/latest/commands/exists/)"]
    #[js = "exists", args = "...keys: Array<RedisKey | RedisKey[]>", ret = "Promise<number>"]
    fn exists(b, keys) { b.lit("EXISTS").keys(keys, "keys", Value::Int(0))?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Sets a TTL in seconds; `true` if the key exists. [EXPIRE](https://redis.io/docs/latest/commands/expire/)"]
    #[js = "expire", args = "key: RedisKey, ttlSeconds: number", ret = "Promise<boolean>"]
    fn expire(b, key, ttl_seconds) { b.lit("EXPIRE").key(key, "key")?.pos(ttl_seconds, "ttlSeconds")?.done(Decode::Bool, Empty::False) }

    #[doc = " Sets a TTL in milliseconds; `true` if the key exists. [PEXPIRE](https://redis.io/docs/latest/commands/pexpire/)"]
    #[js = "pexpire", args = "key: RedisKey, ttlMs: number", ret = "Promise<boolean>"]
    fn pexpire(b, key, ttl_ms) { b.lit("PEXPIRE").key(key, "key")?.pos(ttl_ms, "ttlMs")?.done(Decode::Bool, Empty::False) }

    #[doc = " Expires the key at a time: epoch seconds or a `Date`. [EXPIREAT](https://redis.io/docs/latest/commands/expireat/)"]
    #[js = "expireAt", args = "key: RedisKey, timestampSeconds: number | Date", ret = "Promise<boolean>"]
    fn expire_at(b, key, timestamp_seconds) { expire_at_arg(b.lit("EXPIREAT").key(key, "key")?, timestamp_seconds) }

    #[doc = " Seconds to live; -1 without expiry, -2 when missing. [TTL](https://redis.io/docs/latest/commands/ttl/)"]
    #[js = "ttl", args = "key: RedisKey", ret = "Promise<number>"]
    fn ttl(b, key) { b.lit("TTL").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Milliseconds to live; -1 without expiry, -2 when missing. [PTTL](https://redis.io/docs/latest/commands/pttl/)"]
    #[js = "pttl", args = "key: RedisKey", ret = "Promise<number>"]
    fn pttl(b, key) { b.lit("PTTL").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Removes the expiry; `true` if there was one. [PERSIST](https://redis.io/docs/latest/commands/persist/)"]
    #[js = "persist", args = "key: RedisKey", ret = "Promise<boolean>"]
    fn persist(b, key) { b.lit("PERSIST").key(key, "key")?.done(Decode::Bool, Empty::False) }

    #[doc = " Type of the value: `string`, `list`, `set`, `zset`, `hash`, `stream` or `none`. [TYPE](https://redis.io/docs/latest/commands/type/)"]
    #[js = "type", args = "key: RedisKey", ret = "Promise<string>"]
    fn key_type(b, key) { b.lit("TYPE").key(key, "key")?.done(Decode::Auto, Empty::Null) }

    #[doc = " Renames a key. [RENAME](https://redis.io/docs/latest/commands/rename/)"]
    #[js = "rename", args = "key: RedisKey, newKey: RedisKey", ret = "Promise<'OK'>"]
    fn rename(b, key, new_key) { b.lit("RENAME").key(key, "key")?.key(new_key, "newKey")?.done(Decode::Auto, Empty::Null) }

    #[doc = " One SCAN step: `{ cursor, keys }` (keys without the key prefix); loop until `cursor` is `'0'`."]
    #[doc = " Options `{ MATCH, COUNT, TYPE }`. [SCAN](https://redis.io/docs/latest/commands/scan/)"]
    #[js = "scan", args = "cursor: string | number, options?: ScanOptions", ret = "Promise<ScanResult>"]
    fn scan(b, cursor, options) { scan_args(b, cursor, options) }

    // ---------------------------------------------------------------- hashes
    #[doc = " Sets hash fields: `(key, field, value)` or `(key, { field: value })`; resolves how many were new."]
    #[doc = " [HSET](https://redis.io/docs/latest/commands/hset/)"]
    #[js = "hSet", args = "key: RedisKey, fieldOrObject: RedisValue | Record<string, RedisValue>, value?: RedisValue", ret = "Promise<number>"]
    fn h_set(b, key, field_or_object, value) { hset_args(b.lit("HSET").key(key, "key")?, field_or_object, value) }

    #[doc = " One hash field, or `null`. [HGET](https://redis.io/docs/latest/commands/hget/)"]
    #[js = "hGet", args = "key: RedisKey, field: RedisValue", ret = "Promise<string | null>"]
    fn h_get(b, key, field) { b.lit("HGET").key(key, "key")?.val(field, "field")?.done(Decode::Auto, Empty::Null) }

    #[doc = " All fields as a plain object (`{}` when missing). [HGETALL](https://redis.io/docs/latest/commands/hgetall/)"]
    #[js = "hGetAll", args = "key: RedisKey", ret = "Promise<Record<string, string>>"]
    fn h_get_all(b, key) { b.lit("HGETALL").key(key, "key")?.done(Decode::Object, Empty::Object) }

    #[doc = " Deletes fields; resolves how many existed. [HDEL](https://redis.io/docs/latest/commands/hdel/)"]
    #[js = "hDel", args = "key: RedisKey, ...fields: Array<RedisValue | RedisValue[]>", ret = "Promise<number>"]
    fn h_del(b, key, fields) { b.lit("HDEL").key(key, "key")?.vals(fields, "fields", Value::Int(0))?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Whether a field exists. [HEXISTS](https://redis.io/docs/latest/commands/hexists/)"]
    #[js = "hExists", args = "key: RedisKey, field: RedisValue", ret = "Promise<boolean>"]
    fn h_exists(b, key, field) { b.lit("HEXISTS").key(key, "key")?.val(field, "field")?.done(Decode::Bool, Empty::False) }

    #[doc = " Increments a field by an integer. [HINCRBY](https://redis.io/docs/latest/commands/hincrby/)"]
    #[js = "hIncrBy", args = "key: RedisKey, field: RedisValue, increment: number", ret = "Promise<number>"]
    fn h_incr_by(b, key, field, increment) { b.lit("HINCRBY").key(key, "key")?.val(field, "field")?.int(increment, "increment")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Field names. [HKEYS](https://redis.io/docs/latest/commands/hkeys/)"]
    #[js = "hKeys", args = "key: RedisKey", ret = "Promise<string[]>"]
    fn h_keys(b, key) { b.lit("HKEYS").key(key, "key")?.done(Decode::Auto, Empty::Array) }

    #[doc = " Field values. [HVALS](https://redis.io/docs/latest/commands/hvals/)"]
    #[js = "hVals", args = "key: RedisKey", ret = "Promise<string[]>"]
    fn h_vals(b, key) { b.lit("HVALS").key(key, "key")?.done(Decode::Auto, Empty::Array) }

    #[doc = " Number of fields. [HLEN](https://redis.io/docs/latest/commands/hlen/)"]
    #[js = "hLen", args = "key: RedisKey", ret = "Promise<number>"]
    fn h_len(b, key) { b.lit("HLEN").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Several fields, in order (`null` for missing ones). [HMGET](https://redis.io/docs/latest/commands/hmget/)"]
    #[js = "hmGet", args = "key: RedisKey, ...fields: Array<RedisValue | RedisValue[]>", ret = "Promise<Array<string | null>>"]
    fn hm_get(b, key, fields) { b.lit("HMGET").key(key, "key")?.vals(fields, "fields", Value::Array(Vec::new()))?.done(Decode::Auto, Empty::Array) }

    // ---------------------------------------------------------------- lists
    #[doc = " Prepends elements; resolves the new length. [LPUSH](https://redis.io/docs/latest/commands/lpush/)"]
    #[js = "lPush", args = "key: RedisKey, ...elements: Array<RedisValue | RedisValue[]>", ret = "Promise<number>"]
    fn l_push(b, key, elements) { push_args(b, "LPUSH", key, elements) }

    #[doc = " Appends elements; resolves the new length. [RPUSH](https://redis.io/docs/latest/commands/rpush/)"]
    #[js = "rPush", args = "key: RedisKey, ...elements: Array<RedisValue | RedisValue[]>", ret = "Promise<number>"]
    fn r_push(b, key, elements) { push_args(b, "RPUSH", key, elements) }

    #[doc = " Removes and returns the first element (or `count` of them as an array). [LPOP](https://redis.io/docs/latest/commands/lpop/)"]
    #[js = "lPop", args = "key: RedisKey, count?: number", ret = "Promise<string | string[] | null>"]
    fn l_pop(b, key, count) { lpop_args(b.lit("LPOP").key(key, "key")?, count) }

    #[doc = " Removes and returns the last element (or `count` of them). [RPOP](https://redis.io/docs/latest/commands/rpop/)"]
    #[js = "rPop", args = "key: RedisKey, count?: number", ret = "Promise<string | string[] | null>"]
    fn r_pop(b, key, count) { lpop_args(b.lit("RPOP").key(key, "key")?, count) }

    #[doc = " Elements from `start` to `stop` (inclusive, negative from the end). [LRANGE](https://redis.io/docs/latest/commands/lrange/)"]
    #[js = "lRange", args = "key: RedisKey, start: number, stop: number", ret = "Promise<string[]>"]
    fn l_range(b, key, start, stop) { b.lit("LRANGE").key(key, "key")?.int(start, "start")?.int(stop, "stop")?.done(Decode::Auto, Empty::Array) }

    #[doc = " Keeps only `start`..`stop`. [LTRIM](https://redis.io/docs/latest/commands/ltrim/)"]
    #[js = "lTrim", args = "key: RedisKey, start: number, stop: number", ret = "Promise<'OK'>"]
    fn l_trim(b, key, start, stop) { b.lit("LTRIM").key(key, "key")?.int(start, "start")?.int(stop, "stop")?.done(Decode::Auto, Empty::Null) }

    #[doc = " List length. [LLEN](https://redis.io/docs/latest/commands/llen/)"]
    #[js = "lLen", args = "key: RedisKey", ret = "Promise<number>"]
    fn l_len(b, key) { b.lit("LLEN").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Removes `count` occurrences of `element` (0 = all, negative = from the tail). [LREM](https://redis.io/docs/latest/commands/lrem/)"]
    #[js = "lRem", args = "key: RedisKey, count: number, element: RedisValue", ret = "Promise<number>"]
    fn l_rem(b, key, count, element) { b.lit("LREM").key(key, "key")?.int(count, "count")?.val(element, "element")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Element at `index`, or `null`. [LINDEX](https://redis.io/docs/latest/commands/lindex/)"]
    #[js = "lIndex", args = "key: RedisKey, index: number", ret = "Promise<string | null>"]
    fn l_index(b, key, index) { b.lit("LINDEX").key(key, "key")?.int(index, "index")?.done(Decode::Auto, Empty::Null) }

    // ---------------------------------------------------------------- sets
    #[doc = " Adds members; resolves how many were new. [SADD](https://redis.io/docs/latest/commands/sadd/)"]
    #[js = "sAdd", args = "key: RedisKey, ...members: Array<RedisValue | RedisValue[]>", ret = "Promise<number>"]
    fn s_add(b, key, members) { b.lit("SADD").key(key, "key")?.vals(members, "members", Value::Int(0))?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Removes members; resolves how many existed. [SREM](https://redis.io/docs/latest/commands/srem/)"]
    #[js = "sRem", args = "key: RedisKey, ...members: Array<RedisValue | RedisValue[]>", ret = "Promise<number>"]
    fn s_rem(b, key, members) { b.lit("SREM").key(key, "key")?.vals(members, "members", Value::Int(0))?.done(Decode::Auto, Empty::Zero) }

    #[doc = " All members. [SMEMBERS](https://redis.io/docs/latest/commands/smembers/)"]
    #[js = "sMembers", args = "key: RedisKey", ret = "Promise<string[]>"]
    fn s_members(b, key) { b.lit("SMEMBERS").key(key, "key")?.done(Decode::Auto, Empty::Array) }

    #[doc = " Whether `member` is in the set. [SISMEMBER](https://redis.io/docs/latest/commands/sismember/)"]
    #[js = "sIsMember", args = "key: RedisKey, member: RedisValue", ret = "Promise<boolean>"]
    fn s_is_member(b, key, member) { b.lit("SISMEMBER").key(key, "key")?.val(member, "member")?.done(Decode::Bool, Empty::False) }

    #[doc = " Number of members. [SCARD](https://redis.io/docs/latest/commands/scard/)"]
    #[js = "sCard", args = "key: RedisKey", ret = "Promise<number>"]
    fn s_card(b, key) { b.lit("SCARD").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    // ---------------------------------------------------------------- sorted sets
    #[doc = " Adds members: `(key, [{ score, value }])`, `(key, { score, value })` or `(key, score, member)`;"]
    #[doc = " resolves how many were new. [ZADD](https://redis.io/docs/latest/commands/zadd/)"]
    #[js = "zAdd", args = "key: RedisKey, members: ZMember | ZMember[] | number, member?: RedisValue", ret = "Promise<number>"]
    fn z_add(b, key, members, member) { zadd_args(b.lit("ZADD").key(key, "key")?, members, member) }

    #[doc = " Removes members. [ZREM](https://redis.io/docs/latest/commands/zrem/)"]
    #[js = "zRem", args = "key: RedisKey, ...members: Array<RedisValue | RedisValue[]>", ret = "Promise<number>"]
    fn z_rem(b, key, members) { b.lit("ZREM").key(key, "key")?.vals(members, "members", Value::Int(0))?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Score of `member`, or `null`. [ZSCORE](https://redis.io/docs/latest/commands/zscore/)"]
    #[js = "zScore", args = "key: RedisKey, member: RedisValue", ret = "Promise<number | null>"]
    fn z_score(b, key, member) { b.lit("ZSCORE").key(key, "key")?.val(member, "member")?.done(Decode::Float, Empty::Null) }

    #[doc = " Adds `increment` to the score; resolves the new score. [ZINCRBY](https://redis.io/docs/latest/commands/zincrby/)"]
    #[js = "zIncrBy", args = "key: RedisKey, increment: number, member: RedisValue", ret = "Promise<number>"]
    fn z_incr_by(b, key, increment, member) { b.lit("ZINCRBY").key(key, "key")?.float(increment, "increment")?.val(member, "member")?.done(Decode::Float, Empty::Zero) }

    #[doc = " Number of members. [ZCARD](https://redis.io/docs/latest/commands/zcard/)"]
    #[js = "zCard", args = "key: RedisKey", ret = "Promise<number>"]
    fn z_card(b, key) { b.lit("ZCARD").key(key, "key")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Rank (0-based, lowest score first), or `null`. [ZRANK](https://redis.io/docs/latest/commands/zrank/)"]
    #[js = "zRank", args = "key: RedisKey, member: RedisValue", ret = "Promise<number | null>"]
    fn z_rank(b, key, member) { b.lit("ZRANK").key(key, "key")?.val(member, "member")?.done(Decode::Auto, Empty::Null) }

    #[doc = " Members by rank, lowest score first. [ZRANGE](https://redis.io/docs/latest/commands/zrange/)"]
    #[js = "zRange", args = "key: RedisKey, start: number, stop: number", ret = "Promise<string[]>"]
    fn z_range(b, key, start, stop) { b.lit("ZRANGE").key(key, "key")?.int(start, "start")?.int(stop, "stop")?.done(Decode::Auto, Empty::Array) }

    #[doc = " Members by rank, highest score first. [ZREVRANGE](https://redis.io/docs/latest/commands/zrevrange/)"]
    #[js = "zRevRange", args = "key: RedisKey, start: number, stop: number", ret = "Promise<string[]>"]
    fn z_rev_range(b, key, start, stop) { b.lit("ZREVRANGE").key(key, "key")?.int(start, "start")?.int(stop, "stop")?.done(Decode::Auto, Empty::Array) }

    #[doc = " Members with scores by rank: `[{ value, score }]`."]
    #[js = "zRangeWithScores", args = "key: RedisKey, start: number, stop: number", ret = "Promise<Array<{ value: string; score: number }>>"]
    fn z_range_with_scores(b, key, start, stop) { b.lit("ZRANGE").key(key, "key")?.int(start, "start")?.int(stop, "stop")?.lit("WITHSCORES").done(Decode::WithScores, Empty::Array) }

    #[doc = " Members with `min <= score <= max` (numbers, or strings such as `'-inf'`, `'(5'`)."]
    #[doc = " [ZRANGEBYSCORE](https://redis.io/docs/latest/commands/zrangebyscore/)"]
    #[js = "zRangeByScore", args = "key: RedisKey, min: number | string, max: number | string", ret = "Promise<string[]>"]
    fn z_range_by_score(b, key, min, max) { b.lit("ZRANGEBYSCORE").key(key, "key")?.bound(min, "min")?.bound(max, "max")?.done(Decode::Auto, Empty::Array) }

    // ---------------------------------------------------------------- other
    #[doc = " Publishes a message; resolves how many subscribers received it. [PUBLISH](https://redis.io/docs/latest/commands/publish/)"]
    #[js = "publish", args = "channel: string, message: RedisValue", ret = "Promise<number>"]
    fn publish(b, channel, message) { b.lit("PUBLISH").val(channel, "channel")?.val(message, "message")?.done(Decode::Auto, Empty::Zero) }

    #[doc = " Runs a Lua script: `eval(script, numKeys, ...keys, ...args)` (ioredis) or"]
    #[doc = " `eval(script, { keys, arguments })` (node-redis). Keys get the key prefix. [EVAL](https://redis.io/docs/latest/commands/eval/)"]
    #[js = "eval", args = "script: string, numKeysOrOptions: number | { keys?: RedisKey[]; arguments?: RedisValue[] }, ...keysAndArgs: RedisValue[]", ret = "Promise<any>"]
    fn eval(b, script, num_keys_or_options, keys_and_args) { eval_args(b, script, num_keys_or_options, keys_and_args) }

    #[doc = " Any command: `call('HINCRBYFLOAT', 'k', 'f', '1.5')`. Arguments are sent as given (the key"]
    #[doc = " prefix is NOT applied: the service cannot know which arguments are keys)."]
    #[js = "call", args = "command: string, ...args: Array<RedisValue | RedisValue[]>", ret = "Promise<any>"]
    fn call(b, command, args) { call_args(b, command, args) }
}

#[doc = " Prepares a SCAN step for the iterator (shared with `scan`)."]
pub fn scan_step(
    c: Ctx,
    prefix: &[u8],
    cursor: &str,
    pattern: Option<&str>,
    count: Option<i64>,
) -> R {
    scan_cmd(B::new(c, prefix), cursor, pattern, count, None)
}

#[doc = " `PING`, for `ping()`."]
pub fn ping() -> Prep {
    let mut cmd = Cmd::new();
    cmd.arg("PING");
    Prep {
        cmd,
        decode: Decode::Auto,
        empty: Empty::Null,
        answer: None,
    }
}

#[napi]
impl RedisService {
    /// Sends PING; resolves `'PONG'`. A disabled service rejects with `ERR_DISABLED`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn ping(&self, env: Env) -> JsResult<JsPromise> {
        if !self.client.cfg.enabled {
            let raw = JsEnv::of(&env);
            let (d, p) = self.shared.promise(raw)?;
            self.shared.settle_now(
                raw,
                d,
                Err(crate::core::policy::disabled(
                    crate::core::policy::Feature::Commands,
                )),
            );
            return Ok(JsPromise(p));
        }
        self.run(&env, Ok(ping()))
    }
}
