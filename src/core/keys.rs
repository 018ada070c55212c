//! The one place keys are built: the configured `keyPrefix` in front of every user key.

/// Writes `key` with `prefix` in front of it to `out` (a command's next argument).
pub fn write_prefixed(out: &mut impl std::io::Write, prefix: &[u8], key: &[u8]) {
    // Commands write into a Vec, which cannot fail.
    let _ = out.write_all(prefix);
    let _ = out.write_all(key);
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
        let mut bare = Vec::new();
        write_prefixed(&mut bare, b"", b"k");
        assert_eq!(bare, b"k");
    }
}
