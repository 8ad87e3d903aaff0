//! The reading side of a connection and its lifecycle: feeds bytes through the codecs into the
//! session, answers pings, enforces the connect, heart-beat and idle timeouts, and shuts down
//! without losing the last frames (it keeps draining input until the peer closes, so the
//! kernel never resets a connection that still has a final ERROR to deliver).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, sleep_until, timeout};

use super::keepalive::{Keepalive, KeepaliveDue, KeepaliveTimes};
use super::output::Output;
use super::paused::Paused;
use super::source::ReadSource;
use crate::broker::outbox::{CloseReason, Outbound, PushError};
use crate::broker::stats;
use crate::engine::{Asked, Engine};
use crate::executor::Executor;
use crate::hooks::Answer;
use crate::relay::link::{self, Backlog};
use crate::session::{AppCall, AppDone, DurableWait, Flow, Session, Throttle};
use crate::sockjs::frame::{DecodeError, Shape, decode_messages};
use crate::stomp::decoder::{Decoded, Decoder};
use crate::ws::codes;
use crate::ws::decoder::{MessageDecoder, WsEvent, WsLimits};

/// How long a closing connection may take to flush and to see the peer close.
pub(super) const LINGER: Duration = Duration::from_secs(3);

/// How bytes from the peer become STOMP frames.
pub(crate) enum Inbound {
    /// WebSocket messages carrying STOMP (frames may span messages, messages may hold several).
    WebSocket {
        decoder: MessageDecoder,
        stomp_buf: BytesMut,
        /// SockJS `websocket` transport: each message is a JSON string or array of strings
        /// carrying the STOMP bytes.
        sockjs: bool,
    },
    /// STOMP directly on the byte stream.
    Raw,
}

impl Inbound {
    /// WebSocket input. `deflate`: permessage-deflate was negotiated (compressed messages are
    /// accepted); `sockjs`: the messages carry SockJS-encoded STOMP.
    pub(crate) fn websocket(engine: &Engine, deflate: bool, sockjs: bool) -> Inbound {
        let max = engine.config.max_ws_message_size();
        // JSON escaping can make a frame up to six times longer (`\u0000`).
        let max = if sockjs { max.saturating_mul(6) } else { max };
        let mut decoder = MessageDecoder::new(WsLimits {
            max_frame_size: max,
            max_message_size: max,
        });
        if deflate {
            decoder.enable_permessage_deflate();
        }
        Inbound::WebSocket {
            decoder,
            stomp_buf: BytesMut::new(),
            sockjs,
        }
    }
}

/// Appends the STOMP bytes of a SockJS WebSocket message (empty messages are ignored).
fn decode_sockjs_message(payload: &[u8], out: &mut BytesMut) -> Result<(), DecodeError> {
    if payload.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    decode_messages(payload, Shape::ArrayOrString, usize::MAX, &mut bytes)?;
    out.extend_from_slice(&bytes);
    Ok(())
}

/// One connection's reader state (the engine and the outbox are the session's).
pub(crate) struct Connection {
    session: Session,
    stomp: Decoder,
    inbound: Inbound,
    started: Instant,
    keepalive: Keepalive,
    /// A host decision or broker verdict being waited for, and until when (boxed: rarely there).
    waiting: Option<Box<(Awaited, Instant)>>,
}

/// What a paused connection waits for before it handles the next frame.
enum Awaited {
    /// The host's answer to a question asked through the event queue.
    Host(oneshot::Receiver<Answer>),
    /// Relay mode: the broker's verdict on the session's new broker connection.
    Broker(link::Connected),
    /// Flow control: the congested subscribers its messages went to.
    Subscribers(Paused),
    /// Flow control, relay mode: room on the session's link to the message broker.
    BrokerLink(Backlog),
    /// A durable store committing the session's persisted messages.
    Durable(DurableWait),
    /// An application handler running on a callback thread.
    App(Pin<Box<dyn Future<Output = AppDone> + Send>>),
}

/// How a pause ended.
enum Resumed {
    /// The host answered (`None`: the question was dropped unanswered).
    Host(Option<Answer>),
    /// The broker connection is up, or why not.
    Broker(Result<(), String>),
    /// The throttle is lifted.
    Relieved,
    /// The application handler returned.
    App(AppDone),
}

/// Runs an application handler call on the session's callback lane (waiting for room there:
/// a client whose handler calls pile up stops being read, like any throttled publisher).
async fn run_app_call(executor: Arc<Executor>, call: AppCall) -> AppDone {
    let (tx, rx) = oneshot::channel();
    let key = call.session();
    let job = move || {
        let _ = tx.send(call.run());
    };
    if !executor.run(key, Box::new(job)).await {
        return AppDone::not_run("the server is stopping");
    }
    rx.await
        .unwrap_or_else(|_| AppDone::not_run("the server stopped before the handler ran"))
}

impl Awaited {
    async fn resolved(&mut self) -> Resumed {
        match self {
            Awaited::Host(answer) => Resumed::Host(answer.await.ok()),
            Awaited::Broker(verdict) => Resumed::Broker(
                verdict
                    .await
                    .unwrap_or_else(|_| Err("the message broker connection failed".into())),
            ),
            Awaited::Subscribers(paused) => {
                paused.relieved().await;
                Resumed::Relieved
            }
            Awaited::BrokerLink(backlog) => {
                backlog.drained().await;
                Resumed::Relieved
            }
            Awaited::Durable(wait) => {
                wait.reached().await;
                Resumed::Relieved
            }
            Awaited::App(call) => Resumed::App(call.await),
        }
    }
}

/// Where a connection's input processing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Keep reading.
    Reading,
    /// Paused until the host decides (see `Connection::waiting`).
    Waiting,
    /// Done reading: the session ended.
    Stopped,
}

impl Connection {
    pub(crate) fn new(session: Session, inbound: Inbound) -> Connection {
        let config = &session.engine().config;
        let stomp = Decoder::new(config.frame_limits.clone());
        let now = Instant::now();
        Connection {
            session,
            stomp,
            inbound,
            started: now,
            keepalive: Keepalive::new(),
            waiting: None,
        }
    }

    /// Pings and the idle timeout apply to WebSocket connections only.
    fn keepalive_times(&self) -> KeepaliveTimes {
        match self.inbound {
            Inbound::WebSocket { .. } => KeepaliveTimes::of(&self.session.engine().config),
            Inbound::Raw => KeepaliveTimes::OFF,
        }
    }

    /// Queues a ping or pong; false when that overflowed the outbox (the session is closing).
    fn push_control(&mut self, item: Outbound) -> bool {
        let outbox = self.session.outbox();
        match outbox.push_control(item) {
            Err(PushError::Overflow) => {
                stats::count_overflow(self.session.engine().counters(), outbox);
                self.session.closed();
                false
            }
            _ => true,
        }
    }

    /// Handles everything complete in `buf` (and in the STOMP buffer left from before).
    fn process(&mut self, buf: &mut BytesMut) -> Progress {
        match &mut self.inbound {
            Inbound::Raw => self.process_stomp(buf),
            Inbound::WebSocket { stomp_buf, .. } => {
                // Frames left behind by a pause for a host decision come first.
                let mut pending = std::mem::take(stomp_buf);
                let progress = self.process_stomp(&mut pending);
                self.keep_stomp_buf(pending);
                match progress {
                    Progress::Reading => self.process_websocket(buf),
                    other => other,
                }
            }
        }
    }

    fn keep_stomp_buf(&mut self, leftover: BytesMut) {
        if !leftover.is_empty()
            && let Inbound::WebSocket { stomp_buf, .. } = &mut self.inbound
        {
            *stomp_buf = leftover;
        }
    }

    fn process_websocket(&mut self, buf: &mut BytesMut) -> Progress {
        loop {
            let Inbound::WebSocket {
                decoder,
                stomp_buf,
                sockjs,
            } = &mut self.inbound
            else {
                unreachable!("websocket inbound")
            };
            let sockjs = *sockjs;
            match decoder.decode(buf) {
                Ok(None) => return Progress::Reading,
                Ok(Some(WsEvent::Text(payload) | WsEvent::Binary(payload))) => {
                    let mut pending = std::mem::take(stomp_buf);
                    if sockjs {
                        if let Err(error) = decode_sockjs_message(&payload, &mut pending) {
                            self.session.terminate(
                                codes::INVALID_PAYLOAD,
                                format!("sockjs message: {error}"),
                            );
                            return Progress::Stopped;
                        }
                    } else {
                        pending.extend_from_slice(&payload);
                    }
                    let progress = self.process_stomp(&mut pending);
                    self.keep_stomp_buf(pending);
                    if progress != Progress::Reading {
                        return progress;
                    }
                }
                Ok(Some(WsEvent::Ping(payload))) => {
                    if !self.push_control(Outbound::Pong(payload)) {
                        return Progress::Stopped;
                    }
                }
                Ok(Some(WsEvent::Pong(_))) => {}
                Ok(Some(WsEvent::Close { code, .. })) => {
                    // Echo the peer's code (RFC 6455 §5.5.1); none received → 1000.
                    let code = code.unwrap_or(codes::NORMAL);
                    self.session.outbox().close(CloseReason {
                        code,
                        ..CloseReason::normal()
                    });
                    self.session.closed();
                    return Progress::Stopped;
                }
                Err(error) => {
                    tracing::debug!(%error, "websocket protocol error");
                    // A STOMP ERROR first (as for STOMP-level errors), so that clients learn
                    // why, e.g. that a frame exceeded the size limit; then the close.
                    self.session.outbox().close(CloseReason::error(
                        error.close_code,
                        format!("websocket error: {error}"),
                    ));
                    self.session.closed();
                    return Progress::Stopped;
                }
            }
        }
    }

    fn process_stomp(&mut self, buf: &mut BytesMut) -> Progress {
        loop {
            match self.stomp.decode(buf) {
                Ok(None) => return Progress::Reading,
                Ok(Some(Decoded::Heartbeat)) => {}
                Ok(Some(Decoded::Frame(frame))) => {
                    let flow = self.session.handle(frame);
                    let progress = self.follow(flow);
                    if progress != Progress::Reading {
                        return progress;
                    }
                }
                Err(error) => {
                    self.session
                        .protocol_error(format!("malformed frame: {error}"));
                    return Progress::Stopped;
                }
            }
        }
    }

    /// Acts on what the session asked for after a frame or an answer.
    fn follow(&mut self, mut flow: Flow) -> Progress {
        loop {
            match flow {
                Flow::Continue => break,
                Flow::Close => return Progress::Stopped,
                Flow::OpenRelay(open) => {
                    let engine = self.session.engine().clone();
                    let Some(relay) = engine.relay.clone() else {
                        flow = self
                            .session
                            .broker_connected(Err("relay mode is off".into()));
                        continue;
                    };
                    // The broker link answers (or fails) within its own connect timeout; the
                    // margin only guards against a link that never does.
                    let bound = relay.config.connect_timeout + Duration::from_secs(5);
                    let outbox = self.session.outbox().clone();
                    let counters = engine.counters().clone();
                    let (session_link, verdict) =
                        link::open(relay, outbox, counters, open.version, open.session);
                    self.session.attach_relay(session_link);
                    let deadline = Instant::now() + bound;
                    self.waiting = Some(Box::new((Awaited::Broker(verdict), deadline)));
                    return Progress::Waiting;
                }
                Flow::Throttle(throttle) => {
                    self.sync_version();
                    let counters = self.session.engine().counters();
                    let waiting = match throttle {
                        Throttle::Subscribers(congested) => {
                            let paused = Paused::new(congested, counters);
                            let deadline = paused.deadline();
                            (Awaited::Subscribers(paused), deadline)
                        }
                        Throttle::Broker(backlog) => {
                            stats::add(&counters.publishers_paused, 1);
                            // The link has its own timeouts; a dead link frees its slots at once.
                            let far = Instant::now() + Duration::from_secs(3600);
                            (Awaited::BrokerLink(backlog), far)
                        }
                        Throttle::Durable(wait) => {
                            // The store retries a failing commit on its own and refuses new
                            // messages meanwhile; the client waits as for any receipt.
                            let far = Instant::now() + Duration::from_secs(3600);
                            (Awaited::Durable(wait), far)
                        }
                        Throttle::Cluster(wait) => {
                            // The link releases the wait itself when the engine does not
                            // confirm in time or is lost.
                            let far = Instant::now() + Duration::from_secs(3600);
                            (Awaited::Durable(wait), far)
                        }
                    };
                    self.waiting = Some(Box::new(waiting));
                    return Progress::Waiting;
                }
                Flow::App(call) => {
                    let executor = self.session.engine().executor.clone();
                    // A handler has no deadline: the client waits for it like for a receipt.
                    let far = Instant::now() + Duration::from_secs(3600);
                    let running = Box::pin(run_app_call(executor, call));
                    self.waiting = Some(Box::new((Awaited::App(running), far)));
                    return Progress::Waiting;
                }
                Flow::Ask(question) => match self.session.engine().ask(self.session.id(), question)
                {
                    Asked::Now(answer) => flow = self.session.answer(answer),
                    Asked::Later(receiver) => {
                        let deadline =
                            Instant::now() + self.session.engine().config.decision_timeout;
                        self.waiting = Some(Box::new((Awaited::Host(receiver), deadline)));
                        return Progress::Waiting;
                    }
                },
            }
        }
        self.sync_version();
        Progress::Reading
    }

    /// Frames after CONNECT are decoded with the negotiated version's escaping.
    fn sync_version(&mut self) {
        if self.session.is_connected() && self.stomp.version() != Some(self.session.version()) {
            self.stomp.set_version(self.session.version());
        }
    }

    /// A pause ran into its deadline: a host decision that did not come, a relay connection
    /// that did not answer, or throttling subscribers that may be stuck.
    fn on_wait_deadline(&mut self) -> Progress {
        if let Some(waiting) = self.waiting.as_mut()
            && let Awaited::App(_) = &waiting.0
        {
            waiting.1 = Instant::now() + Duration::from_secs(3600);
            return Progress::Waiting;
        }
        if let Some(waiting) = self.waiting.as_mut()
            && let Awaited::Subscribers(paused) = &mut waiting.0
        {
            if paused.recheck(self.session.engine().counters()) {
                return self.resume(Resumed::Relieved);
            }
            waiting.1 = paused.deadline();
            return Progress::Waiting;
        }
        let secs = self.session.engine().config.decision_timeout.as_secs_f32();
        let why = format!("no decision from the host within {secs} s");
        match self.session.engine().abandon(self.session.id(), &why) {
            Some(refusal) => self.resume(Resumed::Host(Some(refusal))),
            // A relay wait (never registered with the host) that overran.
            None if self.session.awaits_broker() => self.resume(Resumed::Broker(Err(
                "the message broker did not answer".into(),
            ))),
            None => Progress::Waiting, // answered just now: the channel has it
        }
    }

    /// Completes a paused frame with what ended the pause.
    fn resume(&mut self, resumed: Resumed) -> Progress {
        self.waiting = None;
        // The pause was ours: silence during it does not count against the client.
        self.keepalive.heard();
        let flow = match resumed {
            Resumed::Host(Some(answer)) => self.session.answer(answer),
            Resumed::Host(None) => {
                let engine = self.session.engine().clone();
                match engine.abandon(self.session.id(), "the host did not decide") {
                    Some(refusal) => self.session.answer(refusal),
                    None => {
                        self.session.closed();
                        return Progress::Stopped;
                    }
                }
            }
            Resumed::Broker(verdict) => self.session.broker_connected(verdict),
            Resumed::Relieved => self.session.relieved(),
            Resumed::App(done) => self.session.app_done(done),
        };
        self.follow(flow)
    }

    /// The next instant a timer needs attention.
    fn next_deadline(&self) -> Instant {
        let config = &self.session.engine().config;
        let mut deadline = Instant::now() + Duration::from_secs(3600);
        if !self.session.is_connected() {
            deadline = deadline.min(self.started + config.connect_timeout);
        }
        if let Some(t) = self.session.receive_timeout() {
            deadline = deadline.min(self.keepalive.last_read() + t);
        }
        if let Some(expiry) = self.session.token_deadline() {
            let left = expiry
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            deadline = deadline.min(Instant::now() + left);
        }
        match self.keepalive.deadline(self.keepalive_times()) {
            Some(keepalive) => deadline.min(keepalive),
            None => deadline,
        }
    }

    /// Acts on expired timers.
    fn on_timer(&mut self) -> Progress {
        if self.on_timer_keeps_reading() {
            Progress::Reading
        } else {
            Progress::Stopped
        }
    }

    fn on_timer_keeps_reading(&mut self) -> bool {
        let now = Instant::now();
        let config = &self.session.engine().config;
        if !self.session.is_connected() && now >= self.started + config.connect_timeout {
            let secs = config.connect_timeout.as_secs_f32();
            self.session.terminate(
                codes::POLICY_VIOLATION,
                format!("no CONNECT frame within {secs} s"),
            );
            return false;
        }
        if let Some(t) = self.session.receive_timeout()
            && now >= self.keepalive.last_read() + t
        {
            let ms = t.as_millis();
            self.session.terminate(
                codes::POLICY_VIOLATION,
                format!("heart-beat timeout: nothing received for {ms} ms"),
            );
            return false;
        }
        if self
            .session
            .token_deadline()
            .is_some_and(|expiry| std::time::SystemTime::now() >= expiry)
            && !self.session.deadline_passed()
        {
            return false;
        }
        let times = self.keepalive_times();
        match self.keepalive.due(times, now) {
            KeepaliveDue::Nothing => true,
            KeepaliveDue::Ping => self.push_control(Outbound::Ping(Bytes::new())),
            KeepaliveDue::Idle => {
                self.session.terminate(codes::GOING_AWAY, "idle timeout");
                false
            }
        }
    }
}

/// Runs a connection until it ends: reads, dispatches, then lingers so the last frames arrive.
/// `slot` (the connection's place under the connection limit) is released at the very end.
///
/// The future is the connection's task for its whole life, so it is kept small: it is an
/// `async move` block rather than an `async fn` (whose arguments would be stored twice, as
/// arguments and as the locals they are moved into), and everything that lives only briefly
/// stays out of the idle state.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice in the long-lived future"
)]
pub(crate) fn drive<S: ReadSource + 'static, O: Output + 'static, G: Send + 'static>(
    mut source: S,
    mut buf: BytesMut,
    mut conn: Connection,
    mut writer: O,
    mut shutdown: watch::Receiver<bool>,
    slot: G,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let mut progress = if buf.is_empty() {
            Progress::Reading
        } else {
            conn.process(&mut buf)
        };
        let mut writer_done = false;
        // The last pass of the loop wrote a batch.
        let mut wrote = false;
        let mut eof = false;
        let mut shutdown_open = true;
        while progress != Progress::Stopped {
            if buf.is_empty() {
                buf = BytesMut::new();
            }
            let reading = progress == Progress::Reading;
            let deadline = match &conn.waiting {
                Some(waiting) => waiting.1,
                None => conn.next_deadline(),
            };
            let yield_first = std::mem::take(&mut wrote) && writer.has_queued();
            let wake = writer
                .heartbeat_due()
                .map_or(deadline, |due| due.min(deadline));
            tokio::select! {
                biased;
                // After a batch, the other branches get a turn before the next one: with a
                // queue that refills as fast as it drains, reading would wait otherwise.
                ended = async {
                    if yield_first {
                        tokio::task::yield_now().await;
                    }
                    writer.step().await
                } => {
                    if ended {
                        writer_done = true;
                        break;
                    }
                    wrote = true;
                }
                // Closed from elsewhere (slow consumer, host disconnect): stop reading; the writer
                // gets LINGER to flush, so a peer that never reads cannot pin the connection.
                _ = conn.session.outbox().closing() => {
                    conn.session.closed();
                    progress = Progress::Stopped;
                }
                changed = shutdown.changed(), if shutdown_open => {
                    if changed.is_err() || *shutdown.borrow() {
                        conn.session.terminate(codes::GOING_AWAY, "server shutting down");
                        progress = Progress::Stopped;
                    }
                    shutdown_open = changed.is_ok();
                }
                resumed = async { conn.waiting.as_mut().expect("paused").0.resolved().await }, if !reading => {
                    progress = conn.resume(resumed);
                    if progress == Progress::Reading {
                        progress = conn.process(&mut buf);
                    }
                }
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    if writer.heartbeat_due().is_some_and(|due| now >= due) {
                        writer.heartbeat();
                    }
                    if now < deadline {
                        continue;
                    }
                    progress = if reading {
                        conn.on_timer()
                    } else {
                        conn.on_wait_deadline()
                    };
                    if progress == Progress::Reading {
                        progress = conn.process(&mut buf);
                    }
                }
                read = source.read_into(&mut buf), if reading => match read {
                    Ok(0) | Err(_) => { eof = true; break; }
                    Ok(n) => {
                        stats::add(&conn.session.engine().counters().bytes_in, n as u64);
                        conn.keepalive.heard();
                        progress = conn.process(&mut buf);
                    }
                },
            }
        }
        if conn.waiting.take().is_some() {
            conn.session
                .engine()
                .abandon(conn.session.id(), "connection closed");
        }
        conn.session.closed();
        if !writer_done {
            // The peer is gone or we are closing: make sure the writer ends after its last frame.
            conn.session.outbox().close(CloseReason::normal());
            if timeout(LINGER, writer.finish()).await.is_err() {
                // The peer does not read; waiting for it to close as well would only hold the slot.
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

/// Reads and discards input until the peer closes (or `LINGER` passes), so the kernel never
/// resets a connection whose last frames (a final ERROR, a close) are still on their way.
pub(super) async fn drain_until_peer_closes<S: ReadSource>(source: &mut S) {
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
