//! The error a request can end with.

use std::time::Duration;

/// An `rpc_error` from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// HTTP-like code (303, 400, 420, 500, -503…).
    pub code: i32,
    /// The error name, e.g. `FLOOD_WAIT_30`.
    pub message: String,
}

impl RpcError {
    /// The wait a rate-limit error asks for (`FLOOD_WAIT_X`,
    /// `FLOOD_PREMIUM_WAIT_X`, `SLOWMODE_WAIT_X`, `FLOOD_TEST_PHONE_WAIT_X`,
    /// `TAKEOUT_INIT_DELAY_X`), if this is one.
    pub fn flood_wait(&self) -> Option<Duration> {
        crate::policy::flood::flood_wait(self)
    }

    /// Whether the server failed for a reason that a later retry may not
    /// hit: `-503 Timeout`, code 500, `RPC_CALL_FAIL`,
    /// `WORKER_BUSY_TOO_LONG_RETRY`.
    pub fn is_transient(&self) -> bool {
        crate::policy::flood::is_transient(self)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rpc error {}: {}", self.code, self.message)
    }
}

/// How a request failed. Every request ends in exactly one result: its
/// answer or one of these, and each says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvocationError {
    /// The server answered with an error (after the retry policy gave up).
    #[error("{0}")]
    Rpc(RpcError),
    /// The connection failed and the sender could not deliver the request
    /// (the restart policy said no more, or connecting kept failing).
    #[error("connection to DC {dc} lost: {reason}")]
    Io {
        /// The DC.
        dc: i32,
        /// What happened.
        reason: String,
    },
    /// The server sent a transport error (-404: unknown auth key, -429: too
    /// many connections, -444: invalid DC).
    #[error("transport error {code} from DC {dc}")]
    Transport {
        /// The DC.
        dc: i32,
        /// The negative code.
        code: i32,
    },
    /// Auth key creation failed.
    #[error("handshake with DC {dc} failed: {reason}")]
    Handshake {
        /// The DC.
        dc: i32,
        /// The failed check.
        reason: String,
    },
    /// The request's own deadline passed.
    #[error("request timed out")]
    Timeout,
    /// The sender shut down before the request was answered.
    #[error("the sender shut down")]
    Shutdown,
    /// The circuit breaker for the DC is open: the request was not sent.
    #[error("circuit open for DC {dc}: failing fast")]
    CircuitOpen {
        /// The DC.
        dc: i32,
    },
    /// The request was migrated more times than allowed (a migration loop).
    #[error("too many migrations (last to DC {dc})")]
    MigrationLoop {
        /// The last DC asked for.
        dc: i32,
    },
    /// The server refused the message with a `bad_msg_notification` code
    /// that has no safe reaction.
    #[error("bad_msg_notification {code}")]
    BadMessage {
        /// The code.
        code: i32,
    },
    /// The request names a DC the sender has no address for.
    #[error("unknown DC {dc}")]
    UnknownDc {
        /// The DC.
        dc: i32,
    },
}

impl InvocationError {
    /// The server's error, if this is one.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            Self::Rpc(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is a failure of the connection rather than an answer
    /// (`Io`, `Transport`), which a retry policy may treat like a short
    /// flood wait.
    pub fn is_io(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Transport { .. })
    }
}
