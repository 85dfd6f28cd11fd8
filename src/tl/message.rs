//! The forms parsed by hand: `rpc_result`, `msg_container` with its bare
//! `message`s, `msg_copy`, and `gzip_packed`.
//!
//! Parsing borrows the input: a container's messages and an rpc_result's
//! result are slices of the decrypted packet, never copies. Every length is
//! checked against its enclosing bytes first.

use std::io::Read;

use super::{Error, Reader, Result};

/// `rpc_result#f35c6d01 req_msg_id:long result:Object`.
pub const RPC_RESULT_ID: u32 = 0xf35c_6d01;
/// `msg_container#73f1f8dc messages:vector<%Message>`.
pub const MSG_CONTAINER_ID: u32 = 0x73f1_f8dc;
/// `msg_copy#e06046b2 orig_message:Message`.
pub const MSG_COPY_ID: u32 = 0xe060_46b2;
/// `gzip_packed#3072cfa1 packed_data:string`.
pub const GZIP_PACKED_ID: u32 = 0x3072_cfa1;
/// Most messages a container may hold.
pub const MAX_CONTAINER_MESSAGES: usize = 1024;
/// Bytes of a bare message's header: msg_id, seqno, bytes.
pub const MESSAGE_HEADER_LEN: usize = 16;

/// A parsed `rpc_result`: the answer to the query `req_msg_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpcResult<'a> {
    /// The query's msg_id.
    pub req_msg_id: i64,
    /// The result object's TL bytes (possibly `gzip_packed` or `rpc_error`).
    pub result: &'a [u8],
}

impl<'a> RpcResult<'a> {
    /// Parses a message body that starts with the `rpc_result` id.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        r.expect_id(RPC_RESULT_ID)?;
        let req_msg_id = r.read_i64()?;
        Ok(Self {
            req_msg_id,
            result: r.read_rest(),
        })
    }

    /// Appends an `rpc_result` with `result` (already serialized) to `out`.
    pub fn write(out: &mut Vec<u8>, req_msg_id: i64, result: &[u8]) {
        out.extend_from_slice(&RPC_RESULT_ID.to_le_bytes());
        out.extend_from_slice(&req_msg_id.to_le_bytes());
        out.extend_from_slice(result);
    }
}

/// One bare `message` of a container or a `msg_copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Its msg_id.
    pub msg_id: i64,
    /// Its seq_no.
    pub seqno: i32,
    /// Its body.
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// Reads one bare message; its body must fit in `r` and must not be a
    /// container.
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        let msg_id = r.read_i64()?;
        let seqno = r.read_i32()?;
        let at = r.pos();
        let len = r.read_i32()?;
        let body = match usize::try_from(len) {
            Ok(n) if n % 4 == 0 && n <= r.remaining() => r.read_raw(n)?,
            _ => return Err(Error::BadMessageLength { len, at }),
        };
        if first_id(body) == Some(MSG_CONTAINER_ID) {
            return Err(Error::NestedContainer);
        }
        Ok(Self {
            msg_id,
            seqno,
            body,
        })
    }

    /// Appends this message in bare form.
    pub fn write(&self, out: &mut Vec<u8>) {
        write_message(out, self.msg_id, self.seqno, self.body);
    }
}

/// Appends a bare message header and body.
///
/// # Panics
/// If `body` is longer than `i32::MAX` (a caller bug).
pub fn write_message(out: &mut Vec<u8>, msg_id: i64, seqno: i32, body: &[u8]) {
    let len = i32::try_from(body.len()).expect("message body under 2 GiB");
    out.extend_from_slice(&msg_id.to_le_bytes());
    out.extend_from_slice(&seqno.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
}

fn first_id(body: &[u8]) -> Option<u32> {
    Reader::new(body).read_u32().ok()
}

/// A validated `msg_container`. [`parse`](Self::parse) checks the whole
/// container before any message is handed out, so a bad container has no
/// partial effect.
#[derive(Clone, Copy, Debug)]
pub struct Container<'a> {
    count: usize,
    messages: &'a [u8],
}

impl<'a> Container<'a> {
    /// Parses a message body that starts with the `msg_container` id:
    /// at most [`MAX_CONTAINER_MESSAGES`], each inner length a multiple of 4
    /// inside the outer body, no nested container, no trailing bytes.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        r.expect_id(MSG_CONTAINER_ID)?;
        let count = r.read_vector_len(false, MESSAGE_HEADER_LEN)?;
        if count > MAX_CONTAINER_MESSAGES {
            return Err(Error::ContainerTooLarge {
                count,
                max: MAX_CONTAINER_MESSAGES,
            });
        }
        let messages = r.rest();
        for _ in 0..count {
            Message::read(&mut r)?;
        }
        r.finish()?;
        Ok(Self { count, messages })
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the container is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The messages, in order.
    pub fn iter(&self) -> impl Iterator<Item = Message<'a>> + 'a {
        let mut r = Reader::new(self.messages);
        // `parse` already read every message from these same bytes.
        (0..self.count).map_while(move |_| Message::read(&mut r).ok())
    }
}

/// Writes a `msg_container` in place, one message at a time, with no
/// intermediate buffer: the count is patched in by [`finish`](Self::finish).
#[derive(Debug)]
pub struct ContainerWriter {
    count_at: usize,
    count: u32,
}

impl ContainerWriter {
    /// Appends the container header to `out`.
    pub fn begin(out: &mut Vec<u8>) -> Self {
        out.extend_from_slice(&MSG_CONTAINER_ID.to_le_bytes());
        let count_at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        Self { count_at, count: 0 }
    }

    /// Appends one message whose body is already serialized.
    pub fn push(&mut self, out: &mut Vec<u8>, msg_id: i64, seqno: i32, body: &[u8]) {
        write_message(out, msg_id, seqno, body);
        self.count += 1;
    }

    /// Appends one message whose body `write` serializes straight into `out`.
    pub fn push_with(
        &mut self,
        out: &mut Vec<u8>,
        msg_id: i64,
        seqno: i32,
        write: impl FnOnce(&mut Vec<u8>),
    ) {
        out.extend_from_slice(&msg_id.to_le_bytes());
        out.extend_from_slice(&seqno.to_le_bytes());
        let len_at = out.len();
        out.extend_from_slice(&0u32.to_le_bytes());
        write(out);
        let len = (out.len() - len_at - 4) as u32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        self.count += 1;
    }

    /// Messages written so far.
    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// Patches the message count into the header.
    pub fn finish(self, out: &mut [u8]) {
        out[self.count_at..self.count_at + 4].copy_from_slice(&self.count.to_le_bytes());
    }
}

/// Parses `msg_copy`, returning the original message (which must not be a
/// container).
pub fn parse_msg_copy(body: &[u8]) -> Result<Message<'_>> {
    let mut r = Reader::new(body);
    r.expect_id(MSG_COPY_ID)?;
    let message = Message::read(&mut r)?;
    r.finish()?;
    Ok(message)
}

/// Parses `gzip_packed` and inflates its data, refusing to produce more than
/// `cap` bytes.
pub fn unpack_gzip(body: &[u8], cap: usize) -> Result<Vec<u8>> {
    let mut r = Reader::new(body);
    r.expect_id(GZIP_PACKED_ID)?;
    let packed = r.read_bytes()?;
    r.finish()?;
    inflate(packed, cap)
}

/// Inflates a gzip stream, refusing to produce more than `cap` bytes: memory
/// grows with the output actually produced, never with a size the stream
/// claims.
pub fn inflate(packed: &[u8], cap: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(packed.len().saturating_mul(4).min(cap));
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(packed)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| Error::GzipCorrupt)?;
    if out.len() > cap {
        return Err(Error::GzipTooLarge { cap });
    }
    Ok(out)
}

/// Compresses `data` as a gzip stream.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    enc.write_all(data).expect("write to Vec");
    enc.finish().expect("write to Vec")
}

/// Appends `gzip_packed` holding `data` compressed.
pub fn write_gzip_packed(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&GZIP_PACKED_ID.to_le_bytes());
    super::write_bytes(out, &deflate(data));
}

/// Bytes of a plain message's header: auth_key_id (0), msg_id, length.
pub const PLAIN_HEADER_LEN: usize = 20;

/// A plain (unencrypted) message, as used during auth key creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    /// Its msg_id.
    pub msg_id: i64,
    /// Its body.
    pub body: &'a [u8],
}

impl<'a> PlainMessage<'a> {
    /// The plain message inside a packet of the padded intermediate
    /// transport, which appends 0..=15 bytes the envelope does not count:
    /// the packet cut to the 20-byte header plus the length it states (the
    /// packet unchanged when that does not fit, for `parse` to refuse).
    pub fn strip_transport_padding(packet: &[u8]) -> &[u8] {
        let stated = packet
            .get(16..20)
            .map(|l| i32::from_le_bytes([l[0], l[1], l[2], l[3]]))
            .and_then(|l| usize::try_from(l).ok())
            .and_then(|l| l.checked_add(PLAIN_HEADER_LEN));
        match stated {
            Some(end) if end <= packet.len() && packet.len() - end < 16 => &packet[..end],
            _ => packet,
        }
    }

    /// Parses a whole transport packet as a plain message: auth_key_id must
    /// be 0 and message_length must equal the bytes that follow.
    pub fn parse(packet: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(packet);
        if r.read_i64()? != 0 {
            return Err(Error::NotPlain);
        }
        let msg_id = r.read_i64()?;
        let claimed = r.read_i32()?;
        let actual = r.remaining();
        if usize::try_from(claimed).ok() != Some(actual) {
            return Err(Error::BadPlainLength { claimed, actual });
        }
        Ok(Self {
            msg_id,
            body: r.read_rest(),
        })
    }

    /// Appends a plain message (header and body) to `out`.
    ///
    /// # Panics
    /// If `body` is longer than `i32::MAX` (a caller bug).
    pub fn write(out: &mut Vec<u8>, msg_id: i64, body: &[u8]) {
        let len = i32::try_from(body.len()).expect("plain body under 2 GiB");
        out.extend_from_slice(&0i64.to_le_bytes());
        out.extend_from_slice(&msg_id.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
    }
}
