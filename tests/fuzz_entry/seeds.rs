//! Valid inputs for every target, written out by
//! `cargo test --test fuzz_corpus -- --ignored write_seeds` and minimised
//! into `fuzz/corpus/` with `cargo fuzz cmin`: they start the fuzzer from
//! well-formed frames, objects, messages and scripts instead of from
//! nothing.

use mtsender::buf::FrameBuf;
use mtsender::tl::message::{
    write_gzip_packed, write_message, ContainerWriter, PlainMessage, RpcResult, GZIP_PACKED_ID,
    MSG_COPY_ID,
};
use mtsender::tl::{enums, functions as f, types as t, write_bytes, RawTail, Serialize};
use mtsender::transport::{ClientCodec, Frame, ServerDecoder, ServerEncoder, TransportKind};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::peer::{PH_CLIENT_MSG_ID, PH_SERVER_MSG_ID, PH_SESSION_ID};

/// A script under construction.
#[derive(Clone, Default)]
struct S(Vec<u8>);

impl S {
    fn new() -> Self {
        Self::default()
    }
    fn u8(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn chunk(self, b: &[u8]) -> Self {
        self.u16(b.len() as u16).raw(b)
    }
    fn done(self) -> Vec<u8> {
        self.0
    }
}

const KINDS: [TransportKind; 4] = [
    TransportKind::Abridged,
    TransportKind::Intermediate,
    TransportKind::PaddedIntermediate,
    TransportKind::Full,
];

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([9; 32])
}

/// A server encoder of `kind` (plain), from a decoder that saw a client's
/// first frame.
fn server_encoder(kind: TransportKind) -> ServerEncoder {
    let mut client = ClientCodec::new(kind);
    let mut buf = FrameBuf::from_payload(&[0; 8]);
    client.encode(&mut buf, &mut rng());
    let mut dec = ServerDecoder::new();
    dec.feed(buf.as_slice());
    assert!(matches!(dec.next_frame(), Some(Ok(Frame::Packet(_)))));
    dec.encoder().expect("detected")
}

fn payloads() -> Vec<Vec<u8>> {
    vec![
        vec![1; 8],
        (0..24).collect(),
        vec![7; 4 * 0x7e],
        vec![8; 4 * 0x7f],
        vec![3; 1000],
    ]
}

pub fn transport_client() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, &kind) in KINDS.iter().enumerate() {
        let mut enc = server_encoder(kind);
        let mut stream = Vec::new();
        for p in payloads() {
            let mut buf = FrameBuf::from_payload(&p);
            enc.encode(&mut buf, &mut rng());
            stream.extend_from_slice(buf.as_slice());
        }
        stream.extend_from_slice(&enc.quick_ack(0x1234));
        stream.extend_from_slice(&enc.transport_error(-404));
        for obfuscated in [0u8, 4] {
            if obfuscated == 4 && kind == TransportKind::Full {
                continue;
            }
            for (max, sizes) in [(0u8, &[][..]), (6, &[1, 3, 200][..]), (5, &[4][..])] {
                out.push(
                    S::new()
                        .u8(k as u8 | obfuscated | max << 3)
                        .u8(sizes.len() as u8)
                        .raw(sizes)
                        .raw(&stream)
                        .done(),
                );
            }
        }
    }
    out
}

pub fn transport_server() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, &kind) in KINDS.iter().enumerate() {
        let mut client = ClientCodec::new(kind);
        let mut stream = Vec::new();
        for (i, p) in payloads().into_iter().enumerate() {
            let mut buf = FrameBuf::from_payload(&p);
            if i % 2 == 1 {
                client.encode_with_quick_ack(&mut buf, &mut rng());
            } else {
                client.encode(&mut buf, &mut rng());
            }
            stream.extend_from_slice(buf.as_slice());
        }
        for (max, sizes) in [(0u8, &[][..]), (6, &[1, 5, 64][..])] {
            out.push(
                S::new()
                    .u8(max << 3)
                    .u16(0)
                    .u8(sizes.len() as u8)
                    .raw(sizes)
                    .raw(&stream)
                    .done(),
            );
            if kind != TransportKind::Full {
                // Without the tag: the harness makes an obfuscated header.
                let tag_len = if kind == TransportKind::Abridged {
                    1
                } else {
                    4
                };
                out.push(
                    S::new()
                        .u8((k as u8 + 1) | max << 3)
                        .u16(2)
                        .u8(sizes.len() as u8)
                        .raw(sizes)
                        .raw(&stream[tag_len..])
                        .done(),
                );
            }
        }
    }
    out
}

fn objects() -> Vec<Vec<u8>> {
    let salts = t::FutureSalts {
        req_msg_id: 0x6000_0000_0000_0004,
        now: 1_700_000_000,
        salts: vec![
            t::FutureSalt {
                valid_since: 1,
                valid_until: 2,
                salt: 3,
            };
            3
        ],
    };
    vec![
        t::ResPq {
            nonce: [1; 16],
            server_nonce: [2; 16],
            pq: vec![0x17, 0xed, 0x48, 0x94, 0x1a, 0x08, 0xf9, 0x81],
            server_public_key_fingerprints: vec![-1, 2],
        }
        .to_bytes(),
        t::ServerDhInnerData {
            nonce: [1; 16],
            server_nonce: [2; 16],
            g: 3,
            dh_prime: vec![0xc7; 256],
            g_a: vec![0x33; 256],
            server_time: 1_700_000_000,
        }
        .to_bytes(),
        t::PQInnerDataDc {
            pq: vec![1; 8],
            p: vec![2; 4],
            q: vec![3; 4],
            nonce: [4; 16],
            server_nonce: [5; 16],
            new_nonce: [6; 32],
            dc: 2,
        }
        .to_bytes(),
        t::DhGenOk {
            nonce: [1; 16],
            server_nonce: [2; 16],
            new_nonce_hash1: [3; 16],
        }
        .to_bytes(),
        t::RpcError {
            error_code: 420,
            error_message: "FLOOD_WAIT_30".into(),
        }
        .to_bytes(),
        salts.to_bytes(),
        t::Pong {
            msg_id: 5,
            ping_id: 6,
        }
        .to_bytes(),
        t::NewSessionCreated {
            first_msg_id: 1,
            unique_id: 2,
            server_salt: 3,
        }
        .to_bytes(),
        t::MsgsAck {
            msg_ids: vec![1, 2, 3],
        }
        .to_bytes(),
        t::BadMsgNotification {
            bad_msg_id: 1,
            bad_msg_seqno: 2,
            error_code: 16,
        }
        .to_bytes(),
        t::BadServerSalt {
            bad_msg_id: 1,
            bad_msg_seqno: 2,
            error_code: 48,
            new_server_salt: 4,
        }
        .to_bytes(),
        t::MsgsStateInfo {
            req_msg_id: 1,
            info: vec![1, 2, 4, 8],
        }
        .to_bytes(),
        t::MsgsAllInfo {
            msg_ids: vec![1, 2],
            info: vec![2, 4],
        }
        .to_bytes(),
        t::MsgDetailedInfo {
            msg_id: 1,
            answer_msg_id: 3,
            bytes: 8,
            status: 0,
        }
        .to_bytes(),
        t::MsgNewDetailedInfo {
            answer_msg_id: 3,
            bytes: 8,
            status: 0,
        }
        .to_bytes(),
        t::MsgResendReq { msg_ids: vec![9] }.to_bytes(),
        t::DestroySessionOk { session_id: 7 }.to_bytes(),
        t::RpcAnswerDropped {
            msg_id: 1,
            seq_no: 2,
            bytes: 3,
        }
        .to_bytes(),
        t::DestroyAuthKeyOk {}.to_bytes(),
        f::ReqPqMulti { nonce: [1; 16] }.to_bytes(),
        f::PingDelayDisconnect {
            ping_id: 1,
            disconnect_delay: 75,
        }
        .to_bytes(),
        f::InvokeWithLayer {
            layer: 181,
            query: RawTail(
                f::InitConnection {
                    api_id: 1,
                    device_model: "m".into(),
                    query: RawTail(
                        f::TestEcho {
                            payload: vec![1; 3],
                        }
                        .to_bytes(),
                    ),
                    ..Default::default()
                }
                .to_bytes(),
            ),
        }
        .to_bytes(),
        {
            let mut v = Vec::new();
            write_gzip_packed(&mut v, &true.to_bytes());
            v
        },
        vec![1i64, 2, 3].to_bytes(),
        vec![vec![1u8; 253], vec![2u8; 254]].to_bytes(),
        vec![t::Pong {
            msg_id: 1,
            ping_id: 2,
        }]
        .to_bytes(),
        vec![5u8; 300].to_bytes(),
        "text".to_string().to_bytes(),
        true.to_bytes(),
        {
            let mut v = Vec::new();
            enums::BadMsgNotification::from(t::BadMsgNotification {
                bad_msg_id: 1,
                bad_msg_seqno: 1,
                error_code: 17,
            })
            .serialize(&mut v);
            v
        },
    ]
}

pub fn tl_objects() -> Vec<Vec<u8>> {
    let mut out = objects();
    // One with a Reader script: the last byte says how many script bytes
    // precede it.
    let mut v = vec![0u8, 5, 0x18, 0x0b];
    v.extend_from_slice(&(vec![1u8; 12]).to_bytes());
    v.push(4);
    out.push(v);
    out
}

fn container(msgs: &[(i64, i32, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut w = ContainerWriter::begin(&mut v);
    for (id, seq, body) in msgs {
        w.push(&mut v, *id, *seq, body);
    }
    w.finish(&mut v);
    v
}

pub fn tl_messages() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rpc = Vec::new();
    RpcResult::write(&mut rpc, 0x6000_0000_0000_0004, &true.to_bytes());
    out.push(rpc.clone());
    out.push(container(&[
        (1, 1, rpc.clone()),
        (5, 2, t::MsgsAck { msg_ids: vec![4] }.to_bytes()),
        (9, 3, vec![]),
    ]));
    let mut copy = MSG_COPY_ID.to_le_bytes().to_vec();
    write_message(&mut copy, 13, 1, &rpc);
    out.push(copy);
    let mut gz = Vec::new();
    write_gzip_packed(&mut gz, &rpc);
    out.push(gz);
    // A bomb: 2 MiB of zeros, past the 1 MiB cap.
    let mut bomb = Vec::new();
    write_gzip_packed(&mut bomb, &vec![0u8; 2 << 20]);
    out.push(bomb);
    let mut plain = Vec::new();
    PlainMessage::write(&mut plain, 0x6000_0000_0000_0001, &rpc);
    out.push(plain);
    // inflate() on the raw bytes after a 2-byte cap.
    let mut raw = 100u16.to_le_bytes().to_vec();
    raw.extend_from_slice(&mtsender::tl::message::deflate(&[1u8; 300]));
    out.push(raw);
    out
}

/// Writes an 8-byte placeholder.
fn ph(tag: u32, low: u32) -> u64 {
    u64::from(tag) << 32 | u64::from(low)
}

/// Server message bodies that reach every handler of the session, with
/// placeholders for the ids they refer to.
fn server_bodies() -> Vec<Vec<u8>> {
    let client = |k| ph(PH_CLIENT_MSG_ID, k) as i64;
    let rpc = |k, result: &[u8]| {
        let mut v = Vec::new();
        RpcResult::write(&mut v, client(k), result);
        v
    };
    let err = |code, msg: &str| {
        t::RpcError {
            error_code: code,
            error_message: msg.into(),
        }
        .to_bytes()
    };
    let mut gz = Vec::new();
    write_gzip_packed(&mut gz, &true.to_bytes());
    let mut bad_gz = GZIP_PACKED_ID.to_le_bytes().to_vec();
    write_bytes(&mut bad_gz, &[1, 2, 3, 4]);
    let mut copy = MSG_COPY_ID.to_le_bytes().to_vec();
    write_message(
        &mut copy,
        ph(PH_SERVER_MSG_ID, 0x301) as i64,
        1,
        &[1, 2, 3, 4],
    );
    let mut gz_update = Vec::new();
    write_gzip_packed(&mut gz_update, &[0x11, 0x22, 0x33, 0x44]);
    vec![
        rpc(0, &true.to_bytes()),
        rpc(1, &err(420, "FLOOD_WAIT_3")),
        rpc(0, &err(303, "PHONE_MIGRATE_4")),
        rpc(0, &gz),
        rpc(0, &bad_gz),
        t::MsgsAck {
            msg_ids: vec![client(0), client(1)],
        }
        .to_bytes(),
        t::BadMsgNotification {
            bad_msg_id: client(0),
            bad_msg_seqno: 1,
            error_code: 16,
        }
        .to_bytes(),
        t::BadMsgNotification {
            bad_msg_id: client(0),
            bad_msg_seqno: 1,
            error_code: 32,
        }
        .to_bytes(),
        t::BadMsgNotification {
            bad_msg_id: client(0),
            bad_msg_seqno: 1,
            error_code: 99,
        }
        .to_bytes(),
        t::BadServerSalt {
            bad_msg_id: client(0),
            bad_msg_seqno: 1,
            error_code: 48,
            new_server_salt: 77,
        }
        .to_bytes(),
        t::NewSessionCreated {
            first_msg_id: client(1),
            unique_id: 5,
            server_salt: 6,
        }
        .to_bytes(),
        t::Pong {
            msg_id: client(0),
            ping_id: 1,
        }
        .to_bytes(),
        t::FutureSalts {
            req_msg_id: client(0),
            now: 1_700_000_000,
            salts: vec![t::FutureSalt {
                valid_since: 1_700_000_000,
                valid_until: 1_700_003_600,
                salt: 8,
            }],
        }
        .to_bytes(),
        t::MsgsStateReq {
            msg_ids: vec![ph(PH_SERVER_MSG_ID, 0x101) as i64, 5],
        }
        .to_bytes(),
        t::MsgsStateInfo {
            req_msg_id: client(0),
            info: vec![2, 4],
        }
        .to_bytes(),
        t::MsgsAllInfo {
            msg_ids: vec![client(0)],
            info: vec![1],
        }
        .to_bytes(),
        t::MsgDetailedInfo {
            msg_id: client(0),
            answer_msg_id: ph(PH_SERVER_MSG_ID, 0x201) as i64,
            bytes: 8,
            status: 0,
        }
        .to_bytes(),
        t::MsgNewDetailedInfo {
            answer_msg_id: ph(PH_SERVER_MSG_ID, 0x205) as i64,
            bytes: 8,
            status: 0,
        }
        .to_bytes(),
        t::MsgResendReq {
            msg_ids: vec![client(0)],
        }
        .to_bytes(),
        t::DestroySessionOk {
            session_id: ph(PH_SESSION_ID, 0) as i64,
        }
        .to_bytes(),
        copy,
        gz_update,
        vec![0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0],
        container(&[
            (
                ph(PH_SERVER_MSG_ID, 0x401) as i64,
                1,
                rpc(0, &true.to_bytes()),
            ),
            (
                ph(PH_SERVER_MSG_ID, 0x405) as i64,
                2,
                t::MsgsAck {
                    msg_ids: vec![client(1)],
                }
                .to_bytes(),
            ),
            (ph(PH_SERVER_MSG_ID, 0x409) as i64, 3, vec![1, 2, 3, 4]),
        ]),
    ]
}

pub fn encrypted() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, body) in server_bodies().into_iter().enumerate() {
        let low = 0x1001 + 8 * i as u32;
        // Three requests in flight, then the message, twice (the second
        // is a duplicate), then time passes.
        let flags = 3 << 3 | (i as u8 & 1);
        out.push(
            S::new()
                .u8(flags)
                .u8(2)
                .u32(low)
                .u32(1)
                .u8(0)
                .chunk(&body)
                .u8(7)
                .u8(0)
                .u8(3)
                .u16(100)
                .done(),
        );
    }
    // A sealed raw plaintext with the header from placeholders, cancel,
    // ping, connection lost and back, a raw packet.
    let mut plain = Vec::new();
    plain.extend_from_slice(&0i64.to_le_bytes());
    plain.extend_from_slice(&ph(PH_SESSION_ID, 0).to_le_bytes());
    plain.extend_from_slice(&ph(PH_SERVER_MSG_ID, 0x2001).to_le_bytes());
    plain.extend_from_slice(&1i32.to_le_bytes());
    plain.extend_from_slice(&8i32.to_le_bytes());
    plain.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0]);
    plain.extend_from_slice(&[0; 24]);
    out.push(
        S::new()
            .u8(2 << 3)
            .u8(1)
            .chunk(&plain)
            .u8(9)
            .chunk(&plain)
            .u8(6)
            .u8(0)
            .u8(14)
            .u64(9)
            .u8(13)
            .u8(5)
            .u8(4)
            .chunk(&[1, 2, 3, 4])
            .u8(0)
            .chunk(&[0; 64])
            .u8(3)
            .u16(60000)
            .done(),
    );
    // Requests flushed with poll_packets, then answers held back and
    // handed over together (with a raw packet among them), then time.
    let mut s = S::new().u8(7 << 3).u8(4 | 0x20).chunk(&[9; 8]);
    for (i, body) in server_bodies().into_iter().take(6).enumerate() {
        s = s
            .u8(2 | 0x10)
            .u32(0x3001 + 8 * i as u32)
            .u32(1)
            .u8(i as u8)
            .chunk(&body);
        if i == 2 {
            s = s.u8(0x10).chunk(&[0; 80]);
        }
    }
    out.push(s.u8(3 | 0x20).u16(100).done());
    out
}

pub fn handshake() -> Vec<Vec<u8>> {
    let ok = S::new()
        .u8(0)
        .u8(2 | 8)
        .raw(&[5; 16])
        .u64(0)
        .u8(4)
        .u8(3)
        .raw(&[0x42; 32])
        .u32(1_700_000_000)
        .u8(5)
        .u8(0);
    let mut out = vec![
        ok.clone().done(),
        // Temporary key, two retries allowed: retry, then ok.
        S::new()
            .u8(1 | 2 << 1)
            .u8(2 | 8)
            .raw(&[6; 16])
            .u64(0)
            .u8(4)
            .u8(2)
            .raw(&[0x17; 32])
            .u32(1_700_000_100)
            .u8(5)
            .u8(1)
            .u8(5)
            .u8(0)
            .done(),
        // dh_gen_fail, a wrong hash, timeouts.
        S::new()
            .u8(0)
            .u8(2 | 8)
            .raw(&[5; 16])
            .u64(0)
            .u8(4)
            .u8(3)
            .raw(&[0x42; 32])
            .u32(0)
            .u8(5 | 8)
            .u8(0)
            .done(),
        S::new()
            .u8(0)
            .u8(2 | 8)
            .raw(&[5; 16])
            .u64(0)
            .u8(4)
            .u8(3)
            .raw(&[0x42; 32])
            .u32(0)
            .u8(5)
            .u8(2)
            .done(),
        S::new().u8(0).u8(7 | 8).u8(7).done(),
        S::new().u8(0).u8(6).u16(500).u8(6).u16(600).done(),
        // A prime pq, no fingerprint, a bare body with the nonces.
        S::new().u8(0).u8(2).raw(&[1; 16]).u64(1_000_000_007).done(),
        S::new().u8(0).u8(2 | 8 | 16).raw(&[1; 16]).u64(0).done(),
        S::new()
            .u8(0)
            .u8(1 | 8 | 16)
            .chunk(
                &t::ResPq {
                    nonce: [0; 16],
                    server_nonce: [0; 16],
                    pq: vec![0x17, 0xed, 0x48, 0x94, 0x1a, 0x08, 0xf9, 0x81],
                    server_public_key_fingerprints: vec![super::test_public_key().fingerprint()],
                }
                .to_bytes(),
            )
            .done(),
        // server_DH_params_ok around input inner data, and a raw packet.
        S::new()
            .u8(0)
            .u8(2 | 8)
            .raw(&[5; 16])
            .u64(0)
            .u8(3 | 8)
            .chunk(
                &t::ServerDhInnerData {
                    nonce: [0; 16],
                    server_nonce: [0; 16],
                    g: 3,
                    dh_prime: mtsender::crypto::TELEGRAM_DH_PRIME.to_vec(),
                    g_a: vec![0x33; 256],
                    server_time: 1,
                }
                .to_bytes(),
            )
            .done(),
        S::new()
            .u8(0)
            .u8(0)
            .chunk(&{
                let mut v = Vec::new();
                PlainMessage::write(&mut v, 1, &[1, 2, 3, 4]);
                v
            })
            .done(),
        // A prime from the input (the real one, so it passes) and g_a 1.
        S::new()
            .u8(0)
            .u8(2 | 8)
            .raw(&[5; 16])
            .u64(0)
            .u8(4 | 8 | 16)
            .u8(2)
            .raw(&[1; 32])
            .u32(5)
            .raw(&mtsender::crypto::TELEGRAM_DH_PRIME)
            .chunk(&[1])
            .done(),
    ];
    out.push(ok.u8(1).chunk(&[0; 8]).done());
    out
}

pub fn sender() -> Vec<Vec<u8>> {
    let echo = f::TestEcho {
        payload: vec![1, 2, 3],
    }
    .to_bytes();
    let bodies = server_bodies();
    let mut out = Vec::new();
    for flags in [1u8, 1 | 2, 1 | 4 | 8, 1 | 6, 1 | 16 | 32, 1 | 64 | 128] {
        // Saved key: invoke, connect, answer, a server message, time,
        // drop and reconnect.
        out.push(
            S::new()
                .u8(flags)
                .u8(0)
                .chunk(&echo)
                .u8(1)
                .u8(0)
                .u8(11)
                .u8(0)
                .u8(0)
                .u32(1)
                .u8(4)
                .u8(0)
                .u32(0x3001)
                .u32(1)
                .u8(0)
                .chunk(&bodies[10])
                .u8(8)
                .u16(6500)
                .u8(2)
                .u8(0)
                .u8(9)
                .u8(1)
                .u8(0)
                .u8(0)
                .chunk(&echo)
                .u8(9)
                .done(),
        );
    }
    // Each answer shape, and each transport error.
    for pick in 0..10u8 {
        out.push(
            S::new()
                .u8(1)
                .u8(13)
                .u8(3)
                .u8(1)
                .u8(0)
                .u8(11)
                .u8(0)
                .u8(pick)
                .u8(2)
                .chunk(&[1, 2, 3, 4])
                .u32(5)
                .u8(8)
                .u16(300)
                .done(),
        );
    }
    for code in 0..4u8 {
        out.push(
            S::new()
                .u8(1)
                .u8(0)
                .chunk(&echo)
                .u8(1)
                .u8(0)
                .u8(6 | code << 4)
                .u8(0)
                .u16(555)
                .u8(8)
                .u16(200)
                .u8(1)
                .u8(0)
                .done(),
        );
    }
    // Fresh: the harness answers the handshake, then the request.
    for flags in [0u8, 2, 4, 6 | 8] {
        out.push(
            S::new()
                .u8(flags)
                .u8(0)
                .chunk(&echo)
                .u8(1)
                .u8(0)
                .u8(12)
                .u8(0)
                .raw(&[4; 32])
                .u8(12)
                .u8(0)
                .raw(&[4; 32])
                .u8(12)
                .u8(0)
                .raw(&[4; 32])
                .u8(11)
                .u8(0)
                .u8(0)
                .u32(1)
                .u8(10)
                .done(),
        );
    }
    // Garbage on a fresh connection, a quick ack, a sealed plaintext.
    out.push(
        S::new()
            .u8(1)
            .u8(0)
            .chunk(&echo)
            .u8(1)
            .u8(0)
            .u8(7)
            .u8(0)
            .u32(5)
            .u8(5 | 16)
            .u8(0)
            .chunk(&[0; 64])
            .u8(3)
            .u8(0)
            .chunk(&[0xff; 40])
            .done(),
    );
    out
}

pub fn fakedc() -> Vec<Vec<u8>> {
    let echo = f::TestEcho {
        payload: vec![1, 2, 3],
    }
    .to_bytes();
    let mut out = Vec::new();
    for transport in 0..7u8 {
        out.push(
            S::new()
                // A real handshake once (seed bit 7); installed keys (op
                // 12) elsewhere, which run many times faster.
                .u8(if transport == 0 { 0x80 } else { transport })
                .u8(if transport == 0 { 7 } else { 12 } | transport << 4)
                .u8(8)
                .u8(0)
                .u64(0)
                .u64(0)
                .u32(0)
                .chunk(&echo)
                .u8(9)
                .u8(0)
                .u8(2)
                .chunk(&echo)
                .chunk(&t::MsgsAck { msg_ids: vec![1] }.to_bytes())
                .u8(4)
                .u16(50)
                .u8(5)
                .chunk(&[1, 2, 3, 4])
                .u8(11)
                .u8(0)
                .u8(8)
                .u8(1)
                .u64(0)
                .u64(0)
                .u32(0)
                .chunk(
                    &f::PingDelayDisconnect {
                        ping_id: 1,
                        disconnect_delay: 1,
                    }
                    .to_bytes(),
                )
                .u8(4)
                .u16(300)
                .done(),
        );
    }
    // Hostile header fields, a new session, a sealed raw plaintext, raw
    // connections with a handshake start and garbage.
    out.push(
        S::new()
            .u8(9)
            .u8(7)
            .u8(8 | 1 << 4 | 4 << 4 | 8 << 4)
            .u8(0)
            .u64(0)
            .u64(4)
            .u32(2)
            .chunk(&echo)
            .u8(11 | 8 << 4)
            .u8(0)
            .u8(8 | 2 << 4)
            .u8(0)
            .u64(77)
            .u64(0)
            .u32(0)
            .chunk(&echo)
            .u8(10)
            .u8(0)
            .chunk(&[0; 48])
            .u8(6)
            .u8(8)
            .u8(0)
            .u64(0)
            .u64(0)
            .u32(0)
            .chunk(&echo)
            .done(),
    );
    let mut req_pq = Vec::new();
    PlainMessage::write(
        &mut req_pq,
        0x6550_0000_0000_0000,
        &f::ReqPqMulti { nonce: [3; 16] }.to_bytes(),
    );
    out.push(
        S::new()
            .u8(1)
            .u8(0)
            .u8(2 << 4)
            .u8(3)
            .u8(0)
            .chunk(&req_pq)
            .u8(3)
            .u8(1)
            .chunk(&req_pq)
            .u8(2)
            .u8(0)
            .chunk(&[0xef, 1, 2, 3, 4])
            .u8(1)
            .u8(0)
            .done(),
    );
    out
}

/// Every target's seeds.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("transport_client", transport_client()),
        ("transport_server", transport_server()),
        ("tl_objects", tl_objects()),
        ("tl_messages", tl_messages()),
        ("encrypted", encrypted()),
        ("handshake", handshake()),
        ("sender", sender()),
        ("fakedc", fakedc()),
    ]
}
