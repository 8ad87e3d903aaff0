//! Raw endpoints with built-in behaviours (broadcast, echo), driven by real WebSocket clients.

use crate::common;

use std::time::Duration;

use crate::common::{TestServer, config};
use crate::support::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wsbroker::{RawBehaviour, RawEndpointOptions, Server};

fn server_with(endpoints: &[(&str, RawBehaviour)]) -> TestServer {
    let server = Server::new(config()).unwrap();
    for (path, behaviour) in endpoints {
        let options = RawEndpointOptions {
            behaviour: *behaviour,
            ..Default::default()
        };
        server.add_raw_endpoint(path, options).unwrap();
    }
    server.start().unwrap();
    TestServer::from_server(server)
}

#[tokio::test]
async fn broadcast_reaches_every_other_client_with_the_same_opcode() {
    let server = server_with(&[("/b", RawBehaviour::Broadcast)]);
    let mut a = connect(server.ws, "/b").await;
    let mut b = connect(server.ws, "/b").await;
    let mut c = connect(server.ws, "/b").await;

    send_text(&mut a, "hello").await;
    assert_eq!(next_data(&mut b).await, WsMessage::text("hello"));
    assert_eq!(next_data(&mut c).await, WsMessage::text("hello"));

    send_binary(&mut b, &[0, 1, 2, 255]).await;
    assert_eq!(
        next_data(&mut a).await,
        WsMessage::binary(vec![0, 1, 2, 255])
    );
    assert_eq!(
        next_data(&mut c).await,
        WsMessage::binary(vec![0, 1, 2, 255])
    );
    // b's own message did not come back: the next thing b gets is c's.
    send_text(&mut c, "from c").await;
    assert_eq!(next_data(&mut b).await, WsMessage::text("from c"));
    // ... and a got neither its own "hello" back: its next message after b's is c's.
    assert_eq!(next_data(&mut a).await, WsMessage::text("from c"));

    server
        .wait_stats("3 messages in, 6 out", |s| {
            s.messages_in == 3 && s.messages_out == 6
        })
        .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn broadcast_is_per_endpoint_and_skips_departed_clients() {
    let server = server_with(&[
        ("/one", RawBehaviour::Broadcast),
        ("/two", RawBehaviour::Broadcast),
    ]);
    let mut a = connect(server.ws, "/one").await;
    let mut b = connect(server.ws, "/one").await;
    let mut other = connect(server.ws, "/two").await;
    let mut gone = connect(server.ws, "/one").await;
    gone.close(None).await.unwrap();
    let (_, close) = read_until_close(&mut gone).await;
    assert_eq!(close.map(|c| c.0), Some(1000));
    server
        .wait_stats("the departed client is gone", |s| s.connections == 3)
        .await;

    send_text(&mut a, "on one").await;
    assert_eq!(next_data(&mut b).await, WsMessage::text("on one"));
    send_text(&mut other, "on two").await;
    send_text(&mut b, "again on one").await;
    assert_eq!(next_data(&mut a).await, WsMessage::text("again on one"));
    server
        .wait_stats("3 messages in", |s| s.messages_in == 3)
        .await;
    server
        .wait_stats("nothing crossed endpoints", |s| s.messages_out == 2)
        .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn echo_returns_each_message_to_its_sender() {
    let server = server_with(&[("/echo", RawBehaviour::Echo)]);
    let mut a = connect(server.ws, "/echo").await;
    let mut b = connect(server.ws, "/echo").await;
    send_text(&mut a, "ping à").await;
    send_binary(&mut a, b"\x00bin").await;
    let big = vec![7u8; 200_000];
    send_binary(&mut a, &big).await;
    send_text(&mut b, "b's").await;
    assert_eq!(next_data(&mut a).await, WsMessage::text("ping à"));
    assert_eq!(
        next_data(&mut a).await,
        WsMessage::binary(b"\x00bin".to_vec())
    );
    assert_eq!(next_data(&mut a).await, WsMessage::binary(big));
    assert_eq!(next_data(&mut b).await, WsMessage::text("b's"));
    server.stop().await.unwrap();
}

/// Every message the endpoint accepts can be delivered: 8 MiB and 16 MiB echoes, although
/// they are as big as (and bigger than) the outbound queue's 8 MiB byte cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoes_of_the_largest_accepted_size_are_delivered() {
    let mut cfg = config();
    cfg.frame_limits.max_frame_size = 20 * 1024 * 1024;
    assert_eq!(cfg.broker.max_outbound_bytes, 8 * 1024 * 1024);
    let server = Server::new(cfg).unwrap();
    let options = RawEndpointOptions {
        behaviour: RawBehaviour::Echo,
        ..Default::default()
    };
    server.add_raw_endpoint("/echo", options).unwrap();
    server.start().unwrap();
    let server = TestServer::from_server(server);
    let mut a = connect(server.ws, "/echo").await;
    for size in [8 * 1024 * 1024, 16 * 1024 * 1024] {
        let body: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        send_binary(&mut a, &body).await;
        assert_eq!(
            next_data(&mut a).await,
            WsMessage::binary(body),
            "{size} bytes"
        );
    }
    assert_eq!(server.stats().slow_consumer_disconnects, 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stomp_endpoint_is_unaffected() {
    let server = server_with(&[("/echo", RawBehaviour::Echo)]);
    let mut raw = connect(server.ws, "/echo").await;
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/topic/t", "s1").await;
    let mut publisher = server.ws_connected(None).await;
    publisher.send("/topic/t", b"stomp body").await;
    let message = sub.expect("MESSAGE").await;
    assert_eq!(message.body, b"stomp body");
    send_text(&mut raw, "raw").await;
    assert_eq!(next_data(&mut raw).await, WsMessage::text("raw"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn protocol_errors_and_limits_close_with_the_right_code() {
    let server = Server::new(config()).unwrap();
    let options = RawEndpointOptions {
        behaviour: RawBehaviour::Echo,
        max_message_size: Some(16),
        ..Default::default()
    };
    server.add_raw_endpoint("/small", options).unwrap();
    server.start().unwrap();
    let server = TestServer::from_server(server);
    let mut ws = connect(server.ws, "/small").await;
    send_text(&mut ws, "fits").await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text("fits"));
    send_binary(&mut ws, &[1; 17]).await;
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close.map(|c| c.0), Some(1009), "message too big");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_raw_clients_with_going_away() {
    let server = server_with(&[("/b", RawBehaviour::Broadcast)]);
    let mut a = connect(server.ws, "/b").await;
    let stopping = server.stop();
    let ((_, close), stopped) = tokio::join!(read_until_close(&mut a), stopping);
    stopped.unwrap();
    assert_eq!(close, Some((1001, "server shutting down".to_owned())));
}

/// A started server with an echo endpoint at `/e` and the given timers.
fn echo_server_with_timers(ping: Duration, idle: Duration) -> TestServer {
    let server = Server::new({
        let mut c = config();
        c.ws_ping_interval = ping;
        c.idle_timeout = idle;
        c
    })
    .unwrap();
    let options = RawEndpointOptions {
        behaviour: RawBehaviour::Echo,
        ..Default::default()
    };
    server.add_raw_endpoint("/e", options).unwrap();
    server.start().unwrap();
    TestServer::from_server(server)
}

#[tokio::test]
async fn quiet_clients_are_pinged() {
    let server = echo_server_with_timers(Duration::from_millis(50), Duration::ZERO);
    let mut ws = connect(server.ws, "/e").await;
    let first = tokio::time::timeout(common::WAIT, ws.next())
        .await
        .expect("a frame in time")
        .expect("open")
        .expect("no error");
    assert!(matches!(first, WsMessage::Ping(_)), "{first:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn silent_clients_are_closed_by_the_idle_timeout() {
    let server = echo_server_with_timers(Duration::ZERO, Duration::from_millis(300));
    let mut ws = connect(server.ws, "/e").await;
    send_text(&mut ws, "one").await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text("one"));
    let (_, close) = read_until_close(&mut ws).await;
    assert_eq!(close, Some((1001, "idle timeout".to_owned())));
    server.stop().await.unwrap();
}
