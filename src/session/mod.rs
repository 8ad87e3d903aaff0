//! The STOMP session state machine: decoded frames in, broker calls and actions out.
//!
//! It never touches a socket and never starts a task. The transport feeds it frames with
//! [`Session::handle`]; whatever must go back to the client is queued on the session's
//! [`Outbox`]; whatever needs IO comes back as a [`Flow`] the transport carries out. When the
//! host has to decide something (may this client connect, may it subscribe), `handle` returns
//! [`Flow::Ask`] and the transport hands the answer back with [`Session::answer`]; in relay mode
//! a CONNECT returns [`Flow::OpenRelay`], and the transport opens the broker connection and
//! reports with [`Session::broker_connected`]. The host and the broker may take their time: the
//! transport reads no further frames meanwhile, so frame order is kept.
//!
//! The state machine is spread over one file per part of the protocol: [`connect`](self)
//! (CONNECT), `send`, `subscribe`, `ack`, `transactions`, and `relayed` (relay mode).

mod ack;
mod app_call;
mod auth;
pub(crate) mod config;
mod connect;
mod flow;
mod refusal;
mod relayed;
mod send;
mod subscribe;
mod transactions;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

pub use app_call::{AppCall, AppDone};
pub use config::{DEFAULT_APP_PREFIX, SessionConfig};
pub use flow::{DurableWait, Flow, Throttle};
pub use refusal::error_frame;

use crate::broker::outbox::{CloseReason, Outbound, Outbox, PushError};
use crate::broker::{Congestion, SubscribeSpec, Ticket, stats};
use crate::engine::Engine;
use crate::events::Event;
use crate::hooks::{Answer, SessionInfo, TransportKind};
use crate::relay::client::ClientRelay;
use crate::relay::routing::Route;
use crate::stomp::{Command, Frame, Heartbeat, Version, encode};
use crate::ws::codes;
use refusal::Refusal;

/// Versions this server speaks, lowest first.
pub const SUPPORTED_VERSIONS: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingConnect,
    Deciding,
    Connected,
    Closed,
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
    /// An application handler's result; then the rest of the COMMIT it was part of and, in
    /// relay mode, that COMMIT for the message broker.
    App {
        receipt: Option<String>,
        rest: Vec<Frame>,
        forward: Option<Box<Frame>>,
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
    /// Subscribers' queues the current frame's messages left congested (flow control).
    congested: Congestion,
    /// What the session's token grants (token authentication on); boxed: most have none.
    grant: Option<Box<crate::auth::Grant>>,
    /// With a durable store: the session's last persisted publish not yet known to be on
    /// disk, and the answer held back until it is (boxed: only between such a publish and
    /// its commit).
    unconfirmed: Option<Box<Unconfirmed>>,
    /// Cluster mode: a SUBSCRIBE's RECEIPT held until the engine confirmed the subscription,
    /// so that what is published on any node after the RECEIPT reaches it (boxed: only
    /// between such a SUBSCRIBE and the confirmation).
    unsubscribed: Option<Box<EngineWait>>,
    /// Subscriptions to private destinations and when their subscription tokens stop
    /// counting (boxed: most sessions have none).
    #[allow(
        clippy::box_collection,
        reason = "8 bytes per session without private subscriptions instead of a Vec's 24"
    )]
    private_subs: Option<Box<Vec<PrivateSub>>>,
}

/// A subscription opened by a subscription token.
#[derive(Debug)]
struct PrivateSub {
    id: String,
    destination: String,
    /// Its token's `exp` plus the leeway (seconds since the Unix epoch).
    valid_until: u64,
}

/// A persisted publish a RECEIPT must wait for.
#[derive(Debug)]
struct Unconfirmed {
    ticket: Ticket,
    held: Option<Held>,
}

/// A SUBSCRIBE's RECEIPT waiting for the cluster engine's confirmation.
#[derive(Debug)]
struct EngineWait {
    wait: DurableWait,
    receipt: Frame,
}

/// An answer that waits until the session's messages are durable.
#[derive(Debug)]
enum Held {
    Receipt(String),
    /// DISCONNECT with this receipt: answered, then the session ends.
    Disconnect(String),
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
            congested: Vec::new(),
            grant: None,
            unconfirmed: None,
            unsubscribed: None,
            private_subs: None,
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

    #[cfg(test)]
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
    #[cfg(test)]
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

    /// Handles one client frame. After a frame whose messages left subscribers congested (or,
    /// in relay mode, a frame that filled the broker link) it returns [`Flow::Throttle`].
    pub fn handle(&mut self, frame: Frame) -> Flow {
        let flow = self.handle_frame(frame);
        self.throttle_after(flow)
    }

    /// Turns a frame's `Continue` into `Throttle` when flow control asks the publisher to
    /// pause.
    fn throttle_after(&mut self, flow: Flow) -> Flow {
        if matches!(flow, Flow::App(_)) {
            return flow; // the pause, if any, comes once the handler returned
        }
        if !matches!(flow, Flow::Continue) {
            self.congested.clear();
            return flow;
        }
        if !self.congested.is_empty() {
            return Flow::Throttle(Throttle::Subscribers(std::mem::take(&mut self.congested)));
        }
        if let Some(wait) = self.durable_wait() {
            return Flow::Throttle(Throttle::Durable(wait));
        }
        if let Some(held) = self.unsubscribed.take() {
            if !held.wait.signal.is_durable(held.wait.ticket) {
                let wait = DurableWait {
                    signal: held.wait.signal.clone(),
                    ticket: held.wait.ticket,
                };
                self.unsubscribed = Some(held);
                return Flow::Throttle(Throttle::Cluster(wait));
            }
            self.push(&held.receipt);
        }
        // An answer held for a publish that is durable now goes out. A publish not durable yet
        // with nothing held stays noted: a later RECEIPT (or DISCONNECT's) must wait for it.
        if self.unconfirmed.as_ref().is_some_and(|u| u.held.is_some())
            && let Some(held) = self.unconfirmed.take().and_then(|u| u.held)
        {
            match held {
                Held::Receipt(receipt) => self.send_receipt(&receipt),
                Held::Disconnect(receipt) => {
                    self.send_receipt(&receipt);
                    self.outbox.close(CloseReason::normal());
                    self.end();
                    return Flow::Close;
                }
            }
        }
        match self.relay.as_ref().and_then(|relay| relay.backlog()) {
            Some(backlog) => Flow::Throttle(Throttle::Broker(backlog)),
            None => Flow::Continue,
        }
    }

    /// The transport calls this when a [`Flow::Throttle`] ends; what is held back goes out
    /// (or the session waits on).
    pub fn relieved(&mut self) -> Flow {
        self.throttle_after(Flow::Continue)
    }

    /// Notes a persisted publish of this session (see [`Published::durable`]).
    fn note_durable(&mut self, ticket: Option<Ticket>) {
        if let Some(ticket) = ticket {
            match &mut self.unconfirmed {
                Some(u) => u.ticket = u.ticket.max(ticket),
                None => {
                    self.unconfirmed = Some(Box::new(Unconfirmed { ticket, held: None }));
                }
            }
        }
    }

    /// What to wait for before the next frame: the last persisted publish, when an answer
    /// is held for it or the store is backed up. Forgets a publish already durable.
    fn durable_wait(&mut self) -> Option<DurableWait> {
        let unconfirmed = self.unconfirmed.as_ref()?;
        let journal = self.engine.broker.journal()?;
        let signal = journal.durable();
        if signal.is_durable(unconfirmed.ticket) {
            if unconfirmed.held.is_none() {
                self.unconfirmed = None;
            }
            return None;
        }
        (unconfirmed.held.is_some() || journal.is_backed_up()).then(|| DurableWait {
            signal: signal.clone(),
            ticket: unconfirmed.ticket,
        })
    }

    /// True when `answer` must wait for the session's persisted messages: it is held.
    fn hold(&mut self, answer: Held) -> Option<Held> {
        match &mut self.unconfirmed {
            Some(u)
                if !self
                    .engine
                    .broker
                    .journal()
                    .is_some_and(|j| j.durable().is_durable(u.ticket)) =>
            {
                u.held = Some(answer);
                None
            }
            _ => Some(answer),
        }
    }

    fn handle_frame(&mut self, frame: Frame) -> Flow {
        if matches!(self.phase, Phase::Closed | Phase::Deciding) {
            return if self.phase == Phase::Closed {
                Flow::Close
            } else {
                Flow::Continue
            };
        }
        if self.phase == Phase::Connected
            && let Some(result) = self.authorize(&frame)
        {
            let receipt = frame.header("receipt").map(str::to_string);
            return match result {
                Ok(flow) => {
                    if let Some(receipt) = &receipt {
                        self.send_receipt(receipt);
                    }
                    flow
                }
                Err(refusal) => self.refuse(refusal, receipt),
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
        let mut receipt = frame.header("receipt").map(str::to_string);
        let command = frame.command;
        let result = match (self.phase, command) {
            (Phase::AwaitingConnect, Command::Connect | Command::Stomp) => self.on_connect(frame),
            (Phase::AwaitingConnect, _) => Err(Refusal::new(format!(
                "expected a CONNECT or STOMP frame first, got {}",
                command.as_str()
            ))),
            (_, Command::Connect | Command::Stomp) => Err(Refusal::new("already connected")),
            (_, Command::Send) => self.on_send(frame, receipt.clone()),
            (_, Command::Subscribe) => self.on_subscribe(frame, &mut receipt),
            (_, Command::Unsubscribe) => self.on_unsubscribe(&frame).map(|()| Flow::Continue),
            (_, Command::Ack) => self.on_ack(frame, false).map(|()| Flow::Continue),
            (_, Command::Nack) => self.on_ack(frame, true).map(|()| Flow::Continue),
            (_, Command::Begin) => self.on_begin(&frame).map(|()| Flow::Continue),
            (_, Command::Commit) => self.on_commit(&frame, receipt.clone()),
            (_, Command::Abort) => self.on_abort(&frame).map(|()| Flow::Continue),
            (_, Command::Disconnect) if self.relay.is_some() => {
                return self.relay_disconnect(frame);
            }
            (_, Command::Disconnect) => {
                if let Some(receipt) = receipt {
                    // Messages sent before it must be durable before it is confirmed.
                    match self.hold(Held::Disconnect(receipt)) {
                        None => return Flow::Continue,
                        Some(Held::Disconnect(receipt) | Held::Receipt(receipt)) => {
                            self.send_receipt(&receipt);
                        }
                    }
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
                    Ok(()) => self.subscribe_now(spec, receipt.clone()),
                    Err(message) => {
                        Err(Refusal::policy(format!("subscription refused: {message}")))
                    }
                };
                match result {
                    // A RECEIPT waiting for the cluster engine goes out from here.
                    Ok(()) => self.throttle_after(Flow::Continue),
                    Err(refusal) => self.refuse(refusal, receipt),
                }
            }
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
                    Refusal::with_code(codes::INTERNAL_ERROR, "internal error"),
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
        self.refuse(Refusal::with_code(code, message), None)
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
            if let Some(hook) = self.engine.hooks.disconnect_hook() {
                // On a callback thread, like every host callback.
                let (session, info) = (self.id, info.clone());
                let told = move || {
                    if catch_unwind(AssertUnwindSafe(|| hook(&info))).is_err() {
                        tracing::error!(session, "disconnect hook panicked");
                    }
                };
                if !self.engine.executor.try_run(self.id, Box::new(told)) {
                    tracing::warn!(
                        session = self.id,
                        "callback queue full: disconnect hook skipped"
                    );
                }
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

    /// Sends a RECEIPT, or holds it until the session's persisted messages are durable.
    fn send_receipt(&mut self, receipt: &str) {
        if self.unconfirmed.as_ref().is_some_and(|u| u.held.is_none())
            && self.hold(Held::Receipt(receipt.to_string())).is_none()
        {
            return;
        }
        self.push(&Frame::new(Command::Receipt).with_header("receipt-id", receipt));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests;
