//! The reply decoder (`core::resp`, `core::wire::Reader`) against the `redis` crate's parser, on
//! generated frames of every type: the same value where the crate accepts the frame, the
//! defined lossy reading where it refuses (invalid UTF-8 in a one-line text), and the same
//! sequence of values however a stream of frames is split into reads.

use proptest::prelude::*;
use redis::Value;

use super::gen::{frame, push, same, Frame};
use crate::core::resp::{self, MAX_DEPTH};
use crate::core::wire::Reader;

/// Our decoding of one whole frame: its value, having consumed exactly the frame.
fn ours(bytes: &[u8]) -> Value {
    match resp::value(bytes, 0, 0) {
        Ok(Some((v, end))) => {
            assert_eq!(end, bytes.len(), "consumed {end} of {} bytes", bytes.len());
            v
        }
        other => panic!(
            "not decoded: {other:?} from {:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// Every value `reader` yields after `bytes` are fed to it in `chunks` (sizes, cycled).
fn fed(bytes: &[u8], chunks: &[usize]) -> Vec<Value> {
    let mut reader = Reader::default();
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < bytes.len() {
        let n = chunks[i % chunks.len()].clamp(1, bytes.len() - at);
        i += 1;
        reader.extend(&bytes[at..at + n]);
        at += n;
        while let Some(v) = reader.next_reply().expect("a valid stream") {
            out.push(v);
        }
    }
    assert!(
        !reader.has_partial(),
        "bytes left unparsed at the end of the stream"
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Where the crate accepts a frame, we read the same value; where it refuses one (a simple
    /// string or error that is not UTF-8), we read what it reads with U+FFFD in place of the bad
    /// bytes.
    #[test]
    fn decodes_as_the_crate_does(f in prop_oneof![4 => frame(), 1 => push()]) {
        let bytes = f.bytes();
        let got = ours(&bytes);
        let want = match redis::parse_redis_value(&bytes) {
            Ok(v) => v,
            Err(_) => redis::parse_redis_value(&f.lossy().bytes())
                .expect("the crate reads the lossy frame"),
        };
        prop_assert!(same(&got, &want), "ours {:?}\ncrate {:?}", got, want);
    }

    /// A stream of frames (replies and pushes) gives the same values in the same order whether
    /// read at once, byte by byte, or in reads of random sizes; an incomplete frame yields
    /// nothing and loses no byte.
    #[test]
    fn any_split_gives_the_same_values(
        frames in proptest::collection::vec(prop_oneof![4 => frame(), 1 => push()], 1..12),
        chunks in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::bytes).collect();
        let whole = fed(&bytes, &[bytes.len()]);
        prop_assert_eq!(whole.len(), frames.len());
        for (v, f) in whole.iter().zip(&frames) {
            prop_assert!(same(v, &ours(&f.bytes())));
        }
        for split in [&[1usize][..], &chunks] {
            let parts = fed(&bytes, split);
            prop_assert_eq!(parts.len(), whole.len());
            for (a, b) in parts.iter().zip(&whole) {
                prop_assert!(same(a, b));
            }
        }
    }

    /// Every proper prefix of a frame is incomplete: no value, no error.
    #[test]
    fn a_prefix_is_never_a_value(f in frame(), cut in any::<prop::sample::Index>()) {
        let bytes = f.bytes();
        let at = cut.index(bytes.len());
        prop_assert_eq!(resp::value(&bytes[..at], 0, 0), Ok(None));
    }

    /// Random bytes: a value, "incomplete", or a connection error; never a panic, and a value
    /// never claims more bytes than it was given.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(Some((_, end))) = resp::value(&bytes, 0, 0) {
            prop_assert!(end <= bytes.len());
        }
    }
}

#[test]
fn nesting_to_the_depth_limit_is_read_and_past_it_refused() {
    let nested = |levels: usize| "*1\r\n".repeat(levels) + ":7\r\n";
    let mut v = ours(nested(MAX_DEPTH).as_bytes());
    for _ in 0..MAX_DEPTH {
        v = match v {
            Value::Array(mut xs) if xs.len() == 1 => xs.remove(0),
            other => panic!("not an array of one: {other:?}"),
        };
    }
    assert_eq!(v, Value::Int(7));
    assert!(resp::value(nested(MAX_DEPTH + 1).as_bytes(), 0, 0).is_err());
    let maps = "%1\r\n:1\r\n".repeat(MAX_DEPTH + 1) + ":2\r\n";
    assert!(resp::value(maps.as_bytes(), 0, 0).is_err());
}

#[test]
fn frames_the_crate_reads_differently_have_a_defined_result() {
    // A length prefix past 4 GiB (or 2^32 elements) is refused at once, not waited for.
    for frame in [
        "$4611686018427387904\r\n",
        "*4611686018427387904\r\n",
        "%4294967297\r\n",
    ] {
        assert!(resp::value(frame.as_bytes(), 0, 0).is_err(), "{frame}");
    }
    // Nothing is allocated from a length prefix: a big one within the limit just waits.
    assert_eq!(resp::value(b"$4294967296\r\nabc", 0, 0), Ok(None));
    assert_eq!(resp::value(b"*4294967296\r\n:1\r\n", 0, 0), Ok(None));
    // A string whose length prefix and data disagree (no CRLF where the prefix says it ends)
    // is corrupt: read anyway, the rest of the stream would go to the wrong callers.
    assert!(resp::value(b"$3\r\nabcd\r\n", 0, 0).is_err());
    assert!(resp::value(b"$10\r\nabc$4\r\nnext\r\n", 0, 0).is_err());
    assert!(resp::value(b"=5\r\ntxt:abc\r\n", 0, 0).is_err());
    // A negative map size and a boolean other than t/f are corrupt (the crate refuses them too).
    assert!(resp::value(b"%-1\r\n", 0, 0).is_err());
    assert!(resp::value(b"#x\r\n", 0, 0).is_err());
    // An error's text is one line: CR and LF inside a blob error become spaces.
    let Value::ServerError(e) = ours(b"!14\r\nERR two\r\nlines\r\n") else {
        panic!("not an error");
    };
    assert_eq!(e.details(), Some("two  lines"));
}
