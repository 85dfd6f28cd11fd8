//! Retry and restart policies, and the parsing of rate-limit errors.
//!
//! - [`RetryPolicy`] decides, after a request failed, whether to send it
//!   again and after how long: [`AutoSleep`] (sleep through flood waits,
//!   back off on transient failures), [`NoRetries`], [`CircuitBreaker`], or
//!   your own.
//! - [`ConnectionRestartPolicy`] decides, after a connection dropped,
//!   whether and when to reconnect: [`NeverRestart`] (the default),
//!   [`FixedInterval`], [`ExponentialBackoff`], or your own.
//!
//! Policies never read the clock: the context carries `now`, and any
//! randomness (jitter) comes from the sender's seeded generator, so a run
//! replays exactly.

pub mod flood;
mod restart;
mod retry;

pub use restart::{ConnectionRestartPolicy, ExponentialBackoff, FixedInterval, NeverRestart};
pub use retry::{
    backoff, flood_jitter, AutoSleep, CircuitBreaker, CircuitState, NoRetries, RetryContext,
    RetryPolicy,
};
