//! [`serve`]: a [`FakeDc`] on a real TCP listener, for clients that bring
//! their own sockets (the adapters' tests, their examples, the `fake-dc`
//! binary).
//!
//! Plain threads, no async runtime: one thread owns the `FakeDc` and its
//! timer, one accepts, and each connection has a reader and a writer, so a
//! client that stops reading stalls only its own connection. This is the
//! one place in the testkit that reads the clock.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use mtsender_testkit::{net::serve, FakeDcConfig};
//!
//! let server = serve(TcpListener::bind("127.0.0.1:0").unwrap(), FakeDcConfig::new(2)).unwrap();
//! // An abridged-transport client whose first packet is garbage: the server
//! // does not answer it (at most a transport error comes back).
//! let mut s = TcpStream::connect(server.addr()).unwrap();
//! s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
//! s.write_all(&[0xef, 0x01, 1, 2, 3, 4]).unwrap();
//! let mut buf = [0u8; 64];
//! let n = s.read(&mut buf).unwrap_or(0);
//! assert!(n <= 4, "at most a transport error comes back");
//! assert_eq!(server.with_dc(|dc, _| dc.stats().connections), 1);
//! ```

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::dc::{ConnId, DcOutput, FakeDc, FakeDcConfig};

enum Event {
    Accepted(TcpStream),
    Data(ConnId, Vec<u8>),
    Eof(ConnId),
    DropAll,
    Poke,
    Stop,
}

enum Out {
    Bytes(Vec<u8>),
    Close,
}

struct Conn {
    stream: TcpStream,
    writer: mpsc::Sender<Out>,
}

/// A running server. Dropping it stops it and closes every connection.
#[derive(Debug)]
pub struct DcServer {
    addr: SocketAddr,
    dc: Arc<Mutex<FakeDc>>,
    events: mpsc::Sender<Event>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Serves `config`'s DC on `listener` until the returned server is stopped
/// or dropped.
pub fn serve(listener: TcpListener, config: FakeDcConfig) -> io::Result<DcServer> {
    let addr = listener.local_addr()?;
    let (now, unix) = clock();
    let dc = Arc::new(Mutex::new(FakeDc::new(config, now, unix)));
    let (tx, rx) = mpsc::channel();
    let stopping = Arc::new(AtomicBool::new(false));
    let accept = {
        let tx = tx.clone();
        let stopping = stopping.clone();
        std::thread::Builder::new()
            .name("fake-dc-accept".into())
            .spawn(move || accept_loop(listener, tx, stopping))?
    };
    let run = {
        let dc = dc.clone();
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("fake-dc".into())
            .spawn(move || dc_loop(dc, rx, tx))?
    };
    Ok(DcServer {
        addr,
        dc,
        events: tx,
        stopping,
        threads: vec![accept, run],
    })
}

impl DcServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `f` on the DC (with the current time), then sends whatever it
    /// queued (an update pushed by `f`, say).
    pub fn with_dc<R>(&self, f: impl FnOnce(&mut FakeDc, Instant) -> R) -> R {
        let (now, _) = clock();
        let r = f(&mut lock(&self.dc), now);
        let _ = self.events.send(Event::Poke);
        r
    }

    /// Cuts every open connection at once, as a network failure would: no
    /// goodbye, answers in flight are lost on the wire (the DC keeps them
    /// for the session's next connection).
    pub fn drop_connections(&self) {
        let _ = self.events.send(Event::DropAll);
    }

    /// Blocks until the server stops (it runs until stopped: for a binary).
    pub fn wait(mut self) {
        for t in self.threads.drain(..).rev() {
            let _ = t.join();
        }
    }

    /// Stops the server and closes every connection.
    pub fn stop(self) {}
}

impl Drop for DcServer {
    fn drop(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.events.send(Event::Stop);
        // Wakes the accept thread out of its blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[allow(clippy::disallowed_methods)] // the server loop is where time comes from
fn clock() -> (Instant, Duration) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (Instant::now(), unix)
}

fn lock(dc: &Mutex<FakeDc>) -> MutexGuard<'_, FakeDc> {
    // A panic elsewhere leaves the DC usable for inspection.
    dc.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: TcpListener, tx: mpsc::Sender<Event>, stopping: Arc<AtomicBool>) {
    loop {
        let accepted = listener.accept();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                if tx.send(Event::Accepted(stream)).is_err() {
                    return;
                }
            }
            // Out of descriptors and the like: try again shortly.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn dc_loop(dc: Arc<Mutex<FakeDc>>, rx: mpsc::Receiver<Event>, tx: mpsc::Sender<Event>) {
    let mut conns: BTreeMap<ConnId, Conn> = BTreeMap::new();
    loop {
        let due = lock(&dc).poll_timeout();
        let event = match due {
            Some(at) => {
                let (now, _) = clock();
                rx.recv_timeout(at.saturating_duration_since(now))
            }
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let (now, _) = clock();
        let mut dc = lock(&dc);
        match event {
            Ok(Event::Accepted(stream)) => {
                let id = dc.open(now);
                if let Some(conn) = start_conn(id, stream, tx.clone()) {
                    conns.insert(id, conn);
                } else {
                    dc.close(now, id);
                }
            }
            Ok(Event::Data(id, bytes)) => dc.receive(now, id, &bytes),
            Ok(Event::Eof(id)) => {
                dc.close(now, id);
                conns.remove(&id);
            }
            Ok(Event::DropAll) => {
                for (id, conn) in std::mem::take(&mut conns) {
                    let _ = conn.stream.shutdown(Shutdown::Both);
                    dc.close(now, id);
                }
            }
            Ok(Event::Poke) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Stop) | Err(RecvTimeoutError::Disconnected) => {
                for conn in conns.values() {
                    let _ = conn.stream.shutdown(Shutdown::Both);
                }
                return;
            }
        }
        if dc.poll_timeout().is_some_and(|at| now >= at) {
            dc.handle_timeout(now);
        }
        while let Some(out) = dc.poll_output() {
            match out {
                DcOutput::Transmit { conn, bytes } => {
                    if let Some(c) = conns.get(&conn) {
                        let _ = c.writer.send(Out::Bytes(bytes));
                    }
                }
                DcOutput::Close { conn } => {
                    if let Some(c) = conns.remove(&conn) {
                        let _ = c.writer.send(Out::Close);
                    }
                }
            }
        }
    }
}

/// Starts the reader and writer threads of a new connection.
fn start_conn(id: ConnId, stream: TcpStream, events: mpsc::Sender<Event>) -> Option<Conn> {
    let mut reader = stream.try_clone().ok()?;
    let mut writer = stream.try_clone().ok()?;
    let (wtx, wrx) = mpsc::channel::<Out>();
    std::thread::Builder::new()
        .name(format!("fake-dc-read-{}", id.0))
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = events.send(Event::Eof(id));
                        return;
                    }
                    Ok(n) => {
                        if events.send(Event::Data(id, buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .ok()?;
    std::thread::Builder::new()
        .name(format!("fake-dc-write-{}", id.0))
        .spawn(move || {
            // Ends on Close, on a write error, or when the DC forgets the
            // connection (its sender is dropped).
            while let Ok(Out::Bytes(bytes)) = wrx.recv() {
                if writer.write_all(&bytes).is_err() {
                    break;
                }
            }
            let _ = writer.shutdown(Shutdown::Both);
        })
        .ok()?;
    Some(Conn {
        stream,
        writer: wtx,
    })
}
