//! The Diffie-Hellman part of auth key creation: the server's prime and
//! generator checks, the range checks, modular exponentiation, the
//! temporary AES key for the DH answers and the final hashes.

use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{NonZero, Odd, U2048};
use rand_core::{CryptoRng, RngCore};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::ige::{ige_decrypt, ige_encrypt};
use super::num::{small_mod, strip_leading_zeros, u2048};
use super::DhError;

/// The 2048-bit safe prime Telegram's servers send as `dh_prime`
/// (big-endian). [`check_dh_params`] accepts it without the primality proof.
pub const TELEGRAM_DH_PRIME: [u8; 256] = [
    0xC7, 0x1C, 0xAE, 0xB9, 0xC6, 0xB1, 0xC9, 0x04, 0x8E, 0x6C, 0x52, 0x2F, 0x70, 0xF1, 0x3F, 0x73,
    0x98, 0x0D, 0x40, 0x23, 0x8E, 0x3E, 0x21, 0xC1, 0x49, 0x34, 0xD0, 0x37, 0x56, 0x3D, 0x93, 0x0F,
    0x48, 0x19, 0x8A, 0x0A, 0xA7, 0xC1, 0x40, 0x58, 0x22, 0x94, 0x93, 0xD2, 0x25, 0x30, 0xF4, 0xDB,
    0xFA, 0x33, 0x6F, 0x6E, 0x0A, 0xC9, 0x25, 0x13, 0x95, 0x43, 0xAE, 0xD4, 0x4C, 0xCE, 0x7C, 0x37,
    0x20, 0xFD, 0x51, 0xF6, 0x94, 0x58, 0x70, 0x5A, 0xC6, 0x8C, 0xD4, 0xFE, 0x6B, 0x6B, 0x13, 0xAB,
    0xDC, 0x97, 0x46, 0x51, 0x29, 0x69, 0x32, 0x84, 0x54, 0xF1, 0x8F, 0xAF, 0x8C, 0x59, 0x5F, 0x64,
    0x24, 0x77, 0xFE, 0x96, 0xBB, 0x2A, 0x94, 0x1D, 0x5B, 0xCD, 0x1D, 0x4A, 0xC8, 0xCC, 0x49, 0x88,
    0x07, 0x08, 0xFA, 0x9B, 0x37, 0x8E, 0x3C, 0x4F, 0x3A, 0x90, 0x60, 0xBE, 0xE6, 0x7C, 0xF9, 0xA4,
    0xA4, 0xA6, 0x95, 0x81, 0x10, 0x51, 0x90, 0x7E, 0x16, 0x27, 0x53, 0xB5, 0x6B, 0x0F, 0x6B, 0x41,
    0x0D, 0xBA, 0x74, 0xD8, 0xA8, 0x4B, 0x2A, 0x14, 0xB3, 0x14, 0x4E, 0x0E, 0xF1, 0x28, 0x47, 0x54,
    0xFD, 0x17, 0xED, 0x95, 0x0D, 0x59, 0x65, 0xB4, 0xB9, 0xDD, 0x46, 0x58, 0x2D, 0xB1, 0x17, 0x8D,
    0x16, 0x9C, 0x6B, 0xC4, 0x65, 0xB0, 0xD6, 0xFF, 0x9C, 0xA3, 0x92, 0x8F, 0xEF, 0x5B, 0x9A, 0xE4,
    0xE4, 0x18, 0xFC, 0x15, 0xE8, 0x3E, 0xBE, 0xA0, 0xF8, 0x7F, 0xA9, 0xFF, 0x5E, 0xED, 0x70, 0x05,
    0x0D, 0xED, 0x28, 0x49, 0xF4, 0x7B, 0xF9, 0x59, 0xD9, 0x56, 0x85, 0x0C, 0xE9, 0x29, 0x85, 0x1F,
    0x0D, 0x81, 0x15, 0xF6, 0x35, 0xB1, 0x05, 0xEE, 0x2E, 0x4E, 0x15, 0xD0, 0x4B, 0x24, 0x54, 0xBF,
    0x6F, 0x4F, 0xAD, 0xF0, 0x34, 0xB1, 0x04, 0x03, 0x11, 0x9C, 0xD8, 0xE3, 0xB9, 0x2F, 0xCC, 0x5B,
];

/// `base^exp mod modulus`, all big-endian, as 256 big-endian bytes.
///
/// Constant-time in `exp` (the secret `a` or `b`): every exponent is
/// processed as a full 2048-bit number. `base` may be any length; one of
/// more than 256 significant bytes is reduced in variable time.
///
/// The modulus must be odd, as every prime that passed [`check_dh_params`]
/// is; for an even modulus the result is all zeros.
///
/// # Panics
///
/// If `exp` has more than 256 significant bytes (exponents are the caller's
/// own 2048-bit secrets).
pub fn modpow(base: &[u8], exp: &[u8], modulus: &[u8; 256]) -> [u8; 256] {
    let exp = u2048(exp).expect("DH exponents are at most 2048 bits");
    let Some(m) = Option::<Odd<U2048>>::from(Odd::new(U2048::from_be_slice(modulus))) else {
        return [0; 256];
    };
    let params = MontyParams::new(m);
    let base = reduce(base, m.as_nz_ref());
    MontyForm::new(&base, params)
        .pow(&exp)
        .retrieve()
        .to_be_bytes()
}

/// `x mod m` for a big-endian `x` of any length.
fn reduce(x: &[u8], m: &NonZero<U2048>) -> U2048 {
    let x = strip_leading_zeros(x);
    let head = x.len() % 256;
    let (first, rest) = if head == 0 && !x.is_empty() {
        x.split_at(256)
    } else {
        x.split_at(head)
    };
    let first = u2048(first).expect("at most 256 bytes by construction");
    let mut r = first.rem(m);
    for chunk in rest.chunks_exact(256) {
        // r * 2^2048 + chunk, reduced; the values here are public.
        r = U2048::rem_wide_vartime((U2048::from_be_slice(chunk), r), m);
    }
    r
}

/// Checks the server's `dh_prime` and `g` as the spec requires.
///
/// `dh_prime` must be exactly 2048 bits (256 bytes, top bit set); `g` one of
/// 2..=7 with the residue condition that makes it generate the subgroup of
/// order (p-1)/2 (g=2: p mod 8 = 7; g=3: p mod 3 = 2; g=4: none; g=5:
/// p mod 5 in {1, 4}; g=6: p mod 24 in {19, 23}; g=7: p mod 7 in {3, 5, 6}).
/// [`TELEGRAM_DH_PRIME`] is known to be a safe prime; any other prime is
/// tested here, which takes a fraction of a second: q = (p-1)/2 gets 64
/// Miller–Rabin rounds (base 2, then bases derived from a hash of q, so a
/// server cannot pick a composite tuned to fixed bases; error at most
/// 4^-64), and p then follows from q by Pocklington's criterion.
pub fn check_dh_params(dh_prime: &[u8], g: u32) -> Result<(), DhError> {
    let p = prime_bytes(dh_prime)?;
    let residue_ok = match g {
        2 => small_mod(p, 8) == 7,
        3 => small_mod(p, 3) == 2,
        4 => true,
        5 => matches!(small_mod(p, 5), 1 | 4),
        6 => matches!(small_mod(p, 24), 19 | 23),
        7 => matches!(small_mod(p, 7), 3 | 5 | 6),
        _ => return Err(DhError::UnsupportedG),
    };
    if !residue_ok {
        return Err(DhError::BadGResidue);
    }
    if *p != TELEGRAM_DH_PRIME && !is_safe_prime(p) {
        return Err(DhError::NotSafePrime);
    }
    Ok(())
}

/// `dh_prime` as exactly 256 bytes with the top bit set.
fn prime_bytes(dh_prime: &[u8]) -> Result<&[u8; 256], DhError> {
    match <&[u8; 256]>::try_from(dh_prime) {
        Ok(p) if p[0] & 0x80 != 0 => Ok(p),
        _ => Err(DhError::BadPrimeSize),
    }
}

/// Checks a DH value (`g_a` from the server, our own `g_b`) against the
/// server's prime: `1 < x < p - 1` and `2^1984 <= x <= p - 2^1984`.
///
/// `g` itself is small (2..=7) and is vetted by [`check_dh_params`]; the
/// 2^1984 bound applies to `g_a` and `g_b`.
pub fn check_g_range(x: &[u8], dh_prime: &[u8]) -> Result<(), DhError> {
    let p = U2048::from_be_slice(prime_bytes(dh_prime)?);
    let x = u2048(x).ok_or(DhError::OutOfRange)?;
    let bound = U2048::ONE.shl_vartime(2048 - 64);
    let p_minus_one = p.wrapping_sub(&U2048::ONE);
    let in_range = x > U2048::ONE && x < p_minus_one && x >= bound && x <= p.wrapping_sub(&bound);
    if in_range {
        Ok(())
    } else {
        Err(DhError::OutOfRange)
    }
}

/// Whether the 2048-bit odd `p` is a safe prime, i.e. `q = (p-1)/2` is prime
/// too.
///
/// 1. Trial division of `p` and `q` by the primes below 2000, and one
///    Miller–Rabin round base 2 on `p`: cheap rejection of most candidates.
/// 2. `q` must pass [`MR_ROUNDS`] Miller–Rabin rounds: base 2, then bases
///    derived from SHA-256 of `q` and the round number. A composite passes
///    one round for at most 1/4 of the bases, so a fixed composite gets
///    through with probability at most 4^-64. Fixed small bases would not
///    do here: the server chooses `p`, and composites that are strong
///    pseudoprimes to every small prime base are known; with bases tied to
///    the number by a hash, forging one takes about 4^64 attempts.
/// 3. Given `q` prime, `p` is then proven prime by Pocklington's criterion:
///    `q > sqrt(p)`, `2^(p-1) = 1 mod p` (implied by step 1) and
///    `gcd(2^2 - 1, p) = 1` (p is not divisible by 3, step 1).
pub(crate) fn is_safe_prime(p: &[u8; 256]) -> bool {
    let p_big = U2048::from_be_slice(p);
    // q must be odd: p = 3 mod 4.
    if p[255] & 3 != 3 {
        return false;
    }
    let q_big = p_big.shr_vartime(1);
    let q = q_big.to_be_bytes();
    for &d in small_odd_primes().iter() {
        if small_mod(p, d) == 0 || small_mod(&q, d) == 0 {
            return false;
        }
    }
    let Some(p_odd) = Option::<Odd<U2048>>::from(Odd::new(p_big)) else {
        return false;
    };
    if !miller_rabin_round(&MontyParams::new_vartime(p_odd), &U2048::from_u8(2)) {
        return false;
    }
    is_probable_prime(&q_big)
}

/// Miller–Rabin rounds on a number that is not known in advance (see
/// [`is_safe_prime`]).
pub(crate) const MR_ROUNDS: usize = 64;

/// Probabilistic primality test for any `n` (small ones by trial division),
/// with [`MR_ROUNDS`] rounds: base 2 and hash-derived bases.
pub(crate) fn is_probable_prime(n: &U2048) -> bool {
    let bytes = n.to_be_bytes();
    if *n < U2048::from_u32(2) {
        return false;
    }
    if bytes[255] & 1 == 0 {
        return *n == U2048::from_u32(2);
    }
    for &d in small_odd_primes().iter() {
        if small_mod(&bytes, d) == 0 {
            return *n == U2048::from_u32(d);
        }
    }
    let Some(odd) = Option::<Odd<U2048>>::from(Odd::new(*n)) else {
        return false;
    };
    let params = MontyParams::new_vartime(odd);
    // n > 2000 here, so n - 3 > 0 and every base is in [2, n - 2].
    let span = NonZero::new(n.wrapping_sub(&U2048::from_u8(3))).expect("n > 2000");
    (0..MR_ROUNDS).all(|round| {
        let base = if round == 0 {
            U2048::from_u8(2)
        } else {
            hashed_base(&bytes, round as u32)
                .rem_vartime(&span)
                .wrapping_add(&U2048::from_u8(2))
        };
        miller_rabin_round(&params, &base)
    })
}

/// 256 bytes from SHA-256(domain ++ n ++ round ++ block), 8 blocks.
fn hashed_base(n: &[u8; 256], round: u32) -> U2048 {
    let mut out = [0u8; 256];
    for (block, chunk) in out.chunks_exact_mut(32).enumerate() {
        let digest = Sha256::new()
            .chain_update(b"MTProto dh_prime Miller-Rabin base")
            .chain_update(n)
            .chain_update(round.to_be_bytes())
            .chain_update([block as u8])
            .finalize();
        chunk.copy_from_slice(&digest);
    }
    U2048::from_be_slice(&out)
}

/// One strong-probable-prime test of the odd modulus of `params` to `base`
/// (2 <= base <= n - 2). Variable time: only public numbers come here.
fn miller_rabin_round(params: &MontyParams<{ U2048::LIMBS }>, base: &U2048) -> bool {
    let n = params.modulus().get();
    let n_minus_one = n.wrapping_sub(&U2048::ONE);
    let s = n_minus_one.trailing_zeros_vartime();
    let d = n_minus_one.shr_vartime(s);
    let one = MontyForm::one(*params);
    let minus_one = one.neg();
    let mut x = MontyForm::new(base, *params).pow_bounded_exp(&d, d.bits_vartime());
    if x == one || x == minus_one {
        return true;
    }
    for _ in 1..s {
        x = x.square();
        if x == minus_one {
            return true;
        }
        if x == one {
            return false;
        }
    }
    false
}

/// The odd primes below 2000.
fn small_odd_primes() -> &'static [u32] {
    static PRIMES: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    PRIMES.get_or_init(|| {
        (3..2000u32)
            .step_by(2)
            .filter(|&n| {
                (3..)
                    .step_by(2)
                    .take_while(|d| d * d <= n)
                    .all(|d| n % d != 0)
            })
            .collect()
    })
}

/// tmp_aes_key and tmp_aes_iv, the AES-256-IGE key of the DH answers:
///
/// ```text
/// tmp_aes_key = SHA1(new_nonce ++ server_nonce) ++ SHA1(server_nonce ++ new_nonce)[0..12]
/// tmp_aes_iv  = SHA1(server_nonce ++ new_nonce)[12..20] ++ SHA1(new_nonce ++ new_nonce) ++ new_nonce[0..4]
/// ```
pub fn tmp_aes_key_iv(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> ([u8; 32], [u8; 32]) {
    let ns = Sha1::new()
        .chain_update(new_nonce)
        .chain_update(server_nonce)
        .finalize();
    let sn = Sha1::new()
        .chain_update(server_nonce)
        .chain_update(new_nonce)
        .finalize();
    let nn = Sha1::new()
        .chain_update(new_nonce)
        .chain_update(new_nonce)
        .finalize();
    let mut key = [0u8; 32];
    key[..20].copy_from_slice(&ns);
    key[20..].copy_from_slice(&sn[..12]);
    let mut iv = [0u8; 32];
    iv[..8].copy_from_slice(&sn[12..]);
    iv[8..28].copy_from_slice(&nn);
    iv[28..].copy_from_slice(&new_nonce[..4]);
    (key, iv)
}

/// new_nonce_hash1/2/3 of dh_gen_ok/retry/fail:
/// `SHA1(new_nonce ++ [number] ++ auth_key_aux_hash (8 bytes, LE))[4..20]`.
pub fn new_nonce_hash(new_nonce: &[u8; 32], auth_key_aux_hash: i64, number: u8) -> [u8; 16] {
    let digest = Sha1::new()
        .chain_update(new_nonce)
        .chain_update([number])
        .chain_update(auth_key_aux_hash.to_le_bytes())
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[4..]);
    out
}

/// The first server salt of a new key: `new_nonce[0..8] XOR server_nonce[0..8]`
/// read as a little-endian i64.
pub fn first_salt(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> i64 {
    let mut salt = [0u8; 8];
    for (i, b) in salt.iter_mut().enumerate() {
        *b = new_nonce[i] ^ server_nonce[i];
    }
    i64::from_le_bytes(salt)
}

/// Padding that brings `SHA1 (20) + plain` to a multiple of 16 (0..=15 bytes).
fn dh_padding_len(plain_len: usize) -> usize {
    (16 - (20 + plain_len) % 16) % 16
}

/// Encrypts a DH answer (server_DH_inner_data on the server,
/// client_DH_inner_data on the client): `SHA1(plain) ++ plain ++ random
/// padding` up to a multiple of 16, with AES-256-IGE under
/// [`tmp_aes_key_iv`].
pub fn encrypt_dh_answer<R: RngCore + CryptoRng + ?Sized>(
    plain: &[u8],
    key: &[u8; 32],
    iv: &[u8; 32],
    rng: &mut R,
) -> Vec<u8> {
    let mut padding = [0u8; 16];
    let padding = &mut padding[..dh_padding_len(plain.len())];
    rng.fill_bytes(padding);
    encrypt_dh_answer_with_padding(plain, key, iv, padding)
}

/// [`encrypt_dh_answer`] with the padding given (known-answer tests).
///
/// # Panics
///
/// If `padding` does not bring `20 + plain.len()` to the next multiple of
/// 16 (0 to 15 bytes): a caller bug, not peer input.
pub fn encrypt_dh_answer_with_padding(
    plain: &[u8],
    key: &[u8; 32],
    iv: &[u8; 32],
    padding: &[u8],
) -> Vec<u8> {
    assert_eq!(
        padding.len(),
        dh_padding_len(plain.len()),
        "DH answer padding must reach the next multiple of 16"
    );
    let mut out = Vec::with_capacity(20 + plain.len() + padding.len());
    out.extend_from_slice(&Sha1::digest(plain));
    out.extend_from_slice(plain);
    out.extend_from_slice(padding);
    ige_encrypt(&mut out, key, iv).expect("padded to a multiple of 16 above");
    out
}

/// Decrypts an encrypted DH answer, returning `SHA1 ++ answer ++ padding`.
/// The caller parses the TL answer to learn its length, then calls
/// [`check_dh_answer_hash`].
///
/// Fails with [`DhError::BadAnswerLength`] unless the length is a non-zero
/// multiple of 16 with room for the hash.
pub fn decrypt_dh_answer(
    encrypted: &[u8],
    key: &[u8; 32],
    iv: &[u8; 32],
) -> Result<Vec<u8>, DhError> {
    if encrypted.len() < 32 || !encrypted.len().is_multiple_of(16) {
        return Err(DhError::BadAnswerLength);
    }
    let mut out = encrypted.to_vec();
    ige_decrypt(&mut out, key, iv).map_err(|_| DhError::BadAnswerLength)?;
    Ok(out)
}

/// Checks the SHA1 in front of a decrypted DH answer whose TL length is
/// `answer_len` and returns the answer.
///
/// The padding after the answer must be shorter than 16 bytes
/// ([`DhError::BadAnswerLength`]); the hash is compared in constant time
/// ([`DhError::AnswerHashMismatch`]).
pub fn check_dh_answer_hash(decrypted: &[u8], answer_len: usize) -> Result<&[u8], DhError> {
    let end = answer_len
        .checked_add(20)
        .filter(|&end| end <= decrypted.len() && decrypted.len() - end < 16)
        .ok_or(DhError::BadAnswerLength)?;
    let answer = &decrypted[20..end];
    if bool::from(Sha1::digest(answer).as_slice().ct_eq(&decrypted[..20])) {
        Ok(answer)
    } else {
        Err(DhError::AnswerHashMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::auth_key::AuthKey;
    use crate::crypto::vectors::{self, hex};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn sample() -> vectors::Vectors {
        vectors::auth_key_sample()
    }

    fn arr<const N: usize>(v: Vec<u8>) -> [u8; N] {
        v.try_into().unwrap()
    }

    /// Strips a TL string header (FE + 3-byte length) from a value that has one.
    fn tl_bytes(v: Vec<u8>) -> Vec<u8> {
        assert_eq!(v[0], 0xFE);
        let len = usize::from(v[1]) | usize::from(v[2]) << 8 | usize::from(v[3]) << 16;
        assert_eq!(v.len(), 4 + len, "no padding expected in these values");
        v[4..].to_vec()
    }

    #[test]
    fn prime_constant_matches_the_sample() {
        let dh_prime = tl_bytes(sample().section("step 6.2").bytes("dh_prime"));
        assert_eq!(dh_prime, TELEGRAM_DH_PRIME);
    }

    #[test]
    fn tmp_aes_key_and_iv() {
        let v = sample();
        let new_nonce = arr(v.section("step 4").bytes("new_nonce"));
        let server_nonce = arr(v.section("step 2").bytes("server_nonce"));
        let (key, iv) = tmp_aes_key_iv(&new_nonce, &server_nonce);
        let step = v.section("step 6.1");
        assert_eq!(key.to_vec(), step.bytes("tmp_aes_key"));
        assert_eq!(iv.to_vec(), step.bytes("tmp_aes_iv"));
    }

    #[test]
    fn server_answer_decrypts_and_checks() {
        let v = sample();
        let step = v.section("step 6.1");
        let key = arr(step.bytes("tmp_aes_key"));
        let iv = arr(step.bytes("tmp_aes_iv"));
        let decrypted = decrypt_dh_answer(&step.bytes("encrypted_answer"), &key, &iv).unwrap();
        assert_eq!(decrypted, step.bytes("answer_with_hash"));
        // The answer's length comes from parsing its TL: 564 bytes here.
        let inner = v.section("step 6.2").bytes("payload");
        assert_eq!(inner.len(), 564);
        assert_eq!(
            check_dh_answer_hash(&decrypted, 564).unwrap(),
            inner.as_slice()
        );
        // The page's `answer` is that plus the 8 bytes of padding.
        assert_eq!(&decrypted[20..], step.bytes("answer").as_slice());
        // Wrong lengths: padding of 16 or more, or past the end.
        assert_eq!(
            check_dh_answer_hash(&decrypted, 548),
            Err(DhError::BadAnswerLength)
        );
        assert_eq!(
            check_dh_answer_hash(&decrypted, 573),
            Err(DhError::BadAnswerLength)
        );
        assert_eq!(
            check_dh_answer_hash(&decrypted, usize::MAX),
            Err(DhError::BadAnswerLength)
        );
        // Within the padding window but the wrong length: hash mismatch.
        assert_eq!(
            check_dh_answer_hash(&decrypted, 560),
            Err(DhError::AnswerHashMismatch)
        );
        let mut tampered = decrypted.clone();
        tampered[100] ^= 1;
        assert_eq!(
            check_dh_answer_hash(&tampered, 564),
            Err(DhError::AnswerHashMismatch)
        );
    }

    #[test]
    fn dh_answer_lengths_are_checked() {
        let key = [1u8; 32];
        let iv = [2u8; 32];
        for len in [0usize, 15, 16, 17, 31, 33, 47] {
            assert_eq!(
                decrypt_dh_answer(&vec![0u8; len], &key, &iv),
                Err(DhError::BadAnswerLength),
                "{len}"
            );
        }
        for len in [0usize, 10, 20] {
            assert!(check_dh_answer_hash(&vec![0u8; len], 0).is_err());
        }
    }

    #[test]
    fn client_dh_inner_data_encryption() {
        let v = sample();
        let step = v.section("step 7.1");
        let key = arr(step.bytes("tmp_aes_key"));
        let iv = arr(step.bytes("tmp_aes_iv"));
        let data = step.bytes("data");
        let encrypted = encrypt_dh_answer_with_padding(&data, &key, &iv, &step.bytes("padding"));
        assert_eq!(encrypted, step.bytes("encrypted_data"));
        // The same bytes as sent in set_client_DH_params, TL prefix stripped.
        assert_eq!(
            encrypted,
            tl_bytes(v.section("step 7.2").bytes("encrypted_data"))
        );
        let decrypted = decrypt_dh_answer(&encrypted, &key, &iv).unwrap();
        assert_eq!(
            check_dh_answer_hash(&decrypted, data.len()).unwrap(),
            data.as_slice()
        );
    }

    #[test]
    fn random_padding_round_trips() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let key = [3u8; 32];
        let iv = [4u8; 32];
        for len in 0..40 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let enc = encrypt_dh_answer(&plain, &key, &iv, &mut rng);
            assert_eq!(enc.len() % 16, 0);
            assert!(enc.len() - 20 - len < 16);
            let dec = decrypt_dh_answer(&enc, &key, &iv).unwrap();
            assert_eq!(check_dh_answer_hash(&dec, len).unwrap(), plain.as_slice());
        }
    }

    #[test]
    #[should_panic(expected = "padding must reach")]
    fn wrong_answer_padding_is_api_misuse() {
        encrypt_dh_answer_with_padding(&[0; 304], &[0; 32], &[0; 32], &[0; 11]);
    }

    #[test]
    fn g_b_and_auth_key() {
        let v = sample();
        let b = v.section("step 7").bytes("b");
        let g_b = modpow(&[3], &b, &TELEGRAM_DH_PRIME);
        assert_eq!(g_b.to_vec(), v.section("step 7").bytes("g_b"));
        let g_a = tl_bytes(v.section("step 6.2").bytes("g_a"));
        let auth_key = modpow(&g_a, &b, &TELEGRAM_DH_PRIME);
        assert_eq!(auth_key.to_vec(), v.section("step 8").bytes("auth_key"));
        check_g_range(&g_a, &TELEGRAM_DH_PRIME).unwrap();
        check_g_range(&g_b, &TELEGRAM_DH_PRIME).unwrap();
    }

    #[test]
    fn new_nonce_hash1_and_first_salt() {
        let v = sample();
        let new_nonce = arr(v.section("step 4").bytes("new_nonce"));
        let server_nonce = arr(v.section("step 2").bytes("server_nonce"));
        let key = AuthKey::from_bytes(arr(v.section("step 8").bytes("auth_key")));
        assert_eq!(
            new_nonce_hash(&new_nonce, key.aux_hash(), 1).to_vec(),
            v.section("step 9").bytes("new_nonce_hash1")
        );
        assert_ne!(
            new_nonce_hash(&new_nonce, key.aux_hash(), 2),
            new_nonce_hash(&new_nonce, key.aux_hash(), 1)
        );
        // Computed independently (Python) from the sample's nonces.
        assert_eq!(first_salt(&new_nonce, &server_nonce), -3585621112631548343);
    }

    #[test]
    fn modpow_edge_cases() {
        let mut m = [0u8; 256];
        m[255] = 101;
        assert_eq!(modpow(&[2], &[10], &m)[255], (1024 % 101) as u8);
        assert_eq!(modpow(&[0, 0, 2], &[0, 10], &m)[255], (1024 % 101) as u8);
        assert_eq!(modpow(&[5], &[], &m)[255], 1);
        // A base wider than the modulus is reduced first.
        let mut wide = vec![0u8; 600];
        wide[0] = 1; // 2^(599*8)
        let expected = {
            // 2^4792 mod 101 by repeated squaring on u32.
            let (mut r, mut b, mut e) = (1u32, 2u32, 4792u32);
            while e > 0 {
                if e & 1 == 1 {
                    r = r * b % 101;
                }
                b = b * b % 101;
                e >>= 1;
            }
            r
        };
        assert_eq!(modpow(&wide, &[1], &m)[255] as u32, expected);
        // Even modulus: documented all-zero result.
        m[255] = 100;
        assert_eq!(modpow(&[3], &[2], &m), [0u8; 256]);
    }

    #[test]
    fn dh_params_of_the_sample_and_residues() {
        check_dh_params(&TELEGRAM_DH_PRIME, 3).unwrap();
        // The sample prime: p mod 8 = 7? p mod 5, 7, 24 decide the others.
        let p = &TELEGRAM_DH_PRIME;
        let expect = |g: u32, ok: bool| {
            let r = check_dh_params(p, g);
            if ok {
                assert_eq!(r, Ok(()), "g={g}");
            } else {
                assert_eq!(r, Err(DhError::BadGResidue), "g={g}");
            }
        };
        expect(2, small_mod(p, 8) == 7);
        expect(4, true);
        expect(5, matches!(small_mod(p, 5), 1 | 4));
        expect(6, matches!(small_mod(p, 24), 19 | 23));
        expect(7, matches!(small_mod(p, 7), 3 | 5 | 6));
        for g in [0u32, 1, 8, 65537, u32::MAX] {
            assert_eq!(check_dh_params(p, g), Err(DhError::UnsupportedG), "g={g}");
        }
    }

    #[test]
    fn residue_conditions_each_way() {
        // 2048-bit numbers with every residue class of each modulus; the
        // residue check runs before the primality proof, so the result says
        // which way it went (a number that passes it is then rejected, or
        // not, on primality: anything but BadGResidue).
        let with_residue = |m: u32, r: u32| -> [u8; 256] {
            let mut p = [0xFFu8; 256];
            p[0] = 0x80;
            while small_mod(&p, m) != r {
                p[255] -= 1;
            }
            p
        };
        // (g, modulus, accepted residues of p)
        type Rule = (u32, u32, &'static [u32]);
        let rules: [Rule; 5] = [
            (2, 8, &[7]),
            (3, 3, &[2]),
            (5, 5, &[1, 4]),
            (6, 24, &[19, 23]),
            (7, 7, &[3, 5, 6]),
        ];
        for (g, m, accepted) in rules {
            for r in 0..m {
                let result = check_dh_params(&with_residue(m, r), g);
                if accepted.contains(&r) {
                    assert_ne!(result, Err(DhError::BadGResidue), "g={g} p mod {m} = {r}");
                } else {
                    assert_eq!(result, Err(DhError::BadGResidue), "g={g} p mod {m} = {r}");
                }
            }
        }
        for r in 0..8 {
            assert_ne!(
                check_dh_params(&with_residue(8, r), 4),
                Err(DhError::BadGResidue)
            );
        }
    }

    #[test]
    fn prime_size_is_checked() {
        let mut short = TELEGRAM_DH_PRIME;
        short[0] &= 0x7F; // 2047 bits
        assert_eq!(check_dh_params(&short, 3), Err(DhError::BadPrimeSize));
        let mut long = vec![1u8];
        long.extend_from_slice(&TELEGRAM_DH_PRIME); // 257 bytes
        assert_eq!(check_dh_params(&long, 3), Err(DhError::BadPrimeSize));
        let mut padded = vec![0u8];
        padded.extend_from_slice(&TELEGRAM_DH_PRIME);
        assert_eq!(check_dh_params(&padded, 3), Err(DhError::BadPrimeSize));
        assert_eq!(
            check_dh_params(&TELEGRAM_DH_PRIME[1..], 3),
            Err(DhError::BadPrimeSize)
        );
        assert_eq!(check_dh_params(&[], 3), Err(DhError::BadPrimeSize));
        assert_eq!(check_g_range(&[2], &short), Err(DhError::BadPrimeSize));
    }

    /// A 2048-bit prime p = 11 mod 12 whose (p-1)/2 is odd, composite and
    /// free of factors below 2000 (so only Miller–Rabin on q rejects it).
    const PRIME_NOT_SAFE: &str = concat!(
        "9FF1CE1A61C344D5133BCC7044B276652E7EF07135F9C7752A20F318C630F96F",
        "933218872E111DAA034EB96F16A326111CA772AE60F9DCD71465270B581B355D",
        "33BCB7E39EA616936C674414986799B199A4FA506D98272EC08B3823D3B2F5AB",
        "C95A31A1BE5FF443B57C918EB08CB2C8DC09BE763D4E6837224024004BA1226C",
        "BCD76FD7DEBE928E3D1F7BBB98C19509DE9B76E9DEDE2C94AC6F72B7A28C416F",
        "74E036E0E90DCBF5061891BF33D8F0F7018A4CC78E31E8D5A9B6F85F2E323CA6",
        "0C3EA17F37A69A74FC979200C0AD764F4D07F8CDC74716B7D5834C7E3833DE5A",
        "C98F2C3F61EF947BC458F9710D6CB081C23B1FE9A0DA58A362D05A0CA9568BFF",
    );

    /// p = 2q + 1 = 11 mod 12 with q prime but p composite, neither with a
    /// factor below 2000 (rejected by the base-2 round on p).
    const COMPOSITE_P: &str = concat!(
        "9B99134A3B614927EA6D6FCD078B7C24328D78DE35DB6ACB790ADB33FD6348A2",
        "202A67198DEB170F23DE3A604EF784BC7FEBCE888F9A5BE686F26CE6DE7A9844",
        "FA36C0528DF303397731E5D1310B257C11B9121159AD6309AFB758AF1CF185E0",
        "8FCE81CB0FFE8559DC20260B000D4937DF3D675489057B899529069C2B4F4C3D",
        "4AFB9EB9B8A70665FC3BF146E98D568E82996AD1A58B1253B0E1384F82F4E71C",
        "18FA8F69AEF1A8E3EB5AAFBF871FF88B6557AC3E55F1AF72F1DE2522D389DB21",
        "DB7C75D196AB6782CE594D4319B995B0AB0B5372339DA15909395C90E89BFB66",
        "AE160E002790DEDF979EE5067D7DCF8A40219F8AE1F85E2B52D79F0CF1668CA7",
    );

    #[test]
    fn non_safe_primes_are_rejected() {
        let p: [u8; 256] = arr(hex(PRIME_NOT_SAFE));
        assert!(is_probable_prime(&U2048::from_be_slice(&p)));
        assert_eq!(check_dh_params(&p, 3), Err(DhError::NotSafePrime));
        let p: [u8; 256] = arr(hex(COMPOSITE_P));
        assert!(is_probable_prime(&U2048::from_be_slice(&p).shr_vartime(1)));
        assert_eq!(check_dh_params(&p, 3), Err(DhError::NotSafePrime));
        // p = 1 mod 4: (p-1)/2 is even.
        let mut p = TELEGRAM_DH_PRIME;
        p[255] ^= 2;
        assert_eq!(small_mod(&p, 4), 1);
        assert!(!is_safe_prime(&p));
        // Off by two from the real prime.
        let mut p = TELEGRAM_DH_PRIME;
        p[255] = p[255].wrapping_add(8);
        assert!(!is_safe_prime(&p));
    }

    #[test]
    fn telegram_prime_passes_the_full_proof() {
        assert!(is_safe_prime(&TELEGRAM_DH_PRIME));
    }

    #[test]
    fn miller_rabin_on_small_numbers() {
        let is_prime = |n: u64| is_probable_prime(&U2048::from_u64(n));
        let naive = |n: u64| {
            n >= 2
                && (2..)
                    .take_while(|d| d * d <= n)
                    .all(|d| !n.is_multiple_of(d))
        };
        for n in 0..3000u64 {
            assert_eq!(is_prime(n), naive(n), "{n}");
        }
        for n in [4_294_967_291u64, 1_000_000_007, 2_305_843_009_213_693_951] {
            assert!(is_prime(n), "{n}");
        }
        // Carmichael numbers, the last with every factor above the trial
        // division bound: 2221 * 4441 * 6661.
        for n in [561u64, 1105, 1729, 41041, 825_265, 65_700_513_721] {
            assert!(!is_prime(n), "{n}");
        }
        // Strong pseudoprimes to base 2 (and more), products of big primes.
        for n in [
            3_215_031_751u64,
            2_152_302_898_747,
            3_825_123_056_546_413_051,
            4_294_967_291 * 4_294_967_279,
        ] {
            assert!(!is_prime(n), "{n}");
        }
        // 2^127 - 1 and 2^521 - 1 are prime, 2^128 + 1 is not.
        assert!(is_probable_prime(
            &U2048::ONE.shl_vartime(127).wrapping_sub(&U2048::ONE)
        ));
        assert!(is_probable_prime(
            &U2048::ONE.shl_vartime(521).wrapping_sub(&U2048::ONE)
        ));
        assert!(!is_probable_prime(
            &U2048::ONE.shl_vartime(128).wrapping_add(&U2048::ONE)
        ));
    }

    #[test]
    fn g_range_boundaries() {
        let p = U2048::from_be_slice(&TELEGRAM_DH_PRIME);
        let bound = U2048::ONE.shl_vartime(1984);
        let be = |x: U2048| x.to_be_bytes();
        let ok = |x: U2048| check_g_range(&be(x), &TELEGRAM_DH_PRIME);
        assert_eq!(ok(bound), Ok(()));
        assert_eq!(ok(p.wrapping_sub(&bound)), Ok(()));
        for bad in [
            U2048::ZERO,
            U2048::ONE,
            U2048::from_u8(2),
            bound.wrapping_sub(&U2048::ONE),
            p.wrapping_sub(&bound).wrapping_add(&U2048::ONE),
            p.wrapping_sub(&U2048::ONE),
            p,
            U2048::MAX,
        ] {
            assert_eq!(ok(bad), Err(DhError::OutOfRange));
        }
        // Longer than 256 significant bytes, and leading zeros accepted.
        let mut long = vec![1u8];
        long.extend_from_slice(&be(bound));
        assert_eq!(
            check_g_range(&long, &TELEGRAM_DH_PRIME),
            Err(DhError::OutOfRange)
        );
        let mut padded = vec![0u8; 10];
        padded.extend_from_slice(&be(bound));
        assert_eq!(check_g_range(&padded, &TELEGRAM_DH_PRIME), Ok(()));
        assert_eq!(
            check_g_range(&[], &TELEGRAM_DH_PRIME),
            Err(DhError::OutOfRange)
        );
    }
}
