//! Pub/sub on `RedisService`: the JS-side handler registry (several handlers per channel), the
//! `Subscription` handle, and delivery: each message becomes one task on the completion queue, so
//! handlers run on the JS thread in the connection's order. While anything is subscribed the
//! process stays alive; once nothing is (or the service disconnects), nothing keeps it alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use napi::bindgen_prelude::{Env, JavaScriptClassExt, ToNapiValue, Unknown};
use napi::sys;
use napi_derive::napi;

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Js, Out};
use crate::binding::error::{js_error, throw, JsResult};
use crate::binding::follow;
use crate::binding::service::{JsPromise, RedisService};
use crate::core::pubsub::{Kind, Message, Subscriber};
use crate::core::{Client, Error, Level};
use crate::engine::completer::{JsRef, Shared};

struct Handler {
    id: u64,
    func: JsRef,
    on_error: Option<JsRef>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    channels: HashMap<Vec<u8>, Vec<Handler>>,
    patterns: HashMap<Vec<u8>, Vec<Handler>>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Vec<u8>, Vec<Handler>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }

    fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty()
    }
}

/// One service's pub/sub state.
#[derive(Default)]
pub struct PubSub {
    registry: Mutex<Registry>,
    subscriber: OnceLock<Arc<Subscriber>>,
    /// Whether a pending operation is counted for the subscriptions (keeps Node alive).
    counted: AtomicBool,
}

unsafe fn free(env: sys::napi_env, h: Handler) {
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        h.func.take(env);
        if let Some(e) = h.on_error {
            e.take(env);
        }
    }
}

impl PubSub {
    fn subscriber(self: &Arc<Self>, client: &Arc<Client>, shared: &Arc<Shared>) -> Arc<Subscriber> {
        let weak: Weak<PubSub> = Arc::downgrade(self);
        let shared = Arc::clone(shared);
        Arc::clone(self.subscriber.get_or_init(|| {
            let to_js = Arc::clone(&shared);
            Subscriber::new(client, move |m: Message| {
                let me = weak.clone();
                let sh = Arc::clone(&to_js);
                to_js.run_on_js(Box::new(move |env| {
                    if let Some(me) = me.upgrade() {
                        // SAFETY: completion-queue tasks run on the JS thread of this service's
                        // env.
                        unsafe { me.dispatch(env, &sh, m) };
                    }
                }));
            })
        }))
    }

    /// Keeps the process alive while something is subscribed (JS thread).
    unsafe fn hold(&self, env: sys::napi_env, shared: &Shared, on: bool) {
        if on != self.counted.swap(on, Ordering::AcqRel) {
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe {
                if on {
                    shared.begin(env);
                } else {
                    shared.end(env);
                }
            }
        }
    }

    /// Calls every handler of the message's channel (or pattern), in registration order.
    unsafe fn dispatch(&self, env: sys::napi_env, shared: &Arc<Shared>, m: Message) {
        let js = Js::new(env);
        let (kind, name) = match &m.pattern {
            Some(p) => (Kind::Pattern, p.clone()),
            None => (Kind::Channel, m.channel.clone()),
        };
        let targets: Vec<(sys::napi_value, sys::napi_value)> = match self.registry.lock() {
            Ok(mut r) => r
                .map(kind)
                .get(&name)
                .map(|hs| {
                    hs.iter()
                        // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose
                        // callers all run there.
                        .map(|h| unsafe {
                            let mut f = std::ptr::null_mut();
                            sys::napi_get_reference_value(env, h.func.raw(), &mut f);
                            let mut e = std::ptr::null_mut();
                            if let Some(on_error) = &h.on_error {
                                sys::napi_get_reference_value(env, on_error.raw(), &mut e);
                            }
                            (f, e)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => return,
        };
        if targets.is_empty() {
            return;
        }
        let mut args = vec![js.str(&m.payload), js.str(&m.channel)];
        if let Some(p) = &m.pattern {
            args.push(js.str(p));
        }
        let channel = String::from_utf8_lossy(&m.channel).into_owned();
        if js.failed() {
            // The message (or its channel) cannot become a JS string: every handler's `onError`
            // hears of it (else the logger), rather than the message vanishing.
            let e = Error::Reply(format!(
                "a message of {} bytes on channel {channel} cannot become a JS string (V8's limit is {} characters)",
                m.payload.len(),
                crate::binding::decode::MAX_JS_STRING
            ));
            for (_, on_error) in targets {
                // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all
                // run there.
                let err = unsafe { crate::binding::error::js_error(env, &e) };
                // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all
                // run there.
                let on_error = (!on_error.is_null()).then(|| unsafe { JsRef::new(env, on_error) });
                // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all
                // run there.
                unsafe { report(env, shared, on_error, err, &channel) };
            }
            return;
        }
        for (f, on_error) in targets {
            if f.is_null() {
                continue;
            }
            let sh = Arc::clone(shared);
            let ch = channel.clone();
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            let on_error = (!on_error.is_null()).then(|| unsafe { JsRef::new(env, on_error) });
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe {
                follow::call(
                    env,
                    f,
                    &args,
                    Box::new(move |env, ok, v| {
                        if ok {
                            if let Some(r) = on_error {
                                r.take(env);
                            }
                            return;
                        }
                        report(env, &sh, on_error, v, &ch);
                    }),
                )
            };
        }
    }

    /// Removes one handler; `Some(name)` when it was the channel's last (unsubscribe in Redis).
    unsafe fn remove(&self, env: sys::napi_env, kind: Kind, name: &[u8], id: u64) -> (bool, bool) {
        let Ok(mut r) = self.registry.lock() else {
            return (false, false);
        };
        let map = r.map(kind);
        let mut last = false;
        if let Some(hs) = map.get_mut(name) {
            if let Some(pos) = hs.iter().position(|h| h.id == id) {
                let h = hs.remove(pos);
                // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all
                // run there.
                unsafe { free(env, h) };
            }
            if hs.is_empty() {
                map.remove(name);
                last = true;
            }
        }
        (last, r.is_empty())
    }

    /// Drops every handler (the service disconnects).
    pub unsafe fn close(&self, env: sys::napi_env, shared: &Shared) {
        let handlers: Vec<Handler> = match self.registry.lock() {
            Ok(mut r) => {
                let all = std::mem::take(&mut *r);
                all.channels
                    .into_values()
                    .chain(all.patterns.into_values())
                    .flatten()
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for h in handlers {
            // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
            // there.
            unsafe { free(env, h) };
        }
        if let Some(s) = self.subscriber.get() {
            s.close();
        }
        // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run
        // there.
        unsafe { self.hold(env, shared, false) };
    }

    /// Allows subscriptions again (the service connects).
    pub fn reopen(&self) {
        if let Some(s) = self.subscriber.get() {
            s.reopen();
        }
    }
}

/// A handler threw or rejected: to its `onError`, else the logger; never to the process.
unsafe fn report(
    env: sys::napi_env,
    shared: &Shared,
    on_error: Option<JsRef>,
    err: sys::napi_value,
    channel: &str,
) {
    // SAFETY: JS thread of `env`: the contract of this `unsafe fn`, whose callers all run there.
    unsafe {
        if let Some(r) = on_error {
            let f = r.take(env);
            let js = Js::new(env);
            let args = [err, js.str(channel.as_bytes())];
            let mut out = std::ptr::null_mut();
            if sys::napi_call_function(env, js.undefined(), f, 2, args.as_ptr(), &mut out)
                == sys::Status::napi_ok
            {
                return;
            }
            let mut exc = std::ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut exc);
        }
        let mut text = std::ptr::null_mut();
        let msg = if sys::napi_coerce_to_string(env, err, &mut text) == sys::Status::napi_ok {
            crate::binding::args::read_string(env, text).unwrap_or_default()
        } else {
            let mut exc = std::ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &mut exc);
            "an error".to_string()
        };
        shared.log_now(
            env,
            Level::Error,
            &format!("a pub/sub handler for \"{channel}\" threw: {msg}"),
        );
    }
}

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
        let raw = env.raw();
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        let (d, promise) = unsafe { self.shared.promise(raw) }?;
        if !self.active.replace(false) {
            // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
            unsafe {
                self.shared
                    .settle_now(raw, d, Ok(Out::Json(serde_json::Value::Null)))
            };
            return Ok(JsPromise(promise));
        }
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        let (last, empty) = unsafe { self.pubsub.remove(raw, self.kind, &self.name, self.id) };
        if empty {
            // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
            unsafe { self.pubsub.hold(raw, &self.shared, false) };
        }
        if !last {
            // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
            unsafe {
                self.shared
                    .settle_now(raw, d, Ok(Out::Json(serde_json::Value::Null)))
            };
            return Ok(JsPromise(promise));
        }
        let sub = self.pubsub.subscriber(&self.client, &self.shared);
        let (kind, name) = (self.kind, self.name.clone());
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        unsafe {
            self.shared.spawn(raw, d, async move {
                sub.unsubscribe(kind, name).await?;
                Ok(Out::Json(serde_json::Value::Null))
            })
        };
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
        let raw = env.raw();
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
                Some(e.v)
            };
            Ok((n.into_bytes(), h.v, on_error))
        })();
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        let (d, promise) = unsafe { self.shared.promise(raw) }?;
        let (name, func, on_error) = match parsed {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
                unsafe { self.shared.settle_now(raw, d, Err(e)) };
                return Ok(JsPromise(promise));
            }
        };
        if !self.client.cfg.enabled {
            // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
            unsafe {
                self.shared.settle_now(
                    raw,
                    d,
                    Err(Error::Disabled(
                        "Redis is disabled (enabled: false / REDIS_ENABLED=false): nothing to subscribe to".into(),
                    )),
                )
            };
            return Ok(JsPromise(promise));
        }
        let (id, first) = match self.pubsub.registry.lock() {
            Ok(mut r) => {
                r.next += 1;
                let id = r.next;
                let entry = r.map(kind).entry(name.clone()).or_default();
                let first = entry.is_empty();
                entry.push(Handler {
                    id,
                    // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
                    func: unsafe { JsRef::new(raw, func) },
                    // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
                    on_error: on_error.map(|e| unsafe { JsRef::new(raw, e) }),
                });
                (id, first)
            }
            Err(_) => {
                return Err(throw(
                    raw,
                    Error::Connection("internal state lock poisoned".into()),
                ))
            }
        };
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        unsafe { self.pubsub.hold(raw, &self.shared, true) };
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
        let v = unsafe { ToNapiValue::to_napi_value(raw, instance) }?;
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        let keep = unsafe { JsRef::new(raw, v) };
        if !first {
            // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
            unsafe { self.shared.settle_now(raw, d, Ok(Out::Ref(keep, None))) };
            return Ok(JsPromise(promise));
        }
        let subscriber = self.pubsub.subscriber(&self.client, &self.shared);
        self.pubsub.reopen();
        let pubsub = Arc::clone(&self.pubsub);
        let shared = Arc::clone(&self.shared);
        // SAFETY: inside a JS call on the thread of `env` (`raw` is that call's env).
        unsafe {
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
                        let err = js_error(env, &e);
                        d.settle(env, false, err);
                    }
                })))
            })
        };
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
