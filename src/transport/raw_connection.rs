//! A connection on a raw (non-STOMP) WebSocket endpoint: decodes the client's messages and
//! hands each to the endpoint's behaviour (host event, broadcast, echo), answers pings,
//! enforces the idle timeout, and reports the close to the host.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

use super::connection::{LINGER, drain_until_peer_closes};
use super::keepalive::{Keepalive, KeepaliveDue, KeepaliveTimes};
use super::paused::Paused;
use super::source::ReadSource;
use super::writer::{self, Framing};
use crate::broker::Congestion;
use crate::broker::outbox::{CloseReason, Outbound, PushError};
use crate::broker::stats;
use crate::engine::Engine;
use crate::events::Event;
use crate::raw::hub::RawConn;
use crate::raw::{RawBehaviour, RawClose, RawEndpoint, RawMessage, RawOpen, encode_data_frame};
use crate::sockjs::frame::{Shape, decode_each};
use crate::ws::codes;
use crate::ws::decoder::{MessageDecoder, WsEvent};
use crate::ws::handshake::UpgradeRequest;

/// What the upgrade produced, for [`start`].
pub(crate) struct RawUpgrade {
    pub endpoint: Arc<RawEndpoint>,
    pub request: UpgradeRequest,
    pub principal: Option<String>,
    /// What the upgrade's token granted (token authentication on): whether the client may
    /// send, and until when the token counts.
    pub access: Option<RawAccess>,
    /// permessage-deflate as agreed in the upgrade response.
    pub deflate: Option<crate::ws::deflate::DeflateParams>,
    /// SockJS's `websocket` transport: every WebSocket message is a SockJS frame.
    pub sockjs: bool,
    pub peer: SocketAddr,
    /// The 101 response, not written yet.
    pub response: Vec<u8>,
}

/// Sets up an accepted raw connection (outbox, registration, `RawOpen`, then the 101
/// response as the first thing its writer sends) and spawns the task that runs it. A client
/// that sees the handshake complete is therefore already a member of its endpoint, and what
/// the host sends from `RawOpen` on follows the response.
pub(crate) fn start<R, W, G>(
    read: R,
    write: W,
    buf: BytesMut,
    upgrade: RawUpgrade,
    engine: Arc<Engine>,
    shutdown: watch::Receiver<bool>,
    slot: G,
) where
    R: ReadSource + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    G: Send + 'static,
{
    let RawUpgrade {
        endpoint,
        request,
        principal,
        access,
        deflate,
        sockjs,
        peer,
        response,
    } = upgrade;
    let outbox = engine.broker.new_outbox();
    let outbound = super::deflate::OutboundDeflate::new(
        deflate,
        endpoint.deflate_threshold,
        endpoint.deflate_level,
    );
    // The writer sends the response first, then what is queued (the host may queue from
    // `RawOpen` on); the response stays outside the queue's bound and buffered bytes.
    let (queue, counters) = (outbox.clone(), engine.counters().clone());
    let heartbeat = engine.config.sockjs.heartbeat;
    let writer = tokio::spawn(async move {
        let mut write = write;
        write.write_all(&response).await?;
        drop(response);
        if sockjs {
            // SockJS frames (`o`, `a[...]`, `h`, `c[...]`) in text messages, uncompressed.
            super::sockjs::ws::run(write, queue, counters, heartbeat, false).await
        } else {
            writer::run(write, queue, Framing::PlainWebSocket, outbound, counters).await
        }
    });
    let mut decoder = MessageDecoder::new(endpoint.limits);
    if deflate.is_some() {
        // Inflated within the endpoint's message limit (1009 past it).
        decoder.enable_permessage_deflate();
    }
    let conn = engine
        .raw
        .open(engine.next_session_id(), endpoint.clone(), outbox);
    engine.emit(Event::RawOpen(RawOpen {
        conn: conn.id,
        endpoint: endpoint.path.clone(),
        remote_addr: Some(peer),
        query: request.query,
        headers: request.headers,
        subprotocol: request.subprotocol,
        user: principal,
    }));
    let state = RawConnection {
        engine,
        conn,
        decoder,
        keepalive: Keepalive::new(),
        access: access.map(Box::new),
        sockjs,
    };
    tokio::spawn(drive(read, buf, state, writer, shutdown, slot));
}

/// One raw connection's reader state.
struct RawConnection {
    engine: Arc<Engine>,
    conn: Arc<RawConn>,
    decoder: MessageDecoder,
    keepalive: Keepalive,
    /// With token authentication: what the client may do (boxed: absent without it).
    access: Option<Box<RawAccess>>,
    /// SockJS's `websocket` transport: client messages are SockJS frames (JSON strings).
    sockjs: bool,
}

/// A raw client's rights under token authentication (see [`crate::auth::endpoint_access`]).
#[derive(Debug, Clone)]
pub(crate) struct RawAccess {
    /// May send messages to the endpoint (publish to its path).
    pub may_send: bool,
    /// Who, for the refusal text.
    pub who: String,
    /// The token's `exp` plus the leeway (seconds since the Unix epoch); `None` anonymous.
    pub valid_until: Option<u64>,
}

impl RawAccess {
    /// Whether the client may send a message to the endpoint at `path` now; else why not
    /// (counted in `auth_expired` or `auth_denied`), for its 1008 close.
    pub(crate) fn check_send(
        &self,
        path: &str,
        counters: &crate::broker::Counters,
    ) -> Result<(), String> {
        if self
            .valid_until
            .is_some_and(|until| crate::auth::unix_now() >= until)
        {
            stats::add(&counters.auth_expired, 1);
            return Err("token expired".into());
        }
        if self.may_send {
            return Ok(());
        }
        stats::add(&counters.auth_denied, 1);
        Err(format!(
            "permission denied: {} may not send to {path}",
            self.who
        ))
    }
}

/// Where a raw connection's input processing stands.
enum RawProgress {
    /// Keep reading.
    Reading,
    /// Flow control: its last message left these queues congested; read nothing more until
    /// each is relieved (or closed as stuck).
    Throttled(Congestion),
    /// The connection is closing.
    Closing,
}

impl RawConnection {
    /// Handles every complete message in `buf`, up to one that leaves queues congested.
    fn process(&mut self, buf: &mut BytesMut) -> RawProgress {
        loop {
            let mut congestion = Vec::new();
            match self.decoder.decode(buf) {
                Ok(None) => return RawProgress::Reading,
                Ok(Some(WsEvent::Text(data))) if self.sockjs => {
                    if !self.on_sockjs_message(&data, &mut congestion) {
                        return RawProgress::Closing;
                    }
                }
                Ok(Some(WsEvent::Binary(_))) if self.sockjs => {
                    self.close(codes::UNSUPPORTED_DATA, "SockJS carries text messages only");
                    return RawProgress::Closing;
                }
                Ok(Some(WsEvent::Text(data))) if self.may_send() => {
                    self.on_message(data, false, &mut congestion);
                }
                Ok(Some(WsEvent::Binary(data))) if self.may_send() => {
                    self.on_message(data, true, &mut congestion);
                }
                Ok(Some(WsEvent::Text(_) | WsEvent::Binary(_))) => return RawProgress::Closing,
                Ok(Some(WsEvent::Ping(payload))) => {
                    if !self.push_control(Outbound::Pong(payload)) {
                        return RawProgress::Closing;
                    }
                }
                Ok(Some(WsEvent::Pong(_))) => {}
                Ok(Some(WsEvent::Close { code, reason })) => {
                    self.conn
                        .record_close(code.unwrap_or(codes::NO_STATUS_RECEIVED), &reason);
                    // Echo the peer's code (RFC 6455 §5.5.1); none received → 1000.
                    self.conn.outbox.close(CloseReason {
                        code: code.unwrap_or(codes::NORMAL),
                        ..CloseReason::normal()
                    });
                    return RawProgress::Closing;
                }
                Err(error) => {
                    tracing::debug!(%error, conn = self.conn.id, "raw websocket protocol error");
                    self.close(error.close_code, error.reason);
                    return RawProgress::Closing;
                }
            }
            if !congestion.is_empty() {
                return RawProgress::Throttled(congestion);
            }
        }
    }

    /// Whether the client may send (token authentication); if not, it is closed (1008).
    fn may_send(&self) -> bool {
        let Some(access) = self.access.as_deref() else {
            return true;
        };
        match access.check_send(&self.conn.endpoint.path, self.engine.counters()) {
            Ok(()) => true,
            Err(reason) => {
                self.close(codes::POLICY_VIOLATION, &reason);
                false
            }
        }
    }

    /// A SockJS frame from the client: each of its strings is one message. False when the
    /// connection closes (a malformed frame, or a message the client may not send).
    fn on_sockjs_message(&self, payload: &[u8], congestion: &mut Congestion) -> bool {
        if payload.is_empty() {
            return true;
        }
        let limit = self.conn.endpoint.limits.max_message_size.saturating_mul(6);
        let messages = match decode_each(payload, Shape::ArrayOrString, limit) {
            Ok(messages) => messages,
            Err(error) => {
                self.close(
                    codes::UNSUPPORTED_DATA,
                    &format!("broken SockJS frame: {error}"),
                );
                return false;
            }
        };
        for message in messages {
            if !self.may_send() {
                return false;
            }
            self.on_message(Bytes::from(message), false, congestion);
        }
        true
    }

    fn on_message(&self, data: Bytes, binary: bool, congestion: &mut Congestion) {
        handle_message(&self.engine, &self.conn, data, binary, congestion);
    }

    /// Closes with `code` and `reason` after what is queued.
    fn close(&self, code: u16, reason: &str) {
        self.conn.record_close(code, reason);
        self.conn
            .outbox
            .close(CloseReason::error(code, reason.to_owned()));
    }

    /// Queues a ping or pong; false when that overflowed the outbox (the connection is closing).
    fn push_control(&self, item: Outbound) -> bool {
        match self.conn.outbox.push_control(item) {
            Err(PushError::Overflow) => {
                self.conn.record_close(
                    codes::POLICY_VIOLATION,
                    "slow consumer: outbound queue full",
                );
                stats::count_overflow(self.engine.counters(), &self.conn.outbox);
                false
            }
            _ => true,
        }
    }

    fn next_deadline(&self) -> Instant {
        let times = KeepaliveTimes::of(&self.engine.config);
        let deadline = self
            .keepalive
            .deadline(times)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        match self.token_left() {
            Some(left) => deadline.min(Instant::now() + left),
            None => deadline,
        }
    }

    /// How long the connection's token still counts.
    fn token_left(&self) -> Option<Duration> {
        let until = self.access.as_deref()?.valid_until?;
        let at = std::time::UNIX_EPOCH + Duration::from_secs(until);
        Some(
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        )
    }

    /// Acts on expired timers; false when the connection is closing.
    fn on_timer(&mut self) -> bool {
        if self.token_left().is_some_and(|left| left.is_zero()) {
            stats::add(&self.engine.counters().auth_expired, 1);
            self.close(codes::POLICY_VIOLATION, "token expired");
            return false;
        }
        let times = KeepaliveTimes::of(&self.engine.config);
        match self.keepalive.due(times, Instant::now()) {
            KeepaliveDue::Nothing => true,
            KeepaliveDue::Ping => self.push_control(Outbound::Ping(Bytes::new())),
            KeepaliveDue::Idle => {
                self.close(codes::GOING_AWAY, "idle timeout");
                false
            }
        }
    }

    /// Forgets the connection and tells the host; its id is stale from here on.
    fn finish(&self) {
        finish(&self.engine, &self.conn);
    }
}

/// Forgets a raw connection (WebSocket or SockJS) and reports its `RawClose` to the host.
pub(crate) fn finish(engine: &Engine, conn: &Arc<RawConn>) {
    engine.raw.remove(conn);
    let (code, reason) = conn.close_reason();
    engine.emit(Event::RawClose(RawClose {
        conn: conn.id,
        code,
        reason,
    }));
}

/// Runs a raw connection until it ends, then lingers so the last frames arrive (as the STOMP
/// connections do). `slot` is released at the very end.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice in the long-lived future"
)]
fn drive<S: ReadSource + 'static, G: Send + 'static>(
    mut source: S,
    mut buf: BytesMut,
    mut state: RawConnection,
    mut writer: JoinHandle<io::Result<()>>,
    mut shutdown: watch::Receiver<bool>,
    slot: G,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut progress = if buf.is_empty() {
            RawProgress::Reading
        } else {
            state.process(&mut buf)
        };
        let mut writer_done = false;
        let mut eof = false;
        let mut shutdown_open = true;
        let outbox = state.conn.outbox.clone();
        let counters = state.engine.counters().clone();
        // Flow control: a pause, and when to look again for stuck subscribers.
        let mut paused: Option<Box<(Paused, Instant)>> = None;
        loop {
            match std::mem::replace(&mut progress, RawProgress::Reading) {
                RawProgress::Closing => break,
                RawProgress::Throttled(congested) => {
                    let pause = Paused::new(congested, &counters);
                    let deadline = pause.deadline();
                    paused = Some(Box::new((pause, deadline)));
                }
                RawProgress::Reading => {}
            }
            if buf.is_empty() {
                buf = BytesMut::new();
            }
            let deadline = match &paused {
                Some(pause) => pause.1,
                None => state.next_deadline(),
            };
            tokio::select! {
                biased;
                _ = &mut writer => { writer_done = true; break; }
                // Closed from elsewhere (slow consumer, host close): stop reading.
                _ = outbox.closing() => break,
                changed = shutdown.changed(), if shutdown_open => {
                    if changed.is_err() || *shutdown.borrow() {
                        state.close(codes::GOING_AWAY, "server shutting down");
                        break;
                    }
                    shutdown_open = changed.is_ok();
                }
                () = async { paused.as_ref().expect("paused").0.relieved().await }, if paused.is_some() => {
                    paused = None;
                    // The pause was ours: silence during it does not count against the client.
                    state.keepalive.heard();
                    progress = state.process(&mut buf);
                }
                _ = sleep_until(deadline) => match paused.as_mut() {
                    Some(pause) => {
                        if pause.0.recheck(&counters) {
                            paused = None;
                            state.keepalive.heard();
                            progress = state.process(&mut buf);
                        } else {
                            pause.1 = pause.0.deadline();
                        }
                    }
                    None if !state.on_timer() => break,
                    None => {}
                },
                read = source.read_into(&mut buf), if paused.is_none() => match read {
                    Ok(0) | Err(_) => { eof = true; break; }
                    Ok(n) => {
                        stats::add(&counters.bytes_in, n as u64);
                        state.keepalive.heard();
                        progress = state.process(&mut buf);
                    }
                },
            }
        }
        state.finish();
        if !writer_done {
            // Make sure the writer ends after its last frame.
            outbox.close(CloseReason::normal());
            if timeout(LINGER, &mut writer).await.is_err() {
                writer.abort();
                eof = true;
            }
        }
        if !eof {
            drain_until_peer_closes(&mut source).await;
        }
        drop(slot);
    }
}

/// What a raw endpoint does with a message its client sent (over WebSocket or SockJS): echo
/// it, broadcast it to the endpoint's other clients, or hand it to the host.
pub(crate) fn handle_message(
    engine: &Engine,
    conn: &Arc<RawConn>,
    data: Bytes,
    binary: bool,
    congestion: &mut Congestion,
) {
    let counters = engine.counters();
    stats::add(&counters.messages_in, 1);
    match conn.endpoint.behaviour {
        RawBehaviour::Echo => {
            if conn.deliver_noting(encode_data_frame(&data, binary), counters, congestion) {
                stats::add(&counters.messages_out, 1);
            }
        }
        RawBehaviour::Broadcast => {
            let frame = encode_data_frame(&data, binary);
            let delivered = engine.raw.broadcast_from(conn, frame, counters, congestion);
            stats::add(&counters.messages_out, delivered as u64);
        }
        RawBehaviour::Host => {
            // A full event queue drops it (counted, reported as an Overflow event).
            engine.emit(Event::RawMessage(RawMessage {
                conn: conn.id,
                data,
                binary,
            }));
        }
    }
}
