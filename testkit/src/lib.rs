//! # mtsender-testkit
//!
//! Telegram's stand-in for tests: [`FakeDc`], a sans-IO MTProto 2.0
//! *server*. It answers the handshake (RSA_PAD and the legacy RSA format;
//! `p_q_inner_data`, `_dc` and `_temp_dc`), keeps sessions across
//! connection drops, checks every client message as Telegram does
//! (msg_id window and parity, seqno, salts, containers), acknowledges,
//! re-sends unacknowledged answers on a session's next connection, executes
//! `test.echo#0c0ffee0` and counts every execution, and injects scripted
//! [`faults`].
//!
//! Like the core it never reads a clock and never draws from a global
//! random generator: time comes with every call and all randomness from the
//! configured seed, so the same inputs give the same bytes out.
//!
//! ## The run loop
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mtsender::handshake::KeyKind;
//! use mtsender::session::ids::Clock;
//! use mtsender::transport::TransportKind;
//! use mtsender_testkit::client::{Incoming, TestClient, Transport};
//! use mtsender_testkit::{FakeDc, FakeDcConfig};
//!
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now(); // any anchor: only differences matter
//! let unix = Duration::from_secs(1_700_000_000);
//! let mut dc = FakeDc::new(FakeDcConfig::new(2).seed([7; 32]), now, unix);
//!
//! // A client in memory: the core's handshake, then encrypted messages.
//! let mut client = TestClient::connect(
//!     &mut dc,
//!     Clock::new(now, unix),
//!     now,
//!     Transport::Plain(TransportKind::Abridged),
//!     KeyKind::Permanent,
//!     1,
//! )
//! .unwrap();
//! let id = client.echo(&mut dc, now, b"hello");
//! let replies: Vec<Incoming> = client.recv(&mut dc);
//! let answer = replies.iter().find_map(|m| m.rpc_result()).unwrap();
//! assert_eq!(answer.0, id);
//! assert_eq!(answer.1, mtsender_testkit::client::echo_body(b"hello"));
//! assert_eq!(dc.execution_count(&mtsender_testkit::client::echo_body(b"hello")), 1);
//! ```
//!
//! A real server loop does the same with sockets: [`FakeDc::open`] on
//! accept, [`FakeDc::receive`] on read, [`FakeDc::close`] on EOF,
//! [`FakeDc::handle_timeout`] when [`FakeDc::poll_timeout`] is due, and
//! after each of these drains [`FakeDc::poll_output`]. [`net::serve`] is
//! that loop on a TCP listener.
//!
//! ## What is here
//!
//! - [`FakeDc`] with its [`FakeDcConfig`], [`Stats`] and [`AuthKeyInfo`].
//! - [`faults`]: [`Faults`] (request and connection faults, with a spec
//!   string parser) and [`HandshakeFaults`] (one broken handshake check at a
//!   time).
//! - [`client`]: in-memory helpers for tests: a [`client::Link`] pumps
//!   framed bytes over any transport and chunking,
//!   [`client::run_handshake`] drives the core's client handshake over it,
//!   and a [`client::TestClient`] sends encrypted messages with any msg_id,
//!   seqno and salt.
//! - The `fake-dc` binary serves a `FakeDc` on loopback TCP
//!   (`fake-dc --listen 127.0.0.1:0 [--rsa-key PEM] [--dc ID] [--faults SPEC]`;
//!   `fake-dc --print-public-key`).
//!
//! ## Rules the server follows
//!
//! - Server msg_ids are about unixtime·2^32, ≡ 1 mod 4 for responses and
//!   ≡ 3 mod 4 otherwise, strictly increasing.
//! - An unknown (or expired temporary) auth_key_id gets transport error
//!   -404 and the connection is closed. Packets that fail decryption are
//!   dropped silently.
//! - Sessions are keyed by (auth_key_id, session_id) and outlive
//!   connections: a session's messages go to the connection its latest
//!   message came in on. A new session is announced with
//!   `new_session_created` before anything else.
//! - Salts: the first is `new_nonce[0..8] ^ server_nonce[0..8]`; then a new
//!   one every `salt_period`, the previous one accepted for `salt_grace`. A
//!   wrong salt (0 included) gets `bad_server_salt`.
//! - `bad_msg_notification`: 16/17 for msg_ids more than 300 s behind or
//!   30 s ahead of the server clock, 18 for msg_ids not divisible by 4, 19
//!   for a container reusing a msg_id, 20 for a msg_id below the ones the
//!   session still remembers, 32 for a content-related message whose seqno
//!   is below an earlier one's, 34 for an acknowledgment or container with
//!   an odd seqno, 35 for a content-related message with an even seqno, 64
//!   for an invalid container. Code 33 (seqno too high) is never sent: the
//!   server cannot know the client's count.
//! - Content-related client messages are acknowledged, piggybacked on the
//!   next packet or alone after `ack_delay`. The server's own content
//!   messages (answers, new_session_created, updates) are kept until
//!   acknowledged and sent again, same msg_id, when the session moves to a
//!   new connection, or on `msg_resend_req`.
//! - A message whose msg_id was already received is not processed again:
//!   the cached answer of a query is sent again instead.
//! - Methods: `test.echo` → `rpc_result` with the request's TL bytes
//!   (innermost query, after `invokeWithLayer`, `initConnection`,
//!   `invokeWithoutUpdates`, `invokeAfterMsg(s)`); `ping` /
//!   `ping_delay_disconnect` → `pong` (not an rpc_result; the latter arms a
//!   disconnect timer); `get_future_salts` → `future_salts` (bare, as
//!   Telegram sends it: it carries its `req_msg_id` itself);
//!   `msgs_state_req` → `msgs_state_info`; `msg_resend_req`,
//!   `msg_resend_ans_req`; `rpc_drop_answer` → `rpc_result` with
//!   `rpc_answer_unknown` / `_dropped_running` / `_dropped`;
//!   `destroy_session` → `destroy_session_ok` / `_none` (a plain content
//!   message); `destroy_auth_key` → `destroy_auth_key_ok` (bare, as
//!   Telegram sends it), then the key is gone; `auth.bindTempAuthKey` → `boolTrue` (the inner
//!   message is not verified yet); any other method → `rpc_error` 400
//!   `INPUT_METHOD_INVALID_<constructor id, 8 hex digits>`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod dc;
pub mod faults;
mod handshake;
pub mod net;
mod salts;
pub mod sim;
#[cfg(test)]
mod tests;

pub use dc::{
    innermost, test_rsa_key, trim_plain_padding, AuthKeyInfo, ConnId, DcOutput, FakeDc,
    FakeDcConfig, Stats, GZIP_CAP, MSG_ID_MAX_AGE_SECS, MSG_ID_MAX_AHEAD_SECS, TEST_RSA_KEY_PEM,
};
pub use faults::{
    BadGa, Fault, FaultAction, FaultSpecError, FaultWhen, Faults, HandshakeFaults, MigrateKind,
};
