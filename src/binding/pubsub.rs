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
use crate::binding::decode::Out;
use crate::binding::error::{throw, JsResult};
use crate::binding::follow;
use crate::binding::js::Js;
use crate::binding::service::{JsPromise, RedisService};
use crate::core::pubsub::{Kind, Message, Subscriber};
use crate::core::{Client, Error, Level};
use crate::engine::completer::Shared;
use crate::engine::js_thread::JsEnv;
use crate::engine::js_thread::JsRef;

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

fn free(env: JsEnv, h: Handler) {
    h.func.take(env);
    if let Some(e) = h.on_error {
        e.take(env);
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
                        me.dispatch(env, &sh, m);
                    }
                }));
            })
        }))
    }

    /// Keeps the process alive while something is subscribed (JS thread).
    fn hold(&self, env: JsEnv, shared: &Shared, on: bool) {
        if on != self.counted.swap(on, Ordering::AcqRel) {
            if on {
                shared.begin(env);
            } else {
                shared.end(env);
            }
        }
    }

    /// Calls every handler of the message's channel (or pattern), in registration order.
    fn dispatch(&self, env: JsEnv, shared: &Arc<Shared>, m: Message) {
        let js = Js::new(env);
        let (kind, name) = match &m.pattern {
            Some(p) => (Kind::Pattern, p.clone()),
            None => (Kind::Channel, m.channel.clone()),
        };
        let targets: Vec<(Option<sys::napi_value>, Option<sys::napi_value>)> =
            match self.registry.lock() {
                Ok(mut r) => r
                    .map(kind)
                    .get(&name)
                    .map(|hs| {
                        hs.iter()
                            .map(|h| {
                                (
                                    h.func.get(env),
                                    h.on_error.as_ref().and_then(|e| e.get(env)),
                                )
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
                crate::binding::js::MAX_JS_STRING
            ));
            for (_, on_error) in targets {
                let on_error = on_error.and_then(|f| JsRef::new(env, f));
                report(&js, shared, on_error, js.error(&e), &channel);
            }
            return;
        }
        for (f, on_error) in targets {
            let Some(f) = f else { continue };
            let sh = Arc::clone(shared);
            let ch = channel.clone();
            let on_error = on_error.and_then(|f| JsRef::new(env, f));
            follow::call(
                &js,
                f,
                &args,
                Box::new(move |js, ok, v| {
                    if ok {
                        js.release(on_error);
                        return;
                    }
                    report(js, &sh, on_error, v, &ch);
                }),
            );
        }
    }

    /// Removes one handler; `Some(name)` when it was the channel's last (unsubscribe in Redis).
    fn remove(&self, env: JsEnv, kind: Kind, name: &[u8], id: u64) -> (bool, bool) {
        let Ok(mut r) = self.registry.lock() else {
            return (false, false);
        };
        let map = r.map(kind);
        let mut last = false;
        if let Some(hs) = map.get_mut(name) {
            if let Some(pos) = hs.iter().position(|h| h.id == id) {
                let h = hs.remove(pos);
                free(env, h);
            }
            if hs.is_empty() {
                map.remove(name);
                last = true;
            }
        }
        (last, r.is_empty())
    }

    /// Drops every handler (the service disconnects).
    pub fn close(&self, env: JsEnv, shared: &Shared) {
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
            free(env, h);
        }
        if let Some(s) = self.subscriber.get() {
            s.close();
        }
        self.hold(env, shared, false);
    }

    /// Allows subscriptions again (the service connects).
    pub fn reopen(&self) {
        if let Some(s) = self.subscriber.get() {
            s.reopen();
        }
    }
}

fn shutting_down() -> Error {
    Error::Connection("the environment is shutting down".into())
}

/// A handler threw or rejected: to its `onError`, else the logger; never to the process.
fn report(js: &Js, shared: &Shared, on_error: Option<JsRef>, err: sys::napi_value, channel: &str) {
    if let Some(r) = on_error {
        let f = r.take(js.env());
        if js
            .call(std::ptr::null_mut(), f, &[err, js.str(channel.as_bytes())])
            .is_ok()
        {
            return;
        }
    }
    let msg = js
        .coerce_string(err)
        .unwrap_or_else(|| "an error".to_string());
    shared.log_now(
        js.env(),
        Level::Error,
        &format!("a pub/sub handler for \"{channel}\" threw: {msg}"),
    );
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
        let (id, first) = match self.pubsub.registry.lock() {
            Ok(mut r) => {
                r.next += 1;
                let id = r.next;
                let entry = r.map(kind).entry(name.clone()).or_default();
                let first = entry.is_empty();
                entry.push(Handler { id, func, on_error });
                (id, first)
            }
            Err(_) => {
                return Err(throw(
                    raw,
                    Error::Connection("internal state lock poisoned".into()),
                ))
            }
        };
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
