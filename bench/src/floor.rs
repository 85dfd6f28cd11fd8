//! The hardware floor of the bulk scenarios: AES-256 with each block
//! chained to the previous one (so, like IGE, one block at a time) plus
//! SHA-256 over the same bytes, with the crates the core uses (`aes` 0.8,
//! `sha2` 0.10, both with run-time CPU feature detection).

use crate::measure::Stopwatch;
use std::hint::black_box;
use std::time::Duration;

use aes::cipher::{
    consts::U16, Block, BlockBackend, BlockClosure, BlockDecrypt, BlockEncrypt, BlockSizeUser,
    KeyInit,
};
use aes::{Aes256Dec, Aes256Enc};
use sha2::{Digest, Sha256};

struct Chain<'a> {
    buf: &'a mut [u8],
}

impl BlockSizeUser for Chain<'_> {
    type BlockSize = U16;
}

impl BlockClosure for Chain<'_> {
    fn call<B: BlockBackend<BlockSize = U16>>(self, backend: &mut B) {
        // Each block's input depends on the previous block's output.
        let mut prev = 0u128;
        let mut block = Block::<B>::default();
        for chunk in self.buf.chunks_exact_mut(16) {
            let input = u128::from_ne_bytes(chunk.try_into().expect("16 bytes"));
            block.copy_from_slice(&(input ^ prev).to_ne_bytes());
            backend.proc_block((&mut block).into());
            chunk.copy_from_slice(&block);
            prev = u128::from_ne_bytes(chunk.try_into().expect("16 bytes"));
        }
    }
}

/// Chained AES-256 encryption of `buf` (a multiple of 16 bytes) in place.
pub fn chained_encrypt(buf: &mut [u8], key: &[u8; 32]) {
    Aes256Enc::new(key.into()).encrypt_with_backend(Chain { buf });
}

/// Chained AES-256 decryption of `buf` in place (each block's input
/// depends on the previous output, as in IGE decryption).
pub fn chained_decrypt(buf: &mut [u8], key: &[u8; 32]) {
    Aes256Dec::new(key.into()).decrypt_with_backend(Chain { buf });
}

/// One direction of the floor over `len` bytes.
pub struct Floor {
    buf: Vec<u8>,
    decrypt: bool,
}

impl Floor {
    /// `len` bytes (rounded up to whole blocks); `decrypt` picks the
    /// cipher direction.
    pub fn new(len: usize, decrypt: bool) -> Self {
        Self {
            buf: crate::common::bulk_body(len.div_ceil(16) * 16),
            decrypt,
        }
    }

    /// One run: SHA-256 and the chained cipher over the bytes.
    pub fn run(&mut self) -> Duration {
        let key = [0x42u8; 32];
        let start = Stopwatch::start();
        let digest = Sha256::digest(&self.buf);
        if self.decrypt {
            chained_decrypt(&mut self.buf, &key);
        } else {
            chained_encrypt(&mut self.buf, &key);
        }
        black_box((digest, &self.buf));
        start.elapsed()
    }
}
