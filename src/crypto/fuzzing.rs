//! Fuzzing only (built under `--cfg fuzzing`, which cargo-fuzz sets): seals
//! arbitrary plaintext with the correct msg_key, so that a fuzz target's
//! bytes reach the checks that follow the msg_key check instead of all
//! stopping at it. Normal builds do not contain this module.

use super::auth_key::{AuthKey, Side};
use crate::buf::FrameBuf;

/// Encrypts `plaintext` as a message sent by `side` under `key`, with no
/// check of its header, length field or padding: the result is
/// `auth_key_id | msg_key | AES-256-IGE(plaintext)`, which
/// [`decrypt_message_in_place`](super::decrypt_message_in_place) accepts up
/// to its msg_key check.
///
/// # Panics
///
/// If `plaintext` is not a multiple of 16 bytes long.
pub fn seal(key: &AuthKey, side: Side, plaintext: &[u8]) -> Vec<u8> {
    assert!(
        plaintext.len() % 16 == 0,
        "sealed plaintext must be whole AES blocks"
    );
    let mut buf = FrameBuf::from_payload(plaintext);
    super::message::seal(key, side, &mut buf);
    buf.into_vec()
}
