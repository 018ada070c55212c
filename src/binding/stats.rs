//! `stats()`: the service's counters (`core::stats`) as one JS object; `metricsText()`
//! (js/metrics.js) renders it for Prometheus.

use std::sync::atomic::Ordering;

use napi_derive::napi;

use crate::binding::error::JsRaw;
use crate::binding::js::Js;
use crate::binding::service::RedisService;

#[napi]
impl RedisService {
    /// Counters since the service was made: commands, replies, degraded results, calls in
    /// flight, errors by code, latency (count, sum, p50/p90/p99, max and buckets, in
    /// milliseconds), the connection's state, reconnects and time without Redis, rate-limit
    /// decisions, and the near cache's counters when it is on. Synchronous and cheap: each is a
    /// counter read. `metricsText()` gives the same for Prometheus.
    #[napi(ts_return_type = "RedisStats")]
    pub fn stats(&self, env: napi::Env) -> JsRaw {
        let js = Js::of(&env);
        let s = &self.client.stats;
        let n = |v: u64| js.num(v as f64);
        let o = js.object();
        js.set_named(o, "commands", n(s.commands.load(Ordering::Relaxed)));
        js.set_named(o, "replies", n(s.replies.load(Ordering::Relaxed)));
        js.set_named(o, "degraded", n(s.degraded.load(Ordering::Relaxed)));
        js.set_named(o, "inFlight", n(self.batcher.in_flight() as u64));
        let errors = js.object();
        for (code, count) in s.errors() {
            js.set_named(errors, code, n(count));
        }
        js.set_named(o, "errors", errors);
        let l = s.latency();
        let lat = js.object();
        js.set_named(lat, "count", n(l.count));
        js.set_named(lat, "sum", js.num(l.sum_ms));
        js.set_named(lat, "p50", js.num(l.p50_ms));
        js.set_named(lat, "p90", js.num(l.p90_ms));
        js.set_named(lat, "p99", js.num(l.p99_ms));
        js.set_named(lat, "max", js.num(l.max_ms));
        let buckets = js.array(l.buckets.len());
        for (i, (upper_us, count)) in l.buckets.iter().enumerate() {
            let b = js.array(2);
            js.set_index(b, 0, js.num(*upper_us as f64 / 1000.0));
            js.set_index(b, 1, n(*count));
            js.set_index(buckets, i, b);
        }
        js.set_named(lat, "buckets", buckets);
        js.set_named(o, "latencyMs", lat);
        let (host, port) = self.client.target();
        let conn = js.object();
        js.set_named(conn, "state", js.str(self.client.state_name().as_bytes()));
        js.set_named(conn, "serverAddress", js.str(host.as_bytes()));
        js.set_named(conn, "serverPort", js.num(f64::from(port)));
        js.set_named(o, "connection", conn);
        // Cluster mode: each master's connection (the JS-thread ones), as the slot map has them.
        let lanes = self.batcher.lanes().and_then(|w| w.upgrade());
        if let Some(nodes) = lanes.as_ref().and_then(|l| l.get()).map(|l| l.nodes()) {
            let list = js.array(nodes.len());
            for (i, ((h, p), up)) in nodes.iter().enumerate() {
                let node = js.object();
                js.set_named(node, "state", js.str(if *up { b"up" } else { b"down" }));
                js.set_named(node, "serverAddress", js.str(h.as_bytes()));
                js.set_named(node, "serverPort", js.num(f64::from(*p)));
                js.set_index(list, i, node);
            }
            js.set_named(o, "nodes", list);
        }
        js.set_named(o, "reconnects", n(s.reconnects.load(Ordering::Relaxed)));
        js.set_named(o, "outages", n(s.outages.load(Ordering::Relaxed)));
        js.set_named(o, "outageMs", n(self.client.outage_ms()));
        let locks = js.object();
        js.set_named(
            locks,
            "acquired",
            n(s.locks_acquired.load(Ordering::Relaxed)),
        );
        js.set_named(locks, "waited", n(s.locks_waited.load(Ordering::Relaxed)));
        js.set_named(
            locks,
            "waitMs",
            js.num(s.lock_wait_us.load(Ordering::Relaxed) as f64 / 1000.0),
        );
        js.set_named(locks, "failed", n(s.locks_failed.load(Ordering::Relaxed)));
        js.set_named(locks, "lost", n(s.locks_lost.load(Ordering::Relaxed)));
        js.set_named(
            locks,
            "degraded",
            n(s.locks_degraded.load(Ordering::Relaxed)),
        );
        js.set_named(o, "locks", locks);
        let rl = js.object();
        js.set_named(rl, "allowed", n(s.rate_allowed.load(Ordering::Relaxed)));
        js.set_named(rl, "refused", n(s.rate_refused.load(Ordering::Relaxed)));
        js.set_named(rl, "degraded", n(s.rate_degraded.load(Ordering::Relaxed)));
        js.set_named(o, "rateLimits", rl);
        if let Some(near) = &self.client.near {
            let c = near.stats();
            let cc = js.object();
            js.set_named(cc, "hits", n(c.hits));
            js.set_named(cc, "misses", n(c.misses));
            js.set_named(cc, "entries", n(c.entries));
            js.set_named(cc, "bytes", n(c.bytes));
            js.set_named(cc, "evictions", n(c.evictions));
            js.set_named(cc, "invalidations", n(c.invalidations));
            js.set_named(cc, "flushes", n(c.flushes));
            js.set_named(o, "clientCache", cc);
        }
        JsRaw(o)
    }
}
