//! `sender`: a whole `Sender` driven by an input-encoded sequence of
//! actions, its outputs drained and checked after every one.
//!
//! The harness plays the network and, as far as the input asks, the
//! server: it reads what the sender transmits (transport, handshake and
//! encrypted messages must all be well-formed), can answer the handshake
//! honestly, and can seal input bytes as server messages under the DC's
//! key, so the input reaches the sessions as well as the connection
//! handling.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mtsender::buf::FrameBuf;
use mtsender::sender::persist::{DcAuth, SessionData};
use mtsender::tl::message::{write_gzip_packed, RpcResult, GZIP_PACKED_ID};
use mtsender::tl::{functions, types, Identifiable, Reader, Serialize};
use mtsender::transport::{Frame, ServerDecoder, ServerEncoder, TransportKind};
use mtsender::{
    AutoSleep, CloseReason, ConnId, Dc, DcTable, FixedInterval, Input, NoRetries, Output, Request,
    RequestId, Sender, SenderConfig,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::cursor::Cursor;
use super::handshake::Server as HandshakeServer;
use super::peer::Peer;
use super::{fixed_key, t0, test_public_key, UNIX};

/// Most outputs one drain may produce before it counts as a hang.
const MAX_OUTPUTS: usize = 10_000;
/// Timeouts at one instant before the timer counts as stuck.
const MAX_SAME_INSTANT: usize = 100;

const KINDS: [TransportKind; 4] = [
    TransportKind::Abridged,
    TransportKind::Intermediate,
    TransportKind::PaddedIntermediate,
    TransportKind::Full,
];

/// One connection, as the network and the server see it.
struct Conn {
    id: ConnId,
    dc: i32,
    connected: bool,
    /// Reported closed by the harness.
    closed: bool,
    /// Disconnected by the sender.
    disconnected: bool,
    decoder: ServerDecoder,
    encoder: Option<ServerEncoder>,
    handshake: HandshakeServer,
    /// Bytes other than the harness's own answers were delivered: an
    /// honest handshake may fail on them.
    tainted: bool,
}

/// A content message from the client that the server may answer.
struct Pending {
    conn: usize,
    msg_id: i64,
    body: Vec<u8>,
}

struct Run {
    sender: Sender,
    now: Instant,
    conns: Vec<Conn>,
    peers: BTreeMap<i32, Peer>,
    invoked: BTreeSet<RequestId>,
    answered: BTreeSet<RequestId>,
    shut_down: bool,
    pending: Vec<Pending>,
    rng: ChaCha20Rng,
    padded: bool,
}

impl Run {
    fn server_secs(&self) -> i64 {
        (UNIX + (self.now - t0())).as_secs() as i64
    }

    /// Drains `poll_output` and checks what comes out.
    fn drain(&mut self) {
        let mut n = 0;
        let mut slept = false;
        while let Some(out) = self.sender.poll_output() {
            n += 1;
            assert!(n <= MAX_OUTPUTS, "poll_output does not run dry");
            assert!(!slept, "outputs after SleepUntil");
            match out {
                Output::Connect { conn, dc, .. } => {
                    assert!(!self.shut_down, "a connect after shutdown");
                    assert!(
                        self.conns.iter().all(|c| c.id != conn),
                        "connection id {conn:?} reused"
                    );
                    self.conns.push(Conn {
                        id: conn,
                        dc,
                        connected: false,
                        closed: false,
                        disconnected: false,
                        decoder: ServerDecoder::new(),
                        encoder: None,
                        handshake: HandshakeServer::default(),
                        tainted: false,
                    });
                }
                Output::Transmit { conn, bytes } => {
                    assert!(!self.shut_down, "a transmit after shutdown");
                    let i = self
                        .index(conn)
                        .expect("a transmit on an unknown connection");
                    let c = &self.conns[i];
                    assert!(c.connected, "a transmit before the connection opened");
                    assert!(
                        !c.closed && !c.disconnected,
                        "a transmit on a closed connection"
                    );
                    self.read_client(i, &bytes);
                }
                Output::Disconnect { conn } => {
                    let i = self
                        .index(conn)
                        .expect("a disconnect of an unknown connection");
                    let c = &mut self.conns[i];
                    assert!(!c.disconnected, "disconnected twice");
                    assert!(!c.closed, "disconnected after it was reported closed");
                    c.disconnected = true;
                }
                Output::Response { id, .. } => {
                    assert!(
                        self.invoked.contains(&id),
                        "a response to {id:?}, never invoked"
                    );
                    assert!(self.answered.insert(id), "two responses to {id:?}");
                }
                Output::Shutdown { .. } => {
                    assert!(!self.shut_down, "shut down twice");
                    self.shut_down = true;
                    assert_eq!(
                        self.answered.len(),
                        self.invoked.len(),
                        "shut down with requests unanswered"
                    );
                    assert!(self.sender.is_shut_down());
                }
                Output::SleepUntil(t) => {
                    assert!(t >= self.now, "asked to sleep until the past");
                    slept = true;
                }
                _ => {}
            }
        }
        assert_eq!(
            self.sender.pending(),
            self.invoked.len() - self.answered.len(),
            "pending() disagrees with the responses"
        );
        if let Some((t, why)) = self.sender.next_timeout() {
            assert!(
                t >= self.now,
                "next timeout ({why:?}) in the past after a drain"
            );
        }
        if self.shut_down {
            assert_eq!(self.sender.pending(), 0);
        }
    }

    fn index(&self, conn: ConnId) -> Option<usize> {
        self.conns.iter().position(|c| c.id == conn)
    }

    /// The server end reads what the client wrote.
    fn read_client(&mut self, i: usize, bytes: &[u8]) {
        let c = &mut self.conns[i];
        c.decoder.feed(bytes);
        if c.encoder.is_none() {
            c.encoder = c.decoder.encoder();
        }
        let mut packets = Vec::new();
        while let Some(f) = c.decoder.next_frame() {
            match f {
                Ok(Frame::Packet(p)) => packets.push(p.to_vec()),
                Ok(other) => panic!("the server decoder yielded {other:?}"),
                Err(e) => panic!("the client wrote a bad transport stream: {e}"),
            }
        }
        let dc = c.dc;
        for mut p in packets {
            if p.get(..8) == Some(&[0; 8]) {
                if self.padded {
                    trim_plain(&mut p);
                }
                self.conns[i].handshake.learn(&p);
                continue;
            }
            let Some(peer) = self.peers.get_mut(&dc) else {
                continue;
            };
            let Some(msgs) = peer.learn(&p) else { continue };
            for m in msgs {
                if m.seqno & 1 == 1 {
                    if self.pending.len() == 64 {
                        self.pending.remove(0);
                    }
                    self.pending.push(Pending {
                        conn: i,
                        msg_id: m.msg_id,
                        body: m.body,
                    });
                }
            }
        }
    }

    fn input(&mut self, input: Input<'_>) {
        self.sender.handle_input(input);
        self.drain();
    }

    /// Delivers `bytes` as the server's on connection `i`, framed by its
    /// encoder (once the client's first bytes told the transport).
    fn deliver(&mut self, i: usize, payload: &[u8]) {
        let c = &mut self.conns[i];
        c.tainted = true;
        let Some(enc) = c.encoder.as_mut() else {
            return;
        };
        if payload.is_empty() {
            return;
        }
        let mut payload = payload.to_vec();
        if enc.kind() != TransportKind::PaddedIntermediate {
            payload.resize(payload.len().div_ceil(4) * 4, 0);
        }
        let mut buf = FrameBuf::from_payload(&payload);
        enc.encode(&mut buf, &mut self.rng);
        let conn = c.id;
        let now = self.now;
        self.input(Input::Received {
            conn,
            bytes: buf.as_slice(),
            now,
        });
    }

    /// Time passes to `target`, with every deadline on the way delivered
    /// as the sender asked.
    fn advance(&mut self, target: Instant) {
        let mut same = 0;
        while let Some((t, why)) = self.sender.next_timeout() {
            if t > target {
                break;
            }
            if t <= self.now {
                same += 1;
                assert!(same <= MAX_SAME_INSTANT, "timer {why:?} never advances");
            } else {
                same = 0;
            }
            self.now = self.now.max(t);
            self.input(Input::Timeout(self.now));
        }
        if target > self.now {
            self.now = target;
            self.input(Input::Timeout(target));
        }
    }

    fn pick(&self, b: u8, f: impl Fn(&Conn) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.conns.len())
            .filter(|&i| f(&self.conns[i]))
            .collect();
        (!candidates.is_empty()).then(|| candidates[usize::from(b) % candidates.len()])
    }

    /// The server's answer to a pending client message, in the shape the
    /// input picks.
    fn answer(&mut self, c: &mut Cursor<'_>) -> Option<(usize, Vec<u8>)> {
        if self.pending.is_empty() {
            return None;
        }
        let which = usize::from(c.u8()) % self.pending.len();
        let p = self.pending.remove(which);
        let id = Reader::new(&p.body).read_u32().ok()?;
        let body = match id {
            functions::PingDelayDisconnect::CONSTRUCTOR_ID | functions::Ping::CONSTRUCTOR_ID => {
                let ping_id = Reader::new(&p.body[4..]).read_i64().ok()?;
                types::Pong {
                    msg_id: p.msg_id,
                    ping_id,
                }
                .to_bytes()
            }
            functions::GetFutureSalts::CONSTRUCTOR_ID => {
                let now = self.server_secs() as i32;
                let salts = (0..c.u8() % 4)
                    .map(|k| types::FutureSalt {
                        valid_since: now + i32::from(k) * 1800,
                        valid_until: now + (i32::from(k) + 1) * 1800,
                        salt: c.u64() as i64,
                    })
                    .collect();
                let salts = types::FutureSalts {
                    req_msg_id: p.msg_id,
                    now,
                    salts,
                };
                rpc_result(p.msg_id, &salts.to_bytes())
            }
            types::MsgsStateReq::CONSTRUCTOR_ID => {
                let n = Reader::new(&p.body[4..]).read_vector_len(true, 8).ok()?;
                let status = c.u8();
                types::MsgsStateInfo {
                    req_msg_id: p.msg_id,
                    info: vec![status; n],
                }
                .to_bytes()
            }
            _ => {
                let result = match c.u8() % 10 {
                    0 => true.to_bytes(),
                    1 => rpc_error(420, &format!("FLOOD_WAIT_{}", c.u8() % 4)),
                    2 => rpc_error(
                        303,
                        ["PHONE_MIGRATE_4", "USER_MIGRATE_2", "FILE_MIGRATE_4"]
                            [usize::from(c.u8() % 3)],
                    ),
                    3 => rpc_error(500, "RPC_CALL_FAIL"),
                    4 => rpc_error(400, "BAD_REQUEST"),
                    5 => {
                        let mut v = Vec::new();
                        write_gzip_packed(&mut v, &true.to_bytes());
                        v
                    }
                    6 => {
                        let mut v = GZIP_PACKED_ID.to_le_bytes().to_vec();
                        mtsender::tl::write_bytes(&mut v, c.chunk());
                        v
                    }
                    7 => rpc_error(-503, "Timeout"),
                    8 => c.chunk().to_vec(),
                    _ => rpc_error(c.u16() as i16 as i32, &String::from_utf8_lossy(c.chunk())),
                };
                rpc_result(p.msg_id, &result)
            }
        };
        Some((p.conn, body))
    }
}

fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    RpcResult::write(&mut v, req_msg_id, result);
    v
}

fn rpc_error(code: i32, message: &str) -> Vec<u8> {
    types::RpcError {
        error_code: code,
        error_message: message.into(),
    }
    .to_bytes()
}

/// Drops the padded intermediate transport's padding after a plain
/// message, whose length field says where it ends.
fn trim_plain(p: &mut Vec<u8>) {
    if let Ok(len) = Reader::new(p.get(16..).unwrap_or_default()).read_i32() {
        if let Ok(len) = usize::try_from(len) {
            p.truncate(p.len().min(20 + len));
        }
    }
}

/// Layout: `flags` (bit 0: start from a saved session with a known key
/// for DCs 2 and 4, else create keys; bits 1-2: transport; bit 3:
/// obfuscated; bit 4: a 30 s default request deadline; bit 5: refresh
/// connections every 120 s; bit 6: no retries; bit 7: DC 4 in the table),
/// then actions, each an op byte (bits 0-3 the action, 4-7 its options)
/// and its arguments:
///
/// - 0: invoke a body (u16-prefixed) at the home DC, DC 2, DC 4 or DC
///   `u8` (option bits 4-5), with a 5 s deadline (bit 6);
/// - 1: connected (u8 picks among the connections asked for and not yet
///   connected);
/// - 2: closed (u8 picks among those not reported closed; bit 4: connect
///   failed);
/// - 3: raw bytes (u16-prefixed) received on any connection (u8);
/// - 4: a sealed well-formed server message on a connection (u8): msg_id
///   low half (u32), seqno (u32), padding blocks (u8), body (u16-prefixed,
///   with the placeholders of [`super::peer`]);
/// - 5: a sealed plaintext (u16-prefixed; bit 4: write the session_id);
/// - 6: a transport error: -404, -429, -444 or `-u16` (bits 4-5);
/// - 7: a quick ack token (u32);
/// - 8: time passes (u16 × 10 ms);
/// - 9: time passes to the next deadline;
/// - 10: shutdown;
/// - 11: the server answers a pending client message (u8 picks; the answer
///   is chosen by further bytes);
/// - 12: the server answers the handshake on a connection (u8) honestly,
///   with its choices seeded by 32 bytes;
/// - 13-15: invoke several (u8 % 8) small requests at once.
pub fn sender(data: &[u8]) {
    let mut c = Cursor::new(data);
    let flags = c.u8();
    let saved = flags & 1 == 1;
    let mut dcs = DcTable::empty().set(2, "127.0.0.1:1".parse().expect("an address"));
    if flags & 0x80 != 0 {
        dcs = dcs.set(4, "127.0.0.1:4".parse().expect("an address"));
    }
    let mut config = SenderConfig::new(dcs, vec![test_public_key()]);
    config.transport = KINDS[usize::from(flags >> 1 & 3)];
    config.obfuscated = flags & 8 != 0;
    config.restart_policy = Arc::new(FixedInterval {
        interval: Duration::from_secs(1),
    });
    if flags & 16 != 0 {
        config.request_timeout = Some(Duration::from_secs(30));
    }
    if flags & 32 != 0 {
        config.refresh_every = Some(Duration::from_secs(120));
    }
    config.retry_policy = if flags & 64 != 0 {
        Arc::new(NoRetries)
    } else {
        Arc::new(AutoSleep::default())
    };
    config.session.inflate_cap = 1 << 20;
    let now = t0();
    let seed = [flags; 32];
    let mut peers = BTreeMap::new();
    let sender = if saved {
        let key = fixed_key(2);
        peers.insert(2, Peer::new(key.clone()));
        peers.insert(4, Peer::new(key.clone()));
        let data = SessionData {
            home_dc: 2,
            dcs: [2, 4]
                .into_iter()
                .map(|dc| DcAuth {
                    dc,
                    auth_key: key.clone(),
                    salt: 0,
                    time_offset: 0,
                })
                .collect(),
        };
        Sender::with_session(config, data, now, UNIX, seed)
    } else {
        Sender::new(config, now, UNIX, seed)
    };
    let mut run = Run {
        sender,
        now,
        conns: Vec::new(),
        peers,
        invoked: BTreeSet::new(),
        answered: BTreeSet::new(),
        shut_down: false,
        pending: Vec::new(),
        rng: ChaCha20Rng::from_seed([3; 32]),
        padded: KINDS[usize::from(flags >> 1 & 3)] == TransportKind::PaddedIntermediate,
    };
    run.drain();

    while !c.is_empty() {
        let op = c.u8();
        let opt = op >> 4;
        match op & 15 {
            0 => {
                let body = super::query(c.chunk());
                let dc = match opt & 3 {
                    0 => Dc::Home,
                    1 => Dc::Id(2),
                    2 => Dc::Id(4),
                    _ => Dc::Id(i32::from(c.u8())),
                };
                let mut req = Request::new(body).dc(dc);
                if opt & 4 != 0 {
                    req = req.timeout(Duration::from_secs(5));
                }
                let id = run.sender.invoke(run.now, req);
                assert!(run.invoked.insert(id), "request id {id:?} reused");
                run.drain();
            }
            1 => {
                if let Some(i) = run.pick(c.u8(), |c| !c.connected && !c.closed) {
                    run.conns[i].connected = true;
                    let (conn, now) = (run.conns[i].id, run.now);
                    run.input(Input::Connected { conn, now });
                }
            }
            2 => {
                if let Some(i) = run.pick(c.u8(), |c| !c.closed) {
                    run.conns[i].closed = true;
                    let reason = if opt & 1 == 1 {
                        CloseReason::ConnectFailed("refused".into())
                    } else {
                        CloseReason::Lost("reset".into())
                    };
                    let (conn, now) = (run.conns[i].id, run.now);
                    run.input(Input::Closed { conn, reason, now });
                }
            }
            3 => {
                let b = c.u8();
                let bytes = c.chunk();
                if let Some(i) = run.pick(b, |_| true) {
                    run.conns[i].tainted = true;
                    let (conn, now) = (run.conns[i].id, run.now);
                    run.input(Input::Received { conn, bytes, now });
                }
            }
            4 => {
                let b = c.u8();
                let low = c.u32();
                let seqno = c.u32() as i32;
                let extra = c.u8();
                let body = c.chunk();
                if let Some(i) = run.pick(b, |c| c.encoder.is_some()) {
                    let secs = run.server_secs();
                    if let Some(peer) = run.peers.get(&run.conns[i].dc) {
                        let packet = peer.seal_body(body, low, seqno, extra, secs);
                        run.deliver(i, &packet);
                    }
                }
            }
            5 => {
                let b = c.u8();
                let plain = c.chunk();
                if let Some(i) = run.pick(b, |c| c.encoder.is_some()) {
                    let secs = run.server_secs();
                    if let Some(peer) = run.peers.get(&run.conns[i].dc) {
                        let packet = peer.seal_plain(plain, opt & 1 == 1, secs);
                        run.deliver(i, &packet);
                    }
                }
            }
            6 => {
                let b = c.u8();
                let code = match opt & 3 {
                    0 => -404,
                    1 => -429,
                    2 => -444,
                    _ => -i32::from(c.u16()).max(1),
                };
                if let Some(i) = run.pick(b, |c| c.encoder.is_some()) {
                    let conn = run.conns[i].id;
                    let bytes = run.conns[i]
                        .encoder
                        .as_mut()
                        .expect("picked with an encoder")
                        .transport_error(code);
                    let now = run.now;
                    run.input(Input::Received {
                        conn,
                        bytes: &bytes,
                        now,
                    });
                }
            }
            7 => {
                let b = c.u8();
                let token = c.u32();
                if let Some(i) = run.pick(b, |c| c.encoder.is_some()) {
                    let conn = run.conns[i].id;
                    let bytes = run.conns[i]
                        .encoder
                        .as_mut()
                        .expect("picked with an encoder")
                        .quick_ack(token);
                    let now = run.now;
                    run.input(Input::Received {
                        conn,
                        bytes: &bytes,
                        now,
                    });
                }
            }
            8 => {
                let target = run.now + Duration::from_millis(u64::from(c.u16()) * 10);
                run.advance(target);
            }
            9 => {
                if let Some((t, _)) = run.sender.next_timeout() {
                    run.advance(t.max(run.now));
                }
            }
            10 => {
                run.sender.shutdown(run.now);
                run.drain();
                assert!(run.shut_down, "shutdown() did not shut down");
            }
            11 => {
                if let Some((i, body)) = run.answer(&mut c) {
                    let secs = run.server_secs();
                    let low = c.u32() | 1;
                    if let Some(peer) = run.peers.get(&run.conns[i].dc) {
                        let packet = peer.seal_body(&body, low, 1, 0, secs);
                        run.deliver(i, &packet);
                    }
                }
            }
            12 => {
                let b = c.u8();
                let seed: [u8; 32] = c.array();
                let open = |c: &Conn| c.encoder.is_some() && !c.closed && !c.disconnected;
                if let Some(i) = run.pick(b, open) {
                    let time = run.server_secs() as i32;
                    if let Some(answer) = run.conns[i].handshake.honest_answer(seed, time) {
                        if let Some(key) = run.conns[i].handshake.expected_key.take() {
                            // dh_gen_ok: the server holds the key from now on.
                            let dc = run.conns[i].dc;
                            run.peers.insert(dc, Peer::new(key));
                        }
                        let tainted = run.conns[i].tainted;
                        run.deliver(i, &answer);
                        run.conns[i].tainted = tainted;
                        assert!(
                            tainted || !run.conns[i].disconnected,
                            "the sender refused an honest handshake answer"
                        );
                    }
                }
            }
            _ => {
                for k in 0..c.u8() % 8 {
                    let body = functions::TestEcho {
                        payload: vec![k; usize::from(k) * 3],
                    }
                    .to_bytes();
                    let id = run.sender.invoke(run.now, Request::new(body));
                    assert!(run.invoked.insert(id), "request id {id:?} reused");
                }
                run.drain();
            }
        }
    }
    // However the run went, shutting down answers everything.
    run.sender.shutdown(run.now);
    run.drain();
    assert!(run.shut_down, "shutdown() did not shut down");
    assert_eq!(run.answered, run.invoked, "requests without a response");
}
