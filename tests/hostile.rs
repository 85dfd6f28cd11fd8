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
                    Output::Response { id, result, .. } => self.responses.push((id, result)),
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
