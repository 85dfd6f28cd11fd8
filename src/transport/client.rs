//! The client end of a transport connection.

use rand_core::{CryptoRng, RngCore};

use super::framing::{self, Dir};
use super::obfuscated;
use super::stream::Stream;
use super::{Error, Frame, TransportKind, DEFAULT_MAX_FRAME_LEN};
use crate::buf::FrameBuf;
use crate::crypto::AesCtr;

/// The client end of one connection: frames outgoing packets in place and
/// decodes what the server sends.
///
/// Outgoing: [`encode`](Self::encode) wraps the payload of a [`FrameBuf`] in
/// the transport envelope, writing the header into its headroom. The first
/// frame also carries the bytes that open the connection (the protocol tag,
/// or the 64-byte obfuscated header). Obfuscated output is encrypted in
/// place.
///
/// Incoming: [`feed`](Self::feed) the bytes read from the socket, in any
/// chunking, then call [`next_frame`](Self::next_frame) until it returns
/// `None`.
///
/// Randomness (the padded intermediate transport's padding) is taken per
/// call from the caller's generator, like everywhere else in the crate.
pub struct ClientCodec {
    kind: TransportKind,
    /// Bytes that open the connection, sent in front of the first frame.
    init: [u8; 64],
    init_len: usize,
    init_sent: bool,
    /// Outgoing keystream when obfuscated.
    cipher: Option<AesCtr>,
    /// Full transport: seq of the next outgoing frame.
    seq: u32,
    incoming: Stream,
}

impl ClientCodec {
    /// A plain (not obfuscated) connection of the given kind.
    pub fn new(kind: TransportKind) -> Self {
        let tag = kind.plain_init();
        let mut init = [0u8; 64];
        init[..tag.len()].copy_from_slice(tag);
        Self {
            kind,
            init,
            init_len: tag.len(),
            init_sent: false,
            cipher: None,
            seq: 0,
            incoming: Stream::new(kind, Dir::FromServer, DEFAULT_MAX_FRAME_LEN, None),
        }
    }

    /// An obfuscated2 connection of the given kind.
    ///
    /// `init` is 64 random bytes from [`obfuscation_init`](super::obfuscation_init).
    /// The codec writes the protocol tag of `kind` at bytes 56..60 and
    /// `dc_id` (two bytes, little-endian; `+10000` for test DCs, negative for
    /// media DCs) at 60..62. Outgoing data is encrypted with AES-256-CTR keyed
    /// by bytes 8..40 and 40..56 of the result, incoming data with the same
    /// ranges of the result reversed. The header itself goes out with its
    /// bytes 56..64 encrypted.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for [`TransportKind::Full`], which has no
    /// protocol tag; [`Error::InvalidInit`] if `init` would be read by the
    /// server as another protocol (see [`obfuscation_init`](super::obfuscation_init)).
    pub fn obfuscated(kind: TransportKind, mut init: [u8; 64], dc_id: i16) -> Result<Self, Error> {
        let tag = kind.obfuscation_tag().ok_or(Error::Unsupported(kind))?;
        if !obfuscated::init_is_valid(&init) {
            return Err(Error::InvalidInit);
        }
        init[56..60].copy_from_slice(&tag);
        init[60..62].copy_from_slice(&dc_id.to_le_bytes());
        let (mut out, incoming) = obfuscated::ciphers(&init);
        let mut encrypted = init;
        out.apply(&mut encrypted);
        init[56..].copy_from_slice(&encrypted[56..]);
        Ok(Self {
            kind,
            init,
            init_len: 64,
            init_sent: false,
            cipher: Some(out),
            seq: 0,
            incoming: Stream::new(kind, Dir::FromServer, DEFAULT_MAX_FRAME_LEN, Some(incoming)),
        })
    }

    /// Sets the largest incoming frame body accepted (default
    /// [`DEFAULT_MAX_FRAME_LEN`]). Longer frames are
    /// [`Error::FrameTooLong`].
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.incoming.set_max(max);
        self
    }

    /// The transport in use.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    /// Whether the connection is obfuscated.
    pub fn is_obfuscated(&self) -> bool {
        self.cipher.is_some()
    }

    /// Frames the payload of `buf` in place, ready to be written to the
    /// socket.
    ///
    /// `rng` draws the padding of the padded intermediate transport; other
    /// transports do not use it.
    ///
    /// # Panics
    ///
    /// In debug builds, if the payload is empty, or for abridged,
    /// intermediate and full not a multiple of 4 bytes. Always, if the
    /// payload is longer than the envelope can describe (64 MiB for
    /// abridged, 2 GiB for the others).
    pub fn encode<R: RngCore + CryptoRng + ?Sized>(&mut self, buf: &mut FrameBuf, rng: &mut R) {
        self.encode_inner(buf, false, rng);
    }

    /// Like [`encode`](Self::encode), and asks the server for a quick ack of
    /// this packet (which must be an encrypted MTProto message).
    pub fn encode_with_quick_ack<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        buf: &mut FrameBuf,
        rng: &mut R,
    ) {
        self.encode_inner(buf, true, rng);
    }

    fn encode_inner<R: RngCore + CryptoRng + ?Sized>(
        &mut self,
        buf: &mut FrameBuf,
        quick_ack: bool,
        rng: &mut R,
    ) {
        debug_assert!(!buf.is_empty(), "empty transport payload");
        if self.kind == TransportKind::PaddedIntermediate {
            framing::append_padding(buf, rng);
        } else {
            debug_assert!(
                buf.len().is_multiple_of(4),
                "transport payload of {} bytes is not a multiple of 4",
                buf.len()
            );
        }
        framing::frame(self.kind, buf, quick_ack, &mut self.seq);
        if let Some(c) = &mut self.cipher {
            c.apply(buf.as_mut_slice());
        }
        if !self.init_sent {
            self.init_sent = true;
            buf.prepend(self.init_len)
                .copy_from_slice(&self.init[..self.init_len]);
        }
    }

    /// Takes bytes read from the socket. They are buffered (decrypted if
    /// obfuscated) until [`next_frame`](Self::next_frame) hands them out.
    /// After an error, input is dropped.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.incoming.feed(bytes);
    }

    /// The next complete frame: `None` when more bytes are needed.
    ///
    /// A packet borrows the codec's buffer, so it can be decrypted in place.
    /// Errors are fatal: once one is returned, every later call returns it
    /// again and the connection should be closed.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, Error>> {
        self.incoming.next_frame()
    }

    /// Up to `out.len()` (at most [`PARALLEL_MESSAGES`](crate::crypto::PARALLEL_MESSAGES))
    /// complete packets at once, as disjoint slices of the codec's buffer,
    /// so that they can be decrypted together
    /// ([`Session::handle_packets`](crate::session::Session::handle_packets)).
    /// Returns how many it wrote to the front of `out`; `0` means the next
    /// frame, if any, is not a packet or not complete: ask
    /// [`next_frame`](Self::next_frame).
    pub fn next_packets<'a>(&'a mut self, out: &mut [&'a mut [u8]]) -> usize {
        self.incoming.next_packets(out)
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.incoming.buffered()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.incoming.capacity()
    }
}

impl std::fmt::Debug for ClientCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCodec")
            .field("kind", &self.kind)
            .field("obfuscated", &self.is_obfuscated())
            .field("init_sent", &self.init_sent)
            .field("seq", &self.seq)
            .field("incoming", &self.incoming)
            .finish()
    }
}
