use super::*;
use crate::tl::types::ResPq;
use crate::tl::Identifiable;

use crate::test_util::t0;

fn test_key() -> RsaPublicKey {
    RsaPublicKey::from_pem(include_str!("../../tests/vectors/test_rsa_2048.pub.pem")).unwrap()
}

fn start() -> (Instant, Handshake) {
    let now = t0();
    let clock = Clock::new(now, Duration::from_secs(1_700_000_000));
    let hs = Handshake::new(
        HandshakeConfig::new(vec![test_key()], 2),
        clock,
        now,
        [7; 32],
    );
    (now, hs)
}

fn server_plain(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PlainMessage::write(&mut out, (1_700_000_000_i64 << 32) | 1, body);
    out
}

fn sent_nonce(hs: &mut Handshake) -> [u8; 16] {
    let msg = hs.poll_transmit().unwrap();
    let plain = PlainMessage::parse(&msg).unwrap();
    assert_eq!(plain.msg_id % 4, 0);
    assert_eq!(plain.msg_id >> 32, 1_700_000_000);
    functions::ReqPqMulti::from_bytes(plain.body).unwrap().nonce
}

fn res_pq(nonce: [u8; 16], fingerprints: Vec<i64>, pq: u64) -> Vec<u8> {
    server_plain(
        &ResPq {
            nonce,
            server_nonce: [9; 16],
            pq: pq.to_be_bytes().to_vec(),
            server_public_key_fingerprints: fingerprints,
        }
        .to_bytes(),
    )
}

#[test]
fn sends_req_pq_multi_first_and_answers_res_pq() {
    let (now, mut hs) = start();
    let nonce = sent_nonce(&mut hs);
    assert!(hs.poll_transmit().is_none());
    let fp = test_key().fingerprint();
    let r = hs.handle_packet(now, &res_pq(nonce, vec![1, fp], 2694724800268887959));
    assert!(matches!(r, Ok(None)), "{r:?}");
    let msg = hs.poll_transmit().unwrap();
    let req = functions::ReqDhParams::from_bytes(PlainMessage::parse(&msg).unwrap().body).unwrap();
    assert_eq!(req.p, 1513098571u32.to_be_bytes());
    assert_eq!(req.q, 1780931429u32.to_be_bytes());
    assert_eq!(req.public_key_fingerprint, fp);
    assert_eq!(req.encrypted_data.len(), 256);
}

#[test]
fn wrong_nonce_is_refused() {
    let (now, mut hs) = start();
    let mut nonce = sent_nonce(&mut hs);
    nonce[0] ^= 1;
    let fp = test_key().fingerprint();
    assert_eq!(
        hs.handle_packet(now, &res_pq(nonce, vec![fp], 15))
            .unwrap_err(),
        HandshakeError::NonceMismatch
    );
    assert!(hs.is_done());
    assert_eq!(hs.error(), Some(&HandshakeError::NonceMismatch));
    // Nothing is sent after a failure, and it stays failed.
    assert!(hs.poll_transmit().is_none());
    assert!(hs.handle_packet(now, &res_pq(nonce, vec![fp], 15)).is_err());
}

#[test]
fn no_matching_key_names_the_offered_fingerprints() {
    let (now, mut hs) = start();
    let nonce = sent_nonce(&mut hs);
    assert_eq!(
        hs.handle_packet(now, &res_pq(nonce, vec![11, 22], 15))
            .unwrap_err(),
        HandshakeError::NoMatchingKey {
            offered: vec![11, 22]
        }
    );
}

#[test]
fn prime_pq_and_oversized_pq_are_refused() {
    let fp = test_key().fingerprint();
    let (now, mut hs) = start();
    let nonce = sent_nonce(&mut hs);
    assert_eq!(
        hs.handle_packet(now, &res_pq(nonce, vec![fp], 1_000_000_007))
            .unwrap_err(),
        HandshakeError::BadPq
    );

    let (now, mut hs) = start();
    let nonce = sent_nonce(&mut hs);
    let mut body = ResPq {
        nonce,
        server_nonce: [9; 16],
        pq: vec![1; 9],
        server_public_key_fingerprints: vec![fp],
    };
    assert_eq!(
        hs.handle_packet(now, &server_plain(&body.to_bytes()))
            .unwrap_err(),
        HandshakeError::BadPq
    );
    body.pq = vec![];
    let (now, mut hs) = start();
    let _ = sent_nonce(&mut hs);
    assert!(hs
        .handle_packet(now, &server_plain(&body.to_bytes()))
        .is_err());
}

#[test]
fn even_msg_id_wrong_constructor_and_garbage() {
    let (now, mut hs) = start();
    let nonce = sent_nonce(&mut hs);
    let mut even = res_pq(nonce, vec![1], 15);
    even[8] &= !1;
    assert_eq!(
        hs.handle_packet(now, &even).unwrap_err(),
        HandshakeError::EvenMsgId
    );

    let (now, mut hs) = start();
    let _ = sent_nonce(&mut hs);
    let pong = server_plain(
        &types::Pong {
            msg_id: 1,
            ping_id: 2,
        }
        .to_bytes(),
    );
    assert_eq!(
        hs.handle_packet(now, &pong).unwrap_err(),
        HandshakeError::Unexpected(types::Pong::CONSTRUCTOR_ID)
    );

    for garbage in [&[][..], &[0; 19], &[1; 40]] {
        let (now, mut hs) = start();
        assert!(matches!(
            hs.handle_packet(now, garbage),
            Err(HandshakeError::Malformed(_))
        ));
    }
}

#[test]
fn each_step_times_out() {
    let (now, mut hs) = start();
    let deadline = hs.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_secs(10));
    assert_eq!(
        hs.handle_timeout(deadline - Duration::from_millis(1)),
        Ok(())
    );
    assert_eq!(hs.handle_timeout(deadline), Err(HandshakeError::Timeout));
    assert_eq!(hs.poll_timeout(), None);
}

#[test]
fn be_min_strips_leading_zeros() {
    assert_eq!(be_min(0x5A300D4B), vec![0x5A, 0x30, 0x0D, 0x4B]);
    assert_eq!(be_min(0), vec![0]);
    assert_eq!(be_min(u64::MAX), vec![0xff; 8]);
}
