//! The server's side of a session, as far as a fuzz target needs it: it
//! holds the auth key, learns the client's session_id and msg_ids from the
//! client's own packets (checking that each one is valid), and seals input
//! bytes as server messages.
//!
//! Sealed bytes may carry placeholders, so that short inputs can refer to
//! values only known at run time: an 8-byte little-endian value at a
//! 4-aligned offset whose upper half is one of the `PH_*` tags is replaced
//! (its lower half kept as described).

use mtsender::crypto::{decrypt_message_in_place, AuthKey, Side};
use mtsender::tl::message::{Container, MSG_CONTAINER_ID};
use mtsender::tl::Reader;

/// A client msg_id seen: the lower half picks which (modulo the number
/// remembered, most recent last).
pub const PH_CLIENT_MSG_ID: u32 = 0x7e57_c1d0;
/// A server msg_id for the current time: `now << 32 | lower half`.
pub const PH_SERVER_MSG_ID: u32 = 0x7e57_5e77;
/// The client's session_id.
pub const PH_SESSION_ID: u32 = 0x7e57_5e55;

/// Client msg_ids remembered for [`PH_CLIENT_MSG_ID`].
const KEEP_IDS: usize = 64;

/// A message the client sent, as the server reads it.
#[derive(Debug)]
pub struct ClientMsg {
    pub msg_id: i64,
    pub seqno: i32,
    pub body: Vec<u8>,
}

pub struct Peer {
    pub key: AuthKey,
    pub session_id: Option<i64>,
    pub client_ids: Vec<i64>,
}

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

impl Peer {
    pub fn new(key: AuthKey) -> Self {
        Self {
            key,
            session_id: None,
            client_ids: Vec::new(),
        }
    }

    fn remember(&mut self, msg_id: i64) {
        if self.client_ids.len() == KEEP_IDS {
            self.client_ids.remove(0);
        }
        self.client_ids.push(msg_id);
    }

    /// Reads a packet the client sent (transport envelope removed, padded
    /// intermediate padding included). Packets under another key are not
    /// ours to read (`None`); under our key each must decrypt and hold
    /// well-formed messages with client msg_ids.
    pub fn learn(&mut self, packet: &[u8]) -> Option<Vec<ClientMsg>> {
        if packet.len() < 8 || le_i64(packet) != self.key.id() {
            return None;
        }
        let mut copy = packet.to_vec();
        let whole = 24 + (copy.len() - 24.min(copy.len())) / 16 * 16;
        copy.truncate(whole);
        let plain = decrypt_message_in_place(&self.key, Side::Client, &mut copy)
            .unwrap_or_else(|e| panic!("the client sent a packet it cannot have made: {e}"));
        let session_id = le_i64(&plain[8..]);
        self.session_id = Some(session_id);
        let msg_id = le_i64(&plain[16..]);
        let mut r = Reader::new(&plain[24..]);
        let seqno = r.read_i32().expect("decrypt checked the header");
        let body = &plain[32..];
        let mut out = Vec::new();
        if Reader::new(body).read_u32().ok() == Some(MSG_CONTAINER_ID) {
            let c = Container::parse(body)
                .unwrap_or_else(|e| panic!("the client sent a bad container: {e}"));
            assert!(c.len() >= 2, "a container of {} messages", c.len());
            for m in c.iter() {
                assert_eq!(m.msg_id % 4, 0, "client msg_id not divisible by 4");
                assert!(m.msg_id < msg_id, "a container older than its messages");
                self.remember(m.msg_id);
                out.push(ClientMsg {
                    msg_id: m.msg_id,
                    seqno: m.seqno,
                    body: m.body.to_vec(),
                });
            }
        } else {
            out.push(ClientMsg {
                msg_id,
                seqno,
                body: body.to_vec(),
            });
        }
        assert_eq!(msg_id % 4, 0, "client msg_id not divisible by 4");
        self.remember(msg_id);
        Some(out)
    }

    /// Replaces the placeholders in `bytes` (see the module docs).
    pub fn substitute(&self, bytes: &mut [u8], server_secs: i64) {
        let mut i = 0;
        while i + 8 <= bytes.len() {
            let v = le_i64(&bytes[i..]) as u64;
            let low = v & 0xffff_ffff;
            let replacement = match (v >> 32) as u32 {
                PH_CLIENT_MSG_ID if !self.client_ids.is_empty() => {
                    Some(self.client_ids[low as usize % self.client_ids.len()])
                }
                PH_SERVER_MSG_ID => Some(server_secs << 32 | low as i64),
                PH_SESSION_ID => self.session_id,
                _ => None,
            };
            if let Some(r) = replacement {
                bytes[i..i + 8].copy_from_slice(&r.to_le_bytes());
                i += 8;
            } else {
                i += 4;
            }
        }
    }

    /// Seals `plain` (zero-padded to whole blocks, placeholders replaced)
    /// as a message from the server; `own_session` first writes the
    /// client's session_id at its place.
    pub fn seal_plain(&self, plain: &[u8], own_session: bool, server_secs: i64) -> Vec<u8> {
        let mut p = plain.to_vec();
        p.resize(p.len().div_ceil(16) * 16, 0);
        self.substitute(&mut p, server_secs);
        if let (true, Some(sid), Some(field)) = (own_session, self.session_id, p.get_mut(8..16)) {
            field.copy_from_slice(&sid.to_le_bytes());
        }
        super::seal(&self.key, Side::Server, &p)
    }

    /// A well-formed server message around `body` (cut to whole words,
    /// placeholders replaced): salt 0, the client's session_id, msg_id
    /// `now << 32 | low`, `seqno`, and 12 + `extra_blocks` × 16 bytes of
    /// padding or a little more.
    pub fn seal_body(
        &self,
        body: &[u8],
        low: u32,
        seqno: i32,
        extra_blocks: u8,
        server_secs: i64,
    ) -> Vec<u8> {
        let body = &body[..body.len() / 4 * 4];
        let mut p = Vec::with_capacity(body.len() + 64);
        p.extend_from_slice(&0i64.to_le_bytes());
        p.extend_from_slice(&self.session_id.unwrap_or(0).to_le_bytes());
        p.extend_from_slice(&(server_secs << 32 | i64::from(low)).to_le_bytes());
        p.extend_from_slice(&seqno.to_le_bytes());
        p.extend_from_slice(&(body.len() as i32).to_le_bytes());
        let at = p.len();
        p.extend_from_slice(body);
        self.substitute(&mut p[at..], server_secs);
        let min = 12 + (16 - (p.len() + 12) % 16) % 16;
        let pad = min + 16 * usize::from(extra_blocks % 8);
        p.resize(p.len() + pad, 0);
        super::seal(&self.key, Side::Server, &p)
    }
}
