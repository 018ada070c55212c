//! A model-based test of `Inflight`, the queue that gives each reply to the job that asked for
//! it: random sequences of commands, pipelines and transactions (committed, aborted by a
//! watched key, refused at queueing), answered by a model server with push frames between any
//! two replies, some jobs timing out first, the stream read in random chunks. Every job must get
//! exactly its own answer, in order; a timed-out job's late replies go to nobody.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use redis::Value;

use super::gen::{push, Frame};
use crate::core::wire::{Inflight, Reader};
use crate::core::work::Work;
use crate::core::Error;

#[derive(Debug, Clone)]
enum Job {
    /// One command; `fails`: the server answers with an error.
    One { fails: bool },
    /// A pipeline of `n`; the listed commands fail.
    Pipe { n: usize, failing: Vec<usize> },
    /// A transaction of `n`: committed, aborted (a watched key changed: EXEC answers null), or
    /// refused (a command is rejected while queueing: EXEC answers EXECABORT).
    Tx { n: usize, end: TxEnd },
}

#[derive(Debug, Clone, Copy)]
enum TxEnd {
    Commit,
    Watched,
    Refused(usize),
}

fn job() -> impl Strategy<Value = Job> {
    prop_oneof![
        4 => any::<bool>().prop_map(|fails| Job::One { fails }),
        2 => (1usize..5, proptest::collection::vec(0usize..5, 0..3))
            .prop_map(|(n, failing)| Job::Pipe { n, failing }),
        2 => (1usize..4, 0u8..3, 0usize..4).prop_map(|(n, e, at)| Job::Tx {
            n,
            end: match e {
                0 => TxEnd::Commit,
                1 => TxEnd::Watched,
                _ => TxEnd::Refused(at % n),
            },
        }),
    ]
}

/// The reply to command `i` of job `id`: a value that names both, or an error that does.
fn reply(id: usize, i: usize, fails: bool) -> Frame {
    if fails {
        Frame::Error(format!("ERR job {id} command {i}").into_bytes())
    } else {
        Frame::Array(vec![Frame::Int(id as i64), Frame::Int(i as i64)])
    }
}

impl Job {
    fn work(&self) -> Work {
        let cmds = |n: usize| (0..n).map(|_| redis::cmd("PING")).collect();
        match self {
            Job::One { .. } => Work::One(redis::cmd("PING")),
            Job::Pipe { n, .. } => Work::Many {
                cmds: cmds(*n),
                atomic: false,
            },
            Job::Tx { n, .. } => Work::Many {
                cmds: cmds(*n),
                atomic: true,
            },
        }
    }

    /// What the server sends for this job, frame by frame.
    fn replies(&self, id: usize) -> Vec<Frame> {
        match self {
            Job::One { fails } => vec![reply(id, 0, *fails)],
            Job::Pipe { n, failing } => (0..*n)
                .map(|i| reply(id, i, failing.contains(&i)))
                .collect(),
            Job::Tx { n, end } => {
                let mut out = vec![Frame::Simple(b"OK".to_vec())];
                for i in 0..*n {
                    out.push(match end {
                        TxEnd::Refused(at) if *at == i => {
                            Frame::Error(format!("ERR job {id} refused").into_bytes())
                        }
                        _ => Frame::Simple(b"QUEUED".to_vec()),
                    });
                }
                out.push(match end {
                    TxEnd::Commit => Frame::Array((0..*n).map(|i| reply(id, i, false)).collect()),
                    TxEnd::Watched => Frame::NullArray,
                    TxEnd::Refused(_) => Frame::Error(
                        b"EXECABORT Transaction discarded because of previous errors.".to_vec(),
                    ),
                });
                out
            }
        }
    }

    /// Checks the answer job `id` got.
    fn check(&self, id: usize, got: &Result<Value, Error>) -> Result<(), String> {
        let names = |v: &Value, i: usize| {
            v == &Value::Array(vec![Value::Int(id as i64), Value::Int(i as i64)])
        };
        let ok = match (self, got) {
            (Job::One { fails: false }, Ok(v)) => names(v, 0),
            (Job::One { fails: true }, Err(Error::Reply(m))) => {
                m.contains(&format!("job {id} command 0"))
            }
            (Job::Pipe { n, failing }, Ok(Value::Array(xs))) => {
                xs.len() == *n
                    && xs.iter().enumerate().all(|(i, x)| match x {
                        Value::ServerError(e) => {
                            failing.contains(&i)
                                && e.details()
                                    .is_some_and(|d| d.contains(&format!("job {id} command {i}")))
                        }
                        v => !failing.contains(&i) && names(v, i),
                    })
            }
            (
                Job::Tx {
                    n,
                    end: TxEnd::Commit,
                },
                Ok(Value::Array(xs)),
            ) => xs.len() == *n && xs.iter().enumerate().all(|(i, x)| names(x, i)),
            (
                Job::Tx {
                    end: TxEnd::Watched,
                    ..
                },
                Err(Error::Reply(m)),
            ) => m.contains("watched"),
            (
                Job::Tx {
                    end: TxEnd::Refused(_),
                    ..
                },
                Err(Error::Reply(m)),
            ) => m.contains("EXECABORT") && m.contains(&format!("job {id} refused")),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("job {id} ({self:?}) got {got:?}"))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_job_gets_its_own_answer_in_order(
        jobs in proptest::collection::vec(job(), 1..16),
        pushes in proptest::collection::vec((any::<prop::sample::Index>(), push()), 0..6),
        timed_out in 0usize..4,
        chunks in proptest::collection::vec(1usize..48, 1..6),
    ) {
        let start = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut inflight = Inflight::new(timeout);
        let mut sent = Vec::new();
        for (id, j) in jobs.iter().enumerate() {
            // Job `id` is written `id` ms after the first, so its deadline is that much later.
            let at = start + Duration::from_millis(id as u64);
            prop_assert!(inflight.push(&j.work(), id, &mut sent, at).is_none());
        }
        // The first `timed_out` jobs time out before any reply arrives.
        let timed_out = timed_out.min(jobs.len());
        if timed_out > 0 {
            let (expired, _) = inflight.expire(start + timeout + Duration::from_millis(timed_out as u64 - 1));
            prop_assert_eq!(expired, (0..timed_out).collect::<Vec<_>>());
        }
        // The server's answer: every job's replies, with push frames between any two of them.
        let mut frames: Vec<Frame> = jobs.iter().enumerate().flat_map(|(id, j)| j.replies(id)).collect();
        for (at, p) in &pushes {
            let i = at.index(frames.len() + 1);
            frames.insert(i, p.clone());
        }
        let stream: Vec<u8> = frames.iter().flat_map(Frame::bytes).collect();
        let mut reader = Reader::default();
        let mut done = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < stream.len() {
            let n = chunks[i % chunks.len()].min(stream.len() - at);
            i += 1;
            reader.extend(&stream[at..at + n]);
            at += n;
            prop_assert!(inflight.take(&mut reader, &mut done).is_ok());
        }
        prop_assert!(inflight.is_empty());
        let ids: Vec<usize> = done.iter().map(|(id, _)| *id).collect();
        prop_assert_eq!(ids, (timed_out..jobs.len()).collect::<Vec<_>>());
        for (id, got) in &done {
            if let Err(why) = jobs[*id].check(*id, got) {
                prop_assert!(false, "{}", why);
            }
        }
    }
}

#[test]
fn a_reply_nobody_asked_for_is_a_broken_stream() {
    let mut inflight: Inflight<u8> = Inflight::new(Duration::from_secs(5));
    let mut reader = Reader::default();
    let mut done = Vec::new();
    // A push frame with nothing in flight is fine; a reply is not.
    reader.extend(b">2\r\n$10\r\ninvalidate\r\n$1\r\nk\r\n");
    assert!(inflight.take(&mut reader, &mut done).is_ok());
    reader.extend(b"+PONG\r\n");
    let err = inflight.take(&mut reader, &mut done);
    assert!(
        matches!(err, Err(Error::Connection(ref m)) if m.contains("no command asked for")),
        "{err:?}"
    );
    // With one job waiting, its reply is matched and one more is again nobody's.
    let mut buf = Vec::new();
    inflight.push(&Work::One(redis::cmd("PING")), 7, &mut buf, Instant::now());
    reader.extend(b"+PONG\r\n+PONG\r\n");
    assert!(inflight.take(&mut reader, &mut done).is_err());
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, 7);
}
