//! Broker behaviour (routing, queues, acknowledgements, back-pressure) driven through
//! sessions without sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::common::*;
use crate::broker::{Outbound, Outbox, PushError};
use crate::engine::Engine;
use crate::session::Flow;
use crate::stomp::{Command, Escaping, Version};
use crate::ws::codes;
use crate::{Message, TransportKind};
use bytes::Bytes;
use parking_lot::Mutex;

fn sub_with(c: &mut Client, id: &str, dest: &str, ack: &str, prefetch: usize) {
    c.ok(frame(
        Command::Subscribe,
        &[
            ("id", id),
            ("destination", dest),
            ("ack", ack),
            ("prefetch-count", &prefetch.to_string()),
        ],
    ));
}

/// Feeds an ACK/NACK (which may trigger deliveries before its receipt) and returns the
/// deliveries it caused.
fn ack(c: &mut Client, command: Command, d: &crate::broker::Delivery) -> Vec<String> {
    let f = c.ack_frame(command, d);
    let flow = c.feed(f);
    assert!(matches!(flow, Flow::Continue), "{command}: {flow:?}");
    c.bodies()
}

// ---------------------------------------------------------------- topics

#[test]
fn topic_fan_out_shares_one_message() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    let mut b = Client::connected(&engine, "1.2", None);
    let mut old = Client::connected(&engine, "1.1", None);
    a.subscribe("sa", "/topic/prices", "auto");
    b.subscribe("sb", "/topic/prices", "client");
    old.subscribe("so", "/topic/prices", "client");
    let mut p = Client::connected(&engine, "1.2", None);
    p.ok(send("/topic/prices", "42")
        .with_header("content-type", "text/plain")
        .with_header("x-key", "a:b")
        .with_header("message-id", "forged"));

    let (da, db, dold) = (a.messages(), b.messages(), old.messages());
    assert_eq!((da.len(), db.len(), dold.len()), (1, 1, 1));
    let (da, db, dold) = (&da[0], &db[0], &dold[0]);
    assert!(Arc::ptr_eq(&da.message, &db.message));
    assert!(Arc::ptr_eq(&da.message, &dold.message));
    // Same version → the very same encoded tail bytes.
    let ta = da.message.tail(a.outbox.message_escaping());
    let tb = db.message.tail(b.outbox.message_escaping());
    assert_eq!(ta.as_ptr(), tb.as_ptr());
    // 1.1 escapes differently but the same way for every 1.1 session.
    let to = dold.message.tail(old.outbox.message_escaping());
    assert_eq!(to.as_ptr(), dold.message.tail(Escaping::V1_1).as_ptr());

    assert_eq!(da.message.destination(), "/topic/prices");
    assert_eq!(da.message.body(), &Bytes::from_static(b"42"));
    assert_eq!(da.message.sender(), Some(p.session.id()));
    assert_eq!(&*da.subscription, "sa");
    assert_eq!(&*db.subscription, "sb");
    assert_eq!(da.session, a.session.id());
    assert_eq!(db.session, b.session.id());
    assert!(!da.ack_header, "auto subscriptions have no ack header");
    assert!(db.ack_header, "1.2 client subscriptions have an ack header");
    assert!(!dold.ack_header, "1.1 has no ack header");
    assert!(!da.redelivered);

    // What each client reads.
    let fa = decode_one(&wire(&a.outbox, da), Version::V1_2);
    assert_eq!(fa.command, Command::Message);
    assert_eq!(fa.header("subscription"), Some("sa"));
    assert_eq!(fa.header("message-id"), Some(ack_id(da).as_str()));
    assert_eq!(fa.header("destination"), Some("/topic/prices"));
    assert_eq!(fa.header("content-type"), Some("text/plain"));
    assert_eq!(fa.header("x-key"), Some("a:b"));
    assert_eq!(fa.header("content-length"), Some("2"));
    assert_eq!(fa.header("ack"), None);
    assert_eq!(fa.header("receipt"), None);
    assert_eq!(&fa.body[..], b"42");
    let fb = decode_one(&wire(&b.outbox, db), Version::V1_2);
    assert_eq!(fb.header("ack"), Some(ack_id(db).as_str()));
    assert_eq!(fb.header("message-id"), Some(ack_id(db).as_str()));
    let raw_old = wire(&old.outbox, dold);
    assert!(
        raw_old.windows(10).any(|w| w == b"x-key:a\\cb"),
        "1.1 escapes ':' in header values"
    );
    let fo = decode_one(&raw_old, Version::V1_1);
    assert_eq!(fo.header("x-key"), Some("a:b"));
    // The forged broker header was dropped, not duplicated.
    assert_eq!(
        fa.headers.iter().filter(|(n, _)| n == "message-id").count(),
        1
    );

    let stats = engine.counters().snapshot();
    assert_eq!(stats.messages_in, 1);
    assert_eq!(stats.messages_out, 3);
    // Broadcast client-ack messages are acknowledged normally.
    assert!(ack(&mut b, Command::Ack, db).is_empty());
    assert!(b.drain().is_empty());
}

#[test]
fn stomp_1_0_messages_are_not_escaped() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.0", None);
    a.subscribe("s", "/topic/t", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/topic/t", "x");
    p.ok(send("/topic/t", "y").with_header("x-key", "a:b\\c"));
    let ds = a.messages();
    let raw = wire(&a.outbox, &ds[1]);
    assert!(raw.windows(12).any(|w| w == b"x-key:a:b\\c\n"), "{raw:?}");
    let f = decode_one(&raw, Version::V1_0);
    assert_eq!(f.header("x-key"), Some("a:b\\c"));
    // Per-session delivery numbers.
    assert_eq!(ds[0].seq + 1, ds[1].seq);
}

#[test]
fn topic_without_subscribers_drops_and_publish_counts_deliveries() {
    let engine = engine();
    let msg = |body: &'static str| {
        Arc::new(Message::new(
            engine.broker.next_message_id(),
            "/topic/none",
            vec![],
            Bytes::from_static(body.as_bytes()),
            None,
        ))
    };
    assert_eq!(
        engine
            .broker
            .publish("/topic/none", msg("a"), &mut Vec::new()),
        Ok(0)
    );
    let mut a = Client::connected(&engine, "1.2", None);
    let mut b = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/topic/none", "auto");
    b.subscribe("1", "/topic/none", "auto");
    b.subscribe("2", "/topic/*", "auto");
    assert_eq!(
        engine
            .broker
            .publish("/topic/none", msg("b"), &mut Vec::new()),
        Ok(3)
    );
    assert_eq!(a.bodies(), ["b"]);
    assert_eq!(b.bodies(), ["b", "b"]);
}

#[test]
fn wildcard_subscriptions_with_both_separators() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    c.subscribe("dot", "/topic/chat.*", "auto");
    c.subscribe("slash", "/topic/*", "auto");
    c.subscribe("deep", "/topic/**", "auto");
    c.subscribe("mid", "/topic/*/temp", "auto");
    c.subscribe("exact", "/topic/chat.room1", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    let cases: [(&str, &[&str]); 7] = [
        ("/topic/chat.room1", &["dot", "deep", "exact"]),
        ("/topic/chat.a.b", &["deep"]),
        ("/topic/chat", &["slash", "deep"]),
        ("/topic/a/b", &["deep"]),
        ("/topic/kitchen/temp", &["deep", "mid"]),
        ("/topic/kitchen.x/temp", &["deep"]),
        ("/other/chat.room1", &[]),
    ];
    for (dest, expected) in cases {
        p.send(dest, dest);
        let mut got: Vec<String> = c
            .messages()
            .iter()
            .map(|d| {
                assert_eq!(d.message.destination(), dest);
                d.subscription.to_string()
            })
            .collect();
        got.sort();
        let mut expected: Vec<String> = expected
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        expected.sort();
        assert_eq!(got, expected, "{dest}");
    }
    // Unsubscribing a pattern stops it.
    c.ok(frame(Command::Unsubscribe, &[("id", "deep")]));
    p.send("/topic/a/b", "x");
    assert!(c.drain().is_empty());
}

#[test]
fn wildcards_are_refused_on_queues_and_sends() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[("id", "1"), ("destination", "/queue/*")],
    ));
    assert_eq!(
        error.header("message"),
        Some("wildcards are not supported on queue destinations: /queue/*")
    );
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, _) = c.refused(send("/topic/*", "x"));
    assert!(
        error
            .header("message")
            .unwrap()
            .contains("wildcards are only allowed")
    );
    assert_eq!(engine.counters().snapshot().subscriptions, 0);
}

#[test]
fn subscription_ids_and_limits() {
    let engine = engine_with(|cfg| cfg.broker.max_subscriptions_per_session = 2);
    let mut c = Client::connected(&engine, "1.2", None);
    c.subscribe("1", "/topic/a", "auto");
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[("id", "1"), ("destination", "/topic/b")],
    ));
    assert_eq!(
        error.header("message"),
        Some("subscription id '1' is already in use")
    );
    let mut c = Client::connected(&engine, "1.2", None);
    c.subscribe("1", "/topic/a", "auto");
    c.subscribe("2", "/topic/a", "auto");
    let (error, reason) = c.refused(frame(
        Command::Subscribe,
        &[("id", "3"), ("destination", "/topic/a")],
    ));
    assert_eq!(
        error.header("message"),
        Some("too many subscriptions: at most 2 per session")
    );
    assert_eq!(reason.code, codes::PROTOCOL_ERROR);
    assert_eq!(engine.counters().snapshot().subscriptions, 0);
    // The same id in another session is fine; one session may subscribe twice to one topic.
    let mut d = Client::connected(&engine, "1.2", None);
    d.subscribe("1", "/topic/a", "auto");
    d.subscribe("2", "/topic/a", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/topic/a", "x");
    assert_eq!(d.messages().len(), 2);
}

// ---------------------------------------------------------------- queues

#[test]
fn queue_round_robin() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    let mut b = Client::connected(&engine, "1.2", None);
    let mut c = Client::connected(&engine, "1.1", None);
    a.subscribe("1", "/queue/work", "auto");
    b.subscribe("1", "/queue/work", "auto");
    c.subscribe("1", "/queue/work", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    for i in 0..7 {
        p.send("/queue/work", &format!("m{i}"));
    }
    assert_eq!(a.bodies(), ["m0", "m3", "m6"]);
    assert_eq!(b.bodies(), ["m1", "m4"]);
    assert_eq!(c.bodies(), ["m2", "m5"]);
    assert_eq!(engine.broker.queue_depth("/queue/work"), 0);
    assert_eq!(engine.counters().snapshot().messages_out, 7);
}

#[test]
fn queue_holds_messages_until_a_subscriber_appears() {
    let engine = engine();
    let mut p = Client::connected(&engine, "1.2", None);
    for body in ["1", "2", "3"] {
        p.send("/queue/later", body);
    }
    assert_eq!(engine.broker.queue_depth("/queue/later"), 3);
    assert!(engine.broker.is_queue("/queue/later"));
    assert!(!engine.broker.is_queue("/topic/later"));
    let mut c = Client::connected(&engine, "1.2", None);
    // Subscribing delivers the waiting messages at once, in order, before the receipt.
    let flow = c.feed(frame(
        Command::Subscribe,
        &[
            ("id", "1"),
            ("destination", "/queue/later"),
            ("receipt", "r"),
        ],
    ));
    assert!(matches!(flow, Flow::Continue));
    let out = c.drain();
    assert_eq!(out.len(), 4, "{out:?}");
    for (item, expected) in out.iter().zip(["1", "2", "3"]) {
        assert!(
            matches!(item, Out::Message(d) if body(d) == expected && !d.redelivered),
            "{item:?}"
        );
    }
    assert!(matches!(&out[3], Out::Frame(f) if f.header("receipt-id") == Some("r")));
    assert_eq!(engine.broker.queue_depth("/queue/later"), 0);
}

#[test]
fn queue_depth_limit_refuses_sends() {
    let engine = engine_with(|cfg| cfg.broker.max_queue_depth = 2);
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/small", "1");
    p.send("/queue/small", "2");
    let (error, reason) = p.refused(send("/queue/small", "3").with_header("receipt", "r3"));
    assert_eq!(
        error.header("message"),
        Some("queue /queue/small is full (2 messages waiting)")
    );
    assert_eq!(error.header("receipt-id"), Some("r3"));
    assert_eq!(reason.code, codes::PROTOCOL_ERROR);
    assert_eq!(engine.broker.queue_depth("/queue/small"), 2);
    // Host publishes are refused the same way.
    let m = Arc::new(Message::new(0, "/queue/small", vec![], Bytes::new(), None));
    assert!(
        engine
            .broker
            .publish("/queue/small", m, &mut Vec::new())
            .is_err()
    );
    // Messages in flight do not count against the depth.
    let mut c = Client::connected(&engine, "1.2", None);
    sub_with(&mut c, "1", "/queue/small", "client", 1);
    assert_eq!(engine.broker.queue_depth("/queue/small"), 1);
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/small", "3");
    assert_eq!(engine.broker.queue_depth("/queue/small"), 2);
}

#[test]
fn client_ack_is_cumulative() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/queue/cum", "client");
    let mut p = Client::connected(&engine, "1.2", None);
    for b in ["m1", "m2", "m3"] {
        p.send("/queue/cum", b);
    }
    let ds = a.messages();
    assert_eq!(ds.len(), 3);
    assert!(ack(&mut a, Command::Ack, &ds[1]).is_empty());
    // m1 was acknowledged with m2: acking it again is unknown.
    let mut a2 = Client::connected(&engine, "1.2", None);
    a2.subscribe("1", "/queue/cum", "auto");
    let (error, _) = a.refused(a.ack_frame(Command::Ack, &ds[0]));
    assert!(
        error
            .header("message")
            .unwrap()
            .starts_with(&format!("unknown ack id '{}'", ack_id(&ds[0]))),
        "{error:?}"
    );
    // Only m3 was still unacknowledged: the close gives it to the other consumer.
    let ds2 = a2.messages();
    assert_eq!(ds2.iter().map(body).collect::<Vec<_>>(), ["m3"]);
    assert!(ds2[0].redelivered);
}

#[test]
fn client_individual_ack_is_one_message() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/queue/ind", "client-individual");
    let mut p = Client::connected(&engine, "1.2", None);
    for b in ["m1", "m2", "m3"] {
        p.send("/queue/ind", b);
    }
    let ds = a.messages();
    assert!(ds.iter().all(|d| d.ack_header));
    assert!(ack(&mut a, Command::Ack, &ds[1]).is_empty());
    a.session.closed();
    // m1 and m3 were not acknowledged: they wait again, in their original order.
    assert_eq!(engine.broker.queue_depth("/queue/ind"), 2);
    let mut b = Client::connected(&engine, "1.2", None);
    b.subscribe("1", "/queue/ind", "auto");
    let ds = b.messages();
    assert_eq!(ds.iter().map(body).collect::<Vec<_>>(), ["m1", "m3"]);
    assert!(ds.iter().all(|d| d.redelivered));
}

#[test]
fn stomp_1_1_and_1_0_ack_by_message_id() {
    let engine = engine();
    for version in ["1.0", "1.1"] {
        let queue = format!("/queue/old-{version}");
        let mut a = Client::connected(&engine, version, None);
        sub_with(&mut a, "1", &queue, "client-individual", 1);
        let mut p = Client::connected(&engine, "1.2", None);
        p.send(&queue, "m1");
        p.send(&queue, "m2");
        let ds = a.messages();
        assert_eq!(ds.len(), 1);
        assert!(!ds[0].ack_header);
        let f = decode_one(&wire(&a.outbox, &ds[0]), a.version());
        assert_eq!(f.header("ack"), None);
        assert_eq!(ack(&mut a, Command::Ack, &ds[0]), ["m2"]);
        let ds = a.messages();
        assert!(ds.is_empty());
        // m2 is unacknowledged: closing puts it back.
        a.session.closed();
        assert_eq!(engine.broker.queue_depth(&queue), 1);
    }
}

#[test]
fn stomp_1_1_ack_checks_the_subscription() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.1", None);
    a.subscribe("s1", "/queue/sub", "client");
    a.subscribe("s2", "/topic/sub", "client");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/sub", "x");
    let ds = a.messages();
    let (error, _) = a.refused(frame(
        Command::Ack,
        &[("message-id", &ack_id(&ds[0])), ("subscription", "s2")],
    ));
    assert_eq!(
        error.header("message").unwrap(),
        format!(
            "message '{}' was not delivered to subscription 's2'",
            ack_id(&ds[0])
        )
    );
}

#[test]
fn nack_redelivers_to_another_consumer() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    let mut b = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/queue/n", "client-individual");
    b.subscribe("1", "/queue/n", "client-individual");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/n", "m1");
    let ds = a.messages();
    assert_eq!(ds.len(), 1);
    assert!(b.drain().is_empty());
    // Next in round robin would be b anyway; send one more so a would be next.
    p.send("/queue/n", "m2");
    assert_eq!(b.bodies(), ["m2"]);
    // a rejects m1: it goes to b (the other consumer), even though a is next in turn.
    assert!(ack(&mut a, Command::Nack, &ds[0]).is_empty());
    let again = b.messages();
    assert_eq!(again.len(), 1);
    assert_eq!(body(&again[0]), "m1");
    assert!(again[0].redelivered);
    assert!(Arc::ptr_eq(&again[0].message, &ds[0].message));
    let f = decode_one(&wire(&b.outbox, &again[0]), Version::V1_2);
    assert_eq!(f.header("redelivered"), Some("true"));
    assert_eq!(f.header("ack"), Some(ack_id(&again[0]).as_str()));
    // The nacked ack id is done with.
    let (error, _) = a.refused(a.ack_frame(Command::Ack, &ds[0]));
    assert!(error.header("message").unwrap().contains("unknown ack id"));
}

#[test]
fn nack_with_a_single_consumer_comes_back_to_it() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/queue/solo", "client");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/solo", "m1");
    p.send("/queue/solo", "m2");
    let ds = a.messages();
    // NACK in client mode is cumulative: both come back, in order.
    assert_eq!(ack(&mut a, Command::Nack, &ds[1]), ["m1", "m2"]);
}

#[test]
fn nack_of_a_topic_message_drops_it() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/topic/n", "client-individual");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/topic/n", "m1");
    let ds = a.messages();
    assert!(ack(&mut a, Command::Nack, &ds[0]).is_empty());
    assert!(a.drain().is_empty());
}

#[test]
fn unsubscribe_requeues_unacked_in_original_order() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    sub_with(&mut a, "1", "/queue/u", "client", 3);
    let mut p = Client::connected(&engine, "1.2", None);
    for b in ["m1", "m2", "m3"] {
        p.send("/queue/u", b);
    }
    assert_eq!(a.messages().len(), 3);
    // a's window is full: m4 waits in the queue.
    p.send("/queue/u", "m4");
    assert_eq!(engine.broker.queue_depth("/queue/u"), 1);
    let flow = a.feed(frame(Command::Unsubscribe, &[("id", "1")]));
    assert!(matches!(flow, Flow::Continue));
    assert!(a.drain().is_empty());
    // The unacknowledged ones go back in front of m4, in their original order.
    assert_eq!(engine.broker.queue_depth("/queue/u"), 4);
    let mut b = Client::connected(&engine, "1.2", None);
    b.subscribe("1", "/queue/u", "auto");
    let ds = b.messages();
    assert_eq!(
        ds.iter().map(body).collect::<Vec<_>>(),
        ["m1", "m2", "m3", "m4"]
    );
    assert_eq!(
        ds.iter().map(|d| d.redelivered).collect::<Vec<_>>(),
        [true, true, true, false]
    );
}

#[test]
fn session_close_requeues_unacked_in_original_order() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/queue/c1", "client-individual");
    a.subscribe("2", "/queue/c2", "client");
    let mut p = Client::connected(&engine, "1.2", None);
    for b in ["a1", "a2", "a3"] {
        p.send("/queue/c1", b);
    }
    p.send("/queue/c2", "b1");
    assert_eq!(a.messages().len(), 4);
    drop(a);
    assert_eq!(engine.broker.queue_depth("/queue/c1"), 3);
    assert_eq!(engine.broker.queue_depth("/queue/c2"), 1);
    let mut b = Client::connected(&engine, "1.2", None);
    b.subscribe("1", "/queue/c1", "auto");
    let ds = b.messages();
    assert_eq!(ds.iter().map(body).collect::<Vec<_>>(), ["a1", "a2", "a3"]);
    assert!(ds.iter().all(|d| d.redelivered));
}

#[test]
fn prefetch_limits_unacked_per_subscription() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    sub_with(&mut a, "1", "/queue/pf", "client-individual", 2);
    let mut p = Client::connected(&engine, "1.2", None);
    for i in 1..=5 {
        p.send("/queue/pf", &format!("m{i}"));
    }
    let ds = a.messages();
    assert_eq!(ds.iter().map(body).collect::<Vec<_>>(), ["m1", "m2"]);
    assert_eq!(engine.broker.queue_depth("/queue/pf"), 3);
    // Each ACK opens the window by one.
    assert_eq!(ack(&mut a, Command::Ack, &ds[1]), ["m3"]);
    assert_eq!(ack(&mut a, Command::Ack, &ds[0]), ["m4"]);
    // A second consumer with room takes the rest.
    let mut b = Client::connected(&engine, "1.2", None);
    b.subscribe("1", "/queue/pf", "auto");
    assert_eq!(b.bodies(), ["m5"]);
    // Auto subscriptions are never limited.
    for i in 6..=20 {
        p.send("/queue/pf", &format!("m{i}"));
    }
    assert_eq!(b.messages().len(), 15);
    assert!(a.drain().is_empty());
}

#[test]
fn prefetch_defaults_and_caps() {
    let engine = engine_with(|cfg| cfg.broker.max_unacked_per_subscription = 2);
    let mut p = Client::connected(&engine, "1.2", None);
    for i in 0..40 {
        p.send("/queue/cap", &format!("{i}"));
        p.send("/queue/def", &format!("{i}"));
        p.send("/queue/zero", &format!("{i}"));
    }
    let mut a = Client::connected(&engine, "1.2", None);
    a.feed(frame(
        Command::Subscribe,
        &[
            ("id", "d"),
            ("destination", "/queue/def"),
            ("ack", "client"),
        ],
    ));
    assert_eq!(
        a.messages().len(),
        2,
        "default is max_unacked_per_subscription"
    );
    let mut b = Client::connected(&engine, "1.2", None);
    b.feed(frame(
        Command::Subscribe,
        &[
            ("id", "c"),
            ("destination", "/queue/cap"),
            ("ack", "client"),
            ("prefetch-count", "1000"),
        ],
    ));
    assert_eq!(b.messages().len(), 32, "capped at 16 × the default");
    let mut c = Client::connected(&engine, "1.2", None);
    c.feed(frame(
        Command::Subscribe,
        &[
            ("id", "z"),
            ("destination", "/queue/zero"),
            ("ack", "client"),
            ("prefetch-count", "0"),
        ],
    ));
    assert_eq!(c.messages().len(), 2, "0 means the default");
}

#[test]
fn topic_client_ack_over_the_limit_is_dropped_and_counted() {
    let engine = engine();
    let mut slow = Client::connected(&engine, "1.2", None);
    sub_with(&mut slow, "1", "/topic/fast", "client", 2);
    let mut auto = Client::connected(&engine, "1.2", None);
    auto.subscribe("1", "/topic/fast", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    for i in 1..=5 {
        p.send("/topic/fast", &format!("m{i}"));
    }
    let ds = slow.messages();
    assert_eq!(ds.iter().map(body).collect::<Vec<_>>(), ["m1", "m2"]);
    assert_eq!(auto.messages().len(), 5);
    assert_eq!(engine.counters().snapshot().dropped, 3);
    // Dropped, not queued: acking opens the window for new messages only.
    assert!(ack(&mut slow, Command::Ack, &ds[1]).is_empty());
    p.send("/topic/fast", "m6");
    assert_eq!(slow.bodies(), ["m6"]);
    assert_eq!(engine.counters().snapshot().dropped, 3);
}

#[test]
fn outbox_overflow_closes_the_slow_consumer() {
    // The outbox alone.
    let outbox = Outbox::new(1, 1 << 20);
    assert_eq!(
        outbox.push(Outbound::Frame(Bytes::from_static(b"x"))),
        Ok(())
    );
    assert_eq!(
        outbox.push(Outbound::Frame(Bytes::from_static(b"y"))),
        Err(PushError::Overflow)
    );
    assert_eq!(
        outbox.push(Outbound::Frame(Bytes::from_static(b"z"))),
        Err(PushError::Closed)
    );

    // Through the broker.
    let engine = engine();
    let mut slow = Client::with_outbox(&engine, 4, 1 << 20);
    slow.connect(&[("accept-version", "1.2")]);
    slow.subscribe("1", "/topic/flood", "auto");
    let mut fast = Client::connected(&engine, "1.2", None);
    fast.subscribe("1", "/topic/flood", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    for i in 0..10 {
        p.send("/topic/flood", &format!("m{i}"));
    }
    assert_eq!(fast.messages().len(), 10);
    let (error, reason) = slow.expect_error();
    assert_eq!(reason.code, codes::POLICY_VIOLATION);
    assert!(
        error.header("message").unwrap().contains("slow consumer"),
        "{error:?}"
    );
    assert!(slow.outbox.is_closing());
    let stats = engine.counters().snapshot();
    assert_eq!(stats.slow_consumer_disconnects, 1, "counted once");
    assert_eq!(stats.messages_out, 10 + 4);
    // The four queued MESSAGEs were discarded with the queue, and the one that did not fit is
    // lost for this subscriber too; later ones were never queued to the closing session.
    assert_eq!(slow.outbox.discarded(), 4);
    assert_eq!(stats.dropped, 5);
    // The transport then reports the connection gone.
    slow.session.closed();
    assert_eq!(engine.counters().snapshot().sessions, 2);
}

#[test]
fn outbox_byte_bound_counts_too() {
    let engine = engine();
    let mut slow = Client::with_outbox(&engine, 1000, 1000);
    slow.connect(&[("accept-version", "1.2")]);
    slow.subscribe("1", "/topic/big", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    // An empty queue takes one message of any size (every accepted message can be
    // delivered); a second one past the byte cap is too much.
    p.send("/topic/big", &"x".repeat(2000));
    p.send("/topic/big", &"x".repeat(2000));
    let (error, _) = slow.expect_error();
    assert!(error.header("message").unwrap().contains("slow consumer"));
    assert_eq!(engine.counters().snapshot().slow_consumer_disconnects, 1);
}

#[test]
fn queue_skips_a_consumer_whose_outbox_overflows() {
    let engine = engine();
    let mut slow = Client::with_outbox(&engine, 2, 1 << 20);
    slow.connect(&[("accept-version", "1.2")]);
    slow.subscribe("1", "/queue/of", "client-individual");
    let mut ok = Client::connected(&engine, "1.2", None);
    ok.subscribe("1", "/queue/of", "client-individual");
    let mut p = Client::connected(&engine, "1.2", None);
    for i in 0..6 {
        p.send("/queue/of", &format!("m{i}"));
    }
    // slow got m0 and m2, overflowed on m4; m4 went to the other consumer instead.
    let (_, reason) = slow.expect_error();
    assert!(reason.error.unwrap().contains("slow consumer"));
    assert_eq!(ok.bodies(), ["m1", "m3", "m4", "m5"]);
    assert_eq!(engine.counters().snapshot().slow_consumer_disconnects, 1);
    // The messages slow never read come back when its connection ends.
    slow.session.closed();
    let ds = ok.messages();
    assert_eq!(ds.iter().map(body).collect::<Vec<_>>(), ["m0", "m2"]);
    assert!(ds.iter().all(|d| d.redelivered));
}

// ---------------------------------------------------------------- user destinations

#[test]
fn user_destinations_map_per_user() {
    let engine = engine();
    let mut alice1 = Client::connected(&engine, "1.2", Some("alice"));
    let mut alice2 = Client::connected(&engine, "1.1", Some("alice"));
    let mut bob = Client::connected(&engine, "1.2", Some("bob"));
    alice1.subscribe("r", "/user/queue/reply", "auto");
    alice2.subscribe("r", "/user/queue/reply", "auto");
    bob.subscribe("r", "/user/queue/reply", "auto");
    // bob cannot subscribe to alice's destination by naming it.
    bob.subscribe("spy", "/user/alice/queue/reply", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/user/alice/queue/reply", "for alice");
    for c in [&alice1, &alice2] {
        let ds = c.messages();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].message.destination(), "/user/queue/reply");
        let f = decode_one(&wire(&c.outbox, &ds[0]), c.version());
        assert_eq!(f.header("destination"), Some("/user/queue/reply"));
        assert_eq!(&f.body[..], b"for alice");
    }
    assert!(bob.drain().is_empty());
    p.send("/user/bob/queue/reply", "for bob");
    assert_eq!(bob.bodies(), ["for bob"]);
    assert!(alice1.drain().is_empty());

    // Host side: send_to_user reaches the same subscriptions.
    let (route, display) =
        crate::broker::destination::user_route("alice", "/queue/reply", "/user/").unwrap();
    let m = Arc::new(Message::new(
        0,
        display,
        vec![],
        Bytes::from_static(b"h"),
        None,
    ));
    assert_eq!(engine.broker.publish(&route, m, &mut Vec::new()), Ok(2));
}

#[test]
fn user_destination_errors() {
    let engine = engine();
    let mut anon = Client::connected(&engine, "1.2", None);
    let (error, _) = anon.refused(frame(
        Command::Subscribe,
        &[("id", "1"), ("destination", "/user/queue/x")],
    ));
    assert_eq!(
        error.header("message"),
        Some("/user/queue/x: user destinations need an authenticated user (log in first)")
    );
    let mut c = Client::connected(&engine, "1.2", Some("alice"));
    let (error, _) = c.refused(send("/user/alice", "x"));
    assert!(
        error
            .header("message")
            .unwrap()
            .contains("needs a user name")
    );
    let mut c = Client::connected(&engine, "1.2", Some("alice"));
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[("id", "1"), ("destination", "/user/")],
    ));
    assert_eq!(
        error.header("message"),
        Some("user destination is missing its name")
    );
}

#[test]
fn wildcard_subscriptions_do_not_see_other_users_destinations() {
    let engine = engine();
    let mut alice = Client::connected(&engine, "1.2", Some("alice"));
    alice.subscribe("r", "/user/queue/private", "auto");
    let mut eve = Client::connected(&engine, "1.2", Some("eve"));
    eve.subscribe("all", "/**", "auto");
    eve.subscribe("one", "/*/alice/queue/private", "auto");
    eve.subscribe("own", "/user/**", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/user/alice/queue/private", "secret");
    assert_eq!(alice.bodies(), ["secret"]);
    assert!(
        eve.drain().is_empty(),
        "another user's wildcard subscription must not receive /user/alice/... messages"
    );
    // Non-user destinations still reach the catch-all, and eve's own user destinations reach
    // her user-scoped pattern.
    p.send("/topic/public", "hello");
    assert_eq!(eve.bodies(), ["hello"]);
    p.send("/user/eve/queue/x", "mine");
    let ds = eve.messages();
    assert_eq!(ds.len(), 1);
    assert_eq!(&*ds[0].subscription, "own");
}

// ---------------------------------------------------------------- host subscriptions

#[test]
fn host_subscriptions_see_queue_and_topic_messages() {
    let engine = engine();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let s = seen.clone();
    let id = engine.broker.add_host_subscription(
        "/**",
        Arc::new(move |m: &Arc<Message>| {
            s.lock().push((
                m.destination().to_string(),
                String::from_utf8(m.body().to_vec()).unwrap(),
            ));
        }),
    );
    let mut c = Client::connected(&engine, "1.2", None);
    c.subscribe("1", "/topic/t", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/topic/t", "t1");
    p.send("/queue/q", "q1");
    // Seen without being consumed: the queue still holds it, the subscriber still got it.
    assert_eq!(engine.broker.queue_depth("/queue/q"), 1);
    assert_eq!(c.bodies(), ["t1"]);
    assert_eq!(
        *seen.lock(),
        [
            ("/topic/t".to_string(), "t1".to_string()),
            ("/queue/q".to_string(), "q1".to_string())
        ]
    );
    assert!(engine.broker.remove_host_subscription(id));
    assert!(!engine.broker.remove_host_subscription(id));
    p.send("/topic/t", "t2");
    assert_eq!(seen.lock().len(), 2);
}

#[test]
fn host_subscription_may_publish_from_its_callback() {
    let engine = engine();
    let weak = Arc::downgrade(&engine);
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    engine.broker.add_host_subscription(
        "/queue/requests",
        Arc::new(move |m: &Arc<Message>| {
            c2.fetch_add(1, Ordering::SeqCst);
            let engine: Arc<Engine> = weak.upgrade().unwrap();
            let reply = Arc::new(Message::new(
                engine.broker.next_message_id(),
                "/topic/answers",
                vec![("x-in-reply-to".into(), m.id().to_string())],
                m.body().clone(),
                None,
            ));
            // Also touches the host-subscription list (read) and the routing state.
            engine
                .broker
                .publish("/topic/answers", reply, &mut Vec::new())
                .unwrap();
            engine
                .broker
                .add_host_subscription("/nothing", Arc::new(|_| {}));
        }),
    );
    let mut listener = Client::connected(&engine, "1.2", None);
    listener.subscribe("1", "/topic/answers", "auto");
    let mut worker = Client::connected(&engine, "1.2", None);
    worker.subscribe("1", "/queue/requests", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/requests", "ping");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(worker.bodies(), ["ping"]);
    let ds = listener.messages();
    assert_eq!(ds.len(), 1);
    assert_eq!(body(&ds[0]), "ping");
    assert!(ds[0].message.header("x-in-reply-to").is_some());
}

// ---------------------------------------------------------------- acknowledgement ids

#[test]
fn ack_ids_of_another_session_are_unknown() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/queue/mine", "client-individual");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/mine", "m");
    let ds = a.messages();
    let mut b = Client::connected(&engine, "1.2", None);
    b.subscribe("1", "/queue/other", "client-individual");
    let (error, _) = b.refused(frame(Command::Ack, &[("id", &ack_id(&ds[0]))]));
    assert_eq!(
        error.header("message").unwrap(),
        format!("unknown ack id '{}'", ack_id(&ds[0]))
    );
    for bogus in ["garbage", "1-", "-1", "x-1", "99999-1"] {
        let mut b = Client::connected(&engine, "1.2", None);
        let (error, _) = b.refused(frame(Command::Ack, &[("id", bogus)]));
        assert!(
            error.header("message").unwrap().contains("unknown ack id"),
            "{bogus}: {error:?}"
        );
    }
    // a can still acknowledge its own message.
    assert!(ack(&mut a, Command::Ack, &ds[0]).is_empty());
    a.session.closed();
    assert_eq!(engine.broker.queue_depth("/queue/mine"), 0);
}

#[test]
fn auto_ack_messages_cannot_be_acked() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/queue/auto", "auto");
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/auto", "m");
    let ds = a.messages();
    let (error, _) = a.refused(a.ack_frame(Command::Ack, &ds[0]));
    assert!(error.header("message").unwrap().contains("unknown ack id"));
}

#[test]
fn gauges_follow_sessions_and_subscriptions() {
    let engine = engine();
    let mut a = Client::connected(&engine, "1.2", None);
    let mut b = Client::connected(&engine, "1.2", None);
    a.subscribe("1", "/topic/a", "auto");
    a.subscribe("2", "/queue/a", "auto");
    b.subscribe("1", "/topic/*", "auto");
    let s = engine.counters().snapshot();
    assert_eq!((s.sessions, s.subscriptions), (2, 3));
    a.ok(frame(Command::Unsubscribe, &[("id", "2")]));
    assert_eq!(engine.counters().snapshot().subscriptions, 2);
    drop(a);
    let s = engine.counters().snapshot();
    assert_eq!((s.sessions, s.subscriptions), (1, 1));
    b.feed(frame(Command::Disconnect, &[]));
    let s = engine.counters().snapshot();
    assert_eq!((s.sessions, s.subscriptions), (0, 0));
}

#[test]
fn host_can_disconnect_a_session() {
    let engine = engine();
    let c = Client::connected(&engine, "1.2", None);
    engine
        .broker
        .disconnect_session(c.session.id(), "kicked")
        .unwrap();
    let (error, reason) = c.expect_error();
    assert_eq!(error.header("message"), Some("kicked"));
    assert_eq!(reason.code, codes::POLICY_VIOLATION);
    assert!(engine.broker.disconnect_session(424242, "x").is_err());
    let _ = TransportKind::Tcp;
}

#[test]
fn overflow_on_a_receipt_counts_as_slow_consumer() {
    let engine = engine();
    let mut c = Client::with_outbox(&engine, 2, 1 << 20);
    c.connect(&[("accept-version", "1.2")]);
    // Nobody drains: the third RECEIPT does not fit.
    for r in ["r1", "r2", "r3"] {
        let flow = c.feed(send("/topic/void", "x").with_header("receipt", r));
        assert!(matches!(flow, Flow::Continue));
    }
    assert!(c.outbox.is_closing());
    let (error, reason) = c.expect_error();
    assert!(error.header("message").unwrap().contains("slow consumer"));
    assert_eq!(reason.code, codes::POLICY_VIOLATION);
    let stats = engine.counters().snapshot();
    assert_eq!(stats.slow_consumer_disconnects, 1);
    assert_eq!(
        stats.dropped, 0,
        "receipts are not messages: nothing published was lost"
    );
}
