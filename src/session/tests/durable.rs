//! Answers that wait for a durable store: a RECEIPT (and DISCONNECT's) comes only once the
//! session's persisted messages before it are committed.

use std::sync::Arc;

use super::common::*;
use crate::broker::Restored;
use crate::broker::durable_tests::ManualJournal;
use crate::session::{Flow, Throttle};
use crate::stomp::Command;

fn durable_engine() -> (Arc<crate::engine::Engine>, Arc<ManualJournal>) {
    let engine = engine();
    let journal = Arc::new(ManualJournal::default());
    engine
        .broker
        .attach_journal(journal.clone(), Restored::default());
    (engine, journal)
}

#[test]
fn a_receipt_waits_for_the_commit_of_the_send_it_confirms() {
    let (engine, journal) = durable_engine();
    let mut c = Client::connected(&engine, "1.2", None);
    let flow = c.feed(send("/queue/jobs", "job").with_header("receipt", "r1"));
    let Flow::Throttle(Throttle::Durable(wait)) = flow else {
        panic!("expected a durable wait, got {flow:?}")
    };
    assert!(c.drain().is_empty(), "no RECEIPT before the commit");
    journal.durable.advance(wait.ticket);
    assert!(matches!(c.session.relieved(), Flow::Continue));
    let frames = c.drain_frames_only();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header("receipt-id"), Some("r1"));
}

#[test]
fn a_disconnect_receipt_waits_for_an_earlier_send_without_a_receipt() {
    let (engine, journal) = durable_engine();
    let mut c = Client::connected(&engine, "1.2", None);
    // No receipt asked: the session reads on, but remembers the message is not on disk yet.
    assert!(matches!(c.feed(send("/queue/jobs", "job")), Flow::Continue));
    let flow = c.feed(frame(Command::Disconnect, &[("receipt", "bye")]));
    let Flow::Throttle(Throttle::Durable(wait)) = flow else {
        panic!("expected a durable wait, got {flow:?}")
    };
    assert!(c.drain().is_empty(), "no RECEIPT before the SEND's commit");
    journal.durable.advance(wait.ticket);
    assert!(matches!(c.session.relieved(), Flow::Close));
    let out = c.drain();
    assert!(
        matches!(&out[..], [Out::Frame(f), Out::Close(_)] if f.header("receipt-id") == Some("bye")),
        "{out:?}"
    );
}
