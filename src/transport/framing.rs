//! Envelope headers: written in front of a payload on the way out, parsed
//! from the front of the stream on the way in.

use rand_core::{CryptoRng, RngCore};

use super::{Error, TransportKind};
use crate::buf::FrameBuf;

/// Most significant bit of a 4-byte length: quick ack.
const QUICK_ACK_BIT: u32 = 0x8000_0000;
/// Most significant bit of the abridged length byte: quick ack.
const ABRIDGED_QUICK_ACK_BIT: u8 = 0x80;
/// Abridged marker for the 3-byte length form.
const ABRIDGED_LONG: u8 = 0x7f;
/// Length, seq and CRC of the full transport.
const FULL_OVERHEAD: usize = 12;

/// Who wrote the stream being parsed. The high bit of a length is a
/// quick-ack request from a client and a quick-ack token from a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    FromClient,
    FromServer,
}

/// What a complete header announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum What {
    /// A frame with a body; `seq` is the full transport's sequence number.
    Packet { quick_ack: bool, seq: Option<u32> },
    /// A bare quick-ack token (server to client).
    QuickAck(u32),
}

/// A validated header: the frame spans `hdr + body + trailer` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub hdr: usize,
    pub body: usize,
    pub trailer: usize,
    pub what: What,
}

impl Header {
    pub fn total(&self) -> usize {
        self.hdr + self.body + self.trailer
    }
}

/// Outcome of looking at the front of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The header is incomplete: this many bytes from the frame start are needed.
    Need(usize),
    Header(Header),
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses the header at the front of `bytes`, checking the announced body
/// length against `max` before anything else is read.
pub(crate) fn parse(
    kind: TransportKind,
    dir: Dir,
    bytes: &[u8],
    max: usize,
) -> Result<Parsed, Error> {
    match kind {
        TransportKind::Abridged => parse_abridged(dir, bytes, max),
        TransportKind::Intermediate | TransportKind::PaddedIntermediate => {
            parse_intermediate(kind, dir, bytes, max)
        }
        TransportKind::Full => parse_full(dir, bytes, max),
    }
}

fn check_body(body: usize, max: usize) -> Result<(), Error> {
    if body > max {
        return Err(Error::FrameTooLong { len: body, max });
    }
    if body == 0 {
        return Err(Error::EmptyFrame);
    }
    Ok(())
}

fn quick_ack_token(hdr: usize, token: u32) -> Parsed {
    Parsed::Header(Header {
        hdr,
        body: 0,
        trailer: 0,
        what: What::QuickAck(token),
    })
}

fn parse_abridged(dir: Dir, bytes: &[u8], max: usize) -> Result<Parsed, Error> {
    let Some(&b0) = bytes.first() else {
        return Ok(Parsed::Need(1));
    };
    let flagged = b0 & ABRIDGED_QUICK_ACK_BIT != 0;
    if dir == Dir::FromServer && flagged {
        // Tokens are byte-swapped in abridged so that this first byte, not
        // a length, carries the high bit.
        return Ok(match bytes.get(..4) {
            Some(t) => quick_ack_token(4, u32::from_be_bytes([t[0], t[1], t[2], t[3]])),
            None => Parsed::Need(4),
        });
    }
    let short = b0 & !ABRIDGED_QUICK_ACK_BIT;
    let (hdr, words) = if short == ABRIDGED_LONG {
        match bytes.get(1..4) {
            Some(l) => (4, u32::from_le_bytes([l[0], l[1], l[2], 0])),
            None => return Ok(Parsed::Need(4)),
        }
    } else {
        (1, u32::from(short))
    };
    // words < 2^24, so the byte count fits in 26 bits.
    let body = words as usize * 4;
    check_body(body, max)?;
    Ok(Parsed::Header(Header {
        hdr,
        body,
        trailer: 0,
        what: What::Packet {
            quick_ack: dir == Dir::FromClient && flagged,
            seq: None,
        },
    }))
}

fn parse_intermediate(
    kind: TransportKind,
    dir: Dir,
    bytes: &[u8],
    max: usize,
) -> Result<Parsed, Error> {
    let Some(h) = bytes.get(..4) else {
        return Ok(Parsed::Need(4));
    };
    let v = le32(h);
    let flagged = v & QUICK_ACK_BIT != 0;
    if dir == Dir::FromServer && flagged {
        return Ok(quick_ack_token(4, v));
    }
    let body = (v & !QUICK_ACK_BIT) as usize;
    check_body(body, max)?;
    // Padded intermediate lengths include the padding, so any length goes.
    if kind == TransportKind::Intermediate && !body.is_multiple_of(4) {
        return Err(Error::Misaligned { len: body });
    }
    Ok(Parsed::Header(Header {
        hdr: 4,
        body,
        trailer: 0,
        what: What::Packet {
            quick_ack: dir == Dir::FromClient && flagged,
            seq: None,
        },
    }))
}

fn parse_full(dir: Dir, bytes: &[u8], max: usize) -> Result<Parsed, Error> {
    let Some(h) = bytes.get(..4) else {
        return Ok(Parsed::Need(4));
    };
    let v = le32(h);
    let flagged = v & QUICK_ACK_BIT != 0;
    if dir == Dir::FromServer && flagged {
        return Ok(quick_ack_token(4, v));
    }
    let len = (v & !QUICK_ACK_BIT) as usize;
    if len < FULL_OVERHEAD {
        return Err(Error::FrameTooShort { len });
    }
    check_body(len - FULL_OVERHEAD, max)?;
    if !len.is_multiple_of(4) {
        return Err(Error::Misaligned { len });
    }
    let Some(s) = bytes.get(4..8) else {
        return Ok(Parsed::Need(8));
    };
    Ok(Parsed::Header(Header {
        hdr: 8,
        body: len - FULL_OVERHEAD,
        trailer: 4,
        what: What::Packet {
            quick_ack: dir == Dir::FromClient && flagged,
            seq: Some(le32(s)),
        },
    }))
}

/// Appends the padded intermediate transport's 0..=15 random bytes.
pub(crate) fn append_padding<R: RngCore + CryptoRng + ?Sized>(buf: &mut FrameBuf, rng: &mut R) {
    // 16 divides 2^32: no modulo bias.
    let pad = (rng.next_u32() % 16) as usize;
    buf.append_with(|v| {
        let at = v.len();
        v.resize(at + pad, 0);
        rng.fill_bytes(&mut v[at..]);
    });
}

/// Wraps the payload of `buf` (padding already appended) in the envelope of
/// `kind`: the header goes into the headroom, the full transport's CRC at
/// the back. `seq` is the full transport's counter for this direction.
///
/// # Panics
///
/// If the payload is too long for the envelope (2^26 bytes for abridged,
/// 2^31 for the others): the caller's messages are far smaller.
pub(crate) fn frame(kind: TransportKind, buf: &mut FrameBuf, quick_ack: bool, seq: &mut u32) {
    let n = buf.len();
    let flag = if quick_ack { QUICK_ACK_BIT } else { 0 };
    match kind {
        TransportKind::Abridged => {
            let words = n / 4;
            assert!(
                words < 1 << 24,
                "payload too long for the abridged transport"
            );
            let flag = if quick_ack { ABRIDGED_QUICK_ACK_BIT } else { 0 };
            if words < usize::from(ABRIDGED_LONG) {
                // words < 0x7f: fits in the low 7 bits.
                buf.prepend(1)[0] = words as u8 | flag;
            } else {
                let h = buf.prepend(4);
                h[0] = ABRIDGED_LONG | flag;
                h[1..].copy_from_slice(&(words as u32).to_le_bytes()[..3]);
            }
        }
        TransportKind::Intermediate | TransportKind::PaddedIntermediate => {
            assert!(
                n < 1 << 31,
                "payload too long for the intermediate transport"
            );
            buf.prepend(4)
                .copy_from_slice(&(n as u32 | flag).to_le_bytes());
        }
        TransportKind::Full => {
            let len = n + FULL_OVERHEAD;
            assert!(len < 1 << 31, "payload too long for the full transport");
            let h = buf.prepend(8);
            h[..4].copy_from_slice(&(len as u32 | flag).to_le_bytes());
            h[4..].copy_from_slice(&seq.to_le_bytes());
            *seq = seq.wrapping_add(1);
            let crc = crc32fast::hash(buf.as_slice());
            buf.extend_from_slice(&crc.to_le_bytes());
        }
    }
}

/// The code of a transport error, if `body` is one: a negative 4-byte
/// integer, followed by at most 15 padding bytes in padded intermediate.
pub(crate) fn transport_error(kind: TransportKind, body: &[u8]) -> Option<i32> {
    let max_len = if kind == TransportKind::PaddedIntermediate {
        19
    } else {
        4
    };
    if body.len() < 4 || body.len() > max_len {
        return None;
    }
    let code = i32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    (code < 0).then_some(code)
}
