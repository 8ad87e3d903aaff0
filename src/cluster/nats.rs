//! The NATS engine: one connection for publishing and subscribing. The client library
//! reconnects by itself and re-subscribes what it held; its connection events drive this
//! node's availability. Each engine subscription is read by its own small task into one
//! channel, which keeps each subscription's order (the order a local subscriber sees). A
//! round trip through a subject only this connection subscribes to confirms new
//! subscriptions (see [`Echo`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::table::Table;
use super::{Command, EngineKey, Link, Listener};
use crate::broker::Ticket;
use crate::relay::backoff::Backoff;

/// How long the server may take to answer the round trip that confirms subscriptions.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the first connection may take before the engine is reported unavailable.
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Payloads read ahead per engine subscription before its reader waits.
const READ_AHEAD: usize = 1024;

enum Connection {
    Up,
    Down(String),
    /// The client gave up messages of a subscription this node did not read fast enough.
    Lost(String),
}

pub(super) async fn run(
    link: Arc<Link>,
    url: String,
    listener: Listener,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let backoff = Arc::new(parking_lot::Mutex::new(Backoff::new(
        Duration::from_millis(100),
        Duration::from_secs(5),
    )));
    let delays = backoff.clone();
    let options = async_nats::ConnectOptions::new()
        .name(format!("wsbroker {}", link.config.node_id))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(move |_| delays.lock().next_delay())
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let change = match event {
                    async_nats::Event::Connected => Some(Connection::Up),
                    async_nats::Event::Disconnected => {
                        Some(Connection::Down("disconnected".into()))
                    }
                    async_nats::Event::Closed => Some(Connection::Down("closed".into())),
                    async_nats::Event::SlowConsumer(_) => Some(Connection::Lost(event.to_string())),
                    _ => None,
                };
                if let Some(change) = change {
                    let _ = events_tx.send(change);
                }
            }
        });
    let client = match options.connect(url.as_str()).await {
        Ok(client) => client,
        Err(e) => {
            link.set_available(&listener, Some(format!("cannot connect to {url}: {e}")));
            return;
        }
    };
    let mut echo = match Echo::new(&client).await {
        Ok(echo) => echo,
        Err(e) => {
            link.set_available(&listener, Some(format!("cannot subscribe on {url}: {e}")));
            return;
        }
    };
    let (payloads_tx, mut payloads) = mpsc::channel::<(EngineKey, Bytes)>(READ_AHEAD);
    let mut table = Table::default();
    let mut readers: HashMap<EngineKey, JoinHandle<()>> = HashMap::new();
    let mut connected_before = false;
    let mut batch = Vec::new();
    // The client keeps trying on its own and says nothing until it connects: a first
    // connection that takes too long is reported as an outage.
    let first_connect = tokio::time::sleep(FIRST_CONNECT_WAIT);
    tokio::pin!(first_connect);
    let mut awaiting_first = true;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            () = &mut first_connect, if awaiting_first => {
                awaiting_first = false;
                link.set_available(&listener, Some(format!("cannot connect to {url} within {FIRST_CONNECT_WAIT:?}")));
            }
            event = events.recv() => match event {
                Some(Connection::Up) => {
                    backoff.lock().reset();
                    if connected_before {
                        link.reconnects.fetch_add(1, Relaxed);
                    }
                    connected_before = true;
                    awaiting_first = false;
                    // The client re-sent its subscriptions; the PONG says the server has them.
                    let upto = link.take_changes(&mut commands, &mut table, None);
                    subscribe_all(&client, &mut readers, &payloads_tx, &upto.keys).await;
                    confirm(&link, &client, &mut echo, &table, upto.upto).await;
                    link.set_available(&listener, None);
                    super::history_gap(&listener);
                }
                Some(Connection::Down(why)) => link.set_available(&listener, Some(why)),
                Some(Connection::Lost(why)) => {
                    // Publications of other nodes are missing here: histories must not claim
                    // a complete replay across them.
                    tracing::warn!(%why, "cluster publications lost on this node; histories start new epochs");
                    super::history_gap(&listener);
                }
                None => break,
            },
            command = commands.recv() => {
                let Some(command) = command else { break };
                let changes = link.take_changes(&mut commands, &mut table, Some(command));
                subscribe_all(&client, &mut readers, &payloads_tx, &changes.keys).await;
                confirm(&link, &client, &mut echo, &table, changes.upto).await;
            }
            () = link.outbox.ready() => {
                batch.clear();
                link.take_batch(&mut batch);
                for (subject, payload) in batch.drain(..) {
                    if let Err(e) = client.publish(subject, Bytes::from(payload)).await {
                        tracing::debug!(error = %e, "cluster publish failed");
                        link.dropped.fetch_add(1, Relaxed);
                    } else {
                        link.published.fetch_add(1, Relaxed);
                    }
                }
            }
            payload = payloads.recv() => {
                let Some((key, payload)) = payload else { break };
                if table.contains(&key) {
                    link.receive(&listener, &table, &key, &payload);
                }
            }
        }
    }
    for reader in readers.into_values() {
        reader.abort();
    }
    let _ = client.drain().await;
}

/// Takes (and gives back) the engine subscriptions of `changes`, each read by its own task.
async fn subscribe_all(
    client: &async_nats::Client,
    readers: &mut HashMap<EngineKey, JoinHandle<()>>,
    payloads: &mpsc::Sender<(EngineKey, Bytes)>,
    changes: &[(EngineKey, bool)],
) {
    for (key, on) in changes {
        if let Some(reader) = readers.remove(key) {
            reader.abort();
        }
        if *on {
            match client.subscribe(key.name.clone()).await {
                Ok(subscriber) => {
                    let reader = tokio::spawn(read(key.clone(), subscriber, payloads.clone()));
                    readers.insert(key.clone(), reader);
                }
                Err(e) => {
                    tracing::warn!(subject = %key.name, error = %e, "cluster subscribe failed");
                }
            }
        }
    }
}

/// This connection's round trip to the server: a subject only it subscribes to. The server
/// handles one connection's messages in order, so once a publication to it comes back, every
/// SUB sent before it is in place (a flush alone only says the bytes left this process).
struct Echo {
    subject: String,
    subscriber: async_nats::Subscriber,
    sent: u64,
}

impl Echo {
    async fn new(client: &async_nats::Client) -> Result<Echo, async_nats::SubscribeError> {
        let subject = client.new_inbox();
        let subscriber = client.subscribe(subject.clone()).await?;
        Ok(Echo {
            subject,
            subscriber,
            sent: 0,
        })
    }

    /// Sends a numbered probe and waits for it to come back (older ones are skipped).
    async fn round_trip(&mut self, client: &async_nats::Client) -> Result<(), String> {
        self.sent += 1;
        let probe = Bytes::from(self.sent.to_string());
        client
            .publish(self.subject.clone(), probe.clone())
            .await
            .map_err(|e| e.to_string())?;
        client.flush().await.map_err(|e| e.to_string())?;
        while let Some(message) = self.subscriber.next().await {
            if message.payload == probe {
                return Ok(());
            }
        }
        Err("the connection's subscription ended".into())
    }
}

/// Waits for a round trip through the server, which says it has every subscription sent
/// before; then the subscriptions up to `upto` count as confirmed. A server that does not
/// answer in time releases the waiting subscribers anyway (their RECEIPTs must not hang on
/// it).
async fn confirm(
    link: &Link,
    client: &async_nats::Client,
    echo: &mut Echo,
    table: &Table,
    upto: Ticket,
) {
    match tokio::time::timeout(CONFIRM_TIMEOUT, echo.round_trip(client)).await {
        Ok(Ok(())) => link.confirmed(table, upto),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cluster subscriptions not confirmed");
            link.release_waiters();
        }
        Err(_) => {
            tracing::warn!("cluster subscriptions not confirmed within {CONFIRM_TIMEOUT:?}");
            link.release_waiters();
        }
    }
}

/// Reads one engine subscription into the shared channel.
async fn read(
    key: EngineKey,
    mut subscriber: async_nats::Subscriber,
    payloads: mpsc::Sender<(EngineKey, Bytes)>,
) {
    while let Some(message) = subscriber.next().await {
        if payloads.send((key.clone(), message.payload)).await.is_err() {
            return;
        }
    }
}
