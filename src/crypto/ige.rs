//! AES-256 in IGE mode (Infinite Garble Extension), as MTProto uses it.
//!
//! IGE chains both the previous ciphertext and the previous plaintext block:
//!
//! ```text
//! encrypt: c[i] = E(p[i] ^ c[i-1]) ^ p[i-1]
//! decrypt: p[i] = D(c[i] ^ p[i-1]) ^ c[i-1]
//! ```
//!
//! The 32-byte IV holds `c[-1]` (first 16 bytes) and `p[-1]` (last 16 bytes).
//! Both directions are inherently sequential within a message; the
//! `mtsender-ige` crate does the work, and runs several messages side by
//! side where it can ([`super::encrypt_messages_in_place`]).

use mtsender_ige::{Job, NotBlockAligned};

use super::Error;

/// Encrypts `buf` in place with AES-256-IGE.
///
/// `iv[..16]` is the "previous ciphertext" block and `iv[16..]` the
/// "previous plaintext" block. Fails with [`Error::NotBlockAligned`] (leaving
/// `buf` untouched) unless `buf.len()` is a multiple of 16.
pub fn ige_encrypt(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) -> Result<(), Error> {
    mtsender_ige::encrypt([Job::new(buf, key, iv)?]);
    Ok(())
}

/// Decrypts `buf` in place with AES-256-IGE (the inverse of [`ige_encrypt`]
/// with the same key and IV).
///
/// Fails with [`Error::NotBlockAligned`] (leaving `buf` untouched) unless
/// `buf.len()` is a multiple of 16.
pub fn ige_decrypt(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) -> Result<(), Error> {
    mtsender_ige::decrypt([Job::new(buf, key, iv)?]);
    Ok(())
}

impl From<NotBlockAligned> for Error {
    fn from(_: NotBlockAligned) -> Self {
        Error::NotBlockAligned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::vectors;
    use aes::cipher::{Block, BlockEncrypt, KeyInit};
    use proptest::prelude::*;

    #[test]
    fn rejects_unaligned_lengths() {
        let key = [1u8; 32];
        let iv = [2u8; 32];
        for len in [1usize, 15, 17, 31, 33] {
            let mut buf = vec![9u8; len];
            assert_eq!(
                ige_encrypt(&mut buf, &key, &iv),
                Err(Error::NotBlockAligned)
            );
            assert_eq!(
                ige_decrypt(&mut buf, &key, &iv),
                Err(Error::NotBlockAligned)
            );
            assert!(buf.iter().all(|&b| b == 9), "buffer untouched on error");
        }
        let mut empty: [u8; 0] = [];
        assert_eq!(ige_encrypt(&mut empty, &key, &iv), Ok(()));
    }

    /// Straight from the definition, with the block cipher called per block.
    fn reference_encrypt(buf: &mut [u8], key: &[u8; 32], iv: &[u8; 32]) {
        let aes = aes::Aes256::new(key.into());
        let mut c_prev: [u8; 16] = iv[..16].try_into().unwrap();
        let mut p_prev: [u8; 16] = iv[16..].try_into().unwrap();
        for chunk in buf.chunks_exact_mut(16) {
            let p: [u8; 16] = (*chunk).try_into().unwrap();
            let mut x = Block::<aes::Aes256>::default();
            for i in 0..16 {
                x[i] = p[i] ^ c_prev[i];
            }
            aes.encrypt_block(&mut x);
            for i in 0..16 {
                chunk[i] = x[i] ^ p_prev[i];
            }
            c_prev = (*chunk).try_into().unwrap();
            p_prev = p;
        }
    }

    #[test]
    fn matches_the_definition() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let iv: [u8; 32] = core::array::from_fn(|i| 0xA0 ^ i as u8);
        let plain: Vec<u8> = (0..96u8).map(|i| i.wrapping_mul(37)).collect();
        let mut a = plain.clone();
        let mut b = plain.clone();
        ige_encrypt(&mut a, &key, &iv).unwrap();
        reference_encrypt(&mut b, &key, &iv);
        assert_eq!(a, b);
        assert_ne!(a, plain);
        ige_decrypt(&mut a, &key, &iv).unwrap();
        assert_eq!(a, plain);
    }

    #[test]
    fn auth_key_sample_server_answer() {
        // Step 6.1 of Telegram's auth key example: the server's encrypted
        // answer, decrypted with tmp_aes_key / tmp_aes_iv.
        let v = vectors::auth_key_sample();
        let step = v.section("step 6.1");
        let key: [u8; 32] = step.bytes("tmp_aes_key").try_into().unwrap();
        let iv: [u8; 32] = step.bytes("tmp_aes_iv").try_into().unwrap();
        let mut buf = step.bytes("encrypted_answer");
        assert_eq!(buf.len(), 592, "the vector is stored without its TL prefix");
        ige_decrypt(&mut buf, &key, &iv).unwrap();
        assert_eq!(buf, step.bytes("answer_with_hash"));
        ige_encrypt(&mut buf, &key, &iv).unwrap();
        assert_eq!(buf, step.bytes("encrypted_answer"));
    }

    proptest! {
        #[test]
        fn decrypt_inverts_encrypt(
            key in any::<[u8; 32]>(),
            iv in any::<[u8; 32]>(),
            blocks in prop::collection::vec(any::<[u8; 16]>(), 0..40),
        ) {
            let plain: Vec<u8> = blocks.concat();
            let mut buf = plain.clone();
            ige_encrypt(&mut buf, &key, &iv).unwrap();
            let mut reference = plain.clone();
            reference_encrypt(&mut reference, &key, &iv);
            prop_assert_eq!(&buf, &reference);
            ige_decrypt(&mut buf, &key, &iv).unwrap();
            prop_assert_eq!(buf, plain);
        }
    }
}
