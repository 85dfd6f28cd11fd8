use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Decides whether a dropped connection is re-established, and when.
///
/// `restart_interval` is called each time a drop is detected: `Some(d)`
/// reconnects after `d`, `None` gives up on that DC (its requests fail and
/// the sender's shutdown output fires). `on_connected` is called when a
/// connection (and its handshake, if any) succeeds, so a backoff can reset.
pub trait ConnectionRestartPolicy: Send + Sync + 'static {
    /// Return `Some(duration)` to restart after that delay, or `None` to not
    /// restart.
    fn restart_interval(&self) -> Option<Duration>;

    /// A connection came up. The default does nothing.
    fn on_connected(&self) {}
}

/// Never restarts (the default): when the connection drops, the sender
/// fails what it holds for that DC and fires its shutdown output.
#[derive(Clone, Copy, Debug, Default)]
pub struct NeverRestart;

impl ConnectionRestartPolicy for NeverRestart {
    fn restart_interval(&self) -> Option<Duration> {
        None
    }
}

/// Restarts a fixed time after each drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedInterval {
    /// From the drop being detected to the next connect attempt.
    pub interval: Duration,
}

impl ConnectionRestartPolicy for FixedInterval {
    fn restart_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }
}

/// Restarts after `base · 2^n` (n = drops since the last successful
/// connection), capped at `max`, plus jitter of up to a quarter (still within
/// `max`); resets when a connection succeeds. Optionally gives up after a
/// number of attempts.
///
/// The jitter comes from a small generator seeded with
/// [`with_seed`](Self::with_seed) (policies never read a global RNG).
#[derive(Debug)]
pub struct ExponentialBackoff {
    base: Duration,
    max: Duration,
    max_attempts: Option<u32>,
    attempt: AtomicU32,
    rng: AtomicU64,
}

impl ExponentialBackoff {
    /// Backoff from `base` up to `max`, forever.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            max_attempts: None,
            attempt: AtomicU32::new(0),
            rng: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// Seeds the jitter.
    pub fn with_seed(self, seed: u64) -> Self {
        self.rng.store(seed | 1, Ordering::Relaxed);
        self
    }

    /// Gives up (returns `None`) after `n` consecutive failed attempts.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Drops since the last successful connection.
    pub fn attempts(&self) -> u32 {
        self.attempt.load(Ordering::Relaxed)
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: enough for jitter, deterministic from the seed.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl ConnectionRestartPolicy for ExponentialBackoff {
    fn restart_interval(&self) -> Option<Duration> {
        let n = self.attempt.fetch_add(1, Ordering::Relaxed);
        if self.max_attempts.is_some_and(|m| n >= m) {
            return None;
        }
        Some(super::retry::backoff(
            self.base,
            n.saturating_add(1),
            self.max,
            self.next_random(),
        ))
    }

    fn on_connected(&self) {
        self.attempt.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_and_fixed() {
        assert_eq!(NeverRestart.restart_interval(), None);
        let f = FixedInterval {
            interval: Duration::from_secs(5),
        };
        assert_eq!(f.restart_interval(), Some(Duration::from_secs(5)));
        assert_eq!(f.restart_interval(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn exponential_ladder_resets_on_connect_and_gives_up() {
        let p = ExponentialBackoff::new(Duration::from_millis(500), Duration::from_secs(8))
            .with_seed(7)
            .with_max_attempts(7);
        let ladder: Vec<Duration> = (0..7).map(|_| p.restart_interval().unwrap()).collect();
        let floors = [500, 1000, 2000, 4000, 8000, 8000, 8000].map(Duration::from_millis);
        for (d, floor) in ladder.iter().zip(floors) {
            assert!(
                *d >= floor && *d <= (floor + floor / 4).min(Duration::from_secs(8)),
                "{d:?} vs {floor:?}"
            );
        }
        assert_eq!(p.restart_interval(), None, "gave up after 7");
        p.on_connected();
        assert_eq!(p.attempts(), 0);
        let d = p.restart_interval().unwrap();
        assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(625));
        // Same seed, same ladder.
        let q = ExponentialBackoff::new(Duration::from_millis(500), Duration::from_secs(8))
            .with_seed(7)
            .with_max_attempts(7);
        let again: Vec<Duration> = (0..7).map(|_| q.restart_interval().unwrap()).collect();
        assert_eq!(ladder, again);
    }
}
