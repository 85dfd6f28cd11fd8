//! Conversions between big-endian byte strings and `U2048`, shared by the
//! RSA and DH code.

use crypto_bigint::U2048;

/// `bytes` without its leading zero bytes.
pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// A big-endian number of at most 256 significant bytes, left-padded to
/// exactly 256 bytes; `None` when it is wider.
pub(crate) fn be_256(bytes: &[u8]) -> Option<[u8; 256]> {
    let bytes = strip_leading_zeros(bytes);
    let mut out = [0u8; 256];
    let start = 256usize.checked_sub(bytes.len())?;
    out[start..].copy_from_slice(bytes);
    Some(out)
}

/// A big-endian number of at most 256 significant bytes as a `U2048`.
pub(crate) fn u2048(bytes: &[u8]) -> Option<U2048> {
    be_256(bytes).map(|b| U2048::from_be_slice(&b))
}

/// The remainder of a 256-byte big-endian number by a small modulus.
pub(crate) fn small_mod(bytes: &[u8; 256], m: u32) -> u32 {
    bytes
        .iter()
        .fold(0u64, |r, &b| ((r << 8) | u64::from(b)) % u64::from(m)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), &[] as &[u8]);
        assert_eq!(u2048(&[1, 2]), Some(U2048::from_u64(0x0102)));
        let mut wide = vec![0u8; 300];
        wide[44] = 1;
        assert_eq!(be_256(&wide).map(|b| b[0]), Some(1));
        wide[43] = 1;
        assert_eq!(be_256(&wide), None);
        let mut n = [0u8; 256];
        n[254] = 0x12;
        n[255] = 0x34;
        assert_eq!(small_mod(&n, 7), 0x1234 % 7);
    }
}
