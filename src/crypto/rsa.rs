//! RSA as MTProto uses it: server keys and their fingerprints, RSA_PAD (the
//! req_DH_params encryption of MTProto 2.0) and the legacy
//! `SHA1(data) + data + padding` format, both directions.
//!
//! Only 2048-bit moduli exist in MTProto, so the numbers are fixed-size
//! `U2048`. Keys are read from PEM (PKCS#1 and SPKI public keys, PKCS#1 and
//! PKCS#8 private keys) with a small, strict DER reader.

use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{Odd, U2048};
use rand_core::{CryptoRng, RngCore};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::ige::{ige_decrypt, ige_encrypt};
use super::num::{strip_leading_zeros, u2048};
use super::Error;

/// Telegram's production server key (PKCS#1), fingerprint
/// `0xd09d1d85de64fd85`.
pub const TELEGRAM_PRODUCTION_KEY_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEA6LszBcC1LGzyr992NzE0ieY+BSaOW622Aa9Bd4ZHLl+TuFQ4lo4g
5nKaMBwK/BIb9xUfg0Q29/2mgIR6Zr9krM7HjuIcCzFvDtr+L0GQjae9H0pRB2OO
62cECs5HKhT5DZ98K33vmWiLowc621dQuwKWSQKjWf50XYFw42h21P2KXUGyp2y/
+aEyZ+uVgLLQbRA1dEjSDZ2iGRy12Mk5gpYc397aYp438fsJoHIgJ2lgMv5h7WY9
t6N/byY9Nw9p21Og3AoXSL2q/2IJ1WRUhebgAdGVMlV1fkuOQoEzR7EdpqtQD9Cs
5+bfo3Nhmcyvk5ftB0WkJ9z6bNZ7yxrP8wIDAQAB
-----END RSA PUBLIC KEY-----
";

/// Telegram's test-DC server key (PKCS#1), fingerprint `0xb25898df208d2603`.
pub const TELEGRAM_TEST_KEY_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAyMEdY1aR+sCR3ZSJrtztKTKqigvO/vBfqACJLZtS7QMgCGXJ6XIR
yy7mx66W0/sOFa7/1mAZtEoIokDP3ShoqF4fVNb6XeqgQfaUHd8wJpDWHcR2OFwv
plUUI1PLTktZ9uW2WE23b+ixNwJjJGwBDJPQEQFBE+vfmH0JP503wr5INS1poWg/
j25sIWeYPHYeOrFp/eXaqhISP6G+q2IeTaWTXpwZj4LzXq5YOpk4bYEQ6mvRq7D1
aHWfYmlEGepfaYR8Q0YqvvhYtMte3ITnuSJs171+GDqpdKcSwHnd6FudwGO4pcCO
j4WcDuXc2CTHgH8gFTNhp/Y8/SpDOhvn9QIDAQAB
-----END RSA PUBLIC KEY-----
";

/// Largest data RSA_PAD carries (the rest of its 192 bytes is padding).
const RSA_PAD_MAX_DATA: usize = 144;
/// Largest data the legacy format carries: 255 - 20 (SHA1).
const LEGACY_MAX_DATA: usize = 235;
/// RSA_PAD retries before giving up on a pathological modulus (each try
/// fails with probability below 1/2 for a modulus with its top bit set).
const RSA_PAD_MAX_ATTEMPTS: usize = 256;
/// Any PEM longer than this is not an RSA-2048 key.
const MAX_PEM_LEN: usize = 16 * 1024;

/// A 2048-bit RSA public key, with its MTProto fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    n_be: [u8; 256],
    e_be: Vec<u8>,
    e: U2048,
    params: MontyParams<{ U2048::LIMBS }>,
    fingerprint: i64,
}

impl RsaPublicKey {
    /// A key from its modulus and public exponent (big-endian, leading
    /// zeros allowed).
    ///
    /// The modulus must be exactly 2048 bits ([`Error::UnsupportedKeySize`])
    /// and odd; the exponent odd, greater than 1 and below the modulus
    /// ([`Error::InvalidKey`]).
    pub fn new(n_be: &[u8], e_be: &[u8]) -> Result<Self, Error> {
        let n_stripped = strip_leading_zeros(n_be);
        if n_stripped.len() != 256 || n_stripped[0] & 0x80 == 0 {
            return Err(Error::UnsupportedKeySize);
        }
        let mut n_bytes = [0u8; 256];
        n_bytes.copy_from_slice(n_stripped);
        let n: Option<Odd<U2048>> = Odd::new(U2048::from_be_slice(&n_bytes)).into();
        let n = n.ok_or(Error::InvalidKey("even modulus"))?;
        let e_be = strip_leading_zeros(e_be);
        let e = u2048(e_be).ok_or(Error::InvalidKey("exponent wider than the modulus"))?;
        if e_be.last().is_none_or(|b| b & 1 == 0) || e == U2048::ONE {
            return Err(Error::InvalidKey("exponent must be odd and greater than 1"));
        }
        if &e >= n.as_ref() {
            return Err(Error::InvalidKey("exponent not below the modulus"));
        }
        let fingerprint = fingerprint_of(&n_bytes, e_be);
        Ok(Self {
            n_be: n_bytes,
            e_be: e_be.to_vec(),
            e,
            params: MontyParams::new_vartime(n),
            fingerprint,
        })
    }

    /// Reads a PEM public key, PKCS#1 (`BEGIN RSA PUBLIC KEY`) or SPKI
    /// (`BEGIN PUBLIC KEY`, rsaEncryption).
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let (label, der) = pem_decode(pem)?;
        let (n, e) = match label {
            "RSA PUBLIC KEY" => parse_pkcs1_public(&der)?,
            "PUBLIC KEY" => parse_spki(&der)?,
            _ => return Err(Error::Pem("not a public key label")),
        };
        Self::new(n, e)
    }

    /// The key as a PKCS#1 PEM (`BEGIN RSA PUBLIC KEY`, 64-column lines).
    pub fn to_pkcs1_pem(&self) -> String {
        let mut body = Vec::with_capacity(270);
        der_integer(&mut body, &self.n_be);
        der_integer(&mut body, &self.e_be);
        let mut der = Vec::with_capacity(body.len() + 4);
        der_header(&mut der, TAG_SEQUENCE, body.len());
        der.extend_from_slice(&body);
        pem_encode("RSA PUBLIC KEY", &der)
    }

    /// The modulus, big-endian.
    pub fn n_be(&self) -> &[u8; 256] {
        &self.n_be
    }

    /// The public exponent, big-endian without leading zeros.
    pub fn e_be(&self) -> &[u8] {
        &self.e_be
    }

    /// The MTProto fingerprint: the lower 64 bits of SHA1 of the bare TL
    /// `rsa_public_key n:string e:string`, i.e. SHA1[12..20] as a
    /// little-endian i64 (as it appears in resPQ's fingerprint vector).
    pub fn fingerprint(&self) -> i64 {
        self.fingerprint
    }

    /// `m^e mod n` for a 256-byte big-endian `m < n`.
    fn public_op(&self, m: &[u8; 256]) -> [u8; 256] {
        let m = U2048::from_be_slice(m);
        MontyForm::new(&m, self.params)
            .pow_bounded_exp(&self.e, self.e.bits_vartime())
            .retrieve()
            .to_be_bytes()
    }
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RsaPublicKey {{ fingerprint: {:#018x} }}",
            self.fingerprint as u64
        )
    }
}

/// SHA1 of the TL serialisation of `rsa_public_key n:string e:string`.
fn fingerprint_of(n: &[u8], e: &[u8]) -> i64 {
    let mut hasher = Sha1::new();
    tl_string_hash(&mut hasher, n);
    tl_string_hash(&mut hasher, e);
    let digest = hasher.finalize();
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[12..20]);
    i64::from_le_bytes(low)
}

/// Feeds a TL `string` (length prefix, bytes, zero padding to 4) to `hasher`.
fn tl_string_hash(hasher: &mut Sha1, bytes: &[u8]) {
    let header_len = if bytes.len() < 254 {
        hasher.update([bytes.len() as u8]);
        1
    } else {
        let len = (bytes.len() as u32).to_le_bytes();
        hasher.update([0xFE, len[0], len[1], len[2]]);
        4
    };
    let padding = (4 - (header_len + bytes.len()) % 4) % 4;
    hasher.update(bytes);
    hasher.update(&[0u8; 3][..padding]);
}

/// An RSA private key (the server side of the handshake, for test DCs).
#[derive(Clone)]
pub struct RsaPrivateKey {
    public: RsaPublicKey,
    d: U2048,
}

impl RsaPrivateKey {
    /// Reads a PEM private key, PKCS#1 (`BEGIN RSA PRIVATE KEY`) or
    /// unencrypted PKCS#8 (`BEGIN PRIVATE KEY`, rsaEncryption).
    ///
    /// Checks that the modulus is 2048 bits, that `p * q = n` and that the
    /// private exponent is below the modulus.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let (label, der) = pem_decode(pem)?;
        let parts = match label {
            "RSA PRIVATE KEY" => parse_pkcs1_private(&der)?,
            "PRIVATE KEY" => parse_pkcs8(&der)?,
            _ => return Err(Error::Pem("not a private key label")),
        };
        let public = RsaPublicKey::new(parts.n, parts.e)?;
        let n = U2048::from_be_slice(&public.n_be);
        let d = u2048(parts.d).ok_or(Error::InvalidKey("private exponent too wide"))?;
        if d >= n || d == U2048::ZERO {
            return Err(Error::InvalidKey("private exponent out of range"));
        }
        let p = u2048(parts.p).ok_or(Error::InvalidKey("prime too wide"))?;
        let q = u2048(parts.q).ok_or(Error::InvalidKey("prime too wide"))?;
        let (low, high) = p.split_mul(&q);
        if low != n || high != U2048::ZERO {
            return Err(Error::InvalidKey("p * q is not the modulus"));
        }
        Ok(Self { public, d })
    }

    /// The public half.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// `c^d mod n`, constant-time in `d`. Rejects `c >= n`.
    fn private_op(&self, encrypted: &[u8]) -> Result<[u8; 256], Error> {
        let c = u2048(encrypted).ok_or(Error::BadCiphertext)?;
        if &c >= self.public.params.modulus().as_ref() {
            return Err(Error::BadCiphertext);
        }
        Ok(MontyForm::new(&c, self.public.params)
            .pow(&self.d)
            .retrieve()
            .to_be_bytes())
    }

    /// Undoes [`rsa_pad_encrypt`]: returns the 192-byte `data_with_padding`
    /// (the caller parses the TL inside to learn its length).
    ///
    /// Errors: [`Error::BadCiphertext`] when the value is wider than 256
    /// bytes or not below the modulus, [`Error::HashMismatch`] when the
    /// SHA256 inside does not match (checked in constant time).
    pub fn rsa_pad_decrypt(&self, encrypted: &[u8]) -> Result<[u8; 192], Error> {
        let m = self.private_op(encrypted)?;
        let (temp_key_xor, aes_encrypted) = m.split_at(32);
        let aes_hash = Sha256::digest(aes_encrypted);
        let mut temp_key = [0u8; 32];
        for (i, k) in temp_key.iter_mut().enumerate() {
            *k = temp_key_xor[i] ^ aes_hash[i];
        }
        let mut data_with_hash = [0u8; 224];
        data_with_hash.copy_from_slice(aes_encrypted);
        ige_decrypt(&mut data_with_hash, &temp_key, &[0; 32])
            .expect("224 bytes are 14 whole blocks");
        let mut data_with_padding = [0u8; 192];
        data_with_padding.copy_from_slice(&data_with_hash[..192]);
        data_with_padding.reverse();
        let expected = Sha256::new()
            .chain_update(temp_key)
            .chain_update(data_with_padding)
            .finalize();
        if bool::from(expected.as_slice().ct_eq(&data_with_hash[192..])) {
            Ok(data_with_padding)
        } else {
            Err(Error::HashMismatch)
        }
    }

    /// Undoes the legacy encryption: returns the 255 bytes
    /// `SHA1(data) ++ data ++ padding`; check them with [`legacy_check`]
    /// once the TL inside gave the data length.
    ///
    /// Errors: [`Error::BadCiphertext`] as for [`Self::rsa_pad_decrypt`],
    /// [`Error::BadPlaintext`] when the decrypted value does not fit in 255
    /// bytes.
    pub fn legacy_decrypt(&self, encrypted: &[u8]) -> Result<[u8; 255], Error> {
        let m = self.private_op(encrypted)?;
        if m[0] != 0 {
            return Err(Error::BadPlaintext);
        }
        let mut out = [0u8; 255];
        out.copy_from_slice(&m[1..]);
        Ok(out)
    }
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RsaPrivateKey {{ fingerprint: {:#018x}, .. }}",
            self.public.fingerprint as u64
        )
    }
}

/// RSA_PAD encryption of `data` (at most 144 bytes, else
/// [`Error::DataTooLong`]), as sent in req_DH_params.
///
/// Draws 224 random bytes once (192 - len for the padding, 32 for
/// temp_key) and then follows [`rsa_pad_encrypt_with_random`], including its
/// increment-temp_key rule when the value is not below the modulus.
pub fn rsa_pad_encrypt<R: RngCore + CryptoRng + ?Sized>(
    key: &RsaPublicKey,
    data: &[u8],
    rng: &mut R,
) -> Result<[u8; 256], Error> {
    if data.len() > RSA_PAD_MAX_DATA {
        return Err(Error::DataTooLong);
    }
    let mut random = [0u8; 224];
    rng.fill_bytes(&mut random);
    rsa_pad_encrypt_with_random(key, data, &random)
}

/// RSA_PAD with the randomness given:
///
/// ```text
/// data_with_padding = data ++ random[..192 - len]
/// temp_key = random[192..224]
/// data_with_hash = reverse(data_with_padding) ++ SHA256(temp_key ++ data_with_padding)
/// aes_encrypted = AES256-IGE(data_with_hash, temp_key, iv = 0)
/// key_aes_encrypted = (temp_key XOR SHA256(aes_encrypted)) ++ aes_encrypted
/// while key_aes_encrypted >= n: temp_key += 1 (big-endian), redo
/// encrypted = key_aes_encrypted^e mod n
/// ```
///
/// Errors: [`Error::DataTooLong`] for more than 144 bytes of data;
/// [`Error::InvalidKey`] if 256 successive temp_keys all land at or above
/// the modulus (for a 2048-bit modulus each does so with probability at
/// most 1/2, so this means a broken key, not bad luck).
pub fn rsa_pad_encrypt_with_random(
    key: &RsaPublicKey,
    data: &[u8],
    random: &[u8; 224],
) -> Result<[u8; 256], Error> {
    if data.len() > RSA_PAD_MAX_DATA {
        return Err(Error::DataTooLong);
    }
    let mut data_with_padding = [0u8; 192];
    data_with_padding[..data.len()].copy_from_slice(data);
    data_with_padding[data.len()..].copy_from_slice(&random[..192 - data.len()]);
    let mut temp_key = [0u8; 32];
    temp_key.copy_from_slice(&random[192..]);
    for _ in 0..RSA_PAD_MAX_ATTEMPTS {
        let mut block = [0u8; 256];
        let (temp_key_xor, aes_encrypted) = block.split_at_mut(32);
        aes_encrypted[..192].copy_from_slice(&data_with_padding);
        aes_encrypted[..192].reverse();
        let hash = Sha256::new()
            .chain_update(temp_key)
            .chain_update(data_with_padding)
            .finalize();
        aes_encrypted[192..].copy_from_slice(&hash);
        ige_encrypt(aes_encrypted, &temp_key, &[0; 32]).expect("224 bytes are 14 whole blocks");
        let aes_hash = Sha256::digest(&*aes_encrypted);
        for (i, x) in temp_key_xor.iter_mut().enumerate() {
            *x = temp_key[i] ^ aes_hash[i];
        }
        // Big-endian byte strings of equal length compare like the numbers.
        if block < key.n_be {
            return Ok(key.public_op(&block));
        }
        increment_be(&mut temp_key);
    }
    Err(Error::InvalidKey(
        "RSA_PAD found no value below the modulus",
    ))
}

fn increment_be(bytes: &mut [u8]) {
    for b in bytes.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            break;
        }
    }
}

/// The legacy (pre-RSA_PAD) encryption used by older clients:
/// `(0 ++ SHA1(data) ++ data ++ random padding)^e mod n`, with at most 235
/// bytes of data ([`Error::DataTooLong`]). Draws the padding from `rng`.
pub fn rsa_legacy_encrypt<R: RngCore + CryptoRng + ?Sized>(
    key: &RsaPublicKey,
    data: &[u8],
    rng: &mut R,
) -> Result<[u8; 256], Error> {
    let mut random = [0u8; LEGACY_MAX_DATA];
    rng.fill_bytes(&mut random);
    rsa_legacy_encrypt_with_random(key, data, &random)
}

/// [`rsa_legacy_encrypt`] with the padding given: the first
/// `235 - data.len()` bytes of `random` are used.
pub fn rsa_legacy_encrypt_with_random(
    key: &RsaPublicKey,
    data: &[u8],
    random: &[u8; LEGACY_MAX_DATA],
) -> Result<[u8; 256], Error> {
    if data.len() > LEGACY_MAX_DATA {
        return Err(Error::DataTooLong);
    }
    let mut block = [0u8; 256];
    block[1..21].copy_from_slice(&Sha1::digest(data));
    block[21..21 + data.len()].copy_from_slice(data);
    block[21 + data.len()..].copy_from_slice(&random[..LEGACY_MAX_DATA - data.len()]);
    // The leading zero byte keeps the value below any 2048-bit modulus.
    Ok(key.public_op(&block))
}

/// Checks a [`RsaPrivateKey::legacy_decrypt`] result whose TL data is
/// `data_len` bytes long and returns the data.
///
/// Errors: [`Error::BadPlaintext`] if `data_len > 235`,
/// [`Error::HashMismatch`] if the SHA1 does not match (constant time).
pub fn legacy_check(decrypted: &[u8; 255], data_len: usize) -> Result<&[u8], Error> {
    if data_len > LEGACY_MAX_DATA {
        return Err(Error::BadPlaintext);
    }
    let data = &decrypted[20..20 + data_len];
    if bool::from(Sha1::digest(data).as_slice().ct_eq(&decrypted[..20])) {
        Ok(data)
    } else {
        Err(Error::HashMismatch)
    }
}

// ---------------------------------------------------------------------------
// PEM and base64

fn pem_decode(pem: &str) -> Result<(&str, Vec<u8>), Error> {
    if pem.len() > MAX_PEM_LEN {
        return Err(Error::Pem("too long"));
    }
    let pem = pem.trim();
    let rest = pem
        .strip_prefix("-----BEGIN ")
        .ok_or(Error::Pem("missing BEGIN line"))?;
    let (label, rest) = rest
        .split_once("-----")
        .ok_or(Error::Pem("unterminated BEGIN line"))?;
    if label.is_empty() || label.contains(['\n', '\r', '-']) {
        return Err(Error::Pem("bad label"));
    }
    let (body, end) = rest
        .rsplit_once("-----END ")
        .ok_or(Error::Pem("missing END line"))?;
    if end.strip_suffix("-----") != Some(label) {
        return Err(Error::Pem("END label does not match BEGIN"));
    }
    let b64: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    Ok((label, base64_decode(&b64)?))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Strict standard base64: padded to a multiple of 4, `=` only at the end,
/// unused bits zero.
fn base64_decode(input: &[u8]) -> Result<Vec<u8>, Error> {
    if !input.len().is_multiple_of(4) {
        return Err(Error::Pem("base64 length is not a multiple of 4"));
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let quads = input.len() / 4;
    for (i, quad) in input.chunks_exact(4).enumerate() {
        let last = i + 1 == quads;
        let pad = if last {
            quad.iter().rev().take_while(|&&c| c == b'=').count()
        } else {
            0
        };
        if pad > 2 {
            return Err(Error::Pem("bad base64 padding"));
        }
        let mut acc = 0u32;
        for &c in &quad[..4 - pad] {
            acc = acc << 6 | b64_value(c).ok_or(Error::Pem("bad base64 character"))?;
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        let keep = 3 - pad;
        if bytes[1 + keep..].iter().any(|&b| b != 0) {
            return Err(Error::Pem("non-canonical base64"));
        }
        out.extend_from_slice(&bytes[1..1 + keep]);
    }
    Ok(out)
}

fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let mut b = [0u8; 3];
        b[..chunk.len()].copy_from_slice(chunk);
        let acc = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(acc >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// DER

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
/// 1.2.840.113549.1.1.1, encoded.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

/// A cursor over DER bytes: definite lengths only, minimal encodings only,
/// every length checked against the bytes present.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.rest.len() {
            return Err(Error::Der("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The contents of the next element, which must have tag `tag`.
    fn read(&mut self, tag: u8) -> Result<&'a [u8], Error> {
        let header = self.take(2)?;
        if header[0] != tag {
            return Err(Error::Der("unexpected tag"));
        }
        let len = match header[1] {
            short @ 0..=0x7F => usize::from(short),
            0x80 => return Err(Error::Der("indefinite length")),
            long => {
                let count = usize::from(long & 0x7F);
                if count > 3 {
                    return Err(Error::Der("length too large"));
                }
                let bytes = self.take(count)?;
                if bytes[0] == 0 {
                    return Err(Error::Der("non-minimal length"));
                }
                let len = bytes
                    .iter()
                    .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
                if len < 0x80 {
                    return Err(Error::Der("non-minimal length"));
                }
                len
            }
        };
        self.take(len)
    }

    fn sequence(&mut self) -> Result<Der<'a>, Error> {
        self.read(TAG_SEQUENCE).map(Der::new)
    }

    /// A non-negative INTEGER's magnitude, big-endian without leading zeros.
    fn unsigned(&mut self) -> Result<&'a [u8], Error> {
        let bytes = self.read(TAG_INTEGER)?;
        match bytes {
            [] => Err(Error::Der("empty integer")),
            [first, ..] if first & 0x80 != 0 => Err(Error::Der("negative integer")),
            [0, second, ..] if second & 0x80 == 0 => Err(Error::Der("non-minimal integer")),
            [0, rest @ ..] => Ok(rest),
            _ => Ok(bytes),
        }
    }

    fn version_zero(&mut self) -> Result<(), Error> {
        if self.unsigned()?.is_empty() {
            Ok(())
        } else {
            Err(Error::Der("unsupported version"))
        }
    }

    /// SEQUENCE { OID rsaEncryption, NULL }.
    fn rsa_algorithm(&mut self) -> Result<(), Error> {
        let mut alg = self.sequence()?;
        if alg.read(TAG_OID)? != OID_RSA_ENCRYPTION {
            return Err(Error::Der("not an rsaEncryption key"));
        }
        if !alg.read(TAG_NULL)?.is_empty() {
            return Err(Error::Der("bad NULL"));
        }
        alg.finish()
    }

    fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Der("trailing bytes"))
        }
    }
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
fn parse_pkcs1_public(der: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let mut outer = Der::new(der);
    let mut seq = outer.sequence()?;
    outer.finish()?;
    let n = seq.unsigned()?;
    let e = seq.unsigned()?;
    seq.finish()?;
    Ok((n, e))
}

/// SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }
fn parse_spki(der: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let mut outer = Der::new(der);
    let mut seq = outer.sequence()?;
    outer.finish()?;
    seq.rsa_algorithm()?;
    let bits = seq.read(TAG_BIT_STRING)?;
    seq.finish()?;
    match bits {
        [0, key @ ..] => parse_pkcs1_public(key),
        _ => Err(Error::Der("bit string with unused bits")),
    }
}

struct PrivateParts<'a> {
    n: &'a [u8],
    e: &'a [u8],
    d: &'a [u8],
    p: &'a [u8],
    q: &'a [u8],
}

/// RSAPrivateKey ::= SEQUENCE { version 0, n, e, d, p, q, dp, dq, qinv }
fn parse_pkcs1_private(der: &[u8]) -> Result<PrivateParts<'_>, Error> {
    let mut outer = Der::new(der);
    let mut seq = outer.sequence()?;
    outer.finish()?;
    seq.version_zero()?;
    let parts = PrivateParts {
        n: seq.unsigned()?,
        e: seq.unsigned()?,
        d: seq.unsigned()?,
        p: seq.unsigned()?,
        q: seq.unsigned()?,
    };
    for _ in 0..3 {
        seq.unsigned()?; // dp, dq, qinv: not used (no CRT)
    }
    seq.finish()?;
    Ok(parts)
}

/// PrivateKeyInfo ::= SEQUENCE { version 0, AlgorithmIdentifier, OCTET STRING }
/// (no attributes).
fn parse_pkcs8(der: &[u8]) -> Result<PrivateParts<'_>, Error> {
    let mut outer = Der::new(der);
    let mut seq = outer.sequence()?;
    outer.finish()?;
    seq.version_zero()?;
    seq.rsa_algorithm()?;
    let key = seq.read(TAG_OCTET_STRING)?;
    seq.finish()?;
    parse_pkcs1_private(key)
}

fn der_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

fn der_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let magnitude = strip_leading_zeros(magnitude);
    let pad = magnitude.first().is_none_or(|b| b & 0x80 != 0);
    der_header(out, TAG_INTEGER, magnitude.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(magnitude);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::vectors::{
        self, dec_to_be, TEST_PRIVATE_PEM, TEST_PUBLIC_PEM, TEST_SPKI_PEM,
    };
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use rand_core::RngCore;
    use std::sync::OnceLock;

    fn test_private() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::from_pem(TEST_PRIVATE_PEM).unwrap())
    }

    fn test_public() -> RsaPublicKey {
        RsaPublicKey::from_pem(TEST_PUBLIC_PEM).unwrap()
    }

    /// The same private key as tests/vectors/test_rsa_2048.pem, converted to
    /// PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`.
    const TEST_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC2XTnk8pe4RdHu
oLGXz4ecscOqIKOpE7kxA+6DXASY5O1/E7q4KBYtG7oVOERoFx/uHsoDXolFrn3s
Kwe1ttumEiZjrO8afys17x+40F4ZcS5Adv/k/W0+szldq/GVZk5v3rNTGBn+oid9
BIDWiK2napRWxUGrIK+gI95qooNC5EfXkP9Y6+EtB9cQe7fzQiLYFOHyVB6kDIRC
OkSTQm2I/ii2FOKRNHonWfOdD8lj/ucSn4wUveVRoiVWey9Rfm7geqPcB9xUAeEf
YcGcnn/w/cwOwrGIdGblx/Lm1LcvO5fMPQzrUQmEZtvDHQQlJJ970R64WfDbc1ri
ZO7YL/N7AgMBAAECggEABmPo6fFoSKBFtXdzEa9HgMGn6he/tGaJCEMrgfXhAVyQ
R/IwilB5SnZcxG6W0xDwYP86M/kFlWgCaJqvZ/oy4zRinP6L2GFZacfp1CeVDI4v
QToKSINq5xYPrg0e543QtNHYddJz4rza5mIYg6wBbcrpzMqXvP/lt5ZaLmFoeRkI
aNHiK/BtDIZv/ycGPiEQug5UdGXo7Q6BdHyuv9tRXfqk+pBAs5iSGKewibWR2QMX
dagOKMwGxyW6IJMrRlJt/s96KvSBpUmlJ/pCFqM4zjZKTpy8G9+ftkqBgBkk/efB
oT9fCYS2rzoXzrk+Rt7JEesgnam7kF5MKrh1CUK+EQKBgQD84FHaooY2NSPYcxsg
uXlVL5A7txCefoDwwIWMRbO+j/B2TSzM66EX6KAWBPH9YuViNyFFkI7wyiCK8JyS
RxT2dBlM80dIllwqg0hnPVlUwQqZHMnCnSYfm+nzGKllcEf4aiTabM3gtomKZ1CD
zEpv/y9HAK2oBlw7BRhVAHSj0QKBgQC4nexf+w3iJ0TAZvnEhdS/Q71G5VUTzDTZ
H3tlXKeSrl1ZiraPgTRxNo57D/6iMUNhb87HuyzULrd4XV1SBQnYmUBmvvxfJeYY
hqZcORyK82iwwSRiK9LBeTgmMk/79gxBIamVVANGr5GC/CYD0WeKidHiVLNzA5cl
/lZhzYAxiwKBgAEXiuLxzriPNC9sF9LlWiPHB81qNfUpQK9JdYoshuEsx/IK1UWx
QsnSpFZUASOB+NGawVcGj8d0Z/2Rmmt7SRjjWXSenFEw7Qb1+CsR9b/K8ZvFpw1j
FlYOm00Ebz7T5EurUatrytvMjf1+Arf++tdO98pLs3RFSsKqe/dqABbxAoGASLcD
BCbpJ/tZjALDO9GOoyr2ITdw1BRpeF97BciBxDdjU0Jcd5dnZXQcmIILRCztIjKc
mnSxyn0ADKuRdx2+7A4onI967asKvvxCCC8CfAQ1ZvEb+ILURxoMsJa+hDo8R2cP
2V420B+Uy6eu/W/8PUfdYC0GZTWz0eYkde8wH9MCgYAIuXI9ITuB5LAk9F358WMV
1POiPw+75LPCVh6EQcMUnTBcmSqACCYdQ3I9kcfWh2dN8vPmvQXolCEAS0sWAV7u
ziv9gms7Sl8djJNqammLlzCGarNK2/6QMBW1mDmVh+tT9u4VcBZw5XbxViys5EE4
asfG354fhGig0mqfxKicVw==
-----END PRIVATE KEY-----
";

    /// A 1024-bit public key (`openssl genrsa 1024`).
    const KEY_1024_PEM: &str = "-----BEGIN RSA PUBLIC KEY-----
MIGJAoGBAMsfqoM6zH6obbMoEgE7Ea9YwcB8MTtpKn7rEluJX0PGsAqbrrgUcYrR
BbXgdKpn/BvELL8gI1LkYTmViyggsDLPhGzti0bhN/rJQ52IqT0uHWFyZGCdKfHr
v3V8L7IEqaYcH672PIDfdqCkV41jCuQB/3rvyrzYtdbXvGoqLhUjAgMBAAE=
-----END RSA PUBLIC KEY-----
";

    #[test]
    fn pem_forms_agree() {
        let pkcs1 = test_public();
        let spki = RsaPublicKey::from_pem(TEST_SPKI_PEM).unwrap();
        assert_eq!(pkcs1, spki);
        assert_eq!(test_private().public_key(), &pkcs1);
        let pkcs8 = RsaPrivateKey::from_pem(TEST_PKCS8_PEM).unwrap();
        assert_eq!(pkcs8.public_key(), &pkcs1);
        assert_eq!(pkcs8.d, test_private().d);
        assert_eq!(pkcs1.e_be(), &[1, 0, 1]);
        assert_eq!(pkcs1.n_be()[0], 0xB6);
    }

    #[test]
    fn pkcs1_pem_round_trip() {
        let key = test_public();
        assert_eq!(key.to_pkcs1_pem(), TEST_PUBLIC_PEM);
        assert_eq!(
            RsaPublicKey::from_pem(TELEGRAM_PRODUCTION_KEY_PEM)
                .unwrap()
                .to_pkcs1_pem(),
            TELEGRAM_PRODUCTION_KEY_PEM
        );
        let custom = RsaPublicKey::new(key.n_be(), &[3]).unwrap();
        assert_eq!(
            RsaPublicKey::from_pem(&custom.to_pkcs1_pem()).unwrap(),
            custom
        );
    }

    #[test]
    fn fingerprint_of_the_test_key_by_hand() {
        let key = test_public();
        let mut tl = vec![0xFE, 0x00, 0x01, 0x00];
        tl.extend_from_slice(key.n_be());
        tl.extend_from_slice(&[0x03, 0x01, 0x00, 0x01]);
        assert_eq!(tl.len() % 4, 0);
        let sha = Sha1::digest(&tl);
        let expected = i64::from_le_bytes(sha[12..20].try_into().unwrap());
        assert_eq!(key.fingerprint(), expected);
    }

    #[test]
    fn telegram_key_fingerprints() {
        let prod = RsaPublicKey::from_pem(TELEGRAM_PRODUCTION_KEY_PEM).unwrap();
        assert_eq!(prod.fingerprint() as u64, 0xd09d_1d85_de64_fd85);
        assert_eq!(prod.fingerprint(), -3414540481677951611);
        // As serialized in resPQ of the auth key example (step 2).
        let wire = vectors::auth_key_sample()
            .section("step 2")
            .bytes("server_public_key_fingerprints[2]");
        assert_eq!(prod.fingerprint().to_le_bytes().to_vec(), wire);

        let test_dc = RsaPublicKey::from_pem(TELEGRAM_TEST_KEY_PEM).unwrap();
        assert_eq!(test_dc.fingerprint() as u64, 0xb258_98df_208d_2603);
        let v = vectors::rsa_pad_vector();
        assert_eq!(
            test_dc.n_be().to_vec(),
            dec_to_be(v.section("").raw("n_dec"))
        );
    }

    #[test]
    fn rsa_pad_known_answer() {
        let v = vectors::rsa_pad_vector();
        let s = v.section("");
        let key =
            RsaPublicKey::new(&dec_to_be(s.raw("n_dec")), &dec_to_be(s.raw("e_dec"))).unwrap();
        let random: [u8; 224] = s.bytes("random").try_into().unwrap();
        let encrypted = rsa_pad_encrypt_with_random(&key, &s.bytes("data"), &random).unwrap();
        assert_eq!(encrypted.to_vec(), s.bytes("encrypted_data"));
    }

    #[test]
    fn rsa_pad_round_trip_with_the_test_key() {
        let key = test_private();
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for len in [0usize, 1, 100, 144] {
            let data: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5A).collect();
            let encrypted = rsa_pad_encrypt(key.public_key(), &data, &mut rng).unwrap();
            let decrypted = key.rsa_pad_decrypt(&encrypted).unwrap();
            assert_eq!(&decrypted[..len], data.as_slice());
        }
        assert_eq!(
            rsa_pad_encrypt(key.public_key(), &[0; 145], &mut rng),
            Err(Error::DataTooLong)
        );
    }

    #[test]
    fn rsa_pad_increment_rule() {
        // Find randomness whose first attempt lands at or above n, and check
        // that the result equals encrypting with temp_key + 1 directly.
        let key = test_private();
        let data = [7u8; 100];
        let mut random = [0u8; 224];
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let first_try_too_big = |random: &[u8; 224]| {
            // Redo the first attempt's top byte; n starts with 0xB6, so a
            // top byte above it is a certain retry.
            let mut dwp = [0u8; 192];
            dwp[..100].copy_from_slice(&data);
            dwp[100..].copy_from_slice(&random[..92]);
            let temp_key = &random[192..];
            let mut block = [0u8; 224];
            block[..192].copy_from_slice(&dwp);
            block[..192].reverse();
            let h = Sha256::new()
                .chain_update(temp_key)
                .chain_update(dwp)
                .finalize();
            block[192..].copy_from_slice(&h);
            let tk: [u8; 32] = temp_key.try_into().unwrap();
            ige_encrypt(&mut block, &tk, &[0; 32]).unwrap();
            (tk[0] ^ Sha256::digest(block)[0]) > 0xB6
        };
        loop {
            rng.fill_bytes(&mut random);
            if first_try_too_big(&random) {
                break;
            }
        }
        let encrypted = rsa_pad_encrypt_with_random(key.public_key(), &data, &random).unwrap();
        // Starting from temp_key + 1 replays the same chain minus one step.
        let mut bumped = random;
        increment_be(&mut bumped[192..]);
        let direct = rsa_pad_encrypt_with_random(key.public_key(), &data, &bumped).unwrap();
        assert_eq!(encrypted, direct);
        assert_eq!(&key.rsa_pad_decrypt(&encrypted).unwrap()[..100], &data[..]);
    }

    #[test]
    fn increment_carries() {
        let mut x = [0x00, 0xFF, 0xFF];
        increment_be(&mut x);
        assert_eq!(x, [0x01, 0x00, 0x00]);
        let mut y = [0xFF; 2];
        increment_be(&mut y);
        assert_eq!(y, [0, 0]);
    }

    #[test]
    fn rsa_pad_decrypt_rejects_bad_input() {
        let key = test_private();
        let n = *key.public_key().n_be();
        assert_eq!(key.rsa_pad_decrypt(&n), Err(Error::BadCiphertext));
        assert_eq!(key.rsa_pad_decrypt(&[0xFF; 256]), Err(Error::BadCiphertext));
        assert_eq!(key.rsa_pad_decrypt(&[1; 257]), Err(Error::BadCiphertext));
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let mut encrypted = rsa_pad_encrypt(key.public_key(), b"hello", &mut rng).unwrap();
        encrypted[200] ^= 1;
        assert_eq!(key.rsa_pad_decrypt(&encrypted), Err(Error::HashMismatch));
        assert_eq!(key.rsa_pad_decrypt(&[]), Err(Error::HashMismatch));
    }

    #[test]
    fn legacy_round_trip() {
        let key = test_private();
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        for len in [0usize, 100, 235] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let encrypted = rsa_legacy_encrypt(key.public_key(), &data, &mut rng).unwrap();
            let decrypted = key.legacy_decrypt(&encrypted).unwrap();
            assert_eq!(legacy_check(&decrypted, len).unwrap(), data.as_slice());
            if len > 0 {
                assert_eq!(legacy_check(&decrypted, len - 1), Err(Error::HashMismatch));
            }
            assert_eq!(legacy_check(&decrypted, 236), Err(Error::BadPlaintext));
        }
        assert_eq!(
            rsa_legacy_encrypt(key.public_key(), &[0; 236], &mut rng),
            Err(Error::DataTooLong)
        );
        // Deterministic form: same randomness, same output.
        let random = [9u8; 235];
        assert_eq!(
            rsa_legacy_encrypt_with_random(key.public_key(), b"abc", &random),
            rsa_legacy_encrypt_with_random(key.public_key(), b"abc", &random)
        );
        // A value whose plaintext does not start with a zero byte.
        let high = key.public_key().public_op(&{
            let mut m = [0x11u8; 256];
            m[0] = 0x01;
            m
        });
        assert_eq!(key.legacy_decrypt(&high), Err(Error::BadPlaintext));
    }

    #[test]
    fn key_validation() {
        assert_eq!(
            RsaPublicKey::from_pem(KEY_1024_PEM),
            Err(Error::UnsupportedKeySize)
        );
        let n = *test_public().n_be();
        let mut short = n;
        short[0] = 0x7F; // 2047 bits
        assert_eq!(
            RsaPublicKey::new(&short, &[3]),
            Err(Error::UnsupportedKeySize)
        );
        let mut long = vec![1u8];
        long.extend_from_slice(&n);
        assert_eq!(
            RsaPublicKey::new(&long, &[3]),
            Err(Error::UnsupportedKeySize)
        );
        let mut padded = vec![0u8, 0];
        padded.extend_from_slice(&n);
        assert!(RsaPublicKey::new(&padded, &[0, 3]).is_ok());
        let mut even = n;
        even[255] &= 0xFE;
        assert!(matches!(
            RsaPublicKey::new(&even, &[3]),
            Err(Error::InvalidKey(_))
        ));
        for e in [&[][..], &[0], &[1], &[2], &[1, 0]] {
            assert!(
                matches!(RsaPublicKey::new(&n, e), Err(Error::InvalidKey(_))),
                "{e:?}"
            );
        }
        assert!(matches!(
            RsaPublicKey::new(&n, &n),
            Err(Error::InvalidKey(_))
        ));
        assert!(matches!(
            RsaPublicKey::new(&n, &[1; 257]),
            Err(Error::InvalidKey(_))
        ));
    }

    #[test]
    fn debug_hides_the_private_exponent() {
        let s = format!("{:?}", test_private());
        assert!(s.starts_with("RsaPrivateKey { fingerprint: 0x"), "{s}");
        assert!(!s.contains("d:"), "{s}");
    }

    #[test]
    fn base64_strictness() {
        assert_eq!(base64_decode(b"").unwrap(), b"");
        assert_eq!(base64_decode(b"Zg==").unwrap(), b"f");
        assert_eq!(base64_decode(b"Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode(b"Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode(b"Zm9vYmFy").unwrap(), b"foobar");
        for bad in [
            &b"Zg"[..],
            b"Zg=",
            b"Z===",
            b"Zh==",
            b"Zm9=",
            b"Zg==Zg==",
            b"Zm9v!A==",
            b"=Zg=",
            b"Zm=v",
        ] {
            assert!(
                base64_decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for len in 0..20 {
            let data: Vec<u8> = (0..len).map(|i| (i * 91 + 7) as u8).collect();
            assert_eq!(
                base64_decode(base64_encode(&data).as_bytes()).unwrap(),
                data
            );
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
    }

    #[test]
    fn pem_strictness() {
        let body = TEST_PUBLIC_PEM;
        assert!(RsaPublicKey::from_pem(&format!("\n\n  {body}\n")).is_ok());
        assert!(RsaPublicKey::from_pem(&body.replace('\n', "\r\n")).is_ok());
        let cases = [
            body.replace("-----END RSA PUBLIC KEY-----", "-----END PUBLIC KEY-----"),
            body.replace("-----BEGIN RSA PUBLIC KEY-----", ""),
            body.replace("-----END RSA PUBLIC KEY-----", ""),
            body.replace("RSA PUBLIC KEY", "CERTIFICATE"),
            body.replace("MIIB", "MIIB="),
            body.replace("IDAQAB", "IDAQA"),
            format!("junk {body}"),
            format!("{body}junk"),
            TEST_PRIVATE_PEM.to_owned(),
            String::new(),
            "-----BEGIN RSA PUBLIC KEY----------END RSA PUBLIC KEY-----".to_owned(),
            format!("{body}{}", " ".repeat(MAX_PEM_LEN)),
        ];
        for case in &cases {
            assert!(RsaPublicKey::from_pem(case).is_err(), "{case:?}");
        }
        assert!(RsaPrivateKey::from_pem(TEST_PUBLIC_PEM).is_err());
    }

    fn wrap(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        der_header(&mut out, tag, content.len());
        out.extend_from_slice(content);
        out
    }

    fn pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        der_integer(&mut body, n);
        der_integer(&mut body, e);
        wrap(TAG_SEQUENCE, &body)
    }

    #[test]
    fn der_strictness() {
        let n = *test_public().n_be();
        let good = pkcs1_der(&n, &[1, 0, 1]);
        assert!(parse_pkcs1_public(&good).is_ok());
        // Truncated anywhere, or with a byte appended.
        for cut in 0..good.len() {
            assert!(parse_pkcs1_public(&good[..cut]).is_err(), "{cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            parse_pkcs1_public(&trailing),
            Err(Error::Der("trailing bytes"))
        );
        // Indefinite length.
        let mut indefinite = good.clone();
        indefinite[1] = 0x80;
        assert!(parse_pkcs1_public(&indefinite).is_err());
        // Non-minimal length: 0x81 0x05 for a short element.
        let e_nonminimal = [
            &[0x30, 0x07][..],
            &[0x02, 0x81, 0x01, 0x03],
            &[0x02, 0x01, 0x03],
        ]
        .concat();
        assert_eq!(
            parse_pkcs1_public(&e_nonminimal),
            Err(Error::Der("non-minimal length"))
        );
        // Negative and non-minimal integers.
        let negative = wrap(TAG_SEQUENCE, &[0x02, 0x01, 0x83, 0x02, 0x01, 0x03]);
        assert_eq!(
            parse_pkcs1_public(&negative),
            Err(Error::Der("negative integer"))
        );
        let padded_int = wrap(TAG_SEQUENCE, &[0x02, 0x02, 0x00, 0x03, 0x02, 0x01, 0x03]);
        assert_eq!(
            parse_pkcs1_public(&padded_int),
            Err(Error::Der("non-minimal integer"))
        );
        let empty_int = wrap(TAG_SEQUENCE, &[0x02, 0x00, 0x02, 0x01, 0x03]);
        assert_eq!(
            parse_pkcs1_public(&empty_int),
            Err(Error::Der("empty integer"))
        );
        // Length field of 4+ bytes.
        assert_eq!(
            parse_pkcs1_public(&[0x30, 0x84, 1, 0, 0, 0]),
            Err(Error::Der("length too large"))
        );
        // SPKI with another algorithm, unused bits, missing NULL.
        let spki = |oid: &[u8], null: bool, unused: u8| {
            let mut alg = wrap(TAG_OID, oid);
            if null {
                alg.extend_from_slice(&[TAG_NULL, 0]);
            }
            let mut bits = vec![unused];
            bits.extend_from_slice(&good);
            let body = [wrap(TAG_SEQUENCE, &alg), wrap(TAG_BIT_STRING, &bits)].concat();
            wrap(TAG_SEQUENCE, &body)
        };
        assert!(parse_spki(&spki(OID_RSA_ENCRYPTION, true, 0)).is_ok());
        let ec_oid = [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
        assert!(parse_spki(&spki(&ec_oid, true, 0)).is_err());
        assert!(parse_spki(&spki(OID_RSA_ENCRYPTION, false, 0)).is_err());
        assert!(parse_spki(&spki(OID_RSA_ENCRYPTION, true, 1)).is_err());
    }

    #[test]
    fn private_key_consistency_is_checked() {
        // Swap in a different modulus: p * q no longer matches.
        let der = pem_decode(TEST_PRIVATE_PEM).unwrap().1;
        let parts = parse_pkcs1_private(&der).unwrap();
        let mut other_n = parts.n.to_vec();
        other_n[255] ^= 2;
        let ints: [&[u8]; 9] = [
            &[0],
            &other_n,
            parts.e,
            parts.d,
            parts.p,
            parts.q,
            &[1],
            &[1],
            &[1],
        ];
        let mut body = Vec::new();
        for i in ints {
            der_integer(&mut body, i);
        }
        let pem = pem_encode("RSA PRIVATE KEY", &wrap(TAG_SEQUENCE, &body));
        assert_eq!(
            RsaPrivateKey::from_pem(&pem).map(|_| ()),
            Err(Error::InvalidKey("p * q is not the modulus"))
        );
        // Version 1 (multi-prime) is not supported.
        let mut body = Vec::new();
        der_integer(&mut body, &[1]);
        for i in &ints[1..] {
            der_integer(&mut body, i);
        }
        let pem = pem_encode("RSA PRIVATE KEY", &wrap(TAG_SEQUENCE, &body));
        assert_eq!(
            RsaPrivateKey::from_pem(&pem).map(|_| ()),
            Err(Error::Der("unsupported version"))
        );
    }

    proptest! {
        #[test]
        fn der_and_base64_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_pkcs1_public(&bytes);
            let _ = parse_spki(&bytes);
            let _ = parse_pkcs1_private(&bytes);
            let _ = parse_pkcs8(&bytes);
            let _ = base64_decode(&bytes);
            if let Ok(s) = std::str::from_utf8(&bytes) {
                let _ = RsaPublicKey::from_pem(s);
                let _ = RsaPrivateKey::from_pem(s);
            }
        }

        #[test]
        fn mutated_key_der_never_panics(index in any::<prop::sample::Index>(), value in any::<u8>()) {
            let mut der = pem_decode(TEST_SPKI_PEM).unwrap().1;
            let i = index.index(der.len());
            der[i] = value;
            if let Ok((n, e)) = parse_spki(&der) {
                let _ = RsaPublicKey::new(n, e);
            }
        }
    }
}
