//! Cache-aside with stampede protection: the value as JSON text at `cache:<key>` (TTL = ttl +
//! stale window, so "stale" is just "PTTL below the stale window": no clocks compared), and a
//! short lock at `cache-lock:<key>` so one process loads a cold key while the others wait for the
//! value. Also the SCAN + UNLINK sweep used by `invalidatePrefix` and `resetRateLimit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;

use crate::core::{Client, Error};

/// Delay between reads while another process loads the value.
const POLL_MS: u64 = 20;

/// The key holding `key`'s cached value.
pub fn value_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    [prefix, b"cache:", key].concat()
}

/// The key of `key`'s loading lock.
pub fn lock_key(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    [prefix, b"cache-lock:", key].concat()
}

/// The pattern of every cached value whose key starts with `start`.
pub fn prefix_pattern(prefix: &[u8], start: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    crate::core::keys::escape_glob(&mut p, prefix);
    p.extend_from_slice(b"cache:");
    crate::core::keys::escape_glob(&mut p, start);
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
pub enum Fill {
    /// Another process stored it meanwhile: the JSON text.
    Loaded(Vec<u8>),
    /// We hold the loading lock: run the loader, then [`store`].
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
pub async fn wait_or_lock(
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

/// Tries to take the refresh lock of a stale key (one refresher across processes).
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
pub async fn lock_for_refresh(
    client: &Arc<Client>,
    lock: &[u8],
    token: &str,
    lock_ms: u64,
) -> Result<bool, Error> {
    try_lock(client, lock, token, lock_ms).await
}

/// Stores the loaded JSON for `px_ms` milliseconds and releases our lock (if `token`).
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
pub async fn store(
    client: &Arc<Client>,
    value: &[u8],
    json: &[u8],
    px_ms: u64,
    lock: &[u8],
    token: Option<&str>,
) -> Result<(), Error> {
    let mut set = redis::cmd("SET");
    set.arg(value).arg(json).arg("PX").arg(px_ms.max(1));
    client.query(client.handle()?, &set).await?;
    if let Some(t) = token {
        unlock(client, lock, t).await?;
    }
    Ok(())
}

/// Releases our loading lock (compare-and-delete).
///
/// # Errors
/// `Connection`/`Timeout` when Redis is unreachable.
pub async fn unlock(client: &Arc<Client>, lock: &[u8], token: &str) -> Result<(), Error> {
    crate::core::lock::release_key(client, lock, token)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_patterns() {
        assert_eq!(value_key(b"app:", b"user:1"), b"app:cache:user:1");
        assert_eq!(lock_key(b"", b"k"), b"cache-lock:k");
        assert_eq!(
            prefix_pattern(b"a[1]:", b"user:*"),
            b"a\\[1\\]:cache:user:\\**"
        );
    }
}
