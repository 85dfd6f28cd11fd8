//! One chain through the `aes` crate's backend (AES-NI or its constant-time
//! software fallback), one block at a time.

use aes::cipher::{
    consts::U16, Block, BlockBackend, BlockClosure, BlockDecrypt, BlockEncrypt, BlockSizeUser,
    KeyInit,
};
use aes::{Aes256Dec, Aes256Enc};

use crate::Job;

pub(crate) fn run(job: Job<'_>, encrypt: bool) {
    let Job { buf, key, iv } = job;
    if encrypt {
        Aes256Enc::new(&key.into()).encrypt_with_backend(Chain {
            buf,
            iv: &iv,
            encrypt,
        });
    } else {
        Aes256Dec::new(&key.into()).decrypt_with_backend(Chain {
            buf,
            iv: &iv,
            encrypt,
        });
    }
}

/// The chaining loop, run inside the cipher backend so that the CPU feature
/// dispatch happens once per message, not once per block.
struct Chain<'a> {
    buf: &'a mut [u8],
    iv: &'a [u8; 32],
    encrypt: bool,
}

impl BlockSizeUser for Chain<'_> {
    type BlockSize = U16;
}

impl BlockClosure for Chain<'_> {
    fn call<B: BlockBackend<BlockSize = U16>>(self, backend: &mut B) {
        // `prev_in` chains the block fed into the cipher (p for encryption,
        // c for decryption); `prev_out` the block it produced.
        let (first, second) = self.iv.split_at(16);
        let (mut prev_out, mut prev_in) = if self.encrypt {
            (to_u128(first), to_u128(second))
        } else {
            (to_u128(second), to_u128(first))
        };
        let mut block = Block::<B>::default();
        for chunk in self.buf.chunks_exact_mut(16) {
            let input = to_u128(chunk);
            block.copy_from_slice(&(input ^ prev_out).to_ne_bytes());
            backend.proc_block((&mut block).into());
            let output = to_u128(&block) ^ prev_in;
            chunk.copy_from_slice(&output.to_ne_bytes());
            prev_in = input;
            prev_out = output;
        }
    }
}

#[inline(always)]
fn to_u128(bytes: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(bytes);
    u128::from_ne_bytes(a)
}
