//! The TL binary codec and the MTProto service schema.
//!
//! - [`Reader`] reads the TL primitives from a byte slice, bounds-checked:
//!   every length is compared with the bytes present before anything is
//!   sliced or allocated, so hostile input yields an [`Error`], never a panic
//!   or an outsized allocation.
//! - [`Serialize`] / [`Deserialize`] are implemented for the primitives and
//!   for every constructor of the MTProto service schema: [`types`] (boxed
//!   constructors), [`functions`] (methods, including the API-layer wrappers
//!   a sender puts around a connection's first request), [`enums`] (one per
//!   TL type with several constructors) and [`Object`] (any of them,
//!   dispatched on the constructor id).
//! - [`message`] holds the forms parsed by hand, without copies:
//!   `rpc_result`, `msg_container` and its bare messages, `msg_copy` and
//!   `gzip_packed` (inflated under a caller-given cap).
//!
//! Wire conventions: integers are little-endian; `int128`/`int256` are kept
//! as the byte arrays that travel on the wire; `bytes`/`string` carry a
//! 1-byte length (< 254) or `0xfe` plus a 3-byte length, then the data and
//! zero padding to a multiple of 4.

#[macro_use]
mod macros;
#[cfg(test)]
mod arb;
pub mod enums;
pub mod functions;
pub mod message;
mod object;
mod primitives;
mod reader;
pub mod types;

#[cfg(test)]
mod tests;

pub use object::Object;
pub use primitives::{bytes_len, write_bytes, RawTail};
pub use reader::Reader;

/// A TL decoding failure. Each variant says what was wrong and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a value did.
    #[error("input ends at byte {at}, {needed} more bytes were needed")]
    UnexpectedEof {
        /// Bytes missing.
        needed: usize,
        /// Offset where reading stopped.
        at: usize,
    },
    /// A constructor id that this position does not allow.
    #[error("unexpected constructor {got:#010x} at byte {at}")]
    UnexpectedConstructor {
        /// The id read.
        got: u32,
        /// Offset of the id.
        at: usize,
    },
    /// A `bytes` length prefix of 255, which TL does not define.
    #[error("invalid bytes length prefix at byte {at}")]
    BadBytesPrefix {
        /// Offset of the prefix.
        at: usize,
    },
    /// A vector count that is negative or larger than the bytes present allow.
    #[error("vector of {count} elements cannot fit in the {remaining} bytes left")]
    BadVectorCount {
        /// The count read.
        count: i64,
        /// Bytes left after the count.
        remaining: usize,
    },
    /// A container inside a container, or a `msg_copy` of one.
    #[error("nested msg_container")]
    NestedContainer,
    /// A container with more messages than MTProto allows.
    #[error("msg_container with {count} messages (at most {max})")]
    ContainerTooLarge {
        /// Messages announced.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An inner message whose length is negative, not a multiple of 4, or
    /// past the end of its container.
    #[error("inner message length {len} is invalid at byte {at}")]
    BadMessageLength {
        /// The length read.
        len: i32,
        /// Offset of the length.
        at: usize,
    },
    /// gzip data that inflates past the caller's cap.
    #[error("gzip_packed inflates past the {cap}-byte cap")]
    GzipTooLarge {
        /// The cap.
        cap: usize,
    },
    /// gzip data that is not a valid gzip stream.
    #[error("gzip_packed data is corrupt")]
    GzipCorrupt,
    /// A plain (unencrypted) message whose auth_key_id is not zero.
    #[error("plain message with a non-zero auth_key_id")]
    NotPlain,
    /// A plain message whose length field disagrees with its packet.
    #[error("plain message claims {claimed} body bytes, its packet has {actual}")]
    BadPlainLength {
        /// The message_length field.
        claimed: i32,
        /// Bytes after the 20-byte header.
        actual: usize,
    },
    /// Bytes left over after a value that should have filled its input.
    #[error("{extra} trailing bytes after the value")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// Result of TL decoding.
pub type Result<T> = std::result::Result<T, Error>;

/// A value that writes itself in TL binary form.
pub trait Serialize {
    /// Appends the TL form of `self` to `out`.
    fn serialize(&self, out: &mut Vec<u8>);

    /// The TL form of `self` as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.serialize(&mut out);
        out
    }
}

/// A value that reads itself from TL binary form.
pub trait Deserialize<'a>: Sized {
    /// Reads one value, advancing `r` past it.
    fn deserialize(r: &mut Reader<'a>) -> Result<Self>;

    /// Reads one value that must span all of `bytes`.
    fn from_bytes(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let value = Self::deserialize(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// A TL constructor with a fixed id.
pub trait Identifiable {
    /// The constructor id (CRC32 of the normalised TL line, as published).
    const CONSTRUCTOR_ID: u32;
}

/// Id of the boxed `Vector t` constructor.
pub const VECTOR_ID: u32 = 0x1cb5_c415;
/// Id of `boolTrue`.
pub const BOOL_TRUE_ID: u32 = 0x9972_75b5;
/// Id of `boolFalse`.
pub const BOOL_FALSE_ID: u32 = 0xbc79_9737;
