//! Where a command goes in a cluster: the slot of its keys (CRC16, hash tags), where a job goes
//! (one slot, one per command, the crate's routing, or refused as cross-slot), and multi-key
//! commands cut into one command per slot. Pure; the JS-thread lanes use `slot_of` too.

use redis::cluster_routing::{Route, SlotAddr};
use redis::{Cmd, Value};

use crate::core::error::pipeline_error_text;
use crate::core::work::Work;
use crate::core::Error;

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

pub(super) fn simple_args(cmd: &Cmd) -> Vec<&[u8]> {
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
pub(super) enum Place {
    /// One command, or a transaction, in one slot.
    Slot(Route),
    /// A pipeline whose every command has a slot.
    Spread(Vec<Route>),
    /// Routed by the crate (sequentially for a pipeline).
    Crate,
    /// A transaction over several slots: refused without sending.
    CrossSlot,
}

pub(super) fn place(work: &Work) -> Place {
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

/// A multi-key command (`MGET`, `DEL`, `EXISTS`, `UNLINK`, `TOUCH`, `MSET`) over several slots,
/// cut into one command per slot and sent like a pipeline (redirects re-sent one by one), the
/// replies joined back in the caller's order. Done here rather than by the crate, whose own
/// splitting miscounts replies while its slot map is stale after a failover.
pub(super) struct Split {
    join: Join,
    cmds: Vec<Cmd>,
    routes: Vec<Route>,
    /// Per key of the original command: (its command, its position there).
    places: Vec<(usize, usize)>,
}

pub(super) enum Join {
    /// `MGET`: the values, in key order.
    Values,
    /// `DEL`, `EXISTS`, `UNLINK`, `TOUCH`: the counts added up.
    Sum,
    /// `MSET`: `OK`.
    Ok,
}

impl Split {
    pub(super) fn of(cmd: &Cmd) -> Option<Split> {
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

    /// The per-slot commands as one job (each at its slot), leaving the joining behind.
    pub(super) fn job(&mut self) -> (Work, Place) {
        let cmds = std::mem::take(&mut self.cmds);
        let routes = std::mem::take(&mut self.routes);
        (
            Work::Many {
                cmds,
                atomic: false,
            },
            Place::Spread(routes),
        )
    }

    /// The caller's reply from the per-slot replies, in the order of the per-slot commands: the
    /// first error reply rejects.
    pub(super) fn join(&self, parts: Vec<Value>) -> Result<Value, Error> {
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
