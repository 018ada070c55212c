//! Call order between `disconnect()` and `connect()`: the last call wins.
//!
//! `disconnect()` first lets the commands in flight finish, so it closes the connection some
//! time after it was called. A `connect()` called in that time found the service still
//! connected, resolved at once, and the close that followed left the service disconnected
//! (reported: `disconnect(); await connect()` with calls in flight). Now each `disconnect()`
//! takes a ticket when it is called; a `connect()` notes the tickets taken before it and waits
//! until those closes are done, then connects. A `disconnect()` called after the `connect()`
//! is not waited for: it is the later call, and it wins.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The closes asked for and not yet done.
#[derive(Default)]
pub struct Closes {
    inner: Mutex<Pending>,
    done: Notify,
}

#[derive(Default)]
struct Pending {
    next: u64,
    open: BTreeSet<u64>,
}

/// One `disconnect()` call, from the call until its close is done (dropped: done, whether the
/// close ran to its end or was abandoned).
pub struct Ticket {
    closes: Arc<Closes>,
    n: u64,
}

/// The closes a `connect()` must wait for: those asked for before it.
#[derive(Clone, Copy, Debug)]
pub struct After(u64);

impl Closes {
    /// A `disconnect()` is called: its ticket (in call order).
    pub fn begin(self: &Arc<Self>) -> Ticket {
        let n = match self.inner.lock() {
            Ok(mut p) => {
                p.next += 1;
                let n = p.next;
                p.open.insert(n);
                n
            }
            Err(_) => 0,
        };
        Ticket {
            closes: Arc::clone(self),
            n,
        }
    }

    /// A `connect()` is called: the closes it comes after.
    pub fn now(&self) -> After {
        After(self.inner.lock().map(|p| p.next).unwrap_or(0))
    }

    /// Whether every close asked for before `after` is done.
    fn settled(&self, after: After) -> bool {
        self.inner
            .lock()
            .map(|p| p.open.first().is_none_or(|&first| first > after.0))
            .unwrap_or(true)
    }

    /// Waits until every close asked for before `after` is done.
    pub async fn wait(&self, after: After) {
        loop {
            // Registered before the check, so a close finishing in between still wakes us.
            let done = self.done.notified();
            if self.settled(after) {
                return;
            }
            done.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut p) = self.closes.inner.lock() {
            p.open.remove(&self.n);
        }
        self.closes.done.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_connect_waits_for_the_closes_called_before_it() {
        rt().block_on(async {
            let closes = Arc::new(Closes::default());
            let first = closes.begin();
            let after = closes.now();
            let waiting = tokio::time::timeout(Duration::from_millis(20), closes.wait(after));
            assert!(
                waiting.await.is_err(),
                "must wait while the earlier close runs"
            );
            drop(first);
            tokio::time::timeout(Duration::from_millis(20), closes.wait(after))
                .await
                .expect("free once it is done");
        });
    }

    #[test]
    fn a_close_called_after_the_connect_is_not_waited_for() {
        rt().block_on(async {
            let closes = Arc::new(Closes::default());
            let after = closes.now();
            let _later = closes.begin();
            tokio::time::timeout(Duration::from_millis(20), closes.wait(after))
                .await
                .expect("the later disconnect wins; the connect does not wait for it");
        });
    }

    #[test]
    fn closes_finishing_out_of_order_are_all_waited_for() {
        rt().block_on(async {
            let closes = Arc::new(Closes::default());
            let a = closes.begin();
            let b = closes.begin();
            let after = closes.now();
            drop(b);
            let waiting = tokio::time::timeout(Duration::from_millis(20), closes.wait(after));
            assert!(waiting.await.is_err(), "the first close still runs");
            drop(a);
            tokio::time::timeout(Duration::from_millis(20), closes.wait(after))
                .await
                .expect("both done");
        });
    }
}
