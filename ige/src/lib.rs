//! AES-256 in IGE mode (Infinite Garble Extension), as MTProto uses it, for
//! one message or for several side by side.
//!
//! IGE chains both the previous ciphertext and the previous plaintext block:
//!
//! ```text
//! encrypt: c[i] = E(p[i] ^ c[i-1]) ^ p[i-1]
//! decrypt: p[i] = D(c[i] ^ p[i-1]) ^ c[i-1]
//! ```
//!
//! The 32-byte IV holds `c[-1]` (first 16 bytes) and `p[-1]` (last 16 bytes).
//!
//! Within one message each block waits for the one before it, so a single
//! message runs at the latency of the AES unit, which on current CPUs
//! could start a new block every cycle or two while one block takes
//! several. Separate messages are separate chains, each with its own key:
//! given two or more, [`encrypt`] and [`decrypt`] run up to [`LANES`] of
//! them round by round together on AES-NI, which keeps the unit busy. One
//! message, or a CPU without AES-NI, takes the `aes` crate's own backend
//! one block at a time.
//!
//! ```
//! use mtsender_ige::{decrypt, encrypt, Job};
//!
//! let (key, iv) = ([7u8; 32], [9u8; 32]);
//! let mut a = vec![1u8; 64];
//! let mut b = vec![2u8; 4096];
//! encrypt([Job::new(&mut a, &key, &iv)?, Job::new(&mut b, &key, &iv)?]);
//! decrypt([Job::new(&mut a, &key, &iv)?, Job::new(&mut b, &key, &iv)?]);
//! assert!(a.iter().all(|&x| x == 1) && b.iter().all(|&x| x == 2));
//! # Ok::<(), mtsender_ige::NotBlockAligned>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

/// How many messages run side by side on AES-NI.
pub const LANES: usize = 8;

/// A buffer whose length is not a multiple of the AES block (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotBlockAligned;

impl std::fmt::Display for NotBlockAligned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IGE input is not a multiple of 16 bytes")
    }
}

impl std::error::Error for NotBlockAligned {}

/// One message to encrypt or decrypt in place: its bytes, its AES-256 key
/// and its IGE IV.
pub struct Job<'a> {
    buf: &'a mut [u8],
    key: [u8; 32],
    iv: [u8; 32],
}

impl<'a> Job<'a> {
    /// A job over `buf`, which must be whole 16-byte blocks.
    pub fn new(buf: &'a mut [u8], key: &[u8; 32], iv: &[u8; 32]) -> Result<Self, NotBlockAligned> {
        if !buf.len().is_multiple_of(16) {
            return Err(NotBlockAligned);
        }
        Ok(Self {
            buf,
            key: *key,
            iv: *iv,
        })
    }
}

/// Encrypts every job in place.
pub fn encrypt<'a>(jobs: impl IntoIterator<Item = Job<'a>>) {
    run(jobs.into_iter(), true);
}

/// Decrypts every job in place (the inverse of [`encrypt`] with the same
/// keys and IVs).
pub fn decrypt<'a>(jobs: impl IntoIterator<Item = Job<'a>>) {
    run(jobs.into_iter(), false);
}

fn run<'a>(mut jobs: impl Iterator<Item = Job<'a>>, encrypt: bool) {
    let Some(first) = jobs.next() else { return };
    let Some(second) = jobs.next() else {
        // One chain gains nothing from lanes.
        portable::run(first, encrypt);
        return;
    };
    let jobs = [first, second].into_iter().chain(jobs);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("aes") {
        // SAFETY: the CPU has AES-NI, checked just above; SSE2 is part of
        // x86_64.
        unsafe { x86::run(jobs, encrypt) };
        return;
    }
    for job in jobs {
        portable::run(job, encrypt);
    }
}

#[cfg(test)]
mod tests;
