//! Command batching, in call order: every job queued while the previous batch was on its way goes
//! out as one pipeline, and its replies come back as one batch. With one call in flight this is a
//! plain round trip; with hundreds it turns hundreds of channel sends, task wake-ups and thread
//! hops into a handful. A user's `pipeline()`/`multi()` is a job too (inline `MULTI ... EXEC` for
//! a transaction), so it keeps its place in the order.

use std::sync::{Arc, Weak};

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::Value;
use tokio::sync::mpsc;

use crate::core::connection::{runtime, Handle};
use crate::core::work::{Job, Settled, Work};
use crate::core::{Client, Error};

/// Most commands sent as one pipeline (more are sent in the next).
const MAX_BATCH: usize = 4096;

/// The sending half: cheap to call from any thread. Callers may hand over a whole batch at once.
pub struct Dispatcher<T> {
    tx: mpsc::UnboundedSender<Vec<Job<T>>>,
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

    /// Queues jobs, in order. Returns them back if the dispatcher has stopped.
    pub fn send(&self, jobs: Vec<Job<T>>) -> Result<(), Vec<Job<T>>> {
        self.tx.send(jobs).map_err(|e| e.0)
    }
}

async fn run<T, F>(client: Weak<Client>, mut rx: mpsc::UnboundedReceiver<Vec<Job<T>>>, settle: F)
where
    T: Send + 'static,
    F: Fn(Settled<T>) + Send + Sync + 'static,
{
    let mut inflight = FuturesUnordered::new();
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(mut jobs) = job else { break };
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(more) => jobs.extend(more),
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
    if h.is_cluster() {
        return crate::core::cluster::send(client, h, jobs).await;
    }
    if jobs.len() == 1 && matches!(jobs[0].work, Work::One(_)) {
        let Some(Job {
            work: Work::One(cmd),
            tag,
        }) = jobs.pop()
        else {
            return Vec::new();
        };
        return vec![(tag, client.query(h, &cmd).await)];
    }
    let mut pipe = redis::pipe();
    let mut plan = Vec::with_capacity(jobs.len());
    for j in jobs {
        let expect = j.work.add_to(&mut pipe);
        plan.push((j.tag, expect));
    }
    let total: usize = plan.iter().map(|(_, e)| e.replies()).sum();
    if total == 0 {
        return plan
            .into_iter()
            .map(|(t, _)| (t, Ok(Value::Array(Vec::new()))))
            .collect();
    }
    let values = match client.query_pipeline(h, &pipe, total).await {
        Ok(v) if v.len() == total => v,
        Ok(_) => {
            let e = Error::Reply("reply count did not match the commands sent".into());
            return plan.into_iter().map(|(t, _)| (t, Err(e.clone()))).collect();
        }
        Err(e) => return plan.into_iter().map(|(t, _)| (t, Err(e.clone()))).collect(),
    };
    let mut it = values.into_iter();
    plan.into_iter()
        .map(|(tag, expect)| {
            let replies = it.by_ref().take(expect.replies()).collect();
            (tag, expect.answer(replies))
        })
        .collect()
}
