//! What `js/observe.js` (the `app-redis:*` diagnostics channels) asks the addon: where a
//! service's commands go, for the context of each trace. Nothing here runs unless a channel
//! has a subscriber.

use napi_derive::napi;

use crate::binding::error::JsRaw;
use crate::binding::js::Js;
use crate::binding::service::RedisService;

#[napi]
impl RedisService {
    /// Internal (js/observe.js): `{ database, serverAddress, serverPort, clientName?, cluster }`,
    /// where this service's commands go now (a Sentinel service: its current master; cluster
    /// mode: the first seed node). Never credentials.
    #[napi(skip_typescript, js_name = "__traceTarget")]
    pub fn trace_target(&self, env: napi::Env) -> JsRaw {
        let js = Js::of(&env);
        let (host, port) = self.client.target();
        let cfg = &self.client.cfg;
        let o = js.object();
        js.set_named(o, "database", js.num(cfg.db as f64));
        js.set_named(o, "serverAddress", js.str(host.as_bytes()));
        js.set_named(o, "serverPort", js.num(f64::from(port)));
        if let Some(name) = &cfg.client_name {
            js.set_named(o, "clientName", js.str(name.as_bytes()));
        }
        js.set_named(o, "cluster", js.bool(self.client.is_cluster()));
        JsRaw(o)
    }
}
