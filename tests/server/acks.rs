//! Acknowledgement modes, redelivery, prefetch and transactions, over real sockets.

use crate::common;

use crate::common::{Frame, TestServer};

fn bodies(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(|f| f.body_str().to_string()).collect()
}

/// Publishes `n` messages `{prefix}{i}` to `dest` and waits until the broker routed them.
async fn publish_n(server: &TestServer, dest: &str, prefix: &str, n: usize) {
    let mut p = server.tcp_connected(None).await;
    for i in 1..=n {
        p.send_sync(dest, &[], format!("{prefix}{i}").as_bytes())
            .await;
    }
    p.disconnect().await;
}

#[tokio::test]
async fn client_ack_is_cumulative_and_unacked_are_redelivered() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/cum", "a", &[("ack", "client")])
        .await;
    publish_n(&server, "/queue/cum", "m", 5).await;
    let msgs = a.messages(5).await;
    assert_eq!(bodies(&msgs), vec!["m1", "m2", "m3", "m4", "m5"]);
    for m in &msgs {
        // STOMP 1.2: an `ack` header to acknowledge with.
        assert!(!m.h("ack").is_empty(), "{m:?}");
        assert_eq!(m.header("redelivered"), None);
    }
    // Acking the third acknowledges 1..=3.
    a.request("ACK", &[("id", msgs[2].h("ack"))], b"").await;

    let mut b = server.ws_connected(None).await;
    b.subscribe_with("/queue/cum", "b", &[("ack", "client")])
        .await;
    b.assert_quiet().await;
    // Acking the first again fails: the cumulative ACK covered it. The ERROR ends `a`.
    a.frame("ACK", &[("id", msgs[0].h("ack"))], "").await;
    let (error, _) = a.expect_error_and_close().await;
    assert!(error.h("message").contains("unknown ack id"), "{error:?}");

    let redelivered = b.messages(2).await;
    assert_eq!(bodies(&redelivered), vec!["m4", "m5"]);
    for m in &redelivered {
        assert_eq!(m.header("redelivered"), Some("true"), "{m:?}");
        assert_eq!(m.h("subscription"), "b");
    }
    b.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn client_individual_ack_acks_exactly_one() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/ind", "a", &[("ack", "client-individual")])
        .await;
    publish_n(&server, "/queue/ind", "m", 3).await;
    let msgs = a.messages(3).await;
    a.request("ACK", &[("id", msgs[1].h("ack"))], b"").await;

    let mut b = server.tcp_connected(None).await;
    b.subscribe_with("/queue/ind", "b", &[("ack", "client-individual")])
        .await;
    b.assert_quiet().await;
    a.drop_connection().await;

    let redelivered = b.messages(2).await;
    assert_eq!(bodies(&redelivered), vec!["m1", "m3"]);
    assert!(
        redelivered
            .iter()
            .all(|m| m.header("redelivered") == Some("true"))
    );
    b.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn nack_redelivers_to_the_other_consumer() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/nack", "a", &[("ack", "client-individual")])
        .await;
    let mut b = server.ws_connected(None).await;
    b.subscribe_with("/queue/nack", "b", &[("ack", "client-individual")])
        .await;
    publish_n(&server, "/queue/nack", "m", 1).await;

    // Exactly one of them got it.
    let got_a = a.barrier().await;
    let got_b = b.barrier().await;
    assert_eq!(got_a.len() + got_b.len(), 1, "{got_a:?} {got_b:?}");
    let (first, second, msg) = if got_a.len() == 1 {
        (&mut a, &mut b, got_a[0].clone())
    } else {
        (&mut b, &mut a, got_b[0].clone())
    };
    first.request("NACK", &[("id", msg.h("ack"))], b"").await;
    let again = second.expect("MESSAGE").await;
    assert_eq!(again.body_str(), "m1");
    assert_eq!(again.header("redelivered"), Some("true"));
    assert_ne!(again.h("message-id"), msg.h("message-id"));
    second.request("ACK", &[("id", again.h("ack"))], b"").await;
    first.assert_quiet().await;
    second.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn nack_with_a_single_consumer_comes_back_to_it() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/solo", "a", &[("ack", "client-individual")])
        .await;
    publish_n(&server, "/queue/solo", "m", 1).await;
    let m = a.expect("MESSAGE").await;
    a.request("NACK", &[("id", m.h("ack"))], b"").await;
    let again = a.expect("MESSAGE").await;
    assert_eq!(again.body_str(), "m1");
    assert_eq!(again.header("redelivered"), Some("true"));
    server.finish().await;
}

#[tokio::test]
async fn prefetch_count_limits_in_flight_messages() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with(
        "/queue/pf",
        "a",
        &[("ack", "client-individual"), ("prefetch-count", "1")],
    )
    .await;
    publish_n(&server, "/queue/pf", "m", 3).await;
    for expected in ["m1", "m2", "m3"] {
        let got = a.barrier().await;
        assert_eq!(bodies(&got), vec![expected], "one in flight at a time");
        a.frame("ACK", &[("id", got[0].h("ack"))], "").await;
    }
    a.assert_quiet().await;

    // A second consumer takes what the first cannot.
    let mut b = server.ws_connected(None).await;
    b.subscribe_with(
        "/queue/pf",
        "b",
        &[("ack", "client-individual"), ("prefetch-count", "1")],
    )
    .await;
    publish_n(&server, "/queue/pf", "n", 2).await;
    let got_a = a.barrier().await;
    let got_b = b.barrier().await;
    assert_eq!(got_a.len(), 1, "{got_a:?}");
    assert_eq!(got_b.len(), 1, "{got_b:?}");
    server.finish().await;
}

#[tokio::test]
async fn unknown_ack_id_is_an_error() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/unk", "a", &[("ack", "client")])
        .await;
    a.frame("ACK", &[("id", "no-such-id"), ("receipt", "bad-ack")], "")
        .await;
    let (error, code) = a.expect_error_and_close().await;
    assert!(error.h("message").contains("unknown ack id"), "{error:?}");
    assert_eq!(error.header("receipt-id"), Some("bad-ack"));
    assert_eq!(code, Some(1002));

    // An id delivered to another session is unknown too.
    let mut b = server.ws_connected(None).await;
    b.subscribe_with("/queue/unk", "b", &[("ack", "client")])
        .await;
    publish_n(&server, "/queue/unk", "m", 1).await;
    let m = b.expect("MESSAGE").await;
    let mut c = server.ws_connected(None).await;
    c.frame("ACK", &[("id", m.h("ack"))], "").await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("unknown ack id"), "{error:?}");

    // Acking twice: the second is unknown.
    b.request("ACK", &[("id", m.h("ack"))], b"").await;
    b.frame("ACK", &[("id", m.h("ack"))], "").await;
    let (error, _) = b.expect_error_and_close().await;
    assert!(error.h("message").contains("unknown ack id"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn stomp_1_1_ack_uses_message_id_and_subscription() {
    let server = TestServer::start();
    let mut a = server.tcp_client().await;
    a.connect_version("1.1").await;
    assert_eq!(a.version, common::Ver::V11);
    a.subscribe_with("/queue/v11", "s11", &[("ack", "client-individual")])
        .await;
    publish_n(&server, "/queue/v11", "m", 2).await;
    let msgs = a.messages(2).await;
    // 1.1 MESSAGEs have no `ack` header.
    assert!(msgs.iter().all(|m| m.header("ack").is_none()), "{msgs:?}");
    a.request(
        "ACK",
        &[
            ("message-id", msgs[0].h("message-id")),
            ("subscription", "s11"),
        ],
        b"",
    )
    .await;
    a.request(
        "NACK",
        &[
            ("message-id", msgs[1].h("message-id")),
            ("subscription", "s11"),
        ],
        b"",
    )
    .await;
    // The NACKed one comes back; the ACKed one does not.
    let again = a.expect("MESSAGE").await;
    assert_eq!(again.body_str(), "m2");
    assert_eq!(again.header("redelivered"), Some("true"));
    // A wrong subscription is refused.
    a.frame(
        "ACK",
        &[
            ("message-id", again.h("message-id")),
            ("subscription", "other"),
        ],
        "",
    )
    .await;
    let (error, code) = a.expect_error_and_close().await;
    assert!(error.h("message").contains("subscription"), "{error:?}");
    assert_eq!(code, None, "TCP has no close code");

    // The ACKed m1 is never redelivered: only m2 goes to the next consumer.
    let mut b = server.ws_connected(None).await;
    b.subscribe("/queue/v11", "b").await;
    let m = b.expect("MESSAGE").await;
    assert_eq!(m.body_str(), "m2");
    b.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn stomp_1_2_ack_uses_the_ack_header_value() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/v12", "s", &[("ack", "client-individual")])
        .await;
    publish_n(&server, "/queue/v12", "m", 1).await;
    let m = a.expect("MESSAGE").await;
    // `id` of ACK is the value of the `ack` header.
    a.request("ACK", &[("id", m.h("ack"))], b"").await;
    a.disconnect().await;
    let mut b = server.ws_connected(None).await;
    b.subscribe("/queue/v12", "b").await;
    b.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn ack_without_id_is_an_error_in_1_2() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    // STOMP 1.2 names the delivery by `id`: `message-id` alone is not enough.
    a.frame("ACK", &[("message-id", "1-1")], "").await;
    let (error, _) = a.expect_error_and_close().await;
    assert!(error.h("message").contains("'id'"), "{error:?}");
    let mut b = server.ws_connected(None).await;
    b.frame("ACK", &[], "").await;
    let (error, _) = b.expect_error_and_close().await;
    assert!(error.h("message").contains("'id'"), "{error:?}");
    server.finish().await;
}

// --- transactions ---

#[tokio::test]
async fn transaction_commit_delivers_in_order() {
    let server = TestServer::start();
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/topic/tx", "s").await;
    let mut p = server.ws_connected(None).await;
    p.request("BEGIN", &[("transaction", "t1")], b"").await;
    for i in 1..=3 {
        p.request(
            "SEND",
            &[("destination", "/topic/tx"), ("transaction", "t1")],
            format!("t{i}").as_bytes(),
        )
        .await;
    }
    // Nothing before COMMIT.
    sub.assert_quiet().await;
    p.request("COMMIT", &[("transaction", "t1")], b"").await;
    let msgs = sub.messages(3).await;
    assert_eq!(bodies(&msgs), vec!["t1", "t2", "t3"]);
    // The `transaction` header is not forwarded.
    assert!(msgs.iter().all(|m| m.header("transaction").is_none()));
    sub.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn transaction_abort_delivers_nothing() {
    let server = TestServer::start();
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/queue/txa", "s").await;
    let mut p = server.tcp_connected(None).await;
    p.request("BEGIN", &[("transaction", "t")], b"").await;
    for i in 1..=3 {
        p.frame(
            "SEND",
            &[("destination", "/queue/txa"), ("transaction", "t")],
            format!("{i}"),
        )
        .await;
    }
    p.request("ABORT", &[("transaction", "t")], b"").await;
    sub.assert_quiet().await;
    // The transaction is gone after ABORT.
    p.frame("COMMIT", &[("transaction", "t")], "").await;
    let (error, _) = p.expect_error_and_close().await;
    assert!(
        error.h("message").contains("unknown transaction"),
        "{error:?}"
    );
    sub.assert_quiet().await;
    assert_eq!(server.stats().messages_in, 0);
    server.finish().await;
}

#[tokio::test]
async fn unknown_transaction_is_an_error() {
    let server = TestServer::start();
    for command in ["SEND", "COMMIT", "ABORT"] {
        let mut c = server.ws_connected(None).await;
        c.frame(
            command,
            &[
                ("destination", "/topic/x"),
                ("transaction", "nope"),
                ("receipt", "r"),
            ],
            "",
        )
        .await;
        let (error, code) = c.expect_error_and_close().await;
        assert!(
            error.h("message").contains("unknown transaction 'nope'"),
            "{command}: {error:?}"
        );
        assert_eq!(error.header("receipt-id"), Some("r"));
        assert_eq!(code, Some(1002));
    }
    // BEGIN twice with the same id.
    let mut c = server.ws_connected(None).await;
    c.request("BEGIN", &[("transaction", "t")], b"").await;
    c.frame("BEGIN", &[("transaction", "t")], "").await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("already open"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn ack_inside_a_transaction_applies_at_commit() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with(
        "/queue/txack",
        "a",
        &[("ack", "client-individual"), ("prefetch-count", "1")],
    )
    .await;
    publish_n(&server, "/queue/txack", "m", 3).await;
    let m1 = a.expect("MESSAGE").await;
    assert_eq!(m1.body_str(), "m1");
    a.request("BEGIN", &[("transaction", "t")], b"").await;
    a.request("ACK", &[("id", m1.h("ack")), ("transaction", "t")], b"")
        .await;
    // Not applied yet: prefetch 1 still holds m2 back.
    a.assert_quiet().await;
    a.request("COMMIT", &[("transaction", "t")], b"").await;
    let m2 = a.expect("MESSAGE").await;
    assert_eq!(m2.body_str(), "m2");

    // ACK in an aborted transaction is never applied: m2 is still unacked and goes to the
    // next consumer when `a` leaves; m1 does not come back.
    a.request("BEGIN", &[("transaction", "t2")], b"").await;
    a.request("ACK", &[("id", m2.h("ack")), ("transaction", "t2")], b"")
        .await;
    a.request("ABORT", &[("transaction", "t2")], b"").await;
    a.assert_quiet().await;
    let mut b = server.ws_connected(None).await;
    b.subscribe_with("/queue/txack", "b", &[("ack", "client-individual")])
        .await;
    // m3 was waiting behind a's prefetch limit: b takes it at once.
    let got = b.barrier().await;
    assert_eq!(bodies(&got), vec!["m3"]);
    assert_eq!(got[0].header("redelivered"), None);
    a.disconnect().await;
    let got = b.expect("MESSAGE").await;
    assert_eq!(got.body_str(), "m2");
    assert_eq!(got.header("redelivered"), Some("true"));
    b.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn stomp_1_0_client_ack_with_message_id() {
    let server = TestServer::start();
    let mut a = server.tcp_client().await;
    a.connect_version("1.0").await;
    assert_eq!(a.version, common::Ver::V10);
    a.subscribe_with("/queue/v10", "s", &[("ack", "client")])
        .await;
    publish_n(&server, "/queue/v10", "m", 2).await;
    let msgs = a.messages(2).await;
    assert!(msgs.iter().all(|m| m.header("ack").is_none()));
    a.request("ACK", &[("message-id", msgs[1].h("message-id"))], b"")
        .await;
    a.disconnect().await;
    let mut b = server.ws_connected(None).await;
    b.subscribe("/queue/v10", "b").await;
    b.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn transaction_limits() {
    let server = TestServer::start_with({
        let mut c = common::config();
        c.session.max_transaction_frames = 2;
        c.session.max_open_transactions = 1;
        c
    });
    let mut c = server.ws_connected(None).await;
    c.request("BEGIN", &[("transaction", "t")], b"").await;
    for _ in 0..2 {
        c.request(
            "SEND",
            &[("destination", "/topic/x"), ("transaction", "t")],
            b"",
        )
        .await;
    }
    c.frame(
        "SEND",
        &[("destination", "/topic/x"), ("transaction", "t")],
        "",
    )
    .await;
    let (error, code) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("exceeds 2 frames"), "{error:?}");
    assert_eq!(code, Some(1008));

    let mut c = server.ws_connected(None).await;
    c.request("BEGIN", &[("transaction", "a")], b"").await;
    c.frame("BEGIN", &[("transaction", "b")], "").await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(
        error.h("message").contains("too many open transactions"),
        "{error:?}"
    );
    server.finish().await;
}

#[tokio::test]
async fn disconnect_discards_open_transactions() {
    let server = TestServer::start();
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/queue/txd", "s").await;
    let mut p = server.ws_connected(None).await;
    p.request("BEGIN", &[("transaction", "t")], b"").await;
    p.request(
        "SEND",
        &[("destination", "/queue/txd"), ("transaction", "t")],
        b"never",
    )
    .await;
    p.disconnect().await;
    sub.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn cumulative_ack_stays_within_its_subscription() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/c1", "one", &[("ack", "client")])
        .await;
    a.subscribe_with("/queue/c2", "two", &[("ack", "client")])
        .await;
    let mut p = server.tcp_connected(None).await;
    // Interleaved: c2 first, then c1, then c2 again.
    p.send_sync("/queue/c2", &[], b"two-1").await;
    p.send_sync("/queue/c1", &[], b"one-1").await;
    p.send_sync("/queue/c2", &[], b"two-2").await;
    let msgs = a.messages(3).await;
    let one = msgs.iter().find(|m| m.body_str() == "one-1").unwrap();
    // Acking one-1 (delivered after two-1) must not acknowledge two-1.
    a.request("ACK", &[("id", one.h("ack"))], b"").await;
    let mut b = server.ws_connected(None).await;
    b.subscribe("/queue/c1", "b1").await;
    b.subscribe("/queue/c2", "b2").await;
    b.assert_quiet().await;
    a.disconnect().await;
    let got = b.messages(2).await;
    assert_eq!(bodies(&got), vec!["two-1", "two-2"]);
    assert!(got.iter().all(|m| m.h("subscription") == "b2"));
    b.assert_quiet().await;
    server.finish().await;
}
