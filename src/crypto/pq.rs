//! Factorisation of the server's `pq` (the proof of work of the handshake).
//!
//! Trial division takes the tiny factors, a deterministic Miller–Rabin test
//! rejects primes, and Pollard–Brent (Brent's cycle detection, batched gcds)
//! finds the rest. The arithmetic is Montgomery multiplication on u64, so no
//! step divides by `pq` in the inner loop. Everything is deterministic: the
//! polynomial constants come from a fixed list, tried in turn.

/// Splits `pq` into `(p, q)` with `1 < p <= q` and `p * q == pq`.
///
/// Returns `None` when `pq < 4`, when `pq` is prime, or (never observed for
/// products of two primes) when every fixed starting constant fails. The
/// work is bounded for any input, so a hostile `pq` cannot hang the caller.
/// MTProto's `pq` is a product of two primes below 2^32; then `p` and `q`
/// are those primes.
pub fn factorize(pq: u64) -> Option<(u64, u64)> {
    if pq < 4 {
        return None;
    }
    let p = smallest_trial_factor(pq)
        .or_else(|| (!is_prime(pq)).then(|| pollard_brent(pq)).flatten())?;
    let q = pq / p;
    Some((p.min(q), p.max(q)))
}

/// The primes below 100, for trial division and as Miller–Rabin bases.
const SMALL_PRIMES: [u64; 25] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
];

fn smallest_trial_factor(n: u64) -> Option<u64> {
    SMALL_PRIMES
        .iter()
        .copied()
        .find(|&p| n.is_multiple_of(p) && n != p)
}

/// Deterministic Miller–Rabin for every u64: the first twelve prime bases
/// have no common strong pseudoprime below 3.3 * 10^24.
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for &p in &SMALL_PRIMES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'bases: for &a in &SMALL_PRIMES[..12] {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

fn mul_mod(a: u64, b: u64, n: u64) -> u64 {
    (u128::from(a) * u128::from(b) % u128::from(n)) as u64
}

fn pow_mod(mut base: u64, mut exp: u64, n: u64) -> u64 {
    let mut acc = 1u64;
    base %= n;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base, n);
        }
        base = mul_mod(base, base, n);
        exp >>= 1;
    }
    acc
}

/// Montgomery arithmetic modulo an odd `n < 2^64` with R = 2^64.
struct Monty {
    n: u64,
    /// n^-1 mod 2^64.
    inv: u64,
}

impl Monty {
    fn new(n: u64) -> Self {
        debug_assert!(n % 2 == 1);
        // Newton's iteration: each step doubles the correct low bits
        // (n * n ≡ 1 mod 8 gives 3 to start with).
        let mut inv = n;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n.wrapping_mul(inv)));
        }
        Self { n, inv }
    }

    /// a * b / R mod n, for a, b < n. With m = t * n^-1 mod R the low halves
    /// of t and m * n agree, so (t - m * n) / R is t_hi - mn_hi (+ n when
    /// negative): nothing overflows even for n close to 2^64.
    #[inline(always)]
    fn mul(&self, a: u64, b: u64) -> u64 {
        let t = u128::from(a) * u128::from(b);
        let m = (t as u64).wrapping_mul(self.inv);
        let mn = u128::from(m) * u128::from(self.n);
        let (t_hi, mn_hi) = ((t >> 64) as u64, (mn >> 64) as u64);
        if t_hi >= mn_hi {
            t_hi - mn_hi
        } else {
            t_hi.wrapping_sub(mn_hi).wrapping_add(self.n)
        }
    }

    /// x -> x^2 / R + c: a pseudo-random map mod every factor of n (R is
    /// invertible mod each), which is all that Pollard's rho needs.
    #[inline(always)]
    fn step(&self, x: u64, c: u64) -> u64 {
        let y = self.mul(x, x);
        // y, c < n: add without overflow by subtracting first.
        if y >= self.n - c {
            y - (self.n - c)
        } else {
            y + c
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// (c, x0) pairs tried in turn.
const STARTS: [(u64, u64); 12] = [
    (1, 2),
    (3, 5),
    (7, 11),
    (13, 17),
    (19, 23),
    (29, 31),
    (37, 41),
    (43, 47),
    (53, 59),
    (61, 67),
    (71, 73),
    (79, 83),
];

/// Cap on the cycle length explored per start: the expected work for a
/// factor p is about sqrt(p) <= 2^16 steps for the pq MTProto uses.
const MAX_RANGE: u64 = 1 << 22;
/// Differences multiplied together between two gcds.
const BATCH: u64 = 128;

/// A non-trivial factor of the odd composite `n` with no factor below 100.
fn pollard_brent(n: u64) -> Option<u64> {
    let monty = Monty::new(n);
    STARTS
        .iter()
        .find_map(|&(c, x0)| brent(&monty, c % n, x0 % n))
}

fn brent(m: &Monty, c: u64, x0: u64) -> Option<u64> {
    let n = m.n;
    let diff = |a: u64, b: u64| a.abs_diff(b);
    let mut y = x0;
    let mut range = 1u64;
    let (x, mut saved, mut g) = loop {
        if range > MAX_RANGE {
            return None;
        }
        let x = y;
        for _ in 0..range {
            y = m.step(y, c);
        }
        let mut done = 0;
        let (saved, g) = loop {
            let saved = y;
            let mut product = 1u64;
            for _ in 0..BATCH.min(range - done) {
                y = m.step(y, c);
                product = m.mul(product, diff(x, y));
            }
            let g = gcd(product, n);
            done += BATCH;
            if g != 1 || done >= range {
                break (saved, g);
            }
        };
        if g != 1 {
            break (x, saved, g);
        }
        range *= 2;
    };
    if g == n {
        // The batch overshot: replay it one step at a time.
        g = 1;
        for _ in 0..BATCH {
            saved = m.step(saved, c);
            g = gcd(diff(x, saved), n);
            if g != 1 {
                break;
            }
        }
    }
    (g != 1 && g != n).then_some(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::vectors;

    #[test]
    fn auth_key_sample_pq() {
        let v = vectors::auth_key_sample();
        let s = v.section("step 3");
        assert_eq!(
            factorize(s.u64("pq_dec")),
            Some((s.u64("p_dec"), s.u64("q_dec")))
        );
    }

    #[test]
    fn small_and_special_inputs() {
        for n in 0..4 {
            assert_eq!(factorize(n), None);
        }
        assert_eq!(factorize(4), Some((2, 2)));
        assert_eq!(factorize(6), Some((2, 3)));
        assert_eq!(factorize(9), Some((3, 3)));
        assert_eq!(factorize(2 * 1_000_000_007), Some((2, 1_000_000_007)));
        assert_eq!(factorize(1 << 63), Some((2, 1 << 62)));
        for p in [
            5u64,
            97,
            101,
            65_537,
            1_000_000_007,
            4_294_967_291,
            18_446_744_073_709_551_557,
        ] {
            assert_eq!(factorize(p), None, "{p} is prime");
        }
        // Squares of primes and products near 2^64.
        assert_eq!(factorize(101 * 101), Some((101, 101)));
        assert_eq!(
            factorize(4_294_967_291 * 4_294_967_291),
            Some((4_294_967_291, 4_294_967_291))
        );
        assert_eq!(
            factorize(4_294_967_291 * 4_294_967_279),
            Some((4_294_967_279, 4_294_967_291))
        );
        // Carmichael numbers are composite.
        for n in [
            561u64,
            1105,
            1729,
            2465,
            2821,
            6601,
            8911,
            41041,
            825_265,
            321_197_185,
        ] {
            let (p, q) = factorize(n).unwrap();
            assert_eq!(p * q, n);
            assert!(p > 1 && p <= q);
        }
        // Any composite gets a split.
        for n in [u64::MAX, u64::MAX - 2, 999_999_999_999_999_989] {
            if let Some((p, q)) = factorize(n) {
                assert_eq!(p * q, n);
                assert!(p > 1 && p <= q);
            } else {
                assert!(is_prime(n), "{n}");
            }
        }
    }

    #[test]
    fn primality() {
        let primes: Vec<u64> = (0..1000).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes.len(), 168);
        assert_eq!(*primes.last().unwrap(), 997);
        // Strong pseudoprimes to several small bases.
        for n in [
            2047u64,
            1_373_653,
            25_326_001,
            3_215_031_751,
            2_152_302_898_747,
            3_474_749_660_383,
            341_550_071_728_321,
            3_825_123_056_546_413_051,
        ] {
            assert!(!is_prime(n), "{n}");
        }
        assert!(is_prime(18_446_744_073_709_551_557));
    }

    #[test]
    fn montgomery_multiplication_matches_u128() {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for n in [
            3u64,
            0xFFFF_FFFF_FFFF_FFC5,
            0x8000_0000_0000_0001,
            1_000_000_007,
        ] {
            let m = Monty::new(n);
            assert_eq!(n.wrapping_mul(m.inv), 1);
            let r_inv = pow_mod(pow_mod(2, 64, n), n - 2, n);
            for _ in 0..100 {
                s = xorshift(s);
                let a = s % n;
                s = xorshift(s);
                let b = s % n;
                let expected = mul_mod(mul_mod(a, b, n), r_inv, n);
                if is_prime(n) {
                    assert_eq!(m.mul(a, b), expected);
                }
                assert!(m.mul(a, b) < n);
            }
        }
    }

    fn xorshift(mut x: u64) -> u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }

    /// Deterministic pseudo-random primes in [2^30, 2^31).
    fn primes_31_bit(count: usize) -> Vec<u64> {
        let mut s = 0x0123_4567_89AB_CDEFu64;
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            s = xorshift(s);
            let candidate = (1 << 30) | (s & ((1 << 30) - 1)) | 1;
            if is_prime(candidate) {
                out.push(candidate);
            }
        }
        out
    }

    #[test]
    fn products_of_two_31_bit_primes() {
        let primes = primes_31_bit(400);
        for pair in primes.chunks_exact(2) {
            let (a, b) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
            assert_eq!(factorize(a * b), Some((a, b)), "{a} * {b}");
        }
    }

    #[test]
    fn products_of_unbalanced_primes() {
        let big = primes_31_bit(10);
        for (i, &p) in big.iter().enumerate() {
            for small in [101u64, 65_537, 1_000_003] {
                let q = if i % 2 == 0 { p } else { 4_294_967_291 };
                let n = small * q;
                assert_eq!(factorize(n), Some((small.min(q), small.max(q))));
            }
        }
    }
}
