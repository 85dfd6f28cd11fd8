//! `fake-dc`: the testkit's FakeDc served over TCP, for real clients.
//!
//! ```text
//! fake-dc --listen 127.0.0.1:PORT [--rsa-key PRIVATE.pem] [--dc ID] [--faults SPEC] [--seed HEX]
//! fake-dc --print-public-key [--rsa-key PRIVATE.pem]
//! ```
//!
//! Once ready it prints `listening on HOST:PORT` on stdout (the real port
//! when 0 was asked for); logs go to stderr. It runs until killed. Only
//! loopback addresses are accepted.
//!
//! One thread accepts, one thread per connection reads, and one driver
//! thread owns the FakeDc and writes: every event reaches it over a
//! channel, so the server itself stays single-threaded and sans-IO.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{collections::BTreeMap, process::ExitCode, thread};

use mtsender::crypto::RsaPrivateKey;
use mtsender_testkit::{ConnId, DcOutput, FakeDc, FakeDcConfig, Faults, Stats};

const USAGE: &str = "usage:
  fake-dc --listen 127.0.0.1:PORT [--rsa-key PRIVATE.pem] [--dc ID] [--faults SPEC] [--seed HEX64]
  fake-dc --print-public-key [--rsa-key PRIVATE.pem]

  --listen ADDR       loopback address to serve on (port 0: any free port)
  --rsa-key PEM       the server's RSA private key, PKCS#1 or PKCS#8 (default: the built-in test key)
  --dc ID             DC id expected in p_q_inner_data_dc (default 2)
  --faults SPEC       scripted faults, e.g. flood_wait=5@2,close_after=10 (see the testkit's faults docs)
  --seed HEX64        32-byte seed as 64 hex digits (default: from the OS)
  --print-public-key  print the public key (PKCS#1 PEM) and its fingerprint, then exit";

struct Args {
    listen: Option<String>,
    rsa_key: Option<String>,
    dc: i32,
    faults: Faults,
    seed: Option<[u8; 32]>,
    print_public_key: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: None,
        rsa_key: None,
        dc: 2,
        faults: Faults::none(),
        seed: None,
        print_public_key: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => args.listen = Some(value("--listen")?),
            "--rsa-key" => args.rsa_key = Some(value("--rsa-key")?),
            "--dc" => {
                args.dc = value("--dc")?
                    .parse()
                    .map_err(|_| "--dc takes an integer".to_string())?
            }
            "--faults" => {
                args.faults = Faults::parse(&value("--faults")?).map_err(|e| e.to_string())?
            }
            "--seed" => {
                let hex = value("--seed")?;
                args.seed = Some(parse_seed(&hex).ok_or("--seed takes 64 hex digits")?);
            }
            "--print-public-key" => args.print_public_key = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn parse_seed(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// 32 bytes from the OS: /dev/urandom, else the std hasher's random keys.
fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .is_ok()
    {
        return seed;
    }
    use std::hash::{BuildHasher, Hasher};
    for chunk in seed.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    seed
}

fn load_key(path: Option<&str>) -> Result<RsaPrivateKey, String> {
    match path {
        None => Ok(mtsender_testkit::test_rsa_key()),
        Some(p) => {
            let pem = std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"))?;
            RsaPrivateKey::from_pem(&pem).map_err(|e| format!("{p}: {e}"))
        }
    }
}

/// Resolves `addr` and refuses anything that is not loopback.
fn loopback_addr(addr: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("--listen {addr}: {e}"))?
        .collect();
    match addrs.first() {
        Some(a) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok(*a),
        Some(_) => Err(format!(
            "--listen {addr}: only loopback addresses (127.0.0.0/8, ::1) are served"
        )),
        None => Err(format!("--listen {addr}: no address")),
    }
}

enum Event {
    Accepted(TcpStream),
    Data(ConnId, Vec<u8>),
    Closed(ConnId),
}

// The binary is the one place that reads the clock: it is the adapter that
// feeds time into the sans-IO server.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

#[allow(clippy::disallowed_methods)]
fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fake-dc: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let key = match load_key(args.rsa_key.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("fake-dc: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_public_key {
        let public = key.public_key();
        let fp = public.fingerprint();
        print!("{}", public.to_pkcs1_pem());
        println!("fingerprint: {fp} (0x{:016x})", fp as u64);
        return ExitCode::SUCCESS;
    }
    let Some(listen) = args.listen.as_deref() else {
        eprintln!("fake-dc: --listen is required\n{USAGE}");
        return ExitCode::from(2);
    };
    let addr = match loopback_addr(listen) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fake-dc: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake-dc: binding {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let local = listener.local_addr().unwrap_or(addr);

    let mut config = FakeDcConfig::new(args.dc);
    config.rsa_key = key;
    config.seed = args.seed.unwrap_or_else(os_seed);
    config.faults = args.faults;
    eprintln!(
        "fake-dc: dc {} key fingerprint {} faults {:?}",
        config.dc_id,
        config.rsa_key.public_key().fingerprint(),
        config.faults.rules
    );

    let (tx, rx) = mpsc::channel::<Event>();
    let accept_tx = tx.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(s) => {
                    if accept_tx.send(Event::Accepted(s)).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("fake-dc: accept: {e}"),
            }
        }
    });

    println!("listening on {local}");
    // Tools wait for this line; the pipe may be block-buffered.
    let _ = std::io::stdout().flush();

    drive(config, rx, tx);
    ExitCode::SUCCESS
}

/// The driver: owns the FakeDc and the write halves of the sockets.
fn drive(config: FakeDcConfig, rx: mpsc::Receiver<Event>, tx: mpsc::Sender<Event>) {
    let mut dc = FakeDc::new(config, now(), unix_now());
    let mut writers: BTreeMap<ConnId, TcpStream> = BTreeMap::new();
    let mut seen = dc.stats().clone();
    loop {
        let event = match dc.poll_timeout() {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(now());
                match rx.recv_timeout(wait) {
                    Ok(e) => Some(e),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
            None => match rx.recv() {
                Ok(e) => Some(e),
                Err(_) => return,
            },
        };
        let t = now();
        match event {
            Some(Event::Accepted(stream)) => {
                let peer = stream.peer_addr().ok();
                let conn = dc.open(t);
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
                match stream.try_clone() {
                    Ok(reader) => {
                        writers.insert(conn, stream);
                        spawn_reader(conn, reader, tx.clone());
                        eprintln!("fake-dc: conn {} open from {peer:?}", conn.0);
                    }
                    Err(e) => {
                        eprintln!("fake-dc: conn {}: {e}", conn.0);
                        dc.close(t, conn);
                    }
                }
            }
            Some(Event::Data(conn, bytes)) => dc.receive(t, conn, &bytes),
            Some(Event::Closed(conn)) => {
                if writers.remove(&conn).is_some() {
                    eprintln!("fake-dc: conn {} closed by the client", conn.0);
                }
                dc.close(t, conn);
            }
            None => {}
        }
        if dc.poll_timeout().is_some_and(|d| d <= now()) {
            dc.handle_timeout(now());
        }
        while let Some(out) = dc.poll_output() {
            match out {
                DcOutput::Transmit { conn, bytes } => {
                    let failed = writers
                        .get_mut(&conn)
                        .is_some_and(|w| w.write_all(&bytes).is_err());
                    if failed {
                        eprintln!("fake-dc: conn {}: write failed, closing", conn.0);
                        if let Some(w) = writers.remove(&conn) {
                            let _ = w.shutdown(Shutdown::Both);
                        }
                        dc.close(now(), conn);
                    }
                }
                DcOutput::Close { conn } => {
                    if let Some(w) = writers.remove(&conn) {
                        eprintln!("fake-dc: conn {} closed by the server", conn.0);
                        let _ = w.shutdown(Shutdown::Both);
                    }
                }
            }
        }
        log_changes(&mut seen, dc.stats());
    }
}

fn spawn_reader(conn: ConnId, mut stream: TcpStream, tx: mpsc::Sender<Event>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => {
                    let _ = tx.send(Event::Closed(conn));
                    return;
                }
                Ok(n) => {
                    if tx.send(Event::Data(conn, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// One stderr line per counter that moved.
fn log_changes(seen: &mut Stats, now: &Stats) {
    let pairs = [
        ("auth keys created", seen.handshakes, now.handshakes),
        ("dh_gen_retry sent", seen.dh_gen_retries, now.dh_gen_retries),
        ("new sessions", seen.new_sessions, now.new_sessions),
        ("bad_server_salt sent", seen.bad_salts, now.bad_salts),
        ("queries executed", seen.executions, now.executions),
        ("rpc_errors sent", seen.rpc_errors, now.rpc_errors),
        ("pongs sent", seen.pongs, now.pongs),
        ("faults fired", seen.faults_fired, now.faults_fired),
        ("answers resent", seen.resent_answers, now.resent_answers),
        ("messages resent", seen.resent_messages, now.resent_messages),
        (
            "transport errors sent",
            seen.transport_errors,
            now.transport_errors,
        ),
        ("packets dropped", seen.dropped_packets, now.dropped_packets),
    ];
    for (name, before, after) in pairs {
        if after != before {
            eprintln!("fake-dc: {name}: {after}");
        }
    }
    if now.bad_msgs != seen.bad_msgs {
        eprintln!(
            "fake-dc: bad_msg_notification sent by code: {:?}",
            now.bad_msgs
        );
    }
    *seen = now.clone();
}
