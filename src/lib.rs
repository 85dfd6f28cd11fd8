//! # mtsender
//!
//! A sans-IO MTProto 2.0 sender for Telegram clients.
//!
//! *Sans-IO* means this crate never opens a socket, never reads a clock and
//! never draws from a global random number generator. The caller owns the
//! sockets and the timers; the core turns the bytes and the time it is given
//! into the bytes to send and the deadline to wake it at. The same core then
//! runs unchanged under tokio, async-std, smol, a simulated network or a
//! fuzzer.
//!
//! The crate is built in layers, each usable on its own:
//!
//! - [`tl`]: the TL binary codec and every constructor of the MTProto
//!   service schema, with bounded, panic-free reading.
//! - [`crypto`]: AES-256-IGE, the MTProto 2.0 message-key derivation and
//!   whole-message encryption, RSA_PAD, pq factorisation, the DH checks and
//!   the obfuscation cipher.
//! - [`transport`]: the frame codecs (abridged, intermediate, padded
//!   intermediate, full, obfuscated2), with streaming decoders that accept
//!   input in any chunking.
//! - [`buf`]: the outgoing buffer with headroom that lets a message be
//!   encrypted and framed in place.
//!
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buf;
pub mod crypto;
pub mod tl;
pub mod transport;
