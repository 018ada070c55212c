//! A RESP2/RESP3 reply parser for the JS-thread connection. Incremental (an incomplete frame
//! waits for more bytes) and lossy where the redis crate's parser is strict: a simple string or
//! an error whose text is not valid UTF-8 (a Lua error quoting binary data) becomes text with
//! U+FFFD instead of a parse failure that would drop the whole connection.

use redis::{PushKind, Value, VerbatimFormat};

use crate::core::Error;

/// Deepest nesting accepted (a guard against hostile or corrupt input).
pub const MAX_DEPTH: usize = 128;

/// The longest string and the most elements a reply may announce (4 GiB, 2^32 elements): a
/// larger length prefix is refused at once, as corrupt, rather than waited for (no reply can be
/// that large: Node's longest Buffer is 4 GiB).
pub const MAX_LENGTH: i64 = 1 << 32;

type Step = Result<Option<(Value, usize)>, Error>;

fn bad(what: &str) -> Error {
    Error::Connection(format!("unreadable reply from Redis: {what}"))
}

/// The line starting at `pos` (without CRLF) and the position after it; `None` if incomplete.
fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let mut i = 0;
    while i + 1 < rest.len() {
        match rest[i..].iter().position(|&b| b == b'\r') {
            Some(at) => {
                let cr = i + at;
                if cr + 1 >= rest.len() {
                    return None;
                }
                if rest[cr + 1] == b'\n' {
                    return Some((&rest[..cr], pos + cr + 2));
                }
                i = cr + 1;
            }
            None => return None,
        }
    }
    None
}

fn int(l: &[u8]) -> Result<i64, Error> {
    std::str::from_utf8(l)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad integer"))
}

/// A length or element count: `-1` (null) and below stay as they are for the caller to judge;
/// past [`MAX_LENGTH`] is corrupt.
fn length(l: &[u8]) -> Result<i64, Error> {
    let n = int(l)?;
    if n > MAX_LENGTH {
        return Err(bad("length prefix too large"));
    }
    Ok(n)
}

/// A server error from its text, built by the redis crate so its kind (NOSCRIPT, MOVED...) is set.
fn server_error(text: &[u8]) -> Value {
    let clean = String::from_utf8_lossy(text).replace(['\r', '\n'], " ");
    let frame = format!("-{clean}\r\n");
    redis::parse_redis_value(frame.as_bytes()).unwrap_or(Value::Nil)
}

fn push_kind(v: &Value) -> PushKind {
    let name = match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    };
    match name.as_str() {
        "invalidate" => PushKind::Invalidate,
        "message" => PushKind::Message,
        "pmessage" => PushKind::PMessage,
        "smessage" => PushKind::SMessage,
        "unsubscribe" => PushKind::Unsubscribe,
        "punsubscribe" => PushKind::PUnsubscribe,
        "sunsubscribe" => PushKind::SUnsubscribe,
        "subscribe" => PushKind::Subscribe,
        "psubscribe" => PushKind::PSubscribe,
        "ssubscribe" => PushKind::SSubscribe,
        _ => PushKind::Other(name),
    }
}

/// `n` values from `pos`.
fn many(
    buf: &[u8],
    mut pos: usize,
    n: i64,
    depth: usize,
) -> Result<Option<(Vec<Value>, usize)>, Error> {
    let mut out = Vec::with_capacity(n.clamp(0, 4096) as usize);
    for _ in 0..n {
        match value(buf, pos, depth + 1)? {
            Some((v, next)) => {
                out.push(v);
                pos = next;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((out, pos)))
}

/// A length-prefixed blob: its bytes and the position after its CRLF (`None`: not all here yet).
///
/// # Errors
/// `Connection` when the bytes after it are not CRLF (the length and the data disagree: every
/// later reply would be read from the wrong place).
fn blob(buf: &[u8], pos: usize, len: i64) -> Result<Option<(&[u8], usize)>, Error> {
    let Some(end) = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)) else {
        return Err(bad("bad length"));
    };
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(bad("a string longer than its length prefix"));
    }
    Ok(Some((&buf[pos..end], end + 2)))
}

/// Parses one value starting at `pos`: the value and the position after it, `None` when the
/// buffer does not hold all of it yet.
///
/// # Errors
/// `Connection` when the bytes are not RESP.
pub fn value(buf: &[u8], pos: usize, depth: usize) -> Step {
    if depth > MAX_DEPTH {
        return Err(bad("nested too deeply"));
    }
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let Some((l, next)) = line(buf, pos + 1) else {
        return Ok(None);
    };
    Ok(match tag {
        b'+' => Some((
            if l == b"OK" {
                Value::Okay
            } else {
                Value::SimpleString(String::from_utf8_lossy(l).into_owned())
            },
            next,
        )),
        b'-' => Some((server_error(l), next)),
        b':' => Some((Value::Int(int(l)?), next)),
        b'_' => Some((Value::Nil, next)),
        b'#' => Some((
            Value::Boolean(match l {
                b"t" => true,
                b"f" => false,
                _ => return Err(bad("bad boolean")),
            }),
            next,
        )),
        b',' => {
            let s = String::from_utf8_lossy(l);
            let f = match s.as_ref() {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| bad("bad double"))?,
            };
            Some((Value::Double(f), next))
        }
        b'(' => {
            let frame = [b"(".as_slice(), l, b"\r\n"].concat();
            let v = redis::parse_redis_value(&frame).map_err(|_| bad("bad big number"))?;
            Some((v, next))
        }
        b'$' | b'!' | b'=' => {
            let n = length(l)?;
            if n < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            let Some((data, after)) = blob(buf, next, n)? else {
                return Ok(None);
            };
            let v = match tag {
                b'$' => Value::BulkString(data.to_vec()),
                b'!' => server_error(data),
                _ => {
                    let (format, text) = match data.get(3) {
                        Some(b':') => (&data[..3], &data[4..]),
                        _ => (&b""[..], data),
                    };
                    Value::VerbatimString {
                        format: match format {
                            b"txt" => VerbatimFormat::Text,
                            b"mkd" => VerbatimFormat::Markdown,
                            other => {
                                VerbatimFormat::Unknown(String::from_utf8_lossy(other).into_owned())
                            }
                        },
                        text: String::from_utf8_lossy(text).into_owned(),
                    }
                }
            };
            Some((v, after))
        }
        b'*' | b'~' | b'>' => {
            let n = length(l)?;
            if n < 0 {
                return Ok(Some((Value::Nil, next)));
            }
            let Some((mut items, after)) = many(buf, next, n, depth)? else {
                return Ok(None);
            };
            let v = match tag {
                b'*' => Value::Array(items),
                b'~' => Value::Set(items),
                _ => {
                    let kind = if items.is_empty() {
                        PushKind::Other(String::new())
                    } else {
                        push_kind(&items.remove(0))
                    };
                    Value::Push { kind, data: items }
                }
            };
            Some((v, after))
        }
        b'%' | b'|' => {
            let n = length(l)?;
            if n < 0 {
                return Err(bad("negative map size"));
            }
            let Some((items, after)) = many(buf, next, n * 2, depth)? else {
                return Ok(None);
            };
            let mut it = items.into_iter();
            let mut pairs = Vec::with_capacity(n.clamp(0, 4096) as usize);
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                pairs.push((k, v));
            }
            if tag == b'%' {
                Some((Value::Map(pairs), after))
            } else {
                // Attributes precede the value they describe.
                let Some((data, end)) = value(buf, after, depth + 1)? else {
                    return Ok(None);
                };
                Some((
                    Value::Attribute {
                        data: Box::new(data),
                        attributes: pairs,
                    },
                    end,
                ))
            }
        }
        _ => return Err(bad("unknown type byte")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &[u8]) -> Option<Value> {
        value(s, 0, 0).ok().flatten().map(|(v, n)| {
            assert_eq!(n, s.len());
            v
        })
    }

    #[test]
    fn resp3_types() {
        assert_eq!(one(b"+OK\r\n"), Some(Value::Okay));
        assert_eq!(one(b":-12\r\n"), Some(Value::Int(-12)));
        assert_eq!(
            one(b"$3\r\na\r\n\r\n"),
            Some(Value::BulkString(b"a\r\n".to_vec()))
        );
        assert_eq!(one(b"$-1\r\n"), Some(Value::Nil));
        assert_eq!(one(b"_\r\n"), Some(Value::Nil));
        assert_eq!(one(b"#t\r\n"), Some(Value::Boolean(true)));
        assert_eq!(one(b",1.5\r\n"), Some(Value::Double(1.5)));
        assert_eq!(
            one(b"*2\r\n:1\r\n$1\r\nx\r\n"),
            Some(Value::Array(vec![
                Value::Int(1),
                Value::BulkString(b"x".to_vec())
            ]))
        );
        assert_eq!(
            one(b"%1\r\n+k\r\n:2\r\n"),
            Some(Value::Map(vec![(
                Value::SimpleString("k".into()),
                Value::Int(2)
            )]))
        );
        assert_eq!(
            one(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
            Some(Value::Push {
                kind: PushKind::Message,
                data: vec![
                    Value::BulkString(b"c".to_vec()),
                    Value::BulkString(b"m".to_vec())
                ]
            })
        );
        assert_eq!(
            one(b"=7\r\ntxt:abc\r\n"),
            Some(Value::VerbatimString {
                format: VerbatimFormat::Text,
                text: "abc".into()
            })
        );
    }

    #[test]
    fn incomplete_frames_wait() {
        for s in [&b"$5\r\nhel"[..], b"*2\r\n:1\r\n", b"+O", b":1\r", b""] {
            assert_eq!(value(s, 0, 0), Ok(None), "{s:?}");
        }
    }

    #[test]
    fn errors_keep_their_kind_and_survive_bad_utf8() {
        let Some(Value::ServerError(e)) = one(b"-NOSCRIPT No matching script\r\n") else {
            panic!("not an error");
        };
        assert_eq!(e.code(), "NOSCRIPT");
        let Some(Value::ServerError(e)) = one(b"-ERR bad \xff\xfe bytes\r\n") else {
            panic!("not an error");
        };
        assert!(e.details().unwrap_or_default().contains('\u{fffd}'));
        assert_eq!(
            one(b"+caf\xe9\r\n"),
            Some(Value::SimpleString("caf\u{fffd}".into()))
        );
    }

    #[test]
    fn garbage_and_depth_are_refused() {
        assert!(value(b"?x\r\n", 0, 0).is_err());
        let deep = "*1\r\n".repeat(200) + ":1\r\n";
        assert!(value(deep.as_bytes(), 0, 0).is_err());
    }
}
