//! Polled delivery: what happens in the server becomes an [`Event`] in a bounded queue that the
//! host drains on a thread of its choosing (a game engine's main loop, say).
//!
//! Questions (may this client connect, may it subscribe) are asked through the queue too: the
//! event carries the session id, the session waits, and the host answers later with
//! `Server::accept_connect` / `reject_connect` / `answer_subscribe`. An answer that does not come
//! within `decision_timeout` refuses the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use crate::broker::{DropReport, Message};
use crate::executor::Executor;
use crate::hooks::{AppMessage, ConnectRequest, SessionInfo, SubscribeRequest};
use crate::raw::{RawClose, RawMessage, RawOpen};

/// Something the host is told or asked.
#[derive(Debug, Clone)]
pub enum Event {
    /// A client sent CONNECT and waits for `accept_connect` or `reject_connect`.
    Connect(ConnectRequest),
    /// A session wants to subscribe and waits for `answer_subscribe`.
    Subscribe(SubscribeRequest),
    /// A connected session ended.
    Disconnect(SessionInfo),
    /// A SEND to an application destination routed to the queue.
    AppMessage(AppMessage),
    /// A message matching a host subscription made with `subscribe_events`.
    Message {
        /// The host subscription it matched.
        subscription: u64,
        /// The message (shared, not copied).
        message: Arc<Message>,
    },
    /// A client connected to a raw endpoint.
    RawOpen(RawOpen),
    /// A data message from a client of a host-driven raw endpoint.
    RawMessage(RawMessage),
    /// A raw connection ended.
    RawClose(RawClose),
    /// Events were discarded because the queue was full; `dropped` counts them.
    Overflow {
        /// Events discarded since the last `Overflow` event.
        dropped: u64,
    },
    /// Messages for one subscription were dropped by a limit (see `Stats::dropped`): at most
    /// one per subscription every `DROP_REPORT_INTERVAL`, counting the drops since the last.
    MessagesDropped(DropReport),
    /// Relay mode: the system connection to the external message broker is up (again);
    /// host publishes to relayed destinations flow.
    BrokerAvailable,
    /// Relay mode: the external message broker cannot be reached (at start, or the system
    /// connection dropped and is being re-opened with backoff); host publishes to relayed
    /// destinations fail and new clients are refused until `BrokerAvailable`.
    BrokerUnavailable {
        /// Why, for logs.
        reason: String,
    },
    /// Cluster mode: the engine (Redis or NATS) is reachable (again); publications reach
    /// the other nodes.
    BackplaneAvailable,
    /// Cluster mode: the engine cannot be reached (at start, or the link dropped and is
    /// being re-opened with backoff). Local clients are still served; publications made
    /// meanwhile do not reach the other nodes (counted in `wsbroker_cluster_dropped_total`).
    BackplaneUnavailable {
        /// Why, for logs.
        reason: String,
    },
}

impl Event {
    /// The session, connection or subscription the event is about, so that callback delivery
    /// keeps one session's events in order (they run on one callback thread).
    pub(crate) fn lane_key(&self) -> u64 {
        match self {
            Event::Connect(r) => r.session,
            Event::Subscribe(r) => r.session,
            Event::Disconnect(info) => info.session,
            Event::AppMessage(m) => m.session,
            Event::Message { subscription, .. } => *subscription,
            Event::RawOpen(o) => o.conn,
            Event::RawMessage(m) => m.conn,
            Event::RawClose(c) => c.conn,
            Event::MessagesDropped(report) => report.session,
            Event::Overflow { .. }
            | Event::BrokerAvailable
            | Event::BrokerUnavailable { .. }
            | Event::BackplaneAvailable
            | Event::BackplaneUnavailable { .. } => 0,
        }
    }
}

/// What a full queue does with one more event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Discard the new event (default): what is queued is kept in order.
    #[default]
    DropNewest,
    /// Discard the oldest queued event to make room.
    DropOldest,
}

/// Settings of polled delivery.
#[derive(Clone)]
pub struct EventQueueConfig {
    /// Most events queued.
    pub capacity: usize,
    /// What a full queue does.
    pub overflow: OverflowPolicy,
    /// Ask connect decisions through the queue (otherwise the connect hook or the default decides).
    pub defer_connect: bool,
    /// Ask subscribe decisions through the queue (otherwise the subscribe hook or the default decides).
    pub defer_subscribe: bool,
    /// Called (on a server thread) when the queue goes from empty to non-empty, so the host can
    /// schedule a poll; must be quick and must not block.
    pub wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Default for EventQueueConfig {
    fn default() -> Self {
        EventQueueConfig {
            capacity: 65_536,
            overflow: OverflowPolicy::DropNewest,
            defer_connect: false,
            defer_subscribe: false,
            wake: None,
        }
    }
}

impl std::fmt::Debug for EventQueueConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueueConfig")
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .field("defer_connect", &self.defer_connect)
            .field("defer_subscribe", &self.defer_subscribe)
            .field("wake", &self.wake.is_some())
            .finish()
    }
}

/// Events delivered by calling the host on a server thread instead of queueing them.
#[derive(Clone)]
pub struct EventCallback {
    /// Runs on a callback thread for every event (one session's events in order); blocking
    /// delays only the callbacks behind it on that thread. It may
    /// answer a question (accept/reject a connect) right away or later from any thread.
    pub callback: EventCallbackFn,
    /// Ask connect decisions through the callback (otherwise the connect hook decides).
    pub defer_connect: bool,
    /// Ask subscribe decisions through the callback (otherwise the subscribe hook decides).
    pub defer_subscribe: bool,
}

impl std::fmt::Debug for EventCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventCallback")
            .field("defer_connect", &self.defer_connect)
            .field("defer_subscribe", &self.defer_subscribe)
            .finish_non_exhaustive()
    }
}

/// How events reach the host: the one choice [`crate::Server::enable_event_delivery`] takes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventDelivery {
    /// Queued for the host to poll.
    Queue(EventQueueConfig),
    /// Handed to a callback on server threads.
    Callback(EventCallback),
}

/// Which [`EventDelivery`] a host that sets its options one by one (as the C ABI's
/// `wsb_config` does) has chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryMode {
    /// Events are queued and polled (default).
    #[default]
    Poll,
    /// Events go to the event callback.
    Callback,
}

/// Event delivery options gathered one by one: the mode, the queue's settings (used in poll
/// mode), the callback (used in callback mode) and which decisions are deferred (both modes).
/// [`EventOptions::delivery`] turns them into the one [`EventDelivery`] they describe.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct EventOptions {
    /// Poll or callback.
    pub mode: DeliveryMode,
    /// Poll mode's queue; its `defer_*` flags apply in both modes.
    pub queue: EventQueueConfig,
    /// Callback mode's callback.
    pub callback: Option<EventCallbackFn>,
}

/// The function of callback delivery.
pub type EventCallbackFn = Arc<dyn Fn(Event) + Send + Sync>;

impl std::fmt::Debug for EventOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventOptions")
            .field("mode", &self.mode)
            .field("queue", &self.queue)
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

impl EventOptions {
    /// The delivery these options describe; callback mode without a callback is an
    /// `InvalidConfig` error. Settings of the mode not chosen are ignored (a wake-up hook in
    /// callback mode, a callback in poll mode).
    pub fn delivery(&self) -> crate::error::Result<EventDelivery> {
        match self.mode {
            DeliveryMode::Poll => Ok(EventDelivery::Queue(self.queue.clone())),
            DeliveryMode::Callback => {
                let callback = self.callback.clone().ok_or_else(|| {
                    crate::error::Error::InvalidConfig(
                        "callback delivery needs an event callback".into(),
                    )
                })?;
                Ok(EventDelivery::Callback(EventCallback {
                    callback,
                    defer_connect: self.queue.defer_connect,
                    defer_subscribe: self.queue.defer_subscribe,
                }))
            }
        }
    }
}

/// Where events go: a queue the host polls, or a callback.
#[derive(Debug, Clone)]
pub enum EventSink {
    /// Polled delivery.
    Queue(Arc<EventQueue>),
    /// Direct delivery on server threads.
    Callback(EventCallback),
}

impl EventSink {
    /// Hands over one event; false when it was dropped (a full queue, or a full callback
    /// lane). Callbacks run on `executor`'s threads, never on the caller's.
    pub fn emit(&self, event: Event, executor: &Executor) -> bool {
        match self {
            EventSink::Queue(queue) => queue.push(event),
            EventSink::Callback(sink) => {
                let callback = sink.callback.clone();
                let key = event.lane_key();
                let job = move || {
                    let delivered =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(event)));
                    if delivered.is_err() {
                        tracing::error!("event callback panicked");
                    }
                };
                let queued = executor.try_run(key, Box::new(job));
                if !queued {
                    tracing::warn!("event callback queue is full: event dropped");
                }
                queued
            }
        }
    }

    /// Whether connect (`true`) or subscribe (`false`) questions go through this sink.
    pub fn defers(&self, connect: bool) -> bool {
        let (c, s) = match self {
            EventSink::Queue(queue) => {
                (queue.config().defer_connect, queue.config().defer_subscribe)
            }
            EventSink::Callback(sink) => (sink.defer_connect, sink.defer_subscribe),
        };
        if connect { c } else { s }
    }
}

/// What an [`EventQueue`] carries: a type with its own "events were lost" notice (the
/// server's [`Event`], the client's events).
pub trait QueuedEvent: Send + 'static {
    /// The notice that `dropped` events were discarded, polled before the next ones.
    fn overflow(dropped: u64) -> Self;
}

impl QueuedEvent for Event {
    fn overflow(dropped: u64) -> Self {
        Event::Overflow { dropped }
    }
}

/// The bounded queue between runtime threads (producers) and the polling host (consumer).
pub struct EventQueue<E = Event> {
    config: EventQueueConfig,
    sender: Sender<E>,
    receiver: Receiver<E>,
    dropped: AtomicU64,
    /// Set by the consumer when it found the queue empty; the next push calls `wake`.
    wake_armed: AtomicBool,
}

impl<E> std::fmt::Debug for EventQueue<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<E: QueuedEvent> EventQueue<E> {
    /// A queue with `config`; a capacity of 0 is raised to 1.
    pub fn new(config: EventQueueConfig) -> EventQueue<E> {
        let (sender, receiver) = crossbeam_channel::bounded(config.capacity.max(1));
        EventQueue {
            config,
            sender,
            receiver,
            dropped: AtomicU64::new(0),
            wake_armed: AtomicBool::new(true),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EventQueueConfig {
        &self.config
    }

    /// Queues an event without blocking, applying the overflow policy. Returns false when the
    /// event itself was discarded.
    pub fn push(&self, event: E) -> bool {
        let mut event = event;
        let kept = loop {
            match self.sender.try_send(event) {
                Ok(()) => break true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => match self.config.overflow {
                    OverflowPolicy::DropNewest => {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        break false;
                    }
                    OverflowPolicy::DropOldest => {
                        if self.receiver.try_recv().is_ok() {
                            self.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        event = back;
                    }
                },
            }
        };
        if kept && self.wake_armed.swap(false, Ordering::AcqRel) {
            self.wake();
        }
        kept
    }

    /// Moves up to `max` events into `out`, waiting up to `timeout` for the first one
    /// (`Duration::ZERO` does not wait). An `Overflow` event comes first when events were lost.
    pub fn poll(&self, out: &mut Vec<E>, max: usize, timeout: Duration) -> usize {
        let start = out.len();
        if max == 0 {
            return 0;
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            out.push(E::overflow(dropped));
        }
        while out.len() - start < max {
            match self.receiver.try_recv() {
                Ok(event) => out.push(event),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if out.len() == start
            && !timeout.is_zero()
            && let Ok(event) = self.receiver.recv_timeout(timeout)
        {
            {
                out.push(event);
                while out.len() - start < max {
                    match self.receiver.try_recv() {
                        Ok(event) => out.push(event),
                        Err(_) => break,
                    }
                }
            }
        }
        if self.receiver.is_empty() {
            // Arm before re-checking so a push racing with this poll still wakes the host.
            self.wake_armed.store(true, Ordering::Release);
            if !self.receiver.is_empty() && self.wake_armed.swap(false, Ordering::AcqRel) {
                self.wake();
            }
        }
        out.len() - start
    }

    fn wake(&self) {
        if let Some(wake) = &self.config.wake
            && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wake())).is_err()
        {
            tracing::error!("wake callback panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn disconnect(session: u64) -> Event {
        Event::Disconnect(SessionInfo {
            session,
            user: None,
            remote_addr: None,
            transport: crate::hooks::TransportKind::Tcp,
        })
    }

    fn session_of(event: &Event) -> u64 {
        match event {
            Event::Disconnect(info) => info.session,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn drop_newest_keeps_order_and_reports_count() {
        let queue = EventQueue::new(EventQueueConfig {
            capacity: 2,
            ..Default::default()
        });
        assert!(queue.push(disconnect(1)));
        assert!(queue.push(disconnect(2)));
        assert!(!queue.push(disconnect(3)));
        let mut out = Vec::new();
        assert_eq!(queue.poll(&mut out, 10, Duration::ZERO), 3);
        assert!(matches!(out[0], Event::Overflow { dropped: 1 }));
        assert_eq!(session_of(&out[1]), 1);
        assert_eq!(session_of(&out[2]), 2);
    }

    #[test]
    fn drop_oldest_makes_room() {
        let queue = EventQueue::new(EventQueueConfig {
            capacity: 2,
            overflow: OverflowPolicy::DropOldest,
            ..Default::default()
        });
        for s in 1..=3 {
            assert!(queue.push(disconnect(s)));
        }
        let mut out = Vec::new();
        queue.poll(&mut out, 10, Duration::ZERO);
        assert!(matches!(out[0], Event::Overflow { dropped: 1 }));
        assert_eq!(session_of(&out[1]), 2);
        assert_eq!(session_of(&out[2]), 3);
    }

    #[test]
    fn wake_fires_on_empty_to_non_empty_only() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let queue = EventQueue::new(EventQueueConfig {
            wake: Some(Arc::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
            ..Default::default()
        });
        queue.push(disconnect(1));
        queue.push(disconnect(2));
        assert_eq!(wakes.load(Ordering::SeqCst), 1);
        let mut out = Vec::new();
        queue.poll(&mut out, 1, Duration::ZERO);
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "not empty yet: no re-arm");
        queue.poll(&mut out, 10, Duration::ZERO);
        queue.push(disconnect(3));
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn poll_waits_up_to_timeout() {
        let queue = Arc::new(EventQueue::new(EventQueueConfig::default()));
        let producer = queue.clone();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            producer.push(disconnect(7));
        });
        let mut out = Vec::new();
        assert_eq!(queue.poll(&mut out, 4, Duration::from_secs(5)), 1);
        handle.join().unwrap();
        assert_eq!(session_of(&out[0]), 7);
    }
}
