//! A session's bounded outbound queue: the only thing the broker knows about a connection.
//!
//! The broker pushes frames without blocking; the transport's writer drains them in batches and
//! writes many frames per syscall. Two thresholds tell a **busy** subscriber from a **stuck**
//! one:
//! - above its *high watermark* the queue is *congested*: the publishers whose messages land
//!   here are paused (their sockets are not read, host publishes get `Backpressure`) until the
//!   writer has drained it below the *low watermark* — a subscriber that keeps reading loses
//!   nothing;
//! - a queue that passes its *hard cap* (messages or bytes), or that stays congested without
//!   draining for `stuck_after`, belongs to a slow consumer: its queued frames are discarded and
//!   it is closed with an ERROR, so that nobody waits for it longer than that.
//!
//! The byte cap always admits one more message into a queue that holds less than it, so every
//! message the broker accepted (up to the largest frame size) can be delivered.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::message::Message;
use super::shared_frame::SharedFrame;
use crate::stomp::escape::{Escaping, escaping_for};
use crate::stomp::frame::Command;
use crate::stomp::version::Version;
use crate::ws::codes;

/// One MESSAGE frame to one subscription; its prefix is formatted at write time.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Session the message goes to (part of the `message-id`).
    pub session: u64,
    /// Per-session delivery number: `message-id` and `ack` are `{session}-{seq}`.
    pub seq: u64,
    /// The subscription id the client chose.
    pub subscription: Arc<str>,
    /// Whether to write an `ack` header (STOMP 1.2 with a client ack mode).
    pub ack_header: bool,
    /// Whether the message was delivered before (`redelivered:true`).
    pub redelivered: bool,
    /// The first message of a resuming subscription (`x-since`): whether the resume got every
    /// message missed (`x-recovered:true|false`).
    pub recovered: Option<bool>,
    /// A queue message tracked until acknowledged: if this delivery is lost with a slow
    /// consumer's queue, the message goes back to its queue (so it is not counted as dropped).
    pub requeued_if_lost: bool,
    /// The shared message.
    pub message: Arc<Message>,
}

/// Messages of one subscription discarded with a slow consumer's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostMessages {
    /// The session.
    pub session: u64,
    /// The client's subscription id.
    pub subscription: Arc<str>,
    /// The destination of the last one.
    pub destination: String,
    /// How many.
    pub count: u64,
}

impl LostMessages {
    /// Groups the queued messages that are lost for good by subscription (a session has few).
    fn tally<'a>(items: impl IntoIterator<Item = &'a Outbound>) -> Vec<LostMessages> {
        let mut lost: Vec<LostMessages> = Vec::new();
        for item in items {
            let Outbound::Message(d) = item else { continue };
            if d.requeued_if_lost {
                continue;
            }
            let destination = d.message.destination();
            match lost.iter_mut().find(|l| l.subscription == d.subscription) {
                Some(entry) => {
                    entry.count += 1;
                    if entry.destination != destination {
                        destination.clone_into(&mut entry.destination);
                    }
                }
                None => lost.push(LostMessages {
                    session: d.session,
                    subscription: d.subscription.clone(),
                    destination: destination.to_string(),
                    count: 1,
                }),
            }
        }
        lost
    }
}

/// Why and how a connection ends, once everything queued before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// WebSocket close code (ignored on plain TCP).
    pub code: u16,
    /// When set, a STOMP ERROR frame with this `message` is written first.
    pub error: Option<String>,
    /// Receipt id of the frame that caused the error, if it asked for one.
    pub receipt_id: Option<String>,
    /// Longer explanation for the ERROR body.
    pub detail: Option<String>,
}

impl CloseReason {
    /// A normal close after DISCONNECT or a client's close.
    pub fn normal() -> CloseReason {
        CloseReason {
            code: codes::NORMAL,
            error: None,
            receipt_id: None,
            detail: None,
        }
    }
    /// A close preceded by an ERROR frame.
    pub fn error(code: u16, message: impl Into<String>) -> CloseReason {
        CloseReason {
            code,
            error: Some(message.into()),
            receipt_id: None,
            detail: None,
        }
    }
}

/// An item of the outbound queue.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A complete encoded STOMP frame (CONNECTED, RECEIPT, ERROR) or a heart-beat EOL.
    Frame(Bytes),
    /// A MESSAGE frame assembled by the writer from its prefix and the shared tail.
    Message(Delivery),
    /// A complete, encoded WebSocket data frame of a raw (non-STOMP) connection, shared by
    /// every connection it goes to (see `crate::raw`).
    WsFrame(Arc<SharedFrame>),
    /// A WebSocket pong answering a ping (transport level; ignored on TCP).
    Pong(Bytes),
    /// A WebSocket ping probing a quiet peer (transport level; ignored on TCP).
    Ping(Bytes),
    /// Write everything before, then close the connection.
    Close(CloseReason),
}

impl Outbound {
    /// Bytes the item accounts for against the queue's bound.
    fn weight(&self) -> usize {
        match self {
            Outbound::Frame(b) | Outbound::Pong(b) | Outbound::Ping(b) => b.len(),
            Outbound::WsFrame(f) => f.wire_len(),
            Outbound::Message(d) => d.message.body().len() + d.message.destination().len() + 96,
            Outbound::Close(_) => 0,
        }
    }
}

/// Result of a push that did not queue the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The connection is closing; nothing more is accepted.
    Closed,
    /// This push passed the bound: the session was just marked a slow consumer and is closing.
    Overflow,
    /// A drop policy discarded the message (see [`Outbox::push_lossy`]); nothing was queued.
    Dropped,
}

/// What [`Outbox::push_lossy`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossyPush {
    /// Whether the new message was queued (false: it was the one discarded).
    pub queued: bool,
    /// Messages discarded, the new one included when it was not queued.
    pub dropped: usize,
}

struct Inner {
    items: VecDeque<Outbound>,
    bytes: usize,
    closing: bool,
    /// When the writer last took items or (while congested) wrote bytes, or the queue last
    /// became non-empty: a congested queue that has not moved for `stuck_after` is stuck.
    moved: Instant,
}

/// The bounds of one outbound queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Hard cap in queued items (frames, messages, control frames).
    pub max_messages: usize,
    /// Hard cap in bytes. A message that would pass it is still admitted while the queue holds
    /// no more than `low_bytes` (a subscriber that keeps up), so a message of any accepted
    /// size can be delivered; at most one such message is queued beyond the cap.
    pub max_bytes: usize,
    /// Above this many bytes the queue is congested (its publishers are paused).
    pub high_bytes: usize,
    /// A congested queue is relieved at or below this many bytes...
    pub low_bytes: usize,
    /// Above this many items the queue is congested too.
    pub high_items: usize,
    /// ... and at or below this many items.
    pub low_items: usize,
    /// A congested queue that does not move for this long is stuck: a slow consumer.
    pub stuck_after: Duration,
}

impl OutboxLimits {
    /// Bounds without flow control (watermarks at the caps): what tests and tools that want
    /// plain hard caps use.
    pub fn caps(max_messages: usize, max_bytes: usize) -> OutboxLimits {
        OutboxLimits {
            max_messages,
            max_bytes,
            high_bytes: usize::MAX,
            low_bytes: 0,
            high_items: usize::MAX,
            low_items: usize::MAX,
            stuck_after: Duration::MAX,
        }
    }
}

/// Wakes hosts blocked in a waiting publish when any queue stops being congested.
#[derive(Default)]
pub struct FlowSignal {
    generation: Mutex<u64>,
    changed: parking_lot::Condvar,
    /// Hands queue messages to a session whose consumers were passed over while its queue was
    /// congested (set once by the broker; called from the relieved queue's writer).
    feeder: std::sync::OnceLock<Box<dyn Fn(u64) + Send + Sync>>,
}

impl std::fmt::Debug for FlowSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowSignal").finish_non_exhaustive()
    }
}

impl FlowSignal {
    /// Sets what feeds a starving session's queue consumers once its outbound queue is
    /// relieved (see [`Outbox::mark_starving`]).
    pub fn set_feeder(&self, feeder: Box<dyn Fn(u64) + Send + Sync>) {
        let _ = self.feeder.set(feeder);
    }

    /// Wakes the publishers waiting for room (a queue was relieved).
    pub fn notify(&self) {
        *self.generation.lock() += 1;
        self.changed.notify_all();
    }

    /// Blocks until some queue stopped being congested after `seen` (a value from
    /// [`FlowSignal::generation`]) or until `deadline`; returns the new generation.
    pub fn wait(&self, seen: u64, deadline: Instant) -> u64 {
        let mut generation = self.generation.lock();
        while *generation == seen {
            if self
                .changed
                .wait_until(&mut generation, deadline)
                .timed_out()
            {
                break;
            }
        }
        *generation
    }

    /// The current generation, to wait for a change from.
    pub fn generation(&self) -> u64 {
        *self.generation.lock()
    }
}

/// The bounded queue between the broker (producers) and one connection's writer (consumer).
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Woken (all waiters) when a close is queued, for the connection's reader.
    closed: Notify,
    /// Woken (all waiters) when the queue stops being congested, for paused publishers.
    relieved: Notify,
    /// Above the high watermark and not yet drained below the low one (read without the lock
    /// on the publishing path).
    congested: AtomicBool,
    /// Closed as a slow consumer (hard cap passed, or stuck).
    slow: AtomicBool,
    /// 1 + the session whose queue consumers were passed over because this queue was
    /// congested (0: none): fed again once it is relieved.
    starving: AtomicU64,
    limits: OutboxLimits,
    signal: Option<Arc<FlowSignal>>,
    /// Messages lost when the bound was passed, per subscription (filled once, on overflow).
    lost: Mutex<Vec<LostMessages>>,
    version: AtomicU8,
    heartbeat_ms: AtomicU32,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// An empty queue with hard caps of `max_messages` items and `max_bytes` bytes and no flow
    /// control (see [`OutboxLimits::caps`]).
    pub fn new(max_messages: usize, max_bytes: usize) -> Outbox {
        Outbox::with_limits(OutboxLimits::caps(max_messages, max_bytes), None)
    }

    /// An empty queue with these bounds; `signal` is told whenever it stops being congested.
    pub fn with_limits(limits: OutboxLimits, signal: Option<Arc<FlowSignal>>) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                bytes: 0,
                closing: false,
                moved: Instant::now(),
            }),
            notify: Notify::new(),
            closed: Notify::new(),
            relieved: Notify::new(),
            congested: AtomicBool::new(false),
            slow: AtomicBool::new(false),
            starving: AtomicU64::new(0),
            limits,
            signal,
            lost: Mutex::new(Vec::new()),
            version: AtomicU8::new(0),
            heartbeat_ms: AtomicU32::new(0),
        }
    }

    /// Queues an item without blocking. Past the hard cap (or into a stuck queue, see
    /// [`Outbox::push_or_close_if_stuck`]) the queue is emptied and replaced by a slow-consumer
    /// ERROR and close; the caller learns it once through `PushError::Overflow`. Whether the
    /// push made the queue congested is [`Outbox::is_congested`].
    pub fn push(&self, item: Outbound) -> Result<(), PushError> {
        let weight = item.weight();
        let inner = self.inner.lock();
        if inner.closing {
            return Err(PushError::Closed);
        }
        if self.over_cap(&inner, weight, 1, self.limits.low_bytes) {
            self.overflow(
                inner,
                "more than {items} frames or {bytes} bytes were waiting",
            );
            return Err(PushError::Overflow);
        }
        self.append(inner, item, weight, true);
        Ok(())
    }

    /// As [`Outbox::push`] for a publish: a queue that is congested and has not moved for
    /// `stuck_after` is a stuck consumer and is closed (`Overflow`) instead.
    pub fn push_or_close_if_stuck(&self, item: Outbound) -> Result<(), PushError> {
        if self.is_congested() && self.close_if_stuck() {
            return Err(PushError::Overflow);
        }
        self.push(item)
    }

    /// Whether `weight` more bytes (at `factor` times the caps) would pass the hard cap. A
    /// queue holding at most `room` bytes takes one more item of any size.
    fn over_cap(&self, inner: &Inner, weight: usize, factor: usize, room: usize) -> bool {
        let max_items = self.limits.max_messages.saturating_mul(factor);
        let max_bytes = self.limits.max_bytes.saturating_mul(factor);
        inner.items.len() >= max_items
            || (inner.bytes > room && inner.bytes.saturating_add(weight) > max_bytes)
    }

    /// Replaces the queue by a slow-consumer ERROR and close; `why` may name `{items}` and
    /// `{bytes}` (the caps).
    fn overflow(&self, mut inner: parking_lot::MutexGuard<'_, Inner>, why: &str) {
        let why = why
            .replace("{items}", &self.limits.max_messages.to_string())
            .replace("{bytes}", &self.limits.max_bytes.to_string());
        let reason = CloseReason {
            detail: Some(format!(
                "The session did not read its messages fast enough: {why}."
            )),
            ..CloseReason::error(
                codes::POLICY_VIOLATION,
                "slow consumer: outbound queue full",
            )
        };
        // Messages lost with the queue (receipts and other frames are not messages, a
        // tracked queue message goes back to its queue; an item that did not fit is the
        // caller's to count: a queue takes it back).
        *self.lost.lock() = LostMessages::tally(&inner.items);
        inner.items.clear();
        inner.bytes = 0;
        inner.items.push_back(Outbound::Close(reason));
        inner.closing = true;
        self.slow.store(true, Relaxed);
        drop(inner);
        self.relieve();
        self.notify.notify_one();
        self.closed.notify_waiters();
    }

    /// Whether the queue was closed as a slow consumer (past its cap, or stuck).
    pub fn was_slow_consumer(&self) -> bool {
        self.slow.load(Relaxed)
    }

    /// True while the queue is above its high watermark and has not yet drained below its low
    /// one: publishers to it should pause (lock-free; the publishing path reads it).
    pub fn is_congested(&self) -> bool {
        self.congested.load(Relaxed)
    }

    /// Closes the queue as a slow consumer when it is congested and has not moved (the writer
    /// took nothing) for `stuck_after`; true when it did. The caller counts it
    /// (`stats::count_overflow`).
    pub fn close_if_stuck(&self) -> bool {
        let inner = self.inner.lock();
        if inner.closing || !self.is_congested() || inner.moved.elapsed() < self.limits.stuck_after
        {
            return false;
        }
        let secs = self.limits.stuck_after.as_secs_f32();
        self.overflow(inner, &format!("nothing was written to it for {secs} s"));
        true
    }

    /// The connection's writer wrote bytes: while the queue is congested that counts as moving
    /// (a big batch can take a while to write to a subscriber that reads slowly but keeps
    /// reading). Cheap when not congested.
    pub fn wrote(&self) {
        if self.is_congested() {
            self.inner.lock().moved = Instant::now();
        }
    }

    /// When this congested queue counts as stuck unless it moves; `None` when it is not
    /// congested (or cannot get stuck).
    pub fn stuck_at(&self) -> Option<Instant> {
        if !self.is_congested() {
            return None;
        }
        self.inner.lock().moved.checked_add(self.limits.stuck_after)
    }

    /// Resolves once the queue is not congested (drained below its low watermark, or closing).
    pub async fn relieved(&self) {
        loop {
            // Created before the check: `notify_waiters` reaches it from creation on.
            let relieved = self.relieved.notified();
            if !self.is_congested() {
                return;
            }
            relieved.await;
        }
    }

    /// No longer congested: wake the paused publishers and blocked hosts.
    fn relieve(&self) {
        // SeqCst, with `mark_starving`: see `try_drain`.
        if self.congested.swap(false, SeqCst) {
            self.relieved.notify_waiters();
            if let Some(signal) = &self.signal {
                signal.notify();
            }
        }
    }

    /// Queues a MESSAGE for a subscription whose slow-consumer policy drops instead of
    /// disconnecting. When the queue is full, `drop_oldest` discards the oldest queued MESSAGE
    /// of the same subscription to make room (else, or when there is none, the new one is
    /// discarded).
    pub fn push_lossy(&self, item: Outbound, drop_oldest: bool) -> Result<LossyPush, PushError> {
        let Outbound::Message(delivery) = &item else {
            return self.push(item).map(|()| LossyPush {
                queued: true,
                dropped: 0,
            });
        };
        let subscription = delivery.subscription.clone();
        self.push_dropping(
            item,
            drop_oldest,
            |queued| matches!(queued, Outbound::Message(d) if d.subscription == subscription),
        )
    }

    /// Queues a raw WebSocket data frame whose connection drops instead of disconnecting when
    /// its queue is full: as [`Outbox::push_lossy`], the oldest queued data frame making room
    /// when `drop_oldest`.
    pub fn push_frame_lossy(
        &self,
        frame: Arc<SharedFrame>,
        drop_oldest: bool,
    ) -> Result<LossyPush, PushError> {
        self.push_dropping(Outbound::WsFrame(frame), drop_oldest, |queued| {
            matches!(queued, Outbound::WsFrame(_))
        })
    }

    /// The lossy push: `droppable` tells which queued items may make room for `item`.
    fn push_dropping(
        &self,
        item: Outbound,
        drop_oldest: bool,
        droppable: impl Fn(&Outbound) -> bool,
    ) -> Result<LossyPush, PushError> {
        let weight = item.weight();
        let mut inner = self.inner.lock();
        if inner.closing {
            return Err(PushError::Closed);
        }
        let mut dropped = 0;
        // Strict: a drop policy keeps the queue under its cap (an empty queue still takes one).
        while self.over_cap(&inner, weight, 1, 0) {
            let oldest = drop_oldest
                .then(|| inner.items.iter().position(&droppable))
                .flatten();
            let Some(position) = oldest else {
                return Ok(LossyPush {
                    queued: false,
                    dropped: dropped + 1,
                });
            };
            let old = inner.items.remove(position).expect("position found above");
            inner.bytes -= old.weight();
            dropped += 1;
        }
        // Drop policies never pause publishers: such a push does not make the queue congested.
        self.append(inner, item, weight, false);
        Ok(LossyPush {
            queued: true,
            dropped,
        })
    }

    /// Adds an item that fits, waking the writer when the queue was empty; `flow`: the push may
    /// make the queue congested.
    fn append(
        &self,
        mut inner: parking_lot::MutexGuard<'_, Inner>,
        item: Outbound,
        weight: usize,
        flow: bool,
    ) {
        inner.bytes += weight;
        let was_empty = inner.items.is_empty();
        if was_empty {
            inner.moved = Instant::now();
        }
        inner.items.push_back(item);
        if flow
            && !self.is_congested()
            && (inner.bytes > self.limits.high_bytes || inner.items.len() > self.limits.high_items)
        {
            self.congested.store(true, Relaxed);
        }
        drop(inner);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Queues a close after everything already queued (bypassing the bound). Returns false if
    /// the connection was already closing.
    pub fn close(&self, reason: CloseReason) -> bool {
        let mut inner = self.inner.lock();
        if inner.closing {
            return false;
        }
        inner.closing = true;
        inner.items.push_back(Outbound::Close(reason));
        drop(inner);
        // Nobody waits for a connection that is going away.
        self.relieve();
        self.notify.notify_one();
        self.closed.notify_waiters();
        true
    }

    /// Queues a transport-level item (ping, pong). Control replies are tiny, so they may go past
    /// the bound, but only up to twice it: a peer that floods pings and never reads is a slow
    /// consumer like any other (`PushError::Overflow`, the queue replaced by a close).
    pub fn push_control(&self, item: Outbound) -> Result<(), PushError> {
        let mut inner = self.inner.lock();
        if inner.closing {
            return Err(PushError::Closed);
        }
        let weight = item.weight();
        if self.over_cap(&inner, weight, 2, 0) {
            drop(inner);
            // The normal path sees the queue over its bound and closes it.
            return self.push(item);
        }
        // Counted: `try_drain` subtracts every drained item's weight.
        inner.bytes += weight;
        inner.items.push_back(item);
        drop(inner);
        self.notify.notify_one();
        Ok(())
    }

    #[cfg(test)]
    /// How many queued messages the overflow discarded for good (0 until it happened): queued
    /// MESSAGE frames, except tracked queue messages, which go back to their queue.
    pub fn discarded(&self) -> u64 {
        self.lost.lock().iter().map(|lost| lost.count).sum()
    }

    /// The messages the overflow discarded for good, per subscription (empty until it
    /// happened).
    pub fn lost_messages(&self) -> Vec<LostMessages> {
        self.lost.lock().clone()
    }

    /// True once a close is queued.
    pub fn is_closing(&self) -> bool {
        self.inner.lock().closing
    }

    /// Resolves once a close is queued (by the session, the broker or the host).
    pub async fn closing(&self) {
        loop {
            // `notify_waiters` reaches a `Notified` from its creation on, before any poll, so
            // creating it before the check loses no close (and keeps this future small: a
            // connection waits on it for its whole life).
            let notified = self.closed.notified();
            if self.is_closing() {
                return;
            }
            notified.await;
        }
    }

    /// Moves up to `max` queued items into `out`, waiting until there is at least one.
    pub async fn next_batch(&self, out: &mut Vec<Outbound>, max: usize) {
        loop {
            if self.try_drain(out, max) > 0 {
                return;
            }
            self.notify.notified().await;
        }
    }

    /// Resolves once something is queued, without taking it: for the connection's one consumer,
    /// which then takes a batch with [`Outbox::try_drain`] and keeps no vector while waiting.
    pub async fn ready(&self) {
        loop {
            if !self.inner.lock().items.is_empty() {
                return;
            }
            self.notify.notified().await;
        }
    }

    /// Moves up to `max` queued items into `out` without waiting; returns how many.
    pub fn try_drain(&self, out: &mut Vec<Outbound>, max: usize) -> usize {
        let mut inner = self.inner.lock();
        let n = inner.items.len().min(max);
        let mut freed = 0;
        for item in inner.items.drain(..n) {
            freed += item.weight();
            out.push(item);
        }
        inner.bytes -= freed;
        if n > 0 {
            inner.moved = Instant::now();
        }
        let relieved = self.is_congested()
            && inner.bytes <= self.limits.low_bytes
            && inner.items.len() <= self.limits.low_items;
        if inner.items.capacity() > 64 && inner.items.is_empty() {
            // Give back the memory a burst grew, so idle connections stay small.
            inner.items.shrink_to(16);
        }
        drop(inner);
        if relieved {
            self.relieve();
            // After `relieve` cleared `congested`: a dispatch that marks the queue starving
            // from now on sees it uncongested and delivers by itself.
            let starving = self.starving.swap(0, SeqCst);
            if starving != 0
                && let Some(feeder) = self.signal.as_ref().and_then(|s| s.feeder.get())
            {
                feeder(starving - 1);
            }
        }
        n
    }

    /// A queue dispatch passed over `session`'s consumers because this queue is congested:
    /// they are fed again when it is relieved. Returns whether it still is congested (if
    /// not, the caller delivers now).
    pub fn mark_starving(&self, session: u64) -> bool {
        self.starving.store(session + 1, SeqCst);
        self.congested.load(SeqCst)
    }

    /// Gives the queue's memory back when nothing is queued, for a connection going idle (its
    /// writer calls this after each write); returns whether the queue was empty.
    pub fn release_if_empty(&self) -> bool {
        let mut inner = self.inner.lock();
        if !inner.items.is_empty() {
            return false;
        }
        if inner.items.capacity() > 0 {
            inner.items = VecDeque::new();
        }
        true
    }

    /// Bytes queued and not yet taken by the writer (the weight the bound counts).
    pub fn queued_bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.inner.lock().items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session's negotiated STOMP version (1.0 until CONNECT); frames the writer encodes
    /// (MESSAGE, ERROR) use its header escaping.
    pub fn version(&self) -> Version {
        match self.version.load(Relaxed) {
            1 => Version::V1_1,
            2 => Version::V1_2,
            _ => Version::V1_0,
        }
    }

    /// Header escaping of MESSAGE frames for the negotiated version.
    pub fn message_escaping(&self) -> Escaping {
        escaping_for(self.version(), Command::Message)
    }

    /// Records the negotiated version.
    pub fn set_version(&self, version: Version) {
        let v = match version {
            Version::V1_0 => 0,
            Version::V1_1 => 1,
            Version::V1_2 => 2,
        };
        self.version.store(v, Relaxed);
    }

    /// Interval in ms at which the writer must send something (a heart-beat when idle); 0 = never.
    pub fn heartbeat_ms(&self) -> u32 {
        self.heartbeat_ms.load(Relaxed)
    }

    /// Sets the negotiated outgoing heart-beat interval and wakes the writer to pick it up.
    pub fn set_heartbeat_ms(&self, ms: u32) {
        self.heartbeat_ms.store(ms, Relaxed);
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_replaces_queue_with_close_once() {
        let outbox = Outbox::new(2, 1 << 20);
        outbox
            .push(Outbound::Frame(Bytes::from_static(b"a")))
            .unwrap();
        outbox
            .push(Outbound::Frame(Bytes::from_static(b"b")))
            .unwrap();
        assert_eq!(
            outbox.push(Outbound::Frame(Bytes::from_static(b"c"))),
            Err(PushError::Overflow)
        );
        assert_eq!(
            outbox.push(Outbound::Frame(Bytes::from_static(b"d"))),
            Err(PushError::Closed)
        );
        let mut out = Vec::new();
        assert_eq!(outbox.try_drain(&mut out, 10), 1);
        match &out[0] {
            Outbound::Close(reason) => {
                assert_eq!(reason.code, codes::POLICY_VIOLATION);
                assert!(reason.error.as_deref().unwrap().contains("slow consumer"));
            }
            other => panic!("expected close, got {other:?}"),
        }
    }

    #[test]
    fn control_items_pass_the_bound_but_not_twice_over() {
        let outbox = Outbox::new(2, 1 << 20);
        for _ in 0..4 {
            outbox
                .push_control(Outbound::Pong(Bytes::from_static(b"p")))
                .unwrap();
        }
        assert_eq!(outbox.len(), 4, "pongs may exceed the bound of 2");
        assert_eq!(
            outbox.push_control(Outbound::Pong(Bytes::from_static(b"p"))),
            Err(PushError::Overflow),
            "a ping flood that is never read is a slow consumer"
        );
        assert!(outbox.is_closing());
        assert_eq!(outbox.discarded(), 0, "pongs are not messages");
    }

    #[test]
    fn byte_bound_counts_and_releases() {
        let outbox = Outbox::new(100, 10);
        outbox
            .push(Outbound::Frame(Bytes::from_static(b"0123456789")))
            .unwrap();
        let mut out = Vec::new();
        outbox.try_drain(&mut out, 10);
        outbox
            .push(Outbound::Frame(Bytes::from_static(b"0123456789")))
            .unwrap();
        assert_eq!(outbox.len(), 1);
        assert!(!outbox.is_closing());
    }
}
