//! Telegram's published auth key example (tests/vectors/auth_key_sample.txt),
//! checked byte for byte: every step's payload, the pq factors, the
//! temporary AES key and iv, the decryption of the server's answer and its
//! SHA1, g_b, the client_DH_inner_data encryption, auth_key and
//! new_nonce_hash1.

mod common;

use common::{auth_key_sample, hex};
use mtsender::tl::message::PlainMessage;
use mtsender::tl::{enums, functions, types, Deserialize, Error, Serialize};

/// A plain message envelope built from the step's fields equals the step's
/// payload, and the body equals the TL serialization of the step's object.
fn check_plain(step: &str, body: &[u8]) {
    let v = auth_key_sample();
    let payload = v.bytes(step, "payload");
    assert_eq!(v.bytes(step, "auth_key_id"), [0; 8]);
    let msg_id = i64::from_le_bytes(v.array(step, "message_id"));
    let mut built = Vec::new();
    PlainMessage::write(&mut built, msg_id, body);
    assert_eq!(built, payload, "{step}: payload");
    let parsed = PlainMessage::parse(&payload).unwrap();
    assert_eq!(parsed.msg_id, msg_id);
    assert_eq!(parsed.body, body);
}

#[test]
fn step1_req_pq_multi() {
    let v = auth_key_sample();
    let s = "step 1";
    let req = functions::ReqPqMulti {
        nonce: v.array(s, "nonce"),
    };
    let body = req.to_bytes();
    assert_eq!(&body[..4], &v.bytes(s, "constructor")[..]);
    check_plain(s, &body);
    assert_eq!(functions::ReqPqMulti::from_bytes(&body).unwrap(), req);
}

/// The page's server replies carry a message_length that disagrees with the
/// body: a plain-message parser refuses them, and the body parses on its own.
fn server_body(step: &str, claimed: i32) -> Vec<u8> {
    let v = auth_key_sample();
    let payload = v.bytes(step, "payload");
    assert_eq!(
        PlainMessage::parse(&payload),
        Err(Error::BadPlainLength {
            claimed,
            actual: payload.len() - 20
        })
    );
    payload[20..].to_vec()
}

#[test]
fn step2_res_pq() {
    let v = auth_key_sample();
    let s = "step 2";
    let body = server_body(s, 168);
    let res = types::ResPq::from_bytes(&body).unwrap();
    assert_eq!(res.nonce, v.array(s, "nonce"));
    assert_eq!(res.server_nonce, v.array(s, "server_nonce"));
    assert_eq!(res.pq, hex("256595EDB7766797"));
    assert_eq!(
        u64::from_be_bytes(res.pq.clone().try_into().unwrap()),
        v.dec("step 3", "pq_dec")
    );
    let fps: Vec<i64> = (0..3)
        .map(|i| i64::from_le_bytes(v.array(s, &format!("server_public_key_fingerprints[{i}]"))))
        .collect();
    assert_eq!(res.server_public_key_fingerprints, fps);
    assert_eq!(res.to_bytes(), body);
}

#[test]
fn step4_p_q_inner_data_dc() {
    let v = auth_key_sample();
    let s = "step 4";
    let inner = types::PQInnerDataDc {
        pq: hex("256595EDB7766797"),
        p: (v.dec("step 3", "p_dec") as u32).to_be_bytes().to_vec(),
        q: (v.dec("step 3", "q_dec") as u32).to_be_bytes().to_vec(),
        nonce: v.array(s, "nonce"),
        server_nonce: v.array(s, "server_nonce"),
        new_nonce: v.array(s, "new_nonce"),
        dc: i32::from_le_bytes(v.array(s, "dc")),
    };
    assert_eq!(inner.to_bytes(), v.bytes(s, "payload"));
    assert_eq!(inner.to_bytes(), v.bytes(s, "data"));
    let any = enums::PQInnerData::from_bytes(&v.bytes(s, "data")).unwrap();
    assert_eq!(any, enums::PQInnerData::Dc(inner));
}

#[test]
fn step5_req_dh_params() {
    let v = auth_key_sample();
    let s = "step 5";
    let encrypted = v.bytes(s, "encrypted_data");
    let req = functions::ReqDhParams {
        nonce: v.array(s, "nonce"),
        server_nonce: v.array(s, "server_nonce"),
        p: hex("5A300D4B"),
        q: hex("6A26DB65"),
        public_key_fingerprint: i64::from_le_bytes(v.array(s, "public_key_fingerprint")),
        // The TL string holds the step-4 RSA output.
        encrypted_data: encrypted[4..].to_vec(),
    };
    assert_eq!(req.encrypted_data, v.bytes("step 4", "encrypted_data"));
    check_plain(s, &req.to_bytes());
}

#[test]
fn step6_server_dh_params_ok_and_inner_data() {
    let v = auth_key_sample();
    let s = "step 6";
    let body = server_body(s, 708);
    let ok = match enums::ServerDhParams::from_bytes(&body).unwrap() {
        enums::ServerDhParams::Ok(ok) => ok,
        other => panic!("{other:?}"),
    };
    assert_eq!(ok.encrypted_answer, v.bytes("step 6.1", "encrypted_answer"));
    let inner = types::ServerDhInnerData::from_bytes(&v.bytes("step 6.2", "payload")).unwrap();
    assert_eq!(inner.nonce, v.array("step 6.2", "nonce"));
    assert_eq!(inner.server_nonce, v.array("step 6.2", "server_nonce"));
    assert_eq!(inner.g, 3);
    assert_eq!(inner.dh_prime, v.bytes("step 6.2", "dh_prime")[4..]);
    assert_eq!(inner.g_a, v.bytes("step 6.2", "g_a")[4..]);
    assert_eq!(
        inner.server_time,
        i32::from_le_bytes(v.array("step 6.2", "server_time"))
    );
    assert_eq!(inner.to_bytes(), v.bytes("step 6.2", "payload"));
}

#[test]
fn step7_client_dh_inner_data_and_set_client_dh_params() {
    let v = auth_key_sample();
    let s = "step 7.1";
    let inner = types::ClientDhInnerData {
        nonce: v.array(s, "nonce"),
        server_nonce: v.array(s, "server_nonce"),
        retry_id: i64::from_le_bytes(v.array(s, "retry_id")),
        g_b: v.bytes(s, "g_b")[4..].to_vec(),
    };
    assert_eq!(inner.to_bytes(), v.bytes(s, "payload"));
    assert_eq!(inner.to_bytes(), v.bytes(s, "data"));
    assert_eq!(inner.g_b, v.bytes("step 7:", "g_b"));

    let s = "step 7.2";
    let req = functions::SetClientDhParams {
        nonce: v.array(s, "nonce"),
        server_nonce: v.array(s, "server_nonce"),
        encrypted_data: v.bytes("step 7.1", "encrypted_data"),
    };
    assert_eq!(req.to_bytes()[..], v.bytes(s, "payload")[20..]);
    check_plain(s, &req.to_bytes());
}

#[test]
fn step9_dh_gen_ok() {
    let v = auth_key_sample();
    let s = "step 9";
    let body = server_body(s, 116);
    match enums::SetClientDhParamsAnswer::from_bytes(&body).unwrap() {
        enums::SetClientDhParamsAnswer::Ok(ok) => {
            assert_eq!(ok.nonce, v.array(s, "nonce"));
            assert_eq!(ok.server_nonce, v.array(s, "server_nonce"));
            assert_eq!(ok.new_nonce_hash1, v.array(s, "new_nonce_hash1"));
        }
        other => panic!("{other:?}"),
    }
}
