//! Relay mode when RabbitMQ goes away and comes back (`rabbitmqctl stop_app` / `start_app`):
//! the system connection returns and host publishes flow again; a session with session restore
//! keeps receiving without reconnecting; a session without it gets a clear ERROR.
//!
//! It restarts the RabbitMQ application of a private node once, never the machine's RabbitMQ:
//! the node `scripts/rabbitmq-private.sh start` runs on its own ports and data directory
//! (`WSBROKER_RELAY_FAULT_BROKER` is its STOMP address; scripts/test.sh starts it, sets it and
//! removes the node afterwards), stopped and started with `scripts/rabbitmq-private.sh ctl`,
//! which only ever names that node. The application is always started again, also when the test
//! fails. No task outlives its session. Figures are printed: run with `--nocapture` to see them.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{TestServer, WAIT};
use crate::support::{private_rabbitmq, relay_config, unique};
use wsbroker::Server;
use wsbroker::{Event, EventQueueConfig};

/// Upper bound of RabbitMQ's stop and start and of every wait around them.
const OUTAGE_WAIT: Duration = Duration::from_secs(60);

/// `rabbitmqctl ARGS` on the private node (scripts/rabbitmq-private.sh passes `-n` with its
/// name and its Erlang cookie).
fn rabbitmqctl(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/rabbitmq-private.sh");
    let status = Command::new("bash")
        .args([script, "ctl", "-q", "--timeout", "60"])
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script} ctl {args:?}: {e}"));
    assert!(status.success(), "{script} ctl {args:?} failed: {status}");
}

/// Starts the private node's RabbitMQ application again when dropped, so that a failing test
/// never leaves it stopped.
struct RestartGuard;

impl Drop for RestartGuard {
    fn drop(&mut self) {
        rabbitmqctl(&["start_app"]);
    }
}

fn relay_server(broker: &str, session_restore: bool) -> TestServer {
    let mut config = relay_config(broker, session_restore);
    if let Some(relay) = config.relay.as_mut() {
        relay.restore_timeout = OUTAGE_WAIT;
    }
    let server = Server::new(config).unwrap();
    server.enable_events(EventQueueConfig::default()).unwrap();
    server.start().unwrap();
    TestServer::from_server(server)
}

/// Waits (bounded) for a broker availability event and returns it.
async fn next_availability(server: &TestServer, limit: Duration) -> Event {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut events = Vec::new();
        server
            .server
            .poll_events(&mut events, 64, Duration::ZERO)
            .unwrap();
        if let Some(event) = events
            .into_iter()
            .find(|e| matches!(e, Event::BrokerAvailable | Event::BrokerUnavailable { .. }))
        {
            return event;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no broker availability event within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_survives_a_rabbitmq_restart() {
    let Some(broker) = private_rabbitmq() else {
        return;
    };
    let restoring = relay_server(&broker, true);
    let plain = relay_server(&broker, false);
    assert!(matches!(
        next_availability(&restoring, WAIT).await,
        Event::BrokerAvailable
    ));
    let topic = format!("/topic/{}", unique("fault"));
    let queue = format!("/queue/{}", unique("fault"));
    let mut kept = restoring.ws_connected(None).await;
    kept.subscribe(&topic, "t").await;
    kept.subscribe(&queue, "q").await;
    let mut dropped = plain.tcp_connected(None).await;
    dropped.subscribe(&topic, "t").await;
    restoring.server.publish(&topic, &[], "before").unwrap();
    assert_eq!(kept.expect("MESSAGE").await.body_str(), "before");
    assert_eq!(dropped.expect("MESSAGE").await.body_str(), "before");

    let guard = RestartGuard;
    let stop = tokio::task::spawn_blocking(|| rabbitmqctl(&["stop_app"]));
    // Without session restore the client learns why its session ended.
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + OUTAGE_WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, dropped.next_event())
            .await
            .expect("the client without session restore is closed");
        match event {
            common::Event::Frame(f) => frames.push(f),
            common::Event::Heartbeat => {}
            common::Event::Closed { .. } => break,
        }
    }
    let error = frames
        .iter()
        .find(|f| f.command == "ERROR")
        .unwrap_or_else(|| panic!("an ERROR before the close: {frames:?}"));
    assert_eq!(
        error.h("message"),
        "lost the connection to the message broker"
    );
    stop.await.unwrap();
    assert!(matches!(
        next_availability(&restoring, OUTAGE_WAIT).await,
        Event::BrokerUnavailable { .. }
    ));
    assert!(restoring.server.publish(&topic, &[], "x").is_err());

    let started = Instant::now();
    tokio::task::spawn_blocking(|| rabbitmqctl(&["start_app"]))
        .await
        .unwrap();
    let start_app_took = started.elapsed();
    std::mem::forget(guard); // started: nothing to undo
    // The bound: back within 10 s of RabbitMQ's return.
    assert!(matches!(
        next_availability(&restoring, Duration::from_secs(10)).await,
        Event::BrokerAvailable
    ));
    let system_back = started.elapsed();
    // The restored session receives again, without reconnecting: publish until one arrives
    // (topic messages published before the re-subscription are lost by design).
    let deadline = tokio::time::Instant::now() + OUTAGE_WAIT;
    let mut n = 0;
    let restored = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "session not restored"
        );
        n += 1;
        restoring
            .server
            .publish(&topic, &[], format!("after-{n}"))
            .unwrap();
        match kept.event_within(Duration::from_millis(50)).await {
            Some(common::Event::Frame(f)) if f.command == "MESSAGE" => {
                assert!(f.body_str().starts_with("after-"), "{f:?}");
                break started.elapsed();
            }
            Some(common::Event::Frame(f)) => panic!("unexpected {f:?}"),
            Some(common::Event::Closed { code, reason }) => {
                panic!("the restored session closed: {code:?} {reason}")
            }
            _ => {}
        }
    };
    // The queue subscription is back too.
    restoring.server.publish(&queue, &[], "queued").unwrap();
    let mut got_queued = false;
    for f in kept.barrier().await {
        got_queued |= f.body_str() == "queued";
    }
    if !got_queued {
        assert_eq!(kept.expect("MESSAGE").await.body_str(), "queued");
    }
    println!(
        "relay reconnect figures: start_app took {} ms; system connection back {} ms after \
         start_app began ({} ms after it returned); restored session received again {} ms \
         after start_app began",
        start_app_took.as_millis(),
        system_back.as_millis(),
        (system_back - start_app_took).as_millis(),
        restored.as_millis(),
    );
    kept.disconnect().await;
    drop(dropped);
    // No task outlives its session: listeners, the drop reporter and the system connection are
    // all that is left.
    for server in [&restoring, &plain] {
        let deadline = tokio::time::Instant::now() + WAIT;
        while server.server.alive_tasks() != Some(4) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?} tasks alive, expected 4",
                server.server.alive_tasks()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    restoring.stop().await.unwrap();
    plain.stop().await.unwrap();
    restoring
        .wait_stats("connections closed", |s| s.connections == 0)
        .await;
}
