//! Per-subscription slow-consumer policies: disconnect (default), drop-oldest, drop-newest.

mod session_common;

use session_common::{Client, body, engine, engine_with, frame};
use wsbroker::broker::SlowConsumerPolicy;
use wsbroker::stomp::Command;

/// A connected client whose outbox holds at most `max` items.
fn small_client(engine: &std::sync::Arc<wsbroker::engine::Engine>, max: usize) -> Client {
    let mut client = Client::with_outbox(engine, max, 1 << 20);
    client.connect(&[("accept-version", "1.2"), ("host", "/")]);
    client
}

fn subscribe(client: &mut Client, id: &str, destination: &str, policy: Option<&str>) {
    let mut headers = vec![("id", id), ("destination", destination)];
    if let Some(policy) = policy {
        headers.push(("overflow-policy", policy));
    }
    client.ok(frame(Command::Subscribe, &headers));
}

fn publish_numbers(engine: &std::sync::Arc<wsbroker::engine::Engine>, destination: &str, n: usize) {
    let mut publisher = Client::connected(engine, "1.2", None);
    for i in 0..n {
        publisher.send(destination, &i.to_string());
    }
}

#[test]
fn drop_oldest_keeps_the_latest_messages_and_counts_the_rest() {
    let engine = engine();
    let mut slow = small_client(&engine, 4);
    subscribe(&mut slow, "prices", "/topic/price", Some("drop-oldest"));
    publish_numbers(&engine, "/topic/price", 10);
    let bodies: Vec<String> = slow.messages().iter().map(body).collect();
    assert_eq!(
        bodies,
        ["6", "7", "8", "9"],
        "the four newest survive, in order"
    );
    assert!(!slow.outbox.is_closing(), "dropping, not disconnecting");
    let stats = engine.counters().snapshot();
    assert_eq!(stats.dropped, 6);
    assert_eq!(stats.slow_consumer_disconnects, 0);
}

#[test]
fn drop_newest_keeps_the_first_messages() {
    let engine = engine();
    let mut slow = small_client(&engine, 3);
    subscribe(&mut slow, "log", "/topic/log", Some("drop-newest"));
    publish_numbers(&engine, "/topic/log", 8);
    let bodies: Vec<String> = slow.messages().iter().map(body).collect();
    assert_eq!(bodies, ["0", "1", "2"]);
    assert_eq!(engine.counters().snapshot().dropped, 5);
    assert!(!slow.outbox.is_closing());
}

#[test]
fn drop_oldest_only_evicts_its_own_subscription() {
    let engine = engine();
    let mut slow = small_client(&engine, 3);
    subscribe(&mut slow, "a", "/topic/a", Some("drop-oldest"));
    subscribe(&mut slow, "b", "/topic/b", None);
    publish_numbers(&engine, "/topic/b", 1);
    publish_numbers(&engine, "/topic/a", 5);
    let got: Vec<(String, String)> = slow
        .messages()
        .iter()
        .map(|d| (d.subscription.to_string(), body(d)))
        .collect();
    assert_eq!(
        got,
        [
            ("b".into(), "0".into()),
            ("a".into(), "3".into()),
            ("a".into(), "4".into())
        ]
    );
}

#[test]
fn default_policy_disconnects_and_config_can_change_it() {
    let engine = engine();
    let mut slow = small_client(&engine, 2);
    subscribe(&mut slow, "x", "/topic/x", None);
    publish_numbers(&engine, "/topic/x", 3);
    assert!(
        slow.outbox.is_closing(),
        "default: slow consumer disconnected"
    );
    assert_eq!(engine.counters().snapshot().slow_consumer_disconnects, 1);

    let engine = engine_with(|c| c.slow_consumer_policy = SlowConsumerPolicy::DropNewest);
    let mut slow = small_client(&engine, 2);
    subscribe(&mut slow, "x", "/topic/x", None);
    publish_numbers(&engine, "/topic/x", 3);
    assert!(!slow.outbox.is_closing());
    assert_eq!(engine.counters().snapshot().dropped, 1);
}

#[test]
fn queues_and_client_ack_subscriptions_are_never_dropped_silently() {
    let engine = engine();
    let mut slow = small_client(&engine, 2);
    subscribe(&mut slow, "q", "/queue/jobs", Some("drop-newest"));
    publish_numbers(&engine, "/queue/jobs", 3);
    assert!(
        slow.outbox.is_closing(),
        "a queue consumer falls back to disconnect"
    );
    // The two auto-ack messages already queued to it are lost with its queue (at-most-once);
    // the one that did not fit goes back to the queue and is not counted.
    assert_eq!(engine.counters().snapshot().dropped, 2);
    assert_eq!(engine.broker.queue_depth("/queue/jobs"), 1);

    let strict = session_common::engine();
    let mut client = small_client(&strict, 100);
    client.refused(frame(
        Command::Subscribe,
        &[
            ("id", "1"),
            ("destination", "/topic/a"),
            ("overflow-policy", "sometimes"),
        ],
    ));
}
