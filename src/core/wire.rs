//! The wire protocol for the JS-thread connection: open a TCP connection, do the TLS handshake
//! when configured and the RESP3 handshake, all on the runtime (so the JS thread never blocks),
//! encode jobs into one write buffer, and match the replies read back to the jobs that asked for
//! them.
//!
//! Why a second connection: the JS thread can then write commands and read replies itself,
//! through libuv, with no thread hop at all (see `binding::driver`). Scripts, lease renewal and
//! health checks keep using the multiplexed connection on the runtime.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use redis::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::core::work::{reply, Expect, Work};
use crate::core::{Config, Error};

struct Pending<T> {
    tag: Option<T>,
    expect: Expect,
    /// The replies so far of a job that waits for several (a single reply is never stored).
    got: Vec<Value>,
    deadline: Instant,
}

/// Jobs written and waiting for their replies, in order.
pub struct Inflight<T> {
    queue: VecDeque<Pending<T>>,
    timeout: Duration,
}

impl<T> Inflight<T> {
    pub fn new(timeout: Duration) -> Self {
        Inflight {
            queue: VecDeque::new(),
            timeout,
        }
    }

    /// Encodes `work` into `buf` and remembers `tag` for its replies, due by `now` plus the
    /// timeout. An empty pipeline sends nothing and is answered at once: its tag comes straight
    /// back with `[]`.
    pub fn push(
        &mut self,
        work: &Work,
        tag: T,
        buf: &mut Vec<u8>,
        now: Instant,
    ) -> Option<(T, Result<Value, Error>)> {
        let expect = work.write(buf);
        if expect.replies() == 0 {
            return Some((tag, Ok(Value::Array(Vec::new()))));
        }
        self.queue.push_back(Pending {
            tag: Some(tag),
            expect,
            got: Vec::new(),
            deadline: now + self.timeout,
        });
        None
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Jobs waiting for replies.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Feeds one reply; returns the job it completes, if any (`None` tag: the job timed out
    /// earlier and its caller was already answered).
    pub fn feed(&mut self, v: Value) -> Option<(Option<T>, Result<Value, Error>)> {
        let front = self.queue.front_mut()?;
        if front.expect == Expect::One {
            let p = self.queue.pop_front()?;
            return Some((p.tag, reply(v)));
        }
        front.got.push(v);
        if front.got.len() < front.expect.replies() {
            return None;
        }
        let p = self.queue.pop_front()?;
        Some((p.tag, p.expect.answer(p.got)))
    }

    /// Takes the tags of jobs whose deadline has passed (they stay queued, tagless, so their
    /// late replies are still matched and dropped). Returns the next deadline still pending.
    pub fn expire(&mut self, now: Instant) -> (Vec<T>, Option<Instant>) {
        let mut out = Vec::new();
        let mut next = None;
        for p in self.queue.iter_mut() {
            if p.tag.is_none() {
                continue;
            }
            if p.deadline <= now {
                out.extend(p.tag.take());
            } else if next.is_none() {
                next = Some(p.deadline);
            }
        }
        (out, next)
    }

    /// The earliest deadline of a job still waiting.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue
            .iter()
            .find(|p| p.tag.is_some())
            .map(|p| p.deadline)
    }

    /// Every job still waiting (the connection is gone).
    pub fn drain(&mut self) -> Vec<T> {
        self.queue.drain(..).filter_map(|p| p.tag).collect()
    }

    /// Matches every complete reply `reader` holds to the job that asked for it, in order, and
    /// appends each job it completes to `done`. Push frames (RESP3 out-of-band messages, which
    /// may come between any two replies) are not replies and are skipped (see
    /// [`Inflight::take_with`]).
    ///
    /// # Errors
    /// `Connection` when the stream can no longer be trusted: bytes that are not RESP, or a
    /// reply that no job asked for (the server and this connection disagree on what was sent,
    /// and every later reply would go to the wrong caller). The connection must then be reset;
    /// what was matched before the error is in `done`.
    pub fn take(
        &mut self,
        reader: &mut Reader,
        done: &mut Vec<(T, Result<Value, Error>)>,
    ) -> Result<(), Error> {
        self.take_with(reader, done, |_| {})
    }

    /// [`Inflight::take`], handing each push frame to `on_push` where it comes in the stream
    /// (before the replies that follow it are matched).
    pub fn take_with(
        &mut self,
        reader: &mut Reader,
        done: &mut Vec<(T, Result<Value, Error>)>,
        mut on_push: impl FnMut(&Value),
    ) -> Result<(), Error> {
        loop {
            match reader.next_reply()? {
                None => return Ok(()),
                Some(p @ Value::Push { .. }) => on_push(&p),
                Some(_) if self.queue.is_empty() => {
                    return Err(Error::Connection(
                        "unreadable reply from Redis: a reply arrived that no command asked for"
                            .into(),
                    ))
                }
                Some(v) => {
                    if let Some((Some(tag), r)) = self.feed(v) {
                        done.push((tag, r));
                    }
                }
            }
        }
    }
}

/// Incremental RESP3 reader (see `core::resp`).
#[derive(Default)]
pub struct Reader {
    /// Initialised storage: bytes `start..end` are read and not yet parsed; the rest is room
    /// for the next read (kept, so a read does not clear 64 KB first).
    buf: Vec<u8>,
    /// Where the next unparsed reply starts.
    start: usize,
    /// Where the bytes read so far end.
    end: usize,
}

/// Room a read asks the socket to fill.
const CHUNK: usize = 64 * 1024;

/// A buffer grown past this (by a big reply) shrinks back to [`CHUNK`] once it is all parsed.
const SHRINK_ABOVE: usize = 1024 * 1024;

impl Reader {
    /// Appends bytes read from the socket.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Makes room for `n` more bytes after `end`: moves the unparsed bytes to the front when
    /// they are at most half the buffer, and grows it when that is not enough.
    fn room(&mut self, n: usize) {
        if self.start > 0 && (self.start == self.end || self.start * 2 >= self.end) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + n {
            self.buf.resize(self.end + n, 0);
        }
    }

    /// Reads once from `src` straight into the buffer (no intermediate copy). Returns the count.
    ///
    /// # Errors
    /// The read's own error (`WouldBlock` included).
    pub fn read_from(&mut self, src: &mut impl std::io::Read) -> std::io::Result<usize> {
        self.room(CHUNK);
        let r = src.read(&mut self.buf[self.end..self.end + CHUNK]);
        self.end += *r.as_ref().unwrap_or(&0);
        r
    }

    /// Whether bytes of a reply not yet complete are held (a reply cut short, if it stays so).
    pub fn has_partial(&self) -> bool {
        self.start < self.end
    }

    /// The next complete reply, if the buffer holds one.
    ///
    /// # Errors
    /// `Connection` when the stream is not valid RESP (the connection must be dropped).
    pub fn next_reply(&mut self) -> Result<Option<Value>, Error> {
        match crate::core::resp::value(&self.buf[..self.end], self.start, 0)? {
            Some((v, next)) => {
                self.start = next;
                if self.start == self.end {
                    self.start = 0;
                    self.end = 0;
                    // A big reply's room is let go once it is parsed (not kept per connection).
                    if self.buf.len() > SHRINK_ABOVE {
                        self.buf.truncate(CHUNK);
                        self.buf.shrink_to_fit();
                    }
                }
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }
}

async fn round_trip(
    s: &mut (impl AsyncRead + AsyncWrite + Unpin),
    r: &mut Reader,
    cmd: &redis::Cmd,
    secret: Option<&str>,
) -> Result<Value, Error> {
    let failed = |e: std::io::Error| Error::Connection(format!("Redis connection failed: {e}"));
    s.write_all(&cmd.get_packed_command())
        .await
        .map_err(failed)?;
    // TLS: what the session still holds goes out now.
    s.flush().await.map_err(failed)?;
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(v) = r.next_reply()? {
            return match v {
                Value::ServerError(e) => {
                    let text = crate::core::error::redact(
                        &crate::core::error::pipeline_error_text(&e),
                        secret,
                    );
                    if text.contains("WRONGPASS") || text.starts_with("NOAUTH") {
                        Err(Error::Auth(format!(
                            "Redis refused the credentials: {text}"
                        )))
                    } else {
                        Err(Error::Connection(format!(
                            "Redis connection failed: {text}"
                        )))
                    }
                }
                v => Ok(v),
            };
        }
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| Error::Connection(format!("Redis connection failed: {e}")))?;
        if n == 0 {
            return Err(Error::Connection(
                "Redis closed the connection during the handshake".into(),
            ));
        }
        r.extend(&chunk[..n]);
    }
}

/// A connection ready for the JS thread: a non-blocking socket and, with TLS, the rustls session
/// that encrypts what is written to it and decrypts what is read.
pub struct Socket {
    pub tcp: std::net::TcpStream,
    pub tls: Option<Box<rustls::ClientConnection>>,
}

/// Opens a TCP connection, does the TLS handshake when `tls` is given (checking the server
/// against `name`), then the RESP3 handshake (`HELLO 3` with credentials, `CLIENT SETNAME`,
/// `SELECT`), and returns it for the JS thread.
///
/// # Errors
/// `Connection` (a refused or failed TLS handshake too), `Timeout` (within
/// `connectTimeoutMs`) or `Auth`.
pub async fn open_stream(
    cfg: &Config,
    (host, port): &crate::core::config::Node,
    tls: Option<(
        std::sync::Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
) -> Result<Socket, Error> {
    let limit = Duration::from_millis(cfg.connect_timeout_ms);
    let failed = |e: std::io::Error| Error::Connection(format!("Redis connection failed: {e}"));
    let work = async {
        let s = tokio::net::TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(failed)?;
        let _ = s.set_nodelay(true);
        match tls {
            None => {
                let mut s = s;
                handshake(cfg, &mut s).await?;
                let tcp = s.into_std().map_err(failed)?;
                Ok(Socket { tcp, tls: None })
            }
            Some((config, name)) => {
                let mut s = tokio_rustls::TlsConnector::from(config)
                    .connect(name, s)
                    .await
                    .map_err(|e| {
                        Error::Connection(format!("Redis connection failed: TLS handshake: {e}"))
                    })?;
                handshake(cfg, &mut s).await?;
                let (s, session) = s.into_inner();
                let tcp = s.into_std().map_err(failed)?;
                Ok(Socket {
                    tcp,
                    tls: Some(Box::new(session)),
                })
            }
        }
    };
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(format!(
            "could not connect to Redis at {host}:{port} within connectTimeoutMs ({} ms)",
            cfg.connect_timeout_ms
        ))),
    }
}

/// The RESP3 handshake: `HELLO 3` with credentials and name, then `SELECT` when not db 0.
async fn handshake(
    cfg: &Config,
    s: &mut (impl AsyncRead + AsyncWrite + Unpin),
) -> Result<(), Error> {
    let mut r = Reader::default();
    let mut hello = redis::cmd("HELLO");
    hello.arg(3);
    if let Some(pw) = &cfg.password {
        hello
            .arg("AUTH")
            .arg(cfg.username.as_deref().unwrap_or("default"))
            .arg(pw);
    }
    if let Some(name) = &cfg.client_name {
        hello.arg("SETNAME").arg(name);
    }
    round_trip(s, &mut r, &hello, cfg.password.as_deref()).await?;
    if cfg.db != 0 {
        let mut sel = redis::cmd("SELECT");
        sel.arg(cfg.db);
        round_trip(s, &mut r, &sel, None).await?;
    }
    if cfg.client_cache.is_some() {
        // The near cache's invalidations come in-band, as pushes on this very connection, so
        // each arrives in order with the replies around it (`core::near_cache`).
        let mut tracking = redis::cmd("CLIENT");
        tracking.arg("TRACKING").arg("ON");
        round_trip(s, &mut r, &tracking, None)
            .await
            .map_err(|e| match e {
                Error::Connection(m) => crate::core::error::tracking_refused(
                    m.strip_prefix("Redis connection failed: ").unwrap_or(&m),
                ),
                other => other,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(k: &str) -> Work {
        let mut c = redis::cmd("GET");
        c.arg(k);
        Work::One(c)
    }

    #[test]
    fn replies_are_matched_to_jobs_in_order() {
        let mut inf = Inflight::new(Duration::from_secs(5));
        let mut buf = Vec::new();
        inf.push(&get("a"), 1, &mut buf, Instant::now());
        inf.push(
            &Work::Many {
                cmds: vec![redis::cmd("PING"), redis::cmd("PING")],
                atomic: true,
            },
            2,
            &mut buf,
            Instant::now(),
        );
        inf.push(
            &Work::Many {
                cmds: vec![redis::cmd("PING")],
                atomic: false,
            },
            3,
            &mut buf,
            Instant::now(),
        );
        let text = String::from_utf8_lossy(&buf).to_string();
        assert!(text.starts_with("*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$5\r\nMULTI\r\n"));
        assert!(text.contains("$4\r\nEXEC\r\n"));
        assert_eq!(
            inf.feed(Value::BulkString(b"x".to_vec())),
            Some((Some(1), Ok(Value::BulkString(b"x".to_vec()))))
        );
        assert_eq!(inf.feed(Value::Okay), None);
        assert_eq!(inf.feed(Value::SimpleString("QUEUED".into())), None);
        assert_eq!(inf.feed(Value::SimpleString("QUEUED".into())), None);
        let exec = Value::Array(vec![Value::SimpleString("PONG".into()); 2]);
        assert_eq!(inf.feed(exec.clone()), Some((Some(2), Ok(exec))));
        assert_eq!(
            inf.feed(Value::SimpleString("PONG".into())),
            Some((
                Some(3),
                Ok(Value::Array(vec![Value::SimpleString("PONG".into())]))
            ))
        );
        assert!(inf.is_empty());
        let empty = Work::Many {
            cmds: vec![],
            atomic: false,
        };
        assert_eq!(
            inf.push(&empty, 4, &mut buf, Instant::now()),
            Some((4, Ok(Value::Array(vec![]))))
        );
        assert!(inf.is_empty());
    }

    #[test]
    fn expired_jobs_are_answered_once_and_their_late_replies_dropped() {
        let mut inf = Inflight::new(Duration::from_millis(0));
        let mut buf = Vec::new();
        inf.push(&get("a"), 1, &mut buf, Instant::now());
        let (gone, next) = inf.expire(Instant::now() + Duration::from_millis(1));
        assert_eq!(gone, vec![1]);
        assert_eq!(next, None);
        assert_eq!(inf.feed(Value::Nil), Some((None, Ok(Value::Nil))));
        inf.push(&get("b"), 2, &mut buf, Instant::now());
        assert_eq!(inf.drain(), vec![2]);
    }

    #[test]
    fn reader_waits_for_complete_frames() {
        let mut r = Reader::default();
        r.extend(b"$5\r\nhel");
        assert_eq!(r.next_reply(), Ok(None));
        r.extend(b"lo\r\n:7\r\n");
        assert_eq!(
            r.next_reply(),
            Ok(Some(Value::BulkString(b"hello".to_vec())))
        );
        assert_eq!(r.next_reply(), Ok(Some(Value::Int(7))));
        assert_eq!(r.next_reply(), Ok(None));
    }

    /// Hands out `.0` at most `.1` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn read_all(r: &mut Reader, src: &mut Trickle<'_>) -> Vec<Value> {
        let mut got = Vec::new();
        while r.read_from(src).unwrap_or(0) > 0 {
            while let Ok(Some(v)) = r.next_reply() {
                got.push(v);
            }
        }
        got
    }

    #[test]
    fn reader_reassembles_replies_split_across_reads_and_lets_big_room_go() {
        let mut wire = Vec::new();
        for i in 0..300 {
            let v = format!("value-{i}");
            wire.extend(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
        }
        let mut r = Reader::default();
        let got = read_all(&mut r, &mut Trickle(&wire, 7));
        assert_eq!(got.len(), 300);
        for (i, v) in got.iter().enumerate() {
            assert_eq!(v, &Value::BulkString(format!("value-{i}").into_bytes()));
        }
        assert!(r.buf.len() < 2 * CHUNK);

        let big = vec![b'x'; 3 << 20];
        let mut frame = format!("${}\r\n", big.len()).into_bytes();
        frame.extend_from_slice(&big);
        frame.extend_from_slice(b"\r\n:1\r\n");
        let got = read_all(&mut r, &mut Trickle(&frame, 1 << 20));
        assert_eq!(got, vec![Value::BulkString(big), Value::Int(1)]);
        assert_eq!(r.buf.len(), CHUNK);
        assert_eq!((r.start, r.end), (0, 0));
    }
}
