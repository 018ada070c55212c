//! A job's tag: how its outcome settles (its shape, its degradation policy, the retries it may
//! need), and the settling of finished jobs on the JS thread. Shared by the batcher (which makes
//! jobs) and the drivers (which finish them).

use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use napi::sys;
use redis::Value;

use crate::core::policy::Decision;
use crate::core::reply::{Decode, Empty};
use crate::core::stats::{Ending, Tally};
use crate::core::work::{Job, Work};
use crate::core::{Client, Error};
use crate::engine::completer::Shared;
use crate::engine::js_thread::{Deferred, JsEnv};
use crate::engine::outcome::Out;

/// Turns a reply (`Ok(None)`: the degraded result; `Err`: the command failed or was refused
/// before it was sent) into what JS receives. Called exactly once per job, unless its
/// environment ends first.
pub(crate) type Convert =
    Box<dyn FnOnce(Result<Option<Value>, Error>) -> Result<Out, Error> + Send>;

/// How to turn a job's outcome into JS.
pub(crate) enum Shape {
    One(Decode, Empty),
    /// A pipeline's (boxed: every call's tag carries a `Shape`, most are `One`).
    Many(Box<(Vec<Decode>, Vec<Empty>)>),
    /// A feature's own result object (rate limits).
    Custom(Convert),
}

impl Shape {
    pub(crate) fn degraded(self) -> Out {
        match self {
            Shape::One(_, e) => Out::Empty(e),
            Shape::Many(m) => Out::EmptyPipeline(m.1),
            Shape::Custom(f) => f(Ok(None)).unwrap_or(Out::Empty(Empty::Null)),
        }
    }

    /// The outcome of a job refused before it was sent: a feature's own conversion sees the
    /// error too (it may hold resources to give back).
    pub(crate) fn failed(self, e: Error) -> Result<Out, Error> {
        match self {
            Shape::Custom(f) => f(Err(e)),
            _ => Err(e),
        }
    }

    fn out(self, r: Result<Value, Error>) -> Result<Out, Error> {
        match (self, r) {
            (Shape::One(d, _), Ok(v)) => Ok(Out::Reply(v, d)),
            (Shape::Custom(f), Ok(v)) => f(Ok(Some(v))),
            (Shape::Many(m), Ok(Value::Array(vals))) => {
                Ok(Out::Pipeline(vals.into_iter().map(Ok).zip(m.0).collect()))
            }
            (Shape::Many(..), Ok(other)) => Err(Error::Reply(format!(
                "unexpected pipeline reply: {other:?}"
            ))),
            (Shape::Custom(f), Err(e)) => f(Err(e)),
            (_, Err(e)) => Err(e),
        }
    }
}

/// How a job degrades while Redis is unreachable or disabled (the one policy: `core::policy`).
pub(crate) use crate::core::policy::Policy;

/// What the dispatcher hands back with each outcome.
pub(crate) struct Tag {
    pub(crate) deferred: Deferred,
    pub(crate) shape: Shape,
    pub(crate) policy: Policy,
    /// The `EVAL` to send instead when an `EVALSHA` meets `NOSCRIPT`.
    pub(crate) retry: Option<Box<redis::Cmd>>,
    /// A job sent on a cluster lane: what it sent, to send again through the crate's routing
    /// when the node redirects it.
    pub(crate) redirect: Option<Box<Work>>,
    /// When the call was made (`core::stats::now_us`, per tick), for the latency histogram. A
    /// `u32`: it fits the tag's padding (8 more bytes per job cost the hot path about 7%).
    pub(crate) born: u32,
}

impl Tag {
    /// The call's outcome, counted in `tally` (the client's stats, per batch).
    pub(crate) fn out(
        self,
        r: Result<Value, Error>,
        client: &Client,
        tally: &mut Tally,
    ) -> (Deferred, Result<Out, Error>) {
        let r = match r {
            Err(e) => match self.policy.after(client, e) {
                Decision::Degrade => {
                    tally.add(self.born, Ending::Degraded);
                    return (self.deferred, Ok(self.shape.degraded()));
                }
                Decision::Fail(e) => {
                    tally.add(self.born, Ending::Failed(&e));
                    Err(e)
                }
            },
            ok => {
                tally.add(self.born, Ending::Reply);
                ok
            }
        };
        (self.deferred, self.shape.out(r))
    }
}

/// A reply that asks for the script to be sent in full (`NOSCRIPT` on an `EVALSHA`).
fn wants_eval(r: &Result<Value, Error>, tag: &Tag) -> bool {
    tag.retry.is_some() && crate::core::script::wants_eval(r)
}

/// A cluster node's answer that the command (or one of a pipeline's) was not run there and
/// belongs elsewhere (or later).
fn redirected(r: &Result<Value, Error>) -> bool {
    use crate::core::cluster::is_redirect;
    match r {
        Err(Error::Reply(m)) => is_redirect(m.split(' ').next().unwrap_or("")),
        Ok(Value::Array(replies)) => replies
            .iter()
            .any(|v| matches!(v, Value::ServerError(e) if is_redirect(e.code()))),
        _ => false,
    }
}

/// Settles finished jobs on the JS thread (the JS-thread connection's path).
/// Returns the jobs to send again on this connection (scripts the server did not know: now as
/// `EVAL`), and the jobs a cluster node redirected (to send through the crate's routing).
pub(crate) fn settle_tags(
    env: JsEnv,
    shared: &Shared,
    client: &Client,
    outstanding: &AtomicUsize,
    items: Vec<(Tag, Result<Value, Error>)>,
) -> (Vec<Job<Tag>>, Vec<Job<Tag>>) {
    let mut tally = Tally::new(&client.stats, crate::core::stats::now_us());
    let mut again = Vec::new();
    let mut moved = Vec::new();
    let mut n = 0;
    // One handle scope per few replies rather than per reply (each settlement makes a handful
    // of handles).
    const PER_SCOPE: usize = 32;
    let mut scope: sys::napi_handle_scope = ptr::null_mut();
    let mut in_scope = 0;
    for (mut t, r) in items {
        if redirected(&r) {
            if let Some(work) = t.redirect.take() {
                if let Some(near) = &client.near {
                    // A slot moved (or its master failed over): what was read from its old node
                    // may no longer be invalidated.
                    near.flush();
                }
                moved.push(Job {
                    work: *work,
                    tag: t,
                });
                continue;
            }
        }
        if wants_eval(&r, &t) {
            if let Some(cmd) = t.retry.take() {
                again.push(Job {
                    work: Work::One(*cmd),
                    tag: t,
                });
                continue;
            }
        }
        n += 1;
        // SAFETY: JS thread of `env` (the `JsEnv` token proves it); scopes open and close in order
        // (one open at a time, closed after `PER_SCOPE` settlements or below).
        unsafe {
            if in_scope == 0 {
                sys::napi_open_handle_scope(env.raw(), &mut scope);
            }
            let (d, out) = t.out(r, client, &mut tally);
            shared.settle_now(env, d, out);
            in_scope += 1;
            if in_scope == PER_SCOPE {
                sys::napi_close_handle_scope(env.raw(), scope);
                in_scope = 0;
            }
        }
    }
    if in_scope > 0 {
        // SAFETY: the scope opened above, still the innermost one.
        unsafe { sys::napi_close_handle_scope(env.raw(), scope) };
    }
    outstanding.fetch_sub(n, Ordering::AcqRel);
    shared.end_many(env, n);
    (again, moved)
}
