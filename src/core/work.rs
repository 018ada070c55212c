//! A job's work: one command, or a user's pipeline or transaction. How it goes on the wire (a
//! transaction framed by `MULTI` … `EXEC`, written here only) and how its replies make the
//! caller's answer. Every path uses it: the JS-thread connection (`wire`), the runtime's batches
//! (`dispatch`) and the cluster router (`cluster`).

use std::sync::LazyLock;

use redis::{Cmd, Value};

use crate::core::error::pipeline_error_text;
use crate::core::Error;

/// What one job asks for.
#[derive(Clone)]
pub enum Work {
    /// One command; settles with its reply.
    One(Cmd),
    /// The commands of a user's pipeline (or transaction when `atomic`); settles with an array of
    /// their replies, error replies kept in place as `Value::ServerError`.
    Many { cmds: Vec<Cmd>, atomic: bool },
}

/// A queued job and the caller's tag (what to settle with the outcome).
pub struct Job<T> {
    pub work: Work,
    pub tag: T,
}

/// Outcomes of one batch, with their tags, in the order the jobs were queued.
pub type Settled<T> = Vec<(T, Result<Value, Error>)>;

static MULTI: LazyLock<Cmd> = LazyLock::new(|| redis::cmd("MULTI"));
static EXEC: LazyLock<Cmd> = LazyLock::new(|| redis::cmd("EXEC"));

/// How many replies a job's commands bring back, and what they make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// One reply; an error reply rejects.
    One,
    /// `n` commands: a pipeline's array of replies, or (`atomic`) `MULTI`, `n` acknowledgements
    /// and the `EXEC` reply.
    Many { n: usize, atomic: bool },
}

impl Work {
    pub fn expect(&self) -> Expect {
        match self {
            Work::One(_) => Expect::One,
            Work::Many { cmds, atomic } => Expect::Many {
                n: cmds.len(),
                atomic: *atomic,
            },
        }
    }

    /// The commands as they go out, in order: a transaction framed by `MULTI` … `EXEC`.
    pub fn sent(&self) -> impl Iterator<Item = &Cmd> {
        let (cmds, atomic) = match self {
            Work::One(c) => (std::slice::from_ref(c), false),
            Work::Many { cmds, atomic } => (cmds.as_slice(), *atomic),
        };
        let frame = |c: &'static LazyLock<Cmd>| atomic.then(|| &**c);
        frame(&MULTI).into_iter().chain(cmds).chain(frame(&EXEC))
    }

    /// Adds the commands as sent to `pipe` (for the crate's connections) and says what their
    /// replies make.
    pub fn add_to(&self, pipe: &mut redis::Pipeline) -> Expect {
        for c in self.sent() {
            pipe.add_command(c.clone());
        }
        self.expect()
    }

    /// Appends the commands as sent to `buf` (RESP) and says what their replies make.
    pub fn write(&self, buf: &mut Vec<u8>) -> Expect {
        for c in self.sent() {
            c.write_packed_command(buf);
        }
        self.expect()
    }
}

impl Expect {
    /// How many replies come back.
    pub fn replies(self) -> usize {
        match self {
            Expect::One => 1,
            Expect::Many { n, atomic: false } => n,
            Expect::Many { n, atomic: true } => n + 2,
        }
    }

    /// The caller's answer from exactly this job's replies, in order.
    pub fn answer(self, mut replies: Vec<Value>) -> Result<Value, Error> {
        if replies.len() != self.replies() {
            return Err(Error::Reply(
                "reply count did not match the commands sent".into(),
            ));
        }
        match self {
            Expect::One => reply(replies.pop().unwrap_or(Value::Nil)),
            Expect::Many { atomic: false, .. } => Ok(Value::Array(replies)),
            Expect::Many { .. } => {
                let exec = replies.pop().unwrap_or(Value::Nil);
                transaction(exec, &replies)
            }
        }
    }
}

/// One reply: an error reply rejects with Redis's text.
pub fn reply(v: Value) -> Result<Value, Error> {
    match v {
        Value::ServerError(e) => Err(Error::Reply(pipeline_error_text(&e))),
        v => Ok(v),
    }
}

/// The `EXEC` reply of a transaction, given the replies before it (`MULTI`'s and each queued
/// command's). A watched key that changed aborts it (`EXEC` replies nil); a command refused while
/// queueing aborts it too (`EXECABORT`), and the error names that command's refusal.
fn transaction(exec: Value, queued: &[Value]) -> Result<Value, Error> {
    match exec {
        Value::Nil => Err(Error::Reply(
            "EXECABORT transaction aborted (a watched key changed)".into(),
        )),
        Value::ServerError(e) => {
            let text = pipeline_error_text(&e);
            let cause = queued.iter().find_map(|q| match q {
                Value::ServerError(c) => Some(pipeline_error_text(c)),
                _ => None,
            });
            Err(Error::Reply(match cause {
                Some(c) if !text.contains(&c) => format!("{text} ({c})"),
                _ => text,
            }))
        }
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str) -> Cmd {
        redis::cmd(name)
    }

    fn names(w: &Work) -> Vec<String> {
        w.sent()
            .map(|c| {
                let mut buf = Vec::new();
                c.write_packed_command(&mut buf);
                String::from_utf8_lossy(&buf)
                    .split("\r\n")
                    .nth(2)
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    /// An error reply, as the server sends it.
    fn err(text: &str) -> Value {
        let frame = format!("-{text}\r\n");
        match crate::core::resp::value(frame.as_bytes(), 0, 0) {
            Ok(Some((v @ Value::ServerError(_), _))) => v,
            _ => panic!("not an error frame: {text}"),
        }
    }

    #[test]
    fn only_a_transaction_is_framed_by_multi_and_exec() {
        assert_eq!(names(&Work::One(cmd("GET"))), ["GET"]);
        let pipe = Work::Many {
            cmds: vec![cmd("GET"), cmd("SET")],
            atomic: false,
        };
        assert_eq!(names(&pipe), ["GET", "SET"]);
        assert_eq!(pipe.expect().replies(), 2);
        let tx = Work::Many {
            cmds: vec![cmd("GET"), cmd("SET")],
            atomic: true,
        };
        assert_eq!(names(&tx), ["MULTI", "GET", "SET", "EXEC"]);
        assert_eq!(tx.expect().replies(), 4);
        let mut buf = Vec::new();
        assert_eq!(tx.write(&mut buf), Expect::Many { n: 2, atomic: true });
        assert!(String::from_utf8_lossy(&buf).starts_with("*1\r\n$5\r\nMULTI\r\n"));
    }

    #[test]
    fn replies_make_the_callers_answer() {
        assert_eq!(Expect::One.answer(vec![Value::Int(1)]), Ok(Value::Int(1)));
        assert!(matches!(
            Expect::One.answer(vec![err("WRONGTYPE x")]),
            Err(Error::Reply(_))
        ));
        // A pipeline keeps error replies in place.
        let pipe = Expect::Many {
            n: 2,
            atomic: false,
        };
        let got = pipe.answer(vec![Value::Int(1), err("ERR y")]);
        assert!(matches!(got, Ok(Value::Array(ref a)) if a.len() == 2));
        // A transaction answers with EXEC's reply.
        let tx = Expect::Many { n: 1, atomic: true };
        let ok = vec![
            Value::Okay,
            Value::SimpleString("QUEUED".into()),
            Value::Array(vec![Value::Int(7)]),
        ];
        assert_eq!(tx.answer(ok), Ok(Value::Array(vec![Value::Int(7)])));
        let watched = vec![
            Value::Okay,
            Value::SimpleString("QUEUED".into()),
            Value::Nil,
        ];
        assert!(matches!(tx.answer(watched), Err(Error::Reply(m)) if m.contains("watched key")));
        // Too few replies never pass for an answer.
        assert!(tx.answer(vec![Value::Okay]).is_err());
    }

    #[test]
    fn an_aborted_transaction_names_the_refused_command() {
        let tx = Expect::Many { n: 1, atomic: true };
        let refused = vec![
            Value::Okay,
            err("ERR unknown command 'NOPE'"),
            err("EXECABORT Transaction discarded because of previous errors."),
        ];
        match tx.answer(refused) {
            Err(Error::Reply(m)) => {
                assert!(m.starts_with("EXECABORT"), "{m}");
                assert!(m.contains("unknown command"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
