//! The server end of a transport connection, for test servers.

use rand_core::{CryptoRng, RngCore};

use super::framing::{self, Dir};
use super::obfuscated;
use super::stream::Stream;
use super::{Error, Frame, TransportKind, DEFAULT_MAX_FRAME_LEN};
use crate::buf::FrameBuf;
use crate::crypto::AesCtr;

/// Bytes needed to tell every transport apart: the obfuscated header.
const HEAD_LEN: usize = 64;

/// What the first bytes of a connection say.
enum Detected {
    /// More bytes needed: this many in all.
    Need(usize),
    /// A plain transport whose opening tag is `skip` bytes long.
    Plain(TransportKind, usize),
    /// An obfuscated transport (the whole 64-byte header is consumed).
    /// `ciphers` are (incoming, positioned after the header; outgoing).
    Obfuscated {
        kind: TransportKind,
        dc_id: i16,
        ciphers: Box<(AesCtr, AesCtr)>,
    },
}

fn detect(head: &[u8], max: usize) -> Result<Detected, Error> {
    let Some(&first) = head.first() else {
        return Ok(Detected::Need(1));
    };
    if first == 0xef {
        return Ok(Detected::Plain(TransportKind::Abridged, 1));
    }
    let Some(first4) = head.get(..4) else {
        return Ok(Detected::Need(4));
    };
    if first4 == [0xee; 4] {
        return Ok(Detected::Plain(TransportKind::Intermediate, 4));
    }
    if first4 == [0xdd; 4] {
        return Ok(Detected::Plain(TransportKind::PaddedIntermediate, 4));
    }
    let Some(seq) = head.get(4..8) else {
        return Ok(Detected::Need(8));
    };
    // The full transport has no tag: its first frame starts with a length
    // (maybe with the quick-ack bit) and seq 0.
    let len = u32::from_le_bytes([first4[0], first4[1], first4[2], first4[3]]) & 0x7fff_ffff;
    let len = len as usize;
    if seq == [0; 4] && len > 12 && len.is_multiple_of(4) && len - 12 <= max {
        return Ok(Detected::Plain(TransportKind::Full, 0));
    }
    let Some(head) = head.get(..HEAD_LEN) else {
        return Ok(Detected::Need(HEAD_LEN));
    };
    let mut init = [0u8; HEAD_LEN];
    init.copy_from_slice(head);
    // The client's outgoing keys are ours for reading, and the other way round.
    let (mut incoming, outgoing) = obfuscated::ciphers(&init);
    let mut plain = init;
    incoming.apply(&mut plain);
    let tag = [plain[56], plain[57], plain[58], plain[59]];
    let kind = match tag {
        [0xef, 0xef, 0xef, 0xef] => TransportKind::Abridged,
        [0xee, 0xee, 0xee, 0xee] => TransportKind::Intermediate,
        [0xdd, 0xdd, 0xdd, 0xdd] => TransportKind::PaddedIntermediate,
        _ => return Err(Error::UnknownProtocol(tag)),
    };
    Ok(Detected::Obfuscated {
        kind,
        dc_id: i16::from_le_bytes([plain[60], plain[61]]),
        ciphers: Box::new((incoming, outgoing)),
    })
}

enum State {
    Detecting { head: [u8; HEAD_LEN], len: usize },
    Ready(Box<Ready>),
    Failed(Error),
}

struct Ready {
    kind: TransportKind,
    dc_id: Option<i16>,
    incoming: Stream,
    encoder: Option<ServerEncoder>,
}

/// The server end of one connection: recognises the client's transport from
/// its first bytes and decodes the client's packets.
///
/// Recognition: `ef` is abridged; `ee ee ee ee` intermediate; `dd dd dd dd`
/// padded intermediate; otherwise, once 8 bytes are in, a plausible length
/// (a multiple of 4, above 12, within the maximum) followed by seq 0 is the
/// full transport; anything else is taken as a 64-byte obfuscated header
/// whose decrypted bytes 56..60 must hold a known protocol tag.
///
/// Only [`Frame::Packet`] is produced; [`quick_ack_requested`](Self::quick_ack_requested)
/// tells whether the client asked for a quick ack of it.
pub struct ServerDecoder {
    max: usize,
    state: State,
}

impl Default for ServerDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerDecoder {
    /// A decoder for a new connection, with [`DEFAULT_MAX_FRAME_LEN`].
    pub fn new() -> Self {
        Self {
            max: DEFAULT_MAX_FRAME_LEN,
            state: State::Detecting {
                head: [0; HEAD_LEN],
                len: 0,
            },
        }
    }

    /// Sets the largest frame body accepted. Longer frames are
    /// [`Error::FrameTooLong`].
    pub fn with_max_frame_len(mut self, max: usize) -> Self {
        self.max = max;
        if let State::Ready(r) = &mut self.state {
            r.incoming.set_max(max);
        }
        self
    }

    /// The transport and whether it is obfuscated, once recognised.
    pub fn kind(&self) -> Option<(TransportKind, bool)> {
        match &self.state {
            State::Ready(r) => Some((r.kind, r.dc_id.is_some())),
            _ => None,
        }
    }

    /// The DC id from the obfuscated header, if the connection is obfuscated.
    pub fn dc_id(&self) -> Option<i16> {
        match &self.state {
            State::Ready(r) => r.dc_id,
            _ => None,
        }
    }

    /// The encoder for this connection's replies, in the same transport and,
    /// when obfuscated, with the matching keys. `Some` exactly once, after the
    /// transport has been recognised (two encoders would reuse a keystream).
    pub fn encoder(&mut self) -> Option<ServerEncoder> {
        match &mut self.state {
            State::Ready(r) => r.encoder.take(),
            _ => None,
        }
    }

    /// Takes bytes read from the socket. After an error, input is dropped.
    pub fn feed(&mut self, mut input: &[u8]) {
        let State::Detecting { head, len } = &mut self.state else {
            if let State::Ready(r) = &mut self.state {
                r.incoming.feed(input);
            }
            return;
        };
        loop {
            match detect(&head[..*len], self.max) {
                Ok(Detected::Need(n)) => {
                    if input.is_empty() {
                        return;
                    }
                    let take = (n - *len).min(input.len());
                    head[*len..*len + take].copy_from_slice(&input[..take]);
                    *len += take;
                    input = &input[take..];
                }
                Ok(Detected::Plain(kind, skip)) => {
                    let mut incoming = Stream::new(kind, Dir::FromClient, self.max, None);
                    incoming.feed(&head[skip..*len]);
                    incoming.feed(input);
                    self.state = State::Ready(Box::new(Ready {
                        kind,
                        dc_id: None,
                        incoming,
                        encoder: Some(ServerEncoder::new(kind, None)),
                    }));
                    return;
                }
                Ok(Detected::Obfuscated {
                    kind,
                    dc_id,
                    ciphers,
                }) => {
                    let (incoming, outgoing) = *ciphers;
                    // Exactly the header was taken, so all of `input` follows it.
                    let mut stream = Stream::new(kind, Dir::FromClient, self.max, Some(incoming));
                    stream.feed(input);
                    self.state = State::Ready(Box::new(Ready {
                        kind,
                        dc_id: Some(dc_id),
                        incoming: stream,
                        encoder: Some(ServerEncoder::new(kind, Some(outgoing))),
                    }));
                    return;
                }
                Err(e) => {
                    self.state = State::Failed(e);
                    return;
                }
            }
        }
    }

    /// The next complete packet from the client: `None` when more bytes are
    /// needed. Errors are fatal and repeat on every later call.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, Error>> {
        match &mut self.state {
            State::Detecting { .. } => None,
            State::Ready(r) => r.incoming.next_frame(),
            State::Failed(e) => Some(Err(e.clone())),
        }
    }

    /// Whether the client asked for a quick ack of the packet last returned
    /// by [`next_frame`](Self::next_frame).
    pub fn quick_ack_requested(&self) -> bool {
        match &self.state {
            State::Ready(r) => r.incoming.quick_ack_requested(),
            _ => false,
        }
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Detecting { len, .. } => *len,
            State::Ready(r) => r.incoming.buffered(),
            State::Failed(_) => 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        match &self.state {
            State::Detecting { .. } | State::Failed(_) => HEAD_LEN,
            State::Ready(r) => r.incoming.capacity(),
        }
    }
}

impl std::fmt::Debug for ServerDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ServerDecoder");
        d.field("max", &self.max).field("kind", &self.kind());
        match &self.state {
            State::Detecting { len, .. } => d.field("detecting", len),
            State::Ready(r) => d.field("incoming", &r.incoming),
            State::Failed(e) => d.field("failed", e),
        };
        d.finish()
    }
}

/// The server end's encoder, from [`ServerDecoder::encoder`].
pub struct ServerEncoder {
    kind: TransportKind,
    cipher: Option<AesCtr>,
    /// Full transport: seq of the next outgoing frame.
    seq: u32,
}

impl ServerEncoder {
    fn new(kind: TransportKind, cipher: Option<AesCtr>) -> Self {
        Self {
            kind,
            cipher,
            seq: 0,
        }
    }

    /// The transport in use.
    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    fn seal(&mut self, bytes: &mut [u8]) {
        if let Some(c) = &mut self.cipher {
            c.apply(bytes);
        }
    }

    /// Frames the payload of `buf` in place (header into the headroom),
    /// encrypted when the connection is obfuscated. `rng` draws the padding
    /// of the padded intermediate transport.
    ///
    /// # Panics
    ///
    /// As [`ClientCodec::encode`](super::ClientCodec::encode).
    pub fn encode<R: RngCore + CryptoRng + ?Sized>(&mut self, buf: &mut FrameBuf, rng: &mut R) {
        debug_assert!(!buf.is_empty(), "empty transport payload");
        if self.kind == TransportKind::PaddedIntermediate {
            framing::append_padding(buf, rng);
        } else {
            debug_assert!(buf.len().is_multiple_of(4), "payload not a multiple of 4");
        }
        framing::frame(self.kind, buf, false, &mut self.seq);
        self.seal(buf.as_mut_slice());
    }

    /// The wire bytes of a quick ack carrying `token` (whose most significant
    /// bit is forced on: it is what tells a token from a length).
    pub fn quick_ack(&mut self, token: u32) -> Vec<u8> {
        let token = token | 0x8000_0000;
        let mut out = match self.kind {
            TransportKind::Abridged => token.to_be_bytes(),
            _ => token.to_le_bytes(),
        }
        .to_vec();
        self.seal(&mut out);
        out
    }

    /// The wire bytes of a transport error frame carrying `code`, negative
    /// as on the wire (e.g. `-404`). It is never padded.
    pub fn transport_error(&mut self, code: i32) -> Vec<u8> {
        debug_assert!(code < 0, "transport error codes are negative");
        let mut buf = FrameBuf::with_capacity(8, 8);
        buf.extend_from_slice(&code.to_le_bytes());
        framing::frame(self.kind, &mut buf, false, &mut self.seq);
        self.seal(buf.as_mut_slice());
        buf.into_vec()
    }
}

impl std::fmt::Debug for ServerEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerEncoder")
            .field("kind", &self.kind)
            .field("obfuscated", &self.cipher.is_some())
            .field("seq", &self.seq)
            .finish()
    }
}
