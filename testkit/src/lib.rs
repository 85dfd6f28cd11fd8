//! # mtsender-testkit
//!
//! Telegram's stand-in for tests: a sans-IO MTProto *server* (`FakeDc`)
//! that answers the handshake, keeps sessions across connection drops,
//! executes `test.echo` and counts every execution, and injects scripted
//! faults.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
