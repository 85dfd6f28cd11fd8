use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::crypto::{decrypt_message_in_place, encrypt_message_with_padding};
use crate::tl::message::{Container, ContainerWriter, RpcResult, MSG_CONTAINER_ID};
use crate::tl::{functions, types, Deserialize, Identifiable, Reader, Serialize};

const UNIX: i64 = 1_700_000_000;

/// A message the session sent: `(msg_id, seqno, body)`.
type SentMsg = (i64, i32, Vec<u8>);

use crate::test_util::t0;

/// The server side, reduced to what these tests need: encrypting packets
/// for the session and reading what it sent.
struct Server {
    key: AuthKey,
    session_id: i64,
    counter: i64,
    rng: ChaCha20Rng,
}

impl Server {
    fn msg_id(&mut self) -> i64 {
        self.counter += 1;
        (UNIX << 32) + self.counter * 4 + 1
    }

    /// A packet with one message.
    fn packet(&mut self, body: &[u8], content: bool) -> Vec<u8> {
        let id = self.msg_id();
        self.packet_with(id, content as i32, body)
    }

    fn packet_with(&mut self, msg_id: i64, seqno: i32, body: &[u8]) -> Vec<u8> {
        self.raw_packet(self.session_id, msg_id, seqno, body, body.len() as i32, 16)
    }

    /// Full control: the msg_len field may lie; `padding` must make a valid
    /// encryption (12..=1024 and aligned), the lie is only in the header.
    fn raw_packet(
        &mut self,
        session_id: i64,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
        msg_len: i32,
        min_pad: usize,
    ) -> Vec<u8> {
        let mut buf = FrameBuf::new();
        buf.append_with(|v| {
            v.extend_from_slice(&0i64.to_le_bytes());
            v.extend_from_slice(&session_id.to_le_bytes());
            v.extend_from_slice(&msg_id.to_le_bytes());
            v.extend_from_slice(&seqno.to_le_bytes());
            v.extend_from_slice(&msg_len.to_le_bytes());
            v.extend_from_slice(body);
        });
        let pad = min_pad + (16 - (buf.len() + min_pad) % 16) % 16;
        encrypt_message_with_padding(&self.key, Side::Server, &mut buf, &vec![0xaa; pad]);
        let _ = &mut self.rng;
        buf.into_vec()
    }

    /// A packet holding a container of `(body, content_related)`.
    fn container(&mut self, msgs: &[(&[u8], bool)]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut w = ContainerWriter::begin(&mut body);
        for (b, content) in msgs {
            let id = self.msg_id();
            w.push(&mut body, id, *content as i32, b);
        }
        w.finish(&mut body);
        self.packet(&body, false)
    }
}

/// What the session sent: `(msg_id, seqno, body)` of each message (the
/// container unwrapped), and the outer `(msg_id, seqno)`.
fn read_sent(key: &AuthKey, buf: &FrameBuf) -> (Vec<SentMsg>, (i64, i32)) {
    let mut packet = buf.as_slice().to_vec();
    let plain = decrypt_message_in_place(key, Side::Client, &mut packet).unwrap();
    let mut r = Reader::new(plain);
    r.read_i64().unwrap();
    r.read_i64().unwrap();
    let msg_id = r.read_i64().unwrap();
    let seqno = r.read_i32().unwrap();
    r.read_i32().unwrap();
    let body = r.read_rest();
    let msgs = if Reader::new(body).read_u32().unwrap() == MSG_CONTAINER_ID {
        Container::parse(body)
            .unwrap()
            .iter()
            .map(|m| (m.msg_id, m.seqno, m.body.to_vec()))
            .collect()
    } else {
        vec![(msg_id, seqno, body.to_vec())]
    };
    (msgs, (msg_id, seqno))
}

fn setup() -> (Instant, Session, Server) {
    let now = t0();
    let key = AuthKey::from_bytes([0x5c; 256]);
    let clock = Clock::new(now, Duration::from_secs(UNIX as u64));
    let mut s = Session::new(SessionConfig::default(), key.clone(), 42, clock, 0, [1; 32]);
    // Future salts have their own test; here they would only add a message.
    s.salts_requested = true;
    let server = Server {
        key,
        session_id: s.session_id(),
        counter: 0,
        rng: ChaCha20Rng::from_seed([2; 32]),
    };
    (now, s, server)
}

/// A session whose local clock is `skew_secs` off the server's and that
/// does not know it (a restored key).
fn setup_unsynced(skew_secs: i64) -> (Instant, Session, Server) {
    let now = t0();
    let key = AuthKey::from_bytes([0x5c; 256]);
    let clock = Clock::new(now, Duration::from_secs((UNIX + skew_secs) as u64));
    let config = SessionConfig {
        time_synced: false,
        ..Default::default()
    };
    let mut s = Session::new(config, key.clone(), 42, clock, 0, [1; 32]);
    s.salts_requested = true;
    let srv = Server {
        key,
        session_id: s.session_id(),
        counter: 0,
        rng: ChaCha20Rng::from_seed([2; 32]),
    };
    (now, s, srv)
}

fn echo(n: u8) -> Vec<u8> {
    functions::TestEcho {
        payload: vec![n; 8],
    }
    .to_bytes()
}

/// Sends everything queued; returns the messages of each packet.
fn flush(now: Instant, s: &mut Session) -> Vec<SentMsg> {
    let mut buf = FrameBuf::new();
    let mut all = Vec::new();
    while s.poll_packet(now, &mut buf) {
        all.extend(read_sent(s.auth_key(), &buf).0);
    }
    all
}

fn ids_of(sent: &[SentMsg], body: &[u8]) -> Vec<i64> {
    sent.iter().filter(|m| m.2 == body).map(|m| m.0).collect()
}

fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    RpcResult::write(&mut out, req_msg_id, result);
    out
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn constructor(body: &[u8]) -> u32 {
    Reader::new(body).read_u32().unwrap()
}

#[test]
fn a_single_request_goes_alone_with_odd_seqno() {
    let (now, mut s, _) = setup();
    s.push_request(1, echo(1));
    let mut buf = FrameBuf::new();
    assert!(s.poll_packet(now, &mut buf));
    let (msgs, outer) = read_sent(s.auth_key(), &buf);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].2, echo(1));
    assert_eq!(outer.1, 1);
    assert_eq!(outer.0 % 4, 0);
    assert_eq!(outer.0 >> 32, UNIX);
    assert!(!s.poll_packet(now, &mut buf));
    assert!(buf.is_empty());
}

#[test]
fn many_requests_share_a_container() {
    let (now, mut s, _) = setup();
    for i in 0..10 {
        s.push_request(i, echo(i as u8));
    }
    let mut buf = FrameBuf::new();
    assert!(s.poll_packet(now, &mut buf));
    let (msgs, (outer_id, outer_seq)) = read_sent(s.auth_key(), &buf);
    assert_eq!(msgs.len(), 10);
    let ids: Vec<i64> = msgs.iter().map(|m| m.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing ids");
    assert!(
        outer_id > *ids.last().unwrap(),
        "container id after its messages"
    );
    assert_eq!(outer_seq % 2, 0, "a container is not content related");
    let seqs: Vec<i32> = msgs.iter().map(|m| m.1).collect();
    assert_eq!(seqs, (0..10).map(|i| 2 * i + 1).collect::<Vec<_>>());
}

#[test]
fn poll_packets_fills_buffers_in_order_and_encrypts_each() {
    // A burst of 2 messages per packet over 11 packets: one call fills all
    // 8 buffers, the next the last 3; every packet decrypts on its own and
    // together they carry the requests in order, each once.
    let (now, mut s, _) = setup();
    s.config.max_container_messages = 2;
    for i in 0..22 {
        s.push_request(i, echo(i as u8));
    }
    let mut bufs: Vec<FrameBuf> = (0..crate::crypto::PARALLEL_MESSAGES)
        .map(|_| FrameBuf::new())
        .collect();
    let mut got = Vec::new();
    let mut outer_ids = Vec::new();
    let mut filled = Vec::new();
    loop {
        let n = s.poll_packets(now, &mut bufs);
        filled.push(n);
        for buf in &bufs[..n] {
            let (msgs, (outer, _)) = read_sent(s.auth_key(), buf);
            assert_eq!(msgs.len(), 2);
            got.extend(msgs.into_iter().map(|m| m.2));
            outer_ids.push(outer);
        }
        if n < bufs.len() {
            break;
        }
    }
    assert_eq!(filled, vec![8, 3]);
    assert_eq!(got, (0..22).map(|i| echo(i as u8)).collect::<Vec<_>>());
    assert!(outer_ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.in_flight(), 22);
    assert_eq!(s.poll_packets(now, &mut bufs), 0);
}

#[test]
fn container_size_caps_split_packets() {
    let (now, mut s, _) = setup();
    s.config.max_container_messages = 4;
    for i in 0..10 {
        s.push_request(i, echo(i as u8));
    }
    let mut buf = FrameBuf::new();
    let mut packets = 0;
    let mut total = 0;
    while s.poll_packet(now, &mut buf) {
        let (msgs, _) = read_sent(s.auth_key(), &buf);
        assert!(msgs.len() <= 4);
        total += msgs.len();
        packets += 1;
    }
    assert_eq!(total, 10);
    assert_eq!(packets, 3);

    let (now, mut s, _) = setup();
    s.config.max_packet_body = 200;
    s.push_request(1, vec![1; 400]);
    s.push_request(2, vec![2; 40]);
    s.push_request(3, vec![3; 40]);
    let mut sizes = Vec::new();
    while s.poll_packet(now, &mut buf) {
        sizes.push(read_sent(s.auth_key(), &buf).0.len());
    }
    // The big one alone (over the cap, still sent), then the two small ones together.
    assert_eq!(sizes, vec![1, 2]);
}

#[test]
fn large_compressible_bodies_are_gzipped() {
    let (now, mut s, _) = setup();
    let big = functions::TestEcho {
        payload: vec![7; 5000],
    }
    .to_bytes();
    s.push_request(1, big.clone());
    let sent = flush(now, &mut s);
    let body = &sent
        .iter()
        .find(|m| constructor(&m.2) == crate::tl::message::GZIP_PACKED_ID)
        .unwrap()
        .2;
    assert!(body.len() < 200);
    assert_eq!(crate::tl::message::unpack_gzip(body, 1 << 20).unwrap(), big);
    // Incompressible bodies go as they are.
    let (now, mut s, _) = setup();
    let mut noise = vec![0u8; 3000];
    rand_core::RngCore::fill_bytes(&mut ChaCha20Rng::from_seed([9; 32]), &mut noise);
    s.push_request(1, noise.clone());
    assert!(flush(now, &mut s).iter().any(|m| m.2 == noise));
}

#[test]
fn rpc_results_errors_and_gzipped_results_are_delivered() {
    let (now, mut s, mut srv) = setup();
    for i in 1..=3 {
        s.push_request(i, echo(i as u8));
    }
    let sent = flush(now, &mut s);
    let id = |n| ids_of(&sent, &echo(n))[0];
    let mut gz = Vec::new();
    crate::tl::message::write_gzip_packed(&mut gz, &echo(3));
    let err = types::RpcError {
        error_code: 420,
        error_message: "FLOOD_WAIT_3".into(),
    }
    .to_bytes();
    let p = srv.container(&[
        (&rpc_result(id(1), &echo(1)), true),
        (&rpc_result(id(2), &err), true),
        (&rpc_result(id(3), &gz), true),
    ]);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::Result {
                req: 1,
                result: Ok(echo(1)),
                maybe_repeated: false
            },
            SessionEvent::Result {
                req: 2,
                result: Err(RpcError {
                    code: 420,
                    message: "FLOOD_WAIT_3".into()
                }),
                maybe_repeated: false
            },
            SessionEvent::Result {
                req: 3,
                result: Ok(echo(3)),
                maybe_repeated: false
            },
        ]
    );
    assert_eq!(s.in_flight(), 0);
    // A duplicate answer (e.g. after a resend) is not delivered twice.
    let again = srv.packet(&rpc_result(id(1), &echo(1)), true);
    s.handle_packet(now, &mut again.clone()).unwrap();
    assert!(events(&mut s).is_empty());
}

#[test]
fn updates_are_handed_up_in_order_and_acked() {
    let (now, mut s, mut srv) = setup();
    let updates: Vec<Vec<u8>> = (0..3u32)
        .map(|i| [0xdeadbeef_u32.to_le_bytes(), i.to_le_bytes()].concat())
        .collect();
    let p = srv.container(&[(&updates[0], true), (&updates[1], true)]);
    s.handle_packet(now, &mut p.clone()).unwrap();
    let p = srv.packet(&updates[2], true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    let got: Vec<Vec<u8>> = events(&mut s)
        .into_iter()
        .map(|e| match e {
            SessionEvent::Update { body } => body,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, updates);
    // Three content messages await an ack, due after ack_delay.
    let (deadline, SessionTimer::Ack) = s.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_millis(500));
    assert!(
        flush(now, &mut s).is_empty(),
        "no stand-alone ack before the delay"
    );
    s.handle_timeout(deadline);
    let sent = flush(deadline, &mut s);
    assert_eq!(sent.len(), 1);
    let ack = types::MsgsAck::from_bytes(&sent[0].2).unwrap();
    assert_eq!(ack.msg_ids.len(), 3);
    assert_eq!(sent[0].1 % 2, 0, "acks are not content related");
}

#[test]
fn acks_ride_along_and_many_acks_go_at_once() {
    let (now, mut s, mut srv) = setup();
    let upd = 0xdeadbeef_u32.to_le_bytes();
    let p = srv.packet(&upd, true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    s.push_request(1, echo(1));
    let sent = flush(now, &mut s);
    assert!(sent
        .iter()
        .any(|m| constructor(&m.2) == types::MsgsAck::CONSTRUCTOR_ID));
    assert!(s.poll_timeout().is_none());

    let (now, mut s, mut srv) = setup();
    for _ in 0..16 {
        let p = srv.packet(&upd, true);
        s.handle_packet(now, &mut p.clone()).unwrap();
    }
    assert!(s.wants_to_send());
    let sent = flush(now, &mut s);
    assert_eq!(
        types::MsgsAck::from_bytes(&sent[0].2)
            .unwrap()
            .msg_ids
            .len(),
        16
    );
    // Non-content messages (a msgs_ack from the server) need no ack.
    let p = srv.packet(&types::MsgsAck { msg_ids: vec![] }.to_bytes(), false);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert!(s.poll_timeout().is_none());
}

// ---- inbound checks: each drops the packet with no effect ----

/// A request in flight, and a server answer to it that is valid: each
/// inbound check below breaks one thing about it and shows nothing happens.
fn in_flight() -> (Instant, Session, Server, i64) {
    let (now, mut s, srv) = setup();
    s.push_request(1, echo(1));
    let sent = flush(now, &mut s);
    let id = ids_of(&sent, &echo(1))[0];
    (now, s, srv, id)
}

fn assert_no_effect(s: &mut Session, now: Instant) {
    assert!(events(s).is_empty());
    assert_eq!(s.in_flight(), 1);
    assert!(s.poll_timeout().is_none(), "nothing to ack");
    assert!(flush(now, s).is_empty());
}

#[test]
fn check_packet_length() {
    let (now, mut s, mut srv, id) = in_flight();
    let p = srv.packet(&rpc_result(id, &echo(1)), true);
    for cut in [0, 8, 23, 24, p.len() - 1] {
        let mut bad = p[..cut].to_vec();
        assert_eq!(
            s.handle_packet(now, &mut bad),
            Err(InboundError::Decrypt(DecryptError::BadLength)),
            "cut {cut}"
        );
    }
    assert_no_effect(&mut s, now);
}

#[test]
fn check_auth_key_id() {
    let (now, mut s, mut srv, id) = in_flight();
    let mut p = srv.packet(&rpc_result(id, &echo(1)), true);
    p[0] ^= 1;
    assert_eq!(
        s.handle_packet(now, &mut p),
        Err(InboundError::Decrypt(DecryptError::UnknownAuthKeyId))
    );
    assert_no_effect(&mut s, now);
}

#[test]
fn check_msg_key() {
    let (now, mut s, mut srv, id) = in_flight();
    let p = srv.packet(&rpc_result(id, &echo(1)), true);
    for at in [8, 23, 24, 40, p.len() - 1] {
        let mut bad = p.clone();
        bad[at] ^= 0x10;
        assert_eq!(
            s.handle_packet(now, &mut bad),
            Err(InboundError::Decrypt(DecryptError::MsgKeyMismatch)),
            "at {at}"
        );
    }
    // A packet under another key with our key's id.
    let mut other = Server {
        key: AuthKey::from_bytes([1; 256]),
        ..srv
    };
    let mut p = other.packet(&rpc_result(id, &echo(1)), true);
    p[..8].copy_from_slice(&s.auth_key().id().to_le_bytes());
    assert_eq!(
        s.handle_packet(now, &mut p),
        Err(InboundError::Decrypt(DecryptError::MsgKeyMismatch))
    );
    assert_no_effect(&mut s, now);
}

#[test]
fn check_msg_len_and_padding() {
    let (now, mut s, mut srv, id) = in_flight();
    let body = rpc_result(id, &echo(1));
    let len = body.len() as i32;
    let sid = s.session_id();
    let mid = srv.msg_id();
    // The padding raw_packet uses with a minimum of 12.
    let real_pad = 12 + (16 - (32 + body.len() + 12) % 16) % 16;
    for (msg_len, min_pad, want) in [
        (len + 2, 16, DecryptError::BadMessageLength), // not a multiple of 4
        (-4, 16, DecryptError::BadMessageLength),      // negative
        (len + 4096, 16, DecryptError::BadMessageLength), // past the end
        (len + real_pad as i32 - 8, 12, DecryptError::BadPadding), // leaves 8 bytes of padding
        (0, 1000, DecryptError::BadPadding),           // leaves > 1024 bytes of padding
    ] {
        let mut p = srv.raw_packet(sid, mid, 1, &body, msg_len, min_pad);
        assert_eq!(
            s.handle_packet(now, &mut p),
            Err(InboundError::Decrypt(want)),
            "msg_len {msg_len}"
        );
    }
    assert_no_effect(&mut s, now);
}

#[test]
fn check_session_id() {
    let (now, mut s, mut srv, id) = in_flight();
    let mid = srv.msg_id();
    let body = rpc_result(id, &echo(1));
    let mut p = srv.raw_packet(s.session_id() ^ 1, mid, 1, &body, body.len() as i32, 16);
    assert_eq!(
        s.handle_packet(now, &mut p),
        Err(InboundError::WrongSessionId)
    );
    assert_no_effect(&mut s, now);
}

#[test]
fn check_even_msg_id() {
    let (now, mut s, mut srv, id) = in_flight();
    let mid = srv.msg_id() - 1;
    let mut p = srv.packet_with(mid, 1, &rpc_result(id, &echo(1)));
    assert_eq!(
        s.handle_packet(now, &mut p),
        Err(InboundError::MsgId(MsgIdError::Even))
    );
    // Inside a container too: the whole container is dropped.
    let mut body = Vec::new();
    let mut w = ContainerWriter::begin(&mut body);
    w.push(&mut body, srv.msg_id(), 1, &0xdeadbeef_u32.to_le_bytes());
    w.push(&mut body, srv.msg_id() - 1, 1, &rpc_result(id, &echo(1)));
    w.finish(&mut body);
    let mut p = srv.packet(&body, false);
    assert_eq!(
        s.handle_packet(now, &mut p),
        Err(InboundError::MsgId(MsgIdError::Even))
    );
    assert_no_effect(&mut s, now);
}

#[test]
fn check_time_window_once_synced() {
    let (now, mut s, mut srv, id) = in_flight();
    for (secs, skew) in [(31, 31), (-301, -301)] {
        let mid = ((UNIX + secs) << 32) | 1;
        let mut p = srv.packet_with(mid, 1, &rpc_result(id, &echo(1)));
        assert_eq!(
            s.handle_packet(now, &mut p),
            Err(InboundError::MsgId(MsgIdError::OutOfWindow {
                skew_secs: skew
            }))
        );
    }
    assert_no_effect(&mut s, now);
    // The edges are inside.
    let mut p = srv.packet_with(((UNIX + 30) << 32) | 1, 0, &0xdeadbeef_u32.to_le_bytes());
    s.handle_packet(now, &mut p).unwrap();
    let mut p = srv.packet_with(((UNIX - 300) << 32) | 1, 0, &0xdeadbeef_u32.to_le_bytes());
    s.handle_packet(now, &mut p).unwrap();
}

#[test]
fn an_unsynced_session_takes_its_clock_from_the_first_authentic_message() {
    // Local clock 2000 s slow, offset unknown.
    let (now, mut s, mut srv) = setup_unsynced(-2000);
    let mut p = srv.packet(&0xdeadbeef_u32.to_le_bytes(), false);
    s.handle_packet(now, &mut p).unwrap();
    assert_eq!(s.time_offset(), 2000);
    // From now on the window applies.
    let mut p = srv.packet_with(((UNIX + 100) << 32) | 1, 0, &0xdeadbeef_u32.to_le_bytes());
    assert!(matches!(
        s.handle_packet(now, &mut p),
        Err(InboundError::MsgId(MsgIdError::OutOfWindow { .. }))
    ));
    s.push_request(1, echo(1));
    let sent = flush(now, &mut s);
    assert_eq!(sent[0].0 >> 32, UNIX);
}

#[test]
fn check_duplicate_msg_id() {
    let (now, mut s, mut srv, id) = in_flight();
    let p = srv.packet(&rpc_result(id, &echo(1)), true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(events(&mut s).len(), 1);
    // The same packet replayed.
    assert_eq!(
        s.handle_packet(now, &mut p.clone()),
        Err(InboundError::MsgId(MsgIdError::Duplicate))
    );
    assert!(events(&mut s).is_empty());
    // A replayed update is not handed up twice either.
    let u = srv.packet(&0xdeadbeef_u32.to_le_bytes(), true);
    s.handle_packet(now, &mut u.clone()).unwrap();
    assert_eq!(
        s.handle_packet(now, &mut u.clone()),
        Err(InboundError::MsgId(MsgIdError::Duplicate))
    );
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn check_too_old_msg_id() {
    let (now, mut s, mut srv, id) = in_flight();
    s.replay = ReplayWindow::new(4);
    let old = srv.msg_id();
    for _ in 0..4 {
        let p = srv.packet(&0xdeadbeef_u32.to_le_bytes(), false);
        s.handle_packet(now, &mut p.clone()).unwrap();
    }
    events(&mut s);
    let mut p = srv.packet_with(old, 1, &rpc_result(id, &echo(1)));
    assert_eq!(
        s.handle_packet(now, &mut p),
        Err(InboundError::MsgId(MsgIdError::TooOld))
    );
    assert_no_effect(&mut s, now);
}

#[test]
fn malformed_container_is_dropped_whole() {
    let (now, mut s, mut srv, id) = in_flight();
    let mut body = Vec::new();
    let mut w = ContainerWriter::begin(&mut body);
    w.push(&mut body, srv.msg_id(), 1, &rpc_result(id, &echo(1)));
    w.finish(&mut body);
    body.extend_from_slice(&[0; 4]); // trailing garbage
    let mut p = srv.packet(&body, false);
    assert!(matches!(
        s.handle_packet(now, &mut p),
        Err(InboundError::Malformed(_))
    ));
    assert_no_effect(&mut s, now);
}

// ---- bad_msg_notification, every code ----

fn bad_msg(srv: &mut Server, bad_msg_id: i64, code: i32) -> Vec<u8> {
    srv.packet(
        &types::BadMsgNotification {
            bad_msg_id,
            bad_msg_seqno: 1,
            error_code: code,
        }
        .to_bytes(),
        false,
    )
}

/// Sends echo(1) then has the server refuse it with `code`; returns the
/// old msg_id and what was sent next.
fn refused(code: i32) -> (Session, i64, Vec<SentMsg>) {
    let (now, mut s, mut srv, id) = in_flight();
    s.handle_packet(now, &mut bad_msg(&mut srv, id, code))
        .unwrap();
    let again = flush(now, &mut s);
    (s, id, again)
}

fn assert_resent(code: i32) -> (i64, i64) {
    let (mut s, old, again) = refused(code);
    let new = ids_of(&again, &echo(1));
    assert_eq!(new.len(), 1, "code {code}: resent once");
    assert_ne!(new[0], old, "code {code}: with a new msg_id");
    assert!(events(&mut s).is_empty());
    assert_eq!(s.in_flight(), 1);
    (old, new[0])
}

#[test]
fn bad_msg_16_msg_id_too_low_resyncs_and_resends() {
    // Local clock 1000 s slow, but believed synced.
    let (now, mut s, mut srv) = setup_unsynced(-1000);
    s.push_request(1, echo(1));
    let old = ids_of(&flush(now, &mut s), &echo(1))[0];
    assert_eq!(old >> 32, UNIX - 1000);
    s.handle_packet(now, &mut bad_msg(&mut srv, old, 16))
        .unwrap();
    let new = ids_of(&flush(now, &mut s), &echo(1))[0];
    assert_eq!(new >> 32, UNIX, "the new id is in the server's range");
}

#[test]
fn bad_msg_17_msg_id_too_high_gives_a_lower_id_in_range() {
    // Local clock 1000 s fast.
    let (now, mut s, mut srv) = setup_unsynced(1000);
    s.push_request(1, echo(1));
    s.push_request(2, echo(2));
    let sent = flush(now, &mut s);
    let old = ids_of(&sent, &echo(1))[0];
    assert_eq!(old >> 32, UNIX + 1000);
    // The whole container is refused.
    let container_id = *s.containers.keys().next().unwrap();
    s.handle_packet(now, &mut bad_msg(&mut srv, container_id, 17))
        .unwrap();
    let again = flush(now, &mut s);
    let new = ids_of(&again, &echo(1))[0];
    assert!(new < old, "not kept monotonic above the refused id");
    assert_eq!(new >> 32, UNIX);
    assert_eq!(
        ids_of(&again, &echo(2)).len(),
        1,
        "both messages of the container resent"
    );
}

#[test]
fn bad_msg_18_19_20_33_34_35_64_resend_with_a_new_id() {
    for code in [18, 19, 20, 33, 34, 35, 64] {
        assert_resent(code);
    }
}

#[test]
fn bad_msg_32_seqno_too_low_moves_seqno_up() {
    let (mut s, _, again) = refused(32);
    let seq = again.iter().find(|m| m.2 == echo(1)).unwrap().1;
    assert!(seq >= 33, "seq_no moved past what the server saw: {seq}");
    assert_eq!(seq % 2, 1);
    assert!(events(&mut s).is_empty());
}

#[test]
fn bad_msg_48_bad_server_salt_takes_the_new_salt() {
    let (now, mut s, mut srv, id) = in_flight();
    let p = srv.packet(
        &types::BadServerSalt {
            bad_msg_id: id,
            bad_msg_seqno: 1,
            error_code: 48,
            new_server_salt: 777,
        }
        .to_bytes(),
        false,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(s.salt(), 777);
    let mut buf = FrameBuf::new();
    assert!(s.poll_packet(now, &mut buf));
    let mut packet = buf.as_slice().to_vec();
    let plain = decrypt_message_in_place(s.auth_key(), Side::Client, &mut packet).unwrap();
    assert_eq!(i64::from_le_bytes(plain[..8].try_into().unwrap()), 777);
    // The plain bad_msg_notification form of 48 resends too.
    assert_resent(48);
}

#[test]
fn bad_msg_unknown_code_fails_the_request() {
    let (mut s, _, again) = refused(99);
    assert!(again.is_empty());
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Failed { req: 1, code: 99 }]
    );
    assert_eq!(s.in_flight(), 0);
}

#[test]
fn bad_msg_about_an_unknown_id_is_ignored() {
    let (now, mut s, mut srv, id) = in_flight();
    s.handle_packet(now, &mut bad_msg(&mut srv, id + 4, 16))
        .unwrap();
    assert!(flush(now, &mut s).is_empty());
    assert_eq!(s.in_flight(), 1);
}

// ---- the other service messages ----

#[test]
fn new_session_created_resends_older_requests_marked_maybe_repeated() {
    let (now, mut s, mut srv) = setup();
    s.push_request(1, echo(1));
    let first = flush(now, &mut s);
    let old = ids_of(&first, &echo(1))[0];
    s.push_request(2, echo(2));
    let second = flush(now, &mut s);
    let newer = ids_of(&second, &echo(2))[0];
    let p = srv.packet(
        &types::NewSessionCreated {
            first_msg_id: newer,
            unique_id: 5,
            server_salt: 99,
        }
        .to_bytes(),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(s.salt(), 99);
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::NewSession {
            first_msg_id: newer,
            resent: 1
        }]
    );
    let again = flush(now, &mut s);
    let resent = ids_of(&again, &echo(1));
    assert_eq!(resent.len(), 1);
    assert!(
        ids_of(&again, &echo(2)).is_empty(),
        "the new session has the later one"
    );
    let p = srv.packet(&rpc_result(resent[0], &echo(1)), true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Result {
            req: 1,
            result: Ok(echo(1)),
            maybe_repeated: true
        }]
    );
    let _ = old;
}

#[test]
fn ping_and_pong() {
    let (now, mut s, mut srv) = setup();
    s.ping(77, Some(75));
    let sent = flush(now, &mut s);
    let ping = functions::PingDelayDisconnect::from_bytes(&sent[0].2).unwrap();
    assert_eq!((ping.ping_id, ping.disconnect_delay), (77, 75));
    assert_eq!(sent[0].1 % 2, 1);
    let p = srv.packet(
        &types::Pong {
            msg_id: sent[0].0,
            ping_id: 77,
        }
        .to_bytes(),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(events(&mut s), vec![SessionEvent::Pong { ping_id: 77 }]);
    assert!(s.sent.is_empty());
    // A pong for a ping we did not send is ignored.
    let p = srv.packet(
        &types::Pong {
            msg_id: 4,
            ping_id: 1,
        }
        .to_bytes(),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert!(events(&mut s).is_empty());
}

#[test]
fn a_ping_sent_as_a_request_is_answered_by_its_pong() {
    let (now, mut s, mut srv) = setup();
    s.push_request(9, functions::Ping { ping_id: 5 }.to_bytes());
    let sent = flush(now, &mut s);
    let msg = sent
        .iter()
        .find(|m| constructor(&m.2) == functions::Ping::CONSTRUCTOR_ID)
        .unwrap();
    let pong = types::Pong {
        msg_id: msg.0,
        ping_id: 5,
    }
    .to_bytes();
    let p = srv.packet(&pong, false);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Result {
            req: 9,
            result: Ok(pong.clone()),
            maybe_repeated: false,
        }]
    );
    // The same pong again answers nothing.
    let p = srv.packet(&pong, false);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert!(events(&mut s).is_empty());
}

#[test]
fn a_ping_request_lost_with_its_connection_is_sent_again() {
    let (now, mut s, _srv) = setup();
    let ping = functions::Ping { ping_id: 6 }.to_bytes();
    s.push_request(3, ping.clone());
    s.push_request(4, echo(4));
    let first = flush(now, &mut s);
    let old = ids_of(&first, &ping);
    assert_eq!(old.len(), 1);
    s.on_connection_lost();
    s.on_connected();
    let again = flush(now, &mut s);
    let new = ids_of(&again, &ping);
    assert_eq!(new.len(), 1, "the ping goes again at once");
    assert_ne!(new, old, "under a new msg_id");
    // The echo is asked about, not resent.
    assert!(ids_of(&again, &echo(4)).is_empty());
}

#[test]
fn future_salts_are_fetched_once_and_used_in_turn() {
    let (now, mut s, mut srv) = setup();
    s.salts_requested = false;
    s.push_request(1, echo(1));
    let sent = flush(now, &mut s);
    let req = sent
        .iter()
        .find(|m| constructor(&m.2) == functions::GetFutureSalts::CONSTRUCTOR_ID)
        .unwrap()
        .0;
    // Not asked again while the answer is pending.
    s.push_request(2, echo(2));
    assert!(!flush(now, &mut s)
        .iter()
        .any(|m| constructor(&m.2) == functions::GetFutureSalts::CONSTRUCTOR_ID));
    let t = UNIX as i32;
    let salts = types::FutureSalts {
        req_msg_id: req,
        now: t,
        salts: vec![
            types::FutureSalt {
                valid_since: t - 10,
                valid_until: t + 1800,
                salt: 1001,
            },
            types::FutureSalt {
                valid_since: t + 1800,
                valid_until: t + 3600,
                salt: 1002,
            },
            types::FutureSalt {
                valid_since: t + 3600,
                valid_until: t + 5400,
                salt: 1003,
            },
        ],
    };
    let p = srv.packet(&rpc_result(req, &salts.to_bytes()), true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    s.push_request(3, echo(3));
    flush(now, &mut s);
    assert_eq!(s.salt(), 1001);
    let later = now + Duration::from_secs(1801);
    s.push_request(4, echo(4));
    let sent = flush(later, &mut s);
    assert_eq!(s.salt(), 1002);
    assert!(!sent
        .iter()
        .any(|m| constructor(&m.2) == functions::GetFutureSalts::CONSTRUCTOR_ID));
    // Near the end of what is known, more are asked for.
    let much_later = now + Duration::from_secs(5400 - 300);
    s.push_request(5, echo(5));
    let sent = flush(much_later, &mut s);
    assert_eq!(s.salt(), 1003);
    assert!(sent
        .iter()
        .any(|m| constructor(&m.2) == functions::GetFutureSalts::CONSTRUCTOR_ID));
}

#[test]
fn msgs_state_req_from_the_server_is_answered() {
    let (now, mut s, mut srv) = setup();
    let seen = srv.msg_id();
    let p = srv.packet_with(seen, 1, &0xdeadbeef_u32.to_le_bytes());
    s.handle_packet(now, &mut p.clone()).unwrap();
    let acked = srv.msg_id();
    let p = srv.packet_with(acked, 0, &0xdeadbeef_u32.to_le_bytes());
    s.handle_packet(now, &mut p.clone()).unwrap();
    let never = srv.msg_id();
    let high = (UNIX + 10) << 32 | 1;
    let q = srv.msg_id();
    let p = srv.packet_with(
        q,
        1,
        &types::MsgsStateReq {
            msg_ids: vec![seen, acked, never, high],
        }
        .to_bytes(),
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    let sent = flush(now, &mut s);
    let info = sent
        .iter()
        .find_map(|m| types::MsgsStateInfo::from_bytes(&m.2).ok())
        .unwrap();
    assert_eq!(info.req_msg_id, q);
    // seen: received, ack still pending; acked (not content): received + acked;
    // never: within range, not received; high: above anything seen.
    assert_eq!(info.info, vec![4, 4 | 8, 2, 3]);
}

#[test]
fn after_a_drop_uncertain_requests_are_asked_about_before_any_resend() {
    let (now, mut s, mut srv) = setup();
    for i in 1..=3 {
        s.push_request(i, echo(i as u8));
    }
    let sent = flush(now, &mut s);
    let id = |n| ids_of(&sent, &echo(n))[0];
    // The server acked 1 before the connection dropped.
    let p = srv.packet(
        &types::MsgsAck {
            msg_ids: vec![id(1)],
        }
        .to_bytes(),
        false,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(events(&mut s), vec![SessionEvent::Acked { req: 1 }]);
    s.on_connection_lost();
    s.on_connected();
    let sent2 = flush(now, &mut s);
    assert_eq!(
        sent2.len(),
        1,
        "only a state request: nothing is resent blindly"
    );
    let q = types::MsgsStateReq::from_bytes(&sent2[0].2).unwrap();
    assert_eq!(q.msg_ids, vec![id(1), id(2), id(3)]);
    // The server has 1 (acked), received 2 (and runs it), never saw 3.
    let p = srv.packet(
        &types::MsgsStateInfo {
            req_msg_id: sent2[0].0,
            info: vec![4 | 8, 4 | 32, 2],
        }
        .to_bytes(),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(events(&mut s), vec![SessionEvent::Acked { req: 2 }]);
    let sent3 = flush(now, &mut s);
    assert_eq!(ids_of(&sent3, &echo(3)).len(), 1);
    assert!(ids_of(&sent3, &echo(2)).is_empty());
    assert!(ids_of(&sent3, &echo(1)).is_empty());
    // Status 1 (nothing known): resent, flagged.
    s.on_connection_lost();
    s.on_connected();
    let sent4 = flush(now, &mut s);
    let q = sent4
        .iter()
        .find(|m| constructor(&m.2) == types::MsgsStateReq::CONSTRUCTOR_ID)
        .unwrap();
    let asked = types::MsgsStateReq::from_bytes(&q.2).unwrap().msg_ids;
    assert_eq!(asked.len(), 3, "1 and 2 still unanswered, and the resent 3");
    let new3 = ids_of(&sent3, &echo(3))[0];
    let info: Vec<u8> = asked
        .iter()
        .map(|&a| if a == new3 { 1 } else { 4 })
        .collect();
    let p = srv.packet(
        &types::MsgsStateInfo {
            req_msg_id: q.0,
            info,
        }
        .to_bytes(),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    let sent5 = flush(now, &mut s);
    let r = ids_of(&sent5, &echo(3))[0];
    let p = srv.packet(&rpc_result(r, &echo(3)), true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert!(events(&mut s).contains(&SessionEvent::Result {
        req: 3,
        result: Ok(echo(3)),
        maybe_repeated: true
    }));
}

#[test]
fn msg_detailed_info_acks_a_known_answer_or_asks_for_it() {
    let (now, mut s, mut srv, id) = in_flight();
    let ans = srv.msg_id();
    let p = srv.packet(
        &types::MsgDetailedInfo {
            msg_id: id,
            answer_msg_id: ans,
            bytes: 64,
            status: 0,
        }
        .to_bytes(),
        false,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(events(&mut s), vec![SessionEvent::Acked { req: 1 }]);
    let sent = flush(now, &mut s);
    let req = sent
        .iter()
        .find_map(|m| types::MsgResendReq::from_bytes(&m.2).ok())
        .unwrap();
    assert_eq!(req.msg_ids, vec![ans]);
    // msg_new_detailed_info about an answer already received: ack it.
    let upd = srv.msg_id();
    let p = srv.packet_with(upd, 0, &0xdeadbeef_u32.to_le_bytes());
    s.handle_packet(now, &mut p.clone()).unwrap();
    events(&mut s);
    let p = srv.packet(
        &types::MsgNewDetailedInfo {
            answer_msg_id: upd,
            bytes: 4,
            status: 0,
        }
        .to_bytes(),
        false,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    let (deadline, _) = s.poll_timeout().unwrap();
    s.handle_timeout(deadline);
    let sent = flush(deadline, &mut s);
    let ack = sent
        .iter()
        .find_map(|m| types::MsgsAck::from_bytes(&m.2).ok())
        .unwrap();
    assert!(ack.msg_ids.contains(&upd));
}

#[test]
fn msg_resend_req_from_the_server_resends_held_messages() {
    let (now, mut s, mut srv, id) = in_flight();
    let p = srv.packet(
        &types::MsgResendReq {
            msg_ids: vec![id, 12345 << 2],
        }
        .to_bytes(),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    let again = flush(now, &mut s);
    assert_eq!(ids_of(&again, &echo(1)).len(), 1);
}

#[test]
fn destroy_session_results() {
    let (now, mut s, mut srv) = setup();
    s.destroy_session(555);
    let sent = flush(now, &mut s);
    assert_eq!(
        functions::DestroySession::from_bytes(&sent[0].2)
            .unwrap()
            .session_id,
        555
    );
    let p = srv.packet(
        &rpc_result(
            sent[0].0,
            &types::DestroySessionOk { session_id: 555 }.to_bytes(),
        ),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::SessionDestroyed {
            session_id: 555,
            existed: true
        }]
    );
    let p = srv.packet(
        &types::DestroySessionNone { session_id: 556 }.to_bytes(),
        true,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::SessionDestroyed {
            session_id: 556,
            existed: false
        }]
    );
}

#[test]
fn gzip_packed_updates_and_msg_copy_are_unwrapped() {
    let (now, mut s, mut srv) = setup();
    let upd = [0xdeadbeef_u32.to_le_bytes(), 7u32.to_le_bytes()].concat();
    let mut gz = Vec::new();
    crate::tl::message::write_gzip_packed(&mut gz, &upd);
    let p = srv.packet(&gz, true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    let mut copy = crate::tl::message::MSG_COPY_ID.to_le_bytes().to_vec();
    crate::tl::message::write_message(&mut copy, 9, 1, &upd);
    let p = srv.packet(&copy, true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(
        events(&mut s),
        vec![
            SessionEvent::Update { body: upd.clone() },
            SessionEvent::Update { body: upd }
        ]
    );
}

#[test]
fn cancel_and_drain() {
    let (now, mut s, mut srv) = setup();
    s.push_request(1, echo(1));
    s.push_request(2, echo(2));
    let sent = flush(now, &mut s);
    s.push_request(3, echo(3));
    s.cancel(1);
    let p = srv.packet(&rpc_result(ids_of(&sent, &echo(1))[0], &echo(1)), true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert!(
        events(&mut s).is_empty(),
        "a cancelled request's answer is ignored"
    );
    let drained = s.drain_requests();
    assert_eq!(drained, vec![(2, echo(2)), (3, echo(3))]);
    assert_eq!(s.in_flight(), 0);
}

#[test]
fn bad_server_salt_discards_stale_future_salts() {
    let (now, mut s, mut srv) = setup();
    let t = UNIX as i32;
    s.future_salts = vec![types::FutureSalt {
        valid_since: t - 10,
        valid_until: t + 1800,
        salt: 1001,
    }]
    .into();
    s.push_request(1, echo(1));
    let id = ids_of(&flush(now, &mut s), &echo(1))[0];
    assert_eq!(s.salt(), 1001);
    let p = srv.packet(
        &types::BadServerSalt {
            bad_msg_id: id,
            bad_msg_seqno: 1,
            error_code: 48,
            new_server_salt: 2002,
        }
        .to_bytes(),
        false,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    // The resend goes with the server's salt, not the stale future one.
    let mut buf = FrameBuf::new();
    assert!(s.poll_packet(now, &mut buf));
    let mut packet = buf.as_slice().to_vec();
    let plain = decrypt_message_in_place(s.auth_key(), Side::Client, &mut packet).unwrap();
    assert_eq!(i64::from_le_bytes(plain[..8].try_into().unwrap()), 2002);
}

#[test]
fn bind_temp_auth_key_carries_its_own_msg_id_encrypted_with_the_perm_key() {
    let (now, mut s, mut srv) = setup();
    let perm = AuthKey::from_bytes([0x77; 256]);
    let params = BindParams {
        perm_key: perm.clone(),
        nonce: 1234,
        expires_at: UNIX as i32 + 3600,
    };
    s.push_bind(9, params.clone());
    s.push_request(1, echo(1));
    let sent = flush(now, &mut s);
    let (msg_id, _, body) = sent
        .iter()
        .find(|m| constructor(&m.2) == functions::BindTempAuthKey::CONSTRUCTOR_ID)
        .unwrap()
        .clone();
    let (temp_id, session_id) = (s.auth_key().id(), s.session_id());
    let check = |msg_id: i64, body: &[u8]| {
        let bind = functions::BindTempAuthKey::from_bytes(body).unwrap();
        assert_eq!(bind.perm_auth_key_id, perm.id());
        assert_eq!(bind.nonce, 1234);
        let plain = crate::crypto::decrypt_v1(&perm, &bind.encrypted_message).unwrap();
        assert_eq!(
            i64::from_le_bytes(plain[16..24].try_into().unwrap()),
            msg_id,
            "the request's own msg_id"
        );
        let inner = types::BindAuthKeyInner::from_bytes(&plain[32..]).unwrap();
        assert_eq!(inner.temp_auth_key_id, temp_id);
        assert_eq!(inner.perm_auth_key_id, perm.id());
        assert_eq!(inner.temp_session_id, session_id);
        assert_eq!(inner.nonce, 1234);
        assert_eq!(inner.expires_at, UNIX as i32 + 3600);
    };
    check(msg_id, &body);
    // A resend (bad salt) rebuilds it for the new msg_id.
    let p = srv.packet(
        &types::BadServerSalt {
            bad_msg_id: msg_id,
            bad_msg_seqno: 1,
            error_code: 48,
            new_server_salt: 5,
        }
        .to_bytes(),
        false,
    );
    s.handle_packet(now, &mut p.clone()).unwrap();
    let again = flush(now, &mut s);
    let (new_id, _, new_body) = again
        .iter()
        .find(|m| constructor(&m.2) == functions::BindTempAuthKey::CONSTRUCTOR_ID)
        .unwrap()
        .clone();
    assert_ne!(new_id, msg_id);
    check(new_id, &new_body);
    // Its answer is the result of request 9.
    let p = srv.packet(&rpc_result(new_id, &true.to_bytes()), true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::Result {
            req: 9,
            result: Ok(true.to_bytes()),
            maybe_repeated: false
        }]
    );
}

#[test]
fn shared_bodies_go_out_as_given_and_are_held_once() {
    let (now, mut s, mut srv) = setup();
    s.config.gzip_min_len = 64;
    let body: std::sync::Arc<[u8]> = echo(7).into();
    s.push_shared_request(1, body.clone());
    // Long and compressible: sent gzipped, so the session owns that copy.
    let long = functions::TestEcho {
        payload: vec![0; 400],
    }
    .to_bytes();
    s.push_shared_request(2, long.clone().into());
    let sent = flush(now, &mut s);
    let id = ids_of(&sent, &echo(7))[0];
    assert_eq!(
        std::sync::Arc::strong_count(&body),
        2,
        "the session holds a reference, not a copy"
    );
    assert!(ids_of(&sent, &long).is_empty(), "the long one went gzipped");
    let p = srv.packet(&rpc_result(id, &echo(8)), true);
    s.handle_packet(now, &mut p.clone()).unwrap();
    assert_eq!(std::sync::Arc::strong_count(&body), 1);
    assert_eq!(
        s.drain_requests().len(),
        1,
        "the gzipped one is still in flight"
    );
}
