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
