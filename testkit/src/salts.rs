//! Server salts of one auth key: the first from the handshake, then a new
//! one every period, derived from the DC seed so runs replay.

use mtsender::tl::types::FutureSalt;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The salt schedule of one key. Times are server unix seconds.
#[derive(Clone, Debug)]
pub(crate) struct Salts {
    seed: [u8; 32],
    key_id: i64,
    first: i64,
    /// Index of the current salt (0 is `first`).
    index: u64,
    current: i64,
    /// When the current salt's period started.
    since: i64,
    /// The previous salt and the time until which it is still accepted.
    previous: Option<(i64, i64)>,
    period: i64,
    grace: i64,
}

impl Salts {
    pub fn new(
        seed: [u8; 32],
        key_id: i64,
        first: i64,
        now: i64,
        period_secs: u64,
        grace_secs: u64,
    ) -> Self {
        let mut seed = seed;
        // Keep the salt stream apart from every other use of the DC seed.
        for (b, m) in seed.iter_mut().zip(b"salts of the fake dc, per key id") {
            *b ^= m;
        }
        Self {
            seed,
            key_id,
            first,
            index: 0,
            current: first,
            since: now,
            previous: None,
            period: i64::try_from(period_secs.max(1)).unwrap_or(i64::MAX / 4),
            grace: i64::try_from(grace_secs).unwrap_or(i64::MAX / 4),
        }
    }

    fn salt_at(&self, index: u64) -> i64 {
        if index == 0 {
            return self.first;
        }
        let mut rng = ChaCha20Rng::from_seed(self.seed);
        rng.set_stream(self.key_id as u64);
        rng.set_word_pos(u128::from(index) * 2);
        // Salt 0 means "no salt yet" to clients.
        match rng.next_u64() as i64 {
            0 => 1,
            s => s,
        }
    }

    /// Moves to the salt of the period containing `now`.
    pub fn refresh(&mut self, now: i64) {
        if now < self.since.saturating_add(self.period) {
            return;
        }
        let n = (now - self.since) / self.period;
        let n_u = n as u64;
        self.index += n_u;
        self.since += n * self.period;
        self.previous = Some((self.salt_at(self.index - 1), self.since + self.grace));
        self.current = self.salt_at(self.index);
    }

    /// The salt to use now.
    pub fn current(&mut self, now: i64) -> i64 {
        self.refresh(now);
        self.current
    }

    /// Whether a client message with `salt` is accepted at `now`: the current
    /// salt, or the previous one during its grace period.
    pub fn accepts(&mut self, salt: i64, now: i64) -> bool {
        self.refresh(now);
        salt == self.current
            || self
                .previous
                .is_some_and(|(p, until)| p == salt && now < until)
    }

    /// Rotates now, without grace for the salt being replaced.
    pub fn force_rotate(&mut self, now: i64) {
        self.refresh(now);
        self.index += 1;
        self.current = self.salt_at(self.index);
        self.previous = None;
    }

    /// `num` salts from the current one on (at least 1, at most 64).
    pub fn future(&mut self, now: i64, num: i32) -> Vec<FutureSalt> {
        self.refresh(now);
        let num = num.clamp(1, 64) as u64;
        (0..num)
            .map(|i| {
                let start = self.since + i as i64 * self.period;
                FutureSalt {
                    valid_since: clamp_i32(start),
                    valid_until: clamp_i32(start + self.period),
                    salt: self.salt_at(self.index + i),
                }
            })
            .collect()
    }
}

fn clamp_i32(x: i64) -> i32 {
    x.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn salts() -> Salts {
        Salts::new([3; 32], 42, 0x1234, 1_000, 3600, 300)
    }

    #[test]
    fn first_salt_then_rotation_with_grace() {
        let mut s = salts();
        assert_eq!(s.current(1_000), 0x1234);
        assert!(s.accepts(0x1234, 4_599));
        assert!(!s.accepts(0, 4_599));
        let second = s.current(4_600);
        assert_ne!(second, 0x1234);
        assert!(s.accepts(second, 4_600));
        // The first salt is still good for the grace period.
        assert!(s.accepts(0x1234, 4_899));
        assert!(!s.accepts(0x1234, 4_900));
        assert!(s.accepts(second, 4_900));
    }

    #[test]
    fn future_salts_match_the_rotation() {
        let mut s = salts();
        let future = s.future(1_000, 3);
        assert_eq!(future.len(), 3);
        assert_eq!(future[0].salt, 0x1234);
        assert_eq!(future[0].valid_since, 1_000);
        assert_eq!(future[0].valid_until, 4_600);
        assert_eq!(future[1].valid_since, 4_600);
        assert_eq!(s.current(4_600 + 3600), future[2].salt);
        assert_eq!(s.future(0, 1000).len(), 64);
        assert_eq!(s.future(0, -5).len(), 1);
    }

    #[test]
    fn big_jumps_keep_the_previous_period_salt() {
        let mut s = salts();
        let future = s.future(1_000, 6);
        assert_eq!(s.current(1_000 + 5 * 3600 + 10), future[5].salt);
        assert!(s.accepts(future[4].salt, 1_000 + 5 * 3600 + 10));
        assert!(!s.accepts(future[3].salt, 1_000 + 5 * 3600 + 10));
    }

    #[test]
    fn forced_rotation_drops_the_old_salt_at_once() {
        let mut s = salts();
        s.force_rotate(1_001);
        assert!(!s.accepts(0x1234, 1_001));
        let c = s.current(1_001);
        assert!(s.accepts(c, 1_002));
    }

    #[test]
    fn deterministic_and_key_dependent() {
        let mut a = salts();
        let mut b = salts();
        let mut c = Salts::new([3; 32], 43, 0x1234, 1_000, 3600, 300);
        assert_eq!(a.future(1_000, 5), b.future(1_000, 5));
        assert_ne!(a.future(1_000, 5)[1..], c.future(1_000, 5)[1..]);
    }
}
