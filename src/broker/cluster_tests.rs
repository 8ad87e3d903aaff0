//! The broker in cluster mode, sans-IO: a recording backplane stands in for the engine, so
//! each test sees what the node would tell the others and hands it publications "from
//! another node" itself.

use std::sync::Arc;

use parking_lot::Mutex;

use super::durable_tests::{ManualJournal, message, queued, spec};
use super::*;

#[derive(Default)]
struct Recorder {
    interests: Mutex<Vec<(Interest, bool)>>,
    published: Mutex<Vec<(String, Arc<Message>)>>,
}

impl Backplane for Recorder {
    fn interest(&self, interest: &Interest, present: bool) {
        self.interests.lock().push((interest.clone(), present));
    }
    fn publish(&self, route: &str, message: &Arc<Message>) {
        self.published
            .lock()
            .push((route.to_string(), message.clone()));
    }
    fn congested(&self) -> Option<Arc<Outbox>> {
        None
    }
}

fn node(history: Vec<HistoryRule>) -> (Broker, Arc<Recorder>) {
    let config = BrokerConfig {
        history,
        ..BrokerConfig::default()
    };
    let (executor, _lanes) = Executor::new(1, 16);
    let broker = Broker::new(config, Arc::default(), Arc::new(executor));
    let recorder = Arc::new(Recorder::default());
    assert!(broker.attach_backplane(recorder.clone()));
    (broker, recorder)
}

fn exact(route: &str) -> Interest {
    Interest::Exact(route.into())
}

fn pattern(text: &str) -> Interest {
    Interest::Pattern(text.into())
}

fn bodies(outbox: &Outbox) -> Vec<String> {
    queued(outbox)
        .into_iter()
        .filter_map(|item| match item {
            Outbound::Message(d) => Some(String::from_utf8_lossy(d.message.body()).into_owned()),
            _ => None,
        })
        .collect()
}

fn session(broker: &Broker, id: u64) -> Arc<Outbox> {
    let outbox = Arc::new(Outbox::new(100, 1 << 20));
    broker.register_session(id, outbox.clone(), true, None);
    outbox
}

#[test]
fn interests_follow_the_first_and_last_local_subscriber() {
    let (broker, recorder) = node(vec![HistoryRule::new("/topic/chat/**", 10)]);
    session(&broker, 1);
    session(&broker, 2);
    broker.subscribe(1, spec("a", "/topic/a")).unwrap();
    broker.subscribe(2, spec("a", "/topic/a")).unwrap();
    broker.subscribe(1, spec("p", "/topic/*")).unwrap();
    broker.subscribe(1, spec("q", "/queue/jobs")).unwrap();
    // Under a history pattern: the rule's pattern (held from the start) brings it.
    broker.subscribe(2, spec("c", "/topic/chat/room")).unwrap();
    let host = broker.add_host_subscription("/topic/host", Arc::new(|_| {}));
    assert_eq!(
        broker.interests(),
        vec![
            exact("/topic/a"),
            exact("/topic/host"),
            pattern("/topic/*"),
            pattern("/topic/chat/**")
        ]
    );
    broker.unsubscribe(1, "a").unwrap();
    assert!(broker.interests().contains(&exact("/topic/a")), "one left");
    broker.unregister_session(2);
    broker.unregister_session(1);
    assert!(broker.remove_host_subscription(host));
    assert_eq!(broker.interests(), vec![pattern("/topic/chat/**")]);
    assert_eq!(
        *recorder.interests.lock(),
        vec![
            (pattern("/topic/chat/**"), true),
            (exact("/topic/a"), true),
            (pattern("/topic/*"), true),
            (exact("/topic/host"), true),
            (exact("/topic/a"), false),
            (pattern("/topic/*"), false),
            (exact("/topic/host"), false),
        ]
    );
}

#[test]
fn local_broadcasts_go_to_the_backplane_and_queues_stay_on_the_node() {
    let (broker, recorder) = node(Vec::new());
    broker
        .publish_recorded("/topic/a", message("t"), &mut Vec::new())
        .unwrap();
    broker
        .publish_recorded("/user/alice/queue/inbox", message("u"), &mut Vec::new())
        .unwrap();
    broker
        .publish_recorded("/queue/jobs", message("q"), &mut Vec::new())
        .unwrap();
    let routes: Vec<String> = recorder
        .published
        .lock()
        .iter()
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(routes, vec!["/topic/a", "/user/alice/queue/inbox"]);
}

#[test]
fn a_remote_publication_reaches_each_local_subscription_once_through_its_own_interest() {
    let (broker, recorder) = node(Vec::new());
    let exact_sub = session(&broker, 1);
    let pattern_sub = session(&broker, 2);
    let other_pattern = session(&broker, 3);
    broker.subscribe(1, spec("e", "/topic/a")).unwrap();
    broker.subscribe(2, spec("p", "/topic/*")).unwrap();
    broker.subscribe(3, spec("p", "/topic/**")).unwrap();
    // The engine delivers one publication through each engine subscription it matches.
    broker.deliver_remote("/topic/a", message("m"), Reach::Exact);
    let star: [Arc<str>; 1] = ["/topic/*".into()];
    broker.deliver_remote("/topic/a", message("m"), Reach::Patterns(&star));
    assert_eq!(bodies(&exact_sub), vec!["m"]);
    assert_eq!(bodies(&pattern_sub), vec!["m"]);
    assert!(
        bodies(&other_pattern).is_empty(),
        "its pattern was not in the reach"
    );
    // Never sent on: no echo between nodes.
    assert!(recorder.published.lock().is_empty());
    // Queues are per node: a remote publication to one is ignored.
    let consumer = session(&broker, 4);
    broker.subscribe(4, spec("q", "/queue/jobs")).unwrap();
    broker.deliver_remote("/queue/jobs", message("q"), Reach::Exact);
    assert!(bodies(&consumer).is_empty());
}

#[test]
fn every_node_records_remote_publications_of_history_destinations_once() {
    let (broker, _) = node(vec![HistoryRule::new("/topic/chat/**", 10)]);
    let rule: [Arc<str>; 2] = ["/topic/chat/**".into(), "/topic/**".into()];
    let wide: [Arc<str>; 1] = ["/topic/**".into()];
    // No local subscriber yet: recorded all the same.
    broker.deliver_remote("/topic/chat/r", message("1"), Reach::Patterns(&rule));
    // Through another pattern only: not recorded again.
    broker.deliver_remote("/topic/chat/r", message("1"), Reach::Patterns(&wide));
    broker.deliver_remote("/topic/chat/r", message("2"), Reach::Patterns(&rule));
    let page = broker.history("/topic/chat/r", 0, 10).unwrap();
    let offsets: Vec<&str> = page
        .messages
        .iter()
        .map(|(_, m)| m.header("x-offset").unwrap())
        .collect();
    assert_eq!(offsets, vec!["1", "2"]);
    // An exact subscriber there is reached through the rule's pattern.
    let outbox = session(&broker, 1);
    broker.subscribe(1, spec("c", "/topic/chat/r")).unwrap();
    broker.deliver_remote("/topic/chat/r", message("3"), Reach::Patterns(&rule));
    assert_eq!(bodies(&outbox), vec!["3"]);
    // After a gap in the engine link, the histories start new epochs.
    let before = broker
        .history("/topic/chat/r", 0, 10)
        .unwrap()
        .position
        .epoch;
    assert_eq!(broker.history_gap(), 1);
    broker.deliver_remote("/topic/chat/r", message("4"), Reach::Patterns(&rule));
    let after = broker.history("/topic/chat/r", 0, 10).unwrap();
    assert_ne!(after.position.epoch, before);
    assert_eq!(after.messages.len(), 1);
}

#[test]
fn with_a_store_remote_history_publications_are_delivered_once_durable_and_not_sent_back() {
    let (broker, recorder) = node(vec![HistoryRule::new("/topic/h", 10)]);
    let journal = Arc::new(ManualJournal::default());
    broker.attach_journal(journal.clone(), Restored::default());
    let outbox = session(&broker, 1);
    broker.subscribe(1, spec("h", "/topic/h")).unwrap();
    broker.deliver_remote("/topic/h", message("r"), Reach::Exact);
    assert!(bodies(&outbox).is_empty(), "not before the commit");
    broker.release_durable(1);
    assert_eq!(bodies(&outbox), vec!["r"]);
    assert!(
        recorder.published.lock().is_empty(),
        "a remote one is not sent back"
    );
    // A local one is sent to the other nodes once durable.
    broker
        .publish_recorded("/topic/h", message("l"), &mut Vec::new())
        .unwrap();
    assert!(recorder.published.lock().is_empty());
    broker.release_durable(2);
    assert_eq!(recorder.published.lock().len(), 1);
}
