//! A STOMP (and raw WebSocket) client with its own runtime, for programs that talk to any
//! STOMP broker — wsbroker, RabbitMQ, ActiveMQ — over `ws://`, `wss://`, TCP or TLS.
//!
//! ```no_run
//! use std::time::Duration;
//! use wsbroker::{AckMode, Client, ClientConfig, ClientEvent};
//! let mut config = ClientConfig::new("ws://127.0.0.1:15674/ws");
//! config.login = Some("guest".into());
//! config.passcode = Some("guest".into());
//! let client = Client::new(config)?;
//! client.connect(Duration::from_secs(5))?;
//! let sub = client.subscribe("/topic/chat", AckMode::Auto, &[])?;
//! client.send_with_receipt("/topic/chat", &[], "hello", Duration::from_secs(5))?;
//! let mut events = Vec::new();
//! client.poll_events(&mut events, 16, Duration::from_secs(1))?;
//! for event in &events {
//!     if let ClientEvent::Message(m) = event {
//!         assert_eq!(m.subscription, sub);
//!     }
//! }
//! client.disconnect(Duration::from_secs(2))?;
//! # Ok::<(), wsbroker::Error>(())
//! ```
//!
//! Layers, as in the server: the STOMP state machine ([`session`]: requests and frames in,
//! frames, events and completions out) and one connection's framing and timers ([`link`]:
//! bytes and time in, bytes out) are sans-IO and unit-tested with byte vectors; [`task`] is
//! the thin IO loop (TCP, TLS, reads, writes, backoff) on the client's own runtime.
//!
//! Reconnection: a lost connection is re-made with backoff and jitter; every subscription is
//! re-made on the new connection, with `x-since:<offset>` and `x-epoch:<epoch>` when its
//! messages carried `x-offset`/`x-epoch` (history), and [`ClientEvent::Resubscribed`] reports
//! whether the server confirmed a gap-free resume (`x-recovered`). Messages whose offset was
//! already received are dropped, so a resume never duplicates.

pub mod config;
pub mod event;
mod link;
mod session;
mod task;
mod tls;
mod url;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex};
use tokio::sync::{Notify, watch};

pub use config::{
    ClientCallback, ClientConfig, ClientDelivery, ClientMode, ClientTlsConfig, OutboundQueue,
    QueuePolicy, ReconnectPolicy,
};
pub use event::{ClientEvent, ClientMessage};

use crate::broker::AckMode;
use crate::error::{Error, Result};
use crate::events::{EventQueue, EventQueueConfig};
use session::{Failure, Request, StompParams};
use url::Endpoint;

thread_local! {
    /// Set on the client runtimes' threads, where waiting would stall the network thread.
    static ON_CLIENT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// True on a client's network thread (inside a client callback).
fn on_client_thread() -> bool {
    ON_CLIENT_THREAD.with(Cell::get)
}

/// A caller waiting for a command's outcome.
type Waiter = Sender<std::result::Result<(), Failure>>;

/// One entry of the outbound queue.
struct Queued {
    request: Request,
    waiter: Option<Waiter>,
}

/// What the host asked the task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// DISCONNECT (with its receipt), then stop.
    Disconnect,
}

enum Sink {
    Queue(Arc<EventQueue<ClientEvent>>),
    Callback(ClientCallback),
}

#[derive(Default)]
struct Status {
    connected_once: bool,
    last_failure: Option<String>,
    stopped: bool,
}

/// What the host's threads and the network task share.
struct Shared {
    queue_tx: Sender<Queued>,
    queue_rx: Receiver<Queued>,
    /// Wakes the task when a request was queued.
    notify: Notify,
    sink: Sink,
    connected: AtomicBool,
    /// Connections made so far.
    generation: AtomicU64,
    status: Mutex<Status>,
    status_changed: Condvar,
}

impl Shared {
    fn emit(&self, event: ClientEvent) {
        match &self.sink {
            Sink::Queue(queue) => {
                queue.push(event);
            }
            Sink::Callback(callback) => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(event)))
                    .is_err()
                {
                    tracing::error!("client event callback panicked");
                }
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock());
        self.status_changed.notify_all();
    }

    fn set_connected(&self) {
        self.update(|s| {
            s.connected_once = true;
            s.last_failure = None;
        });
    }

    fn attempt_failed(&self, reason: &str) {
        self.update(|s| s.last_failure = Some(reason.to_string()));
    }

    fn set_stopped(&self) {
        self.update(|s| s.stopped = true);
    }
}

struct Running {
    runtime: tokio::runtime::Runtime,
    stop: watch::Sender<Stop>,
}

/// A STOMP or raw WebSocket client: its own runtime (one network thread by default),
/// automatic reconnection, a bounded outbound queue, events polled or pushed. Every method
/// is thread-safe; those that do not wait may be called from inside a client callback.
pub struct Client {
    config: ClientConfig,
    endpoint: Endpoint,
    tls: Option<tokio_rustls::TlsConnector>,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
    started: AtomicBool,
    next_subscription: AtomicU64,
    next_transaction: AtomicU64,
    subscriptions: Mutex<HashMap<u64, String>>,
    transactions: Mutex<HashSet<u64>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.config.url)
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u32 {
    d.as_millis().min(u128::from(u32::MAX)) as u32
}

/// A failed connection attempt as an error.
fn attempt_error(reason: String) -> Error {
    if reason.contains("refused the") {
        Error::Refused(reason)
    } else if reason.contains("timed out") || reason.contains(" within ") {
        Error::Timeout(reason)
    } else {
        Error::NotConnected(reason)
    }
}

fn failure_error(failure: Failure) -> Error {
    match failure {
        Failure::Lost(m) => Error::NotConnected(m),
        Failure::Refused(m) => Error::Refused(m),
        Failure::NotFound(m) => Error::NotFound(m),
        Failure::Invalid(m) => Error::InvalidArgument(m),
    }
}

fn owned_headers(headers: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
    headers
        .iter()
        .map(|(name, value)| {
            crate::stomp::frame::check_header(name, value).map_err(Error::InvalidArgument)?;
            Ok(((*name).to_string(), (*value).to_string()))
        })
        .collect()
}

fn check_destination(destination: &str) -> Result<()> {
    if destination.is_empty() || destination.contains(['\0', '\r', '\n']) {
        return Err(Error::InvalidArgument(format!(
            "invalid destination {destination:?}: empty, or NUL, CR or LF in it"
        )));
    }
    Ok(())
}

impl Client {
    /// A client for `config` (validated now; TLS files are read now). Connect with
    /// [`Client::connect`] (waits for the first connection) or [`Client::start`].
    pub fn new(config: ClientConfig) -> Result<Client> {
        let endpoint = config.validate()?;
        let tls = endpoint
            .tls
            .then(|| tls::connector(&config.tls))
            .transpose()?;
        let (queue_tx, queue_rx) = crossbeam_channel::bounded(config.outbound.capacity);
        let sink = match &config.delivery {
            ClientDelivery::Queue {
                capacity,
                overflow,
                wake,
            } => Sink::Queue(Arc::new(EventQueue::new(EventQueueConfig {
                capacity: *capacity,
                overflow: *overflow,
                wake: wake.clone(),
                ..EventQueueConfig::default()
            }))),
            ClientDelivery::Callback(callback) => Sink::Callback(callback.clone()),
        };
        Ok(Client {
            endpoint,
            tls,
            shared: Arc::new(Shared {
                queue_tx,
                queue_rx,
                notify: Notify::new(),
                sink,
                connected: AtomicBool::new(false),
                generation: AtomicU64::new(0),
                status: Mutex::new(Status::default()),
                status_changed: Condvar::new(),
            }),
            config,
            running: Mutex::new(None),
            started: AtomicBool::new(false),
            next_subscription: AtomicU64::new(1),
            next_transaction: AtomicU64::new(1),
            subscriptions: Mutex::new(HashMap::new()),
            transactions: Mutex::new(HashSet::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Starts the client's runtime and its first connection attempt, without waiting:
    /// events tell what happens (`Connected`, `Disconnected` with `reconnecting`). A client
    /// starts once (`AlreadyStarted`).
    pub fn start(&self) -> Result<()> {
        if self.started.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyStarted);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.config.worker_threads)
            .thread_name("wsbroker-client")
            .on_thread_start(|| {
                ON_CLIENT_THREAD.with(|f| f.set(true));
                // A server that resets the connection must not kill a C host with SIGPIPE.
                crate::transport::block_sigpipe_on_this_thread();
            })
            .enable_all()
            .build()?;
        let (stop, stop_rx) = watch::channel(Stop::Run);
        let c = &self.config;
        let raw = c.mode == ClientMode::Raw;
        let ctx = task::TaskContext {
            shared: self.shared.clone(),
            endpoint: self.endpoint.clone(),
            link: link::LinkConfig {
                websocket: self.endpoint.websocket,
                raw,
                host_header: self.endpoint.host_header(),
                target: self.endpoint.target.clone(),
                ws_headers: c.ws_headers.clone(),
                subprotocols: c.subprotocols.clone(),
                permessage_deflate: c.permessage_deflate,
                ping_every: (!c.heartbeat.0.is_zero()).then_some(c.heartbeat.0),
                limits: c.limits.clone(),
            },
            params: StompParams {
                login: c.login.clone(),
                passcode: c.passcode.clone(),
                host: c.host.clone(),
                headers: c.connect_headers.clone(),
                heartbeat: (ms(c.heartbeat.0), ms(c.heartbeat.1)),
            },
            tls: self.tls.clone(),
            server_name: c
                .tls
                .server_name
                .clone()
                .unwrap_or_else(|| self.endpoint.host.clone()),
            connect_timeout: c.connect_timeout,
            receipt_timeout: c.receipt_timeout,
            reconnect: c.reconnect,
            stop: stop_rx,
        };
        runtime.spawn(task::run(ctx));
        *self.running.lock() = Some(Running { runtime, stop });
        Ok(())
    }

    /// Starts the client and waits up to `timeout` for its first connection (STOMP:
    /// CONNECTED). When the first attempt fails (refused, unreachable, timed out), the client
    /// is stopped and the error says why (`Refused`, `NotConnected`, `Timeout`).
    pub fn connect(&self, timeout: Duration) -> Result<()> {
        if on_client_thread() {
            return Err(Error::CalledFromCallback("connect"));
        }
        self.start()?;
        let deadline = Instant::now() + timeout;
        let mut status = self.shared.status.lock();
        loop {
            if status.connected_once {
                return Ok(());
            }
            if let Some(reason) = status.last_failure.clone() {
                drop(status);
                self.shutdown(Duration::ZERO);
                return Err(attempt_error(reason));
            }
            if status.stopped {
                return Err(Error::NotConnected("the client stopped".into()));
            }
            if self
                .shared
                .status_changed
                .wait_until(&mut status, deadline)
                .timed_out()
            {
                drop(status);
                self.shutdown(Duration::ZERO);
                return Err(Error::Timeout(format!(
                    "not connected within {} ms",
                    timeout.as_millis()
                )));
            }
        }
    }

    /// True while a connection is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` until a connection is up (after a reconnection, say); true when
    /// it is.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut status = self.shared.status.lock();
        loop {
            if self.is_connected() {
                return true;
            }
            if status.stopped
                || self
                    .shared
                    .status_changed
                    .wait_until(&mut status, deadline)
                    .timed_out()
            {
                return self.is_connected();
            }
        }
    }

    fn require_mode(&self, mode: ClientMode, what: &str) -> Result<()> {
        if self.config.mode == mode {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "{what} needs {} mode",
                if mode == ClientMode::Raw {
                    "raw"
                } else {
                    "STOMP"
                }
            )))
        }
    }

    /// Puts a request on the outbound queue (its policy applies when it is full).
    fn enqueue(&self, request: Request, waiter: Option<Waiter>) -> Result<()> {
        if self.shared.status.lock().stopped {
            return Err(Error::NotRunning);
        }
        let queued = Queued { request, waiter };
        let policy = if on_client_thread() {
            // Never block the network thread (from a callback).
            QueuePolicy::FailFast
        } else {
            self.config.outbound.policy
        };
        let full = || Error::Backpressure("the client's outbound queue is full".into());
        match policy {
            QueuePolicy::FailFast => match self.shared.queue_tx.try_send(queued) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(full()),
                Err(TrySendError::Disconnected(_)) => return Err(Error::NotRunning),
            },
            QueuePolicy::Block(timeout) => {
                if self.shared.queue_tx.send_timeout(queued, timeout).is_err() {
                    return Err(Error::Backpressure(format!(
                        "the client's outbound queue stayed full for {} ms",
                        timeout.as_millis()
                    )));
                }
            }
        }
        self.shared.notify.notify_one();
        Ok(())
    }

    /// Queues `request` and, with `wait`, waits for its RECEIPT.
    fn call(&self, request: Request, wait: Option<Duration>, what: &'static str) -> Result<()> {
        let Some(timeout) = wait else {
            return self.enqueue(request, None);
        };
        if on_client_thread() {
            return Err(Error::CalledFromCallback(what));
        }
        let (waiter, done) = crossbeam_channel::bounded(1);
        self.enqueue(request, Some(waiter))?;
        match done.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(failure_error(failure)),
            Err(_) => Err(Error::Timeout(format!(
                "{what}: no RECEIPT within {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// Subscribes to `destination` (made on every new connection too); returns the
    /// subscription id that its messages carry. `headers` go into the SUBSCRIBE (`selector`,
    /// `x-last`, `durable`...). Does not wait: see [`Client::subscribe_confirmed`].
    pub fn subscribe(
        &self,
        destination: &str,
        ack: AckMode,
        headers: &[(&str, &str)],
    ) -> Result<u64> {
        self.subscribe_inner(destination, ack, headers, None)
    }

    /// Like [`Client::subscribe`], and waits up to `timeout` for the server's RECEIPT: once
    /// this returns, messages published to the destination reach the subscription.
    pub fn subscribe_confirmed(
        &self,
        destination: &str,
        ack: AckMode,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u64> {
        self.subscribe_inner(destination, ack, headers, Some(timeout))
    }

    fn subscribe_inner(
        &self,
        destination: &str,
        ack: AckMode,
        headers: &[(&str, &str)],
        wait: Option<Duration>,
    ) -> Result<u64> {
        self.require_mode(ClientMode::Stomp, "subscribe")?;
        check_destination(destination)?;
        let headers = owned_headers(headers)?;
        let id = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        self.subscriptions
            .lock()
            .insert(id, destination.to_string());
        let request = Request::Subscribe {
            id,
            destination: destination.to_string(),
            ack,
            headers,
        };
        match self.call(request, wait, "subscribe") {
            Ok(()) => Ok(id),
            Err(e) => {
                if !matches!(e, Error::Timeout(_)) {
                    self.subscriptions.lock().remove(&id);
                }
                Err(e)
            }
        }
    }

    /// Ends a subscription (`NotFound` for an unknown id).
    pub fn unsubscribe(&self, subscription: u64) -> Result<()> {
        self.require_mode(ClientMode::Stomp, "unsubscribe")?;
        if self.subscriptions.lock().remove(&subscription).is_none() {
            return Err(Error::NotFound(format!("subscription {subscription}")));
        }
        self.enqueue(Request::Unsubscribe { id: subscription }, None)
    }

    /// SENDs a message without waiting (queued; `Backpressure` when the queue is full per
    /// its policy).
    pub fn send(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<()> {
        self.send_with(destination, headers, body.into(), None, None)
    }

    /// SENDs a message and waits up to `timeout` for the server's RECEIPT.
    pub fn send_with_receipt(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<()> {
        self.send_with(destination, headers, body.into(), None, Some(timeout))
    }

    /// SENDs a message, inside transaction `transaction` when given, waiting for its RECEIPT
    /// when `receipt` is given.
    pub fn send_with(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        transaction: Option<u64>,
        receipt: Option<Duration>,
    ) -> Result<()> {
        self.require_mode(ClientMode::Stomp, "send")?;
        check_destination(destination)?;
        let headers = owned_headers(headers)?;
        if let Some(tx) = transaction {
            self.check_transaction(tx)?;
        }
        let request = Request::Send {
            destination: destination.to_string(),
            headers,
            body,
            transaction,
        };
        self.call(request, receipt, "send")
    }

    fn check_transaction(&self, tx: u64) -> Result<()> {
        if self.transactions.lock().contains(&tx) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("transaction {tx}")))
        }
    }

    fn check_ack_id(&self, ack_id: &str) -> Result<()> {
        let (generation, _, _) = session::untag_ack(ack_id)
            .ok_or_else(|| Error::InvalidArgument(format!("not an ack id: {ack_id:?}")))?;
        if generation != self.shared.generation.load(Ordering::Acquire) {
            return Err(Error::NotFound(
                "the message came on an earlier connection (the server redelivers it)".into(),
            ));
        }
        Ok(())
    }

    /// Acknowledges a message (its [`ClientMessage::ack_id`]), inside `transaction` when
    /// given. An ack id of an earlier connection is `NotFound` (the server redelivers that
    /// message).
    pub fn ack(&self, ack_id: &str, transaction: Option<u64>) -> Result<()> {
        self.ack_inner(ack_id, false, transaction)
    }

    /// Refuses a message (NACK), like [`Client::ack`].
    pub fn nack(&self, ack_id: &str, transaction: Option<u64>) -> Result<()> {
        self.ack_inner(ack_id, true, transaction)
    }

    fn ack_inner(&self, ack_id: &str, nack: bool, transaction: Option<u64>) -> Result<()> {
        self.require_mode(ClientMode::Stomp, "ack")?;
        self.check_ack_id(ack_id)?;
        if let Some(tx) = transaction {
            self.check_transaction(tx)?;
        }
        let request = Request::Ack {
            ack_id: ack_id.to_string(),
            nack,
            transaction,
        };
        self.enqueue(request, None)
    }

    /// BEGINs a transaction; returns its id for `send_with`, `ack`, `commit` and `abort`.
    /// A transaction lives on one connection: after a reconnection, committing it fails
    /// (`NotFound`) and the server has discarded it.
    pub fn begin(&self) -> Result<u64> {
        self.require_mode(ClientMode::Stomp, "begin")?;
        let tx = self.next_transaction.fetch_add(1, Ordering::Relaxed);
        self.transactions.lock().insert(tx);
        if let Err(e) = self.enqueue(Request::Begin { tx }, None) {
            self.transactions.lock().remove(&tx);
            return Err(e);
        }
        Ok(tx)
    }

    /// COMMITs a transaction, waiting up to `receipt` for the server's RECEIPT when given.
    pub fn commit(&self, transaction: u64, receipt: Option<Duration>) -> Result<()> {
        self.end_transaction(transaction, true, receipt)
    }

    /// ABORTs a transaction, waiting up to `receipt` for the server's RECEIPT when given.
    pub fn abort(&self, transaction: u64, receipt: Option<Duration>) -> Result<()> {
        self.end_transaction(transaction, false, receipt)
    }

    fn end_transaction(&self, tx: u64, commit: bool, receipt: Option<Duration>) -> Result<()> {
        self.require_mode(ClientMode::Stomp, "commit")?;
        if !self.transactions.lock().remove(&tx) {
            return Err(Error::NotFound(format!("transaction {tx}")));
        }
        let request = if commit {
            Request::Commit { tx }
        } else {
            Request::Abort { tx }
        };
        self.call(request, receipt, if commit { "commit" } else { "abort" })
    }

    /// Raw mode: sends a text message.
    pub fn send_text(&self, text: &str) -> Result<()> {
        self.require_mode(ClientMode::Raw, "send_text")?;
        let data = Bytes::copy_from_slice(text.as_bytes());
        self.enqueue(
            Request::Raw {
                data,
                binary: false,
            },
            None,
        )
    }

    /// Raw mode: sends a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<()> {
        self.require_mode(ClientMode::Raw, "send_binary")?;
        self.enqueue(
            Request::Raw {
                data: data.into(),
                binary: true,
            },
            None,
        )
    }

    /// Moves up to `max` events into `out`, waiting up to `timeout` for the first; returns
    /// how many were added. Only with [`ClientDelivery::Queue`] (else `InvalidArgument`).
    pub fn poll_events(
        &self,
        out: &mut Vec<ClientEvent>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize> {
        match &self.shared.sink {
            Sink::Queue(queue) => Ok(queue.poll(out, max, timeout)),
            Sink::Callback(_) => Err(Error::InvalidArgument(
                "events are delivered to a callback, not polled".into(),
            )),
        }
    }

    /// Ends the session: DISCONNECT, waits up to `timeout` for its RECEIPT (raw mode: a
    /// Close frame), closes the connection and stops the client's runtime. Not from inside
    /// a client callback (`CalledFromCallback`). `NotRunning` when it was not started or is
    /// already stopped.
    pub fn disconnect(&self, timeout: Duration) -> Result<()> {
        if on_client_thread() {
            return Err(Error::CalledFromCallback("disconnect"));
        }
        if self.running.lock().is_none() {
            return Err(Error::NotRunning);
        }
        if self.shutdown(timeout) {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "the client did not stop within {} ms",
                timeout.as_millis()
            )))
        }
    }

    /// Asks the task to stop (DISCONNECT when connected), waits up to `timeout` (plus a
    /// little) and shuts the runtime down. True when the task ended in time.
    fn shutdown(&self, timeout: Duration) -> bool {
        let Some(running) = self.running.lock().take() else {
            return true;
        };
        let _ = running.stop.send(Stop::Disconnect);
        let deadline = Instant::now() + timeout + Duration::from_millis(200);
        let mut status = self.shared.status.lock();
        while !status.stopped {
            if self
                .shared
                .status_changed
                .wait_until(&mut status, deadline)
                .timed_out()
            {
                break;
            }
        }
        let stopped = status.stopped;
        status.stopped = true;
        drop(status);
        self.shared.connected.store(false, Ordering::Release);
        running.runtime.shutdown_timeout(Duration::from_millis(200));
        stopped
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if on_client_thread() {
            if let Some(running) = self.running.get_mut().take() {
                let _ = running.stop.send(Stop::Disconnect);
                running.runtime.shutdown_background();
            }
            return;
        }
        let grace = self.config.receipt_timeout.min(Duration::from_secs(2));
        self.shutdown(grace);
    }
}
