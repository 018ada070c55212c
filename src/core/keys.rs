//! The one place keys are built: the configured `keyPrefix` in front of every user key.

/// Prepends `prefix` to `key`.
pub fn prefixed(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + key.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(key);
    out
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
        let k = prefixed(b"app:", b"user:1");
        assert_eq!(k, b"app:user:1");
        assert_eq!(strip(b"app:", &k), b"user:1");
        assert_eq!(strip(b"app:", b"other"), b"other");
        assert_eq!(prefixed(b"", b"k"), b"k");
    }
}
