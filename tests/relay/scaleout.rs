//! Relay mode against a real RabbitMQ: two wsbroker servers share its destinations.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{TestServer, WAIT};
use crate::support::{rabbitmq, relay_config, unique};
use wsbroker::RelayConfig;
use wsbroker::{Event, EventQueueConfig};

fn two_servers(broker: &str) -> (TestServer, TestServer) {
    (
        TestServer::start_with(relay_config(broker, false)),
        TestServer::start_with(relay_config(broker, false)),
    )
}

async fn stop_both(a: TestServer, b: TestServer) {
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// Waits (bounded) until the server's system connection is up.
async fn wait_available(server: &TestServer) {
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while server.server.broker_available() != Some(true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "system connection not up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_topic_message_sent_on_a_reaches_a_subscriber_on_b() {
    let Some(broker) = rabbitmq() else { return };
    let (a, b) = two_servers(&broker);
    let topic = format!("/topic/{}", unique("scale"));
    let mut sub = b.ws_connected(None).await;
    sub.subscribe(&topic, "s1").await; // the RECEIPT comes from RabbitMQ
    let mut publisher = a.ws_connected(None).await;
    publisher
        .send_sync(&topic, &[("content-type", "text/plain")], b"hello from A")
        .await;
    let message = sub.expect("MESSAGE").await;
    assert_eq!(message.body_str(), "hello from A");
    assert_eq!(message.h("destination"), topic);
    assert_eq!(message.h("subscription"), "s1");
    sub.disconnect().await;
    publisher.disconnect().await;
    stop_both(a, b).await;
}

#[tokio::test]
async fn a_queue_message_is_consumed_exactly_once_across_servers() {
    let Some(broker) = rabbitmq() else { return };
    let (a, b) = two_servers(&broker);
    let queue = format!("/queue/{}", unique("once"));
    let mut on_a = a.ws_connected(None).await;
    let mut on_b = b.tcp_connected(None).await;
    on_a.subscribe(&queue, "qa").await;
    on_b.subscribe(&queue, "qb").await;
    let mut sender = a.ws_connected(None).await;
    let sent: BTreeSet<String> = (0..20).map(|i| format!("m{i}")).collect();
    for body in &sent {
        sender.send_sync(&queue, &[], body.as_bytes()).await;
    }
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < sent.len() {
        assert!(tokio::time::Instant::now() < deadline, "got {seen:?}");
        for client in [&mut on_a, &mut on_b] {
            if let Some(common::Event::Frame(f)) =
                client.event_within(Duration::from_millis(20)).await
            {
                assert_eq!(f.command, "MESSAGE", "{f:?}");
                seen.push(f.body_str().to_string());
            }
        }
    }
    // No duplicates and nothing more: both consumers prove they are quiet.
    let more_a = on_a.barrier().await;
    let more_b = on_b.barrier().await;
    assert!(
        more_a.is_empty() && more_b.is_empty(),
        "{more_a:?} {more_b:?}"
    );
    let unique_seen: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), sent.len(), "duplicates: {seen:?}");
    assert_eq!(unique_seen, sent);
    on_a.disconnect().await;
    on_b.disconnect().await;
    sender.disconnect().await;
    stop_both(a, b).await;
}

#[tokio::test]
async fn a_host_publish_on_b_reaches_a_client_on_a() {
    let Some(broker) = rabbitmq() else { return };
    let (a, b) = two_servers(&broker);
    wait_available(&b).await;
    let topic = format!("/topic/{}", unique("host"));
    let mut client = a.ws_connected(None).await;
    client.subscribe(&topic, "s").await;
    let delivered = b
        .server
        .publish(&topic, &[("x-origin", "host-b")], "from the host of B")
        .unwrap();
    assert_eq!(delivered, 0, "relayed publishes count no local subscribers");
    let message = client.expect("MESSAGE").await;
    assert_eq!(message.body_str(), "from the host of B");
    assert_eq!(message.h("x-origin"), "host-b");
    client.disconnect().await;
    stop_both(a, b).await;
}

#[tokio::test]
async fn a_host_subscription_on_b_sees_a_client_send_on_a() {
    let Some(broker) = rabbitmq() else { return };
    let (a, b) = two_servers(&broker);
    wait_available(&b).await;
    let topic = format!("/topic/{}", unique("hostsub"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    b.server
        .subscribe(&topic, move |m| {
            let _ = tx.send((m.destination().to_string(), m.body().clone()));
        })
        .unwrap();
    let mut client = a.ws_connected(None).await;
    // The system connection subscribes asynchronously: send until the first one arrives.
    let deadline = tokio::time::Instant::now() + WAIT;
    let (destination, body) = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "host subscription saw nothing"
        );
        client.send_sync(&topic, &[], b"to the host").await;
        if let Ok(Some(got)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            break got;
        }
    };
    assert_eq!(destination, topic);
    assert_eq!(&body[..], b"to the host");
    client.disconnect().await;
    stop_both(a, b).await;
}

#[tokio::test]
async fn acks_and_transactions_work_end_to_end() {
    let Some(broker) = rabbitmq() else { return };
    let server = TestServer::start_with(relay_config(&broker, false));
    let queue = format!("/queue/{}", unique("ack"));
    let mut consumer = server.ws_connected(None).await;
    consumer
        .subscribe_with(&queue, "c", &[("ack", "client-individual")])
        .await;
    let mut producer = server.tcp_connected(None).await;
    // A transaction: nothing arrives before COMMIT.
    producer
        .request("BEGIN", &[("transaction", "t1")], b"")
        .await;
    producer
        .frame(
            "SEND",
            &[("destination", &queue), ("transaction", "t1")],
            "in tx",
        )
        .await;
    consumer.assert_quiet().await;
    producer
        .request("COMMIT", &[("transaction", "t1")], b"")
        .await;
    let message = consumer.expect("MESSAGE").await;
    assert_eq!(message.body_str(), "in tx");
    // Not acknowledged: when the consumer leaves, the broker gives the message to the next.
    consumer.disconnect().await;
    let mut second = server.ws_connected(None).await;
    second
        .subscribe_with(&queue, "c2", &[("ack", "client-individual")])
        .await;
    let again = second.expect("MESSAGE").await;
    assert_eq!(again.body_str(), "in tx");
    second.request("ACK", &[("id", again.h("ack"))], b"").await;
    // A NACK reaches the broker too (what it does then is the broker's policy: RabbitMQ
    // requeues, ActiveMQ moves the message to its dead-letter queue).
    producer.send_sync(&queue, &[], b"refused").await;
    let refused = second.expect("MESSAGE").await;
    assert_eq!(refused.body_str(), "refused");
    second
        .request("NACK", &[("id", refused.h("ack"))], b"")
        .await;
    second.disconnect().await;
    producer.disconnect().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn local_destinations_stay_local() {
    let Some(broker) = rabbitmq() else { return };
    let server = TestServer::start_with(relay_config(&broker, false));
    server.server.handle_app("/app/echo", |m, p| {
        p.reply("/user/queue/echo", &[], m.body.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut client = server.ws_connected(Some("alice")).await;
    client.subscribe("/user/queue/echo", "u").await;
    client.send_sync("/app/echo", &[], b"ping").await;
    let message = client.expect("MESSAGE").await;
    assert_eq!(message.body_str(), "ping");
    assert_eq!(message.h("destination"), "/user/queue/echo");
    // A local subscription and a relayed one side by side; UNSUBSCRIBE finds each.
    let topic = format!("/topic/{}", unique("mixed"));
    client.subscribe(&topic, "r").await;
    client.request("UNSUBSCRIBE", &[("id", "r")], b"").await;
    client.request("UNSUBSCRIBE", &[("id", "u")], b"").await;
    client.send_sync(&topic, &[], b"nobody listens").await;
    client.assert_quiet().await;
    client.disconnect().await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_refuses_clients_clearly_and_tells_the_host() {
    // No RabbitMQ needed: nothing listens on this port.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = unused.local_addr().unwrap().to_string();
    drop(unused);
    let config = {
        let mut c = common::config();
        c.relay = Some({
            let mut c = RelayConfig::new(&address);
            c.connect_timeout = Duration::from_secs(2);
            c
        });
        c
    };
    let server = wsbroker::Server::new(config).unwrap();
    server.enable_events(EventQueueConfig::default()).unwrap();
    server.start().unwrap();
    let server = TestServer::from_server(server);
    let mut client = server.ws_client().await;
    client
        .frame("CONNECT", &[("accept-version", "1.2"), ("host", "h")], "")
        .await;
    let (error, code) = client.expect_error_and_close().await;
    assert!(
        error.h("message").starts_with("message broker unavailable"),
        "{error:?}"
    );
    assert!(error.body_str().contains(&address) || error.h("message").contains(&address));
    assert_eq!(code, Some(1013));
    // The system connection reported it too.
    let deadline = tokio::time::Instant::now() + WAIT;
    let reason = 'found: loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no BrokerUnavailable event"
        );
        let mut events = Vec::new();
        server
            .server
            .poll_events(&mut events, 16, Duration::ZERO)
            .unwrap();
        for event in events {
            if let Event::BrokerUnavailable { reason } = event {
                break 'found reason;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(reason.contains(&address), "{reason}");
    assert_eq!(server.server.broker_available(), Some(false));
    assert!(server.server.publish("/topic/x", &[], "x").is_err());
    server.stop().await.unwrap();
}
