//! The Redis engine: PUBLISH on one multiplexed connection (pipelined, a batch per round
//! trip), SUBSCRIBE / PSUBSCRIBE on one pub/sub connection. Redis delivers a client's
//! publications to a subscriber connection in the order it received them, so one publisher's
//! messages arrive in publish order on every node.
//!
//! The URL may list several servers, comma-separated (`redis://a:6379,redis://b:6379`): the
//! link uses the first it can reach and moves on to the next when a connection attempt fails.
//! That covers a Redis Cluster — classic pub/sub is cluster-wide, every node forwards every
//! publication to the subscribers on all nodes over the cluster bus — and a set of servers
//! behind which one is the one to use at a time.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink};
use tokio::sync::{mpsc, watch};

use super::sentinel::{self, SentinelUrl};
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
    let servers = server_urls(&url);
    let mut server = 0;
    loop {
        let url = servers[server % servers.len()];
        let why = match connect(url).await {
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
            Err(e) => {
                // The next server of the list gets the next attempt.
                server += 1;
                format!("{}: {e}", redacted(url))
            }
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

/// The servers of a (comma-separated) URL list, in order; a sentinel URL (its commas
/// separate sentinels) is one server.
fn server_urls(url: &str) -> Vec<&str> {
    if url.trim_start().starts_with(super::sentinel::SCHEME) {
        return vec![url.trim()];
    }
    let servers: Vec<&str> = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        vec![url]
    } else {
        servers
    }
}

/// `url` without its password, for logs and events.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

async fn connect(
    url: &str,
) -> redis::RedisResult<(PubSubSink, redis::aio::PubSubStream, MultiplexedConnection)> {
    let timeout = |e| redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, e));
    let client = if url.starts_with(sentinel::SCHEME) {
        let sentinels = SentinelUrl::parse(url).map_err(|e| {
            redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })?;
        tokio::time::timeout(CONNECT_TIMEOUT, sentinels.master())
            .await
            .map_err(|_| timeout("asking the sentinels timed out"))??
    } else {
        redis::Client::open(url)?
    };
    let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| timeout("connecting timed out"))??;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| timeout("connecting timed out"))??;
    let (sink, stream) = pubsub.split();
    Ok((sink, stream, conn))
}

/// How long the engine may take to confirm a (P)SUBSCRIBE before the connection counts as
/// lost (subscribers' RECEIPTs wait for the confirmation).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// Channels or patterns per SUBSCRIBE-like command.
const KEYS_PER_COMMAND: usize = 1000;

/// Applies `changes` in order, each run of the same kind (subscribe or not, channel or
/// pattern) as one command per [`KEYS_PER_COMMAND`] keys, each confirmed by the engine.
async fn apply(sink: &mut PubSubSink, changes: &[(EngineKey, bool)]) -> Result<(), String> {
    for run in changes.chunk_by(|a, b| a.0.pattern == b.0.pattern && a.1 == b.1) {
        let (pattern, on) = (run[0].0.pattern, run[0].1);
        for chunk in run.chunks(KEYS_PER_COMMAND) {
            let names: Vec<&str> = chunk.iter().map(|(key, _)| key.name.as_str()).collect();
            let command = async {
                match (pattern, on) {
                    (false, true) => sink.subscribe(&names).await,
                    (false, false) => sink.unsubscribe(&names).await,
                    (true, true) => sink.psubscribe(&names).await,
                    (true, false) => sink.punsubscribe(&names).await,
                }
            };
            match tokio::time::timeout(CONFIRM_TIMEOUT, command).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => {
                    return Err(format!(
                        "no confirmation of a subscription within {CONFIRM_TIMEOUT:?}"
                    ));
                }
            }
        }
    }
    Ok(())
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
    let upto = link.take_changes(commands, table, None).upto;
    let everything: Vec<(EngineKey, bool)> = table.keys().map(|key| (key.clone(), true)).collect();
    if let Err(why) = apply(&mut sink, &everything).await {
        return why;
    }
    link.confirmed(table, upto);
    link.set_available(listener, None);
    super::history_gap(listener);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return "server stopping".into(),
            command = commands.recv() => {
                let Some(command) = command else { return "link closed".into() };
                let changes = link.take_changes(commands, table, Some(command));
                if let Err(why) = apply(&mut sink, &changes.keys).await {
                    return why;
                }
                link.confirmed(table, changes.upto);
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_list_is_split_and_passwords_stay_out_of_messages() {
        assert_eq!(
            super::server_urls("redis://a:1, redis://b:2/0 ,"),
            ["redis://a:1", "redis://b:2/0"]
        );
        assert_eq!(super::server_urls("redis://a"), ["redis://a"]);
        assert_eq!(
            super::server_urls("redis+sentinel://s1,s2/master"),
            ["redis+sentinel://s1,s2/master"]
        );
        assert_eq!(
            super::redacted("redis://user:secret@host:6379/0"),
            "redis://…@host:6379/0"
        );
        assert_eq!(super::redacted("redis://host"), "redis://host");
    }
}
