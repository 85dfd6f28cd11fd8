//! [`FrameBuf`]: one outgoing buffer with headroom, so a message can be
//! serialized once, then encrypted and framed in place.
//!
//! The hot path writes the plaintext (salt, session id, msg_id, seq_no,
//! length, body) at the back, encrypts that region in place, then prepends the
//! encrypted-message header and the transport header into the headroom. No
//! step moves the body.

/// Headroom reserved by [`FrameBuf::new`]: enough for the obfuscated2
/// init header (64), the largest transport header (8) and the encrypted
/// message header (auth_key_id + msg_key = 24), rounded up.
pub const DEFAULT_HEADROOM: usize = 128;

/// A byte buffer whose payload starts after a stretch of reserved headroom.
///
/// The payload is `as_slice()`. Bytes are appended at the back with
/// [`extend_from_slice`](Self::extend_from_slice) or
/// [`append_with`](Self::append_with), and headers are claimed from the
/// headroom with [`prepend`](Self::prepend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameBuf {
    data: Vec<u8>,
    start: usize,
    reserve: usize,
}

impl Default for FrameBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuf {
    /// An empty buffer with [`DEFAULT_HEADROOM`].
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_HEADROOM, 0)
    }

    /// An empty buffer with `headroom` bytes reserved in front and room for
    /// `capacity` payload bytes before it reallocates.
    pub fn with_capacity(headroom: usize, capacity: usize) -> Self {
        let mut data = Vec::with_capacity(headroom + capacity);
        data.resize(headroom, 0);
        Self {
            data,
            start: headroom,
            reserve: headroom,
        }
    }

    /// A buffer holding `payload`, with [`DEFAULT_HEADROOM`] in front.
    pub fn from_payload(payload: &[u8]) -> Self {
        let mut buf = Self::with_capacity(DEFAULT_HEADROOM, payload.len());
        buf.extend_from_slice(payload);
        buf
    }

    /// Empties the payload and restores the headroom, keeping the allocation.
    pub fn clear(&mut self) {
        self.data.truncate(self.reserve);
        self.start = self.reserve;
    }

    /// The payload.
    pub fn as_slice(&self) -> &[u8] {
        &self.data[self.start..]
    }

    /// The payload, mutable (for in-place encryption).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data[self.start..]
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.data.len() - self.start
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes still free in front of the payload.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Appends bytes at the back of the payload.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// Gives `f` the underlying vector to append to (a TL writer, say).
    ///
    /// `f` may only append: bytes before the payload's current end belong to
    /// the headroom and the payload.
    pub fn append_with<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let before = self.data.len();
        let r = f(&mut self.data);
        assert!(
            self.data.len() >= before,
            "FrameBuf::append_with: the closure shrank the buffer"
        );
        r
    }

    /// Shortens the payload to `len` bytes (no-op if it is shorter).
    pub fn truncate(&mut self, len: usize) {
        self.data.truncate(self.start + len);
    }

    /// Claims `n` bytes in front of the payload and returns them for the
    /// caller to fill; they become the start of the payload.
    ///
    /// When the headroom is too small the buffer is moved once to make room;
    /// size [`DEFAULT_HEADROOM`] so that this never happens on the hot path.
    pub fn prepend(&mut self, n: usize) -> &mut [u8] {
        if n > self.start {
            let grow = (n - self.start).max(self.reserve);
            self.data.splice(0..0, std::iter::repeat_n(0, grow));
            self.start += grow;
            self.reserve += grow;
        }
        self.start -= n;
        &mut self.data[self.start..self.start + n]
    }

    /// Drops `n` bytes from the front of the payload (they return to the headroom).
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.len(), "FrameBuf::advance past the end");
        self.start += n;
    }

    /// Consumes the buffer, returning the payload as a vector (one copy when
    /// there is headroom in front).
    pub fn into_vec(mut self) -> Vec<u8> {
        self.data.drain(..self.start);
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_uses_headroom_without_moving_the_body() {
        let mut buf = FrameBuf::with_capacity(8, 16);
        buf.extend_from_slice(b"body");
        let body_ptr = buf.as_slice().as_ptr();
        buf.prepend(4).copy_from_slice(b"hdr:");
        assert_eq!(buf.as_slice(), b"hdr:body");
        assert_eq!(buf.headroom(), 4);
        // The body did not move.
        assert_eq!(offset_of(&buf, body_ptr), 4);
    }

    fn offset_of(buf: &FrameBuf, ptr: *const u8) -> usize {
        ptr as usize - buf.as_slice().as_ptr() as usize
    }

    #[test]
    fn prepend_grows_when_headroom_is_short() {
        let mut buf = FrameBuf::with_capacity(2, 0);
        buf.extend_from_slice(b"xyz");
        buf.prepend(5).copy_from_slice(b"12345");
        assert_eq!(buf.as_slice(), b"12345xyz");
        buf.prepend(1).copy_from_slice(b"0");
        assert_eq!(buf.as_slice(), b"012345xyz");
    }

    #[test]
    fn clear_restores_headroom() {
        let mut buf = FrameBuf::with_capacity(16, 0);
        buf.extend_from_slice(&[1; 40]);
        buf.prepend(10);
        buf.clear();
        assert!(buf.is_empty());
        assert_eq!(buf.headroom(), 16);
        buf.advance(0);
        assert_eq!(FrameBuf::from_payload(b"ab").into_vec(), b"ab");
    }
}
