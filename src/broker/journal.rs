//! The broker's side of a durable store: what it writes down, and how it learns that a write
//! is on disk.
//!
//! The broker stays IO-free: it hands [`Record`]s to a [`Journal`] (under its lock, so their
//! order is the order of the routing decisions) and gets a [`Ticket`] back. Whoever implements
//! the journal (`crate::store`, on its own thread) commits records in that order and then
//! calls [`super::Broker::release_durable`], which delivers the persisted messages committed
//! so far: a message on a persisted destination is never seen by a subscriber, replayed or
//! confirmed by a RECEIPT before it is durable, so a restart can never hand its offset to
//! another message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use super::message::Message;

/// A record's place in the journal's order: records are committed in ticket order.
pub type Ticket = u64;

/// One change to persisted state.
#[derive(Debug, Clone)]
pub enum Record {
    /// A message took `offset` in the history stream of `route` (epoch `epoch`); entries
    /// before `keep_from` are no longer retained.
    Append {
        /// Routing key of the stream.
        route: Arc<str>,
        /// The stream's epoch.
        epoch: Arc<str>,
        /// The message's offset.
        offset: u64,
        /// First offset still retained.
        keep_from: u64,
        /// When it was published, in milliseconds since the Unix epoch (for the TTL after a
        /// restart).
        at_ms: u64,
        /// The message (with its position headers).
        message: Arc<Message>,
    },
    /// A stream was forgotten (evicted past `history_max_destinations`).
    DropStream {
        /// Routing key of the stream.
        route: Arc<str>,
    },
    /// A message was put on queue `route` (keyed by its id).
    Enqueue {
        /// Routing key of the queue.
        route: Arc<str>,
        /// The message.
        message: Arc<Message>,
    },
    /// Queue message `id` was consumed (acknowledged, or delivered to an auto-ack consumer).
    Dequeue {
        /// Routing key of the queue.
        route: Arc<str>,
        /// The message's id.
        id: u64,
    },
}

/// A durable store the broker writes through.
pub trait Journal: Send + Sync {
    /// Queues `record` to be committed after every record before it; never blocks.
    fn append(&self, record: Record) -> Ticket;
    /// Advances as records are committed.
    fn durable(&self) -> &Arc<DurableSignal>;
    /// Why new persisted messages are refused right now (the store is failing and its
    /// backlog is full), or `None`.
    fn refusal(&self) -> Option<String>;
    /// True when so many records wait for a commit that a publisher should wait for its own.
    fn is_backed_up(&self) -> bool;
    /// Figures for `/metrics`.
    fn stats(&self) -> JournalStats;
}

/// A journal's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records waiting for a commit.
    pub backlog: u64,
    /// Transactions committed since start.
    pub commits: u64,
    /// Records committed since start.
    pub records: u64,
    /// Whether the last commit failed (it is being retried).
    pub failing: bool,
}

/// The last committed ticket, and a wake-up for those waiting on one.
#[derive(Debug, Default)]
pub struct DurableSignal {
    committed: AtomicU64,
    notify: Notify,
}

impl DurableSignal {
    /// The last ticket committed (0: none yet).
    pub fn committed(&self) -> Ticket {
        self.committed.load(Ordering::Acquire)
    }

    /// True once `ticket` is committed.
    pub fn is_durable(&self, ticket: Ticket) -> bool {
        self.committed() >= ticket
    }

    /// Records that every ticket up to `ticket` is committed, and wakes the waiters.
    pub fn advance(&self, ticket: Ticket) {
        self.committed.fetch_max(ticket, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// Resolves once `ticket` is committed.
    pub async fn reached(&self, ticket: Ticket) {
        loop {
            let notified = self.notify.notified();
            if self.is_durable(ticket) {
                return;
            }
            notified.await;
        }
    }
}

/// Now, in milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a durable store held when the broker started.
#[derive(Debug, Default)]
pub struct Restored {
    /// History streams.
    pub streams: Vec<RestoredStream>,
    /// Queues and their messages, oldest first.
    pub queues: Vec<(String, Vec<Arc<Message>>)>,
    /// Above every message id in the store.
    pub next_message_id: u64,
}

/// One history stream as stored.
#[derive(Debug)]
pub struct RestoredStream {
    /// Routing key.
    pub route: String,
    /// Its epoch.
    pub epoch: String,
    /// The last offset assigned.
    pub last: u64,
    /// Retained entries, oldest first: offset, publish time (ms since the Unix epoch), message.
    pub entries: Vec<(u64, u64, Arc<Message>)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_their_ticket_commits() {
        let signal = Arc::new(DurableSignal::default());
        assert!(!signal.is_durable(2));
        let waiter = {
            let signal = signal.clone();
            tokio::spawn(async move { signal.reached(2).await })
        };
        signal.advance(1);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        signal.advance(3);
        waiter.await.unwrap();
        signal.advance(2);
        assert_eq!(signal.committed(), 3, "never goes back");
    }
}
