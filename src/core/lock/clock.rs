//! The lease clock: when a held lease is renewed, until when it is known valid, and when it
//! counts as lost. Pure (every instant is given), so each rule has a `cargo test`; `hold` (one
//! lease on the runtime) and the `Keeper` (the fast path's leases) both drive it.

use std::time::{Duration, Instant};

use super::HoldOptions;

/// Shortest renewal interval, in milliseconds.
const MIN_RENEW_MS: u64 = 10;
/// Delay before retrying a renewal that failed on the transport, in milliseconds.
const RENEW_RETRY_MS: u64 = 100;

/// Why a renewal refused by Redis loses the lease.
pub const TAKEN: &str = "another holder took it or it was deleted";

/// One held lease's timing.
#[derive(Clone, Debug)]
pub struct LeaseClock {
    ttl: Duration,
    interval: Duration,
    auto_extend: bool,
    max_hold_ms: Option<u64>,
    stop_renewing: Option<Instant>,
    valid_until: Instant,
    next_renewal: Instant,
}

/// What a lease needs at some instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Nothing until then.
    Wait(Instant),
    /// Renew now; an answer later than this is too late (the lease may have run out).
    Renew(Duration),
    /// The lease is lost, for this reason.
    Lost(String),
}

impl LeaseClock {
    /// A lease whose acquiring request was sent at `sent_at` (valid until `sent_at` + TTL at the
    /// latest), kept as `o` says: renewed about every third of the TTL when `auto_extend`, and
    /// no longer after `max_hold_ms`.
    pub fn new(sent_at: Instant, o: &HoldOptions) -> LeaseClock {
        let ttl = Duration::from_millis(o.ttl_ms);
        let interval = Duration::from_millis((o.ttl_ms / 3).max(MIN_RENEW_MS));
        LeaseClock {
            ttl,
            interval,
            auto_extend: o.auto_extend,
            max_hold_ms: o.max_hold_ms,
            stop_renewing: o.max_hold_ms.map(|m| sent_at + Duration::from_millis(m)),
            valid_until: sent_at + ttl,
            next_renewal: sent_at + interval,
        }
    }

    /// Whether the next renewal is still to be made (else the lease just runs out).
    fn renews(&self) -> bool {
        self.auto_extend
            && self.next_renewal < self.valid_until
            && self.stop_renewing.is_none_or(|s| self.next_renewal < s)
    }

    /// What the lease needs at `now`.
    pub fn tick(&self, now: Instant) -> Tick {
        let renew = self.renews();
        let wake = if renew {
            self.next_renewal
        } else {
            self.valid_until
        };
        if now < wake {
            return Tick::Wait(wake);
        }
        if renew && now < self.valid_until {
            return Tick::Renew(self.valid_until - now);
        }
        Tick::Lost(if !self.auto_extend {
            format!(
                "its TTL ({} ms) ran out before the callback finished",
                self.ttl.as_millis()
            )
        } else if self.stop_renewing.is_some_and(|s| now >= s) {
            format!(
                "it was held longer than maxHoldMs ({} ms) and expired",
                self.max_hold_ms.unwrap_or(0)
            )
        } else {
            "its TTL ran out while Redis could not be reached to renew it".to_string()
        })
    }

    /// A renewal sent at `sent_at` was confirmed.
    pub fn renewed(&mut self, sent_at: Instant) {
        self.valid_until = sent_at + self.ttl;
        self.next_renewal = sent_at + self.interval;
    }

    /// A renewal failed on the transport at `now`: try again shortly (the lease stays valid
    /// until its last confirmed TTL runs out).
    pub fn renew_failed(&mut self, now: Instant) {
        self.next_renewal = now + Duration::from_millis(RENEW_RETRY_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(ttl_ms: u64, auto_extend: bool, max_hold_ms: Option<u64>) -> HoldOptions {
        HoldOptions {
            ttl_ms,
            auto_extend,
            max_hold_ms,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_lease_is_renewed_every_third_of_its_ttl_from_the_last_confirmed_renewal() {
        let t0 = Instant::now();
        let mut c = LeaseClock::new(t0, &opts(300, true, None));
        assert_eq!(c.tick(t0), Tick::Wait(t0 + ms(100)));
        assert_eq!(c.tick(t0 + ms(100)), Tick::Renew(ms(200)));
        c.renewed(t0 + ms(105));
        assert_eq!(c.tick(t0 + ms(110)), Tick::Wait(t0 + ms(205)));
        // A renewal lost on the way is retried soon, while the last TTL still runs.
        c.renew_failed(t0 + ms(210));
        assert_eq!(c.tick(t0 + ms(250)), Tick::Wait(t0 + ms(310)));
        assert_eq!(c.tick(t0 + ms(310)), Tick::Renew(ms(95)));
    }

    #[test]
    fn a_lease_that_cannot_be_renewed_in_time_is_lost_when_its_ttl_runs_out() {
        let t0 = Instant::now();
        let mut c = LeaseClock::new(t0, &opts(300, true, None));
        c.renew_failed(t0 + ms(250));
        c.renew_failed(t0 + ms(290));
        // The next retry would come after the TTL: wait for the TTL, then it is lost.
        assert_eq!(c.tick(t0 + ms(295)), Tick::Wait(t0 + ms(300)));
        assert!(
            matches!(c.tick(t0 + ms(300)), Tick::Lost(w) if w.contains("could not be reached"))
        );
    }

    #[test]
    fn without_auto_extend_the_lease_runs_out_at_its_ttl() {
        let t0 = Instant::now();
        let c = LeaseClock::new(t0, &opts(300, false, None));
        assert_eq!(c.tick(t0 + ms(150)), Tick::Wait(t0 + ms(300)));
        assert!(
            matches!(c.tick(t0 + ms(300)), Tick::Lost(w) if w.contains("TTL (300 ms) ran out"))
        );
    }

    #[test]
    fn renewal_stops_at_max_hold_and_the_lease_then_runs_out() {
        let t0 = Instant::now();
        let mut c = LeaseClock::new(t0, &opts(300, true, Some(250)));
        c.renewed(t0 + ms(100));
        c.renewed(t0 + ms(200));
        // The next renewal (300 ms) would pass maxHoldMs (250 ms): none; the TTL runs out.
        assert_eq!(c.tick(t0 + ms(260)), Tick::Wait(t0 + ms(500)));
        assert!(matches!(c.tick(t0 + ms(500)), Tick::Lost(w) if w.contains("maxHoldMs (250 ms)")));
    }

    #[test]
    fn short_ttls_renew_at_most_every_ten_ms() {
        let t0 = Instant::now();
        let c = LeaseClock::new(t0, &opts(15, true, None));
        assert_eq!(c.tick(t0), Tick::Wait(t0 + ms(10)));
    }
}
