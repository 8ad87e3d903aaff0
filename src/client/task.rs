//! The client's one IO task: connect (TCP, TLS), drive a [`Link`] with the socket's bytes,
//! the host's queued requests and the heart-beat timers, and reconnect with backoff. All
//! protocol decisions are in the sans-IO [`Link`] and [`Session`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Shared;
use super::event::ClientEvent;
use super::link::{Link, LinkConfig, LinkOut};
use super::session::{Action, Failure, Output, Session, StompParams, Token};
use super::url::Endpoint;
use super::{Stop, Waiter};
use crate::relay::backoff::Backoff;

/// Stop draining host requests while this much is waiting to be written: the outbound queue
/// fills up instead, and its policy applies to the producers.
const WRITE_HIGH_WATER: usize = 1 << 20;

/// Requests taken from the queue per turn, so reads keep up with a busy producer.
const REQUESTS_PER_TURN: usize = 256;

/// What the task needs, fixed for the client's life.
pub(crate) struct TaskContext {
    pub shared: Arc<Shared>,
    pub endpoint: Endpoint,
    pub link: LinkConfig,
    pub params: StompParams,
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub server_name: String,
    pub connect_timeout: Duration,
    pub receipt_timeout: Duration,
    pub reconnect: super::config::ReconnectPolicy,
    pub stop: watch::Receiver<Stop>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How one connection ended.
struct Ended {
    reason: String,
    /// It reached CONNECTED (raw: the open WebSocket).
    was_open: bool,
    /// The host asked to stop (or the DISCONNECT was confirmed).
    stop: bool,
}

/// The waiting callers, by token.
#[derive(Default)]
struct Waiters {
    next: Token,
    by_token: HashMap<Token, Waiter>,
}

impl Waiters {
    fn register(&mut self, waiter: Option<Waiter>) -> Option<Token> {
        let waiter = waiter?;
        self.next += 1;
        self.by_token.insert(self.next, waiter);
        Some(self.next)
    }

    fn finish(&mut self, token: Token, result: Result<(), Failure>) {
        if let Some(waiter) = self.by_token.remove(&token) {
            let _ = waiter.try_send(result);
        }
    }
}

/// The task: connections one after the other until stopped or out of attempts.
pub(crate) async fn run(mut ctx: TaskContext) {
    let mut session = Session::new(ctx.params.clone());
    let mut backoff = Backoff::new(ctx.reconnect.initial_delay, ctx.reconnect.max_delay);
    let mut waiters = Waiters::default();
    let mut failures: u32 = 0;
    loop {
        let ended = serve(&mut ctx, &mut session, &mut waiters).await;
        let mut out = Output::default();
        session.connection_lost(&ended.reason, &mut out);
        dispatch(&ctx.shared, &mut waiters, out.actions);
        ctx.shared.connected.store(false, Ordering::Release);
        if ended.was_open {
            backoff.reset();
            failures = 0;
        } else {
            failures = failures.saturating_add(1);
            ctx.shared.attempt_failed(&ended.reason);
        }
        let policy = ctx.reconnect;
        let reconnecting = !ended.stop
            && !stopping(&ctx.stop)
            && policy.enabled
            && (policy.max_attempts == 0 || failures < policy.max_attempts);
        tracing::debug!(reason = %ended.reason, reconnecting, "client connection ended");
        ctx.shared.emit(ClientEvent::Disconnected {
            reason: ended.reason,
            reconnecting,
        });
        if !reconnecting {
            break;
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = ctx.stop.wait_for(|s| *s != Stop::Run) => break,
        }
    }
    // Nothing will carry out what is still queued.
    while let Ok(queued) = ctx.shared.queue_rx.try_recv() {
        if let Some(waiter) = queued.waiter {
            let _ = waiter.try_send(Err(Failure::Lost("the client stopped".into())));
        }
    }
    for (_, waiter) in waiters.by_token.drain() {
        let _ = waiter.try_send(Err(Failure::Lost("the client stopped".into())));
    }
    ctx.shared.set_stopped();
}

fn stopping(stop: &watch::Receiver<Stop>) -> bool {
    *stop.borrow() != Stop::Run
}

fn dispatch(shared: &Shared, waiters: &mut Waiters, actions: Vec<Action>) {
    for action in actions {
        match action {
            Action::Event(event) => {
                // The event is queued before `connect()` is woken, so a caller that returns
                // from `connect()` always finds its `Connected` event.
                let connected = matches!(event, ClientEvent::Connected { .. });
                if connected {
                    shared.generation.fetch_add(1, Ordering::AcqRel);
                    shared.connected.store(true, Ordering::Release);
                }
                shared.emit(event);
                if connected {
                    shared.set_connected();
                }
            }
            Action::Done(token, result) => waiters.finish(token, result),
            Action::Closed => {}
        }
    }
}

async fn open_stream(ctx: &TaskContext) -> Result<Box<dyn Io>, String> {
    let address = ctx.endpoint.address();
    let tcp = TcpStream::connect(&address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &ctx.tls else {
        return Ok(Box::new(tcp));
    };
    let name = rustls_pki_types::ServerName::try_from(ctx.server_name.clone())
        .map_err(|e| format!("invalid TLS server name {:?}: {e}", ctx.server_name))?;
    let stream = tls
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {address} failed: {e}"))?;
    Ok(Box::new(stream))
}

/// One connection, from TCP connect to its end.
async fn serve(ctx: &mut TaskContext, session: &mut Session, waiters: &mut Waiters) -> Ended {
    let failed = |reason: String| Ended {
        reason,
        was_open: false,
        stop: false,
    };
    if stopping(&ctx.stop) {
        return Ended {
            reason: "stopped".into(),
            was_open: false,
            stop: true,
        };
    }
    let connect_deadline = Instant::now() + ctx.connect_timeout;
    let mut stop = ctx.stop.clone();
    let stream = tokio::select! {
        r = tokio::time::timeout_at(connect_deadline, open_stream(ctx)) => match r {
            Ok(Ok(stream)) => stream,
            Ok(Err(reason)) => return failed(reason),
            Err(_) => return failed(format!(
                "connecting to {} timed out after {} ms",
                ctx.endpoint.address(),
                ctx.connect_timeout.as_millis()
            )),
        },
        _ = stop.wait_for(|s| *s != Stop::Run) => return Ended {
            reason: "stopped".into(), was_open: false, stop: true,
        },
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let key = tungstenite::handshake::client::generate_key();
    let mut link = Link::new(
        ctx.link.clone(),
        key,
        StdRng::from_os_rng(),
        Instant::now().into_std(),
    );
    let mut out = LinkOut::default();
    link.start(session, &mut out);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut pending = BytesMut::new();
    let mut was_open = false;
    let mut stop_deadline: Option<Instant> = None;
    let mut disconnecting = false;
    loop {
        pending.extend_from_slice(&out.bytes);
        out.bytes.clear();
        dispatch(
            &ctx.shared,
            waiters,
            std::mem::take(&mut out.session.actions),
        );
        if link.is_open() {
            was_open = true;
        }
        if link.is_closed() {
            // A confirmed DISCONNECT or a Close: flush what is left (the Close reply).
            if disconnecting {
                link.close(&mut out);
            }
            pending.extend_from_slice(&out.bytes);
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                writer.write_all(&pending).await?;
                writer.shutdown().await
            })
            .await;
            return Ended {
                reason: if disconnecting {
                    "disconnected".into()
                } else {
                    "closed".into()
                },
                was_open,
                stop: disconnecting,
            };
        }
        // A stop request: DISCONNECT when open (its RECEIPT ends the loop), else go.
        if !disconnecting && stopping(&ctx.stop) {
            let graceful = *ctx.stop.borrow() == Stop::Disconnect;
            if graceful && link.is_open() {
                disconnecting = true;
                stop_deadline = Some(Instant::now() + ctx.receipt_timeout);
                link.disconnect(session, None, &mut out);
                continue;
            }
            return Ended {
                reason: "stopped".into(),
                was_open,
                stop: true,
            };
        }
        // The host's requests, when the connection can take them.
        if link.is_open() && !disconnecting && pending.len() < WRITE_HIGH_WATER {
            let now = Instant::now().into_std();
            let mut taken = 0;
            while taken < REQUESTS_PER_TURN {
                let Ok(queued) = ctx.shared.queue_rx.try_recv() else {
                    break;
                };
                taken += 1;
                let token = waiters.register(queued.waiter);
                link.request(session, queued.request, token, now, &mut out);
            }
            if taken > 0 {
                continue;
            }
        }
        let deadline = if link.is_open() {
            link.deadline().map(Instant::from_std)
        } else {
            Some(connect_deadline)
        };
        let deadline = match (deadline, stop_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let take_requests = link.is_open() && !disconnecting && pending.len() < WRITE_HIGH_WATER;
        tokio::select! {
            r = reader.read_buf(&mut input) => match r {
                Ok(0) => return Ended {
                    reason: "the server closed the connection".into(),
                    was_open,
                    stop: disconnecting,
                },
                Ok(_) => {
                    if let Err(reason) =
                        link.receive(session, &mut input, Instant::now().into_std(), &mut out)
                    {
                        let _ = writer.write_all(&out.bytes).await;
                        dispatch(&ctx.shared, waiters, std::mem::take(&mut out.session.actions));
                        return Ended { reason, was_open: was_open || link.is_open(), stop: disconnecting };
                    }
                }
                Err(e) => return Ended {
                    reason: format!("read failed: {e}"),
                    was_open,
                    stop: disconnecting,
                },
            },
            r = writer.write(&pending), if !pending.is_empty() => match r {
                Ok(n) => {
                    let _ = pending.split_to(n);
                    link.wrote(Instant::now().into_std());
                }
                Err(e) => return Ended {
                    reason: format!("write failed: {e}"),
                    was_open,
                    stop: disconnecting,
                },
            },
            () = ctx.shared.notify.notified(), if take_requests => {}
            _ = ctx.stop.changed(), if !disconnecting => {}
            () = sleep_until(deadline) => {
                let now = Instant::now();
                if stop_deadline.is_some_and(|d| now >= d) {
                    return Ended {
                        reason: "no RECEIPT for DISCONNECT in time".into(),
                        was_open,
                        stop: true,
                    };
                }
                if !link.is_open() {
                    return failed(format!(
                        "no CONNECTED (or upgrade answer) within {} ms",
                        ctx.connect_timeout.as_millis()
                    ));
                }
                if let Err(reason) = link.on_timer(now.into_std(), &mut out) {
                    return Ended { reason, was_open, stop: false };
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
