//! Recognising rate limits and transient server errors in `rpc_error`s.

use std::time::Duration;

use crate::error::RpcError;

/// Error names whose suffix `_X` is a number of seconds to wait.
const WAIT_PREFIXES: &[&str] = &[
    "FLOOD_WAIT_",
    "FLOOD_PREMIUM_WAIT_",
    "SLOWMODE_WAIT_",
    "FLOOD_TEST_PHONE_WAIT_",
    "TAKEOUT_INIT_DELAY_",
];

/// The wait a rate-limit error asks for, if it is one.
///
/// Only code 420 counts, except `SLOWMODE_WAIT_X` and
/// `TAKEOUT_INIT_DELAY_X`, which Telegram sends as 420 or 400 depending on
/// the method.
pub fn flood_wait(e: &RpcError) -> Option<Duration> {
    WAIT_PREFIXES.iter().find_map(|prefix| {
        let rest = e.message.strip_prefix(prefix)?;
        let secs: u64 = rest.parse().ok()?;
        let by_code = e.code == 420
            || (e.code == 400 && (prefix.starts_with("SLOWMODE") || prefix.starts_with("TAKEOUT")));
        by_code.then(|| Duration::from_secs(secs))
    })
}

/// Whether the error is the server's transient failure, worth a retry after
/// a backoff.
pub fn is_transient(e: &RpcError) -> bool {
    e.code == -503
        || e.code == 500
        || e.message == "RPC_CALL_FAIL"
        || e.message == "WORKER_BUSY_TOO_LONG_RETRY"
        || e.message == "Timeout"
}

/// The kind of a 303 migration, and its target DC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migration {
    /// `PHONE_MIGRATE_X`, `NETWORK_MIGRATE_X`, `USER_MIGRATE_X`: the home DC
    /// moves to X.
    Home(i32),
    /// `FILE_MIGRATE_X`, `STATS_MIGRATE_X`: this request goes to X; the
    /// home DC stays.
    Request(i32),
}

/// The migration a 303 error asks for, if it is one.
pub fn migration(e: &RpcError) -> Option<Migration> {
    if e.code != 303 {
        return None;
    }
    let (kind, dc) = e.message.rsplit_once("_MIGRATE_")?;
    let dc: i32 = dc.parse().ok()?;
    match kind {
        "PHONE" | "NETWORK" | "USER" => Some(Migration::Home(dc)),
        "FILE" | "STATS" => Some(Migration::Request(dc)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(code: i32, m: &str) -> RpcError {
        RpcError {
            code,
            message: m.into(),
        }
    }

    #[test]
    fn waits() {
        assert_eq!(
            flood_wait(&e(420, "FLOOD_WAIT_30")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            flood_wait(&e(420, "FLOOD_PREMIUM_WAIT_5")),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            flood_wait(&e(420, "SLOWMODE_WAIT_60")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            flood_wait(&e(400, "SLOWMODE_WAIT_60")),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            flood_wait(&e(420, "FLOOD_TEST_PHONE_WAIT_7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            flood_wait(&e(400, "TAKEOUT_INIT_DELAY_3600")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(flood_wait(&e(420, "FLOOD_WAIT_0")), Some(Duration::ZERO));
        assert_eq!(flood_wait(&e(400, "FLOOD_WAIT_30")), None);
        assert_eq!(flood_wait(&e(420, "FLOOD_WAIT_")), None);
        assert_eq!(flood_wait(&e(420, "FLOOD_WAIT_-1")), None);
        assert_eq!(
            flood_wait(&e(420, "FLOOD_WAIT_99999999999999999999999")),
            None
        );
        assert_eq!(flood_wait(&e(420, "FLOOD_WAIT_3X")), None);
        assert_eq!(flood_wait(&e(420, "PEER_FLOOD")), None);
    }

    #[test]
    fn transient() {
        assert!(is_transient(&e(-503, "Timeout")));
        assert!(is_transient(&e(500, "INTERNAL")));
        assert!(is_transient(&e(400, "RPC_CALL_FAIL")));
        assert!(is_transient(&e(500, "WORKER_BUSY_TOO_LONG_RETRY")));
        assert!(!is_transient(&e(400, "PEER_ID_INVALID")));
    }

    #[test]
    fn migrations() {
        assert_eq!(
            migration(&e(303, "PHONE_MIGRATE_4")),
            Some(Migration::Home(4))
        );
        assert_eq!(
            migration(&e(303, "NETWORK_MIGRATE_2")),
            Some(Migration::Home(2))
        );
        assert_eq!(
            migration(&e(303, "USER_MIGRATE_5")),
            Some(Migration::Home(5))
        );
        assert_eq!(
            migration(&e(303, "FILE_MIGRATE_3")),
            Some(Migration::Request(3))
        );
        assert_eq!(
            migration(&e(303, "STATS_MIGRATE_1")),
            Some(Migration::Request(1))
        );
        assert_eq!(migration(&e(303, "OTHER_MIGRATE_1")), None);
        assert_eq!(migration(&e(400, "PHONE_MIGRATE_4")), None);
        assert_eq!(migration(&e(303, "PHONE_MIGRATE_x")), None);
    }
}
