//! mtsender's side of scenarios 1–3, on the real path: `Session`
//! (push_request → poll_packet into a reused `FrameBuf`) and `ClientCodec`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mtsender::buf::FrameBuf;
use mtsender::session::{Clock, Session, SessionConfig, SessionEvent};
use mtsender::transport::{ClientCodec, Frame, TransportKind};
use rand_chacha::ChaCha20Rng;

use crate::common::{self, Clocks, ServerPackets};

/// Gzip off, as for the peers: the scenarios measure the message path.
pub fn session_config() -> SessionConfig {
    SessionConfig {
        gzip_min_len: usize::MAX,
        ..SessionConfig::default()
    }
}

fn new_session(clocks: &Clocks) -> Session {
    Session::new(
        session_config(),
        common::auth_key(),
        common::SALT,
        Clock::new(clocks.t0, clocks.unix),
        0,
        [7; 32],
    )
}

/// Sends everything queued in `session`; returns the wire bytes and the
/// framed packets when `keep` is set.
fn drain(
    session: &mut Session,
    now: Instant,
    buf: &mut FrameBuf,
    codec: &mut ClientCodec,
    rng: &mut ChaCha20Rng,
    mut keep: Option<&mut Vec<Vec<u8>>>,
) -> usize {
    let mut total = 0;
    while session.poll_packet(now, buf) {
        if let Some(k) = keep.as_deref_mut() {
            k.push(buf.as_slice().to_vec());
        }
        codec.encode(buf, rng);
        total += black_box(buf.as_slice()).len();
    }
    total
}

/// `encode_small`: requests → containers → encrypted → framed.
pub struct EncodeSmall {
    clocks: Clocks,
    bodies: Vec<Vec<u8>>,
    buf: FrameBuf,
    rng: ChaCha20Rng,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl EncodeSmall {
    /// `count` requests of [`common::SMALL_LEN`] bytes.
    pub fn new(clocks: Clocks, count: usize) -> Self {
        Self {
            clocks,
            bodies: (0..count).map(|i| common::small_body(i as u8)).collect(),
            buf: FrameBuf::new(),
            rng: common::rng(1),
            wire_bytes: 0,
        }
    }

    /// One run; returns the time from the first push to the last frame.
    pub fn run(&mut self) -> Duration {
        let mut session = new_session(&self.clocks);
        let mut codec = ClientCodec::new(TransportKind::Intermediate);
        // The request bodies are the caller's serialization, not ours.
        let bodies = self.bodies.clone();
        let now = self.clocks.t0;
        let start = Instant::now();
        for (i, b) in bodies.into_iter().enumerate() {
            session.push_request(i as u64, b);
        }
        let total = drain(
            &mut session,
            now,
            &mut self.buf,
            &mut codec,
            &mut self.rng,
            None,
        );
        let t = start.elapsed();
        self.wire_bytes = total;
        t
    }
}

/// `decode_small`: server containers of rpc_results → each result
/// delivered as a `SessionEvent::Result`.
pub struct DecodeSmall {
    clocks: Clocks,
    bodies: Vec<Vec<u8>>,
    wire: Vec<Vec<u8>>,
    buf: FrameBuf,
    codec: ClientCodec,
    /// Results delivered in the last run.
    pub delivered: usize,
}

impl DecodeSmall {
    /// Answers to `count` requests, [`common::RESULTS_PER_PACKET`] per packet.
    pub fn new(clocks: Clocks, count: usize) -> Self {
        let bodies: Vec<Vec<u8>> = (0..count).map(|i| common::small_body(i as u8)).collect();
        let mut s = Self {
            clocks,
            bodies,
            wire: Vec::new(),
            buf: FrameBuf::new(),
            codec: ClientCodec::new(TransportKind::Intermediate),
            delivered: 0,
        };
        // The session is deterministic (seeded, same clock): a fresh one
        // gives the same session_id and msg_ids every run, so the server's
        // packets are built once.
        let mut session = new_session(&clocks);
        let mut sent = Vec::new();
        s.send_all(&mut session, Some(&mut sent));
        let mut session_id = 0;
        let mut ids = Vec::new();
        for mut p in sent {
            let (sid, more) = common::client_msg_ids(&mut p, &|b| b.len() == common::SMALL_LEN);
            session_id = sid;
            ids.extend(more);
        }
        assert_eq!(ids.len(), count);
        let result = common::result_body(common::SMALL_LEN);
        let mut server = ServerPackets::new(&clocks, session_id);
        s.wire = ids
            .chunks(common::RESULTS_PER_PACKET)
            .map(|c| server.results(c, &result))
            .collect();
        s
    }

    fn send_all(&mut self, session: &mut Session, keep: Option<&mut Vec<Vec<u8>>>) {
        for (i, b) in self.bodies.iter().enumerate() {
            session.push_request(i as u64, b.clone());
        }
        let mut codec = ClientCodec::new(TransportKind::Intermediate);
        drain(
            session,
            self.clocks.t0,
            &mut self.buf,
            &mut codec,
            &mut common::rng(1),
            keep,
        );
    }

    /// The server's packets (framed).
    pub fn wire(&self) -> &[Vec<u8>] {
        &self.wire
    }

    /// One run; returns the time from the first byte fed to the last event.
    pub fn run(&mut self) -> Duration {
        let mut session = new_session(&self.clocks);
        self.send_all(&mut session, None);
        let now = self.clocks.t0;
        let mut delivered = 0;
        let start = Instant::now();
        for w in &self.wire {
            self.codec.feed(w);
            while let Some(frame) = self.codec.next_frame() {
                if let Ok(Frame::Packet(p)) = frame {
                    session
                        .handle_packet(now, p)
                        .expect("the bench's packets are valid");
                }
            }
            while let Some(ev) = session.poll_event() {
                if let SessionEvent::Result { result, .. } = ev {
                    delivered += black_box(result.map(|r| r.len()).unwrap_or(0)).min(1);
                }
            }
        }
        let t = start.elapsed();
        self.delivered = delivered;
        t
    }
}

/// `bulk_encrypt_512k`: one large request through encryption and framing.
pub struct BulkEncrypt {
    clocks: Clocks,
    body: Vec<u8>,
    buf: FrameBuf,
    rng: ChaCha20Rng,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl BulkEncrypt {
    /// A request of `len` bytes.
    pub fn new(clocks: Clocks, len: usize) -> Self {
        Self {
            clocks,
            body: common::bulk_body(len),
            buf: FrameBuf::new(),
            rng: common::rng(2),
            wire_bytes: 0,
        }
    }

    /// One run; returns the time from the push to the framed packet.
    pub fn run(&mut self) -> Duration {
        let mut session = new_session(&self.clocks);
        // Skip the first packet's salt request: measure the request alone.
        session.push_request(0, common::small_body(0));
        let mut codec = ClientCodec::new(TransportKind::Intermediate);
        drain(
            &mut session,
            self.clocks.t0,
            &mut self.buf,
            &mut codec,
            &mut self.rng,
            None,
        );
        let body = self.body.clone();
        let start = Instant::now();
        session.push_request(1, body);
        let total = drain(
            &mut session,
            self.clocks.t0,
            &mut self.buf,
            &mut codec,
            &mut self.rng,
            None,
        );
        let t = start.elapsed();
        self.wire_bytes = total;
        t
    }
}

/// `bulk_decrypt_1m`: one large response through the transport and the
/// session to its `Result` event.
pub struct BulkDecrypt {
    clocks: Clocks,
    wire: Vec<u8>,
    buf: FrameBuf,
    codec: ClientCodec,
    /// Bytes of the result delivered in the last run.
    pub delivered: usize,
}

impl BulkDecrypt {
    /// A result of `len` bytes.
    pub fn new(clocks: Clocks, len: usize) -> Self {
        let mut s = Self {
            clocks,
            wire: Vec::new(),
            buf: FrameBuf::new(),
            codec: ClientCodec::new(TransportKind::Intermediate),
            delivered: 0,
        };
        let mut session = new_session(&clocks);
        let mut sent = Vec::new();
        s.send_one(&mut session, Some(&mut sent));
        let (sid, ids) = common::client_msg_ids(&mut sent[0], &|b| b.len() == common::SMALL_LEN);
        let mut server = ServerPackets::new(&clocks, sid);
        s.wire = server.result(ids[0], &common::result_body(len));
        s
    }

    fn send_one(&mut self, session: &mut Session, keep: Option<&mut Vec<Vec<u8>>>) {
        session.push_request(0, common::small_body(0));
        let mut codec = ClientCodec::new(TransportKind::Intermediate);
        drain(
            session,
            self.clocks.t0,
            &mut self.buf,
            &mut codec,
            &mut common::rng(3),
            keep,
        );
    }

    /// The server's packet (framed).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// One run; returns the time from the first byte fed to the event.
    pub fn run(&mut self) -> Duration {
        let mut session = new_session(&self.clocks);
        self.send_one(&mut session, None);
        let now = self.clocks.t0;
        let start = Instant::now();
        self.codec.feed(&self.wire);
        while let Some(frame) = self.codec.next_frame() {
            if let Ok(Frame::Packet(p)) = frame {
                session
                    .handle_packet(now, p)
                    .expect("the bench's packet is valid");
            }
        }
        let mut delivered = 0;
        while let Some(ev) = session.poll_event() {
            if let SessionEvent::Result { result: Ok(r), .. } = ev {
                delivered += black_box(r).len();
            }
        }
        let t = start.elapsed();
        self.delivered = delivered;
        t
    }
}
