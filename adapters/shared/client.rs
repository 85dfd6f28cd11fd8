// The handle, the builder and the session file: the same source in both
// adapters (each compiles it against its own `rt` module).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use mtsender::crypto::RsaPublicKey;
use mtsender::sender::persist::{PersistError, SessionData};
use mtsender::sender::{InitParams, Stats};
use mtsender::tl::{functions::Ping, Serialize};
use mtsender::transport::TransportKind;
use mtsender::{
    CatchUpReason, ConnectionRestartPolicy, Dc, DcTable, InvocationError, Request, ResponseMeta,
    RetryPolicy, Sender, SenderConfig, ShutdownReason,
};

use crate::driver::{Command, Driver};

/// Something the server pushed, or a reason to catch up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An update (TL bytes), in arrival order per DC.
    Update {
        /// The DC it came from.
        dc: i32,
        /// Its TL bytes.
        bytes: Vec<u8>,
    },
    /// Updates may have been missed (after a reconnection or a new server
    /// session; only with [`Builder::catch_up`]): run `updates.getDifference`.
    CatchUp {
        /// The DC.
        dc: i32,
        /// Why.
        reason: CatchUpReason,
    },
    /// The [`Updates`] stream was not read fast enough and this many events
    /// were dropped: catch up as for [`Event::CatchUp`].
    Lagged {
        /// Events dropped.
        dropped: u64,
    },
}

/// Why [`Builder::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The session file exists but could not be read.
    #[error("cannot read session file {path}: {source}")]
    SessionIo {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The session file is not a valid session (corrupt, truncated, other
    /// format version). It is left as it is; remove it to start afresh.
    #[error("session file {path} is not usable: {source}")]
    SessionCorrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PersistError,
    },
    /// The OS gave no randomness for the seed.
    #[error("no randomness from the OS: {0}")]
    Entropy(String),
    /// The home DC has no address in the DC table.
    #[error("no address for home DC {0}")]
    UnknownHomeDc(i32),
    /// Connecting to the home DC (TCP, auth key, first ping) failed.
    #[error("connecting failed: {0}")]
    Connect(#[from] InvocationError),
}

/// A cheap, cloneable handle to the driver task. When every clone is
/// dropped the driver shuts down.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cmds: mpsc::UnboundedSender<Command>,
    updates: Mutex<Option<Updates>>,
    api_hash: Option<String>,
}

impl Client {
    /// A builder with the defaults: Telegram's production DCs and key, home
    /// DC 2, intermediate transport, [`AutoSleep`](mtsender::AutoSleep)
    /// retries, [`NeverRestart`](mtsender::NeverRestart), no session file.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Sends a request (serialized TL) to the home DC and waits for its
    /// answer. Dropping the future does not cancel the request.
    pub async fn invoke(&self, body: impl Into<Vec<u8>>) -> Result<Vec<u8>, InvocationError> {
        self.invoke_with(Request::new(body.into())).await.0
    }

    /// Sends a request to DC `dc` (not following the home DC).
    pub async fn invoke_in(
        &self,
        dc: i32,
        body: impl Into<Vec<u8>>,
    ) -> Result<Vec<u8>, InvocationError> {
        self.invoke_with(Request::new(body.into()).dc(Dc::Id(dc)))
            .await
            .0
    }

    /// Sends a request with its own DC and deadline; the answer comes with
    /// its [`ResponseMeta`] (which DC answered, failures before it, whether
    /// it may have run twice). Once the driver has stopped, the result is
    /// [`InvocationError::Shutdown`] with a meta of DC 0.
    pub async fn invoke_with(
        &self,
        request: Request,
    ) -> (Result<Vec<u8>, InvocationError>, ResponseMeta) {
        let gone = || {
            let meta = ResponseMeta {
                dc: 0,
                failures: 0,
                maybe_repeated: false,
            };
            (Err(InvocationError::Shutdown), meta)
        };
        let (reply, rx) = oneshot::channel();
        if self
            .inner
            .cmds
            .unbounded_send(Command::Invoke { request, reply })
            .is_err()
        {
            return gone();
        }
        rx.await.unwrap_or_else(|_| gone())
    }

    /// The sender's counters (connections, restarts, flood waits slept…),
    /// or `None` once the driver has stopped.
    pub async fn stats(&self) -> Option<Stats> {
        let (reply, rx) = oneshot::channel();
        self.inner.cmds.unbounded_send(Command::Stats(reply)).ok()?;
        rx.await.ok()
    }

    /// Takes the stream of updates and catch-up signals. Only the first
    /// call gets it; later calls return `None`.
    pub fn updates(&self) -> Option<Updates> {
        self.inner
            .updates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Stops the driver: pending requests fail with
    /// [`InvocationError::Shutdown`], connections close, and the
    /// [`Shutdown`] future resolves.
    pub fn shutdown(&self) {
        let _ = self.inner.cmds.unbounded_send(Command::Shutdown);
    }

    /// Whether the driver has stopped.
    pub fn is_closed(&self) -> bool {
        self.inner.cmds.is_closed()
    }

    /// The API hash given to the builder (the sender itself never sends
    /// it: login methods need it).
    pub fn api_hash(&self) -> Option<&str> {
        self.inner.api_hash.as_deref()
    }
}

/// Updates and catch-up signals, in order. A [`Stream`]; or call
/// [`next`](Self::next).
#[derive(Debug)]
pub struct Updates {
    rx: mpsc::Receiver<Event>,
}

impl Updates {
    /// The next event; `None` once the driver has stopped.
    pub async fn next(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| Pin::new(&mut self.rx).poll_next(cx)).await
    }
}

impl Stream for Updates {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.rx).poll_next(cx)
    }
}

/// Resolves with the reason when the driver stops: [`Client::shutdown`],
/// every client dropped, or the home DC lost with a restart policy that
/// said no.
#[derive(Debug)]
pub struct Shutdown {
    rx: oneshot::Receiver<ShutdownReason>,
}

impl Future for Shutdown {
    type Output = ShutdownReason;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ShutdownReason> {
        // The driver always says why before it ends; a driver that vanished
        // without a word (a panic) reads as a requested stop.
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(ShutdownReason::Requested))
    }
}

/// Configures and starts a [`Client`]. See [`Client::builder`] for the
/// defaults.
pub struct Builder {
    api_id: Option<i32>,
    api_hash: Option<String>,
    layer: i32,
    session: Option<PathBuf>,
    dcs: DcTable,
    home_dc: Option<i32>,
    transport: TransportKind,
    obfuscated: bool,
    rsa_keys: Vec<RsaPublicKey>,
    restart_policy: Option<Arc<dyn ConnectionRestartPolicy>>,
    retry_policy: Option<Arc<dyn RetryPolicy>>,
    catch_up: bool,
    pfs: bool,
    connect_first: bool,
    updates_capacity: usize,
    seed: Option<[u8; 32]>,
    configure: Vec<Configure>,
}

type Configure = Box<dyn FnOnce(&mut SenderConfig) + Send>;

impl Default for Builder {
    fn default() -> Self {
        Self {
            api_id: None,
            api_hash: None,
            layer: DEFAULT_LAYER,
            session: None,
            dcs: DcTable::production(),
            home_dc: None,
            transport: TransportKind::Intermediate,
            obfuscated: false,
            rsa_keys: Vec::new(),
            restart_policy: None,
            retry_policy: None,
            catch_up: false,
            pfs: false,
            connect_first: true,
            updates_capacity: 1024,
            seed: None,
            configure: Vec::new(),
        }
    }
}

/// The API layer announced in `initConnection` unless [`Builder::layer`]
/// says otherwise.
pub const DEFAULT_LAYER: i32 = 201;

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("api_id", &self.api_id)
            .field("session", &self.session)
            .field("dcs", &self.dcs)
            .field("home_dc", &self.home_dc)
            .field("transport", &self.transport)
            .field("catch_up", &self.catch_up)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The API id: requests are then wrapped in `initConnection` with it.
    pub fn api_id(mut self, api_id: i32) -> Self {
        self.api_id = Some(api_id);
        self
    }

    /// The API hash, kept for [`Client::api_hash`].
    pub fn api_hash(mut self, api_hash: impl Into<String>) -> Self {
        self.api_hash = Some(api_hash.into());
        self
    }

    /// The API layer of the requests you send (for `invokeWithLayer`).
    pub fn layer(mut self, layer: i32) -> Self {
        self.layer = layer;
        self
    }

    /// A session file: loaded at connect (a corrupt one is an error), and
    /// rewritten atomically whenever an auth key or the home DC changes.
    pub fn session(mut self, path: impl AsRef<Path>) -> Self {
        self.session = Some(path.as_ref().to_path_buf());
        self
    }

    /// Decides reconnection after a drop (default
    /// [`NeverRestart`](mtsender::NeverRestart)).
    pub fn restart_policy(mut self, policy: Arc<dyn ConnectionRestartPolicy>) -> Self {
        self.restart_policy = Some(policy);
        self
    }

    /// Decides retries of failed requests (default
    /// [`AutoSleep`](mtsender::AutoSleep)).
    pub fn retry_policy(mut self, policy: Arc<dyn RetryPolicy>) -> Self {
        self.retry_policy = Some(policy);
        self
    }

    /// Emit [`Event::CatchUp`] after a reconnection or a new server session.
    pub fn catch_up(mut self, catch_up: bool) -> Self {
        self.catch_up = catch_up;
        self
    }

    /// Perfect forward secrecy: sessions run on temporary auth keys bound
    /// to the permanent one (`auth.bindTempAuthKey`); only the permanent
    /// key goes to the session file.
    pub fn pfs(mut self, pfs: bool) -> Self {
        self.pfs = pfs;
        self
    }

    /// The transport envelope (default intermediate).
    pub fn transport(mut self, transport: TransportKind) -> Self {
        self.transport = transport;
        self
    }

    /// Wrap the transport in obfuscation2 (ignored for `Full`).
    pub fn obfuscated(mut self, obfuscated: bool) -> Self {
        self.obfuscated = obfuscated;
        self
    }

    /// Sets (or overrides) the address of DC `id`.
    pub fn dc(mut self, id: i32, addr: SocketAddr) -> Self {
        self.dcs = self.dcs.set(id, addr);
        self
    }

    /// Replaces the whole DC table (e.g. [`DcTable::test`] or
    /// [`DcTable::empty`]).
    pub fn dcs(mut self, dcs: DcTable) -> Self {
        self.dcs = dcs;
        self
    }

    /// The home DC (default 2). One saved in the session file wins: it is
    /// where the account lives.
    pub fn home_dc(mut self, id: i32) -> Self {
        self.home_dc = Some(id);
        self
    }

    /// Trusts this server key; the first call replaces the default
    /// (Telegram's production key), later calls add.
    pub fn rsa_key(mut self, key: RsaPublicKey) -> Self {
        self.rsa_keys.push(key);
        self
    }

    /// Whether [`connect`](Self::connect) waits for the home DC (TCP, auth
    /// key, one ping) before returning (default `true`). With `false` it
    /// returns at once and the first request connects.
    pub fn connect_first(mut self, wait: bool) -> Self {
        self.connect_first = wait;
        self
    }

    /// How many updates may wait unread before [`Event::Lagged`] (default
    /// 1024).
    pub fn updates_capacity(mut self, n: usize) -> Self {
        self.updates_capacity = n.max(1);
        self
    }

    /// Seeds the sender instead of the OS (for reproducible tests).
    pub fn seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Adjusts any other [`SenderConfig`] field (keepalive, request
    /// deadline, `refresh_every`…) after the builder has set its own.
    pub fn configure(mut self, f: impl FnOnce(&mut SenderConfig) + Send + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    /// Starts the driver task (spawned on the runtime) and, unless
    /// [`connect_first`](Self::connect_first) is off, waits until the home
    /// DC answers a ping.
    pub async fn connect(self) -> Result<(Client, Shutdown), ConnectError> {
        let mut entropy = [0u8; 40];
        match self.seed {
            Some(seed) => entropy[..32].copy_from_slice(&seed),
            None => os_entropy(&mut entropy)?,
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&entropy[..32]);
        let ping_id = i64::from_le_bytes([
            entropy[32],
            entropy[33],
            entropy[34],
            entropy[35],
            entropy[36],
            entropy[37],
            entropy[38],
            entropy[39],
        ]);
        let saved = match &self.session {
            Some(path) => load_session(path)?,
            None => None,
        };
        let mut config = SenderConfig::new(self.dcs, self.rsa_keys);
        if config.rsa_keys.is_empty() {
            // The constant is a valid key: the core's tests parse it.
            config.rsa_keys =
                vec![
                    RsaPublicKey::from_pem(mtsender::crypto::TELEGRAM_PRODUCTION_KEY_PEM)
                        .expect("the bundled Telegram key parses"),
                ];
        }
        config.transport = self.transport;
        config.obfuscated = self.obfuscated;
        config.catch_up = self.catch_up;
        config.pfs = self.pfs;
        config.init = self.api_id.map(|id| InitParams::new(id, self.layer));
        if let Some(p) = self.restart_policy {
            config.restart_policy = p;
        }
        if let Some(p) = self.retry_policy {
            config.retry_policy = p;
        }
        if let Some(home) = self.home_dc {
            config.home_dc = home;
        }
        for f in self.configure {
            f(&mut config);
        }
        let (now, unix) = clock();
        let sender = match saved {
            Some(data) => Sender::with_session(config.clone(), data, now, unix, seed),
            None => Sender::new(config.clone(), now, unix, seed),
        };
        if config.dcs.get(sender.home_dc()).is_none() {
            return Err(ConnectError::UnknownHomeDc(sender.home_dc()));
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded();
        let (ev_tx, ev_rx) = mpsc::channel(self.updates_capacity);
        let (down_tx, down_rx) = oneshot::channel();
        crate::rt::spawn(Driver::new(sender, cmd_rx, ev_tx, down_tx, self.session));
        let client = Client {
            inner: Arc::new(Inner {
                cmds: cmd_tx,
                updates: Mutex::new(Some(Updates { rx: ev_rx })),
                api_hash: self.api_hash,
            }),
        };
        if self.connect_first {
            // Bounded, so an unreachable DC under a restart policy that
            // never gives up still ends in an error here.
            let limit = config.connect_timeout + config.handshake_timeout * 3;
            let ping = Request::new(Ping { ping_id }.to_bytes()).timeout(limit);
            client.invoke_with(ping).await.0?;
        }
        Ok((client, Shutdown { rx: down_rx }))
    }
}

/// Now, and the wall-clock time that goes with it: the adapter is where
/// the core's time comes from.
#[allow(clippy::disallowed_methods)]
pub(crate) fn clock() -> (Instant, Duration) {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (Instant::now(), unix)
}

/// The seed comes from the OS, here and nowhere else.
#[allow(clippy::disallowed_methods)]
fn os_entropy(buf: &mut [u8]) -> Result<(), ConnectError> {
    getrandom::getrandom(buf).map_err(|e| ConnectError::Entropy(e.to_string()))
}

/// Reads a session file; a missing one is no session.
fn load_session(path: &Path) -> Result<Option<SessionData>, ConnectError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConnectError::SessionIo {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    SessionData::from_bytes(&bytes)
        .map(Some)
        .map_err(|source| ConnectError::SessionCorrupt {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes a session file atomically: a temporary file beside it, synced,
/// then renamed over it, so a crash leaves the old file or the new one.
pub(crate) fn save_session(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
