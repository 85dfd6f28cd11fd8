//! The authorization key and the MTProto 2.0 key derivation
//! (msg_key, aes_key, aes_iv).

use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A 2048-bit MTProto authorization key, with its id and aux hash cached.
///
/// `Debug` prints only the id: the key itself never reaches a log.
#[derive(Clone)]
pub struct AuthKey {
    key: [u8; 256],
    id: i64,
    aux_hash: i64,
}

impl AuthKey {
    /// Wraps the 256 key bytes (as produced by the DH exchange, big-endian).
    pub fn from_bytes(key: [u8; 256]) -> Self {
        let hash = Sha1::digest(key);
        let aux_hash = le_i64(&hash[0..8]);
        let id = le_i64(&hash[12..20]);
        Self { key, id, aux_hash }
    }

    /// The key bytes (to persist the key).
    pub fn as_bytes(&self) -> &[u8; 256] {
        &self.key
    }

    /// auth_key_id: the 64 lower-order bits of SHA1(key), i.e. SHA1(key)[12..20]
    /// read as a little-endian i64. Sent in front of every encrypted message.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// auth_key_aux_hash: SHA1(key)[0..8] read as a little-endian i64. Used
    /// in new_nonce_hash and as retry_id after dh_gen_retry.
    pub fn aux_hash(&self) -> i64 {
        self.aux_hash
    }
}

impl PartialEq for AuthKey {
    /// Constant-time comparison of the key bytes.
    fn eq(&self, other: &Self) -> bool {
        self.key.ct_eq(&other.key).into()
    }
}

impl Eq for AuthKey {}

impl std::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthKey {{ id: {:#018x}, .. }}", self.id as u64)
    }
}

/// Which party sent a message: it selects the slice of the auth key that the
/// key derivation uses (x = 0 for client-to-server, x = 8 for server-to-client).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Messages sent by the client (x = 0).
    Client,
    /// Messages sent by the server (x = 8).
    Server,
}

impl Side {
    fn x(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 8,
        }
    }
}

/// MTProto 2.0 msg_key of `plaintext` (the whole plaintext, padding included)
/// sent by `side`: `SHA256(auth_key[88+x..120+x] ++ plaintext)[8..24]`.
pub fn msg_key_for(key: &AuthKey, side: Side, plaintext: &[u8]) -> [u8; 16] {
    let x = side.x();
    let hash = Sha256::new()
        .chain_update(&key.key[88 + x..120 + x])
        .chain_update(plaintext)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash[8..24]);
    out
}

/// MTProto 2.0 aes_key and aes_iv for a message with `msg_key` sent by `side`.
///
/// ```text
/// a = SHA256(msg_key ++ auth_key[x..x+36])
/// b = SHA256(auth_key[40+x..76+x] ++ msg_key)
/// aes_key = a[0..8] ++ b[8..24] ++ a[24..32]
/// aes_iv  = b[0..8] ++ a[8..24] ++ b[24..32]
/// ```
pub fn derive_aes(key: &AuthKey, side: Side, msg_key: &[u8; 16]) -> ([u8; 32], [u8; 32]) {
    let x = side.x();
    let a = Sha256::new()
        .chain_update(msg_key)
        .chain_update(&key.key[x..x + 36])
        .finalize();
    let b = Sha256::new()
        .chain_update(&key.key[40 + x..76 + x])
        .chain_update(msg_key)
        .finalize();
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..24].copy_from_slice(&b[8..24]);
    aes_key[24..].copy_from_slice(&a[24..]);
    let mut aes_iv = [0u8; 32];
    aes_iv[..8].copy_from_slice(&b[..8]);
    aes_iv[8..24].copy_from_slice(&a[8..24]);
    aes_iv[24..].copy_from_slice(&b[24..]);
    (aes_key, aes_iv)
}

fn le_i64(bytes: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes);
    i64::from_le_bytes(a)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::vectors::{self, hex};

    /// The auth key of Telegram's published example (step 8).
    pub(crate) fn sample_key() -> AuthKey {
        let bytes = vectors::auth_key_sample()
            .section("step 8")
            .bytes("auth_key");
        AuthKey::from_bytes(bytes.try_into().unwrap())
    }

    #[test]
    fn id_and_aux_hash_of_the_sample_key() {
        let key = sample_key();
        // Stated as the little-endian bytes of the values.
        assert_eq!(
            key.aux_hash().to_le_bytes().to_vec(),
            hex("20B5C361A4F5A3D0")
        );
        assert_eq!(key.id().to_le_bytes().to_vec(), hex("65588B3350EF784E"));
        let sha = Sha1::digest(key.as_bytes());
        assert_eq!(&key.id().to_le_bytes(), &sha[12..20]);
        assert_eq!(&key.aux_hash().to_le_bytes(), &sha[..8]);
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let key = AuthKey::from_bytes([0xAB; 256]);
        let s = format!("{key:?}");
        assert!(s.starts_with("AuthKey { id: 0x"), "{s}");
        assert!(!s.to_lowercase().contains("abab"), "{s}");
        assert!(!s.contains("171, 171"), "{s}");
    }

    #[test]
    fn equality() {
        let a = sample_key();
        assert_eq!(a, a.clone());
        assert_ne!(a, AuthKey::from_bytes([0; 256]));
    }

    // Values below were computed with an independent implementation (Python
    // hashlib) from the sample key and the plaintext 00 01 02 .. 3f.
    #[test]
    fn msg_key_and_aes_derivation_known_answers() {
        let key = sample_key();
        let plain: Vec<u8> = (0..64u8).collect();
        let client_mk = msg_key_for(&key, Side::Client, &plain);
        let server_mk = msg_key_for(&key, Side::Server, &plain);
        assert_eq!(client_mk.to_vec(), hex(CLIENT_MSG_KEY));
        assert_eq!(server_mk.to_vec(), hex(SERVER_MSG_KEY));
        let (k, iv) = derive_aes(&key, Side::Client, &client_mk);
        assert_eq!(k.to_vec(), hex(CLIENT_AES_KEY));
        assert_eq!(iv.to_vec(), hex(CLIENT_AES_IV));
        let (k, iv) = derive_aes(&key, Side::Server, &server_mk);
        assert_eq!(k.to_vec(), hex(SERVER_AES_KEY));
        assert_eq!(iv.to_vec(), hex(SERVER_AES_IV));
    }

    const CLIENT_MSG_KEY: &str = "D5E0C4C4AF94F4EACEEE6EE7540A85E3";
    const SERVER_MSG_KEY: &str = "513945242F847F66A043A95C6FF81A81";
    const CLIENT_AES_KEY: &str = "6849756D8A863D4C06E59296ACD889D8B769BD4E2A430135A379EE121C3F3C85";
    const CLIENT_AES_IV: &str = "15611F8BB18808A7B22FC88CBFE5D8291799FA1F111F271CEBF3C26C932F0424";
    const SERVER_AES_KEY: &str = "ACA98E8EF7062D625E9475CE32040A3B7BD007EDEF9212D6D03B76474E1ECD6E";
    const SERVER_AES_IV: &str = "4355F0BFE2A696D56F714EE46EDD1EB6FAF0A64DF051F9EC0970BC6B19AA6C5B";
}
