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
