//! The client handshake driven through the server replies recorded in
//! Telegram's auth key example, with time and randomness injected, ends in
//! the published auth_key.

mod common;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use common::auth_key_sample;
use mtsender::crypto::{RsaPublicKey, TELEGRAM_PRODUCTION_KEY_PEM};
use mtsender::handshake::{Handshake, HandshakeConfig, HandshakeError};
use mtsender::session::ids::Clock;
use mtsender::tl::message::PlainMessage;
use mtsender::tl::{functions, Deserialize};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

/// Serves scripted bytes for draws of a given length (the nonce, new_nonce,
/// b and padding of the example), and ChaCha20 output for any other draw
/// (the RSA_PAD randomness, which the page does not give).
struct ScriptedRng {
    by_len: HashMap<usize, VecDeque<Vec<u8>>>,
    fallback: ChaCha20Rng,
}

impl RngCore for ScriptedRng {
    fn next_u32(&mut self) -> u32 {
        self.fallback.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.fallback.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match self
            .by_len
            .get_mut(&dest.len())
            .and_then(VecDeque::pop_front)
        {
            Some(bytes) => dest.copy_from_slice(&bytes),
            None => self.fallback.fill_bytes(dest),
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for ScriptedRng {}

/// The page's server payload with its message_length corrected to the body
/// it actually carries (the page's known error).
fn fixed_reply(step: &str) -> Vec<u8> {
    let mut payload = auth_key_sample().bytes(step, "payload");
    let body_len = (payload.len() - 20) as i32;
    payload[16..20].copy_from_slice(&body_len.to_le_bytes());
    payload
}

fn start() -> (Instant, Handshake<ScriptedRng>) {
    let v = auth_key_sample();
    let mut by_len: HashMap<usize, VecDeque<Vec<u8>>> = HashMap::new();
    by_len
        .entry(16)
        .or_default()
        .push_back(v.bytes("step 1", "nonce"));
    by_len
        .entry(32)
        .or_default()
        .push_back(v.bytes("step 4", "new_nonce"));
    by_len
        .entry(256)
        .or_default()
        .push_back(v.bytes("step 7:", "b"));
    by_len
        .entry(12)
        .or_default()
        .push_back(v.bytes("step 7.1", "padding"));
    let rng = ScriptedRng {
        by_len,
        fallback: ChaCha20Rng::from_seed([3; 32]),
    };
    // Local clock = the server_time of the example, so the offset is 0.
    let server_time = u32::from_le_bytes(v.array("step 6.2", "server_time"));
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let clock = Clock::new(now, Duration::from_secs(server_time as u64));
    let key = RsaPublicKey::from_pem(TELEGRAM_PRODUCTION_KEY_PEM).unwrap();
    let hs = Handshake::with_rng(HandshakeConfig::new(vec![key], 2), clock, now, rng);
    (now, hs)
}

#[test]
fn the_published_example_yields_the_published_key() {
    let v = auth_key_sample();
    let (now, mut hs) = start();

    // Step 1: the body sent is the page's.
    let sent = hs.poll_transmit().unwrap();
    assert_eq!(
        PlainMessage::parse(&sent).unwrap().body,
        &v.bytes("step 1", "payload")[20..]
    );

    // Step 2 → 5: resPQ offers the production key's fingerprint; we answer
    // with the page's p, q and fingerprint (the RSA part cannot match: the
    // page does not give its randomness).
    assert!(hs
        .handle_packet(now, &fixed_reply("step 2"))
        .unwrap()
        .is_none());
    let sent = hs.poll_transmit().unwrap();
    let req = functions::ReqDhParams::from_bytes(PlainMessage::parse(&sent).unwrap().body).unwrap();
    let page = functions::ReqDhParams::from_bytes(&v.bytes("step 5", "payload")[20..]).unwrap();
    assert_eq!(
        (req.nonce, req.server_nonce),
        (page.nonce, page.server_nonce)
    );
    assert_eq!((&req.p, &req.q), (&page.p, &page.q));
    assert_eq!(req.public_key_fingerprint, page.public_key_fingerprint);
    assert_eq!(req.encrypted_data.len(), 256);

    // Step 6 → 7.2: the server's DH parameters pass every check, and the
    // set_client_DH_params we send is the page's, byte for byte.
    assert!(hs
        .handle_packet(now, &fixed_reply("step 6:"))
        .unwrap()
        .is_none());
    let sent = hs.poll_transmit().unwrap();
    assert_eq!(
        PlainMessage::parse(&sent).unwrap().body,
        &v.bytes("step 7.2", "payload")[20..]
    );

    // Step 9: dh_gen_ok, new_nonce_hash1 checked, the key is the page's.
    let done = hs
        .handle_packet(now, &fixed_reply("step 9"))
        .unwrap()
        .expect("finished");
    assert_eq!(
        done.auth_key.as_bytes().to_vec(),
        v.bytes("step 8", "auth_key")
    );
    assert_eq!(done.time_offset, 0);
    assert_eq!(done.expires_at, None);
    let new_nonce = v.bytes("step 4", "new_nonce");
    let server_nonce = v.bytes("step 2", "server_nonce");
    let salt: Vec<u8> = (0..8).map(|i| new_nonce[i] ^ server_nonce[i]).collect();
    assert_eq!(done.first_salt.to_le_bytes().to_vec(), salt);
    assert_eq!(
        done.auth_key.id().to_le_bytes(),
        [0x65, 0x58, 0x8B, 0x33, 0x50, 0xEF, 0x78, 0x4E]
    );
    assert!(hs.is_done());
    assert!(hs.poll_timeout().is_none());
}

#[test]
fn the_page_replies_as_recorded_are_refused() {
    // The page's resPQ says message_length 168 for an 80-byte body.
    let (now, mut hs) = start();
    let _ = hs.poll_transmit();
    let raw = auth_key_sample().bytes("step 2", "payload");
    assert!(matches!(
        hs.handle_packet(now, &raw),
        Err(HandshakeError::Malformed(_))
    ));
}

#[test]
fn a_tampered_dh_gen_ok_fails_the_new_nonce_hash() {
    let (now, mut hs) = start();
    let _ = hs.poll_transmit();
    hs.handle_packet(now, &fixed_reply("step 2")).unwrap();
    hs.handle_packet(now, &fixed_reply("step 6:")).unwrap();
    let mut reply = fixed_reply("step 9");
    let n = reply.len();
    reply[n - 1] ^= 1;
    assert_eq!(
        hs.handle_packet(now, &reply).unwrap_err(),
        HandshakeError::NewNonceHashMismatch(1)
    );
}

#[test]
fn a_tampered_encrypted_answer_fails_the_answer_hash() {
    let (now, mut hs) = start();
    let _ = hs.poll_transmit();
    hs.handle_packet(now, &fixed_reply("step 2")).unwrap();
    let mut reply = fixed_reply("step 6:");
    // Flip a byte in the last ciphertext block: IGE garbles the padding and
    // the tail of the answer, and the SHA1 no longer matches.
    let n = reply.len();
    reply[n - 20] ^= 0x40;
    assert!(matches!(
        hs.handle_packet(now, &reply),
        Err(HandshakeError::Dh(_) | HandshakeError::Malformed(_))
    ));
}
