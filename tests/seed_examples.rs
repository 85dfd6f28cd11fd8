//! The user's own examples from the seed documents, compiled unchanged but
//! for the crate name (`ferogram_mtsender` / `ferogram` → `mtsender`), and
//! exercised.
#![allow(clippy::let_and_return)] // the seed code is kept as written

mod retry_seed {
    // --- from the sender pool document ---
    use mtsender::AutoSleep;
    use std::time::Duration;

    pub fn auto_sleep() -> AutoSleep {
        let policy = AutoSleep {
            threshold: Duration::from_secs(60), // sleep through flood waits up to 60s
            io_errors_as_flood_of: Some(Duration::from_secs(1)),
        };
        policy
    }

    pub fn no_retries() -> mtsender::NoRetries {
        use mtsender::NoRetries;
        let policy = NoRetries;
        policy
    }

    pub fn circuit_breaker() -> mtsender::CircuitBreaker {
        use mtsender::CircuitBreaker;
        use std::time::Duration;
        // Trip after 5 consecutive errors, stay open for 30s
        let policy = CircuitBreaker::new(5, Duration::from_secs(30));
        policy
    }

    pub mod custom {
        use mtsender::{RetryContext, RetryPolicy};
        use std::ops::ControlFlow;
        use std::time::Duration;
        pub struct MyPolicy;
        impl RetryPolicy for MyPolicy {
            fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration> {
                if ctx.fail_count.get() < 3 {
                    ControlFlow::Continue(Duration::from_secs(1))
                } else {
                    ControlFlow::Break(())
                }
            }
        }
    }
}

mod restart_seed {
    // --- from the connection restart policy document ---
    use mtsender::ConnectionRestartPolicy;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;
    pub struct ExponentialBackoff {
        attempt: AtomicU32,
        base_ms: u64,
        max_ms: u64,
    }
    impl ExponentialBackoff {
        pub fn new(base_ms: u64, max_ms: u64) -> Self {
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

    pub fn fixed() -> mtsender::FixedInterval {
        use mtsender::FixedInterval;
        FixedInterval {
            interval: Duration::from_secs(5),
        }
    }

    pub fn never() -> std::sync::Arc<dyn ConnectionRestartPolicy> {
        use mtsender::NeverRestart;
        use std::sync::Arc;
        Arc::new(NeverRestart) // this is already the default
    }
}

use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use mtsender::{ConnectionRestartPolicy, InvocationError, RetryContext, RetryPolicy};

#[test]
fn the_seed_policies_behave_as_documented() {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let ctx = |n: u32| {
        RetryContext::new(
            NonZeroU32::new(n).unwrap(),
            Duration::ZERO,
            InvocationError::Timeout,
            now,
            2,
            0,
        )
    };
    let custom = retry_seed::custom::MyPolicy;
    assert_eq!(
        custom.should_retry(&ctx(2)),
        ControlFlow::Continue(Duration::from_secs(1))
    );
    assert_eq!(custom.should_retry(&ctx(3)), ControlFlow::Break(()));
    assert_eq!(
        retry_seed::no_retries().should_retry(&ctx(1)),
        ControlFlow::Break(())
    );
    assert_eq!(retry_seed::auto_sleep(), mtsender::AutoSleep::default());
    let cb = retry_seed::circuit_breaker();
    assert!(cb.admit(now, 2).is_ok());

    let backoff = restart_seed::ExponentialBackoff::new(500, 60_000);
    let ladder: Vec<u64> = (0..9)
        .map(|_| backoff.restart_interval().unwrap().as_millis() as u64)
        .collect();
    assert_eq!(
        ladder,
        [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]
    );
    assert_eq!(
        restart_seed::fixed().restart_interval(),
        Some(Duration::from_secs(5))
    );
    assert_eq!(restart_seed::never().restart_interval(), None);
}
