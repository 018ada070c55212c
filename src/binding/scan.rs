//! `scanIterator()`: an async iterator of keys, fetched with SCAN in batches.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::{Env, Unknown};
use napi_derive::napi;
use redis::Value;

use crate::binding::args::{Arg, Ctx};
use crate::binding::commands;
use crate::binding::decode::Out;
use crate::binding::error::JsPromise;
use crate::binding::error::{throw, JsResult};
use crate::binding::service::RedisService;
use crate::core::config::Node;
use crate::core::policy::{Decision, Feature, Policy};
use crate::core::{Client, Error};
use crate::engine::batch::Batcher;
use crate::engine::completer::Shared;
use crate::engine::js_thread::JsEnv;

struct State {
    cursor: String,
    started: bool,
    buffer: VecDeque<Vec<u8>>,
    /// The nodes to walk (every master in cluster mode; `[None]` otherwise), once known.
    nodes: Option<Vec<Option<Node>>>,
    /// Index into `nodes` of the node being scanned.
    at: usize,
}

impl State {
    /// Every node's cursor came back to 0.
    fn finished(&self) -> bool {
        self.started
            && self.cursor == "0"
            && self.nodes.as_ref().is_none_or(|n| self.at + 1 >= n.len())
    }
}

/// Async iterator returned by `scanIterator()`; use it with `for await`. Keys may repeat if
/// they are modified during the scan (a SCAN guarantee, not ours to hide).
#[napi]
pub struct ScanIterator {
    /// Keeps the service's queue alive while the iterator is in use.
    _owner: Rc<Batcher>,
    client: Arc<Client>,
    shared: Arc<Shared>,
    pattern: Option<String>,
    count: Option<i64>,
    state: Arc<tokio::sync::Mutex<State>>,
}

impl ScanIterator {
    pub(crate) fn new(
        owner: Rc<Batcher>,
        client: Arc<Client>,
        shared: Arc<Shared>,
        pattern: Option<String>,
        count: Option<i64>,
    ) -> Self {
        ScanIterator {
            _owner: owner,
            client,
            shared,
            pattern,
            count,
            state: Arc::new(tokio::sync::Mutex::new(State {
                cursor: "0".into(),
                started: false,
                buffer: VecDeque::new(),
                nodes: None,
                at: 0,
            })),
        }
    }
}

#[napi]
impl ScanIterator {
    /// The next key: `{ done: false, value }`, then `{ done: true, value: undefined }`.
    #[napi(ts_return_type = "Promise<IteratorResult<string, undefined>>")]
    pub fn next(&self, env: Env) -> JsResult<JsPromise> {
        let raw = JsEnv::of(&env);
        let (d, promise) = self.shared.promise(raw)?;
        // Fast path: a buffered key resolves without leaving this thread.
        if let Ok(mut st) = self.state.try_lock() {
            if let Some(k) = st.buffer.pop_front() {
                self.shared.settle_now(raw, d, Ok(Out::IterItem(Some(k))));
                return Ok(JsPromise(promise));
            }
            if st.finished() {
                self.shared.settle_now(raw, d, Ok(Out::IterItem(None)));
                return Ok(JsPromise(promise));
            }
        }
        let client = Arc::clone(&self.client);
        let state = Arc::clone(&self.state);
        let prefix = self.shared.prefix.clone();
        let pattern = self.pattern.clone();
        let count = self.count;
        let policy = Policy::of(&client.cfg, Feature::Commands);
        self.shared.spawn(raw, d, async move {
            let mut st = state.lock().await;
            loop {
                if let Some(k) = st.buffer.pop_front() {
                    return Ok(Out::IterItem(Some(k)));
                }
                if st.finished() {
                    return Ok(Out::IterItem(None));
                }
                if st.started && st.cursor == "0" {
                    // This node is done; the next cluster master starts from cursor 0.
                    st.at += 1;
                    st.started = false;
                }
                let c = Ctx {
                    method: "scanIterator",
                };
                let prep = commands::scan_step(c, &prefix, &st.cursor, pattern.as_deref(), count)?;
                if st.nodes.is_none() {
                    match client.scan_targets().await {
                        Ok(n) => st.nodes = Some(n),
                        Err(e) => {
                            return match policy.after(&client, e) {
                                Decision::Degrade => Ok(Out::IterItem(None)),
                                Decision::Fail(e) => Err(e),
                            }
                        }
                    }
                }
                let node = st
                    .nodes
                    .as_ref()
                    .and_then(|n| n.get(st.at))
                    .cloned()
                    .flatten();
                let reply = match client.handle() {
                    Ok(h) => client.query_at(h, node.as_ref(), &prep.cmd).await,
                    Err(e) => Err(e),
                };
                let reply = match reply {
                    Ok(v) => v,
                    Err(e) => {
                        return match policy.after(&client, e) {
                            Decision::Degrade => Ok(Out::IterItem(None)),
                            Decision::Fail(e) => Err(e),
                        }
                    }
                };
                st.started = true;
                let (cursor, keys) = parse_scan(reply)?;
                st.cursor = cursor;
                st.buffer.extend(keys);
            }
        });
        Ok(JsPromise(promise))
    }

    /// Stops the iteration (called by `break` in `for await`).
    #[napi(
        js_name = "return",
        ts_return_type = "Promise<IteratorResult<string, undefined>>"
    )]
    pub fn finish(&self, env: Env) -> JsResult<JsPromise> {
        let raw = JsEnv::of(&env);
        let (d, promise) = self.shared.promise(raw)?;
        if let Ok(mut st) = self.state.try_lock() {
            st.buffer.clear();
            st.started = true;
            st.cursor = "0".into();
        }
        self.shared.settle_now(raw, d, Ok(Out::IterItem(None)));
        Ok(JsPromise(promise))
    }
}

fn parse_scan(v: Value) -> Result<(String, Vec<Vec<u8>>), Error> {
    let bad = || Error::Reply("unexpected SCAN reply".into());
    let Value::Array(mut parts) = v else {
        return Err(bad());
    };
    if parts.len() != 2 {
        return Err(bad());
    }
    let keys = parts.pop().ok_or_else(bad)?;
    let cursor = match parts.pop().ok_or_else(bad)? {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::SimpleString(s) => s,
        Value::Int(i) => i.to_string(),
        _ => return Err(bad()),
    };
    let keys = match keys {
        Value::Array(ks) => ks
            .into_iter()
            .filter_map(|k| match k {
                Value::BulkString(b) => Some(b),
                _ => None,
            })
            .collect(),
        _ => return Err(bad()),
    };
    Ok((cursor, keys))
}

#[napi]
impl RedisService {
    /// Iterates every key (matching `pattern`, without the key prefix) with SCAN:
    /// `for await (const key of redis.scanIterator('user:*')) ...`. `count` is a batch-size hint.
    #[napi(
        ts_args_type = "pattern?: string, count?: number",
        ts_return_type = "AsyncIterableIterator<string>"
    )]
    pub fn scan_iterator(
        &self,
        env: Env,
        pattern: Unknown,
        count: Unknown,
    ) -> JsResult<ScanIterator> {
        let c = Ctx {
            method: "scanIterator",
        };
        let pattern = Arg::from(pattern);
        let pattern = if pattern.is_nullish() {
            None
        } else {
            Some(
                pattern
                    .string(c, "pattern")
                    .map_err(|e| throw(JsEnv::of(&env), e))?,
            )
        };
        let count = Arg::from(count);
        let count = if count.is_nullish() {
            None
        } else {
            Some(
                count
                    .positive(c, "count")
                    .map_err(|e| throw(JsEnv::of(&env), e))?,
            )
        };
        Ok(ScanIterator::new(
            Rc::clone(&self.batcher),
            Arc::clone(&self.client),
            Arc::clone(&self.shared),
            pattern,
            count,
        ))
    }
}
