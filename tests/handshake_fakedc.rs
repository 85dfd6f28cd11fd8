//! The client handshake against the testkit's fake DC, in memory: every
//! transport, random chunking both ways, many seeds, permanent and temporary
//! keys, the legacy request forms, and one test per handshake fault showing
//! the client's matching check.
//!
//! `MTSENDER_SIM_SEEDS=N` runs N seeds (default 64).

use std::time::{Duration, Instant};

use mtsender::crypto::{self, AuthKey, DhError, RsaPublicKey};
use mtsender::handshake::{Handshake, HandshakeConfig, HandshakeError, KeyKind};
use mtsender::session::ids::Clock;
use mtsender::tl::message::PlainMessage;
use mtsender::tl::{enums, functions as f, types as t, Deserialize, Reader, Serialize};
use mtsender_testkit::client::{run_handshake, Link, TestClient, Transport};
use mtsender_testkit::{BadGa, FakeDc, FakeDcConfig, Fault, FaultAction, Faults, HandshakeFaults};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const UNIX: u64 = 1_700_000_000;
const DC: i32 = 2;

fn t0() -> Instant {
    // Tests need some anchor; the code under test only ever sees it as input.
    #[allow(clippy::disallowed_methods)]
    Instant::now()
}

fn seeds() -> u64 {
    std::env::var("MTSENDER_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

fn public_key() -> RsaPublicKey {
    mtsender_testkit::test_rsa_key().public_key().clone()
}

fn client(clock: Clock, now: Instant, kind: KeyKind, seed: u64) -> Handshake {
    let mut config = HandshakeConfig::new(vec![public_key()], DC);
    config.kind = kind;
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    Handshake::new(config, clock, now, s)
}

fn dc_with(config: FakeDcConfig, now: Instant) -> FakeDc {
    FakeDc::new(config, now, Duration::from_secs(UNIX))
}

#[test]
fn every_transport_random_chunking_many_seeds() {
    let now = t0();
    for seed in 0..seeds() {
        let transport = Transport::ALL[(seed % Transport::ALL.len() as u64) as usize];
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut server_seed = [0u8; 32];
        rng.fill_bytes(&mut server_seed);
        let mut config = FakeDcConfig::new(DC).seed(server_seed);
        // Half the runs also cut the server's writes into small pieces.
        if seed % 2 == 1 {
            config.faults = Faults::none().with(Fault::new(FaultAction::SplitFrames(
                1 + (rng.next_u32() % 40) as usize,
            )));
        }
        let mut dc = dc_with(config, now);
        // The client's clock may be off the server's: the handshake learns by how much.
        let skew = i64::from(rng.next_u32() % 200) - 100;
        let clock = Clock::new(now, Duration::from_secs((UNIX as i64 + skew) as u64));
        let mut link = Link::open(&mut dc, now, transport, seed)
            .random_chunks(seed, [1, 3, 17, 64, 1000][(seed % 5) as usize]);
        let mut hs = client(clock, now, KeyKind::Permanent, seed);
        let done = run_handshake(&mut dc, now, &mut link, &mut hs)
            .unwrap_or_else(|e| panic!("seed {seed}, {transport:?}: {e}"));
        let id = done.auth_key.id();
        assert_eq!(dc.auth_key(id), Some(&done.auth_key), "seed {seed}");
        assert_eq!(dc.auth_key_count(), 1);
        assert_eq!(dc.current_salt(now, id), Some(done.first_salt));
        assert_eq!(done.time_offset, -skew, "seed {seed}");
        assert_eq!(done.expires_at, None);
        assert_eq!(
            dc.transport(link.conn).map(|t| t.1),
            Some(matches!(transport, Transport::Obfuscated(_)))
        );
        assert!(!link.closed);
    }
}

#[test]
fn every_transport_then_an_encrypted_echo() {
    let now = t0();
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    for (i, transport) in Transport::ALL.into_iter().enumerate() {
        let mut dc = dc_with(FakeDcConfig::new(DC).seed([i as u8; 32]), now);
        let mut c =
            TestClient::connect(&mut dc, clock, now, transport, KeyKind::Permanent, i as u64)
                .unwrap();
        let id = c.echo(&mut dc, now, b"over the wire");
        let msgs = c.recv(&mut dc);
        let answer = msgs.iter().find_map(|m| m.rpc_result()).expect("an answer");
        assert_eq!(answer.0, id);
        assert_eq!(
            answer.1,
            mtsender_testkit::client::echo_body(b"over the wire")
        );
    }
}

#[test]
fn temporary_keys_are_stored_with_their_expiry_and_expire() {
    let now = t0();
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    for (i, transport) in Transport::ALL.into_iter().enumerate() {
        let mut dc = dc_with(FakeDcConfig::new(DC).seed([9; 32]), now);
        let kind = KeyKind::Temporary { expires_in: 600 };
        let mut c = TestClient::connect(&mut dc, clock, now, transport, kind, i as u64).unwrap();
        let id = c.auth_key.id();
        let info = dc.auth_key_info(id).unwrap();
        assert_eq!(info.expires_at, Some(UNIX as i64 + 600));
        assert_eq!(c.finished.expires_at, Some(UNIX as i64 + 600));
        assert_eq!(info.bound_to, None);
        // Unbound temporary keys work.
        c.echo(&mut dc, now, b"temp");
        assert!(c.recv(&mut dc).iter().any(|m| m.rpc_result().is_some()));
        // Once expired, the key is unknown: transport error -404 and a close.
        let later = now + Duration::from_secs(601);
        c.echo(&mut dc, later, b"too late");
        assert!(c.recv(&mut dc).is_empty());
        assert_eq!(c.link.transport_errors, vec![-404]);
        assert!(c.link.closed);
        assert_eq!(dc.auth_key(id), None);
    }
}

// ---------------------------------------------------------------------------
// Hand-made client messages: the legacy forms a current client never sends.

struct Manual {
    dc: FakeDc,
    link: Link,
    now: Instant,
    next_msg_id: i64,
    rng: ChaCha20Rng,
}

#[derive(Clone, Copy, Debug)]
enum Inner {
    Legacy,
    Dc(i32),
    TempDc(i32, i32),
}

impl Manual {
    fn new(seed: u64) -> Self {
        let now = t0();
        let mut dc = dc_with(FakeDcConfig::new(DC).seed([seed as u8; 32]), now);
        let link = Link::open(
            &mut dc,
            now,
            Transport::Plain(mtsender::transport::TransportKind::Full),
            seed,
        );
        Self {
            dc,
            link,
            now,
            next_msg_id: (UNIX as i64) << 32,
            rng: ChaCha20Rng::seed_from_u64(seed),
        }
    }

    /// Sends a plain message, returns the body of the one reply (if any).
    fn call(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        self.next_msg_id += 4;
        let mut out = Vec::new();
        PlainMessage::write(&mut out, self.next_msg_id, body);
        self.link.send(&mut self.dc, self.now, &out);
        let packets = self.link.recv(&mut self.dc);
        assert!(packets.len() <= 1);
        packets.first().map(|p| {
            let m = PlainMessage::parse(p).unwrap();
            assert_eq!(m.msg_id & 3, 1, "plain server msg_ids are 1 mod 4");
            m.body.to_vec()
        })
    }

    /// A whole handshake with the given request forms; returns the key
    /// (checked against dh_gen_ok) or the server's refusal.
    fn handshake(
        &mut self,
        legacy_req_pq: bool,
        legacy_rsa: bool,
        inner: Inner,
    ) -> Result<AuthKey, String> {
        let nonce: [u8; 16] = core::array::from_fn(|i| i as u8);
        let req = if legacy_req_pq {
            f::ReqPq { nonce }.to_bytes()
        } else {
            f::ReqPqMulti { nonce }.to_bytes()
        };
        let res = t::ResPq::from_bytes(&self.call(&req).unwrap()).unwrap();
        assert_eq!(res.nonce, nonce);
        assert!(res
            .server_public_key_fingerprints
            .contains(&public_key().fingerprint()));
        let pq = res.pq.iter().fold(0u64, |a, &b| a << 8 | u64::from(b));
        assert!(pq < 1 << 62);
        let (p, q) = crypto::factorize(pq).unwrap();
        let (p, q) = (be(p), be(q));
        let mut new_nonce = [0u8; 32];
        self.rng.fill_bytes(&mut new_nonce);
        let server_nonce = res.server_nonce;
        let data: enums::PQInnerData = match inner {
            Inner::Legacy => t::PQInnerData {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce,
                server_nonce,
                new_nonce,
            }
            .into(),
            Inner::Dc(dc) => t::PQInnerDataDc {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce,
                server_nonce,
                new_nonce,
                dc,
            }
            .into(),
            Inner::TempDc(dc, expires_in) => t::PQInnerDataTempDc {
                pq: res.pq.clone(),
                p: p.clone(),
                q: q.clone(),
                nonce,
                server_nonce,
                new_nonce,
                dc,
                expires_in,
            }
            .into(),
        };
        let key = public_key();
        let encrypted = if legacy_rsa {
            crypto::rsa_legacy_encrypt(&key, &data.to_bytes(), &mut self.rng).unwrap()
        } else {
            crypto::rsa_pad_encrypt(&key, &data.to_bytes(), &mut self.rng).unwrap()
        };
        let answer = self
            .call(
                &f::ReqDhParams {
                    nonce,
                    server_nonce,
                    p,
                    q,
                    public_key_fingerprint: key.fingerprint(),
                    encrypted_data: encrypted.to_vec(),
                }
                .to_bytes(),
            )
            .ok_or("no answer to req_DH_params")?;
        let ok = match enums::ServerDhParams::from_bytes(&answer).unwrap() {
            enums::ServerDhParams::Ok(ok) => ok,
            enums::ServerDhParams::Fail(_) => return Err("server_DH_params_fail".into()),
            _ => unreachable!(),
        };
        let (tmp_key, tmp_iv) = crypto::tmp_aes_key_iv(&new_nonce, &server_nonce);
        let decrypted = crypto::decrypt_dh_answer(&ok.encrypted_answer, &tmp_key, &tmp_iv).unwrap();
        let mut r = Reader::new(&decrypted[20..]);
        let inner = t::ServerDhInnerData::deserialize(&mut r).unwrap();
        crypto::check_dh_answer_hash(&decrypted, r.pos()).unwrap();
        crypto::check_dh_params(&inner.dh_prime, inner.g as u32).unwrap();
        crypto::check_g_range(&inner.g_a, &inner.dh_prime).unwrap();
        assert_eq!(inner.server_time as u64, UNIX);
        let prime: [u8; 256] = inner.dh_prime.clone().try_into().unwrap();
        let mut b = [0u8; 256];
        self.rng.fill_bytes(&mut b);
        let g_b = crypto::modpow(&(inner.g as u32).to_be_bytes(), &b, &prime);
        let auth_key = AuthKey::from_bytes(crypto::modpow(&inner.g_a, &b, &prime));
        let client_inner = t::ClientDhInnerData {
            nonce,
            server_nonce,
            retry_id: 0,
            g_b: g_b.to_vec(),
        };
        let encrypted =
            crypto::encrypt_dh_answer(&client_inner.to_bytes(), &tmp_key, &tmp_iv, &mut self.rng);
        let answer = self
            .call(
                &f::SetClientDhParams {
                    nonce,
                    server_nonce,
                    encrypted_data: encrypted,
                }
                .to_bytes(),
            )
            .unwrap();
        match enums::SetClientDhParamsAnswer::from_bytes(&answer).unwrap() {
            enums::SetClientDhParamsAnswer::Ok(ok) => {
                assert_eq!(
                    ok.new_nonce_hash1,
                    crypto::new_nonce_hash(&new_nonce, auth_key.aux_hash(), 1)
                );
                assert_eq!(
                    self.dc.current_salt(self.now, auth_key.id()),
                    Some(crypto::first_salt(&new_nonce, &server_nonce))
                );
                Ok(auth_key)
            }
            other => Err(format!("{other:?}")),
        }
    }
}

fn be(x: u64) -> Vec<u8> {
    let b = x.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count().min(7);
    b[skip..].to_vec()
}

#[test]
fn legacy_req_pq_legacy_rsa_and_legacy_inner_data_are_accepted() {
    let mut seed = 100;
    for legacy_req_pq in [false, true] {
        for legacy_rsa in [false, true] {
            for inner in [Inner::Legacy, Inner::Dc(DC), Inner::TempDc(DC, 3600)] {
                seed += 1;
                let mut m = Manual::new(seed);
                let key = m
                    .handshake(legacy_req_pq, legacy_rsa, inner)
                    .unwrap_or_else(|e| panic!("{legacy_req_pq} {legacy_rsa} {inner:?}: {e}"));
                assert_eq!(m.dc.auth_key(key.id()), Some(&key));
                let expiry = m.dc.auth_key_info(key.id()).unwrap().expires_at;
                match inner {
                    Inner::TempDc(_, e) => assert_eq!(expiry, Some(UNIX as i64 + i64::from(e))),
                    _ => assert_eq!(expiry, None),
                }
            }
        }
    }
}

#[test]
fn dc_ids_test_and_media_forms_accepted_others_refused() {
    for (i, dc) in [DC, DC + 10_000, -DC, -(DC + 10_000)]
        .into_iter()
        .enumerate()
    {
        let mut m = Manual::new(200 + i as u64);
        assert!(m.handshake(false, false, Inner::Dc(dc)).is_ok(), "{dc}");
    }
    for (i, dc) in [1, 3, 10_001, DC + 1].into_iter().enumerate() {
        let mut m = Manual::new(210 + i as u64);
        assert_eq!(
            m.handshake(false, false, Inner::Dc(dc)),
            Err("server_DH_params_fail".to_string()),
            "{dc}"
        );
        assert_eq!(m.dc.auth_key_count(), 0);
    }
    let mut m = Manual::new(220);
    assert_eq!(
        m.handshake(false, false, Inner::TempDc(DC, 0)),
        Err("server_DH_params_fail".to_string())
    );
}

// ---------------------------------------------------------------------------
// Handshake faults: each one trips the matching check of the client.

fn faulty(
    faults: HandshakeFaults,
    max_retries: u32,
) -> (
    Result<mtsender::handshake::Finished, HandshakeError>,
    FakeDc,
) {
    let now = t0();
    let mut dc = dc_with(FakeDcConfig::new(DC).handshake_faults(faults), now);
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    let mut config = HandshakeConfig::new(vec![public_key()], DC);
    config.max_retries = max_retries;
    let mut hs = Handshake::new(config, clock, now, [5; 32]);
    let mut link = Link::open(
        &mut dc,
        now,
        Transport::Plain(mtsender::transport::TransportKind::Intermediate),
        1,
    );
    (run_handshake(&mut dc, now, &mut link, &mut hs), dc)
}

fn fails_with(faults: HandshakeFaults, expected: HandshakeError) {
    let (r, dc) = faulty(faults.clone(), 5);
    assert_eq!(r.unwrap_err(), expected, "{faults:?}");
    assert_eq!(dc.auth_key_count(), 0, "{faults:?}");
}

#[test]
fn fault_wrong_nonce() {
    fails_with(
        HandshakeFaults {
            wrong_nonce: true,
            ..Default::default()
        },
        HandshakeError::NonceMismatch,
    );
}

#[test]
fn fault_wrong_server_nonce() {
    fails_with(
        HandshakeFaults {
            wrong_server_nonce: true,
            ..Default::default()
        },
        HandshakeError::ServerNonceMismatch,
    );
}

#[test]
fn fault_no_matching_fingerprint() {
    let (r, _) = faulty(
        HandshakeFaults {
            no_matching_fingerprint: true,
            ..Default::default()
        },
        5,
    );
    match r.unwrap_err() {
        HandshakeError::NoMatchingKey { offered } => {
            assert_eq!(offered.len(), 1);
            assert_ne!(offered[0], public_key().fingerprint());
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn fault_server_dh_params_fail() {
    fails_with(
        HandshakeFaults {
            dh_params_fail: true,
            ..Default::default()
        },
        HandshakeError::ServerDhParamsFail,
    );
}

#[test]
fn fault_corrupt_answer_hash() {
    fails_with(
        HandshakeFaults {
            corrupt_answer_hash: true,
            ..Default::default()
        },
        HandshakeError::Dh(DhError::AnswerHashMismatch),
    );
}

#[test]
fn fault_composite_dh_prime() {
    fails_with(
        HandshakeFaults {
            composite_dh_prime: true,
            ..Default::default()
        },
        HandshakeError::Dh(DhError::NotSafePrime),
    );
}

#[test]
fn fault_g_residue() {
    fails_with(
        HandshakeFaults {
            bad_g_residue: true,
            ..Default::default()
        },
        HandshakeError::Dh(DhError::BadGResidue),
    );
}

#[test]
fn fault_g_a_out_of_range() {
    for bad in [BadGa::One, BadGa::BelowMargin] {
        fails_with(
            HandshakeFaults {
                g_a_out_of_range: Some(bad),
                ..Default::default()
            },
            HandshakeError::Dh(DhError::OutOfRange),
        );
    }
}

#[test]
fn fault_wrong_new_nonce_hash1() {
    fails_with(
        HandshakeFaults {
            wrong_new_nonce_hash1: true,
            ..Default::default()
        },
        HandshakeError::NewNonceHashMismatch(1),
    );
}

#[test]
fn fault_dh_gen_fail() {
    fails_with(
        HandshakeFaults {
            dh_gen_fail: true,
            ..Default::default()
        },
        HandshakeError::DhGenFail,
    );
}

#[test]
fn fault_dh_gen_retry_then_ok() {
    // The server answers dh_gen_fail unless each retry carries
    // retry_id = the previous attempt's auth_key_aux_hash, so success here
    // shows the client sent exactly that.
    for retries in [1, 3, 5] {
        let (r, dc) = faulty(
            HandshakeFaults {
                dh_gen_retries: retries,
                ..Default::default()
            },
            5,
        );
        let done = r.unwrap_or_else(|e| panic!("{retries}: {e}"));
        assert_eq!(dc.stats().dh_gen_retries, u64::from(retries));
        assert_eq!(dc.auth_key(done.auth_key.id()), Some(&done.auth_key));
    }
}

#[test]
fn fault_dh_gen_retry_beyond_max_retries() {
    let (r, dc) = faulty(
        HandshakeFaults {
            dh_gen_retries: 3,
            ..Default::default()
        },
        2,
    );
    assert_eq!(r.unwrap_err(), HandshakeError::TooManyRetries);
    assert_eq!(dc.auth_key_count(), 0);
}

#[test]
fn retry_with_a_wrong_retry_id_gets_dh_gen_fail() {
    let now = t0();
    let mut dc = dc_with(
        FakeDcConfig::new(DC).handshake_faults(HandshakeFaults {
            dh_gen_retries: 1,
            ..Default::default()
        }),
        now,
    );
    // Record the client's packets, then replay its first set_client_DH_params
    // (retry_id 0) as the answer to dh_gen_retry.
    let clock = Clock::new(now, Duration::from_secs(UNIX));
    let mut hs = Handshake::new(
        HandshakeConfig::new(vec![public_key()], DC),
        clock,
        now,
        [8; 32],
    );
    let mut link = Link::open(
        &mut dc,
        now,
        Transport::Plain(mtsender::transport::TransportKind::Abridged),
        3,
    );
    let mut sent = Vec::new();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let msg = hs.poll_transmit().unwrap();
        link.send(&mut dc, now, &msg);
        sent.push(msg);
        let p = link.recv(&mut dc).pop().unwrap();
        answers.push(PlainMessage::parse(&p).unwrap().body.to_vec());
        hs.handle_packet(now, &p).unwrap();
    }
    assert!(matches!(
        enums::SetClientDhParamsAnswer::from_bytes(&answers[2]).unwrap(),
        enums::SetClientDhParamsAnswer::Retry(_)
    ));
    // The first set_client_DH_params again, with a fresh msg_id: retry_id 0.
    let first = PlainMessage::parse(&sent[2]).unwrap();
    let mut replay = Vec::new();
    PlainMessage::write(&mut replay, first.msg_id + 400, first.body);
    link.send(&mut dc, now, &replay);
    let p = link.recv(&mut dc).pop().unwrap();
    let body = PlainMessage::parse(&p).unwrap().body.to_vec();
    assert!(matches!(
        enums::SetClientDhParamsAnswer::from_bytes(&body).unwrap(),
        enums::SetClientDhParamsAnswer::Fail(_)
    ));
    assert_eq!(dc.auth_key_count(), 0);
}
