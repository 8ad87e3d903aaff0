//! Publish/subscribe over real sockets: MESSAGE headers, escaping, topic fan-out, wildcards,
//! queues (round-robin, holding, depth limit) and both transports.

use crate::common;

use crate::common::{Client, Frame, TestServer, config};

fn bodies(frames: &[Frame]) -> Vec<String> {
    frames.iter().map(|f| f.body_str().to_string()).collect()
}

#[tokio::test]
async fn message_carries_broker_and_custom_headers() {
    let server = TestServer::start();
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/topic/headers", "sub-1").await;

    let mut publisher = server.ws_connected(None).await;
    publisher
        .send_sync(
            "/topic/headers",
            &[
                ("content-type", "application/json"),
                ("x-trace", "abc-123"),
                ("priority", "5"),
            ],
            br#"{"a":1}"#,
        )
        .await;

    let msg = sub.expect("MESSAGE").await;
    assert_eq!(msg.h("destination"), "/topic/headers");
    assert_eq!(msg.h("subscription"), "sub-1");
    assert!(!msg.h("message-id").is_empty());
    assert_eq!(msg.h("content-length"), "7");
    assert_eq!(msg.h("content-type"), "application/json");
    assert_eq!(msg.h("x-trace"), "abc-123");
    assert_eq!(msg.h("priority"), "5");
    assert_eq!(msg.body_str(), r#"{"a":1}"#);
    // The SEND's receipt request is the sender's business, not the subscriber's.
    assert_eq!(msg.header("receipt"), None);
    // Auto-ack subscriptions get no `ack` header.
    assert_eq!(msg.header("ack"), None);
    // Exactly one of each broker header.
    for name in [
        "destination",
        "subscription",
        "message-id",
        "content-length",
    ] {
        let n = msg.headers.iter().filter(|(k, _)| k == name).count();
        assert_eq!(n, 1, "{name} appears {n} times in {msg:?}");
    }

    // Message ids differ between messages.
    publisher.send_sync("/topic/headers", &[], b"second").await;
    let second = sub.expect("MESSAGE").await;
    assert_ne!(second.h("message-id"), msg.h("message-id"));
    sub.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn sender_cannot_forge_broker_headers() {
    let server = TestServer::start();
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/topic/forge", "real").await;
    let mut publisher = server.ws_connected(None).await;
    publisher
        .send_sync(
            "/topic/forge",
            &[
                ("message-id", "forged"),
                ("subscription", "forged"),
                ("ack", "forged"),
            ],
            b"x",
        )
        .await;
    let msg = sub.expect("MESSAGE").await;
    assert_eq!(msg.h("subscription"), "real");
    assert_ne!(msg.h("message-id"), "forged");
    assert_eq!(msg.header("ack"), None);
    server.finish().await;
}

#[tokio::test]
async fn header_escaping_round_trips_in_1_2() {
    let server = TestServer::start();
    let value = "a:b\nc\\d\re";
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/topic/esc", "s").await;
    // A raw TCP 1.2 subscriber to see the escaped bytes on the wire.
    let mut raw = server.tcp_client().await;
    raw.write_raw(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
        .await;
    let connected = raw.raw_frames(1).await;
    assert!(connected[0].starts_with(b"CONNECTED\nversion:1.2\n"));
    raw.write_raw(b"SUBSCRIBE\ndestination:/topic/esc\nid:raw\nreceipt:r\n\n\0")
        .await;
    let receipt = raw.raw_frames(1).await;
    assert_eq!(receipt[0], b"RECEIPT\nreceipt-id:r\n\n\0");

    let mut publisher = server.ws_connected(None).await;
    // Our encoder escapes the value as 1.2 requires.
    publisher
        .send_sync("/topic/esc", &[("x-key", value), ("x:colon", "1")], b"hi")
        .await;

    let msg = sub.expect("MESSAGE").await;
    assert_eq!(msg.h("x-key"), value);
    assert_eq!(msg.h("x:colon"), "1");

    let frame = raw.raw_frames(1).await.remove(0);
    let text = String::from_utf8(frame).unwrap();
    assert!(
        text.contains("\nx-key:a\\cb\\nc\\\\d\\re\n"),
        "escaped on the wire: {text:?}"
    );
    assert!(text.contains("\nx\\ccolon:1\n"), "{text:?}");
    assert!(text.ends_with("\n\nhi\0"), "{text:?}");
    server.finish().await;
}

#[tokio::test]
async fn stomp_1_0_headers_are_not_escaped() {
    let server = TestServer::start();
    // Hand-written 1.0 session (no accept-version): nothing is escaped, backslashes are literal.
    let mut raw = server.tcp_client().await;
    raw.write_raw(b"CONNECT\nlogin:a\n\n\0").await;
    let connected = String::from_utf8(raw.raw_frames(1).await.remove(0)).unwrap();
    assert!(
        connected.starts_with("CONNECTED\n") && connected.contains("version:1.0\n"),
        "{connected:?}"
    );
    // 1.0 SUBSCRIBE without id: the subscription id is the destination.
    raw.write_raw(b"SUBSCRIBE\ndestination:/topic/ten\nreceipt:s\n\n\0")
        .await;
    assert_eq!(raw.raw_frames(1).await[0], b"RECEIPT\nreceipt-id:s\n\n\0");
    raw.write_raw(b"SEND\ndestination:/topic/ten\nx-key:a:b\\c\nreceipt:p\n\nbody\0")
        .await;
    let frames = raw.raw_frames(2).await;
    let texts: Vec<String> = frames
        .into_iter()
        .map(|f| String::from_utf8(f).unwrap())
        .collect();
    let message = texts
        .iter()
        .find(|t| t.starts_with("MESSAGE\n"))
        .unwrap_or_else(|| panic!("no MESSAGE in {texts:?}"));
    assert!(message.contains("\nx-key:a:b\\c\n"), "{message:?}");
    assert!(
        message.contains("\nsubscription:/topic/ten\n"),
        "{message:?}"
    );
    assert!(
        message.contains("\ndestination:/topic/ten\n"),
        "{message:?}"
    );
    assert!(message.ends_with("\n\nbody\0"), "{message:?}");
    assert!(texts.iter().any(|t| t == "RECEIPT\nreceipt-id:p\n\n\0"));

    // A 1.2 subscriber of the same message sees the same value (escaped on its wire).
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/topic/ten", "s12").await;
    raw.write_raw(b"SEND\ndestination:/topic/ten\nx-key:a:b\\c\n\nagain\0")
        .await;
    let msg = sub.expect("MESSAGE").await;
    assert_eq!(msg.h("x-key"), "a:b\\c");
    assert_eq!(msg.body_str(), "again");
    server.finish().await;
}

#[tokio::test]
async fn topic_fan_out_to_20_subscribers_in_order() {
    const SUBS: usize = 20;
    const MSGS: usize = 200;
    let server = TestServer::start();
    let mut handles = Vec::new();
    let mut subs = Vec::new();
    for i in 0..SUBS {
        let mut c = if i % 2 == 0 {
            server.ws_connected(None).await
        } else {
            server.tcp_connected(None).await
        };
        c.subscribe("/topic/fan", &format!("s{i}")).await;
        subs.push(c);
    }
    for (i, mut c) in subs.into_iter().enumerate() {
        handles.push(tokio::spawn(async move {
            let frames = c.messages(MSGS).await;
            for (n, f) in frames.iter().enumerate() {
                assert_eq!(f.body_str(), format!("m-{n}"), "subscriber {i}");
                assert_eq!(f.h("subscription"), format!("s{i}"));
            }
            c.assert_quiet().await;
        }));
    }
    let mut publisher = server.ws_connected(None).await;
    for n in 0..MSGS {
        publisher.send("/topic/fan", format!("m-{n}")).await;
    }
    publisher.barrier().await;
    for h in handles {
        h.await.unwrap();
    }
    let stats = server.stats();
    assert_eq!(stats.messages_in, MSGS as u64);
    assert_eq!(stats.messages_out, (MSGS * SUBS) as u64);
    server.finish().await;
}

/// The rule of `src/broker/pattern.rs`: `*` matches within one segment (it crosses neither
/// `/` nor `.`), `**` matches anything, separators included.
#[tokio::test]
async fn wildcard_subscriptions() {
    let server = TestServer::start();
    let mut single = server.ws_connected(None).await;
    single.subscribe("/topic/chat.*", "single").await;
    let mut double = server.ws_connected(None).await;
    double.subscribe("/topic/**", "double").await;
    let mut exact = server.tcp_connected(None).await;
    exact.subscribe("/topic/chat", "exact").await;
    let mut middle = server.tcp_connected(None).await;
    middle.subscribe("/topic/*/news", "middle").await;

    let mut publisher = server.ws_connected(None).await;
    for dest in [
        "/topic/chat.room1",
        "/topic/chat.a.b",
        "/topic/chat",
        "/topic/x/y",
        "/topic/eu/news",
        "/queue/not-a-topic",
        "/other/chat.x",
    ] {
        publisher.send_sync(dest, &[], dest.as_bytes()).await;
    }

    let got = |frames: Vec<Frame>, id: &str| -> Vec<String> {
        for f in &frames {
            assert_eq!(f.command, "MESSAGE");
            assert_eq!(f.h("subscription"), id);
            assert_eq!(
                f.h("destination"),
                f.body_str(),
                "destination is the real one"
            );
        }
        bodies(&frames)
    };
    assert_eq!(
        got(single.barrier().await, "single"),
        vec!["/topic/chat.room1"]
    );
    assert_eq!(
        got(double.barrier().await, "double"),
        vec![
            "/topic/chat.room1",
            "/topic/chat.a.b",
            "/topic/chat",
            "/topic/x/y",
            "/topic/eu/news"
        ]
    );
    assert_eq!(got(exact.barrier().await, "exact"), vec!["/topic/chat"]);
    assert_eq!(
        got(middle.barrier().await, "middle"),
        vec!["/topic/eu/news"]
    );
    server.finish().await;
}

#[tokio::test]
async fn wildcard_send_is_refused() {
    let server = TestServer::start();
    let mut c = server.ws_connected(None).await;
    c.send("/topic/*", "x").await;
    let (error, code) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("wildcard"), "{error:?}");
    assert_eq!(code, Some(1002));
    server.finish().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery_and_topics_do_not_retain() {
    let server = TestServer::start();
    let mut publisher = server.ws_connected(None).await;
    // Nobody subscribed: a topic message is gone.
    publisher.send_sync("/topic/u", &[], b"lost").await;
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/topic/u", "s").await;
    sub.assert_quiet().await;

    publisher.send_sync("/topic/u", &[], b"one").await;
    assert_eq!(sub.expect("MESSAGE").await.body_str(), "one");
    sub.request("UNSUBSCRIBE", &[("id", "s")], b"").await;
    publisher.send_sync("/topic/u", &[], b"two").await;
    sub.assert_quiet().await;
    // Unsubscribing twice is an error.
    sub.frame("UNSUBSCRIBE", &[("id", "s")], "").await;
    let (error, _) = sub.expect_error_and_close().await;
    assert!(error.h("message").contains("no subscription"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn queue_round_robin_each_message_once() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe("/queue/work", "a").await;
    let mut b = server.tcp_connected(None).await;
    b.subscribe("/queue/work", "b").await;
    let mut publisher = server.ws_connected(None).await;
    for i in 0..100 {
        publisher.send("/queue/work", format!("{i}")).await;
    }
    publisher.barrier().await;
    let got_a = bodies(&a.barrier().await);
    let got_b = bodies(&b.barrier().await);
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both consumers get some"
    );
    let mut all: Vec<usize> = got_a
        .iter()
        .chain(got_b.iter())
        .map(|s| s.parse().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..100).collect::<Vec<_>>(),
        "each message exactly once"
    );
    // Round-robin with two always-ready consumers alternates.
    assert_eq!(got_a.len(), 50);
    assert_eq!(got_b.len(), 50);
    // Each consumer sees its share in publish order.
    for got in [&got_a, &got_b] {
        let nums: Vec<usize> = got.iter().map(|s| s.parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
    }
    server.finish().await;
}

#[tokio::test]
async fn queue_holds_messages_until_a_consumer_subscribes() {
    let server = TestServer::start();
    let mut publisher = server.tcp_connected(None).await;
    for i in 0..5 {
        publisher
            .send_sync("/queue/later", &[], format!("held-{i}").as_bytes())
            .await;
    }
    // Host publishes are held too.
    server
        .publish("/queue/later", &[("x-from", "host")], "held-5")
        .unwrap();
    let mut consumer = server.ws_connected(None).await;
    consumer.subscribe("/queue/later", "c").await;
    let msgs = consumer.messages(6).await;
    assert_eq!(
        bodies(&msgs),
        (0..6).map(|i| format!("held-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(msgs[5].h("x-from"), "host");
    assert!(msgs.iter().all(|m| m.header("redelivered").is_none()));
    consumer.assert_quiet().await;
    // Consumed: a second consumer gets nothing.
    let mut other = server.ws_connected(None).await;
    other.subscribe("/queue/later", "o").await;
    other.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn queue_depth_overflow_refuses_the_sender() {
    let server = TestServer::start_with({
        let mut c = config();
        c.broker.max_queue_depth = 3;
        c
    });
    let mut publisher = server.ws_connected(None).await;
    for i in 0..3 {
        publisher
            .send_sync("/queue/full", &[], format!("{i}").as_bytes())
            .await;
    }
    // The host API refuses without blocking.
    match server.publish("/queue/full", &[], "host") {
        Err(wsbroker::Error::Backpressure(msg)) => assert!(msg.contains("full"), "{msg}"),
        other => panic!("expected Backpressure, got {other:?}"),
    }
    publisher
        .frame(
            "SEND",
            &[("destination", "/queue/full"), ("receipt", "overflow")],
            "3",
        )
        .await;
    let (error, _) = publisher.expect_error_and_close().await;
    assert!(error.h("message").contains("full"), "{error:?}");
    assert_eq!(error.header("receipt-id"), Some("overflow"));
    // The three accepted messages are still there.
    let mut consumer = server.tcp_connected(None).await;
    consumer.subscribe("/queue/full", "c").await;
    assert_eq!(bodies(&consumer.messages(3).await), vec!["0", "1", "2"]);
    consumer.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn pubsub_over_tcp_and_across_transports() {
    let server = TestServer::start();
    let mut tcp_sub = server.tcp_connected(None).await;
    tcp_sub.subscribe("/topic/x", "t").await;
    let mut ws_sub = server.ws_connected(None).await;
    ws_sub.subscribe("/topic/x", "w").await;

    let mut ws_pub = server.ws_connected(None).await;
    ws_pub
        .send_sync("/topic/x", &[("content-type", "text/plain")], b"from ws")
        .await;
    let mut tcp_pub = server.tcp_connected(None).await;
    tcp_pub.send_sync("/topic/x", &[], b"from tcp").await;

    for (c, id) in [(&mut tcp_sub, "t"), (&mut ws_sub, "w")] {
        let m = c.messages(2).await;
        assert_eq!(bodies(&m), vec!["from ws", "from tcp"]);
        assert!(m.iter().all(|f| f.h("subscription") == id));
        assert_eq!(m[0].h("content-type"), "text/plain");
        c.assert_quiet().await;
    }

    // Binary bodies with NULs survive both ways (content-length framing).
    let body: Vec<u8> = (0..=255u8).chain([0, 0, 1]).collect();
    tcp_pub.send_sync("/topic/x", &[], &body).await;
    assert_eq!(tcp_sub.expect("MESSAGE").await.body, body);
    assert_eq!(ws_sub.expect("MESSAGE").await.body, body);
    server.finish().await;
}

#[tokio::test]
async fn stomp_frame_and_crlf_line_endings_are_accepted() {
    let server = TestServer::start();
    let mut c: Client = server.tcp_client().await;
    c.write_raw(b"STOMP\r\naccept-version:1.1,1.2\r\nhost:x\r\n\r\n\0")
        .await;
    let connected = c.expect("CONNECTED").await;
    assert_eq!(connected.h("version"), "1.2");
    c.version = common::Ver::V12;
    c.write_raw(b"SUBSCRIBE\r\nid:0\r\ndestination:/topic/crlf\r\nreceipt:r\r\n\r\n\0")
        .await;
    assert_eq!(c.expect("RECEIPT").await.h("receipt-id"), "r");
    c.write_raw(b"\n\nSEND\r\ndestination:/topic/crlf\r\n\r\nok\0\n\n")
        .await;
    let m = c.expect("MESSAGE").await;
    assert_eq!(m.body_str(), "ok");
    server.finish().await;
}

#[tokio::test]
async fn frames_split_and_coalesced_on_both_transports() {
    let server = TestServer::start();
    let mut sub = server.tcp_connected(None).await;
    sub.subscribe("/topic/split", "s").await;

    // WebSocket: two frames in one message, then one frame across three messages.
    let mut ws = server.ws_connected(None).await;
    ws.write_raw(b"SEND\ndestination:/topic/split\n\none\0SEND\ndestination:/topic/split\n\ntwo\0")
        .await;
    ws.write_raw(b"SEND\ndestina").await;
    ws.write_raw(b"tion:/topic/split\n\nth").await;
    ws.write_raw(b"ree\0").await;
    // TCP: a frame byte by byte, then two frames in one write.
    let mut tcp = server.tcp_connected(None).await;
    let frame = b"SEND\ndestination:/topic/split\ncontent-length:4\n\nfour\0";
    for b in frame {
        tcp.write_raw(&[*b]).await;
    }
    tcp.write_raw(
        b"SEND\ndestination:/topic/split\n\nfive\0\nSEND\ndestination:/topic/split\n\nsix\0",
    )
    .await;
    ws.barrier().await;
    tcp.barrier().await;
    let got = bodies(&sub.barrier().await);
    // Per-connection order holds; the two publishers interleave arbitrarily.
    let ws_part: Vec<&String> = got
        .iter()
        .filter(|b| ["one", "two", "three"].contains(&b.as_str()))
        .collect();
    let tcp_part: Vec<&String> = got
        .iter()
        .filter(|b| ["four", "five", "six"].contains(&b.as_str()))
        .collect();
    assert_eq!(ws_part, ["one", "two", "three"]);
    assert_eq!(tcp_part, ["four", "five", "six"]);
    assert_eq!(got.len(), 6);
    server.finish().await;
}

#[tokio::test]
async fn large_messages_cross_both_transports() {
    let server = TestServer::start();
    let mut ws_sub = server.ws_connected(None).await;
    ws_sub.subscribe("/queue/big", "w").await;
    let mut tcp_sub = server.tcp_connected(None).await;
    tcp_sub.subscribe("/topic/big", "t").await;
    let body: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut p = server.tcp_connected(None).await;
    p.send_sync("/queue/big", &[], &body).await;
    let mut p2 = server.ws_connected(None).await;
    p2.send_sync("/topic/big", &[], &body).await;
    let m = ws_sub.expect("MESSAGE").await;
    assert_eq!(m.h("content-length"), body.len().to_string());
    assert!(m.body == body);
    let m = tcp_sub.expect("MESSAGE").await;
    assert!(m.body == body);
    server.finish().await;
}

#[tokio::test]
async fn disconnect_receipt_then_normal_close() {
    let server = TestServer::start();
    let mut c = server.ws_connected(None).await;
    c.subscribe("/topic/d", "d").await;
    c.frame("DISCONNECT", &[("receipt", "bye")], "").await;
    assert_eq!(c.expect("RECEIPT").await.h("receipt-id"), "bye");
    let (frames, code) = c.until_closed().await;
    assert!(frames.is_empty(), "{frames:?}");
    assert_eq!(code, Some(1000));
    server
        .wait_stats("session gone", |s| s.sessions == 0 && s.subscriptions == 0)
        .await;
    let mut t = server.tcp_connected(None).await;
    t.frame("DISCONNECT", &[("receipt", "bye")], "").await;
    assert_eq!(t.expect("RECEIPT").await.h("receipt-id"), "bye");
    let (frames, _) = t.until_closed().await;
    assert!(frames.is_empty(), "{frames:?}");
    server.finish().await;
}

#[tokio::test]
async fn subscription_limits_and_queue_wildcards() {
    let server = TestServer::start_with({
        let mut c = config();
        c.broker.max_subscriptions_per_session = 2;
        c
    });
    let mut c = server.ws_connected(None).await;
    c.subscribe("/topic/1", "1").await;
    c.subscribe("/topic/2", "2").await;
    c.frame("SUBSCRIBE", &[("destination", "/topic/3"), ("id", "3")], "")
        .await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(
        error.h("message").contains("too many subscriptions"),
        "{error:?}"
    );

    let mut q = server.ws_connected(None).await;
    q.frame("SUBSCRIBE", &[("destination", "/queue/*"), ("id", "q")], "")
        .await;
    let (error, _) = q.expect_error_and_close().await;
    assert!(error.h("message").contains("wildcards"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn client_ack_on_a_topic_drops_beyond_prefetch() {
    let server = TestServer::start();
    let mut sub = server.ws_connected(None).await;
    sub.subscribe_with(
        "/topic/ackd",
        "s",
        &[("ack", "client"), ("prefetch-count", "2")],
    )
    .await;
    let mut p = server.ws_connected(None).await;
    for i in 1..=5 {
        p.send_sync("/topic/ackd", &[], format!("{i}").as_bytes())
            .await;
    }
    let got = sub.barrier().await;
    assert_eq!(bodies(&got), vec!["1", "2"]);
    assert_eq!(server.stats().dropped, 3);
    sub.request("ACK", &[("id", got[1].h("ack"))], b"").await;
    p.send_sync("/topic/ackd", &[], b"6").await;
    assert_eq!(bodies(&sub.barrier().await), vec!["6"]);
    server.finish().await;
}

#[tokio::test]
async fn unsubscribe_returns_unacked_queue_messages() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe_with("/queue/unsub", "a", &[("ack", "client-individual")])
        .await;
    let mut p = server.tcp_connected(None).await;
    p.send_sync("/queue/unsub", &[], b"x").await;
    let m = a.expect("MESSAGE").await;
    let mut b = server.ws_connected(None).await;
    b.subscribe("/queue/unsub", "b").await;
    b.assert_quiet().await;
    a.request("UNSUBSCRIBE", &[("id", "a")], b"").await;
    let again = b.expect("MESSAGE").await;
    assert_eq!(again.body_str(), "x");
    assert_eq!(again.header("redelivered"), Some("true"));
    // The old ack id is gone with the subscription.
    a.frame("ACK", &[("id", m.h("ack"))], "").await;
    let (error, _) = a.expect_error_and_close().await;
    assert!(error.h("message").contains("unknown ack id"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn two_subscriptions_to_one_topic_get_two_copies() {
    let server = TestServer::start();
    let mut c = server.ws_connected(None).await;
    // Ids with characters that need escaping in 1.2.
    c.subscribe("/topic/twice", "id:1").await;
    c.subscribe("/topic/t*", "id\\2").await;
    c.send_sync("/topic/twice", &[], b"x").await;
    let mut subs: Vec<String> = c
        .messages(2)
        .await
        .iter()
        .map(|m| m.h("subscription").to_string())
        .collect();
    subs.sort();
    assert_eq!(subs, vec!["id:1", "id\\2"]);
    c.request("UNSUBSCRIBE", &[("id", "id:1")], b"").await;
    c.send_sync("/topic/twice", &[], b"y").await;
    let m = c.expect("MESSAGE").await;
    assert_eq!(m.h("subscription"), "id\\2");
    c.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn host_callback_may_publish() {
    let server = TestServer::start();
    let publisher = server.publisher();
    server
        .subscribe("/topic/in", move |m| {
            publisher
                .publish(
                    "/topic/out",
                    &[("x-origin", m.destination())],
                    m.body().clone(),
                )
                .unwrap();
        })
        .unwrap();
    let mut c = server.tcp_connected(None).await;
    c.subscribe("/topic/out", "o").await;
    c.send_sync("/topic/in", &[], b"relay").await;
    let m = c.expect("MESSAGE").await;
    assert_eq!(m.body_str(), "relay");
    assert_eq!(m.h("x-origin"), "/topic/in");
    server.finish().await;
}
