//! The sender's settings and the table of DC addresses.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use crate::crypto::RsaPublicKey;
use crate::policy::{AutoSleep, ConnectionRestartPolicy, NeverRestart, RetryPolicy};
use crate::session::SessionConfig;
use crate::transport::TransportKind;

/// Telegram's production DCs (IPv4, port 443).
pub const PRODUCTION_DCS: [(i32, [u8; 4]); 5] = [
    (1, [149, 154, 175, 53]),
    (2, [149, 154, 167, 51]),
    (3, [149, 154, 175, 100]),
    (4, [149, 154, 167, 91]),
    (5, [91, 108, 56, 130]),
];

/// Telegram's test DCs (IPv4, port 443).
pub const TEST_DCS: [(i32, [u8; 4]); 3] = [
    (1, [149, 154, 175, 10]),
    (2, [149, 154, 167, 40]),
    (3, [149, 154, 175, 117]),
];

/// Addresses of the DCs, by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DcTable {
    addrs: BTreeMap<i32, SocketAddr>,
    test: bool,
}

impl DcTable {
    /// Telegram's production DCs.
    pub fn production() -> Self {
        Self::from_list(&PRODUCTION_DCS, false)
    }

    /// Telegram's test DCs (ids in the inner data get +10000).
    pub fn test() -> Self {
        Self::from_list(&TEST_DCS, true)
    }

    /// An empty table, to fill with [`set`](Self::set) (a fake DC, say).
    pub fn empty() -> Self {
        Self {
            addrs: BTreeMap::new(),
            test: false,
        }
    }

    fn from_list(list: &[(i32, [u8; 4])], test: bool) -> Self {
        let addrs = list
            .iter()
            .map(|&(id, ip)| {
                (
                    id,
                    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), 443)),
                )
            })
            .collect();
        Self { addrs, test }
    }

    /// Sets (or overrides) the address of DC `id`.
    pub fn set(mut self, id: i32, addr: SocketAddr) -> Self {
        self.addrs.insert(id, addr);
        self
    }

    /// The address of DC `id`.
    pub fn get(&self, id: i32) -> Option<SocketAddr> {
        self.addrs.get(&id).copied()
    }

    /// Whether these are test DCs.
    pub fn is_test(&self) -> bool {
        self.test
    }

    /// The DC id written in the handshake's inner data: +10000 on test
    /// servers.
    pub fn handshake_dc_id(&self, id: i32) -> i32 {
        if self.test {
            id + 10000
        } else {
            id
        }
    }
}

/// What `initConnection` says about the client, wrapped with
/// `invokeWithLayer` around the first request of every connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitParams {
    /// API id from my.telegram.org.
    pub api_id: i32,
    /// API layer of the requests' schema.
    pub layer: i32,
    /// Device model.
    pub device_model: String,
    /// OS version.
    pub system_version: String,
    /// Application version.
    pub app_version: String,
    /// OS language code.
    pub system_lang_code: String,
    /// Language pack.
    pub lang_pack: String,
    /// Language code.
    pub lang_code: String,
}

impl InitParams {
    /// Parameters for `api_id` at `layer`, with generic device fields.
    pub fn new(api_id: i32, layer: i32) -> Self {
        Self {
            api_id,
            layer,
            device_model: "mtsender".into(),
            system_version: std::env::consts::OS.into(),
            app_version: env!("CARGO_PKG_VERSION").into(),
            system_lang_code: "en".into(),
            lang_pack: String::new(),
            lang_code: "en".into(),
        }
    }
}

/// The sender's settings. [`SenderConfig::new`] gives the defaults.
#[derive(Clone)]
pub struct SenderConfig {
    /// Where the DCs are.
    pub dcs: DcTable,
    /// The DC requests go to by default (moved by `*_MIGRATE_X`).
    pub home_dc: i32,
    /// The transport envelope.
    pub transport: TransportKind,
    /// Wrap the transport in obfuscation2 (not for `Full`).
    pub obfuscated: bool,
    /// The server keys to trust in the handshake.
    pub rsa_keys: Vec<RsaPublicKey>,
    /// `initConnection` parameters; `None` sends requests unwrapped (for
    /// test servers that do not need them).
    pub init: Option<InitParams>,
    /// Decides retries of failed requests.
    pub retry_policy: Arc<dyn RetryPolicy>,
    /// Decides reconnection after a drop.
    pub restart_policy: Arc<dyn ConnectionRestartPolicy>,
    /// Emit [`Output::CatchUp`](super::Output::CatchUp) after a restart or a
    /// new server session.
    pub catch_up: bool,
    /// Keepalive: a `ping_delay_disconnect` this often on an idle-or-busy
    /// connection.
    pub ping_interval: Duration,
    /// The `disconnect_delay` of the keepalive pings, seconds.
    pub disconnect_delay: i32,
    /// A connection whose ping is not answered within this is dead.
    pub pong_timeout: Duration,
    /// Connecting (TCP) must succeed within this.
    pub connect_timeout: Duration,
    /// Auth key creation must finish within this per step.
    pub handshake_timeout: Duration,
    /// Deadline applied to requests that set none; `None` waits forever.
    pub request_timeout: Option<Duration>,
    /// Replace each connection by a fresh one this often, gracefully.
    pub refresh_every: Option<Duration>,
    /// How long an old connection may drain its answers after a refresh.
    pub drain_timeout: Duration,
    /// Migrations one request may follow before failing with
    /// [`InvocationError::MigrationLoop`](crate::InvocationError::MigrationLoop).
    pub max_migrations: u32,
    /// Perfect forward secrecy: sessions run on temporary keys (lifetime
    /// `temp_key_lifetime`) bound to the permanent key with
    /// `auth.bindTempAuthKey`; only the permanent key is saved.
    pub pfs: bool,
    /// Lifetime asked for temporary keys.
    pub temp_key_lifetime: Duration,
    /// Session settings (containers, acks, gzip…).
    pub session: SessionConfig,
}

impl std::fmt::Debug for SenderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderConfig")
            .field("dcs", &self.dcs)
            .field("home_dc", &self.home_dc)
            .field("transport", &self.transport)
            .field("obfuscated", &self.obfuscated)
            .field("catch_up", &self.catch_up)
            .finish_non_exhaustive()
    }
}

impl SenderConfig {
    /// Defaults: home DC 2, intermediate transport, [`AutoSleep`] retries,
    /// [`NeverRestart`], keepalive every 60 s with disconnect_delay 75 and a
    /// 20 s pong deadline, no request deadline, no refresh.
    pub fn new(dcs: DcTable, rsa_keys: Vec<RsaPublicKey>) -> Self {
        Self {
            dcs,
            home_dc: 2,
            transport: TransportKind::Intermediate,
            obfuscated: false,
            rsa_keys,
            init: None,
            retry_policy: Arc::new(AutoSleep::default()),
            restart_policy: Arc::new(NeverRestart),
            catch_up: false,
            ping_interval: Duration::from_secs(60),
            disconnect_delay: 75,
            pong_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            request_timeout: None,
            refresh_every: None,
            drain_timeout: Duration::from_secs(60),
            max_migrations: 5,
            pfs: false,
            temp_key_lifetime: Duration::from_secs(24 * 3600),
            session: SessionConfig::default(),
        }
    }
}
