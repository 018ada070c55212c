//! The counters `stats()` and `metricsText()` report: commands, their outcomes and latency,
//! outages, rate-limit decisions. Atomics only (the JS thread and the runtime both record), each
//! a relaxed add: recording costs a few nanoseconds a command.
//!
//! Latency is measured from the tick a command was made in (one clock read per tick, shared by
//! its commands) to the reply being settled (one clock read per batch of replies), in wrapping
//! microsecond stamps ([`now_us`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

use crate::core::Error;

/// The process's clock origin: times are kept as nanoseconds since it.
static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Microseconds since [`BASE`], wrapping every 71 minutes: a stamp small enough to ride in a
/// job's padding (a larger job costs the hot path measurably). Never 0 ("not stamped").
pub fn now_us() -> u32 {
    (BASE.elapsed().as_micros() as u32).max(1)
}

/// Error codes counted one by one (`Error::code`).
pub const CODES: [&str; 8] = [
    "ERR_CONNECTION",
    "ERR_TIMEOUT",
    "ERR_REPLY",
    "ERR_AUTH",
    "ERR_INVALID_ARGUMENT",
    "ERR_DISABLED",
    "ERR_LOCK_NOT_ACQUIRED",
    "ERR_LOCK_LOST",
];

/// Sub-buckets per power of two of the latency histogram (12.5% wide at most).
const SUB: usize = 8;
/// Powers of two covered, from 1 µs: up to 2^27 µs (about 134 s); longer counts in the last.
const POWERS: usize = 28;
const BUCKETS: usize = SUB * POWERS;

/// A latency histogram in microseconds, log-linear (each power of two cut in 8).
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

/// The bucket of `us` microseconds.
fn bucket(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let power = 63 - us.leading_zeros() as usize; // >= 3
    let sub = ((us >> (power - 3)) & (SUB as u64 - 1)) as usize;
    ((power - 2) * SUB + sub).min(BUCKETS - 1)
}

/// The upper bound (exclusive) of bucket `i`, in microseconds.
fn upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64 + 1;
    }
    let power = i / SUB + 2;
    let sub = (i % SUB) as u64;
    (SUB as u64 + sub + 1) << (power - 3)
}

impl Histogram {
    pub fn record(&self, us: u64) {
        self.record_n(us, 1);
    }

    /// `n` calls that each took `us` microseconds.
    pub fn record_n(&self, us: u64, n: u64) {
        self.counts[bucket(us)].fetch_add(n, Ordering::Relaxed);
        self.sum_us
            .fetch_add(us.saturating_mul(n), Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencySnapshot {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let n: u64 = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed);
        // A bucket's upper bound, but never above the largest latency seen.
        let at = |q: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let want = ((q * n as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return upper(i).min(max_us) as f64 / 1000.0;
                }
            }
            max_us as f64 / 1000.0
        };
        LatencySnapshot {
            count: n,
            sum_ms: self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0,
            p50_ms: at(0.5),
            p90_ms: at(0.9),
            p99_ms: at(0.99),
            max_ms: max_us as f64 / 1000.0,
            buckets: counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| (upper(i), *c))
                .collect(),
        }
    }
}

/// What [`Histogram`] held at one moment (milliseconds; percentiles are bucket upper bounds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencySnapshot {
    pub count: u64,
    pub sum_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// (upper bound in µs, count) of each bucket that counted something, in order.
    pub buckets: Vec<(u64, u64)>,
}

/// One service's counters (shared by its cluster lanes).
#[derive(Default)]
pub struct Stats {
    /// Commands (and batches) sent, or failed before sending (down, disabled).
    pub commands: AtomicU64,
    /// Settled with a reply (an error reply included).
    pub replies: AtomicU64,
    /// Settled with the documented degraded result (`failOpen`, Redis unreachable or disabled).
    pub degraded: AtomicU64,
    errors: [AtomicU64; CODES.len()],
    pub latency: Histogram,
    /// Connections re-established after a loss.
    pub reconnects: AtomicU64,
    /// Outages that ended, and their total length.
    pub outages: AtomicU64,
    pub outage_ms: AtomicU64,
    /// `withLock`/`withSemaphore`: leases acquired, of which after waiting (the acquiring try
    /// was not the first), the total wait, calls that never got one, leases lost while the
    /// callback ran, and callbacks run without a lease (degraded).
    pub locks_acquired: AtomicU64,
    pub locks_waited: AtomicU64,
    pub lock_wait_us: AtomicU64,
    pub locks_failed: AtomicU64,
    pub locks_lost: AtomicU64,
    pub locks_degraded: AtomicU64,
    pub rate_allowed: AtomicU64,
    pub rate_refused: AtomicU64,
    pub rate_degraded: AtomicU64,
}

/// How a settled command ended, for [`Stats::settled`].
pub enum Ending<'a> {
    Reply,
    Degraded,
    Failed(&'a Error),
}

/// The outcomes of one batch of settlements, counted locally and added to the [`Stats`] once
/// when dropped: a few atomic adds per batch rather than per command. The calls of one tick
/// share their birth time, so their latencies are one histogram update.
pub struct Tally<'a> {
    stats: &'a Stats,
    now: u32,
    replies: u64,
    degraded: u64,
    errors: [u64; CODES.len()],
    /// The current run of calls born at the same time: (born, how many).
    run: (u32, u64),
}

impl<'a> Tally<'a> {
    /// Settlements that happen now (`now_us`).
    pub fn new(stats: &'a Stats, now: u32) -> Tally<'a> {
        Tally {
            stats,
            now,
            replies: 0,
            degraded: 0,
            errors: [0; CODES.len()],
            run: (0, 0),
        }
    }

    /// A call made at `born` (`now_us`, or 0: not timed) ended `how`.
    pub fn add(&mut self, born: u32, how: Ending) {
        match how {
            Ending::Reply => self.replies += 1,
            Ending::Degraded => self.degraded += 1,
            Ending::Failed(e) => {
                if let Error::Reply(_) = e {
                    self.replies += 1;
                }
                let code = e.code();
                if let Some(i) = CODES.iter().position(|c| *c == code) {
                    self.errors[i] += 1;
                }
            }
        }
        if born == 0 {
            return;
        }
        if born != self.run.0 {
            self.end_run();
            self.run = (born, 0);
        }
        self.run.1 += 1;
    }

    fn end_run(&mut self) {
        let (born, n) = self.run;
        if n > 0 {
            let us = u64::from(self.now.wrapping_sub(born));
            self.stats.latency.record_n(us, n);
        }
        self.run = (0, 0);
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.end_run();
        let s = self.stats;
        if self.replies > 0 {
            s.replies.fetch_add(self.replies, Ordering::Relaxed);
        }
        if self.degraded > 0 {
            s.degraded.fetch_add(self.degraded, Ordering::Relaxed);
        }
        for (i, n) in self.errors.iter().enumerate() {
            if *n > 0 {
                s.errors[i].fetch_add(*n, Ordering::Relaxed);
            }
        }
    }
}

impl Stats {
    /// One command made at `born` (see [`now_us`]; 0: not timed) ended at `now` (a batch:
    /// [`Tally`]).
    pub fn settled(&self, born: u32, now: u32, how: Ending) {
        Tally::new(self, now).add(born, how);
    }

    /// A rate-limit decision.
    pub fn rate_limit(&self, allowed: bool, degraded: bool) {
        let c = match (degraded, allowed) {
            (true, _) => &self.rate_degraded,
            (false, true) => &self.rate_allowed,
            (false, false) => &self.rate_refused,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A lease was acquired `wait_us` after the call (counted as waited past 1 ms: the first try
    /// goes out within the call's tick).
    pub fn lock_acquired(&self, wait_us: u64) {
        self.locks_acquired.fetch_add(1, Ordering::Relaxed);
        self.lock_wait_us.fetch_add(wait_us, Ordering::Relaxed);
        if wait_us > 1000 {
            self.locks_waited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Errors by code (the codes that occurred).
    pub fn errors(&self) -> Vec<(&'static str, u64)> {
        CODES
            .iter()
            .zip(&self.errors)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub fn latency(&self) -> LatencySnapshot {
        self.latency.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_latency_in_order_within_an_eighth() {
        let mut last = 0;
        for us in (0..100_000u64).chain([1 << 20, 1 << 27, u64::MAX / 2]) {
            let b = bucket(us);
            assert!(b >= last, "bucket order at {us}");
            last = b;
            if b < BUCKETS - 1 {
                assert!(us < upper(b), "{us} below its bucket's bound {}", upper(b));
                if us >= SUB as u64 {
                    assert!(
                        upper(b) as f64 <= us as f64 * 1.125 + 1.0,
                        "{us} -> {}",
                        upper(b)
                    );
                }
            }
        }
    }

    #[test]
    fn percentiles_come_from_the_counts() {
        let s = Stats::default();
        for us in 1..=1000u32 {
            s.settled(1, 1 + us, Ending::Reply);
        }
        // A stamp taken before the clock wrapped.
        s.settled(u32::MAX - 9, 10, Ending::Reply);
        s.settled(0, 0, Ending::Failed(&Error::Timeout("t".into())));
        let l = s.latency();
        assert_eq!(l.count, 1001);
        assert!((0.5..=0.57).contains(&l.p50_ms), "{}", l.p50_ms);
        assert!((0.99..=1.0).contains(&l.p99_ms), "{}", l.p99_ms);
        assert_eq!(l.max_ms, 1.0);
        assert_eq!(s.replies.load(Ordering::Relaxed), 1001);
        assert_eq!(s.errors(), vec![("ERR_TIMEOUT", 1)]);
        assert_eq!(l.buckets.iter().map(|b| b.1).sum::<u64>(), 1001);
    }
}
