//! The encrypted session over one auth key: message ids, sequence numbers,
//! acks, containers, gzip, salts, every service message, and the inbound
//! checks of Telegram's security guidelines.
//!
//! A [`Session`] outlives connections: MTProto sessions survive TCP drops,
//! and so do the requests in flight. The caller (the sender) moves bytes:
//!
//! - [`Session::push_request`] queues a request; [`Session::poll_packet`]
//!   packs what is queued (requests, acks, service messages) into one
//!   encrypted packet, in a container when there is more than one message.
//! - [`Session::handle_packet`] decrypts and checks a packet from the server
//!   and turns it into [`SessionEvent`]s ([`Session::poll_event`]): results,
//!   acks, updates (in arrival order), a new session, pongs.
//! - [`Session::poll_timeout`] / [`Session::handle_timeout`] drive the
//!   stand-alone acks and the fetching of future salts.
//! - [`Session::on_connection_lost`] / [`Session::on_connected`] apply the
//!   request contract across drops: what was sent but not acknowledged is
//!   uncertain and is asked about with `msgs_state_req` before any resend.
//!
//! Requests are resent only when the server says it did not process them
//! (every `bad_msg_notification` and `bad_server_salt` means the message was
//! ignored; `msgs_state_info` says "not received"), so the sender never makes
//! the server run a request twice. After `new_session_created`, unanswered
//! requests sent before `first_msg_id` are resent and marked as possibly
//! executed, since the server forgot what it ran.

pub mod ids;
mod inbound;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::num::NonZeroI64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::buf::FrameBuf;
use crate::crypto::{self, AuthKey, DecryptError, Side};
use crate::tl::message::{write_gzip_packed, ContainerWriter, MAX_CONTAINER_MESSAGES};
use crate::tl::{functions, types, Identifiable, Serialize};
pub use ids::{Clock, MsgIdError, MsgIdGen, ReplayWindow, SeqNo};
use ids::{MsgIdMap, MsgIdSlabMap};

/// Caller-chosen identity of a request, echoed in its events.
pub type ReqId = u64;

/// Settings of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Most messages packed into one container (at most 1024).
    pub max_container_messages: usize,
    /// Most body bytes packed into one packet; a larger single message is
    /// still sent alone.
    pub max_packet_body: usize,
    /// Request bodies of at least this many bytes are sent as `gzip_packed`
    /// when that is smaller.
    pub gzip_min_len: usize,
    /// Longest a received message waits for its ack to ride on another
    /// packet before a stand-alone `msgs_ack` goes out.
    pub ack_delay: Duration,
    /// Pending acks that trigger a stand-alone `msgs_ack` at once.
    pub max_pending_acks: usize,
    /// Server msg_ids remembered to drop duplicates and replays.
    pub replay_window: usize,
    /// Most bytes a `gzip_packed` body may inflate to.
    pub inflate_cap: usize,
    /// Fetch future salts when the current one has less than this left.
    pub salt_refresh_ahead: Duration,
    /// Whether the clock offset given to [`Session::new`] is known to be
    /// right (it came from the handshake just now). Then inbound msg_ids are
    /// checked against the server time window (−300 s / +30 s) from the
    /// first packet. When `false` (a session on a restored key), the first
    /// authentic server message sets the clock, and the window applies from
    /// then on.
    pub time_synced: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_container_messages: 256,
            max_packet_body: 1 << 20,
            gzip_min_len: 512,
            ack_delay: Duration::from_millis(500),
            max_pending_acks: 16,
            replay_window: 1024,
            inflate_cap: 16 << 20,
            salt_refresh_ahead: Duration::from_secs(600),
            time_synced: true,
        }
    }
}

pub use crate::error::RpcError;

/// What the session reports to its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The answer to a request.
    Result {
        /// The request.
        req: ReqId,
        /// Its result's TL bytes (inflated if it was gzipped), or the error.
        result: Result<Vec<u8>, RpcError>,
        /// Set when the request had to be resent after the server forgot
        /// the session: it may have run twice.
        maybe_repeated: bool,
    },
    /// The server acknowledged receipt of a request.
    Acked {
        /// The request.
        req: ReqId,
    },
    /// Anything that is neither a service message nor an answer, in the
    /// order it arrived.
    Update {
        /// Its TL bytes.
        body: Vec<u8>,
    },
    /// The server created a new session: updates may have been missed.
    NewSession {
        /// The first client msg_id the new session saw.
        first_msg_id: i64,
        /// Requests sent before it and unanswered, now resent.
        resent: usize,
    },
    /// A pong for [`Session::ping`].
    Pong {
        /// The ping's id.
        ping_id: i64,
    },
    /// The answer to `destroy_session`.
    SessionDestroyed {
        /// The session.
        session_id: i64,
        /// Whether it existed.
        existed: bool,
    },
    /// The server did not process a request and it cannot be resent safely
    /// (a bad_msg_notification code with no defined reaction).
    Failed {
        /// The request.
        req: ReqId,
        /// The notification's error code.
        code: i32,
    },
}

/// Why an inbound packet was dropped. Each is one check of Telegram's
/// security guidelines; a dropped packet has no effect on the session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InboundError {
    /// Length, auth_key_id, msg_key, msg_len or padding check failed.
    #[error("decryption: {0}")]
    Decrypt(#[from] DecryptError),
    /// The packet belongs to another session.
    #[error("session_id mismatch")]
    WrongSessionId,
    /// msg_id check failed (even, outside the time window, duplicate, too old).
    #[error("msg_id: {0}")]
    MsgId(#[from] MsgIdError),
    /// The decrypted message is not well-formed TL.
    #[error("malformed message: {0}")]
    Malformed(#[from] crate::tl::Error),
}

/// What `auth.bindTempAuthKey` needs. The encrypted binding message
/// carries the msg_id of the request itself, so it is built when the
/// message is packed (and again on every resend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindParams {
    /// The permanent key the session's temporary key is bound to.
    pub perm_key: AuthKey,
    /// A random nonce.
    pub nonce: i64,
    /// When the binding ends (server unix time), at most the temporary
    /// key's own expiry.
    pub expires_at: i32,
}

/// What a sent message was, to know how to handle its answer or resend it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Rpc(ReqId),
    /// `auth.bindTempAuthKey`, answered like a request.
    Bind(ReqId, Box<BindParams>),
    Ping(i64),
    FutureSalts,
    StateReq(Vec<i64>),
    DestroySession(i64),
    /// Sent once, never resent (acks, state answers, resend requests).
    Fire,
}

impl Kind {
    /// Tracked kinds all expect an answer, so they are content related.
    fn content_related(&self) -> bool {
        !matches!(self, Kind::Fire)
    }
}

/// A message body: the session's own, or shared with the caller (a
/// request the sender also keeps for a retry elsewhere), so that one body
/// is not held twice.
#[derive(Clone, Debug)]
enum Body {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Body::Owned(v) => v,
            Body::Shared(a) => a,
        }
    }
}

impl Body {
    fn into_vec(self) -> Vec<u8> {
        match self {
            Body::Owned(v) => v,
            Body::Shared(a) => a.to_vec(),
        }
    }
}

/// A message waiting to be packed.
#[derive(Debug)]
struct Queued {
    kind: Kind,
    body: Body,
    content_related: bool,
    /// Sent again after the server lost the original.
    maybe_repeated: bool,
}

/// A content message sent and not yet answered.
#[derive(Debug)]
struct Sent {
    kind: Kind,
    body: Body,
    /// The container it went in (msg_ids are never 0).
    container: Option<NonZeroI64>,
    acked: bool,
    /// Sent on a connection that dropped before the server acknowledged it.
    uncertain: bool,
    maybe_repeated: bool,
}

/// Bytes a packet may grow by after its messages: MTProto padding (at most
/// 12 + 15 + 7 × 16 as [`crypto::encrypt_message_in_place`] draws it) and
/// a transport envelope (length, CRC, up to 15 bytes of transport padding).
const PACKET_TAIL_ROOM: usize = 160;

/// The encrypted session over one auth key. See the [module docs](self).
pub struct Session {
    config: SessionConfig,
    auth_key: AuthKey,
    session_id: i64,
    salt: i64,
    future_salts: VecDeque<types::FutureSalt>,
    salts_requested: bool,
    msg_ids: MsgIdGen,
    seq: SeqNo,
    rng: ChaCha20Rng,
    queue: VecDeque<Queued>,
    sent: MsgIdSlabMap<Sent>,
    /// Each container's tracked messages still unanswered, ascending.
    containers: MsgIdMap<VecDeque<i64>>,
    pending_acks: Vec<i64>,
    ack_deadline: Option<Instant>,
    replay: ReplayWindow,
    synced: bool,
    /// Highest server msg_id seen, for msgs_state_req answers.
    max_server_msg_id: i64,
    /// The largest msg_id this session has handed out.
    max_msg_id: i64,
    events: VecDeque<SessionEvent>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("auth_key_id", &self.auth_key.id())
            .field("session_id", &self.session_id)
            .field("queued", &self.queue.len())
            .field("in_flight", &self.sent.len())
            .finish_non_exhaustive()
    }
}

/// Why [`Session::poll_timeout`] wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionTimer {
    /// Pending acks are due.
    Ack,
}

impl Session {
    /// A new session (random session_id) on `auth_key`, with the first
    /// salt and the server clock offset from the handshake.
    pub fn new(
        config: SessionConfig,
        auth_key: AuthKey,
        salt: i64,
        clock: Clock,
        time_offset: i64,
        seed: [u8; 32],
    ) -> Self {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let session_id = rng.next_u64() as i64;
        Self {
            replay: ReplayWindow::new(config.replay_window),
            synced: config.time_synced,
            config,
            auth_key,
            session_id,
            salt,
            future_salts: VecDeque::new(),
            salts_requested: false,
            msg_ids: MsgIdGen::new(clock, time_offset),
            seq: SeqNo::default(),
            rng,
            queue: VecDeque::new(),
            sent: MsgIdSlabMap::default(),
            containers: MsgIdMap::default(),
            pending_acks: Vec::new(),
            ack_deadline: None,
            max_server_msg_id: 0,
            max_msg_id: 0,
            events: VecDeque::new(),
        }
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The salt messages are sent with.
    pub fn salt(&self) -> i64 {
        self.salt
    }

    /// Server time minus local time, seconds.
    pub fn time_offset(&self) -> i64 {
        self.msg_ids.offset_secs()
    }

    /// The auth key.
    pub fn auth_key(&self) -> &AuthKey {
        &self.auth_key
    }

    /// Requests queued or in flight.
    pub fn in_flight(&self) -> usize {
        self.queue
            .iter()
            .filter(|q| matches!(q.kind, Kind::Rpc(_)))
            .count()
            + self
                .sent
                .values()
                .filter(|s| matches!(s.kind, Kind::Rpc(_)))
                .count()
    }

    /// Entries held in the session's tables: queued and sent messages,
    /// containers, pending acks. Back to 0 when nothing is in flight, which
    /// tests use to show that nothing leaks.
    pub fn held_entries(&self) -> usize {
        self.queue.len() + self.sent.len() + self.containers.len() + self.pending_acks.len()
    }

    /// Whether anything awaits [`poll_packet`](Self::poll_packet).
    pub fn wants_to_send(&self) -> bool {
        !self.queue.is_empty() || self.pending_acks.len() >= self.config.max_pending_acks
    }

    /// Queues a request (serialized TL) to be sent as a content message.
    pub fn push_request(&mut self, req: ReqId, body: Vec<u8>) {
        let body = match self.gzipped(&body) {
            Some(packed) => packed,
            None => body,
        };
        self.push_rpc(req, Body::Owned(body));
    }

    /// Like [`push_request`](Self::push_request) with a body the caller
    /// keeps too (for a retry elsewhere): the session holds a reference,
    /// not a copy, unless it sends the body gzipped.
    pub fn push_shared_request(&mut self, req: ReqId, body: Arc<[u8]>) {
        let body = match self.gzipped(&body) {
            Some(packed) => Body::Owned(packed),
            None => Body::Shared(body),
        };
        self.push_rpc(req, body);
    }

    fn push_rpc(&mut self, req: ReqId, body: Body) {
        self.queue.push_back(Queued {
            kind: Kind::Rpc(req),
            body,
            content_related: true,
            maybe_repeated: false,
        });
    }

    /// Queues `auth.bindTempAuthKey`, binding this session's (temporary)
    /// key to `params.perm_key`. Its answer (`boolTrue`) comes as the
    /// [`SessionEvent::Result`] of `req`.
    pub fn push_bind(&mut self, req: ReqId, params: BindParams) {
        self.queue_service(Kind::Bind(req, Box::new(params)), Vec::new());
    }

    /// The body of `auth.bindTempAuthKey` for a message with `msg_id`.
    fn bind_body(&mut self, p: &BindParams, msg_id: i64) -> Vec<u8> {
        let inner = types::BindAuthKeyInner {
            nonce: p.nonce,
            temp_auth_key_id: self.auth_key.id(),
            perm_auth_key_id: p.perm_key.id(),
            temp_session_id: self.session_id,
            expires_at: p.expires_at,
        }
        .to_bytes();
        let mut plain = vec![0u8; 16];
        self.rng.fill_bytes(&mut plain);
        plain.extend_from_slice(&msg_id.to_le_bytes());
        plain.extend_from_slice(&0i32.to_le_bytes());
        plain.extend_from_slice(&(inner.len() as i32).to_le_bytes());
        plain.extend_from_slice(&inner);
        let mut padding = vec![0u8; (16 - plain.len() % 16) % 16];
        self.rng.fill_bytes(&mut padding);
        functions::BindTempAuthKey {
            perm_auth_key_id: p.perm_key.id(),
            nonce: p.nonce,
            expires_at: p.expires_at,
            encrypted_message: crypto::encrypt_v1(&p.perm_key, &plain, &padding),
        }
        .to_bytes()
    }

    /// Queues a `ping_delay_disconnect` (or a plain `ping` when
    /// `disconnect_delay` is `None`).
    pub fn ping(&mut self, ping_id: i64, disconnect_delay: Option<i32>) {
        let body = match disconnect_delay {
            Some(d) => functions::PingDelayDisconnect {
                ping_id,
                disconnect_delay: d,
            }
            .to_bytes(),
            None => functions::Ping { ping_id }.to_bytes(),
        };
        self.queue_service(Kind::Ping(ping_id), body);
    }

    /// Queues `destroy_session` for another session of this key.
    pub fn destroy_session(&mut self, session_id: i64) {
        let body = functions::DestroySession { session_id }.to_bytes();
        self.queue_service(Kind::DestroySession(session_id), body);
    }

    /// Queues a message sent once and never tracked: acks (not content
    /// related) and answers or requests about other messages (content
    /// related, as every message but acks and containers is).
    fn queue_fire(&mut self, body: Vec<u8>, content_related: bool) {
        self.queue.push_back(Queued {
            kind: Kind::Fire,
            body: Body::Owned(body),
            content_related,
            maybe_repeated: false,
        });
    }

    fn queue_service(&mut self, kind: Kind, body: Vec<u8>) {
        let content_related = kind.content_related();
        self.queue.push_back(Queued {
            kind,
            body: Body::Owned(body),
            content_related,
            maybe_repeated: false,
        });
    }

    /// `body` as `gzip_packed`, when it is long enough to try and that
    /// comes out smaller.
    fn gzipped(&self, body: &[u8]) -> Option<Vec<u8>> {
        if body.len() < self.config.gzip_min_len {
            return None;
        }
        let mut packed = Vec::new();
        write_gzip_packed(&mut packed, body);
        (packed.len() < body.len()).then_some(packed)
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout), and why.
    pub fn poll_timeout(&self) -> Option<(Instant, SessionTimer)> {
        self.ack_deadline.map(|d| (d, SessionTimer::Ack))
    }

    /// Makes due acks ready to send.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ack_deadline.is_some_and(|d| now >= d) {
            self.ack_deadline = None;
            self.queue_acks();
        }
    }

    fn queue_acks(&mut self) {
        // At most 8192 ids per msgs_ack.
        while !self.pending_acks.is_empty() {
            let n = self.pending_acks.len().min(8192);
            let msg_ids: Vec<i64> = self.pending_acks.drain(..n).collect();
            self.queue_fire(types::MsgsAck { msg_ids }.to_bytes(), false);
        }
    }

    /// Picks the salt valid now from the future salts, and asks for more
    /// when the known ones end within `salt_refresh_ahead`. The request is
    /// queued like any message: nothing waits for it.
    fn refresh_salt(&mut self, now: Instant) {
        let server_now = self.msg_ids.server_secs(now);
        while self
            .future_salts
            .front()
            .is_some_and(|s| (s.valid_until as i64) <= server_now)
        {
            self.future_salts.pop_front();
        }
        if let Some(s) = self.future_salts.front() {
            if (s.valid_since as i64) <= server_now {
                self.salt = s.salt;
            }
        }
        let horizon = server_now + self.config.salt_refresh_ahead.as_secs() as i64;
        let covered = self
            .future_salts
            .back()
            .is_some_and(|s| (s.valid_until as i64) > horizon);
        if !covered && !self.salts_requested {
            self.salts_requested = true;
            let body = functions::GetFutureSalts { num: 32 }.to_bytes();
            self.queue_service(Kind::FutureSalts, body);
        }
    }

    /// Packs queued messages and due acks into one encrypted packet in `out`
    /// (cleared first). Returns `false`, leaving `out` empty, when there is
    /// nothing to send.
    pub fn poll_packet(&mut self, now: Instant, out: &mut FrameBuf) -> bool {
        if !self.build_packet(now, out) {
            return false;
        }
        crypto::encrypt_message_in_place(&self.auth_key, Side::Client, out, &mut self.rng);
        true
    }

    /// [`poll_packet`](Self::poll_packet) into each of `out` in turn, until
    /// they are all used or there is nothing more to send; returns how many
    /// were filled. The packets are encrypted together, which is several
    /// times faster on CPUs with AES-NI when a burst fills more than one.
    pub fn poll_packets(&mut self, now: Instant, out: &mut [FrameBuf]) -> usize {
        let mut n = 0;
        while n < out.len() && self.build_packet(now, &mut out[n]) {
            n += 1;
        }
        crypto::encrypt_messages_in_place(
            &self.auth_key,
            Side::Client,
            &mut out[..n],
            &mut self.rng,
        );
        n
    }

    /// The plaintext of the next packet in `out` (cleared first), or `false`
    /// when there is nothing to send.
    fn build_packet(&mut self, now: Instant, out: &mut FrameBuf) -> bool {
        out.clear();
        if !self.queue.is_empty() {
            self.refresh_salt(now);
        }
        if !self.pending_acks.is_empty() && !self.queue.is_empty() {
            // Acks ride along with what goes out anyway.
            self.ack_deadline = None;
            self.queue_acks();
        } else if self.pending_acks.len() >= self.config.max_pending_acks {
            self.ack_deadline = None;
            self.queue_acks();
        }
        if self.queue.is_empty() {
            return false;
        }
        // Take what fits in one packet.
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(q) = self.queue.front() {
            let len = q.body.len() + 16;
            if !batch.is_empty()
                && (batch.len()
                    >= self
                        .config
                        .max_container_messages
                        .min(MAX_CONTAINER_MESSAGES)
                    || bytes + len > self.config.max_packet_body)
            {
                break;
            }
            bytes += len;
            // front() was Some just above.
            batch.push(self.queue.pop_front().expect("front exists"));
        }
        if self.queue.is_empty() && self.queue.capacity() > 256 {
            // A burst is out: give its queue back rather than keep room
            // for it for the session's life.
            self.queue = VecDeque::new();
        }

        let salt = self.salt;
        let session_id = self.session_id;
        // Room for the whole packet at once: header, container, messages,
        // the largest random padding, the transport's envelope.
        let room = 32 + 8 + bytes + PACKET_TAIL_ROOM;
        out.append_with(|v| {
            v.reserve(room);
            v.extend_from_slice(&salt.to_le_bytes());
            v.extend_from_slice(&session_id.to_le_bytes());
            v.extend_from_slice(&[0; 16]); // msg_id, seq_no, length: below
        });
        let header_at = out.as_slice().len() - 16;
        let (outer_id, outer_seq);
        if batch.len() == 1 {
            let mut q = batch.pop().expect("one message");
            outer_id = self.next_msg_id(now);
            outer_seq = self.seq.next(q.content_related);
            if let Kind::Bind(_, p) = &q.kind {
                let p = p.clone();
                q.body = Body::Owned(self.bind_body(&p, outer_id));
            }
            out.extend_from_slice(&q.body);
            self.record(outer_id, None, q);
        } else {
            let mut inner = Vec::with_capacity(batch.len());
            for mut q in batch {
                let id = self.next_msg_id(now);
                let seq = self.seq.next(q.content_related);
                if let Kind::Bind(_, p) = &q.kind {
                    let p = p.clone();
                    q.body = Body::Owned(self.bind_body(&p, id));
                }
                inner.push((id, seq, q));
            }
            // The container's id comes after its messages'.
            outer_id = self.next_msg_id(now);
            outer_seq = self.seq.next(false);
            out.append_with(|v| {
                let mut w = ContainerWriter::begin(v);
                for (id, seq, q) in &inner {
                    w.push(v, *id, *seq, &q.body);
                }
                w.finish(v);
            });
            // Only tracked messages belong to the container's entry: it
            // goes away with the last of them.
            let tracked: Vec<i64> = inner
                .iter()
                .filter(|(_, _, q)| !matches!(q.kind, Kind::Fire))
                .map(|(id, _, _)| *id)
                .collect();
            for (id, _, q) in inner {
                self.record(id, NonZeroI64::new(outer_id), q);
            }
            if !tracked.is_empty() {
                self.containers.insert(outer_id, tracked.into());
            }
        }
        let body_len = (out.len() - header_at - 16) as i32;
        let hdr = &mut out.as_mut_slice()[header_at..header_at + 16];
        hdr[..8].copy_from_slice(&outer_id.to_le_bytes());
        hdr[8..12].copy_from_slice(&outer_seq.to_le_bytes());
        hdr[12..].copy_from_slice(&body_len.to_le_bytes());
        true
    }

    /// A msg_id for a new message. After a clock correction the generator
    /// may go back to ids still in flight; those are skipped, so that no
    /// message takes the place of another one in `sent`.
    fn next_msg_id(&mut self, now: Instant) -> i64 {
        loop {
            // Ids rise by at least 4 per call and few are tracked: this ends.
            let id = self.msg_ids.next(now);
            // Above every id handed out so far, none in flight can match.
            if id > self.max_msg_id {
                self.max_msg_id = id;
                return id;
            }
            if !self.sent.contains_key(&id) && !self.containers.contains_key(&id) {
                return id;
            }
        }
    }

    /// Remembers a sent message that expects an answer.
    fn record(&mut self, msg_id: i64, container: Option<NonZeroI64>, q: Queued) {
        if matches!(q.kind, Kind::Fire) {
            return;
        }
        self.sent.insert(
            msg_id,
            Sent {
                kind: q.kind,
                body: q.body,
                container,
                acked: false,
                uncertain: false,
                maybe_repeated: q.maybe_repeated,
            },
        );
    }

    /// Takes a sent message back into the queue (front, in msg_id order)
    /// to go out again with a new msg_id.
    fn requeue(&mut self, msg_ids: &[i64]) {
        let mut ids: Vec<i64> = msg_ids
            .iter()
            .flat_map(|id| match self.containers.remove(id) {
                Some(inner) => inner.into(),
                None => vec![*id],
            })
            .collect();
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            if let Some(s) = self.take_sent(id) {
                let content_related = s.kind.content_related();
                self.queue.push_front(Queued {
                    kind: s.kind,
                    body: s.body,
                    content_related,
                    maybe_repeated: s.maybe_repeated,
                });
            }
        }
    }

    /// Removes a sent message, and its place in its container.
    fn take_sent(&mut self, msg_id: i64) -> Option<Sent> {
        let s = self.sent.remove(&msg_id)?;
        if let Some(c) = s.container {
            self.forget_in_container(c.get(), msg_id);
        }
        Some(s)
    }

    /// Removes every sent message of `kind`.
    fn take_sent_of(&mut self, kind: &Kind) {
        let ids: Vec<i64> = self
            .sent
            .iter()
            .filter(|(_, s)| s.kind == *kind)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.take_sent(id);
        }
    }

    fn forget_in_container(&mut self, container: i64, msg_id: i64) {
        if let Some(inner) = self.containers.get_mut(&container) {
            // Ids went in ascending; answers mostly come in that order too,
            // which makes this a pop from the front.
            if inner.front() == Some(&msg_id) {
                inner.pop_front();
            } else {
                let at = match inner.binary_search(&msg_id) {
                    Ok(at) => Some(at),
                    Err(_) => inner.iter().position(|&i| i == msg_id),
                };
                if let Some(at) = at {
                    inner.remove(at);
                }
            }
            if inner.is_empty() {
                self.containers.remove(&container);
            }
        }
    }

    /// The connection carrying this session dropped. Messages sent and not
    /// yet acknowledged are now uncertain: the server may or may not have
    /// them. Pending acks are kept for the next connection.
    pub fn on_connection_lost(&mut self) {
        // A ping only ever asked about the connection that is gone.
        let pings: Vec<i64> = self
            .sent
            .iter()
            .filter(|(_, s)| matches!(s.kind, Kind::Ping(_)))
            .map(|(&id, _)| id)
            .collect();
        for id in pings {
            self.take_sent(id);
        }
        self.queue.retain(|q| !matches!(q.kind, Kind::Ping(_)));
        // A ping sent as a request is answered on its own connection only
        // (servers keep no pong for later), and has no effect to repeat:
        // it goes again.
        let mut lost_pings: Vec<i64> = self
            .sent
            .iter()
            .filter(|(_, s)| matches!(s.kind, Kind::Rpc(_)) && is_ping(&s.body))
            .map(|(&id, _)| id)
            .collect();
        lost_pings.sort_unstable();
        self.requeue(&lost_pings);
        for s in self.sent.values_mut() {
            if !s.acked {
                s.uncertain = true;
            }
        }
    }

    /// A new connection carries this session: ask the server about every
    /// message still in flight (`msgs_state_req`) before resending any.
    ///
    /// Uncertain ones are resent only if the server says it never got them.
    /// Acknowledged ones are asked about too: the question is also the first
    /// message on the new connection, which tells the server where to send
    /// the answers it holds for this session.
    pub fn on_connected(&mut self) {
        // State requests lost with the old connection are replaced by this one.
        let old_state_reqs: Vec<i64> = self
            .sent
            .iter()
            .filter(|(_, s)| matches!(s.kind, Kind::StateReq(_)))
            .map(|(&id, _)| id)
            .collect();
        for id in old_state_reqs {
            self.take_sent(id);
        }
        let mut ids: Vec<i64> = self.sent.keys().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(8192) {
            let body = types::MsgsStateReq {
                msg_ids: chunk.to_vec(),
            }
            .to_bytes();
            self.queue_service(Kind::StateReq(chunk.to_vec()), body);
        }
    }

    /// Forgets a request (its caller gave up, e.g. on a deadline): it will
    /// not be resent and its answer, if one comes, is ignored.
    pub fn cancel(&mut self, req: ReqId) {
        self.queue.retain(|q| q.kind != Kind::Rpc(req));
        self.take_sent_of(&Kind::Rpc(req));
    }

    /// The requests written to the network and not yet answered.
    pub fn sent_requests(&self) -> Vec<ReqId> {
        self.sent
            .values()
            .filter_map(|s| match s.kind {
                Kind::Rpc(req) => Some(req),
                _ => None,
            })
            .collect()
    }

    /// Takes back every queued and in-flight request, leaving the session
    /// with none: for moving them elsewhere (another DC, a new key).
    pub fn drain_requests(&mut self) -> Vec<(ReqId, Vec<u8>)> {
        let mut out = Vec::new();
        let mut sent: Vec<(i64, Sent)> = self.sent.drain().collect();
        sent.sort_by_key(|(id, _)| *id);
        for (_, s) in sent {
            if let Kind::Rpc(req) = s.kind {
                out.push((req, s.body.into_vec()));
            }
        }
        self.containers.clear();
        let queue = std::mem::take(&mut self.queue);
        for q in queue {
            match q.kind {
                Kind::Rpc(req) => out.push((req, q.body.into_vec())),
                _ => self.queue.push_back(q),
            }
        }
        out
    }

    /// Decrypts and checks a packet from the server, then processes it.
    ///
    /// On error the packet is dropped with no effect on the session. For
    /// the padded intermediate transport, pass the packet through
    /// [`strip_transport_padding`](crate::crypto::strip_transport_padding)
    /// first.
    pub fn handle_packet(&mut self, now: Instant, packet: &mut [u8]) -> Result<(), InboundError> {
        let plain = crypto::decrypt_message_in_place(&self.auth_key, Side::Server, packet)?;
        self.handle_plaintext(now, plain)
    }

    /// [`handle_packet`](Self::handle_packet) for several packets, in order,
    /// decrypted together (see
    /// [`ClientCodec::next_packets`](crate::transport::ClientCodec::next_packets)).
    /// Each packet is taken out of `packets`; `each(i, result)` reports on
    /// the `i`-th, in order.
    pub fn handle_packets(
        &mut self,
        now: Instant,
        packets: &mut [&mut [u8]],
        mut each: impl FnMut(usize, Result<(), InboundError>),
    ) {
        for (c, chunk) in packets.chunks_mut(crypto::PARALLEL_MESSAGES).enumerate() {
            let mut opened: [Option<Result<&[u8], crypto::DecryptError>>;
                crypto::PARALLEL_MESSAGES] = Default::default();
            crypto::decrypt_messages_in_place(&self.auth_key, Side::Server, chunk, |i, r| {
                opened[i] = Some(r);
            });
            for (i, r) in opened.into_iter().enumerate() {
                let Some(r) = r else { break };
                let result = match r {
                    Ok(plain) => self.handle_plaintext(now, plain),
                    Err(e) => Err(e.into()),
                };
                each(c * crypto::PARALLEL_MESSAGES + i, result);
            }
        }
    }
}

/// Whether a body is `ping` or `ping_delay_disconnect`.
pub(crate) fn is_ping(body: &[u8]) -> bool {
    let id = body
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    id == Some(functions::Ping::CONSTRUCTOR_ID)
        || id == Some(functions::PingDelayDisconnect::CONSTRUCTOR_ID)
}
