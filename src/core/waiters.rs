//! Process-local wake-ups per key: a lock released by this process wakes one of this process's
//! callers waiting for it at once, instead of leaving it to its retry timer. The client holds one
//! (`Client::waiters`); `core::lock` enters, checks and wakes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Process-local wake-ups: a release by this process wakes one local waiter at once instead of
/// leaving it to its retry timer.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<Vec<u8>, WaitEntry>>,
    origin: std::sync::OnceLock<Vec<u8>>,
}

/// One key's wake-up and how many tasks wait on it.
type WaitEntry = (Arc<Notify>, usize);

/// One caller waiting for a key; leaves when dropped.
pub struct Waiting<'a> {
    waiters: &'a Waiters,
    key: Vec<u8>,
    pub notify: Arc<Notify>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waiters.leave(&self.key);
    }
}

impl Waiters {
    /// Starts waiting for `key` (`None` only if the registry's lock was poisoned).
    pub fn enter(&self, key: &[u8]) -> Option<Waiting<'_>> {
        let notify = self.enter_owned(key)?;
        Some(Waiting {
            waiters: self,
            key: key.to_vec(),
            notify,
        })
    }

    /// Starts waiting for `key` without a borrow (for a wait that moves between threads): the
    /// caller calls [`Waiters::leave`] once when it stops.
    pub fn enter_owned(&self, key: &[u8]) -> Option<Arc<Notify>> {
        let mut m = self.map.lock().ok()?;
        let e = m
            .entry(key.to_vec())
            .or_insert_with(|| (Arc::new(Notify::new()), 0));
        e.1 += 1;
        Some(Arc::clone(&e.0))
    }

    /// One caller stops waiting for `key` (see [`Waiters::enter_owned`]).
    pub fn leave(&self, key: &[u8]) {
        if let Ok(mut m) = self.map.lock() {
            if let Some(e) = m.get_mut(key) {
                e.1 -= 1;
                if e.1 == 0 {
                    m.remove(key);
                }
            }
        }
    }

    /// Whether a caller of this process waits for `key`.
    pub fn has(&self, key: &[u8]) -> bool {
        self.map.lock().is_ok_and(|m| m.contains_key(key))
    }

    /// This client's name in release notices (random), so it can ignore its own: a release here
    /// already woke a local waiter.
    pub fn origin(&self) -> &[u8] {
        self.origin
            .get_or_init(|| format!("{:x}", uuid::Uuid::new_v4().as_u64_pair().0).into_bytes())
    }

    /// Wakes one caller of this process waiting for `key`, if any.
    pub fn wake(&self, key: &[u8]) {
        if let Ok(m) = self.map.lock() {
            if let Some((n, _)) = m.get(key) {
                n.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_waited_for_until_its_last_waiter_leaves() {
        let w = Waiters::default();
        assert!(!w.has(b"k"));
        let a = w.enter(b"k");
        let b = w.enter(b"k");
        assert!(w.has(b"k") && !w.has(b"other"));
        drop(a);
        assert!(w.has(b"k"));
        drop(b);
        assert!(!w.has(b"k"));
    }
}
