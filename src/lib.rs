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
//! ## One message, end to end
//!
//! Serialize a request, encrypt it as an MTProto 2.0 message and frame it for
//! the intermediate transport, all in one buffer; then do the reverse as the
//! server would:
//!
//! ```
//! use mtsender::buf::FrameBuf;
//! use mtsender::crypto::{AuthKey, Side, encrypt_message_in_place, decrypt_message_in_place};
//! use mtsender::tl::{Serialize, functions::Ping};
//! use mtsender::transport::{ClientCodec, ServerDecoder, TransportKind, Frame};
//! use rand_core::SeedableRng;
//! // The core never draws from a global RNG: randomness is an input.
//! let mut rng = rand_chacha::ChaCha20Rng::from_seed([1; 32]);
//! let key = AuthKey::from_bytes([42; 256]);
//!
//! // Plaintext: salt, session_id, msg_id, seq_no, length, body.
//! let mut buf = FrameBuf::new();
//! buf.append_with(|v| {
//!     v.extend_from_slice(&0x1122_3344_5566_7788_i64.to_le_bytes()); // salt
//!     v.extend_from_slice(&7_i64.to_le_bytes()); // session_id
//!     v.extend_from_slice(&(0x6000_0000_0000_0004_i64).to_le_bytes()); // msg_id
//!     v.extend_from_slice(&1_i32.to_le_bytes()); // seq_no
//!     v.extend_from_slice(&12_i32.to_le_bytes()); // body length
//!     Ping { ping_id: 99 }.serialize(v);
//! });
//! encrypt_message_in_place(&key, Side::Client, &mut buf, &mut rng);
//! let mut codec = ClientCodec::new(TransportKind::Intermediate);
//! codec.encode(&mut buf, &mut rng);
//!
//! // The server side: decode the frame, decrypt it, read the body back.
//! let mut server = ServerDecoder::new();
//! server.feed(buf.as_slice());
//! let Some(Ok(Frame::Packet(packet))) = server.next_frame() else { panic!() };
//! let plain = decrypt_message_in_place(&key, Side::Client, packet).unwrap();
//! assert_eq!(&plain[32..44], &{
//!     let mut v = Vec::new();
//!     Ping { ping_id: 99 }.serialize(&mut v);
//!     v
//! }[..]);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buf;
pub mod crypto;
pub mod error;
pub mod handshake;
pub mod policy;
pub mod sender;
pub mod session;
pub mod tl;
pub mod transport;

pub use error::{InvocationError, RpcError};
pub use policy::{
    AutoSleep, CircuitBreaker, ConnectionRestartPolicy, ExponentialBackoff, FixedInterval,
    NeverRestart, NoRetries, RetryContext, RetryPolicy,
};
pub use sender::{
    CatchUpReason, CloseReason, ConnId, Dc, DcTable, Input, Output, Request, RequestId,
    ResponseMeta, Sender, SenderConfig, ShutdownReason, TimerReason,
};
