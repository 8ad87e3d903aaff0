//! The shared system connection: host publishes to relayed destinations and host subscriptions
//! on them travel over it. It reconnects with backoff for the server's whole life and tells the
//! host through `BrokerAvailable` / `BrokerUnavailable` events.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until};

use super::Relay;
use super::backoff::Backoff;
use super::conn::BrokerConn;
use crate::error::{Error, Result};
use crate::stomp::decoder::Decoded;
use crate::stomp::frame::{Command, Frame};
use crate::stomp::version::Version;

/// Subscription ids of host subscriptions on the system connection: `host-{id}`.
const HOST_SUB_PREFIX: &str = "host-";

/// What the system connection reports to the server it belongs to. The server's engine
/// implements it, so the relay depends on that one interface rather than on the engine.
pub(crate) trait SystemListener: Send + Sync {
    /// The system connection came up (`None`), or is down and being re-opened (`Some(why)`).
    fn availability_changed(&self, unavailable: Option<String>);
    /// A MESSAGE from the broker for host subscription `subscription`.
    fn host_message(&self, subscription: u64, frame: Frame);
}

/// The listener, held weakly: the system task must not keep its server alive.
type Listener = std::sync::Weak<dyn SystemListener>;

/// What the safe API asks of the system connection.
#[derive(Debug)]
pub(crate) enum SystemCommand {
    Publish(Frame),
    Subscribe(u64),
    Unsubscribe(u64),
}

/// The host's side of the system connection.
#[derive(Debug)]
pub(crate) struct System {
    commands: mpsc::Sender<SystemCommand>,
    receiver: Mutex<Option<mpsc::Receiver<SystemCommand>>>,
    available: AtomicBool,
    /// Host subscriptions on relayed destinations: id → destination.
    subscriptions: Mutex<BTreeMap<u64, String>>,
}

impl System {
    pub(crate) fn new(capacity: usize) -> System {
        let (commands, receiver) = mpsc::channel(capacity);
        System {
            commands,
            receiver: Mutex::new(Some(receiver)),
            available: AtomicBool::new(false),
            subscriptions: Mutex::new(BTreeMap::new()),
        }
    }

    /// True while the system connection is up.
    pub(crate) fn is_available(&self) -> bool {
        self.available.load(Ordering::Acquire)
    }

    /// Publishes through the broker; fails at once while it is unavailable or slow.
    pub(crate) fn publish(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<()> {
        if !self.is_available() {
            return Err(Error::Backpressure(
                "the message broker is unavailable; nothing was published".into(),
            ));
        }
        let mut frame = Frame::new(Command::Send).with_header("destination", destination);
        for (name, value) in headers {
            if !matches!(
                *name,
                "destination" | "receipt" | "transaction" | "content-length"
            ) {
                frame.push_header(*name, *value);
            }
        }
        let frame = frame.with_body(body);
        self.commands
            .try_send(SystemCommand::Publish(frame))
            .map_err(|_| {
                Error::Backpressure("too many publishes waiting for the message broker".into())
            })
    }

    /// Subscribes host subscription `id` to `destination` on the broker (now, and again after
    /// every reconnect).
    pub(crate) fn subscribe(&self, id: u64, destination: &str) {
        self.subscriptions
            .lock()
            .insert(id, destination.to_string());
        // A full queue or a broken connection loses nothing: the next (re)connect subscribes
        // everything in the map.
        let _ = self.commands.try_send(SystemCommand::Subscribe(id));
    }

    /// Ends host subscription `id` on the broker; false when it was not relayed.
    pub(crate) fn unsubscribe(&self, id: u64) -> bool {
        let known = self.subscriptions.lock().remove(&id).is_some();
        if known {
            let _ = self.commands.try_send(SystemCommand::Unsubscribe(id));
        }
        known
    }

    /// Starts the connection task on the current runtime; it ends when `shutdown` turns true.
    pub(crate) fn start(relay: Arc<Relay>, engine: Listener, shutdown: watch::Receiver<bool>) {
        let Some(receiver) = relay.system.receiver.lock().take() else {
            return;
        };
        tokio::spawn(run(relay, engine, receiver, shutdown));
    }
}

fn report(engine: &Listener, unavailable: Option<String>) {
    if let Some(engine) = engine.upgrade() {
        engine.availability_changed(unavailable);
    }
}

async fn run(
    relay: Arc<Relay>,
    engine: Listener,
    mut commands: mpsc::Receiver<SystemCommand>,
    mut shutdown: watch::Receiver<bool>,
) {
    let config = &relay.config;
    let system = &relay.system;
    let mut backoff = Backoff::new(config.reconnect_initial_delay, config.reconnect_max_delay);
    // Unknown at first: the first failure is reported as well.
    let mut reported_unavailable = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let opened = tokio::select! {
            _ = shutdown.changed() => return,
            opened = BrokerConn::open(config, &config.system_login, &config.system_passcode, Version::V1_2, relay.limits.clone()) => opened,
        };
        let mut conn = match opened {
            Ok(conn) => conn,
            Err(reason) => {
                if !reported_unavailable {
                    tracing::warn!(%reason, "relay: message broker unavailable");
                    report(&engine, Some(reason));
                    reported_unavailable = true;
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = sleep(backoff.next_delay()) => continue,
                }
            }
        };
        backoff.reset();
        // Commands of the broken connection: publishes were refused meanwhile, subscriptions
        // are taken from the map below.
        while commands.try_recv().is_ok() {}
        let mut subscribed = HashSet::new();
        let ids: Vec<u64> = system.subscriptions.lock().keys().copied().collect();
        let mut result = Ok(());
        for id in ids {
            result = subscribe(&mut conn, system, &mut subscribed, id).await;
            if result.is_err() {
                break;
            }
        }
        let reason = match result {
            Err(e) => e,
            Ok(()) => {
                system.available.store(true, Ordering::Release);
                reported_unavailable = false;
                tracing::info!(broker = %config.broker, "relay: message broker available");
                report(&engine, None);
                match serve(
                    &mut conn,
                    &relay,
                    &engine,
                    &mut commands,
                    &mut shutdown,
                    &mut subscribed,
                )
                .await
                {
                    None => {
                        system.available.store(false, Ordering::Release);
                        conn.close().await;
                        return;
                    }
                    Some(reason) => reason,
                }
            }
        };
        system.available.store(false, Ordering::Release);
        tracing::warn!(%reason, "relay: system connection lost");
        if !reported_unavailable {
            report(&engine, Some(reason));
            reported_unavailable = true;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = sleep(backoff.next_delay()) => {}
        }
    }
}

async fn subscribe(
    conn: &mut BrokerConn,
    system: &System,
    subscribed: &mut HashSet<u64>,
    id: u64,
) -> std::result::Result<(), String> {
    let Some(destination) = system.subscriptions.lock().get(&id).cloned() else {
        return Ok(());
    };
    if !subscribed.insert(id) {
        return Ok(());
    }
    let frame = Frame::new(Command::Subscribe)
        .with_header("id", format!("{HOST_SUB_PREFIX}{id}"))
        .with_header("destination", destination)
        .with_header("ack", "auto");
    conn.write(&frame).await.map_err(|e| e.to_string())
}

/// Serves one connection; `None` on shutdown, else why the connection was lost.
async fn serve(
    conn: &mut BrokerConn,
    relay: &Relay,
    engine: &Listener,
    commands: &mut mpsc::Receiver<SystemCommand>,
    shutdown: &mut watch::Receiver<bool>,
    subscribed: &mut HashSet<u64>,
) -> Option<String> {
    loop {
        let deadline = conn.next_deadline();
        tokio::select! {
            biased;
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return None;
                }
            }
            command = commands.recv() => {
                let written = match command? {
                    SystemCommand::Publish(frame) => conn.write(&frame).await.map_err(|e| e.to_string()),
                    SystemCommand::Subscribe(id) => subscribe(conn, &relay.system, subscribed, id).await,
                    SystemCommand::Unsubscribe(id) => {
                        if subscribed.remove(&id) {
                            let frame = Frame::new(Command::Unsubscribe)
                                .with_header("id", format!("{HOST_SUB_PREFIX}{id}"));
                            conn.write(&frame).await.map_err(|e| e.to_string())
                        } else {
                            Ok(())
                        }
                    }
                };
                if let Err(e) = written {
                    return Some(e);
                }
            }
            read = conn.read() => match read {
                Ok(Some(Decoded::Frame(frame))) => match frame.command {
                    Command::Message => deliver(engine, frame),
                    Command::Error => {
                        let message = frame.header("message").unwrap_or("no reason given");
                        return Some(format!("the message broker sent ERROR: {message}"));
                    }
                    _ => {}
                },
                Ok(Some(Decoded::Heartbeat)) => {}
                Ok(None) => return Some("the message broker closed the connection".into()),
                Err(e) => return Some(e.to_string()),
            },
            _ = sleep_until(deadline) => {
                if let Err(e) = conn.on_timer().await {
                    return Some(e.to_string());
                }
            }
        }
    }
}

/// A MESSAGE for a host subscription: to that subscription's callback alone.
fn deliver(engine: &Listener, frame: Frame) {
    let Some(engine) = engine.upgrade() else {
        return;
    };
    let id = frame
        .header("subscription")
        .and_then(|s| s.strip_prefix(HOST_SUB_PREFIX))
        .and_then(|s| s.parse::<u64>().ok());
    if let Some(id) = id {
        engine.host_message(id, frame);
    }
}
