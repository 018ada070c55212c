//! What a command's reply becomes: the shape it is decoded to, the value it resolves while Redis
//! is unavailable, and the fixed-key records of the hot feature results. Plain data: the binding
//! turns it into JS values (`binding::decode`). Also `Prep`, a command ready to send with the shape
//! of its reply.

/// How a command's reply becomes a JS value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// nil → null, integer → number, bulk/status → string, array → array.
    Auto,
    /// Bulk replies as Buffers.
    Buffer,
    /// Integer 0/1 → boolean.
    Bool,
    /// Bulk text → number (INCRBYFLOAT, ZSCORE); nil → null.
    Float,
    /// Flat field/value list → plain object (HGETALL).
    Object,
    /// Flat member/score list → `[{ value, score }]`.
    WithScores,
    /// `[cursor, keys]` → `{ cursor, keys }` with the key prefix stripped.
    Scan,
    /// Bulk text → `JSON.parse(text)`; nil → null.
    Json,
    /// Always `undefined` (JSON writes, lifecycle calls).
    Void,
    /// A lock acquisition `[token, fencingToken]` → the token; nil → null.
    LockToken,
    /// A lock acquisition `[token, fencingToken]` → `{ token, fencingToken }`; nil → null.
    Fenced,
    /// PTTL → milliseconds, or null when the key does not exist (negative replies).
    TtlMs,
}

/// The value a command resolves with when Redis is unavailable and the service degrades
/// (`failOpen`, or a disabled service): reads empty, writes no-ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Empty {
    Null,
    Zero,
    False,
    Array,
    Object,
    Undefined,
    Scan,
    True,
    /// A fresh random token (a lock granted without Redis, `lockFailOpen`).
    Token,
    /// `{ token, fencingToken: null, degraded: true }`.
    FencedToken,
}

/// Fields of an `Out::Record` (engine), in order.
pub type Record = Vec<(&'static str, Field)>;

/// A value in an `Out::Record` (engine).
pub enum Field {
    Bool(bool),
    Num(f64),
    Records(Vec<Record>),
}

/// A command ready to send, with how to decode its reply and what to resolve when degraded.
pub struct Prep {
    pub cmd: redis::Cmd,
    pub decode: Decode,
    pub empty: Empty,
    /// The reply, known without asking Redis: a call on an empty collection (`del([])` is 0,
    /// `mget([])` is `[]`). Then `cmd` is not sent (it would be malformed: Redis refuses a
    /// `DEL` without keys).
    pub answer: Option<redis::Value>,
}

impl Prep {
    /// A prepared call answered without Redis (see [`Prep::answer`]).
    pub fn answered(reply: redis::Value, decode: Decode, empty: Empty) -> Prep {
        Prep {
            cmd: redis::Cmd::new(),
            decode,
            empty,
            answer: Some(reply),
        }
    }
}
