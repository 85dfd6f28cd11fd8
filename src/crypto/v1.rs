//! MTProto 1.0 message encryption, still used for one thing: the binding
//! message inside `auth.bindTempAuthKey`, encrypted with the permanent key.
//!
//! msg_key is the low 128 bits of SHA1 of the plaintext *without* padding,
//! and the AES key and iv come from four SHA1s (x = 0, client to server).

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::{ige_decrypt, ige_encrypt, AuthKey, DecryptError};

/// The MTProto 1.0 aes_key and aes_iv for `msg_key` (x = 0).
fn derive_v1(key: &AuthKey, msg_key: &[u8; 16]) -> ([u8; 32], [u8; 32]) {
    let k = key.as_bytes();
    let sha = |parts: &[&[u8]]| {
        let mut h = Sha1::new();
        for p in parts {
            h.update(p);
        }
        h.finalize()
    };
    let a = sha(&[msg_key, &k[0..32]]);
    let b = sha(&[&k[32..48], msg_key, &k[48..64]]);
    let c = sha(&[&k[64..96], msg_key]);
    let d = sha(&[msg_key, &k[96..128]]);
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..20].copy_from_slice(&b[8..20]);
    aes_key[20..].copy_from_slice(&c[4..16]);
    let mut aes_iv = [0u8; 32];
    aes_iv[..12].copy_from_slice(&a[8..20]);
    aes_iv[12..20].copy_from_slice(&b[..8]);
    aes_iv[20..24].copy_from_slice(&c[16..20]);
    aes_iv[24..].copy_from_slice(&d[..8]);
    (aes_key, aes_iv)
}

/// Encrypts `plaintext` (no padding yet) MTProto 1.0 style: returns
/// `auth_key_id | msg_key | AES-IGE(plaintext | padding)`. `padding` must
/// bring the length to a multiple of 16 (0..=15 bytes).
///
/// # Panics
/// If the padding does not align the plaintext (a caller bug).
pub fn encrypt_v1(key: &AuthKey, plaintext: &[u8], padding: &[u8]) -> Vec<u8> {
    assert_eq!(
        (plaintext.len() + padding.len()) % 16,
        0,
        "MTProto 1.0 padding must align to 16"
    );
    let hash = Sha1::digest(plaintext);
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&hash[4..20]);
    let (aes_key, aes_iv) = derive_v1(key, &msg_key);
    let mut data = Vec::with_capacity(24 + plaintext.len() + padding.len());
    data.extend_from_slice(&key.id().to_le_bytes());
    data.extend_from_slice(&msg_key);
    data.extend_from_slice(plaintext);
    data.extend_from_slice(padding);
    ige_encrypt(&mut data[24..], &aes_key, &aes_iv).expect("aligned above");
    data
}

/// Decrypts an MTProto 1.0 message whose plaintext is
/// `random(16) | msg_id(8) | seqno(4) | msg_len(4) | body | padding`, checks
/// the key id, the lengths and msg_key (over the plaintext up to the end of
/// the body), and returns the plaintext without padding.
pub fn decrypt_v1(key: &AuthKey, packet: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if packet.len() < 24 + 32 || !(packet.len() - 24).is_multiple_of(16) {
        return Err(DecryptError::BadLength);
    }
    if packet[..8] != key.id().to_le_bytes() {
        return Err(DecryptError::UnknownAuthKeyId);
    }
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&packet[8..24]);
    let (aes_key, aes_iv) = derive_v1(key, &msg_key);
    let mut plain = packet[24..].to_vec();
    ige_decrypt(&mut plain, &aes_key, &aes_iv).map_err(|_| DecryptError::BadLength)?;
    let len = i32::from_le_bytes([plain[28], plain[29], plain[30], plain[31]]);
    let end = usize::try_from(len)
        .ok()
        .filter(|l| l % 4 == 0)
        .and_then(|l| l.checked_add(32))
        .filter(|&e| e <= plain.len() && plain.len() - e < 16)
        .ok_or(DecryptError::BadMessageLength)?;
    plain.truncate(end);
    let hash = Sha1::digest(&plain);
    if !bool::from(hash[4..20].ct_eq(&msg_key)) {
        return Err(DecryptError::MsgKeyMismatch);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plaintext(body: &[u8]) -> Vec<u8> {
        let mut p = vec![7u8; 16];
        p.extend_from_slice(&0x1234_5678_i64.to_le_bytes());
        p.extend_from_slice(&0i32.to_le_bytes());
        p.extend_from_slice(&(body.len() as i32).to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn round_trip_and_tampering() {
        let key = AuthKey::from_bytes([3; 256]);
        let plain = plaintext(&[9; 40]);
        let pad = vec![0xee; (16 - plain.len() % 16) % 16];
        let packet = encrypt_v1(&key, &plain, &pad);
        assert_eq!(&packet[..8], &key.id().to_le_bytes());
        assert_eq!(decrypt_v1(&key, &packet).unwrap(), plain);
        for at in [8, 30, packet.len() - 1] {
            let mut bad = packet.clone();
            bad[at] ^= 1;
            assert!(decrypt_v1(&key, &bad).is_err(), "at {at}");
        }
        assert_eq!(
            decrypt_v1(&AuthKey::from_bytes([4; 256]), &packet),
            Err(DecryptError::UnknownAuthKeyId)
        );
        assert_eq!(
            decrypt_v1(&key, &packet[..packet.len() - 1]),
            Err(DecryptError::BadLength)
        );
    }

    #[test]
    fn kdf_is_the_v1_one() {
        // The v1 and v2 derivations differ; a v2 decryption of a v1 packet fails.
        let key = AuthKey::from_bytes([5; 256]);
        let plain = plaintext(&[1; 16]);
        let packet = encrypt_v1(&key, &plain, &[]);
        let mut p = packet.clone();
        assert!(
            super::super::decrypt_message_in_place(&key, super::super::Side::Client, &mut p)
                .is_err()
        );
        let (k, iv) = derive_v1(&key, &[0; 16]);
        assert_ne!(k, iv);
    }
}
