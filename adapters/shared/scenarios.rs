// Loopback scenarios run by both adapters' tests. The including test file
// provides `adapter` (the crate under test) and `sleep`.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use mtsender::tl::functions::{Ping, TestEcho};
use mtsender::tl::types::Pong;
use mtsender::tl::{Deserialize, Serialize};
use mtsender::transport::TransportKind;
use mtsender_testkit::net::{serve, DcServer};
use mtsender_testkit::{test_rsa_key, FakeDcConfig, Faults};

use crate::adapter::{
    Builder, Client, ConnectError, DcTable, Event, FixedInterval, InvocationError, NeverRestart,
    ShutdownReason,
};
use crate::sleep;

pub fn server(dc: i32, faults: &str) -> DcServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let config = FakeDcConfig::new(dc).faults(Faults::parse(faults).expect("fault spec"));
    serve(listener, config).expect("start the fake DC")
}

/// A builder for `servers`, the first one home, with the test key and
/// quick restarts.
pub fn builder(servers: &[&DcServer]) -> Builder {
    let mut b = Client::builder()
        .dcs(DcTable::empty())
        .rsa_key(test_rsa_key().public_key().clone())
        .restart_policy(Arc::new(FixedInterval {
            interval: Duration::from_millis(100),
        }));
    for s in servers {
        let id = s.with_dc(|dc, _| dc.dc_id());
        b = b.dc(id, s.addr());
    }
    let home = servers[0].with_dc(|dc, _| dc.dc_id());
    b.home_dc(home)
}

pub fn echo(tag: &[u8], n: u32) -> Vec<u8> {
    let mut payload = tag.to_vec();
    payload.extend_from_slice(&n.to_le_bytes());
    TestEcho { payload }.to_bytes()
}

/// A fresh path for each call: a driver of an earlier run may still write
/// its file at shutdown.
pub fn temp_path(name: &str) -> PathBuf {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mtsender-adapter-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(format!("{run}-{name}"));
    let _ = std::fs::remove_file(&p);
    p
}

#[allow(clippy::disallowed_methods)] // tests measure real time
fn now() -> Instant {
    Instant::now()
}

/// Polls every future until all are done.
pub async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => done = false,
                }
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("all done")).collect()
}

/// Sends `n` distinct echoes at once; checks each answer against its
/// request and that the DC ran each exactly once.
async fn echoes(client: &Client, servers: &[&DcServer], tag: &[u8], n: u32) {
    let requests: Vec<Vec<u8>> = (0..n).map(|i| echo(tag, i)).collect();
    let answers = join_all(requests.iter().map(|r| client.invoke(r.clone())).collect()).await;
    for (req, ans) in requests.iter().zip(answers) {
        assert_eq!(ans.as_ref(), Ok(req), "answer to {req:02x?}");
        let runs: u32 = servers
            .iter()
            .map(|s| s.with_dc(|dc, _| dc.execution_count(req)))
            .sum();
        assert_eq!(runs, 1, "executions of {req:02x?}");
    }
}

pub async fn handshake_on_every_transport() {
    let dc = server(2, "");
    let kinds = [
        TransportKind::Abridged,
        TransportKind::Intermediate,
        TransportKind::PaddedIntermediate,
        TransportKind::Full,
    ];
    let mut expected_keys = 0;
    for (i, kind) in kinds.into_iter().enumerate() {
        for obfuscated in [false, true] {
            if obfuscated && kind == TransportKind::Full {
                continue; // Full has no obfuscated form
            }
            let (client, shutdown) = builder(&[&dc])
                .transport(kind)
                .obfuscated(obfuscated)
                .connect()
                .await
                .unwrap_or_else(|e| panic!("{kind:?} obfuscated={obfuscated}: {e}"));
            expected_keys += 1;
            let tag = [i as u8, obfuscated as u8, 0x7e];
            echoes(&client, &[&dc], &tag, 3).await;
            client.shutdown();
            assert_eq!(shutdown.await, ShutdownReason::Requested);
        }
    }
    let handshakes = dc.with_dc(|dc, _| dc.stats().handshakes);
    assert_eq!(handshakes, expected_keys, "one new auth key per client");
}

pub async fn pfs_runs_on_a_bound_temporary_key() {
    let dc = server(2, "");
    let path = temp_path("pfs.session");
    let (client, _shutdown) = builder(&[&dc])
        .pfs(true)
        .session(&path)
        .connect()
        .await
        .unwrap();
    echoes(&client, &[&dc], b"t", 10).await;
    assert_eq!(dc.with_dc(|d, _| d.auth_key_count()), 2);
    dc.drop_connections();
    echoes(&client, &[&dc], b"u", 10).await;
    assert_eq!(
        dc.with_dc(|d, _| d.auth_key_count()),
        2,
        "no new key after a drop"
    );
    let saved =
        mtsender::sender::persist::SessionData::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved.dcs.len(), 1, "only the permanent key is saved");
}

pub async fn thousand_concurrent_echoes() {
    let dc = server(2, "");
    let (client, _shutdown) = builder(&[&dc]).connect().await.unwrap();
    echoes(&client, &[&dc], b"k", 1000).await;
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.ok, 1001, "the connect ping and the echoes");
    assert_eq!(stats.failed, 0);
}

pub async fn drop_mid_flight_loses_nothing_and_runs_nothing_twice() {
    // Answers are held back, so the drop finds every request in flight.
    let dc = server(2, "delay_ms=300");
    let (client, _shutdown) = builder(&[&dc]).connect().await.unwrap();
    let cut = async {
        sleep(Duration::from_millis(100)).await;
        dc.drop_connections();
    };
    join2(cut, echoes(&client, &[&dc], b"d", 300)).await;
    let stats = client.stats().await.unwrap();
    assert!(stats.restarts >= 1, "the drop was seen: {stats:?}");
    assert_eq!(stats.failed, 0);
}

pub async fn flood_wait_is_slept() {
    let dc = server(2, "flood_wait=1@echo:f1*1");
    let (client, _shutdown) = builder(&[&dc]).connect().await.unwrap();
    let start = now();
    let req = echo(&[0xf1], 0);
    assert_eq!(client.invoke(req.clone()).await, Ok(req.clone()));
    assert!(now() - start >= Duration::from_secs(1), "slept the wait");
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.flood_waits, 1);
    assert!(stats.flood_slept >= Duration::from_secs(1));
    assert_eq!(dc.with_dc(|d, _| d.execution_count(&req)), 1);
}

pub async fn migration_across_two_dcs() {
    let home = server(2, "migrate=phone:4@echo:aa");
    let other = server(4, "");
    let path = temp_path("migration.session");
    let (client, _shutdown) = builder(&[&home, &other])
        .session(&path)
        .connect()
        .await
        .unwrap();
    let req = echo(&[0xaa], 1);
    let (result, meta) = client
        .invoke_with(crate::adapter::Request::new(req.clone()))
        .await;
    assert_eq!(result, Ok(req.clone()));
    assert_eq!(meta.dc, 4, "answered by the new home");
    assert_eq!(other.with_dc(|d, _| d.execution_count(&req)), 1);
    assert_eq!(home.with_dc(|d, _| d.execution_count(&req)), 0);
    // Later requests go to the new home; the session file says so.
    let next = echo(b"n", 2);
    assert_eq!(client.invoke(next.clone()).await, Ok(next.clone()));
    assert_eq!(other.with_dc(|d, _| d.execution_count(&next)), 1);
    let saved =
        mtsender::sender::persist::SessionData::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved.home_dc, 4);
    assert_eq!(client.stats().await.unwrap().migrations, 1);
}

pub async fn never_restart_fires_shutdown() {
    let dc = server(2, "delay_ms=5000");
    let (client, shutdown) = builder(&[&dc])
        .restart_policy(Arc::new(NeverRestart))
        .connect()
        .await
        .unwrap();
    let pending = client.invoke(echo(b"p", 0));
    let cut = async {
        sleep(Duration::from_millis(100)).await;
        dc.drop_connections();
        shutdown.await
    };
    let (result, reason) = join2(pending, cut).await;
    assert_eq!(reason, ShutdownReason::ConnectionLost { dc: 2 });
    assert!(
        matches!(result, Err(InvocationError::Io { dc: 2, .. })),
        "{result:?}"
    );
    assert!(client.is_closed());
    assert_eq!(
        client.invoke(echo(b"p", 1)).await,
        Err(InvocationError::Shutdown)
    );
}

pub async fn graceful_refresh_loses_nothing() {
    let dc = server(2, "delay_ms=150");
    let (client, _shutdown) = builder(&[&dc])
        .configure(|c| {
            c.refresh_every = Some(Duration::from_millis(300));
            c.drain_timeout = Duration::from_secs(5);
        })
        .connect()
        .await
        .unwrap();
    for round in 0..8u8 {
        echoes(&client, &[&dc], &[b'r', round], 20).await;
    }
    let stats = client.stats().await.unwrap();
    assert!(stats.refreshes >= 2, "{stats:?}");
    assert_eq!(stats.restarts, 0, "no drop, only refreshes");
    assert_eq!(stats.failed, 0);
    let conns = dc.with_dc(|d, _| d.stats().connections);
    assert!(conns >= 3, "new connections: {conns}");
}

pub async fn session_file_is_reused_and_a_corrupt_one_refused() {
    let dc = server(2, "");
    let path = temp_path("reuse.session");
    let (client, shutdown) = builder(&[&dc]).session(&path).connect().await.unwrap();
    assert!(path.exists(), "written once the key exists");
    client.shutdown();
    shutdown.await;
    let (client, _shutdown) = builder(&[&dc]).session(&path).connect().await.unwrap();
    echoes(&client, &[&dc], b"s", 2).await;
    assert_eq!(dc.with_dc(|d, _| d.stats().handshakes), 1, "key reused");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    match builder(&[&dc]).session(&path).connect().await {
        Err(ConnectError::SessionCorrupt { .. }) => {}
        other => panic!("{other:?}"),
    }
}

pub async fn updates_and_pings_arrive() {
    let dc = server(2, "");
    let (client, _shutdown) = builder(&[&dc]).connect().await.unwrap();
    let mut updates = client.updates().expect("first take");
    assert!(client.updates().is_none());
    let update = TestEcho {
        payload: b"an update".to_vec(),
    }
    .to_bytes();
    dc.with_dc(|d, now| d.push_update(now, update.clone()));
    assert_eq!(
        updates.next().await,
        Some(Event::Update {
            dc: 2,
            bytes: update
        })
    );
    let pong = client
        .invoke(Ping { ping_id: 99 }.to_bytes())
        .await
        .unwrap();
    assert_eq!(Pong::from_bytes(&pong).unwrap().ping_id, 99);
}

pub async fn slow_update_readers_are_told_what_they_missed() {
    let dc = server(2, "");
    // The channel holds 2 + 1 (one per sender) events.
    let (client, _shutdown) = builder(&[&dc]).updates_capacity(2).connect().await.unwrap();
    let mut updates = client.updates().unwrap();
    let update = |n: u8| TestEcho { payload: vec![n] }.to_bytes();
    for n in 1..=5 {
        dc.with_dc(|d, now| d.push_update(now, update(n)));
    }
    sleep(Duration::from_millis(300)).await; // usually all five arrive now
    let mut seen = Vec::new();
    let mut dropped = 0;
    while seen.len() < 3 {
        match updates.next().await.unwrap() {
            Event::Update { bytes, .. } => seen.push(bytes),
            Event::Lagged { dropped: n } => dropped += n,
            other => panic!("{other:?}"),
        }
    }
    // The next update brings word of the dropped ones first.
    dc.with_dc(|d, now| d.push_update(now, update(6)));
    loop {
        match updates.next().await.unwrap() {
            Event::Update { bytes, .. } => {
                let last = bytes == update(6);
                seen.push(bytes);
                if last {
                    break;
                }
            }
            Event::Lagged { dropped: n } => dropped += n,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        seen.len() as u64 + dropped,
        6,
        "each update delivered or counted"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in order");
}

async fn join2<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let mut a = Box::pin(a);
    let mut b = Box::pin(b);
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        if ra.is_some() && rb.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    (ra.expect("done"), rb.expect("done"))
}
