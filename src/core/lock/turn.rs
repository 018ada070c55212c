//! A fast-path caller's wait for its turn on a lock (or semaphore) someone else holds: its tries
//! go out from the JS thread, and between two tries it waits here, on the runtime, until a
//! release by this process wakes it, a notice of a release by another process does (see
//! `notices.rs`), or its jittered retry delay passes, whichever comes first. The same wait as
//! [`super::acquire`]'s, for a caller whose tries are not on the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::lease::jitter;
use super::notices::{Listening, Notices};
use super::Target;
use crate::core::Client;

/// One caller waiting: counted among this process's waiters for the key, and listening for
/// releases elsewhere, until dropped.
pub struct Turn {
    client: Arc<Client>,
    key: Vec<u8>,
    notify: Option<Arc<Notify>>,
    _listening: Option<Listening>,
    deadline: Instant,
    retry_delay_ms: u64,
}

impl Turn {
    /// Starts waiting for `t` until `deadline`: marked as waited for (and listening) before the
    /// caller's next try, so no release slips between the two.
    pub async fn start(
        client: &Arc<Client>,
        t: &Target,
        deadline: Instant,
        retry_delay_ms: u64,
        notices: Option<&Arc<Notices>>,
    ) -> Turn {
        let notify = client.waiters.enter_owned(&t.key);
        let listening = match notices {
            Some(n) => Some(n.listen(client, t, deadline).await),
            None => None,
        };
        Turn {
            client: Arc::clone(client),
            key: t.key.clone(),
            notify,
            _listening: listening,
            deadline,
            retry_delay_ms,
        }
    }

    /// Whether the wait has run out.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }

    /// Waits for a wake-up, a notice, or the retry delay (never past the deadline).
    pub async fn next(&self) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let pause = jitter(self.retry_delay_ms)
            .min(left)
            .max(Duration::from_millis(1));
        match &self.notify {
            Some(n) => {
                tokio::select! {
                    _ = n.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            None => tokio::time::sleep(pause).await,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.notify.is_some() {
            self.client.waiters.leave(&self.key);
        }
    }
}
