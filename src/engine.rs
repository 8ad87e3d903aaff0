//! What every connection of one server shares: configuration, broker, hooks, counters, the
//! optional event queue, and the sessions waiting for a host decision.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::auth::{Authenticator, Grant};
use crate::broker::{Broker, Counters};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::events::{Event, EventQueue, EventSink};
use crate::executor::{Executor, Lanes};
use crate::hooks::{Answer, ConnectDecision, Hooks, Question, UpgradeDecision};
use crate::raw::RawHub;
use crate::ws::handshake::UpgradeRequest;

/// How a session's question gets its answer.
pub(crate) enum Asked {
    /// Decided already (a hook or the default).
    Now(Answer),
    /// Queued as an event; the answer arrives on this channel (or never: time out).
    Later(oneshot::Receiver<Answer>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuestionKind {
    Connect,
    Subscribe,
}

/// The IO-free heart of a server; transports and the safe API hold it in an `Arc`.
pub struct Engine {
    /// The validated configuration.
    pub config: ServerConfig,
    /// Where host code runs (application handlers, host-subscription and event callbacks,
    /// hook decisions): never on the runtime threads.
    pub executor: Arc<Executor>,
    /// The executor's lanes until the server starts their threads.
    lanes: Mutex<Option<Lanes>>,
    /// Routing state.
    pub broker: Broker,
    /// The host's hooks.
    pub hooks: Hooks,
    /// Raw (non-STOMP) WebSocket endpoints, connections and topics.
    pub raw: RawHub,
    /// Relay mode's shared state, when `config.relay` is set.
    pub(crate) relay: Option<Arc<crate::relay::Relay>>,
    /// Token verification, when `config.auth` is set.
    pub(crate) auth: Option<Arc<Authenticator>>,
    /// Cluster mode's link to the engine, when `config.cluster` is set.
    pub(crate) cluster: Option<Arc<crate::cluster::Link>>,
    events: OnceLock<EventSink>,
    pending: Mutex<HashMap<u64, (QuestionKind, oneshot::Sender<Answer>)>>,
    next_session: AtomicU64,
    /// Open connections per client address; an entry is removed when its count reaches zero.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// A new engine for `config` (which the caller validated).
    pub fn new(config: ServerConfig) -> Arc<Engine> {
        let counters = Arc::new(Counters::default());
        let (executor, lanes) = Executor::new(config.callback_threads, config.callback_queue);
        let executor = Arc::new(executor);
        let broker = Broker::new(config.broker.clone(), counters, executor.clone());
        let cluster = config.cluster.clone().map(crate::cluster::Link::new);
        if let Some(link) = &cluster {
            broker.attach_backplane(link.clone());
        }
        Arc::new(Engine {
            broker,
            cluster,
            executor,
            lanes: Mutex::new(Some(lanes)),
            relay: config
                .relay
                .clone()
                .map(|relay| crate::relay::Relay::new(relay, config.frame_limits.clone())),
            auth: config.auth.as_ref().map(|auth| {
                // Checked by `ServerConfig::validate`; a JWKS starts empty (loaded at start).
                Arc::new(Authenticator::new(auth, None).expect("validated auth config"))
            }),
            config,
            hooks: Hooks::default(),
            raw: RawHub::default(),
            events: OnceLock::new(),
            pending: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// The callback pool's lanes, for the server to start their threads (once).
    pub(crate) fn take_callback_lanes(&self) -> Option<Lanes> {
        self.lanes.lock().take()
    }

    /// Tests without a server: runs the queued host callbacks on the calling thread until none
    /// are left (callbacks may queue more); how many ran.
    #[cfg(test)]
    pub(crate) fn run_queued_callbacks(&self) -> usize {
        let mut lanes = self.lanes.lock();
        let lanes = lanes
            .as_mut()
            .expect("no server runs this engine's callbacks");
        let mut ran = 0;
        loop {
            let before = ran;
            for lane in lanes.iter_mut() {
                while let Ok(job) = lane.try_recv() {
                    job();
                    ran += 1;
                }
            }
            if ran == before {
                return ran;
            }
        }
    }

    /// The STOMP sessions' settings.
    pub fn session_config(&self) -> &crate::session::config::SessionConfig {
        &self.config.session
    }

    /// Server-wide counters.
    pub fn counters(&self) -> &Arc<Counters> {
        self.broker.counters()
    }

    /// A session id never used before on this server.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Relaxed)
    }

    /// Counts one more connection from `ip`; false (and nothing counted) when `ip` already has
    /// `max_connections_per_ip` open.
    pub(crate) fn acquire_ip(&self, ip: IpAddr) -> bool {
        let mut per_ip = self.per_ip.lock();
        let open = per_ip.get(&ip).copied().unwrap_or(0);
        if open >= self.config.max_connections_per_ip {
            return false;
        }
        per_ip.insert(ip, open + 1);
        true
    }

    /// Forgets one connection from `ip` counted by [`Engine::acquire_ip`].
    pub(crate) fn release_ip(&self, ip: IpAddr) {
        let mut per_ip = self.per_ip.lock();
        if let Some(open) = per_ip.get_mut(&ip) {
            *open -= 1;
            if *open == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Addresses with at least one open connection (bounded by the open connections).
    #[cfg(test)]
    pub(crate) fn tracked_ips(&self) -> usize {
        self.per_ip.lock().len()
    }

    /// Turns on event delivery (queue or callback); only once.
    pub fn set_event_sink(&self, sink: EventSink) -> Result<()> {
        self.events
            .set(sink)
            .map_err(|_| Error::InvalidArgument("event delivery is already configured".into()))
    }

    /// The event queue, when polled delivery is on.
    pub fn event_queue(&self) -> Option<&Arc<EventQueue>> {
        match self.events.get() {
            Some(EventSink::Queue(queue)) => Some(queue),
            _ => None,
        }
    }

    /// True when events are delivered (queue or callback).
    pub fn has_event_sink(&self) -> bool {
        self.events.get().is_some()
    }

    /// Delivers an event when event delivery is on; false when it is off or the event was dropped.
    pub fn emit(&self, event: Event) -> bool {
        self.events
            .get()
            .is_some_and(|sink| sink.emit(event, &self.executor))
    }

    /// Reports the messages dropped since the last call, one event per subscription (taken
    /// even without event delivery, so the tallies stay bounded).
    pub fn report_drops(&self) {
        for report in self.counters().drops.take() {
            self.emit(Event::MessagesDropped(report));
        }
    }

    /// Whether a SUBSCRIBE must wait for a decision (a subscribe hook, or deferred to events).
    pub fn wants_subscribe_decision(&self) -> bool {
        self.hooks.has_subscribe_hook() || self.events.get().is_some_and(|sink| sink.defers(false))
    }

    /// Asks the host: through the event queue when that kind of question is deferred, else
    /// through its hook — on a callback thread, never the caller's — or, without a hook, by the
    /// default right away. A panicking hook refuses instead of unwinding.
    pub(crate) fn ask(self: &Arc<Self>, session: u64, question: Question) -> Asked {
        let kind = match question {
            Question::Connect(_) => QuestionKind::Connect,
            Question::Subscribe(_) => QuestionKind::Subscribe,
        };
        let deferred = self
            .events
            .get()
            .filter(|sink| sink.defers(kind == QuestionKind::Connect));
        let Some(sink) = deferred else {
            if !self.hooks.decides(kind == QuestionKind::Connect) {
                return Asked::Now(self.ask_hooks(question));
            }
            let (tx, rx) = oneshot::channel();
            self.pending.lock().insert(session, (kind, tx));
            let engine = self.clone();
            let decide = move || {
                let answer = engine.ask_hooks(question);
                // Not waited for any more (timed out, connection gone): nothing to do.
                let _ = engine.answer(session, answer);
            };
            if !self.executor.try_run(session, Box::new(decide)) {
                self.pending.lock().remove(&session);
                return Asked::Now(refusal(
                    kind,
                    "the host's callbacks are overloaded; try again later",
                ));
            }
            return Asked::Later(rx);
        };
        let (tx, rx) = oneshot::channel();
        // Registered before the event is visible, so an immediate answer finds it.
        self.pending.lock().insert(session, (kind, tx));
        let event = match question {
            Question::Connect(request) => Event::Connect(request),
            Question::Subscribe(request) => Event::Subscribe(request),
        };
        if !sink.emit(event, &self.executor) {
            self.pending.lock().remove(&session);
            return Asked::Now(refusal(
                kind,
                "the host's event queue is full; try again later",
            ));
        }
        Asked::Later(rx)
    }

    /// The upgrade hook's verdict on a WebSocket (or SockJS) handshake, decided on a callback
    /// thread while the handshake waits (at most the decision timeout). Without a hook every
    /// request that passed the protocol checks is accepted at once.
    pub(crate) async fn decide_upgrade(
        self: &Arc<Self>,
        request: &UpgradeRequest,
        peer: SocketAddr,
    ) -> UpgradeDecision {
        if !self.hooks.has_upgrade_hook() {
            return UpgradeDecision::Accept { principal: None };
        }
        let request = request.clone();
        let unavailable = |reason: &str| UpgradeDecision::Reject {
            status: 503,
            reason: reason.into(),
        };
        let (tx, rx) = oneshot::channel();
        let engine = self.clone();
        let decide = move || {
            let _ = tx.send(engine.hooks.decide_upgrade(&request, Some(peer)));
        };
        // The peer's port spreads concurrent handshakes over the lanes.
        let key = u64::from(peer.port());
        let decided = async {
            if !self.executor.run(key, Box::new(decide)).await {
                return unavailable("the server is stopping");
            }
            rx.await
                .unwrap_or_else(|_| unavailable("the upgrade hook did not decide"))
        };
        tokio::time::timeout(self.config.decision_timeout, decided)
            .await
            .unwrap_or_else(|_| unavailable("no decision from the host in time"))
    }

    /// Token authentication at the upgrade: the token the request carries (bearer header,
    /// cookie, query parameter), verified. `Ok(None)`: no token (or authentication off);
    /// `Err`: the 401 refusal for a token that does not verify.
    pub(crate) fn upgrade_grant(
        &self,
        request: &UpgradeRequest,
    ) -> std::result::Result<Option<Grant>, UpgradeDecision> {
        let (Some(authenticator), Some(config)) = (&self.auth, &self.config.auth) else {
            return Ok(None);
        };
        let query = request.query.as_deref().unwrap_or_default();
        let Some(token) = crate::auth::upgrade_token(config, &request.headers, |name| {
            crate::hooks::query_param(query, name)
        }) else {
            return Ok(None);
        };
        match authenticator.verify(&token, crate::auth::unix_now(), &config.token_defaults) {
            Ok(grant) => Ok(Some(grant)),
            Err(e) => {
                crate::broker::stats::add(&self.counters().auth_refused, 1);
                Err(UpgradeDecision::Reject {
                    status: 401,
                    reason: format!("token refused - {e}"),
                })
            }
        }
    }

    /// Forgets a question that will not be answered (timeout, connection gone) and gives the
    /// refusal that replaces the answer.
    pub(crate) fn abandon(&self, session: u64, why: &str) -> Option<Answer> {
        let (kind, _) = self.pending.lock().remove(&session)?;
        Some(refusal(kind, why))
    }

    /// Delivers the host's answer to a waiting session.
    pub fn answer(&self, session: u64, answer: Answer) -> Result<()> {
        let mut pending = self.pending.lock();
        let expected = match answer {
            Answer::Connect(_) => QuestionKind::Connect,
            Answer::Subscribe(_) => QuestionKind::Subscribe,
        };
        match pending.get(&session) {
            Some((kind, _)) if *kind == expected => {}
            Some(_) => {
                return Err(Error::InvalidArgument(format!(
                    "session {session} waits for a different decision"
                )));
            }
            None => {
                return Err(Error::NotFound(format!(
                    "session {session} is not waiting for a decision (answered, timed out or gone)"
                )));
            }
        }
        let (_, tx) = pending.remove(&session).expect("checked above");
        drop(pending);
        tx.send(answer)
            .map_err(|_| Error::NotFound(format!("session {session} is gone")))
    }

    fn ask_hooks(&self, question: Question) -> Answer {
        let hooks = &self.hooks;
        match question {
            Question::Connect(request) => Answer::Connect(
                catch_unwind(AssertUnwindSafe(|| hooks.decide_connect(&request))).unwrap_or_else(
                    |_| {
                        tracing::error!("connect hook panicked");
                        ConnectDecision::Reject("internal error in the connect hook".into())
                    },
                ),
            ),
            Question::Subscribe(request) => Answer::Subscribe(
                catch_unwind(AssertUnwindSafe(|| hooks.authorize_subscribe(&request)))
                    .unwrap_or_else(|_| {
                        tracing::error!("subscribe hook panicked");
                        Err("internal error in the subscribe hook".into())
                    }),
            ),
        }
    }
}

/// The relay's system connection reports here: availability becomes an event, a message for
/// a host subscription goes to that subscription's callback.
impl crate::relay::SystemListener for Engine {
    fn availability_changed(&self, unavailable: Option<String>) {
        self.emit(match unavailable {
            None => Event::BrokerAvailable,
            Some(reason) => Event::BrokerUnavailable { reason },
        });
    }

    fn host_message(&self, subscription: u64, frame: crate::stomp::Frame) {
        let destination = frame.header("destination").unwrap_or_default().to_string();
        let message = Arc::new(crate::broker::Message::new(
            self.broker.next_message_id(),
            destination,
            frame.headers,
            frame.body,
            None,
        ));
        self.broker
            .deliver_to_host_subscription(subscription, &message);
    }
}

/// The cluster link reports here: availability becomes an event.
impl crate::cluster::ClusterListener for Engine {
    fn availability_changed(&self, unavailable: Option<String>) {
        self.emit(match unavailable {
            None => Event::BackplaneAvailable,
            Some(reason) => Event::BackplaneUnavailable { reason },
        });
    }

    fn broker(&self) -> &crate::broker::Broker {
        &self.broker
    }
}

fn refusal(kind: QuestionKind, why: &str) -> Answer {
    match kind {
        QuestionKind::Connect => Answer::Connect(ConnectDecision::Reject(why.to_string())),
        QuestionKind::Subscribe => Answer::Subscribe(Err(why.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_counts_are_bounded_and_forgotten_at_zero() {
        let engine = Engine::new(ServerConfig {
            max_connections_per_ip: 2,
            ..Default::default()
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(engine.acquire_ip(a));
        assert!(engine.acquire_ip(a));
        assert!(
            !engine.acquire_ip(a),
            "third from the same address is refused"
        );
        assert!(engine.acquire_ip(b), "other addresses are not affected");
        assert_eq!(engine.tracked_ips(), 2);
        engine.release_ip(a);
        assert!(engine.acquire_ip(a));
        engine.release_ip(a);
        engine.release_ip(a);
        engine.release_ip(b);
        assert_eq!(engine.tracked_ips(), 0, "entries at zero are removed");
        engine.release_ip(b); // unbalanced release is harmless
        assert_eq!(engine.tracked_ips(), 0);
    }
}
