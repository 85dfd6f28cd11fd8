//! [`Sim`]: a [`Sender`] and [`FakeDc`]s on a virtual clock and an
//! in-memory network.
//!
//! Every byte the sender writes travels to its DC after `latency`, cut into
//! chunks of random size up to `max_chunk` (1 = byte by byte); the DC's
//! answers travel back the same way. Time jumps from event to event, so an
//! hour of flood waits and restarts runs in milliseconds, and the same seed
//! gives the same run, byte for byte. Connections can be dropped, refused
//! or black-holed (bytes vanish, as on a dead link) at any point.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use mtsender::sender::ConnId;
use mtsender::{
    CatchUpReason, CloseReason, DcTable, Input, InvocationError, Output, Request, RequestId,
    ResponseMeta, Sender, SenderConfig, ShutdownReason,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::dc::{self, DcOutput, FakeDc, FakeDcConfig};

/// Network settings of a [`Sim`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds the network's choices (chunk sizes) and the sender.
    pub seed: u64,
    /// One-way delay of every chunk and every connect.
    pub latency: Duration,
    /// Largest chunk a write is cut into (1 = byte by byte).
    pub max_chunk: usize,
    /// The wall-clock time at the start.
    pub unix_time: Duration,
    /// Whether one client read takes every chunk that has arrived, as a
    /// socket read takes all the kernel holds (so a read may carry several
    /// packets); otherwise each chunk is a read of its own.
    pub coalesce_reads: bool,
}

impl SimConfig {
    /// 20 ms latency, chunks up to 4 KiB, unix time 1.7e9.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            latency: Duration::from_millis(20),
            max_chunk: 4096,
            unix_time: Duration::from_secs(1_700_000_000),
            coalesce_reads: false,
        }
    }
}

#[derive(Debug)]
enum LinkEvent {
    /// The connection is established (both ends learn it).
    Open,
    /// Bytes for the server.
    ToServer(Vec<u8>),
    /// Bytes for the client.
    ToClient(Vec<u8>),
    /// The server closed: the client learns it.
    ClosedByServer,
}

#[derive(Debug)]
struct Link {
    dc: i32,
    server: Option<dc::ConnId>,
    /// In flight, in order, with delivery times.
    events: VecDeque<(Instant, LinkEvent)>,
    /// Bytes sent into a black hole vanish.
    blackhole: bool,
}

/// A sender and its fake DCs on a simulated clock and network. See the
/// [module docs](self).
pub struct Sim {
    start: Instant,
    now: Instant,
    config: SimConfig,
    rng: ChaCha20Rng,
    sender: Sender,
    sender_wake: Option<Instant>,
    dcs: BTreeMap<i32, FakeDc>,
    refused: Vec<i32>,
    addrs: HashMap<SocketAddr, i32>,
    links: BTreeMap<ConnId, Link>,
    by_server: HashMap<(i32, dc::ConnId), ConnId>,
    /// Every response, by request.
    pub responses: BTreeMap<RequestId, (Result<Vec<u8>, InvocationError>, ResponseMeta)>,
    /// Responses that came for a request already answered (must stay 0).
    pub duplicate_responses: u64,
    /// Updates, in order.
    pub updates: Vec<(i32, Vec<u8>)>,
    /// Catch-up signals, with their time.
    pub catch_ups: Vec<(Instant, i32, CatchUpReason)>,
    /// Shutdown outputs (must be at most one).
    pub shutdowns: Vec<ShutdownReason>,
    /// Connect outputs, with their time and DC.
    pub connects: Vec<(Instant, i32)>,
    /// Disconnect outputs, with their time.
    pub disconnects: Vec<(Instant, ConnId)>,
    /// `SessionChanged` outputs seen.
    pub session_changes: u64,
    trace: bool,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.config.seed)
            .field("links", &self.links.len())
            .field("responses", &self.responses.len())
            .finish_non_exhaustive()
    }
}

/// The address a [`Sim`] gives DC `id`.
pub fn sim_addr(id: i32) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, id as u8), 443))
}

impl Sim {
    /// A simulation of `sender_config` (its DC table and RSA keys are
    /// replaced by the simulated DCs and the test key) against one fake DC
    /// per config in `dcs`.
    pub fn new(config: SimConfig, mut sender_config: SenderConfig, dcs: Vec<FakeDcConfig>) -> Self {
        // Tests need some anchor; only differences from it matter.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut table = DcTable::empty();
        let mut addrs = HashMap::new();
        let mut servers = BTreeMap::new();
        for (i, mut c) in dcs.into_iter().enumerate() {
            let id = c.dc_id;
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&config.seed.to_le_bytes());
            seed[8] = i as u8;
            seed[9] = 0xdc;
            c = c.seed(seed);
            table = table.set(id, sim_addr(id));
            addrs.insert(sim_addr(id), id);
            servers.insert(id, FakeDc::new(c, now, config.unix_time));
        }
        sender_config.dcs = table;
        if sender_config.rsa_keys.is_empty() {
            sender_config.rsa_keys = vec![crate::dc::test_rsa_key().public_key().clone()];
        }
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&config.seed.to_le_bytes());
        let sender = Sender::new(sender_config, now, config.unix_time, seed);
        let mut net_seed = seed;
        net_seed[31] = 0x4e;
        Self {
            start: now,
            now,
            rng: ChaCha20Rng::from_seed(net_seed),
            config,
            sender,
            sender_wake: None,
            dcs: servers,
            refused: Vec::new(),
            addrs,
            links: BTreeMap::new(),
            by_server: HashMap::new(),
            responses: BTreeMap::new(),
            duplicate_responses: 0,
            updates: Vec::new(),
            catch_ups: Vec::new(),
            shutdowns: Vec::new(),
            connects: Vec::new(),
            disconnects: Vec::new(),
            session_changes: 0,
            trace: std::env::var_os("MTSENDER_SIM_TRACE").is_some(),
        }
    }

    /// The current simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start()
    }

    fn start(&self) -> Instant {
        self.start
    }

    /// The sender.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The sender, to call it directly (drain with [`step`](Self::step)).
    pub fn sender_mut(&mut self) -> &mut Sender {
        &mut self.sender
    }

    /// The fake DC `id`.
    pub fn dc(&self, id: i32) -> &FakeDc {
        &self.dcs[&id]
    }

    /// The fake DC `id`, mutable.
    pub fn dc_mut(&mut self, id: i32) -> &mut FakeDc {
        self.dcs.get_mut(&id).expect("no such DC in the simulation")
    }

    /// Replaces the sender by a new one resuming `data` (a process
    /// restart): every connection of the old one is dropped first.
    pub fn replace_sender(
        &mut self,
        mut config: SenderConfig,
        data: mtsender::sender::persist::SessionData,
    ) {
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        let now = self.now;
        for conn in conns {
            if let Some(link) = self.links.remove(&conn) {
                if let Some(s) = link.server {
                    self.by_server.remove(&(link.dc, s));
                    if let Some(dc) = self.dcs.get_mut(&link.dc) {
                        dc.close(now, s);
                    }
                }
            }
        }
        let mut table = DcTable::empty();
        for &id in self.dcs.keys() {
            table = table.set(id, sim_addr(id));
        }
        config.dcs = table;
        if config.rsa_keys.is_empty() {
            config.rsa_keys = vec![crate::dc::test_rsa_key().public_key().clone()];
        }
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.config.seed.to_le_bytes());
        seed[30] = 0x52;
        let unix = self.config.unix_time + (now - self.start);
        self.sender = Sender::with_session(config, data, now, unix, seed);
        self.sender_wake = None;
    }

    /// Invokes a request now.
    pub fn invoke(&mut self, request: Request) -> RequestId {
        let now = self.now;
        let id = self.sender.invoke(now, request);
        self.pump();
        id
    }

    /// Connections to `dc` are refused from now on (until [`accept`](Self::accept)).
    pub fn refuse(&mut self, dc: i32) {
        self.refused.push(dc);
    }

    /// Connections to `dc` are accepted again.
    pub fn accept(&mut self, dc: i32) {
        self.refused.retain(|d| *d != dc);
    }

    /// Open connections, by DC.
    pub fn open_links(&self, dc: i32) -> Vec<ConnId> {
        self.links
            .iter()
            .filter(|(_, l)| l.dc == dc)
            .map(|(&c, _)| c)
            .collect()
    }

    /// Drops a connection now: both ends see it close; bytes in flight are lost.
    pub fn drop_link(&mut self, conn: ConnId) {
        let Some(link) = self.links.remove(&conn) else {
            return;
        };
        let now = self.now;
        if let Some(s) = link.server {
            self.by_server.remove(&(link.dc, s));
            if let Some(dc) = self.dcs.get_mut(&link.dc) {
                dc.close(now, s);
            }
        }
        self.sender.handle_input(Input::Closed {
            conn,
            reason: CloseReason::Lost("dropped by the simulation".into()),
            now,
        });
        self.pump();
    }

    /// Drops every connection to `dc`.
    pub fn drop_dc_links(&mut self, dc: i32) {
        for conn in self.open_links(dc) {
            self.drop_link(conn);
        }
    }

    /// From now on, bytes on `conn` vanish in both directions, and so does a
    /// close by the server (a dead link).
    pub fn blackhole(&mut self, conn: ConnId) {
        if let Some(l) = self.links.get_mut(&conn) {
            l.blackhole = true;
            l.events.retain(|(_, e)| matches!(e, LinkEvent::Open));
        }
    }

    /// Cuts a write into random-size chunks.
    fn chunks(&mut self, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        if self.config.max_chunk == usize::MAX || bytes.len() <= 1 {
            return vec![bytes];
        }
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let max = self.config.max_chunk.clamp(1, rest.len());
            let n = 1 + (self.rng.next_u64() as usize) % max;
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        out
    }

    /// Handles every pending output of the sender and of the DCs.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.sender.poll_output() {
                progressed = true;
                self.on_sender_output(out);
            }
            let ids: Vec<i32> = self.dcs.keys().copied().collect();
            for id in ids {
                while let Some(out) = self.dcs.get_mut(&id).and_then(FakeDc::poll_output) {
                    progressed = true;
                    self.on_dc_output(id, out);
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.trace {
            eprintln!("[{:>10.3}s] {what}", (self.now - self.start).as_secs_f64());
        }
    }

    fn on_sender_output(&mut self, out: Output) {
        let now = self.now;
        match &out {
            Output::Transmit { conn, bytes } => {
                self.trace(format_args!("sender -> {conn:?}: {} bytes", bytes.len()))
            }
            Output::SleepUntil(_) => {}
            other => self.trace(format_args!("sender: {other:?}")),
        }
        let at = now + self.config.latency;
        match out {
            Output::Connect { conn, dc, addr } => {
                self.connects.push((now, dc));
                match self.addrs.get(&addr) {
                    Some(&id) if !self.refused.contains(&id) => {
                        let mut link = Link {
                            dc: id,
                            server: None,
                            events: VecDeque::new(),
                            blackhole: false,
                        };
                        link.events.push_back((at, LinkEvent::Open));
                        self.links.insert(conn, link);
                    }
                    _ => self.sender.handle_input(Input::Closed {
                        conn,
                        reason: CloseReason::ConnectFailed("refused".into()),
                        now,
                    }),
                }
            }
            Output::Transmit { conn, bytes } => {
                let chunks = self.chunks(bytes);
                if let Some(link) = self.links.get_mut(&conn) {
                    if !link.blackhole {
                        let at = link.events.back().map_or(at, |(t, _)| (*t).max(at));
                        for c in chunks {
                            link.events.push_back((at, LinkEvent::ToServer(c)));
                        }
                    }
                }
            }
            Output::Disconnect { conn } => {
                self.disconnects.push((now, conn));
                if let Some(link) = self.links.remove(&conn) {
                    if let Some(s) = link.server {
                        self.by_server.remove(&(link.dc, s));
                        if let Some(dc) = self.dcs.get_mut(&link.dc) {
                            dc.close(now, s);
                        }
                    }
                }
            }
            Output::Response { id, result, meta } => {
                let again = self.responses.insert(id, (result, meta)).is_some();
                self.duplicate_responses += u64::from(again);
            }
            Output::Update { dc, bytes } => self.updates.push((dc, bytes)),
            Output::CatchUp { dc, reason } => self.catch_ups.push((now, dc, reason)),
            Output::SessionChanged => self.session_changes += 1,
            Output::Shutdown { reason } => self.shutdowns.push(reason),
            Output::SleepUntil(t) => self.sender_wake = Some(t),
            _ => {}
        }
    }

    fn on_dc_output(&mut self, dc: i32, out: DcOutput) {
        match &out {
            DcOutput::Transmit { conn, bytes } => {
                self.trace(format_args!("dc{dc} -> {conn:?}: {} bytes", bytes.len()))
            }
            DcOutput::Close { conn } => self.trace(format_args!("dc{dc}: close {conn:?}")),
        }
        let at = self.now + self.config.latency;
        match out {
            DcOutput::Transmit { conn, bytes } => {
                let Some(&client) = self.by_server.get(&(dc, conn)) else {
                    return;
                };
                let chunks = self.chunks(bytes);
                if let Some(link) = self.links.get_mut(&client) {
                    if !link.blackhole {
                        let at = link.events.back().map_or(at, |(t, _)| (*t).max(at));
                        for c in chunks {
                            link.events.push_back((at, LinkEvent::ToClient(c)));
                        }
                    }
                }
            }
            DcOutput::Close { conn } => {
                let Some(&client) = self.by_server.get(&(dc, conn)) else {
                    return;
                };
                if let Some(link) = self.links.get_mut(&client) {
                    // A dead link carries no FIN either.
                    if !link.blackhole {
                        let at = link.events.back().map_or(at, |(t, _)| (*t).max(at));
                        link.events.push_back((at, LinkEvent::ClosedByServer));
                    }
                }
            }
        }
    }

    /// The time of the next event, if any.
    pub fn next_event(&self) -> Option<Instant> {
        let mut next = self.sender_wake;
        let mut consider = |t: Instant| {
            if next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        for l in self.links.values() {
            if let Some((t, _)) = l.events.front() {
                consider(*t);
            }
        }
        for d in self.dcs.values() {
            if let Some(t) = d.poll_timeout() {
                consider(t);
            }
        }
        next
    }

    /// Advances to the next event and handles everything due then.
    /// Returns `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.pump();
        let Some(t) = self.next_event() else {
            return false;
        };
        if t > self.now {
            self.now = t;
        }
        let now = self.now;
        // Link events due now, in order per link.
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for conn in conns {
            while let Some(link) = self
                .links
                .get_mut(&conn)
                .filter(|l| l.events.front().is_some_and(|(t, _)| *t <= now))
            {
                let Some((_, ev)) = link.events.pop_front() else {
                    break;
                };
                let dc = link.dc;
                if !matches!(ev, LinkEvent::ToServer(_) | LinkEvent::ToClient(_)) {
                    self.trace(format_args!("link {conn:?}: {ev:?}"));
                }
                match ev {
                    LinkEvent::Open => {
                        let Some(server) = self.dcs.get_mut(&dc) else {
                            break;
                        };
                        let s = server.open(now);
                        if let Some(link) = self.links.get_mut(&conn) {
                            link.server = Some(s);
                        }
                        self.by_server.insert((dc, s), conn);
                        self.sender.handle_input(Input::Connected { conn, now });
                    }
                    LinkEvent::ToServer(bytes) => {
                        let s = self.links.get(&conn).and_then(|l| l.server);
                        if let (Some(s), Some(server)) = (s, self.dcs.get_mut(&dc)) {
                            server.receive(now, s, &bytes);
                        }
                    }
                    LinkEvent::ToClient(mut bytes) => {
                        if self.config.coalesce_reads {
                            while let Some(link) = self.links.get_mut(&conn).filter(|l| {
                                matches!(l.events.front(), Some((t, LinkEvent::ToClient(_))) if *t <= now)
                            }) {
                                if let Some((_, LinkEvent::ToClient(more))) = link.events.pop_front() {
                                    bytes.extend_from_slice(&more);
                                }
                            }
                        }
                        self.sender.handle_input(Input::Received {
                            conn,
                            bytes: &bytes,
                            now,
                        });
                    }
                    LinkEvent::ClosedByServer => {
                        if let Some(link) = self.links.remove(&conn) {
                            if let Some(s) = link.server {
                                self.by_server.remove(&(dc, s));
                            }
                        }
                        self.sender.handle_input(Input::Closed {
                            conn,
                            reason: CloseReason::Lost("closed by the server".into()),
                            now,
                        });
                    }
                }
                self.pump();
            }
        }
        let ids: Vec<i32> = self.dcs.keys().copied().collect();
        for id in ids {
            let due = self.dcs[&id].poll_timeout().is_some_and(|t| t <= now);
            if due {
                if let Some(d) = self.dcs.get_mut(&id) {
                    d.handle_timeout(now);
                }
            }
        }
        if self.sender_wake.is_some_and(|t| t <= now) {
            self.sender_wake = None;
            self.sender.handle_input(Input::Timeout(now));
        }
        self.pump();
        true
    }

    /// Steps until `done` holds, time passes `limit`, or nothing is left to
    /// happen. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + limit;
        let mut steps: u64 = 0;
        loop {
            if done(self) {
                return true;
            }
            if self.next_event().is_none_or(|t| t > end) {
                self.now = self.now.max(end);
                return done(self);
            }
            steps += 1;
            assert!(
                steps < 10_000_000,
                "simulation does not settle (seed {})",
                self.config.seed
            );
            self.step();
        }
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Runs until every invoked request has its response (or `limit`).
    pub fn run_until_answered(&mut self, limit: Duration) -> bool {
        self.run_until(limit, |s| s.sender.pending() == 0)
    }

    /// The seed, for messages of failing tests.
    pub fn seed(&self) -> u64 {
        self.config.seed
    }
}
