//! The `#[napi]` layer: converts JS values to core types and back, maps errors to codes.
//!
//! The JS-thread engine lives in `crate::engine` (see its module doc for the contract).

mod args;
mod cache;
mod commands;
pub(crate) mod decode;
pub(crate) mod error;
mod follow;
pub(crate) mod js;
mod lock;
mod near_cache;
mod observe;
mod options;
mod pubsub;
mod rate_limit;
mod scan;
mod service;
mod session;
mod stats;
mod subscriptions;

pub use commands::Pipeline;
pub use options::{RedisClientCacheOptions, RedisLogger, RedisOptions, RedisTlsOptions};
pub use pubsub::Subscription;
pub use scan::ScanIterator;
pub use service::{is_redis_configured, RedisService};

use napi::bindgen_prelude::{Env, Object};
use napi_derive::napi;

use crate::engine::js_thread::JsEnv;

/// The JS glue the class syntax cannot express (variadic wrappers, async iteration, wrong-`this`
/// errors, EventBus, aliases, `withLock`'s context): a function expression run in the addon's own
/// realm at load; it returns the helpers the addon keeps.
const ADDON_REALM_JS: &str = include_str!("../../js/addon-realm.js");

#[napi(module_exports)]
pub fn init(exports: Object, env: Env) -> napi::Result<()> {
    crate::core::connection::install_crypto_provider();
    crate::engine::per_env::install(JsEnv::of(&env))?;
    commands::hot::install(JsEnv::of(&env), napi::JsValue::raw(&exports));
    crate::engine::per_env::set_exports(JsEnv::of(&env), napi::JsValue::raw(&exports));
    let checked = serde_json::to_string(&commands::hot::checked_names())
        .map_err(|e| napi::Error::from_reason(e.to_string()))?;
    let shim = format!("(function (exports) {{ return ({ADDON_REALM_JS})(exports, {checked}); }})");
    let f: napi::bindgen_prelude::Function<Object, Object> = env.run_script(shim)?;
    let helpers = f.call(exports)?;
    let js = js::Js::of(&env);
    let raw = napi::JsValue::raw(&helpers);
    let make = js.get_named(raw, c"lockContext");
    let abort = js.get_named(raw, c"abortLockContext");
    if let (Ok(make), Ok(abort)) = (make, abort) {
        crate::engine::per_env::set_lock_helpers(JsEnv::of(&env), make, abort);
    }
    Ok(())
}
