//! ferogram-mtproto's side: `EncryptedSession` and its abridged transport
//! (the only framing the crate has) over an in-memory sink.
//!
//! The crate has no container writer and no container or rpc_result
//! parser: its client builds containers from `alloc_msg_seqno` and
//! `pack_container`, which is what `encode_small` does here, and parses
//! responses above this layer, so `decode_small` is not available.

use crate::measure::Stopwatch;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use ferogram_mtproto::transport::{AbridgedTransport, Transport};
use ferogram_mtproto::EncryptedSession;
use mtsender::tl::message::MSG_CONTAINER_ID;

use crate::common;

/// The crate's version, for the report.
pub const VERSION: &str = "ferogram-mtproto 0.6.6";

/// Messages per container: ferogram leaves it to the caller; this is
/// grammers' limit.
pub const PER_CONTAINER: usize = 100;

/// A socket that counts what is written to it.
#[derive(Default)]
pub struct Sink {
    /// Bytes written.
    pub bytes: usize,
}

impl Transport for Sink {
    type Error = Infallible;

    fn send(&mut self, data: &[u8]) -> Result<(), Infallible> {
        self.bytes += black_box(data).len();
        Ok(())
    }

    fn recv(&mut self) -> Result<Vec<u8>, Infallible> {
        Ok(Vec::new())
    }
}

fn new_session() -> EncryptedSession {
    EncryptedSession::new(common::auth_key_bytes(), common::SALT, 0)
}

/// `encode_small`.
pub struct EncodeSmall {
    bodies: Vec<Vec<u8>>,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl EncodeSmall {
    /// `count` requests of [`common::SMALL_LEN`] bytes.
    pub fn new(count: usize) -> Self {
        Self {
            bodies: (0..count).map(|i| common::small_body(i as u8)).collect(),
            wire_bytes: 0,
        }
    }

    /// One run.
    pub fn run(&mut self) -> Duration {
        let mut s = new_session();
        let mut t = AbridgedTransport::new(Sink::default());
        let start = Stopwatch::start();
        for chunk in self.bodies.chunks(PER_CONTAINER) {
            let mut c = Vec::with_capacity(8 + chunk.iter().map(|b| 16 + b.len()).sum::<usize>());
            c.extend_from_slice(&MSG_CONTAINER_ID.to_le_bytes());
            c.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            for b in chunk {
                let (id, seq) = s.alloc_msg_seqno(true);
                common::push_bare(&mut c, id, seq, b);
            }
            let (wire, _) = s.pack_container(&c);
            t.send_message(&wire).expect("infallible");
        }
        let elapsed = start.elapsed();
        self.wire_bytes = t.inner_mut().bytes;
        elapsed
    }
}

/// `bulk_encrypt_512k`.
pub struct BulkEncrypt {
    body: Vec<u8>,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl BulkEncrypt {
    /// A request of `len` bytes.
    pub fn new(len: usize) -> Self {
        Self {
            body: common::bulk_body(len),
            wire_bytes: 0,
        }
    }

    /// One run.
    pub fn run(&mut self) -> Duration {
        let mut s = new_session();
        let mut t = AbridgedTransport::new(Sink::default());
        t.send_message(&s.pack_body_with_msg_id(&common::small_body(0), true).0)
            .expect("infallible");
        let start = Stopwatch::start();
        let (wire, _) = s.pack_body_with_msg_id(&self.body, true);
        t.send_message(&wire).expect("infallible");
        let elapsed = start.elapsed();
        self.wire_bytes = t.inner_mut().bytes;
        elapsed
    }
}

/// `bulk_decrypt_1m`: the whole message's decryption and checks; the
/// delivered body is the `rpc_result` (its result after 12 bytes of
/// header), so this is the layer's cost without the result extraction.
pub struct BulkDecrypt {
    session_id: i64,
    wire: Vec<u8>,
    rbuf: Vec<u8>,
    /// Bytes delivered in the last run.
    pub delivered: usize,
}

impl BulkDecrypt {
    /// A result of `len` bytes.
    pub fn new(clocks: common::Clocks, len: usize) -> Self {
        // Fixed: `decrypt_frame_dedup_with_offset` takes it as an argument,
        // which lets every run use a fresh replay ring.
        let session_id = 0x0123_4567_89ab_cdef;
        let mut server = common::ServerPackets::new(&clocks, session_id);
        let req = (clocks.server_msg_id_base() & !0xffff_ffff) + 4;
        let wire = server.result(req, &common::result_body(len));
        Self {
            session_id,
            wire,
            rbuf: Vec::with_capacity(len + 4096),
            delivered: 0,
        }
    }

    /// One run.
    pub fn run(&mut self) -> Duration {
        let seen = ferogram_mtproto::new_seen_msg_ids();
        let key = common::auth_key_bytes();
        let start = Stopwatch::start();
        // The socket read, then the abridged envelope's job (here a plain
        // 4-byte length, as the bench frames every server packet).
        self.rbuf.clear();
        self.rbuf.extend_from_slice(common::strip_len(&self.wire));
        let m = EncryptedSession::decrypt_frame_dedup_with_offset(
            &key,
            self.session_id,
            &mut self.rbuf,
            &seen,
            0,
        )
        .expect("valid packet");
        let t = start.elapsed();
        // The body is the rpc_result; its result starts after 12 bytes.
        self.delivered = black_box(m.body).len() - 12;
        t
    }
}
