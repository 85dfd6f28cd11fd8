//! Benchmarks of `mtsender` against its peers (`grammers-mtproto`,
//! `ferogram-mtproto`) and against the hardware floor (AES-256 chained
//! block encryption plus SHA-256 over the same bytes).
//!
//! Every scenario is a value with a `run` method that does its own
//! untimed setup and returns the time of the measured part only, so the
//! runner (`src/main.rs`) and the criterion benches (`benches/`) share the
//! exact same work.
// Benchmarks read the wall clock; the core's ban on `Instant::now` is about
// the core, which takes time as an input.
#![allow(clippy::disallowed_methods)]

pub mod alloc;
pub mod common;
pub mod ferogram;
pub mod floor;
pub mod grammers;
pub mod measure;
pub mod ours;
pub mod sim;
