//! Cluster mode: many nodes share one destination space through Redis or NATS, and each fans
//! out locally.
//!
//! A node keeps **one** engine link whatever its number of clients (Redis: a pub/sub
//! connection and a command connection; NATS: one connection). It subscribes in the engine to
//! what its clients subscribe to — one engine subscription per destination or pattern, taken
//! with the first local subscriber and given back with the last ([`crate::broker::backplane`])
//! — and publishes there every broadcast publication made on it, encoded once
//! ([`codec`]). A publication from another node is handed to the broker, which fans it out
//! with the shared-frame path like a local one; a node skips its own publications when the
//! engine echoes them, so each subscriber in the cluster gets a publish once. A SUBSCRIBE
//! that needs a new engine subscription has its RECEIPT held until the engine confirmed it
//! ([`Backplane::pending_confirmation`]), so the RECEIPT means "subscribed cluster-wide".
//!
//! Semantics:
//! - `/topic/...` and the other broadcast destinations, `/user/...` destinations (a user's
//!   sessions on every node) and host publishes reach the whole cluster;
//! - queues (`/queue/...`) stay on the node they are sent to: competing consumers on that node;
//! - histories are kept by each node for every publication in the cluster (a node holds the
//!   history rules' patterns in the engine for good), numbered by the node: a client resumes
//!   on the node it left, and on another node it is told `x-recovered:false`;
//! - presence is per node.
//!
//! When the engine is unreachable the node keeps serving its own clients, reports
//! `BackplaneUnavailable`, drops (and counts) the publications it cannot hand on, and
//! reconnects with backoff; once back it re-subscribes, reports `BackplaneAvailable` and
//! starts every history on a new epoch (publications of other nodes may be missing from it,
//! so a resume there says `x-recovered:false` rather than claim a complete replay).

pub mod codec;
mod config;
pub mod keys;
mod nats;
mod redis;
mod sentinel;
mod stats;
mod table;

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::broker::{
    Backplane, Broker, Delivery, DurableSignal, Interest, Message, Outbound, Outbox, Reach, Ticket,
    outbox::OutboxLimits,
};
pub use config::{ClusterConfig, ClusterEngine};
use keys::{EngineKey, Naming};
pub use stats::ClusterStats;
use table::Table;

/// Publications taken from the queue for one engine round trip.
const BATCH: usize = 512;

/// What the link reports to the server it belongs to (its engine implements it).
pub(crate) trait ClusterListener: Send + Sync {
    /// The engine became reachable (`None`) or was lost (`Some(why)`).
    fn availability_changed(&self, unavailable: Option<String>);
    /// The node's broker.
    fn broker(&self) -> &Broker;
}

/// The listener, held weakly: the link's task must not keep its server alive.
type Listener = Weak<dyn ClusterListener>;

/// A change of this node's interests, in the broker's order.
#[derive(Debug)]
struct Command {
    interest: Interest,
    present: bool,
    /// The interest's number among those asked for (0 for a departure): the engine's
    /// confirmation of it releases the RECEIPTs of subscriptions waiting for it.
    seq: Ticket,
}

/// Interest changes taken from the queue in one go.
#[derive(Debug, Default)]
struct Changes {
    /// Engine subscriptions to take (`true`) and give back (`false`), in order.
    keys: Vec<(EngineKey, bool)>,
    /// The number of the last interest asked for among them.
    upto: Ticket,
}

/// This node's link to the engine: the broker's [`Backplane`].
pub struct Link {
    config: ClusterConfig,
    /// Tells this instance's publications apart when the engine echoes them.
    origin: String,
    naming: Naming,
    available: AtomicBool,
    /// Whether an availability was reported yet: the first failure to connect is reported
    /// too, not only the loss of a connection that was up.
    reported: AtomicBool,
    /// Publications waiting for the engine (bounded; publishers pause while it is congested).
    outbox: Arc<Outbox>,
    commands: mpsc::UnboundedSender<Command>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    engine_subscriptions: AtomicU64,
    /// Interests asked for so far (numbered 1, 2, ...).
    asked: AtomicU64,
    /// Up to which of them the engine has confirmed (or the link gave up waiting: engine
    /// lost), for the subscriptions whose RECEIPT waits.
    confirmed_upto: Arc<DurableSignal>,
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    reconnects: AtomicU64,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("config", &self.config)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A link for `config`, not yet connected (see [`start`]).
    pub fn new(config: ClusterConfig) -> Arc<Link> {
        let (commands, receiver) = mpsc::unbounded_channel();
        let naming: Naming = match config.engine {
            ClusterEngine::Redis(_) => keys::redis,
            ClusterEngine::Nats(_) => keys::nats,
        };
        let high = config.high_watermark;
        let limits = OutboxLimits {
            // One past the bound: `publish` gives up on publications at the bound itself, so
            // the queue never closes the way a subscriber's does.
            max_messages: config.max_pending + 1,
            max_bytes: usize::MAX / 2,
            high_bytes: 64 << 20,
            low_bytes: 16 << 20,
            high_items: high,
            low_items: high / 2,
            stuck_after: Duration::MAX,
        };
        let origin = format!("{}#{:016x}", config.node_id, rand::random::<u64>());
        Arc::new(Link {
            config,
            origin,
            naming,
            available: AtomicBool::new(false),
            reported: AtomicBool::new(false),
            outbox: Arc::new(Outbox::with_limits(limits, None)),
            commands,
            receiver: Mutex::new(Some(receiver)),
            engine_subscriptions: AtomicU64::new(0),
            asked: AtomicU64::new(0),
            confirmed_upto: Arc::new(DurableSignal::default()),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        })
    }

    /// The figures.
    pub fn stats(&self) -> ClusterStats {
        ClusterStats {
            available: self.available.load(Relaxed),
            engine_subscriptions: self.engine_subscriptions.load(Relaxed),
            published: self.published.load(Relaxed),
            received: self.received.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
        }
    }

    fn key(&self, interest: &Interest) -> EngineKey {
        (self.naming)(&self.config.prefix, interest)
    }

    /// The engine channel or subject publications to `route` go to.
    fn channel(&self, route: &str) -> String {
        match self.config.engine {
            ClusterEngine::Redis(_) => keys::redis_channel(&self.config.prefix, route),
            ClusterEngine::Nats(_) => keys::nats_subject(&self.config.prefix, route),
        }
    }

    /// The engine came up or went away: logs, tells the host, and on the way down gives up
    /// the publications still queued.
    fn set_available(&self, listener: &Listener, unavailable: Option<String>) {
        let up = unavailable.is_none();
        let first = !self.reported.swap(true, Relaxed);
        if self.available.swap(up, SeqCst) == up && !first {
            return;
        }
        match &unavailable {
            None => {
                tracing::info!(engine = self.config.engine.kind(), node = %self.config.node_id, "cluster engine available");
            }
            Some(why) => {
                tracing::warn!(engine = self.config.engine.kind(), %why, "cluster engine unavailable");
                self.engine_subscriptions.store(0, Relaxed);
                // Nobody waits for an engine that is gone: the node serves alone meanwhile.
                self.release_waiters();
                let mut lost = Vec::new();
                while self.outbox.try_drain(&mut lost, BATCH) > 0 {
                    self.dropped.fetch_add(lost.len() as u64, Relaxed);
                    lost.clear();
                }
            }
        }
        if let Some(listener) = listener.upgrade() {
            listener.availability_changed(unavailable);
        }
    }

    /// Applies the interest changes queued so far to `table`; returns the engine
    /// subscriptions to take (`true`) and give back (`false`), in order, and the number of the
    /// last interest among them (for [`Link::confirmed`]).
    fn take_changes(
        &self,
        receiver: &mut mpsc::UnboundedReceiver<Command>,
        table: &mut Table,
        first: Option<Command>,
    ) -> Changes {
        let mut changes = Changes::default();
        let mut next = first;
        while let Some(command) = next.take().or_else(|| receiver.try_recv().ok()) {
            changes.upto = changes.upto.max(command.seq);
            let changes = &mut changes.keys;
            let key = self.key(&command.interest);
            if command.present {
                if table.add(key.clone(), &command.interest) {
                    changes.push((key, true));
                }
            } else if table.remove(&key, &command.interest) {
                changes.push((key, false));
            }
        }
        changes
    }

    /// The engine confirmed the subscriptions of `table`, which hold the interests up to
    /// number `upto`.
    fn confirmed(&self, table: &Table, upto: Ticket) {
        self.engine_subscriptions.store(table.len() as u64, Relaxed);
        self.confirmed_upto.advance(upto);
    }

    /// Lets every subscription waiting for a confirmation go on without it.
    fn release_waiters(&self) {
        self.confirmed_upto.advance(self.asked.load(SeqCst));
    }

    /// Takes the next batch of queued publications, encoded: (channel, payload).
    fn take_batch(&self, out: &mut Vec<(String, Vec<u8>)>) {
        let mut items = Vec::new();
        self.outbox.try_drain(&mut items, BATCH);
        for item in items {
            if let Outbound::Message(delivery) = item {
                // The route travels in the subscription field (see `publish`).
                let route = &*delivery.subscription;
                out.push((
                    self.channel(route),
                    codec::encode(&self.origin, route, &delivery.message),
                ));
            }
        }
    }

    /// A payload from engine subscription `key`: decoded and handed to the broker, unless it
    /// is this instance's own.
    fn receive(&self, listener: &Listener, table: &Table, key: &EngineKey, payload: &Bytes) {
        let Some(publication) = codec::decode(payload) else {
            tracing::debug!(key = %key.name, "not a wsbroker publication, ignored");
            return;
        };
        if publication.origin == self.origin {
            return;
        }
        let Some(listener) = listener.upgrade() else {
            return;
        };
        self.received.fetch_add(1, Relaxed);
        let broker = listener.broker();
        let message = Arc::new(Message::new(
            broker.next_message_id(),
            publication.destination,
            publication.headers,
            publication.body,
            None,
        ));
        if key.pattern {
            let Some(patterns) = table.patterns(key) else {
                return;
            };
            broker.deliver_remote(&publication.route, message, Reach::Patterns(&patterns));
        } else {
            broker.deliver_remote(&publication.route, message, Reach::Exact);
        }
    }
}

impl Backplane for Link {
    fn interest(&self, interest: &Interest, present: bool) {
        // Numbered under the broker's lock, so in the order the link applies them.
        let seq = if present {
            self.asked.fetch_add(1, SeqCst) + 1
        } else {
            0
        };
        let _ = self.commands.send(Command {
            interest: interest.clone(),
            present,
            seq,
        });
    }

    fn pending_confirmation(&self) -> Option<(Arc<DurableSignal>, Ticket)> {
        // Checked again after reading `asked`: a link lost in between released only the
        // interests asked before it went down (`set_available` clears the flag first).
        if !self.available.load(SeqCst) {
            return None;
        }
        let asked = self.asked.load(SeqCst);
        if self.confirmed_upto.is_durable(asked) || !self.available.load(SeqCst) {
            return None;
        }
        Some((self.confirmed_upto.clone(), asked))
    }

    fn publish(&self, route: &str, message: &Arc<Message>) {
        // Called under the broker's lock, so the length check and the push are not raced.
        if !self.available.load(Relaxed) || self.outbox.len() >= self.config.max_pending {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        let item = Outbound::Message(Delivery {
            session: 0,
            seq: 0,
            // The outbox is a subscriber's queue type (bounds, congestion, relief); here its
            // subscription field carries the routing key.
            subscription: route.into(),
            ack_header: false,
            redelivered: false,
            recovered: None,
            requeued_if_lost: false,
            message: message.clone(),
        });
        if self.outbox.push(item).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    fn congested(&self) -> Option<Arc<Outbox>> {
        self.outbox.is_congested().then(|| self.outbox.clone())
    }
}

/// Starts the link's task on the current runtime (from `Server::start`), after the broker
/// attached it.
pub(crate) fn start(
    link: &Arc<Link>,
    listener: Listener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(receiver) = link.receiver.lock().take() else {
        return;
    };
    match &link.config.engine {
        ClusterEngine::Redis(url) => {
            tokio::spawn(redis::run(
                link.clone(),
                url.clone(),
                listener,
                receiver,
                shutdown,
            ));
        }
        ClusterEngine::Nats(url) => {
            tokio::spawn(nats::run(
                link.clone(),
                url.clone(),
                listener,
                receiver,
                shutdown,
            ));
        }
    }
}

/// After the engine (re)connected, or lost publications for this node: every history starts a
/// new epoch, since publications of other nodes may be missing from it.
fn history_gap(listener: &Listener) {
    if let Some(listener) = listener.upgrade() {
        listener.broker().history_gap();
    }
}
