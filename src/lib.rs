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
//! ## The run loop
//!
//! [`Sender`] is the whole client side as one machine: give it requests
//! ([`Sender::invoke`]) and what happened ([`Sender::handle_input`]: a
//! connection opened, bytes arrived, a connection closed, a timer fired),
//! then drain [`Sender::poll_output`] until [`Output::SleepUntil`] and do what
//! it says: connect, write bytes, close, deliver responses and updates.
//! Every call carries `now`: the sender reads no clock of its own.
//!
//! Here the "network" is a direct hand-off to the testkit's in-memory fake
//! DC, the same server the tests, the simulator and the `fake-dc` binary use:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mtsender::tl::{functions::TestEcho, Serialize};
//! use mtsender::{DcTable, Input, Output, Request, Sender, SenderConfig};
//! use mtsender_testkit::{test_rsa_key, DcOutput, FakeDc, FakeDcConfig};
//!
//! let now = Instant::now(); // the adapter's clock; the core only receives it
//! let unix = Duration::from_secs(1_700_000_000);
//! let mut dc = FakeDc::new(FakeDcConfig::new(2), now, unix);
//!
//! let addr = "127.0.0.1:443".parse().unwrap();
//! let keys = vec![test_rsa_key().public_key().clone()];
//! let config = SenderConfig::new(DcTable::empty().set(2, addr), keys);
//! let mut sender = Sender::new(config, now, unix, [7; 32]); // seed from the OS in real use
//!
//! let request = TestEcho { payload: b"hello".to_vec() }.to_bytes();
//! let id = sender.invoke(now, Request::new(request.clone()));
//!
//! let mut link = None; // (client conn, server conn)
//! let answer = 'run: loop {
//!     // Drain the sender: it connects, then sends the handshake and the request.
//!     while let Some(out) = sender.poll_output() {
//!         match out {
//!             Output::Connect { conn, .. } => {
//!                 link = Some((conn, dc.open(now)));
//!                 sender.handle_input(Input::Connected { conn, now });
//!             }
//!             Output::Transmit { bytes, .. } => dc.receive(now, link.unwrap().1, &bytes),
//!             Output::Response { id: done, result, .. } if done == id => break 'run result,
//!             Output::SleepUntil(_) => break, // a real loop arms its timer here
//!             _ => {}
//!         }
//!     }
//!     // Carry the server's bytes back, in whatever chunks the network makes.
//!     while let Some(DcOutput::Transmit { bytes, .. }) = dc.poll_output() {
//!         for chunk in bytes.chunks(7) {
//!             let conn = link.unwrap().0;
//!             sender.handle_input(Input::Received { conn, bytes: chunk, now });
//!         }
//!     }
//! };
//! assert_eq!(answer.unwrap(), request); // test.echo answers with the request
//! assert_eq!(dc.execution_count(&request), 1);
//! ```
//!
//! The adapters (`mtsender-tokio`, `mtsender-async-std`) are this loop with
//! sockets and one timer.
//!
//! ## Layers
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
//! - [`handshake`]: auth key creation, as a state machine.
//! - [`session`]: the encrypted session: msg_ids, acks, containers, salts,
//!   service messages and the inbound checks.
//! - [`policy`]: retry and restart policies.
//! - [`sender`]: [`Sender`], the machine above, over every DC.
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

#[cfg(test)]
mod test_util;

pub use error::{InvocationError, RpcError};
pub use policy::{
    AutoSleep, CircuitBreaker, ConnectionRestartPolicy, ExponentialBackoff, FixedInterval,
    NeverRestart, NoRetries, RetryContext, RetryPolicy,
};
pub use sender::{
    CatchUpReason, CloseReason, ConnId, Dc, DcTable, Input, Output, Request, RequestId,
    ResponseMeta, Sender, SenderConfig, ShutdownReason, TimerReason,
};
