//! The reading side of a connection and its lifecycle: feeds bytes through the codecs into the
//! session, answers pings, enforces the connect, heart-beat and idle timeouts, and shuts down
//! without losing the last frames (it keeps draining input until the peer closes, so the
//! kernel never resets a connection that still has a final ERROR to deliver).

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

use super::source::ReadSource;
use crate::broker::outbox::{CloseReason, Outbound, Outbox};
use crate::broker::stats;
use crate::engine::Engine;
use crate::hooks::ConnectDecision;
use crate::stomp::decoder::{Decoded, Decoder, DecoderLimits};
use crate::stomp::session::{Answer, Flow, Question, Session};
use crate::ws::codes;
use crate::ws::decoder::{MessageDecoder, WsEvent, WsLimits};

/// How long a closing connection may take to flush and to see the peer close.
const LINGER: Duration = Duration::from_secs(3);

/// How bytes from the peer become STOMP frames.
pub(crate) enum Inbound {
    /// WebSocket messages carrying STOMP (frames may span messages, messages may hold several).
    WebSocket {
        decoder: MessageDecoder,
        stomp_buf: BytesMut,
    },
    /// STOMP directly on the byte stream.
    Raw,
}

impl Inbound {
    pub(crate) fn websocket(engine: &Engine) -> Inbound {
        let max = engine.config.max_ws_message_size();
        Inbound::WebSocket {
            decoder: MessageDecoder::new(WsLimits {
                max_frame_size: max,
                max_message_size: max,
            }),
            stomp_buf: BytesMut::new(),
        }
    }
}

/// Asks the host a session's question. A panicking hook refuses rather than unwinding into
/// the runtime.
fn ask_host(engine: &Engine, question: Question) -> Answer {
    let hooks = &engine.hooks;
    match question {
        Question::Connect(request) => Answer::Connect(
            catch_unwind(AssertUnwindSafe(|| hooks.decide_connect(&request))).unwrap_or_else(
                |_| {
                    tracing::error!("connect hook panicked");
                    ConnectDecision::Reject("internal error in the connect hook".into())
                },
            ),
        ),
        Question::Subscribe(request) => Answer::Subscribe(
            catch_unwind(AssertUnwindSafe(|| hooks.authorize_subscribe(&request))).unwrap_or_else(
                |_| {
                    tracing::error!("subscribe hook panicked");
                    Err("internal error in the subscribe hook".into())
                },
            ),
        ),
    }
}

/// One connection's reader state.
pub(crate) struct Connection {
    engine: Arc<Engine>,
    session: Session,
    outbox: Arc<Outbox>,
    stomp: Decoder,
    inbound: Inbound,
    started: Instant,
    last_read: Instant,
    ping_sent: bool,
}

impl Connection {
    pub(crate) fn new(
        engine: Arc<Engine>,
        session: Session,
        outbox: Arc<Outbox>,
        inbound: Inbound,
    ) -> Connection {
        let config = &engine.config;
        let stomp = Decoder::new(DecoderLimits {
            max_frame_size: config.max_frame_size,
            max_headers: config.max_headers,
            max_header_length: config.max_header_length,
        });
        let now = Instant::now();
        Connection {
            engine,
            session,
            outbox,
            stomp,
            inbound,
            started: now,
            last_read: now,
            ping_sent: false,
        }
    }

    fn is_websocket(&self) -> bool {
        matches!(self.inbound, Inbound::WebSocket { .. })
    }

    /// Handles everything complete in `buf`; false once the connection stops reading.
    fn process(&mut self, buf: &mut BytesMut) -> bool {
        match &mut self.inbound {
            Inbound::Raw => self.process_stomp(buf),
            Inbound::WebSocket { .. } => self.process_websocket(buf),
        }
    }

    fn process_websocket(&mut self, buf: &mut BytesMut) -> bool {
        loop {
            let Inbound::WebSocket { decoder, stomp_buf } = &mut self.inbound else {
                unreachable!("websocket inbound")
            };
            match decoder.decode(buf) {
                Ok(None) => return true,
                Ok(Some(WsEvent::Text(payload) | WsEvent::Binary(payload))) => {
                    let mut stomp_buf = std::mem::take(stomp_buf);
                    stomp_buf.extend_from_slice(&payload);
                    let go_on = self.process_stomp(&mut stomp_buf);
                    if !stomp_buf.is_empty()
                        && let Inbound::WebSocket { stomp_buf: slot, .. } = &mut self.inbound
                    {
                        *slot = stomp_buf;
                    }
                    if !go_on {
                        return false;
                    }
                }
                Ok(Some(WsEvent::Ping(payload))) => {
                    self.outbox.push_control(Outbound::Pong(payload))
                }
                Ok(Some(WsEvent::Pong(_))) => {}
                Ok(Some(WsEvent::Close { code, .. })) => {
                    // Echo the peer's code (RFC 6455 §5.5.1); no code received → empty-coded 1000.
                    let code = code.unwrap_or(codes::NORMAL);
                    self.outbox.close(CloseReason {
                        code,
                        ..CloseReason::normal()
                    });
                    self.session.closed();
                    return false;
                }
                Err(error) => {
                    tracing::debug!(%error, "websocket protocol error");
                    // A STOMP ERROR first (as for STOMP-level errors), so that clients learn
                    // why, e.g. that a frame exceeded the size limit; then the close.
                    self.outbox.close(CloseReason::error(
                        error.close_code,
                        format!("websocket error: {error}"),
                    ));
                    self.session.closed();
                    return false;
                }
            }
        }
    }

    fn process_stomp(&mut self, buf: &mut BytesMut) -> bool {
        loop {
            match self.stomp.decode(buf) {
                Ok(None) => return true,
                Ok(Some(Decoded::Heartbeat)) => {}
                Ok(Some(Decoded::Frame(frame))) => {
                    if !self.on_frame(frame) {
                        return false;
                    }
                }
                Err(error) => {
                    self.session
                        .protocol_error(format!("malformed frame: {error}"));
                    return false;
                }
            }
        }
    }

    fn on_frame(&mut self, frame: crate::stomp::Frame) -> bool {
        let mut flow = self.session.handle(frame);
        loop {
            match flow {
                Flow::Continue => break,
                Flow::Close => return false,
                Flow::Ask(question) => flow = self.session.answer(ask_host(&self.engine, question)),
            }
        }
        if self.session.is_connected() && self.stomp.version() != Some(self.session.version()) {
            self.stomp.set_version(self.session.version());
        }
        true
    }

    /// The next instant a timer needs attention.
    fn next_deadline(&self) -> Instant {
        let config = &self.engine.config;
        let mut deadline = Instant::now() + Duration::from_secs(3600);
        if !self.session.is_connected() {
            deadline = deadline.min(self.started + config.connect_timeout);
        }
        if let Some(t) = self.session.receive_timeout() {
            deadline = deadline.min(self.last_read + t);
        }
        if self.is_websocket() {
            if !config.idle_timeout.is_zero() {
                deadline = deadline.min(self.last_read + config.idle_timeout);
            }
            if !config.ws_ping_interval.is_zero() && !self.ping_sent {
                deadline = deadline.min(self.last_read + config.ws_ping_interval);
            }
        }
        deadline
    }

    /// Acts on expired timers; false once the connection stops reading.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        let config = &self.engine.config;
        if !self.session.is_connected() && now >= self.started + config.connect_timeout {
            let secs = config.connect_timeout.as_secs_f32();
            self.session.terminate(
                codes::POLICY_VIOLATION,
                format!("no CONNECT frame within {secs} s"),
            );
            return false;
        }
        if let Some(t) = self.session.receive_timeout()
            && now >= self.last_read + t
        {
            let ms = t.as_millis();
            self.session.terminate(
                codes::POLICY_VIOLATION,
                format!("heart-beat timeout: nothing received for {ms} ms"),
            );
            return false;
        }
        if self.is_websocket() {
            if !config.idle_timeout.is_zero() && now >= self.last_read + config.idle_timeout {
                self.session.terminate(codes::GOING_AWAY, "idle timeout");
                return false;
            }
            if !config.ws_ping_interval.is_zero()
                && !self.ping_sent
                && now >= self.last_read + config.ws_ping_interval
            {
                self.outbox.push_control(Outbound::Ping(Bytes::new()));
                self.ping_sent = true;
            }
        }
        true
    }
}

/// Runs a connection until it ends: reads, dispatches, then lingers so the last frames arrive.
pub(crate) async fn drive<S: ReadSource>(
    mut source: S,
    mut buf: BytesMut,
    mut conn: Connection,
    mut writer: JoinHandle<io::Result<()>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let counters = conn.engine.counters().clone();
    let mut reading = buf.is_empty() || conn.process(&mut buf);
    let mut writer_done = false;
    let mut eof = false;
    let mut shutdown_open = true;
    while reading {
        if buf.is_empty() {
            buf = BytesMut::new();
        }
        let deadline = conn.next_deadline();
        tokio::select! {
            biased;
            _ = &mut writer => { writer_done = true; break; }
            changed = shutdown.changed(), if shutdown_open => {
                if changed.is_err() || *shutdown.borrow() {
                    conn.session.terminate(codes::GOING_AWAY, "server shutting down");
                    reading = false;
                }
                shutdown_open = changed.is_ok();
            }
            _ = sleep_until(deadline) => reading = conn.on_timer(),
            read = source.read_into(&mut buf) => match read {
                Ok(0) | Err(_) => { eof = true; break; }
                Ok(n) => {
                    stats::add(&counters.bytes_in, n as u64);
                    conn.last_read = Instant::now();
                    conn.ping_sent = false;
                    reading = conn.process(&mut buf);
                }
            },
        }
    }
    conn.session.closed();
    if !writer_done {
        // The peer is gone or we are closing: make sure the writer ends after its last frame.
        conn.outbox.close(CloseReason::normal());
        if timeout(LINGER, &mut writer).await.is_err() {
            writer.abort();
        }
    }
    if !eof {
        let _ = timeout(LINGER, async {
            let mut sink = BytesMut::new();
            while let Ok(n) = source.read_into(&mut sink).await {
                if n == 0 {
                    break;
                }
                sink.clear();
            }
        })
        .await;
    }
}
