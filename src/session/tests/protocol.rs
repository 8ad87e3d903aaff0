//! STOMP protocol behaviour of the session state machine, driven without sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::common::*;
use crate::hooks::{Answer, Question};
use crate::session::Flow;
use crate::stomp::{Command, Version};
use crate::stomp::{Heartbeat, negotiate_heartbeat};
use crate::ws::codes;
use crate::{AppMessage, ConnectDecision, ConnectRequest, SessionInfo, TransportKind};
use bytes::Bytes;
use parking_lot::Mutex;

fn connect_frame(headers: &[(&str, &str)]) -> crate::stomp::Frame {
    frame(Command::Connect, headers)
}

// ---------------------------------------------------------------- CONNECT

#[test]
fn connect_and_stomp_commands_both_connect() {
    let engine = engine();
    let mut clients = Vec::new();
    for command in [Command::Connect, Command::Stomp] {
        let mut c = Client::new(&engine);
        let flow = c.raw(frame(command, &[("accept-version", "1.2"), ("host", "/")]));
        let Flow::Ask(Question::Connect(request)) = flow else {
            panic!("{command}: expected a connect question, got {flow:?}");
        };
        assert_eq!(request.session, c.session.id());
        assert!(!c.session.is_connected());
        // Nothing is written before the host decides.
        assert!(c.outbox.is_empty());
        let flow = c
            .session
            .answer(Answer::Connect(ConnectDecision::Accept { user: None }));
        assert!(matches!(flow, Flow::Continue));
        assert!(c.session.is_connected());
        let frames = c.drain_frames_only();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].command, Command::Connected);
        assert_eq!(frames[0].header("version"), Some("1.2"));
        clients.push(c);
    }
    assert_eq!(engine.counters().snapshot().sessions, 2);
}

#[test]
fn version_negotiation() {
    let engine = engine();
    let cases: [(Option<&str>, Version); 7] = [
        (None, Version::V1_0),
        (Some(""), Version::V1_0),
        (Some("1.0"), Version::V1_0),
        (Some("1.0,1.1"), Version::V1_1),
        (Some("1.2,1.1"), Version::V1_2),
        (Some(" 1.1 , 1.0 "), Version::V1_1),
        (Some("2.0,1.1"), Version::V1_1),
    ];
    for (accept, expected) in cases {
        let mut c = Client::new(&engine);
        let mut headers = vec![("host", "/")];
        if let Some(a) = accept {
            headers.push(("accept-version", a));
        }
        let connected = c.connect(&headers);
        assert_eq!(
            connected.header("version"),
            Some(expected.as_str()),
            "{accept:?}"
        );
        assert_eq!(c.session.version(), expected, "{accept:?}");
        assert_eq!(c.outbox.version(), expected, "{accept:?}");
    }
}

#[test]
fn unsupported_version_is_an_error_with_version_header_and_close() {
    let engine = engine();
    let mut c = Client::new(&engine);
    let flow = c.raw(connect_frame(&[("accept-version", "2.0"), ("host", "/")]));
    assert!(matches!(flow, Flow::Close), "{flow:?}");
    assert!(c.session.is_closed());
    let out = c.drain();
    assert_eq!(out.len(), 2, "{out:?}");
    let Out::Frame(error) = &out[0] else {
        panic!("expected an ERROR frame first: {out:?}");
    };
    assert_eq!(error.command, Command::Error);
    assert_eq!(error.header("version"), Some("1.0,1.1,1.2"));
    assert!(error.header("message").unwrap().contains("1.0,1.1,1.2"));
    assert!(String::from_utf8_lossy(&error.body).contains("'2.0'"));
    let Out::Close(reason) = &out[1] else {
        panic!("expected a close after the ERROR: {out:?}");
    };
    assert_eq!(reason.code, codes::PROTOCOL_ERROR);
    // The ERROR is already queued: the close itself writes no second one.
    assert_eq!(reason.error, None);
    // Nothing further is processed.
    assert!(matches!(c.raw(send("/topic/a", "x")), Flow::Close));
    assert!(c.outbox.is_empty());
    assert_eq!(engine.counters().snapshot().sessions, 0);
}

#[test]
fn connected_headers() {
    let engine = engine();
    let mut c = Client::new(&engine);
    let connected = c.connect(&[
        ("accept-version", "1.1,1.2"),
        ("host", "/"),
        ("login", "alice"),
        ("passcode", "secret"),
    ]);
    assert_eq!(connected.header("version"), Some("1.2"));
    assert_eq!(connected.header("heart-beat"), Some("10000,10000"));
    let server = connected.header("server").unwrap();
    assert_eq!(server, format!("wsbroker/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        connected.header("session"),
        Some(c.session.id().to_string().as_str())
    );
    assert_eq!(connected.header("user-name"), Some("alice"));
    assert_eq!(c.session.user(), Some("alice"));

    // Without a login there is no user-name; the heart-beat header follows the configuration.
    let engine = engine_with(|cfg| {
        cfg.session.heartbeat_send = Duration::from_millis(5000);
        cfg.session.heartbeat_receive = Duration::ZERO;
    });
    let mut c = Client::new(&engine);
    let connected = c.connect(&[("accept-version", "1.2"), ("host", "/"), ("login", "")]);
    assert_eq!(connected.header("heart-beat"), Some("5000,0"));
    assert_eq!(connected.header("user-name"), None);
    assert_eq!(c.session.user(), None);
}

#[test]
fn session_ids_are_unique() {
    let engine = engine();
    let a = Client::connected(&engine, "1.2", None);
    let b = Client::connected(&engine, "1.2", None);
    assert_ne!(a.session.id(), b.session.id());
    let mut ids = engine.broker.session_ids();
    ids.sort_unstable();
    let mut expected = vec![a.session.id(), b.session.id()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
}

#[test]
fn heartbeat_negotiation_table() {
    let hb = |send_ms, receive_ms| Heartbeat {
        send_ms,
        receive_ms,
    };
    // (client cx,cy), (server sx,sy) → server send = max(sx, cy), receive = max(cx, sy);
    // zero on either side of a direction disables it.
    let cases = [
        ((0, 0), (10_000, 10_000), hb(0, 0)),
        ((10_000, 10_000), (0, 0), hb(0, 0)),
        ((4_000, 15_000), (10_000, 10_000), hb(15_000, 10_000)),
        ((20_000, 5_000), (10_000, 10_000), hb(10_000, 20_000)),
        ((0, 5_000), (10_000, 10_000), hb(10_000, 0)),
        ((5_000, 0), (10_000, 10_000), hb(0, 10_000)),
        ((5_000, 5_000), (0, 3_000), hb(0, 5_000)),
        ((5_000, 5_000), (3_000, 0), hb(5_000, 0)),
        ((1, 1), (1, 1), hb(1, 1)),
    ];
    for (client, server, expected) in cases {
        assert_eq!(
            negotiate_heartbeat(client, server),
            expected,
            "client {client:?} server {server:?}"
        );
    }
}

#[test]
fn session_heartbeat_and_receive_timeout() {
    let engine = engine();
    let mut c = Client::new(&engine);
    assert_eq!(c.session.receive_timeout(), None);
    c.connect(&[
        ("accept-version", "1.1"),
        ("host", "/"),
        ("heart-beat", "4000, 15000"),
    ]);
    assert_eq!(
        c.session.heartbeat(),
        Heartbeat {
            send_ms: 15_000,
            receive_ms: 10_000
        }
    );
    assert_eq!(c.session.receive_timeout(), Some(Duration::from_secs(20)));
    assert_eq!(c.outbox.heartbeat_ms(), 15_000);

    // Client sends none: no receive timeout; wants none: the writer sends none.
    let mut c = Client::new(&engine);
    c.connect(&[("accept-version", "1.2"), ("heart-beat", "0,0")]);
    assert_eq!(c.session.heartbeat(), Heartbeat::default());
    assert_eq!(c.session.receive_timeout(), None);
    assert_eq!(c.outbox.heartbeat_ms(), 0);

    // No header at all: none either way.
    let mut c = Client::new(&engine);
    c.connect(&[("accept-version", "1.2")]);
    assert_eq!(c.session.heartbeat(), Heartbeat::default());

    // STOMP 1.0 has no heart-beats: the header is ignored.
    let mut c = Client::new(&engine);
    c.connect(&[("accept-version", "1.0"), ("heart-beat", "1000,1000")]);
    assert_eq!(c.session.heartbeat(), Heartbeat::default());
    assert_eq!(c.session.receive_timeout(), None);

    // After the session ends there is no timeout to enforce.
    let mut c = Client::new(&engine);
    c.connect(&[("accept-version", "1.2"), ("heart-beat", "1000,1000")]);
    assert_eq!(c.session.receive_timeout(), Some(Duration::from_secs(20)));
    c.session.closed();
    assert_eq!(c.session.receive_timeout(), None);
}

#[test]
fn invalid_heartbeat_header_is_refused() {
    let engine = engine();
    for value in ["abc", "1000", "1000,x", "-1,0", ""] {
        let mut c = Client::new(&engine);
        let (error, reason) = c.refused(connect_frame(&[
            ("accept-version", "1.2"),
            ("heart-beat", value),
        ]));
        assert!(
            error
                .header("message")
                .unwrap()
                .contains("invalid heart-beat"),
            "{value}: {error:?}"
        );
        assert_eq!(reason.code, codes::PROTOCOL_ERROR);
    }
    assert_eq!(engine.counters().snapshot().sessions, 0);
}

#[test]
fn frames_before_connect_are_refused() {
    let engine = engine();
    for command in [
        Command::Send,
        Command::Subscribe,
        Command::Disconnect,
        Command::Ack,
        Command::Begin,
        Command::Message,
    ] {
        let mut c = Client::new(&engine);
        let (error, reason) = c.refused(frame(
            command,
            &[("destination", "/topic/a"), ("receipt", "r1")],
        ));
        assert_eq!(
            error.header("message").unwrap(),
            format!(
                "expected a CONNECT or STOMP frame first, got {}",
                command.as_str()
            )
        );
        assert_eq!(error.header("receipt-id"), Some("r1"));
        assert_eq!(reason.code, codes::PROTOCOL_ERROR);
        // A closed session handles nothing more.
        assert!(matches!(
            c.raw(connect_frame(&[("accept-version", "1.2")])),
            Flow::Close
        ));
        assert!(c.outbox.is_empty());
    }
    assert_eq!(engine.counters().snapshot().sessions, 0);
}

#[test]
fn second_connect_is_refused() {
    let engine = engine();
    for command in [Command::Connect, Command::Stomp] {
        let mut c = Client::connected(&engine, "1.2", None);
        let (error, reason) = c.refused(frame(command, &[("accept-version", "1.2")]));
        assert_eq!(error.header("message"), Some("already connected"));
        assert_eq!(reason.code, codes::PROTOCOL_ERROR);
    }
    assert_eq!(engine.counters().snapshot().sessions, 0);
}

#[test]
fn every_client_frame_with_receipt_gets_a_receipt() {
    let engine = engine();
    for version in ["1.0", "1.1", "1.2"] {
        let queue = format!("/queue/r-{version}");
        let mut c = Client::connected(&engine, version, None);
        c.ok(frame(
            Command::Subscribe,
            &[("id", "s1"), ("destination", &queue), ("ack", "client")],
        ));
        c.ok(send(&queue, "one"));
        c.ok(send(&queue, "two"));
        let ds = c.messages();
        assert_eq!(ds.len(), 2);
        c.ok(c.ack_frame(Command::Ack, &ds[0]));
        if version != "1.0" {
            let nack = c
                .ack_frame(Command::Nack, &ds[1])
                .with_header("receipt", "n");
            assert!(matches!(c.feed(nack), Flow::Continue));
            // The nacked message comes back at once (only consumer), then the receipt.
            let out = c.drain();
            assert_eq!(out.len(), 2, "{out:?}");
            assert!(matches!(&out[0], Out::Message(d) if d.redelivered && body(d) == "two"));
            assert!(
                matches!(&out[1], Out::Frame(f) if f.command == Command::Receipt
                    && f.header("receipt-id") == Some("n"))
            );
        }
        c.ok(frame(Command::Begin, &[("transaction", "t1")]));
        c.ok(frame(Command::Commit, &[("transaction", "t1")]));
        c.ok(frame(Command::Begin, &[("transaction", "t2")]));
        c.ok(frame(Command::Abort, &[("transaction", "t2")]));
        c.ok(frame(Command::Unsubscribe, &[("id", "s1")]));

        let flow = c.feed(frame(Command::Disconnect, &[("receipt", "bye")]));
        assert!(matches!(flow, Flow::Close));
        let out = c.drain();
        assert_eq!(out.len(), 2, "{out:?}");
        let Out::Frame(receipt) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(receipt.command, Command::Receipt);
        assert_eq!(receipt.header("receipt-id"), Some("bye"));
        let Out::Close(reason) = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!(reason.code, codes::NORMAL);
        assert_eq!(reason.error, None);
        assert!(c.session.is_closed());
    }
}

#[test]
fn receipt_ids_are_escaped_per_version() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    c.feed(send("/topic/a", "x").with_header("receipt", "a:b\nc"));
    let frames = c.drain_frames_only();
    assert_eq!(frames[0].header("receipt-id"), Some("a:b\nc"));
}

#[test]
fn error_carries_receipt_id_of_the_failing_frame() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, reason) = c.refused(frame(
        Command::Unsubscribe,
        &[("id", "nope"), ("receipt", "r-9")],
    ));
    assert_eq!(error.header("receipt-id"), Some("r-9"));
    assert_eq!(
        error.header("message"),
        Some("no subscription with id 'nope'")
    );
    assert_eq!(error.header("content-type"), Some("text/plain"));
    assert_eq!(reason.receipt_id.as_deref(), Some("r-9"));

    // Without a receipt header there is no receipt-id.
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, _) = c.refused(frame(Command::Unsubscribe, &[("id", "nope")]));
    assert_eq!(error.header("receipt-id"), None);
}

#[test]
fn disconnect_without_receipt_closes_normally() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.1", None);
    assert!(matches!(
        c.feed(frame(Command::Disconnect, &[])),
        Flow::Close
    ));
    let out = c.drain();
    assert!(
        matches!(out.as_slice(), [Out::Close(r)] if r.code == codes::NORMAL && r.error.is_none()),
        "{out:?}"
    );
    assert_eq!(engine.counters().snapshot().sessions, 0);
}

#[test]
fn missing_required_headers() {
    let engine = engine();
    let cases: Vec<(&str, crate::stomp::Frame, &str)> = vec![
        (
            "1.2",
            frame(Command::Send, &[]),
            "SEND frame is missing the 'destination' header",
        ),
        (
            "1.0",
            frame(Command::Send, &[]),
            "SEND frame is missing the 'destination' header",
        ),
        (
            "1.2",
            frame(Command::Subscribe, &[("id", "1")]),
            "SUBSCRIBE frame is missing the 'destination' header",
        ),
        (
            "1.2",
            frame(Command::Subscribe, &[("destination", "/topic/a")]),
            "SUBSCRIBE frame is missing the 'id' header",
        ),
        (
            "1.1",
            frame(Command::Subscribe, &[("destination", "/topic/a")]),
            "SUBSCRIBE frame is missing the 'id' header",
        ),
        (
            "1.1",
            frame(Command::Unsubscribe, &[("destination", "/topic/a")]),
            "UNSUBSCRIBE frame is missing the 'id' header",
        ),
        (
            "1.0",
            frame(Command::Unsubscribe, &[]),
            "UNSUBSCRIBE frame is missing the 'destination' header",
        ),
        (
            "1.2",
            frame(Command::Ack, &[]),
            "ACK frame is missing the 'id' header",
        ),
        (
            "1.1",
            frame(Command::Ack, &[]),
            "ACK frame is missing the 'message-id' header",
        ),
        (
            "1.0",
            frame(Command::Ack, &[]),
            "ACK frame is missing the 'message-id' header",
        ),
        (
            "1.2",
            frame(Command::Nack, &[]),
            "NACK frame is missing the 'id' header",
        ),
        (
            // STOMP 1.2 names the delivery by `id`; `message-id` alone is not enough.
            "1.2",
            frame(Command::Ack, &[("message-id", "1-1")]),
            "ACK frame is missing the 'id' header",
        ),
        (
            "1.2",
            frame(
                Command::Nack,
                &[("message-id", "1-1"), ("transaction", "t")],
            ),
            "NACK frame is missing the 'id' header",
        ),
        (
            "1.2",
            frame(Command::Begin, &[]),
            "BEGIN frame is missing the 'transaction' header",
        ),
        (
            "1.2",
            frame(Command::Commit, &[]),
            "COMMIT frame is missing the 'transaction' header",
        ),
        (
            "1.2",
            frame(Command::Abort, &[]),
            "ABORT frame is missing the 'transaction' header",
        ),
    ];
    for (version, f, message) in cases {
        let command = f.command;
        let mut c = Client::connected(&engine, version, None);
        let (error, reason) = c.refused(f.with_header("receipt", "r"));
        assert_eq!(
            error.header("message"),
            Some(message),
            "{version} {command}"
        );
        assert_eq!(error.header("receipt-id"), Some("r"), "{version} {command}");
        assert_eq!(reason.code, codes::PROTOCOL_ERROR);
    }
}

#[test]
fn stomp_1_0_subscription_id_defaults_to_destination() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.0", None);
    c.ok(frame(Command::Subscribe, &[("destination", "/topic/news")]));
    let mut p = Client::connected(&engine, "1.0", None);
    p.send("/topic/news", "hello");
    let ds = c.messages();
    assert_eq!(ds.len(), 1);
    assert_eq!(&*ds[0].subscription, "/topic/news");
    let wire = decode_one(&wire(&c.outbox, &ds[0]), Version::V1_0);
    assert_eq!(wire.header("subscription"), Some("/topic/news"));
    // UNSUBSCRIBE by destination in 1.0.
    c.ok(frame(
        Command::Unsubscribe,
        &[("destination", "/topic/news")],
    ));
    assert_eq!(engine.counters().snapshot().subscriptions, 0);
    p.send("/topic/news", "again");
    assert!(c.drain().is_empty());
}

#[test]
fn invalid_ack_mode_and_prefetch_are_refused() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[("id", "1"), ("destination", "/q"), ("ack", "sometimes")],
    ));
    assert!(
        error
            .header("message")
            .unwrap()
            .contains("invalid ack mode 'sometimes'")
    );
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[
            ("id", "1"),
            ("destination", "/q"),
            ("prefetch-count", "many"),
        ],
    ));
    assert_eq!(
        error.header("message"),
        Some("invalid prefetch-count 'many'")
    );
}

#[test]
fn server_commands_from_a_client_are_refused() {
    let engine = engine();
    for command in [
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ] {
        let mut c = Client::connected(&engine, "1.2", None);
        let (error, reason) = c.refused(frame(command, &[("receipt", "x")]));
        assert_eq!(
            error.header("message").unwrap(),
            format!(
                "{} is a server frame; clients may not send it",
                command.as_str()
            )
        );
        assert_eq!(error.header("receipt-id"), Some("x"));
        assert_eq!(reason.code, codes::PROTOCOL_ERROR);
    }
}

// ---------------------------------------------------------------- hooks

#[test]
fn connect_hook_sees_the_request_and_may_reject() {
    let engine = engine();
    let seen: Arc<Mutex<Vec<ConnectRequest>>> = Arc::default();
    let disconnects = Arc::new(AtomicUsize::new(0));
    {
        let seen = seen.clone();
        engine.hooks.set_connect(Some(Arc::new(move |req| {
            seen.lock().push(req.clone());
            if req.passcode.as_deref() == Some("good") {
                ConnectDecision::Accept {
                    user: Some(format!("user-{}", req.login.as_deref().unwrap_or(""))),
                }
            } else {
                ConnectDecision::Reject("bad credentials".into())
            }
        })));
        let disconnects = disconnects.clone();
        engine.hooks.set_disconnect(Some(Arc::new(move |_| {
            disconnects.fetch_add(1, Ordering::SeqCst);
        })));
    }

    let mut c = Client::new(&engine);
    let (error, reason) = c.refused(connect_frame(&[
        ("accept-version", "1.2"),
        ("login", "mallory"),
        ("passcode", "bad"),
        ("x-extra", "1"),
    ]));
    assert_eq!(error.header("message"), Some("bad credentials"));
    assert_eq!(String::from_utf8_lossy(&error.body), "bad credentials");
    assert_eq!(reason.code, codes::POLICY_VIOLATION);
    {
        let seen = seen.lock();
        let req = &seen[0];
        assert_eq!(req.session, c.session.id());
        assert_eq!(req.login.as_deref(), Some("mallory"));
        assert_eq!(req.passcode.as_deref(), Some("bad"));
        assert_eq!(req.transport, TransportKind::WebSocket);
        assert!(req.headers.contains(&("x-extra".into(), "1".into())));
    }
    drop(c);
    engine.run_queued_callbacks();
    // A rejected session never connected: no disconnect hook, no broker session.
    assert_eq!(disconnects.load(Ordering::SeqCst), 0);
    assert_eq!(engine.counters().snapshot().sessions, 0);

    let mut c = Client::new(&engine);
    let connected = c.connect(&[
        ("accept-version", "1.2"),
        ("login", "bob"),
        ("passcode", "good"),
    ]);
    assert_eq!(connected.header("user-name"), Some("user-bob"));
    assert_eq!(c.session.user(), Some("user-bob"));
    drop(c);
    engine.run_queued_callbacks();
    assert_eq!(disconnects.load(Ordering::SeqCst), 1);
}

#[test]
fn invalid_user_names_from_the_hook_are_refused() {
    let engine = engine();
    for name in ["a/b", "", "x*"] {
        let mut c = Client::new(&engine);
        let flow = c.raw(connect_frame(&[("accept-version", "1.2")]));
        assert!(matches!(flow, Flow::Ask(Question::Connect(_))));
        let flow = c.session.answer(Answer::Connect(ConnectDecision::Accept {
            user: Some(name.to_string()),
        }));
        assert!(matches!(flow, Flow::Close), "{name}: {flow:?}");
        let (error, reason) = c.expect_error();
        assert!(
            error
                .header("message")
                .unwrap()
                .contains("invalid user name"),
            "{name}: {error:?}"
        );
        assert_eq!(reason.code, codes::POLICY_VIOLATION);
        assert!(!c.session.is_connected());
    }
    assert_eq!(engine.counters().snapshot().sessions, 0);
}

#[test]
fn mismatched_answer_is_an_internal_error() {
    let engine = engine();
    let mut c = Client::new(&engine);
    assert!(matches!(
        c.raw(connect_frame(&[("accept-version", "1.2")])),
        Flow::Ask(_)
    ));
    let flow = c.session.answer(Answer::Subscribe(Ok(())));
    assert!(matches!(flow, Flow::Close));
    let (error, reason) = c.expect_error();
    assert_eq!(error.header("message"), Some("internal error"));
    assert_eq!(reason.code, codes::INTERNAL_ERROR);
    // An answer nobody asked for changes nothing.
    let mut c = Client::connected(&engine, "1.2", None);
    assert!(matches!(
        c.session.answer(Answer::Subscribe(Ok(()))),
        Flow::Continue
    ));
    assert!(c.outbox.is_empty());
    assert!(c.session.is_connected());
}

#[test]
fn subscribe_hook_asks_and_may_refuse() {
    let engine = engine();
    engine
        .hooks
        .set_subscribe(Some(Arc::new(|_| Err("unused: answered by hand".into()))));
    let mut c = Client::connected(&engine, "1.2", Some("alice"));
    let flow = c.raw(frame(
        Command::Subscribe,
        &[
            ("id", "s1"),
            ("destination", "/topic/secret"),
            ("receipt", "r1"),
            ("x-why", "curious"),
        ],
    ));
    let Flow::Ask(Question::Subscribe(request)) = flow else {
        panic!("expected a subscribe question, got {flow:?}");
    };
    assert_eq!(request.session, c.session.id());
    assert_eq!(request.user.as_deref(), Some("alice"));
    assert_eq!(request.destination, "/topic/secret");
    assert!(
        request
            .headers
            .contains(&("x-why".into(), "curious".into()))
    );
    // No receipt until the host answers.
    assert!(c.outbox.is_empty());
    let flow = c
        .session
        .answer(Answer::Subscribe(Err("not for you".into())));
    assert!(matches!(flow, Flow::Close));
    let (error, reason) = c.expect_error();
    assert_eq!(
        error.header("message"),
        Some("subscription refused: not for you")
    );
    assert_eq!(error.header("receipt-id"), Some("r1"));
    assert_eq!(reason.code, codes::POLICY_VIOLATION);
    assert_eq!(engine.counters().snapshot().subscriptions, 0);
    assert_eq!(engine.counters().snapshot().sessions, 0);

    // Accepted: the receipt comes with the answer and the subscription works.
    let mut c = Client::connected(&engine, "1.2", Some("alice"));
    let flow = c.raw(frame(
        Command::Subscribe,
        &[
            ("id", "s1"),
            ("destination", "/topic/open"),
            ("receipt", "r2"),
        ],
    ));
    assert!(matches!(flow, Flow::Ask(Question::Subscribe(_))));
    assert!(matches!(
        c.session.answer(Answer::Subscribe(Ok(()))),
        Flow::Continue
    ));
    let frames = c.drain_frames_only();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header("receipt-id"), Some("r2"));
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/topic/open", "hi");
    assert_eq!(c.bodies(), ["hi"]);
}

#[test]
fn subscribe_hook_through_the_hooks_decides_per_destination() {
    let engine = engine();
    engine.hooks.set_subscribe(Some(Arc::new(|req| {
        if req.destination.starts_with("/topic/admin") && req.user.as_deref() != Some("root") {
            Err(format!("{} is for admins", req.destination))
        } else {
            Ok(())
        }
    })));
    let mut c = Client::connected(&engine, "1.2", Some("alice"));
    c.subscribe("1", "/topic/public", "auto");
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[("id", "2"), ("destination", "/topic/admin/logs")],
    ));
    assert_eq!(
        error.header("message"),
        Some("subscription refused: /topic/admin/logs is for admins")
    );
    let mut root = Client::connected(&engine, "1.2", Some("root"));
    root.subscribe("2", "/topic/admin/logs", "auto");
}

#[test]
fn closing_while_a_subscribe_question_is_pending_cleans_up() {
    let engine = engine();
    engine.hooks.set_subscribe(Some(Arc::new(|_| Ok(()))));
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = calls.clone();
    engine.hooks.set_disconnect(Some(Arc::new(move |_| {
        calls2.fetch_add(1, Ordering::SeqCst);
    })));
    let mut c = Client::connected(&engine, "1.2", None);
    c.subscribe("a", "/topic/a", "auto");
    assert!(matches!(
        c.raw(frame(
            Command::Subscribe,
            &[("id", "b"), ("destination", "/topic/b")]
        )),
        Flow::Ask(_)
    ));
    c.session.closed();
    engine.run_queued_callbacks();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(engine.counters().snapshot().subscriptions, 0);
    assert_eq!(engine.counters().snapshot().sessions, 0);
    // A late answer does nothing.
    assert!(matches!(
        c.session.answer(Answer::Subscribe(Ok(()))),
        Flow::Continue
    ));
    assert_eq!(engine.counters().snapshot().subscriptions, 0);
    drop(c);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------- application destinations

#[test]
fn app_destination_without_handler_is_an_error() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, reason) = c.refused(send("/app/chat", "hi").with_header("receipt", "r"));
    assert_eq!(
        error.header("message"),
        Some("no application handler for destination /app/chat")
    );
    assert_eq!(error.header("receipt-id"), Some("r"));
    assert_eq!(reason.code, codes::PROTOCOL_ERROR);
}

#[test]
fn app_handler_gets_the_message_and_may_reply_and_publish() {
    let engine = engine();
    let seen: Arc<Mutex<Vec<AppMessage>>> = Arc::default();
    {
        let seen = seen.clone();
        engine.hooks.add_app(
            "/app/**",
            Arc::new(move |msg, publisher| {
                seen.lock().push(msg.clone());
                assert_eq!(publisher.session(), Some(msg.session));
                publisher
                    .reply("/user/queue/reply", &[("x-for", "sender")], "private")
                    .map_err(|e| e.to_string())?;
                publisher
                    .publish("/topic/chat", &[], msg.body.clone())
                    .map_err(|e| e.to_string())?;
                Ok(())
            }),
        );
    }
    let mut alice = Client::connected(&engine, "1.2", Some("alice"));
    alice.subscribe("r", "/user/queue/reply", "auto");
    alice.subscribe("c", "/topic/chat", "auto");
    let mut alice2 = Client::connected(&engine, "1.2", Some("alice"));
    alice2.subscribe("r", "/user/queue/reply", "auto");
    alice2.subscribe("c", "/topic/chat", "auto");

    alice.ok(send("/app/room/1", "hello")
        .with_header("content-type", "text/plain")
        .with_header("x-k", "v"));
    {
        let seen = seen.lock();
        assert_eq!(seen.len(), 1);
        let m = &seen[0];
        assert_eq!(m.session, alice.session.id());
        assert_eq!(m.user.as_deref(), Some("alice"));
        assert_eq!(m.destination, "/app/room/1");
        assert_eq!(m.header("content-type"), Some("text/plain"));
        assert_eq!(m.header("x-k"), Some("v"));
        assert_eq!(m.header("destination"), Some("/app/room/1"));
        assert_eq!(m.body, Bytes::from_static(b"hello"));
    }
    // The reply reaches only the sending session, the publish every subscriber.
    let ds = alice.messages();
    assert_eq!(ds.len(), 2, "{ds:?}");
    let reply = ds.iter().find(|d| &*d.subscription == "r").unwrap();
    assert_eq!(reply.message.destination(), "/user/queue/reply");
    assert_eq!(reply.message.header("x-for"), Some("sender"));
    assert_eq!(body(reply), "private");
    let chat = ds.iter().find(|d| &*d.subscription == "c").unwrap();
    assert_eq!(body(chat), "hello");
    assert_eq!(alice2.bodies(), ["hello"]);
}

#[test]
fn app_prefix_matches_whole_segments_only() {
    let engine = engine();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    engine.hooks.add_app(
        "/app/**",
        Arc::new(move |_, _| {
            h.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }),
    );
    let mut sub = Client::connected(&engine, "1.2", None);
    sub.subscribe("1", "/application", "auto");
    let mut c = Client::connected(&engine, "1.2", None);
    // Not an application destination: routed as a topic.
    c.send("/application", "topic");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(sub.bodies(), ["topic"]);
    c.send("/app/x", "app");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(sub.drain().is_empty());
}

#[test]
fn app_handler_error_is_an_error_frame() {
    let engine = engine();
    engine
        .hooks
        .add_app("/app/fail", Arc::new(|_, _| Err("computer says no".into())));
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, reason) = c.refused(send("/app/fail", "x").with_header("receipt", "r"));
    assert_eq!(
        error.header("message"),
        Some("/app/fail failed: computer says no")
    );
    assert_eq!(error.header("receipt-id"), Some("r"));
    assert_eq!(reason.code, codes::POLICY_VIOLATION);
}

#[test]
fn app_handler_panic_is_contained() {
    let engine = engine();
    engine
        .hooks
        .add_app("/app/boom", Arc::new(|_, _| panic!("handler exploded")));
    let disconnects = Arc::new(AtomicUsize::new(0));
    let d = disconnects.clone();
    engine.hooks.set_disconnect(Some(Arc::new(move |_| {
        d.fetch_add(1, Ordering::SeqCst);
    })));
    let mut c = Client::connected(&engine, "1.2", None);
    let flow = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.feed(send("/app/boom", "x"))
    }))
    .expect("the handler's panic must not unwind out of Session::handle");
    assert!(matches!(flow, Flow::Close));
    let (error, reason) = c.expect_error();
    assert_eq!(
        error.header("message"),
        Some("/app/boom failed: the application handler panicked")
    );
    assert_eq!(reason.code, codes::INTERNAL_ERROR);
    assert_eq!(disconnects.load(Ordering::SeqCst), 1);
    // The engine keeps working for others.
    let mut other = Client::connected(&engine, "1.2", None);
    other.subscribe("1", "/topic/a", "auto");
    other.send("/topic/a", "still alive");
    assert_eq!(other.bodies(), ["still alive"]);
}

#[test]
fn app_handlers_exact_match_wins_and_can_be_removed() {
    let engine = engine();
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let (l1, l2) = (log.clone(), log.clone());
    engine.hooks.add_app(
        "/app/*",
        Arc::new(move |_, _| {
            l1.lock().push("pattern");
            Ok(())
        }),
    );
    engine.hooks.add_app(
        "/app/exact",
        Arc::new(move |_, _| {
            l2.lock().push("exact");
            Ok(())
        }),
    );
    let mut c = Client::connected(&engine, "1.2", None);
    c.send("/app/exact", "");
    c.send("/app/other", "");
    assert!(engine.hooks.remove_app("/app/exact"));
    assert!(!engine.hooks.remove_app("/app/exact"));
    c.send("/app/exact", "");
    assert_eq!(*log.lock(), ["exact", "pattern", "pattern"]);
}

// ---------------------------------------------------------------- transactions

#[test]
fn transaction_buffers_until_commit() {
    let engine = engine();
    let mut sub = Client::connected(&engine, "1.2", None);
    sub.subscribe("1", "/topic/tx", "auto");
    let mut c = Client::connected(&engine, "1.2", None);
    c.ok(frame(Command::Begin, &[("transaction", "t1")]));
    for body in ["a", "b", "c"] {
        c.ok(send("/topic/tx", body).with_header("transaction", "t1"));
    }
    // A SEND outside the transaction goes at once.
    c.send("/topic/tx", "now");
    assert_eq!(sub.bodies(), ["now"]);
    c.ok(frame(Command::Commit, &[("transaction", "t1")]));
    let ds = sub.messages();
    assert_eq!(ds.iter().map(body).collect::<Vec<_>>(), ["a", "b", "c"]);
    // The transaction header is the broker's, not passed on.
    assert_eq!(ds[0].message.header("transaction"), None);
    let wire = decode_one(&wire(&sub.outbox, &ds[0]), Version::V1_2);
    assert_eq!(wire.header("transaction"), None);
    assert_eq!(wire.header("receipt"), None);
    // The name may be reused after commit.
    c.ok(frame(Command::Begin, &[("transaction", "t1")]));
    c.ok(send("/topic/tx", "z").with_header("transaction", "t1"));
    c.ok(frame(Command::Abort, &[("transaction", "t1")]));
    assert!(sub.drain().is_empty());
    assert_eq!(engine.counters().snapshot().messages_in, 4);
}

#[test]
fn transactions_are_per_session_and_dropped_on_close() {
    let engine = engine();
    let mut sub = Client::connected(&engine, "1.2", None);
    sub.subscribe("1", "/topic/tx", "auto");
    let mut a = Client::connected(&engine, "1.2", None);
    a.ok(frame(Command::Begin, &[("transaction", "t")]));
    a.ok(send("/topic/tx", "lost").with_header("transaction", "t"));
    let mut b = Client::connected(&engine, "1.2", None);
    let (error, _) = b.refused(frame(Command::Commit, &[("transaction", "t")]));
    assert_eq!(error.header("message"), Some("unknown transaction 't'"));
    a.session.closed();
    assert!(sub.drain().is_empty());
}

#[test]
fn transaction_errors() {
    let engine = engine_with(|cfg| {
        cfg.session.max_transaction_frames = 2;
        cfg.session.max_open_transactions = 2;
    });
    let unknown = |f: crate::stomp::Frame, message: &str| {
        let mut c = Client::connected(&engine, "1.2", None);
        let (error, reason) = c.refused(f.with_header("receipt", "r"));
        assert_eq!(error.header("message"), Some(message));
        assert_eq!(error.header("receipt-id"), Some("r"));
        reason.code
    };
    assert_eq!(
        unknown(
            send("/topic/a", "x").with_header("transaction", "nope"),
            "unknown transaction 'nope'"
        ),
        codes::PROTOCOL_ERROR
    );
    assert_eq!(
        unknown(
            frame(Command::Commit, &[("transaction", "nope")]),
            "unknown transaction 'nope'"
        ),
        codes::PROTOCOL_ERROR
    );
    assert_eq!(
        unknown(
            frame(Command::Abort, &[("transaction", "nope")]),
            "unknown transaction 'nope'"
        ),
        codes::PROTOCOL_ERROR
    );
    assert_eq!(
        unknown(
            frame(Command::Ack, &[("id", "1-1"), ("transaction", "nope")]),
            "unknown transaction 'nope'"
        ),
        codes::PROTOCOL_ERROR
    );

    // Duplicate BEGIN.
    let mut c = Client::connected(&engine, "1.2", None);
    c.ok(frame(Command::Begin, &[("transaction", "t")]));
    let (error, _) = c.refused(frame(Command::Begin, &[("transaction", "t")]));
    assert_eq!(
        error.header("message"),
        Some("transaction 't' is already open")
    );

    // Too many frames in one transaction.
    let mut c = Client::connected(&engine, "1.2", None);
    c.ok(frame(Command::Begin, &[("transaction", "t")]));
    c.ok(send("/topic/a", "1").with_header("transaction", "t"));
    c.ok(send("/topic/a", "2").with_header("transaction", "t"));
    let (error, reason) = c.refused(send("/topic/a", "3").with_header("transaction", "t"));
    assert_eq!(
        error.header("message"),
        Some("transaction 't' exceeds 2 frames")
    );
    assert_eq!(reason.code, codes::POLICY_VIOLATION);

    // Too many open transactions.
    let mut c = Client::connected(&engine, "1.2", None);
    c.ok(frame(Command::Begin, &[("transaction", "t1")]));
    c.ok(frame(Command::Begin, &[("transaction", "t2")]));
    let (error, reason) = c.refused(frame(Command::Begin, &[("transaction", "t3")]));
    assert_eq!(
        error.header("message"),
        Some("too many open transactions (at most 2)")
    );
    assert_eq!(reason.code, codes::POLICY_VIOLATION);

    // Committing or aborting frees a slot.
    let mut c = Client::connected(&engine, "1.2", None);
    c.ok(frame(Command::Begin, &[("transaction", "t1")]));
    c.ok(frame(Command::Begin, &[("transaction", "t2")]));
    c.ok(frame(Command::Commit, &[("transaction", "t1")]));
    c.ok(frame(Command::Abort, &[("transaction", "t2")]));
    c.ok(frame(Command::Begin, &[("transaction", "t3")]));
    c.ok(frame(Command::Begin, &[("transaction", "t4")]));
}

#[test]
fn acks_in_a_transaction_apply_on_commit_only() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    c.ok(frame(
        Command::Subscribe,
        &[
            ("id", "1"),
            ("destination", "/queue/txack"),
            ("ack", "client-individual"),
            ("prefetch-count", "1"),
        ],
    ));
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/txack", "m1");
    p.send("/queue/txack", "m2");
    let ds = c.messages();
    assert_eq!(ds.len(), 1);
    c.ok(frame(Command::Begin, &[("transaction", "t")]));
    c.ok(c
        .ack_frame(Command::Ack, &ds[0])
        .with_header("transaction", "t"));
    // Not acknowledged yet: the prefetch window is still full.
    assert!(c.drain().is_empty());
    assert_eq!(engine.broker.queue_depth("/queue/txack"), 1);
    // The commit applies the ACK, which opens the window for m2 before the receipt.
    let flow = c.feed(frame(Command::Commit, &[("transaction", "t")]));
    assert!(matches!(flow, Flow::Continue));
    assert_eq!(c.bodies(), ["m2"]);
    assert_eq!(engine.broker.queue_depth("/queue/txack"), 0);
}

#[test]
fn aborted_ack_leaves_the_message_unacknowledged() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    c.ok(frame(
        Command::Subscribe,
        &[
            ("id", "1"),
            ("destination", "/queue/abort"),
            ("ack", "client-individual"),
        ],
    ));
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/queue/abort", "m1");
    let ds = c.messages();
    c.ok(frame(Command::Begin, &[("transaction", "t")]));
    c.ok(c
        .ack_frame(Command::Ack, &ds[0])
        .with_header("transaction", "t"));
    c.ok(frame(Command::Abort, &[("transaction", "t")]));
    // Closing requeues it, so it was never acknowledged.
    c.session.closed();
    assert_eq!(engine.broker.queue_depth("/queue/abort"), 1);
    let mut d = Client::connected(&engine, "1.2", None);
    d.subscribe("x", "/queue/abort", "auto");
    let ds = d.messages();
    assert_eq!(ds.len(), 1);
    assert!(ds[0].redelivered);
    assert_eq!(body(&ds[0]), "m1");
}

// ---------------------------------------------------------------- end of session

#[test]
fn closed_runs_disconnect_hook_once_and_removes_subscriptions() {
    let engine = engine();
    let infos: Arc<Mutex<Vec<SessionInfo>>> = Arc::default();
    let i = infos.clone();
    engine.hooks.set_disconnect(Some(Arc::new(move |info| {
        i.lock().push(info.clone());
    })));
    let mut c = Client::connected(&engine, "1.2", Some("carol"));
    c.subscribe("1", "/topic/a", "auto");
    c.subscribe("2", "/topic/*", "auto");
    c.subscribe("3", "/queue/a", "client");
    assert_eq!(engine.counters().snapshot().subscriptions, 3);
    assert_eq!(engine.counters().snapshot().sessions, 1);
    let id = c.session.id();

    c.session.closed();
    c.session.closed();
    assert!(c.session.is_closed());
    assert!(!c.session.is_connected());
    drop(c);
    engine.run_queued_callbacks();
    {
        // Released before `p` below ends and runs the hook again.
        let infos = infos.lock();
        assert_eq!(infos.len(), 1, "disconnect hook must run exactly once");
        assert_eq!(infos[0].session, id);
        assert_eq!(infos[0].user.as_deref(), Some("carol"));
        assert_eq!(infos[0].transport, TransportKind::WebSocket);
    }
    let stats = engine.counters().snapshot();
    assert_eq!(stats.subscriptions, 0);
    assert_eq!(stats.sessions, 0);
    assert!(engine.broker.session_ids().is_empty());
    // Publishing reaches nobody; the queue holds the message.
    let mut p = Client::connected(&engine, "1.2", None);
    p.send("/topic/a", "x");
    p.send("/queue/a", "y");
    assert_eq!(engine.broker.queue_depth("/queue/a"), 1);
    assert_eq!(engine.counters().snapshot().messages_out, 0);
}

#[test]
fn drop_alone_runs_disconnect_hook_once() {
    let engine = engine();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    engine.hooks.set_disconnect(Some(Arc::new(move |_| {
        c2.fetch_add(1, Ordering::SeqCst);
    })));
    let mut c = Client::connected(&engine, "1.2", None);
    c.subscribe("1", "/topic/a", "auto");
    drop(c);
    engine.run_queued_callbacks();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(engine.counters().snapshot().subscriptions, 0);
    // DISCONNECT then drop: once.
    let mut c = Client::connected(&engine, "1.2", None);
    c.feed(frame(Command::Disconnect, &[]));
    c.session.closed();
    drop(c);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // An error close then drop: once.
    let mut c = Client::connected(&engine, "1.2", None);
    c.refused(frame(Command::Message, &[]));
    drop(c);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Never connected: never.
    let mut c = Client::new(&engine);
    assert!(matches!(
        c.raw(connect_frame(&[("accept-version", "1.2")])),
        Flow::Ask(_)
    ));
    drop(c);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn disconnect_hook_panic_is_contained() {
    let engine = engine();
    engine
        .hooks
        .set_disconnect(Some(Arc::new(|_| panic!("disconnect hook exploded"))));
    let c = Client::connected(&engine, "1.2", None);
    drop(c);
    assert_eq!(engine.counters().snapshot().sessions, 0);
}

#[test]
fn terminate_and_protocol_error_close_with_an_error() {
    let engine = engine();
    let mut c = Client::connected(&engine, "1.2", None);
    assert!(matches!(
        c.session.terminate(codes::GOING_AWAY, "idle timeout"),
        Flow::Close
    ));
    let (error, reason) = c.expect_error();
    assert_eq!(error.header("message"), Some("idle timeout"));
    assert_eq!(reason.code, codes::GOING_AWAY);
    assert_eq!(engine.counters().snapshot().sessions, 0);

    let mut c = Client::connected(&engine, "1.1", None);
    assert!(matches!(
        c.session.protocol_error("unknown command 'FOO'"),
        Flow::Close
    ));
    let (error, reason) = c.expect_error();
    assert_eq!(error.header("message"), Some("unknown command 'FOO'"));
    assert_eq!(reason.code, codes::PROTOCOL_ERROR);
}

/// STOMP 1.1 §Heart-beating: heart-beats exist from 1.1 on and the session ignores the
/// client's `heart-beat` when 1.0 is negotiated, so CONNECTED must not advertise server
/// heart-beat intervals either: a client computing max(cx, sy) from it would expect server
/// heart-beats that never come and time the server out.
#[test]
fn stomp10_connected_advertises_no_heart_beats() {
    let engine = engine();
    for accept in [None, Some("1.0")] {
        let mut c = Client::new(&engine);
        let mut headers = vec![("heart-beat", "1000,1000")];
        if let Some(v) = accept {
            headers.push(("accept-version", v));
        }
        let connected = c.connect(&headers);
        assert_eq!(connected.header("version"), Some("1.0"));
        assert_eq!(c.session.heartbeat(), Default::default());
        assert_eq!(
            connected.header("heart-beat").unwrap_or("0,0"),
            "0,0",
            "1.0 CONNECTED advertises heart-beats the server will not send"
        );
    }
    // From 1.1 on, the server's own intervals are advertised as before.
    let mut c = Client::new(&engine);
    let connected = c.connect(&[("accept-version", "1.1"), ("heart-beat", "1000,1000")]);
    assert_eq!(connected.header("heart-beat"), Some("10000,10000"));
}
