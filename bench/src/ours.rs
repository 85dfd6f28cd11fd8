//! mtsender's side of scenarios 1–3, on the real path: `Session`
//! (push_request → poll_packets into reused `FrameBuf`s, as the sender
//! flushes) and `ClientCodec`.

use crate::measure::Stopwatch;
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

/// Buffers for one flush, as many as the sender encrypts together.
fn bufs() -> Vec<FrameBuf> {
    (0..mtsender::crypto::PARALLEL_MESSAGES)
        .map(|_| FrameBuf::new())
        .collect()
}

/// Sends everything queued in `session` the way the sender flushes
/// (`poll_packets`, then framing); returns the wire bytes and the framed
/// packets when `keep` is set.
fn drain(
    session: &mut Session,
    now: Instant,
    bufs: &mut [FrameBuf],
    codec: &mut ClientCodec,
    rng: &mut ChaCha20Rng,
    mut keep: Option<&mut Vec<Vec<u8>>>,
) -> usize {
    let mut total = 0;
    loop {
        let n = session.poll_packets(now, bufs);
        for buf in &mut bufs[..n] {
            if let Some(k) = keep.as_deref_mut() {
                k.push(buf.as_slice().to_vec());
            }
            codec.encode(buf, rng);
            total += black_box(buf.as_slice()).len();
        }
        if n < bufs.len() {
            return total;
        }
    }
}

/// `encode_small`: requests → containers → encrypted → framed.
///
/// One session for every run, as a client keeps it: between runs (untimed)
/// its requests are taken back with `drain_requests`, so each run starts
/// with nothing in flight and the maps at the size they grew to.
pub struct EncodeSmall {
    session: Session,
    codec: ClientCodec,
    now: Instant,
    bodies: Vec<Vec<u8>>,
    bufs: Vec<FrameBuf>,
    rng: ChaCha20Rng,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl EncodeSmall {
    /// `count` requests of [`common::SMALL_LEN`] bytes.
    pub fn new(clocks: Clocks, count: usize) -> Self {
        Self {
            session: new_session(&clocks),
            codec: ClientCodec::new(TransportKind::Intermediate),
            now: clocks.t0,
            bodies: (0..count).map(|i| common::small_body(i as u8)).collect(),
            bufs: bufs(),
            rng: common::rng(1),
            wire_bytes: 0,
        }
    }

    /// One run; returns the time from the first push to the last frame.
    pub fn run(&mut self) -> Duration {
        // The request bodies are the caller's serialization, not ours.
        let bodies = self.bodies.clone();
        let session = &mut self.session;
        let start = Stopwatch::start();
        for (i, b) in bodies.into_iter().enumerate() {
            session.push_request(i as u64, b);
        }
        let total = drain(
            session,
            self.now,
            &mut self.bufs,
            &mut self.codec,
            &mut self.rng,
            None,
        );
        let t = start.elapsed();
        self.wire_bytes = total;
        drop(session.drain_requests());
        t
    }
}

/// Sends what `session` has queued (untimed, to a throwaway codec) and
/// reads back the session id and the msg_ids its requests went out with.
fn send_queued(
    session: &mut Session,
    now: Instant,
    bufs: &mut [FrameBuf],
    rng: &mut ChaCha20Rng,
) -> (i64, Vec<i64>) {
    let mut sent = Vec::new();
    let mut codec = ClientCodec::new(TransportKind::Intermediate);
    drain(session, now, bufs, &mut codec, rng, Some(&mut sent));
    request_ids(sent)
}

/// The msg_ids of the requests in `sent` (encrypted client packets), and
/// the session id.
fn request_ids(sent: Vec<Vec<u8>>) -> (i64, Vec<i64>) {
    let mut session_id = 0;
    let mut ids = Vec::new();
    for mut p in sent {
        let (sid, more) = common::client_msg_ids(&mut p, &|b| {
            b.len() == common::SMALL_LEN || b.len() == common::BULK_ENCRYPT_LEN
        });
        session_id = sid;
        ids.extend(more);
    }
    (session_id, ids)
}

/// `decode_small`: server containers of rpc_results → each result
/// delivered as a `SessionEvent::Result`.
///
/// One session for every run. Before each run (untimed) it sends the
/// requests and the server's answers to them are built.
pub struct DecodeSmall {
    session: Session,
    server: Option<ServerPackets>,
    clocks: Clocks,
    bodies: Vec<Vec<u8>>,
    result: Vec<u8>,
    wire: Vec<Vec<u8>>,
    mode: common::Reads,
    reads: Vec<Vec<u8>>,
    bufs: Vec<FrameBuf>,
    codec: ClientCodec,
    rng: ChaCha20Rng,
    /// Results delivered in the last run.
    pub delivered: usize,
}

impl DecodeSmall {
    /// Answers to `count` requests, [`common::RESULTS_PER_PACKET`] per packet,
    /// arriving in reads as `mode` says.
    pub fn new(clocks: Clocks, count: usize, mode: common::Reads) -> Self {
        Self {
            session: new_session(&clocks),
            server: None,
            clocks,
            bodies: (0..count).map(|i| common::small_body(i as u8)).collect(),
            result: common::result_body(common::SMALL_LEN),
            wire: Vec::new(),
            mode,
            reads: Vec::new(),
            bufs: bufs(),
            codec: ClientCodec::new(TransportKind::Intermediate),
            rng: common::rng(3),
            delivered: 0,
        }
    }

    /// Sends the requests and builds the server's answers.
    fn prepare(&mut self) {
        for (i, b) in self.bodies.iter().enumerate() {
            self.session.push_request(i as u64, b.clone());
        }
        let (sid, ids) = send_queued(
            &mut self.session,
            self.clocks.t0,
            &mut self.bufs,
            &mut self.rng,
        );
        assert_eq!(ids.len(), self.bodies.len());
        let server = self
            .server
            .get_or_insert_with(|| ServerPackets::new(&self.clocks, sid));
        self.wire = ids
            .chunks(common::RESULTS_PER_PACKET)
            .map(|c| server.results(c, &self.result))
            .collect();
        self.reads = common::reads(&self.wire, self.mode);
    }

    /// The server's packets of the last run (framed).
    pub fn wire(&self) -> &[Vec<u8>] {
        &self.wire
    }

    /// One run; returns the time from the first byte fed to the last event.
    pub fn run(&mut self) -> Duration {
        self.prepare();
        let session = &mut self.session;
        let now = self.clocks.t0;
        let mut delivered = 0;
        let start = Stopwatch::start();
        for read in &self.reads {
            self.codec.feed(read);
            loop {
                // As the sender does: complete packets together, anything
                // else one frame at a time.
                let mut batch: [&mut [u8]; mtsender::crypto::PARALLEL_MESSAGES] =
                    Default::default();
                let n = self.codec.next_packets(&mut batch);
                if n > 0 {
                    session.handle_packets(now, &mut batch[..n], |_, r| {
                        r.expect("the bench's packets are valid");
                    });
                    continue;
                }
                match self.codec.next_frame() {
                    None => break,
                    Some(Ok(Frame::Packet(p))) => session
                        .handle_packet(now, p)
                        .expect("the bench's packets are valid"),
                    Some(other) => panic!("unexpected frame {other:?}"),
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
    session: Session,
    codec: ClientCodec,
    now: Instant,
    body: Vec<u8>,
    bufs: Vec<FrameBuf>,
    rng: ChaCha20Rng,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl BulkEncrypt {
    /// A request of `len` bytes.
    pub fn new(clocks: Clocks, len: usize) -> Self {
        Self {
            session: new_session(&clocks),
            codec: ClientCodec::new(TransportKind::Intermediate),
            now: clocks.t0,
            body: common::bulk_body(len),
            bufs: bufs(),
            rng: common::rng(2),
            wire_bytes: 0,
        }
    }

    /// One run; returns the time from the push to the framed packet.
    pub fn run(&mut self) -> Duration {
        let body = self.body.clone();
        let start = Stopwatch::start();
        self.session.push_request(1, body);
        let total = drain(
            &mut self.session,
            self.now,
            &mut self.bufs,
            &mut self.codec,
            &mut self.rng,
            None,
        );
        let t = start.elapsed();
        self.wire_bytes = total;
        drop(self.session.drain_requests());
        t
    }
}

/// `bulk_decrypt_1m`: one large response through the transport and the
/// session to its `Result` event.
pub struct BulkDecrypt {
    session: Session,
    server: Option<ServerPackets>,
    clocks: Clocks,
    result: Vec<u8>,
    wire: Vec<u8>,
    bufs: Vec<FrameBuf>,
    codec: ClientCodec,
    rng: ChaCha20Rng,
    /// Bytes of the result delivered in the last run.
    pub delivered: usize,
}

impl BulkDecrypt {
    /// A result of `len` bytes.
    pub fn new(clocks: Clocks, len: usize) -> Self {
        Self {
            session: new_session(&clocks),
            server: None,
            clocks,
            result: common::result_body(len),
            wire: Vec::new(),
            bufs: bufs(),
            codec: ClientCodec::new(TransportKind::Intermediate),
            rng: common::rng(4),
            delivered: 0,
        }
    }

    fn prepare(&mut self) {
        self.session.push_request(0, common::small_body(0));
        let (sid, ids) = send_queued(
            &mut self.session,
            self.clocks.t0,
            &mut self.bufs,
            &mut self.rng,
        );
        let server = self
            .server
            .get_or_insert_with(|| ServerPackets::new(&self.clocks, sid));
        self.wire = server.result(ids[0], &self.result);
    }

    /// The server's packet of the last run (framed).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// One run; returns the time from the first byte fed to the event.
    pub fn run(&mut self) -> Duration {
        self.prepare();
        let now = self.clocks.t0;
        let start = Stopwatch::start();
        self.codec.feed(&self.wire);
        while let Some(frame) = self.codec.next_frame() {
            if let Ok(Frame::Packet(p)) = frame {
                self.session
                    .handle_packet(now, p)
                    .expect("the bench's packet is valid");
            }
        }
        let mut delivered = 0;
        while let Some(ev) = self.session.poll_event() {
            if let SessionEvent::Result { result: Ok(r), .. } = ev {
                delivered += black_box(r).len();
            }
        }
        let t = start.elapsed();
        self.delivered = delivered;
        t
    }
}
