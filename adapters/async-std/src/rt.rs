//! async-io's sockets and timer, as the shared driver uses them. The driver
//! runs on its own thread under `async_io::block_on`, so it works the same
//! whichever executor (async-std, smol, or none) the caller uses.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

pub(crate) type Socket = Async<TcpStream>;
pub(crate) type Connecting = Pin<Box<dyn Future<Output = io::Result<Socket>> + Send>>;

pub(crate) fn connect(addr: SocketAddr) -> Connecting {
    Box::pin(async move {
        let s = Async::<TcpStream>::connect(addr).await?;
        // MTProto packets are small and latency matters more than batching.
        s.get_ref().set_nodelay(true)?;
        Ok(s)
    })
}

pub(crate) fn poll_read(
    s: &mut Socket,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    Pin::new(s).poll_read(cx, buf)
}

pub(crate) fn poll_write(
    s: &mut Socket,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    Pin::new(s).poll_write(cx, buf)
}

/// One timer, moved with `set_at` rather than recreated.
pub(crate) struct Timer(async_io::Timer);

impl Timer {
    pub(crate) fn new() -> Self {
        Self(async_io::Timer::never())
    }

    pub(crate) fn reset(&mut self, at: Instant) {
        self.0.set_at(at);
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// Runs the driver on a thread of its own.
pub(crate) fn spawn(driver: crate::driver::Driver) {
    let spawned = std::thread::Builder::new()
        .name("mtsender-driver".into())
        .spawn(move || async_io::block_on(driver));
    // Without the thread the handles see a closed driver: every request
    // then fails with InvocationError::Shutdown.
    drop(spawned);
}
