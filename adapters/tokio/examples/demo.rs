//! The whole stack against two fake DCs on loopback, with a fault script.
//!
//! ```sh
//! cargo run --release -p mtsender-tokio --example demo
//! ```
//!
//! Starts DC 2 and DC 4 in-process (ephemeral ports), sends a few hundred
//! concurrent `test.echo` requests with distinct payloads through one
//! client while DC 2 misbehaves, and prints what happened. Exits 0 only if
//! every request got its own answer and the DCs ran each exactly once.
#![allow(clippy::disallowed_methods)] // a program: it reads the clock

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mtsender::tl::{functions::TestEcho, Serialize};
use mtsender_testkit::net::{serve, DcServer};
use mtsender_testkit::{test_rsa_key, FakeDcConfig, Faults};
use mtsender_tokio::{Client, DcTable, FixedInterval, Request};

const REQUESTS: u32 = 400;

/// What both DCs do wrong, by the first payload byte of the echo (both,
/// because requests follow the home DC once it has moved).
const FAULTS: &str = "delay_ms=300@echo:64,\
                      flood_wait=2@echo:66*8,\
                      bad_salt@echo:73*1,\
                      internal@echo:69*4";
/// And DC 2 moves the home DC to 4.
const MIGRATE: &str = "migrate=user:4@echo:6d*1";

/// Payload classes, by first byte: d(elayed), f(lood wait), s(alt),
/// i(nternal error), m(igrate), p(lain).
fn class(i: u32) -> u8 {
    match i {
        0 => b'm',
        _ if i % 50 == 7 => b'f',
        _ if i % 100 == 11 => b's',
        _ if i % 100 == 13 => b'i',
        _ if i.is_multiple_of(3) => b'd',
        _ => b'p',
    }
}

fn echo(i: u32) -> Vec<u8> {
    let mut payload = vec![class(i)];
    payload.extend_from_slice(&i.to_le_bytes());
    TestEcho { payload }.to_bytes()
}

fn start(dc: i32, faults: &str) -> DcServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let faults = Faults::parse(faults).expect("valid fault script");
    serve(listener, FakeDcConfig::new(dc).faults(faults)).expect("start the fake DC")
}

#[tokio::main]
async fn main() -> ExitCode {
    let dc2 = start(2, &format!("{FAULTS},{MIGRATE}"));
    let dc4 = start(4, FAULTS);
    println!("fake DC 2 on {}, faults: {FAULTS},{MIGRATE}", dc2.addr());
    println!("fake DC 4 on {}, faults: {FAULTS}", dc4.addr());
    println!(
        "script: every connection is cut when 1/3 of the answers are in; \
         the client refreshes its connections every second"
    );

    let started = Instant::now();
    let connected = Client::builder()
        .dcs(DcTable::empty())
        .dc(2, dc2.addr())
        .dc(4, dc4.addr())
        .rsa_key(test_rsa_key().public_key().clone())
        .restart_policy(Arc::new(FixedInterval {
            interval: Duration::from_millis(200),
        }))
        .configure(|c| c.refresh_every = Some(Duration::from_secs(1)))
        .connect()
        .await;
    let (client, _shutdown) = match connected {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connect failed: {e}");
            return ExitCode::FAILURE;
        }
    };

    let bar = ProgressBar::new(u64::from(REQUESTS)).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} answers {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..REQUESTS {
        let client = client.clone();
        tasks.spawn(async move {
            let request = echo(i);
            let (result, meta) = client.invoke_with(Request::new(request.clone())).await;
            (request, result, meta)
        });
    }
    let (mut ok, mut failed, mut resent, mut wrong) = (0u32, 0u32, 0u32, 0u32);
    let mut answered = Vec::new();
    let mut cut = false;
    while let Some(joined) = tasks.join_next().await {
        let Ok((request, result, meta)) = joined else {
            failed += 1;
            continue;
        };
        match result {
            Ok(answer) if answer == request => ok += 1,
            Ok(_) => wrong += 1,
            Err(e) => {
                failed += 1;
                bar.println(format!("failed: {e}"));
            }
        }
        if meta.failures > 0 || meta.maybe_repeated {
            resent += 1;
        }
        answered.push(request);
        bar.inc(1);
        if !cut && answered.len() as u32 >= REQUESTS / 3 {
            cut = true;
            bar.println("cutting every connection");
            dc2.drop_connections();
            dc4.drop_connections();
        }
    }
    bar.finish_and_clear();
    let took = started.elapsed();

    // Against the servers' own books: each request ran exactly once.
    let mut lost = 0;
    let mut twice = 0;
    for i in 0..REQUESTS {
        let request = echo(i);
        let runs = dc2.with_dc(|d, _| d.execution_count(&request))
            + dc4.with_dc(|d, _| d.execution_count(&request));
        match runs {
            0 => lost += 1,
            1 => {}
            _ => twice += 1,
        }
    }
    let stats = client.stats().await.unwrap_or_default();
    println!("requests:     {REQUESTS}");
    println!("ok:           {ok}");
    println!("failed:       {failed}");
    println!("wrong answer: {wrong}");
    println!("resent:       {resent} (sent again after an error)");
    println!("reconnects:   {}", stats.restarts);
    println!("refreshes:    {}", stats.refreshes);
    println!("migrations:   {} (home DC now 4)", stats.migrations);
    println!(
        "flood waits:  {} slept, {:.1} s added up over the requests",
        stats.flood_waits,
        stats.flood_slept.as_secs_f64()
    );
    println!("other retries: {}", stats.retries);
    println!(
        "auth keys:    {} (DC 2: {}, DC 4: {})",
        stats.handshakes,
        dc2.with_dc(|d, _| d.stats().handshakes),
        dc4.with_dc(|d, _| d.stats().handshakes)
    );
    println!("executions:   {lost} never run, {twice} run more than once");
    println!("time:         {:.2} s", took.as_secs_f64());
    client.shutdown();
    if ok == REQUESTS && lost == 0 && twice == 0 {
        println!("result: nothing lost, nothing run twice");
        ExitCode::SUCCESS
    } else {
        println!("result: FAILED");
        ExitCode::FAILURE
    }
}
