//! `pipeline()` and `multi()`: queue commands, send them in one round trip.

use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::Env;
use napi_derive::napi;
use redis::Value;

use crate::binding::decode::Out;
use crate::binding::error::JsPromise;
use crate::binding::error::{throw, JsResult};
use crate::binding::service::RedisService;
use crate::core::reply::Prep;
use crate::core::work::Work;
use crate::core::Error;
use crate::engine::batch::{Batcher, Shape};
use crate::engine::completer::Shared;
use crate::engine::js_thread::JsEnv;

/// A batch of commands (from `pipeline()` or `multi()`). Each command method queues and returns
/// the batch; `exec()` sends them all in one round trip. Invalid arguments throw at once
/// (`ERR_INVALID_ARGUMENT`), so nothing of a bad batch is ever sent.
#[napi]
pub struct Pipeline {
    batcher: Rc<Batcher>,
    shared: Arc<Shared>,
    preps: Vec<Prep>,
    atomic: bool,
}

impl Pipeline {
    pub(crate) fn new(batcher: Rc<Batcher>, shared: Arc<Shared>, atomic: bool) -> Self {
        Pipeline {
            batcher,
            shared,
            preps: Vec::new(),
            atomic,
        }
    }

    pub(crate) fn prefix(&self) -> &[u8] {
        &self.shared.prefix
    }

    pub(crate) fn push(&mut self, env: &Env, p: Result<Prep, Error>) -> JsResult<()> {
        self.queue(p.map_err(|e| throw(JsEnv::of(env), e))?);
        Ok(())
    }

    pub(crate) fn queue(&mut self, p: Prep) {
        self.preps.push(p);
    }
}

#[napi]
impl Pipeline {
    /// Number of queued commands.
    #[napi(getter)]
    pub fn length(&self) -> u32 {
        self.preps.len() as u32
    }

    /// Sends the queued commands in one round trip. Resolves `[[error | null, result], ...]`
    /// in order (a failing command gets an `ERR_REPLY` error in its slot; the others still run,
    /// except in `multi()`, where an aborted transaction rejects as a whole). The batch is
    /// emptied, so it can be reused.
    #[napi(ts_return_type = "Promise<Array<[Error | null, any]>>")]
    pub fn exec(&mut self, env: Env) -> JsResult<JsPromise> {
        let preps = std::mem::take(&mut self.preps);
        let raw = JsEnv::of(&env);
        let (d, promise) = self.shared.promise(raw)?;
        let mut cmds = Vec::with_capacity(preps.len());
        let mut decodes = Vec::with_capacity(preps.len());
        let mut empties = Vec::with_capacity(preps.len());
        // Calls on empty collections are answered here (`del([])` is 0), in their place.
        let mut answers = Vec::new();
        for (i, p) in preps.into_iter().enumerate() {
            match p.answer {
                Some(reply) => answers.push((i, reply)),
                None => cmds.push(p.cmd),
            }
            decodes.push(p.decode);
            empties.push(p.empty);
        }
        let work = Work::Many {
            cmds,
            atomic: self.atomic,
        };
        let shape = if answers.is_empty() {
            Shape::Many(Box::new((decodes, empties)))
        } else {
            Shape::Custom(Box::new(move |r| match r {
                Ok(Some(Value::Array(sent))) => splice(sent, answers, decodes).map(Out::Pipeline),
                Ok(Some(other)) => Err(Error::Reply(format!(
                    "unexpected pipeline reply: {other:?}"
                ))),
                Ok(None) => Ok(Out::EmptyPipeline(empties)),
                Err(e) => Err(e),
            }))
        };
        self.batcher.submit(raw, d, work, shape);
        Ok(JsPromise(promise))
    }
}

/// Replies paired with their decodings, one per queued command.
type Results = Vec<(Result<Value, Error>, crate::binding::decode::Decode)>;

/// The replies of the commands sent, with the `answers` (position, reply) put back in their
/// places, each paired with its decoding; an error if Redis sent a different number of replies.
fn splice(
    sent: Vec<Value>,
    answers: Vec<(usize, Value)>,
    decodes: Vec<crate::binding::decode::Decode>,
) -> Result<Results, Error> {
    let count = sent.len() + answers.len();
    if count != decodes.len() {
        return Err(Error::Reply(format!(
            "a pipeline of {} commands got {} replies",
            decodes.len(),
            count
        )));
    }
    let mut sent = sent.into_iter();
    let mut answers = answers.into_iter().peekable();
    Ok(decodes
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let v = match answers.next_if(|(at, _)| *at == i) {
                Some((_, reply)) => reply,
                None => sent.next().unwrap_or(Value::Nil),
            };
            (Ok(v), d)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::decode::Decode;

    #[test]
    fn answers_go_back_in_their_places() {
        let r = splice(
            vec![Value::Int(1), Value::Int(3)],
            vec![(0, Value::Int(0)), (2, Value::Okay)],
            vec![Decode::Auto; 4],
        )
        .unwrap();
        let got: Vec<Value> = r.into_iter().map(|(v, _)| v.unwrap()).collect();
        assert_eq!(
            got,
            vec![Value::Int(0), Value::Int(1), Value::Okay, Value::Int(3)]
        );
    }

    #[test]
    fn a_missing_reply_is_an_error_not_a_hole() {
        assert!(splice(
            vec![Value::Int(1)],
            vec![(0, Value::Int(0))],
            vec![Decode::Auto; 3]
        )
        .is_err());
    }
}

#[napi]
impl RedisService {
    /// A pipeline: queue commands with the same names as the service's, then `exec()` sends them
    /// in one round trip and resolves `[[error | null, result], ...]`.
    #[napi]
    pub fn pipeline(&self) -> Pipeline {
        Pipeline::new(Rc::clone(&self.batcher), Arc::clone(&self.shared), false)
    }

    /// Like `pipeline()`, but `exec()` wraps the commands in MULTI/EXEC: atomic.
    #[napi]
    pub fn multi(&self) -> Pipeline {
        Pipeline::new(Rc::clone(&self.batcher), Arc::clone(&self.shared), true)
    }
}
