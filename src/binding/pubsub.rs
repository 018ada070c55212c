//! Pub/sub on `RedisService`: `subscribe`/`psubscribe` and the `Subscription` handle. Delivery
//! and the handler registry are in `binding::subscriptions`.

use std::sync::Arc;

use napi::bindgen_prelude::{Env, JavaScriptClassExt, ToNapiValue, Unknown};
use napi::sys;
use napi_derive::napi;

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::Out;
use crate::binding::error::JsPromise;
use crate::binding::error::{throw, JsResult};
use crate::binding::js::Js;
use crate::binding::service::RedisService;
use crate::binding::subscriptions::{shutting_down, PubSub};
use crate::core::pubsub::Kind;
use crate::core::Client;
use crate::engine::completer::Shared;
use crate::engine::js_thread::JsEnv;
use crate::engine::js_thread::JsRef;

/// A subscription: `await sub.unsubscribe()` removes this handler (and the Redis subscription once
/// no handler of the channel is left).
#[napi]
pub struct Subscription {
    pubsub: Arc<PubSub>,
    client: Arc<Client>,
    shared: Arc<Shared>,
    kind: Kind,
    name: Vec<u8>,
    id: u64,
    active: std::cell::Cell<bool>,
}

#[napi]
impl Subscription {
    /// The channel (or pattern) subscribed to.
    #[napi(getter)]
    pub fn channel(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// Whether this handler is still subscribed.
    #[napi(getter)]
    pub fn active(&self) -> bool {
        self.active.get()
    }

    /// Removes this handler; the others of the channel keep receiving. Idempotent.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn unsubscribe(&self, env: Env) -> JsResult<JsPromise> {
        let raw = JsEnv::of(&env);
        let (d, promise) = self.shared.promise(raw)?;
        if !self.active.replace(false) {
            self.shared
                .settle_now(raw, d, Ok(Out::Json(serde_json::Value::Null)));
            return Ok(JsPromise(promise));
        }
        let (last, empty) = self.pubsub.remove(raw, self.kind, &self.name, self.id);
        if empty {
            self.pubsub.hold(raw, &self.shared, false);
        }
        if !last {
            self.shared
                .settle_now(raw, d, Ok(Out::Json(serde_json::Value::Null)));
            return Ok(JsPromise(promise));
        }
        let sub = self.pubsub.subscriber(&self.client, &self.shared);
        let (kind, name) = (self.kind, self.name.clone());
        self.shared.spawn(raw, d, async move {
            sub.unsubscribe(kind, name).await?;
            Ok(Out::Json(serde_json::Value::Null))
        });
        Ok(JsPromise(promise))
    }
}

impl RedisService {
    fn do_subscribe(
        &self,
        env: &Env,
        method: &'static str,
        kind: Kind,
        name: Unknown,
        handler: Unknown,
        options: Unknown,
    ) -> JsResult<JsPromise> {
        let raw = JsEnv::of(env);
        let c = Ctx { method };
        let what = if kind == Kind::Channel {
            "channel"
        } else {
            "pattern"
        };
        let parsed = (|| {
            let name = Arg::from(name);
            let n = name.string(c, what)?;
            if n.is_empty() {
                return Err(c.bad(what, "a non-empty string", name));
            }
            let h = Arg::from(handler);
            if h.kind() != sys::ValueType::napi_function {
                return Err(c.bad("handler", "a function", h));
            }
            let o = Arg::from(options);
            let on_error = if o.is_nullish() {
                None
            } else {
                let e = o.get("onError");
                if !o.is_plain_object() || e.kind() != sys::ValueType::napi_function {
                    return Err(c.bad("options", "an object { onError(err, channel) }", o));
                }
                Some(e.raw())
            };
            Ok((n.into_bytes(), h.raw(), on_error))
        })();
        let (d, promise) = self.shared.promise(raw)?;
        let (name, func, on_error) = match parsed {
            Ok(p) => p,
            Err(e) => {
                self.shared.settle_now(raw, d, Err(e));
                return Ok(JsPromise(promise));
            }
        };
        if !self.client.cfg.enabled {
            self.shared.settle_now(
                raw,
                d,
                Err(crate::core::policy::disabled(
                    crate::core::policy::Feature::PubSub,
                )),
            );
            return Ok(JsPromise(promise));
        }
        let (Some(func), on_error) = (
            JsRef::new(raw, func),
            on_error.map(|e| JsRef::new(raw, e).ok_or(())),
        ) else {
            return Err(throw(raw, shutting_down()));
        };
        let Ok(on_error) = on_error.transpose() else {
            return Err(throw(raw, shutting_down()));
        };
        let (id, first) = self
            .pubsub
            .add(kind, &name, func, on_error)
            .map_err(|e| throw(raw, e))?;
        self.pubsub.hold(raw, &self.shared, true);
        let sub = Subscription {
            pubsub: Arc::clone(&self.pubsub),
            client: Arc::clone(&self.client),
            shared: Arc::clone(&self.shared),
            kind,
            name: name.clone(),
            id,
            active: std::cell::Cell::new(true),
        };
        let instance = sub.into_instance(env)?;
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        let v = unsafe { ToNapiValue::to_napi_value(raw.raw(), instance) }?;
        let Some(keep) = JsRef::new(raw, v) else {
            return Err(throw(raw, shutting_down()));
        };
        if !first {
            self.shared.settle_now(raw, d, Ok(Out::Ref(keep, None)));
            return Ok(JsPromise(promise));
        }
        let subscriber = self.pubsub.subscriber(&self.client, &self.shared);
        self.pubsub.reopen();
        let pubsub = Arc::clone(&self.pubsub);
        let shared = Arc::clone(&self.shared);
        self.shared.spawn(raw, d, async move {
            let r = subscriber.subscribe(kind, name.clone()).await;
            Ok(Out::Then(Box::new(move |env, d| match r {
                Ok(()) => shared.settle_now(env, d, Ok(Out::Ref(keep, None))),
                Err(e) => {
                    keep.take(env);
                    let (_, empty) = pubsub.remove(env, kind, &name, id);
                    if empty {
                        pubsub.hold(env, &shared, false);
                    }
                    d.settle(env, false, Js::new(env).error(&e));
                }
            })))
        });
        Ok(JsPromise(promise))
    }
}

#[napi]
impl RedisService {
    /// Subscribes `handler(message, channel)` to `channel` (on a dedicated connection opened on
    /// the first subscription); resolves a `Subscription` once Redis confirmed it. Several
    /// handlers per channel; messages keep their order; after a reconnect every subscription is
    /// restored by itself. A handler that throws (or rejects) is reported to `options.onError`
    /// or the logger and does not stop delivery. While anything is subscribed the process stays
    /// alive.
    #[napi(
        ts_args_type = "channel: string, handler: (message: string, channel: string) => unknown, options?: { onError?: (err: unknown, channel: string) => void }",
        ts_return_type = "Promise<Subscription>"
    )]
    pub fn subscribe(
        &self,
        env: Env,
        channel: Unknown,
        handler: Unknown,
        options: Unknown,
    ) -> JsResult<JsPromise> {
        self.do_subscribe(&env, "subscribe", Kind::Channel, channel, handler, options)
    }

    /// Like `subscribe`, for a glob pattern (`news.*`): `handler(message, channel, pattern)`.
    #[napi(
        ts_args_type = "pattern: string, handler: (message: string, channel: string, pattern: string) => unknown, options?: { onError?: (err: unknown, channel: string) => void }",
        ts_return_type = "Promise<Subscription>"
    )]
    pub fn psubscribe(
        &self,
        env: Env,
        pattern: Unknown,
        handler: Unknown,
        options: Unknown,
    ) -> JsResult<JsPromise> {
        self.do_subscribe(&env, "psubscribe", Kind::Pattern, pattern, handler, options)
    }
}
