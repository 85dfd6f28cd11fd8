//! Whole MTProto 2.0 encrypted messages, in place.
//!
//! Wire layout: `auth_key_id (8, LE) | msg_key (16) | AES-256-IGE(plaintext)`,
//! where the plaintext is `salt (8) | session_id (8) | msg_id (8) |
//! seq_no (4) | msg_len (4) | body (msg_len) | padding (12..=1024)` and its
//! total length is a multiple of 16.

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

use super::auth_key::{derive_aes, msg_key_for, AuthKey, Side};
use super::ige::{ige_decrypt, ige_encrypt};
use super::DecryptError;
use crate::buf::FrameBuf;

/// auth_key_id + msg_key.
const HEADER_LEN: usize = 24;
/// salt + session_id + msg_id + seq_no + msg_len.
const PLAIN_HEADER_LEN: usize = 32;
const MIN_PADDING: usize = 12;
const MAX_PADDING: usize = 1024;
/// Extra random 16-byte blocks of padding are drawn from 0..EXTRA_BLOCKS, so
/// that message lengths do not reveal the body length to the byte.
const EXTRA_BLOCKS: u32 = 8;

/// Encrypts the message in `buf` in place, with random padding.
///
/// On entry the payload of `buf` is the plaintext without padding
/// (salt, session_id, msg_id, seq_no, msg_len, body). On return it is the
/// encrypted message, auth_key_id and msg_key included, ready for the
/// transport framing. `side` is the sender (the party calling this).
///
/// The padding is 12 to 27 bytes, whatever makes the total a multiple of
/// 16, plus 0 to 7 further random 16-byte blocks; it is appended into the
/// buffer's capacity and the header goes into its headroom, so the body
/// never moves.
pub fn encrypt_message_in_place<R: RngCore + CryptoRng + ?Sized>(
    key: &AuthKey,
    side: Side,
    buf: &mut FrameBuf,
    rng: &mut R,
) {
    pad(buf, rng);
    seal(key, side, buf);
}

/// [`encrypt_message_in_place`] for several messages of one key at once:
/// their AES-IGE chains run side by side, several times the speed of one
/// after the other on CPUs with AES-NI. Each buffer is as for
/// [`encrypt_message_in_place`].
pub fn encrypt_messages_in_place<R: RngCore + CryptoRng + ?Sized>(
    key: &AuthKey,
    side: Side,
    bufs: &mut [FrameBuf],
    rng: &mut R,
) {
    for chunk in bufs.chunks_mut(mtsender_ige::LANES) {
        let mut params = [([0u8; 16], [0u8; 32], [0u8; 32]); mtsender_ige::LANES];
        for (buf, p) in chunk.iter_mut().zip(&mut params) {
            pad(buf, rng);
            let msg_key = msg_key_for(key, side, buf.as_slice());
            let (aes_key, aes_iv) = derive_aes(key, side, &msg_key);
            *p = (msg_key, aes_key, aes_iv);
        }
        mtsender_ige::encrypt(chunk.iter_mut().zip(&params).map(|(buf, (_, k, iv))| {
            mtsender_ige::Job::new(buf.as_mut_slice(), k, iv)
                .expect("pad() made the plaintext whole blocks")
        }));
        for (buf, (msg_key, _, _)) in chunk.iter_mut().zip(&params) {
            prepend_header(key, buf, msg_key);
        }
    }
}

/// Appends the random padding: 12 to 27 bytes, whatever makes the total a
/// multiple of 16, plus 0 to 7 further random blocks.
fn pad<R: RngCore + CryptoRng + ?Sized>(buf: &mut FrameBuf, rng: &mut R) {
    let len = buf.len();
    let min = MIN_PADDING + (16 - (len + MIN_PADDING) % 16) % 16;
    let padding = min + 16 * (rng.next_u32() % EXTRA_BLOCKS) as usize;
    debug_assert!((MIN_PADDING..=MAX_PADDING).contains(&padding));
    buf.append_with(|v| v.resize(v.len() + padding, 0));
    rng.fill_bytes(&mut buf.as_mut_slice()[len..]);
}

/// [`encrypt_message_in_place`] with the padding given, for deterministic
/// output (known-answer tests, replays in a simulator).
///
/// # Panics
///
/// If `padding` is not 12..=1024 bytes or does not make the plaintext a
/// multiple of 16 bytes: that is a bug in the caller, not peer input.
pub fn encrypt_message_with_padding(key: &AuthKey, side: Side, buf: &mut FrameBuf, padding: &[u8]) {
    assert!(
        (MIN_PADDING..=MAX_PADDING).contains(&padding.len()),
        "MTProto padding must be 12..=1024 bytes, got {}",
        padding.len()
    );
    assert!(
        (buf.len() + padding.len()).is_multiple_of(16),
        "plaintext plus padding must be a multiple of 16 bytes"
    );
    buf.extend_from_slice(padding);
    seal(key, side, buf);
}

/// Encrypts the padded plaintext in `buf` and prepends the header. The
/// caller guarantees the length is a multiple of 16 (the padding rules are
/// not checked, so tests can build hostile messages with a valid msg_key).
pub(crate) fn seal(key: &AuthKey, side: Side, buf: &mut FrameBuf) {
    let msg_key = msg_key_for(key, side, buf.as_slice());
    let (aes_key, aes_iv) = derive_aes(key, side, &msg_key);
    ige_encrypt(buf.as_mut_slice(), &aes_key, &aes_iv)
        .expect("the callers padded the plaintext to a multiple of 16");
    prepend_header(key, buf, &msg_key);
}

fn prepend_header(key: &AuthKey, buf: &mut FrameBuf, msg_key: &[u8; 16]) {
    let header = buf.prepend(HEADER_LEN);
    header[..8].copy_from_slice(&key.id().to_le_bytes());
    header[8..].copy_from_slice(msg_key);
}

/// The encrypted message inside a packet of the padded intermediate
/// transport, which appends 0..=15 random bytes the envelope does not count:
/// the header (24 bytes) and as many whole AES blocks as fit.
///
/// Only for padded transports: elsewhere a packet that is not whole blocks is
/// refused by [`decrypt_message_in_place`] as it should be.
pub fn strip_transport_padding(packet: &mut [u8]) -> &mut [u8] {
    let keep = match packet.len().checked_sub(24) {
        Some(body) => 24 + body / 16 * 16,
        None => packet.len(),
    };
    &mut packet[..keep]
}

/// Decrypts an encrypted message in place and returns its plaintext without
/// the padding: `salt | session_id | msg_id | seq_no | msg_len | body`, so
/// the body is `plain[32..]`.
///
/// `side` is the party that *sent* the message (a client decrypting a
/// server's reply passes [`Side::Server`]).
///
/// The checks run in this order, each with its own [`DecryptError`]:
/// packet length, auth_key_id, msg_key (constant-time, over the whole
/// decrypted plaintext and padding), then msg_len and the padding length.
/// Callers must treat all of them alike.
///
/// On error the ciphertext part of `packet` may have been overwritten with
/// garbage; a rejected packet is meant to be dropped.
pub fn decrypt_message_in_place<'a>(
    key: &AuthKey,
    side: Side,
    packet: &'a mut [u8],
) -> Result<&'a [u8], DecryptError> {
    let (msg_key, aes_key, aes_iv) = open_header(key, side, packet)?;
    let plain = &mut packet[HEADER_LEN..];
    ige_decrypt(plain, &aes_key, &aes_iv).map_err(|_| DecryptError::BadLength)?;
    check_plaintext(key, side, &msg_key, plain)
}

/// [`decrypt_message_in_place`] for several packets of one key, their
/// AES-IGE chains side by side (several times the speed of one after the
/// other on CPUs with AES-NI). Each packet is taken out of `packets` (an
/// empty slice is left in its place) and `each(i, result)` is called for
/// the `i`-th, in order, with what [`decrypt_message_in_place`] would have
/// returned.
pub fn decrypt_messages_in_place<'a>(
    key: &AuthKey,
    side: Side,
    packets: &mut [&'a mut [u8]],
    mut each: impl FnMut(usize, Result<&'a [u8], DecryptError>),
) {
    for (c, chunk) in packets.chunks_mut(mtsender_ige::LANES).enumerate() {
        let mut opened: [Opened; mtsender_ige::LANES] =
            core::array::from_fn(|_| Err(DecryptError::BadLength));
        for (packet, o) in chunk.iter().zip(&mut opened) {
            *o = open_header(key, side, packet);
        }
        mtsender_ige::decrypt(chunk.iter_mut().zip(&opened).filter_map(|(packet, o)| {
            let (_, aes_key, aes_iv) = o.as_ref().ok()?;
            // open_header checked that the ciphertext is whole blocks.
            mtsender_ige::Job::new(&mut packet[HEADER_LEN..], aes_key, aes_iv).ok()
        }));
        for (i, (packet, o)) in chunk.iter_mut().zip(opened).enumerate() {
            let packet = std::mem::take(packet);
            let result = o.and_then(|(msg_key, _, _)| {
                check_plaintext(key, side, &msg_key, &mut packet[HEADER_LEN..])
            });
            each(c * mtsender_ige::LANES + i, result);
        }
    }
}

/// A packet's msg_key, AES key and AES IV, or why it was refused before
/// decryption.
type Opened = Result<([u8; 16], [u8; 32], [u8; 32]), DecryptError>;

/// The checks before decryption (length, auth_key_id) and the AES key and
/// IV from the packet's msg_key.
fn open_header(key: &AuthKey, side: Side, packet: &[u8]) -> Opened {
    // The smallest valid plaintext is the header plus 12 bytes of padding,
    // rounded up to whole blocks.
    const MIN_PLAIN: usize = (PLAIN_HEADER_LEN + MIN_PADDING).div_ceil(16) * 16;
    if packet.len() < HEADER_LEN + MIN_PLAIN || !(packet.len() - HEADER_LEN).is_multiple_of(16) {
        return Err(DecryptError::BadLength);
    }
    if packet[..8] != key.id().to_le_bytes() {
        return Err(DecryptError::UnknownAuthKeyId);
    }
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&packet[8..HEADER_LEN]);
    let (aes_key, aes_iv) = derive_aes(key, side, &msg_key);
    Ok((msg_key, aes_key, aes_iv))
}

/// The checks after decryption: msg_key (constant-time), msg_len, padding.
fn check_plaintext<'a>(
    key: &AuthKey,
    side: Side,
    msg_key: &[u8; 16],
    plain: &'a mut [u8],
) -> Result<&'a [u8], DecryptError> {
    let expected = msg_key_for(key, side, plain);
    if !bool::from(expected.ct_eq(msg_key)) {
        return Err(DecryptError::MsgKeyMismatch);
    }
    let mut len_bytes = [0u8; 4];
    len_bytes.copy_from_slice(&plain[28..32]);
    let msg_len = i32::from_le_bytes(len_bytes);
    let msg_len = usize::try_from(msg_len).map_err(|_| DecryptError::BadMessageLength)?;
    if msg_len % 4 != 0 || msg_len > plain.len() - PLAIN_HEADER_LEN {
        return Err(DecryptError::BadMessageLength);
    }
    let padding = plain.len() - PLAIN_HEADER_LEN - msg_len;
    if !(MIN_PADDING..=MAX_PADDING).contains(&padding) {
        return Err(DecryptError::BadPadding);
    }
    Ok(&plain[..PLAIN_HEADER_LEN + msg_len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::auth_key::tests::sample_key;
    use crate::crypto::vectors::hex;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn plaintext(body: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        p.extend_from_slice(&0x99AA_BBCC_DDEE_FF00u64.to_le_bytes());
        p.extend_from_slice(&0x65DC_C351_0000_0004u64.to_le_bytes());
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(&(body.len() as u32).to_le_bytes());
        p.extend_from_slice(body);
        p
    }

    fn encrypt(key: &AuthKey, side: Side, plain: &[u8], seed: u64) -> Vec<u8> {
        let mut buf = FrameBuf::from_payload(plain);
        encrypt_message_in_place(key, side, &mut buf, &mut ChaCha20Rng::seed_from_u64(seed));
        buf.into_vec()
    }

    fn key_from(seed: u8) -> AuthKey {
        AuthKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(31) ^ seed))
    }

    #[test]
    fn messages_encrypted_together_open_one_by_one() {
        // More buffers than run side by side, of many lengths.
        let key = key_from(3);
        let plains: Vec<Vec<u8>> = (0..2 * crate::crypto::PARALLEL_MESSAGES + 3)
            .map(|i| plaintext(&vec![i as u8; [0, 4, 12, 100, 4000][i % 5] + 4 * i]))
            .collect();
        for side in [Side::Client, Side::Server] {
            let mut bufs: Vec<FrameBuf> =
                plains.iter().map(|p| FrameBuf::from_payload(p)).collect();
            encrypt_messages_in_place(&key, side, &mut bufs, &mut ChaCha20Rng::seed_from_u64(9));
            for (buf, plain) in bufs.into_iter().zip(&plains) {
                let mut packet = buf.into_vec();
                let padding = packet.len() - HEADER_LEN - plain.len();
                assert!((MIN_PADDING..=MAX_PADDING).contains(&padding));
                let opened = decrypt_message_in_place(&key, side, &mut packet).unwrap();
                assert_eq!(opened, plain.as_slice());
            }
        }
    }

    #[test]
    fn packets_decrypted_together_match_one_by_one() {
        // Good packets between bad ones of every kind, more than run side
        // by side: each result is what decrypt_message_in_place says.
        let key = key_from(5);
        let other = key_from(6);
        let mut packets: Vec<Vec<u8>> = Vec::new();
        for i in 0..3 * crate::crypto::PARALLEL_MESSAGES {
            let plain = plaintext(&vec![i as u8; 4 * (i % 7) + 8]);
            let mut p = encrypt(&key, Side::Server, &plain, i as u64);
            match i % 6 {
                1 => p.truncate(p.len() - 3),                      // bad length
                2 => p = encrypt(&other, Side::Server, &plain, 1), // unknown key id
                3 => *p.last_mut().unwrap() ^= 1,                  // msg_key mismatch
                4 => p = encrypt(&key, Side::Client, &plain, 2),   // wrong direction
                _ => {}
            }
            packets.push(p);
        }
        let mut want: Vec<Result<Vec<u8>, DecryptError>> = Vec::new();
        for p in &packets {
            let mut p = p.clone();
            want.push(decrypt_message_in_place(&key, Side::Server, &mut p).map(<[u8]>::to_vec));
        }
        let mut copies = packets.clone();
        let mut slices: Vec<&mut [u8]> = copies.iter_mut().map(Vec::as_mut_slice).collect();
        let mut got = Vec::new();
        decrypt_messages_in_place(&key, Side::Server, &mut slices, |i, r| {
            got.push((i, r.map(<[u8]>::to_vec)));
        });
        assert!(slices.iter().all(|s| s.is_empty()), "every packet taken");
        assert_eq!(got.len(), want.len());
        for (n, ((i, g), w)) in got.into_iter().zip(want).enumerate() {
            assert_eq!(i, n);
            assert_eq!(g, w, "packet {n}");
        }
    }

    // Computed with an independent implementation (Python hashlib and the
    // AES-ECB primitive of `cryptography`, IGE chained by hand).
    #[test]
    fn known_answer_both_directions() {
        let key = sample_key();
        let plain = plaintext(b"hello world!");
        let padding: Vec<u8> = (0xA0..0xB4).collect();
        for (side, expected) in [(Side::Client, KAT_CLIENT), (Side::Server, KAT_SERVER)] {
            let mut buf = FrameBuf::from_payload(&plain);
            encrypt_message_with_padding(&key, side, &mut buf, &padding);
            assert_eq!(buf.as_slice(), hex(expected).as_slice(), "{side:?}");
            let mut packet = buf.into_vec();
            assert_eq!(
                decrypt_message_in_place(&key, side, &mut packet).unwrap(),
                plain.as_slice()
            );
        }
    }

    const KAT_CLIENT: &str = "65588B3350EF784E0AC3B6988634B62D34561FD021A2183A83DE8E93A5F8970F70C7C833FC900E8EC4CF08F4CA59678C7E18E72B91ED21CBD20AFD0DFD3A7D0BC0289FC109832DCB51E937803DCC7C78BC21166921AB596D";
    const KAT_SERVER: &str = "65588B3350EF784E8E9BB98DE03C865F5B0A9BA06ECE8D022C5F4C567DD4479EDB14D27AA353FD060D812548F11699C995EC23B589904259F30EB952A5D7122F6378B0A072535A23247D1B81632086E14DFF02B2BF3AB3AE";

    #[test]
    fn encryption_works_in_place() {
        let key = key_from(1);
        let plain = plaintext(&[5u8; 400]);
        let mut buf = FrameBuf::with_capacity(64, 1024 + 1024);
        buf.extend_from_slice(&plain);
        let body_ptr = buf.as_slice().as_ptr();
        encrypt_message_in_place(
            &key,
            Side::Client,
            &mut buf,
            &mut ChaCha20Rng::seed_from_u64(1),
        );
        assert_eq!(buf.headroom(), 64 - HEADER_LEN);
        // The ciphertext starts where the plaintext did: nothing was moved.
        assert_eq!(buf.as_slice()[HEADER_LEN..].as_ptr(), body_ptr);
    }

    #[test]
    fn padding_is_in_range_and_varies() {
        let key = key_from(2);
        let mut seen = std::collections::HashSet::new();
        for body_len in (0..64).step_by(4) {
            let plain = plaintext(&vec![1u8; body_len]);
            for seed in 0..20 {
                let packet = encrypt(&key, Side::Client, &plain, seed);
                let padding = packet.len() - HEADER_LEN - plain.len();
                assert!((12..=1024).contains(&padding), "{padding}");
                assert_eq!((packet.len() - HEADER_LEN) % 16, 0);
                seen.insert(padding);
            }
        }
        assert!(seen.len() > 20, "padding lengths should vary: {seen:?}");
    }

    #[test]
    fn wrong_side_or_key_is_rejected() {
        let key = key_from(3);
        let plain = plaintext(b"abcd");
        let packet = encrypt(&key, Side::Client, &plain, 9);
        let mut p = packet.clone();
        assert_eq!(
            decrypt_message_in_place(&key, Side::Server, &mut p),
            Err(DecryptError::MsgKeyMismatch)
        );
        let mut p = packet.clone();
        assert_eq!(
            decrypt_message_in_place(&key_from(4), Side::Client, &mut p),
            Err(DecryptError::UnknownAuthKeyId)
        );
    }

    #[test]
    #[should_panic(expected = "padding must be 12..=1024")]
    fn short_padding_is_api_misuse() {
        let mut buf = FrameBuf::from_payload(&[0u8; 36]);
        encrypt_message_with_padding(&key_from(0), Side::Client, &mut buf, &[0u8; 12 - 8]);
    }

    #[test]
    #[should_panic(expected = "multiple of 16")]
    fn unaligned_padding_is_api_misuse() {
        let mut buf = FrameBuf::from_payload(&[0u8; 36]);
        encrypt_message_with_padding(&key_from(0), Side::Client, &mut buf, &[0u8; 13]);
    }

    /// Encrypts a hand-made plaintext (any layout, length a multiple of 16)
    /// with a correct msg_key, as a hostile peer holding the key could.
    fn seal_raw(key: &AuthKey, side: Side, plain: &[u8]) -> Vec<u8> {
        let mut buf = FrameBuf::from_payload(plain);
        seal(key, side, &mut buf);
        buf.into_vec()
    }

    fn with_len(total: usize, msg_len: i32) -> Vec<u8> {
        let mut p = vec![0x5Au8; total];
        p[28..32].copy_from_slice(&msg_len.to_le_bytes());
        p
    }

    #[test]
    fn hostile_lengths_and_paddings() {
        let key = key_from(5);
        let side = Side::Server;
        let check = |total: usize, msg_len: i32| {
            let mut packet = seal_raw(&key, side, &with_len(total, msg_len));
            decrypt_message_in_place(&key, side, &mut packet).map(<[u8]>::len)
        };
        // Valid extremes: 12 and 1024 bytes of padding.
        assert_eq!(check(64, 20), Ok(52));
        assert_eq!(check(32 + 1024 + 16, 16), Ok(48));
        assert_eq!(check(48, 0), Ok(32));
        // msg_len negative, huge, not a multiple of 4, longer than the plaintext.
        for bad in [
            -1,
            -4,
            i32::MIN,
            i32::MAX,
            0x7FFF_FFFC,
            2,
            17,
            33,
            36,
            64,
            68,
        ] {
            assert_eq!(check(64, bad), Err(DecryptError::BadMessageLength), "{bad}");
        }
        // Padding shorter than 12 or longer than 1024.
        for msg_len in [24, 28, 32] {
            assert_eq!(
                check(64, msg_len),
                Err(DecryptError::BadPadding),
                "{msg_len}"
            );
        }
        assert_eq!(check(32 + 1040, 0), Err(DecryptError::BadPadding));
        assert_eq!(check(32 + 1040, 12), Err(DecryptError::BadPadding));
        assert_eq!(check(32 + 1040, 16), Ok(48));
    }

    #[test]
    fn hostile_packet_lengths() {
        let key = key_from(6);
        for len in 0..200usize {
            let mut packet = vec![0x33u8; len];
            if len >= 8 {
                packet[..8].copy_from_slice(&key.id().to_le_bytes());
            }
            let r = decrypt_message_in_place(&key, Side::Server, &mut packet);
            if len < 72 || (len - 24) % 16 != 0 {
                assert_eq!(r, Err(DecryptError::BadLength), "{len}");
            } else {
                assert_eq!(r, Err(DecryptError::MsgKeyMismatch), "{len}");
            }
        }
    }

    proptest! {
        #[test]
        fn round_trip_both_directions(
            key in any::<[u8; 32]>(),
            words in prop::collection::vec(any::<u32>(), 0..300),
            seed in any::<u64>(),
            server in any::<bool>(),
        ) {
            let key = AuthKey::from_bytes(core::array::from_fn(|i| key[i % 32] ^ (i / 32) as u8));
            let side = if server { Side::Server } else { Side::Client };
            let body: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let plain = plaintext(&body);
            let mut packet = encrypt(&key, side, &plain, seed);
            let out = decrypt_message_in_place(&key, side, &mut packet).unwrap();
            prop_assert_eq!(out, plain.as_slice());
            prop_assert_eq!(&out[32..], body.as_slice());
        }

        #[test]
        fn any_flipped_byte_is_an_error(
            body_words in 0usize..20,
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            seed in any::<u64>(),
        ) {
            let key = key_from(7);
            let plain = plaintext(&vec![0xC3; body_words * 4]);
            let mut packet = encrypt(&key, Side::Client, &plain, seed);
            let i = index.index(packet.len());
            packet[i] ^= flip;
            let r = decrypt_message_in_place(&key, Side::Client, &mut packet);
            prop_assert!(r.is_err());
            if i < 8 {
                prop_assert_eq!(r, Err(DecryptError::UnknownAuthKeyId));
            } else {
                prop_assert_eq!(r, Err(DecryptError::MsgKeyMismatch));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            mut bytes in prop::collection::vec(any::<u8>(), 0..600),
            keep_id in any::<bool>(),
        ) {
            let key = key_from(8);
            if keep_id && bytes.len() >= 8 {
                bytes[..8].copy_from_slice(&key.id().to_le_bytes());
            }
            let _ = decrypt_message_in_place(&key, Side::Server, &mut bytes);
        }
    }
}

#[cfg(test)]
mod strip_tests {
    use super::strip_transport_padding;

    #[test]
    fn strips_to_whole_blocks() {
        for (len, keep) in [
            (0, 0),
            (23, 23),
            (24, 24),
            (39, 24),
            (40, 40),
            (24 + 64 + 15, 88),
        ] {
            assert_eq!(
                strip_transport_padding(&mut vec![0; len]).len(),
                keep,
                "len {len}"
            );
        }
    }
}
