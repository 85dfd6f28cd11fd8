//! Tokio's sockets, timer and spawning, as the shared driver uses them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub(crate) type Socket = TcpStream;
pub(crate) type Connecting = Pin<Box<dyn Future<Output = io::Result<Socket>> + Send>>;

pub(crate) fn connect(addr: SocketAddr) -> Connecting {
    Box::pin(async move {
        let s = TcpStream::connect(addr).await?;
        // MTProto packets are small and latency matters more than batching.
        s.set_nodelay(true)?;
        Ok(s)
    })
}

pub(crate) fn poll_read(
    s: &mut Socket,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let mut rb = ReadBuf::new(buf);
    Pin::new(s)
        .poll_read(cx, &mut rb)
        .map_ok(|()| rb.filled().len())
}

pub(crate) fn poll_write(
    s: &mut Socket,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    Pin::new(s).poll_write(cx, buf)
}

/// One sleep, moved with `reset` rather than recreated.
pub(crate) struct Timer(Pin<Box<tokio::time::Sleep>>);

impl Timer {
    pub(crate) fn new() -> Self {
        // Far enough never to fire before the first reset.
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
        Self(Box::pin(tokio::time::sleep_until(far)))
    }

    pub(crate) fn reset(&mut self, at: Instant) {
        self.0.as_mut().reset(tokio::time::Instant::from_std(at));
    }

    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

/// Spawns the driver on the current tokio runtime (panics outside one, as
/// `tokio::spawn` does).
pub(crate) fn spawn(driver: crate::driver::Driver) {
    tokio::spawn(driver);
}
