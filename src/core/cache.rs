//! Cache-aside with stampede protection: the value as JSON text at `cache:<key>` (TTL = ttl +
//! stale window, so "stale" is just "PTTL below the stale window": no clocks compared), and a
//! short lock at `cache-lock:<key>` so one process loads a cold key while the others wait for the
//! value. Also the SCAN + UNLINK sweep used by `invalidatePrefix` and `resetRateLimit`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Value;

use crate::core::keys;
use crate::core::policy::{Decision, Policy};
use crate::core::work::Work;
use crate::core::{Client, Error};

/// Delay between reads while another process loads the value.
const POLL_MS: u64 = 20;
/// How long callers wait for another process's loader when no `lockMs` is given, in ms.
pub const DEFAULT_LOCK_MS: u64 = 5000;

/// One `wrap` call: its keys and timings.
#[derive(Clone, Debug)]
pub struct Wrap {
    /// Where the value lives (the single-flight key too).
    pub value_key: Vec<u8>,
    lock_key: Vec<u8>,
    ttl_ms: u64,
    stale_ms: u64,
    lock_ms: u64,
}

/// What the first read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// Fresh JSON.
    Hit(Vec<u8>),
    /// JSON past its TTL but within the stale window: serve it, refresh in the background.
    Stale(Vec<u8>),
    Miss,
}

/// What a caller does after a miss.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Another process stored the value meanwhile: this JSON.
    Serve(Vec<u8>),
    /// Run the loader, then `store` (holding the loading lock with this token when `Some`).
    Load(Option<String>),
    Fail(Error),
}

impl Wrap {
    /// `key` (after the service `prefix`) cached `ttl_s` seconds, served stale `stale_s` more.
    pub fn new(prefix: &[u8], key: &[u8], ttl_s: u64, stale_s: u64, lock_ms: u64) -> Wrap {
        Wrap {
            value_key: value_key(prefix, key),
            lock_key: lock_key(prefix, key),
            ttl_ms: ttl_s * 1000,
            stale_ms: stale_s * 1000,
            lock_ms,
        }
    }

    /// The first read, sent in the ordinary batch: `GET`, with the value's `PTTL` when stale
    /// values are served.
    pub fn read(&self) -> Work {
        let mut get = redis::cmd("GET");
        get.arg(&self.value_key);
        if self.stale_ms == 0 {
            return Work::One(get);
        }
        let mut pttl = redis::cmd("PTTL");
        pttl.arg(&self.value_key);
        Work::Many {
            cmds: vec![get, pttl],
            atomic: false,
        }
    }

    /// Reads the reply of [`Wrap::read`]: stale when the value's remaining life is within the
    /// stale window (it was stored for TTL + stale window).
    pub fn classify(&self, v: Value) -> Read {
        match v {
            Value::BulkString(b) => Read::Hit(b),
            Value::Array(mut parts) if parts.len() == 2 => {
                let pttl = match parts.pop() {
                    Some(Value::Int(n)) => n,
                    _ => -2,
                };
                match parts.pop() {
                    Some(Value::BulkString(b)) if pttl >= 0 && (pttl as u64) <= self.stale_ms => {
                        Read::Stale(b)
                    }
                    Some(Value::BulkString(b)) => Read::Hit(b),
                    _ => Read::Miss,
                }
            }
            _ => Read::Miss,
        }
    }

    /// After a miss: take the loading lock, or wait for the process holding it. Redis
    /// unreachable: the cache policy says load without caching (or fail).
    pub async fn fill(&self, client: &Arc<Client>, policy: Policy) -> Next {
        let token = crate::core::lock::new_token();
        match wait_or_lock(
            client,
            &self.value_key,
            &self.lock_key,
            &token,
            self.lock_ms,
        )
        .await
        {
            Ok(Fill::Loaded(json)) => Next::Serve(json),
            Ok(Fill::Locked) => Next::Load(Some(token)),
            Ok(Fill::TimedOut) => Next::Load(None),
            Err(e) => match policy.after(client, e) {
                Decision::Degrade => Next::Load(None),
                Decision::Fail(e) => Next::Fail(e),
            },
        }
    }

    /// A stale value was served: the token of the refresh lock when this caller refreshes (one
    /// refresher across processes), else `None`.
    pub async fn lock_for_refresh(&self, client: &Arc<Client>) -> Option<String> {
        let token = crate::core::lock::new_token();
        match try_lock(client, &self.lock_key, &token, self.lock_ms).await {
            Ok(true) => Some(token),
            _ => None,
        }
    }

    /// Stores the loader's JSON for the TTL plus the stale window, then releases `token`'s lock.
    ///
    /// # Errors
    /// `Connection`/`Timeout` when Redis is unreachable.
    pub async fn store(
        &self,
        client: &Arc<Client>,
        json: &[u8],
        token: Option<&str>,
    ) -> Result<(), Error> {
        let mut set = redis::cmd("SET");
        set.arg(&self.value_key)
            .arg(json)
            .arg("PX")
            .arg((self.ttl_ms + self.stale_ms).max(1));
        let stored = client.query(client.handle()?, &set).await;
        if let Some(near) = &client.near {
            // Written on the runtime's connection: the near cache's invalidation comes on the
            // other one, maybe after this process's next read; this process drops it now.
            near.invalidate(Some(std::slice::from_ref(&self.value_key)));
        }
        stored?;
        if let Some(t) = token {
            self.unlock(client, t).await?;
        }
        Ok(())
    }

    /// Releases our loading lock (compare-and-delete).
    ///
    /// # Errors
    /// `Connection`/`Timeout` when Redis is unreachable.
    pub async fn unlock(&self, client: &Arc<Client>, token: &str) -> Result<(), Error> {
        crate::core::lock::release_key(client, &self.lock_key, token)
            .await
            .map(|_| ())
    }
}

/// Single flight in this process: the callers (`W`) waiting, per cache key, for the one load in
/// progress.
pub struct Flights<W> {
    map: Mutex<HashMap<Vec<u8>, Vec<W>>>,
}

impl<W> Default for Flights<W> {
    fn default() -> Self {
        Flights {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<W> Flights<W> {
    /// Joins the load of `key` in progress (`Ok`), or hands `w` back as the one that leads it.
    ///
    /// # Errors
    /// `w` itself when there is no load to join: the caller leads one.
    pub fn join(&self, key: &[u8], w: W) -> Result<(), W> {
        let Ok(mut m) = self.map.lock() else {
            return Err(w);
        };
        match m.get_mut(key) {
            Some(waiting) => {
                waiting.push(w);
                Ok(())
            }
            None => {
                m.insert(key.to_vec(), Vec::new());
                Err(w)
            }
        }
    }

    /// Ends the load of `key`: everyone who joined it.
    pub fn take(&self, key: &[u8]) -> Vec<W> {
        self.map
            .lock()
            .ok()
            .and_then(|mut m| m.remove(key))
            .unwrap_or_default()
    }
}

/// The key holding `key`'s cached value.
pub fn value_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    keys::namespaced(prefix, b"cache:", key)
}

/// The key of `key`'s loading lock.
pub fn lock_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    keys::namespaced(prefix, b"cache-lock:", key)
}

/// The pattern of every cached value whose key starts with `start`.
pub fn prefix_pattern(prefix: &[u8], start: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    keys::escape_glob(&mut p, prefix);
    p.extend_from_slice(b"cache:");
    keys::escape_glob(&mut p, start);
    p.push(b'*');
    p
}

/// Deletes (UNLINK) every key matching `pattern`, in SCAN batches; returns how many.
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
pub async fn scan_delete(client: &Arc<Client>, pattern: &[u8]) -> Result<i64, Error> {
    let mut deleted = 0;
    // Every cluster master holds its own part of the key space.
    for node in client.scan_targets().await? {
        deleted += scan_delete_on(client, node.as_ref(), pattern).await?;
    }
    Ok(deleted)
}

async fn scan_delete_on(
    client: &Arc<Client>,
    node: Option<&crate::core::config::Node>,
    pattern: &[u8],
) -> Result<i64, Error> {
    let mut cursor = b"0".to_vec();
    let mut deleted = 0;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(&cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let Value::Array(mut parts) = client.query_at(client.handle()?, node, &scan).await? else {
            return Ok(deleted);
        };
        let keys = parts.pop();
        cursor = match parts.pop() {
            Some(Value::BulkString(b)) => b,
            _ => b"0".to_vec(),
        };
        if let Some(Value::Array(keys)) = keys {
            let mut unlink = redis::cmd("UNLINK");
            let mut any = false;
            for k in keys {
                if let Value::BulkString(k) = k {
                    unlink.arg(k);
                    any = true;
                }
            }
            if any {
                if let Value::Int(n) = client.query(client.handle()?, &unlink).await? {
                    deleted += n;
                }
            }
        }
        if cursor == b"0" {
            return Ok(deleted);
        }
    }
}

/// How a cold key gets its value.
#[derive(Debug, PartialEq, Eq)]
enum Fill {
    /// Another process stored it meanwhile: the JSON text.
    Loaded(Vec<u8>),
    /// We hold the loading lock: run the loader, then [`Wrap::store`].
    Locked,
    /// The holder did not deliver within `lock_ms`: run the loader without the lock.
    TimedOut,
}

async fn try_lock(client: &Arc<Client>, lock: &[u8], token: &str, ms: u64) -> Result<bool, Error> {
    let mut set = redis::cmd("SET");
    set.arg(lock).arg(token).arg("NX").arg("PX").arg(ms.max(1));
    Ok(client.query(client.handle()?, &set).await? == Value::Okay)
}

/// Takes the loading lock of a cold key, or waits (up to `lock_ms`) for the process holding it
/// to store the value; takes over when that holder gives up.
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
async fn wait_or_lock(
    client: &Arc<Client>,
    value: &[u8],
    lock: &[u8],
    token: &str,
    lock_ms: u64,
) -> Result<Fill, Error> {
    let deadline = Instant::now() + Duration::from_millis(lock_ms);
    loop {
        if try_lock(client, lock, token, lock_ms).await? {
            return Ok(Fill::Locked);
        }
        loop {
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
            let mut get = redis::cmd("GET");
            get.arg(value);
            if let Value::BulkString(v) = client.query(client.handle()?, &get).await? {
                return Ok(Fill::Loaded(v));
            }
            if Instant::now() >= deadline {
                return Ok(Fill::TimedOut);
            }
            let mut exists = redis::cmd("EXISTS");
            exists.arg(lock);
            if client.query(client.handle()?, &exists).await? == Value::Int(0) {
                // The holder gave up (its loader failed): try to take over.
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::config::Settings;
    use crate::core::connection::runtime;
    use crate::core::connection::testing::Quiet;
    use crate::core::policy::Feature;
    use crate::core::test_server::TestServer;
    use crate::core::Config;

    fn wrap(stale_s: u64) -> Wrap {
        Wrap::new(b"p:", b"k", 60, stale_s, DEFAULT_LOCK_MS)
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_read_is_one_get_or_get_and_pttl_with_a_stale_window() {
        assert!(matches!(wrap(0).read(), Work::One(_)));
        match wrap(10).read() {
            Work::Many { cmds, atomic } => {
                assert!(!atomic);
                assert_eq!(cmds.len(), 2);
            }
            _ => panic!("expected GET + PTTL"),
        }
    }

    #[test]
    fn stale_means_within_the_stale_window_of_remaining_life() {
        let w = wrap(10);
        assert_eq!(w.classify(bulk("1")), Read::Hit(b"1".to_vec()));
        assert_eq!(w.classify(Value::Nil), Read::Miss);
        let read = |pttl: i64| w.classify(Value::Array(vec![bulk("1"), Value::Int(pttl)]));
        // Stored for 60 + 10 s: more than 10 s left is fresh, 10 s or less is stale.
        assert_eq!(read(10_001), Read::Hit(b"1".to_vec()));
        assert_eq!(read(10_000), Read::Stale(b"1".to_vec()));
        assert_eq!(read(0), Read::Stale(b"1".to_vec()));
        // No expiry (-1) or a key gone between the two reads: never stale.
        assert_eq!(read(-1), Read::Hit(b"1".to_vec()));
        assert_eq!(
            w.classify(Value::Array(vec![Value::Nil, Value::Int(-2)])),
            Read::Miss
        );
    }

    #[test]
    fn one_caller_leads_a_load_and_the_others_join_it() {
        let f = Flights::default();
        assert_eq!(f.join(b"a", 1), Err(1), "the first caller leads");
        assert_eq!(f.join(b"a", 2), Ok(()));
        assert_eq!(f.join(b"a", 3), Ok(()));
        assert_eq!(f.join(b"b", 4), Err(4), "another key, another load");
        assert_eq!(f.take(b"a"), [2, 3]);
        assert_eq!(
            f.join(b"a", 5),
            Err(5),
            "after the load, the next caller leads again"
        );
        assert!(f.take(b"zz").is_empty());
    }

    #[test]
    fn with_redis_unreachable_the_loader_runs_without_caching() {
        let cfg = Config::resolve(Settings::default()).unwrap();
        let policy = Policy::of(&cfg, Feature::Cache);
        let client = Client::new(cfg, Arc::new(Quiet)).unwrap();
        let rt = runtime().unwrap();
        assert_eq!(rt.block_on(wrap(0).fill(&client, policy)), Next::Load(None));
        assert_eq!(rt.block_on(wrap(0).lock_for_refresh(&client)), None);
    }

    #[test]
    fn keys_and_patterns() {
        assert_eq!(value_key(b"app:", b"user:1"), b"app:cache:user:1");
        assert_eq!(lock_key(b"", b"k"), b"cache-lock:k");
        assert_eq!(
            prefix_pattern(b"a[1]:", b"user:*"),
            b"a\\[1\\]:cache:user:\\**"
        );
    }

    #[test]
    fn one_process_loads_a_cold_key_while_another_waits_for_its_value_or_takes_over() {
        let server = TestServer::start();
        let client = server.client(|_| {});
        let rt = runtime().unwrap();
        let policy = Policy::of(&client.cfg, Feature::Cache);
        let w = Wrap::new(b"", b"k", 60, 0, 5000);
        let Next::Load(Some(token)) = rt.block_on(w.fill(&client, policy)) else {
            panic!("the first caller takes the loading lock");
        };
        // A second process waits, and gets the value the first one stores.
        let waiting = {
            let (w, client) = (w.clone(), Arc::clone(&client));
            rt.spawn(async move { w.fill(&client, policy).await })
        };
        std::thread::sleep(Duration::from_millis(60));
        rt.block_on(w.store(&client, b"{\"v\":1}", Some(&token)))
            .unwrap();
        assert_eq!(
            rt.block_on(waiting).unwrap(),
            Next::Serve(b"{\"v\":1}".to_vec())
        );
        // A loader that fails releases the lock without a value: a waiter takes over.
        let w2 = Wrap::new(b"", b"k2", 60, 0, 5000);
        let Next::Load(Some(token)) = rt.block_on(w2.fill(&client, policy)) else {
            panic!("the first caller takes the loading lock");
        };
        let waiting = {
            let (w2, client) = (w2.clone(), Arc::clone(&client));
            rt.spawn(async move { w2.fill(&client, policy).await })
        };
        std::thread::sleep(Duration::from_millis(60));
        rt.block_on(w2.unlock(&client, &token)).unwrap();
        assert!(matches!(rt.block_on(waiting).unwrap(), Next::Load(Some(_))));
    }
}
