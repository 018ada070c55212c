//! `pipeline()` and `multi()`: queue commands, send them in one round trip.

use std::sync::Arc;

use napi::bindgen_prelude::Env;
use napi_derive::napi;

use crate::binding::commands::Prep;
use crate::binding::completer::Shared;
use crate::binding::decode::Out;
use crate::binding::error::{throw, JsResult};
use crate::binding::service::JsPromise;
use crate::core::{Client, Error};

/// A batch of commands (from `pipeline()` or `multi()`). Each command method queues and returns
/// the batch; `exec()` sends them all in one round trip. Invalid arguments throw at once
/// (`ERR_INVALID_ARGUMENT`), so nothing of a bad batch is ever sent.
#[napi]
pub struct Pipeline {
    client: Arc<Client>,
    shared: Arc<Shared>,
    preps: Vec<Prep>,
    atomic: bool,
}

impl Pipeline {
    pub(crate) fn new(client: Arc<Client>, shared: Arc<Shared>, atomic: bool) -> Self {
        Pipeline {
            client,
            shared,
            preps: Vec::new(),
            atomic,
        }
    }

    pub(crate) fn prefix(&self) -> &[u8] {
        &self.shared.prefix
    }

    pub(crate) fn push(&mut self, env: &Env, p: Result<Prep, Error>) -> JsResult<()> {
        self.preps.push(p.map_err(|e| throw(env.raw(), e))?);
        Ok(())
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
        let raw = env.raw();
        let (d, promise) = unsafe { self.shared.promise(raw) };
        let empties: Vec<_> = preps.iter().map(|p| p.empty).collect();
        let degraded = Ok(Out::EmptyPipeline(empties));
        if !self.client.cfg.enabled {
            unsafe { self.shared.settle_now(raw, d, degraded) };
            return Ok(JsPromise(promise));
        }
        let fail_open = self.client.cfg.fail_open;
        let h = match self.client.handle() {
            Ok(h) => h,
            Err(e) => {
                unsafe {
                    self.shared
                        .settle_now(raw, d, if fail_open { degraded } else { Err(e) })
                };
                return Ok(JsPromise(promise));
            }
        };
        let mut pipe = redis::pipe();
        if self.atomic {
            pipe.atomic();
        }
        let mut decodes = Vec::with_capacity(preps.len());
        let count = preps.len();
        for p in preps {
            decodes.push(p.decode);
            pipe.add_command(p.cmd);
        }
        let client = Arc::clone(&self.client);
        unsafe {
            self.shared.spawn(raw, d, async move {
                match client.query_pipeline(h, &pipe, count).await {
                    Ok(values) => Ok(Out::Pipeline(
                        values.into_iter().map(Ok).zip(decodes).collect(),
                    )),
                    Err(e) if fail_open && e.is_unavailable() => degraded,
                    Err(e) => Err(e),
                }
            })
        };
        Ok(JsPromise(promise))
    }
}
