//! What a process restart needs to resume: the home DC and, per DC, the
//! auth key, the last salt and the server clock offset.
//!
//! # Format (version 1)
//!
//! All integers little-endian:
//!
//! ```text
//! "MTSS"            magic, 4 bytes
//! version: u8       1
//! home_dc: i32
//! count: u16        number of DC entries (at most 256)
//! count × {
//!     dc: i32
//!     auth_key: [u8; 256]
//!     salt: i64
//!     time_offset: i64
//! }
//! crc32: u32        CRC32 (IEEE) of every byte before it
//! ```
//!
//! A blob that is short, long, corrupted or of another version is refused
//! with a [`PersistError`]; nothing in it is trusted before the checksum
//! matches.

use crate::crypto::AuthKey;

const MAGIC: &[u8; 4] = b"MTSS";
const VERSION: u8 = 1;
const ENTRY_LEN: usize = 4 + 256 + 8 + 8;
const MAX_DCS: usize = 256;

/// One DC's saved state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcAuth {
    /// DC id.
    pub dc: i32,
    /// Its permanent auth key.
    pub auth_key: AuthKey,
    /// The last salt used.
    pub salt: i64,
    /// Server time minus local time, seconds.
    pub time_offset: i64,
}

/// Everything [`Sender::export_session`](super::Sender::export_session)
/// saves.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SessionData {
    /// The home DC (0 when unknown).
    pub home_dc: i32,
    /// Saved DCs.
    pub dcs: Vec<DcAuth>,
}

/// Why a saved session could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Not a session blob.
    #[error("not an mtsender session (bad magic)")]
    BadMagic,
    /// Written by another format version.
    #[error("unsupported session format version {0}")]
    UnsupportedVersion(u8),
    /// Shorter or longer than its header says.
    #[error("session blob has the wrong length")]
    BadLength,
    /// The checksum does not match: the blob is corrupted.
    #[error("session blob is corrupted (checksum mismatch)")]
    BadChecksum,
    /// More DCs than the format allows.
    #[error("too many DC entries")]
    TooManyDcs,
}

impl SessionData {
    /// Serializes in the format above.
    pub fn to_bytes(&self) -> Vec<u8> {
        let dcs = &self.dcs[..self.dcs.len().min(MAX_DCS)];
        let mut out = Vec::with_capacity(15 + dcs.len() * ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.home_dc.to_le_bytes());
        out.extend_from_slice(&(dcs.len() as u16).to_le_bytes());
        for d in dcs {
            out.extend_from_slice(&d.dc.to_le_bytes());
            out.extend_from_slice(d.auth_key.as_bytes());
            out.extend_from_slice(&d.salt.to_le_bytes());
            out.extend_from_slice(&d.time_offset.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses the format above.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistError> {
        if bytes.len() < 4 || &bytes[..4] != MAGIC {
            return Err(PersistError::BadMagic);
        }
        let version = *bytes.get(4).ok_or(PersistError::BadLength)?;
        if version != VERSION {
            return Err(PersistError::UnsupportedVersion(version));
        }
        if bytes.len() < 15 {
            return Err(PersistError::BadLength);
        }
        let count = u16::from_le_bytes([bytes[9], bytes[10]]) as usize;
        if count > MAX_DCS {
            return Err(PersistError::TooManyDcs);
        }
        if bytes.len() != 11 + count * ENTRY_LEN + 4 {
            return Err(PersistError::BadLength);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body).to_le_bytes() != crc {
            return Err(PersistError::BadChecksum);
        }
        let home_dc = i32::from_le_bytes(le(&body[5..9]));
        let dcs = body[11..]
            .chunks_exact(ENTRY_LEN)
            .map(|e| {
                let mut key = [0u8; 256];
                key.copy_from_slice(&e[4..260]);
                DcAuth {
                    dc: i32::from_le_bytes(le(&e[..4])),
                    auth_key: AuthKey::from_bytes(key),
                    salt: i64::from_le_bytes(le(&e[260..268])),
                    time_offset: i64::from_le_bytes(le(&e[268..276])),
                }
            })
            .collect();
        Ok(Self { home_dc, dcs })
    }
}

/// A fixed-size array from a slice whose length the caller has checked.
fn le<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SessionData {
        SessionData {
            home_dc: 4,
            dcs: vec![
                DcAuth {
                    dc: 4,
                    auth_key: AuthKey::from_bytes([7; 256]),
                    salt: -5,
                    time_offset: 12,
                },
                DcAuth {
                    dc: 2,
                    auth_key: AuthKey::from_bytes([9; 256]),
                    salt: 1,
                    time_offset: -3,
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let s = sample();
        assert_eq!(SessionData::from_bytes(&s.to_bytes()), Ok(s));
        assert_eq!(
            SessionData::from_bytes(&SessionData::default().to_bytes()),
            Ok(SessionData::default())
        );
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_refused() {
        let bytes = sample().to_bytes();
        for cut in 0..bytes.len() {
            assert!(SessionData::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(SessionData::from_bytes(&b).is_err(), "flip at {i}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(SessionData::from_bytes(&long), Err(PersistError::BadLength));
        let mut v2 = bytes;
        v2[4] = 2;
        assert_eq!(
            SessionData::from_bytes(&v2),
            Err(PersistError::UnsupportedVersion(2))
        );
        assert_eq!(
            SessionData::from_bytes(b"nope"),
            Err(PersistError::BadMagic)
        );
    }
}
