//! TLS on the JS-thread connection: the rustls session (handed over by the runtime after its
//! handshake) is driven without I/O of its own, from the driver's non-blocking socket calls.
//! Nothing here blocks: a socket that would block ends the call, and libuv wakes the driver
//! again (readable, or writable while records wait to go out).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use rustls::ClientConnection;

use crate::core::wire::Reader;

/// What one socket read takes at most: rustls itself reads 4 KiB at a time, so the records are
/// read here in one call (a 256-reply batch is about 28 KiB) and fed to the session from memory.
const READ_CHUNK: usize = 64 * 1024;

/// Encrypts as much of `out` as the session and the socket take now, and sends the records:
/// `(plaintext bytes consumed, why the connection failed)`. The session buffers at most its
/// limit (64 KiB) of records; the rest of `out` waits for the socket to drain.
pub(super) fn write(
    stream: &TcpStream,
    tls: &mut ClientConnection,
    out: &[u8],
) -> (usize, Option<String>) {
    let mut taken = 0;
    loop {
        let mut took = 0;
        if taken < out.len() {
            match tls.writer().write(&out[taken..]) {
                Ok(n) => took = n,
                Err(e) => return (taken, Some(format!("TLS write failed: {e}"))),
            }
            taken += took;
        }
        match send_records(stream, tls) {
            Err(why) => return (taken, Some(why)),
            // The socket is full: libuv says when it drains.
            Ok(false) => return (taken, None),
            Ok(true) => {}
        }
        if taken == out.len() || took == 0 {
            return (taken, None);
        }
    }
}

/// Sends the session's queued records: `Ok(true)` when all went out, `Ok(false)` when the
/// socket would block.
fn send_records(stream: &TcpStream, tls: &mut ClientConnection) -> Result<bool, String> {
    while tls.wants_write() {
        match tls.write_tls(&mut &*stream) {
            Ok(0) => return Err("the connection was closed while writing".into()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    Ok(true)
}

/// Reads what the socket has, decrypts it, and appends the plaintext to `reader`: `Some(why)`
/// when the connection is over (closed, or a TLS error: a bad record, an alert from the
/// server). Every complete record read is decrypted and handed on before returning, so nothing
/// waits inside the session for a wake-up that would not come. `stage` is the connection's
/// read buffer (kept between reads).
pub(super) fn read(
    stream: &TcpStream,
    tls: &mut ClientConnection,
    reader: &mut Reader,
    stage: &mut Vec<u8>,
) -> Option<String> {
    if stage.len() < READ_CHUNK {
        stage.resize(READ_CHUNK, 0);
    }
    loop {
        let n = match (&*stream).read(stage) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Some(format!("read failed: {e}")),
        };
        let mut records = &stage[..n];
        while !records.is_empty() {
            match tls.read_tls(&mut records) {
                // The session takes nothing more (the server ended it with close_notify).
                Ok(0) => return Some("the server closed the connection".into()),
                Ok(_) => {}
                Err(e) => return Some(format!("TLS read failed: {e}")),
            }
            if let Some(why) = decrypt(stream, tls, reader) {
                return Some(why);
            }
        }
        if n == 0 {
            return Some("the server closed the connection".into());
        }
        if n < READ_CHUNK {
            // A short read emptied the socket (libuv wakes us again for more).
            return None;
        }
    }
}

/// Decrypts the records the session holds and moves the plaintext into `reader`.
fn decrypt(stream: &TcpStream, tls: &mut ClientConnection, reader: &mut Reader) -> Option<String> {
    if let Err(e) = tls.process_new_packets() {
        // The alert that says why goes out first, when the socket takes it.
        let _ = send_records(stream, tls);
        return Some(format!("TLS error: {e}"));
    }
    plaintext(tls, reader)
}

/// Moves the decrypted bytes into `reader`.
fn plaintext(tls: &mut ClientConnection, reader: &mut Reader) -> Option<String> {
    loop {
        match reader.read_from(&mut tls.reader()) {
            // The server ended the TLS session (close_notify).
            Ok(0) => return Some("the server closed the connection".into()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Some("the server closed the connection".into())
            }
            Err(e) => return Some(format!("TLS read failed: {e}")),
        }
    }
}
