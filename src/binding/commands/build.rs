//! Building one command: [`B`] checks each argument as it goes and writes it into the command;
//! [`Prep`] is the result, ready to send (or already answered: an empty collection).

use redis::{Cmd, RedisWrite};

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Decode, Empty};
use crate::core::reply::Prep;
use crate::core::{keys, Error};

pub(super) type R = Result<Prep, Error>;

/// Builds one command, checking each argument as it goes.
pub struct B<'a> {
    pub c: Ctx,
    pub(super) prefix: &'a [u8],
    pub(super) cmd: Cmd,
    /// Set when an empty collection makes the call a no-op with a known reply.
    answer: Option<redis::Value>,
}

impl<'a> B<'a> {
    pub fn new(c: Ctx, prefix: &'a [u8]) -> Self {
        B {
            c,
            prefix,
            // Room for most commands at once (no regrowing arg by arg).
            cmd: Cmd::with_capacity(4, 128),
            answer: None,
        }
    }
    /// A literal word (command name, option token).
    pub fn lit(mut self, s: &str) -> Self {
        self.cmd.arg(s);
        self
    }
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.cmd.arg(bytes);
        self
    }
    pub fn key(mut self, a: Arg, name: impl std::fmt::Display + Copy) -> Result<Self, Error> {
        let (prefix, cmd) = (self.prefix, &mut self.cmd);
        a.key_with(self.c, name, |k| {
            keys::write_prefixed(&mut cmd.writer_for_next_arg(), prefix, k)
        })?;
        Ok(self)
    }
    /// The keys of a variadic slot: one key, or an array of them (nested arrays are
    /// flattened one level: `del('a', ['b', 'c'])`). None at all (`del()`, `del([])`) makes
    /// the call answer `if_none` without reaching Redis.
    pub fn keys(
        self,
        a: Arg,
        name: impl std::fmt::Display + Copy,
        if_none: redis::Value,
    ) -> Result<Self, Error> {
        self.each(a, name, if_none, |b, k, n| b.key(k, n))
    }

    /// Each item of a variadic slot written by `one` (see [`B::keys`]).
    fn each<N: std::fmt::Display + Copy>(
        mut self,
        a: Arg,
        name: N,
        if_none: redis::Value,
        one: fn(Self, Arg, &dyn std::fmt::Display) -> Result<Self, Error>,
    ) -> Result<Self, Error> {
        if !a.is_array() {
            return one(self, a, &name);
        }
        let items = flat_items(self.c, a, name)?;
        if items.is_empty() {
            self.answer = Some(if_none);
        }
        for (i, item) in items.into_iter().enumerate() {
            self = one(self, item, &format_args!("{name}[{i}]"))?;
        }
        Ok(self)
    }

    /// Answers the call with `reply` without reaching Redis (an empty collection).
    pub fn answer(mut self, reply: redis::Value) -> Self {
        self.answer = Some(reply);
        self
    }
    pub fn val(mut self, a: Arg, name: impl std::fmt::Display + Copy) -> Result<Self, Error> {
        let cmd = &mut self.cmd;
        a.value_with(self.c, name, |v| {
            cmd.arg(v);
        })?;
        Ok(self)
    }
    /// The values of a variadic slot, as [`B::keys`] reads keys: none at all makes the call
    /// answer `if_none` without reaching Redis.
    pub fn vals(
        self,
        a: Arg,
        name: impl std::fmt::Display + Copy,
        if_none: redis::Value,
    ) -> Result<Self, Error> {
        self.each(a, name, if_none, |b, v, n| b.val(v, n))
    }
    pub fn int(mut self, a: Arg, name: impl std::fmt::Display + Copy) -> Result<Self, Error> {
        let n = a.int(self.c, name)?;
        self.cmd.arg(n);
        Ok(self)
    }
    pub fn pos(mut self, a: Arg, name: impl std::fmt::Display + Copy) -> Result<Self, Error> {
        let n = a.positive(self.c, name)?;
        self.cmd.arg(n);
        Ok(self)
    }
    pub fn float(mut self, a: Arg, name: impl std::fmt::Display + Copy) -> Result<Self, Error> {
        let n = a.float(self.c, name)?;
        self.cmd.arg(n);
        Ok(self)
    }
    pub fn bound(mut self, a: Arg, name: &str) -> Result<Self, Error> {
        let b = a.bound(self.c, name)?;
        self.cmd.arg(b);
        Ok(self)
    }
    pub fn done(self, decode: Decode, empty: Empty) -> R {
        Ok(Prep {
            cmd: self.cmd,
            decode,
            empty,
            answer: self.answer,
        })
    }
}

/// The items of a variadic slot: an array is its elements with nested arrays flattened one
/// level, anything else is one item (checked by the caller: an explicit `undefined` is refused;
/// a call with no item at all gets `[]` from the module glue). At most
/// [`crate::binding::args::MAX_ELEMENTS`] in all, refused naming `name` past that.
pub(super) fn flat_items(
    c: Ctx,
    a: Arg,
    name: impl std::fmt::Display + Copy,
) -> Result<Vec<Arg>, Error> {
    if !a.is_array() {
        return Ok(vec![a]);
    }
    let mut out = Vec::new();
    for item in a.elements(c, name)? {
        if item.is_array() {
            out.extend(item.elements(c, name)?);
        } else {
            out.push(item);
        }
        if out.len() > crate::binding::args::MAX_ELEMENTS as usize {
            return Err(Error::arg(format!(
                "{}(): argument `{name}` has more than {} elements",
                c.method,
                crate::binding::args::MAX_ELEMENTS
            )));
        }
    }
    Ok(out)
}
