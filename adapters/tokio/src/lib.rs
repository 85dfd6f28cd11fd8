//! # mtsender-tokio
//!
//! [`mtsender`]'s sans-IO sender on tokio: one driver task owns the
//! [`Sender`](mtsender::Sender), the TCP sockets and one timer; a
//! [`Client`] is a cheap cloneable handle that sends requests to it over a
//! channel and awaits the answer.
//!
//! ```
//! use mtsender_tokio::{Client, FixedInterval};
//! use mtsender::tl::{functions::TestEcho, Serialize};
//! use std::{net::TcpListener, sync::Arc, time::Duration};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A fake DC on loopback stands in for Telegram.
//! let dc = mtsender_testkit::net::serve(
//!     TcpListener::bind("127.0.0.1:0")?,
//!     mtsender_testkit::FakeDcConfig::new(2),
//! )?;
//! let (client, shutdown) = Client::builder()
//!     .dc(2, dc.addr())
//!     .rsa_key(mtsender_testkit::test_rsa_key().public_key().clone())
//!     .restart_policy(Arc::new(FixedInterval { interval: Duration::from_secs(1) }))
//!     .connect()
//!     .await?;
//! let request = TestEcho { payload: b"hi".to_vec() }.to_bytes();
//! assert_eq!(client.invoke(request.clone()).await?, request);
//! client.shutdown();
//! shutdown.await;
//! # Ok(()) }
//! ```
//!
//! The same API runs on async-std and smol as `mtsender-async-std`. Every
//! policy and error type is re-exported here, so code written for the seed
//! documents compiles with `use mtsender_tokio::…`. With the `tracing`
//! feature the driver logs connections, drops and shutdown, in a span per
//! DC connection.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
#[path = "../../shared/log.rs"]
mod log;
#[path = "../../shared/client.rs"]
mod client;
#[path = "../../shared/driver.rs"]
mod driver;
mod rt;

pub use client::{Builder, Client, ConnectError, Event, Shutdown, Updates, DEFAULT_LAYER};
pub use mtsender;
pub use mtsender::crypto::RsaPublicKey;
pub use mtsender::policy::CircuitState;
pub use mtsender::sender::persist::PersistError;
pub use mtsender::sender::Stats;
pub use mtsender::transport::TransportKind;
pub use mtsender::{
    AutoSleep, CatchUpReason, CircuitBreaker, ConnectionRestartPolicy, Dc, DcTable,
    ExponentialBackoff, FixedInterval, InvocationError, NeverRestart, NoRetries, Request,
    ResponseMeta, RetryContext, RetryPolicy, RpcError, SenderConfig, ShutdownReason,
};

/// The README's examples, compiled (and, where they need no network, run)
/// by `cargo test`.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
