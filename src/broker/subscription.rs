//! Subscription records and acknowledgement modes.

use std::sync::Arc;

/// How a subscription acknowledges messages (STOMP `ack` header of SUBSCRIBE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    /// Delivered means acknowledged.
    Auto,
    /// An ACK acknowledges that message and every earlier one of the subscription.
    Client,
    /// An ACK acknowledges exactly one message.
    ClientIndividual,
}

impl AckMode {
    /// Parses the header value; absent means `auto`.
    pub fn parse(value: Option<&str>) -> Option<AckMode> {
        match value {
            None | Some("auto") => Some(AckMode::Auto),
            Some("client") => Some(AckMode::Client),
            Some("client-individual") => Some(AckMode::ClientIndividual),
            Some(_) => None,
        }
    }
}

/// What a broadcast subscription does when its session's outbound queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SlowConsumerPolicy {
    /// Close the session with an ERROR (default): nothing is silently lost.
    #[default]
    Disconnect,
    /// Discard this subscription's oldest queued message to make room (latest value wins:
    /// prices, game state).
    DropOldest,
    /// Discard the new message.
    DropNewest,
}

impl SlowConsumerPolicy {
    /// Parses a SUBSCRIBE's `overflow-policy` header value.
    pub fn parse(value: &str) -> Option<SlowConsumerPolicy> {
        match value {
            "disconnect" => Some(SlowConsumerPolicy::Disconnect),
            "drop-oldest" => Some(SlowConsumerPolicy::DropOldest),
            "drop-newest" => Some(SlowConsumerPolicy::DropNewest),
            _ => None,
        }
    }
}

/// What a session asks for when it subscribes.
#[derive(Clone, Debug)]
pub struct SubscribeSpec {
    /// The client's subscription id.
    pub id: Arc<str>,
    /// Destination (or pattern) the broker routes on.
    pub route: String,
    /// Acknowledgement mode.
    pub ack: AckMode,
    /// Most unacknowledged messages in flight (client modes).
    pub prefetch: usize,
    /// What happens when the session cannot keep up. The drop policies apply to broadcast
    /// subscriptions in `auto` ack mode only; queue and client-ack subscriptions are flow
    /// controlled (queues hold, prefetch limits) and fall back to `Disconnect`.
    pub policy: SlowConsumerPolicy,
    /// What it asks of its destination's history (`x-since`, `x-epoch`, `x-last`).
    pub resume: super::history::ResumeRequest,
    /// What it asks of its destination's presence (`x-presence`, `x-presence-info`).
    pub presence: super::presence::PresenceRequest,
}

/// A live subscription inside a session.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub spec: SubscribeSpec,
    /// Unacknowledged deliveries of this subscription.
    pub unacked: usize,
    /// Routed to a competing-consumer queue rather than broadcast.
    pub queue: bool,
}

impl Subscription {
    /// Whether one more message may be delivered now.
    pub fn has_capacity(&self) -> bool {
        self.spec.ack == AckMode::Auto || self.unacked < self.spec.prefetch
    }

    /// Whether a full queue drops this subscription's messages (an opt-in drop policy on an
    /// auto-ack broadcast subscription) rather than slowing its publishers.
    pub fn is_lossy(&self) -> bool {
        !self.queue
            && self.spec.ack == AckMode::Auto
            && self.spec.policy != SlowConsumerPolicy::Disconnect
    }
}

/// A delivered message waiting for ACK or NACK.
#[derive(Debug)]
pub(crate) struct Unacked {
    pub subscription: Arc<str>,
    pub message: Arc<super::Message>,
    /// The queue to put it back on when it is not acknowledged.
    pub queue: Option<String>,
}
