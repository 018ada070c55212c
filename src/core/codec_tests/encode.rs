//! The encoder against a real `redis-server`: commands with binary, empty and large arguments
//! (and in pipelines and transactions) are written by `Inflight::push`, read back through the
//! `Reader` and matched by `Inflight::take`, over a plain socket, as the JS-thread connection
//! does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use redis::Value;

use crate::core::test_server::TestServer;
use crate::core::wire::{Inflight, Reader};
use crate::core::work::Work;
use crate::core::Error;

/// A blocking connection speaking through our encoder and decoder.
struct Conn {
    tcp: TcpStream,
    reader: Reader,
    inflight: Inflight<usize>,
}

impl Conn {
    fn open(server: &TestServer) -> Conn {
        let tcp = TcpStream::connect(("127.0.0.1", server.port)).expect("connected");
        let mut c = Conn {
            tcp,
            reader: Reader::default(),
            inflight: Inflight::new(Duration::from_secs(30)),
        };
        let mut hello = redis::cmd("HELLO");
        hello.arg(3);
        assert!(c.run(vec![Work::One(hello)])[0].is_ok());
        c
    }

    /// Writes `jobs` in one write and waits for all their answers.
    fn run(&mut self, jobs: Vec<Work>) -> Vec<Result<Value, Error>> {
        let mut out = Vec::new();
        let mut done = Vec::new();
        let n = jobs.len();
        for (i, w) in jobs.iter().enumerate() {
            if let Some(d) = self.inflight.push(w, i, &mut out, Instant::now()) {
                done.push(d);
            }
        }
        self.tcp.write_all(&out).expect("written");
        let mut chunk = vec![0u8; 64 * 1024];
        while done.len() < n {
            let got = self.tcp.read(&mut chunk).expect("read");
            assert!(got > 0, "the server closed the connection");
            self.reader.extend(&chunk[..got]);
            self.inflight
                .take(&mut self.reader, &mut done)
                .expect("a valid stream");
        }
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }
}

fn cmd(name: &str, args: &[&[u8]]) -> Work {
    let mut c = redis::cmd(name);
    for a in args {
        c.arg(*a);
    }
    Work::One(c)
}

#[test]
fn binary_empty_and_large_arguments_round_trip() {
    let server = TestServer::start();
    let mut c = Conn::open(&server);
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let large = vec![0xa5u8; 8 * 1024 * 1024];
    for value in [&b""[..], b"\r\n", b"$5\r\n*1\r\n", &all_bytes, &large] {
        let r = c.run(vec![
            cmd("ECHO", &[value]),
            cmd("SET", &[b"k\0\xff", value]),
            cmd("GET", &[b"k\0\xff"]),
            cmd("STRLEN", &[b"k\0\xff"]),
        ]);
        assert_eq!(
            r[0],
            Ok(Value::BulkString(value.to_vec())),
            "ECHO of {} bytes",
            value.len()
        );
        assert_eq!(r[1], Ok(Value::Okay));
        assert_eq!(r[2], Ok(Value::BulkString(value.to_vec())));
        assert_eq!(r[3], Ok(Value::Int(value.len() as i64)));
    }
    // An empty key and a command of many arguments.
    let many: Vec<Vec<u8>> = (0..10_000).map(|i| format!("m{i}").into_bytes()).collect();
    let mut rpush = redis::cmd("RPUSH");
    rpush.arg("");
    for m in &many {
        rpush.arg(m.as_slice());
    }
    let r = c.run(vec![Work::One(rpush), cmd("LRANGE", &[b"", b"0", b"-1"])]);
    assert_eq!(r[0], Ok(Value::Int(10_000)));
    assert_eq!(
        r[1],
        Ok(Value::Array(
            many.into_iter().map(Value::BulkString).collect()
        ))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Random binary values through SET/GET and ECHO, alone, in a pipeline and in a
    /// transaction, each answered to its own job.
    #[test]
    fn random_values_come_back_as_sent(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..2048), 1..8),
    ) {
        thread_local! {
            static SERVER: TestServer = TestServer::start();
        }
        SERVER.with(|server| {
            let mut c = Conn::open(server);
            let key = |i: usize| format!("p:{i}").into_bytes();
            let mut jobs = Vec::new();
            for (i, v) in values.iter().enumerate() {
                jobs.push(cmd("SET", &[&key(i), v]));
            }
            let gets: Vec<redis::Cmd> = (0..values.len())
                .map(|i| { let mut g = redis::cmd("GET"); g.arg(key(i)); g })
                .collect();
            jobs.push(Work::Many { cmds: gets.clone(), atomic: false });
            jobs.push(Work::Many { cmds: gets, atomic: true });
            jobs.extend(values.iter().map(|v| cmd("ECHO", &[v])));
            let r = c.run(jobs);
            let n = values.len();
            let want: Vec<Value> = values.iter().map(|v| Value::BulkString(v.clone())).collect();
            prop_assert!(r[..n].iter().all(|x| x == &Ok(Value::Okay)));
            prop_assert_eq!(&r[n], &Ok(Value::Array(want.clone())));
            prop_assert_eq!(&r[n + 1], &Ok(Value::Array(want.clone())));
            for (x, w) in r[n + 2..].iter().zip(&want) {
                prop_assert_eq!(x, &Ok(w.clone()));
            }
            Ok(())
        })?;
    }
}
