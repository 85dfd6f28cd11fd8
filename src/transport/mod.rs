//! MTProto transports: framing of packets over a byte stream.
//!
//! Four envelopes are supported ([`TransportKind`]): abridged, intermediate,
//! padded intermediate and full. The first three can also be wrapped in the
//! obfuscated2 layer, which encrypts the whole stream with AES-256-CTR keyed
//! from a 64-byte random header.
//!
//! - [`ClientCodec`] is the client end: it frames outgoing packets in place
//!   inside a [`FrameBuf`](crate::buf::FrameBuf) and decodes the server's
//!   packets, quick acks and transport errors from a byte stream cut at any
//!   point.
//! - [`ServerDecoder`] is the server end: it recognises the transport from the
//!   first bytes of a connection and decodes the client's packets;
//!   [`ServerEncoder`] answers in the same transport.
//!
//! # Wire rules
//!
//! | transport | first bytes from the client | envelope |
//! |---|---|---|
//! | abridged | `ef` | `len/4` in one byte (`< 0x7f`), or `7f` + `len/4` in 3 bytes LE |
//! | intermediate | `ee ee ee ee` | `len` as u32 LE |
//! | padded intermediate | `dd dd dd dd` | `len + pad` as u32 LE, payload, 0..=15 random bytes |
//! | full | none | `len + 12` and `seq` as u32 LE, payload, CRC32 of all of that, LE |
//!
//! **Quick ack.** The client asks for one by setting the most significant bit
//! of the length: bit 7 of the abridged length byte (so `0x7f` becomes
//! `0xff`), bit 31 of the u32 length otherwise. The server answers with a
//! bare 4-byte token whose most significant bit is set, so that it cannot be
//! read as a length: big-endian for abridged, little-endian for the others.
//! The full transport's token carries no sequence number or CRC and does not
//! advance the sequence. In the full transport the CRC covers the length
//! field as sent, flag included.
//!
//! **Transport errors.** The server may send an ordinary frame whose payload is
//! a negative 4-byte little-endian integer (`-404`: unknown auth key, `-429`:
//! transport flood, `-444`: invalid DC). It is reported as
//! [`Frame::TransportError`]. The padded intermediate transport may pad it, so
//! there any frame of 4 to 19 bytes that starts with a negative integer counts
//! (no MTProto message is shorter than 20 bytes).
//!
//! **Padding.** Padded intermediate packets are delivered with their padding:
//! the envelope does not say how much there is. The MTProto layer knows its
//! message's length and ignores the tail.
//!
//! **Obfuscation.** See [`obfuscation_init`] and [`ClientCodec::obfuscated`].
//! The full transport has no protocol tag to put in the obfuscated header, so
//! obfuscating it is [`Error::Unsupported`].
//!
//! # Limits
//!
//! Every decoder checks a frame's announced length against a maximum
//! ([`DEFAULT_MAX_FRAME_LEN`] unless set with `with_max_frame_len`) as soon
//! as the header is complete, before it buffers any of the body. Decoding
//! errors are fatal: the decoder then drops further input and returns the same
//! error from every call, rather than resynchronising on garbage.

mod client;
mod framing;
mod obfuscated;
mod server;
mod stream;
#[cfg(test)]
mod tests;

pub use client::ClientCodec;
pub use obfuscated::obfuscation_init;
pub use server::{ServerDecoder, ServerEncoder};

/// Default cap on the length of one frame's body (payload, plus padding for
/// padded intermediate): 16 MiB, far above any MTProto message.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 << 20;

/// An MTProto transport envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// One length byte (or four) in units of 4 bytes; tag `0xef`.
    Abridged,
    /// A 4-byte length; tag `0xeeeeeeee`.
    Intermediate,
    /// A 4-byte length and 0..=15 random padding bytes; tag `0xdddddddd`.
    PaddedIntermediate,
    /// Length, sequence number and CRC32; no tag, so it cannot be obfuscated.
    Full,
}

impl TransportKind {
    /// The 4-byte protocol tag carried in the obfuscated header (`None` for
    /// [`Full`](Self::Full)).
    pub fn obfuscation_tag(self) -> Option<[u8; 4]> {
        match self {
            Self::Abridged => Some([0xef; 4]),
            Self::Intermediate => Some([0xee; 4]),
            Self::PaddedIntermediate => Some([0xdd; 4]),
            Self::Full => None,
        }
    }

    /// The bytes a plain (not obfuscated) connection starts with.
    pub(crate) fn plain_init(self) -> &'static [u8] {
        match self {
            Self::Abridged => &[0xef],
            Self::Intermediate => &[0xee; 4],
            Self::PaddedIntermediate => &[0xdd; 4],
            Self::Full => &[],
        }
    }
}

/// One decoded unit of the incoming stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A packet, borrowed from the decoder's buffer so that it can be
    /// decrypted in place. Padded intermediate packets include their padding.
    Packet(&'a mut [u8]),
    /// A quick acknowledgment token from the server, as sent (most
    /// significant bit set). Only the client decoder yields these.
    QuickAck(u32),
    /// A transport error from the server, negative as sent (e.g. `-404`).
    /// Only the client decoder yields these.
    TransportError(i32),
}

/// Errors of the transport layer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transport cannot be obfuscated: [`TransportKind::Full`] has no
    /// protocol tag.
    #[error("the {0:?} transport has no protocol tag and cannot be obfuscated")]
    Unsupported(TransportKind),
    /// The obfuscation header could be taken for another protocol; draw it
    /// with [`obfuscation_init`].
    #[error("obfuscation header could be mistaken for another protocol")]
    InvalidInit,
    /// A frame announced a body longer than the decoder's maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    FrameTooLong {
        /// Announced body length.
        len: usize,
        /// The decoder's maximum.
        max: usize,
    },
    /// A frame announced an empty body.
    #[error("empty frame")]
    EmptyFrame,
    /// An intermediate or full frame length that is not a multiple of 4.
    #[error("frame length {len} is not a multiple of 4")]
    Misaligned {
        /// Announced length.
        len: usize,
    },
    /// A full-transport length below its own 12-byte envelope.
    #[error("full transport length {len} is shorter than the 12-byte envelope")]
    FrameTooShort {
        /// Announced length.
        len: usize,
    },
    /// A full-transport frame out of sequence.
    #[error("full transport: expected seq {expected}, got {got}")]
    BadSeq {
        /// The sequence number due.
        expected: u32,
        /// The one received.
        got: u32,
    },
    /// A full-transport frame whose CRC32 does not match its contents.
    #[error("full transport: CRC32 {got:#010x} does not match {expected:#010x}")]
    BadCrc {
        /// CRC32 of the received bytes.
        expected: u32,
        /// The CRC32 the frame carried.
        got: u32,
    },
    /// An obfuscated header whose protocol tag is none of the known ones.
    #[error("unknown protocol tag {0:02x?} in the obfuscated header")]
    UnknownProtocol([u8; 4]),
}
