//! The one conversion from core errors to JS errors: an `Error` (or `TypeError` for bad input)
//! whose `code` is the core's stable code (made by [`Js::error`]).

use napi::bindgen_prelude::{ToNapiValue, TypeName, ValidateNapiValue};
use napi::sys;
use napi::ValueType;

use crate::binding::js::Js;
use crate::core::Error;
use crate::engine::js_thread::JsEnv;

/// Result of a synchronous `#[napi]` call.
pub type JsResult<T> = napi::Result<T>;

/// Throws `e` as a JS error with our `code` (a `TypeError` for bad input), and returns the
/// marker napi-rs needs to leave that exception in place.
pub fn throw(env: JsEnv, e: Error) -> napi::Error {
    Js::new(env).throw_error(&e);
    napi::Error::new(napi::Status::PendingException, e.to_string())
}

/// `Err` (the exception left in place) when a JS exception is pending on `env`: user code run
/// while the arguments were read (a getter, a Proxy trap) threw, and the call must stop before
/// it creates or sends anything. A failed check counts as pending.
pub fn check_no_exception(env: JsEnv) -> napi::Result<()> {
    if Js::new(env).exception_pending() {
        return Err(napi::Error::new(
            napi::Status::PendingException,
            "a JS exception is pending (thrown while the arguments were read)",
        ));
    }
    Ok(())
}

/// A value made by this crate (with [`Js`]), returned as is.
pub struct JsRaw(pub sys::napi_value);

impl ToNapiValue for JsRaw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

/// A promise created by this crate, returned as is.
pub struct JsPromise(pub sys::napi_value);

impl ToNapiValue for JsPromise {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

impl TypeName for JsPromise {
    fn type_name() -> &'static str {
        "Promise"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ValidateNapiValue for JsPromise {}

impl napi::bindgen_prelude::FromNapiValue for JsPromise {
    unsafe fn from_napi_value(_env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        Ok(JsPromise(v))
    }
}
