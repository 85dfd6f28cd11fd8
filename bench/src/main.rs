//! The runner: `cargo run --release -p mtsender-bench -- [--quick] [--only a,b]`.
//!
//! Measures every scenario for us and for the peers in this process,
//! prints one `RESULT` line per scenario and writes the same lines to
//! `target/bench-summary.txt` (and a Markdown table to
//! `target/bench-table.md`).
// Benchmarks read the wall clock; the core's ban on `Instant::now` is about
// the core, which takes time as an input.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::time::Duration;

use mtsender_bench::alloc::CountingAlloc;
use mtsender_bench::common::{self, Clocks};
use mtsender_bench::measure::{interleaved, median, Reps};
use mtsender_bench::sim::{scale_point, E2e, ScalePoint};
use mtsender_bench::{ferogram, floor, grammers, ours};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

struct Report {
    lines: Vec<String>,
    rows: Vec<[String; 6]>,
}

impl Report {
    fn line(&mut self, s: String) {
        println!("{s}");
        self.lines.push(s);
    }
}

/// `1234567.0` → `1.23M`.
fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

fn per_sec(count: usize, t: Duration) -> f64 {
    count as f64 / t.as_secs_f64()
}

fn mb_per_sec(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, load {load}")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect());
    let want = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == name));
    if let Some(i) = args.iter().position(|a| a == "--profile") {
        profile(args.get(i + 1).map_or("", String::as_str), quick);
        return;
    }
    assert!(
        mtsender_bench::alloc::counting(),
        "the counting allocator is not installed"
    );
    let clocks = Clocks::now();
    let mut r = Report {
        lines: Vec::new(),
        rows: Vec::new(),
    };
    r.line(format!(
        "# mtsender-bench ({}): {}",
        if quick { "quick" } else { "full" },
        machine()
    ));

    if want("encode_small") {
        let n = common::SMALL_COUNT;
        let mut a = ours::EncodeSmall::new(clocks, n);
        let mut g = grammers::EncodeSmall::new(n);
        let mut f = ferogram::EncodeSmall::new(n);
        // The floor: SHA-256 and chained AES over as many bytes as we send.
        a.run();
        let mut fl = floor::Floor::new(a.wire_bytes, false);
        let t = interleaved(
            Reps::new(quick, 101),
            &mut [
                &mut || a.run(),
                &mut || g.run(),
                &mut || f.run(),
                &mut || fl.run(),
            ],
        );
        let [o, gr, fe, flo] = [0, 1, 2, 3].map(|i| per_sec(n, t[i]));
        let peer = gr.max(fe);
        r.line(format!(
            "RESULT encode_small ours={}req/s peer={}req/s ratio={:.2} grammers={}req/s ferogram={}req/s floor={}req/s wire_bytes={}/{}/{}",
            si(o), si(peer), o / peer, si(gr), si(fe), si(flo), a.wire_bytes, g.wire_bytes, f.wire_bytes
        ));
        r.rows.push([
            "encode_small".into(),
            format!("{} req/s", si(o)),
            format!("{} req/s", si(gr)),
            format!("{} req/s", si(fe)),
            format!(
                "{:.2}× better peer (floor {} req/s = {:.2}× it)",
                o / peer,
                si(flo),
                flo / peer
            ),
            "≥ 2× better peer".into(),
        ]);
    }

    if want("decode_small") {
        // The server's bytes arrive in 64 KiB reads, as the adapters read
        // them; the same packets one read each are measured alongside.
        use common::Reads;
        let n = common::SMALL_COUNT;
        let mut a = ours::DecodeSmall::new(clocks, n, Reads::Stream);
        let mut g = grammers::DecodeSmall::new(clocks, n, Reads::Stream);
        let mut a1 = ours::DecodeSmall::new(clocks, n, Reads::PerPacket);
        let mut g1 = grammers::DecodeSmall::new(clocks, n, Reads::PerPacket);
        a.run();
        let mut fl = floor::Floor::new(a.wire().iter().map(Vec::len).sum(), true);
        let t = interleaved(
            Reps::new(quick, 101),
            &mut [
                &mut || a.run(),
                &mut || g.run(),
                &mut || a1.run(),
                &mut || g1.run(),
                &mut || fl.run(),
            ],
        );
        assert_eq!(
            [a.delivered, g.delivered, a1.delivered, g1.delivered],
            [n; 4],
            "every result delivered"
        );
        let [o, gr, o1, gr1, flo] = [0, 1, 2, 3, 4].map(|i| per_sec(n, t[i]));
        r.line(format!(
            "RESULT decode_small ours={}resp/s peer={}resp/s ratio={:.2} grammers={}resp/s ferogram=n/a floor={}resp/s reads={}KiB per_packet_reads: ours={}resp/s grammers={}resp/s ratio={:.2}",
            si(o), si(gr), o / gr, si(gr), si(flo), common::READ_LEN >> 10, si(o1), si(gr1), o1 / gr1
        ));
        r.rows.push([
            "decode_small".into(),
            format!("{} resp/s", si(o)),
            format!("{} resp/s", si(gr)),
            "n/a (no container/rpc_result parsing)".into(),
            format!(
                "{:.2}× grammers in 64 KiB reads (floor {} resp/s = {:.2}× it); one read per packet: {:.2}×",
                o / gr,
                si(flo),
                flo / gr,
                o1 / gr1
            ),
            "≥ 2× better peer".into(),
        ]);
    }

    if want("bulk_encrypt_512k") {
        let len = common::BULK_ENCRYPT_LEN;
        let mut a = ours::BulkEncrypt::new(clocks, len);
        let mut g = grammers::BulkEncrypt::new(len);
        let mut f = ferogram::BulkEncrypt::new(len);
        let mut fl = floor::Floor::new(len, false);
        let t = interleaved(
            Reps::new(quick, 101),
            &mut [
                &mut || a.run(),
                &mut || g.run(),
                &mut || f.run(),
                &mut || fl.run(),
            ],
        );
        let [o, gr, fe, flo] = [0, 1, 2, 3].map(|i| mb_per_sec(len, t[i]));
        let peer = gr.max(fe);
        r.line(format!(
            "RESULT bulk_encrypt_512k ours={o:.0}MB/s peer={peer:.0}MB/s ratio={:.2} floor={flo:.0}MB/s vs_peer={:.2} grammers={gr:.0}MB/s ferogram={fe:.0}MB/s",
            o / flo, o / peer
        ));
        r.rows.push([
            "bulk_encrypt_512k".into(),
            format!("{o:.0} MB/s"),
            format!("{gr:.0} MB/s"),
            format!("{fe:.0} MB/s"),
            format!("{:.2} of floor ({flo:.0} MB/s)", o / flo),
            "≥ 0.9 of floor".into(),
        ]);
    }

    if want("bulk_decrypt_1m") {
        let len = common::BULK_DECRYPT_LEN;
        let mut a = ours::BulkDecrypt::new(clocks, len);
        let g = grammers::BulkDecrypt::new(clocks, len);
        let mut f = ferogram::BulkDecrypt::new(clocks, len);
        let mut fl = floor::Floor::new(len, true);
        let (t, gr) = match g {
            Ok(mut g) => {
                let t = interleaved(
                    Reps::new(quick, 101),
                    &mut [
                        &mut || a.run(),
                        &mut || f.run(),
                        &mut || fl.run(),
                        &mut || g.run(),
                    ],
                );
                assert_eq!(g.delivered, len);
                let g = mb_per_sec(len, t[3]);
                (t, Ok(g))
            }
            Err(why) => {
                let t = interleaved(
                    Reps::new(quick, 101),
                    &mut [&mut || a.run(), &mut || f.run(), &mut || fl.run()],
                );
                (t, Err(why))
            }
        };
        assert_eq!((a.delivered, f.delivered), (len, len));
        let [o, fe, flo] = [0, 1, 2].map(|i| mb_per_sec(len, t[i]));
        let peer = gr.as_ref().map_or(fe, |g| g.max(fe));
        let gr_s = match &gr {
            Ok(g) => format!("{g:.0}MB/s"),
            Err(_) => "n/a".into(),
        };
        r.line(format!(
            "RESULT bulk_decrypt_1m ours={o:.0}MB/s peer={peer:.0}MB/s ratio={:.2} floor={flo:.0}MB/s vs_peer={:.2} grammers={gr_s} ferogram={fe:.0}MB/s",
            o / flo, o / peer
        ));
        if let Err(why) = &gr {
            r.line(format!("# bulk_decrypt_1m: grammers n/a, {why}"));
        }
        r.rows.push([
            "bulk_decrypt_1m".into(),
            format!("{o:.0} MB/s"),
            match &gr {
                Ok(g) => format!("{g:.0} MB/s"),
                Err(_) => "n/a (panics: result over its message cap)".into(),
            },
            format!("{fe:.0} MB/s (decryption only)"),
            format!("{:.2} of floor ({flo:.0} MB/s)", o / flo),
            "≥ 0.9 of floor".into(),
        ]);
    }

    if want("e2e_sim") {
        let n = 1000;
        let mut plain = E2e::new(clocks, n, false);
        let mut split = E2e::new(clocks, n, true);
        let mut sender_share = Vec::new();
        let t = interleaved(
            Reps::new(quick, 51),
            &mut [&mut || plain.run(), &mut || {
                let t = split.run();
                sender_share.push(split.sender_time);
                t
            }],
        );
        let rate = per_sec(n, t[0]);
        let per = t[0] / n as u32;
        let sender = median(sender_share) / n as u32;
        r.line(format!(
            "RESULT e2e_sim ours={}RPC/s peer=n/a ratio=n/a cost={:.2}us/RPC sender={:.2}us/RPC in_flight={n}",
            si(rate),
            per.as_secs_f64() * 1e6,
            sender.as_secs_f64() * 1e6
        ));
        r.rows.push([
            "e2e_sim (1,000 in flight)".into(),
            format!(
                "{} RPC/s; {:.2} µs/RPC ({:.2} µs in the sender)",
                si(rate),
                per.as_secs_f64() * 1e6,
                sender.as_secs_f64() * 1e6
            ),
            "n/a".into(),
            "n/a".into(),
            "absolute".into(),
            "—".into(),
        ]);
    }

    if want("scale") {
        // A run at 1,000 lasts about a millisecond: it takes many for a
        // stable median.
        let point = |n: usize| -> ScalePoint {
            let reps = match (quick, n <= 1000) {
                (true, true) => 9,
                (true, false) => 1,
                (false, true) => 41,
                (false, false) => 5,
            };
            let runs: Vec<ScalePoint> = (0..reps).map(|_| scale_point(clocks, n, true)).collect();
            ScalePoint {
                n,
                total_per_rpc: median(runs.iter().map(|p| p.total_per_rpc).collect()),
                sender_per_rpc: median(runs.iter().map(|p| p.sender_per_rpc).collect()),
                bytes_per_pending: runs.iter().map(|p| p.bytes_per_pending).fold(0.0, f64::max),
            }
        };
        let small = point(1_000);
        let large = point(100_000);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let growth = us(large.sender_per_rpc) / us(small.sender_per_rpc);
        let growth_total = us(large.total_per_rpc) / us(small.total_per_rpc);
        let bytes = small.bytes_per_pending.max(large.bytes_per_pending);
        r.line(format!(
            "RESULT scale ours={growth:.2}x peer=n/a ratio=n/a sender_1k={:.2}us sender_100k={:.2}us total_1k={:.2}us total_100k={:.2}us total_growth={growth_total:.2}x bytes_per_pending_1k={:.0}B bytes_per_pending_100k={:.0}B",
            us(small.sender_per_rpc),
            us(large.sender_per_rpc),
            us(small.total_per_rpc),
            us(large.total_per_rpc),
            small.bytes_per_pending,
            large.bytes_per_pending,
        ));
        r.rows.push([
            "scale (1k → 100k in flight)".into(),
            format!(
                "{growth:.2}× per RPC in the sender ({:.2} → {:.2} µs); {:.0} / {:.0} B per pending request",
                us(small.sender_per_rpc),
                us(large.sender_per_rpc),
                small.bytes_per_pending,
                large.bytes_per_pending
            ),
            "n/a".into(),
            "n/a".into(),
            format!("growth {growth:.2}×, ≤ {bytes:.0} B"),
            "growth ≤ 1.3×, ≤ 256 B".into(),
        ]);
    }

    write_outputs(&r);
}

/// Runs only our side of one scenario, for a profiler.
fn profile(scenario: &str, quick: bool) {
    let clocks = Clocks::now();
    let reps = if quick { 20 } else { 200 };
    let mut run: Box<dyn FnMut() -> Duration> = match scenario {
        "encode_small" => {
            let mut s = ours::EncodeSmall::new(clocks, common::SMALL_COUNT);
            Box::new(move || s.run())
        }
        "decode_small" => {
            let mut s = ours::DecodeSmall::new(clocks, common::SMALL_COUNT, common::Reads::Stream);
            Box::new(move || s.run())
        }
        "bulk_encrypt_512k" => {
            let mut s = ours::BulkEncrypt::new(clocks, common::BULK_ENCRYPT_LEN);
            Box::new(move || s.run())
        }
        "bulk_decrypt_1m" => {
            let mut s = ours::BulkDecrypt::new(clocks, common::BULK_DECRYPT_LEN);
            Box::new(move || s.run())
        }
        "e2e_sim" => {
            let mut s = E2e::new(clocks, 1000, false);
            Box::new(move || s.run())
        }
        "scale" => Box::new(move || {
            let p = scale_point(clocks, 100_000, false);
            p.total_per_rpc * p.n as u32
        }),
        other => panic!("unknown scenario {other:?}"),
    };
    let times: Vec<Duration> = (0..reps).map(|_| run()).collect();
    println!("{scenario}: median {:?} over {reps} runs", median(times));
}

fn write_outputs(r: &Report) {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_string());
    let _ = std::fs::create_dir_all(&dir);
    let mut summary = r.lines.join("\n");
    summary.push('\n');
    let path = format!("{dir}/bench-summary.txt");
    if let Err(e) = std::fs::write(&path, summary) {
        eprintln!("could not write {path}: {e}");
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| scenario | mtsender | {} | {} | measured | target |",
        grammers::VERSION,
        ferogram::VERSION
    );
    t.push_str("|---|---|---|---|---|---|\n");
    for row in &r.rows {
        let _ = writeln!(t, "| {} |", row.join(" | "));
    }
    let path = format!("{dir}/bench-table.md");
    if let Err(e) = std::fs::write(&path, t) {
        eprintln!("could not write {path}: {e}");
    }
}
