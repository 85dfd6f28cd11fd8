//! [`FakeDc`]: the sans-IO server. See the [crate docs](crate) for the
//! run loop and the rules it follows.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use mtsender::buf::FrameBuf;
use mtsender::crypto::{self, AuthKey, RsaPrivateKey, Side};
use mtsender::session::ids::{Clock, SeqNo};
use mtsender::tl::message::{
    Container, ContainerWriter, RpcResult, GZIP_PACKED_ID, MSG_CONTAINER_ID, MSG_COPY_ID,
};
use mtsender::tl::{
    enums, functions as f, types as t, Deserialize, Identifiable, Reader, Serialize,
};
use mtsender::transport::{Frame, ServerDecoder, ServerEncoder, TransportKind};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::faults::{FaultAction, Faults, HandshakeFaults};
use crate::handshake::PendingHandshake;
use crate::salts::Salts;

/// Largest body a `gzip_packed` from a client may inflate to.
pub const GZIP_CAP: usize = 16 << 20;
/// msg_ids more than this many seconds behind the server clock are refused
/// (bad_msg_notification 16).
pub const MSG_ID_MAX_AGE_SECS: i64 = 300;
/// msg_ids more than this many seconds ahead of the server clock are refused
/// (bad_msg_notification 17).
pub const MSG_ID_MAX_AHEAD_SECS: i64 = 30;
/// Wrapping depth (invokeWithLayer, initConnection, ...) the server unwraps.
const MAX_WRAPPERS: usize = 16;
/// `invokeAfterMsgs#3dc4b4f0 msg_ids:Vector<long> query:!X`.
const INVOKE_AFTER_MSGS_ID: u32 = 0x3dc4_b4f0;
/// `inputClientProxy#75588b3f address:string port:int`.
const INPUT_CLIENT_PROXY_ID: u32 = 0x7558_8b3f;

/// The built-in test key's PEM (PKCS#1 private), from
/// `tests/vectors/test_rsa_2048.pem`.
pub const TEST_RSA_KEY_PEM: &str = include_str!("../../tests/vectors/test_rsa_2048.pem");

/// The built-in test key.
pub fn test_rsa_key() -> RsaPrivateKey {
    RsaPrivateKey::from_pem(TEST_RSA_KEY_PEM).expect("the bundled test key is valid")
}

/// Settings of a [`FakeDc`].
#[derive(Clone, Debug)]
pub struct FakeDcConfig {
    /// The DC id expected in `p_q_inner_data_dc` / `_temp_dc` (also accepted:
    /// `dc_id + 10000` and both negated).
    pub dc_id: i32,
    /// The server's RSA key.
    pub rsa_key: RsaPrivateKey,
    /// Seeds every random choice of the server: same seed and same inputs
    /// give the same outputs, byte for byte.
    pub seed: [u8; 32],
    /// Request and connection faults.
    pub faults: Faults,
    /// Handshake faults.
    pub handshake_faults: HandshakeFaults,
    /// How long a server salt lasts (default 1 h).
    pub salt_period: Duration,
    /// How long the previous salt is still accepted after a rotation
    /// (default 5 min).
    pub salt_grace: Duration,
    /// How long a client content message may wait for its ack when nothing
    /// else goes out to carry it (default 100 ms; zero acks at once).
    pub ack_delay: Duration,
    /// Client msg_ids remembered per session; older ones get
    /// bad_msg_notification 20 (default 4096).
    pub max_remembered_msg_ids: usize,
    /// Answers cached, and unacknowledged messages kept, per session for
    /// resends (default 4096 each; the oldest go first).
    pub max_cached_answers: usize,
}

impl FakeDcConfig {
    /// DC `dc_id` with the built-in test key, seed zero and no faults.
    pub fn new(dc_id: i32) -> Self {
        Self {
            dc_id,
            rsa_key: test_rsa_key(),
            seed: [0; 32],
            faults: Faults::none(),
            handshake_faults: HandshakeFaults::default(),
            salt_period: Duration::from_secs(3600),
            salt_grace: Duration::from_secs(300),
            ack_delay: Duration::from_millis(100),
            max_remembered_msg_ids: 4096,
            max_cached_answers: 4096,
        }
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the request and connection faults.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the handshake faults.
    pub fn handshake_faults(mut self, faults: HandshakeFaults) -> Self {
        self.handshake_faults = faults;
        self
    }
}

/// A client connection, as numbered by [`FakeDc::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// What the server wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DcOutput {
    /// Write these bytes to the connection, in order.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection (after writing what came before).
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// Counters of what the server did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections opened.
    pub connections: u64,
    /// Connections the server closed.
    pub closed_by_server: u64,
    /// Client packets decoded (plain and encrypted).
    pub packets: u64,
    /// Encrypted packets dropped (failed decryption).
    pub dropped_packets: u64,
    /// Auth keys created.
    pub handshakes: u64,
    /// Of those, temporary keys.
    pub temp_keys: u64,
    /// dh_gen_retry answers sent.
    pub dh_gen_retries: u64,
    /// Transport errors sent (-404 for unknown keys).
    pub transport_errors: u64,
    /// Quick acks sent.
    pub quick_acks: u64,
    /// bad_server_salt sent.
    pub bad_salts: u64,
    /// bad_msg_notification sent, by error code.
    pub bad_msgs: BTreeMap<i32, u64>,
    /// Sessions created (each announced with new_session_created).
    pub new_sessions: u64,
    /// API-level queries seen (what fault rules number).
    pub requests: u64,
    /// Queries executed (see [`FakeDc::execution_count`]).
    pub executions: u64,
    /// rpc_error answers sent.
    pub rpc_errors: u64,
    /// Faults fired.
    pub faults_fired: u64,
    /// Cached answers sent again (same-msg_id resend, msg_resend_ans_req).
    pub resent_answers: u64,
    /// Unacknowledged messages sent again (on a session's new connection,
    /// or on msg_resend_req).
    pub resent_messages: u64,
    /// msgs_ack messages sent.
    pub acks_sent: u64,
    /// pong messages sent.
    pub pongs: u64,
}

struct Conn {
    decoder: ServerDecoder,
    encoder: Option<ServerEncoder>,
    pub(crate) handshake: Option<PendingHandshake>,
    packets: u32,
    disconnect_at: Option<Instant>,
}

pub(crate) struct KeyState {
    pub key: AuthKey,
    pub expires_at: Option<i64>,
    pub salts: Salts,
    pub bound_to: Option<i64>,
}

/// Public facts about a stored auth key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthKeyInfo {
    /// For a temporary key, the server unix time it expires at.
    pub expires_at: Option<i64>,
    /// The permanent key a temporary key was bound to with
    /// `auth.bindTempAuthKey`.
    pub bound_to: Option<i64>,
}

type SessionKey = (i64, i64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Content-related: odd seqno, acknowledged.
    Content,
    /// Not content-related: even seqno.
    Service,
    /// Clients disagree; either parity is accepted.
    Either,
}

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    content: bool,
    query: bool,
    acked: bool,
}

#[derive(Clone, Debug)]
struct Stored {
    seqno: i32,
    body: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Answer {
    msg_id: i64,
    seqno: i32,
    body: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Outgoing {
    msg_id: i64,
    seqno: i32,
    body: Vec<u8>,
}

struct Session {
    unique_id: i64,
    conn: ConnId,
    resend_unacked: bool,
    announced: bool,
    seq: SeqNo,
    seen: BTreeMap<i64, Seen>,
    /// msg_ids below this were forgotten (bad_msg_notification 20).
    evicted_below: i64,
    max_content_seqno: Option<i32>,
    pending_acks: Vec<i64>,
    ack_deadline: Option<Instant>,
    outbox: Vec<Outgoing>,
    /// Content messages sent and not yet acknowledged, by msg_id.
    unacked: BTreeMap<i64, Stored>,
    /// Answers by the query's msg_id.
    answers: BTreeMap<i64, Answer>,
    answer_order: VecDeque<i64>,
    /// Queries whose answer is being held back.
    running: BTreeSet<i64>,
}

struct Delayed {
    at: Instant,
    session: SessionKey,
    req_msg_id: i64,
    result: Vec<u8>,
}

/// The server clock: the given unix time plus the monotonic time elapsed,
/// plus the skew set by a fault; and the msg_ids drawn from it.
struct ServerClock {
    base: Clock,
    skew_secs: i64,
    last_msg_id: i64,
}

impl ServerClock {
    fn unix_nanos(&self, now: Instant) -> i128 {
        self.base.unix_nanos_at(now) + i128::from(self.skew_secs) * 1_000_000_000
    }

    fn unix_secs(&self, now: Instant) -> i64 {
        self.unix_nanos(now).div_euclid(1_000_000_000) as i64
    }

    /// A server msg_id: about unixtime * 2^32, ≡ 1 mod 4 for a response,
    /// ≡ 3 mod 4 otherwise, greater than every msg_id drawn before.
    fn next_msg_id(&mut self, now: Instant, response: bool) -> i64 {
        let nanos = self.unix_nanos(now);
        let secs = nanos.div_euclid(1_000_000_000) as i64;
        let frac = nanos.rem_euclid(1_000_000_000) as u64;
        let raw = ((secs << 32) | ((frac << 32) / 1_000_000_000) as i64) & !3;
        let base = raw.max((self.last_msg_id & !3) + 4);
        let id = base | if response { 1 } else { 3 };
        self.last_msg_id = id;
        id
    }
}

/// A sans-IO fake Telegram DC. See the [crate docs](crate).
pub struct FakeDc {
    pub(crate) config: FakeDcConfig,
    pub(crate) rng: ChaCha20Rng,
    clock: ServerClock,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    pub(crate) keys: BTreeMap<i64, KeyState>,
    sessions: BTreeMap<SessionKey, Session>,
    executions: BTreeMap<Vec<u8>, u32>,
    outputs: VecDeque<DcOutput>,
    delayed: Vec<Delayed>,
    fired: Vec<u32>,
    split: Option<usize>,
    doomed_keys: Vec<i64>,
    pub(crate) stats: Stats,
}

impl std::fmt::Debug for FakeDc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeDc")
            .field("dc_id", &self.config.dc_id)
            .field("connections", &self.conns.len())
            .field("keys", &self.keys.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

/// What a message handler decided about an incoming message.
enum Verdict {
    Accepted,
    Refused,
}

impl FakeDc {
    // ---------------------------------------------------------------------
    // Construction and getters

    /// A DC whose clock reads `unix` (time since the Unix epoch) at `now`.
    pub fn new(config: FakeDcConfig, now: Instant, unix: Duration) -> Self {
        let mut dc = Self {
            rng: ChaCha20Rng::from_seed(config.seed),
            clock: ServerClock {
                base: Clock::new(now, unix),
                skew_secs: 0,
                last_msg_id: 0,
            },
            conns: BTreeMap::new(),
            next_conn: 1,
            keys: BTreeMap::new(),
            sessions: BTreeMap::new(),
            executions: BTreeMap::new(),
            outputs: VecDeque::new(),
            delayed: Vec::new(),
            fired: vec![0; config.faults.rules.len()],
            split: None,
            doomed_keys: Vec::new(),
            stats: Stats::default(),
            config,
        };
        // Faults that hold from the start rather than per request.
        for i in 0..dc.config.faults.rules.len() {
            let rule = &dc.config.faults.rules[i];
            match (&rule.action, &rule.when) {
                (FaultAction::SplitFrames(n), _) => dc.split = Some(*n),
                (FaultAction::ClockSkew(s), crate::faults::FaultWhen::Always) => {
                    dc.clock.skew_secs = *s;
                    dc.fired[i] += 1;
                    dc.stats.faults_fired += 1;
                }
                _ => {}
            }
        }
        dc
    }

    /// The configured DC id.
    pub fn dc_id(&self) -> i32 {
        self.config.dc_id
    }

    /// The server's unix time at `now`, in seconds (skew included).
    pub fn server_time(&self, now: Instant) -> i64 {
        self.clock.unix_secs(now)
    }

    /// How many times a query was executed, by its innermost TL bytes
    /// (`test.echo` with its payload, say). Counted: `test.echo` and
    /// `auth.bindTempAuthKey` answered with a result. Not counted: service
    /// messages, unknown methods, and requests refused by a fault.
    pub fn execution_count(&self, query: &[u8]) -> u32 {
        self.executions.get(query).copied().unwrap_or(0)
    }

    /// Every executed query with its count, ordered by the query bytes.
    pub fn executions(&self) -> impl Iterator<Item = (&[u8], u32)> {
        self.executions.iter().map(|(k, v)| (k.as_slice(), *v))
    }

    /// A stored auth key by id.
    pub fn auth_key(&self, auth_key_id: i64) -> Option<&AuthKey> {
        self.keys.get(&auth_key_id).map(|k| &k.key)
    }

    /// Expiry and binding of a stored key.
    pub fn auth_key_info(&self, auth_key_id: i64) -> Option<AuthKeyInfo> {
        self.keys.get(&auth_key_id).map(|k| AuthKeyInfo {
            expires_at: k.expires_at,
            bound_to: k.bound_to,
        })
    }

    /// Stores `key` as if a handshake had created it (a permanent key, or
    /// a temporary one expiring `expires_in` seconds from now), for tests
    /// that need a session without paying for a handshake. Returns the
    /// first salt, as a handshake would have given it.
    pub fn install_auth_key(&mut self, now: Instant, key: AuthKey, expires_in: Option<u32>) -> i64 {
        let secs = self.server_secs(now);
        let first = key.id().rotate_left(17) ^ 0x5a17_5a17;
        let salts = Salts::new(
            self.config.seed,
            key.id(),
            first,
            secs,
            self.config.salt_period.as_secs(),
            self.config.salt_grace.as_secs(),
        );
        self.keys.insert(
            key.id(),
            KeyState {
                key,
                expires_at: expires_in.map(|e| secs + i64::from(e)),
                salts,
                bound_to: None,
            },
        );
        first
    }

    /// Number of stored auth keys.
    pub fn auth_key_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The salt a key's messages must carry at `now`.
    pub fn current_salt(&mut self, now: Instant, auth_key_id: i64) -> Option<i64> {
        let secs = self.clock.unix_secs(now);
        self.keys
            .get_mut(&auth_key_id)
            .map(|k| k.salts.current(secs))
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The transport a connection uses, once its first bytes told
    /// (and whether it is obfuscated).
    pub fn transport(&self, conn: ConnId) -> Option<(TransportKind, bool)> {
        self.conns.get(&conn).and_then(|c| c.decoder.kind())
    }

    // ---------------------------------------------------------------------
    // Inputs

    /// A client connected. Returns its id for the other calls.
    pub fn open(&mut self, _now: Instant) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                decoder: ServerDecoder::new(),
                encoder: None,
                handshake: None,
                packets: 0,
                disconnect_at: None,
            },
        );
        self.stats.connections += 1;
        id
    }

    /// The client went away (or the caller closed the socket). The
    /// connection's sessions stay; their messages wait for the next one.
    pub fn close(&mut self, _now: Instant, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Bytes from the client, in any chunking. The transport is recognised
    /// from the first bytes of each connection. Unknown connections are
    /// ignored.
    pub fn receive(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.decoder.feed(bytes);
        if c.encoder.is_none() {
            c.encoder = c.decoder.encoder();
        }
        let mut packets = Vec::new();
        let mut failed = false;
        while let Some(frame) = c.decoder.next_frame() {
            match frame {
                Ok(Frame::Packet(p)) => {
                    let p = p.to_vec();
                    packets.push((p, c.decoder.quick_ack_requested()));
                }
                Ok(_) => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        let mut touched = BTreeSet::new();
        for (packet, quick_ack) in packets {
            if !self.conns.contains_key(&conn) {
                break;
            }
            self.stats.packets += 1;
            self.handle_packet(now, conn, packet, quick_ack, &mut touched);
            if self.count_packet_and_maybe_close(conn) {
                break;
            }
        }
        if failed {
            self.server_close(conn);
        }
        for skey in touched {
            self.flush(now, skey, false);
        }
        self.destroy_doomed_keys();
    }

    /// Fires the timers due at `now`: held-back answers, stand-alone acks,
    /// ping_delay_disconnect deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.disconnect_at.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for conn in due {
            self.server_close(conn);
        }
        let mut touched = BTreeSet::new();
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].at <= now {
                let d = self.delayed.remove(i);
                if let Some(s) = self.sessions.get_mut(&d.session) {
                    if s.running.remove(&d.req_msg_id) {
                        self.answer(now, d.session, d.req_msg_id, &d.result);
                        touched.insert(d.session);
                    }
                }
            } else {
                i += 1;
            }
        }
        for (k, s) in &self.sessions {
            if s.ack_deadline.is_some_and(|d| d <= now) {
                touched.insert(*k);
            }
        }
        for skey in touched {
            self.flush(now, skey, true);
        }
    }

    /// The earliest instant [`handle_timeout`](Self::handle_timeout) has
    /// something to do, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let conns = self.conns.values().filter_map(|c| c.disconnect_at);
        let delayed = self.delayed.iter().map(|d| d.at);
        let acks = self.sessions.values().filter_map(|s| s.ack_deadline);
        conns.chain(delayed).chain(acks).min()
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<DcOutput> {
        self.outputs.pop_front()
    }

    /// The next output concerning `conn`, leaving the others queued (for
    /// tests that drive several connections).
    pub fn poll_output_for(&mut self, conn: ConnId) -> Option<DcOutput> {
        let at = self.outputs.iter().position(|o| match o {
            DcOutput::Transmit { conn: c, .. } | DcOutput::Close { conn: c } => *c == conn,
        })?;
        self.outputs.remove(at)
    }

    /// Sends a server-initiated content message (an update) to every
    /// session that has an open connection. It is kept, like an answer,
    /// until acknowledged.
    pub fn push_update(&mut self, now: Instant, body: Vec<u8>) {
        let keys: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| self.conns.contains_key(&s.conn))
            .map(|(k, _)| *k)
            .collect();
        for skey in keys {
            self.push_content(now, skey, body.clone(), false, true);
            self.flush(now, skey, false);
        }
    }

    /// Forgets every session, as a restarted server would: the next message
    /// of each gets `new_session_created`, cached answers are lost.
    pub fn forget_sessions(&mut self) {
        self.sessions.clear();
        self.delayed.clear();
    }

    // ---------------------------------------------------------------------
    // Connections and output

    fn count_packet_and_maybe_close(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return true;
        };
        c.packets += 1;
        let packets = c.packets;
        for i in 0..self.config.faults.rules.len() {
            let rule = &self.config.faults.rules[i];
            if let FaultAction::CloseAfter(k) = rule.action {
                if packets == k && rule.times.is_none_or(|t| self.fired[i] < t) {
                    self.fired[i] += 1;
                    self.stats.faults_fired += 1;
                    self.server_close(conn);
                    return true;
                }
            }
        }
        false
    }

    pub(crate) fn server_close(&mut self, conn: ConnId) {
        if self.conns.remove(&conn).is_some() {
            self.stats.closed_by_server += 1;
            self.outputs.push_back(DcOutput::Close { conn });
        }
    }

    fn emit(&mut self, conn: ConnId, bytes: Vec<u8>) {
        match self.split {
            Some(n) if bytes.len() > n => {
                for chunk in bytes.chunks(n) {
                    self.outputs.push_back(DcOutput::Transmit {
                        conn,
                        bytes: chunk.to_vec(),
                    });
                }
            }
            _ => self.outputs.push_back(DcOutput::Transmit { conn, bytes }),
        }
    }

    /// Frames `payload` for `conn` and queues it.
    fn transmit(&mut self, conn: ConnId, mut buf: FrameBuf) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(enc) = c.encoder.as_mut() else {
            return;
        };
        enc.encode(&mut buf, &mut self.rng);
        self.emit(conn, buf.into_vec());
    }

    /// Sends a plain (unencrypted) message, as in the handshake.
    pub(crate) fn send_plain(&mut self, now: Instant, conn: ConnId, body: &[u8]) {
        let msg_id = self.clock.next_msg_id(now, true);
        let mut buf = FrameBuf::with_capacity(128, body.len() + 20 + 16);
        buf.append_with(|v| mtsender::tl::message::PlainMessage::write(v, msg_id, body));
        self.transmit(conn, buf);
    }

    fn transport_error(&mut self, conn: ConnId, code: i32) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(enc) = c.encoder.as_mut() {
            let bytes = enc.transport_error(code);
            self.stats.transport_errors += 1;
            self.emit(conn, bytes);
        }
    }

    pub(crate) fn conn_handshake(&mut self, conn: ConnId) -> Option<&mut Option<PendingHandshake>> {
        self.conns.get_mut(&conn).map(|c| &mut c.handshake)
    }

    pub(crate) fn server_secs(&self, now: Instant) -> i64 {
        self.clock.unix_secs(now)
    }

    // ---------------------------------------------------------------------
    // Packets

    fn handle_packet(
        &mut self,
        now: Instant,
        conn: ConnId,
        mut packet: Vec<u8>,
        quick_ack: bool,
        touched: &mut BTreeSet<SessionKey>,
    ) {
        let Some(head) = packet.get(..8) else {
            return;
        };
        let auth_key_id = i64::from_le_bytes(head.try_into().expect("8 bytes"));
        let padded = matches!(
            self.conns.get(&conn).and_then(|c| c.decoder.kind()),
            Some((TransportKind::PaddedIntermediate, _))
        );
        if auth_key_id == 0 {
            if padded {
                trim_plain_padding(&mut packet);
            }
            self.handle_plain(now, conn, &packet);
            return;
        }
        let secs = self.clock.unix_secs(now);
        let expired = self
            .keys
            .get(&auth_key_id)
            .is_some_and(|k| k.expires_at.is_some_and(|e| e <= secs));
        if expired {
            self.keys.remove(&auth_key_id);
            self.sessions.retain(|k, _| k.0 != auth_key_id);
        }
        let Some(state) = self.keys.get(&auth_key_id) else {
            // Unknown key: the client must create a new one.
            self.transport_error(conn, -404);
            self.server_close(conn);
            return;
        };
        let slice: &mut [u8] = if padded {
            crypto::strip_transport_padding(&mut packet)
        } else {
            &mut packet
        };
        let plain = match crypto::decrypt_message_in_place(&state.key, Side::Client, slice) {
            Ok(p) => p.to_vec(),
            Err(_) => {
                self.stats.dropped_packets += 1;
                return;
            }
        };
        if quick_ack {
            let token = quick_ack_token(&state.key, &slice[24..]);
            if let Some(enc) = self.conns.get_mut(&conn).and_then(|c| c.encoder.as_mut()) {
                let bytes = enc.quick_ack(token);
                self.stats.quick_acks += 1;
                self.emit(conn, bytes);
            }
        }
        let mut r = Reader::new(&plain);
        // decrypt_message_in_place returns at least the 32-byte header.
        let (Ok(salt), Ok(session_id), Ok(msg_id), Ok(seqno)) =
            (r.read_i64(), r.read_i64(), r.read_i64(), r.read_i32())
        else {
            return;
        };
        let body = &plain[32..];
        let skey = (auth_key_id, session_id);
        touched.insert(skey);
        self.on_envelope(now, conn, skey, salt, msg_id, seqno, body);
    }

    fn ensure_session(&mut self, skey: SessionKey, conn: ConnId) {
        let unique_id = self.rng.next_u64() as i64;
        let session = self.sessions.entry(skey).or_insert_with(|| Session {
            unique_id,
            conn,
            resend_unacked: false,
            announced: false,
            seq: SeqNo::default(),
            seen: BTreeMap::new(),
            evicted_below: i64::MIN,
            max_content_seqno: None,
            pending_acks: Vec::new(),
            ack_deadline: None,
            outbox: Vec::new(),
            unacked: BTreeMap::new(),
            answers: BTreeMap::new(),
            answer_order: VecDeque::new(),
            running: BTreeSet::new(),
        });
        if session.conn != conn {
            session.conn = conn;
            session.resend_unacked = true;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_envelope(
        &mut self,
        now: Instant,
        conn: ConnId,
        skey: SessionKey,
        salt: i64,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
    ) {
        self.ensure_session(skey, conn);
        if let Some(code) = self.check_msg_id(now, msg_id) {
            self.bad_msg(now, skey, msg_id, seqno, code);
            return;
        }
        let secs = self.clock.unix_secs(now);
        let Some(key) = self.keys.get_mut(&skey.0) else {
            return;
        };
        if !key.salts.accepts(salt, secs) {
            let new_salt = key.salts.current(secs);
            self.bad_salt(now, skey, msg_id, seqno, new_salt);
            return;
        }
        if first_id(body) == Some(MSG_CONTAINER_ID) {
            self.on_container(now, skey, msg_id, seqno, body);
        } else {
            self.on_message(now, skey, msg_id, seqno, body);
        }
    }

    fn check_msg_id(&self, now: Instant, msg_id: i64) -> Option<i32> {
        if msg_id % 4 != 0 {
            return Some(18);
        }
        let server = self.clock.unix_secs(now);
        let secs = msg_id >> 32;
        if secs < server - MSG_ID_MAX_AGE_SECS {
            return Some(16);
        }
        if secs > server + MSG_ID_MAX_AHEAD_SECS {
            return Some(17);
        }
        None
    }

    fn on_container(
        &mut self,
        now: Instant,
        skey: SessionKey,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
    ) {
        let Some(s) = self.sessions.get(&skey) else {
            return;
        };
        if seqno & 1 == 1 {
            self.bad_msg(now, skey, msg_id, seqno, 34);
            return;
        }
        if s.seen.contains_key(&msg_id) {
            self.bad_msg(now, skey, msg_id, seqno, 19);
            return;
        }
        if msg_id < s.evicted_below {
            self.bad_msg(now, skey, msg_id, seqno, 20);
            return;
        }
        let Ok(container) = Container::parse(body) else {
            self.bad_msg(now, skey, msg_id, seqno, 64);
            return;
        };
        self.remember(skey, msg_id, Seen::default());
        for m in container.iter() {
            if first_id(m.body) == Some(MSG_CONTAINER_ID) {
                // Container::parse refuses these; kept for clarity.
                self.bad_msg(now, skey, m.msg_id, m.seqno, 64);
                continue;
            }
            if let Some(code) = self.check_msg_id(now, m.msg_id) {
                self.bad_msg(now, skey, m.msg_id, m.seqno, code);
                continue;
            }
            self.on_message(now, skey, m.msg_id, m.seqno, m.body);
        }
    }

    fn remember(&mut self, skey: SessionKey, msg_id: i64, seen: Seen) {
        let cap = self.config.max_remembered_msg_ids.max(1);
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        s.seen.insert(msg_id, seen);
        while s.seen.len() > cap {
            if let Some((old, _)) = s.seen.pop_first() {
                s.evicted_below = s.evicted_below.max(old + 1);
            }
        }
    }

    /// One message (alone, or from a container): the per-message checks,
    /// then its body.
    fn on_message(&mut self, now: Instant, skey: SessionKey, msg_id: i64, seqno: i32, body: &[u8]) {
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        if let Some(seen) = s.seen.get(&msg_id).copied() {
            // A resend under the same msg_id: never run twice.
            if seen.content {
                s.pending_acks.push(msg_id);
            }
            if let Some(a) = s.answers.get(&msg_id).cloned() {
                s.outbox.push(Outgoing {
                    msg_id: a.msg_id,
                    seqno: a.seqno,
                    body: a.body,
                });
                self.stats.resent_answers += 1;
            }
            return;
        }
        if msg_id < s.evicted_below {
            self.bad_msg(now, skey, msg_id, seqno, 20);
            return;
        }
        let class = classify(body);
        let odd = seqno & 1 == 1;
        if class == Class::Service && odd {
            self.bad_msg(now, skey, msg_id, seqno, 34);
            return;
        }
        if class == Class::Content && !odd {
            self.bad_msg(now, skey, msg_id, seqno, 35);
            return;
        }
        let content = match class {
            Class::Content => true,
            Class::Service => false,
            Class::Either => odd,
        };
        if content && s.max_content_seqno.is_some_and(|m| seqno < m) {
            self.bad_msg(now, skey, msg_id, seqno, 32);
            return;
        }
        if content {
            s.max_content_seqno = Some(s.max_content_seqno.map_or(seqno, |m| m.max(seqno)));
            s.pending_acks.push(msg_id);
        }
        self.remember(
            skey,
            msg_id,
            Seen {
                content,
                ..Seen::default()
            },
        );
        self.announce(now, skey, msg_id);
        if let Verdict::Refused = self.on_body(now, skey, msg_id, seqno, body, 0) {
            self.unsee(skey, msg_id);
        }
    }

    /// Forgets an accepted message that was then refused (bad_server_salt by
    /// a fault): it was not received, as far as the client must know.
    fn unsee(&mut self, skey: SessionKey, msg_id: i64) {
        if let Some(s) = self.sessions.get_mut(&skey) {
            s.seen.remove(&msg_id);
            s.pending_acks.retain(|&id| id != msg_id);
        }
    }

    /// new_session_created, once, before anything else the session sends.
    fn announce(&mut self, now: Instant, skey: SessionKey, first_msg_id: i64) {
        let secs = self.clock.unix_secs(now);
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        if s.announced {
            return;
        }
        s.announced = true;
        let unique_id = s.unique_id;
        let Some(key) = self.keys.get_mut(&skey.0) else {
            return;
        };
        let body = t::NewSessionCreated {
            first_msg_id,
            unique_id,
            server_salt: key.salts.current(secs),
        }
        .to_bytes();
        self.stats.new_sessions += 1;
        self.push_content(now, skey, body, false, true);
    }

    fn on_body(
        &mut self,
        now: Instant,
        skey: SessionKey,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
        depth: u8,
    ) -> Verdict {
        let Some(id) = first_id(body) else {
            return Verdict::Accepted;
        };
        match id {
            GZIP_PACKED_ID if depth == 0 => {
                match mtsender::tl::message::unpack_gzip(body, GZIP_CAP) {
                    Ok(inner) => return self.on_body(now, skey, msg_id, seqno, &inner, 1),
                    Err(_) => return Verdict::Accepted,
                }
            }
            MSG_CONTAINER_ID => {
                self.bad_msg(now, skey, msg_id, seqno, 64);
            }
            MSG_COPY_ID => {}
            t::MsgsAck::CONSTRUCTOR_ID => {
                if let (Ok(ack), Some(s)) =
                    (t::MsgsAck::from_bytes(body), self.sessions.get_mut(&skey))
                {
                    for id in ack.msg_ids {
                        s.unacked.remove(&id);
                    }
                }
            }
            f::Ping::CONSTRUCTOR_ID => {
                if let Ok(p) = f::Ping::from_bytes(body) {
                    self.pong(now, skey, msg_id, p.ping_id);
                }
            }
            f::PingDelayDisconnect::CONSTRUCTOR_ID => {
                if let Ok(p) = f::PingDelayDisconnect::from_bytes(body) {
                    self.pong(now, skey, msg_id, p.ping_id);
                    let conn = self.sessions.get(&skey).map(|s| s.conn);
                    if let Some(c) = conn.and_then(|c| self.conns.get_mut(&c)) {
                        let delay = Duration::from_secs(p.disconnect_delay.max(0) as u64);
                        c.disconnect_at = Some(now + delay);
                    }
                }
            }
            f::GetFutureSalts::CONSTRUCTOR_ID => {
                if let Ok(req) = f::GetFutureSalts::from_bytes(body) {
                    self.mark_query(skey, msg_id);
                    let secs = self.clock.unix_secs(now);
                    if let Some(key) = self.keys.get_mut(&skey.0) {
                        let salts = key.salts.future(secs, req.num);
                        let result = t::FutureSalts {
                            req_msg_id: msg_id,
                            now: secs.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
                            salts,
                        }
                        .to_bytes();
                        // Not wrapped: future_salts names its query itself.
                        self.answer_bare(now, skey, msg_id, result);
                    }
                }
            }
            t::MsgsStateReq::CONSTRUCTOR_ID => {
                if let Ok(req) = t::MsgsStateReq::from_bytes(body) {
                    self.state_info(now, skey, msg_id, &req.msg_ids);
                }
            }
            t::MsgResendReq::CONSTRUCTOR_ID => {
                if let Ok(req) = t::MsgResendReq::from_bytes(body) {
                    self.resend_messages(skey, &req.msg_ids);
                }
            }
            t::MsgResendAnsReq::CONSTRUCTOR_ID => {
                if let Ok(req) = t::MsgResendAnsReq::from_bytes(body) {
                    self.resend_answers(skey, &req.msg_ids);
                }
            }
            f::RpcDropAnswer::CONSTRUCTOR_ID => {
                if let Ok(req) = f::RpcDropAnswer::from_bytes(body) {
                    self.mark_query(skey, msg_id);
                    let result = self.drop_answer(skey, req.req_msg_id);
                    self.answer(now, skey, msg_id, &result.to_bytes());
                }
            }
            f::DestroySession::CONSTRUCTOR_ID => {
                if let Ok(req) = f::DestroySession::from_bytes(body) {
                    let other = (skey.0, req.session_id);
                    let res: enums::DestroySessionRes =
                        if other != skey && self.sessions.remove(&other).is_some() {
                            self.delayed.retain(|d| d.session != other);
                            t::DestroySessionOk {
                                session_id: req.session_id,
                            }
                            .into()
                        } else {
                            t::DestroySessionNone {
                                session_id: req.session_id,
                            }
                            .into()
                        };
                    self.push_content(now, skey, res.to_bytes(), true, false);
                }
            }
            f::DestroyAuthKey::CONSTRUCTOR_ID => {
                self.mark_query(skey, msg_id);
                // Telegram answers this one bare, not in an rpc_result.
                self.answer_bare(now, skey, msg_id, t::DestroyAuthKeyOk {}.to_bytes());
                self.doomed_keys.push(skey.0);
            }
            f::HttpWait::CONSTRUCTOR_ID
            | t::MsgsStateInfo::CONSTRUCTOR_ID
            | t::MsgsAllInfo::CONSTRUCTOR_ID
            | t::MsgDetailedInfo::CONSTRUCTOR_ID
            | t::MsgNewDetailedInfo::CONSTRUCTOR_ID => {}
            _ => return self.on_query(now, skey, msg_id, seqno, body),
        }
        Verdict::Accepted
    }

    fn mark_query(&mut self, skey: SessionKey, msg_id: i64) {
        if let Some(seen) = self
            .sessions
            .get_mut(&skey)
            .and_then(|s| s.seen.get_mut(&msg_id))
        {
            seen.query = true;
        }
    }

    fn pong(&mut self, now: Instant, skey: SessionKey, msg_id: i64, ping_id: i64) {
        self.stats.pongs += 1;
        let body = t::Pong { msg_id, ping_id }.to_bytes();
        // A pong is only worth something on the connection that pinged.
        self.push_content(now, skey, body, true, false);
    }

    /// An API-level query: faults, then execution.
    fn on_query(
        &mut self,
        now: Instant,
        skey: SessionKey,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
    ) -> Verdict {
        self.mark_query(skey, msg_id);
        self.stats.requests += 1;
        let request_no = self.stats.requests;
        let Some(query) = innermost(body) else {
            self.rpc_error(now, skey, msg_id, 400, "INPUT_REQUEST_INVALID");
            return Verdict::Accepted;
        };
        let echo = (first_id(query) == Some(f::TestEcho::CONSTRUCTOR_ID))
            .then(|| f::TestEcho::from_bytes(query).ok())
            .flatten();
        let mut error: Option<(i32, String)> = None;
        let mut bad_salt = false;
        let mut delay: Option<Duration> = None;
        for i in 0..self.config.faults.rules.len() {
            let rule = &self.config.faults.rules[i];
            if rule.action.is_connection_level()
                || !rule
                    .when
                    .matches(request_no, echo.as_ref().map(|e| e.payload.as_slice()))
                || rule.times.is_some_and(|t| self.fired[i] >= t)
            {
                continue;
            }
            let fires = match &rule.action {
                FaultAction::BadServerSalt => {
                    let fires = error.is_none() && !bad_salt;
                    bad_salt |= fires;
                    fires
                }
                FaultAction::ClockSkew(s) => {
                    if matches!(rule.when, crate::faults::FaultWhen::Always) {
                        // Applied once, at construction.
                        false
                    } else {
                        self.clock.skew_secs = *s;
                        true
                    }
                }
                FaultAction::ForgetSessions => {
                    let conn = self.sessions.get(&skey).map(|s| s.conn);
                    self.forget_sessions();
                    if let Some(conn) = conn {
                        self.ensure_session(skey, conn);
                        let content = seqno & 1 == 1;
                        if content {
                            if let Some(s) = self.sessions.get_mut(&skey) {
                                s.max_content_seqno = Some(seqno);
                                s.pending_acks.push(msg_id);
                            }
                        }
                        self.remember(
                            skey,
                            msg_id,
                            Seen {
                                content,
                                query: true,
                                acked: false,
                            },
                        );
                        self.announce(now, skey, msg_id);
                    }
                    true
                }
                FaultAction::Delay(d) => {
                    delay = Some(delay.unwrap_or_default().max(*d));
                    true
                }
                action => match action.rpc_error() {
                    Some(e) if error.is_none() && !bad_salt => {
                        error = Some(e);
                        true
                    }
                    _ => false,
                },
            };
            if fires {
                self.fired[i] += 1;
                self.stats.faults_fired += 1;
            }
        }
        if bad_salt {
            let secs = self.clock.unix_secs(now);
            if let Some(key) = self.keys.get_mut(&skey.0) {
                key.salts.force_rotate(secs);
                let salt = key.salts.current(secs);
                self.bad_salt(now, skey, msg_id, seqno, salt);
            }
            return Verdict::Refused;
        }
        if let Some((code, message)) = error {
            self.rpc_error_after(now, skey, msg_id, code, &message, delay);
            return Verdict::Accepted;
        }
        let result = match first_id(query) {
            Some(f::TestEcho::CONSTRUCTOR_ID) if echo.is_some() => Some(query.to_vec()),
            Some(f::BindTempAuthKey::CONSTRUCTOR_ID) => match f::BindTempAuthKey::from_bytes(query)
            {
                Ok(bind) => match self.check_bind(skey, msg_id, &bind) {
                    Ok(()) => {
                        if let Some(k) = self.keys.get_mut(&skey.0) {
                            k.bound_to = Some(bind.perm_auth_key_id);
                        }
                        Some(true.to_bytes())
                    }
                    Err(message) => {
                        self.rpc_error_after(now, skey, msg_id, 400, message, delay);
                        return Verdict::Accepted;
                    }
                },
                Err(_) => None,
            },
            _ => None,
        };
        match result {
            Some(result) => {
                *self.executions.entry(query.to_vec()).or_insert(0) += 1;
                self.stats.executions += 1;
                self.answer_after(now, skey, msg_id, result, delay);
            }
            None => {
                let id = first_id(query).unwrap_or(0);
                let message = format!("INPUT_METHOD_INVALID_{id:08x}");
                self.rpc_error_after(now, skey, msg_id, 400, &message, delay);
            }
        }
        Verdict::Accepted
    }

    /// Checks `auth.bindTempAuthKey` as Telegram does: the binding message
    /// decrypts (MTProto 1.0) under the named permanent key, carries the
    /// request's own msg_id, and names this temporary key and session.
    fn check_bind(
        &self,
        skey: SessionKey,
        msg_id: i64,
        bind: &f::BindTempAuthKey,
    ) -> Result<(), &'static str> {
        let perm = self
            .keys
            .get(&bind.perm_auth_key_id)
            .filter(|k| k.expires_at.is_none())
            .ok_or("PERM_AUTH_KEY_INVALID")?;
        let plain = mtsender::crypto::decrypt_v1(&perm.key, &bind.encrypted_message)
            .map_err(|_| "ENCRYPTED_MESSAGE_INVALID")?;
        let inner_msg_id = i64::from_le_bytes(
            plain[16..24]
                .try_into()
                .map_err(|_| "ENCRYPTED_MESSAGE_INVALID")?,
        );
        let inner = t::BindAuthKeyInner::from_bytes(&plain[32..])
            .map_err(|_| "ENCRYPTED_MESSAGE_INVALID")?;
        if inner_msg_id != msg_id
            || inner.perm_auth_key_id != bind.perm_auth_key_id
            || inner.nonce != bind.nonce
            || inner.expires_at != bind.expires_at
            || inner.temp_auth_key_id != skey.0
            || inner.temp_session_id != skey.1
        {
            return Err("ENCRYPTED_MESSAGE_INVALID");
        }
        Ok(())
    }

    fn rpc_error(&mut self, now: Instant, skey: SessionKey, msg_id: i64, code: i32, message: &str) {
        self.rpc_error_after(now, skey, msg_id, code, message, None);
    }

    fn rpc_error_after(
        &mut self,
        now: Instant,
        skey: SessionKey,
        msg_id: i64,
        code: i32,
        message: &str,
        delay: Option<Duration>,
    ) {
        self.stats.rpc_errors += 1;
        let body = t::RpcError {
            error_code: code,
            error_message: message.to_string(),
        }
        .to_bytes();
        self.answer_after(now, skey, msg_id, body, delay);
    }

    fn answer_after(
        &mut self,
        now: Instant,
        skey: SessionKey,
        msg_id: i64,
        result: Vec<u8>,
        delay: Option<Duration>,
    ) {
        match delay {
            Some(d) if !d.is_zero() => {
                if let Some(s) = self.sessions.get_mut(&skey) {
                    s.running.insert(msg_id);
                    self.delayed.push(Delayed {
                        at: now + d,
                        session: skey,
                        req_msg_id: msg_id,
                        result,
                    });
                }
            }
            _ => self.answer(now, skey, msg_id, &result),
        }
    }

    /// Queues `rpc_result` for the query `req_msg_id`, and caches it.
    fn answer(&mut self, now: Instant, skey: SessionKey, req_msg_id: i64, result: &[u8]) {
        let mut body = Vec::with_capacity(12 + result.len());
        RpcResult::write(&mut body, req_msg_id, result);
        self.answer_bare(now, skey, req_msg_id, body);
    }

    /// Queues the answer to the query `req_msg_id` as it is (the service
    /// answers Telegram does not wrap in `rpc_result`), and caches it.
    fn answer_bare(&mut self, now: Instant, skey: SessionKey, req_msg_id: i64, body: Vec<u8>) {
        let Some((msg_id, seqno)) = self.push_content(now, skey, body.clone(), true, true) else {
            return;
        };
        let cap = self.config.max_cached_answers.max(1);
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        s.answers.insert(
            req_msg_id,
            Answer {
                msg_id,
                seqno,
                body,
            },
        );
        s.answer_order.push_back(req_msg_id);
        while s.answer_order.len() > cap {
            if let Some(old) = s.answer_order.pop_front() {
                s.answers.remove(&old);
            }
        }
    }

    /// Queues a content message; `store` keeps it until acknowledged.
    /// Returns its msg_id and seqno.
    fn push_content(
        &mut self,
        now: Instant,
        skey: SessionKey,
        body: Vec<u8>,
        response: bool,
        store: bool,
    ) -> Option<(i64, i32)> {
        let msg_id = self.clock.next_msg_id(now, response);
        let s = self.sessions.get_mut(&skey)?;
        let seqno = s.seq.next(true);
        if store {
            s.unacked.insert(
                msg_id,
                Stored {
                    seqno,
                    body: body.clone(),
                },
            );
            // A client that never acknowledges must not grow the server
            // without bound: the oldest unacknowledged messages go first.
            while s.unacked.len() > self.config.max_cached_answers.max(1) {
                s.unacked.pop_first();
            }
        }
        s.outbox.push(Outgoing {
            msg_id,
            seqno,
            body,
        });
        Some((msg_id, seqno))
    }

    /// Queues a service (not content-related) message.
    fn push_service(&mut self, now: Instant, skey: SessionKey, body: Vec<u8>) {
        let msg_id = self.clock.next_msg_id(now, true);
        if let Some(s) = self.sessions.get_mut(&skey) {
            let seqno = s.seq.next(false);
            s.outbox.push(Outgoing {
                msg_id,
                seqno,
                body,
            });
        }
    }

    fn bad_msg(&mut self, now: Instant, skey: SessionKey, msg_id: i64, seqno: i32, code: i32) {
        *self.stats.bad_msgs.entry(code).or_insert(0) += 1;
        let body = t::BadMsgNotification {
            bad_msg_id: msg_id,
            bad_msg_seqno: seqno,
            error_code: code,
        }
        .to_bytes();
        self.push_service(now, skey, body);
    }

    fn bad_salt(&mut self, now: Instant, skey: SessionKey, msg_id: i64, seqno: i32, salt: i64) {
        self.stats.bad_salts += 1;
        let body = t::BadServerSalt {
            bad_msg_id: msg_id,
            bad_msg_seqno: seqno,
            error_code: 48,
            new_server_salt: salt,
        }
        .to_bytes();
        self.push_service(now, skey, body);
    }

    fn state_info(&mut self, now: Instant, skey: SessionKey, req_msg_id: i64, ids: &[i64]) {
        let Some(s) = self.sessions.get(&skey) else {
            return;
        };
        let max = s.seen.last_key_value().map(|(k, _)| *k);
        let min = s.seen.first_key_value().map(|(k, _)| *k);
        let info: Vec<u8> = ids
            .iter()
            .map(|id| match s.seen.get(id) {
                Some(seen) => {
                    let mut b = 4u8;
                    if seen.acked {
                        b |= 8;
                    }
                    if !seen.content {
                        b |= 16;
                    }
                    let answered = s.answers.contains_key(id);
                    if seen.query && (answered || s.running.contains(id)) {
                        b |= 32;
                    }
                    if answered {
                        b |= 64;
                    }
                    b
                }
                None if max.is_none_or(|m| *id > m) => 3,
                None if min.is_none_or(|m| *id < m) => 1,
                None => 2,
            })
            .collect();
        let body = t::MsgsStateInfo { req_msg_id, info }.to_bytes();
        self.push_service(now, skey, body);
    }

    fn resend_messages(&mut self, skey: SessionKey, ids: &[i64]) {
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        for id in ids {
            if let Some(st) = s.unacked.get(id) {
                s.outbox.push(Outgoing {
                    msg_id: *id,
                    seqno: st.seqno,
                    body: st.body.clone(),
                });
                self.stats.resent_messages += 1;
            }
        }
    }

    fn resend_answers(&mut self, skey: SessionKey, ids: &[i64]) {
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        for id in ids {
            if let Some(a) = s.answers.get(id) {
                s.outbox.push(Outgoing {
                    msg_id: a.msg_id,
                    seqno: a.seqno,
                    body: a.body.clone(),
                });
                self.stats.resent_answers += 1;
            }
        }
    }

    fn drop_answer(&mut self, skey: SessionKey, req_msg_id: i64) -> enums::RpcDropAnswer {
        let Some(s) = self.sessions.get_mut(&skey) else {
            return t::RpcAnswerUnknown {}.into();
        };
        if s.running.remove(&req_msg_id) {
            self.delayed
                .retain(|d| !(d.session == skey && d.req_msg_id == req_msg_id));
            return t::RpcAnswerDroppedRunning {}.into();
        }
        if let Some(a) = s.answers.remove(&req_msg_id) {
            s.unacked.remove(&a.msg_id);
            s.outbox.retain(|o| o.msg_id != a.msg_id);
            return t::RpcAnswerDropped {
                msg_id: a.msg_id,
                seq_no: a.seqno,
                bytes: a.body.len() as i32,
            }
            .into();
        }
        t::RpcAnswerUnknown {}.into()
    }

    fn destroy_doomed_keys(&mut self) {
        for id in std::mem::take(&mut self.doomed_keys) {
            self.keys.remove(&id);
            self.sessions.retain(|k, _| k.0 != id);
            self.delayed.retain(|d| d.session.0 != id);
        }
    }

    // ---------------------------------------------------------------------
    // Sending a session's messages

    /// Sends what the session has queued: unacknowledged messages again if
    /// it moved to a new connection, then the outbox, with pending acks
    /// piggybacked. Acks alone wait for `ack_delay` unless `force_acks`.
    fn flush(&mut self, now: Instant, skey: SessionKey, force_acks: bool) {
        let ack_delay = self.config.ack_delay;
        let live = self
            .sessions
            .get(&skey)
            .is_some_and(|s| self.conns.contains_key(&s.conn));
        let Some(s) = self.sessions.get_mut(&skey) else {
            return;
        };
        if !live {
            // Kept messages wait for the next connection; the rest is moot.
            // So do the acks: their deadline is set again once they can go.
            s.outbox.clear();
            s.resend_unacked = true;
            s.ack_deadline = None;
            return;
        }
        let mut msgs: Vec<Outgoing> = Vec::new();
        if s.resend_unacked {
            s.resend_unacked = false;
            for (id, st) in &s.unacked {
                if !s.outbox.iter().any(|o| o.msg_id == *id) {
                    msgs.push(Outgoing {
                        msg_id: *id,
                        seqno: st.seqno,
                        body: st.body.clone(),
                    });
                }
            }
            self.stats.resent_messages += msgs.len() as u64;
        }
        msgs.append(&mut s.outbox);
        if msgs.is_empty() {
            if s.pending_acks.is_empty() {
                s.ack_deadline = None;
                return;
            }
            if !force_acks && !ack_delay.is_zero() {
                let deadline = s.ack_deadline.get_or_insert(now + ack_delay);
                if *deadline > now {
                    return;
                }
            }
        }
        s.ack_deadline = None;
        let acks = std::mem::take(&mut s.pending_acks);
        for id in &acks {
            if let Some(seen) = s.seen.get_mut(id) {
                seen.acked = true;
            }
        }
        let conn = s.conn;
        for chunk in acks.chunks(8192) {
            let msg_id = self.clock.next_msg_id(now, false);
            let s = self.sessions.get_mut(&skey).expect("looked up above");
            msgs.push(Outgoing {
                msg_id,
                seqno: s.seq.next(false),
                body: t::MsgsAck {
                    msg_ids: chunk.to_vec(),
                }
                .to_bytes(),
            });
            self.stats.acks_sent += 1;
        }
        for group in msgs.chunks(mtsender::tl::message::MAX_CONTAINER_MESSAGES) {
            if let [one] = group {
                self.send_encrypted(conn, skey, one.msg_id, one.seqno, &one.body, now);
            } else {
                let mut body = Vec::new();
                let mut w = ContainerWriter::begin(&mut body);
                for m in group {
                    w.push(&mut body, m.msg_id, m.seqno, &m.body);
                }
                w.finish(&mut body);
                let msg_id = self.clock.next_msg_id(now, false);
                let seqno = self
                    .sessions
                    .get_mut(&skey)
                    .map_or(0, |s| s.seq.next(false));
                self.send_encrypted(conn, skey, msg_id, seqno, &body, now);
            }
        }
    }

    fn send_encrypted(
        &mut self,
        conn: ConnId,
        skey: SessionKey,
        msg_id: i64,
        seqno: i32,
        body: &[u8],
        now: Instant,
    ) {
        let secs = self.clock.unix_secs(now);
        let Some(key) = self.keys.get_mut(&skey.0) else {
            return;
        };
        let salt = key.salts.current(secs);
        let mut buf = FrameBuf::with_capacity(128, 32 + body.len() + 16 * 9 + 16);
        buf.append_with(|v| {
            v.extend_from_slice(&salt.to_le_bytes());
            v.extend_from_slice(&skey.1.to_le_bytes());
            v.extend_from_slice(&msg_id.to_le_bytes());
            v.extend_from_slice(&seqno.to_le_bytes());
            // Bodies are built here and stay far below 2 GiB.
            v.extend_from_slice(&(body.len() as i32).to_le_bytes());
            v.extend_from_slice(body);
        });
        crypto::encrypt_message_in_place(&key.key, Side::Server, &mut buf, &mut self.rng);
        self.transmit(conn, buf);
    }
}

/// The quick ack token of a client packet: the first 32 bits of
/// SHA256(auth_key[88..120] ++ plaintext with padding), top bit set.
fn quick_ack_token(key: &AuthKey, plaintext: &[u8]) -> u32 {
    let hash = Sha256::new()
        .chain_update(&key.as_bytes()[88..120])
        .chain_update(plaintext)
        .finalize();
    u32::from_le_bytes([hash[0], hash[1], hash[2], hash[3]]) | 0x8000_0000
}

/// Cuts the padded intermediate transport's padding off a plain message:
/// its length field says where the body ends.
pub fn trim_plain_padding(packet: &mut Vec<u8>) {
    let keep = mtsender::tl::message::PlainMessage::strip_transport_padding(packet).len();
    packet.truncate(keep);
}

pub(crate) fn first_id(body: &[u8]) -> Option<u32> {
    Reader::new(body).read_u32().ok()
}

/// Whether a client message is content-related, by its constructor.
fn classify(body: &[u8]) -> Class {
    match first_id(body) {
        Some(t::MsgsAck::CONSTRUCTOR_ID | MSG_CONTAINER_ID) => Class::Service,
        Some(
            t::MsgsStateReq::CONSTRUCTOR_ID
            | t::MsgsStateInfo::CONSTRUCTOR_ID
            | t::MsgsAllInfo::CONSTRUCTOR_ID
            | t::MsgResendReq::CONSTRUCTOR_ID
            | t::MsgResendAnsReq::CONSTRUCTOR_ID
            | t::MsgDetailedInfo::CONSTRUCTOR_ID
            | t::MsgNewDetailedInfo::CONSTRUCTOR_ID
            | f::HttpWait::CONSTRUCTOR_ID
            | f::GetFutureSalts::CONSTRUCTOR_ID
            | f::RpcDropAnswer::CONSTRUCTOR_ID
            | f::DestroySession::CONSTRUCTOR_ID
            | f::DestroyAuthKey::CONSTRUCTOR_ID
            | MSG_COPY_ID,
        ) => Class::Either,
        _ => Class::Content,
    }
}

/// The query inside `invokeWithLayer`, `initConnection`,
/// `invokeWithoutUpdates`, `invokeAfterMsg` and `invokeAfterMsgs`, however
/// nested. `None` when a wrapper is malformed.
pub fn innermost(body: &[u8]) -> Option<&[u8]> {
    let mut cur = body;
    for _ in 0..MAX_WRAPPERS {
        let mut r = Reader::new(cur);
        match r.read_u32().ok()? {
            f::InvokeWithLayer::CONSTRUCTOR_ID => {
                r.read_i32().ok()?;
            }
            f::InvokeWithoutUpdates::CONSTRUCTOR_ID => {}
            f::InvokeAfterMsg::CONSTRUCTOR_ID => {
                r.read_i64().ok()?;
            }
            INVOKE_AFTER_MSGS_ID => {
                let n = r.read_vector_len(true, 8).ok()?;
                r.read_raw(n * 8).ok()?;
            }
            f::InitConnection::CONSTRUCTOR_ID => {
                let flags = r.read_u32().ok()?;
                r.read_i32().ok()?;
                for _ in 0..6 {
                    r.read_bytes().ok()?;
                }
                if flags & 1 != 0 {
                    r.expect_id(INPUT_CLIENT_PROXY_ID).ok()?;
                    r.read_bytes().ok()?;
                    r.read_i32().ok()?;
                }
                if flags & 2 != 0 {
                    skip_json(&mut r, 0)?;
                }
            }
            _ => return Some(cur),
        }
        cur = r.rest();
    }
    None
}

/// Skips one `JSONValue` (initConnection's `params`).
fn skip_json(r: &mut Reader<'_>, depth: u8) -> Option<()> {
    if depth > 32 {
        return None;
    }
    match r.read_u32().ok()? {
        0x3f6d_7b68 => {} // jsonNull
        0xc734_5e6a => {
            r.read_u32().ok()?; // jsonBool value:Bool
        }
        0x2be0_dfa4 => {
            r.read_f64().ok()?; // jsonNumber value:double
        }
        0xb71e_767a => {
            r.read_bytes().ok()?; // jsonString value:string
        }
        0xf744_4763 => {
            // jsonArray value:Vector<JSONValue>
            let n = r.read_vector_len(true, 4).ok()?;
            for _ in 0..n {
                skip_json(r, depth + 1)?;
            }
        }
        0x99c1_d49d => {
            // jsonObject value:Vector<JSONObjectValue>
            let n = r.read_vector_len(true, 8).ok()?;
            for _ in 0..n {
                r.expect_id(0xc0de_1bd9).ok()?; // jsonObjectValue key:string value:JSONValue
                r.read_bytes().ok()?;
                skip_json(r, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
}
