//! `pipeline()` and `multi()`: queue commands, send them in one round trip.

use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::Env;
use napi_derive::napi;

use crate::binding::commands::Prep;
use crate::binding::error::{throw, JsResult};
use crate::binding::service::JsPromise;
use crate::core::dispatch::Work;
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
        for p in preps {
            cmds.push(p.cmd);
            decodes.push(p.decode);
            empties.push(p.empty);
        }
        let work = Work::Many {
            cmds,
            atomic: self.atomic,
        };
        self.batcher
            .submit(raw, d, work, Shape::Many(Box::new((decodes, empties))));
        Ok(JsPromise(promise))
    }
}
