//! What the session asks of the transport after each frame: its actions. Every piece of IO the
//! session needs (waiting for the host, opening a broker connection) is one of these.

use std::sync::Arc;

use super::app_call::AppCall;
use crate::broker::{Congestion, DurableSignal, Ticket};
use crate::hooks::Question;
use crate::relay::link::Backlog;
use crate::stomp::Version;

/// What the transport does after a frame or an answer.
#[derive(Debug)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// The session is over; a close is queued on the outbox. Read nothing more.
    Close,
    /// The host must answer this before the next frame is handled; the transport hands the
    /// answer to [`super::Session::answer`].
    Ask(Question),
    /// Relay mode: open this session's connection to the message broker (a task of the
    /// transport's), attach its link with [`super::Session::attach_relay`], and hand the
    /// broker's verdict (its CONNECTED, or why it failed) to
    /// [`super::Session::broker_connected`] before the next frame is handled.
    OpenRelay(RelayOpen),
    /// An application handler must run (on a callback thread, never an IO thread) before the
    /// next frame is handled; the transport hands its result to [`super::Session::app_done`].
    App(AppCall),
    /// Flow control: handle no further frame (and read nothing more) until the throttle is
    /// lifted. The frame itself is done.
    Throttle(Throttle),
}

/// What a throttled publisher waits for.
#[derive(Debug)]
pub enum Throttle {
    /// The subscribers' outbound queues its messages left congested: each relieved, or closed
    /// as a stuck consumer once it has not moved for the slow-consumer timeout.
    Subscribers(Congestion),
    /// Relay mode: room for frames on the session's link to the message broker.
    Broker(Backlog),
    /// A durable store: the session's persisted messages reaching the disk (a RECEIPT is
    /// held until then, or the store is backed up). Then call
    /// [`super::Session::relieved`].
    Durable(DurableWait),
    /// Cluster mode: the engine confirming the subscription just made, whose RECEIPT is held
    /// until then (the link gives up waiting when the engine is lost). Then call
    /// [`super::Session::relieved`].
    Cluster(DurableWait),
}

/// A journal ticket to wait for.
#[derive(Debug)]
pub struct DurableWait {
    /// Advances as the store commits.
    pub signal: Arc<DurableSignal>,
    /// The ticket that must be committed.
    pub ticket: Ticket,
}

impl DurableWait {
    /// Resolves once the ticket is committed.
    pub async fn reached(&self) {
        self.signal.reached(self.ticket).await;
    }
}

/// What the transport needs to open a session's broker connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayOpen {
    /// The session the connection belongs to.
    pub session: u64,
    /// The STOMP version the client negotiated (the broker connection speaks the same).
    pub version: Version,
}
