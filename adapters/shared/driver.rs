// The driver task: one future owning the Sender, the sockets and one timer.
// The same source in both adapters; `crate::rt` supplies sockets, the
// timer and spawning.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use mtsender::sender::Stats;
use mtsender::{
    CloseReason, ConnId, Input, InvocationError, Output, Request, RequestId, ResponseMeta, Sender,
    ShutdownReason,
};

use crate::client::{clock, save_session, Event};
use crate::rt;

/// Where a request's outcome goes.
pub(crate) type Reply = oneshot::Sender<(Result<Vec<u8>, InvocationError>, ResponseMeta)>;

/// What a handle asks of the driver.
#[derive(Debug)]
pub(crate) enum Command {
    Invoke { request: Request, reply: Reply },
    Stats(oneshot::Sender<Stats>),
    Shutdown,
}

/// Work units per wakeup (a command, a read, a connect), so one busy
/// source cannot starve the rest of the runtime.
const BUDGET: usize = 256;
/// Reads per connection per pass.
const READS_PER_PASS: usize = 4;
const READ_BUF: usize = 64 * 1024;

enum Socket {
    Connecting(rt::Connecting),
    Open(rt::Socket),
}

struct Conn {
    socket: Socket,
    out: Vec<u8>,
    written: usize,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

pub(crate) struct Driver {
    sender: Sender,
    cmds: mpsc::UnboundedReceiver<Command>,
    cmds_open: bool,
    conns: HashMap<ConnId, Conn>,
    replies: HashMap<RequestId, Reply>,
    events: mpsc::Sender<Event>,
    lagged: u64,
    down: Option<oneshot::Sender<ShutdownReason>>,
    finished: Option<ShutdownReason>,
    session_path: Option<PathBuf>,
    timer: rt::Timer,
    deadline: Option<Instant>,
    buf: Box<[u8]>,
}

impl Driver {
    pub(crate) fn new(
        sender: Sender,
        cmds: mpsc::UnboundedReceiver<Command>,
        events: mpsc::Sender<Event>,
        down: oneshot::Sender<ShutdownReason>,
        session_path: Option<PathBuf>,
    ) -> Self {
        Self {
            sender,
            cmds,
            cmds_open: true,
            conns: HashMap::new(),
            replies: HashMap::new(),
            events,
            lagged: 0,
            down: Some(down),
            finished: None,
            session_path,
            timer: rt::Timer::new(),
            deadline: None,
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
        }
    }

    /// Takes the handles' commands, a bounded number per pass.
    fn poll_commands(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> bool {
        let mut any = false;
        let (now, _) = clock();
        while self.cmds_open && *budget > 0 {
            match Pin::new(&mut self.cmds).poll_next(cx) {
                Poll::Ready(Some(Command::Invoke { request, reply })) => {
                    let id = self.sender.invoke(now, request);
                    self.replies.insert(id, reply);
                }
                Poll::Ready(Some(Command::Stats(reply))) => {
                    let _ = reply.send(self.sender.stats().clone());
                }
                Poll::Ready(Some(Command::Shutdown)) | Poll::Ready(None) => {
                    // Asked to stop, or every handle is gone.
                    self.cmds_open = false;
                    self.sender.shutdown(now);
                }
                Poll::Pending => break,
            }
            *budget -= 1;
            any = true;
        }
        if any {
            self.drain();
        }
        any
    }

    /// Connects, writes and reads every socket as far as it goes now.
    fn poll_sockets(&mut self, cx: &mut Context<'_>, budget: &mut usize) -> bool {
        let mut any = false;
        let mut closed = Vec::new();
        let Self {
            sender, conns, buf, ..
        } = self;
        for (&id, c) in conns.iter_mut() {
            #[cfg(feature = "tracing")]
            let _span = c.span.enter();
            if let Socket::Connecting(fut) = &mut c.socket {
                match fut.as_mut().poll(cx) {
                    Poll::Pending => continue,
                    Poll::Ready(Ok(s)) => {
                        debug!("connected");
                        c.socket = Socket::Open(s);
                        let (now, _) = clock();
                        sender.handle_input(Input::Connected { conn: id, now });
                        any = true;
                    }
                    Poll::Ready(Err(e)) => {
                        debug!("connect failed: {e}");
                        closed.push((id, CloseReason::ConnectFailed(e.to_string())));
                        continue;
                    }
                }
            }
            let Socket::Open(s) = &mut c.socket else {
                continue;
            };
            while c.written < c.out.len() {
                match rt::poll_write(s, cx, &c.out[c.written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => c.written += n,
                    Poll::Ready(Ok(_)) => {
                        closed.push((id, CloseReason::Lost("write returned 0".into())));
                        break;
                    }
                    Poll::Ready(Err(e)) => {
                        closed.push((id, CloseReason::Lost(format!("write: {e}"))));
                        break;
                    }
                    Poll::Pending => break,
                }
            }
            if c.written == c.out.len() {
                c.out.clear();
                c.written = 0;
            }
            for _ in 0..READS_PER_PASS {
                if *budget == 0 {
                    break;
                }
                match rt::poll_read(s, cx, buf) {
                    Poll::Ready(Ok(0)) => {
                        debug!("closed by the peer");
                        closed.push((id, CloseReason::Lost("closed by the peer".into())));
                        break;
                    }
                    Poll::Ready(Ok(n)) => {
                        *budget -= 1;
                        any = true;
                        let (now, _) = clock();
                        sender.handle_input(Input::Received {
                            conn: id,
                            bytes: &buf[..n],
                            now,
                        });
                    }
                    Poll::Ready(Err(e)) => {
                        debug!("read failed: {e}");
                        closed.push((id, CloseReason::Lost(format!("read: {e}"))));
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        for (conn, reason) in closed {
            if self.conns.remove(&conn).is_some() {
                let (now, _) = clock();
                self.sender
                    .handle_input(Input::Closed { conn, reason, now });
                any = true;
            }
        }
        if any {
            self.drain();
        }
        any
    }

    /// Does what the sender asks, until it says when to wake it.
    fn drain(&mut self) {
        let mut next = None;
        while let Some(out) = self.sender.poll_output() {
            match out {
                Output::Connect { conn, dc, addr } => {
                    #[cfg(feature = "tracing")]
                    let span = tracing::info_span!("dc", id = dc, conn = conn.0);
                    #[cfg(feature = "tracing")]
                    span.in_scope(|| tracing::debug!(%addr, "connecting"));
                    let _ = (dc, addr);
                    self.conns.insert(
                        conn,
                        Conn {
                            socket: Socket::Connecting(rt::connect(addr)),
                            out: Vec::new(),
                            written: 0,
                            #[cfg(feature = "tracing")]
                            span,
                        },
                    );
                }
                Output::Transmit { conn, bytes } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.out.extend_from_slice(&bytes);
                    }
                }
                Output::Disconnect { conn } => {
                    if let Some(_c) = self.conns.remove(&conn) {
                        #[cfg(feature = "tracing")]
                        _c.span.in_scope(|| tracing::debug!("disconnecting"));
                    }
                }
                Output::Response { id, result, meta } => {
                    if let Some(reply) = self.replies.remove(&id) {
                        // The caller may have stopped waiting.
                        let _ = reply.send((result, meta));
                    }
                }
                Output::Update { dc, bytes } => self.emit(Event::Update { dc, bytes }),
                Output::CatchUp { dc, reason } => {
                    debug!("dc {dc}: catch up ({reason:?})");
                    self.emit(Event::CatchUp { dc, reason });
                }
                // A few hundred bytes, written only when a key or the home
                // DC changes: done in place rather than on a blocking pool.
                Output::SessionChanged => self.save(),
                Output::Shutdown { reason } => {
                    debug!("shutdown: {reason:?}");
                    self.finished = Some(reason);
                }
                Output::SleepUntil(t) => next = Some(t),
                _ => {}
            }
        }
        if next != self.deadline {
            self.deadline = next;
            if let Some(t) = next {
                self.timer.reset(t);
            }
        }
    }

    fn emit(&mut self, event: Event) {
        if self.lagged > 0 {
            let dropped = self.lagged;
            match self.events.try_send(Event::Lagged { dropped }) {
                Ok(()) => self.lagged = 0,
                Err(e) if e.is_full() => {
                    self.lagged += 1;
                    return;
                }
                Err(_) => return,
            }
        }
        if let Err(e) = self.events.try_send(event) {
            if e.is_full() {
                self.lagged += 1;
            }
        }
    }

    fn save(&mut self) {
        let Some(path) = &self.session_path else {
            return;
        };
        match save_session(path, &self.sender.export_session().to_bytes()) {
            Ok(()) => debug!("session saved to {}", path.display()),
            Err(_e) => warn!("saving the session to {} failed: {_e}", path.display()),
        }
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut budget = BUDGET;
        loop {
            let mut progress = this.poll_commands(cx, &mut budget);
            progress |= this.poll_sockets(cx, &mut budget);
            let (now, _) = clock();
            if this.deadline.is_some_and(|d| now >= d) {
                this.sender.handle_input(Input::Timeout(now));
                this.drain();
                progress = true;
            }
            if let Some(reason) = this.finished.take() {
                // Final state for a restart: salts and offsets move on.
                this.save();
                // Handles see the driver gone before the shutdown resolves.
                this.cmds.close();
                if let Some(down) = this.down.take() {
                    let _ = down.send(reason);
                }
                return Poll::Ready(());
            }
            if !progress {
                break;
            }
            if budget == 0 {
                // More to do: let the runtime run others first.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if this.deadline.is_some() && this.timer.poll(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
