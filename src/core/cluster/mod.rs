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

use std::sync::Arc;

use redis::cluster_routing::{Route, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Value};

use crate::core::connection::Handle;
use crate::core::error::pipeline_error_text;
use crate::core::work::{reply, Expect, Job, Settled, Work};
use crate::core::{Client, Error};

/// Commands without a key in position 1, or that the crate must spread over several nodes.
const UNPLACED: &[&[u8]] = &[
    b"ACL",
    b"AUTH",
    b"BGREWRITEAOF",
    b"BGSAVE",
    b"BLMPOP",
    b"BZMPOP",
    b"CLIENT",
    b"CLUSTER",
    b"COMMAND",
    b"CONFIG",
    b"DBSIZE",
    b"DEBUG",
    b"DISCARD",
    b"ECHO",
    b"EXEC",
    b"FLUSHALL",
    b"FLUSHDB",
    b"FUNCTION",
    b"HELLO",
    b"INFO",
    b"KEYS",
    b"LASTSAVE",
    b"LATENCY",
    b"LMPOP",
    b"MEMORY",
    b"MULTI",
    b"OBJECT",
    b"PING",
    b"PUBLISH",
    b"PUBSUB",
    b"QUIT",
    b"RANDOMKEY",
    b"READONLY",
    b"READWRITE",
    b"ROLE",
    b"SAVE",
    b"SCAN",
    b"SCRIPT",
    b"SELECT",
    b"SINTERCARD",
    b"SLOWLOG",
    b"SPUBLISH",
    b"SWAPDB",
    b"TIME",
    b"UNWATCH",
    b"WAIT",
    b"WATCH",
    b"XREAD",
    b"XREADGROUP",
    b"ZDIFF",
    b"ZINTER",
    b"ZINTERCARD",
    b"ZMPOP",
    b"ZUNION",
];

fn simple_args(cmd: &Cmd) -> Vec<&[u8]> {
    cmd.args_iter()
        .filter_map(|a| match a {
            redis::Arg::Simple(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// CRC16-XMODEM, the hash Redis Cluster uses for slots.
const fn crc16_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut b = 0;
        while b < 8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            };
            b += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC16: [u16; 256] = crc16_table();

/// The cluster slot of `key` (its `{hash tag}` when it has a non-empty one).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let crc = hashed.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16[usize::from(((crc >> 8) as u8) ^ b)]
    });
    crc % 16384
}

/// The slot every key of `cmd` hashes to, as a route to its master.
pub fn route_of(cmd: &Cmd) -> Option<Route> {
    slot_of(cmd).map(|s| Route::new(s, SlotAddr::Master))
}

/// The slot every key of `cmd` hashes to. `None`: no key, keys in several slots, or a command
/// the crate must route itself.
pub fn slot_of(cmd: &Cmd) -> Option<u16> {
    let a = simple_args(cmd);
    let name = a.first()?.to_ascii_uppercase();
    let keys: Vec<&[u8]> = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let n: usize = std::str::from_utf8(a.get(2)?).ok()?.parse().ok()?;
            a.get(3..3usize.checked_add(n)?)?.to_vec()
        }
        b"MGET" | b"DEL" | b"EXISTS" | b"UNLINK" | b"TOUCH" => a.get(1..)?.to_vec(),
        b"MSET" | b"MSETNX" => a.get(1..)?.iter().step_by(2).copied().collect(),
        n if UNPLACED.contains(&n) => return None,
        _ => vec![*a.get(1)?],
    };
    let mut slot = None;
    for k in keys {
        let s = key_slot(k);
        match slot {
            None => slot = Some(s),
            Some(x) if x != s => return None,
            Some(_) => {}
        }
    }
    slot
}

/// Where a job goes.
enum Place {
    /// One command, or a transaction, in one slot.
    Slot(Route),
    /// A pipeline whose every command has a slot.
    Spread(Vec<Route>),
    /// Routed by the crate (sequentially for a pipeline).
    Crate,
    /// A transaction over several slots: refused without sending.
    CrossSlot,
}

fn place(work: &Work) -> Place {
    match work {
        Work::One(c) => route_of(c).map_or(Place::Crate, Place::Slot),
        Work::Many {
            cmds,
            atomic: false,
        } => match cmds.iter().map(route_of).collect::<Option<Vec<_>>>() {
            Some(r) if !r.is_empty() => Place::Spread(r),
            _ => Place::Crate,
        },
        Work::Many { cmds, atomic: true } => {
            // Keyless commands (PING, ...) may join any transaction.
            let mut route = None;
            for c in cmds {
                let Some(r) = route_of(c) else { continue };
                match route {
                    None => route = Some(r),
                    Some(x) if x != r => return Place::CrossSlot,
                    Some(_) => {}
                }
            }
            route.map_or(Place::Crate, Place::Slot)
        }
    }
}

pub fn crossslot() -> Error {
    Error::Reply(
        "CROSSSLOT multi() in cluster mode: every key of one transaction must hash to one slot; \
         give them a common hash tag, e.g. {user:1}:profile and {user:1}:visits"
            .into(),
    )
}

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
pub async fn send<T>(client: Arc<Client>, h: Handle, jobs: Vec<Job<T>>) -> Settled<T> {
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
                (_, Some(split)) => split.run(&client, &h).await,
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

/// A multi-key command (`MGET`, `DEL`, `EXISTS`, `UNLINK`, `TOUCH`, `MSET`) over several slots,
/// cut into one command per slot and sent like a pipeline (redirects re-sent one by one), the
/// replies joined back in the caller's order. Done here rather than by the crate, whose own
/// splitting miscounts replies while its slot map is stale after a failover.
struct Split {
    join: Join,
    cmds: Vec<Cmd>,
    routes: Vec<Route>,
    /// Per key of the original command: (its command, its position there).
    places: Vec<(usize, usize)>,
}

enum Join {
    /// `MGET`: the values, in key order.
    Values,
    /// `DEL`, `EXISTS`, `UNLINK`, `TOUCH`: the counts added up.
    Sum,
    /// `MSET`: `OK`.
    Ok,
}

impl Split {
    fn of(cmd: &Cmd) -> Option<Split> {
        let a = simple_args(cmd);
        let name = a.first()?.to_ascii_uppercase();
        let (join, step) = match name.as_slice() {
            b"MGET" => (Join::Values, 1),
            b"DEL" | b"EXISTS" | b"UNLINK" | b"TOUCH" => (Join::Sum, 1),
            b"MSET" => (Join::Ok, 2),
            _ => return None,
        };
        let items = a.get(1..)?;
        if items.is_empty() || items.len() % step != 0 {
            return None;
        }
        let mut split = Split {
            join,
            cmds: Vec::new(),
            routes: Vec::new(),
            places: Vec::with_capacity(items.len() / step),
        };
        let mut slots: Vec<u16> = Vec::new();
        for item in items.chunks(step) {
            let slot = key_slot(item[0]);
            let i = match slots.iter().position(|&s| s == slot) {
                Some(i) => i,
                None => {
                    slots.push(slot);
                    split
                        .cmds
                        .push(redis::cmd(std::str::from_utf8(&name).ok()?));
                    split.routes.push(Route::new(slot, SlotAddr::Master));
                    slots.len() - 1
                }
            };
            let at = split.cmds[i].args_iter().count() - 1;
            for part in item {
                split.cmds[i].arg(*part);
            }
            split.places.push((i, at / step));
        }
        Some(split)
    }

    async fn run(self, client: &Arc<Client>, h: &Handle) -> Result<Value, Error> {
        let mut phase = vec![(
            Work::Many {
                cmds: self.cmds,
                atomic: false,
            },
            Place::Spread(self.routes),
        )];
        let mut tags = vec![()];
        let mut out = Vec::with_capacity(1);
        flush(client, h, &mut phase, &mut tags, &mut out).await;
        let parts = match out.pop() {
            Some(((), Ok(Value::Array(parts)))) => parts,
            Some(((), Err(e))) => return Err(e),
            _ => return Err(Error::Reply("unexpected multi-slot reply".into())),
        };
        if let Some(Value::ServerError(e)) =
            parts.iter().find(|v| matches!(v, Value::ServerError(_)))
        {
            return Err(Error::Reply(pipeline_error_text(e)));
        }
        match self.join {
            Join::Ok => Ok(Value::Okay),
            Join::Sum => Ok(Value::Int(
                parts
                    .iter()
                    .map(|v| match v {
                        Value::Int(n) => *n,
                        _ => 0,
                    })
                    .sum(),
            )),
            Join::Values => {
                let lists: Vec<&[Value]> = parts
                    .iter()
                    .map(|v| match v {
                        Value::Array(x) => x.as_slice(),
                        _ => &[],
                    })
                    .collect();
                Ok(Value::Array(
                    self.places
                        .iter()
                        .map(|&(i, at)| {
                            lists
                                .get(i)
                                .and_then(|l| l.get(at))
                                .cloned()
                                .unwrap_or(Value::Nil)
                        })
                        .collect(),
                ))
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // CLUSTER KEYSLOT on a real server.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        for k in [&b"a"[..], b"user:1", b"{x}y", b"\x00\xff"] {
            assert_eq!(
                Route::new(key_slot(k), SlotAddr::Master),
                Route::with_key(k, SlotAddr::Master)
            );
        }
    }

    #[test]
    fn multi_slot_commands_split_per_slot_keeping_key_order() {
        let args = |c: &Cmd| -> Vec<String> {
            simple_args(c)
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        };
        let s = Split::of(&cmd(&["MGET", "{a}1", "{b}1", "{a}2", "{b}1"])).unwrap();
        assert_eq!(s.cmds.len(), 2);
        assert_eq!(args(&s.cmds[0]), ["MGET", "{a}1", "{a}2"]);
        assert_eq!(args(&s.cmds[1]), ["MGET", "{b}1", "{b}1"]);
        assert_eq!(s.places, [(0, 0), (1, 0), (0, 1), (1, 1)]);
        assert_eq!(s.routes[1], Route::with_key("{b}1", SlotAddr::Master));
        let s = Split::of(&cmd(&["MSET", "{a}1", "x", "{b}1", "y", "{a}2", "z"])).unwrap();
        assert_eq!(args(&s.cmds[0]), ["MSET", "{a}1", "x", "{a}2", "z"]);
        assert_eq!(s.places, [(0, 0), (1, 0), (0, 1)]);
        assert!(Split::of(&cmd(&["MSET", "{a}1"])).is_none());
        assert!(Split::of(&cmd(&["MSETNX", "{a}1", "x", "{b}1", "y"])).is_none());
        assert!(Split::of(&cmd(&["GET", "k"])).is_none());
    }

    fn cmd(args: &[&str]) -> Cmd {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c
    }

    #[test]
    fn commands_are_placed_by_their_keys() {
        let r = |k: &str| Some(Route::with_key(k, SlotAddr::Master));
        assert_eq!(route_of(&cmd(&["GET", "a"])), r("a"));
        assert_eq!(route_of(&cmd(&["MGET", "{u}a", "{u}b"])), r("u"));
        assert_eq!(route_of(&cmd(&["MGET", "a", "b"])), None);
        assert_eq!(route_of(&cmd(&["MSET", "{u}a", "1", "{u}b", "2"])), r("u"));
        assert_eq!(
            route_of(&cmd(&["EVALSHA", "abc", "2", "{l}x", "{l}y", "arg"])),
            r("l")
        );
        assert_eq!(route_of(&cmd(&["EVALSHA", "abc", "0"])), None);
        assert_eq!(route_of(&cmd(&["PING"])), None);
        assert_eq!(route_of(&cmd(&["KEYS", "*"])), None);
        assert_eq!(route_of(&cmd(&["EVAL", "s", "9", "k"])), None);
    }

    #[test]
    fn transactions_need_one_slot() {
        let tx = |cmds: Vec<Cmd>| place(&Work::Many { cmds, atomic: true });
        assert!(matches!(
            tx(vec![
                cmd(&["SET", "{u}a", "1"]),
                cmd(&["PING"]),
                cmd(&["INCR", "{u}b"])
            ]),
            Place::Slot(_)
        ));
        assert!(matches!(
            tx(vec![cmd(&["SET", "a", "1"]), cmd(&["SET", "b", "1"])]),
            Place::CrossSlot
        ));
        assert!(matches!(tx(vec![cmd(&["PING"])]), Place::Crate));
    }
}
