//! The broker with a journal, sans-IO: a manual journal stands in for the store, so each
//! test decides when records are committed.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::*;

/// A journal whose records are committed when the test says so (`durable.advance`).
#[derive(Default)]
pub(crate) struct ManualJournal {
    pub(crate) records: Mutex<Vec<Record>>,
    pub(crate) durable: Arc<DurableSignal>,
}

impl Journal for ManualJournal {
    fn append(&self, record: Record) -> Ticket {
        let mut records = self.records.lock();
        records.push(record);
        records.len() as Ticket
    }
    fn durable(&self) -> &Arc<DurableSignal> {
        &self.durable
    }
    fn refusal(&self) -> Option<String> {
        None
    }
    fn is_backed_up(&self) -> bool {
        false
    }
    fn stats(&self) -> JournalStats {
        JournalStats::default()
    }
}

fn broker(max_queue_depth: usize) -> (Broker, Arc<ManualJournal>) {
    let config = BrokerConfig {
        history: vec![HistoryRule::new("/topic/h", 10)],
        max_queue_depth,
        ..BrokerConfig::default()
    };
    let (executor, _lanes) = Executor::new(1, 16);
    let broker = Broker::new(config, Arc::default(), Arc::new(executor));
    let journal = Arc::new(ManualJournal::default());
    broker.attach_journal(journal.clone(), Restored::default());
    (broker, journal)
}

pub(crate) fn spec(id: &str, route: &str) -> SubscribeSpec {
    SubscribeSpec {
        id: id.into(),
        route: route.into(),
        ack: AckMode::Auto,
        prefetch: 16,
        policy: SlowConsumerPolicy::Disconnect,
        resume: ResumeRequest::default(),
        presence: Default::default(),
    }
}

pub(crate) fn message(body: &'static str) -> Arc<Message> {
    Arc::new(Message::new(
        7,
        "/x",
        Vec::new(),
        Bytes::from_static(body.as_bytes()),
        None,
    ))
}

pub(crate) fn queued(outbox: &Outbox) -> Vec<Outbound> {
    let mut items = Vec::new();
    outbox.try_drain(&mut items, 100);
    items
}

#[test]
fn persisted_messages_reach_nobody_before_their_commit() {
    let (broker, journal) = broker(100);
    let outbox = Arc::new(Outbox::new(100, 1 << 20));
    broker.register_session(1, outbox.clone(), true, None);
    broker.subscribe(1, spec("h", "/topic/h")).unwrap();
    let published = broker
        .publish_recorded("/topic/h", message("one"), &mut Vec::new())
        .unwrap();
    assert_eq!((published.delivered, published.offset), (0, Some(1)));
    let ticket = published.durable.expect("journaled");
    assert!(
        queued(&outbox).is_empty(),
        "not delivered before the commit"
    );
    assert!(
        broker
            .history("/topic/h", 0, 10)
            .unwrap()
            .messages
            .is_empty(),
        "not readable before the commit"
    );
    assert!(matches!(
        &journal.records.lock()[..],
        [Record::Append { offset: 1, .. }]
    ));
    broker.release_durable(ticket);
    let items = queued(&outbox);
    assert_eq!(items.len(), 1, "delivered at the commit");
    assert_eq!(broker.history("/topic/h", 0, 10).unwrap().messages.len(), 1);
    // A destination without a history is not persisted: delivered at once.
    broker.subscribe(1, spec("p", "/topic/plain")).unwrap();
    let plain = broker
        .publish_recorded("/topic/plain", message("now"), &mut Vec::new())
        .unwrap();
    assert_eq!((plain.delivered, plain.durable), (1, None));
}

#[test]
fn a_queue_counts_uncommitted_messages_against_its_depth_and_acks_are_journaled() {
    let (broker, journal) = broker(2);
    let t1 = broker
        .publish_recorded("/queue/q", message("a"), &mut Vec::new())
        .unwrap()
        .durable
        .unwrap();
    broker
        .publish_recorded("/queue/q", message("b"), &mut Vec::new())
        .unwrap();
    let full = broker.publish_recorded("/queue/q", message("c"), &mut Vec::new());
    assert!(
        full.is_err_and(|e| e.0.contains("is full")),
        "2 on their way"
    );
    broker.release_durable(t1 + 1);
    let outbox = Arc::new(Outbox::new(100, 1 << 20));
    broker.register_session(2, outbox.clone(), true, None);
    let mut client = spec("q", "/queue/q");
    client.ack = AckMode::ClientIndividual;
    broker.subscribe(2, client).unwrap();
    let items = queued(&outbox);
    assert_eq!(items.len(), 2);
    let Outbound::Message(first) = &items[0] else {
        panic!("{items:?}")
    };
    let ticket = broker
        .acknowledge(2, &format!("2-{}", first.seq), None, false)
        .unwrap();
    assert_eq!(ticket, Some(3), "the ACK's dequeue is the third record");
    assert!(matches!(
        journal.records.lock().last(),
        Some(Record::Dequeue { id: 7, .. })
    ));
}
