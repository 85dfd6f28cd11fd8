//! The seed documents' snippets, as written there, run against a fake DC
//! on loopback. Included by each adapter's `tests/seed_snippets.rs`, which
//! names its crate `ferogram` and `ferogram_mtsender` (the documents'
//! crates) and runs [`run_all`] on its executor.
//!
//! The snippets call `Client::builder()` with no DC address and a relative
//! session path. Here `Client` is a stand-in whose `builder()` is the real
//! one pointed at the fake DC, and the working directory is a fresh
//! temporary one; the code inside each function is the documents' own.
#![allow(clippy::let_and_return, unused_imports)]

use std::error::Error;
use std::net::{SocketAddr, TcpListener};
use std::sync::OnceLock;
use std::time::Duration;

use mtsender::tl::{functions::TestEcho, Serialize};
use mtsender_testkit::{net::serve, test_rsa_key, FakeDcConfig, Faults};

static FAKE_DC: OnceLock<SocketAddr> = OnceLock::new();

/// Stands in for the documents' `Client`: the real builder, aimed at the
/// fake DC.
struct Client;

impl Client {
    fn builder() -> ferogram::Builder {
        ferogram::Client::builder()
            .dcs(ferogram::DcTable::empty())
            .dc(2, *FAKE_DC.get().expect("the fake DC runs"))
            .rsa_key(test_rsa_key().public_key().clone())
    }
}

type Connected = Result<ferogram::Client, Box<dyn Error>>;

// ---- Connection restart policy document ----

async fn never_restart() -> Connected {
    use ferogram::NeverRestart;
    use std::sync::Arc;
    let (client, _shutdown) = Client::builder()
        .api_id(12345)
        .api_hash("your_hash")
        .session("bot.session")
        .restart_policy(Arc::new(NeverRestart)) // this is already the default
        .connect()
        .await?;
    Ok(client)
}

async fn fixed_interval() -> Connected {
    use ferogram::FixedInterval;
    use std::sync::Arc;
    use std::time::Duration;
    let (client, _shutdown) = Client::builder()
        .api_id(12345)
        .api_hash("your_hash")
        .session("bot.session")
        .restart_policy(Arc::new(FixedInterval {
            interval: Duration::from_secs(5),
        }))
        .connect()
        .await?;
    Ok(client)
}

async fn custom_restart_policy() -> Connected {
    use ferogram::ConnectionRestartPolicy;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    struct ExponentialBackoff {
        attempt: AtomicU32,
        base_ms: u64,
        max_ms: u64,
    }
    impl ExponentialBackoff {
        fn new(base_ms: u64, max_ms: u64) -> Self {
            Self {
                attempt: AtomicU32::new(0),
                base_ms,
                max_ms,
            }
        }
    }
    impl ConnectionRestartPolicy for ExponentialBackoff {
        fn restart_interval(&self) -> Option<Duration> {
            let n = self.attempt.fetch_add(1, Ordering::Relaxed);
            let ms = (self.base_ms * (1u64 << n.min(10))).min(self.max_ms);
            Some(Duration::from_millis(ms))
        }
    }
    let (client, _shutdown) = Client::builder()
        .api_id(12345)
        .api_hash("your_hash")
        .session("bot.session")
        .restart_policy(Arc::new(ExponentialBackoff::new(500, 60_000)))
        .connect()
        .await?;
    Ok(client)
}

mod trait_definition {
    use std::time::Duration;
    pub trait ConnectionRestartPolicy: Send + Sync + 'static {
        /// Return `Some(duration)` to restart after that delay, or `None` to not restart.
        fn restart_interval(&self) -> Option<Duration>;
    }
    // The crate's trait has the same required method.
    impl<T: ferogram::ConnectionRestartPolicy> ConnectionRestartPolicy for T {
        fn restart_interval(&self) -> Option<Duration> {
            ferogram::ConnectionRestartPolicy::restart_interval(self)
        }
    }
}

async fn scheduled_restarts() -> Connected {
    use ferogram::FixedInterval;
    use std::sync::Arc;
    // Restart the connection every 12 hours
    let (client, _shutdown) = Client::builder()
        .api_id(12345)
        .api_hash("your_hash")
        .session("bot.session")
        .restart_policy(Arc::new(FixedInterval {
            interval: Duration::from_secs(12 * 60 * 60),
        }))
        .connect()
        .await?;
    Ok(client)
}

async fn scheduled_restarts_with_catch_up() -> Connected {
    use ferogram::FixedInterval;
    use std::sync::Arc;
    let (client, _shutdown) = Client::builder()
        .api_id(12345)
        .api_hash("your_hash")
        .session("bot.session")
        .catch_up(true)
        .restart_policy(Arc::new(FixedInterval {
            interval: Duration::from_secs(12 * 60 * 60),
        }))
        .connect()
        .await?;
    Ok(client)
}

// ---- Sender pool and retry policies document ----

async fn auto_sleep() -> Connected {
    use ferogram_mtsender::AutoSleep;
    use std::time::Duration;
    let policy = AutoSleep {
        threshold: Duration::from_secs(60), // sleep through flood waits up to 60s
        io_errors_as_flood_of: Some(Duration::from_secs(1)),
    };
    with_retry(std::sync::Arc::new(policy)).await
}

async fn no_retries() -> Connected {
    use ferogram_mtsender::NoRetries;
    let policy = NoRetries;
    with_retry(std::sync::Arc::new(policy)).await
}

async fn circuit_breaker() -> Connected {
    use ferogram_mtsender::CircuitBreaker;
    use std::time::Duration;
    // Trip after 5 consecutive errors, stay open for 30s
    let policy = CircuitBreaker::new(5, Duration::from_secs(30));
    with_retry(std::sync::Arc::new(policy)).await
}

async fn custom_retry_policy() -> Connected {
    use ferogram_mtsender::{RetryContext, RetryPolicy};
    use std::ops::ControlFlow;
    use std::time::Duration;
    struct MyPolicy;
    impl RetryPolicy for MyPolicy {
        fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration> {
            if ctx.fail_count.get() < 3 {
                ControlFlow::Continue(Duration::from_secs(1))
            } else {
                ControlFlow::Break(())
            }
        }
    }
    with_retry(std::sync::Arc::new(MyPolicy)).await
}

async fn with_retry(policy: std::sync::Arc<dyn ferogram::RetryPolicy>) -> Connected {
    let (client, _shutdown) = Client::builder().retry_policy(policy).connect().await?;
    Ok(client)
}

fn echo(tag: &str) -> Vec<u8> {
    TestEcho {
        payload: tag.as_bytes().to_vec(),
    }
    .to_bytes()
}

/// Runs every snippet against one fake DC and checks what it did.
pub async fn run_all(adapter: &str) {
    let dir = std::env::temp_dir().join(format!("mtsender-seed-{adapter}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The only test in this binary: changing the directory affects no other.
    std::env::set_current_dir(&dir).unwrap();
    let _ = std::fs::remove_file("bot.session");
    // One transient failure for the custom retry policy to retry.
    let faults = Faults::parse("internal@echo:726574727920*1").unwrap();
    let dc = serve(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        FakeDcConfig::new(2).faults(faults),
    )
    .unwrap();
    FAKE_DC.set(dc.addr()).unwrap();

    let clients: Vec<(&str, Connected)> = vec![
        ("never_restart", never_restart().await),
        ("fixed_interval", fixed_interval().await),
        ("custom_restart_policy", custom_restart_policy().await),
        ("scheduled_restarts", scheduled_restarts().await),
        (
            "scheduled_restarts_with_catch_up",
            scheduled_restarts_with_catch_up().await,
        ),
        ("auto_sleep", auto_sleep().await),
        ("no_retries", no_retries().await),
        ("circuit_breaker", circuit_breaker().await),
    ];
    for (name, client) in clients {
        let client = client.unwrap_or_else(|e| panic!("{name}: {e}"));
        let req = echo(name);
        assert_eq!(client.invoke(req.clone()).await.unwrap(), req, "{name}");
        assert_eq!(dc.with_dc(|d, _| d.execution_count(&req)), 1, "{name}");
    }
    // The five restart snippets share bot.session, so one auth key; the
    // three retry snippets have no session file, so one key each.
    assert_eq!(dc.with_dc(|d, _| d.stats().handshakes), 1 + 3);
    assert!(std::path::Path::new("bot.session").exists());

    // The custom retry policy retries the injected failure after 1 s.
    let client = custom_retry_policy().await.unwrap();
    let req = echo("retry ");
    assert_eq!(client.invoke(req.clone()).await.unwrap(), req);
    assert_eq!(client.stats().await.unwrap().retries, 1);
    assert_eq!(dc.with_dc(|d, _| d.execution_count(&req)), 1);

    // The documented trait shape is the crate's.
    fn shape(p: &dyn trait_definition::ConnectionRestartPolicy) -> Option<Duration> {
        p.restart_interval()
    }
    assert_eq!(shape(&ferogram::NeverRestart), None);
}
