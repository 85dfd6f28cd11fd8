//! grammers-mtproto's side: `mtp::Encrypted` (push / finalize /
//! deserialize) and its `transport::Intermediate`, the way its sender
//! drives them (one `DequeBuffer` reused, headroom in front).

use crate::measure::Stopwatch;
use std::hint::black_box;
use std::time::Duration;

use grammers_crypto::DequeBuffer;
use grammers_mtproto::mtp::{
    self, Deserialization, Encrypted, Mtp, ENCRYPTED_PACKET_HEADER_LEN, MAX_TRANSPORT_HEADER_LEN,
    MESSAGE_CONTAINER_HEADER_LEN, PLAIN_PACKET_HEADER_LEN,
};
use grammers_mtproto::transport::{Intermediate, Transport};

use crate::common::{self, Clocks, ServerPackets};

/// The headroom grammers' sender reserves.
const LEADING: usize = MAX_TRANSPORT_HEADER_LEN
    + ENCRYPTED_PACKET_HEADER_LEN
    + PLAIN_PACKET_HEADER_LEN
    + MESSAGE_CONTAINER_HEADER_LEN;
/// The buffer size grammers' sender uses.
const MAXIMUM_DATA: usize = (1024 * 1024) + (8 * 1024);

/// The crate's version, for the report.
pub const VERSION: &str = "grammers-mtproto 0.11.0";

/// Compression off, as for us; first salt 0 so that it does not stop
/// packing to fetch salts first.
fn new_mtp() -> Encrypted {
    mtp::Encrypted::build()
        .compression_threshold(None)
        .finish(common::auth_key_bytes())
}

fn new_buffer() -> DequeBuffer<u8> {
    DequeBuffer::with_capacity(MAXIMUM_DATA, LEADING)
}

/// Finalizes, frames and "sends" what is in `buffer`.
fn flush(mtp: &mut Encrypted, t: &mut Intermediate, buffer: &mut DequeBuffer<u8>) -> usize {
    mtp.finalize(buffer);
    let n = if buffer.is_empty() {
        0
    } else {
        t.pack(buffer);
        black_box(&buffer[..]).len()
    };
    buffer.clear();
    n
}

/// `encode_small`.
pub struct EncodeSmall {
    mtp: Encrypted,
    transport: Intermediate,
    bodies: Vec<Vec<u8>>,
    buffer: DequeBuffer<u8>,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl EncodeSmall {
    /// `count` requests of [`common::SMALL_LEN`] bytes.
    pub fn new(count: usize) -> Self {
        Self {
            mtp: new_mtp(),
            transport: Intermediate::new(),
            bodies: (0..count).map(|i| common::small_body(i as u8)).collect(),
            buffer: new_buffer(),
            wire_bytes: 0,
        }
    }

    /// One run.
    pub fn run(&mut self) -> Duration {
        let (mtp, t) = (&mut self.mtp, &mut self.transport);
        let buffer = &mut self.buffer;
        let mut total = 0;
        let start = Stopwatch::start();
        for b in &self.bodies {
            while mtp.push(buffer, b).is_none() {
                total += flush(mtp, t, buffer);
            }
        }
        total += flush(mtp, t, buffer);
        let elapsed = start.elapsed();
        self.wire_bytes = total;
        elapsed
    }
}

fn session_id_of(mtp: &mut Encrypted) -> i64 {
    let mut buffer = new_buffer();
    mtp.push(&mut buffer, &common::small_body(0))
        .expect("an empty buffer takes a request");
    mtp.finalize(&mut buffer);
    let mut packet = buffer[..].to_vec();
    common::client_msg_ids(&mut packet, &|_| false).0
}

/// Receives `wire` packets as grammers' sender does: read into its buffer,
/// unpack the transport in place, deserialize.
fn receive(
    mtp: &mut Encrypted,
    t: &mut Intermediate,
    rbuf: &mut Vec<u8>,
    wire: &[Vec<u8>],
) -> (usize, usize) {
    let (mut results, mut bytes) = (0, 0);
    for w in wire {
        // The socket read (ours copies the same bytes in `feed`).
        rbuf.clear();
        rbuf.extend_from_slice(w);
        let off = t.unpack(rbuf).expect("valid frame");
        let out = mtp
            .deserialize(&mut rbuf[off.data_range])
            .expect("valid packet");
        for d in out {
            if let Deserialization::RpcResult(r) = d {
                results += 1;
                bytes += black_box(r.body).len();
            }
        }
    }
    (results, bytes)
}

/// Socket reads that may split frames or hold several: each appended to
/// `rbuf`, every complete frame unpacked and deserialized in place, the
/// consumed bytes dropped once per read. Returns the results delivered.
fn receive_reads(
    mtp: &mut Encrypted,
    t: &mut Intermediate,
    rbuf: &mut Vec<u8>,
    reads: &[Vec<u8>],
) -> usize {
    let mut results = 0;
    rbuf.clear();
    for read in reads {
        rbuf.extend_from_slice(read);
        let mut pos = 0;
        loop {
            // `unpack` trusts a length that the buffer holds without its
            // 4-byte prefix, so the harness waits for whole frames.
            let rest = &rbuf[pos..];
            if rest.len() < 4 {
                break;
            }
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if rest.len() < 4 + len {
                break;
            }
            let off = t.unpack(&mut rbuf[pos..]).expect("valid frame");
            let range = pos + off.data_range.start..pos + off.data_range.end;
            let out = mtp.deserialize(&mut rbuf[range]).expect("valid packet");
            for d in out {
                if let Deserialization::RpcResult(r) = d {
                    results += 1;
                    black_box(r.body);
                }
            }
            pos += off.next_offset;
        }
        rbuf.drain(..pos);
    }
    results
}

/// Sends the acks `deserialize` queued, so that they do not pile up
/// across runs.
fn send_acks(mtp: &mut Encrypted) {
    let mut buffer = new_buffer();
    mtp.push(&mut buffer, &common::small_body(0));
    mtp.finalize(&mut buffer);
}

/// `decode_small`.
pub struct DecodeSmall {
    mtp: Encrypted,
    transport: Intermediate,
    reads: Vec<Vec<u8>>,
    rbuf: Vec<u8>,
    /// Results delivered in the last run.
    pub delivered: usize,
}

impl DecodeSmall {
    /// The same server packets as ours, for grammers' session_id, in the
    /// same reads.
    pub fn new(clocks: Clocks, count: usize, mode: common::Reads) -> Self {
        let mut mtp = new_mtp();
        let session_id = session_id_of(&mut mtp);
        let base = clocks.server_msg_id_base() & !0xffff_ffff;
        let ids: Vec<i64> = (0..count as i64).map(|i| base + 4 * i + 4).collect();
        let result = common::result_body(common::SMALL_LEN);
        let mut server = ServerPackets::new(&clocks, session_id);
        let wire: Vec<Vec<u8>> = ids
            .chunks(common::RESULTS_PER_PACKET)
            .map(|c| server.results(c, &result))
            .collect();
        Self {
            mtp,
            transport: Intermediate::new(),
            reads: common::reads(&wire, mode),
            rbuf: Vec::with_capacity(MAXIMUM_DATA),
            delivered: 0,
        }
    }

    /// One run.
    pub fn run(&mut self) -> Duration {
        send_acks(&mut self.mtp);
        let start = Stopwatch::start();
        let n = receive_reads(
            &mut self.mtp,
            &mut self.transport,
            &mut self.rbuf,
            &self.reads,
        );
        let t = start.elapsed();
        self.delivered = n;
        t
    }
}

/// `bulk_encrypt_512k`.
pub struct BulkEncrypt {
    mtp: Encrypted,
    transport: Intermediate,
    body: Vec<u8>,
    buffer: DequeBuffer<u8>,
    /// Wire bytes of the last run.
    pub wire_bytes: usize,
}

impl BulkEncrypt {
    /// A request of `len` bytes.
    pub fn new(len: usize) -> Self {
        let mut s = Self {
            mtp: new_mtp(),
            transport: Intermediate::new(),
            body: common::bulk_body(len),
            buffer: new_buffer(),
            wire_bytes: 0,
        };
        // The transport tag goes out first, as for us.
        s.mtp.push(&mut s.buffer, &common::small_body(0));
        flush(&mut s.mtp, &mut s.transport, &mut s.buffer);
        s
    }

    /// One run.
    pub fn run(&mut self) -> Duration {
        let start = Stopwatch::start();
        self.mtp
            .push(&mut self.buffer, &self.body)
            .expect("an empty buffer takes the request");
        let n = flush(&mut self.mtp, &mut self.transport, &mut self.buffer);
        let elapsed = start.elapsed();
        self.wire_bytes = n;
        elapsed
    }
}

/// `bulk_decrypt_1m`.
pub struct BulkDecrypt {
    mtp: Encrypted,
    transport: Intermediate,
    wire: Vec<Vec<u8>>,
    rbuf: Vec<u8>,
    /// Bytes of the result delivered in the last run.
    pub delivered: usize,
}

impl BulkDecrypt {
    /// A result of `len` bytes, or why grammers cannot take it (it panics
    /// on messages over its container size cap, 1,044,456 bytes less
    /// overhead, below a 1 MiB result).
    pub fn new(clocks: Clocks, len: usize) -> Result<Self, String> {
        let mut mtp = new_mtp();
        let session_id = session_id_of(&mut mtp);
        let mut server = ServerPackets::new(&clocks, session_id);
        let req = (clocks.server_msg_id_base() & !0xffff_ffff) + 4;
        let wire = vec![server.result(req, &common::result_body(len))];
        let mut s = Self {
            mtp,
            transport: Intermediate::new(),
            wire,
            rbuf: Vec::with_capacity(len + 4096),
            delivered: 0,
        };
        // Probe once, quietly: a panic means the peer cannot do it.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.run()));
        std::panic::set_hook(hook);
        match probe {
            Ok(_) if s.delivered == len => Ok(s),
            Ok(_) => Err(format!("delivered {} of {len} bytes", s.delivered)),
            Err(e) => Err(format!(
                "panics: {}",
                e.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            )),
        }
    }

    /// One run.
    pub fn run(&mut self) -> Duration {
        send_acks(&mut self.mtp);
        let start = Stopwatch::start();
        let (_, bytes) = receive(
            &mut self.mtp,
            &mut self.transport,
            &mut self.rbuf,
            &self.wire,
        );
        let t = start.elapsed();
        self.delivered = bytes;
        t
    }
}
