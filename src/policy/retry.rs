use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::InvocationError;

/// Decides whether a failed request is sent again, and after how long.
///
/// `should_retry` is called once per failure with the request's history;
/// `Continue(d)` sends it again after `d`, `Break(())` fails it with the
/// error. The provided methods let stateful policies (a circuit breaker)
/// refuse requests up front and learn of successes.
pub trait RetryPolicy: Send + Sync + 'static {
    /// After a failure: retry after a delay, or give up.
    fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration>;

    /// Before a request is sent to `dc`: `Err` fails it at once without
    /// sending. The default admits everything.
    fn admit(&self, now: Instant, dc: i32) -> Result<(), InvocationError> {
        let _ = (now, dc);
        Ok(())
    }

    /// A request to `dc` got its answer.
    fn on_success(&self, now: Instant, dc: i32) {
        let _ = (now, dc);
    }
}

/// What a [`RetryPolicy`] knows about a failure.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RetryContext {
    /// How many times this request has failed, this failure included.
    pub fail_count: NonZeroU32,
    /// Time already spent sleeping between its attempts.
    pub slept_so_far: Duration,
    /// This failure.
    pub error: InvocationError,
    /// The time of the failure.
    pub now: Instant,
    /// The DC the request was sent to.
    pub dc: i32,
    /// A random number from the sender's seeded generator, for jitter.
    pub random: u64,
}

impl RetryContext {
    /// A context (for policies driven by hand, and tests).
    pub fn new(
        fail_count: NonZeroU32,
        slept_so_far: Duration,
        error: InvocationError,
        now: Instant,
        dc: i32,
        random: u64,
    ) -> Self {
        Self {
            fail_count,
            slept_so_far,
            error,
            now,
            dc,
            random,
        }
    }
}

/// Never retries: every error goes straight to the caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRetries;

impl RetryPolicy for NoRetries {
    fn should_retry(&self, _: &RetryContext) -> ControlFlow<(), Duration> {
        ControlFlow::Break(())
    }
}

/// Sleeps through flood waits and backs off on transient failures.
///
/// - `FLOOD_WAIT_X` and the other rate limits (see
///   [`RpcError::flood_wait`](crate::error::RpcError::flood_wait)): when X is
///   at most `threshold`, sleep X plus [`flood_jitter`] (never less than the
///   server asked), up to 8 times per request.
/// - Connection failures and transient server errors (`-503`, 500,
///   `RPC_CALL_FAIL`, `WORKER_BUSY_TOO_LONG_RETRY`): when
///   `io_errors_as_flood_of` is `Some(base)`, retry after
///   [`backoff`]`(base, attempt)`, up to 5 times.
/// - Anything else fails at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoSleep {
    /// Longest flood wait slept through.
    pub threshold: Duration,
    /// Base delay for retrying connection and transient errors; `None`
    /// fails them at once.
    pub io_errors_as_flood_of: Option<Duration>,
}

impl Default for AutoSleep {
    fn default() -> Self {
        Self {
            threshold: Duration::from_secs(60),
            io_errors_as_flood_of: Some(Duration::from_secs(1)),
        }
    }
}

/// Flood waits slept through per request, at most.
const MAX_FLOOD_RETRIES: u32 = 8;
/// Transient failures retried per request, at most.
const MAX_TRANSIENT_RETRIES: u32 = 5;
/// Longest backoff between transient retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl RetryPolicy for AutoSleep {
    fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration> {
        let n = ctx.fail_count.get();
        let rpc = ctx.error.rpc();
        if let Some(wait) = rpc.and_then(|e| e.flood_wait()) {
            if wait <= self.threshold && n <= MAX_FLOOD_RETRIES {
                return ControlFlow::Continue(wait + flood_jitter(wait, ctx.random));
            }
            return ControlFlow::Break(());
        }
        let transient = ctx.error.is_io() || rpc.is_some_and(|e| e.is_transient());
        match self.io_errors_as_flood_of {
            Some(base) if transient && n <= MAX_TRANSIENT_RETRIES => {
                ControlFlow::Continue(backoff(base, n, MAX_BACKOFF, ctx.random))
            }
            _ => ControlFlow::Break(()),
        }
    }
}

/// Jitter added to a flood wait: up to a tenth of the wait (at most 5 s)
/// plus half a second, drawn from `random`. Added only, so the sleep is
/// never shorter than the server asked, and two clients told the same wait
/// do not come back in the same instant.
pub fn flood_jitter(wait: Duration, random: u64) -> Duration {
    let span = (wait / 10).min(Duration::from_secs(5)) + Duration::from_millis(500);
    let span_ms = span.as_millis() as u64; // at most 5500
    Duration::from_millis(random % (span_ms + 1))
}

/// Exponential backoff: `base · 2^(attempt-1)`, capped at `cap`, plus up to
/// a quarter more from `random` (still within `cap`). Saturating at every
/// step, so any attempt count is safe.
pub fn backoff(base: Duration, attempt: u32, cap: Duration, random: u64) -> Duration {
    let shift = attempt.saturating_sub(1).min(31);
    let delay = base.saturating_mul(1u32 << shift).min(cap);
    let quarter_ms = (delay / 4).as_millis().min(u64::MAX as u128) as u64;
    let jitter = Duration::from_millis(quarter_ms.checked_add(1).map_or(random, |m| random % m));
    delay.saturating_add(jitter).min(cap.max(delay))
}

/// The state of one DC's circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Requests flow; failures are counted.
    Closed {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Requests fail fast until `until`.
    Open {
        /// End of the cooldown.
        until: Instant,
    },
    /// One probe request is allowed through; its outcome closes or reopens
    /// the circuit.
    HalfOpen {
        /// Whether the probe is out.
        probing: bool,
    },
}

/// Trips after `threshold` consecutive failures on a DC and then fails
/// requests to it fast, without sending them, for `cooldown`. After the
/// cooldown one probe goes through: success closes the circuit, failure
/// opens it again. Retries of failed requests are left to an inner policy
/// ([`NoRetries`] unless set with [`with_retry`](Self::with_retry)).
///
/// Failures that count: connection and transport errors, transient server
/// errors and flood waits. Other `rpc_error`s are answers from a working
/// server and count as successes.
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    inner: Box<dyn RetryPolicy>,
    circuits: Mutex<HashMap<i32, CircuitState>>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("threshold", &self.threshold)
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// Trips after `threshold` consecutive failures (at least 1), stays
    /// open for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Box::new(NoRetries),
            circuits: Mutex::new(HashMap::new()),
        }
    }

    /// Retries failed requests as `inner` says while the circuit is closed.
    pub fn with_retry(mut self, inner: impl RetryPolicy) -> Self {
        self.inner = Box::new(inner);
        self
    }

    /// The circuit of `dc`.
    pub fn state(&self, dc: i32) -> CircuitState {
        *self
            .lock()
            .get(&dc)
            .unwrap_or(&CircuitState::Closed { failures: 0 })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, CircuitState>> {
        // A panic elsewhere cannot leave the map half-written: each update
        // is a single insert.
        self.circuits.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn counts(error: &InvocationError) -> bool {
        error.is_io()
            || error
                .rpc()
                .is_some_and(|e| e.is_transient() || e.flood_wait().is_some())
    }
}

impl RetryPolicy for CircuitBreaker {
    fn admit(&self, now: Instant, dc: i32) -> Result<(), InvocationError> {
        let mut circuits = self.lock();
        let state = circuits
            .entry(dc)
            .or_insert(CircuitState::Closed { failures: 0 });
        match *state {
            CircuitState::Closed { .. } => Ok(()),
            CircuitState::Open { until } if now < until => Err(InvocationError::CircuitOpen { dc }),
            CircuitState::Open { .. } | CircuitState::HalfOpen { probing: false } => {
                *state = CircuitState::HalfOpen { probing: true };
                Ok(())
            }
            CircuitState::HalfOpen { probing: true } => Err(InvocationError::CircuitOpen { dc }),
        }
    }

    fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration> {
        if !Self::counts(&ctx.error) {
            self.on_success(ctx.now, ctx.dc);
            return ControlFlow::Break(());
        }
        let mut circuits = self.lock();
        let state = circuits
            .entry(ctx.dc)
            .or_insert(CircuitState::Closed { failures: 0 });
        let open = CircuitState::Open {
            until: ctx.now + self.cooldown,
        };
        match *state {
            CircuitState::Closed { failures } => {
                let failures = failures.saturating_add(1);
                if failures >= self.threshold {
                    *state = open;
                    return ControlFlow::Break(());
                }
                *state = CircuitState::Closed { failures };
            }
            CircuitState::HalfOpen { .. } | CircuitState::Open { .. } => {
                *state = open;
                return ControlFlow::Break(());
            }
        }
        drop(circuits);
        self.inner.should_retry(ctx)
    }

    fn on_success(&self, now: Instant, dc: i32) {
        self.lock().insert(dc, CircuitState::Closed { failures: 0 });
        self.inner.on_success(now, dc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::RpcError;

    use crate::test_util::t0;

    fn ctx(n: u32, error: InvocationError, now: Instant, random: u64) -> RetryContext {
        RetryContext::new(
            NonZeroU32::new(n).unwrap(),
            Duration::ZERO,
            error,
            now,
            2,
            random,
        )
    }

    fn rpc(code: i32, m: &str) -> InvocationError {
        InvocationError::Rpc(RpcError {
            code,
            message: m.into(),
        })
    }

    fn io() -> InvocationError {
        InvocationError::Io {
            dc: 2,
            reason: "reset".into(),
        }
    }

    #[test]
    fn auto_sleep_sleeps_the_flood_wait_plus_jitter_never_less() {
        let p = AutoSleep::default();
        let now = t0();
        for random in [0, 1, 499, 1234, u64::MAX] {
            let ControlFlow::Continue(d) =
                p.should_retry(&ctx(1, rpc(420, "FLOOD_WAIT_30"), now, random))
            else {
                panic!()
            };
            assert!(d >= Duration::from_secs(30), "{d:?}");
            assert!(d <= Duration::from_millis(33_500), "{d:?}");
        }
        // Exact: jitter = random mod (3000 + 500 + 1) ms.
        assert_eq!(
            p.should_retry(&ctx(1, rpc(420, "FLOOD_WAIT_30"), now, 1234)),
            ControlFlow::Continue(Duration::from_millis(31_234))
        );
        // Over the threshold: the caller gets the error.
        assert_eq!(
            p.should_retry(&ctx(1, rpc(420, "FLOOD_WAIT_61"), now, 0)),
            ControlFlow::Break(())
        );
        assert_eq!(
            p.should_retry(&ctx(1, rpc(420, "SLOWMODE_WAIT_5"), now, 0)),
            ControlFlow::Continue(Duration::from_secs(5))
        );
        // At most 8 flood waits per request.
        assert!(p
            .should_retry(&ctx(8, rpc(420, "FLOOD_WAIT_1"), now, 0))
            .is_continue());
        assert_eq!(
            p.should_retry(&ctx(9, rpc(420, "FLOOD_WAIT_1"), now, 0)),
            ControlFlow::Break(())
        );
        // Other errors are not retried.
        assert_eq!(
            p.should_retry(&ctx(1, rpc(400, "PEER_ID_INVALID"), now, 0)),
            ControlFlow::Break(())
        );
    }

    #[test]
    fn auto_sleep_backs_off_on_io_and_transient_errors() {
        let p = AutoSleep::default();
        let now = t0();
        let delays: Vec<Duration> = (1..=5)
            .map(|n| match p.should_retry(&ctx(n, io(), now, 0)) {
                ControlFlow::Continue(d) => d,
                ControlFlow::Break(()) => panic!("attempt {n}"),
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16].map(Duration::from_secs));
        assert_eq!(
            p.should_retry(&ctx(6, io(), now, 0)),
            ControlFlow::Break(())
        );
        assert!(p
            .should_retry(&ctx(1, rpc(-503, "Timeout"), now, 0))
            .is_continue());
        assert!(p
            .should_retry(&ctx(1, rpc(500, "INTERNAL"), now, 0))
            .is_continue());
        let off = AutoSleep {
            io_errors_as_flood_of: None,
            ..AutoSleep::default()
        };
        assert_eq!(
            off.should_retry(&ctx(1, io(), now, 0)),
            ControlFlow::Break(())
        );
    }

    #[test]
    fn no_retries() {
        assert_eq!(
            NoRetries.should_retry(&ctx(1, io(), t0(), 0)),
            ControlFlow::Break(())
        );
    }

    #[test]
    fn backoff_never_overflows() {
        for attempt in [0, 1, 2, 31, 32, 1000, u32::MAX] {
            for base in [Duration::ZERO, Duration::from_millis(1), Duration::MAX] {
                let d = backoff(base, attempt, Duration::from_secs(30), u64::MAX);
                assert!(d <= Duration::from_secs(30).max(base.min(Duration::from_secs(30))));
            }
            let _ = backoff(Duration::MAX, attempt, Duration::MAX, u64::MAX);
        }
        assert_eq!(
            backoff(Duration::from_secs(1), 3, Duration::from_secs(30), 0),
            Duration::from_secs(4)
        );
        assert_eq!(
            backoff(Duration::from_secs(1), 10, Duration::from_secs(30), 0),
            Duration::from_secs(30)
        );
        // Jitter adds up to a quarter.
        assert_eq!(
            backoff(Duration::from_secs(4), 1, Duration::from_secs(30), 1000),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn circuit_breaker_closed_open_half_open_closed() {
        let cb = CircuitBreaker::new(3, Duration::from_secs(30));
        let now = t0();
        assert_eq!(cb.state(2), CircuitState::Closed { failures: 0 });
        for n in 1..=2 {
            cb.admit(now, 2).unwrap();
            assert_eq!(
                cb.should_retry(&ctx(n, io(), now, 0)),
                ControlFlow::Break(())
            );
            assert_eq!(cb.state(2), CircuitState::Closed { failures: n });
        }
        cb.admit(now, 2).unwrap();
        assert!(cb
            .should_retry(&ctx(1, rpc(-503, "Timeout"), now, 0))
            .is_break());
        assert_eq!(
            cb.state(2),
            CircuitState::Open {
                until: now + Duration::from_secs(30)
            }
        );
        // Open: fail fast, other DCs unaffected.
        assert_eq!(
            cb.admit(now + Duration::from_secs(29), 2),
            Err(InvocationError::CircuitOpen { dc: 2 })
        );
        assert_eq!(cb.admit(now, 4), Ok(()));
        // Cooldown over: one probe.
        let later = now + Duration::from_secs(30);
        assert_eq!(cb.admit(later, 2), Ok(()));
        assert_eq!(cb.state(2), CircuitState::HalfOpen { probing: true });
        assert_eq!(
            cb.admit(later, 2),
            Err(InvocationError::CircuitOpen { dc: 2 })
        );
        // The probe fails: open again.
        assert!(cb.should_retry(&ctx(1, io(), later, 0)).is_break());
        assert_eq!(
            cb.state(2),
            CircuitState::Open {
                until: later + Duration::from_secs(30)
            }
        );
        // Next probe succeeds: closed.
        let later = later + Duration::from_secs(30);
        cb.admit(later, 2).unwrap();
        cb.on_success(later, 2);
        assert_eq!(cb.state(2), CircuitState::Closed { failures: 0 });
        // A plain error answer counts as the server working.
        assert!(cb.should_retry(&ctx(1, io(), later, 0)).is_break());
        assert!(cb
            .should_retry(&ctx(1, rpc(400, "PEER_ID_INVALID"), later, 0))
            .is_break());
        assert_eq!(cb.state(2), CircuitState::Closed { failures: 0 });
    }

    #[test]
    fn circuit_breaker_with_inner_retry() {
        let cb = CircuitBreaker::new(2, Duration::from_secs(5)).with_retry(AutoSleep::default());
        let now = t0();
        assert_eq!(
            cb.should_retry(&ctx(1, io(), now, 0)),
            ControlFlow::Continue(Duration::from_secs(1))
        );
        assert_eq!(
            cb.should_retry(&ctx(2, io(), now, 0)),
            ControlFlow::Break(())
        );
    }
}
