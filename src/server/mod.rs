//! The safe facade: a broker with its own tokio runtime, started and stopped from any thread.
//!
//! ```no_run
//! use wsbroker::{Server, ServerConfig};
//! let mut config = ServerConfig::default();
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! let server = Server::new(config)?;
//! server.handle_app("/app/chat", |msg, publisher| {
//!     publisher.publish("/topic/chat", &[], msg.body.clone()).map(|_| ()).map_err(|e| e.to_string())
//! });
//! server.start()?;
//! println!("listening on {}", server.local_addr().unwrap());
//! server.publish("/topic/news", &[("content-type", "text/plain")], "hello")?;
//! server.stop(std::time::Duration::from_secs(1))?;
//! # Ok::<(), wsbroker::Error>(())
//! ```

mod callback_threads;
mod raw;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::broker::{HistoryPage, HostCallbackRuns, Message, Presence, Published, Stats};
use crate::config::ServerConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{Event, EventCallback, EventDelivery, EventQueue, EventQueueConfig, EventSink};
use crate::hooks::Answer;
use crate::hooks::{
    AppMessage, ConnectDecision, ConnectRequest, SessionInfo, SubscribeRequest, TransportKind,
    UpgradeDecision, UpgradeInfo,
};
use crate::host::Publisher;
use crate::transport::listener::{ListenerContext, accept_loop};
use crate::ws::handshake::HandshakeConfig;

thread_local! {
    /// Set on the server runtimes' worker threads, where `stop` would deadlock.
    static ON_SERVER_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// A host subscription's pattern must be a name a client could use (see `check_name`).
fn check_pattern(pattern: &str) -> Result<()> {
    crate::broker::destination::check_name(pattern).map_err(|e| Error::InvalidArgument(e.0))
}

/// A destination the host reads about (history, presence): one name, not a pattern.
fn check_single_destination(destination: &str) -> Result<()> {
    check_pattern(destination)?;
    if crate::broker::pattern::is_pattern(destination) {
        return Err(Error::InvalidArgument(format!(
            "{destination} is a pattern: history and presence belong to one destination"
        )));
    }
    Ok(())
}

/// True on the server's own threads (runtime workers, and the callback threads where host
/// code runs), where `stop` would deadlock and waiting calls are refused.
pub(crate) fn on_server_thread() -> bool {
    ON_SERVER_THREAD.with(Cell::get)
}

/// Marks the calling thread as one of the server's own (see [`on_server_thread`]).
fn mark_server_thread() {
    ON_SERVER_THREAD.with(|f| f.set(true));
}

/// How long `Drop` lets connections close when the host never called `stop`.
const DROP_GRACE: Duration = Duration::from_secs(1);

struct Running {
    runtime: tokio::runtime::Runtime,
    /// Where host code runs (application handlers, host-subscription and event callbacks).
    callbacks: callback_threads::CallbackThreads,
    shutdown: watch::Sender<bool>,
    local_addr: SocketAddr,
    tcp_local_addr: Option<SocketAddr>,
    /// The durable store's writer, when `config.store` is set.
    store: Option<crate::store::Store>,
}

/// A handle to a host subscription; see [`Server::subscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HostSubscriptionId(pub u64);

/// An embeddable STOMP broker over WebSocket (and optionally plain TCP).
pub struct Server {
    pub(crate) engine: Arc<Engine>,
    running: Mutex<Option<Running>>,
    /// Set once `start` succeeded (read on every publish, without the lock).
    started: AtomicBool,
    stopped: AtomicBool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr())
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for `config` (validated now); set hooks, then [`Server::start`].
    pub fn new(config: ServerConfig) -> Result<Server> {
        config.validate()?;
        Ok(Server {
            engine: Engine::new(config),
            running: Mutex::new(None),
            started: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.engine.config
    }

    /// Binds the listeners (synchronously: an address in use is reported here) and starts the
    /// server's own runtime.
    pub fn start(&self) -> Result<()> {
        let mut running = self.running.lock();
        if running.is_some() || self.stopped.load(Ordering::Acquire) {
            return Err(Error::AlreadyStarted);
        }
        let config = &self.engine.config;
        // Read and check the TLS files before binding anything.
        let tls = config
            .tls
            .as_ref()
            .map(crate::transport::tls::acceptor)
            .transpose()?;
        // And the JWKS file, if keys come from one.
        if let Some(crate::auth::AuthConfig {
            key: crate::auth::AuthKey::JwksFile(path),
            ..
        }) = &config.auth
        {
            let keys = load_jwks(&self.engine, path)?;
            tracing::info!(path = %path.display(), keys, "JWKS loaded");
        }
        // And the durable store (its file is locked: one server per data dir).
        let opened = config
            .store
            .as_ref()
            .map(crate::store::Store::open)
            .transpose()
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let bind = |addr: SocketAddr| -> Result<std::net::TcpListener> {
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| Error::from_bind(&addr.to_string(), e))?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        };
        let ws = bind(config.listen)?;
        let tcp = config.tcp_listen.map(bind).transpose()?;
        let local_addr = ws.local_addr()?;
        let tcp_local_addr = tcp
            .as_ref()
            .map(std::net::TcpListener::local_addr)
            .transpose()?;

        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if config.worker_threads > 0 {
            builder.worker_threads(config.worker_threads);
        }
        let runtime = builder
            .thread_name("wsbroker-worker")
            .on_thread_start(|| {
                mark_server_thread();
                crate::transport::block_sigpipe_on_this_thread();
            })
            .enable_all()
            .build()?;
        let lanes = self
            .engine
            .take_callback_lanes()
            .ok_or(Error::AlreadyStarted)?;
        let flow = self.engine.broker.flow_signal().clone();
        let callbacks = callback_threads::CallbackThreads::start(
            lanes,
            self.engine.executor.relief_mark(),
            Arc::new(move || flow.notify()),
        )?;
        let store = match (opened, &config.store) {
            (Some((db, restored)), Some(store_config)) => {
                Some(self.start_store(db, store_config, restored)?)
            }
            _ => None,
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let handshake = Arc::new(HandshakeConfig {
            path: config.path.clone(),
            allowed_origins: config.allowed_origins.clone(),
            permessage_deflate: config.permessage_deflate,
            ..HandshakeConfig::default()
        });
        runtime.spawn(report_drops(self.engine.clone(), shutdown_rx.clone()));
        if let Some(crate::auth::AuthConfig {
            key: crate::auth::AuthKey::JwksFile(path),
            ..
        }) = &config.auth
        {
            runtime.spawn(watch_jwks(
                self.engine.clone(),
                path.clone(),
                shutdown_rx.clone(),
            ));
        }
        {
            let _enter = runtime.enter();
            let ws = tokio::net::TcpListener::from_std(ws)?;
            let ctx = ListenerContext {
                engine: self.engine.clone(),
                kind: TransportKind::WebSocket,
                handshake: handshake.clone(),
                shutdown: shutdown_rx.clone(),
                tls: tls.clone(),
            };
            runtime.spawn(accept_loop(ws, ctx));
            if let Some(relay) = &self.engine.relay {
                let listener: std::sync::Weak<dyn crate::relay::SystemListener> =
                    Arc::downgrade(&self.engine) as _;
                crate::relay::start(relay, listener, shutdown_rx.clone());
            }
            if let Some(link) = &self.engine.cluster {
                let listener: std::sync::Weak<dyn crate::cluster::ClusterListener> =
                    Arc::downgrade(&self.engine) as _;
                crate::cluster::start(link, listener, shutdown_rx.clone());
            }
            if let Some(tcp) = tcp {
                let tcp = tokio::net::TcpListener::from_std(tcp)?;
                let ctx = ListenerContext {
                    engine: self.engine.clone(),
                    kind: TransportKind::Tcp,
                    handshake,
                    shutdown: shutdown_rx,
                    tls,
                };
                runtime.spawn(accept_loop(tcp, ctx));
            }
        }
        let secure = config.tls.is_some();
        tracing::info!(%local_addr, path = %config.path, tls = secure, "wsbroker listening (websocket)");
        if let Some(addr) = tcp_local_addr {
            tracing::info!(%addr, tls = secure, "wsbroker listening (stomp over tcp)");
        }
        self.started.store(true, Ordering::Release);
        *running = Some(Running {
            runtime,
            callbacks,
            shutdown,
            local_addr,
            tcp_local_addr,
            store,
        });
        Ok(())
    }

    /// Starts the store's writer and hands the broker its journal and what it held.
    fn start_store(
        &self,
        db: redb::Database,
        config: &crate::store::StoreConfig,
        restored: crate::broker::Restored,
    ) -> Result<crate::store::Store> {
        let engine = Arc::downgrade(&self.engine);
        let on_commit = Box::new(move |ticket| {
            if let Some(engine) = engine.upgrade() {
                engine.broker.release_durable(ticket);
            }
        });
        let store = crate::store::Store::start(db, config, &restored, on_commit)
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
        let (streams, queued) = (
            restored.streams.len(),
            restored.queues.iter().map(|(_, m)| m.len()).sum::<usize>(),
        );
        self.engine.broker.attach_journal(store.journal(), restored);
        tracing::info!(
            data_dir = %config.data_dir.display(),
            streams,
            queued,
            "message store open"
        );
        Ok(store)
    }

    /// Stops accepting, closes every connection cleanly (ERROR "server shutting down", then
    /// WebSocket close 1001), waits up to `grace` for them to finish, and stops the runtime.
    /// Must not be called from a server callback (returns `CalledFromCallback`).
    pub fn stop(&self, grace: Duration) -> Result<()> {
        if on_server_thread() {
            return Err(Error::CalledFromCallback("stop"));
        }
        let Some(running) = self.running.lock().take() else {
            return Err(Error::NotRunning);
        };
        self.stopped.store(true, Ordering::Release);
        let _ = running.shutdown.send(true);
        let deadline = Instant::now() + grace;
        let counters = self.engine.counters();
        while counters.connections.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        running.runtime.shutdown_timeout(Duration::from_millis(200));
        // The callbacks queued before the stop still run (they may be host bookkeeping),
        // within what is left of the grace period.
        self.engine.executor.close();
        running.callbacks.join(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(200)),
        );
        if let Some(mut store) = running.store {
            store.close(Duration::from_secs(5));
        }
        tracing::info!("wsbroker stopped");
        Ok(())
    }

    /// Tasks alive on the server's runtime (listeners, connections, relay links), while it
    /// runs: lets tests prove that finished sessions leave no task behind.
    #[doc(hidden)]
    pub fn alive_tasks(&self) -> Option<usize> {
        let running = self.running.lock();
        running
            .as_ref()
            .map(|r| r.runtime.metrics().num_alive_tasks())
    }

    /// True between `start` and `stop`.
    pub fn is_running(&self) -> bool {
        self.running.lock().is_some()
    }

    /// The bound WebSocket address (after `start`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.running.lock().as_ref().map(|r| r.local_addr)
    }

    /// The bound plain-TCP STOMP address, when that listener is on.
    pub fn tcp_local_addr(&self) -> Option<SocketAddr> {
        self.running.lock().as_ref().and_then(|r| r.tcp_local_addr)
    }

    /// The bound WebSocket port; `NotRunning` before `start` and after `stop`.
    pub fn local_port(&self) -> Result<u16> {
        self.local_addr().map(|a| a.port()).ok_or(Error::NotRunning)
    }

    /// The bound plain-TCP STOMP port; `NotRunning` when the server is not running,
    /// `NotFound` when the TCP listener is off.
    pub fn tcp_port(&self) -> Result<u16> {
        let running = self.running.lock();
        let running = running.as_ref().ok_or(Error::NotRunning)?;
        running
            .tcp_local_addr
            .map(|a| a.port())
            .ok_or_else(|| Error::NotFound("the plain-TCP listener is off".into()))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.engine.counters().snapshot()
    }

    /// Cluster mode's figures (engine reachable, engine subscriptions, publications sent,
    /// received and dropped); `None` on a single node.
    pub fn cluster_stats(&self) -> Option<crate::cluster::ClusterStats> {
        self.engine.cluster.as_ref().map(|link| link.stats())
    }

    /// A publisher for other threads; cheap to clone.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.engine.clone())
    }

    /// Publishing needs a running server: before `start` and after `stop` it is `NotRunning`
    /// (a message published then would reach no client, and would hide a start forgotten).
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.stopped.load(Ordering::Acquire) || !self.started.load(Ordering::Acquire) {
            return Err(Error::NotRunning);
        }
        Ok(())
    }

    /// Publishes to a destination; see [`Publisher::publish`]. Never blocks.
    pub fn publish(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize> {
        self.check_open()?;
        self.publisher().publish(destination, headers, body)
    }

    /// Publishes like [`Server::publish`], also returning the message's offset in its
    /// destination's history (`None` when no history rule covers the destination).
    pub fn publish_recorded(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Published> {
        self.check_open()?;
        self.publisher()
            .publish_recorded(destination, headers, body)
    }

    /// The retained history of `destination`: its position (epoch, last offset) and up to
    /// `limit` messages after offset `since` (0: from the oldest retained), oldest first, with
    /// `complete` false when some after `since` are no longer retained. `NotFound` when no
    /// history rule covers the destination.
    pub fn history(&self, destination: &str, since: u64, limit: usize) -> Result<HistoryPage> {
        check_single_destination(destination)?;
        self.engine
            .broker
            .history(destination, since, limit)
            .ok_or_else(|| Error::NotFound(format!("no history is kept for {destination}")))
    }

    /// The presence members of `destination` (subscribers covered by a presence pattern or
    /// subscribed with `x-presence:true`), in the order they joined; count 0 when it has none.
    pub fn presence(&self, destination: &str) -> Result<Presence> {
        check_single_destination(destination)?;
        Ok(self.engine.broker.presence(destination))
    }

    /// Publishes like [`Server::publish_recorded`], but while flow control refuses it (a
    /// subscriber it would reach is congested, or a full queue destination) waits up to
    /// `timeout` for room instead of failing at once; then `Backpressure`. Blocks the calling thread, so it is
    /// for the host's own threads: from a server thread (inside a callback) it is
    /// `CalledFromCallback`. A stuck subscriber is closed once the slow-consumer timeout
    /// passed, so a wait longer than that only waits for busy ones.
    pub fn publish_wait(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Published> {
        self.check_open()?;
        if on_server_thread() {
            return Err(Error::CalledFromCallback("publish_wait"));
        }
        self.publisher()
            .publish_wait(destination, headers, body.into(), timeout)
    }

    /// Sends to a user's sessions; see [`Publisher::send_to_user`].
    pub fn send_to_user(
        &self,
        user: &str,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize> {
        self.check_open()?;
        self.publisher()
            .send_to_user(user, destination, headers, body)
    }

    /// Sends to one session's matching subscriptions; see [`Publisher::send_to_session`].
    pub fn send_to_session(
        &self,
        session: u64,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize> {
        self.check_open()?;
        self.publisher()
            .send_to_session(session, destination, headers, body)
    }

    /// Closes a session with an ERROR frame carrying `reason`.
    pub fn disconnect_session(&self, session: u64, reason: &str) -> Result<()> {
        self.engine
            .broker
            .disconnect_session(session, reason)
            .map_err(|e| Error::NotFound(e.0))
    }

    /// Subscribes the host to a destination pattern (wildcards as for clients). The callback
    /// sees every matching message — broadcast or queue — without consuming it, one message at
    /// a time and in order, on a callback thread (never the publisher's: a callback that
    /// publishes to a destination it matches queues another delivery instead of recursing).
    pub fn subscribe(
        &self,
        pattern: &str,
        callback: impl Fn(&Arc<Message>) + Send + Sync + 'static,
    ) -> Result<HostSubscriptionId> {
        check_pattern(pattern)?;
        let id = self
            .engine
            .broker
            .add_host_subscription(pattern, Arc::new(callback));
        Ok(self.relay_host_subscription(id, pattern))
    }

    /// Relay mode: a host subscription on a relayed destination also subscribes through the
    /// system connection (the in-process broker never sees those messages).
    fn relay_host_subscription(&self, id: u64, pattern: &str) -> HostSubscriptionId {
        if let Some(relay) = &self.engine.relay
            && relay.is_relayed(pattern)
        {
            relay.system.subscribe(id, pattern);
        }
        HostSubscriptionId(id)
    }

    /// Relay mode: whether the system connection to the external broker is up; `None`
    /// without relay mode.
    pub fn broker_available(&self) -> Option<bool> {
        self.engine.relay.as_ref().map(|relay| relay.is_available())
    }

    /// Like [`Server::subscribe`], for a callback that needs its own subscription id (it is
    /// passed to every call, also to one racing with the return of this method).
    pub fn subscribe_with_id(
        &self,
        pattern: &str,
        callback: impl Fn(HostSubscriptionId, &Arc<Message>) + Send + Sync + 'static,
    ) -> Result<HostSubscriptionId> {
        check_pattern(pattern)?;
        let id = self.engine.broker.add_host_subscription_with(
            pattern,
            HostCallbackRuns::OnCallbackThread,
            move |id| {
                Arc::new(move |message: &Arc<Message>| callback(HostSubscriptionId(id), message))
            },
        );
        Ok(self.relay_host_subscription(id, pattern))
    }

    /// Whether `pattern` may be subscribed to by the host (`subscribe` checks the same).
    pub(crate) fn check_subscription_pattern(&self, pattern: &str) -> Result<()> {
        check_pattern(pattern)
    }

    /// Ends a host subscription.
    pub fn unsubscribe(&self, id: HostSubscriptionId) -> Result<()> {
        if let Some(relay) = &self.engine.relay {
            relay.system.unsubscribe(id.0);
        }
        if self.engine.broker.remove_host_subscription(id.0) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("host subscription {}", id.0)))
        }
    }

    /// Handles SENDs to application destinations matching `pattern` (e.g. `/app/chat` or
    /// `/app/**`). Runs on a callback thread (one SEND of a session at a time, in order); return `Err(text)` to answer the sender with an
    /// ERROR.
    pub fn handle_app(
        &self,
        pattern: &str,
        handler: impl Fn(&AppMessage, &Publisher) -> std::result::Result<(), String>
        + Send
        + Sync
        + 'static,
    ) {
        self.engine.hooks.add_app(pattern, Arc::new(handler));
    }

    /// Removes an application handler.
    pub fn remove_app(&self, pattern: &str) -> Result<()> {
        if self.engine.hooks.remove_app(pattern) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("application handler {pattern}")))
        }
    }

    /// Decides on every WebSocket upgrade request (path, query, cookies, headers, Origin):
    /// accept with a principal — which becomes the STOMP session's user unless the connect
    /// decision says otherwise — or reject with 401/403. Runs on a callback thread.
    pub fn on_upgrade(
        &self,
        hook: impl Fn(&UpgradeInfo) -> UpgradeDecision + Send + Sync + 'static,
    ) {
        self.engine.hooks.set_upgrade(Some(Arc::new(hook)));
    }

    /// Removes the upgrade hook: every request that passes the protocol checks is accepted
    /// without a principal.
    pub fn clear_upgrade_hook(&self) {
        self.engine.hooks.set_upgrade(None);
    }

    /// Decides on every CONNECT (default: accept, user = `login`).
    pub fn on_connect(
        &self,
        hook: impl Fn(&ConnectRequest) -> ConnectDecision + Send + Sync + 'static,
    ) {
        self.engine.hooks.set_connect(Some(Arc::new(hook)));
    }

    /// Authorizes every SUBSCRIBE (default: allow).
    pub fn on_subscribe(
        &self,
        hook: impl Fn(&SubscribeRequest) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) {
        self.engine.hooks.set_subscribe(Some(Arc::new(hook)));
    }

    /// Turns on event delivery (before `start`), queued or by callback: see
    /// [`Server::enable_events`] and [`Server::enable_event_callback`].
    pub fn enable_event_delivery(&self, delivery: EventDelivery) -> Result<()> {
        match delivery {
            EventDelivery::Queue(config) => self.enable_events(config),
            EventDelivery::Callback(callback) => self.enable_event_callback(callback),
        }
    }

    /// Turns on polled delivery (before `start`): events go to a bounded queue drained with
    /// [`Server::poll_events`]. With `defer_connect` every CONNECT waits for
    /// [`Server::accept_connect`] / [`Server::reject_connect`]; with `defer_subscribe` every
    /// SUBSCRIBE waits for [`Server::answer_subscribe`].
    pub fn enable_events(&self, config: EventQueueConfig) -> Result<()> {
        if self.is_running() {
            return Err(Error::AlreadyStarted);
        }
        self.engine
            .set_event_sink(EventSink::Queue(Arc::new(EventQueue::new(config))))
    }

    /// Turns on direct event delivery (before `start`, instead of `enable_events`): every event
    /// is handed to `sink.callback` on a server thread. Deferred questions are answered with
    /// the same calls as in polled mode, from inside the callback or later from any thread.
    pub fn enable_event_callback(&self, sink: EventCallback) -> Result<()> {
        if self.is_running() {
            return Err(Error::AlreadyStarted);
        }
        self.engine.set_event_sink(EventSink::Callback(sink))
    }

    /// Moves up to `max` events into `out`, waiting up to `timeout` for the first. Returns how
    /// many were added. Any thread may poll; each event goes to exactly one poller.
    pub fn poll_events(
        &self,
        out: &mut Vec<Event>,
        max: usize,
        timeout: Duration,
    ) -> Result<usize> {
        let queue = self.engine.event_queue().ok_or_else(|| {
            Error::InvalidArgument("polled delivery is off: call enable_events before start".into())
        })?;
        Ok(queue.poll(out, max, timeout))
    }

    /// Accepts a CONNECT waiting in the event queue, optionally as a named user.
    pub fn accept_connect(&self, session: u64, user: Option<&str>) -> Result<()> {
        let decision = ConnectDecision::Accept {
            user: user.map(str::to_string),
        };
        self.engine.answer(session, Answer::Connect(decision))
    }

    /// Rejects a CONNECT waiting in the event queue; the client gets an ERROR with `message`.
    pub fn reject_connect(&self, session: u64, message: &str) -> Result<()> {
        let decision = ConnectDecision::Reject(message.to_string());
        self.engine.answer(session, Answer::Connect(decision))
    }

    /// Answers a SUBSCRIBE waiting in the event queue: `Err(message)` refuses it with an ERROR.
    pub fn answer_subscribe(
        &self,
        session: u64,
        decision: std::result::Result<(), String>,
    ) -> Result<()> {
        self.engine.answer(session, Answer::Subscribe(decision))
    }

    /// Routes SENDs to application destinations matching `pattern` into the event queue as
    /// [`Event::AppMessage`] (answer with `send_to_session`, `publish`, ...). A full queue
    /// answers the sender with an ERROR.
    pub fn route_app_to_events(&self, pattern: &str) -> Result<()> {
        let engine = Arc::downgrade(&self.engine);
        self.require_event_sink()?;
        self.handle_app(pattern, move |message, _| {
            let engine = engine.upgrade().ok_or("server is gone")?;
            if engine.emit(Event::AppMessage(message.clone())) {
                Ok(())
            } else {
                Err("the host's event queue is full; message not accepted".into())
            }
        });
        Ok(())
    }

    fn require_event_sink(&self) -> Result<()> {
        if self.engine.has_event_sink() {
            return Ok(());
        }
        Err(Error::InvalidArgument(
            "event delivery is off: call enable_events or enable_event_callback first".into(),
        ))
    }

    /// Subscribes the host to `pattern` through the event queue: each matching message becomes
    /// an [`Event::Message`] carrying the returned id.
    pub fn subscribe_events(&self, pattern: &str) -> Result<HostSubscriptionId> {
        self.require_event_sink()?;
        check_pattern(pattern)?;
        let engine = Arc::downgrade(&self.engine);
        let id = self
            .engine
            .broker
            // Only queues an event (which a callback sink hands to a callback thread itself).
            .add_host_subscription_with(pattern, HostCallbackRuns::Inline, move |subscription| {
                Arc::new(move |message: &Arc<Message>| {
                    if let Some(engine) = engine.upgrade() {
                        engine.emit(Event::Message {
                            subscription,
                            message: message.clone(),
                        });
                    }
                })
            });
        Ok(self.relay_host_subscription(id, pattern))
    }

    /// Told whenever a connected session ends.
    pub fn on_disconnect(&self, hook: impl Fn(&SessionInfo) + Send + Sync + 'static) {
        self.engine.hooks.set_disconnect(Some(Arc::new(hook)));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.running.get_mut().is_none() {
            return;
        }
        if on_server_thread() {
            // Dropped on one of its own threads: the runtime cannot be joined here.
            if let Some(running) = self.running.get_mut().take() {
                let _ = running.shutdown.send(true);
                running.runtime.shutdown_background();
                // The callback threads end once their queues are empty.
                self.engine.executor.close();
            }
            return;
        }
        let _ = self.stop(DROP_GRACE);
    }
}

/// Reports dropped messages to the host every `DROP_REPORT_INTERVAL` (coalesced per
/// subscription), and once more when the server stops.
async fn report_drops(engine: Arc<Engine>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(crate::broker::DROP_REPORT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => engine.report_drops(),
            _ = shutdown.wait_for(|stopping| *stopping) => {
                engine.report_drops();
                return;
            }
        }
    }
}

/// The JWKS file's identity for change detection: modification time and size.
fn jwks_stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Reads the JWKS file into the authenticator (at start: an unreadable or invalid file fails
/// `start`).
fn load_jwks(engine: &Engine, path: &std::path::Path) -> Result<usize> {
    let (Some(auth), Some(config)) = (&engine.auth, &engine.config.auth) else {
        return Ok(0);
    };
    let bytes = std::fs::read(path).map_err(|e| {
        Error::InvalidConfig(format!("cannot read the JWKS file {}: {e}", path.display()))
    })?;
    auth.load_jwks(config, &bytes)
        .map_err(|e| Error::InvalidConfig(format!("{}: {e}", path.display())))
}

/// Reloads the JWKS file whenever its modification time or size changes (checked every
/// `JWKS_RELOAD_INTERVAL`); a file that fails to parse leaves the previous keys in place.
async fn watch_jwks(
    engine: Arc<Engine>,
    path: std::path::PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut stamp = jwks_stamp(&path);
    let mut tick = tokio::time::interval(crate::auth::JWKS_RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = jwks_stamp(&path);
                if now.is_none() || now == stamp {
                    continue;
                }
                stamp = now;
                match load_jwks(&engine, &path) {
                    Ok(keys) => tracing::info!(path = %path.display(), keys, "JWKS reloaded"),
                    Err(e) => tracing::warn!(error = %e, "JWKS reload failed; keeping the previous keys"),
                }
            }
            _ = shutdown.wait_for(|stopping| *stopping) => return,
        }
    }
}
