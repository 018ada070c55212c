//! The JS side of pub/sub delivery, per service: the handler registry (several handlers per
//! channel), the one subscriber connection, and delivery: each message becomes one task on the
//! completion queue, so handlers run on the JS thread in the connection's order. While anything
//! is subscribed the process stays alive; once nothing is (or the service disconnects), nothing
//! keeps it alive. `binding::pubsub` holds the methods that use it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use napi::sys;

use crate::binding::follow;
use crate::binding::js::Js;
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
    pub(crate) fn subscriber(
        self: &Arc<Self>,
        client: &Arc<Client>,
        shared: &Arc<Shared>,
    ) -> Arc<Subscriber> {
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
    pub(crate) fn hold(&self, env: JsEnv, shared: &Shared, on: bool) {
        if on != self.counted.swap(on, Ordering::AcqRel) {
            if on {
                shared.begin(env);
            } else {
                shared.end(env);
            }
        }
    }

    /// Calls every handler of the message's channel (or pattern), in registration order.
    pub(crate) fn dispatch(&self, env: JsEnv, shared: &Arc<Shared>, m: Message) {
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
    /// Adds a handler of `name`: its id, and whether it is the channel's first (subscribe then).
    pub(crate) fn add(
        &self,
        kind: Kind,
        name: &[u8],
        func: JsRef,
        on_error: Option<JsRef>,
    ) -> Result<(u64, bool), Error> {
        let mut r = self
            .registry
            .lock()
            .map_err(|_| Error::Connection("internal state lock poisoned".into()))?;
        r.next += 1;
        let id = r.next;
        let entry = r.map(kind).entry(name.to_vec()).or_default();
        let first = entry.is_empty();
        entry.push(Handler { id, func, on_error });
        Ok((id, first))
    }

    pub(crate) fn remove(&self, env: JsEnv, kind: Kind, name: &[u8], id: u64) -> (bool, bool) {
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

pub(crate) fn shutting_down() -> Error {
    Error::Connection("the environment is shutting down".into())
}

/// A handler threw or rejected: to its `onError`, else the logger; never to the process.
pub(crate) fn report(
    js: &Js,
    shared: &Shared,
    on_error: Option<JsRef>,
    err: sys::napi_value,
    channel: &str,
) {
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
