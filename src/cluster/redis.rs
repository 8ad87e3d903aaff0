//! The Redis engine: PUBLISH on one multiplexed connection (pipelined, a batch per round
//! trip), SUBSCRIBE / PSUBSCRIBE on one pub/sub connection. Redis delivers a client's
//! publications to a subscriber connection in the order it received them, so one publisher's
//! messages arrive in publish order on every node.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use tokio::sync::{mpsc, watch};

use super::table::Table;
use super::{Command, EngineKey, Link, Listener};
use crate::relay::backoff::Backoff;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn run(
    link: Arc<Link>,
    url: String,
    listener: Listener,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut table = Table::default();
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut connected_before = false;
    loop {
        let why = match connect(&url).await {
            Ok((sink, stream, conn)) => {
                backoff.reset();
                if connected_before {
                    link.reconnects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                connected_before = true;
                serve(
                    &link,
                    &listener,
                    &mut commands,
                    &mut table,
                    &mut shutdown,
                    sink,
                    stream,
                    conn,
                )
                .await
            }
            Err(e) => e.to_string(),
        };
        if *shutdown.borrow() {
            return;
        }
        link.set_available(&listener, Some(why));
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn connect(
    url: &str,
) -> redis::RedisResult<(PubSubSink, redis::aio::PubSubStream, MultiplexedConnection)> {
    let client = redis::Client::open(url)?;
    let timeout = |e| redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, e));
    let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timeout("connecting timed out"))??;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| timeout("connecting timed out"))??;
    let (sink, stream) = pubsub.split();
    Ok((sink, stream, conn))
}

async fn subscribe(sink: &mut PubSubSink, key: &EngineKey, on: bool) -> redis::RedisResult<()> {
    match (key.pattern, on) {
        (false, true) => sink.subscribe(&key.name).await,
        (false, false) => sink.unsubscribe(&key.name).await,
        (true, true) => sink.psubscribe(&key.name).await,
        (true, false) => sink.punsubscribe(&key.name).await,
    }
}

/// Serves one connection until it fails (returns why) or the server stops.
#[allow(clippy::too_many_arguments)]
async fn serve(
    link: &Arc<Link>,
    listener: &Listener,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    table: &mut Table,
    shutdown: &mut watch::Receiver<bool>,
    mut sink: PubSubSink,
    mut stream: redis::aio::PubSubStream,
    mut conn: MultiplexedConnection,
) -> String {
    // Everything this node is interested in, on the new connection.
    link.take_changes(commands, table, None);
    let keys: Vec<EngineKey> = table.keys().cloned().collect();
    for key in &keys {
        if let Err(e) = subscribe(&mut sink, key, true).await {
            return e.to_string();
        }
    }
    link.confirmed(table);
    link.set_available(listener, None);
    super::after_connect(listener);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return "server stopping".into(),
            command = commands.recv() => {
                let Some(command) = command else { return "link closed".into() };
                for (key, on) in link.take_changes(commands, table, Some(command)) {
                    if let Err(e) = subscribe(&mut sink, &key, on).await {
                        return e.to_string();
                    }
                }
                link.confirmed(table);
            }
            () = link.outbox.ready() => {
                batch.clear();
                link.take_batch(&mut batch);
                let mut pipe = redis::pipe();
                for (channel, payload) in &batch {
                    pipe.cmd("PUBLISH").arg(channel).arg(payload.as_slice()).ignore();
                }
                if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                    link.dropped.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    return e.to_string();
                }
                link.published.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            message = stream.next() => {
                let Some(message) = message else { return "connection closed".into() };
                let key = if message.from_pattern() {
                    let Ok(pattern) = message.get_pattern::<String>() else { continue };
                    EngineKey { pattern: true, name: pattern }
                } else {
                    EngineKey { pattern: false, name: message.get_channel_name().to_string() }
                };
                if !table.contains(&key) {
                    // A publication that crossed our UNSUBSCRIBE.
                    continue;
                }
                let payload = bytes::Bytes::copy_from_slice(message.get_payload_bytes());
                link.receive(listener, table, &key, &payload);
            }
        }
    }
}
