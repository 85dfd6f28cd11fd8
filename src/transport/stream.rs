//! The streaming frame decoder shared by both ends.
//!
//! Bytes are appended to one buffer (decrypted on the way in when the stream
//! is obfuscated). Headers are validated as soon as they are complete, while
//! feeding, so that an oversized or malformed header stops the buffering of
//! whatever follows it. Frames are then handed out as slices of the buffer,
//! which is compacted only when the consumed part outweighs the rest.

use super::framing::{self, Dir, Parsed, What};
use super::{Error, Frame, TransportKind};
use crate::crypto::{AesCtr, PARALLEL_MESSAGES};

/// Capacity kept when the buffer is emptied after holding a large frame.
const KEEP_CAPACITY: usize = 64 << 10;

pub(crate) struct Stream {
    kind: TransportKind,
    dir: Dir,
    max: usize,
    cipher: Option<AesCtr>,
    buf: Vec<u8>,
    /// First byte not yet handed out.
    start: usize,
    /// Start of the first frame whose header has not been validated; past
    /// the end of `buf` while a validated frame's body is still arriving.
    scan: usize,
    /// Full transport: sequence number due for the frame at `scan`.
    scan_seq: u32,
    /// Error found at `scan`, reported once the frames before it are out.
    pending: Option<Error>,
    failed: Option<Error>,
    quick_ack_requested: bool,
}

impl Stream {
    pub fn new(kind: TransportKind, dir: Dir, max: usize, cipher: Option<AesCtr>) -> Self {
        Self {
            kind,
            dir,
            max,
            cipher,
            buf: Vec::new(),
            start: 0,
            scan: 0,
            scan_seq: 0,
            pending: None,
            failed: None,
            quick_ack_requested: false,
        }
    }

    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Bytes held and not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether the packet last returned by [`next_frame`](Self::next_frame)
    /// had the quick-ack flag set.
    pub fn quick_ack_requested(&self) -> bool {
        self.quick_ack_requested
    }

    fn append(&mut self, bytes: &[u8]) {
        let at = self.buf.len();
        self.buf.extend_from_slice(bytes);
        if let Some(c) = &mut self.cipher {
            c.apply(&mut self.buf[at..]);
        }
    }

    /// Drops handed-out bytes when that costs no more than the bytes
    /// dropped, so the copying stays linear in the stream length.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let rest = self.buf.len() - self.start;
        if rest == 0 {
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf.shrink_to(KEEP_CAPACITY);
            }
        } else if rest <= self.start {
            self.buf.drain(..self.start);
        } else {
            return;
        }
        self.scan -= self.start;
        self.start = 0;
    }

    pub fn feed(&mut self, mut input: &[u8]) {
        if self.failed.is_some() || self.pending.is_some() {
            return;
        }
        self.compact();
        loop {
            if self.scan > self.buf.len() {
                // Inside a validated body: take as much of it as there is.
                if input.is_empty() {
                    return;
                }
                let take = (self.scan - self.buf.len()).min(input.len());
                self.append(&input[..take]);
                input = &input[take..];
                continue;
            }
            match framing::parse(self.kind, self.dir, &self.buf[self.scan..], self.max) {
                Ok(Parsed::Need(n)) => {
                    // Take only the header bytes still missing, so that an
                    // invalid header is seen before anything after it.
                    if input.is_empty() {
                        return;
                    }
                    let have = self.buf.len() - self.scan;
                    let take = (n - have).min(input.len());
                    self.append(&input[..take]);
                    input = &input[take..];
                }
                Ok(Parsed::Header(h)) => {
                    if let What::Packet { seq: Some(got), .. } = h.what {
                        if got != self.scan_seq {
                            self.stop_at_scan(Error::BadSeq {
                                expected: self.scan_seq,
                                got,
                            });
                            return;
                        }
                        self.scan_seq = self.scan_seq.wrapping_add(1);
                    }
                    self.scan += h.total();
                }
                Err(e) => {
                    self.stop_at_scan(e);
                    return;
                }
            }
        }
    }

    /// Keeps the frames before `scan`, drops the rest and all further input.
    fn stop_at_scan(&mut self, e: Error) {
        self.buf.truncate(self.scan);
        self.pending = Some(e);
    }

    fn fail(&mut self, e: Error) -> Option<Result<Frame<'_>, Error>> {
        self.failed = Some(e.clone());
        self.pending = None;
        self.buf = Vec::new();
        self.start = 0;
        self.scan = 0;
        Some(Err(e))
    }

    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, Error>> {
        if let Some(e) = &self.failed {
            return Some(Err(e.clone()));
        }
        if self.start == self.scan {
            return match self.pending.take() {
                Some(e) => self.fail(e),
                None => None,
            };
        }
        // The header at `start` was validated by `feed`; parsing it again is
        // cheaper than remembering it. Should it fail anyway, fail cleanly.
        let h = match framing::parse(self.kind, self.dir, &self.buf[self.start..], self.max) {
            Ok(Parsed::Header(h)) => h,
            Ok(Parsed::Need(_)) => return None,
            Err(e) => return self.fail(e),
        };
        let frame_start = self.start;
        let end = frame_start + h.total();
        if end > self.buf.len() {
            return None;
        }
        self.start = end;
        let quick_ack = match h.what {
            What::QuickAck(token) => return Some(Ok(Frame::QuickAck(token))),
            What::Packet { quick_ack, .. } => quick_ack,
        };
        if self.kind == TransportKind::Full {
            let crc_at = end - h.trailer;
            let expected = crc32fast::hash(&self.buf[frame_start..crc_at]);
            let t = &self.buf[crc_at..end];
            let got = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
            if got != expected {
                return self.fail(Error::BadCrc { expected, got });
            }
        }
        let body = frame_start + h.hdr..frame_start + h.hdr + h.body;
        if self.dir == Dir::FromServer {
            if let Some(code) = framing::transport_error(self.kind, &self.buf[body.clone()]) {
                return Some(Ok(Frame::TransportError(code)));
            }
        }
        self.quick_ack_requested = quick_ack;
        Some(Ok(Frame::Packet(&mut self.buf[body])))
    }

    /// Up to `out.len()` (at most [`PARALLEL_MESSAGES`]) complete packets
    /// at once, as disjoint slices of the buffer, so that they can be
    /// decrypted together. Stops before anything else (a quick ack, a
    /// transport error, a bad checksum, an incomplete frame, an error):
    /// [`next_frame`](Self::next_frame) hands those out. Returns how many
    /// slices it wrote to the front of `out`.
    pub fn next_packets<'a>(&'a mut self, out: &mut [&'a mut [u8]]) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        let max = out.len().min(PARALLEL_MESSAGES);
        let mut bodies = [(0usize, 0usize); PARALLEL_MESSAGES];
        let mut n = 0;
        let mut pos = self.start;
        while n < max && pos < self.scan {
            let Ok(Parsed::Header(h)) =
                framing::parse(self.kind, self.dir, &self.buf[pos..], self.max)
            else {
                break;
            };
            let end = pos + h.total();
            if end > self.buf.len()
                || !matches!(
                    h.what,
                    What::Packet {
                        quick_ack: false,
                        ..
                    }
                )
            {
                break;
            }
            if self.kind == TransportKind::Full {
                let crc_at = end - h.trailer;
                let t = &self.buf[crc_at..end];
                if crc32fast::hash(&self.buf[pos..crc_at])
                    != u32::from_le_bytes([t[0], t[1], t[2], t[3]])
                {
                    break;
                }
            }
            let body = (pos + h.hdr, pos + h.hdr + h.body);
            if self.dir == Dir::FromServer
                && framing::transport_error(self.kind, &self.buf[body.0..body.1]).is_some()
            {
                break;
            }
            bodies[n] = body;
            n += 1;
            pos = end;
        }
        if n == 0 {
            return 0;
        }
        self.start = pos;
        self.quick_ack_requested = false;
        let mut rest: &'a mut [u8] = &mut self.buf[..];
        let mut taken = 0;
        for (slot, &(from, to)) in out.iter_mut().zip(&bodies[..n]) {
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(from - taken);
            let (packet, tail) = tail.split_at_mut(to - from);
            *slot = packet;
            rest = tail;
            taken = to;
        }
        n
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("kind", &self.kind)
            .field("dir", &self.dir)
            .field("max", &self.max)
            .field("obfuscated", &self.cipher.is_some())
            .field("buffered", &self.buffered())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
