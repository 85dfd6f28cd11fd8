//! Connects to a DC, real or fake, creates an auth key and sends MTProto
//! pings and `test.echo` requests, checking every answer.
//!
//! ```text
//! ping [--dc ID=ADDR ...] [--home ID] [--rsa-key PUBLIC.pem]
//!      [--transport abridged|intermediate|padded|full|obfuscated]
//!      [--count N] [--echo N] [--concurrency C]
//!      [--restart never|fixed:SECS|backoff] [--refresh-every SECS] [--pfs]
//! ```
//!
//! Without `--dc` it pings Telegram's production DC 2 with Telegram's key.
//! An address of one of Telegram's test DCs selects the test DC ids and
//! key.
//! Event lines go to stderr; the last line of stdout is
//! `done: ok=X failed=Y`, and the exit code is 0 iff Y = 0 (2 for bad
//! arguments).
#![allow(clippy::disallowed_methods)] // a program: it reads the clock

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mtsender::tl::functions::{Ping, TestEcho};
use mtsender::tl::types::Pong;
use mtsender::tl::{Deserialize, Serialize};
use mtsender_tokio::{
    Client, ConnectionRestartPolicy, DcTable, Event, ExponentialBackoff, FixedInterval,
    NeverRestart, RsaPublicKey, TransportKind,
};

const USAGE: &str = "usage: ping [--dc ID=ADDR ...] [--home ID] [--rsa-key PUBLIC.pem] \
[--transport abridged|intermediate|padded|full|obfuscated] [--count N] [--echo N] \
[--concurrency C] [--restart never|fixed:SECS|backoff] [--refresh-every SECS] [--pfs]";

/// The parsed command line.
pub struct Args {
    dcs: Vec<(i32, SocketAddr)>,
    home: i32,
    rsa_key: Option<String>,
    transport: TransportKind,
    obfuscated: bool,
    count: u32,
    echo: u32,
    concurrency: usize,
    restart: Arc<dyn ConnectionRestartPolicy>,
    restart_name: String,
    refresh_every: Option<Duration>,
    pfs: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        dcs: Vec::new(),
        home: 2,
        rsa_key: None,
        transport: TransportKind::Intermediate,
        obfuscated: false,
        count: 3,
        echo: 0,
        concurrency: 16,
        restart: Arc::new(ExponentialBackoff::new(
            Duration::from_millis(500),
            Duration::from_secs(30),
        )),
        restart_name: "backoff".into(),
        refresh_every: None,
        pfs: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: `{v}` is not a number"))
        };
        match flag.as_str() {
            "--dc" => {
                let v = value("--dc")?;
                let (id, addr) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--dc wants ID=ADDR, got `{v}`"))?;
                let id = id
                    .parse()
                    .map_err(|_| format!("--dc: `{id}` is not a DC id"))?;
                let addr = addr
                    .parse()
                    .map_err(|_| format!("--dc: `{addr}` is not an IP:PORT address"))?;
                a.dcs.push((id, addr));
            }
            "--home" => {
                let v = value("--home")?;
                a.home = v
                    .parse()
                    .map_err(|_| format!("--home: `{v}` is not a DC id"))?;
            }
            "--rsa-key" => a.rsa_key = Some(value("--rsa-key")?),
            "--transport" => {
                let v = value("--transport")?;
                (a.transport, a.obfuscated) = match v.as_str() {
                    "abridged" => (TransportKind::Abridged, false),
                    "intermediate" => (TransportKind::Intermediate, false),
                    "padded" => (TransportKind::PaddedIntermediate, false),
                    "full" => (TransportKind::Full, false),
                    "obfuscated" => (TransportKind::Intermediate, true),
                    _ => return Err(format!("--transport: unknown `{v}`")),
                };
            }
            "--count" => a.count = number("--count", value("--count")?)? as u32,
            "--echo" => a.echo = number("--echo", value("--echo")?)? as u32,
            "--concurrency" => {
                a.concurrency = number("--concurrency", value("--concurrency")?)?.max(1) as usize
            }
            "--restart" => {
                let v = value("--restart")?;
                a.restart = match v.as_str() {
                    "never" => Arc::new(NeverRestart),
                    "backoff" => a.restart,
                    _ => match v.strip_prefix("fixed:") {
                        Some(secs) => Arc::new(FixedInterval {
                            interval: Duration::from_secs_f64(
                                secs.parse::<f64>()
                                    .ok()
                                    .filter(|s| s.is_finite() && *s >= 0.0)
                                    .ok_or_else(|| format!("--restart: bad seconds `{secs}`"))?,
                            ),
                        }),
                        None => return Err(format!("--restart: unknown `{v}`")),
                    },
                };
                a.restart_name = v;
            }
            "--refresh-every" => {
                let secs = number("--refresh-every", value("--refresh-every")?)?;
                a.refresh_every = Some(Duration::from_secs(secs.max(1)));
            }
            "--pfs" => a.pfs = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

/// Runs the tool: `args` without the program name; returns the exit code.
pub async fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                let _ = writeln!(err, "ping: {e}");
            }
            let _ = writeln!(err, "{USAGE}");
            return 2;
        }
    };
    // Telegram's test DCs want their ids +10000 in the handshake and have
    // their own key: recognised by address.
    let test_dcs = args.dcs.iter().any(|(_, a)| {
        mtsender::sender::TEST_DCS
            .iter()
            .any(|(_, ip)| a.ip() == std::net::IpAddr::from(*ip))
    });
    let default_key = if test_dcs {
        mtsender::crypto::TELEGRAM_TEST_KEY_PEM
    } else {
        mtsender::crypto::TELEGRAM_PRODUCTION_KEY_PEM
    };
    let key = match &args.rsa_key {
        None => RsaPublicKey::from_pem(default_key),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(pem) => RsaPublicKey::from_pem(&pem),
            Err(e) => {
                let _ = writeln!(err, "ping: cannot read {path}: {e}");
                return 2;
            }
        },
    };
    let key = match key {
        Ok(k) => k,
        Err(e) => {
            let _ = writeln!(err, "ping: not an RSA public key (PKCS#1 or SPKI PEM): {e}");
            return 2;
        }
    };
    let total = args.count + args.echo;
    let done = |out: &mut dyn Write, ok: u32, failed: u32| {
        let _ = writeln!(out, "done: ok={ok} failed={failed}");
        i32::from(failed != 0)
    };

    let mut dcs = if args.dcs.is_empty() {
        DcTable::production()
    } else if test_dcs {
        DcTable::test()
    } else {
        DcTable::empty()
    };
    for &(id, addr) in &args.dcs {
        dcs = dcs.set(id, addr);
    }
    let Some(addr) = dcs.get(args.home) else {
        let _ = writeln!(err, "ping: no address for home DC {}", args.home);
        return 2;
    };
    let _ = writeln!(
        err,
        "connecting to DC {} at {addr} ({:?}{}{}, restart {}, key fingerprint {:#018x})",
        args.home,
        args.transport,
        if args.obfuscated { ", obfuscated" } else { "" },
        if args.pfs { ", PFS" } else { "" },
        args.restart_name,
        key.fingerprint()
    );
    let refresh = args.refresh_every;
    let started = Instant::now();
    let connected = Client::builder()
        .dcs(dcs)
        .home_dc(args.home)
        .rsa_key(key)
        .transport(args.transport)
        .obfuscated(args.obfuscated)
        .restart_policy(args.restart.clone())
        .catch_up(true)
        .pfs(args.pfs)
        .configure(move |c| c.refresh_every = refresh)
        .connect()
        .await;
    let (client, shutdown) = match connected {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "connect failed: {e}");
            return done(out, 0, total.max(1));
        }
    };
    let _ = writeln!(
        err,
        "connected: auth key ready and first pong in {:.1} ms",
        ms(started.elapsed())
    );
    let mut events = client.updates();

    // Distinct ids and payloads per run, so a server's cache cannot answer.
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = 0u32;
    let (mut ok, mut failed) = (0u32, 0u32);
    let spawn = |tasks: &mut tokio::task::JoinSet<_>, i: u32| {
        let client = client.clone();
        tasks.spawn(async move {
            let t = Instant::now();
            let outcome = if i < args.count {
                let ping_id = (run_id.wrapping_add(u64::from(i))) as i64;
                match client.invoke(Ping { ping_id }.to_bytes()).await {
                    Ok(b) => match Pong::from_bytes(&b) {
                        Ok(p) if p.ping_id == ping_id => Ok(format!("ping {}: pong", i + 1)),
                        _ => Err(format!("ping {}: answer is not its pong", i + 1)),
                    },
                    Err(e) => Err(format!("ping {}: {e}", i + 1)),
                }
            } else {
                let n = i - args.count;
                let mut payload = run_id.to_le_bytes().to_vec();
                payload.extend_from_slice(&n.to_le_bytes());
                let request = TestEcho { payload }.to_bytes();
                match client.invoke(request.clone()).await {
                    Ok(b) if b == request => Ok(format!("echo {}: ok", n + 1)),
                    Ok(_) => Err(format!("echo {}: answer differs from the request", n + 1)),
                    Err(e) => Err(format!("echo {}: {e}", n + 1)),
                }
            };
            (outcome, t.elapsed())
        });
    };
    while next < total && tasks.len() < args.concurrency {
        spawn(&mut tasks, next);
        next += 1;
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((Ok(line), took)) => {
                ok += 1;
                // Pings are few: each is worth a line; echoes only fail loudly.
                if line.starts_with("ping") {
                    let _ = writeln!(err, "{line} in {:.1} ms", ms(took));
                }
            }
            Ok((Err(line), _)) => {
                failed += 1;
                let _ = writeln!(err, "{line}");
            }
            Err(e) => {
                failed += 1;
                let _ = writeln!(err, "task failed: {e}");
            }
        }
        if let Some(ev) = events.as_mut() {
            while let Ok(Some(e)) = tokio::time::timeout(Duration::ZERO, ev.next()).await {
                match e {
                    Event::CatchUp { dc, reason } => {
                        let _ = writeln!(err, "dc {dc}: catch up ({reason:?})");
                    }
                    Event::Update { dc, bytes } => {
                        let _ = writeln!(err, "dc {dc}: update of {} bytes", bytes.len());
                    }
                    other => {
                        let _ = writeln!(err, "{other:?}");
                    }
                }
            }
        }
        if next < total {
            spawn(&mut tasks, next);
            next += 1;
        }
    }
    if args.echo > 0 {
        let _ = writeln!(err, "echoes: {} sent", args.echo);
    }
    if let Some(s) = client.stats().await {
        let _ = writeln!(
            err,
            "connections {}, reconnects {}, refreshes {}, flood waits {}, retries {}, migrations {}",
            s.connects, s.restarts, s.refreshes, s.flood_waits, s.retries, s.migrations
        );
    }
    client.shutdown();
    let _ = shutdown.await;
    done(out, ok, failed)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[allow(dead_code)] // also compiled into the tests, which call `run`
#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = run(&args, &mut std::io::stdout(), &mut std::io::stderr()).await;
    std::process::exit(code);
}
