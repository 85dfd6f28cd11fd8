//! `handshake`: the client's auth key creation fed server packets from the
//! input, raw or assembled here around input bytes so that every step can
//! be reached: the harness plays enough of the server (it holds the test
//! RSA key) to answer with the right nonces, the right encryption and,
//! when asked, correct DH values and hashes.

use std::time::{Duration, Instant};

use mtsender::crypto::{
    self, decrypt_dh_answer, encrypt_dh_answer_with_padding, first_salt, modpow, new_nonce_hash,
    tmp_aes_key_iv, AuthKey, TELEGRAM_DH_PRIME,
};
use mtsender::handshake::{Handshake, HandshakeConfig, HandshakeError, KeyKind};
use mtsender::session::Clock;
use mtsender::tl::message::PlainMessage;
use mtsender::tl::{enums, functions, types, Deserialize, Identifiable, Reader, Serialize};

use super::cursor::Cursor;
use super::{t0, test_private_key, test_public_key, UNIX};

/// pq of Telegram's example, with factors 1229739323 and 1402015859.
const SAMPLE_PQ: u64 = 0x17ED_48941A08F981;

/// What the harness knows from the client's messages and its own answers.
#[derive(Default)]
pub struct Server {
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    req_dh: Option<functions::ReqDhParams>,
    new_nonce: Option<[u8; 32]>,
    /// a and dh_prime of the last server_DH_inner_data made here.
    dh: Option<([u8; 256], [u8; 256], i64)>,
    set_client: Option<functions::SetClientDhParams>,
    /// aux hashes of the client keys computed here (retry_ids allowed).
    auxes: Vec<i64>,
    pub expected_key: Option<AuthKey>,
    msg_id: i64,
    /// Constructor of the client's last message.
    last: Option<u32>,
}

impl Server {
    fn next_msg_id(&mut self, even: bool) -> i64 {
        self.msg_id += 4;
        (UNIX.as_secs() as i64) << 32 | self.msg_id | if even { 0 } else { 1 }
    }

    fn plain(&mut self, body: &[u8], even: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let id = self.next_msg_id(even);
        PlainMessage::write(&mut out, id, body);
        out
    }

    /// Reads what the client sent; each message must be well-formed and
    /// consistent with the exchange so far.
    pub fn learn(&mut self, msg: &[u8]) {
        let plain = PlainMessage::parse(msg).expect("the client sends plain messages");
        assert_eq!(plain.msg_id % 4, 0, "client msg_id not divisible by 4");
        let id = Reader::new(plain.body)
            .read_u32()
            .expect("a body has an id");
        self.last = Some(id);
        match id {
            functions::ReqPqMulti::CONSTRUCTOR_ID => {
                let r = functions::ReqPqMulti::from_bytes(plain.body).expect("req_pq_multi");
                self.nonce = r.nonce;
            }
            functions::ReqDhParams::CONSTRUCTOR_ID => {
                let r = functions::ReqDhParams::from_bytes(plain.body).expect("req_DH_params");
                assert_eq!(r.nonce, self.nonce);
                assert_eq!(r.public_key_fingerprint, test_public_key().fingerprint());
                let be = |b: &[u8]| b.iter().fold(0u128, |a, &x| a << 8 | u128::from(x));
                assert!(be(&r.p) <= be(&r.q), "p must be the smaller factor");
                self.req_dh = Some(r);
                self.new_nonce = None;
            }
            functions::SetClientDhParams::CONSTRUCTOR_ID => {
                let r = functions::SetClientDhParams::from_bytes(plain.body)
                    .expect("set_client_DH_params");
                assert_eq!(r.nonce, self.nonce);
                self.set_client = Some(r);
            }
            other => panic!("the client sent constructor {other:#010x}"),
        }
    }

    /// new_nonce from the client's req_DH_params (decrypted with the test
    /// key; the client's encryption must always open).
    fn new_nonce(&mut self) -> Option<[u8; 32]> {
        if self.new_nonce.is_none() {
            let req = self.req_dh.as_ref()?;
            let data = test_private_key()
                .rsa_pad_decrypt(&req.encrypted_data)
                .expect("the client's RSA_PAD decrypts");
            let inner = enums::PQInnerData::deserialize(&mut Reader::new(&data))
                .expect("p_q_inner_data inside");
            let (nonce, server_nonce, new_nonce, pq, p, q) = match inner {
                enums::PQInnerData::Dc(d) => (d.nonce, d.server_nonce, d.new_nonce, d.pq, d.p, d.q),
                enums::PQInnerData::TempDc(d) => {
                    (d.nonce, d.server_nonce, d.new_nonce, d.pq, d.p, d.q)
                }
                other => panic!("the client sent {other:?}"),
            };
            assert_eq!(nonce, self.nonce);
            assert_eq!(server_nonce, req.server_nonce);
            assert_eq!((p, q), (req.p.clone(), req.q.clone()));
            let be = |b: &[u8]| b.iter().fold(0u128, |a, &x| a << 8 | u128::from(x));
            assert_eq!(be(&req.p) * be(&req.q), be(&pq), "p * q != pq");
            self.new_nonce = Some(new_nonce);
        }
        self.new_nonce
    }

    /// The temporary AES key and iv, from the nonces the client used.
    fn tmp_key(&mut self) -> Option<([u8; 32], [u8; 32])> {
        let new_nonce = self.new_nonce()?;
        let server_nonce = self.req_dh.as_ref()?.server_nonce;
        Some(tmp_aes_key_iv(&new_nonce, &server_nonce))
    }

    /// server_DH_params_ok around `inner` (server_DH_inner_data bytes).
    fn dh_params_ok(&mut self, inner: &[u8], corrupt_hash: bool) -> Option<Vec<u8>> {
        let (key, iv) = self.tmp_key()?;
        let pad = vec![0u8; (16 - (20 + inner.len()) % 16) % 16];
        let mut encrypted_answer = encrypt_dh_answer_with_padding(inner, &key, &iv, &pad);
        if corrupt_hash {
            encrypted_answer[0] ^= 1;
        }
        Some(
            types::ServerDhParamsOk {
                nonce: self.nonce,
                server_nonce: self.server_nonce,
                encrypted_answer,
            }
            .to_bytes(),
        )
    }

    /// resPQ with the test key's fingerprint (or none).
    fn res_pq(&mut self, server_nonce: [u8; 16], pq: u64, fingerprint: bool) -> Vec<u8> {
        self.server_nonce = server_nonce;
        let fingerprints = if fingerprint {
            vec![test_public_key().fingerprint()]
        } else {
            vec![]
        };
        let body = types::ResPq {
            nonce: self.nonce,
            server_nonce,
            pq: pq.to_be_bytes().to_vec(),
            server_public_key_fingerprints: fingerprints,
        }
        .to_bytes();
        self.plain(&body, false)
    }

    /// server_DH_params_ok with g^a (or `g_a`) under `prime` (by default
    /// Telegram's).
    fn dh_ok_valid(
        &mut self,
        g: i32,
        a: [u8; 32],
        server_time: i32,
        prime: Option<[u8; 256]>,
        g_a: Option<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        let prime = prime.unwrap_or(TELEGRAM_DH_PRIME);
        let mut a256 = [0u8; 256];
        a256[224..].copy_from_slice(&a);
        let g_a = g_a.unwrap_or_else(|| modpow(&g.to_be_bytes(), &a256, &prime).to_vec());
        let inner = types::ServerDhInnerData {
            nonce: self.nonce,
            server_nonce: self.server_nonce,
            g,
            dh_prime: prime.to_vec(),
            g_a,
            server_time,
        }
        .to_bytes();
        self.dh = Some((a256, prime, i64::from(server_time)));
        self.dh_params_ok(&inner, false)
            .map(|b| self.plain(&b, false))
    }

    /// dh_gen_ok, _retry or _fail (`which` 0, 1, 2) with the right hash,
    /// or (`corrupt`) a wrong one.
    fn dh_gen(&mut self, which: u8, corrupt: bool) -> Option<Vec<u8>> {
        let (a, prime, _) = self.dh?;
        let g_b = self.client_g_b()?;
        let new_nonce = self.new_nonce?;
        let key = AuthKey::from_bytes(modpow(&g_b, &a, &prime));
        let aux = key.aux_hash();
        self.auxes.push(aux);
        let mut hash = new_nonce_hash(&new_nonce, aux, which + 1);
        if corrupt {
            hash[0] ^= 1;
        }
        let (nonce, server_nonce) = (self.nonce, self.server_nonce);
        let body = match which {
            0 => {
                self.expected_key = Some(key);
                types::DhGenOk {
                    nonce,
                    server_nonce,
                    new_nonce_hash1: hash,
                }
                .to_bytes()
            }
            1 => types::DhGenRetry {
                nonce,
                server_nonce,
                new_nonce_hash2: hash,
            }
            .to_bytes(),
            _ => types::DhGenFail {
                nonce,
                server_nonce,
                new_nonce_hash3: hash,
            }
            .to_bytes(),
        };
        Some(self.plain(&body, false))
    }

    /// The honest answer to the client's last message, if it awaits one:
    /// resPQ, valid DH parameters, or dh_gen_ok. `seed` varies the server's
    /// choices.
    pub fn honest_answer(&mut self, seed: [u8; 32], server_time: i32) -> Option<Vec<u8>> {
        match self.last.take()? {
            functions::ReqPqMulti::CONSTRUCTOR_ID => {
                let mut server_nonce = [0u8; 16];
                server_nonce.copy_from_slice(&seed[..16]);
                Some(self.res_pq(server_nonce, SAMPLE_PQ, true))
            }
            functions::ReqDhParams::CONSTRUCTOR_ID => {
                // A large exponent, so that g^a is in the safe range.
                let mut a = seed;
                a[0] |= 0x80;
                self.dh_ok_valid(3, a, server_time, None, None)
            }
            functions::SetClientDhParams::CONSTRUCTOR_ID => self.dh_gen(0, false),
            _ => None,
        }
    }

    /// The client's g_b from its last set_client_DH_params.
    fn client_g_b(&mut self) -> Option<Vec<u8>> {
        let (key, iv) = self.tmp_key()?;
        let req = self.set_client.as_ref()?;
        let decrypted = decrypt_dh_answer(&req.encrypted_data, &key, &iv)
            .expect("the client's DH answer has a valid length");
        let mut r = Reader::new(&decrypted[20..]);
        let inner = types::ClientDhInnerData::deserialize(&mut r).expect("client_DH_inner_data");
        crypto::check_dh_answer_hash(&decrypted, r.pos()).expect("the client hashes its answer");
        assert_eq!(inner.nonce, self.nonce);
        assert_eq!(
            Some(inner.server_nonce),
            self.req_dh.as_ref().map(|r| r.server_nonce)
        );
        assert!(
            inner.retry_id == 0 || self.auxes.contains(&inner.retry_id),
            "retry_id {} is no earlier key's aux hash",
            inner.retry_id
        );
        Some(inner.g_b)
    }
}

/// Layout: `config` (bit 0: temporary key; bits 1-2: max retries; bits
/// 3-7 seed the client), then steps, each an op byte (bits 0-2 the step,
/// bits 3-7 options) and its arguments:
///
/// - 0: a raw packet (u16-prefixed);
/// - 1: a plain message around a body (u16-prefixed); option 8 writes the
///   client's nonce at bytes 4..20, 16 the server_nonce at 20..36, 32
///   makes the msg_id even;
/// - 2: resPQ with server_nonce (16 bytes), pq (u64; option 8: the sample
///   pq), and the test key's fingerprint (option 16: none);
/// - 3: server_DH_params_ok around server_DH_inner_data bytes
///   (u16-prefixed; option 8 writes the nonces, 16 breaks the hash);
/// - 4: server_DH_params_ok with valid-looking inner data: g (u8 % 8), a
///   (32 bytes), server_time (u32); option 8: dh_prime from the input (256
///   bytes), 16: g_a from the input (u16-prefixed) instead of g^a;
/// - 5: dh_gen_ok / _retry / _fail (u8 % 3) with the right hash (option 8:
///   a wrong one), once the harness made the DH parameters;
/// - 6: time passes (u16 × 10 ms), then `handle_timeout`;
/// - 7: `handle_timeout` at the deadline (option 8: just before it).
pub fn handshake(data: &[u8]) {
    let mut c = Cursor::new(data);
    let cfg = c.u8();
    let mut config = HandshakeConfig::new(vec![test_public_key()], 2);
    if cfg & 1 == 1 {
        config.kind = KeyKind::Temporary { expires_in: 3600 };
    }
    config.max_retries = u32::from(cfg >> 1 & 3);
    let mut now = t0();
    let mut hs = Handshake::new(config, Clock::new(now, UNIX), now, [cfg >> 3; 32]);
    let mut srv = Server::default();
    let mut failed: Option<HandshakeError> = None;
    let mut finished = false;
    drain(&mut hs, &mut srv);

    while !c.is_empty() {
        let op = c.u8();
        let packet: Option<Vec<u8>> = match op & 7 {
            0 => Some(c.chunk().to_vec()),
            1 => {
                let mut body = c.chunk().to_vec();
                if op & 8 != 0 {
                    if let Some(f) = body.get_mut(4..20) {
                        f.copy_from_slice(&srv.nonce);
                    }
                }
                if op & 16 != 0 {
                    if let Some(f) = body.get_mut(20..36) {
                        f.copy_from_slice(&srv.server_nonce);
                    }
                }
                Some(srv.plain(&body, op & 32 != 0))
            }
            2 => {
                let server_nonce = c.array();
                let pq = c.u64();
                let pq = if op & 8 != 0 { SAMPLE_PQ } else { pq };
                Some(srv.res_pq(server_nonce, pq, op & 16 == 0))
            }
            3 => {
                let mut inner = c.chunk().to_vec();
                if op & 8 != 0 {
                    if let Some(f) = inner.get_mut(4..20) {
                        f.copy_from_slice(&srv.nonce);
                    }
                    if let Some(f) = inner.get_mut(20..36) {
                        f.copy_from_slice(&srv.server_nonce);
                    }
                }
                srv.dh_params_ok(&inner, op & 16 != 0)
                    .map(|b| srv.plain(&b, false))
            }
            4 => {
                let g = i32::from(c.u8() % 8);
                let a = c.array();
                let server_time = c.u32() as i32;
                let prime = (op & 8 != 0).then(|| c.array::<256>());
                let g_a = (op & 16 != 0).then(|| c.chunk().to_vec());
                srv.dh_ok_valid(g, a, server_time, prime, g_a)
            }
            5 => {
                let which = c.u8() % 3;
                srv.dh_gen(which, op & 8 != 0)
            }
            6 => {
                now += Duration::from_millis(u64::from(c.u16()) * 10);
                timeout(&mut hs, now, &mut failed);
                None
            }
            _ => {
                if let Some(d) = hs.poll_timeout() {
                    now = now.max(if op & 8 != 0 {
                        d - Duration::from_nanos(1)
                    } else {
                        d
                    });
                }
                timeout(&mut hs, now, &mut failed);
                None
            }
        };
        if let Some(p) = packet {
            // A resPQ from the input sets the server_nonce later steps use.
            if let Ok(m) = PlainMessage::parse(&p) {
                if let Ok(r) = types::ResPq::from_bytes(m.body) {
                    srv.server_nonce = r.server_nonce;
                }
            }
            match hs.handle_packet(now, &p) {
                Ok(Some(done)) => {
                    assert!(!finished, "finished twice");
                    assert!(failed.is_none(), "finished after failing");
                    finished = true;
                    check_finished(&srv, &done, hs_kind(cfg));
                }
                Ok(None) => assert!(!finished && failed.is_none(), "went on after the end"),
                Err(e) => {
                    if let Some(prev) = &failed {
                        assert_eq!(*prev, e, "a failed handshake changed its error");
                    }
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = &failed {
            assert!(hs.is_done());
            assert_eq!(hs.error(), Some(e));
            assert_eq!(hs.poll_timeout(), None);
            assert!(hs.poll_transmit().is_none(), "a failed handshake sends");
        }
        if finished {
            assert!(hs.is_done());
            assert_eq!(hs.poll_timeout(), None);
        }
        drain(&mut hs, &mut srv);
    }
}

fn hs_kind(cfg: u8) -> KeyKind {
    if cfg & 1 == 1 {
        KeyKind::Temporary { expires_in: 3600 }
    } else {
        KeyKind::Permanent
    }
}

fn check_finished(srv: &Server, done: &mtsender::handshake::Finished, kind: KeyKind) {
    if let Some(key) = &srv.expected_key {
        assert_eq!(&done.auth_key, key, "the client made another key");
    }
    if let (Some(new_nonce), Some(req)) = (srv.new_nonce, &srv.req_dh) {
        assert_eq!(done.first_salt, first_salt(&new_nonce, &req.server_nonce));
    }
    if let (Some((_, _, server_time)), KeyKind::Temporary { expires_in }) = (srv.dh, kind) {
        assert_eq!(done.expires_at, Some(server_time + i64::from(expires_in)));
    }
    if kind == KeyKind::Permanent {
        assert_eq!(done.expires_at, None);
    }
}

fn timeout(hs: &mut Handshake, now: Instant, failed: &mut Option<HandshakeError>) {
    let due = hs.poll_timeout().is_some_and(|d| now >= d);
    match hs.handle_timeout(now) {
        Ok(()) => assert!(!due, "a due deadline did not fail the handshake"),
        Err(e) => {
            assert!(due, "a timeout before the deadline");
            assert_eq!(e, HandshakeError::Timeout);
            assert!(failed.is_none(), "a failed handshake timed out");
            *failed = Some(e);
        }
    }
}

fn drain(hs: &mut Handshake, srv: &mut Server) {
    let mut n = 0;
    while let Some(msg) = hs.poll_transmit() {
        n += 1;
        assert!(n <= 4, "the handshake sends more than one message per step");
        srv.learn(&msg);
    }
}
