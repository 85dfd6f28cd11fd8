//! Unit tests of the server: sessions, salts, acks, resends, service
//! messages, every bad_msg_notification code, faults.

use std::time::{Duration, Instant};

use mtsender::session::ids::Clock;
use mtsender::tl::{types as t, Deserialize, Identifiable};

use crate::client::{echo_body, Incoming, TestClient};
use crate::{FakeDc, FakeDcConfig};

const UNIX: u64 = 1_700_000_000;

fn t0() -> Instant {
    // Tests need some anchor; the code under test only ever sees it as input.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn setup(config: FakeDcConfig) -> (Instant, Clock, FakeDc) {
    let now = t0();
    let unix = Duration::from_secs(UNIX);
    (now, Clock::new(now, unix), FakeDc::new(config, now, unix))
}

fn ids(msgs: &[Incoming]) -> Vec<u32> {
    msgs.iter().map(Incoming::id).collect()
}

fn find<T: for<'a> Deserialize<'a> + Identifiable>(msgs: &[Incoming]) -> Vec<T> {
    msgs.iter()
        .filter(|m| m.id() == T::CONSTRUCTOR_ID)
        .map(|m| T::from_bytes(&m.body).expect("parses"))
        .collect()
}

fn results(msgs: &[Incoming]) -> Vec<(i64, Vec<u8>)> {
    msgs.iter()
        .filter_map(|m| m.rpc_result().map(|(id, r)| (id, r.to_vec())))
        .collect()
}

#[test]
fn echo_round_trip_with_new_session_and_ack() {
    let (now, clock, mut dc) = setup(FakeDcConfig::new(2));
    let mut c = TestClient::simple(&mut dc, clock, now, 1);
    assert_eq!(dc.auth_key(c.auth_key.id()), Some(&c.auth_key));
    let id = c.echo(&mut dc, now, b"hi");
    let msgs = c.recv(&mut dc);
    assert_eq!(
        ids(&msgs),
        vec![
            t::NewSessionCreated::CONSTRUCTOR_ID,
            mtsender::tl::message::RPC_RESULT_ID,
            t::MsgsAck::CONSTRUCTOR_ID
        ]
    );
    let nsc = &find::<t::NewSessionCreated>(&msgs)[0];
    assert_eq!(nsc.first_msg_id, id);
    assert_eq!(nsc.server_salt, c.salt);
    assert_eq!(results(&msgs), vec![(id, echo_body(b"hi"))]);
    assert_eq!(find::<t::MsgsAck>(&msgs)[0].msg_ids, vec![id]);
    // Response ids are 1 mod 4, others 3 mod 4, increasing.
    for m in &msgs {
        let want = if m.id() == RPC_RESULT { 1 } else { 3 };
        assert_eq!(m.msg_id & 3, want, "{:#x}", m.id());
        assert_eq!(m.msg_id >> 32, UNIX as i64);
    }
    assert!(msgs.windows(2).all(|w| w[0].msg_id < w[1].msg_id));
    assert_eq!(dc.execution_count(&echo_body(b"hi")), 1);
    assert_eq!(dc.stats().new_sessions, 1);
}

const RPC_RESULT: u32 = mtsender::tl::message::RPC_RESULT_ID;

use mtsender::tl::{enums, functions as f, Serialize};
use mtsender::transport::TransportKind;

use crate::client::Transport;
use crate::{DcOutput, Fault, FaultAction, Faults, MigrateKind};

fn client(dc: &mut FakeDc, clock: Clock, now: Instant) -> TestClient {
    TestClient::simple(dc, clock, now, 11)
}

/// A client whose first exchange (new_session_created) is done.
fn warm(config: FakeDcConfig) -> (Instant, Clock, FakeDc, TestClient) {
    let (now, clock, mut dc) = setup(config);
    let mut c = client(&mut dc, clock, now);
    let body = f::Ping { ping_id: 1 }.to_bytes();
    c.send(&mut dc, now, &body, true);
    let msgs = c.recv(&mut dc);
    assert_eq!(find::<t::NewSessionCreated>(&msgs).len(), 1);
    (now, clock, dc, c)
}

fn bad_codes(msgs: &[Incoming]) -> Vec<(i64, i32)> {
    find::<t::BadMsgNotification>(msgs)
        .into_iter()
        .map(|b| (b.bad_msg_id, b.error_code))
        .collect()
}

fn rpc_error(result: &[u8]) -> (i32, String) {
    let e = t::RpcError::from_bytes(result).expect("an rpc_error");
    (e.error_code, e.error_message)
}

#[test]
fn wrong_salt_zero_included_gets_bad_server_salt_never_silence() {
    let (now, clock, mut dc) = setup(FakeDcConfig::new(2));
    let mut c = client(&mut dc, clock, now);
    let right = c.salt;
    for salt in [0, right ^ 1, -1] {
        let id = c.msg_ids.next(now);
        let seq = c.seq.next(true);
        c.send_message(&mut dc, now, salt, id, seq, &echo_body(b"x"));
        let msgs = c.recv(&mut dc);
        let bad = find::<t::BadServerSalt>(&msgs);
        assert_eq!(bad.len(), 1, "{salt}");
        assert_eq!(bad[0].bad_msg_id, id);
        assert_eq!(bad[0].bad_msg_seqno, seq);
        assert_eq!(bad[0].error_code, 48);
        assert_eq!(bad[0].new_server_salt, right);
        // Refused before the session was announced or anything ran.
        assert_eq!(ids(&msgs), vec![t::BadServerSalt::CONSTRUCTOR_ID]);
        assert_eq!(msgs[0].msg_id & 3, 1);
        assert_eq!(msgs[0].seqno & 1, 0, "not content-related");
    }
    assert_eq!(dc.execution_count(&echo_body(b"x")), 0);
    assert_eq!(dc.stats().bad_salts, 3);
    c.echo(&mut dc, now, b"x");
    assert_eq!(results(&c.recv(&mut dc)).len(), 1);
}

#[test]
fn salts_rotate_with_a_grace_period() {
    let (now, clock, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let first = c.salt;
    let t1 = now + Duration::from_secs(3600);
    let second = dc.current_salt(t1, c.auth_key.id()).unwrap();
    assert_ne!(first, second);
    // Within the grace period the old salt still works...
    c.echo(&mut dc, t1, b"a");
    let msgs = c.recv(&mut dc);
    assert_eq!(results(&msgs).len(), 1);
    // ... and the server's own packets carry the new one.
    assert!(msgs.iter().all(|m| m.salt == second));
    let t2 = now + Duration::from_secs(3600 + 300);
    c.echo(&mut dc, t2, b"b");
    let msgs = c.recv(&mut dc);
    assert_eq!(find::<t::BadServerSalt>(&msgs)[0].new_server_salt, second);
    let _ = clock;
}

#[test]
fn future_salts_start_with_the_current_one() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let id = c.send(&mut dc, now, &f::GetFutureSalts { num: 3 }.to_bytes(), true);
    let msgs = c.recv(&mut dc);
    assert!(results(&msgs).is_empty(), "future_salts is not wrapped");
    let salts = find::<t::FutureSalts>(&msgs).pop().unwrap();
    assert_eq!(salts.req_msg_id, id);
    assert_eq!(salts.now as u64, UNIX);
    assert_eq!(salts.salts.len(), 3);
    assert_eq!(salts.salts[0].salt, c.salt);
    assert_eq!(salts.salts[1].valid_since, salts.salts[0].valid_until);
    let later = now + Duration::from_secs(3600);
    assert_eq!(
        dc.current_salt(later, c.auth_key.id()),
        Some(salts.salts[1].salt)
    );
}

#[test]
fn bad_msg_16_17_18_time_window_and_parity() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let base = c.msg_ids.next(now);
    let cases = [
        (base - (301_i64 << 32), 16),
        (base + (31_i64 << 32), 17),
        (base + 2, 18),
        (base + 1, 18),
    ];
    for (id, code) in cases {
        let seq = c.seq.next(true);
        c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"t"));
        let msgs = c.recv(&mut dc);
        assert_eq!(bad_codes(&msgs), vec![(id, code)]);
    }
    // 299 s behind and 29 s ahead are fine.
    for id in [base - (299_i64 << 32), base + (29_i64 << 32)] {
        let seq = c.seq.next(true);
        c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"t"));
        assert_eq!(results(&c.recv(&mut dc)).len(), 1);
    }
    assert_eq!(dc.execution_count(&echo_body(b"t")), 2);
    assert_eq!(dc.stats().bad_msgs.get(&18), Some(&2));
}

#[test]
fn bad_msg_19_container_reusing_a_msg_id() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let ping = f::Ping { ping_id: 5 }.to_bytes();
    let used = c.send(&mut dc, now, &ping, true);
    c.recv(&mut dc);
    let mut body = Vec::new();
    let mut w = mtsender::tl::message::ContainerWriter::begin(&mut body);
    let inner = c.msg_ids.next(now);
    w.push(&mut body, inner, c.seq.next(true), &echo_body(b"c"));
    w.finish(&mut body);
    let seq = c.seq.next(false);
    c.send_message(&mut dc, now, c.salt, used, seq, &body);
    let msgs = c.recv(&mut dc);
    assert_eq!(bad_codes(&msgs), vec![(used, 19)]);
    assert_eq!(dc.execution_count(&echo_body(b"c")), 0);
}

#[test]
fn bad_msg_20_too_old_to_verify() {
    let mut config = FakeDcConfig::new(2);
    config.max_remembered_msg_ids = 4;
    let (now, _, mut dc, mut c) = warm(config);
    let early = c.msg_ids.next(now);
    for _ in 0..6 {
        c.send(&mut dc, now, &f::Ping { ping_id: 1 }.to_bytes(), true);
    }
    c.recv(&mut dc);
    let seq = c.seq.next(true);
    c.send_message(&mut dc, now, c.salt, early, seq, &echo_body(b"old"));
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(early, 20)]);
}

#[test]
fn bad_msg_32_34_35_seqno_rules() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    // Content-related with an even seqno.
    let id = c.msg_ids.next(now);
    c.send_message(&mut dc, now, c.salt, id, 100, &echo_body(b"s"));
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(id, 35)]);
    // An acknowledgment with an odd seqno.
    let ack = t::MsgsAck { msg_ids: vec![1] }.to_bytes();
    let id = c.msg_ids.next(now);
    c.send_message(&mut dc, now, c.salt, id, 101, &ack);
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(id, 34)]);
    // seqno 21, then 11: too low.
    let id = c.msg_ids.next(now);
    c.send_message(&mut dc, now, c.salt, id, 21, &echo_body(b"s"));
    assert_eq!(results(&c.recv(&mut dc)).len(), 1);
    let id = c.msg_ids.next(now);
    c.send_message(&mut dc, now, c.salt, id, 11, &echo_body(b"s2"));
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(id, 32)]);
    assert_eq!(dc.execution_count(&echo_body(b"s2")), 0);
    // An equal seqno is not too low; a higher one is fine.
    for seq in [21, 23] {
        let id = c.msg_ids.next(now);
        c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"s3"));
        assert_eq!(results(&c.recv(&mut dc)).len(), 1, "{seq}");
    }
    // A container with an odd seqno.
    let (cid, _) = {
        let mut body = Vec::new();
        let mut w = mtsender::tl::message::ContainerWriter::begin(&mut body);
        w.push(&mut body, c.msg_ids.next(now), 25, &echo_body(b"k"));
        w.finish(&mut body);
        let cid = c.msg_ids.next(now);
        c.send_message(&mut dc, now, c.salt, cid, 27, &body);
        (cid, ())
    };
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(cid, 34)]);
}

#[test]
fn bad_msg_64_invalid_containers() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    // A container whose inner length runs past its end.
    let mut bad = Vec::new();
    bad.extend_from_slice(&mtsender::tl::message::MSG_CONTAINER_ID.to_le_bytes());
    bad.extend_from_slice(&1u32.to_le_bytes());
    bad.extend_from_slice(&c.msg_ids.next(now).to_le_bytes());
    bad.extend_from_slice(&1i32.to_le_bytes());
    bad.extend_from_slice(&400i32.to_le_bytes());
    bad.extend_from_slice(&echo_body(b"z"));
    let id = c.msg_ids.next(now);
    let seq = c.seq.next(false);
    c.send_message(&mut dc, now, c.salt, id, seq, &bad);
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(id, 64)]);
    // A container inside a container.
    let mut inner = Vec::new();
    let mut w = mtsender::tl::message::ContainerWriter::begin(&mut inner);
    w.push(&mut inner, c.msg_ids.next(now), 1, &echo_body(b"z"));
    w.finish(&mut inner);
    let mut outer = Vec::new();
    let mut w = mtsender::tl::message::ContainerWriter::begin(&mut outer);
    w.push(&mut outer, c.msg_ids.next(now), 0, &inner);
    w.finish(&mut outer);
    let id = c.msg_ids.next(now);
    let seq = c.seq.next(false);
    c.send_message(&mut dc, now, c.salt, id, seq, &outer);
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(id, 64)]);
    // A bare message that is a container only inside gzip: still nested.
    assert_eq!(dc.execution_count(&echo_body(b"z")), 0);
}

#[test]
fn containers_are_processed_in_order() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let ping = f::Ping { ping_id: 77 }.to_bytes();
    let (_, inner) = c.send_container(
        &mut dc,
        now,
        &[
            (&echo_body(b"1"), true),
            (&ping, true),
            (&echo_body(b"2"), true),
        ],
    );
    let msgs = c.recv(&mut dc);
    let answers = results(&msgs);
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![inner[0], inner[2]]
    );
    let pong = &find::<t::Pong>(&msgs)[0];
    assert_eq!((pong.msg_id, pong.ping_id), (inner[1], 77));
    // Everything came in one container with the acks of all three.
    assert!(msgs.iter().all(|m| m.container.is_some()));
    let acked = &find::<t::MsgsAck>(&msgs)[0].msg_ids;
    assert_eq!(acked, &inner);
}

#[test]
fn server_seqnos_count_content_messages() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    c.echo(&mut dc, now, b"q");
    c.echo(&mut dc, now, b"r");
    let msgs = c.recv(&mut dc);
    let content: Vec<i32> = msgs
        .iter()
        .filter(|m| m.rpc_result().is_some())
        .map(|m| m.seqno)
        .collect();
    // new_session_created was 1, the first pong 3.
    assert_eq!(content, vec![5, 7]);
    let acks: Vec<i32> = msgs
        .iter()
        .filter(|m| m.id() == t::MsgsAck::CONSTRUCTOR_ID)
        .map(|m| m.seqno)
        .collect();
    assert!(acks.iter().all(|s| s % 2 == 0));
}

#[test]
fn pings_and_ping_delay_disconnect() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let body = f::PingDelayDisconnect {
        ping_id: 9,
        disconnect_delay: 75,
    }
    .to_bytes();
    let id = c.send(&mut dc, now, &body, true);
    let msgs = c.recv(&mut dc);
    assert_eq!(
        find::<t::Pong>(&msgs)[0],
        t::Pong {
            msg_id: id,
            ping_id: 9
        }
    );
    assert!(results(&msgs).is_empty(), "pong is not an rpc_result");
    assert_eq!(dc.poll_timeout(), Some(now + Duration::from_secs(75)));
    // Another one within the delay pushes the deadline.
    let t1 = now + Duration::from_secs(60);
    c.send(&mut dc, t1, &body, true);
    c.recv(&mut dc);
    TestClient::advance(&mut dc, now + Duration::from_secs(100));
    c.recv(&mut dc);
    assert!(!c.link.closed);
    TestClient::advance(&mut dc, t1 + Duration::from_secs(75));
    c.recv(&mut dc);
    assert!(c.link.closed);
}

#[test]
fn unknown_methods_get_an_rpc_error_and_do_not_count() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let mut body = 0x1234_5678u32.to_le_bytes().to_vec();
    body.extend_from_slice(&[0; 8]);
    let id = c.send(&mut dc, now, &body, true);
    let (req, result) = results(&c.recv(&mut dc)).pop().unwrap();
    assert_eq!(req, id);
    assert_eq!(
        rpc_error(&result),
        (400, "INPUT_METHOD_INVALID_12345678".into())
    );
    assert_eq!(dc.executions().count(), 0);
}

#[test]
fn wrappers_are_unwrapped_to_the_innermost_query() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let echo = echo_body(b"wrapped");
    let init = f::InitConnection {
        api_id: 1,
        device_model: "d".into(),
        system_version: "s".into(),
        app_version: "a".into(),
        system_lang_code: "en".into(),
        lang_pack: "".into(),
        lang_code: "en".into(),
        proxy: None,
        params: None,
        query: mtsender::tl::RawTail(
            f::InvokeWithoutUpdates {
                query: mtsender::tl::RawTail(
                    f::InvokeAfterMsg {
                        msg_id: 4,
                        query: mtsender::tl::RawTail(echo.clone()),
                    }
                    .to_bytes(),
                ),
            }
            .to_bytes(),
        ),
    };
    let body = f::InvokeWithLayer {
        layer: 200,
        query: mtsender::tl::RawTail(init.to_bytes()),
    }
    .to_bytes();
    let id = c.send(&mut dc, now, &body, true);
    assert_eq!(results(&c.recv(&mut dc)), vec![(id, echo.clone())]);
    assert_eq!(dc.execution_count(&echo), 1);

    // initConnection with a proxy and JSON params.
    let mut proxy = 0x7558_8b3fu32.to_le_bytes().to_vec();
    mtsender::tl::write_bytes(&mut proxy, b"127.0.0.1");
    proxy.extend_from_slice(&443i32.to_le_bytes());
    let mut params = 0x99c1_d49du32.to_le_bytes().to_vec(); // jsonObject
    params.extend_from_slice(&mtsender::tl::VECTOR_ID.to_le_bytes());
    params.extend_from_slice(&1i32.to_le_bytes());
    params.extend_from_slice(&0xc0de_1bd9u32.to_le_bytes());
    mtsender::tl::write_bytes(&mut params, b"tz_offset");
    params.extend_from_slice(&0x2be0_dfa4u32.to_le_bytes());
    params.extend_from_slice(&3600f64.to_le_bytes());
    let init = f::InitConnection {
        proxy: Some(proxy),
        params: Some(params),
        query: mtsender::tl::RawTail(echo.clone()),
        ..f::InitConnection::default()
    };
    let id = c.send(&mut dc, now, &init.to_bytes(), true);
    assert_eq!(results(&c.recv(&mut dc)), vec![(id, echo.clone())]);
    assert_eq!(dc.execution_count(&echo), 2);
}

#[test]
fn gzip_packed_requests_are_inflated() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let echo = echo_body(&[7u8; 3000]);
    let mut body = Vec::new();
    mtsender::tl::message::write_gzip_packed(&mut body, &echo);
    let id = c.send(&mut dc, now, &body, true);
    assert_eq!(results(&c.recv(&mut dc)), vec![(id, echo.clone())]);
    assert_eq!(dc.execution_count(&echo), 1);
}

#[test]
fn a_resent_msg_id_is_answered_from_the_cache_not_run_again() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let id = c.msg_ids.next(now);
    let seq = c.seq.next(true);
    c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"once"));
    let first = c.recv(&mut dc);
    let answer = first
        .iter()
        .find(|m| m.rpc_result().is_some())
        .unwrap()
        .clone();
    // The same message again, on the same connection and on a new one.
    c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"once"));
    let again = c.recv(&mut dc);
    let resent = again.iter().find(|m| m.rpc_result().is_some()).unwrap();
    assert_eq!((resent.msg_id, &resent.body), (answer.msg_id, &answer.body));
    c.reconnect(&mut dc, now);
    c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"once"));
    let again = c.recv(&mut dc);
    assert!(again.iter().any(|m| m.msg_id == answer.msg_id));
    assert_eq!(dc.execution_count(&echo_body(b"once")), 1);
    assert!(dc.stats().resent_answers >= 2);
}

#[test]
fn unacked_answers_are_resent_on_the_sessions_next_connection() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let id = c.echo(&mut dc, now, b"lost");
    // The connection drops before the client reads the answer.
    let old = c.link.conn;
    c.reconnect(&mut dc, now);
    assert!(
        dc.poll_output_for(old).is_some(),
        "it was sent on the old one"
    );
    // Any message on the new connection brings it back, same msg_id.
    c.send(&mut dc, now, &f::Ping { ping_id: 2 }.to_bytes(), true);
    let msgs = c.recv(&mut dc);
    assert_eq!(results(&msgs), vec![(id, echo_body(b"lost"))]);
    // The first new_session_created was never acknowledged either: it comes
    // again too (same msg_id), but no new session was made.
    assert_eq!(find::<t::NewSessionCreated>(&msgs).len(), 1);
    assert_eq!(dc.stats().new_sessions, 1);
    assert_eq!(dc.execution_count(&echo_body(b"lost")), 1);
    // Once acknowledged, it is not sent again.
    let ids_: Vec<i64> = msgs.iter().map(|m| m.msg_id).collect();
    c.ack(&mut dc, now, ids_);
    c.reconnect(&mut dc, now);
    c.send(&mut dc, now, &f::Ping { ping_id: 3 }.to_bytes(), true);
    let msgs = c.recv(&mut dc);
    assert!(results(&msgs).is_empty());
    assert_eq!(find::<t::Pong>(&msgs).len(), 1);
}

#[test]
fn a_session_answers_on_the_connection_its_latest_message_came_on() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let first = c.link.conn;
    // A second connection without closing the first.
    c.link = crate::client::Link::open(&mut dc, now, Transport::Plain(TransportKind::Abridged), 5);
    let id = c.echo(&mut dc, now, b"here");
    assert_eq!(results(&c.recv(&mut dc)), vec![(id, echo_body(b"here"))]);
    assert!(dc.poll_output_for(first).is_none());
}

#[test]
fn msgs_state_info_status_bytes() {
    let mut config = FakeDcConfig::new(2);
    config.faults = Faults::none()
        .with(Fault::new(FaultAction::Delay(Duration::from_secs(5))).on_echo_prefix(b"slow"));
    let (now, _, mut dc, mut c) = warm(config);
    let floor = c.msg_ids.next(now) - (10 << 32);
    let done = c.echo(&mut dc, now, b"done");
    let ack = c.send(
        &mut dc,
        now,
        &t::MsgsAck { msg_ids: vec![] }.to_bytes(),
        false,
    );
    let gap = c.msg_ids.next(now);
    let running = c.echo(&mut dc, now, b"slow");
    c.recv(&mut dc);
    let too_high = c.msg_ids.next(now) + (5 << 32);
    let asked = vec![done, ack, gap, running, too_high, floor];
    let req = c.send(
        &mut dc,
        now,
        &t::MsgsStateReq {
            msg_ids: asked.clone(),
        }
        .to_bytes(),
        true,
    );
    let msgs = c.recv(&mut dc);
    let info = &find::<t::MsgsStateInfo>(&msgs)[0];
    assert_eq!(info.req_msg_id, req);
    assert_eq!(
        info.info,
        vec![
            4 | 8 | 32 | 64, // received, acked, query done, answer generated
            4 | 16,          // received, not content-related
            2,               // in the window, never received
            4 | 32,          // received, query running (its ack still waits)
            3,               // too high
            1,               // below the session's first message: unknown
        ]
    );
}

#[test]
fn msg_resend_req_and_msg_resend_ans_req() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let id = c.echo(&mut dc, now, b"again");
    let answer = c
        .recv(&mut dc)
        .into_iter()
        .find(|m| m.rpc_result().is_some())
        .unwrap();
    c.send(
        &mut dc,
        now,
        &t::MsgResendReq {
            msg_ids: vec![answer.msg_id, 12345 << 2],
        }
        .to_bytes(),
        true,
    );
    let msgs = c.recv(&mut dc);
    let resent: Vec<_> = msgs.iter().filter(|m| m.msg_id == answer.msg_id).collect();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].body, answer.body);
    // Answers are found by query id, even after the client acknowledged them.
    c.ack(&mut dc, now, vec![answer.msg_id]);
    c.send(
        &mut dc,
        now,
        &t::MsgResendAnsReq { msg_ids: vec![id] }.to_bytes(),
        true,
    );
    let msgs = c.recv(&mut dc);
    assert_eq!(results(&msgs), vec![(id, echo_body(b"again"))]);
    assert_eq!(dc.execution_count(&echo_body(b"again")), 1);
}

#[test]
fn rpc_drop_answer_unknown_running_and_dropped() {
    let mut config = FakeDcConfig::new(2);
    config.faults = Faults::none()
        .with(Fault::new(FaultAction::Delay(Duration::from_secs(1))).on_echo_prefix(b"slow"));
    let (now, _, mut dc, mut c) = warm(config);
    let drop = |c: &mut TestClient, dc: &mut FakeDc, id: i64| {
        let req = c.send(
            dc,
            now,
            &f::RpcDropAnswer { req_msg_id: id }.to_bytes(),
            true,
        );
        let msgs = c.recv(dc);
        let (r, result) = results(&msgs).into_iter().find(|r| r.0 == req).unwrap();
        assert_eq!(r, req);
        enums::RpcDropAnswer::from_bytes(&result).unwrap()
    };
    assert_eq!(
        drop(&mut c, &mut dc, 404 << 2),
        t::RpcAnswerUnknown {}.into()
    );
    let slow = c.echo(&mut dc, now, b"slow");
    assert_eq!(
        drop(&mut c, &mut dc, slow),
        t::RpcAnswerDroppedRunning {}.into()
    );
    TestClient::advance(&mut dc, now + Duration::from_secs(2));
    assert!(
        results(&c.recv(&mut dc)).is_empty(),
        "the dropped answer never comes"
    );
    let fast = c.echo(&mut dc, now, b"fast");
    let answer = c
        .recv(&mut dc)
        .into_iter()
        .find(|m| m.rpc_result().is_some())
        .unwrap();
    assert_eq!(
        drop(&mut c, &mut dc, fast),
        t::RpcAnswerDropped {
            msg_id: answer.msg_id,
            seq_no: answer.seqno,
            bytes: answer.body.len() as i32
        }
        .into()
    );
}

#[test]
fn destroy_session_and_destroy_auth_key() {
    let (now, clock, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let old_session = c.session_id;
    c.new_session();
    c.echo(&mut dc, now, b"new session");
    let msgs = c.recv(&mut dc);
    assert_eq!(find::<t::NewSessionCreated>(&msgs).len(), 1);
    assert_eq!(dc.session_count(), 2);
    let destroy = |c: &mut TestClient, dc: &mut FakeDc, session_id: i64| {
        c.send(dc, now, &f::DestroySession { session_id }.to_bytes(), true);
        let msgs = c.recv(dc);
        msgs.iter()
            .find_map(|m| enums::DestroySessionRes::from_bytes(&m.body).ok())
            .unwrap()
    };
    assert_eq!(
        destroy(&mut c, &mut dc, old_session),
        t::DestroySessionOk {
            session_id: old_session
        }
        .into()
    );
    assert_eq!(dc.session_count(), 1);
    assert_eq!(
        destroy(&mut c, &mut dc, old_session),
        t::DestroySessionNone {
            session_id: old_session
        }
        .into()
    );
    let own = c.session_id;
    assert_eq!(
        destroy(&mut c, &mut dc, own),
        t::DestroySessionNone { session_id: own }.into()
    );

    let id = c.send(&mut dc, now, &f::DestroyAuthKey {}.to_bytes(), true);
    let msgs = c.recv(&mut dc);
    assert!(
        results(&msgs).is_empty(),
        "destroy_auth_key_ok is not wrapped"
    );
    assert_eq!(find::<t::DestroyAuthKeyOk>(&msgs).len(), 1);
    let _ = id;
    assert_eq!(dc.auth_key_count(), 0);
    c.echo(&mut dc, now, b"gone");
    assert!(c.recv(&mut dc).is_empty());
    assert_eq!(c.link.transport_errors, vec![-404]);
    assert!(c.link.closed);
    let _ = clock;
}

#[test]
fn unknown_key_gets_404_and_a_close_and_garbage_is_dropped() {
    let (now, clock, mut dc, mut c) = warm(FakeDcConfig::new(2));
    // Flip a ciphertext byte: dropped silently.
    let mut buf = mtsender::buf::FrameBuf::new();
    buf.append_with(|v| {
        v.extend_from_slice(&c.salt.to_le_bytes());
        v.extend_from_slice(&c.session_id.to_le_bytes());
        v.extend_from_slice(&c.msg_ids.next(now).to_le_bytes());
        v.extend_from_slice(&1i32.to_le_bytes());
        let e = echo_body(b"x");
        v.extend_from_slice(&(e.len() as i32).to_le_bytes());
        v.extend_from_slice(&e);
    });
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
    mtsender::crypto::encrypt_message_in_place(
        &c.auth_key,
        mtsender::crypto::Side::Client,
        &mut buf,
        &mut rng,
    );
    let mut packet = buf.into_vec();
    packet[40] ^= 1;
    c.link.send(&mut dc, now, &packet);
    assert!(c.recv(&mut dc).is_empty());
    assert!(!c.link.closed);
    assert_eq!(dc.stats().dropped_packets, 1);
    // A key the server never made.
    let mut stranger = client(&mut dc, clock, now);
    stranger.auth_key = mtsender::crypto::AuthKey::from_bytes([3; 256]);
    stranger.echo(&mut dc, now, b"who");
    assert!(stranger.recv(&mut dc).is_empty());
    assert_eq!(stranger.link.transport_errors, vec![-404]);
    assert!(stranger.link.closed);
}

#[test]
fn acks_wait_for_ack_delay_when_nothing_else_goes_out() {
    let mut config = FakeDcConfig::new(2);
    config.faults = Faults::none()
        .with(Fault::new(FaultAction::Delay(Duration::from_secs(1))).on_echo_prefix(b"slow"));
    let (now, _, mut dc, mut c) = warm(config);
    let id = c.echo(&mut dc, now, b"slow");
    assert!(c.recv(&mut dc).is_empty());
    assert_eq!(dc.poll_timeout(), Some(now + Duration::from_millis(100)));
    TestClient::advance(&mut dc, now + Duration::from_millis(100));
    let msgs = c.recv(&mut dc);
    assert_eq!(ids(&msgs), vec![t::MsgsAck::CONSTRUCTOR_ID]);
    assert_eq!(find::<t::MsgsAck>(&msgs)[0].msg_ids, vec![id]);
    TestClient::advance(&mut dc, now + Duration::from_secs(1));
    assert_eq!(results(&c.recv(&mut dc)), vec![(id, echo_body(b"slow"))]);
    assert_eq!(dc.poll_timeout(), None);
}

#[test]
fn push_update_goes_to_live_sessions_and_waits_for_its_ack() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let update = 0x7777_7777u32.to_le_bytes().to_vec();
    dc.push_update(now, update.clone());
    let msgs = c.recv(&mut dc);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body, update);
    assert_eq!(msgs[0].msg_id & 3, 3, "not a response");
    assert_eq!(msgs[0].seqno & 1, 1, "content-related");
    let update_id = msgs[0].msg_id;
    c.reconnect(&mut dc, now);
    c.send(&mut dc, now, &f::Ping { ping_id: 4 }.to_bytes(), true);
    assert!(c.recv(&mut dc).iter().any(|m| m.msg_id == update_id));
}

#[test]
fn forget_sessions_starts_new_sessions_and_loses_cached_answers() {
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let id = c.msg_ids.next(now);
    let seq = c.seq.next(true);
    c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"f"));
    c.recv(&mut dc);
    dc.forget_sessions();
    // The server forgot it ran `f`: a resend under the old msg_id runs again,
    // in a new session.
    c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"f"));
    let msgs = c.recv(&mut dc);
    let nsc = find::<t::NewSessionCreated>(&msgs);
    assert_eq!(nsc.len(), 1);
    assert_eq!(nsc[0].first_msg_id, id);
    assert_eq!(ids(&msgs)[0], t::NewSessionCreated::CONSTRUCTOR_ID);
    assert_eq!(dc.execution_count(&echo_body(b"f")), 2);
    assert_eq!(dc.stats().new_sessions, 2);
}

#[test]
fn quick_acks_carry_the_sha256_token() {
    use sha2::Digest;
    let (now, _, mut dc, mut c) = warm(FakeDcConfig::new(2));
    let mut buf = mtsender::buf::FrameBuf::new();
    buf.append_with(|v| {
        v.extend_from_slice(&c.salt.to_le_bytes());
        v.extend_from_slice(&c.session_id.to_le_bytes());
        v.extend_from_slice(&c.msg_ids.next(now).to_le_bytes());
        v.extend_from_slice(&c.seq.next(true).to_le_bytes());
        let e = echo_body(b"qa");
        v.extend_from_slice(&(e.len() as i32).to_le_bytes());
        v.extend_from_slice(&e);
    });
    let plain_len = buf.len();
    let mut plain = buf.as_slice().to_vec();
    let pad: Vec<u8> = std::iter::repeat_n(9u8, 12 + (16 - (plain_len + 12) % 16) % 16).collect();
    plain.extend_from_slice(&pad);
    mtsender::crypto::encrypt_message_with_padding(
        &c.auth_key,
        mtsender::crypto::Side::Client,
        &mut buf,
        &pad,
    );
    let hash = sha2::Sha256::new()
        .chain_update(&c.auth_key.as_bytes()[88..120])
        .chain_update(&plain)
        .finalize();
    let token = u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]) | 0x8000_0000;
    c.link
        .send_with_quick_ack(&mut dc, now, &buf.into_vec(), true);
    assert_eq!(results(&c.recv(&mut dc)).len(), 1);
    assert_eq!(c.link.quick_acks, vec![token]);
}

#[test]
fn same_seed_same_inputs_same_bytes() {
    let run = || {
        let (now, clock, mut dc) = setup(FakeDcConfig::new(2).seed([4; 32]));
        let mut c = TestClient::connect(
            &mut dc,
            clock,
            now,
            Transport::Obfuscated(TransportKind::PaddedIntermediate),
            mtsender::handshake::KeyKind::Permanent,
            3,
        )
        .unwrap();
        c.echo(&mut dc, now, b"replay");
        let mut out = Vec::new();
        while let Some(o) = dc.poll_output() {
            out.push(o);
        }
        (c.auth_key, c.salt, out, dc.stats().clone())
    };
    let (k1, s1, o1, st1) = run();
    let (k2, s2, o2, st2) = run();
    assert_eq!(k1, k2);
    assert_eq!(s1, s2);
    assert_eq!(o1, o2);
    assert!(!o1.is_empty());
    assert_eq!(st1, st2);
}

// ---------------------------------------------------------------------------
// Faults

fn with_faults(spec: &str) -> (Instant, Clock, FakeDc, TestClient) {
    warm(FakeDcConfig::new(2).faults(Faults::parse(spec).unwrap()))
}

fn echo_result(c: &mut TestClient, dc: &mut FakeDc, now: Instant, payload: &[u8]) -> Vec<u8> {
    let id = c.echo(dc, now, payload);
    let msgs = c.recv(dc);
    let (req, result) = results(&msgs).pop().expect("an answer");
    assert_eq!(req, id);
    result
}

#[test]
fn an_installed_key_serves_a_session_without_a_handshake() {
    let (now, clock, mut dc) = setup(FakeDcConfig::new(2));
    let key = mtsender::crypto::AuthKey::from_bytes([0x3c; 256]);
    let mut c = TestClient::with_installed_key(
        &mut dc,
        clock,
        now,
        Transport::Plain(TransportKind::Intermediate),
        key.clone(),
        Some(600),
        9,
    );
    assert_eq!(dc.stats().handshakes, 0);
    assert_eq!(dc.auth_key(key.id()), Some(&key));
    let info = dc.auth_key_info(key.id()).unwrap();
    assert_eq!(info.expires_at, Some(dc.server_time(now) + 600));
    assert_eq!(
        echo_result(&mut c, &mut dc, now, b"no handshake"),
        echo_body(b"no handshake")
    );
    // The salt it was given is the one the server expects: no bad salt.
    assert_eq!(dc.current_salt(now, key.id()), Some(c.salt));
}

#[test]
fn error_faults_answer_rpc_errors_and_do_not_execute() {
    let spec = "flood_wait=5@1,flood_premium_wait=6@2,slowmode_wait=7@3,migrate=phone:4@4,migrate=network:5@5,migrate=user:1@6,migrate=file:3@7,migrate=stats:2@8,internal@9,timeout@10";
    let (now, _, mut dc, mut c) = with_faults(spec);
    let expected = [
        (420, "FLOOD_WAIT_5"),
        (420, "FLOOD_PREMIUM_WAIT_6"),
        (420, "SLOWMODE_WAIT_7"),
        (303, "PHONE_MIGRATE_4"),
        (303, "NETWORK_MIGRATE_5"),
        (303, "USER_MIGRATE_1"),
        (303, "FILE_MIGRATE_3"),
        (303, "STATS_MIGRATE_2"),
        (500, "INTERNAL"),
        (-503, "Timeout"),
    ];
    for (code, msg) in expected {
        let r = echo_result(&mut c, &mut dc, now, b"e");
        assert_eq!(rpc_error(&r), (code, msg.to_string()));
    }
    assert_eq!(dc.execution_count(&echo_body(b"e")), 0);
    assert_eq!(echo_result(&mut c, &mut dc, now, b"e"), echo_body(b"e"));
    assert_eq!(dc.execution_count(&echo_body(b"e")), 1);
    assert_eq!(dc.stats().faults_fired, 10);
}

#[test]
fn fault_when_echo_prefix_and_times() {
    let (now, _, mut dc, mut c) = with_faults("flood_wait=3@echo:6869*2");
    for _ in 0..2 {
        let r = echo_result(&mut c, &mut dc, now, b"hi there");
        assert_eq!(rpc_error(&r).1, "FLOOD_WAIT_3");
        assert_eq!(
            echo_result(&mut c, &mut dc, now, b"other"),
            echo_body(b"other")
        );
    }
    // Fired twice: no more.
    assert_eq!(
        echo_result(&mut c, &mut dc, now, b"hi there"),
        echo_body(b"hi there")
    );
    // Always, unlimited.
    let (now, _, mut dc, mut c) = with_faults("internal");
    for _ in 0..5 {
        assert_eq!(rpc_error(&echo_result(&mut c, &mut dc, now, b"x")).0, 500);
    }
}

#[test]
fn fault_bad_salt_refuses_a_good_salt_and_rotates() {
    let (now, _, mut dc, mut c) = with_faults("bad_salt@1");
    let old = c.salt;
    let id = c.echo(&mut dc, now, b"b");
    let msgs = c.recv(&mut dc);
    let bad = find::<t::BadServerSalt>(&msgs);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].bad_msg_id, id);
    assert_ne!(bad[0].new_server_salt, old);
    assert!(results(&msgs).is_empty());
    assert!(
        find::<t::MsgsAck>(&msgs).is_empty(),
        "a refused message is not acknowledged"
    );
    assert_eq!(dc.execution_count(&echo_body(b"b")), 0);
    // The old salt is refused now; the new one works.
    let msgs = {
        c.echo(&mut dc, now, b"b");
        c.recv(&mut dc)
    };
    assert_eq!(find::<t::BadServerSalt>(&msgs).len(), 1);
    c.salt = bad[0].new_server_salt;
    assert_eq!(echo_result(&mut c, &mut dc, now, b"b"), echo_body(b"b"));
}

#[test]
fn fault_clock_skew_moves_server_time() {
    let (now, clock, mut dc) =
        setup(FakeDcConfig::new(2).faults(Faults::parse("skew=1000").unwrap()));
    assert_eq!(dc.server_time(now), UNIX as i64 + 1000);
    let mut c = client(&mut dc, clock, now);
    // The handshake told the client the server time.
    assert_eq!(c.finished.time_offset, 1000);
    c.echo(&mut dc, now, b"s");
    let msgs = c.recv(&mut dc);
    assert!(msgs.iter().all(|m| m.msg_id >> 32 == UNIX as i64 + 1000));
    assert_eq!(results(&msgs).len(), 1);
    // A client that ignores the offset is 1000 s behind: code 16.
    let id = ((UNIX as i64) << 32) + 4;
    let seq = c.seq.next(true);
    c.send_message(&mut dc, now, c.salt, id, seq, &echo_body(b"s"));
    assert_eq!(bad_codes(&c.recv(&mut dc)), vec![(id, 16)]);

    // Skew from the n-th request on.
    let (now, _, mut dc, mut c) = with_faults("skew=-500@2");
    echo_result(&mut c, &mut dc, now, b"1");
    assert_eq!(dc.server_time(now), UNIX as i64);
    echo_result(&mut c, &mut dc, now, b"2");
    assert_eq!(dc.server_time(now), UNIX as i64 - 500);
    c.echo(&mut dc, now, b"3");
    assert_eq!(bad_codes(&c.recv(&mut dc)).first().map(|b| b.1), Some(17));
}

#[test]
fn fault_forget_sessions_at_the_nth_request() {
    let (now, _, mut dc, mut c) = with_faults("forget@2");
    echo_result(&mut c, &mut dc, now, b"1");
    let id = c.echo(&mut dc, now, b"2");
    let msgs = c.recv(&mut dc);
    let nsc = find::<t::NewSessionCreated>(&msgs);
    assert_eq!(nsc.len(), 1);
    assert_eq!(nsc[0].first_msg_id, id);
    assert_eq!(results(&msgs), vec![(id, echo_body(b"2"))]);
    assert_eq!(dc.stats().new_sessions, 2);
}

#[test]
fn fault_close_after_keeps_the_answer_for_the_next_connection() {
    // Handshake (3 packets) + the warm-up ping = 4; the 5th packet closes.
    let (now, _, mut dc, mut c) = with_faults("close_after=5*1");
    let id = c.echo(&mut dc, now, b"cut");
    let msgs = c.recv(&mut dc);
    assert!(msgs.is_empty());
    assert!(c.link.closed);
    assert_eq!(dc.execution_count(&echo_body(b"cut")), 1);
    c.reconnect(&mut dc, now);
    c.send(&mut dc, now, &f::Ping { ping_id: 6 }.to_bytes(), true);
    let msgs = c.recv(&mut dc);
    assert_eq!(results(&msgs), vec![(id, echo_body(b"cut"))]);
    // times = 1: the new connection stays open past 5 packets.
    for i in 0..6 {
        echo_result(&mut c, &mut dc, now, &[i]);
    }
    assert!(!c.link.closed);
}

#[test]
fn fault_delay_holds_answers_back() {
    let (now, _, mut dc, mut c) = with_faults("delay_ms=250");
    let id = c.echo(&mut dc, now, b"d");
    assert!(results(&c.recv(&mut dc)).is_empty());
    assert_eq!(dc.execution_count(&echo_body(b"d")), 1);
    TestClient::advance(&mut dc, now + Duration::from_millis(249));
    assert!(results(&c.recv(&mut dc)).is_empty());
    TestClient::advance(&mut dc, now + Duration::from_millis(250));
    assert_eq!(results(&c.recv(&mut dc)), vec![(id, echo_body(b"d"))]);
}

#[test]
fn fault_split_frames_cuts_every_write() {
    let (now, _, mut dc, mut c) = with_faults("split=7");
    c.echo(&mut dc, now, &[1; 100]);
    let mut pieces = 0;
    while let Some(out) = dc.poll_output() {
        if let DcOutput::Transmit { bytes, .. } = &out {
            assert!(bytes.len() <= 7);
            pieces += 1;
            c.link.codec.feed(bytes);
        }
    }
    assert!(pieces > 10);
    assert!(matches!(
        c.link.codec.next_frame(),
        Some(Ok(mtsender::transport::Frame::Packet(_)))
    ));
}

#[test]
fn migrate_kinds_are_named() {
    for (kind, name) in [
        (MigrateKind::Phone, "PHONE"),
        (MigrateKind::Network, "NETWORK"),
        (MigrateKind::User, "USER"),
        (MigrateKind::File, "FILE"),
        (MigrateKind::Stats, "STATS"),
    ] {
        assert_eq!(kind.prefix(), name);
    }
}

#[test]
fn bind_temp_auth_key_answers_true_and_records_the_binding() {
    let (now, clock, mut dc) = setup(FakeDcConfig::new(2));
    let perm = TestClient::connect(
        &mut dc,
        clock,
        now,
        Transport::Plain(TransportKind::Intermediate),
        mtsender::handshake::KeyKind::Permanent,
        7,
    )
    .unwrap()
    .auth_key;
    let mut c = TestClient::connect(
        &mut dc,
        clock,
        now,
        Transport::Plain(TransportKind::Intermediate),
        mtsender::handshake::KeyKind::Temporary { expires_in: 100 },
        8,
    )
    .unwrap();
    // The binding message, MTProto 1.0 under the permanent key, carrying
    // the msg_id of the request itself.
    let bind_for = |c: &TestClient, msg_id: i64, session_id: i64| {
        let inner = t::BindAuthKeyInner {
            nonce: 1,
            temp_auth_key_id: c.auth_key.id(),
            perm_auth_key_id: perm.id(),
            temp_session_id: session_id,
            expires_at: 1_700_000_100,
        }
        .to_bytes();
        let mut plain = vec![5u8; 16];
        plain.extend_from_slice(&msg_id.to_le_bytes());
        plain.extend_from_slice(&0i32.to_le_bytes());
        plain.extend_from_slice(&(inner.len() as i32).to_le_bytes());
        plain.extend_from_slice(&inner);
        let padding = vec![0; (16 - plain.len() % 16) % 16];
        f::BindTempAuthKey {
            perm_auth_key_id: perm.id(),
            nonce: 1,
            expires_at: 1_700_000_100,
            encrypted_message: mtsender::crypto::encrypt_v1(&perm, &plain, &padding),
        }
        .to_bytes()
    };
    // Forged: the inner msg_id is not the request's.
    let msg_id = c.msg_ids.next(now);
    let forged = bind_for(&c, msg_id + 4, c.session_id);
    let seqno = c.seq.next(true);
    let salt = c.salt;
    c.send_message(&mut dc, now, salt, msg_id, seqno, &forged);
    let replies = c.recv(&mut dc);
    let err = replies.iter().find_map(|m| m.rpc_result()).unwrap();
    assert_eq!(err.0, msg_id);
    assert_eq!(
        t::RpcError::from_bytes(err.1).unwrap().error_message,
        "ENCRYPTED_MESSAGE_INVALID"
    );
    assert_eq!(dc.auth_key_info(c.auth_key.id()).unwrap().bound_to, None);
    // Genuine.
    let msg_id = c.msg_ids.next(now);
    let bind = bind_for(&c, msg_id, c.session_id);
    let seqno = c.seq.next(true);
    c.send_message(&mut dc, now, salt, msg_id, seqno, &bind);
    assert_eq!(results(&c.recv(&mut dc)), vec![(msg_id, true.to_bytes())]);
    assert_eq!(
        dc.auth_key_info(c.auth_key.id()).unwrap().bound_to,
        Some(perm.id())
    );
    assert_eq!(dc.execution_count(&bind), 1);
}

#[test]
fn a_container_can_open_a_session() {
    let (now, clock, mut dc) = setup(FakeDcConfig::new(2));
    let mut c = client(&mut dc, clock, now);
    let (_, inner) = c.send_container(
        &mut dc,
        now,
        &[(&echo_body(b"a"), true), (&echo_body(b"b"), true)],
    );
    let msgs = c.recv(&mut dc);
    assert_eq!(
        find::<t::NewSessionCreated>(&msgs)[0].first_msg_id,
        inner[0]
    );
    assert_eq!(
        results(&msgs),
        vec![(inner[0], echo_body(b"a")), (inner[1], echo_body(b"b"))]
    );
}

// ---------------------------------------------------------------------------
// Hostile input: nothing a peer sends may panic the server.

#[test]
fn garbage_on_fresh_connections_never_panics() {
    use rand_core::{RngCore, SeedableRng};
    let (now, _, mut dc) = setup(FakeDcConfig::new(2));
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(17);
    let prefixes: [&[u8]; 5] = [
        &[0xef],
        &[0xee; 4],
        &[0xdd; 4],
        &[],
        &[0x40, 0, 0, 0, 0, 0, 0, 0],
    ];
    for i in 0..400 {
        let conn = dc.open(now);
        let mut bytes = prefixes[i % prefixes.len()].to_vec();
        let len = (rng.next_u32() % 600) as usize;
        let start = bytes.len();
        bytes.resize(start + len, 0);
        rng.fill_bytes(&mut bytes[start..]);
        for chunk in bytes.chunks(1 + (rng.next_u32() % 64) as usize) {
            dc.receive(now, conn, chunk);
        }
        dc.handle_timeout(now + Duration::from_secs(1));
        while dc.poll_output().is_some() {}
        dc.close(now, conn);
    }
}

#[test]
fn hostile_messages_under_a_valid_key_never_panic() {
    use rand_core::{RngCore, SeedableRng};
    let (now, _, mut dc, mut c) = warm(
        FakeDcConfig::new(2)
            .faults(Faults::parse("delay_ms=10@echo:00,bad_salt@echo:01,forget@echo:02").unwrap()),
    );
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(23);
    let ids: [u32; 24] = [
        mtsender::tl::message::MSG_CONTAINER_ID,
        mtsender::tl::message::GZIP_PACKED_ID,
        mtsender::tl::message::MSG_COPY_ID,
        t::MsgsAck::CONSTRUCTOR_ID,
        f::Ping::CONSTRUCTOR_ID,
        f::PingDelayDisconnect::CONSTRUCTOR_ID,
        f::GetFutureSalts::CONSTRUCTOR_ID,
        t::MsgsStateReq::CONSTRUCTOR_ID,
        t::MsgResendReq::CONSTRUCTOR_ID,
        t::MsgResendAnsReq::CONSTRUCTOR_ID,
        f::RpcDropAnswer::CONSTRUCTOR_ID,
        f::DestroySession::CONSTRUCTOR_ID,
        f::HttpWait::CONSTRUCTOR_ID,
        f::TestEcho::CONSTRUCTOR_ID,
        f::InvokeWithLayer::CONSTRUCTOR_ID,
        f::InitConnection::CONSTRUCTOR_ID,
        f::InvokeWithoutUpdates::CONSTRUCTOR_ID,
        f::InvokeAfterMsg::CONSTRUCTOR_ID,
        0x3dc4_b4f0,
        f::BindTempAuthKey::CONSTRUCTOR_ID,
        mtsender::tl::VECTOR_ID,
        t::MsgsStateInfo::CONSTRUCTOR_ID,
        0,
        0xffff_ffff,
    ];
    let mut t = now;
    for i in 0..3000u32 {
        let mut body = ids[(rng.next_u32() as usize) % ids.len()]
            .to_le_bytes()
            .to_vec();
        if rng.next_u32() % 3 == 0 {
            // A plausible nested id.
            body.extend_from_slice(&ids[(rng.next_u32() as usize) % ids.len()].to_le_bytes());
        }
        let words = (rng.next_u32() % 24) as usize;
        for _ in 0..words {
            let w = match rng.next_u32() % 4 {
                0 => rng.next_u32() % 8,
                1 => 0xfe,
                _ => rng.next_u32(),
            };
            body.extend_from_slice(&w.to_le_bytes());
        }
        let msg_id = match rng.next_u32() % 8 {
            0 => rng.next_u64() as i64,
            1 => c.msg_ids.next(t) + 2,
            _ => c.msg_ids.next(t),
        };
        let seqno = match rng.next_u32() % 4 {
            0 => rng.next_u32() as i32,
            _ => c.seq.next(rng.next_u32() % 2 == 0),
        };
        let salt = if rng.next_u32() % 10 == 0 { 0 } else { c.salt };
        if i % 500 == 499 {
            c.reconnect(&mut dc, t);
        }
        if c.link.closed {
            c.reconnect(&mut dc, t);
        }
        c.send_message(&mut dc, t, salt, msg_id, seqno, &body);
        if dc.auth_key_count() == 0 {
            break; // destroy_auth_key can be among the random bodies
        }
        for m in c.recv(&mut dc) {
            if let Some(s) = find::<t::BadServerSalt>(std::slice::from_ref(&m)).pop() {
                c.salt = s.new_server_salt;
            }
        }
        t += Duration::from_millis(3);
        TestClient::advance(&mut dc, t);
    }
    assert!(dc.stats().packets > 3000, "{:?}", dc.stats());
    assert!(dc.stats().bad_msgs.len() >= 4, "{:?}", dc.stats().bad_msgs);
}

#[test]
fn timers_of_a_dropped_connection_do_not_stay_due() {
    let (now, _, mut dc, mut c) = with_faults("delay_ms=1000");
    c.echo(&mut dc, now, b"late");
    assert_eq!(dc.poll_timeout(), Some(now + Duration::from_millis(100)));
    dc.close(now, c.link.conn);
    let t = now + Duration::from_millis(200);
    dc.handle_timeout(t);
    assert_eq!(dc.poll_timeout(), Some(now + Duration::from_millis(1000)));
    dc.handle_timeout(now + Duration::from_millis(1000));
    assert_eq!(dc.poll_timeout(), None);
    // Answer and ack wait for the session's next connection.
    c.reconnect(&mut dc, t);
    c.send(
        &mut dc,
        now + Duration::from_millis(1000),
        &f::Ping { ping_id: 1 }.to_bytes(),
        true,
    );
    let msgs = c.recv(&mut dc);
    assert_eq!(results(&msgs).len(), 1);
}
