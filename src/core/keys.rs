//! The one place key rules live. Every key is the configured `keyPrefix`, then a feature's
//! namespace (`lock:`, `sem:`, `rl:`, `throttler:`, `cache:`, `cache-lock:`, the session prefix),
//! then the user's key; keys one script touches together share a `{hash tag}` ([`tagged`]).
//! Features name their namespace and build their keys with these functions; patterns escape
//! the literal parts ([`escape_glob`]).

/// Writes `key` with `prefix` in front of it to `out` (a command's next argument).
pub fn write_prefixed(out: &mut impl std::io::Write, prefix: &[u8], key: &[u8]) {
    // Commands write into a Vec, which cannot fail.
    let _ = out.write_all(prefix);
    let _ = out.write_all(key);
}

/// `prefix` + `namespace` + `key`: a feature key without a hash tag.
pub fn namespaced(prefix: &[u8], namespace: &[u8], key: &[u8]) -> Vec<u8> {
    [prefix, namespace, key].concat()
}

/// A key with a hash tag: the `before` parts, `{tag}`, the `after` parts. Every key built with
/// one tag hashes to one cluster slot (a lock and its fencing counter, a session and its user's
/// index, the windows of one rate-limited key), so a script may touch them all.
pub fn tagged(before: &[&[u8]], tag: &[u8], after: &[&[u8]]) -> Vec<u8> {
    let len = before.iter().chain(after).map(|p| p.len()).sum::<usize>() + tag.len() + 2;
    let mut out = Vec::with_capacity(len);
    for p in before {
        out.extend_from_slice(p);
    }
    out.push(b'{');
    out.extend_from_slice(tag);
    out.push(b'}');
    for p in after {
        out.extend_from_slice(p);
    }
    out
}

/// Appends `s` to `out` with glob characters escaped, so a literal text (the key prefix, a
/// cache key's start) matches itself in `SCAN MATCH` (`app[1]:` and not `app1:`).
pub fn escape_glob(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Strips `prefix` from a key the server returned (SCAN, KEYS); keys without it are kept whole.
pub fn strip<'a>(prefix: &[u8], key: &'a [u8]) -> &'a [u8] {
    key.strip_prefix(prefix).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trip() {
        let mut k = Vec::new();
        write_prefixed(&mut k, b"app:", b"user:1");
        assert_eq!(k, b"app:user:1");
        assert_eq!(strip(b"app:", &k), b"user:1");
        assert_eq!(strip(b"app:", b"other"), b"other");
        let mut g = Vec::new();
        escape_glob(&mut g, b"a*b?[c]\\");
        assert_eq!(g, b"a\\*b\\?\\[c\\]\\\\");
        assert_eq!(
            tagged(&[b"app:", b"lock:"], b"k", &[b":fence"]),
            b"app:lock:{k}:fence"
        );
        assert_eq!(tagged(&[], b"", &[]), b"{}");
        let mut bare = Vec::new();
        write_prefixed(&mut bare, b"", b"k");
        assert_eq!(bare, b"k");
    }
}
