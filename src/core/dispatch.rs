//! Command batching: every command queued while the previous batch was being sent goes out as
//! one pipeline, and its replies come back as one batch. With one call in flight this is a plain
//! round trip; with hundreds it turns hundreds of channel sends, task wake-ups and thread hops
//! into a handful.

use std::sync::{Arc, Weak};

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::{Cmd, Value};
use tokio::sync::mpsc;

use crate::core::connection::{runtime, Handle};
use crate::core::{Client, Error};

/// Most commands sent as one pipeline.
const MAX_BATCH: usize = 4096;

/// A queued command and the caller's tag (what to settle with the reply).
pub struct Job<T> {
    pub cmd: Cmd,
    pub tag: T,
}

/// Replies of one batch, with their tags, in the order the jobs were queued.
pub type Settled<T> = Vec<(T, Result<Value, Error>)>;

/// The sending half: cheap to call from any thread.
pub struct Dispatcher<T> {
    tx: mpsc::UnboundedSender<Job<T>>,
}

impl<T: Send + 'static> Dispatcher<T> {
    /// Starts the dispatch task of `client`; `settle` receives every finished batch.
    ///
    /// # Errors
    /// `Connection` if the runtime could not start.
    pub fn start<F>(client: &Arc<Client>, settle: F) -> Result<Self, Error>
    where
        F: Fn(Settled<T>) + Send + Sync + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        runtime()?.spawn(run(Arc::downgrade(client), rx, settle));
        Ok(Dispatcher { tx })
    }

    /// Queues a command. Returns the job back if the dispatcher has stopped.
    pub fn send(&self, job: Job<T>) -> Result<(), Job<T>> {
        self.tx.send(job).map_err(|e| e.0)
    }
}

async fn run<T, F>(client: Weak<Client>, mut rx: mpsc::UnboundedReceiver<Job<T>>, settle: F)
where
    T: Send + 'static,
    F: Fn(Settled<T>) + Send + Sync + 'static,
{
    let mut inflight = FuturesUnordered::new();
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(first) = job else { break };
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let handle = match client.upgrade() {
                    Some(c) => c.handle().map(|h| (c, h)),
                    None => Err(Error::Connection("the service was dropped".into())),
                };
                match handle {
                    Ok((c, h)) => inflight.push(send_batch(c, h, jobs)),
                    Err(e) => settle(jobs.into_iter().map(|j| (j.tag, Err(e.clone()))).collect()),
                }
            }
            Some(done) = inflight.next(), if !inflight.is_empty() => settle(done),
        }
    }
    while let Some(done) = inflight.next().await {
        settle(done);
    }
}

async fn send_batch<T>(client: Arc<Client>, h: Handle, mut jobs: Vec<Job<T>>) -> Settled<T> {
    if jobs.len() == 1 {
        let Some(job) = jobs.pop() else {
            return Vec::new();
        };
        let r = client.query(h, &job.cmd).await;
        return vec![(job.tag, r)];
    }
    let mut pipe = redis::pipe();
    let mut tags = Vec::with_capacity(jobs.len());
    for j in jobs {
        tags.push(j.tag);
        pipe.add_command(j.cmd);
    }
    let n = tags.len();
    match client.query_pipeline(h, &pipe, n).await {
        Ok(values) if values.len() == n => tags
            .into_iter()
            .zip(values)
            .map(|(t, v)| match v {
                Value::ServerError(e) => (
                    t,
                    Err(Error::Reply(crate::core::connection::pipeline_error_text(
                        &e,
                    ))),
                ),
                v => (t, Ok(v)),
            })
            .collect(),
        Ok(_) => {
            let e = Error::Reply("reply count did not match the commands sent".into());
            tags.into_iter().map(|t| (t, Err(e.clone()))).collect()
        }
        Err(e) => tags.into_iter().map(|t| (t, Err(e.clone()))).collect(),
    }
}
