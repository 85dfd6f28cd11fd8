//! The whole `Sender` against the in-memory `FakeDc`: the bench is the
//! adapter (it moves bytes between the two and advances a virtual clock
//! when both are idle).

use crate::measure::Stopwatch;
use std::collections::HashMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mtsender::{CloseReason, ConnId, DcTable, Input, Output, Request, Sender, SenderConfig};
use mtsender_testkit::{DcOutput, FakeDc, FakeDcConfig};

use crate::common::{self, Clocks};

const DC: i32 = 2;

/// A sender, a fake DC and the wires between them.
pub struct Sim {
    /// The sender.
    pub sender: Sender,
    /// The DC.
    pub dc: FakeDc,
    now: Instant,
    to_dc: HashMap<ConnId, mtsender_testkit::ConnId>,
    to_sender: HashMap<mtsender_testkit::ConnId, ConnId>,
    sender_wake: Option<Instant>,
    /// Successful responses so far.
    pub ok: usize,
    /// Failed responses so far.
    pub failed: usize,
    /// CPU time spent inside the DC's calls, when `split` is set.
    pub dc_time: Duration,
    /// Time each side's calls (costs two clock reads per call).
    pub split: bool,
    /// Transmits held back instead of delivered (see [`Sim::hold`]).
    held: Option<Vec<(ConnId, Vec<u8>)>>,
}

/// Times a DC call in thread CPU time (when `split` is set): the sender's
/// share is the rest of a run, so that its calls, some as short as an
/// invoke, carry no timer overhead.
macro_rules! timed {
    ($self:ident, $field:ident, $e:expr) => {{
        if $self.split {
            let t = crate::measure::thread_cpu_time();
            let r = $e;
            $self.$field += crate::measure::thread_cpu_time().saturating_sub(t);
            r
        } else {
            $e
        }
    }};
}

macro_rules! untimed {
    ($e:expr) => {
        $e
    };
}

impl Sim {
    /// A fresh pair; nothing connected yet.
    pub fn new(clocks: Clocks) -> Self {
        let mut dc_config = FakeDcConfig::new(DC).seed([3; 32]);
        dc_config.max_remembered_msg_ids = 1 << 20;
        dc_config.max_cached_answers = 1 << 20;
        let dc = FakeDc::new(dc_config, clocks.t0, clocks.unix);
        let addr: SocketAddr = "127.0.0.1:443".parse().expect("valid address");
        let mut config = SenderConfig::new(
            DcTable::empty().set(DC, addr),
            vec![mtsender_testkit::test_rsa_key().public_key().clone()],
        );
        config.home_dc = DC;
        config.session.gzip_min_len = usize::MAX;
        let sender = Sender::new(config, clocks.t0, clocks.unix, [5; 32]);
        Self {
            sender,
            dc,
            now: clocks.t0,
            to_dc: HashMap::new(),
            to_sender: HashMap::new(),
            sender_wake: None,
            ok: 0,
            failed: 0,
            dc_time: Duration::ZERO,
            split: false,
            held: None,
        }
    }

    /// A pair with the connection open, the key made and one echo answered.
    pub fn ready(clocks: Clocks) -> Self {
        let mut sim = Self::new(clocks);
        sim.invoke(common::small_body(0));
        sim.run_until(1);
        assert_eq!((sim.ok, sim.failed), (1, 0), "warm-up echo");
        sim
    }

    /// Invokes a request.
    pub fn invoke(&mut self, body: Vec<u8>) {
        let now = self.now;
        untimed!(self.sender.invoke(now, Request::new(body)));
    }

    /// From now on, transmits from the sender are kept instead of being
    /// delivered; returns the bytes held so far when called again with
    /// `false`, after delivering them.
    pub fn hold(&mut self, on: bool) -> usize {
        if on {
            self.held = Some(Vec::new());
            return 0;
        }
        let held = self.held.take().unwrap_or_default();
        let n = held.iter().map(|(_, b)| b.capacity()).sum();
        for (conn, bytes) in held {
            self.deliver_to_dc(conn, &bytes);
        }
        n
    }

    /// Bytes the held transmits occupy (payloads and the list).
    pub fn held_bytes(&self) -> usize {
        self.held.as_ref().map_or(0, |h| {
            h.iter().map(|(_, b)| b.capacity()).sum::<usize>()
                + h.capacity() * std::mem::size_of::<(ConnId, Vec<u8>)>()
        })
    }

    fn deliver_to_dc(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(&c) = self.to_dc.get(&conn) {
            let now = self.now;
            timed!(self, dc_time, self.dc.receive(now, c, bytes));
        }
    }

    /// Drains the sender's outputs; whether it asked for anything.
    pub fn pump_sender(&mut self) -> bool {
        let mut progress = false;
        while let Some(o) = untimed!(self.sender.poll_output()) {
            let now = self.now;
            match o {
                Output::SleepUntil(t) => {
                    self.sender_wake = Some(t);
                    break;
                }
                Output::Connect { conn, .. } => {
                    let c = timed!(self, dc_time, self.dc.open(now));
                    self.to_dc.insert(conn, c);
                    self.to_sender.insert(c, conn);
                    untimed!(self.sender.handle_input(Input::Connected { conn, now }));
                }
                Output::Transmit { conn, bytes } => match &mut self.held {
                    Some(h) => h.push((conn, bytes)),
                    None => self.deliver_to_dc(conn, &bytes),
                },
                Output::Disconnect { conn } => {
                    if let Some(c) = self.to_dc.remove(&conn) {
                        self.to_sender.remove(&c);
                        timed!(self, dc_time, self.dc.close(now, c));
                    }
                }
                Output::Response { result, .. } => match result {
                    Ok(bytes) => {
                        black_box(bytes);
                        self.ok += 1;
                    }
                    Err(_) => self.failed += 1,
                },
                _ => {}
            }
            progress = true;
        }
        progress
    }

    /// Delivers what the DC has written to the sender, as a socket read
    /// would: everything pending on a connection in one input, then drains
    /// the sender (as its contract asks). Whether there was anything.
    pub fn pump_dc(&mut self) -> bool {
        let mut reads: Vec<(ConnId, Vec<u8>)> = Vec::new();
        let mut closed = Vec::new();
        while let Some(o) = timed!(self, dc_time, self.dc.poll_output()) {
            match o {
                DcOutput::Transmit { conn, bytes } => {
                    let Some(&c) = self.to_sender.get(&conn) else {
                        continue;
                    };
                    match reads.iter_mut().find(|(k, _)| *k == c) {
                        Some((_, buf)) => buf.extend_from_slice(&bytes),
                        None => reads.push((c, bytes)),
                    }
                }
                DcOutput::Close { conn } => closed.push(conn),
            }
        }
        let progress = !reads.is_empty() || !closed.is_empty();
        let now = self.now;
        for (conn, bytes) in reads {
            untimed!(self.sender.handle_input(Input::Received {
                conn,
                bytes: &bytes,
                now,
            }));
            self.pump_sender();
        }
        for conn in closed {
            if let Some(c) = self.to_sender.remove(&conn) {
                self.to_dc.remove(&c);
                untimed!(self.sender.handle_input(Input::Closed {
                    conn: c,
                    reason: CloseReason::Lost("closed by the DC".into()),
                    now,
                }));
                self.pump_sender();
            }
        }
        progress
    }

    /// Runs until `responses` requests in all have their response,
    /// advancing the virtual clock only when both sides are idle.
    ///
    /// # Panics
    /// If nothing is left to do before that.
    pub fn run_until(&mut self, responses: usize) {
        while self.ok + self.failed < responses {
            let a = self.pump_sender();
            let b = self.pump_dc();
            if a || b {
                continue;
            }
            let next = [self.sender_wake.take(), self.dc.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("the simulation is stuck: nothing to wait for");
            self.now = self.now.max(next);
            let now = self.now;
            timed!(self, dc_time, self.dc.handle_timeout(now));
            untimed!(self.sender.handle_input(Input::Timeout(now)));
        }
    }

    /// Responses so far.
    pub fn responses(&self) -> usize {
        self.ok + self.failed
    }
}

/// `e2e_sim`: rounds of `in_flight` requests invoked at once, each round
/// run until every response is in.
pub struct E2e {
    sim: Sim,
    in_flight: usize,
    bodies: Vec<Vec<u8>>,
    /// Sender's share of the last run (the run less the DC's calls; only
    /// when split timing is on).
    pub sender_time: Duration,
}

impl E2e {
    /// A warmed-up pair.
    pub fn new(clocks: Clocks, in_flight: usize, split: bool) -> Self {
        let mut sim = Sim::ready(clocks);
        sim.split = split;
        Self {
            sim,
            in_flight,
            bodies: (0..in_flight)
                .map(|i| common::small_body(i as u8))
                .collect(),
            sender_time: Duration::ZERO,
        }
    }

    /// One round; returns its time.
    pub fn run(&mut self) -> Duration {
        let bodies = self.bodies.clone();
        let target = self.sim.responses() + self.in_flight;
        self.sim.dc_time = Duration::ZERO;
        let start = Stopwatch::start();
        for b in bodies {
            self.sim.invoke(b);
        }
        self.sim.run_until(target);
        let t = start.elapsed();
        assert_eq!(self.sim.failed, 0, "every echo succeeds");
        // With split timing on, what the DC did not use: the sender and
        // the bench's own moving of bytes.
        self.sender_time = t.saturating_sub(self.sim.dc_time);
        t
    }
}

/// One `scale` measurement.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScalePoint {
    /// Requests in flight.
    pub n: usize,
    /// Wall time per invoke+response, sender and DC together.
    pub total_per_rpc: Duration,
    /// Of which not inside the DC's calls (the sender, and the bench
    /// moving bytes).
    pub sender_per_rpc: Duration,
    /// Bytes live per pending request beyond its body.
    pub bytes_per_pending: f64,
}

/// `scale`: `n` requests invoked at once on a fresh warmed-up pair. The
/// memory is read once they are all sent (transmits held back, their bytes
/// subtracted) and before any answer.
pub fn scale_point(clocks: Clocks, n: usize, split: bool) -> ScalePoint {
    let mut sim = Sim::ready(clocks);
    sim.split = split;
    sim.dc_time = Duration::ZERO;
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| common::small_body(i as u8)).collect();
    let outer = bodies.capacity() * std::mem::size_of::<Vec<u8>>();
    // The bodies are live in the baseline: they move into the sender.
    let baseline = crate::alloc::live_bytes();
    sim.hold(true);
    let start = Stopwatch::start();
    for b in bodies {
        sim.invoke(b);
    }
    sim.pump_sender();
    let t_send = start.elapsed();
    let live = crate::alloc::live_bytes();
    let held = sim.held_bytes();
    let bytes = live - baseline + outer as isize - held as isize;
    let start = Stopwatch::start();
    sim.hold(false);
    sim.run_until(1 + n);
    let t_rest = start.elapsed();
    assert_eq!(sim.failed, 0, "every echo succeeds");
    ScalePoint {
        n,
        total_per_rpc: (t_send + t_rest) / n as u32,
        sender_per_rpc: (t_send + t_rest).saturating_sub(sim.dc_time) / n as u32,
        bytes_per_pending: bytes as f64 / n as f64,
    }
}
