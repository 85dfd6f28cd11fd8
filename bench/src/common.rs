//! What every implementation gets alike: the key, the clock, the request
//! and result bodies, and the server's packets.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtsender::buf::FrameBuf;
use mtsender::crypto::{decrypt_message_in_place, encrypt_message_in_place, AuthKey, Side};
use mtsender::tl::message::{write_message, ContainerWriter, RpcResult, MSG_CONTAINER_ID};
use mtsender::tl::Reader;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Requests in `encode_small`, responses in `decode_small`.
pub const SMALL_COUNT: usize = 10_000;
/// Bytes of each small request body and each small result.
pub const SMALL_LEN: usize = 64;
/// rpc_results per server container in `decode_small`.
pub const RESULTS_PER_PACKET: usize = 100;
/// The one request of `bulk_encrypt_512k`.
pub const BULK_ENCRYPT_LEN: usize = 512 * 1024;
/// The one result of `bulk_decrypt_1m`.
pub const BULK_DECRYPT_LEN: usize = 1024 * 1024;
/// Bytes per socket read in `decode_small`: what the adapters read at once.
pub const READ_LEN: usize = 64 * 1024;
/// The salt every session sends with.
pub const SALT: i64 = 0x1234_5678_9abc_def1;

/// The auth key bytes (any 256 bytes will do).
pub fn auth_key_bytes() -> [u8; 256] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(167).wrapping_add(13))
}

/// The core's view of [`auth_key_bytes`].
pub fn auth_key() -> AuthKey {
    AuthKey::from_bytes(auth_key_bytes())
}

/// A seeded generator.
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A monotonic instant and the Unix time it stands for. The Unix time is
/// the real one, because the peers read the system clock themselves.
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    /// The anchor.
    pub t0: Instant,
    /// Unix time at `t0`.
    pub unix: Duration,
}

impl Clocks {
    /// Now.
    pub fn now() -> Self {
        Self {
            t0: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("the clock is after 1970"),
        }
    }

    /// The first server msg_id: about now, ≡ 1 mod 4 (a response).
    pub fn server_msg_id_base(&self) -> i64 {
        ((self.unix.as_secs() as i64) << 32) | 1
    }
}

/// A `test.echo` request of exactly [`SMALL_LEN`] bytes; `tag` varies it.
pub fn small_body(tag: u8) -> Vec<u8> {
    let body = mtsender_testkit::client::echo_body(&[tag; 56]);
    debug_assert_eq!(body.len(), SMALL_LEN);
    body
}

/// A result object of `len` bytes whose constructor is not one any
/// implementation treats specially (gzip, rpc_error, updates).
pub fn result_body(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(29)).collect();
    v[..4].copy_from_slice(&0x5eed_0001_u32.to_le_bytes());
    v
}

/// A request body of `len` bytes for the bulk scenario: a constructor and
/// incompressible-looking bytes.
pub fn bulk_body(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_u32;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    v[..4].copy_from_slice(&0x0c0f_fee0_u32.to_le_bytes());
    v
}

/// Builds what a server sends: encrypted messages for one session, framed
/// for the intermediate transport (a 4-byte length, no tag from the server).
pub struct ServerPackets {
    key: AuthKey,
    session_id: i64,
    next_msg_id: i64,
    rng: ChaCha20Rng,
}

impl ServerPackets {
    /// For the session `session_id` on [`auth_key`].
    pub fn new(clocks: &Clocks, session_id: i64) -> Self {
        Self {
            key: auth_key(),
            session_id,
            next_msg_id: clocks.server_msg_id_base(),
            rng: rng(0x5e4e),
        }
    }

    fn msg_id(&mut self) -> i64 {
        let id = self.next_msg_id;
        self.next_msg_id += 4;
        id
    }

    /// One framed packet carrying `body` as its single message.
    pub fn packet(&mut self, body: &[u8], content: bool) -> Vec<u8> {
        let msg_id = self.msg_id();
        let seqno: i32 = if content { 1 } else { 0 };
        let mut buf = FrameBuf::with_capacity(64, body.len() + 1100);
        buf.append_with(|v| {
            v.extend_from_slice(&SALT.to_le_bytes());
            v.extend_from_slice(&self.session_id.to_le_bytes());
            v.extend_from_slice(&msg_id.to_le_bytes());
            v.extend_from_slice(&seqno.to_le_bytes());
            v.extend_from_slice(&(body.len() as i32).to_le_bytes());
            v.extend_from_slice(body);
        });
        encrypt_message_in_place(&self.key, Side::Server, &mut buf, &mut self.rng);
        let len = buf.len() as u32;
        buf.prepend(4).copy_from_slice(&len.to_le_bytes());
        buf.into_vec()
    }

    /// One framed packet: a container of `rpc_result`s answering `req_ids`
    /// with `result` each.
    pub fn results(&mut self, req_ids: &[i64], result: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(8 + req_ids.len() * (16 + 12 + result.len()));
        let mut w = ContainerWriter::begin(&mut body);
        for &req in req_ids {
            let id = self.msg_id();
            let mut inner = Vec::with_capacity(12 + result.len());
            RpcResult::write(&mut inner, req, result);
            w.push(&mut body, id, 1, &inner);
        }
        w.finish(&mut body);
        self.packet(&body, false)
    }

    /// One framed packet: an `rpc_result` answering `req_id` alone.
    pub fn result(&mut self, req_id: i64, result: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(12 + result.len());
        RpcResult::write(&mut body, req_id, result);
        self.packet(&body, true)
    }
}

/// What a client packet (the encrypted message, no transport envelope)
/// says: its session_id and the msg_id of each inner message whose body is
/// `wanted` (or of the message itself).
pub fn client_msg_ids(packet: &mut [u8], wanted: &dyn Fn(&[u8]) -> bool) -> (i64, Vec<i64>) {
    let plain = decrypt_message_in_place(&auth_key(), Side::Client, packet)
        .expect("the bench encrypted it with its own key");
    let mut r = Reader::new(plain);
    let _salt = r.read_i64().expect("header");
    let session_id = r.read_i64().expect("header");
    let msg_id = r.read_i64().expect("header");
    let _seq = r.read_i32().expect("header");
    let _len = r.read_i32().expect("header");
    let body = r.read_rest();
    let mut ids = Vec::new();
    if body[..4] == MSG_CONTAINER_ID.to_le_bytes() {
        let c = mtsender::tl::message::Container::parse(body).expect("valid container");
        for m in c.iter() {
            if wanted(m.body) {
                ids.push(m.msg_id);
            }
        }
    } else if wanted(body) {
        ids.push(msg_id);
    }
    (session_id, ids)
}

/// Appends a bare message to a container body being built by hand (for
/// the peer whose layer has no container writer).
pub fn push_bare(out: &mut Vec<u8>, msg_id: i64, seqno: i32, body: &[u8]) {
    write_message(out, msg_id, seqno, body);
}

/// Bytes of a framed intermediate packet after its 4-byte length.
pub fn strip_len(framed: &[u8]) -> &[u8] {
    &framed[4..]
}

/// How the server's packets reach the decoder in `decode_small`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// One socket read per packet.
    PerPacket,
    /// The byte stream cut into reads of [`READ_LEN`], frames across reads.
    Stream,
}

/// The socket reads carrying `wire` (framed packets).
pub fn reads(wire: &[Vec<u8>], mode: Reads) -> Vec<Vec<u8>> {
    match mode {
        Reads::PerPacket => wire.to_vec(),
        Reads::Stream => wire.concat().chunks(READ_LEN).map(<[u8]>::to_vec).collect(),
    }
}
