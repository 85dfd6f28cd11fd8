//! MTProto 2.0 cryptography on the RustCrypto crates.
//!
//! The pieces, in the order a connection meets them:
//!
//! - **Auth key creation** (the DH handshake):
//!   [`factorize`] splits the server's `pq` (proof of work);
//!   [`RsaPublicKey`] holds a server key and its [fingerprint](RsaPublicKey::fingerprint),
//!   [`rsa_pad_encrypt`] encrypts `p_q_inner_data` with RSA_PAD (and
//!   [`rsa_legacy_encrypt`] with the older format);
//!   [`tmp_aes_key_iv`], [`decrypt_dh_answer`] / [`check_dh_answer_hash`] open
//!   `server_DH_inner_data`; [`check_dh_params`] and [`check_g_range`] vet the
//!   server's prime, generator and `g_a`; [`modpow`] computes `g_b` and the
//!   key; [`encrypt_dh_answer`] seals `client_DH_inner_data`;
//!   [`new_nonce_hash`] and [`first_salt`] finish the exchange.
//!   The server side of the same steps ([`RsaPrivateKey`],
//!   [`RsaPrivateKey::rsa_pad_decrypt`], [`RsaPrivateKey::legacy_decrypt`])
//!   is here too, for test DCs.
//! - **Encrypted messages**: [`AuthKey`] with its id and aux hash;
//!   [`msg_key_for`] and [`derive_aes`] are the MTProto 2.0 key derivation;
//!   [`encrypt_message_in_place`] (or [`encrypt_messages_in_place`], several
//!   side by side) and [`decrypt_message_in_place`] handle a
//!   whole message (padding, msg_key, AES-256-IGE, header) without copying
//!   the body.
//! - **Ciphers**: [`ige_encrypt`] / [`ige_decrypt`] (AES-256-IGE, in place)
//!   and [`AesCtr`] (AES-256-CTR, for the obfuscated2 transport).
//!
//! Secret-dependent big-number work (RSA private exponent, DH exponent) goes
//! through `crypto-bigint`'s constant-time Montgomery exponentiation; MAC-like
//! comparisons (msg_key, hashes) use `subtle`.

mod auth_key;
mod ctr;
mod dh;
#[cfg(fuzzing)]
pub mod fuzzing;
mod ige;
mod message;
mod num;
mod pq;
mod rsa;
mod v1;

#[cfg(test)]
mod vectors;

pub use auth_key::{derive_aes, msg_key_for, AuthKey, Side};
pub use ctr::AesCtr;
pub use dh::{
    check_dh_answer_hash, check_dh_params, check_g_range, decrypt_dh_answer, encrypt_dh_answer,
    encrypt_dh_answer_with_padding, first_salt, modpow, new_nonce_hash, tmp_aes_key_iv,
    TELEGRAM_DH_PRIME,
};
pub use ige::{ige_decrypt, ige_encrypt};

/// How many messages [`encrypt_messages_in_place`] runs side by side: a
/// flush that fills this many buffers gets the most from it.
pub const PARALLEL_MESSAGES: usize = mtsender_ige::LANES;
pub use message::{
    decrypt_message_in_place, decrypt_messages_in_place, encrypt_message_in_place,
    encrypt_message_with_padding, encrypt_messages_in_place, strip_transport_padding,
};
pub use pq::factorize;
pub use rsa::{
    legacy_check, rsa_legacy_encrypt, rsa_legacy_encrypt_with_random, rsa_pad_encrypt,
    rsa_pad_encrypt_with_random, RsaPrivateKey, RsaPublicKey, TELEGRAM_PRODUCTION_KEY_PEM,
    TELEGRAM_TEST_KEY_PEM,
};
pub use v1::{decrypt_v1, encrypt_v1};

/// Errors of the block cipher and RSA functions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer length is not a multiple of the 16-byte AES block.
    #[error("buffer length is not a multiple of 16")]
    NotBlockAligned,
    /// The RSA modulus is not exactly 2048 bits.
    #[error("only 2048-bit RSA moduli are supported")]
    UnsupportedKeySize,
    /// The RSA key is structurally invalid (even modulus, bad exponent,
    /// inconsistent private key).
    #[error("invalid RSA key: {0}")]
    InvalidKey(&'static str),
    /// The PEM armour or its base64 body is malformed.
    #[error("malformed PEM: {0}")]
    Pem(&'static str),
    /// The DER inside the PEM is malformed or not the expected structure.
    #[error("malformed DER: {0}")]
    Der(&'static str),
    /// The data is longer than the RSA padding scheme can carry.
    #[error("data too long for the RSA padding")]
    DataTooLong,
    /// The RSA ciphertext is longer than 256 bytes or not below the modulus.
    #[error("RSA ciphertext out of range")]
    BadCiphertext,
    /// The decrypted RSA block does not have the expected layout.
    #[error("malformed RSA plaintext")]
    BadPlaintext,
    /// A hash inside the decrypted RSA block does not match.
    #[error("hash mismatch in the RSA plaintext")]
    HashMismatch,
}

/// Why an incoming encrypted message was rejected.
///
/// Per Telegram's security guidelines a receiver must treat every one of
/// these alike (drop the packet, and on repeated failures the connection);
/// the variants exist for logs and tests only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The packet is too short, or its ciphertext is not whole AES blocks.
    #[error("bad encrypted packet length")]
    BadLength,
    /// The packet's auth_key_id is not the id of the key given.
    #[error("unknown auth_key_id")]
    UnknownAuthKeyId,
    /// The msg_key recomputed over the decrypted plaintext does not match.
    #[error("msg_key mismatch")]
    MsgKeyMismatch,
    /// msg_len is negative, not a multiple of 4, or longer than the plaintext.
    #[error("bad message length")]
    BadMessageLength,
    /// The padding is not 12..=1024 bytes.
    #[error("bad padding length")]
    BadPadding,
}

/// Errors of the Diffie-Hellman checks and of the DH answer encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DhError {
    /// dh_prime is not exactly 2048 bits (256 bytes, top bit set).
    #[error("dh_prime is not a 2048-bit number")]
    BadPrimeSize,
    /// g is not one of 2, 3, 4, 5, 6, 7.
    #[error("unsupported generator g")]
    UnsupportedG,
    /// dh_prime does not satisfy the residue condition for g, so g does not
    /// generate the subgroup of order (p-1)/2.
    #[error("g does not generate the prime-order subgroup of dh_prime")]
    BadGResidue,
    /// dh_prime is not a safe prime.
    #[error("dh_prime is not a safe prime")]
    NotSafePrime,
    /// g, g_a or g_b is outside 2^1984 ..= dh_prime - 2^1984.
    #[error("DH value out of the safe range")]
    OutOfRange,
    /// The encrypted or decrypted DH answer has an impossible length.
    #[error("bad DH answer length")]
    BadAnswerLength,
    /// The SHA1 in front of the decrypted DH answer does not match.
    #[error("DH answer hash mismatch")]
    AnswerHashMismatch,
}
