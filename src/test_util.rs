//! Helpers for the unit tests.

use std::time::Instant;

/// An anchor instant for tests. The code under test only ever receives
/// instants as inputs; tests need one to start from, and this is the one
/// place in the crate that reads the clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn t0() -> Instant {
    Instant::now()
}
