//! In-memory clients for tests: a [`Link`] pumps framed bytes between a
//! client transport codec and a [`FakeDc`]; [`run_handshake`] drives the
//! core's client [`Handshake`] over it; a [`TestClient`] then sends
//! encrypted messages with whatever msg_id, seqno and salt a test wants and
//! reads the server's replies back.

use std::time::Instant;

use mtsender::buf::FrameBuf;
use mtsender::crypto::{self, AuthKey, Side};
use mtsender::handshake::{Finished, Handshake, HandshakeConfig, HandshakeError, KeyKind};
use mtsender::session::ids::{Clock, MsgIdGen, SeqNo};
use mtsender::tl::message::{Container, ContainerWriter, RpcResult, MSG_CONTAINER_ID};
use mtsender::tl::{functions as f, Reader, Serialize};
use mtsender::transport::{obfuscation_init, ClientCodec, Frame, TransportKind};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::dc::{ConnId, DcOutput, FakeDc};

/// A client transport: one of the envelopes, plain or obfuscated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The envelope as is.
    Plain(TransportKind),
    /// The envelope inside obfuscated2.
    Obfuscated(TransportKind),
}

impl Transport {
    /// Every transport a client can use (full cannot be obfuscated).
    pub const ALL: [Transport; 7] = [
        Transport::Plain(TransportKind::Abridged),
        Transport::Plain(TransportKind::Intermediate),
        Transport::Plain(TransportKind::PaddedIntermediate),
        Transport::Plain(TransportKind::Full),
        Transport::Obfuscated(TransportKind::Abridged),
        Transport::Obfuscated(TransportKind::Intermediate),
        Transport::Obfuscated(TransportKind::PaddedIntermediate),
    ];

    /// A client codec for this transport (`dc_id` goes in the obfuscated
    /// header).
    pub fn codec(self, dc_id: i16, rng: &mut ChaCha20Rng) -> ClientCodec {
        match self {
            Self::Plain(kind) => ClientCodec::new(kind),
            Self::Obfuscated(kind) => ClientCodec::obfuscated(kind, obfuscation_init(rng), dc_id)
                .expect("abridged and intermediate transports can be obfuscated"),
        }
    }
}

/// How a [`Link`] cuts the bytes it hands to the server: given the bytes
/// left, the size of the next piece (clamped to 1..=left).
pub type Chunker = Box<dyn FnMut(usize) -> usize>;

/// One client connection to a [`FakeDc`], in memory.
pub struct Link {
    /// The server's id for the connection.
    pub conn: ConnId,
    /// The client end of the transport.
    pub codec: ClientCodec,
    /// Whether the server closed the connection.
    pub closed: bool,
    /// Transport errors received (e.g. -404).
    pub transport_errors: Vec<i32>,
    /// Quick ack tokens received.
    pub quick_acks: Vec<u32>,
    chunker: Chunker,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("conn", &self.conn)
            .field("codec", &self.codec)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Opens a connection with the given transport; `seed` drives the
    /// obfuscation header and the padding.
    pub fn open(dc: &mut FakeDc, now: Instant, transport: Transport, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let dc_id = i16::try_from(dc.dc_id()).unwrap_or(2);
        let codec = transport.codec(dc_id, &mut rng);
        Self {
            conn: dc.open(now),
            codec,
            closed: false,
            transport_errors: Vec::new(),
            quick_acks: Vec::new(),
            chunker: Box::new(|left| left),
            rng,
        }
    }

    /// Hands bytes to the server in pieces chosen by `chunker`.
    pub fn with_chunker(mut self, chunker: Chunker) -> Self {
        self.chunker = chunker;
        self
    }

    /// Random pieces of 1..=max bytes, drawn from `seed`.
    pub fn random_chunks(self, seed: u64, max: usize) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let max = max.max(1);
        self.with_chunker(Box::new(move |left| {
            1 + (rng.next_u32() as usize % max).min(left.saturating_sub(1))
        }))
    }

    /// Frames one packet and feeds it to the server.
    pub fn send(&mut self, dc: &mut FakeDc, now: Instant, packet: &[u8]) {
        self.send_with_quick_ack(dc, now, packet, false);
    }

    /// Like [`send`](Self::send), optionally asking for a quick ack.
    pub fn send_with_quick_ack(
        &mut self,
        dc: &mut FakeDc,
        now: Instant,
        packet: &[u8],
        quick_ack: bool,
    ) {
        let mut buf = FrameBuf::from_payload(packet);
        if quick_ack {
            self.codec.encode_with_quick_ack(&mut buf, &mut self.rng);
        } else {
            self.codec.encode(&mut buf, &mut self.rng);
        }
        self.send_raw(dc, now, buf.as_slice());
    }

    /// Feeds raw bytes to the server, in the link's chunking.
    pub fn send_raw(&mut self, dc: &mut FakeDc, now: Instant, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = (self.chunker)(bytes.len()).clamp(1, bytes.len());
            dc.receive(now, self.conn, &bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    /// Takes every output of the server for this connection and returns the
    /// packets decoded from it (quick acks and transport errors are
    /// recorded on the link).
    pub fn recv(&mut self, dc: &mut FakeDc) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        while let Some(out) = dc.poll_output_for(self.conn) {
            match out {
                DcOutput::Transmit { bytes, .. } => {
                    self.codec.feed(&bytes);
                    while let Some(frame) = self.codec.next_frame() {
                        match frame {
                            Ok(Frame::Packet(p)) => packets.push(p.to_vec()),
                            Ok(Frame::QuickAck(t)) => self.quick_acks.push(t),
                            Ok(Frame::TransportError(e)) => self.transport_errors.push(e),
                            Err(e) => panic!("server sent an undecodable frame: {e}"),
                        }
                    }
                }
                DcOutput::Close { .. } => self.closed = true,
            }
        }
        packets
    }
}

/// Runs the core's client handshake against `dc` over `link` until it
/// finishes. A server that stops answering ends it with
/// [`HandshakeError::Timeout`].
pub fn run_handshake(
    dc: &mut FakeDc,
    now: Instant,
    link: &mut Link,
    hs: &mut Handshake,
) -> Result<Finished, HandshakeError> {
    loop {
        let mut sent = false;
        while let Some(msg) = hs.poll_transmit() {
            link.send(dc, now, &msg);
            sent = true;
        }
        let packets = link.recv(dc);
        if packets.is_empty() && !sent {
            let deadline = hs.poll_timeout().unwrap_or(now);
            hs.handle_timeout(deadline)?;
            return Err(HandshakeError::Timeout);
        }
        for mut p in packets {
            // The handshake takes whole plain messages; the padded
            // transport's padding is the connection layer's to remove.
            if link.codec.kind() == TransportKind::PaddedIntermediate {
                crate::trim_plain_padding(&mut p);
            }
            if let Some(done) = hs.handle_packet(now, &p)? {
                return Ok(done);
            }
        }
    }
}

/// One message from the server, containers flattened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// Its msg_id.
    pub msg_id: i64,
    /// Its seqno.
    pub seqno: i32,
    /// Its body.
    pub body: Vec<u8>,
    /// The container it came in, if any.
    pub container: Option<i64>,
    /// The salt of the packet.
    pub salt: i64,
}

impl Incoming {
    /// The body's constructor id.
    pub fn id(&self) -> u32 {
        Reader::new(&self.body).read_u32().unwrap_or(0)
    }

    /// The (req_msg_id, result) of an `rpc_result`.
    pub fn rpc_result(&self) -> Option<(i64, &[u8])> {
        RpcResult::parse(&self.body)
            .ok()
            .map(|r| (r.req_msg_id, r.result))
    }
}

/// A scripted MTProto client over one auth key and session.
pub struct TestClient {
    /// The current connection.
    pub link: Link,
    /// The key.
    pub auth_key: AuthKey,
    /// The salt put on outgoing messages.
    pub salt: i64,
    /// The session id.
    pub session_id: i64,
    /// msg_id generator.
    pub msg_ids: MsgIdGen,
    /// seqno generator.
    pub seq: SeqNo,
    /// The transport of new connections.
    pub transport: Transport,
    /// What the handshake returned.
    pub finished: Finished,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("link", &self.link)
            .field("auth_key", &self.auth_key)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl TestClient {
    /// Connects, creates a key of `kind` with the core's handshake, and
    /// starts a session. `clock` is the client's wall clock.
    pub fn connect(
        dc: &mut FakeDc,
        clock: Clock,
        now: Instant,
        transport: Transport,
        kind: KeyKind,
        seed: u64,
    ) -> Result<Self, HandshakeError> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut link = Link::open(dc, now, transport, rng.next_u64());
        let mut config =
            HandshakeConfig::new(vec![crate::test_rsa_key().public_key().clone()], dc.dc_id());
        config.kind = kind;
        let mut hs_seed = [0u8; 32];
        rng.fill_bytes(&mut hs_seed);
        let mut hs = Handshake::new(config, clock, now, hs_seed);
        let finished = run_handshake(dc, now, &mut link, &mut hs)?;
        Ok(Self {
            link,
            auth_key: finished.auth_key.clone(),
            salt: finished.first_salt,
            session_id: rng.next_u64() as i64,
            msg_ids: MsgIdGen::new(clock, finished.time_offset),
            seq: SeqNo::default(),
            transport,
            finished,
            rng,
        })
    }

    /// Connects with `key` installed in the server beforehand
    /// ([`FakeDc::install_auth_key`]) instead of a handshake: a session for
    /// the price of none, for tests and fuzzing that are not about keys.
    /// `expires_in` makes it a temporary key.
    pub fn with_installed_key(
        dc: &mut FakeDc,
        clock: Clock,
        now: Instant,
        transport: Transport,
        key: AuthKey,
        expires_in: Option<u32>,
        seed: u64,
    ) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let first_salt = dc.install_auth_key(now, key.clone(), expires_in);
        let time_offset = dc.server_time(now) - clock.unix_secs_at(now);
        let link = Link::open(dc, now, transport, rng.next_u64());
        let expires_at = dc.auth_key_info(key.id()).and_then(|i| i.expires_at);
        Self {
            link,
            auth_key: key.clone(),
            salt: first_salt,
            session_id: rng.next_u64() as i64,
            msg_ids: MsgIdGen::new(clock, time_offset),
            seq: SeqNo::default(),
            transport,
            finished: Finished {
                auth_key: key,
                first_salt,
                time_offset,
                expires_at,
            },
            rng,
        }
    }

    /// A permanent key over plain intermediate.
    pub fn simple(dc: &mut FakeDc, clock: Clock, now: Instant, seed: u64) -> Self {
        Self::connect(
            dc,
            clock,
            now,
            Transport::Plain(TransportKind::Intermediate),
            KeyKind::Permanent,
            seed,
        )
        .expect("handshake with the fake DC")
    }

    /// Drops the current connection (telling the server) and opens a new one.
    pub fn reconnect(&mut self, dc: &mut FakeDc, now: Instant) {
        if !self.link.closed {
            dc.close(now, self.link.conn);
        }
        self.link = Link::open(dc, now, self.transport, self.rng.next_u64());
    }

    /// A new session id (and fresh seqnos).
    pub fn new_session(&mut self) {
        self.session_id = self.rng.next_u64() as i64;
        self.seq = SeqNo::default();
    }

    /// Sends one message with exactly these header fields.
    pub fn send_message(
        &mut self,
        dc: &mut FakeDc,
        now: Instant,
        salt: i64,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
    ) {
        let mut buf = FrameBuf::new();
        buf.append_with(|v| {
            v.extend_from_slice(&salt.to_le_bytes());
            v.extend_from_slice(&self.session_id.to_le_bytes());
            v.extend_from_slice(&msg_id.to_le_bytes());
            v.extend_from_slice(&seqno.to_le_bytes());
            v.extend_from_slice(&(body.len() as i32).to_le_bytes());
            v.extend_from_slice(body);
        });
        crypto::encrypt_message_in_place(&self.auth_key, Side::Client, &mut buf, &mut self.rng);
        let packet = buf.into_vec();
        self.link.send(dc, now, &packet);
    }

    /// Sends `body` with the next msg_id and seqno; returns the msg_id.
    pub fn send(&mut self, dc: &mut FakeDc, now: Instant, body: &[u8], content: bool) -> i64 {
        let msg_id = self.msg_ids.next(now);
        let seqno = self.seq.next(content);
        self.send_message(dc, now, self.salt, msg_id, seqno, body);
        msg_id
    }

    /// Sends a `test.echo` and returns its msg_id.
    pub fn echo(&mut self, dc: &mut FakeDc, now: Instant, payload: &[u8]) -> i64 {
        self.send(dc, now, &echo_body(payload), true)
    }

    /// Sends several (body, content-related) messages in one container;
    /// returns the container's msg_id and the inner ones.
    pub fn send_container(
        &mut self,
        dc: &mut FakeDc,
        now: Instant,
        items: &[(&[u8], bool)],
    ) -> (i64, Vec<i64>) {
        let mut body = Vec::new();
        let mut w = ContainerWriter::begin(&mut body);
        let mut ids = Vec::new();
        for (b, content) in items {
            let id = self.msg_ids.next(now);
            let seqno = self.seq.next(*content);
            w.push(&mut body, id, seqno, b);
            ids.push(id);
        }
        w.finish(&mut body);
        let container_id = self.msg_ids.next(now);
        let seqno = self.seq.next(false);
        self.send_message(dc, now, self.salt, container_id, seqno, &body);
        (container_id, ids)
    }

    /// Decrypts everything the server sent on the current connection.
    /// Packets that do not decrypt, or belong to another session, panic:
    /// the fake DC must never send them.
    pub fn recv(&mut self, dc: &mut FakeDc) -> Vec<Incoming> {
        let mut out = Vec::new();
        for mut packet in self.link.recv(dc) {
            let padded = self.link.codec.kind() == TransportKind::PaddedIntermediate;
            let slice = if padded {
                crypto::strip_transport_padding(&mut packet)
            } else {
                &mut packet[..]
            };
            let plain = crypto::decrypt_message_in_place(&self.auth_key, Side::Server, slice)
                .expect("server packet decrypts");
            let mut r = Reader::new(plain);
            let salt = r.read_i64().expect("header");
            let session_id = r.read_i64().expect("header");
            assert_eq!(
                session_id, self.session_id,
                "server used another session id"
            );
            let msg_id = r.read_i64().expect("header");
            let seqno = r.read_i32().expect("header");
            let body = &plain[32..];
            assert_eq!(msg_id % 2, 1, "server msg_ids are odd");
            if Reader::new(body).read_u32().ok() == Some(MSG_CONTAINER_ID) {
                let c = Container::parse(body).expect("server container parses");
                for m in c.iter() {
                    out.push(Incoming {
                        msg_id: m.msg_id,
                        seqno: m.seqno,
                        body: m.body.to_vec(),
                        container: Some(msg_id),
                        salt,
                    });
                }
            } else {
                out.push(Incoming {
                    msg_id,
                    seqno,
                    body: body.to_vec(),
                    container: None,
                    salt,
                });
            }
        }
        out
    }

    /// Acknowledges these server messages.
    pub fn ack(&mut self, dc: &mut FakeDc, now: Instant, ids: Vec<i64>) {
        let body = mtsender::tl::types::MsgsAck { msg_ids: ids }.to_bytes();
        self.send(dc, now, &body, false);
    }

    /// Runs the server's timers up to `until`, in steps.
    pub fn advance(dc: &mut FakeDc, until: Instant) {
        while let Some(t) = dc.poll_timeout() {
            if t > until {
                break;
            }
            dc.handle_timeout(t);
        }
        dc.handle_timeout(until);
    }
}

/// The TL bytes of `test.echo` with `payload`.
pub fn echo_body(payload: &[u8]) -> Vec<u8> {
    f::TestEcho {
        payload: payload.to_vec(),
    }
    .to_bytes()
}
