use super::*;

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn get(k: &str) -> Vec<u8> {
    format!("GET {k}").into_bytes()
}

fn cache() -> NearCache {
    NearCache::new(NearCacheOptions::default())
}

/// Reads `k` through the cache as a miss that came back with `v` (no TTL).
fn read(c: &NearCache, k: &str, v: &str) {
    let t = c.begin(k.as_bytes()).unwrap();
    c.finish(t, k.as_bytes(), get(k), Some((bulk(v), -1)));
}

#[test]
fn a_read_is_kept_until_its_key_is_invalidated() {
    let c = cache();
    let now = Instant::now();
    assert_eq!(c.lookup(&get("a"), now), None);
    read(&c, "a", "1");
    assert_eq!(c.lookup(&get("a"), now), Some(bulk("1")));
    c.invalidate(Some(&[b"b".to_vec()]));
    assert_eq!(c.lookup(&get("a"), now), Some(bulk("1")));
    c.invalidate(Some(&[b"a".to_vec()]));
    assert_eq!(c.lookup(&get("a"), now), None);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.entries, s.bytes), (2, 2, 0, 0));
    assert_eq!(s.invalidations, 2);
}

#[test]
fn a_reply_that_races_an_invalidation_of_its_key_is_not_kept() {
    let c = cache();
    let t = c.begin(b"a").unwrap();
    // The write's invalidation arrives while the read is in flight.
    c.invalidate(Some(&[b"a".to_vec()]));
    c.finish(t, b"a", get("a"), Some((bulk("old"), -1)));
    assert_eq!(c.lookup(&get("a"), Instant::now()), None);
    // A read sent after the invalidation is kept.
    read(&c, "a", "new");
    assert_eq!(c.lookup(&get("a"), Instant::now()), Some(bulk("new")));
}

#[test]
fn two_reads_in_flight_and_an_invalidation_between_their_sends() {
    let c = cache();
    let first = c.begin(b"a").unwrap();
    c.invalidate(Some(&[b"a".to_vec()]));
    let second = c.begin(b"a").unwrap();
    c.finish(first, b"a", get("a"), Some((bulk("old"), -1)));
    assert_eq!(c.lookup(&get("a"), Instant::now()), None);
    c.finish(second, b"a", get("a"), Some((bulk("new"), -1)));
    assert_eq!(c.lookup(&get("a"), Instant::now()), Some(bulk("new")));
}

#[test]
fn a_flush_drops_everything_and_every_read_in_flight() {
    let c = cache();
    read(&c, "a", "1");
    let t = c.begin(b"b").unwrap();
    c.flush();
    assert_eq!(c.lookup(&get("a"), Instant::now()), None);
    c.finish(t, b"b", get("b"), Some((bulk("2"), -1)));
    assert_eq!(c.lookup(&get("b"), Instant::now()), None);
    // `invalidate` with no keys (FLUSHDB, FLUSHALL) is a flush.
    read(&c, "a", "1");
    c.invalidate(None);
    assert_eq!(c.lookup(&get("a"), Instant::now()), None);
    assert_eq!(c.stats().flushes, 2);
}

#[test]
fn an_entry_expires_with_its_key_and_with_ttl_ms() {
    let c = cache();
    let t = c.begin(b"a").unwrap();
    c.finish(t, b"a", get("a"), Some((bulk("1"), 50)));
    let now = Instant::now();
    assert_eq!(c.lookup(&get("a"), now), Some(bulk("1")));
    assert_eq!(c.lookup(&get("a"), now + Duration::from_millis(60)), None);
    // A key with no TTL (-1) is bounded by ttlMs when it is set.
    let c = NearCache::new(NearCacheOptions {
        ttl_ms: Some(20),
        ..NearCacheOptions::default()
    });
    read(&c, "a", "1");
    assert!(c.lookup(&get("a"), Instant::now()).is_some());
    assert_eq!(
        c.lookup(&get("a"), Instant::now() + Duration::from_millis(25)),
        None
    );
}

#[test]
fn bounded_by_entries_and_bytes_least_recently_used_out_first() {
    let c = NearCache::new(NearCacheOptions {
        max_entries: 2,
        ..NearCacheOptions::default()
    });
    read(&c, "a", "1");
    read(&c, "b", "2");
    let now = Instant::now();
    assert!(c.lookup(&get("a"), now).is_some()); // `b` is now the least recently used
    read(&c, "c", "3");
    assert!(c.lookup(&get("b"), now).is_none());
    assert!(c.lookup(&get("a"), now).is_some());
    assert!(c.lookup(&get("c"), now).is_some());
    assert_eq!(c.stats().evictions, 1);

    let big = "x".repeat(1000);
    let c = NearCache::new(NearCacheOptions {
        max_bytes: 2500,
        ..NearCacheOptions::default()
    });
    for k in ["a", "b", "c"] {
        read(&c, k, &big);
    }
    let s = c.stats();
    assert_eq!(s.entries, 2);
    assert!(s.bytes <= 2500, "{s:?}");
    // A value larger than the whole cache is not kept (and evicts nothing).
    read(&c, "huge", &"y".repeat(3000));
    assert_eq!(c.stats().entries, 2);
}

#[test]
fn entries_of_one_key_go_together() {
    let c = cache();
    let hget = b"HGET h f".to_vec();
    let t = c.begin(b"h").unwrap();
    c.finish(t, b"h", hget.clone(), Some((bulk("1"), -1)));
    let t = c.begin(b"h").unwrap();
    c.finish(
        t,
        b"h",
        b"HGETALL h".to_vec(),
        Some((Value::Map(vec![]), -1)),
    );
    assert_eq!(c.stats().entries, 2);
    c.invalidate(Some(&[b"h".to_vec()]));
    assert_eq!(c.stats().entries, 0);
    assert_eq!(c.stats().bytes, 0);
}

#[test]
fn a_failed_read_leaves_nothing_pending() {
    let c = cache();
    let t = c.begin(b"a").unwrap();
    c.finish(t, b"a", get("a"), None);
    assert!(c.inner.lock().unwrap().pending.is_empty());
}

#[test]
fn invalidate_pushes_are_read_with_their_keys() {
    let push = Value::Push {
        kind: redis::PushKind::Invalidate,
        data: vec![Value::Array(vec![bulk("a"), bulk("b")])],
    };
    assert_eq!(
        invalidated_keys(&push),
        Some(Invalidated::Keys(vec![b"a".to_vec(), b"b".to_vec()]))
    );
    let all = Value::Push {
        kind: redis::PushKind::Invalidate,
        data: vec![Value::Nil],
    };
    assert_eq!(invalidated_keys(&all), Some(Invalidated::All));
    let other = Value::Push {
        kind: redis::PushKind::Message,
        data: vec![],
    };
    assert_eq!(invalidated_keys(&other), None);
    assert_eq!(invalidated_keys(&bulk("a")), None);
}

#[test]
fn a_command_answered_elsewhere_drops_the_keys_it_names_and_spoils_their_reads_in_flight() {
    let c = cache();
    let mut keys = Vec::new();
    let mut set = redis::cmd("SET");
    set.arg("a").arg("a value longer than any key read");
    // Nothing read yet: no argument can name a cached key.
    c.keys_in(&set, &mut keys);
    assert!(keys.is_empty());
    read(&c, "a", "1");
    read(&c, "bb", "2");
    let in_flight = c.begin(b"cc").unwrap();
    let mut mset = redis::cmd("MSET");
    mset.arg("a")
        .arg("x")
        .arg("cc")
        .arg("a value longer than any key read");
    c.keys_in(&mset, &mut keys);
    // The arguments no longer than the longest key read so far (2 bytes here).
    assert_eq!(keys, vec![b"a".to_vec(), b"x".to_vec(), b"cc".to_vec()]);
    c.touched(&keys);
    let now = Instant::now();
    assert_eq!(c.lookup(&get("a"), now), None);
    assert_eq!(c.lookup(&get("bb"), now), Some(bulk("2")));
    c.finish(in_flight, b"cc", get("cc"), Some((bulk("old"), -1)));
    assert_eq!(c.lookup(&get("cc"), now), None);
    // Counted once per key that held entries.
    assert_eq!(c.stats().invalidations, 1);
}
