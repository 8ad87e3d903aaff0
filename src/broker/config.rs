//! The broker's own settings: destination prefixes, queue and subscription limits, and the
//! bounds of each session's outbound queue.

use std::time::Duration;

use super::history::HistoryRule;
use super::subscription::SlowConsumerPolicy;

/// How the broker routes and what it holds at most. `BrokerConfig::default()` is what
/// `ServerConfig::default()` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerConfig {
    /// Prefix of destinations with competing consumers (each message to one subscriber).
    /// Every other destination broadcasts to all of its subscribers. Default `/queue/`.
    pub queue_prefix: String,
    /// Prefix of user destinations (`/user/queue/x` for the subscriber, `/user/{name}/queue/x`
    /// for senders). Default `/user/`.
    pub user_prefix: String,
    /// Most messages a `/queue/...` destination holds while no consumer can take them.
    /// Default 100,000.
    pub max_queue_depth: usize,
    /// Most subscriptions one session may hold. Default 1,024.
    pub max_subscriptions_per_session: usize,
    /// Default limit of unacknowledged messages per subscription in `client` ack modes (a
    /// SUBSCRIBE may lower or raise it with a `prefetch-count` header, up to this value × 16).
    /// Default 1,024.
    pub max_unacked_per_subscription: usize,
    /// What a broadcast subscription in `auto` ack mode does when its connection's queue is
    /// full: disconnect the session (default), or drop its oldest or newest message (counted in
    /// `Stats::dropped`). A SUBSCRIBE may choose with an `overflow-policy` header.
    pub slow_consumer_policy: SlowConsumerPolicy,
    /// Hard cap of frames queued for one connection: past it, it is a slow consumer (whatever
    /// its policy does: disconnect by default). Default 16,384. Its queue is *congested* (see
    /// `outbound_high_watermark`) above three quarters of this and relieved at half.
    pub max_outbound_messages: usize,
    /// Hard cap of bytes queued for one connection: past it, it is a slow consumer. A message
    /// bigger than the room left is still admitted while the queue holds no more than
    /// `outbound_low_watermark`, so every accepted message (up to `max_frame_size`) can be
    /// delivered to a subscriber that keeps up; at most one such message waits beyond the cap.
    /// Default 8 MiB.
    pub max_outbound_bytes: usize,
    /// Flow control: above this many queued bytes a connection's queue is *congested*, and the
    /// connections that publish into it stop being read (host publishes get `Backpressure`)
    /// until it drains to `outbound_low_watermark`. A subscriber that keeps reading is never
    /// dropped; subscriptions with a drop policy never slow publishers. Default 1 MiB (at most
    /// `max_outbound_bytes`: a higher value counts as that).
    pub outbound_high_watermark: usize,
    /// Flow control: a congested queue is relieved at or below this many bytes. Default 256 KiB.
    pub outbound_low_watermark: usize,
    /// A congested queue from which nothing was written for this long belongs to a stuck
    /// subscriber: it gets the slow-consumer treatment (ERROR, close), so publishers wait at
    /// most this long for it. Default 10 s.
    pub slow_consumer_timeout: Duration,
    /// Destinations that keep a message history (offsets, resume with `x-since`, `x-last`,
    /// last-value snapshots); the first matching rule applies. Default none.
    pub history: Vec<HistoryRule>,
    /// Most destinations with a history at once; past it the least recently used one is
    /// forgotten (its next message starts a new epoch). Default 100,000.
    pub history_max_destinations: usize,
    /// Destinations (or patterns) whose every subscriber is a presence member, listed by
    /// [`crate::Server::presence`] and announced to the subscribers that listen
    /// (`x-presence:true`, which also makes a subscriber a member anywhere). Default none.
    pub presence: Vec<String>,
    /// Above this many members a destination sends no join/leave MESSAGEs and no snapshots;
    /// its count is still kept. Default 100.
    pub presence_event_limit: usize,
    /// Longest `x-presence-info` a SUBSCRIBE may give, in bytes. Default 256.
    pub presence_max_info: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            queue_prefix: "/queue/".into(),
            user_prefix: "/user/".into(),
            max_queue_depth: 100_000,
            max_subscriptions_per_session: 1024,
            max_unacked_per_subscription: 1024,
            slow_consumer_policy: SlowConsumerPolicy::Disconnect,
            max_outbound_messages: 16 * 1024,
            max_outbound_bytes: 8 * 1024 * 1024,
            outbound_high_watermark: 1024 * 1024,
            outbound_low_watermark: 256 * 1024,
            slow_consumer_timeout: Duration::from_secs(10),
            history: Vec::new(),
            history_max_destinations: 100_000,
            presence: Vec::new(),
            presence_event_limit: 100,
            presence_max_info: 256,
        }
    }
}

impl BrokerConfig {
    /// The bounds of one connection's outbound queue. Watermarks above the byte cap are
    /// lowered to it.
    pub fn outbox_limits(&self) -> super::outbox::OutboxLimits {
        let high_bytes = self.outbound_high_watermark.min(self.max_outbound_bytes);
        super::outbox::OutboxLimits {
            max_messages: self.max_outbound_messages,
            max_bytes: self.max_outbound_bytes,
            high_bytes,
            low_bytes: self.outbound_low_watermark.min(high_bytes),
            high_items: self.max_outbound_messages - self.max_outbound_messages / 4,
            low_items: self.max_outbound_messages / 2,
            stuck_after: self.slow_consumer_timeout,
        }
    }

    /// Most retained messages one subscribe replays at once: half the outbound queue, so that a
    /// replay leaves room for live messages and never makes its subscriber a slow consumer.
    pub fn max_replay_messages(&self) -> usize {
        self.max_outbound_messages / 2
    }

    /// Most bytes one replay queues (half the byte cap, for the same reason).
    pub fn max_replay_bytes(&self) -> usize {
        self.max_outbound_bytes / 2
    }

    /// Checks every field; the error text names the first one out of range.
    pub fn validate(&self) -> Result<(), String> {
        if !self.queue_prefix.starts_with('/') {
            return Err("queue_prefix must start with '/'".into());
        }
        if !self.user_prefix.starts_with('/') || !self.user_prefix.ends_with('/') {
            return Err("user_prefix must start and end with '/'".into());
        }
        let positive = [
            (self.max_queue_depth, "max_queue_depth"),
            (
                self.max_subscriptions_per_session,
                "max_subscriptions_per_session",
            ),
            (
                self.max_unacked_per_subscription,
                "max_unacked_per_subscription",
            ),
            (self.max_outbound_messages, "max_outbound_messages"),
            (self.max_outbound_bytes, "max_outbound_bytes"),
            (self.history_max_destinations, "history_max_destinations"),
        ];
        if let Some((_, name)) = positive.iter().find(|(value, _)| *value == 0) {
            return Err(format!("{name} must be greater than 0"));
        }
        if self.outbound_low_watermark > self.outbound_high_watermark {
            return Err("outbound_low_watermark must not be above outbound_high_watermark".into());
        }
        if self.slow_consumer_timeout.is_zero() {
            return Err("slow_consumer_timeout must be greater than 0".into());
        }
        if let Some(p) = self.presence.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("presence pattern {p:?} must start with '/'"));
        }
        let replayable = self.max_replay_messages();
        for rule in &self.history {
            rule.validate()?;
            if rule.size > replayable {
                return Err(format!(
                    "history size {} for {} is above what one replay may queue ({replayable}: \
                     half of max_outbound_messages)",
                    rule.size, rule.pattern
                ));
            }
        }
        Ok(())
    }
}
