//! Outages: noticing a lost connection, reconnecting with backoff, and telling the logger once
//! when an outage starts and once when it ends.

use super::*;

impl Client {
    pub(super) fn on_lost(self: &Arc<Self>, gen: u64, reason: &str) {
        if let Some(near) = &self.near {
            // Whichever connection it was: invalidations may be missed from now on.
            near.flush();
        }
        let Ok(mut st) = self.state.write() else {
            return;
        };
        if !matches!(&*st, State::Up { gen: g, .. } if *g == gen) {
            return;
        }
        self.put(&mut st, State::Down { gen });
        drop(st);
        self.emit("lost", Some(reason), None);
        self.start_outage(reason);
        self.spawn_reconnect(gen);
    }

    pub(super) fn spawn_reconnect(self: &Arc<Self>, gen: u64) {
        let Ok(rt) = runtime() else { return };
        let me = Arc::clone(self);
        rt.spawn(async move { me.reconnect_loop(gen).await });
    }

    pub(super) fn still_down(&self, gen: u64) -> bool {
        matches!(
            self.state
                .read()
                .map(|s| matches!(*s, State::Down { gen: g } if g == gen)),
            Ok(true)
        )
    }

    pub(super) async fn reconnect_loop(self: Arc<Self>, gen: u64) {
        let mut delay = self.cfg.reconnect_min_delay_ms.max(1);
        let mut tries: u32 = 0;
        let mut why: Option<String> = None;
        loop {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            if !self.still_down(gen) {
                return;
            }
            let attempt = {
                let _gate = self.gate.lock().await;
                if !self.still_down(gen) {
                    return;
                }
                tries = tries.saturating_add(1);
                self.emit("reconnecting", why.as_deref(), Some(tries));
                let new_gen = self.gen.fetch_add(1, Ordering::SeqCst) + 1;
                match self.open(new_gen).await {
                    Ok(conn) => {
                        if let Ok(mut st) = self.state.write() {
                            self.put(&mut st, State::Up { conn, gen: new_gen });
                        }
                        self.emit("ready", None, None);
                        self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        true
                    }
                    Err(e) => {
                        why = Some(e.to_string());
                        false
                    }
                }
            };
            if attempt {
                self.end_outage();
                return;
            }
            delay = (delay * 2).min(self.cfg.reconnect_max_delay_ms.max(1));
        }
    }

    pub(super) fn start_outage(&self, reason: &str) {
        let Ok(mut o) = self.outage_since.lock() else {
            return;
        };
        if o.is_none() {
            *o = Some(Instant::now());
            self.in_outage.store(true, Ordering::Relaxed);
            drop(o);
            self.sink.log(
                Level::Warn,
                format!(
                    "{} unavailable ({}); reconnecting in the background",
                    self.describe(),
                    crate::core::error::redact(reason, self.secret())
                ),
            );
        }
    }

    pub(super) fn end_outage(&self) {
        let Ok(mut o) = self.outage_since.lock() else {
            return;
        };
        if let Some(since) = o.take() {
            self.in_outage.store(false, Ordering::Relaxed);
            drop(o);
            self.stats.outages.fetch_add(1, Ordering::Relaxed);
            self.stats.outage_ms.fetch_add(
                u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            if let Ok(mut w) = self.degraded_warned.lock() {
                w.clear();
            }
            self.sink.log(
                Level::Info,
                format!(
                    "{} connection restored after {} ms",
                    self.describe(),
                    since.elapsed().as_millis()
                ),
            );
        }
    }

    /// Milliseconds spent without Redis since the service was made: the outages that ended and
    /// the one going on.
    pub fn outage_ms(&self) -> u64 {
        let now = self
            .outage_since
            .lock()
            .ok()
            .and_then(|o| *o)
            .map_or(0, |t| {
                u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
            });
        self.stats
            .outage_ms
            .load(Ordering::Relaxed)
            .saturating_add(now)
    }

    /// `up`, `down` (reconnecting) or `idle` (not connected, or disconnected).
    pub fn state_name(&self) -> &'static str {
        match self.state.read().as_deref() {
            Ok(State::Up { .. }) => "up",
            Ok(State::Down { .. }) => "down",
            _ => "idle",
        }
    }
}
