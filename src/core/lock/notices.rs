//! Hand-over across processes: while a caller waits for a lock, its process listens on the
//! lock's channel (one subscription per lock per process, on a subscriber connection of its own
//! opened at the first wait, kept a second after the last wait) and adds itself to the lock's
//! waiting clients; a release that finds another client waiting publishes on the channel, which
//! wakes a waiter of every listening process at once (a release wakes a waiter of its own process
//! directly). A holder that dies publishes nothing: waiters then retry at their `retryDelayMs`,
//! the fallback. No waiter is favoured: the first try to reach the server after a release wins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::{Target, FREE, WAIT_MARK};
use crate::core::pubsub::{Kind, Subscriber};
use crate::core::Client;

/// How much longer than its own wait a waiter's mark lasts, in milliseconds.
const MARK_SLACK_MS: u64 = 1000;

/// One service's listening for lock releases.
#[derive(Default)]
pub struct Notices {
    subscriber: OnceLock<Arc<Subscriber>>,
    /// Channels listened on: how many waiting callers of this process listen on each, and until
    /// when this process has marked the lock as waited for.
    listening: Mutex<HashMap<Vec<u8>, (usize, Instant)>>,
}

/// A caller listening for its lock's releases; stops when dropped.
pub struct Listening {
    notices: Arc<Notices>,
    channel: Vec<u8>,
}

impl Notices {
    /// The service disconnects: drops the listening connection (waiters fall back to their
    /// retry timers until they end).
    pub fn close(&self) {
        if let Ok(mut l) = self.listening.lock() {
            l.clear();
        }
        if let Some(sub) = self.subscriber.get() {
            sub.close();
        }
    }

    /// The service connects again: listening may resume.
    pub fn reopen(&self) {
        if let Some(sub) = self.subscriber.get() {
            sub.reopen();
        }
    }

    fn subscriber(&self, client: &Arc<Client>) -> Arc<Subscriber> {
        let weak: Weak<Client> = Arc::downgrade(client);
        Arc::clone(self.subscriber.get_or_init(|| {
            Subscriber::new(client, move |m| {
                // `<lock key>:free` wakes a waiter of `<lock key>` in this process, unless this
                // client released it (that release already woke one).
                if let (Some(client), Some(key)) = (weak.upgrade(), m.channel.strip_suffix(FREE)) {
                    if m.payload != client.waiters.origin() {
                        client.waiters.wake(key);
                    }
                }
            })
        }))
    }

    /// Listens for releases of `t` until the result drops, and marks `t` as waited for until
    /// `until` (unless this process already marked it that long): a release meanwhile, in any
    /// process, publishes. The first listener of a lock subscribes, and waits for the server to
    /// confirm, so no release after this returns is missed; a failed subscription leaves the
    /// caller to its retry timer, and so does a failed mark (servers before 6.2 have no
    /// `ZADD GT`; an unreachable server fails the next try anyway).
    pub async fn listen(
        self: &Arc<Self>,
        client: &Arc<Client>,
        t: &Target,
        until: Instant,
    ) -> Listening {
        let channel = t.channel().to_vec();
        let until = until + Duration::from_millis(MARK_SLACK_MS);
        let (first, mark) = match self.listening.lock() {
            Ok(mut l) => {
                // A new entry subscribes; one still lingering after its last waiter is reused.
                let first = !l.contains_key(&channel);
                let e = l.entry(channel.clone()).or_insert((0, Instant::now()));
                e.0 += 1;
                let mark = until > e.1;
                if mark {
                    e.1 = until;
                }
                (first, mark)
            }
            Err(_) => (false, true),
        };
        let listening = Listening {
            notices: Arc::clone(self),
            channel,
        };
        if first {
            let _ = self
                .subscriber(client)
                .subscribe(Kind::Channel, listening.channel.clone())
                .await;
        }
        if mark {
            let ms = until.saturating_duration_since(Instant::now()).as_millis() as u64;
            let _ = WAIT_MARK
                .run(client, 1, |c| {
                    c.arg(t.waiting_key()).arg(ms).arg(client.waiters.origin());
                })
                .await;
        }
        listening
    }
}

/// How long a lock's subscription outlives its last waiter, so that a lock waited for again and
/// again (a contended key) does not subscribe and unsubscribe every time.
const LINGER: Duration = Duration::from_secs(1);

impl Drop for Listening {
    fn drop(&mut self) {
        let last = match self.notices.listening.lock() {
            Ok(mut l) => match l.get_mut(&self.channel) {
                Some((n, _)) => {
                    *n = n.saturating_sub(1);
                    *n == 0
                }
                None => false,
            },
            Err(_) => false,
        };
        let (true, Some(sub), Ok(rt)) = (
            last,
            self.notices.subscriber.get().cloned(),
            crate::core::connection::runtime(),
        ) else {
            return;
        };
        let notices = Arc::clone(&self.notices);
        let channel = std::mem::take(&mut self.channel);
        rt.spawn(async move {
            tokio::time::sleep(LINGER).await;
            // Still nobody listening (and so, no mark of ours to keep): stop.
            let idle = match notices.listening.lock() {
                Ok(mut l) => match l.get(&channel) {
                    Some((0, _)) => {
                        l.remove(&channel);
                        true
                    }
                    _ => false,
                },
                Err(_) => false,
            };
            if idle {
                let _ = sub.unsubscribe(Kind::Channel, channel).await;
            }
        });
    }
}
