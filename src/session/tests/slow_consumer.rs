//! Per-subscription slow-consumer policies: disconnect (default), drop-oldest, drop-newest.

use std::sync::Arc;
use std::time::Duration;

use super::common::{Client, body, engine, engine_with, frame};
use crate::broker::{DropReport, SlowConsumerPolicy};
use crate::events::{Event, EventQueue, EventQueueConfig, EventSink};
use crate::stomp::Command;

/// A connected client whose outbox holds at most `max` items.
fn small_client(engine: &std::sync::Arc<crate::engine::Engine>, max: usize) -> Client {
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

fn publish_numbers(engine: &std::sync::Arc<crate::engine::Engine>, destination: &str, n: usize) {
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
    let stats = engine.counters().snapshot();
    assert_eq!(stats.dropped, 5);
    assert_eq!(stats.messages_out, 3, "a dropped message was never queued");
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

    let engine = engine_with(|c| c.broker.slow_consumer_policy = SlowConsumerPolicy::DropNewest);
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

    let strict = super::common::engine();
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

/// An engine whose events go to a queue the test polls.
fn engine_with_events(
    f: impl FnOnce(&mut crate::ServerConfig),
) -> (Arc<crate::engine::Engine>, Arc<EventQueue>) {
    let engine = engine_with(f);
    let queue = Arc::new(EventQueue::new(EventQueueConfig::default()));
    engine
        .set_event_sink(EventSink::Queue(queue.clone()))
        .expect("first sink");
    (engine, queue)
}

fn drop_reports(queue: &EventQueue) -> Vec<DropReport> {
    let mut events = Vec::new();
    queue.poll(&mut events, 1000, Duration::ZERO);
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::MessagesDropped(report) => Some(report),
            _ => None,
        })
        .collect()
}

#[test]
fn drops_are_reported_to_the_host_once_per_subscription_per_report() {
    let (engine, queue) = engine_with_events(|_| {});
    let mut slow = small_client(&engine, 3);
    subscribe(&mut slow, "log", "/topic/log", Some("drop-newest"));
    subscribe(&mut slow, "px", "/topic/px", Some("drop-oldest"));
    let session = slow.session.id();
    publish_numbers(&engine, "/topic/log", 103);
    publish_numbers(&engine, "/topic/px", 10);
    assert!(drop_reports(&queue).is_empty(), "nothing until the report");

    engine.report_drops();
    let reports = drop_reports(&queue);
    let summary: Vec<(u64, &str, &str, u64)> = reports
        .iter()
        .map(|r| (r.session, &*r.subscription, r.destination.as_str(), r.count))
        .collect();
    // 3 of /topic/log fit; then each /topic/px message evicts an older one of its own (none
    // while the queue holds only /topic/log messages: the new one is dropped).
    assert_eq!(
        summary,
        [
            (session, "log", "/topic/log", 100),
            (session, "px", "/topic/px", 10)
        ]
    );
    assert_eq!(engine.counters().snapshot().dropped, 110);
    engine.report_drops();
    assert!(
        drop_reports(&queue).is_empty(),
        "each drop is reported once"
    );
}

#[test]
fn a_disconnected_slow_consumer_reports_the_messages_lost_with_its_queue() {
    let (engine, queue) = engine_with_events(|_| {});
    let mut slow = small_client(&engine, 3);
    subscribe(&mut slow, "x", "/topic/x", None);
    publish_numbers(&engine, "/topic/x", 4);
    assert!(slow.outbox.is_closing());
    engine.report_drops();
    let reports = drop_reports(&queue);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!((&*reports[0].subscription, reports[0].count), ("x", 4));
    assert_eq!(engine.counters().snapshot().dropped, 4);
}

#[test]
fn client_ack_queue_messages_of_a_slow_consumer_are_requeued_not_dropped() {
    let (engine, queue) = engine_with_events(|_| {});
    let mut slow = small_client(&engine, 2);
    slow.subscribe("q", "/queue/jobs", "client");
    publish_numbers(&engine, "/queue/jobs", 3);
    assert!(slow.outbox.is_closing(), "the third did not fit");
    slow.session.closed();
    let stats = engine.counters().snapshot();
    assert_eq!(stats.slow_consumer_disconnects, 1);
    assert_eq!(
        stats.dropped, 0,
        "all three go back to the queue: none is lost"
    );
    assert_eq!(engine.broker.queue_depth("/queue/jobs"), 3);
    engine.report_drops();
    assert!(drop_reports(&queue).is_empty());

    let mut next = small_client(&engine, 100);
    next.subscribe("q", "/queue/jobs", "auto");
    assert_eq!(
        next.bodies(),
        ["0", "1", "2"],
        "redelivered to the next consumer"
    );
}
