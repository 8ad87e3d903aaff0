//! The broker's own settings: destination prefixes, queue and subscription limits, and the
//! bounds of each session's outbound queue.

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
    /// Most frames queued for one connection before it counts as a slow consumer.
    /// Default 16,384.
    pub max_outbound_messages: usize,
    /// Most bytes queued for one connection before it counts as a slow consumer. Default 8 MiB.
    pub max_outbound_bytes: usize,
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
        }
    }
}

impl BrokerConfig {
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
        ];
        match positive.iter().find(|(value, _)| *value == 0) {
            Some((_, name)) => Err(format!("{name} must be greater than 0")),
            None => Ok(()),
        }
    }
}
