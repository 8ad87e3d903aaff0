//! The in-process broker: destinations, subscriptions, acknowledgements and queues.
//!
//! It knows sessions (by id, each with its bounded [`Outbox`]) and destinations, never sockets.
//! Routing rules:
//! - a destination under the queue prefix (default `/queue/`) has competing consumers: each
//!   message goes to exactly one subscription, round-robin; messages wait (bounded) while no
//!   subscription can take them; unacknowledged messages of a consumer that NACKs, unsubscribes
//!   or disconnects go back to the front of the queue with `redelivered:true`;
//! - every other destination broadcasts: each matching subscription gets each message, and
//!   subscriptions may use the wildcards of [`pattern`].
//!
//! One mutex guards the routing state; it is never held while host code runs.

pub mod backplane;
#[cfg(test)]
mod cluster_tests;
pub(crate) mod config;
pub mod destination;
pub mod drops;
#[cfg(test)]
pub(crate) mod durable_tests;
pub mod history;
pub mod journal;
pub mod message;
pub mod outbox;
pub mod pattern;
pub mod presence;
pub mod shared_frame;
pub mod stats;
mod sub_map;
pub mod subscription;
mod tally;
pub mod wire;

use std::collections::{BTreeMap, HashMap, VecDeque};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;
use sub_map::SubMap;

use parking_lot::{Mutex, RwLock};

use crate::executor::Executor;

use backplane::Interests;
pub use backplane::{Backplane, Interest, Reach};
pub use config::BrokerConfig;
pub use drops::{DROP_REPORT_INTERVAL, DropReport};
use history::Streams;
pub use history::{HistoryPage, HistoryRule, ResumeRequest, StreamPosition};
pub use journal::{DurableSignal, Journal, JournalStats, Record, Restored, RestoredStream, Ticket};
pub use message::Message;
pub use outbox::{CloseReason, Delivery, FlowSignal, Outbound, Outbox, PushError};
use presence::Rooms;
pub use presence::{Presence, PresenceMember};
pub use stats::{Counters, Stats};
pub use subscription::{AckMode, SlowConsumerPolicy, SubscribeSpec};
use subscription::{Subscription, Unacked};

/// A refused broker operation; the text goes to the client in an ERROR frame's `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BrokerError(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, BrokerError> {
    Err(BrokerError(message.into()))
}

/// Callback of a host (in-process) subscription. Runs on a callback thread (see
/// [`crate::executor`]), one message at a time and in publish order per subscription, so it
/// may block and may publish (even to a destination it matches itself: that queues another
/// delivery instead of recursing).
pub type HostCallback = Arc<dyn Fn(&Arc<Message>) + Send + Sync>;

struct HostSubscription {
    id: u64,
    pattern: String,
    callback: HostCallback,
    runs: HostCallbackRuns,
}

/// Where a host subscription's callback runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCallbackRuns {
    /// Host code: on a callback thread, one message at a time, never on the publisher's.
    OnCallbackThread,
    /// The library's own quick hand-over (into the event queue): on the publishing thread.
    Inline,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SubKey {
    session: u64,
    sub: Arc<str>,
}

struct SessionEntry {
    outbox: Arc<Outbox>,
    user: Option<String>,
    /// STOMP 1.2 sessions get an `ack` header on MESSAGEs of client-ack subscriptions.
    ack_header: bool,
    /// Boxed values: once past a few subscriptions they move to a hash map, whose spare
    /// slots then stay pointer-sized.
    subs: SubMap<Box<Subscription>>,
    next_seq: u64,
    unacked: BTreeMap<u64, Unacked>,
}

struct Pending {
    message: Arc<Message>,
    redelivered: bool,
    /// The consumer that gave it back: another one is preferred for the redelivery.
    avoid: Option<SubKey>,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Pending>,
    consumers: Vec<SubKey>,
    next: usize,
    /// Messages journaled for it and not yet committed (they count against its depth).
    unreleased: usize,
}

impl Queue {
    /// Nothing keeps it: no consumer, nothing waiting, nothing on its way.
    fn is_unused(&self) -> bool {
        self.consumers.is_empty() && self.pending.is_empty() && self.unreleased == 0
    }
}

struct State {
    sessions: HashMap<u64, SessionEntry>,
    exact: HashMap<String, Vec<SubKey>>,
    patterns: Vec<(String, SubKey)>,
    queues: HashMap<String, Queue>,
    /// Message history of the destinations a history rule covers (under this lock, so that
    /// recording a publish and starting a resuming subscription are ordered).
    streams: Streams,
    /// Members of the destinations with presence (under this lock, with the subscriptions).
    rooms: Rooms,
    /// The durable store, when there is one: every queue and history destination is
    /// persisted through it.
    journal: Option<Arc<dyn Journal>>,
    /// Persisted messages waiting for their commit, in ticket order.
    unreleased: VecDeque<Unreleased>,
    /// Cluster mode: the engine linking the nodes, and this node's interests.
    cluster: Option<Cluster>,
}

/// Cluster mode's part of the routing state.
struct Cluster {
    backplane: Arc<dyn Backplane>,
    interests: Interests,
}

/// A persisted message not yet durable: nobody sees it before [`Broker::release_durable`].
struct Unreleased {
    ticket: Ticket,
    route: Arc<str>,
    message: Arc<Message>,
    /// A history entry (its epoch and offset); `None` for a queue message.
    position: Option<(Arc<str>, u64)>,
    /// Published on another node (cluster mode): it reaches only this node's exact
    /// subscribers once durable, and goes back to no other node.
    remote: bool,
}

/// How a delivery is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Fresh,
    /// Delivered before (`redelivered:true`).
    Redelivered,
    /// The first message of a resuming subscription, with whether the resume is complete.
    Resumed(bool),
}

/// The in-process message broker.
pub struct Broker {
    config: BrokerConfig,
    /// Where host-subscription callbacks run (never on the publishing thread).
    executor: Arc<Executor>,
    flow: Arc<FlowSignal>,
    /// Shared with the flow signal's feeder (a `Weak`), which feeds starving queue consumers.
    state: Arc<Mutex<State>>,
    counters: Arc<Counters>,
    host_subs: RwLock<Vec<HostSubscription>>,
    host_sub_count: AtomicUsize,
    next_message: AtomicU64,
    next_host_sub: AtomicU64,
    /// The durable store's journal (also in `State`, for the paths under the lock), read
    /// without the lock by sessions waiting for their messages to be durable.
    journal: std::sync::OnceLock<Arc<dyn Journal>>,
    /// Cluster mode's engine (also in `State`), read without the lock on the publishing path.
    backplane: std::sync::OnceLock<Arc<dyn Backplane>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker routing with `config`, counting into `counters`; host-subscription callbacks
    /// run on `executor`.
    pub fn new(config: BrokerConfig, counters: Arc<Counters>, executor: Arc<Executor>) -> Broker {
        let streams = Streams::new(config.history.clone(), config.history_max_destinations);
        let rooms = Rooms::new(config.presence.clone(), config.presence_event_limit);
        let state = Arc::new(Mutex::new(State {
            sessions: HashMap::new(),
            exact: HashMap::new(),
            patterns: Vec::new(),
            queues: HashMap::new(),
            streams,
            rooms,
            journal: None,
            unreleased: VecDeque::new(),
            cluster: None,
        }));
        let flow = Arc::new(FlowSignal::default());
        // A queue consumer passed over while its connection's queue was congested gets the
        // waiting messages once that queue is relieved (called by its writer, no lock held).
        let (weak, feed_counters) = (Arc::downgrade(&state), counters.clone());
        flow.set_feeder(Box::new(move |session| {
            if let Some(state) = weak.upgrade() {
                state.lock().feed(session, &feed_counters);
            }
        }));
        Broker {
            config,
            executor,
            flow,
            state,
            counters,
            host_subs: RwLock::new(Vec::new()),
            host_sub_count: AtomicUsize::new(0),
            next_message: AtomicU64::new(1),
            next_host_sub: AtomicU64::new(1),
            journal: std::sync::OnceLock::new(),
            backplane: std::sync::OnceLock::new(),
        }
    }

    /// The broker's settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// A new, empty outbound queue for a connection, bounded as configured and under this
    /// broker's flow control.
    pub fn new_outbox(&self) -> Arc<Outbox> {
        Arc::new(Outbox::with_limits(
            self.config.outbox_limits(),
            Some(self.flow.clone()),
        ))
    }

    /// Woken whenever a congested outbound queue is relieved (for hosts blocked in a
    /// waiting publish).
    pub fn flow_signal(&self) -> &Arc<FlowSignal> {
        &self.flow
    }

    /// The counters this broker updates.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// A fresh broker-wide message number.
    pub fn next_message_id(&self) -> u64 {
        self.next_message.fetch_add(1, Relaxed)
    }

    /// Persists queues and histories through `journal` from now on, starting from what it
    /// held (`restored`). Called once, before any traffic.
    pub fn attach_journal(&self, journal: Arc<dyn Journal>, restored: Restored) {
        let mut state = self.state.lock();
        state.streams.set_journaled();
        let now = Instant::now();
        let now_ms = journal::unix_ms();
        for stream in restored.streams {
            let route: Arc<str> = stream.route.as_str().into();
            if !state.streams.restore(stream, now, now_ms) {
                // No rule covers it any more: forget it in the store too.
                journal.append(Record::DropStream { route });
            }
        }
        for (route, messages) in restored.queues {
            let queue = state.queues.entry(route).or_default();
            queue
                .pending
                .extend(messages.into_iter().map(|message| Pending {
                    message,
                    redelivered: false,
                    avoid: None,
                }));
        }
        self.next_message
            .fetch_max(restored.next_message_id, Relaxed);
        let _ = self.journal.set(journal.clone());
        state.journal = Some(journal);
    }

    /// The durable store's journal, when there is one.
    pub fn journal(&self) -> Option<&Arc<dyn Journal>> {
        self.journal.get()
    }

    /// Cluster mode: links this node to the others through `backplane`, which hears at once
    /// of every interest held so far (and of the history rules' patterns, held for good).
    /// Returns false (and changes nothing) when a backplane is already attached.
    pub fn attach_backplane(&self, backplane: Arc<dyn Backplane>) -> bool {
        let mut state = self.state.lock();
        if self.backplane.set(backplane.clone()).is_err() {
            return false;
        }
        let mut interests = Interests::default();
        for rule in &self.config.history {
            if !self.is_queue(&rule.pattern) {
                let interest = if pattern::is_pattern(&rule.pattern) {
                    Interest::Pattern(rule.pattern.as_str().into())
                } else {
                    Interest::Exact(rule.pattern.as_str().into())
                };
                interests.add(interest, &*backplane);
            }
        }
        let held = state
            .exact
            .iter()
            .flat_map(|(route, keys)| keys.iter().map(move |_| route.as_str()))
            .chain(state.patterns.iter().map(|(p, _)| p.as_str()));
        let hosts = self.host_subs.read();
        for route in held.chain(hosts.iter().map(|s| s.pattern.as_str())) {
            if let Some(interest) = interest_of(&state.streams, route, self.is_queue(route)) {
                interests.add(interest, &*backplane);
            }
        }
        drop(hosts);
        state.cluster = Some(Cluster {
            backplane,
            interests,
        });
        true
    }

    /// Cluster mode: what a subscription made just now waits for before its RECEIPT (see
    /// [`Backplane::pending_confirmation`]).
    pub fn cluster_confirmation(&self) -> Option<(Arc<journal::DurableSignal>, journal::Ticket)> {
        self.backplane.get()?.pending_confirmation()
    }

    /// Cluster mode, after the engine was out of reach (or before this node first reached
    /// it): publications of other nodes may be missing from the histories, so every one
    /// starts a new epoch — a resume says `x-recovered:false` instead of claiming a complete
    /// replay. Returns how many histories were restarted.
    pub fn history_gap(&self) -> usize {
        let mut state = self.state.lock();
        let State {
            streams, journal, ..
        } = &mut *state;
        let forgotten = streams.forget_all();
        if let Some(journal) = journal.as_ref() {
            for route in streams.take_evicted() {
                journal.append(Record::DropStream {
                    route: route.into(),
                });
            }
        }
        if !forgotten.is_empty() {
            tracing::warn!(
                histories = forgotten.len(),
                "cluster engine was out of reach: histories start new epochs"
            );
        }
        forgotten.len()
    }

    /// Cluster mode: the interests this node holds.
    #[cfg(test)]
    pub fn interests(&self) -> Vec<Interest> {
        self.state
            .lock()
            .cluster
            .as_ref()
            .map(|c| c.interests.all())
            .unwrap_or_default()
    }

    /// Cluster mode: delivers a publication of another node to the local subscriptions that
    /// `reach` stands for. Recorded in this node's history (once: by its own destination, or
    /// by the pattern of the history rule that covers it); never sent on to other nodes.
    pub fn deliver_remote(&self, route: &str, message: Arc<Message>, reach: Reach<'_>) {
        if self.is_queue(route) {
            return;
        }
        let owner = match reach {
            Reach::Exact => true,
            Reach::Patterns(set) => self
                .config
                .history
                .iter()
                .find(|rule| rule.covers(route))
                .is_some_and(|rule| {
                    pattern::is_pattern(&rule.pattern) && set.iter().any(|p| **p == *rule.pattern)
                }),
        };
        // With a durable store the exact side waits for the commit (like a local publish).
        let mut exact_now = owner;
        if owner {
            match self.publish_durable(route, &message, &mut Vec::new(), true) {
                Ok(Some(_)) => exact_now = false,
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(route, %why, "a publication from another node was not stored");
                    exact_now = false;
                }
            }
        }
        let mut state = self.state.lock();
        let mut message = message;
        if exact_now {
            message = state
                .streams
                .record(route, &message, Instant::now(), false)
                .map_or(message, |recorded| recorded.message);
            self.fan_out(&mut state, route, &message, Targets::Exact, &mut Vec::new());
        }
        if let Reach::Patterns(set) = reach {
            self.fan_out(
                &mut state,
                route,
                &message,
                Targets::Patterns(set),
                &mut Vec::new(),
            );
        }
        drop(state);
        if exact_now {
            self.notify_host_subscriptions(route, &message, Targets::Exact);
        }
        if let Reach::Patterns(set) = reach {
            self.notify_host_subscriptions(route, &message, Targets::Patterns(set));
        }
    }

    /// Delivers the persisted messages whose records are committed, up to `ticket` (the
    /// store calls this after each commit): history entries to the destination's
    /// subscribers, queue messages onto their queue.
    pub fn release_durable(&self, ticket: Ticket) {
        // In slices, so that a large commit does not hold the lock for the whole fan-out.
        const SLICE: usize = 256;
        loop {
            let more = self.release_slice(ticket, SLICE);
            if !more {
                return;
            }
        }
    }

    /// Releases up to `limit` messages committed up to `ticket`; true when more wait.
    fn release_slice(&self, ticket: Ticket, limit: usize) -> bool {
        let mut released = Vec::new();
        let mut state = self.state.lock();
        let mut touched: Vec<String> = Vec::new();
        let mut count = 0;
        while count < limit && state.unreleased.front().is_some_and(|u| u.ticket <= ticket) {
            let Some(u) = state.unreleased.pop_front() else {
                break;
            };
            count += 1;
            match &u.position {
                Some((epoch, offset)) => {
                    state.streams.release(&u.route, epoch, *offset);
                    let targets = if u.remote {
                        Targets::Exact
                    } else {
                        Targets::All
                    };
                    self.fan_out(&mut state, &u.route, &u.message, targets, &mut Vec::new());
                    if !u.remote
                        && let Some(cluster) = &state.cluster
                    {
                        cluster.backplane.publish(&u.route, &u.message);
                    }
                }
                None => {
                    let queue = state.queues.entry(u.route.to_string()).or_default();
                    queue.unreleased = queue.unreleased.saturating_sub(1);
                    queue.pending.push_back(Pending {
                        message: u.message.clone(),
                        redelivered: false,
                        avoid: None,
                    });
                    if !touched.iter().any(|t| **t == *u.route) {
                        touched.push(u.route.to_string());
                    }
                }
            }
            if self.host_sub_count.load(Relaxed) > 0 {
                released.push(u);
            }
        }
        for name in touched {
            state.dispatch(&name, &self.counters, &mut Vec::new());
        }
        let more = state.unreleased.front().is_some_and(|u| u.ticket <= ticket);
        drop(state);
        for u in released {
            let targets = if u.remote {
                Targets::Exact
            } else {
                Targets::All
            };
            self.notify_host_subscriptions(&u.route, &u.message, targets);
        }
        more
    }

    /// True when `route` names a competing-consumer queue.
    pub fn is_queue(&self, route: &str) -> bool {
        route.starts_with(&self.config.queue_prefix)
    }

    /// Adds a connected session. `ack_header` is true for STOMP 1.2 sessions.
    pub fn register_session(
        &self,
        session: u64,
        outbox: Arc<Outbox>,
        ack_header: bool,
        user: Option<String>,
    ) {
        let entry = SessionEntry {
            outbox,
            ack_header,
            user,
            subs: SubMap::default(),
            next_seq: 1,
            unacked: BTreeMap::new(),
        };
        if self.state.lock().sessions.insert(session, entry).is_none() {
            stats::add(&self.counters.sessions, 1);
        }
    }

    /// Removes a session: its subscriptions end and its unacknowledged queue messages are
    /// redelivered to other consumers.
    pub fn unregister_session(&self, session: u64) {
        let mut state = self.state.lock();
        let Some(mut entry) = state.sessions.remove(&session) else {
            return;
        };
        stats::sub(&self.counters.sessions, 1);
        let subs: Vec<Subscription> = entry.subs.drain().into_iter().map(|(_, s)| *s).collect();
        let mut touched = Vec::new();
        for sub in &subs {
            let key = SubKey {
                session,
                sub: sub.spec.id.clone(),
            };
            state.unindex(&key, sub);
            self.leave_presence(&mut state, &key, sub);
            if sub.queue {
                touched.push(sub.spec.route.clone());
            }
        }
        stats::sub(&self.counters.subscriptions, subs.len() as u64);
        let unacked = std::mem::take(&mut entry.unacked);
        state.requeue(unacked.into_values(), session, &mut touched);
        for name in touched {
            state.dispatch(&name, &self.counters, &mut Vec::new());
        }
    }

    /// Subscribes a session. Queue destinations take no wildcards. On a destination with a
    /// history, what the SUBSCRIBE asked for (`spec.resume`) is queued first — in the same
    /// critical section as the registration, so no publish falls between replay and live.
    pub fn subscribe(
        &self,
        session: u64,
        mut spec: SubscribeSpec,
    ) -> Result<Subscribed, BrokerError> {
        let queue = self.is_queue(&spec.route);
        if queue && pattern::is_pattern(&spec.route) {
            return refuse(format!(
                "wildcards are not supported on queue destinations: {}",
                spec.route
            ));
        }
        if !spec.resume.is_empty() && (queue || pattern::is_pattern(&spec.route)) {
            return refuse(format!(
                "x-since and x-last need one history destination, not a queue or pattern: {}",
                spec.route
            ));
        }
        if spec.presence.listen && (queue || pattern::is_pattern(&spec.route)) {
            return refuse(format!(
                "x-presence needs one topic destination, not a queue or pattern: {}",
                spec.route
            ));
        }
        let mut state = self.state.lock();
        let Some(entry) = state.sessions.get_mut(&session) else {
            return refuse("session is not connected");
        };
        if entry.subs.contains_key(&spec.id) {
            return refuse(format!("subscription id '{}' is already in use", spec.id));
        }
        if entry.subs.len() >= self.config.max_subscriptions_per_session {
            return refuse(format!(
                "too many subscriptions: at most {} per session",
                self.config.max_subscriptions_per_session
            ));
        }
        let key = SubKey {
            session,
            sub: spec.id.clone(),
        };
        let route = spec.route.clone();
        let sub_id = spec.id.clone();
        let resume = std::mem::take(&mut spec.resume);
        let presence = std::mem::take(&mut spec.presence);
        let user = entry.user.clone();
        entry.subs.insert(
            spec.id.clone(),
            Box::new(Subscription {
                spec,
                unacked: 0,
                queue,
            }),
        );
        stats::add(&self.counters.subscriptions, 1);
        let mut subscribed = Subscribed::default();
        if !queue && !pattern::is_pattern(&route) {
            subscribed = self.replay(&mut state, session, &sub_id, &route, &resume);
        }
        state.add_interest(&route, queue);
        if queue {
            state
                .queues
                .entry(route.clone())
                .or_default()
                .consumers
                .push(key);
            state.dispatch(&route, &self.counters, &mut Vec::new());
        } else if pattern::is_pattern(&route) {
            state.patterns.push((route, key));
        } else {
            if state.rooms.tracks(&route, &presence) {
                let member = PresenceMember {
                    session,
                    user,
                    info: presence.info,
                };
                subscribed.presence_count =
                    Some(self.join_presence(&mut state, &route, &sub_id, member, presence.listen));
            }
            state.exact.entry(route).or_default().push(key);
        }
        Ok(subscribed)
    }

    /// Adds a member to `route`'s presence: the other listeners get the join, a listening
    /// newcomer the snapshot. Returns the member count.
    fn join_presence(
        &self,
        state: &mut State,
        route: &str,
        sub_id: &Arc<str>,
        member: PresenceMember,
        listen: bool,
    ) -> usize {
        let session = member.session;
        let id = self.next_message_id();
        let change = state.rooms.join(route, sub_id.clone(), member, listen, id);
        if listen
            && let Some(snapshot) = state.rooms.snapshot(route, self.next_message_id())
            && let Some(entry) = state.sessions.get_mut(&session)
        {
            let _ = deliver(
                session,
                entry,
                sub_id,
                &snapshot,
                Mark::Fresh,
                None,
                &self.counters,
            );
        }
        let count = change.count;
        self.announce(state, change);
        count
    }

    /// Removes the member of an ending broadcast subscription and tells the listeners.
    fn leave_presence(&self, state: &mut State, key: &SubKey, sub: &Subscription) {
        if sub.queue || pattern::is_pattern(&sub.spec.route) {
            return;
        }
        let id = self.next_message_id();
        if let Some(change) = state
            .rooms
            .leave(&sub.spec.route, key.session, &key.sub, id)
        {
            self.announce(state, change);
        }
    }

    /// Queues a presence change for its listeners (nothing above the event limit).
    fn announce(&self, state: &mut State, change: presence::Change) {
        let Some(event) = change.event else {
            return;
        };
        for (session, sub_id) in &change.listeners {
            if let Some(entry) = state.sessions.get_mut(session) {
                let _ = deliver(
                    *session,
                    entry,
                    sub_id,
                    &event,
                    Mark::Fresh,
                    None,
                    &self.counters,
                );
            }
        }
    }

    /// The members of `route`'s presence (count 0 when it has none).
    pub fn presence(&self, route: &str) -> Presence {
        self.state.lock().rooms.presence(route)
    }

    /// Destinations with presence members and how many each has (for `/metrics`).
    pub fn presence_counts(&self) -> Vec<(String, usize)> {
        self.state.lock().rooms.counts()
    }

    /// Queues what a new subscription gets from its destination's history (under the lock
    /// `subscribe` holds), bounded so that the replay never makes it a slow consumer: past
    /// half its queue's message or byte cap the oldest are left out, and a resume is then
    /// reported incomplete.
    fn replay(
        &self,
        state: &mut State,
        session: u64,
        sub_id: &Arc<str>,
        route: &str,
        resume: &ResumeRequest,
    ) -> Subscribed {
        let max = self.config.max_replay_messages();
        let mut replay = state.streams.replay(route, resume, max, Instant::now());
        let budget = self.config.max_replay_bytes();
        let mut bytes = 0;
        let keep = replay
            .messages
            .iter()
            .rev()
            .take_while(|m| {
                bytes += m.body().len() + 64;
                bytes <= budget
            })
            .count();
        if keep < replay.messages.len() {
            replay.messages.drain(..replay.messages.len() - keep);
            replay.recovered = replay.recovered.map(|_| false);
        }
        let Some(entry) = state.sessions.get_mut(&session) else {
            return Subscribed::default();
        };
        let mut replayed = 0;
        for (i, message) in replay.messages.iter().enumerate() {
            let mark = match replay.recovered {
                Some(recovered) if i == 0 => Mark::Resumed(recovered),
                _ => Mark::Fresh,
            };
            if deliver(session, entry, sub_id, message, mark, None, &self.counters).is_ok() {
                replayed += 1;
            }
        }
        Subscribed {
            recovered: replay.recovered,
            position: replay.position,
            replayed,
            presence_count: None,
        }
    }

    /// The retained messages of `route` after offset `since` (at most `limit`); `None` when no
    /// history rule covers `route`.
    pub fn history(&self, route: &str, since: u64, limit: usize) -> Option<HistoryPage> {
        self.state
            .lock()
            .streams
            .read(route, since, limit, Instant::now())
    }

    /// Destinations with a history and how many messages each retains (for `/metrics`).
    pub fn history_sizes(&self) -> Vec<(String, usize)> {
        self.state.lock().streams.sizes()
    }

    /// Ends a subscription; its unacknowledged queue messages go back to the queue.
    pub fn unsubscribe(&self, session: u64, id: &str) -> Result<(), BrokerError> {
        let mut state = self.state.lock();
        let Some(entry) = state.sessions.get_mut(&session) else {
            return refuse("session is not connected");
        };
        let Some(sub) = entry.subs.remove(id) else {
            return refuse(format!("no subscription with id '{id}'"));
        };
        let seqs: Vec<u64> = entry
            .unacked
            .iter()
            .filter(|(_, u)| &*u.subscription == id)
            .map(|(seq, _)| *seq)
            .collect();
        let unacked: Vec<Unacked> = seqs
            .iter()
            .filter_map(|seq| entry.unacked.remove(seq))
            .collect();
        stats::sub(&self.counters.subscriptions, 1);
        let key = SubKey {
            session,
            sub: sub.spec.id.clone(),
        };
        state.unindex(&key, &sub);
        self.leave_presence(&mut state, &key, &sub);
        let mut touched = Vec::new();
        if sub.queue {
            touched.push(sub.spec.route.clone());
        }
        state.requeue(unacked.into_iter(), session, &mut touched);
        for name in touched {
            state.dispatch(&name, &self.counters, &mut Vec::new());
        }
        Ok(())
    }

    #[cfg(test)]
    /// Publishes to `route` (queue or broadcast) and then to matching host subscriptions.
    /// Returns how many client subscriptions it was queued to (0 for a queue that holds it);
    /// adds to `congestion` the outbound queues it left congested — the publisher should pause
    /// until they are relieved. A queue found stuck is closed as a slow consumer instead.
    pub fn publish(
        &self,
        route: &str,
        message: Arc<Message>,
        congestion: &mut Congestion,
    ) -> Result<usize, BrokerError> {
        self.publish_recorded(route, message, congestion)
            .map(|published| published.delivered)
    }

    /// [`Broker::publish`], also telling where the message went in its destination's history.
    pub fn publish_recorded(
        &self,
        route: &str,
        message: Arc<Message>,
        congestion: &mut Congestion,
    ) -> Result<Published, BrokerError> {
        if let Some(published) = self.publish_durable(route, &message, congestion, false)? {
            stats::add(&self.counters.messages_in, 1);
            return Ok(published);
        }
        let (delivered, message) = if self.is_queue(route) {
            (self.enqueue(route, message.clone(), congestion)?, message)
        } else {
            self.broadcast(route, message, congestion)
        };
        stats::add(&self.counters.messages_in, 1);
        self.notify_host_subscriptions(route, &message, Targets::All);
        let offset = message
            .header(history::OFFSET_HEADER)
            .and_then(|o| o.parse().ok());
        Ok(Published {
            delivered,
            offset,
            durable: None,
        })
    }

    /// With a durable store, a publish to a queue or history destination: journaled now,
    /// delivered once committed ([`Broker::release_durable`]). `None` when `route` is not
    /// persisted. `remote`: a publication of another node (cluster mode), never a queue's.
    fn publish_durable(
        &self,
        route: &str,
        message: &Arc<Message>,
        congestion: &mut Congestion,
        remote: bool,
    ) -> Result<Option<Published>, BrokerError> {
        // Without a store, or for a destination nothing persists, this costs no lock.
        let Some(journal) = self.journal.get() else {
            return Ok(None);
        };
        let queue = self.is_queue(route);
        if !queue && !self.config.history.iter().any(|r| r.covers(route)) {
            return Ok(None);
        }
        if let Some(why) = journal.refusal() {
            return refuse(why);
        }
        if !queue {
            // The subscribers this will reach later: a publisher into congested ones pauses
            // now, as for a message delivered at once.
            for outbox in self.congested_targets(route) {
                if !congestion.iter().any(|o| Arc::ptr_eq(o, &outbox)) {
                    congestion.push(outbox);
                }
            }
        }
        let mut state = self.state.lock();
        if queue {
            state.note_waiting_consumers(route, congestion);
        }
        let State {
            journal,
            streams,
            queues,
            unreleased,
            ..
        } = &mut *state;
        let Some(journal) = journal.as_ref() else {
            return Ok(None);
        };
        let route_key: Arc<str> = route.into();
        if queue {
            let entry = queues.entry(route.to_string()).or_default();
            if entry.pending.len() + entry.unreleased >= self.config.max_queue_depth {
                return refuse(format!(
                    "queue {route} is full ({} messages waiting)",
                    self.config.max_queue_depth
                ));
            }
            entry.unreleased += 1;
            let ticket = journal.append(Record::Enqueue {
                route: route_key.clone(),
                message: message.clone(),
            });
            unreleased.push_back(Unreleased {
                ticket,
                route: route_key,
                message: message.clone(),
                position: None,
                remote: false,
            });
            return Ok(Some(Published {
                delivered: 0,
                offset: None,
                durable: Some(ticket),
            }));
        }
        let Some(recorded) = streams.record(route, message, Instant::now(), true) else {
            return Ok(None);
        };
        for evicted in streams.take_evicted() {
            journal.append(Record::DropStream {
                route: evicted.into(),
            });
        }
        let ticket = journal.append(Record::Append {
            route: route_key.clone(),
            epoch: recorded.epoch.clone(),
            offset: recorded.offset,
            keep_from: recorded.keep_from,
            at_ms: journal::unix_ms(),
            message: recorded.message.clone(),
        });
        unreleased.push_back(Unreleased {
            ticket,
            route: route_key,
            message: recorded.message,
            position: Some((recorded.epoch, recorded.offset)),
            remote,
        });
        Ok(Some(Published {
            delivered: 0,
            offset: Some(recorded.offset),
            durable: Some(ticket),
        }))
    }

    /// True when a host subscription matching `route` has its callback thread's queue backed up
    /// (see [`Executor::is_backed_up`]): a host publish there is refused, so that messages from
    /// clients, which cannot be refused, still find room.
    pub fn host_callbacks_behind(&self, route: &str) -> bool {
        if self.host_sub_count.load(Relaxed) == 0 {
            return false;
        }
        self.host_subs.read().iter().any(|s| {
            s.runs == HostCallbackRuns::OnCallbackThread
                && (s.pattern == route || pattern::matches(&s.pattern, route))
                && self.executor.is_backed_up(s.id)
        })
    }

    /// The outbound queues a publish to `route` would reach that are congested right now (a
    /// host publish is refused while there are any, so that retrying it duplicates nothing).
    /// Stuck ones are closed as slow consumers on the way and not returned. Queue destinations
    /// report none: their bound is `max_queue_depth`.
    pub fn congested_targets(&self, route: &str) -> Congestion {
        let mut congested: Congestion = Vec::new();
        if self.is_queue(route) {
            return congested;
        }
        let state = self.state.lock();
        if let Some(outbox) = self.backplane.get().and_then(|b| b.congested()) {
            congested.push(outbox);
        }
        for_each_target(
            &state.exact,
            &state.patterns,
            &self.config.user_prefix,
            route,
            Targets::All,
            |key| {
                let Some(entry) = state.sessions.get(&key.session) else {
                    return;
                };
                let lossy = entry.subs.get(&key.sub).is_some_and(|sub| sub.is_lossy());
                let outbox = &entry.outbox;
                if lossy || !outbox.is_congested() {
                    return;
                }
                if outbox.close_if_stuck() {
                    stats::count_overflow(&self.counters, outbox);
                } else if !congested.iter().any(|o| Arc::ptr_eq(o, outbox)) {
                    congested.push(outbox.clone());
                }
            },
        );
        congested
    }

    fn enqueue(
        &self,
        route: &str,
        message: Arc<Message>,
        congestion: &mut Congestion,
    ) -> Result<usize, BrokerError> {
        let mut state = self.state.lock();
        let queue = state.queues.entry(route.to_string()).or_default();
        if queue.pending.len() >= self.config.max_queue_depth {
            return refuse(format!(
                "queue {route} is full ({} messages waiting)",
                self.config.max_queue_depth
            ));
        }
        queue.pending.push_back(Pending {
            message,
            redelivered: false,
            avoid: None,
        });
        let delivered = state.dispatch(route, &self.counters, congestion);
        state.note_waiting_consumers(route, congestion);
        Ok(delivered)
    }

    /// Delivers to every matching subscription; returns how many, and the message as
    /// delivered (with its history position when its destination keeps one).
    fn broadcast(
        &self,
        route: &str,
        message: Arc<Message>,
        congestion: &mut Congestion,
    ) -> (usize, Arc<Message>) {
        let mut state = self.state.lock();
        if let Some(cluster) = &state.cluster {
            // Under the lock: the other nodes get this node's publications in its order.
            cluster.backplane.publish(route, &message);
            if let Some(outbox) = cluster.backplane.congested()
                && !congestion.iter().any(|o| Arc::ptr_eq(o, &outbox))
            {
                congestion.push(outbox);
            }
        }
        let message = state
            .streams
            .record(route, &message, Instant::now(), false)
            .map_or(message, |recorded| recorded.message);
        let delivered = self.fan_out(&mut state, route, &message, Targets::All, congestion);
        (delivered, message)
    }

    /// Queues `message` to every broadcast subscription among `targets` matching `route`;
    /// returns how many.
    fn fan_out(
        &self,
        state: &mut State,
        route: &str,
        message: &Arc<Message>,
        targets: Targets<'_>,
        congestion: &mut Congestion,
    ) -> usize {
        let State {
            sessions,
            exact,
            patterns,
            ..
        } = state;
        let mut delivered = 0;
        let counters = &*self.counters;
        let prefix = &self.config.user_prefix;
        for_each_target(exact, patterns, prefix, route, targets, |key| {
            let Some(entry) = sessions.get_mut(&key.session) else {
                return;
            };
            let Some(sub) = entry.subs.get(&key.sub) else {
                return;
            };
            if !sub.has_capacity() {
                // A client-ack subscriber on a broadcast destination that stopped acking:
                // drop for it alone rather than grow without bound.
                stats::count_dropped(counters, key.session, &key.sub, message.destination(), 1);
                return;
            }
            if deliver(
                key.session,
                entry,
                &key.sub,
                message,
                Mark::Fresh,
                None,
                counters,
            )
            .is_ok()
            {
                delivered += 1;
            }
            note_congestion(entry, congestion);
        });
        delivered
    }

    /// Acknowledges (or, with `nack`, rejects) the delivery `ack_id` of `session`.
    /// `subscription`, when given (STOMP 1.1), must be the delivery's subscription. With a
    /// durable store, the ticket after which the consumed queue messages are gone from it
    /// (a RECEIPT for the ACK waits for that).
    pub fn acknowledge(
        &self,
        session: u64,
        ack_id: &str,
        subscription: Option<&str>,
        nack: bool,
    ) -> Result<Option<Ticket>, BrokerError> {
        let seq = parse_ack_id(session, ack_id)
            .ok_or_else(|| BrokerError(format!("unknown ack id '{ack_id}'")))?;
        let mut state = self.state.lock();
        let Some(entry) = state.sessions.get_mut(&session) else {
            return refuse("session is not connected");
        };
        let Some(first) = entry.unacked.get(&seq) else {
            return refuse(format!(
                "unknown ack id '{ack_id}': not delivered to this session, or already acknowledged"
            ));
        };
        let sub_id = first.subscription.clone();
        if subscription.is_some_and(|s| s != &*sub_id) {
            return refuse(format!(
                "message '{ack_id}' was not delivered to subscription '{}'",
                subscription.unwrap_or_default()
            ));
        }
        let mode = entry.subs.get(&sub_id).map(|s| s.spec.ack);
        let seqs: Vec<u64> = if mode == Some(AckMode::Client) {
            entry
                .unacked
                .range(..=seq)
                .filter(|(_, u)| u.subscription == sub_id)
                .map(|(s, _)| *s)
                .collect()
        } else {
            vec![seq]
        };
        let done: Vec<Unacked> = seqs
            .iter()
            .filter_map(|s| entry.unacked.remove(s))
            .collect();
        let mut touched = Vec::new();
        if let Some(sub) = entry.subs.get_mut(&sub_id) {
            sub.unacked -= done.len().min(sub.unacked);
            if sub.queue {
                touched.push(sub.spec.route.clone());
            }
        }
        let mut ticket = None;
        if nack {
            state.requeue(done.into_iter(), session, &mut touched);
        } else {
            ticket = state.consumed(
                done.iter()
                    .filter_map(|u| Some((u.queue.as_deref()?, &u.message))),
            );
        }
        for name in touched {
            state.dispatch(&name, &self.counters, &mut Vec::new());
        }
        Ok(ticket)
    }

    /// Delivers to the broadcast subscriptions of one session that match `destination`, written
    /// as that session would subscribe to it (`/user/queue/x` means its own user queue). For an
    /// application handler's reply to its sender. Returns how many subscriptions got it.
    pub fn publish_to_session(
        &self,
        session: u64,
        destination: &str,
        message: Arc<Message>,
        congestion: &mut Congestion,
    ) -> Result<usize, BrokerError> {
        let mut state = self.state.lock();
        let Some(entry) = state.sessions.get_mut(&session) else {
            return refuse(format!("no session {session}"));
        };
        let route = destination::subscribe_route(
            destination,
            &self.config.user_prefix,
            entry.user.as_deref(),
        )?;
        let targets: Vec<Arc<str>> = entry
            .subs
            .values()
            .filter(|s| {
                !s.queue
                    && s.has_capacity()
                    && (s.spec.route == route || pattern::matches(&s.spec.route, &route))
            })
            .map(|s| s.spec.id.clone())
            .collect();
        let mut delivered = 0;
        for sub in &targets {
            if deliver(
                session,
                entry,
                sub,
                &message,
                Mark::Fresh,
                None,
                &self.counters,
            )
            .is_ok()
            {
                delivered += 1;
            }
        }
        note_congestion(entry, congestion);
        stats::add(&self.counters.messages_in, 1);
        drop(state);
        self.notify_host_subscriptions(&route, &message, Targets::All);
        Ok(delivered)
    }

    /// Closes a session from the host side with an ERROR carrying `reason`.
    pub fn disconnect_session(&self, session: u64, reason: &str) -> Result<(), BrokerError> {
        let state = self.state.lock();
        let Some(entry) = state.sessions.get(&session) else {
            return refuse(format!("no session {session}"));
        };
        entry.outbox.close(CloseReason::error(
            crate::ws::codes::POLICY_VIOLATION,
            reason,
        ));
        Ok(())
    }

    #[cfg(test)]
    /// Ids of the sessions currently registered.
    pub fn session_ids(&self) -> Vec<u64> {
        self.state.lock().sessions.keys().copied().collect()
    }

    #[cfg(test)]
    /// Messages waiting in a queue (for tests and stats).
    pub fn queue_depth(&self, route: &str) -> usize {
        self.state
            .lock()
            .queues
            .get(route)
            .map_or(0, |q| q.pending.len())
    }

    /// Adds a host subscription to `pattern` (any destination, queue or broadcast: the host
    /// sees every message without consuming it). Returns its id, never reused.
    pub fn add_host_subscription(&self, pattern: &str, callback: HostCallback) -> u64 {
        self.add_host_subscription_with(pattern, HostCallbackRuns::OnCallbackThread, |_| callback)
    }

    /// Like [`Broker::add_host_subscription`], for a callback that needs its own id.
    pub fn add_host_subscription_with(
        &self,
        pattern: &str,
        runs: HostCallbackRuns,
        make_callback: impl FnOnce(u64) -> HostCallback,
    ) -> u64 {
        let id = self.next_host_sub.fetch_add(1, Relaxed);
        let callback = make_callback(id);
        let mut state = self.state.lock();
        state.add_interest(pattern, self.is_queue(pattern));
        let mut subs = self.host_subs.write();
        subs.push(HostSubscription {
            id,
            pattern: pattern.to_string(),
            callback,
            runs,
        });
        self.host_sub_count.store(subs.len(), Relaxed);
        id
    }

    /// Removes a host subscription; false when the id is unknown.
    pub fn remove_host_subscription(&self, id: u64) -> bool {
        let mut state = self.state.lock();
        let mut subs = self.host_subs.write();
        let Some(at) = subs.iter().position(|s| s.id == id) else {
            return false;
        };
        let removed = subs.remove(at);
        self.host_sub_count.store(subs.len(), Relaxed);
        state.remove_interest(&removed.pattern, self.is_queue(&removed.pattern));
        true
    }

    /// Hands `message` to host subscription `id` alone (messages of relayed destinations,
    /// which arrive from the external broker per host subscription). False when `id` is gone.
    pub fn deliver_to_host_subscription(&self, id: u64, message: &Arc<Message>) -> bool {
        let callback = self
            .host_subs
            .read()
            .iter()
            .find(|s| s.id == id)
            .map(|s| (s.callback.clone(), s.runs));
        callback.is_some_and(|(callback, runs)| self.run_host_callback(id, callback, runs, message))
    }

    /// Hands `message` to a host subscription's callback on its callback lane; a full lane
    /// drops it (counted in `dropped`, logged) rather than block the publisher.
    fn run_host_callback(
        &self,
        id: u64,
        callback: HostCallback,
        runs: HostCallbackRuns,
        message: &Arc<Message>,
    ) -> bool {
        if runs == HostCallbackRuns::Inline {
            callback(message);
            return true;
        }
        let queued = message.clone();
        if self
            .executor
            .try_run(id, Box::new(move || callback(&queued)))
        {
            return true;
        }
        stats::add(&self.counters.dropped, 1);
        tracing::warn!(
            subscription = id,
            destination = message.destination(),
            "host subscription's callback queue is full: message dropped"
        );
        false
    }

    fn notify_host_subscriptions(&self, route: &str, message: &Arc<Message>, targets: Targets) {
        if self.host_sub_count.load(Relaxed) == 0 {
            return;
        }
        let callbacks: Vec<(u64, HostCallback, HostCallbackRuns)> = self
            .host_subs
            .read()
            .iter()
            .filter(|s| match targets {
                Targets::All => s.pattern == route || pattern::matches(&s.pattern, route),
                Targets::Exact => s.pattern == route,
                Targets::Patterns(set) => {
                    set.iter().any(|p| **p == *s.pattern) && pattern::matches(&s.pattern, route)
                }
            })
            .map(|s| (s.id, s.callback.clone(), s.runs))
            .collect();
        for (id, callback, runs) in callbacks {
            self.run_host_callback(id, callback, runs, message);
        }
    }
}

/// The interest a subscription to `route` holds in the other nodes' publications: none for a
/// queue's (queues stay on their node) or for a destination under a history rule with
/// wildcards (the rule's pattern, held for good, brings it: see [`backplane`]).
fn interest_of(streams: &Streams, route: &str, queue: bool) -> Option<Interest> {
    if queue {
        return None;
    }
    if pattern::is_pattern(route) {
        return Some(Interest::Pattern(route.into()));
    }
    match streams.rule_for(route) {
        Some(rule) if pattern::is_pattern(&rule.pattern) => None,
        _ => Some(Interest::Exact(route.into())),
    }
}

/// Which of the subscriptions matching a destination a delivery is for.
#[derive(Clone, Copy, Debug)]
enum Targets<'a> {
    /// All of them (a publication made on this node).
    All,
    /// The exact ones (a publication of another node that came by its own destination).
    Exact,
    /// Those with one of these patterns (one that came by an engine pattern subscription).
    Patterns(&'a [Arc<str>]),
}

/// Calls `f` for each broadcast subscription among `targets` matching `route` (exact ones,
/// then patterns).
fn for_each_target(
    exact: &HashMap<String, Vec<SubKey>>,
    patterns: &[(String, SubKey)],
    user_prefix: &str,
    route: &str,
    targets: Targets<'_>,
    mut f: impl FnMut(&SubKey),
) {
    if matches!(targets, Targets::All | Targets::Exact)
        && let Some(keys) = exact.get(route)
    {
        keys.iter().for_each(&mut f);
    }
    let wanted = |pattern: &str| match targets {
        Targets::All => true,
        Targets::Exact => false,
        Targets::Patterns(set) => set.iter().any(|p| **p == *pattern),
    };
    // A user's private destinations are never reached by a broad pattern (`/**`) of someone
    // else: only patterns under the user prefix (which subscribe_route scopes to the
    // subscriber's own name) may match them.
    let private = route.starts_with(user_prefix);
    for (pattern, key) in patterns {
        if (!private || pattern.starts_with(user_prefix))
            && wanted(pattern)
            && pattern::matches(pattern, route)
        {
            f(key);
        }
    }
}

/// Outbound queues a publisher should wait for (see [`Broker::publish`]).
pub type Congestion = Vec<Arc<Outbox>>;

/// What a publish did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Client subscriptions it was queued to (0 for a queue that holds it).
    pub delivered: usize,
    /// Its offset in the destination's history, when the destination keeps one.
    pub offset: Option<u64>,
    /// With a durable store, the journal ticket after which it is on disk (and only then
    /// delivered): a RECEIPT for it waits for that.
    pub durable: Option<Ticket>,
}

/// What a new subscription started with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscribed {
    /// A resume (`x-since`): whether it got every message missed.
    pub recovered: Option<bool>,
    /// The destination's history position when the subscription started, if it keeps one.
    pub position: Option<StreamPosition>,
    /// Retained messages delivered before the live ones.
    pub replayed: usize,
    /// The destination's presence member count, when the subscription is a member.
    pub presence_count: Option<usize>,
}

/// Records `entry`'s outbox in `congestion` when the delivery just made left it congested.
fn note_congestion(entry: &SessionEntry, congestion: &mut Congestion) {
    let outbox = &entry.outbox;
    if outbox.is_congested() && !congestion.iter().any(|o| Arc::ptr_eq(o, outbox)) {
        congestion.push(outbox.clone());
    }
}

/// Parses `{session}-{seq}`, the form of every `message-id` / `ack` this broker writes.
fn parse_ack_id(session: u64, ack_id: &str) -> Option<u64> {
    let (s, seq) = ack_id.split_once('-')?;
    if s.parse::<u64>().ok()? != session {
        return None;
    }
    seq.parse().ok()
}

/// Queues one MESSAGE to one subscription, tracking it when the subscription acknowledges.
fn deliver(
    session: u64,
    entry: &mut SessionEntry,
    sub_id: &Arc<str>,
    message: &Arc<Message>,
    mark: Mark,
    queue: Option<&str>,
    counters: &Counters,
) -> Result<(), PushError> {
    let Some(sub) = entry.subs.get_mut(sub_id) else {
        return Err(PushError::Closed);
    };
    let seq = entry.next_seq;
    let tracked = sub.spec.ack != AckMode::Auto;
    let delivery = Delivery {
        session,
        seq,
        subscription: sub.spec.id.clone(),
        ack_header: entry.ack_header && tracked,
        redelivered: mark == Mark::Redelivered,
        recovered: match mark {
            Mark::Resumed(recovered) => Some(recovered),
            _ => None,
        },
        requeued_if_lost: tracked && queue.is_some(),
        message: message.clone(),
    };
    let lossy = sub.is_lossy();
    let pushed = if lossy {
        let drop_oldest = sub.spec.policy == SlowConsumerPolicy::DropOldest;
        entry
            .outbox
            .push_lossy(Outbound::Message(delivery), drop_oldest)
            .and_then(|lossy| {
                let id = &sub.spec.id;
                let dropped = lossy.dropped as u64;
                stats::count_dropped(counters, session, id, message.destination(), dropped);
                // Not queued: not delivered, and no sequence number used.
                if lossy.queued {
                    Ok(())
                } else {
                    Err(PushError::Dropped)
                }
            })
    } else {
        entry
            .outbox
            .push_or_close_if_stuck(Outbound::Message(delivery))
    };
    match pushed {
        Ok(()) => {}
        Err(PushError::Overflow) => {
            stats::count_overflow(counters, &entry.outbox);
            if queue.is_none() {
                // A broadcast message that did not fit is lost for this subscriber (a queue
                // message goes back to its queue).
                stats::count_dropped(counters, session, sub_id, message.destination(), 1);
            }
            return Err(PushError::Overflow);
        }
        Err(e) => return Err(e),
    }
    entry.next_seq += 1;
    stats::add(&counters.messages_out, 1);
    if tracked {
        sub.unacked += 1;
        entry.unacked.insert(
            seq,
            Unacked {
                subscription: sub.spec.id.clone(),
                message: message.clone(),
                queue: queue.map(str::to_string),
            },
        );
    }
    Ok(())
}

impl State {
    /// Removes a subscription from the routing indexes.
    fn unindex(&mut self, key: &SubKey, sub: &Subscription) {
        let route = &sub.spec.route;
        if sub.queue {
            if let Some(queue) = self.queues.get_mut(route) {
                queue.consumers.retain(|k| k != key);
                if queue.is_unused() {
                    self.queues.remove(route);
                }
            }
        } else if pattern::is_pattern(route) {
            self.patterns.retain(|(_, k)| k != key);
        } else if let Some(keys) = self.exact.get_mut(route) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.exact.remove(route);
            }
        }
        self.remove_interest(route, sub.queue);
    }

    /// Cluster mode: one more local holder of the interest in `route` (a subscription or
    /// host subscription; `queue` when it is a queue's, which stays on this node).
    fn add_interest(&mut self, route: &str, queue: bool) {
        if let Some(cluster) = &mut self.cluster
            && let Some(interest) = interest_of(&self.streams, route, queue)
        {
            cluster.interests.add(interest, &*cluster.backplane);
        }
    }

    /// Cluster mode: one local holder fewer of the interest in `route`.
    fn remove_interest(&mut self, route: &str, queue: bool) {
        if let Some(cluster) = &mut self.cluster
            && let Some(interest) = interest_of(&self.streams, route, queue)
        {
            cluster.interests.remove(&interest, &*cluster.backplane);
        }
    }

    /// Puts unacknowledged queue messages back at the front of their queues, in their
    /// original order, marked redelivered. Broadcast messages are simply dropped.
    fn requeue(
        &mut self,
        unacked: impl DoubleEndedIterator<Item = Unacked>,
        from_session: u64,
        touched: &mut Vec<String>,
    ) {
        for u in unacked.rev() {
            let Some(name) = u.queue else { continue };
            let queue = self.queues.entry(name.clone()).or_default();
            queue.pending.push_front(Pending {
                message: u.message,
                redelivered: true,
                avoid: Some(SubKey {
                    session: from_session,
                    sub: u.subscription,
                }),
            });
            if !touched.contains(&name) {
                touched.push(name);
            }
        }
    }

    /// When messages of queue `route` wait because its consumers' connections are congested,
    /// adds those to `congestion`: the publisher pauses until they drain, rather than filling
    /// the queue up to its depth limit.
    fn note_waiting_consumers(&self, route: &str, congestion: &mut Congestion) {
        let Some(queue) = self.queues.get(route) else {
            return;
        };
        if queue.pending.is_empty() {
            return;
        }
        for key in &queue.consumers {
            if let Some(entry) = self.sessions.get(&key.session) {
                note_congestion(entry, congestion);
            }
        }
    }

    /// Dispatches every queue `session` consumes (its connection's queue was relieved).
    fn feed(&mut self, session: u64, counters: &Counters) {
        let Some(entry) = self.sessions.get(&session) else {
            return;
        };
        let mut routes: Vec<String> = entry
            .subs
            .values()
            .filter(|s| s.queue)
            .map(|s| s.spec.route.clone())
            .collect();
        routes.sort_unstable();
        routes.dedup();
        for route in routes {
            self.dispatch(&route, counters, &mut Vec::new());
        }
    }

    /// Journals that these queue messages (queue, message) were consumed; the last ticket.
    fn consumed<'a>(
        &self,
        done: impl Iterator<Item = (&'a str, &'a Arc<Message>)>,
    ) -> Option<Ticket> {
        let journal = self.journal.as_ref()?;
        done.map(|(route, message)| {
            journal.append(Record::Dequeue {
                route: route.into(),
                id: message.id(),
            })
        })
        .last()
    }

    /// Hands waiting messages of queue `name` to consumers with capacity, round-robin.
    /// Returns how many were delivered.
    fn dispatch(&mut self, name: &str, counters: &Counters, congestion: &mut Congestion) -> usize {
        let State {
            sessions,
            queues,
            journal,
            ..
        } = self;
        let Some(queue) = queues.get_mut(name) else {
            return 0;
        };
        let mut delivered = 0;
        while let Some(front) = queue.pending.front() {
            let n = queue.consumers.len();
            let mut chosen = None;
            let mut fallback = None;
            for i in 0..n {
                let idx = (queue.next + i) % n;
                let key = &queue.consumers[idx];
                // A consumer whose connection is congested waits (it is fed again once
                // relieved) instead of being pushed into a slow-consumer close.
                let ready = sessions.get(&key.session).is_some_and(|e| {
                    e.subs.get(&key.sub).is_some_and(|s| s.has_capacity())
                        && !e.outbox.is_closing()
                        && (!e.outbox.is_congested() || !e.outbox.mark_starving(key.session))
                });
                if !ready {
                    continue;
                }
                if front.avoid.as_ref() == Some(key) {
                    fallback.get_or_insert(idx);
                } else {
                    chosen = Some(idx);
                    break;
                }
            }
            let Some(idx) = chosen.or(fallback) else {
                break;
            };
            let pending = queue.pending.pop_front().expect("front checked above");
            let key = queue.consumers[idx].clone();
            queue.next = (idx + 1) % n;
            let entry = sessions.get_mut(&key.session).expect("checked ready above");
            let auto = entry
                .subs
                .get(&key.sub)
                .is_some_and(|s| s.spec.ack == AckMode::Auto);
            match deliver(
                key.session,
                entry,
                &key.sub,
                &pending.message,
                if pending.redelivered {
                    Mark::Redelivered
                } else {
                    Mark::Fresh
                },
                Some(name),
                counters,
            ) {
                Ok(()) => {
                    delivered += 1;
                    note_congestion(entry, congestion);
                    if auto && let Some(journal) = journal {
                        journal.append(Record::Dequeue {
                            route: name.into(),
                            id: pending.message.id(),
                        });
                    }
                }
                // That consumer is closing now and will not be chosen again.
                Err(_) => queue.pending.push_front(pending),
            }
        }
        if queue.is_unused() {
            queues.remove(name);
        }
        delivered
    }
}
