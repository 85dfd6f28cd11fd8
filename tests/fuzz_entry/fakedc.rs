//! `fakedc`: the test server, fed client bytes on a few connections: raw,
//! framed by a client codec, or (after a real handshake run here) sealed
//! under a key it holds, so that its session handling sees the input. What
//! it sends back must always decode at the client end.

use std::time::{Duration, Instant};

use mtsender::buf::FrameBuf;
use mtsender::crypto::{
    decrypt_message_in_place, encrypt_message_in_place, strip_transport_padding, AuthKey, Side,
};
use mtsender::handshake::KeyKind;
use mtsender::session::ids::{Clock, MsgIdGen, SeqNo};
use mtsender::tl::message::{Container, ContainerWriter, PlainMessage, MSG_CONTAINER_ID};
use mtsender::tl::Reader;
use mtsender::transport::{ClientCodec, Frame, TransportKind};
use mtsender_testkit::client::{TestClient, Transport};
use mtsender_testkit::{trim_plain_padding, ConnId, DcOutput, FakeDc, FakeDcConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::cursor::Cursor;
use super::{t0, UNIX};

/// Most outputs after one input before it counts as a hang.
const MAX_OUTPUTS: usize = 10_000;
/// Handshakes per input: each costs several modular exponentiations.
const MAX_HANDSHAKES: usize = 1;

/// The client side of a session the harness created.
struct Client {
    key: AuthKey,
    salt: i64,
    session_id: i64,
    /// Every session id this client used (older sessions' answers may
    /// still arrive).
    sessions: Vec<i64>,
    msg_ids: MsgIdGen,
    seq: SeqNo,
}

struct Conn {
    id: ConnId,
    codec: ClientCodec,
    closed: bool,
    client: Option<usize>,
}

struct Run {
    dc: FakeDc,
    now: Instant,
    conns: Vec<Conn>,
    clients: Vec<Client>,
    rng: ChaCha20Rng,
    handshakes: usize,
}

impl Run {
    fn server_secs(&self) -> i64 {
        (UNIX + (self.now - t0())).as_secs() as i64
    }

    /// Takes over a test client's session and connection.
    fn add_client(&mut self, client: TestClient) {
        let TestClient {
            link,
            auth_key,
            salt,
            session_id,
            msg_ids,
            seq,
            ..
        } = client;
        assert!(!link.closed, "the server closed a fresh connection");
        self.clients.push(Client {
            key: auth_key,
            salt,
            session_id,
            sessions: vec![session_id],
            msg_ids,
            seq,
        });
        assert!(self.index(link.conn).is_none(), "connection id reused");
        self.conns.push(Conn {
            id: link.conn,
            codec: link.codec,
            closed: false,
            client: Some(self.clients.len() - 1),
        });
    }

    fn open_conns(&self) -> usize {
        self.conns.iter().filter(|c| !c.closed).count()
    }

    fn pick(&self, b: u8, f: impl Fn(&Conn) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.conns.len())
            .filter(|&i| f(&self.conns[i]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[usize::from(b) % candidates.len()])
    }

    /// Drains the server's outputs: each must be for a connection it has,
    /// and decode at the client end.
    fn drain(&mut self) {
        let mut n = 0;
        while let Some(out) = self.dc.poll_output() {
            n += 1;
            assert!(n <= MAX_OUTPUTS, "the server's outputs do not run dry");
            match out {
                DcOutput::Transmit { conn, bytes } => {
                    let i = self
                        .index(conn)
                        .expect("a transmit on an unknown connection");
                    assert!(!self.conns[i].closed, "a transmit on a closed connection");
                    self.read_server(i, &bytes);
                }
                DcOutput::Close { conn } => {
                    let i = self.index(conn).expect("a close of an unknown connection");
                    assert!(!self.conns[i].closed, "closed twice");
                    self.conns[i].closed = true;
                }
            }
        }
        assert_eq!(
            self.dc.connection_count(),
            self.open_conns(),
            "the server's connections disagree with its opens and closes"
        );
    }

    fn index(&self, conn: ConnId) -> Option<usize> {
        self.conns.iter().position(|c| c.id == conn)
    }

    fn read_server(&mut self, i: usize, bytes: &[u8]) {
        let conn = &mut self.conns[i];
        conn.codec.feed(bytes);
        let padded = conn.codec.kind() == TransportKind::PaddedIntermediate;
        let mut packets = Vec::new();
        while let Some(f) = conn.codec.next_frame() {
            match f {
                Ok(Frame::Packet(p)) => packets.push(p.to_vec()),
                Ok(Frame::TransportError(code)) => {
                    assert_eq!(code, -404, "transport error {code} without a fault");
                }
                Ok(Frame::QuickAck(_)) => {}
                Err(e) => panic!("the server sent an undecodable stream: {e}"),
            }
        }
        let client = conn.client;
        for mut p in packets {
            if p.get(..8) == Some(&[0; 8]) {
                if padded {
                    trim_plain_padding(&mut p);
                }
                PlainMessage::parse(&p).expect("the server's plain messages parse");
                continue;
            }
            let Some(k) = client else {
                panic!("an encrypted packet on a connection without a key");
            };
            let cl = &self.clients[k];
            let slice = if padded {
                strip_transport_padding(&mut p)
            } else {
                &mut p[..]
            };
            let plain = decrypt_message_in_place(&cl.key, Side::Server, slice)
                .expect("the server's packets decrypt");
            let mut r = Reader::new(plain);
            let _salt = r.read_i64().expect("a header");
            let session_id = r.read_i64().expect("a header");
            assert!(
                cl.sessions.contains(&session_id),
                "the server answered another session"
            );
            let msg_id = r.read_i64().expect("a header");
            assert_eq!(msg_id % 2, 1, "server msg_ids are odd");
            let body = &plain[32..];
            if Reader::new(body).read_u32().ok() == Some(MSG_CONTAINER_ID) {
                let c = Container::parse(body).expect("the server's containers parse");
                for m in c.iter() {
                    assert_eq!(m.msg_id % 2, 1, "server msg_ids are odd");
                }
            }
        }
    }

    fn open(&mut self, transport: Transport) {
        let id = self.dc.open(self.now);
        assert!(self.index(id).is_none(), "connection id {id:?} reused");
        let codec = transport.codec(2, &mut self.rng);
        self.conns.push(Conn {
            id,
            codec,
            closed: false,
            client: None,
        });
    }

    /// Frames `payload` with the connection's codec and sends it.
    fn send(&mut self, i: usize, payload: &[u8], quick_ack: bool) {
        let conn = &mut self.conns[i];
        let mut payload = payload.to_vec();
        if payload.is_empty() {
            return;
        }
        if conn.codec.kind() != TransportKind::PaddedIntermediate {
            payload.resize(payload.len().div_ceil(4) * 4, 0);
        }
        let mut buf = FrameBuf::from_payload(&payload);
        if quick_ack {
            conn.codec.encode_with_quick_ack(&mut buf, &mut self.rng);
        } else {
            conn.codec.encode(&mut buf, &mut self.rng);
        }
        let id = conn.id;
        self.dc.receive(self.now, id, buf.as_slice());
    }

    /// An encrypted message from client `k` with these header fields.
    fn sealed(&mut self, k: usize, salt: i64, msg_id: i64, seqno: i32, body: &[u8]) -> Vec<u8> {
        let cl = &self.clients[k];
        let mut buf = FrameBuf::new();
        buf.append_with(|v| {
            v.extend_from_slice(&salt.to_le_bytes());
            v.extend_from_slice(&cl.session_id.to_le_bytes());
            v.extend_from_slice(&msg_id.to_le_bytes());
            v.extend_from_slice(&seqno.to_le_bytes());
            v.extend_from_slice(&(body.len() as i32).to_le_bytes());
            v.extend_from_slice(body);
        });
        encrypt_message_in_place(&cl.key, Side::Client, &mut buf, &mut self.rng);
        buf.into_vec()
    }

    fn advance(&mut self, target: Instant) {
        let mut same = 0;
        while let Some(t) = self.dc.poll_timeout() {
            if t > target {
                break;
            }
            if t <= self.now {
                same += 1;
                assert!(same <= 100, "the server's timer never advances");
            } else {
                same = 0;
            }
            self.now = self.now.max(t);
            self.dc.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(target);
        self.dc.handle_timeout(self.now);
        self.drain();
    }
}

/// Layout: `seed` (u8), then steps, each an op byte (bits 0-3 the step,
/// 4-7 its options) and its arguments:
///
/// - 0: open a connection with transport `option % 7` (plain abridged,
///   intermediate, padded, full; obfuscated abridged, intermediate,
///   padded);
/// - 1: close a connection (u8 picks);
/// - 2: raw bytes (u16-prefixed) on a connection (u8);
/// - 3: a payload (u16-prefixed) framed by the connection's (u8) codec
///   (option bit 0: with a quick ack request);
/// - 4: time passes (u16 × 10 ms);
/// - 5: an update (u16-prefixed body, not a container) pushed to every
///   session;
/// - 6: the server forgets its sessions;
/// - 7: a real handshake on a new connection (transport `option % 7`,
///   temporary key if option bit 3), at most once per input, and only if
///   bit 7 of `seed` is set (else as 12);
/// - 8: from a client with a key, a message on its connection (u8 picks
///   the client): option bits 0-1 salt (right, 0, input u64, right), bit 2
///   msg_id from the input (u64) instead of the next one, bit 3 seqno from
///   the input (u32) instead of the next content one; body u16-prefixed;
/// - 9: from a client, a container of `u8 % 8` bodies (each u16-prefixed;
///   option bit 0 marks them not content-related);
/// - 10: from a client, a plaintext (u16-prefixed) sealed as is;
/// - 11: a client moves to a new connection (transport `option % 7`) or,
///   option bit 3, starts a new session;
/// - 12: a client whose key the server was given beforehand (no
///   handshake), on a new connection (transport `option % 7`, temporary
///   key if option bit 3).
pub fn fakedc(data: &[u8]) {
    let mut c = Cursor::new(data);
    let seed = c.u8();
    let now = t0();
    let config = FakeDcConfig::new(2).seed([seed; 32]);
    let mut run = Run {
        dc: FakeDc::new(config, now, UNIX),
        now,
        conns: Vec::new(),
        clients: Vec::new(),
        rng: ChaCha20Rng::from_seed([seed ^ 0x55; 32]),
        handshakes: 0,
    };

    while !c.is_empty() {
        let op = c.u8();
        let opt = op >> 4;
        let transport = Transport::ALL[usize::from(opt) % Transport::ALL.len()];
        match op & 15 {
            0 => run.open(transport),
            1 => {
                if let Some(i) = run.pick(c.u8(), |c| !c.closed) {
                    run.conns[i].closed = true;
                    let id = run.conns[i].id;
                    run.dc.close(run.now, id);
                }
            }
            2 => {
                let b = c.u8();
                let bytes = c.chunk();
                if let Some(i) = run.pick(b, |_| true) {
                    let id = run.conns[i].id;
                    run.dc.receive(run.now, id, bytes);
                }
            }
            3 => {
                let b = c.u8();
                let payload = c.chunk();
                if let Some(i) = run.pick(b, |c| !c.closed) {
                    run.send(i, payload, opt & 1 == 1);
                }
            }
            4 => {
                let target = run.now + Duration::from_millis(u64::from(c.u16()) * 10);
                run.advance(target);
            }
            5 => {
                let body = c.chunk();
                let mut body = body.to_vec();
                body.resize(body.len().div_ceil(4).max(1) * 4, 0);
                // The server passes an update's body through as given; one
                // that reads as a container would be the harness's own
                // malformed container, not the server's.
                if !body.starts_with(&MSG_CONTAINER_ID.to_le_bytes()) {
                    run.dc.push_update(run.now, body);
                }
            }
            6 => run.dc.forget_sessions(),
            // A real handshake costs several modular exponentiations (tens
            // of milliseconds under coverage instrumentation): only inputs
            // whose seed has bit 7 set get one; others get an installed key.
            7 if seed & 0x80 != 0 => {
                if run.handshakes < MAX_HANDSHAKES {
                    run.handshakes += 1;
                    let kind = if opt & 8 != 0 {
                        KeyKind::Temporary { expires_in: 600 }
                    } else {
                        KeyKind::Permanent
                    };
                    let clock = Clock::new(t0(), UNIX);
                    let client = TestClient::connect(
                        &mut run.dc,
                        clock,
                        run.now,
                        transport,
                        kind,
                        u64::from(seed) << 8 | run.handshakes as u64,
                    )
                    .expect("a handshake with the fake DC succeeds");
                    run.add_client(client);
                }
            }
            7 | 12 => {
                let n = run.clients.len() as u8;
                let key = AuthKey::from_bytes([seed ^ n.wrapping_mul(29); 256]);
                let client = TestClient::with_installed_key(
                    &mut run.dc,
                    Clock::new(t0(), UNIX),
                    run.now,
                    transport,
                    key,
                    (opt & 8 != 0).then_some(600),
                    u64::from(seed) << 8 | u64::from(n),
                );
                run.add_client(client);
            }
            8 => {
                let b = c.u8();
                let salt_in = c.u64() as i64;
                let id_in = c.u64() as i64;
                let seq_in = c.u32() as i32;
                let body = c.chunk().to_vec();
                if let Some(i) = run.pick(b, |c| !c.closed && c.client.is_some()) {
                    let k = run.conns[i].client.expect("picked with a client");
                    let now = run.now;
                    let right = run.dc.current_salt(now, run.clients[k].key.id());
                    let salt = match opt & 3 {
                        1 => 0,
                        2 => salt_in,
                        _ => right.unwrap_or(run.clients[k].salt),
                    };
                    let secs = run.server_secs();
                    let cl = &mut run.clients[k];
                    let msg_id = if opt & 4 != 0 {
                        secs << 32 | (id_in & 0xffff_ffff)
                    } else {
                        cl.msg_ids.next(now)
                    };
                    let seqno = if opt & 8 != 0 {
                        seq_in
                    } else {
                        cl.seq.next(true)
                    };
                    let packet = run.sealed(k, salt, msg_id, seqno, &body[..body.len() / 4 * 4]);
                    run.send(i, &packet, false);
                }
            }
            9 => {
                let b = c.u8();
                let n = c.u8() % 8;
                let bodies: Vec<Vec<u8>> = (0..n).map(|_| c.chunk().to_vec()).collect();
                if let Some(i) = run.pick(b, |c| !c.closed && c.client.is_some()) {
                    let k = run.conns[i].client.expect("picked with a client");
                    let now = run.now;
                    let salt = run
                        .dc
                        .current_salt(now, run.clients[k].key.id())
                        .unwrap_or(run.clients[k].salt);
                    let cl = &mut run.clients[k];
                    let mut body = Vec::new();
                    let mut w = ContainerWriter::begin(&mut body);
                    for b in &bodies {
                        let id = cl.msg_ids.next(now);
                        let seqno = cl.seq.next(opt & 1 == 0);
                        w.push(&mut body, id, seqno, &b[..b.len() / 4 * 4]);
                    }
                    w.finish(&mut body);
                    let id = cl.msg_ids.next(now);
                    let seqno = cl.seq.next(false);
                    let packet = run.sealed(k, salt, id, seqno, &body);
                    run.send(i, &packet, false);
                }
            }
            10 => {
                let b = c.u8();
                let mut plain = c.chunk().to_vec();
                if let Some(i) = run.pick(b, |c| !c.closed && c.client.is_some()) {
                    let k = run.conns[i].client.expect("picked with a client");
                    plain.resize(plain.len().div_ceil(16) * 16, 0);
                    if let Some(sid) = plain.get(8..16) {
                        // The server may answer whatever session this names.
                        let sid = i64::from_le_bytes(sid.try_into().expect("8 bytes"));
                        run.clients[k].sessions.push(sid);
                    }
                    let packet = super::seal(&run.clients[k].key, Side::Client, &plain);
                    run.send(i, &packet, false);
                }
            }
            _ => {
                let b = c.u8();
                if let Some(i) = run.pick(b, |c| !c.closed && c.client.is_some()) {
                    let k = run.conns[i].client.expect("picked with a client");
                    if opt & 8 != 0 {
                        let session_id = run.rng_next() as i64;
                        let cl = &mut run.clients[k];
                        cl.session_id = session_id;
                        cl.sessions.push(cl.session_id);
                        cl.seq = SeqNo::default();
                    } else {
                        run.open(transport);
                        let last = run.conns.len() - 1;
                        run.conns[last].client = Some(k);
                    }
                }
            }
        }
        run.drain();
    }
    let end = run.now + Duration::from_secs(3600);
    run.advance(end);
}

impl Run {
    fn rng_next(&mut self) -> u64 {
        rand_core::RngCore::next_u64(&mut self.rng)
    }
}
