//! Cluster batches that keep call order.
//!
//! The crate's cluster connection routes each command on its own and may reorder concurrent
//! ones, while a single pipeline may not span slots. So a batch is cut into phases, in call
//! order: consecutive jobs whose keys we can place (one slot per command, one per transaction)
//! form one phase, sent as one pipeline per slot, all slots at once; a job we cannot place (no
//! key, several slots, several nodes) is a phase of its own, routed by the crate. Within a slot,
//! and so for every key, commands run in call order; a redirected command (MOVED, ASK after a
//! failover or resharding) is re-sent through the crate's routing, which follows it and
//! refreshes the slot map.

mod slots;

use std::sync::Arc;

use redis::cluster_routing::{Route, SingleNodeRoutingInfo};
use redis::{Cmd, Value};

use crate::core::connection::Handle;
use crate::core::work::{reply, Expect, Job, Settled, Work};
use crate::core::{Client, Error};
use slots::{crossslot, place, simple_args, Place, Split};

pub use slots::{key_slot, route_of, slot_of};

/// One slot's pipeline: the commands, and for each reply where it goes.
#[derive(Default)]
struct Group {
    pipe: Vec<Cmd>,
    /// Per queued unit: (job index, position in the job or `None` for a whole transaction).
    units: Vec<Unit>,
}

enum Unit {
    /// One reply for job `job` at position `at` (0 for a single command).
    Cmd { job: usize, at: usize },
    /// A transaction (`MULTI`, its commands, `EXEC`): the EXEC reply settles job `job`.
    Tx { job: usize, tx: Expect },
}

/// Sends a batch on a cluster connection, keeping call order per slot.
///
/// With the near cache on, what this batch may have read or written is forgotten before its
/// replies reach their callers: this connection's replies do not come in order with the
/// invalidations of the keys the cache read on the lanes (see `NearCache::touched`).
pub async fn send<T>(client: Arc<Client>, h: Handle, jobs: Vec<Job<T>>) -> Settled<T> {
    let Some(near) = client.near.clone() else {
        return send_in_order(client, h, jobs).await;
    };
    let mut keys = Vec::new();
    for j in &jobs {
        match &j.work {
            Work::One(c) => near.keys_in(c, &mut keys),
            Work::Many { cmds, .. } => cmds.iter().for_each(|c| near.keys_in(c, &mut keys)),
        }
    }
    let out = send_in_order(client, h, jobs).await;
    near.touched(&keys);
    out
}

async fn send_in_order<T>(client: Arc<Client>, h: Handle, jobs: Vec<Job<T>>) -> Settled<T> {
    let mut out: Vec<(T, Result<Value, Error>)> = Vec::with_capacity(jobs.len());
    let mut phase: Vec<(Work, Place)> = Vec::new();
    let mut tags: Vec<T> = Vec::new();
    let mut jobs = jobs.into_iter().peekable();
    while let Some(j) = jobs.next() {
        let p = place(&j.work);
        let solo = matches!(p, Place::Crate | Place::CrossSlot);
        if solo {
            // Everything queued before it goes first.
            flush(&client, &h, &mut phase, &mut tags, &mut out).await;
            let split = match (&p, &j.work) {
                (Place::Crate, Work::One(c)) => Split::of(c),
                _ => None,
            };
            let r = match (p, split) {
                (Place::CrossSlot, _) => Err(crossslot()),
                (_, Some(split)) => send_split(&client, &h, split).await,
                _ => by_crate(&client, &h, j.work).await,
            };
            out.push((j.tag, r));
        } else {
            phase.push((j.work, p));
            tags.push(j.tag);
        }
        if jobs.peek().is_none() {
            flush(&client, &h, &mut phase, &mut tags, &mut out).await;
        }
    }
    out
}

fn is_scan(c: &Cmd) -> bool {
    simple_args(c)
        .first()
        .is_some_and(|n| n.eq_ignore_ascii_case(b"SCAN"))
}

/// Runs one job through the crate's own routing.
async fn by_crate(client: &Arc<Client>, h: &Handle, work: Work) -> Result<Value, Error> {
    match work {
        Work::One(c) if is_scan(&c) => Err(Error::Reply(
            "ERR scan() with a cursor walks one server; in cluster mode use scanIterator(), \
             which walks every master"
                .into(),
        )),
        Work::One(c) => client.query(h.clone(), &c).await,
        Work::Many {
            cmds,
            atomic: false,
        } => {
            let mut replies = Vec::with_capacity(cmds.len());
            for c in &cmds {
                match client.query(h.clone(), c).await {
                    Ok(v) => replies.push(v),
                    Err(Error::Reply(text)) => replies.push(server_error(&text)),
                    Err(e) => return Err(e),
                }
            }
            Ok(Value::Array(replies))
        }
        tx @ Work::Many { atomic: true, .. } => {
            if matches!(tx.expect(), Expect::Many { n: 0, .. }) {
                return Ok(Value::Array(Vec::new()));
            }
            let mut pipe = redis::pipe();
            let expect = tx.add_to(&mut pipe);
            let v = client
                .query_pipeline(h.clone(), &pipe, expect.replies())
                .await?;
            expect.answer(v)
        }
    }
}

/// Sends the queued phase: one pipeline per slot, all slots at once; replies back in call order.
async fn flush<T>(
    client: &Arc<Client>,
    h: &Handle,
    phase: &mut Vec<(Work, Place)>,
    tags: &mut Vec<T>,
    out: &mut Vec<(T, Result<Value, Error>)>,
) {
    if phase.is_empty() {
        return;
    }
    let mut groups: Vec<(Route, Group)> = Vec::new();
    let mut group_of = |r: Route| -> usize {
        match groups.iter().position(|(x, _)| *x == r) {
            Some(i) => i,
            None => {
                groups.push((r, Group::default()));
                groups.len() - 1
            }
        }
    };
    // Per job: its reply slots (filled below).
    let mut results: Vec<Result<Vec<Value>, Error>> = Vec::with_capacity(phase.len());
    let mut kinds: Vec<Kind> = Vec::with_capacity(phase.len());
    let mut placed: Vec<(usize, Unit, Vec<Cmd>)> = Vec::new();
    for (job, (work, place)) in phase.drain(..).enumerate() {
        match (work, place) {
            (Work::One(c), Place::Slot(r)) => {
                results.push(Ok(vec![Value::Nil]));
                kinds.push(Kind::One);
                placed.push((group_of(r), Unit::Cmd { job, at: 0 }, vec![c]));
            }
            (tx @ Work::Many { atomic: true, .. }, Place::Slot(r)) => {
                results.push(Ok(vec![Value::Nil]));
                kinds.push(Kind::Tx);
                let all = tx.sent().cloned().collect();
                placed.push((
                    group_of(r),
                    Unit::Tx {
                        job,
                        tx: tx.expect(),
                    },
                    all,
                ));
            }
            (Work::Many { cmds, .. }, Place::Spread(routes)) => {
                results.push(Ok(vec![Value::Nil; cmds.len()]));
                kinds.push(Kind::Pipeline);
                for (at, (c, r)) in cmds.into_iter().zip(routes).enumerate() {
                    placed.push((group_of(r), Unit::Cmd { job, at }, vec![c]));
                }
            }
            // `place` never pairs other shapes; settle them rather than panic.
            _ => {
                results.push(Err(Error::Reply("internal: unplaced job".into())));
                kinds.push(Kind::One);
            }
        }
    }
    for (g, unit, cmds) in placed {
        let group = &mut groups[g].1;
        group.pipe.extend(cmds);
        group.units.push(unit);
    }
    let sends = groups.into_iter().map(|(route, group)| {
        let client = Arc::clone(client);
        let h = h.clone();
        async move {
            let r = send_group(&client, &h, route, &group).await;
            (group, r)
        }
    });
    for (group, r) in futures_util::future::join_all(sends).await {
        match r {
            Err(e) => {
                for u in &group.units {
                    let (Unit::Cmd { job, .. } | Unit::Tx { job, .. }) = u;
                    results[*job] = Err(e.clone());
                }
            }
            Ok(values) => {
                let mut it = values.into_iter();
                for u in group.units {
                    match u {
                        Unit::Cmd { job, at } => {
                            let v = it.next().unwrap_or(Value::Nil);
                            if let Ok(slots) = &mut results[job] {
                                if let Some(s) = slots.get_mut(at) {
                                    *s = v;
                                }
                            }
                        }
                        Unit::Tx { job, tx } => {
                            let v: Vec<Value> = it.by_ref().take(tx.replies()).collect();
                            let r = tx.answer(v).map(|x| vec![x]);
                            if results[job].is_ok() {
                                results[job] = r;
                            }
                        }
                    }
                }
            }
        }
    }
    for ((tag, r), kind) in tags.drain(..).zip(results).zip(kinds) {
        let settled = match (r, kind) {
            (Err(e), _) => Err(e),
            (Ok(v), Kind::Pipeline) => Ok(Value::Array(v)),
            (Ok(mut v), Kind::Tx) => Ok(v.pop().unwrap_or(Value::Nil)),
            (Ok(mut v), Kind::One) => reply(v.pop().unwrap_or(Value::Nil)),
        };
        out.push((tag, settled));
    }
}

/// What a job settles with.
enum Kind {
    /// Its one reply (an error reply rejects).
    One,
    /// The EXEC reply, already checked.
    Tx,
    /// An array of replies, errors kept in place.
    Pipeline,
}

/// Sends one slot's pipeline; re-sends redirected commands through the crate's routing.
async fn send_group(
    client: &Arc<Client>,
    h: &Handle,
    route: Route,
    group: &Group,
) -> Result<Vec<Value>, Error> {
    let mut pipe = redis::pipe();
    for c in &group.pipe {
        pipe.add_command(c.clone());
    }
    let n = group.pipe.len();
    let mut values = client
        .query_routed_pipeline(
            h.clone(),
            pipe,
            n,
            SingleNodeRoutingInfo::SpecificNode(route),
        )
        .await?;
    if values.len() != n {
        return Err(Error::Reply(
            "reply count did not match the commands sent".into(),
        ));
    }
    for (i, v) in values.iter_mut().enumerate() {
        if let Value::ServerError(e) = v {
            if is_redirect(e.code()) {
                if let Some(near) = &client.near {
                    // The slot moved (or its master failed over): what the lanes read from its
                    // old node may no longer be invalidated.
                    near.flush();
                }
                *v = match client.query(h.clone(), &group.pipe[i]).await {
                    Ok(x) => x,
                    Err(Error::Reply(t)) => server_error(&t),
                    Err(e) => return Err(e),
                };
            }
        }
    }
    Ok(values)
}

/// Whether an error code says the node did not run the command: it belongs elsewhere (`MOVED`,
/// `ASK`) or later (`TRYAGAIN`, `CLUSTERDOWN`).
pub fn is_redirect(code: &str) -> bool {
    matches!(code, "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN")
}

/// An error reply kept in place inside a pipeline's results.
pub fn server_error(text: &str) -> Value {
    let (code, detail) = match text.split_once(' ') {
        Some((c, d)) => (c.to_string(), Some(d.to_string())),
        None => (text.to_string(), None),
    };
    match redis::ServerError::try_from(redis::make_extension_error(code, detail)) {
        Ok(e) => Value::ServerError(e),
        Err(_) => Value::SimpleString(text.to_string()),
    }
}

/// Sends a multi-key command cut per slot (see `Split`) and joins the replies.
async fn send_split(client: &Arc<Client>, h: &Handle, mut split: Split) -> Result<Value, Error> {
    let mut phase = vec![split.job()];
    let mut tags = vec![()];
    let mut out = Vec::with_capacity(1);
    flush(client, h, &mut phase, &mut tags, &mut out).await;
    match out.pop() {
        Some(((), Ok(Value::Array(parts)))) => split.join(parts),
        Some(((), Err(e))) => Err(e),
        _ => Err(Error::Reply("unexpected multi-slot reply".into())),
    }
}
