//! AES-256-CTR, the stream cipher of the obfuscated2 transport.

use aes::cipher::{KeyIvInit, StreamCipher};

type Ctr = ctr::Ctr128BE<aes::Aes256>;

/// One direction of an obfuscated2 stream: AES-256 in CTR mode with a
/// 128-bit big-endian counter, keystream carried across calls.
pub struct AesCtr(Ctr);

impl AesCtr {
    /// A cipher for `key` starting at counter block `iv`.
    pub fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        Self(Ctr::new(key.into(), iv.into()))
    }

    /// XORs the next `buf.len()` keystream bytes into `buf` (encrypts or decrypts).
    pub fn apply(&mut self, buf: &mut [u8]) {
        self.0.apply_keystream(buf);
    }
}

impl std::fmt::Debug for AesCtr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesCtr(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystream_continues_across_calls() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        let mut whole = [0u8; 100];
        AesCtr::new(&key, &iv).apply(&mut whole);
        let mut parts = [0u8; 100];
        let mut c = AesCtr::new(&key, &iv);
        c.apply(&mut parts[..3]);
        c.apply(&mut parts[3..50]);
        c.apply(&mut parts[50..]);
        assert_eq!(whole, parts);
        assert_ne!(whole, [0u8; 100]);
    }

    #[test]
    fn nist_sp800_38a_f5_5_ctr_aes256() {
        // NIST SP 800-38A F.5.5, first block.
        let key: [u8; 32] =
            hex32("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        let iv: [u8; 16] = hex16("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let mut block = hex16("6bc1bee22e409f96e93d7e117393172a");
        AesCtr::new(&key, &iv).apply(&mut block);
        assert_eq!(block, hex16("601ec313775789a5b7a7f504bbf3d228"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
    fn hex16(s: &str) -> [u8; 16] {
        hex(s).try_into().unwrap()
    }
    fn hex32(s: &str) -> [u8; 32] {
        hex(s).try_into().unwrap()
    }
}
