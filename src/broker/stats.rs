//! Server-wide counters, updated with relaxed atomics on the hot path and read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::drops::DropLog;
pub use super::tally::Tally;

/// Declares every counter once: the live [`Counters`] (atomics), their snapshot into [`Stats`]
/// (whose struct literal makes the compiler check that both list the same fields) and the
/// Prometheus rows of `/metrics`. `Stats` itself is written out below because it is also the C
/// ABI's `wsb_stats` (cbindgen reads it from this file; it cannot expand macros).
macro_rules! counters {
    ($($field:ident($ty:ty): $kind:literal $metric:literal $help:literal,)*) => {
        /// Live counters shared by the broker and the transports (see [`Stats`] for each one).
        #[derive(Debug, Default)]
        pub struct Counters {
            $(
                #[doc = $help]
                pub $field: $ty,
            )*
            /// The drops behind `dropped`, per subscription, until they are reported to the host.
            pub drops: DropLog,
        }

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> Stats {
                Stats {
                    $($field: Count::value(&self.$field),)*
                }
            }
        }

        impl Stats {
            /// Every counter as a Prometheus metric: name (without the `wsbroker_` prefix),
            /// type (`gauge` or `counter`), help text and value, in declaration order.
            pub fn metrics(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
                vec![$(($metric, $kind, $help, self.$field),)*]
            }
        }
    };
}

counters! {
    connections(AtomicU64): "gauge" "connections" "Open connections.",
    connections_total(AtomicU64): "counter" "connections_total" "Connections accepted since start.",
    connections_refused(AtomicU64): "counter" "connections_refused_total" "Connections refused at a connection limit.",
    sessions(AtomicU64): "gauge" "sessions" "STOMP sessions past CONNECT.",
    subscriptions(AtomicU64): "gauge" "subscriptions" "Active client subscriptions.",
    messages_in(Tally): "counter" "messages_in_total" "Messages published.",
    messages_out(Tally): "counter" "messages_out_total" "MESSAGE frames queued to subscribers.",
    bytes_in(Tally): "counter" "bytes_in_total" "Bytes read from clients.",
    bytes_out(Tally): "counter" "bytes_out_total" "Bytes written to clients.",
    dropped(AtomicU64): "counter" "dropped_total" "Messages discarded.",
    slow_consumer_disconnects(AtomicU64): "counter" "slow_consumer_disconnects_total" "Sessions closed as slow consumers.",
    publishers_paused(AtomicU64): "counter" "publishers_paused_total" "Times flow control paused a publishing connection.",
    publishes_refused(AtomicU64): "counter" "publishes_refused_total" "Host publishes refused with Backpressure by flow control.",
    auth_refused(AtomicU64): "counter" "auth_refused_total" "Tokens refused (upgrade, CONNECT or refresh) and token-less clients refused.",
    auth_denied(AtomicU64): "counter" "auth_denied_total" "SUBSCRIBE and SEND frames refused by token permissions.",
    auth_expired(AtomicU64): "counter" "auth_expired_total" "Sessions closed because their token expired.",
    auth_refreshed(AtomicU64): "counter" "auth_refreshed_total" "Tokens refreshed on live sessions.",
}

/// A point-in-time copy of the server's counters: `Server::stats` in Rust, `wsb_stats` in C
/// (`wsb_server_stats`), `Server.stats()` in Python, and `/metrics`. Fields may be added at
/// the end in later versions (the C ABI version then changes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections (WebSocket, SockJS and TCP).
    pub connections: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Connections refused because the connection limit (`max_connections`) or the
    /// per-address limit (`max_connections_per_ip`) was reached.
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
    /// Sessions closed as slow consumers: their outbound queue passed its hard cap, or stayed
    /// congested without draining for the slow-consumer timeout.
    pub slow_consumer_disconnects: u64,
    /// Times flow control paused a publishing connection (stopped reading it) because its
    /// messages left a subscriber's queue congested (or, in relay mode, its broker link full).
    pub publishers_paused: u64,
    /// Host publishes refused with `Backpressure` (`WSB_ERR_BACKPRESSURE`) because a subscriber
    /// they would reach was congested.
    pub publishes_refused: u64,
    /// Tokens refused — invalid, expired, wrong issuer or audience, bad signature, an
    /// algorithm not accepted, too large — at the upgrade (HTTP 401), in CONNECT or in a
    /// refresh, and clients refused for bringing no token when one is required.
    pub auth_refused: u64,
    /// SUBSCRIBE and SEND frames refused because the session's permissions do not allow the
    /// destination.
    pub auth_denied: u64,
    /// Sessions closed with `token expired` because their token's `exp` passed without a
    /// refresh.
    pub auth_expired: u64,
    /// Tokens refreshed on a live session (`SEND` to the refresh destination).
    pub auth_refreshed: u64,
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

/// A counter of [`Counters`]: a plain atomic (gauges, rare events) or a [`Tally`] (the
/// per-message throughput counters).
pub trait Count {
    /// Adds `n`.
    fn add(&self, n: u64);
    /// The current value.
    fn value(&self) -> u64;
}

impl Count for AtomicU64 {
    fn add(&self, n: u64) {
        self.fetch_add(n, Relaxed);
    }
    fn value(&self) -> u64 {
        self.load(Relaxed)
    }
}

impl Count for Tally {
    fn add(&self, n: u64) {
        Tally::add(self, n);
    }
    fn value(&self) -> u64 {
        self.load()
    }
}

/// Adds to a counter.
pub(crate) fn add(counter: &impl Count, n: u64) {
    counter.add(n);
}

/// Subtracts from a gauge.
pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Relaxed);
}
