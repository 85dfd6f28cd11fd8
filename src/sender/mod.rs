//! The [`Sender`]: every DC's connection, the retry loop and the request
//! contract, as one sans-IO machine.
//!
//! Inputs go in through [`Sender::invoke`] and [`Sender::handle_input`];
//! outputs come out of [`Sender::poll_output`]. After every call that takes
//! input, drain `poll_output` until it returns [`Output::SleepUntil`] (wake
//! the sender with [`Input::Timeout`] then) or `None` (nothing is pending).
//! The sender never reads a clock: `now` comes with every input.
//!
//! # Method groups
//!
//! - Commands: [`invoke`](Sender::invoke), [`shutdown`](Sender::shutdown).
//! - Input: [`handle_input`](Sender::handle_input).
//! - Output: [`poll_output`](Sender::poll_output),
//!   [`next_timeout`](Sender::next_timeout).
//! - State: [`export_session`](Sender::export_session),
//!   [`home_dc`](Sender::home_dc), [`pending`](Sender::pending),
//!   [`stats`](Sender::stats).

mod config;
pub mod persist;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

pub use config::{DcTable, InitParams, SenderConfig, PRODUCTION_DCS, TEST_DCS};
use persist::{DcAuth, SessionData};

use crate::buf::FrameBuf;
use crate::crypto::{strip_transport_padding, AuthKey};
use crate::error::{InvocationError, RpcError};
use crate::handshake::{Handshake, HandshakeConfig, KeyKind};
use crate::policy::flood::{migration, Migration};
use crate::policy::RetryContext;
use crate::session::ids::{IdMap, IdSlabMap};
use crate::session::{is_ping, BindParams, Clock, Session, SessionEvent};
use crate::tl::functions::{InitConnection, InvokeWithLayer};
use crate::tl::message::PlainMessage;
use crate::tl::{RawTail, Serialize};
use crate::transport::{obfuscation_init, ClientCodec, Frame, TransportKind};

/// The session request id of the sender's own `auth.bindTempAuthKey`
/// (request ids count up from 0 and never reach it).
const BIND_REQ: u64 = u64::MAX;

/// Identifies a request from [`Sender::invoke`] to its one
/// [`Output::Response`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Identifies a connection the sender asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Which DC a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dc {
    /// The home DC, following `PHONE/NETWORK/USER_MIGRATE_X`.
    Home,
    /// A given DC.
    Id(i32),
}

/// A request to send: serialized TL of an API method. An MTProto `ping`
/// works too: its `pong` is the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    body: Vec<u8>,
    dc: Dc,
    timeout: Option<Duration>,
}

impl Request {
    /// A request for the home DC with the sender's default deadline.
    pub fn new(body: Vec<u8>) -> Self {
        Self {
            body,
            dc: Dc::Home,
            timeout: None,
        }
    }

    /// Sends it to `dc`.
    pub fn dc(mut self, dc: Dc) -> Self {
        self.dc = dc;
        self
    }

    /// Fails it with [`InvocationError::Timeout`] if no answer comes within
    /// `timeout` of the invoke.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Why a connection closed, as the adapter saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Connecting failed.
    ConnectFailed(String),
    /// The peer closed, or reading/writing failed.
    Lost(String),
}

/// Something that happened, fed to [`Sender::handle_input`].
#[derive(Debug)]
pub enum Input<'a> {
    /// The connection asked for by [`Output::Connect`] is open.
    Connected {
        /// The connection.
        conn: ConnId,
        /// The time.
        now: Instant,
    },
    /// Bytes arrived, in any chunking.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: &'a [u8],
        /// The time.
        now: Instant,
    },
    /// The connection closed or could not be opened.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
        /// The time.
        now: Instant,
    },
    /// The time given by [`Output::SleepUntil`] came (or any later time).
    Timeout(Instant),
}

/// Details that come with a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The DC that answered (or last tried).
    pub dc: i32,
    /// Times it was sent and failed before this outcome.
    pub failures: u32,
    /// Set when the server forgot its session while the request was in
    /// flight and the request was sent again: it may have run twice.
    pub maybe_repeated: bool,
}

/// Why updates may have been missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUpReason {
    /// The connection was re-established after a drop.
    Reconnected,
    /// The server started a new session (it forgot the old one).
    NewSession,
}

/// Why the sender stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// [`Sender::shutdown`] was called.
    Requested,
    /// The home DC's connection dropped and the restart policy said no.
    ConnectionLost {
        /// The DC.
        dc: i32,
    },
}

/// What the sender asks its owner to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Open a TCP connection to `addr`; report [`Input::Connected`] or
    /// [`Input::Closed`].
    Connect {
        /// The connection's id.
        conn: ConnId,
        /// The DC.
        dc: i32,
        /// Where.
        addr: SocketAddr,
    },
    /// Write these bytes to the connection, in order.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the connection (do not report it closed).
    Disconnect {
        /// The connection.
        conn: ConnId,
    },
    /// The one outcome of a request.
    Response {
        /// The request.
        id: RequestId,
        /// Its result's TL bytes, or why it failed.
        result: Result<Vec<u8>, InvocationError>,
        /// Details.
        meta: ResponseMeta,
    },
    /// A server-pushed update, in arrival order per DC.
    Update {
        /// The DC.
        dc: i32,
        /// Its TL bytes.
        bytes: Vec<u8>,
    },
    /// Updates may have been missed: run `updates.getDifference`.
    CatchUp {
        /// The DC.
        dc: i32,
        /// Why.
        reason: CatchUpReason,
    },
    /// Something [`export_session`](Sender::export_session) saves changed
    /// (a new auth key, another home DC).
    SessionChanged,
    /// The sender stopped; emitted once. Every request has had its response.
    Shutdown {
        /// Why.
        reason: ShutdownReason,
    },
    /// Nothing more to do until this time: feed [`Input::Timeout`] then.
    /// The last output of every drain.
    SleepUntil(Instant),
}

/// Why the sender next wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerReason {
    /// A stand-alone ack is due.
    Ack,
    /// A keepalive ping is due.
    Ping,
    /// A ping went unanswered too long.
    PongTimeout,
    /// A restart after a drop.
    Restart,
    /// A request sleeping through a flood wait.
    FloodWait,
    /// A request backing off after a failure.
    Backoff,
    /// A scheduled connection refresh.
    Refresh,
    /// An old connection's drain time ran out.
    Drain,
    /// Connecting takes too long.
    ConnectTimeout,
    /// An auth key step takes too long.
    HandshakeTimeout,
    /// A request's own deadline.
    RequestTimeout,
}

/// Counters, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections asked for.
    pub connects: u64,
    /// Drops followed by a restart.
    pub restarts: u64,
    /// Auth keys created.
    pub handshakes: u64,
    /// Requests answered successfully.
    pub ok: u64,
    /// Requests that ended in an error.
    pub failed: u64,
    /// Retries after a flood wait.
    pub flood_waits: u64,
    /// Total time slept through flood waits.
    pub flood_slept: Duration,
    /// Retries after other errors.
    pub retries: u64,
    /// Requests moved by a migration.
    pub migrations: u64,
    /// Graceful refreshes completed.
    pub refreshes: u64,
    /// Inbound packets dropped by the checks.
    pub dropped_packets: u64,
    /// Inbound packets decrypted together with others of the same read.
    pub packets_in_batches: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ReqTimer {
    Retry,
    Deadline,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for its DC to be ready.
    Queued,
    /// In the DC's session (queued there or in flight).
    InSession,
    /// Sleeping before a retry.
    Sleeping { until: Instant, flood: bool },
}

#[derive(Debug)]
struct Req {
    /// Shared with the session while it is there, so it is held once.
    body: Arc<[u8]>,
    target: Dc,
    dc: i32,
    phase: Phase,
    failures: u32,
    slept: Duration,
    migrations: u32,
    deadline: Option<Instant>,
    maybe_repeated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DcPhase {
    Idle,
    Connecting,
    Handshaking,
    Ready,
    WaitingRestart { until: Instant },
    Closed,
}

struct DcState {
    addr: SocketAddr,
    phase: DcPhase,
    /// The permanent key.
    auth_key: Option<AuthKey>,
    /// With PFS: the temporary key the session runs on, and when it expires
    /// (server unix time).
    temp_key: Option<(AuthKey, i64)>,
    /// With PFS: the temporary key is bound to the permanent one.
    bound: bool,
    salt: i64,
    time_offset: i64,
    /// The offset comes from a handshake just now (a restored one may be
    /// stale).
    clock_synced: bool,
    session: Option<Session>,
    conn: Option<ConnId>,
    /// A new connection being opened for a graceful refresh.
    refreshing: Option<ConnId>,
    draining: Vec<(ConnId, Instant)>,
    queue: VecDeque<RequestId>,
    needs_init: bool,
    ever_ready: bool,
    /// The next new_session_created is the one every new session starts
    /// with, not a sign of lost state.
    expect_new_session: bool,
    next_ping: Option<Instant>,
    pong_due: Option<(i64, Instant)>,
    refresh_at: Option<Instant>,
}

impl DcState {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            phase: DcPhase::Idle,
            auth_key: None,
            temp_key: None,
            bound: false,
            salt: 0,
            time_offset: 0,
            clock_synced: false,
            session: None,
            conn: None,
            refreshing: None,
            draining: Vec::new(),
            queue: VecDeque::new(),
            needs_init: true,
            ever_ready: false,
            expect_new_session: true,
            next_ping: None,
            pong_due: None,
            refresh_at: None,
        }
    }
}

struct Conn {
    dc: i32,
    codec: ClientCodec,
    handshake: Option<Handshake>,
    handshake_kind: KeyKind,
    connected: bool,
    connect_deadline: Instant,
}

/// The sender. See the [module docs](self).
pub struct Sender {
    config: SenderConfig,
    clock: Clock,
    rng: ChaCha20Rng,
    home_dc: i32,
    dcs: BTreeMap<i32, DcState>,
    conns: IdMap<ConnId, Conn>,
    next_conn: u64,
    requests: IdSlabMap<RequestId, Req>,
    next_req: u64,
    timers: BTreeSet<(Instant, RequestId, ReqTimer)>,
    outputs: VecDeque<Output>,
    now: Instant,
    dirty: bool,
    sleep_emitted: bool,
    shut_down: bool,
    buf: FrameBuf,
    /// Packets encrypted together in one flush; each is handed over as its
    /// transmit.
    bufs: Vec<FrameBuf>,
    stats: Stats,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("home_dc", &self.home_dc)
            .field("pending", &self.requests.len())
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender with no connection yet. `unix_time` is the wall-clock time
    /// at `now` (for msg_ids); `seed` seeds every random choice it makes.
    pub fn new(config: SenderConfig, now: Instant, unix_time: Duration, seed: [u8; 32]) -> Self {
        Self {
            home_dc: config.home_dc,
            config,
            clock: Clock::new(now, unix_time),
            rng: ChaCha20Rng::from_seed(seed),
            dcs: BTreeMap::new(),
            conns: IdMap::default(),
            next_conn: 0,
            requests: IdSlabMap::default(),
            next_req: 0,
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            now,
            dirty: false,
            sleep_emitted: false,
            shut_down: false,
            buf: FrameBuf::new(),
            bufs: (0..crate::crypto::PARALLEL_MESSAGES)
                .map(|_| FrameBuf::new())
                .collect(),
            stats: Stats::default(),
        }
    }

    /// A sender that resumes a saved session: its auth keys are used
    /// instead of creating new ones.
    pub fn with_session(
        config: SenderConfig,
        data: SessionData,
        now: Instant,
        unix_time: Duration,
        seed: [u8; 32],
    ) -> Self {
        let mut s = Self::new(config, now, unix_time, seed);
        if data.home_dc != 0 {
            s.home_dc = data.home_dc;
        }
        for d in data.dcs {
            if let Some(state) = s.dc_state(d.dc) {
                state.auth_key = Some(d.auth_key);
                state.salt = d.salt;
                state.time_offset = d.time_offset;
            }
        }
        s
    }

    // ---- state ----

    /// The home DC.
    pub fn home_dc(&self) -> i32 {
        self.home_dc
    }

    /// Requests invoked and not yet answered.
    pub fn pending(&self) -> usize {
        self.requests.len()
    }

    /// Entries held in the sender's tables for requests: the requests
    /// themselves, their timers, the DC queues, and the sessions' tables
    /// (see [`Session::held_entries`]). Back to 0 once everything is
    /// answered and acknowledged and no ping is out, which tests use to
    /// show that nothing leaks.
    pub fn held_entries(&self) -> usize {
        self.requests.len()
            + self.timers.len()
            + self
                .dcs
                .values()
                .map(|s| s.queue.len() + s.session.as_ref().map_or(0, Session::held_entries))
                .sum::<usize>()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether [`Output::Shutdown`] was emitted.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// What a process restart needs: home DC, auth keys, salts, offsets.
    pub fn export_session(&self) -> SessionData {
        SessionData {
            home_dc: self.home_dc,
            dcs: self
                .dcs
                .iter()
                .filter_map(|(&dc, s)| {
                    let key = s.auth_key.clone()?;
                    let (salt, time_offset) = match &s.session {
                        Some(sess) => (sess.salt(), sess.time_offset()),
                        None => (s.salt, s.time_offset),
                    };
                    Some(DcAuth {
                        dc,
                        auth_key: key,
                        salt,
                        time_offset,
                    })
                })
                .collect(),
        }
    }

    fn dc_state(&mut self, dc: i32) -> Option<&mut DcState> {
        if !self.dcs.contains_key(&dc) {
            let addr = self.config.dcs.get(dc)?;
            self.dcs.insert(dc, DcState::new(addr));
        }
        self.dcs.get_mut(&dc)
    }

    // ---- commands ----

    /// Queues a request. It never blocks and never fails here: its outcome
    /// comes later as exactly one [`Output::Response`] with the returned id.
    pub fn invoke(&mut self, now: Instant, request: Request) -> RequestId {
        self.advance(now);
        let id = RequestId(self.next_req);
        self.next_req += 1;
        let dc = match request.dc {
            Dc::Home => self.home_dc,
            Dc::Id(dc) => dc,
        };
        let deadline = request
            .timeout
            .or(self.config.request_timeout)
            .map(|t| now + t);
        self.requests.insert(
            id,
            Req {
                body: request.body.into(),
                target: request.dc,
                dc,
                phase: Phase::Queued,
                failures: 0,
                slept: Duration::ZERO,
                migrations: 0,
                deadline,
                maybe_repeated: false,
            },
        );
        if self.shut_down {
            self.finish(id, Err(InvocationError::Shutdown));
            return id;
        }
        if let Some(d) = deadline {
            self.timers.insert((d, id, ReqTimer::Deadline));
        }
        self.dispatch(now, id);
        id
    }

    /// Stops: every pending request fails with [`InvocationError::Shutdown`],
    /// every connection is closed, and [`Output::Shutdown`] is emitted once.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance(now);
        self.stop(ShutdownReason::Requested);
    }

    fn stop(&mut self, reason: ShutdownReason) {
        if self.shut_down {
            return;
        }
        self.shut_down = true;
        let mut ids: Vec<RequestId> = self.requests.keys().copied().collect();
        ids.sort();
        for id in ids {
            self.finish(id, Err(InvocationError::Shutdown));
        }
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            self.outputs.push_back(Output::Disconnect { conn });
        }
        self.conns.clear();
        for s in self.dcs.values_mut() {
            s.phase = DcPhase::Closed;
            s.conn = None;
            s.refreshing = None;
            s.draining.clear();
            s.next_ping = None;
            s.pong_due = None;
            s.refresh_at = None;
            if let Some(sess) = &mut s.session {
                sess.drain_requests();
            }
        }
        self.outputs.push_back(Output::Shutdown { reason });
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        self.sleep_emitted = false;
        self.dirty = true;
    }

    // ---- input ----

    /// Feeds one input. Then drain [`poll_output`](Self::poll_output).
    pub fn handle_input(&mut self, input: Input<'_>) {
        match input {
            Input::Connected { conn, now } => {
                self.advance(now);
                self.on_connected(now, conn);
            }
            Input::Received { conn, bytes, now } => {
                self.advance(now);
                self.on_received(now, conn, bytes);
            }
            Input::Closed { conn, reason, now } => {
                self.advance(now);
                self.on_closed(now, conn, reason);
            }
            Input::Timeout(now) => {
                self.advance(now);
                self.on_timeout(now);
            }
        }
    }

    // ---- output ----

    /// The next thing to do. Drain until [`Output::SleepUntil`] or `None`
    /// after every call that takes input.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() && self.dirty {
            self.dirty = false;
            let now = self.now;
            self.flush(now);
        }
        if let Some(o) = self.outputs.pop_front() {
            return Some(o);
        }
        if self.sleep_emitted {
            return None;
        }
        self.sleep_emitted = true;
        self.next_timeout().map(|(t, _)| Output::SleepUntil(t))
    }

    /// The next deadline and why, if any.
    pub fn next_timeout(&self) -> Option<(Instant, TimerReason)> {
        let mut best: Option<(Instant, TimerReason)> = None;
        self.each_deadline(true, |t, r| {
            if best.is_none_or(|(b, _)| t < b) {
                best = Some((t, r));
            }
        });
        best
    }

    /// Every pending deadline with its reason, soonest first: for logs and
    /// tests (it lists every request's timer; [`next_timeout`](Self::next_timeout)
    /// is the cheap one).
    pub fn deadlines(&self) -> Vec<(Instant, TimerReason)> {
        let mut all = Vec::new();
        self.each_deadline(false, |t, r| all.push((t, r)));
        all.sort_by_key(|(t, _)| *t);
        all
    }

    /// Calls `f` for each deadline; with `first_request_only`, only the
    /// soonest request timer (they are kept sorted).
    fn each_deadline(&self, first_request_only: bool, mut f: impl FnMut(Instant, TimerReason)) {
        let take = if first_request_only { 1 } else { usize::MAX };
        for &(t, id, kind) in self.timers.iter().take(take) {
            let reason = match (kind, self.requests.get(&id).map(|r| &r.phase)) {
                (ReqTimer::Deadline, _) => TimerReason::RequestTimeout,
                (ReqTimer::Retry, Some(Phase::Sleeping { flood: true, .. })) => {
                    TimerReason::FloodWait
                }
                (ReqTimer::Retry, _) => TimerReason::Backoff,
            };
            f(t, reason);
        }
        for s in self.dcs.values() {
            if let DcPhase::WaitingRestart { until } = s.phase {
                f(until, TimerReason::Restart);
            }
            if let Some(t) = s.next_ping {
                f(t, TimerReason::Ping);
            }
            if let Some((_, t)) = s.pong_due {
                f(t, TimerReason::PongTimeout);
            }
            if let Some(t) = s.refresh_at {
                f(t, TimerReason::Refresh);
            }
            for &(_, d) in &s.draining {
                f(d, TimerReason::Drain);
            }
            if let Some((t, _)) = s.session.as_ref().and_then(Session::poll_timeout) {
                f(t, TimerReason::Ack);
            }
        }
        for c in self.conns.values() {
            if !c.connected {
                f(c.connect_deadline, TimerReason::ConnectTimeout);
            } else if let Some(t) = c.handshake.as_ref().and_then(Handshake::poll_timeout) {
                f(t, TimerReason::HandshakeTimeout);
            }
        }
    }

    // ---- internals: requests ----

    fn finish(&mut self, id: RequestId, result: Result<Vec<u8>, InvocationError>) {
        let Some(req) = self.requests.remove(&id) else {
            return;
        };
        if let Phase::Sleeping { until, .. } = req.phase {
            self.timers.remove(&(until, id, ReqTimer::Retry));
        }
        if let Some(d) = req.deadline {
            self.timers.remove(&(d, id, ReqTimer::Deadline));
        }
        if result.is_ok() {
            self.stats.ok += 1;
        } else {
            self.stats.failed += 1;
        }
        self.outputs.push_back(Output::Response {
            id,
            result,
            meta: ResponseMeta {
                dc: req.dc,
                failures: req.failures,
                maybe_repeated: req.maybe_repeated,
            },
        });
    }

    /// Sends a request toward its DC: into the session when the DC is
    /// ready, else into the DC's queue (connecting if needed).
    fn dispatch(&mut self, now: Instant, id: RequestId) {
        let Some(dc) = self.requests.get(&id).map(|r| r.dc) else {
            return;
        };
        if let Err(e) = self.config.retry_policy.admit(now, dc) {
            self.finish(id, Err(e));
            return;
        }
        let pfs = self.config.pfs;
        let Some(state) = self.dc_state(dc) else {
            self.finish(id, Err(InvocationError::UnknownDc { dc }));
            return;
        };
        match state.phase {
            DcPhase::Closed => {
                self.finish(
                    id,
                    Err(InvocationError::Io {
                        dc,
                        reason: "connection closed by the restart policy".into(),
                    }),
                );
            }
            DcPhase::Ready if !pfs || state.bound => self.push_to_session(dc, id),
            DcPhase::Ready => state.queue.push_back(id),
            DcPhase::Idle => {
                state.queue.push_back(id);
                self.connect(now, dc);
            }
            DcPhase::Connecting | DcPhase::Handshaking | DcPhase::WaitingRestart { .. } => {
                state.queue.push_back(id);
            }
        }
    }

    fn push_to_session(&mut self, dc: i32, id: RequestId) {
        let init = self.config.init.clone();
        let Some(req) = self.requests.get_mut(&id) else {
            return;
        };
        let Some(state) = self.dcs.get_mut(&dc) else {
            return;
        };
        let Some(session) = state.session.as_mut() else {
            return;
        };
        req.phase = Phase::InSession;
        // initConnection wraps the first API call; a ping is an MTProto
        // service call and goes as it is.
        if state.needs_init && !is_ping(&req.body) {
            state.needs_init = false;
            if let Some(p) = init {
                session.push_request(id.0, wrap_init(&p, &req.body));
                return;
            }
        }
        session.push_shared_request(id.0, Arc::clone(&req.body));
    }

    /// A request's answer or failure came from its DC's session.
    fn on_result(
        &mut self,
        now: Instant,
        dc: i32,
        id: RequestId,
        result: Result<Vec<u8>, RpcError>,
        maybe_repeated: bool,
    ) {
        let Some(req) = self.requests.get_mut(&id) else {
            return;
        };
        req.maybe_repeated |= maybe_repeated;
        match result {
            Ok(bytes) => {
                self.config.retry_policy.on_success(now, dc);
                self.finish(id, Ok(bytes));
            }
            Err(e) => {
                if let Some(m) = migration(&e) {
                    self.migrate(now, id, m);
                } else {
                    self.retry_or_fail(now, id, InvocationError::Rpc(e));
                }
            }
        }
    }

    fn retry_or_fail(&mut self, now: Instant, id: RequestId, error: InvocationError) {
        let random = self.rng.next_u64();
        let Some(req) = self.requests.get_mut(&id) else {
            return;
        };
        req.failures = req.failures.saturating_add(1);
        let ctx = RetryContext::new(
            std::num::NonZeroU32::MIN.saturating_add(req.failures - 1),
            req.slept,
            error.clone(),
            now,
            req.dc,
            random,
        );
        match self.config.retry_policy.should_retry(&ctx) {
            ControlFlow::Continue(delay) => {
                let flood = error.rpc().is_some_and(|e| e.flood_wait().is_some());
                if flood {
                    self.stats.flood_waits += 1;
                    self.stats.flood_slept += delay;
                } else {
                    self.stats.retries += 1;
                }
                req.slept = req.slept.saturating_add(delay);
                let until = now + delay;
                req.phase = Phase::Sleeping { until, flood };
                self.timers.insert((until, id, ReqTimer::Retry));
            }
            ControlFlow::Break(()) => self.finish(id, Err(error)),
        }
    }

    fn migrate(&mut self, now: Instant, id: RequestId, m: Migration) {
        let Some(req) = self.requests.get_mut(&id) else {
            return;
        };
        let to = match m {
            Migration::Home(dc) | Migration::Request(dc) => dc,
        };
        req.migrations += 1;
        if req.migrations > self.config.max_migrations || req.dc == to {
            self.finish(id, Err(InvocationError::MigrationLoop { dc: to }));
            return;
        }
        if let Migration::Home(dc) = m {
            if req.target == Dc::Home && self.home_dc != dc {
                self.home_dc = dc;
                self.outputs.push_back(Output::SessionChanged);
            }
        }
        req.dc = to;
        req.phase = Phase::Queued;
        self.stats.migrations += 1;
        self.dispatch(now, id);
    }

    // ---- internals: connections ----

    fn connect(&mut self, now: Instant, dc: i32) {
        let conn = self.open_conn(now, dc);
        if let Some(state) = self.dcs.get_mut(&dc) {
            state.conn = Some(conn);
            state.phase = DcPhase::Connecting;
        }
    }

    fn open_conn(&mut self, now: Instant, dc: i32) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let kind = self.config.transport;
        let codec = if self.config.obfuscated && kind != TransportKind::Full {
            let init = obfuscation_init(&mut self.rng);
            let tag_dc = self.config.dcs.handshake_dc_id(dc) as i16;
            // obfuscated() refuses only Full, excluded above, and inits that
            // obfuscation_init never draws.
            ClientCodec::obfuscated(kind, init, tag_dc).unwrap_or_else(|_| ClientCodec::new(kind))
        } else {
            ClientCodec::new(kind)
        };
        let addr = self.dcs.get(&dc).map(|s| s.addr);
        self.conns.insert(
            conn,
            Conn {
                dc,
                codec,
                handshake: None,
                handshake_kind: KeyKind::Permanent,
                connected: false,
                connect_deadline: now + self.config.connect_timeout,
            },
        );
        self.stats.connects += 1;
        if let Some(addr) = addr {
            self.outputs.push_back(Output::Connect { conn, dc, addr });
        }
        conn
    }

    fn on_connected(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.connected = true;
        let dc = c.dc;
        let Some(state) = self.dcs.get_mut(&dc) else {
            return;
        };
        if state.refreshing == Some(conn) {
            // The refresh's new connection: traffic moves to it now.
            state.refreshing = None;
            if let Some(old) = state.conn.replace(conn) {
                state.draining.push((old, now + self.config.drain_timeout));
            }
            self.stats.refreshes += 1;
            self.schedule_refresh(now, dc);
            // A ping first, so the server sends the session's answers here.
            self.send_ping(now, dc);
            return;
        }
        self.start_handshake_or_ready(now, conn, dc);
    }

    /// Creates whatever key the DC still lacks on this connection (the
    /// permanent key, then with PFS a temporary one), else goes ready.
    fn start_handshake_or_ready(&mut self, now: Instant, conn: ConnId, dc: i32) {
        let pfs = self.config.pfs;
        let server_now = self.clock.unix_secs_at(now);
        let Some(state) = self.dcs.get_mut(&dc) else {
            return;
        };
        let kind = if state.auth_key.is_none() {
            KeyKind::Permanent
        } else if pfs
            && state
                .temp_key
                .as_ref()
                .is_none_or(|(_, exp)| server_now + state.time_offset + 60 >= *exp)
        {
            KeyKind::Temporary {
                expires_in: self.config.temp_key_lifetime.as_secs().min(i32::MAX as u64) as i32,
            }
        } else {
            self.on_ready(now, dc);
            return;
        };
        state.phase = DcPhase::Handshaking;
        let mut hc = HandshakeConfig::new(
            self.config.rsa_keys.clone(),
            self.config.dcs.handshake_dc_id(dc),
        );
        hc.step_timeout = self.config.handshake_timeout;
        hc.kind = kind;
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let hs = Handshake::new(hc, self.clock, now, seed);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.handshake = Some(hs);
            c.handshake_kind = kind;
        }
        self.flush_handshake(conn);
    }

    fn flush_handshake(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(hs) = c.handshake.as_mut() else {
            return;
        };
        while let Some(msg) = hs.poll_transmit() {
            self.buf.clear();
            self.buf.extend_from_slice(&msg);
            c.codec.encode(&mut self.buf, &mut self.rng);
            self.outputs.push_back(Output::Transmit {
                conn,
                bytes: self.buf.as_slice().to_vec(),
            });
        }
    }

    /// The DC has a connection and a key: create or resume its session.
    fn on_ready(&mut self, now: Instant, dc: i32) {
        let pfs = self.config.pfs;
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let catch_up = self.config.catch_up;
        let session_config = self.config.session.clone();
        let clock = self.clock;
        let Some(state) = self.dcs.get_mut(&dc) else {
            return;
        };
        state.phase = DcPhase::Ready;
        state.needs_init = true;
        self.config.restart_policy.on_connected();
        let reconnected = state.ever_ready;
        state.ever_ready = true;
        let new_session = state.session.is_none();
        match &mut state.session {
            Some(session) => session.on_connected(),
            None => {
                // A key from the handshake just now is synced; a restored one
                // takes its clock from the first server message.
                let key = match &state.temp_key {
                    Some((temp, _)) if pfs => temp.clone(),
                    // start_handshake_or_ready comes here only with a key.
                    _ => state.auth_key.clone().expect("on_ready needs a key"),
                };
                let mut cfg = session_config;
                cfg.time_synced = state.clock_synced;
                state.session = Some(Session::new(
                    cfg,
                    key,
                    state.salt,
                    clock,
                    state.time_offset,
                    seed,
                ));
                state.expect_new_session = true;
            }
        }
        if reconnected && catch_up {
            self.outputs.push_back(Output::CatchUp {
                dc,
                reason: CatchUpReason::Reconnected,
            });
        }
        let mut nonce = [0u8; 8];
        self.rng.fill_bytes(&mut nonce);
        let state = self.dcs.get_mut(&dc).expect("checked above");
        state.next_ping = Some(now + self.config.ping_interval);
        state.pong_due = None;
        let refresh_unset = state.refresh_at.is_none();
        let unbound = pfs && !state.bound;
        if unbound && new_session {
            // Nothing else goes on an unbound temporary key: bind first. (A
            // resumed session already holds its bind request.)
            if let (Some(perm), Some((_, exp)), Some(session)) = (
                state.auth_key.clone(),
                state.temp_key.as_ref(),
                state.session.as_mut(),
            ) {
                session.push_bind(
                    BIND_REQ,
                    BindParams {
                        perm_key: perm,
                        nonce: i64::from_le_bytes(nonce),
                        expires_at: (*exp).min(i32::MAX as i64) as i32,
                    },
                );
            }
        }
        if refresh_unset {
            self.schedule_refresh(now, dc);
        }
        if !unbound {
            self.push_queued(dc);
        }
    }

    /// Moves the DC's queued requests into its session.
    fn push_queued(&mut self, dc: i32) {
        let queued: Vec<RequestId> = self
            .dcs
            .get_mut(&dc)
            .map(|s| s.queue.drain(..).collect())
            .unwrap_or_default();
        for id in queued {
            self.push_to_session(dc, id);
        }
    }

    fn schedule_refresh(&mut self, now: Instant, dc: i32) {
        let every = self.config.refresh_every;
        if let Some(state) = self.dcs.get_mut(&dc) {
            state.refresh_at = every.map(|e| now + e);
        }
    }

    fn send_ping(&mut self, now: Instant, dc: i32) {
        let ping_id = self.rng.next_u64() as i64;
        let delay = self.config.disconnect_delay;
        let pong_timeout = self.config.pong_timeout;
        let interval = self.config.ping_interval;
        let Some(state) = self.dcs.get_mut(&dc) else {
            return;
        };
        let Some(session) = state.session.as_mut() else {
            // No session to ping on: the timer goes until one starts
            // (`on_ready` sets it), rather than staying due.
            state.next_ping = None;
            return;
        };
        session.ping(ping_id, Some(delay));
        state.pong_due = Some((ping_id, now + pong_timeout));
        state.next_ping = Some(now + interval);
    }

    fn on_received(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.codec.feed(bytes);
        let dc = c.dc;
        let padded = c.codec.kind() == TransportKind::PaddedIntermediate;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            // Packets of an encrypted session: as many at once as are
            // complete, decrypted together.
            if c.handshake.is_none() {
                if let Some(session) = self.dcs.get_mut(&dc).and_then(|s| s.session.as_mut()) {
                    let mut batch: [&mut [u8]; crate::crypto::PARALLEL_MESSAGES] =
                        Default::default();
                    let n = c.codec.next_packets(&mut batch);
                    if n > 0 {
                        if padded {
                            for p in &mut batch[..n] {
                                *p = strip_transport_padding(std::mem::take(p));
                            }
                        }
                        let mut dropped = 0;
                        session.handle_packets(now, &mut batch[..n], |_, r| {
                            dropped += u64::from(r.is_err());
                        });
                        self.stats.dropped_packets += dropped;
                        if n > 1 {
                            self.stats.packets_in_batches += n as u64;
                        }
                        self.drain_session_events(now, dc);
                        continue;
                    }
                }
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let frame = match c.codec.next_frame() {
                None => break,
                Some(Err(e)) => {
                    self.drop_conn(now, conn, format!("transport: {e}"), true);
                    return;
                }
                Some(Ok(f)) => f,
            };
            match frame {
                Frame::QuickAck(_) => {}
                Frame::TransportError(code) => {
                    self.on_transport_error(now, conn, dc, code);
                    return;
                }
                Frame::Packet(packet) => {
                    if let Some(hs) = c.handshake.as_mut() {
                        let packet = if padded {
                            PlainMessage::strip_transport_padding(packet)
                        } else {
                            packet
                        };
                        match hs.handle_packet(now, packet) {
                            Ok(Some(done)) => {
                                c.handshake = None;
                                let kind = c.handshake_kind;
                                self.stats.handshakes += 1;
                                if let Some(state) = self.dcs.get_mut(&dc) {
                                    match kind {
                                        KeyKind::Permanent => {
                                            state.auth_key = Some(done.auth_key);
                                            self.outputs.push_back(Output::SessionChanged);
                                        }
                                        KeyKind::Temporary { expires_in } => {
                                            let exp = done.expires_at.unwrap_or(
                                                self.clock.unix_secs_at(now)
                                                    + done.time_offset
                                                    + expires_in as i64,
                                            );
                                            state.temp_key = Some((done.auth_key, exp));
                                            state.bound = false;
                                        }
                                    }
                                    state.salt = done.first_salt;
                                    state.time_offset = done.time_offset;
                                    state.clock_synced = true;
                                    state.session = None;
                                }
                                self.start_handshake_or_ready(now, conn, dc);
                            }
                            Ok(None) => self.flush_handshake(conn),
                            Err(e) => {
                                self.fail_dc_requests(
                                    dc,
                                    InvocationError::Handshake {
                                        dc,
                                        reason: e.to_string(),
                                    },
                                );
                                self.outputs.push_back(Output::Disconnect { conn });
                                self.conns.remove(&conn);
                                if let Some(state) = self.dcs.get_mut(&dc) {
                                    state.conn = None;
                                    state.phase = DcPhase::Idle;
                                }
                                return;
                            }
                        }
                        continue;
                    }
                    let packet = if padded {
                        strip_transport_padding(packet)
                    } else {
                        packet
                    };
                    let Some(session) = self.dcs.get_mut(&dc).and_then(|s| s.session.as_mut())
                    else {
                        continue;
                    };
                    if session.handle_packet(now, packet).is_err() {
                        self.stats.dropped_packets += 1;
                    }
                    self.drain_session_events(now, dc);
                }
            }
        }
    }

    fn on_transport_error(&mut self, now: Instant, conn: ConnId, dc: i32, code: i32) {
        match code {
            // The server does not know our key: forget it; a new handshake
            // follows, and requests in flight go again on the new session.
            -404 => {
                let pfs = self.config.pfs;
                if let Some(state) = self.dcs.get_mut(&dc) {
                    if pfs && state.temp_key.is_some() {
                        state.temp_key = None;
                        state.bound = false;
                    } else {
                        state.auth_key = None;
                    }
                    if let Some(mut session) = state.session.take() {
                        // Written ones may have run under the key before the
                        // server lost it.
                        let mut written = session.sent_requests();
                        written.sort_unstable();
                        let held = session.drain_requests();
                        for (req, _) in held {
                            let id = RequestId(req);
                            if let Some(r) = self.requests.get_mut(&id) {
                                r.phase = Phase::Queued;
                                r.maybe_repeated |= written.binary_search(&req).is_ok();
                                state.queue.push_back(id);
                            }
                        }
                    }
                }
                // The DC's current connection runs on the forgotten key too
                // (the -404 may come on a refresh's old, draining one): it
                // goes as well, so that the restart makes a new key.
                let primary = self.dcs.get(&dc).and_then(|s| s.conn);
                self.drop_conn(now, conn, "transport error -404".into(), true);
                if let Some(p) = primary.filter(|&p| p != conn) {
                    self.drop_conn(now, p, "its key was forgotten (-404)".into(), true);
                }
            }
            -444 => {
                self.fail_dc_requests(dc, InvocationError::Transport { dc, code });
                self.drop_conn(now, conn, format!("transport error {code}"), true);
            }
            _ => self.drop_conn(now, conn, format!("transport error {code}"), true),
        }
    }

    fn drain_session_events(&mut self, now: Instant, dc: i32) {
        while let Some(ev) = self
            .dcs
            .get_mut(&dc)
            .and_then(|s| s.session.as_mut())
            .and_then(Session::poll_event)
        {
            match ev {
                SessionEvent::Result {
                    req: BIND_REQ,
                    result,
                    ..
                } => self.on_bound(dc, result),
                SessionEvent::Failed {
                    req: BIND_REQ,
                    code,
                } => self.on_bound(
                    dc,
                    Err(RpcError {
                        code,
                        message: "bad_msg_notification".into(),
                    }),
                ),
                SessionEvent::Result {
                    req,
                    result,
                    maybe_repeated,
                } => {
                    self.on_result(now, dc, RequestId(req), result, maybe_repeated);
                }
                SessionEvent::Update { body } => {
                    self.outputs.push_back(Output::Update { dc, bytes: body })
                }
                SessionEvent::NewSession { .. } => {
                    let Some(state) = self.dcs.get_mut(&dc) else {
                        continue;
                    };
                    if std::mem::take(&mut state.expect_new_session) {
                        continue;
                    }
                    if self.config.catch_up {
                        self.outputs.push_back(Output::CatchUp {
                            dc,
                            reason: CatchUpReason::NewSession,
                        });
                    }
                }
                SessionEvent::Pong { ping_id } => {
                    if let Some(state) = self.dcs.get_mut(&dc) {
                        if state.pong_due.is_some_and(|(p, _)| p == ping_id) {
                            state.pong_due = None;
                        }
                    }
                }
                SessionEvent::Failed { req, code } => {
                    self.finish(RequestId(req), Err(InvocationError::BadMessage { code }));
                }
                _ => {}
            }
        }
        self.maybe_finish_drain(dc);
    }

    /// The answer to `auth.bindTempAuthKey`.
    fn on_bound(&mut self, dc: i32, result: Result<Vec<u8>, RpcError>) {
        match result {
            Ok(b) if b == true.to_bytes() => {
                if let Some(state) = self.dcs.get_mut(&dc) {
                    state.bound = true;
                }
                self.push_queued(dc);
            }
            other => {
                let reason = match other {
                    Err(e) => format!("auth.bindTempAuthKey failed: {e}"),
                    Ok(_) => "auth.bindTempAuthKey answered false".into(),
                };
                self.fail_dc_requests(dc, InvocationError::Handshake { dc, reason });
            }
        }
    }

    fn maybe_finish_drain(&mut self, dc: i32) {
        let Some(state) = self.dcs.get_mut(&dc) else {
            return;
        };
        if state.draining.is_empty() {
            return;
        }
        let idle = state.session.as_ref().is_none_or(|s| s.in_flight() == 0);
        if idle {
            for (conn, _) in std::mem::take(&mut state.draining) {
                self.conns.remove(&conn);
                self.outputs.push_back(Output::Disconnect { conn });
            }
        }
    }

    fn on_closed(&mut self, now: Instant, conn: ConnId, reason: CloseReason) {
        let why = match reason {
            CloseReason::ConnectFailed(s) => format!("connect failed: {s}"),
            CloseReason::Lost(s) => s,
        };
        self.drop_conn(now, conn, why, false);
    }

    /// A connection is gone (or must go). A draining or refreshing one just
    /// disappears; the DC's active one is a drop: its session's requests
    /// become uncertain and the restart policy decides what follows.
    fn drop_conn(&mut self, now: Instant, conn: ConnId, reason: String, we_close: bool) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if we_close {
            self.outputs.push_back(Output::Disconnect { conn });
        }
        let dc = c.dc;
        let Some(state) = self.dcs.get_mut(&dc) else {
            return;
        };
        if state.draining.iter().any(|(d, _)| *d == conn) {
            state.draining.retain(|(d, _)| *d != conn);
            return;
        }
        if state.refreshing == Some(conn) {
            state.refreshing = None;
            self.schedule_refresh(now, dc);
            return;
        }
        if state.conn != Some(conn) {
            return;
        }
        state.conn = None;
        state.next_ping = None;
        state.pong_due = None;
        state.refresh_at = None;
        // A refresh under way was to replace the connection just lost: the
        // restart opens another one instead, so this one is closed (left
        // open, it could later take the place of the restart's connection).
        let abandoned = state.refreshing.take();
        if let Some(s) = &mut state.session {
            s.on_connection_lost();
        }
        if let Some(r) = abandoned {
            self.conns.remove(&r);
            self.outputs.push_back(Output::Disconnect { conn: r });
        }
        // Requests pushed into the session wait there; those never sent
        // stay queued too. Nothing fails on a drop unless the policy says so.
        match self.config.restart_policy.restart_interval() {
            Some(delay) => {
                self.stats.restarts += 1;
                if let Some(state) = self.dcs.get_mut(&dc) {
                    state.phase = DcPhase::WaitingRestart { until: now + delay };
                }
            }
            None => {
                if let Some(state) = self.dcs.get_mut(&dc) {
                    state.phase = DcPhase::Closed;
                }
                self.fail_dc_requests(dc, InvocationError::Io { dc, reason });
                if dc == self.home_dc {
                    self.stop(ShutdownReason::ConnectionLost { dc });
                }
            }
        }
    }

    /// Fails every request bound to `dc` (queued, in its session, or
    /// sleeping before a retry there).
    fn fail_dc_requests(&mut self, dc: i32, error: InvocationError) {
        if let Some(state) = self.dcs.get_mut(&dc) {
            state.queue.clear();
            if let Some(s) = &mut state.session {
                s.drain_requests();
            }
        }
        let mut ids: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.dc == dc)
            .map(|(&id, _)| id)
            .collect();
        ids.sort();
        for id in ids {
            self.finish(id, Err(error.clone()));
        }
    }

    // ---- internals: time ----

    fn on_timeout(&mut self, now: Instant) {
        // Request timers.
        while let Some(&(t, id, kind)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            match kind {
                ReqTimer::Deadline => {
                    if let Some(req) = self.requests.get(&id) {
                        let dc = req.dc;
                        if let Some(s) = self.dcs.get_mut(&dc).and_then(|s| s.session.as_mut()) {
                            s.cancel(id.0);
                        }
                        if let Some(state) = self.dcs.get_mut(&dc) {
                            state.queue.retain(|q| *q != id);
                        }
                        self.finish(id, Err(InvocationError::Timeout));
                    }
                }
                ReqTimer::Retry => {
                    if let Some(req) = self.requests.get_mut(&id) {
                        req.phase = Phase::Queued;
                        if req.target == Dc::Home {
                            req.dc = self.home_dc;
                        }
                        self.dispatch(now, id);
                    }
                }
            }
        }
        // Connection timers.
        let conns: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .filter_map(|(&id, c)| {
                if !c.connected && now >= c.connect_deadline {
                    Some((id, true))
                } else if c
                    .handshake
                    .as_ref()
                    .and_then(Handshake::poll_timeout)
                    .is_some_and(|d| now >= d)
                {
                    Some((id, false))
                } else {
                    None
                }
            })
            .collect();
        for (conn, connecting) in conns {
            let why = if connecting {
                "connect timed out"
            } else {
                "handshake timed out"
            };
            self.drop_conn(now, conn, why.into(), true);
        }
        // DC timers.
        let dcs: Vec<i32> = self.dcs.keys().copied().collect();
        for dc in dcs {
            let Some(state) = self.dcs.get_mut(&dc) else {
                continue;
            };
            if let DcPhase::WaitingRestart { until } = state.phase {
                if now >= until {
                    state.phase = DcPhase::Idle;
                    self.connect(now, dc);
                    continue;
                }
            }
            if state.pong_due.is_some_and(|(_, d)| now >= d) {
                if let Some(conn) = state.conn {
                    self.drop_conn(now, conn, "no pong: connection dead".into(), true);
                    continue;
                }
            }
            if state.phase == DcPhase::Ready && state.next_ping.is_some_and(|t| now >= t) {
                self.send_ping(now, dc);
            }
            let Some(state) = self.dcs.get_mut(&dc) else {
                continue;
            };
            if let Some(s) = &mut state.session {
                s.handle_timeout(now);
            }
            let expired: Vec<ConnId> = state
                .draining
                .iter()
                .filter(|(_, d)| now >= *d)
                .map(|(c, _)| *c)
                .collect();
            for conn in expired {
                state.draining.retain(|(c, _)| *c != conn);
                self.conns.remove(&conn);
                self.outputs.push_back(Output::Disconnect { conn });
            }
            let Some(state) = self.dcs.get_mut(&dc) else {
                continue;
            };
            if state.phase == DcPhase::Ready
                && state.refreshing.is_none()
                && state.refresh_at.is_some_and(|t| now >= t)
            {
                state.refresh_at = None;
                let conn = self.open_conn(now, dc);
                if let Some(state) = self.dcs.get_mut(&dc) {
                    state.refreshing = Some(conn);
                }
            }
        }
    }

    /// Turns what the sessions have queued into transport frames.
    fn flush(&mut self, now: Instant) {
        let dcs: Vec<i32> = self.dcs.keys().copied().collect();
        for dc in dcs {
            let Some(state) = self.dcs.get_mut(&dc) else {
                continue;
            };
            if state.phase != DcPhase::Ready {
                continue;
            }
            let Some(conn) = state.conn else { continue };
            let Some(session) = state.session.as_mut() else {
                continue;
            };
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            loop {
                let n = session.poll_packets(now, &mut self.bufs);
                for buf in &mut self.bufs[..n] {
                    c.codec.encode(buf, &mut self.rng);
                    // The packet's own buffer becomes the output: no copy,
                    // and no burst-sized buffers kept between flushes.
                    let buf = std::mem::take(buf);
                    self.outputs.push_back(Output::Transmit {
                        conn,
                        bytes: buf.into_vec(),
                    });
                }
                if n < self.bufs.len() {
                    break;
                }
            }
        }
    }
}

/// `invokeWithLayer(layer, initConnection(params, query))`.
fn wrap_init(p: &InitParams, query: &[u8]) -> Vec<u8> {
    let init = InitConnection {
        api_id: p.api_id,
        device_model: p.device_model.clone(),
        system_version: p.system_version.clone(),
        app_version: p.app_version.clone(),
        system_lang_code: p.system_lang_code.clone(),
        lang_pack: p.lang_pack.clone(),
        lang_code: p.lang_code.clone(),
        proxy: None,
        params: None,
        query: RawTail(query.to_vec()),
    };
    InvokeWithLayer {
        layer: p.layer,
        query: RawTail(init.to_bytes()),
    }
    .to_bytes()
}
