//! Cluster mode's JS-thread connections ("lanes"): one connection (plain or TLS) per master,
//! written and read on the JS thread like standalone mode's (see `driver`), for commands whose
//! keys all hash to one slot. Everything else (keyless and multi-slot commands, pipelines, transactions,
//! redirected replies, slots whose master has no lane connected) goes through the crate's
//! cluster connection on the runtime; `Batch::pump` keeps the two paths in call order.
//!
//! The slot map comes from `CLUSTER SLOTS`, asked through the crate's connection when the first
//! command needs it, after a redirect, and (at most every [`REFRESH_EVERY`]) while a slot's
//! master has no lane connected; a lane whose node no longer serves a slot closes once idle.
//! Each lane's connection is opened and re-opened by a standalone [`Client`] of its own on the
//! runtime, like the service's JS-thread connection in standalone mode; its log lines are
//! dropped (the cluster connection reports outages).

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use napi::sys;
use redis::Value;

use crate::core::cluster::slot_of;
use crate::core::config::{Node, Topology};
use crate::core::connection::{runtime, EventSink, Level};
use crate::core::wire::Socket;
use crate::core::work::Work;
use crate::core::Client;
use crate::engine::completer::{PlainHooks, Shared};
use crate::engine::driver::{Driver, DriverRef, LaneEvents};
use crate::engine::js_thread::{JsEnv, JsThread};

/// The shortest time between two slot-map refreshes.
const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// No lane for this slot.
const NONE: u16 = u16::MAX;

struct Lane {
    node: Node,
    client: Arc<Client>,
    driver: DriverRef,
}

#[derive(Default)]
struct State {
    /// Slot -> index into `lanes` (empty until the first map arrives).
    slots: Vec<u16>,
    lanes: Vec<Lane>,
    refreshing: bool,
    last_refresh: Option<Instant>,
    /// The service is gone: no lane opens again.
    closed: bool,
}

pub(crate) struct Lanes {
    env: sys::napi_env,
    /// The service's cluster client (asked for the slot map).
    cluster: Arc<Client>,
    shared: Arc<Shared>,
    outstanding: Arc<AtomicUsize>,
    events: Weak<dyn LaneEvents>,
    state: Mutex<State>,
    me: Weak<JsThread<Lanes>>,
}

/// The reads a pipeline on a lane may hold: the near cache's reads and their keys' `PTTL`.
const LANE_READS: &[&[u8]] = &[
    b"GET", b"HGET", b"HGETALL", b"HMGET", b"EXISTS", b"STRLEN", b"MGET", b"PTTL",
];

/// The one slot of a pipeline of reads (`LANE_READS`), which may go on that slot's lane (the
/// near cache's read and its `PTTL` then come back on the connection that tracks the key). A
/// redirect of any of them sends the whole pipeline again through the crate's routing, which
/// only reads can afford.
fn reads_slot(cmds: &[redis::Cmd]) -> Option<u16> {
    let mut slot = None;
    for c in cmds {
        let Some(redis::Arg::Simple(name)) = c.args_iter().next() else {
            return None;
        };
        if !LANE_READS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return None;
        }
        let s = slot_of(c)?;
        if slot.is_some_and(|x| x != s) {
            return None;
        }
        slot = Some(s);
    }
    slot
}

/// Hands a lane client's plain sockets to its driver; drops its log lines.
struct LaneSink {
    shared: Arc<Shared>,
    driver: Mutex<Option<Weak<JsThread<Driver>>>>,
}

impl EventSink for LaneSink {
    fn log(&self, _level: Level, _msg: String) {}

    /// Each master's connection reports as itself, through the service's queue.
    fn connection(&self, event: crate::core::ConnectionEvent) {
        self.shared.connection_event(event);
    }

    fn attach(&self, socket: Socket, gen: u64) {
        let driver = self.driver.lock().ok().and_then(|d| d.clone());
        self.shared.run_on_js(Box::new(move |env| {
            if let Some(d) = driver.and_then(|d| d.upgrade()) {
                d.attach(env, socket, gen);
            }
        }));
    }

    fn detach(&self) {
        let driver = self.driver.lock().ok().and_then(|d| d.clone());
        self.shared.run_on_js(Box::new(move |env| {
            if let Some(d) = driver.and_then(|d| d.upgrade()) {
                d.detach(env);
            }
        }));
    }
}

impl Lanes {
    /// Lanes for a cluster service on plain TCP where libuv is available; else `None`.
    pub fn new(
        env: JsEnv,
        client: &Arc<Client>,
        shared: &Arc<Shared>,
        outstanding: &Arc<AtomicUsize>,
        events: Weak<dyn LaneEvents>,
    ) -> Option<Arc<JsThread<Lanes>>> {
        if !client.is_cluster() || crate::engine::uv::uv().is_none() {
            return None;
        }
        Some(Arc::new_cyclic(|me| {
            JsThread::new(Lanes {
                env: env.raw(),
                cluster: Arc::clone(client),
                shared: Arc::clone(shared),
                outstanding: Arc::clone(outstanding),
                events,
                state: Mutex::new(State::default()),
                me: me.clone(),
            })
        }))
    }

    /// The lane `work` can go on right now: a single command whose keys share one slot, or a
    /// pipeline of reads of one slot (see [`reads_slot`]), whose master's lane is connected. Asks for a slot map when it is missing or points to a lane
    /// that is not connected.
    pub fn route(&self, work: &Work) -> Option<(usize, DriverRef)> {
        let slot = match work {
            Work::One(cmd) => slot_of(cmd)?,
            Work::Many {
                cmds,
                atomic: false,
            } => reads_slot(cmds)?,
            Work::Many { atomic: true, .. } => return None,
        };
        let (hit, stale) = {
            let st = self.state.lock().ok()?;
            match st.slots.get(usize::from(slot)).copied() {
                None => (None, true),
                Some(NONE) => (None, true),
                Some(i) => match st.lanes.get(usize::from(i)) {
                    Some(l) if l.driver.attached() => {
                        (Some((usize::from(i), Arc::clone(&l.driver))), false)
                    }
                    _ => (None, true),
                },
            }
        };
        if stale {
            self.refresh();
        }
        hit
    }

    /// Each master's connection: its address and whether it is up (for `stats()`).
    pub fn nodes(&self) -> Vec<(Node, bool)> {
        self.state.lock().map_or_else(
            |_| Vec::new(),
            |st| {
                st.lanes
                    .iter()
                    .map(|l| (l.node.clone(), l.driver.attached()))
                    .collect()
            },
        )
    }

    /// Whether any lane has jobs out.
    pub fn busy(&self) -> bool {
        self.state
            .lock()
            .map_or(true, |st| st.lanes.iter().any(|l| l.driver.busy()))
    }

    /// Asks the cluster for its slot map (unless a request is running or one was made within
    /// [`REFRESH_EVERY`]); the answer is installed on the JS thread.
    pub fn refresh(&self) {
        if !self.cluster.is_connected() {
            return;
        }
        {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            if st.refreshing || st.last_refresh.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
                return;
            }
            st.refreshing = true;
            st.last_refresh = Some(Instant::now());
        }
        let Ok(rt) = runtime() else { return };
        let cluster = Arc::clone(&self.cluster);
        let shared = Arc::clone(&self.shared);
        let me = self.me.clone();
        rt.spawn(async move {
            let mut q = redis::cmd("CLUSTER");
            q.arg("SLOTS");
            let map = match cluster.handle() {
                Ok(h) => cluster.query(h, &q).await.ok().map(|v| parse_slots(&v)),
                Err(_) => None,
            };
            shared.run_on_js(Box::new(move |_| {
                if let Some(me) = me.upgrade() {
                    me.install(map);
                }
            }));
        });
    }

    /// Installs a slot map (JS thread), opening a lane for each master not seen before and
    /// closing the idle lanes of nodes that no longer serve a slot (a failed-over master, now a
    /// replica or gone: its client would otherwise keep reconnecting to it).
    fn install(&self, map: Option<Vec<(u16, u16, Node)>>) {
        let retired = self.install_map(map);
        if !retired.is_empty() {
            Self::retire(retired);
        }
    }

    /// [`Lanes::install`] under the lock; returns the lanes to close (after it is released:
    /// closing a lane reports to the batch, which routes through `state` again).
    fn install_map(&self, map: Option<Vec<(u16, u16, Node)>>) -> Vec<Lane> {
        let Ok(mut st) = self.state.lock() else {
            return Vec::new();
        };
        st.refreshing = false;
        let Some(map) = map else {
            return Vec::new();
        };
        if st.closed || !self.cluster.is_connected() {
            return Vec::new();
        }
        let mut slots = vec![NONE; 16384];
        for (start, end, node) in map {
            let i = match st.lanes.iter().position(|l| l.node == node) {
                Some(i) => i,
                None => match self.open(&node) {
                    Some(lane) => {
                        st.lanes.push(lane);
                        st.lanes.len() - 1
                    }
                    None => continue,
                },
            };
            let Ok(i) = u16::try_from(i) else { continue };
            for s in start..=end.min(16383) {
                slots[usize::from(s)] = i;
            }
        }
        let mut used = vec![false; st.lanes.len()];
        for &i in &slots {
            if let Some(u) = used.get_mut(usize::from(i)) {
                *u = true;
            }
        }
        let mut retired = Vec::new();
        if used.contains(&false) {
            // A lane with replies still due stays until a later map (its jobs settle first).
            let mut renumber = vec![NONE; used.len()];
            let mut kept = Vec::with_capacity(used.len());
            for (i, lane) in std::mem::take(&mut st.lanes).into_iter().enumerate() {
                if used[i] || lane.driver.busy() {
                    renumber[i] = u16::try_from(kept.len()).unwrap_or(NONE);
                    kept.push(lane);
                } else {
                    retired.push(lane);
                }
            }
            for s in slots.iter_mut().filter(|s| **s != NONE) {
                *s = renumber[usize::from(*s)];
            }
            st.lanes = kept;
        }
        st.slots = slots;
        retired
    }

    /// Closes `lanes` (JS thread): their drivers stop at once (replies still due arrive first),
    /// their clients disconnect on the runtime.
    fn retire(lanes: Vec<Lane>) {
        let mut clients = Vec::with_capacity(lanes.len());
        for l in lanes {
            l.driver.shutdown();
            clients.push(l.client);
        }
        if let Ok(rt) = runtime() {
            rt.spawn(async move {
                for c in clients {
                    c.disconnect().await;
                }
            });
        }
    }

    /// A lane to `node`: a standalone client (reconnecting in the background) and its driver.
    fn open(&self, node: &Node) -> Option<Lane> {
        let mut cfg = self.cluster.cfg.clone();
        cfg.topology = Topology::Standalone;
        cfg.host = node.0.clone();
        cfg.port = node.1;
        // Keep retrying in the background; the service's own policy decides what callers see.
        cfg.fail_open = true;
        let sink = Arc::new(LaneSink {
            shared: Arc::clone(&self.shared),
            driver: Mutex::new(None),
        });
        // One near cache and one set of counters for the service: each lane's connection tracks
        // the keys read on it, and its invalidations and losses act on the one cache.
        let client =
            Client::sharing(cfg, Arc::clone(&sink) as Arc<dyn EventSink>, &self.cluster).ok()?;
        // `Lanes` lives in a `JsThread` (every access checks the thread), and lanes are opened
        // from the batch's pump, inside a JS call or completion task of `self.env`.
        // SAFETY: as just said; the token lives for this call only.
        let env = unsafe { JsEnv::assume(self.env) };
        let driver = Driver::new(
            env,
            &client,
            &self.shared,
            &self.outstanding,
            Some(self.events.clone()),
        )?;
        if let Ok(mut d) = sink.driver.lock() {
            *d = Some(Arc::downgrade(&driver));
        }
        let c = Arc::clone(&client);
        if let Ok(rt) = runtime() {
            rt.spawn(async move {
                let _ = c.connect().await;
            });
        }
        Some(Lane {
            node: node.clone(),
            client,
            driver,
        })
    }

    /// The service is gone (JS thread): closes every lane for good.
    pub fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.closed = true;
        }
        self.reset();
    }

    /// Closes every lane (JS thread): replies still due arrive first. The next command asks for
    /// a new slot map and opens them again.
    pub fn reset(&self) {
        let lanes = match self.state.lock() {
            Ok(mut st) => {
                st.slots.clear();
                st.last_refresh = None;
                std::mem::take(&mut st.lanes)
            }
            Err(_) => return,
        };
        Self::retire(lanes);
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // Runs on the JS thread (see the `Send` note): drivers must stop watching their sockets.
        self.close();
    }
}

/// `CLUSTER SLOTS` -> (first slot, last slot, master address).
fn parse_slots(v: &Value) -> Vec<(u16, u16, Node)> {
    let Value::Array(ranges) = v else {
        return Vec::new();
    };
    ranges
        .iter()
        .filter_map(|r| {
            let Value::Array(parts) = r else { return None };
            let int = |v: Option<&Value>| match v {
                Some(Value::Int(n)) => u16::try_from(*n).ok(),
                _ => None,
            };
            let start = int(parts.first())?;
            let end = int(parts.get(1))?;
            let Some(Value::Array(master)) = parts.get(2) else {
                return None;
            };
            let host = match master.first() {
                Some(Value::BulkString(b)) => String::from_utf8(b.clone()).ok()?,
                Some(Value::SimpleString(s)) => s.clone(),
                _ => return None,
            };
            let port = int(master.get(1))?;
            (!host.is_empty() && port != 0).then_some((start, end, (host, port)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_are_read_from_cluster_slots() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let v = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(30001), bulk("id1")]),
                Value::Array(vec![bulk("127.0.0.1"), Value::Int(30004), bulk("id4")]),
            ]),
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                Value::Array(vec![bulk(""), Value::Int(30002)]),
            ]),
            Value::Int(3),
        ]);
        assert_eq!(
            parse_slots(&v),
            vec![(0, 5460, ("127.0.0.1".to_string(), 30001))]
        );
        assert!(parse_slots(&Value::Nil).is_empty());
    }
}
