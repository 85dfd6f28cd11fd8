//! Hostile input, injected on purpose: for each decoder and for the
//! Sender, crafted inputs at and past every cap, nested and repeated
//! structures, replays and errors, each with the outcome asserted.
//!
//! What `src/*/tests.rs` and `tests/alloc_bounds.rs` already cover (each
//! session check with its named error, oversized transport frames, bytes
//! prefixes, container limits, gzip caps) is not repeated here; these are
//! the cases at the boundaries and across layers.

use std::time::{Duration, Instant};

use mtsender::buf::FrameBuf;
use mtsender::crypto::{decrypt_message_in_place, encrypt_message_with_padding, AuthKey, Side};
use mtsender::session::{Clock, Session, SessionConfig, SessionEvent};
use mtsender::tl::message::{Container, RpcResult, MSG_CONTAINER_ID};
use mtsender::tl::{functions, types, Reader, Serialize};

const UNIX: u64 = 1_700_000_000;

fn t0() -> Instant {
    // An anchor for the time line; only differences reach the code.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn key(tweak: u8) -> AuthKey {
    AuthKey::from_bytes(std::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ tweak))
}

// ---------------------------------------------------------------------------
// Session

/// The server's end of one session: seals messages for it and reads what
/// it sent.
struct Server {
    key: AuthKey,
    session_id: i64,
    next: i64,
}

impl Server {
    fn for_session(s: &Session) -> Self {
        Self {
            key: s.auth_key().clone(),
            session_id: s.session_id(),
            next: 0,
        }
    }

    /// A fresh server msg_id (odd, at the session's clock).
    fn msg_id(&mut self) -> i64 {
        self.next += 1;
        ((UNIX as i64) << 32) + self.next * 4 + 1
    }

    /// One message as a packet: content-related (odd seqno).
    fn packet(&mut self, body: &[u8]) -> Vec<u8> {
        let id = self.msg_id();
        self.packet_with(id, 1, body)
    }

    fn packet_with(&self, msg_id: i64, seqno: i32, body: &[u8]) -> Vec<u8> {
        let mut buf = FrameBuf::new();
        buf.append_with(|v| {
            v.extend_from_slice(&0i64.to_le_bytes());
            v.extend_from_slice(&self.session_id.to_le_bytes());
            v.extend_from_slice(&msg_id.to_le_bytes());
            v.extend_from_slice(&seqno.to_le_bytes());
            v.extend_from_slice(&(body.len() as i32).to_le_bytes());
            v.extend_from_slice(body);
        });
        let pad = 12 + (16 - (buf.len() + 12) % 16) % 16;
        encrypt_message_with_padding(&self.key, Side::Server, &mut buf, &vec![0; pad]);
        buf.into_vec()
    }
}

fn session() -> (Instant, Session, Server) {
    let now = t0();
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    let s = Session::new(SessionConfig::default(), key(1), 7, clock, 0, [3; 32]);
    let srv = Server::for_session(&s);
    (now, s, srv)
}

/// The messages of every packet the session has to send:
/// `(msg_id, body)`, containers unwrapped.
fn flush(now: Instant, s: &mut Session) -> Vec<(i64, Vec<u8>)> {
    let mut buf = FrameBuf::new();
    let mut out = Vec::new();
    while s.poll_packet(now, &mut buf) {
        let mut packet = buf.as_slice().to_vec();
        let plain = decrypt_message_in_place(s.auth_key(), Side::Client, &mut packet).unwrap();
        let msg_id = i64::from_le_bytes(plain[16..24].try_into().unwrap());
        let body = &plain[32..];
        if Reader::new(body).read_u32().ok() == Some(MSG_CONTAINER_ID) {
            for m in Container::parse(body).unwrap().iter() {
                out.push((m.msg_id, m.body.to_vec()));
            }
        } else {
            out.push((msg_id, body.to_vec()));
        }
    }
    out
}

fn echo(n: u8) -> Vec<u8> {
    functions::TestEcho {
        payload: vec![n; 4],
    }
    .to_bytes()
}

fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    RpcResult::write(&mut v, req_msg_id, result);
    v
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// A session with request 1 in flight; returns its msg_id.
fn one_request() -> (Instant, Session, Server, i64) {
    let (now, mut s, srv) = session();
    s.push_request(1, echo(1));
    let sent = flush(now, &mut s);
    let id = sent.iter().find(|m| m.1 == echo(1)).unwrap().0;
    (now, s, srv, id)
}

/// `future_salts` and `msgs_state_info` answer a `get_future_salts` and a
/// `msgs_state_req`; naming a request's msg_id instead must not take the
/// request out of the session (it used to vanish, never answered).
#[test]
fn service_answers_naming_a_request_leave_it_in_flight() {
    let salts = |req_msg_id| {
        types::FutureSalts {
            req_msg_id,
            now: UNIX as i32,
            salts: vec![],
        }
        .to_bytes()
    };
    let state = |req_msg_id| {
        types::MsgsStateInfo {
            req_msg_id,
            info: vec![4],
        }
        .to_bytes()
    };
    for body in [salts as fn(i64) -> Vec<u8>, state] {
        let (now, mut s, mut srv, id) = one_request();
        s.handle_packet(now, &mut srv.packet(&body(id))).unwrap();
        assert_eq!(s.in_flight(), 1, "the request left the session");
        s.handle_packet(now, &mut srv.packet(&rpc_result(id, &true.to_bytes())))
            .unwrap();
        let answered = events(&mut s).into_iter().any(|e| {
            matches!(e, SessionEvent::Result { req: 1, result: Ok(ref b), .. } if *b == true.to_bytes())
        });
        assert!(answered, "the request was never answered");
        assert_eq!(s.in_flight(), 0);
    }
}

/// The first authentic message of a restored session sets its clock from
/// the message's msg_id, whatever it says: one at the very top of the i64
/// range used to make the next client msg_id overflow (a panic).
#[test]
fn a_server_msg_id_at_the_top_of_the_range_sets_a_clock_that_still_works() {
    let now = t0();
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    for server_msg_id in [i64::MAX, i64::MAX - 2, -1, 1] {
        let config = SessionConfig {
            time_synced: false,
            ..SessionConfig::default()
        };
        let mut s = Session::new(config, key(4), 7, clock, 0, [6; 32]);
        let srv = Server::for_session(&s);
        let ping = functions::Ping { ping_id: 1 }.to_bytes();
        let _ = s.handle_packet(now, &mut srv.packet_with(server_msg_id, 2, &ping));
        let mut last = None;
        for req in 0..3 {
            s.push_request(req, echo(req as u8));
            let id = flush(now, &mut s)
                .into_iter()
                .find(|m| m.1 == echo(req as u8))
                .unwrap()
                .0;
            assert_eq!(id % 4, 0);
            assert!(last.is_none_or(|l| id > l), "ids went back");
            last = Some(id);
        }
    }
}

/// An older server message that arrives after a newer one is still
/// accepted while it is inside the replay window; the same message again
/// is a duplicate and has no effect.
#[test]
fn reordered_packets_are_accepted_and_replays_dropped() {
    use mtsender::session::{InboundError, MsgIdError};
    let (now, mut s, mut srv) = session();
    s.push_request(1, echo(1));
    s.push_request(2, echo(2));
    let sent = flush(now, &mut s);
    let id = |body: Vec<u8>| sent.iter().find(|m| m.1 == body).unwrap().0;
    let (older, newer) = (srv.msg_id(), srv.msg_id());
    let first = srv.packet_with(older, 1, &rpc_result(id(echo(1)), &true.to_bytes()));
    let second = srv.packet_with(newer, 1, &rpc_result(id(echo(2)), &true.to_bytes()));
    s.handle_packet(now, &mut second.clone()).unwrap();
    s.handle_packet(now, &mut first.clone()).unwrap();
    assert_eq!(events(&mut s).len(), 2, "both answers count");
    assert_eq!(s.in_flight(), 0);
    for replay in [first, second] {
        assert_eq!(
            s.handle_packet(now, &mut replay.clone()),
            Err(InboundError::MsgId(MsgIdError::Duplicate))
        );
    }
    assert!(events(&mut s).is_empty(), "a replay had an effect");
}

/// A container of 1024 messages (the most MTProto allows) is taken whole;
/// one of 1025 is dropped whole, before any of its messages has an effect.
#[test]
fn containers_of_1024_and_1025_messages() {
    use mtsender::tl::message::ContainerWriter;
    let (now, mut s, mut srv) = session();
    s.push_request(1, echo(1));
    let req = flush(now, &mut s)[0].0;
    let container = |srv: &mut Server, n: usize| {
        let mut body = Vec::new();
        let mut w = ContainerWriter::begin(&mut body);
        // The answer first: it must not count when the container is refused.
        w.push(
            &mut body,
            srv.msg_id(),
            1,
            &rpc_result(req, &true.to_bytes()),
        );
        for i in 1..n {
            w.push(&mut body, srv.msg_id(), 1, &(i as u32).to_le_bytes());
        }
        w.finish(&mut body);
        let id = srv.msg_id();
        srv.packet_with(id, 0, &body)
    };
    let mut too_many = container(&mut srv, 1025);
    assert!(s.handle_packet(now, &mut too_many).is_err());
    assert!(events(&mut s).is_empty());
    assert_eq!(s.in_flight(), 1);

    let mut most = container(&mut srv, 1024);
    s.handle_packet(now, &mut most).unwrap();
    let evs = events(&mut s);
    assert_eq!(evs.len(), 1024, "one answer and 1023 updates");
    assert!(matches!(evs[0], SessionEvent::Result { req: 1, .. }));
    assert_eq!(s.in_flight(), 0);
}

/// A container inside a container is refused whole: the answer next to it
/// does not count.
#[test]
fn a_nested_container_is_dropped_whole() {
    use mtsender::tl::message::ContainerWriter;
    let (now, mut s, mut srv, id) = one_request();
    let mut inner = Vec::new();
    let w = ContainerWriter::begin(&mut inner);
    w.finish(&mut inner);
    let mut body = Vec::new();
    let mut w = ContainerWriter::begin(&mut body);
    w.push(
        &mut body,
        srv.msg_id(),
        1,
        &rpc_result(id, &true.to_bytes()),
    );
    w.push(&mut body, srv.msg_id(), 0, &inner);
    w.finish(&mut body);
    let outer = srv.msg_id();
    let mut p = srv.packet_with(outer, 0, &body);
    assert!(s.handle_packet(now, &mut p).is_err());
    assert!(events(&mut s).is_empty());
    assert_eq!(s.in_flight(), 1);
}

/// An answer that inflates past the session's cap is not delivered: the
/// request stays in flight and the session asks for the answer again.
#[test]
fn a_gzip_bomb_answer_is_asked_for_again() {
    use mtsender::tl::message::write_gzip_packed;
    let now = t0();
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    let config = SessionConfig {
        inflate_cap: 1 << 16,
        ..SessionConfig::default()
    };
    let mut s = Session::new(config, key(3), 7, clock, 0, [5; 32]);
    let mut srv = Server::for_session(&s);
    s.push_request(1, echo(1));
    let id = flush(now, &mut s)[0].0;
    let mut bomb = Vec::new();
    write_gzip_packed(&mut bomb, &vec![0u8; (1 << 16) + 1]);
    s.handle_packet(now, &mut srv.packet(&rpc_result(id, &bomb)))
        .unwrap();
    assert!(events(&mut s).is_empty());
    assert_eq!(s.in_flight(), 1);
    let again = types::MsgResendAnsReq { msg_ids: vec![id] }.to_bytes();
    assert!(
        flush(now, &mut s).iter().any(|m| m.1 == again),
        "no msg_resend_ans_req for the request"
    );
    // Exactly at the cap it is an answer.
    let mut fits = Vec::new();
    write_gzip_packed(&mut fits, &vec![0u8; 1 << 16]);
    s.handle_packet(now, &mut srv.packet(&rpc_result(id, &fits)))
        .unwrap();
    assert!(matches!(
        events(&mut s)[..],
        [SessionEvent::Result { req: 1, result: Ok(ref b), .. }] if b.len() == 1 << 16
    ));
}

// ---------------------------------------------------------------------------
// TL and transport boundaries

/// The longest TL `bytes` (2^24 - 1, the most a 3-byte length says) goes
/// through; its prefix with one byte missing is an error, not a wait or an
/// allocation.
#[test]
fn tl_bytes_of_the_largest_length() {
    use mtsender::tl::{write_bytes, Reader};
    let max = (1 << 24) - 1;
    let data = vec![0x5a; max];
    let mut out = Vec::new();
    write_bytes(&mut out, &data);
    assert_eq!(out[..4], [254, 0xff, 0xff, 0xff]);
    assert_eq!(out.len(), 4 + max + 1);
    assert_eq!(Reader::new(&out).read_bytes().unwrap().len(), max);
    assert!(Reader::new(&out[..4 + max - 1]).read_bytes().is_err());
}

/// Every decoder takes a frame of exactly its cap and refuses one just
/// over it (the next length the envelope can say), before buffering it.
#[test]
fn frame_caps_are_exact_on_both_ends() {
    use mtsender::transport::{ClientCodec, Error, Frame, ServerDecoder, TransportKind::*};
    let max = 1000;
    for kind in [Abridged, Intermediate, PaddedIntermediate, Full] {
        let over = if kind == PaddedIntermediate {
            1001
        } else {
            1004
        };
        // What a client sends, and what a server sends (the same envelopes).
        let frame = |len: usize, seq: u32| -> Vec<u8> {
            let body = vec![0x11; len];
            let mut v = match kind {
                Abridged => vec![0x7f, (len / 4) as u8, ((len / 4) >> 8) as u8, 0],
                Full => [(len as u32 + 12).to_le_bytes(), seq.to_le_bytes()].concat(),
                _ => (len as u32).to_le_bytes().to_vec(),
            };
            v.extend_from_slice(&body);
            if kind == Full {
                let crc = crc32fast::hash(&v);
                v.extend_from_slice(&crc.to_le_bytes());
            }
            v
        };
        let tag: &[u8] = match kind {
            Abridged => &[0xef],
            Intermediate => &[0xee; 4],
            PaddedIntermediate => &[0xdd; 4],
            Full => &[],
        };

        let mut c = ClientCodec::new(kind).with_max_frame_len(max);
        c.feed(&frame(max, 0));
        assert!(matches!(c.next_frame(), Some(Ok(Frame::Packet(p))) if p.len() == max));
        c.feed(&frame(over, 1)[..8]);
        assert_eq!(
            c.next_frame(),
            Some(Err(Error::FrameTooLong { len: over, max })),
            "{kind:?}"
        );
        assert_eq!(c.buffered(), 0);

        let mut d = ServerDecoder::new().with_max_frame_len(max);
        d.feed(&[tag, &frame(max, 0)].concat());
        assert!(matches!(d.next_frame(), Some(Ok(Frame::Packet(p))) if p.len() == max));
        d.feed(&frame(over, 1)[..8]);
        assert_eq!(
            d.next_frame(),
            Some(Err(Error::FrameTooLong { len: over, max })),
            "{kind:?}"
        );
        assert_eq!(d.buffered(), 0);
    }
}

// ---------------------------------------------------------------------------
// Sender against the fake DC

use mtsender::crypto::RsaPublicKey;
use mtsender::transport::TransportKind;
use mtsender::{
    ConnId, DcTable, FixedInterval, Input, InvocationError, Output, Request, RequestId, Sender,
    SenderConfig,
};
use mtsender_testkit::{DcOutput, FakeDc, FakeDcConfig};

fn test_key() -> RsaPublicKey {
    RsaPublicKey::from_pem(include_str!("vectors/test_rsa_2048.pub.pem")).unwrap()
}

fn sender_config(transport: TransportKind, obfuscated: bool) -> SenderConfig {
    let dcs = DcTable::empty().set(2, "127.0.0.1:1".parse().unwrap());
    let mut config = SenderConfig::new(dcs, vec![test_key()]);
    config.transport = transport;
    config.obfuscated = obfuscated;
    config.restart_policy = std::sync::Arc::new(FixedInterval {
        interval: Duration::from_secs(1),
    });
    config
}

/// A Sender wired to a FakeDc in memory, with the outputs that matter kept.
struct Sim {
    now: Instant,
    sender: Sender,
    dc: FakeDc,
    /// Sender connection → the DC's, while open.
    links: Vec<(ConnId, mtsender_testkit::ConnId)>,
    responses: Vec<(RequestId, Result<Vec<u8>, InvocationError>)>,
    /// The requests answered with `maybe_repeated` set.
    maybe_repeated: Vec<RequestId>,
    connects: usize,
    disconnects: usize,
}

impl Sim {
    fn new(config: SenderConfig) -> Self {
        let now = t0();
        let unix = Duration::from_secs(UNIX);
        Self {
            now,
            sender: Sender::new(config, now, unix, [5; 32]),
            dc: FakeDc::new(FakeDcConfig::new(2).seed([6; 32]), now, unix),
            links: Vec::new(),
            responses: Vec::new(),
            maybe_repeated: Vec::new(),
            connects: 0,
            disconnects: 0,
        }
    }

    fn dc_conn(&self, conn: ConnId) -> Option<mtsender_testkit::ConnId> {
        self.links.iter().find(|l| l.0 == conn).map(|l| l.1)
    }

    /// Moves bytes both ways until neither side has anything to say.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            while let Some(out) = self.sender.poll_output() {
                busy = true;
                match out {
                    Output::Connect { conn, .. } => {
                        self.connects += 1;
                        let d = self.dc.open(self.now);
                        self.links.push((conn, d));
                        let now = self.now;
                        self.sender.handle_input(Input::Connected { conn, now });
                    }
                    Output::Transmit { conn, bytes } => {
                        if let Some(d) = self.dc_conn(conn) {
                            self.dc.receive(self.now, d, &bytes);
                        }
                    }
                    Output::Disconnect { conn } => {
                        self.disconnects += 1;
                        if let Some(d) = self.dc_conn(conn) {
                            self.dc.close(self.now, d);
                        }
                        self.links.retain(|l| l.0 != conn);
                    }
                    Output::Response { id, result, meta } => {
                        if meta.maybe_repeated {
                            self.maybe_repeated.push(id);
                        }
                        self.responses.push((id, result));
                    }
                    _ => {}
                }
            }
            while let Some(out) = self.dc.poll_output() {
                busy = true;
                let (d, bytes) = match out {
                    DcOutput::Transmit { conn, bytes } => (conn, Some(bytes)),
                    DcOutput::Close { conn } => (conn, None),
                };
                let Some(conn) = self.links.iter().find(|l| l.1 == d).map(|l| l.0) else {
                    continue;
                };
                let now = self.now;
                match bytes {
                    Some(bytes) => self.sender.handle_input(Input::Received {
                        conn,
                        bytes: &bytes,
                        now,
                    }),
                    None => {
                        self.links.retain(|l| l.0 != conn);
                        self.sender.handle_input(Input::Closed {
                            conn,
                            reason: mtsender::CloseReason::Lost("closed by the server".into()),
                            now,
                        });
                    }
                }
            }
            if !busy {
                return;
            }
        }
        panic!("the sender and the fake DC never go quiet");
    }

    /// Runs the clock to `until`, waking both sides when they asked.
    fn advance(&mut self, until: Instant) {
        self.pump();
        loop {
            let next = [
                self.sender.next_timeout().map(|t| t.0),
                self.dc.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.sender.handle_input(Input::Timeout(self.now));
                    self.dc.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = until;
        self.sender.handle_input(Input::Timeout(until));
        self.pump();
    }

    fn invoke(&mut self, body: Vec<u8>) -> RequestId {
        let id = self.sender.invoke(self.now, Request::new(body));
        self.pump();
        id
    }

    fn response(&self, id: RequestId) -> Option<&Result<Vec<u8>, InvocationError>> {
        self.responses.iter().find(|r| r.0 == id).map(|r| &r.1)
    }
}

/// The padded intermediate transport pads plain handshake messages too;
/// the sender used to hand them to the handshake with the padding, which
/// refused them (a plain message's length must match its packet), so no
/// key could ever be created over it.
#[test]
fn a_key_is_created_over_padded_intermediate() {
    for obfuscated in [false, true] {
        let mut sim = Sim::new(sender_config(TransportKind::PaddedIntermediate, obfuscated));
        let id = sim.invoke(echo(7));
        sim.advance(sim.now + Duration::from_secs(1));
        assert_eq!(sim.sender.stats().handshakes, 1, "obfuscated: {obfuscated}");
        assert_eq!(
            sim.response(id),
            Some(&Ok(echo(7))),
            "obfuscated: {obfuscated}"
        );
    }
}

/// A session on a restored key takes its clock from the first authentic
/// server message, which restarts the msg_id sequence; a request sent then
/// used to get the id of one still in flight and replace it (that one was
/// never answered).
#[test]
fn a_clock_correction_never_reuses_an_id_in_flight() {
    let now = t0();
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    let config = SessionConfig {
        time_synced: false,
        ..SessionConfig::default()
    };
    let mut s = Session::new(config, key(2), 7, clock, 0, [4; 32]);
    let srv = Server::for_session(&s);
    for req in 0..3 {
        s.push_request(req, echo(req as u8));
    }
    let mut ids: Vec<i64> = flush(now, &mut s).into_iter().map(|m| m.0).collect();
    // The server's clock reads exactly ours: the corrected sequence starts
    // where the first one did.
    let ping = functions::Ping { ping_id: 1 }.to_bytes();
    s.handle_packet(now, &mut srv.packet_with((UNIX as i64) << 32 | 1, 2, &ping))
        .unwrap();
    s.push_request(3, echo(3));
    let sent = flush(now, &mut s);
    let new_id = sent.iter().find(|m| m.1 == echo(3)).unwrap().0;
    assert!(!ids.contains(&new_id), "msg_id {new_id:#x} given twice");
    ids.push(new_id);
    let mut srv = srv;
    for id in ids {
        s.handle_packet(now, &mut srv.packet(&rpc_result(id, &true.to_bytes())))
            .unwrap();
    }
    let answered = events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, SessionEvent::Result { .. }))
        .count();
    assert_eq!(answered, 4);
    assert_eq!(s.in_flight(), 0);
}

// ---------------------------------------------------------------------------
// The fake DC

/// Acks due for a session whose connection closed used to keep their
/// deadline: `poll_timeout` then named the same past instant forever and a
/// server loop woken by it spun.
#[test]
fn fake_dc_acks_on_a_closed_connection_leave_no_past_deadline() {
    use mtsender_testkit::client::TestClient;
    let now = t0();
    let unix = Duration::from_secs(UNIX);
    let mut dc = FakeDc::new(FakeDcConfig::new(2), now, unix);
    let mut client = TestClient::simple(&mut dc, Clock::new(now, unix), now, 1);
    // The session's first message gets new_session_created at once; the
    // next one, content-related and never answered, only an ack later.
    client.echo(&mut dc, now, b"first");
    let _ = client.recv(&mut dc);
    let wait = functions::HttpWait {
        max_delay: 0,
        wait_after: 0,
        max_wait: 0,
    }
    .to_bytes();
    client.send(&mut dc, now, &wait, true);
    let _ = client.recv(&mut dc);
    let deadline = dc.poll_timeout().expect("an ack is due");
    dc.close(now, client.link.conn);
    dc.handle_timeout(deadline);
    assert!(
        dc.poll_timeout().is_none_or(|t| t > deadline),
        "the same deadline again after it was handled"
    );
}

impl Sim {
    /// A plain intermediate sender with a key from the fake DC, and one
    /// answered request behind it.
    fn ready() -> Self {
        let mut sim = Sim::new(sender_config(TransportKind::Intermediate, false));
        let id = sim.invoke(echo(1));
        sim.advance(sim.now + Duration::from_millis(10));
        assert_eq!(sim.response(id), Some(&Ok(echo(1))));
        sim
    }

    /// The sender's open connection.
    fn conn(&self) -> ConnId {
        self.links.last().expect("a connection").0
    }

    /// Bytes from "the server" that the fake DC did not send.
    fn inject(&mut self, bytes: &[u8]) {
        let (conn, now) = (self.conn(), self.now);
        self.sender
            .handle_input(Input::Received { conn, bytes, now });
        self.pump();
    }

    /// Writes what the sender has to the DC, and loses the DC's replies
    /// (they stay queued for a connection that is about to go).
    fn send_only(&mut self) {
        while let Some(out) = self.sender.poll_output() {
            if let Output::Transmit { conn, bytes } = out {
                let d = self.dc_conn(conn).expect("an open connection");
                self.dc.receive(self.now, d, &bytes);
            }
        }
    }

    fn count(&self, f: impl Fn(&Result<Vec<u8>, InvocationError>) -> bool) -> usize {
        self.responses.iter().filter(|r| f(&r.1)).count()
    }
}

/// An intermediate-transport frame.
fn intermediate(payload: &[u8]) -> Vec<u8> {
    [&(payload.len() as u32).to_le_bytes()[..], payload].concat()
}

/// -404: the server does not know the key. The sender forgets it, drops
/// the connection, creates a new key on the next one, and the request it
/// held goes out again on the new session and is answered once.
#[test]
fn transport_error_404_forgets_the_key_and_resends_on_a_new_one() {
    let mut sim = Sim::ready();
    let before = sim.disconnects;
    // The request is queued in the session but not yet written.
    let id = sim.sender.invoke(sim.now, Request::new(echo(2)));
    sim.inject(&intermediate(&(-404i32).to_le_bytes()));
    assert_eq!(sim.disconnects, before + 1, "the connection was kept");
    assert_eq!(sim.response(id), None, "-404 failed the request");
    sim.advance(sim.now + Duration::from_secs(2));
    assert_eq!(sim.sender.stats().handshakes, 2, "no new key");
    assert_eq!(sim.dc.auth_key_count(), 2);
    assert_eq!(sim.response(id), Some(&Ok(echo(2))));
    assert_eq!(sim.count(|_| true), 2);
    assert!(sim.maybe_repeated.is_empty(), "it was never written");
}

/// -404 after a request went out: the server that forgot the key may have
/// run it under that key before, so its answer from the new key says so.
#[test]
fn transport_error_404_flags_requests_already_written() {
    let mut sim = Sim::ready();
    let written = sim.sender.invoke(sim.now, Request::new(echo(2)));
    sim.send_only();
    let queued = sim.sender.invoke(sim.now, Request::new(echo(3)));
    sim.inject(&intermediate(&(-404i32).to_le_bytes()));
    sim.advance(sim.now + Duration::from_secs(2));
    assert_eq!(sim.response(written), Some(&Ok(echo(2))));
    assert_eq!(sim.response(queued), Some(&Ok(echo(3))));
    assert_eq!(sim.maybe_repeated, vec![written]);
}

/// -444: invalid DC. Every request of that DC fails with the transport
/// error; the connection is dropped.
#[test]
fn transport_error_444_fails_the_dcs_requests() {
    let mut sim = Sim::ready();
    let a = sim.sender.invoke(sim.now, Request::new(echo(2)));
    let b = sim.sender.invoke(sim.now, Request::new(echo(3)));
    let before = sim.disconnects;
    sim.inject(&intermediate(&(-444i32).to_le_bytes()));
    let want = Err(InvocationError::Transport { dc: 2, code: -444 });
    assert_eq!(sim.response(a), Some(&want));
    assert_eq!(sim.response(b), Some(&want));
    assert_eq!(sim.disconnects, before + 1);
    assert_eq!(sim.sender.pending(), 0);
}

/// -429: too many connections. The connection is dropped and restarted
/// with the same key; the request written before it is answered once,
/// after the restart, and ran once.
#[test]
fn transport_error_429_reconnects_with_the_same_key() {
    let mut sim = Sim::ready();
    let connects = sim.connects;
    let id = sim.sender.invoke(sim.now, Request::new(echo(2)));
    sim.send_only();
    sim.inject(&intermediate(&(-429i32).to_le_bytes()));
    assert_eq!(sim.response(id), None);
    sim.advance(sim.now + Duration::from_secs(2));
    assert_eq!(sim.connects, connects + 1);
    assert_eq!(sim.sender.stats().handshakes, 1, "the key was dropped");
    assert_eq!(sim.response(id), Some(&Ok(echo(2))));
    assert_eq!(sim.dc.execution_count(&echo(2)), 1);
}

/// Encrypted frames under a key the sender does not have are dropped and
/// counted; the connection and the requests carry on.
#[test]
fn frames_for_an_unknown_auth_key_id_are_dropped() {
    let mut sim = Sim::ready();
    let (disconnects, dropped) = (sim.disconnects, sim.sender.stats().dropped_packets);
    let mut buf = FrameBuf::new();
    buf.extend_from_slice(&[0; 48]);
    encrypt_message_with_padding(&key(9), Side::Server, &mut buf, &[0; 16]);
    sim.inject(&intermediate(buf.as_slice()));
    assert_eq!(sim.sender.stats().dropped_packets, dropped + 1);
    assert_eq!(sim.disconnects, disconnects);
    let id = sim.invoke(echo(2));
    assert_eq!(sim.response(id), Some(&Ok(echo(2))));
}

/// A frame of the server's, delivered twice: the second is dropped as a
/// replay and the request has one response.
#[test]
fn a_replayed_server_frame_has_no_effect() {
    let mut sim = Sim::ready();
    let id = sim.sender.invoke(sim.now, Request::new(echo(2)));
    // Take the sender's bytes to the DC by hand and keep its answer.
    let mut answer = Vec::new();
    while let Some(out) = sim.sender.poll_output() {
        if let Output::Transmit { conn, bytes } = out {
            let d = sim.dc_conn(conn).unwrap();
            sim.dc.receive(sim.now, d, &bytes);
        }
    }
    while let Some(out) = sim.dc.poll_output() {
        if let DcOutput::Transmit { bytes, .. } = out {
            answer.extend_from_slice(&bytes);
        }
    }
    sim.inject(&answer);
    assert_eq!(sim.response(id), Some(&Ok(echo(2))));
    let dropped = sim.sender.stats().dropped_packets;
    sim.inject(&answer);
    assert!(sim.sender.stats().dropped_packets > dropped);
    assert_eq!(sim.count(|r| r == &Ok(echo(2))), 1);
}

/// A frame header past the cap fails the connection at once; the request
/// written on it is answered after the restart, exactly once, and ran once.
#[test]
fn an_oversized_frame_drops_the_connection_and_the_request_survives() {
    let mut sim = Sim::ready();
    let id = sim.sender.invoke(sim.now, Request::new(echo(3)));
    sim.send_only();
    let disconnects = sim.disconnects;
    // A header announcing 1 GiB, in place of the answer.
    sim.inject(&(1u32 << 30).to_le_bytes());
    assert_eq!(sim.disconnects, disconnects + 1);
    assert_eq!(sim.response(id), None);
    sim.advance(sim.now + Duration::from_secs(2));
    assert_eq!(sim.response(id), Some(&Ok(echo(3))));
    assert_eq!(sim.count(|r| r == &Ok(echo(3))), 1);
    assert_eq!(sim.dc.execution_count(&echo(3)), 1);
}

/// A graceful refresh opens a second connection; if the first one drops
/// meanwhile, the restart opens a third. The refresh's connection used to
/// stay open and, once connected, take over from the restart's, which was
/// still connecting: the sender then wrote to a connection the network had
/// not opened. The refresh is now abandoned with the connection it was to
/// replace.
#[test]
fn a_refresh_is_abandoned_when_the_connection_it_replaces_drops() {
    use mtsender::sender::persist::{DcAuth, SessionData};
    use mtsender::CloseReason;
    let now = t0();
    let mut config = sender_config(TransportKind::Intermediate, false);
    config.refresh_every = Some(Duration::from_secs(120));
    let data = SessionData {
        home_dc: 2,
        dcs: vec![DcAuth {
            dc: 2,
            auth_key: key(5),
            salt: 0,
            time_offset: 0,
        }],
    };
    let mut sender = Sender::with_session(config, data, now, Duration::from_secs(UNIX), [7; 32]);
    let mut connected = std::collections::BTreeSet::new();
    let drain = |sender: &mut Sender, connected: &std::collections::BTreeSet<ConnId>| {
        let mut out = Vec::new();
        while let Some(o) = sender.poll_output() {
            if let Output::Transmit { conn, .. } = &o {
                assert!(
                    connected.contains(conn),
                    "a write to {conn:?} before it opened"
                );
            }
            out.push(o);
        }
        out
    };
    sender.invoke(now, Request::new(echo(1)));
    drain(&mut sender, &connected);
    connected.insert(ConnId(0));
    sender.handle_input(Input::Connected {
        conn: ConnId(0),
        now,
    });
    drain(&mut sender, &connected);

    // The refresh opens connection 1.
    let t = now + Duration::from_secs(120);
    sender.handle_input(Input::Timeout(t));
    let out = drain(&mut sender, &connected);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Connect {
            conn: ConnId(1),
            ..
        }
    )));
    // Connection 0 drops: the refresh goes with it.
    let reason = CloseReason::Lost("reset".into());
    sender.handle_input(Input::Closed {
        conn: ConnId(0),
        reason,
        now: t,
    });
    let out = drain(&mut sender, &connected);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Disconnect { conn: ConnId(1) })),
        "the refresh's connection is left open"
    );
    // The restart opens connection 2.
    let t = t + Duration::from_secs(1);
    sender.handle_input(Input::Timeout(t));
    let out = drain(&mut sender, &connected);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Connect {
            conn: ConnId(2),
            ..
        }
    )));
    // A late "connected" for the abandoned one changes nothing; the
    // restart's connection, once open, carries the session.
    connected.insert(ConnId(1));
    sender.handle_input(Input::Connected {
        conn: ConnId(1),
        now: t,
    });
    assert!(drain(&mut sender, &connected)
        .iter()
        .all(|o| matches!(o, Output::SleepUntil(_))));
    connected.insert(ConnId(2));
    sender.handle_input(Input::Connected {
        conn: ConnId(2),
        now: t,
    });
    let out = drain(&mut sender, &connected);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Transmit {
            conn: ConnId(2),
            ..
        }
    )));
}
