//! The obfuscated2 layer: a 64-byte random header from which both
//! directions' AES-256-CTR keys are taken.

use rand_core::{CryptoRng, RngCore};

use crate::crypto::AesCtr;

/// First four bytes the server would read as another protocol: HTTP
/// methods, the intermediate tags and a TLS handshake record.
const FORBIDDEN_STARTS: [[u8; 4]; 7] = [
    *b"HEAD",
    *b"POST",
    *b"GET ",
    *b"OPTI",
    [0xdd; 4],
    [0xee; 4],
    [0x16, 0x03, 0x01, 0x02],
];

/// Redraws allowed before [`obfuscation_init`] gives up on the generator.
/// A working generator is rejected with probability about 1/250 per draw.
const MAX_DRAWS: usize = 1000;

/// Whether the first bytes of an obfuscated header cannot be taken for
/// another transport by the server (which reads them unencrypted).
pub(crate) fn init_is_valid(init: &[u8; 64]) -> bool {
    init[0] != 0xef && !FORBIDDEN_STARTS.iter().any(|s| init[..4] == s[..]) && init[4..8] != [0; 4]
}

/// Draws the 64 random bytes of an obfuscated2 header for
/// [`ClientCodec::obfuscated`](super::ClientCodec::obfuscated).
///
/// Draws again while the result could be read by the server as another
/// protocol: a first byte of `0xef` (abridged); first four bytes `HEAD`,
/// `POST`, `GET `, `OPTI`, `dd dd dd dd`, `ee ee ee ee` or `16 03 01 02`
/// (TLS); or bytes 4..8 all zero (the full transport's first seq). The
/// protocol tag (bytes 56..60) and DC id (60..62) are written by the codec.
///
/// # Panics
///
/// If `rng` yields a rejected header 1000 times in a row, which only a
/// broken generator does.
pub fn obfuscation_init<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> [u8; 64] {
    let mut init = [0u8; 64];
    for _ in 0..MAX_DRAWS {
        rng.fill_bytes(&mut init);
        if init_is_valid(&init) {
            return init;
        }
    }
    panic!("obfuscation_init: the random generator keeps producing rejected headers");
}

fn cipher_at(bytes: &[u8; 64]) -> AesCtr {
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&bytes[8..40]);
    iv.copy_from_slice(&bytes[40..56]);
    AesCtr::new(&key, &iv)
}

/// The two ciphers of a connection: `(client to server, server to client)`.
/// The first is keyed from bytes 8..56 of the header, the second from the
/// same bytes of the header reversed.
pub(crate) fn ciphers(init: &[u8; 64]) -> (AesCtr, AesCtr) {
    let mut reversed = *init;
    reversed.reverse();
    (cipher_at(init), cipher_at(&reversed))
}
