//! What finished work hands to the JS thread, and the binding's side of settling it.
//!
//! The engine settles promises but makes no JS value itself: [`Settle`], implemented by the
//! binding, turns an [`Out`] (or an error) into one. A lower layer calls up only through this
//! trait.

use napi::sys;
use redis::Value;

use crate::core::reply::{Decode, Empty, Record};
use crate::core::{Error, Level};
use crate::engine::js_thread::JsEnv;
use crate::engine::js_thread::{Deferred, JsRef};

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
    Then(Box<dyn FnOnce(JsEnv, Deferred) + Send>),
    /// A JS value held by reference until now (the service `RedisService.connect()` resolves),
    /// or the error to reject with instead (the reference is released either way).
    Ref(JsRef, Option<Error>),
}

/// Makes the JS values the engine settles with (implemented by the binding).
pub trait Settle: Sync {
    /// The value `out` resolves (`Ok`) or rejects (`Err`) with; `prefix` is the service's key
    /// prefix (stripped from the keys a scan returns).
    fn value(
        &self,
        env: JsEnv,
        out: Out,
        prefix: &[u8],
    ) -> Result<sys::napi_value, sys::napi_value>;
    /// The JS error for `e`.
    fn error(&self, env: JsEnv, e: &Error) -> sys::napi_value;
    /// Calls the user's `logger` (`console`-like) with `text` at `level`; a throwing logger is
    /// ignored.
    fn log(&self, env: JsEnv, logger: sys::napi_value, level: Level, text: &str);
    /// Publishes a connection's change of state (the `app-redis:connection` channel).
    fn connection(&self, env: JsEnv, event: &crate::core::ConnectionEvent);
}
