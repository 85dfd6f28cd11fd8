//! The `ping` example's logic against a fake DC on loopback: the example
//! file is compiled in here and its `run` called with arguments.

use std::net::TcpListener;
use std::time::Duration;

use mtsender_testkit::net::{serve, DcServer};
use mtsender_testkit::{FakeDcConfig, Faults};

#[path = "../examples/ping.rs"]
#[allow(dead_code, unused_imports)]
mod ping;

fn server(faults: &str) -> DcServer {
    let config = FakeDcConfig::new(2).faults(Faults::parse(faults).unwrap());
    serve(TcpListener::bind("127.0.0.1:0").unwrap(), config).unwrap()
}

fn key(name: &str) -> String {
    format!("{}/../../tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the tool; returns the exit code, stdout and stderr.
async fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tokio::time::timeout(
        Duration::from_secs(60),
        ping::run(&args, &mut out, &mut err),
    )
    .await
    .expect("ping finished in time");
    let out = String::from_utf8(out).unwrap();
    let err = String::from_utf8(err).unwrap();
    (code, out, err)
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_and_echoes_over_every_transport() {
    let dc = server("");
    let addr = format!("2={}", dc.addr());
    let pem = key("test_rsa_2048.pub.pem");
    for transport in ["abridged", "intermediate", "padded", "full", "obfuscated"] {
        let (code, out, err) = run(&[
            "--dc",
            &addr,
            "--rsa-key",
            &pem,
            "--transport",
            transport,
            "--echo",
            "20",
        ])
        .await;
        assert_eq!(
            last_line(&out),
            "done: ok=23 failed=0",
            "{transport}: {err}"
        );
        assert_eq!(code, 0);
        assert_eq!(err.lines().filter(|l| l.contains(": pong in")).count(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spki_key_restarts_and_refreshes() {
    // Every connection is closed after 5 packets: the tool reconnects and
    // loses nothing.
    let dc = server("close_after=5*2,delay_ms=20");
    let addr = format!("2={}", dc.addr());
    let pem = key("test_rsa_2048.spki.pem");
    let (code, out, err) = run(&[
        "--dc",
        &addr,
        "--rsa-key",
        &pem,
        "--count",
        "5",
        "--echo",
        "100",
        "--concurrency",
        "8",
        "--restart",
        "fixed:0.1",
        "--refresh-every",
        "1",
    ])
    .await;
    assert_eq!(last_line(&out), "done: ok=105 failed=0", "{err}");
    assert_eq!(code, 0);
    assert!(err.contains("reconnects"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pfs_binds_a_temporary_key() {
    let dc = server("");
    let addr = format!("2={}", dc.addr());
    let pem = key("test_rsa_2048.pub.pem");
    let (code, out, err) = run(&["--dc", &addr, "--rsa-key", &pem, "--pfs", "--echo", "5"]).await;
    assert_eq!(last_line(&out), "done: ok=8 failed=0", "{err}");
    assert_eq!(code, 0);
    assert!(err.contains("PFS"), "{err}");
    // The permanent key and a temporary one bound to it.
    assert_eq!(dc.with_dc(|d, _| d.auth_key_count()), 2);
}

#[tokio::test]
async fn failures_are_counted_and_bad_arguments_refused() {
    // Nothing listens on port 1; never restart: the connect fails.
    let pem = key("test_rsa_2048.pub.pem");
    let (code, out, err) = run(&[
        "--dc",
        "2=127.0.0.1:1",
        "--rsa-key",
        &pem,
        "--restart",
        "never",
    ])
    .await;
    assert_eq!(last_line(&out), "done: ok=0 failed=3", "{err}");
    assert_eq!(code, 1);

    let (code, _, err) = run(&["--transport", "pigeon"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("usage"), "{err}");
    let (code, _, _) = run(&["--rsa-key", "/nonexistent.pem"]).await;
    assert_eq!(code, 2);
}
