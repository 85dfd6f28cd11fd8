//! Entry points of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` and
//! by `tests/fuzz_corpus.rs` (which replays the committed corpora and
//! regression inputs on stable).
//!
//! Each `pub fn name(data: &[u8])` must return normally on every input:
//! a panic is a finding (a crash, or a broken invariant that the function
//! asserts), and so is a hang or an allocation out of proportion to the
//! input. The input also decides how it is fed (chunk sizes, options, time
//! steps), so the same bytes always replay the same run.
#![allow(dead_code)]

mod cursor;
mod encrypted;
mod fakedc;
mod handshake;
mod peer;
pub mod seeds;
mod sender;
mod tl;
mod transport;

pub use encrypted::encrypted;
pub use fakedc::fakedc;
pub use handshake::handshake;
pub use sender::sender;
pub use tl::{tl_messages, tl_objects};
pub use transport::{transport_client, transport_server};

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A target's entry point.
pub type Entry = fn(&[u8]);

/// Every target, by name, for the corpus replay.
pub const TARGETS: &[(&str, Entry)] = &[
    ("transport_client", transport_client),
    ("transport_server", transport_server),
    ("tl_objects", tl_objects),
    ("tl_messages", tl_messages),
    ("encrypted", encrypted),
    ("handshake", handshake),
    ("sender", sender),
    ("fakedc", fakedc),
];

/// Wall-clock time at [`t0`], as the targets' clocks see it.
pub const UNIX: Duration = Duration::from_secs(1_700_000_000);

/// The anchor of every target's time line. Only differences from it
/// matter, so runs replay exactly whatever instant it is.
pub fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    *T0.get_or_init(Instant::now)
}

/// The test server's public key.
pub fn test_public_key() -> mtsender::crypto::RsaPublicKey {
    static KEY: OnceLock<mtsender::crypto::RsaPublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        mtsender::crypto::RsaPublicKey::from_pem(include_str!("../vectors/test_rsa_2048.pub.pem"))
            .expect("the bundled test key is valid")
    })
    .clone()
}

/// The test server's private key.
pub fn test_private_key() -> &'static mtsender::crypto::RsaPrivateKey {
    static KEY: OnceLock<mtsender::crypto::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        mtsender::crypto::RsaPrivateKey::from_pem(include_str!("../vectors/test_rsa_2048.pem"))
            .expect("the bundled test key is valid")
    })
}

/// `plain` (whole AES blocks) encrypted by `side` under `key` with the
/// correct msg_key and no other check: what lets a target's bytes past
/// the msg_key check.
///
/// Fuzz builds use the crate's own `crypto::fuzzing::seal`; the stable
/// replay, which cannot see it, composes the same steps from the public
/// key derivation (and the fuzz build checks once that both agree).
pub fn seal(
    key: &mtsender::crypto::AuthKey,
    side: mtsender::crypto::Side,
    plain: &[u8],
) -> Vec<u8> {
    #[cfg(fuzzing)]
    {
        static CHECKED: std::sync::Once = std::sync::Once::new();
        let sealed = mtsender::crypto::fuzzing::seal(key, side, plain);
        CHECKED.call_once(|| assert_eq!(sealed, seal_public(key, side, plain)));
        sealed
    }
    #[cfg(not(fuzzing))]
    seal_public(key, side, plain)
}

fn seal_public(
    key: &mtsender::crypto::AuthKey,
    side: mtsender::crypto::Side,
    plain: &[u8],
) -> Vec<u8> {
    use mtsender::crypto::{derive_aes, ige_encrypt, msg_key_for};
    let msg_key = msg_key_for(key, side, plain);
    let (aes_key, aes_iv) = derive_aes(key, side, &msg_key);
    let mut out = Vec::with_capacity(24 + plain.len());
    out.extend_from_slice(&key.id().to_le_bytes());
    out.extend_from_slice(&msg_key);
    out.extend_from_slice(plain);
    ige_encrypt(&mut out[24..], &aes_key, &aes_iv).expect("whole blocks");
    out
}

/// A fixed auth key for the targets that start with one.
pub fn fixed_key(tweak: u8) -> mtsender::crypto::AuthKey {
    mtsender::crypto::AuthKey::from_bytes(std::array::from_fn(|i| {
        (i as u8).wrapping_mul(167).wrapping_add(tweak) ^ 0x5c
    }))
}

/// A request body from input bytes. A caller's query is serialized TL:
/// whole 4-byte words, and a method, never an MTProto container (which
/// the server would read as one); the input is cut and, if need be,
/// changed to fit.
pub fn query(bytes: &[u8]) -> Vec<u8> {
    let mut body = bytes[..bytes.len() / 4 * 4].to_vec();
    if body.get(..4) == Some(&mtsender::tl::message::MSG_CONTAINER_ID.to_le_bytes()) {
        body[0] ^= 1;
    }
    body
}
