//! The STOMP session state machine: decoded frames in, broker calls and outbound frames out.
//!
//! It never touches a socket. The transport feeds it frames with [`Session::handle`]; whatever
//! must go back to the client is queued on the session's [`Outbox`]. When the host has to decide
//! something (may this client connect, may it subscribe), `handle` returns [`Flow::Ask`] and the
//! transport hands the answer back with [`Session::answer`]; the host may take its time, and the
//! transport reads no further frames meanwhile, so frame order is kept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::encoder::encode;
use super::frame::{Command, Frame};
use super::version::{Version, negotiate};
use crate::broker::outbox::{CloseReason, Outbound, Outbox, PushError};
use crate::broker::{AckMode, Message, SlowConsumerPolicy, SubscribeSpec, destination, stats};
use crate::engine::Engine;
use crate::events::Event;
use crate::hooks::{
    AppMessage, ConnectDecision, ConnectRequest, SessionInfo, SubscribeRequest, TransportKind,
};
use crate::host::Publisher;
use crate::relay::client::ClientRelay;
use crate::relay::routing::Route;
use crate::ws::codes;
use tokio::sync::oneshot;

/// Versions this server speaks, lowest first.
pub const SUPPORTED_VERSIONS: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

/// What the transport does after a frame.
#[derive(Debug)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The session is over; a close is queued on the outbox. Read nothing more.
    Close,
    /// The host must answer this before the next frame is handled.
    Ask(Question),
    /// Relay mode: the answer comes from the message broker on this channel (its CONNECTED);
    /// the transport hands it to [`Session::answer`] like a host's answer.
    Await(oneshot::Receiver<Answer>),
}

/// A decision the host makes.
#[derive(Debug, Clone)]
pub enum Question {
    /// May this client connect, and as which user?
    Connect(ConnectRequest),
    /// May this session subscribe?
    Subscribe(SubscribeRequest),
}

/// The host's decision on a [`Question`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// On a CONNECT.
    Connect(ConnectDecision),
    /// On a SUBSCRIBE: `Err(message)` refuses it.
    Subscribe(Result<(), String>),
    /// Relay mode, from the message broker rather than the host: the session's broker
    /// connection is up, or why it could not be opened.
    Relay(Result<(), String>),
}

/// A refused frame: becomes an ERROR frame, then the connection closes.
#[derive(Debug)]
struct Refusal {
    message: String,
    detail: Option<String>,
    code: u16,
}

impl Refusal {
    fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            detail: None,
            code: codes::PROTOCOL_ERROR,
        }
    }
    fn policy(message: impl Into<String>) -> Refusal {
        Refusal {
            code: codes::POLICY_VIOLATION,
            ..Refusal::new(message)
        }
    }
}

impl From<crate::broker::BrokerError> for Refusal {
    fn from(e: crate::broker::BrokerError) -> Refusal {
        Refusal::new(e.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingConnect,
    Deciding,
    Connected,
    Closed,
}

/// Negotiated heart-beat intervals in milliseconds (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// How often the server must send something.
    pub send_ms: u32,
    /// How often the client promised to send something.
    pub receive_ms: u32,
}

/// A decision the session is waiting for, with what it needs to finish the frame.
#[derive(Debug)]
enum Waiting {
    Connect {
        version: Version,
        heartbeat: Heartbeat,
    },
    Subscribe {
        spec: SubscribeSpec,
        receipt: Option<String>,
    },
    /// Relay mode: the broker's CONNECTED, after the host accepted the client.
    RelayConnect {
        version: Version,
        heartbeat: Heartbeat,
        user: Option<String>,
    },
    /// Relay mode: the host's decision on a SUBSCRIBE to a relayed destination.
    RelaySubscribe {
        frame: Frame,
        receipt: Option<String>,
    },
}

/// One client's STOMP session.
pub struct Session {
    id: u64,
    engine: Arc<Engine>,
    outbox: Arc<Outbox>,
    transport: TransportKind,
    remote_addr: Option<SocketAddr>,
    phase: Phase,
    version: Version,
    user: Option<String>,
    /// Who the transport authenticated the client as (WebSocket upgrade hook), if anyone.
    principal: Option<String>,
    heartbeat: Heartbeat,
    /// Open transactions; allocated by the first BEGIN (most sessions never open one).
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per session without transactions instead of an empty map's 48"
    )]
    transactions: Option<Box<HashMap<String, Vec<Frame>>>>,
    /// Boxed: set only between a question to the host and its answer.
    waiting: Option<Box<Waiting>>,
    /// Registered with the broker (so leaving it and the disconnect hook are due at the end).
    registered: bool,
    /// Relay mode: the session's broker connection (boxed: absent without relay).
    relay: Option<Box<ClientRelay>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("phase", &self.phase)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The ERROR frame for a close reason (also used by transports for closes they initiate).
pub fn error_frame(reason: &CloseReason) -> Option<Frame> {
    let message = reason.error.as_ref()?;
    let mut frame = Frame::new(Command::Error).with_header("message", message.clone());
    if let Some(receipt) = &reason.receipt_id {
        frame.push_header("receipt-id", receipt.clone());
    }
    frame.push_header("content-type", "text/plain");
    let body = reason.detail.clone().unwrap_or_else(|| message.clone());
    Some(frame.with_body(Bytes::from(body)))
}

fn required<'a>(frame: &'a Frame, name: &str) -> Result<&'a str, Refusal> {
    frame.header(name).ok_or_else(|| {
        Refusal::new(format!(
            "{} frame is missing the '{name}' header",
            frame.command.as_str()
        ))
    })
}

/// Parses a `heart-beat` header value `cx,cy`.
fn parse_heartbeat(value: Option<&str>) -> Result<(u32, u32), Refusal> {
    let Some(value) = value else {
        return Ok((0, 0));
    };
    let bad = || {
        Refusal::new(format!(
            "invalid heart-beat header '{value}': expected two integers 'cx,cy'"
        ))
    };
    let (x, y) = value.split_once(',').ok_or_else(bad)?;
    let x = x.trim().parse::<u32>().map_err(|_| bad())?;
    let y = y.trim().parse::<u32>().map_err(|_| bad())?;
    Ok((x, y))
}

/// Heart-beat negotiation of STOMP 1.1+: each side sends at the slower of what one side can
/// do and the other wants; zero on either side turns that direction off.
pub fn negotiate_heartbeat(client: (u32, u32), server: (u32, u32)) -> Heartbeat {
    let (cx, cy) = client;
    let (sx, sy) = server;
    let both = |a: u32, b: u32| if a == 0 || b == 0 { 0 } else { a.max(b) };
    Heartbeat {
        send_ms: both(sx, cy),
        receive_ms: both(cx, sy),
    }
}

impl Session {
    /// A new session for a connection. The outbox is its only output.
    pub fn new(
        engine: Arc<Engine>,
        outbox: Arc<Outbox>,
        transport: TransportKind,
        remote_addr: Option<SocketAddr>,
    ) -> Session {
        let id = engine.next_session_id();
        Session {
            id,
            engine,
            outbox,
            transport,
            remote_addr,
            phase: Phase::AwaitingConnect,
            version: Version::V1_0,
            user: None,
            principal: None,
            heartbeat: Heartbeat::default(),
            transactions: None,
            waiting: None,
            registered: false,
            relay: None,
        }
    }

    /// The engine the session belongs to.
    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The session's outbound queue.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Session id (the `session` header of CONNECTED).
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Negotiated version (1.0 until CONNECT).
    pub fn version(&self) -> Version {
        self.version
    }
    /// Records who the transport authenticated the client as, before CONNECT; the connect
    /// decision sees it and, by default, makes it the session's user.
    pub fn set_principal(&mut self, principal: Option<String>) {
        self.principal = principal;
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    /// True between CONNECTED and the end of the session.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }
    /// True while the session waits for its message broker connection (relay mode).
    pub fn awaits_broker(&self) -> bool {
        matches!(self.waiting.as_deref(), Some(Waiting::RelayConnect { .. }))
    }
    /// True once the session ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }
    /// Negotiated heart-beats.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat
    }
    /// How long the connection may stay silent before the client counts as dead: twice the
    /// heart-beat interval the client promised, or `None` without client heart-beats.
    pub fn receive_timeout(&self) -> Option<Duration> {
        let ms = self.heartbeat.receive_ms;
        (ms > 0 && self.phase == Phase::Connected).then(|| Duration::from_millis(u64::from(ms) * 2))
    }

    /// Handles one client frame.
    pub fn handle(&mut self, frame: Frame) -> Flow {
        if matches!(self.phase, Phase::Closed | Phase::Deciding) {
            return if self.phase == Phase::Closed {
                Flow::Close
            } else {
                Flow::Continue
            };
        }
        if let Some(relay) = &self.relay {
            if relay.disconnecting {
                return Flow::Continue; // nothing after DISCONNECT counts
            }
            if self.phase == Phase::Connected {
                match relay.route(&frame, self.version) {
                    Route::Local => {}
                    route => return self.handle_relayed(frame, route),
                }
            }
        }
        let receipt = frame.header("receipt").map(str::to_string);
        let command = frame.command;
        let result = match (self.phase, command) {
            (Phase::AwaitingConnect, Command::Connect | Command::Stomp) => self.on_connect(frame),
            (Phase::AwaitingConnect, _) => Err(Refusal::new(format!(
                "expected a CONNECT or STOMP frame first, got {}",
                command.as_str()
            ))),
            (_, Command::Connect | Command::Stomp) => Err(Refusal::new("already connected")),
            (_, Command::Send) => self.on_send(frame).map(|()| Flow::Continue),
            (_, Command::Subscribe) => self.on_subscribe(frame, receipt.clone()),
            (_, Command::Unsubscribe) => self.on_unsubscribe(&frame).map(|()| Flow::Continue),
            (_, Command::Ack) => self.on_ack(frame, false).map(|()| Flow::Continue),
            (_, Command::Nack) => self.on_ack(frame, true).map(|()| Flow::Continue),
            (_, Command::Begin) => self.on_begin(&frame).map(|()| Flow::Continue),
            (_, Command::Commit) => self.on_commit(&frame).map(|()| Flow::Continue),
            (_, Command::Abort) => self.on_abort(&frame).map(|()| Flow::Continue),
            (_, Command::Disconnect) if self.relay.is_some() => {
                return self.relay_disconnect(frame);
            }
            (_, Command::Disconnect) => {
                if let Some(receipt) = &receipt {
                    self.send_receipt(receipt);
                }
                self.outbox.close(CloseReason::normal());
                self.end();
                return Flow::Close;
            }
            (_, other) => Err(Refusal::new(format!(
                "{} is a server frame; clients may not send it",
                other.as_str()
            ))),
        };
        match result {
            Ok(Flow::Continue) => {
                // CONNECT answers with CONNECTED, SUBSCRIBE waiting on the host answers later.
                if let (Some(receipt), false) = (
                    &receipt,
                    command == Command::Connect || command == Command::Stomp,
                ) {
                    self.send_receipt(receipt);
                }
                Flow::Continue
            }
            Ok(flow) => flow,
            Err(refusal) => self.refuse(refusal, receipt),
        }
    }

    /// Completes the frame that asked the host a [`Question`].
    pub fn answer(&mut self, answer: Answer) -> Flow {
        let Some(waiting) = self.waiting.take() else {
            return Flow::Continue;
        };
        match (*waiting, answer) {
            (Waiting::Connect { version, heartbeat }, Answer::Connect(decision)) => {
                self.finish_connect(version, heartbeat, decision)
            }
            (Waiting::Subscribe { spec, receipt }, Answer::Subscribe(decision)) => {
                self.phase = Phase::Connected;
                let result = match decision {
                    Ok(()) => self
                        .engine
                        .broker
                        .subscribe(self.id, spec)
                        .map_err(Refusal::from),
                    Err(message) => {
                        Err(Refusal::policy(format!("subscription refused: {message}")))
                    }
                };
                match result {
                    Ok(()) => {
                        if let Some(receipt) = &receipt {
                            self.send_receipt(receipt);
                        }
                        Flow::Continue
                    }
                    Err(refusal) => self.refuse(refusal, receipt),
                }
            }
            (
                Waiting::RelayConnect {
                    version,
                    heartbeat,
                    user,
                },
                Answer::Relay(result),
            ) => match result {
                Ok(()) => self.complete_connect(version, heartbeat, user),
                Err(message) => {
                    self.phase = Phase::AwaitingConnect;
                    self.relay = None;
                    self.refuse(
                        Refusal {
                            code: codes::TRY_AGAIN_LATER,
                            ..Refusal::new(format!("message broker unavailable: {message}"))
                        },
                        None,
                    )
                }
            },
            (Waiting::RelaySubscribe { frame, receipt }, Answer::Subscribe(decision)) => {
                self.phase = Phase::Connected;
                match decision {
                    Ok(()) => self.forward_to_broker(frame, receipt),
                    Err(message) => self.refuse(
                        Refusal::policy(format!("subscription refused: {message}")),
                        receipt,
                    ),
                }
            }
            (waiting, answer) => {
                tracing::error!(
                    session = self.id,
                    ?waiting,
                    ?answer,
                    "answer does not fit the question"
                );
                self.refuse(
                    Refusal {
                        code: codes::INTERNAL_ERROR,
                        ..Refusal::new("internal error")
                    },
                    None,
                )
            }
        }
    }

    /// A frame that could not be decoded: ERROR, then close.
    pub fn protocol_error(&mut self, message: impl Into<String>) -> Flow {
        self.refuse(Refusal::new(message), None)
    }

    /// Ends the session from the server side (timeouts, shutdown) with an ERROR and close code.
    pub fn terminate(&mut self, code: u16, message: impl Into<String>) -> Flow {
        self.refuse(
            Refusal {
                code,
                ..Refusal::new(message)
            },
            None,
        )
    }

    /// The connection is gone: leave the broker, drop open transactions, tell the host.
    pub fn closed(&mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.phase = Phase::Closed;
        self.waiting = None;
        self.transactions = None;
        // Dropping the link ends the broker connection (after the frames already handed over).
        self.relay = None;
        if std::mem::take(&mut self.registered) {
            self.engine.broker.unregister_session(self.id);
            let info = SessionInfo {
                session: self.id,
                user: self.user.clone(),
                remote_addr: self.remote_addr,
                transport: self.transport,
            };
            let hooks = &self.engine.hooks;
            if catch_unwind(AssertUnwindSafe(|| hooks.disconnected(&info))).is_err() {
                tracing::error!(session = self.id, "disconnect hook panicked");
            }
            self.engine.emit(Event::Disconnect(info));
        }
    }

    fn refuse(&mut self, refusal: Refusal, receipt: Option<String>) -> Flow {
        tracing::debug!(session = self.id, message = %refusal.message, "refusing frame");
        let reason = CloseReason {
            code: refusal.code,
            error: Some(refusal.message),
            receipt_id: receipt,
            detail: refusal.detail,
        };
        self.outbox.close(reason);
        self.end();
        Flow::Close
    }

    fn push(&self, frame: &Frame) {
        let mut out = BytesMut::with_capacity(64 + frame.body.len());
        encode(frame, self.version, &mut out);
        if self.outbox.push(Outbound::Frame(out.freeze())) == Err(PushError::Overflow) {
            stats::count_overflow(self.engine.counters(), &self.outbox);
        }
    }

    fn send_receipt(&self, receipt: &str) {
        self.push(&Frame::new(Command::Receipt).with_header("receipt-id", receipt));
    }

    fn on_connect(&mut self, frame: Frame) -> Result<Flow, Refusal> {
        let Some(version) = negotiate(frame.header("accept-version"), &SUPPORTED_VERSIONS) else {
            // The ERROR must tell the client which versions exist (STOMP 1.2 §CONNECT).
            let mut error = Frame::new(Command::Error)
                .with_header("version", "1.0,1.1,1.2")
                .with_header("message", "Supported protocol versions are 1.0,1.1,1.2")
                .with_header("content-type", "text/plain");
            error = error.with_body(Bytes::from(format!(
                "None of the versions in accept-version '{}' is supported; this server speaks 1.0, 1.1 and 1.2.",
                frame.header("accept-version").unwrap_or_default()
            )));
            self.push(&error);
            self.outbox.close(CloseReason {
                code: codes::PROTOCOL_ERROR,
                ..CloseReason::normal()
            });
            self.end();
            return Ok(Flow::Close);
        };
        self.version = version;
        self.outbox.set_version(version);
        let client_hb = if version == Version::V1_0 {
            (0, 0)
        } else {
            parse_heartbeat(frame.header("heart-beat"))?
        };
        let config = &self.engine.config;
        let server_hb = (
            config.heartbeat_send.as_millis() as u32,
            config.heartbeat_receive.as_millis() as u32,
        );
        let heartbeat = negotiate_heartbeat(client_hb, server_hb);
        let request = ConnectRequest {
            session: self.id,
            login: frame.header("login").map(str::to_string),
            principal: self.principal.clone(),
            passcode: frame.header("passcode").map(str::to_string),
            headers: frame.headers,
            remote_addr: self.remote_addr,
            transport: self.transport,
        };
        self.phase = Phase::Deciding;
        self.waiting = Some(Box::new(Waiting::Connect { version, heartbeat }));
        Ok(Flow::Ask(Question::Connect(request)))
    }

    fn finish_connect(
        &mut self,
        version: Version,
        heartbeat: Heartbeat,
        decision: ConnectDecision,
    ) -> Flow {
        let user = match decision {
            ConnectDecision::Reject(message) => {
                self.phase = Phase::AwaitingConnect;
                return self.refuse(Refusal::policy(message), None);
            }
            ConnectDecision::Accept { user } => user,
        };
        if let Some(Err(e)) = user.as_deref().map(destination::check_user_name) {
            self.phase = Phase::AwaitingConnect;
            return self.refuse(Refusal::policy(e.0), None);
        }
        if let Some(relay) = self.engine.relay.clone() {
            // Relay mode: the client is connected once its broker connection is.
            let (answer, awaited) = oneshot::channel();
            let link = crate::relay::link::open(
                relay.clone(),
                self.outbox.clone(),
                self.engine.counters().clone(),
                version,
                self.id,
                answer,
            );
            self.relay = Some(Box::new(ClientRelay::new(relay, link)));
            self.waiting = Some(Box::new(Waiting::RelayConnect {
                version,
                heartbeat,
                user,
            }));
            return Flow::Await(awaited);
        }
        self.complete_connect(version, heartbeat, user)
    }

    fn complete_connect(
        &mut self,
        version: Version,
        heartbeat: Heartbeat,
        user: Option<String>,
    ) -> Flow {
        self.user = user;
        self.heartbeat = heartbeat;
        self.phase = Phase::Connected;
        self.engine.broker.register_session(
            self.id,
            self.outbox.clone(),
            version == Version::V1_2,
            self.user.clone(),
        );
        self.registered = true;
        // 1.0 has no heart-beats (the client's header was ignored): advertise none.
        let server_hb = if version == Version::V1_0 {
            "0,0".to_string()
        } else {
            format!(
                "{},{}",
                self.engine.config.heartbeat_send.as_millis(),
                self.engine.config.heartbeat_receive.as_millis()
            )
        };
        let mut connected = Frame::new(Command::Connected)
            .with_header("version", version.as_str())
            .with_header("heart-beat", server_hb)
            .with_header("server", concat!("wsbroker/", env!("CARGO_PKG_VERSION")))
            .with_header("session", self.id.to_string());
        if let Some(user) = &self.user {
            connected.push_header("user-name", user.clone());
        }
        // Before CONNECTED is queued, so the writer that wakes for it sees the interval.
        self.outbox.set_heartbeat_ms(heartbeat.send_ms);
        self.push(&connected);
        Flow::Continue
    }

    /// A frame for the message broker (or, for transaction boundaries, for both brokers).
    fn handle_relayed(&mut self, frame: Frame, route: Route) -> Flow {
        let receipt = frame.header("receipt").map(str::to_string);
        if route == Route::Both {
            // The local half runs first, without the receipt, which the broker answers.
            let mut local = frame.clone();
            local.headers.retain(|(name, _)| name != "receipt");
            let result = match frame.command {
                Command::Begin => self.on_begin(&local),
                Command::Commit => self.on_commit(&local),
                _ => self.on_abort(&local),
            };
            if let Err(refusal) = result {
                return self.refuse(refusal, receipt);
            }
            return self.forward_to_broker(frame, receipt);
        }
        if frame.command == Command::Subscribe {
            let relayed = self.relay.as_ref().map_or(0, |r| r.subscription_count());
            let max = self.engine.config.max_subscriptions_per_session;
            if relayed >= max {
                return self.refuse(
                    Refusal::policy(format!("too many subscriptions (at most {max})")),
                    receipt,
                );
            }
            if self.version != Version::V1_0 && frame.header("id").is_none() {
                return self.refuse(
                    Refusal::new("SUBSCRIBE frame is missing the 'id' header"),
                    receipt,
                );
            }
            if self.engine.wants_subscribe_decision() {
                let request = SubscribeRequest {
                    session: self.id,
                    user: self.user.clone(),
                    destination: frame.header("destination").unwrap_or_default().to_string(),
                    headers: frame.headers.clone(),
                };
                self.phase = Phase::Deciding;
                self.waiting = Some(Box::new(Waiting::RelaySubscribe { frame, receipt }));
                return Flow::Ask(Question::Subscribe(request));
            }
        }
        self.forward_to_broker(frame, receipt)
    }

    fn forward_to_broker(&mut self, frame: Frame, receipt: Option<String>) -> Flow {
        let version = self.version;
        let Some(relay) = self.relay.as_mut() else {
            return Flow::Continue;
        };
        match relay.forward(frame, version) {
            Ok(()) => Flow::Continue,
            Err(message) => self.refuse(
                Refusal {
                    code: codes::TRY_AGAIN_LATER,
                    ..Refusal::new(message)
                },
                receipt,
            ),
        }
    }

    /// DISCONNECT in relay mode: the broker gets it too; with a receipt, the session ends
    /// when the broker's RECEIPT has reached the client.
    fn relay_disconnect(&mut self, frame: Frame) -> Flow {
        let with_receipt = frame.header("receipt").is_some();
        let version = self.version;
        let forwarded = self
            .relay
            .as_mut()
            .is_some_and(|relay| relay.forward(frame.clone(), version).is_ok());
        if forwarded && with_receipt {
            if let Some(relay) = self.relay.as_mut() {
                relay.disconnecting = true;
            }
            return Flow::Continue;
        }
        if let Some(receipt) = frame.header("receipt") {
            self.send_receipt(receipt);
        }
        self.outbox.close(CloseReason::normal());
        self.end();
        Flow::Close
    }

    fn is_app_destination(&self, destination: &str) -> bool {
        self.engine.config.app_prefixes.iter().any(|prefix| {
            destination
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| {
                    rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/')
                })
        })
    }

    fn on_send(&mut self, frame: Frame) -> Result<(), Refusal> {
        required(&frame, "destination")?;
        if let Some(tx) = frame.header("transaction") {
            return self.buffer(tx.to_string(), frame);
        }
        self.send_now(frame)
    }

    fn send_now(&mut self, frame: Frame) -> Result<(), Refusal> {
        let dest = required(&frame, "destination")?.to_string();
        if self.is_app_destination(&dest) {
            return self.hand_to_application(dest, frame);
        }
        let (route, display) = destination::send_route(&dest, &self.engine.config.user_prefix)?;
        let broker = &self.engine.broker;
        let message = Message::new(
            broker.next_message_id(),
            display,
            frame.headers,
            frame.body,
            Some(self.id),
        );
        broker.publish(&route, Arc::new(message))?;
        Ok(())
    }

    fn hand_to_application(&mut self, destination: String, frame: Frame) -> Result<(), Refusal> {
        let Some(handler) = self.engine.hooks.app_handler(&destination) else {
            return Err(Refusal::new(format!(
                "no application handler for destination {destination}"
            )));
        };
        let message = AppMessage {
            session: self.id,
            user: self.user.clone(),
            destination,
            headers: frame.headers,
            body: frame.body,
        };
        let publisher = Publisher::new(self.engine.clone(), Some(self.id));
        match catch_unwind(AssertUnwindSafe(|| handler(&message, &publisher))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Refusal::new(format!("{} failed: {e}", message.destination))),
            Err(_) => Err(Refusal {
                code: codes::INTERNAL_ERROR,
                ..Refusal::new(format!(
                    "{} failed: the application handler panicked",
                    message.destination
                ))
            }),
        }
    }

    fn on_subscribe(&mut self, frame: Frame, receipt: Option<String>) -> Result<Flow, Refusal> {
        let dest = required(&frame, "destination")?.to_string();
        let id: Arc<str> = match frame.header("id") {
            Some(id) => id.into(),
            None if self.version == Version::V1_0 => dest.as_str().into(),
            None => return Err(Refusal::new("SUBSCRIBE frame is missing the 'id' header")),
        };
        let ack = AckMode::parse(frame.header("ack")).ok_or_else(|| {
            Refusal::new(format!(
                "invalid ack mode '{}': expected auto, client or client-individual",
                frame.header("ack").unwrap_or_default()
            ))
        })?;
        let default_prefetch = self.engine.config.max_unacked_per_subscription;
        let prefetch = match frame.header("prefetch-count") {
            None => default_prefetch,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(0) => default_prefetch,
                Ok(n) => n.min(default_prefetch.saturating_mul(16)),
                Err(_) => return Err(Refusal::new(format!("invalid prefetch-count '{v}'"))),
            },
        };
        let route = destination::subscribe_route(
            &dest,
            &self.engine.config.user_prefix,
            self.user.as_deref(),
        )?;
        let policy = match frame.header("overflow-policy") {
            None => self.engine.config.slow_consumer_policy,
            Some(v) => SlowConsumerPolicy::parse(v).ok_or_else(|| {
                Refusal::new(format!(
                    "invalid overflow-policy '{v}': expected disconnect, drop-oldest or drop-newest"
                ))
            })?,
        };
        let spec = SubscribeSpec {
            id,
            route,
            ack,
            prefetch,
            policy,
        };
        if self.engine.wants_subscribe_decision() {
            let request = SubscribeRequest {
                session: self.id,
                user: self.user.clone(),
                destination: dest,
                headers: frame.headers,
            };
            self.phase = Phase::Deciding;
            self.waiting = Some(Box::new(Waiting::Subscribe { spec, receipt }));
            return Ok(Flow::Ask(Question::Subscribe(request)));
        }
        self.engine.broker.subscribe(self.id, spec)?;
        Ok(Flow::Continue)
    }

    fn on_unsubscribe(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(frame, "destination")?,
            (None, _) => return Err(Refusal::new("UNSUBSCRIBE frame is missing the 'id' header")),
        };
        self.engine.broker.unsubscribe(self.id, id)?;
        Ok(())
    }

    fn on_ack(&mut self, frame: Frame, nack: bool) -> Result<(), Refusal> {
        if let Some(tx) = frame.header("transaction") {
            return self.buffer(tx.to_string(), frame);
        }
        self.ack_now(&frame, nack)
    }

    fn ack_now(&mut self, frame: &Frame, nack: bool) -> Result<(), Refusal> {
        let (primary, secondary) = if self.version == Version::V1_2 {
            ("id", "message-id")
        } else {
            ("message-id", "id")
        };
        let ack_id = frame
            .header(primary)
            .or_else(|| frame.header(secondary))
            .ok_or_else(|| {
                Refusal::new(format!(
                    "{} frame is missing the '{primary}' header",
                    frame.command.as_str()
                ))
            })?;
        let subscription = if self.version == Version::V1_1 {
            frame.header("subscription")
        } else {
            None
        };
        self.engine
            .broker
            .acknowledge(self.id, ack_id, subscription, nack)?;
        Ok(())
    }

    fn buffer(&mut self, tx: String, frame: Frame) -> Result<(), Refusal> {
        let max = self.engine.config.max_transaction_frames;
        let Some(frames) = self.transactions.as_mut().and_then(|t| t.get_mut(&tx)) else {
            return Err(Refusal::new(format!("unknown transaction '{tx}'")));
        };
        if frames.len() >= max {
            return Err(Refusal::policy(format!(
                "transaction '{tx}' exceeds {max} frames"
            )));
        }
        frames.push(frame);
        Ok(())
    }

    /// Removes an open transaction; the map goes away with the last one.
    fn take_transaction(&mut self, tx: &str) -> Option<Vec<Frame>> {
        let transactions = self.transactions.as_mut()?;
        let frames = transactions.remove(tx);
        if transactions.is_empty() {
            self.transactions = None;
        }
        frames
    }

    fn on_begin(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        let max = self.engine.config.max_open_transactions;
        let transactions = self.transactions.get_or_insert_default();
        if transactions.contains_key(tx) {
            return Err(Refusal::new(format!("transaction '{tx}' is already open")));
        }
        if transactions.len() >= max {
            return Err(Refusal::policy(format!(
                "too many open transactions (at most {max})"
            )));
        }
        transactions.insert(tx.to_string(), Vec::new());
        Ok(())
    }

    fn on_commit(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        let frames = self
            .take_transaction(tx)
            .ok_or_else(|| Refusal::new(format!("unknown transaction '{tx}'")))?;
        for frame in frames {
            match frame.command {
                Command::Send => self.send_now(frame)?,
                Command::Ack => self.ack_now(&frame, false)?,
                Command::Nack => self.ack_now(&frame, true)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn on_abort(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        self.take_transaction(tx)
            .map(|_| ())
            .ok_or_else(|| Refusal::new(format!("unknown transaction '{tx}'")))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}
