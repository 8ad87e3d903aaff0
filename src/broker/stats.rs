//! Server-wide counters, updated with relaxed atomics on the hot path and read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::drops::DropLog;

/// Live counters shared by the broker and the transports.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_refused: AtomicU64,
    pub sessions: AtomicU64,
    pub subscriptions: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dropped: AtomicU64,
    pub slow_consumer_disconnects: AtomicU64,
    /// The drops behind `dropped`, per subscription, until they are reported to the host.
    pub drops: DropLog,
}

/// A point-in-time copy of the counters, as `Server::stats` returns it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Open connections (WebSocket and TCP).
    pub connections: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused because `max_connections` or `max_connections_per_ip` was reached.
    pub connections_refused: u64,
    /// STOMP sessions past CONNECT.
    pub sessions: u64,
    /// Active client subscriptions.
    pub subscriptions: u64,
    /// Messages published (client SENDs and host publishes).
    pub messages_in: u64,
    /// MESSAGE frames queued to subscribers.
    pub messages_out: u64,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Messages accepted for a subscriber but discarded by a limit, so that it never receives
    /// them (each subscriber's copy counts once): by the drop-oldest / drop-newest
    /// slow-consumer policies, with a slow consumer's outbound queue when it is disconnected,
    /// and over a client-ack subscription's unacknowledged limit on a broadcast destination.
    /// Queue messages that go back to their queue for another consumer are not counted, nor
    /// are frames left unsent when a connection ends for another reason.
    pub dropped: u64,
    /// Sessions closed because their outbound queue passed its bound.
    pub slow_consumer_disconnects: u64,
}

impl Counters {
    /// Reads every counter.
    pub fn snapshot(&self) -> Stats {
        Stats {
            connections: self.connections.load(Relaxed),
            connections_total: self.connections_total.load(Relaxed),
            connections_refused: self.connections_refused.load(Relaxed),
            sessions: self.sessions.load(Relaxed),
            subscriptions: self.subscriptions.load(Relaxed),
            messages_in: self.messages_in.load(Relaxed),
            messages_out: self.messages_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            slow_consumer_disconnects: self.slow_consumer_disconnects.load(Relaxed),
        }
    }
}

/// Records a slow-consumer disconnect and the messages its outbox discarded for good.
pub(crate) fn count_overflow(counters: &Counters, outbox: &super::Outbox) {
    add(&counters.slow_consumer_disconnects, 1);
    for lost in outbox.lost_messages() {
        count_dropped(
            counters,
            lost.session,
            &lost.subscription,
            &lost.destination,
            lost.count,
        );
    }
}

/// Records `n` messages of one subscription dropped: the `dropped` counter, and the host
/// report.
pub(crate) fn count_dropped(
    counters: &Counters,
    session: u64,
    subscription: &std::sync::Arc<str>,
    destination: &str,
    n: u64,
) {
    if n == 0 {
        return;
    }
    add(&counters.dropped, n);
    counters.drops.record(session, subscription, destination, n);
}

/// Adds to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Subtracts from a gauge.
pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Relaxed);
}
