//! Scripted faults: what the fake DC does wrong, and when.
//!
//! A [`Faults`] list holds [`Fault`] rules, each an [`action`](FaultAction),
//! a [`when`](FaultWhen) and a number of `times` it may fire. Rules are
//! consulted in order and compose: a request may be delayed by one rule and
//! answered with an error by another. [`HandshakeFaults`] break the server's
//! side of auth key creation instead, one check of the client at a time.
//!
//! # What a "request" is
//!
//! Request rules are matched against **API-level queries**: every incoming
//! content message that is not an MTProto service message (ping,
//! ping_delay_disconnect, msgs_ack, msgs_state_req, msg_resend_req,
//! msg_resend_ans_req, get_future_salts, rpc_drop_answer, destroy_session,
//! destroy_auth_key, http_wait), after unwrapping `invokeWithLayer`,
//! `initConnection`, `invokeWithoutUpdates` and `invokeAfterMsg(s)`. Such a
//! query is numbered (1-based, across the whole DC) the first time its
//! msg_id arrives; a resend under the same msg_id is answered from the cache
//! and is not a new request. `test.echo`, `auth.bindTempAuthKey` and unknown
//! methods all count.
//!
//! # Spec strings
//!
//! [`Faults::parse`] reads a comma-separated list of rules:
//!
//! ```text
//! rule   = action [ "=" arg ] [ "@" when ] [ "*" times ]
//! when   = N             the N-th request (1-based)
//!        | "echo:" HEX   test.echo requests whose payload starts with these bytes
//!        | "all"         every request (the default)
//! times  = N             fire at most N times (default: no limit)
//! ```
//!
//! | action | effect |
//! |---|---|
//! | `flood_wait=S` | rpc_error 420 `FLOOD_WAIT_S` |
//! | `flood_premium_wait=S` | rpc_error 420 `FLOOD_PREMIUM_WAIT_S` |
//! | `slowmode_wait=S` | rpc_error 420 `SLOWMODE_WAIT_S` |
//! | `migrate=KIND:DC` | rpc_error 303 `KIND_MIGRATE_DC`, KIND one of `phone`, `network`, `user`, `file`, `stats` |
//! | `internal` | rpc_error 500 `INTERNAL` |
//! | `timeout` | rpc_error -503 `Timeout` |
//! | `bad_salt` | `bad_server_salt` for the message carrying the request (its salt was right), and the salt rotates |
//! | `skew=S` | the server clock runs S seconds (may be negative) off the given time, from the start or from the matching request on |
//! | `forget` | every session is forgotten: the request starts a new session (`new_session_created`), cached answers are lost |
//! | `close_after=K` | each connection is closed after K client packets (the K-th is processed, its answers are kept for the next connection); `times` limits how many connections |
//! | `delay_ms=MS` | the answer is held back MS milliseconds |
//! | `split=N` | every outgoing write is cut into pieces of at most N bytes |
//!
//! Example: `flood_wait=5@2,migrate=phone:4@1,close_after=10,delay_ms=50,split=7,skew=120,forget@20,bad_salt@3,internal@4,timeout@5`.
//! An empty string is no faults.

use std::str::FromStr;
use std::time::Duration;

/// Which kind of `*_MIGRATE_X` error a [`FaultAction::Migrate`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MigrateKind {
    /// `PHONE_MIGRATE_X`.
    Phone,
    /// `NETWORK_MIGRATE_X`.
    Network,
    /// `USER_MIGRATE_X`.
    User,
    /// `FILE_MIGRATE_X`.
    File,
    /// `STATS_MIGRATE_X`.
    Stats,
}

impl MigrateKind {
    /// The error name's prefix (`PHONE`, `NETWORK`, ...).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Phone => "PHONE",
            Self::Network => "NETWORK",
            Self::User => "USER",
            Self::File => "FILE",
            Self::Stats => "STATS",
        }
    }
}

/// What a fault does when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// rpc_error 420 `FLOOD_WAIT_N`.
    FloodWait(u32),
    /// rpc_error 420 `FLOOD_PREMIUM_WAIT_N`.
    FloodPremiumWait(u32),
    /// rpc_error 420 `SLOWMODE_WAIT_N`.
    SlowmodeWait(u32),
    /// rpc_error 303 `<KIND>_MIGRATE_<dc>`.
    Migrate {
        /// Which error.
        kind: MigrateKind,
        /// The DC named in it.
        dc: i32,
    },
    /// rpc_error 500 `INTERNAL`.
    InternalError,
    /// rpc_error -503 `Timeout`.
    Timeout,
    /// `bad_server_salt` although the salt was right; the salt rotates.
    BadServerSalt,
    /// The server clock is this many seconds off the given time (server
    /// msg_ids, the msg_id window checks, `server_DH_inner_data`, salts).
    ClockSkew(i64),
    /// Every session is forgotten (next message: `new_session_created`).
    ForgetSessions,
    /// A connection is closed after this many client packets.
    CloseAfter(u32),
    /// The answer is held back this long.
    Delay(Duration),
    /// Outgoing bytes are emitted in pieces of at most this many bytes.
    SplitFrames(usize),
}

impl FaultAction {
    /// The `rpc_error` (code, message) this action answers with, if it is
    /// one of the error actions.
    pub fn rpc_error(&self) -> Option<(i32, String)> {
        Some(match self {
            Self::FloodWait(s) => (420, format!("FLOOD_WAIT_{s}")),
            Self::FloodPremiumWait(s) => (420, format!("FLOOD_PREMIUM_WAIT_{s}")),
            Self::SlowmodeWait(s) => (420, format!("SLOWMODE_WAIT_{s}")),
            Self::Migrate { kind, dc } => (303, format!("{}_MIGRATE_{dc}", kind.prefix())),
            Self::InternalError => (500, "INTERNAL".to_string()),
            Self::Timeout => (-503, "Timeout".to_string()),
            _ => return None,
        })
    }

    /// Whether the action is about a connection or the output stream
    /// rather than a request.
    pub(crate) fn is_connection_level(&self) -> bool {
        matches!(self, Self::CloseAfter(_) | Self::SplitFrames(_))
    }
}

/// Which requests a [`Fault`] applies to (see the [module docs](self) for
/// what counts as a request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultWhen {
    /// Every request.
    #[default]
    Always,
    /// The n-th request (1-based).
    Nth(u64),
    /// `test.echo` requests whose payload starts with these bytes.
    EchoPrefix(Vec<u8>),
}

impl FaultWhen {
    pub(crate) fn matches(&self, request_no: u64, echo_payload: Option<&[u8]>) -> bool {
        match self {
            Self::Always => true,
            Self::Nth(n) => *n == request_no,
            Self::EchoPrefix(prefix) => echo_payload.is_some_and(|p| p.starts_with(prefix)),
        }
    }
}

/// One rule: an action, when it applies, and how many times it may fire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What happens.
    pub action: FaultAction,
    /// To which requests.
    pub when: FaultWhen,
    /// How many times it fires (`None`: every time it matches).
    pub times: Option<u32>,
}

impl Fault {
    /// A rule that applies to every request, any number of times.
    pub fn new(action: FaultAction) -> Self {
        Self {
            action,
            when: FaultWhen::Always,
            times: None,
        }
    }

    /// Applies the rule to the n-th request only (1-based).
    pub fn on_request(mut self, n: u64) -> Self {
        self.when = FaultWhen::Nth(n);
        self
    }

    /// Applies the rule to `test.echo` requests whose payload starts with
    /// `prefix`.
    pub fn on_echo_prefix(mut self, prefix: &[u8]) -> Self {
        self.when = FaultWhen::EchoPrefix(prefix.to_vec());
        self
    }

    /// Lets the rule fire at most `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// An ordered list of [`Fault`] rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The rules, consulted in order.
    pub rules: Vec<Fault>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds a rule.
    pub fn with(mut self, fault: Fault) -> Self {
        self.rules.push(fault);
        self
    }

    /// Adds a rule.
    pub fn push(&mut self, fault: Fault) {
        self.rules.push(fault);
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Reads a spec string (grammar in the [module docs](self)).
    pub fn parse(spec: &str) -> Result<Self, FaultSpecError> {
        let mut faults = Self::none();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            faults.push(parse_rule(item)?);
        }
        Ok(faults)
    }
}

impl FromStr for Faults {
    type Err = FaultSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A spec string that [`Faults::parse`] cannot read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultSpecError {
    /// An action name that does not exist.
    #[error("unknown fault {name:?} in {rule:?}")]
    UnknownAction {
        /// The name.
        name: String,
        /// The whole rule.
        rule: String,
    },
    /// An action that needs `=value` came without one, or one that takes
    /// none came with one.
    #[error("fault {rule:?}: {reason}")]
    BadArgument {
        /// The whole rule.
        rule: String,
        /// What is wrong.
        reason: String,
    },
    /// The `@when` part is malformed.
    #[error("fault {rule:?}: bad `@` part: {reason}")]
    BadWhen {
        /// The whole rule.
        rule: String,
        /// What is wrong.
        reason: String,
    },
    /// The `*times` part is malformed.
    #[error("fault {rule:?}: bad `*` part (expected a count >= 1)")]
    BadTimes {
        /// The whole rule.
        rule: String,
    },
}

fn parse_rule(rule: &str) -> Result<Fault, FaultSpecError> {
    let (rest, times) = match rule.rsplit_once('*') {
        Some((rest, t)) => {
            let n = t
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| FaultSpecError::BadTimes {
                    rule: rule.to_string(),
                })?;
            (rest, Some(n))
        }
        None => (rule, None),
    };
    let (rest, when) = match rest.rsplit_once('@') {
        Some((rest, w)) => (rest, parse_when(rule, w.trim())?),
        None => (rest, FaultWhen::Always),
    };
    let (name, arg) = match rest.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (rest.trim(), None),
    };
    let bad = |reason: &str| FaultSpecError::BadArgument {
        rule: rule.to_string(),
        reason: reason.to_string(),
    };
    let need = |what: &str| arg.ok_or_else(|| bad(&format!("needs `={what}`")));
    let none = |action: FaultAction| match arg {
        Some(_) => Err(bad("takes no `=` value")),
        None => Ok(action),
    };
    let number = |what: &str| -> Result<u64, FaultSpecError> {
        need(what)?
            .parse::<u64>()
            .map_err(|_| bad(&format!("`{what}` must be a non-negative integer")))
    };
    let secs = |what: &str| -> Result<u32, FaultSpecError> {
        u32::try_from(number(what)?).map_err(|_| bad("value too large"))
    };
    let action = match name {
        "flood_wait" => FaultAction::FloodWait(secs("SECONDS")?),
        "flood_premium_wait" => FaultAction::FloodPremiumWait(secs("SECONDS")?),
        "slowmode_wait" => FaultAction::SlowmodeWait(secs("SECONDS")?),
        "migrate" => {
            let arg = need("KIND:DC")?;
            let (kind, dc) = arg
                .split_once(':')
                .ok_or_else(|| bad("expected `migrate=KIND:DC`"))?;
            let kind = match kind.trim() {
                "phone" => MigrateKind::Phone,
                "network" => MigrateKind::Network,
                "user" => MigrateKind::User,
                "file" => MigrateKind::File,
                "stats" => MigrateKind::Stats,
                _ => return Err(bad("KIND is one of phone, network, user, file, stats")),
            };
            let dc = dc
                .trim()
                .parse::<i32>()
                .map_err(|_| bad("DC must be an integer"))?;
            FaultAction::Migrate { kind, dc }
        }
        "internal" => none(FaultAction::InternalError)?,
        "timeout" => none(FaultAction::Timeout)?,
        "bad_salt" => none(FaultAction::BadServerSalt)?,
        "forget" => none(FaultAction::ForgetSessions)?,
        "skew" => FaultAction::ClockSkew(
            need("SECONDS")?
                .parse::<i64>()
                .ok()
                .filter(|s| s.unsigned_abs() < 1 << 31)
                .ok_or_else(|| bad("`SECONDS` must be an integer below 2^31 in size"))?,
        ),
        "close_after" => {
            let k = secs("K")?;
            if k == 0 {
                return Err(bad("K must be at least 1"));
            }
            FaultAction::CloseAfter(k)
        }
        "delay_ms" => FaultAction::Delay(Duration::from_millis(number("MS")?)),
        "split" => {
            let n = usize::try_from(number("BYTES")?).map_err(|_| bad("value too large"))?;
            if n == 0 {
                return Err(bad("BYTES must be at least 1"));
            }
            FaultAction::SplitFrames(n)
        }
        _ => {
            return Err(FaultSpecError::UnknownAction {
                name: name.to_string(),
                rule: rule.to_string(),
            })
        }
    };
    Ok(Fault {
        action,
        when,
        times,
    })
}

fn parse_when(rule: &str, when: &str) -> Result<FaultWhen, FaultSpecError> {
    let bad = |reason: &str| FaultSpecError::BadWhen {
        rule: rule.to_string(),
        reason: reason.to_string(),
    };
    if when == "all" {
        return Ok(FaultWhen::Always);
    }
    if let Some(hex) = when.strip_prefix("echo:") {
        return decode_hex(hex)
            .map(FaultWhen::EchoPrefix)
            .ok_or_else(|| bad("`echo:` takes an even number of hex digits"));
    }
    match when.parse::<u64>() {
        Ok(0) => Err(bad("requests are numbered from 1")),
        Ok(n) => Ok(FaultWhen::Nth(n)),
        Err(_) => Err(bad("expected N, `echo:HEX` or `all`")),
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// How [`HandshakeFaults::g_a_out_of_range`] breaks `g_a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadGa {
    /// `g_a = 1`.
    One,
    /// `g_a = 2^1983`, just under the 2^1984 safety margin.
    BelowMargin,
}

/// Breaks the server's side of auth key creation, one client check at a
/// time. Every field defaults to "behave".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandshakeFaults {
    /// resPQ echoes a different nonce.
    pub wrong_nonce: bool,
    /// server_DH_params_ok carries a different server_nonce.
    pub wrong_server_nonce: bool,
    /// resPQ offers only a fingerprint no client knows.
    pub no_matching_fingerprint: bool,
    /// req_DH_params is answered with `server_DH_params_fail`.
    pub dh_params_fail: bool,
    /// The SHA1 in front of the encrypted `server_DH_inner_data` is wrong.
    pub corrupt_answer_hash: bool,
    /// dh_prime is Telegram's prime plus 6: same size and residue for
    /// g = 3, but not a safe prime.
    pub composite_dh_prime: bool,
    /// g = 2 with Telegram's prime, which fails the residue condition for 2.
    pub bad_g_residue: bool,
    /// g_a outside the allowed range.
    pub g_a_out_of_range: Option<BadGa>,
    /// dh_gen_ok carries a wrong new_nonce_hash1.
    pub wrong_new_nonce_hash1: bool,
    /// Answer `dh_gen_retry` this many times before `dh_gen_ok`.
    pub dh_gen_retries: u32,
    /// Answer `dh_gen_fail`.
    pub dh_gen_fail: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let f = Faults::parse(
            "flood_wait=5@2,migrate=phone:4@1,close_after=10,delay_ms=50,split=7,skew=120,forget@20,bad_salt@3,internal@4,timeout@5",
        )
        .unwrap();
        let actions: Vec<_> = f.rules.iter().map(|r| r.action.clone()).collect();
        assert_eq!(
            actions,
            vec![
                FaultAction::FloodWait(5),
                FaultAction::Migrate {
                    kind: MigrateKind::Phone,
                    dc: 4
                },
                FaultAction::CloseAfter(10),
                FaultAction::Delay(Duration::from_millis(50)),
                FaultAction::SplitFrames(7),
                FaultAction::ClockSkew(120),
                FaultAction::ForgetSessions,
                FaultAction::BadServerSalt,
                FaultAction::InternalError,
                FaultAction::Timeout,
            ]
        );
        let whens: Vec<_> = f.rules.iter().map(|r| r.when.clone()).collect();
        assert_eq!(whens[0], FaultWhen::Nth(2));
        assert_eq!(whens[1], FaultWhen::Nth(1));
        assert_eq!(whens[2], FaultWhen::Always);
        assert_eq!(whens[6], FaultWhen::Nth(20));
        assert!(f.rules.iter().all(|r| r.times.is_none()));
    }

    #[test]
    fn when_and_times() {
        let f =
            Faults::parse(" slowmode_wait=3@echo:6869*2 , flood_premium_wait=1@all*1,skew=-30 ")
                .unwrap();
        assert_eq!(
            f.rules[0],
            Fault::new(FaultAction::SlowmodeWait(3))
                .on_echo_prefix(b"hi")
                .times(2)
        );
        assert_eq!(
            f.rules[1],
            Fault::new(FaultAction::FloodPremiumWait(1)).times(1)
        );
        assert_eq!(f.rules[2].action, FaultAction::ClockSkew(-30));
        assert!(Faults::parse("").unwrap().is_empty());
        assert!(Faults::parse(" , ").unwrap().is_empty());
        for kind in ["phone", "network", "user", "file", "stats"] {
            let f = Faults::parse(&format!("migrate={kind}:-2")).unwrap();
            let (code, msg) = f.rules[0].action.rpc_error().unwrap();
            assert_eq!(code, 303);
            assert_eq!(msg, format!("{}_MIGRATE_-2", kind.to_uppercase()));
        }
    }

    #[test]
    fn rpc_errors() {
        assert_eq!(
            FaultAction::FloodWait(5).rpc_error(),
            Some((420, "FLOOD_WAIT_5".into()))
        );
        assert_eq!(
            FaultAction::Timeout.rpc_error(),
            Some((-503, "Timeout".into()))
        );
        assert_eq!(
            FaultAction::InternalError.rpc_error(),
            Some((500, "INTERNAL".into()))
        );
        assert_eq!(FaultAction::BadServerSalt.rpc_error(), None);
    }

    #[test]
    fn bad_specs_are_errors() {
        type Check = fn(&FaultSpecError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("nope", |e| {
                matches!(e, FaultSpecError::UnknownAction { .. })
            }),
            ("flood_wait", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("flood_wait=x", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("flood_wait=-1", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("internal=3", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("migrate=phone", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("migrate=moon:2", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("split=0", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("close_after=0", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
            ("internal@0", |e| {
                matches!(e, FaultSpecError::BadWhen { .. })
            }),
            ("internal@x", |e| {
                matches!(e, FaultSpecError::BadWhen { .. })
            }),
            ("internal@echo:abc", |e| {
                matches!(e, FaultSpecError::BadWhen { .. })
            }),
            ("internal*0", |e| {
                matches!(e, FaultSpecError::BadTimes { .. })
            }),
            ("internal*", |e| {
                matches!(e, FaultSpecError::BadTimes { .. })
            }),
            ("skew=99999999999", |e| {
                matches!(e, FaultSpecError::BadArgument { .. })
            }),
        ];
        for (spec, check) in cases {
            let e = Faults::parse(spec).unwrap_err();
            assert!(check(&e), "{spec}: {e:?}");
            assert!(e
                .to_string()
                .contains(spec.split(['=', '@', '*']).next().unwrap()));
        }
    }

    #[test]
    fn matching() {
        assert!(FaultWhen::Always.matches(7, None));
        assert!(FaultWhen::Nth(3).matches(3, None));
        assert!(!FaultWhen::Nth(3).matches(4, Some(b"x")));
        let w = FaultWhen::EchoPrefix(b"ab".to_vec());
        assert!(w.matches(1, Some(b"abc")));
        assert!(!w.matches(1, Some(b"ba")));
        assert!(!w.matches(1, None));
    }
}
