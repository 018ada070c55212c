//! Generated RESP2/RESP3 replies for the codec's property tests: a tree of every frame type
//! (`Frame`), a proptest strategy for it, and its encoding as a server writes it.

use proptest::prelude::*;
use redis::Value;

/// One reply frame, as a server sends it.
#[derive(Debug, Clone)]
pub enum Frame {
    /// `+text`: no CR or LF; may be invalid UTF-8 (a server quoting binary data).
    Simple(Vec<u8>),
    /// `-CODE text`: one line; may be invalid UTF-8.
    Error(Vec<u8>),
    Int(i64),
    /// `$n`: any bytes, CRLF included.
    Bulk(Vec<u8>),
    /// RESP2's null bulk string (`$-1`) and null array (`*-1`), RESP3's null (`_`).
    NullBulk,
    NullArray,
    Null,
    Bool(bool),
    /// `,x`: finite, `inf`, `-inf` or `nan`.
    Double(f64),
    /// `(digits`.
    Big(String),
    /// `=n fmt:text` with a three-letter format.
    Verbatim(String, Vec<u8>),
    /// `!n CODE text`: one line of text.
    BlobError(Vec<u8>),
    Array(Vec<Frame>),
    Set(Vec<Frame>),
    Map(Vec<(Frame, Frame)>),
    /// `|n` attributes, then the value they describe.
    Attr(Vec<(Frame, Frame)>, Box<Frame>),
    /// `>n kind ...`: a top-level out-of-band message.
    Push(String, Vec<Frame>),
}

impl Frame {
    /// The frame as the server writes it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let head = |out: &mut Vec<u8>, tag: u8, n: usize| {
            out.push(tag);
            out.extend_from_slice(n.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        let line = |out: &mut Vec<u8>, tag: u8, text: &[u8]| {
            out.push(tag);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        };
        let blob = |out: &mut Vec<u8>, tag: u8, data: &[u8]| {
            head(out, tag, data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        };
        match self {
            Frame::Simple(t) => line(out, b'+', t),
            Frame::Error(t) => line(out, b'-', t),
            Frame::Int(i) => line(out, b':', i.to_string().as_bytes()),
            Frame::Bulk(b) => blob(out, b'$', b),
            Frame::NullBulk => out.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Frame::Null => out.extend_from_slice(b"_\r\n"),
            Frame::Bool(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
            Frame::Double(f) => {
                let text = if f.is_nan() {
                    "nan".to_string()
                } else if f.is_infinite() {
                    (if *f > 0.0 { "inf" } else { "-inf" }).to_string()
                } else {
                    format!("{f:?}")
                };
                line(out, b',', text.as_bytes());
            }
            Frame::Big(d) => line(out, b'(', d.as_bytes()),
            Frame::Verbatim(fmt, text) => {
                blob(out, b'=', &[fmt.as_bytes(), b":", text].concat());
            }
            Frame::BlobError(t) => blob(out, b'!', t),
            Frame::Array(xs) | Frame::Set(xs) => {
                head(
                    out,
                    if matches!(self, Frame::Array(_)) {
                        b'*'
                    } else {
                        b'~'
                    },
                    xs.len(),
                );
                for x in xs {
                    x.encode(out);
                }
            }
            Frame::Map(kv) | Frame::Attr(kv, _) => {
                head(
                    out,
                    if matches!(self, Frame::Map(_)) {
                        b'%'
                    } else {
                        b'|'
                    },
                    kv.len(),
                );
                for (k, v) in kv {
                    k.encode(out);
                    v.encode(out);
                }
                if let Frame::Attr(_, data) = self {
                    data.encode(out);
                }
            }
            Frame::Push(kind, xs) => {
                head(out, b'>', xs.len() + 1);
                blob(out, b'$', kind.as_bytes());
                for x in xs {
                    x.encode(out);
                }
            }
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The same frame with the invalid UTF-8 of its one-line texts (simple strings, errors)
    /// replaced by U+FFFD: what our decoder is defined to read where the crate's refuses.
    pub fn lossy(&self) -> Frame {
        let fix = |t: &[u8]| String::from_utf8_lossy(t).into_owned().into_bytes();
        let pairs =
            |kv: &[(Frame, Frame)]| kv.iter().map(|(k, v)| (k.lossy(), v.lossy())).collect();
        match self {
            Frame::Simple(t) => Frame::Simple(fix(t)),
            Frame::Error(t) => Frame::Error(fix(t)),
            Frame::Array(xs) => Frame::Array(xs.iter().map(Frame::lossy).collect()),
            Frame::Set(xs) => Frame::Set(xs.iter().map(Frame::lossy).collect()),
            Frame::Push(k, xs) => Frame::Push(k.clone(), xs.iter().map(Frame::lossy).collect()),
            Frame::Map(kv) => Frame::Map(pairs(kv)),
            Frame::Attr(kv, d) => Frame::Attr(pairs(kv), Box::new(d.lossy())),
            other => other.clone(),
        }
    }
}

/// A line of text: printable ASCII, UTF-8 and, sometimes, bytes that are not UTF-8; never CR or
/// LF.
fn text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[ -~]{0,24}".prop_map(String::into_bytes),
        2 => "[a-zé€😀 ]{0,12}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..16)
            .prop_map(|b| b.into_iter().filter(|c| *c != b'\r' && *c != b'\n').collect()),
    ]
}

/// An error line: a known or made-up code, then text.
fn error_text() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        Just("ERR"),
        Just("WRONGTYPE"),
        Just("NOSCRIPT"),
        Just("NOPERM"),
        Just("BUSY"),
        Just("LOADING"),
        Just("CUSTOMCODE"),
    ];
    (code, text()).prop_map(|(c, t)| [c.as_bytes(), b" ", &t].concat())
}

fn leaf() -> impl Strategy<Value = Frame> {
    prop_oneof![
        text().prop_map(Frame::Simple),
        Just(Frame::Simple(b"OK".to_vec())),
        error_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Int),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Frame::Bulk),
        Just(Frame::Bulk(Vec::new())),
        Just(Frame::Bulk(b"a\r\nb\r\n".to_vec())),
        Just(Frame::NullBulk),
        Just(Frame::NullArray),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Bool),
        prop_oneof![
            any::<f64>(),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(0.0),
            Just(-0.0),
        ]
        .prop_map(Frame::Double),
        "-?[1-9][0-9]{0,60}".prop_map(Frame::Big),
        (
            prop_oneof![Just("txt".to_string()), Just("mkd".to_string()), "[a-z]{3}"],
            text()
        )
            .prop_map(|(f, t)| Frame::Verbatim(f, t)),
        error_text()
            .prop_map(|t| Frame::BlobError(String::from_utf8_lossy(&t).into_owned().into_bytes())),
    ]
}

/// Any reply frame (no push), nested up to 5 levels.
pub fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        let items = proptest::collection::vec(inner.clone(), 0..8);
        let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..5);
        prop_oneof![
            items.clone().prop_map(Frame::Array),
            items.prop_map(Frame::Set),
            pairs.clone().prop_map(Frame::Map),
            (pairs, inner).prop_map(|(kv, d)| Frame::Attr(kv, Box::new(d))),
        ]
    })
}

/// A push frame: an invalidation, a pub/sub message, or another kind.
pub fn push() -> impl Strategy<Value = Frame> {
    let kind = prop_oneof![
        Just("invalidate".to_string()),
        Just("message".to_string()),
        Just("pmessage".to_string()),
        Just("subscribe".to_string()),
        "[a-z]{1,10}",
    ];
    (kind, proptest::collection::vec(leaf(), 0..4)).prop_map(|(k, xs)| Frame::Push(k, xs))
}

/// Whether two decoded values are the same, NaN equal to NaN.
pub fn same(a: &Value, b: &Value) -> bool {
    let all =
        |x: &[Value], y: &[Value]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q));
    let pairs = |x: &[(Value, Value)], y: &[(Value, Value)]| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
    };
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) | (Value::Set(x), Value::Set(y)) => all(x, y),
        (Value::Map(x), Value::Map(y)) => pairs(x, y),
        (
            Value::Attribute {
                data: d1,
                attributes: a1,
            },
            Value::Attribute {
                data: d2,
                attributes: a2,
            },
        ) => same(d1, d2) && pairs(a1, a2),
        (Value::Push { kind: k1, data: x }, Value::Push { kind: k2, data: y }) => {
            k1 == k2 && all(x, y)
        }
        _ => a == b,
    }
}
