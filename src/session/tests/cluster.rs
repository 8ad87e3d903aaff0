//! Cluster mode: a SUBSCRIBE's RECEIPT is held until the engine confirmed the subscription
//! (the session reads nothing more meanwhile, so no later RECEIPT overtakes it); without a
//! pending confirmation it goes out at once.

use std::sync::Arc;

use parking_lot::Mutex;

use super::common::*;
use crate::broker::{Backplane, DurableSignal, Interest, Message, Outbox, Ticket};
use crate::session::{Flow, Throttle};
use crate::stomp::Command;

/// A backplane whose engine confirms only when the test says so.
#[derive(Default)]
struct SlowEngine {
    asked: Mutex<Ticket>,
    confirmed: Arc<DurableSignal>,
}

impl Backplane for SlowEngine {
    fn interest(&self, _: &Interest, present: bool) {
        if present {
            *self.asked.lock() += 1;
        }
    }
    fn publish(&self, _: &str, _: &Arc<Message>) {}
    fn congested(&self) -> Option<Arc<Outbox>> {
        None
    }
    fn pending_confirmation(&self) -> Option<(Arc<DurableSignal>, Ticket)> {
        let asked = *self.asked.lock();
        (!self.confirmed.is_durable(asked)).then(|| (self.confirmed.clone(), asked))
    }
}

fn cluster_engine() -> (Arc<crate::engine::Engine>, Arc<SlowEngine>) {
    let engine = engine();
    let backplane = Arc::new(SlowEngine::default());
    assert!(engine.broker.attach_backplane(backplane.clone()));
    (engine, backplane)
}

#[test]
fn a_subscribe_receipt_waits_for_the_engine_and_nothing_overtakes_it() {
    let (engine, backplane) = cluster_engine();
    let mut c = Client::connected(&engine, "1.2", None);
    let flow = c.feed(frame(
        Command::Subscribe,
        &[("id", "s"), ("destination", "/topic/a"), ("receipt", "sub")],
    ));
    let Flow::Throttle(Throttle::Cluster(wait)) = flow else {
        panic!("expected a cluster wait, got {flow:?}")
    };
    assert!(
        c.drain().is_empty(),
        "no RECEIPT before the engine confirmed"
    );
    // Relieved too early (a spurious wake-up): still waiting.
    assert!(matches!(
        c.session.relieved(),
        Flow::Throttle(Throttle::Cluster(_))
    ));
    assert!(c.drain().is_empty());
    backplane.confirmed.advance(wait.ticket);
    assert!(matches!(c.session.relieved(), Flow::Continue));
    let frames = c.drain_frames_only();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].command, Command::Receipt);
    assert_eq!(frames[0].header("receipt-id"), Some("sub"));
}

#[test]
fn a_subscribe_already_held_by_the_engine_is_answered_at_once() {
    let (engine, backplane) = cluster_engine();
    let mut c = Client::connected(&engine, "1.2", None);
    backplane.confirmed.advance(u64::MAX);
    let flow = c.feed(frame(
        Command::Subscribe,
        &[("id", "s"), ("destination", "/topic/a"), ("receipt", "sub")],
    ));
    assert!(matches!(flow, Flow::Continue), "{flow:?}");
    let frames = c.drain_frames_only();
    assert_eq!(frames[0].header("receipt-id"), Some("sub"));
}
