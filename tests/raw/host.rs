//! Host-driven raw endpoints: events, topics, publish/send, user data, buffered bytes, closes,
//! stale ids, slow consumers, handshake subprotocols.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wsbroker::SlowConsumerPolicy;
use wsbroker::{Error, RawBehaviour, RawEndpointOptions, Server, ServerConfig};
use wsbroker::{Event, EventCallback, EventQueueConfig};

use crate::common::{TestServer, WAIT, config};
use crate::support::*;

/// A started server with polled events and a host-driven endpoint at `/raw`.
fn host_server(config: ServerConfig, options: RawEndpointOptions) -> (TestServer, Events) {
    let server = Server::new(config).unwrap();
    server.enable_events(EventQueueConfig::default()).unwrap();
    server.add_raw_endpoint("/raw", options).unwrap();
    server.start().unwrap();
    let server = TestServer::from_server(server);
    let events = Events::new(server.server.clone());
    (server, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_topics_publish_and_send() {
    let (server, mut events) = host_server(config(), RawEndpointOptions::default());
    let mut a = connect(server.ws, "/raw?room=1&x").await;
    let open_a = events.opened().await;
    assert_eq!(&*open_a.endpoint, "/raw");
    assert_eq!(open_a.query.as_deref(), Some("room=1&x"));
    assert!(open_a.remote_addr.is_some());
    assert!(open_a.headers.iter().any(|(n, _)| n == "sec-websocket-key"));
    let mut b = connect(server.ws, "/raw").await;
    let open_b = events.opened().await;
    assert_ne!(open_a.conn, open_b.conn);
    assert_eq!(open_b.query, None);

    // Client messages reach the host, text and binary told apart.
    send_text(&mut a, "hi from a").await;
    send_binary(&mut a, &[9, 8, 7]).await;
    let m = events.message_of(open_a.conn).await;
    assert_eq!((&m.data[..], m.binary), (&b"hi from a"[..], false));
    let m = events.message_of(open_a.conn).await;
    assert_eq!((&m.data[..], m.binary), (&[9u8, 8, 7][..], true));

    // Topics: exact names; subscribing twice is a no-op.
    assert!(server.raw_subscribe(open_a.conn, "room/1").unwrap());
    assert!(!server.raw_subscribe(open_a.conn, "room/1").unwrap());
    assert!(server.raw_subscribe(open_b.conn, "room/1").unwrap());
    assert!(server.raw_subscribe(open_b.conn, "room/2").unwrap());
    assert!(server.raw_is_subscribed(open_b.conn, "room/2").unwrap());
    assert_eq!(server.raw_publish("room/1", b"to both", false).unwrap(), 2);
    assert_eq!(server.raw_publish("room/2", &[1, 2], true).unwrap(), 1);
    assert_eq!(
        server.raw_publish("room", b"prefix only", false).unwrap(),
        0
    );
    assert_eq!(next_data(&mut a).await, WsMessage::text("to both"));
    assert_eq!(next_data(&mut b).await, WsMessage::text("to both"));
    assert_eq!(next_data(&mut b).await, WsMessage::binary(vec![1, 2]));

    assert!(server.raw_unsubscribe(open_b.conn, "room/1").unwrap());
    assert!(!server.raw_unsubscribe(open_b.conn, "room/1").unwrap());
    assert_eq!(server.raw_publish("room/1", b"only a", false).unwrap(), 1);
    assert_eq!(next_data(&mut a).await, WsMessage::text("only a"));

    // One connection.
    server.raw_send(open_b.conn, b"direct", false).unwrap();
    server.raw_send(open_b.conn, b"\xff\x00", true).unwrap();
    assert_eq!(next_data(&mut b).await, WsMessage::text("direct"));
    assert_eq!(next_data(&mut b).await, WsMessage::binary(vec![0xff, 0]));
    assert!(
        matches!(
            server.raw_send(open_b.conn, b"\xff", false),
            Err(Error::InvalidUtf8(_))
        ),
        "text must be UTF-8"
    );
    assert!(matches!(
        server.raw_publish("room/1", b"\xc3", false),
        Err(Error::InvalidUtf8(_))
    ));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_data_closes_and_stale_ids() {
    let (server, mut events) = host_server(config(), RawEndpointOptions::default());
    let mut a = connect(server.ws, "/raw").await;
    let a_id = events.opened().await.conn;
    let mut b = connect(server.ws, "/raw").await;
    let b_id = events.opened().await.conn;
    let c = connect(server.ws, "/raw").await;
    let c_id = events.opened().await.conn;

    assert_eq!(server.raw_user_data(a_id).unwrap(), 0);
    server.raw_set_user_data(a_id, u64::MAX - 1).unwrap();
    server.raw_set_user_data(b_id, 77).unwrap();
    assert_eq!(server.raw_user_data(a_id).unwrap(), u64::MAX - 1);
    assert_eq!(server.raw_user_data(b_id).unwrap(), 77);
    assert_eq!(server.raw_buffered_bytes(a_id).unwrap(), 0);

    // The host closes a: what was queued first is delivered, then the close.
    server.raw_send(a_id, b"last words", false).unwrap();
    assert!(matches!(
        server.raw_close(a_id, 1005, ""),
        Err(Error::InvalidArgument(_))
    ));
    server.raw_close(a_id, 4001, "kicked").unwrap();
    let (data, close) = read_until_close(&mut a).await;
    assert_eq!(data, [WsMessage::text("last words")]);
    assert_eq!(close, Some((4001, "kicked".to_owned())));
    let closed = events.closed(a_id).await;
    assert_eq!((closed.code, closed.reason.as_str()), (4001, "kicked"));

    // The client closes b with its own code.
    b.close(Some(CloseFrame {
        code: CloseCode::from(4100),
        reason: "client bye".into(),
    }))
    .await
    .unwrap();
    let closed = events.closed(b_id).await;
    assert_eq!((closed.code, closed.reason.as_str()), (4100, "client bye"));

    // c drops its TCP connection without a close frame: 1006.
    drop(c);
    let closed = events.closed(c_id).await;
    assert_eq!(closed.code, 1006);

    // Every id is stale now, and ids are not reused.
    for id in [a_id, b_id, c_id] {
        assert!(matches!(
            server.raw_send(id, b"x", false),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            server.raw_subscribe(id, "t"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            server.raw_unsubscribe(id, "t"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            server.raw_close(id, 1000, ""),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(server.raw_user_data(id), Err(Error::NotFound(_))));
        assert!(matches!(
            server.raw_set_user_data(id, 1),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            server.raw_buffered_bytes(id),
            Err(Error::NotFound(_))
        ));
    }
    let _d = connect(server.ws, "/raw").await;
    let d_id = events.opened().await.conn;
    assert!(d_id > c_id, "ids grow: {d_id} after {c_id}");
    assert!(matches!(
        server.raw_user_data(u64::MAX),
        Err(Error::NotFound(_))
    ));
    server.stop().await.unwrap();
}

/// A hand-written WebSocket upgrade request for `path`; `extra_headers` are whole header lines
/// (each ending in CRLF).
fn upgrade_request(path: &str, extra_headers: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {extra_headers}\r\n"
    )
}

/// Reads an HTTP response head byte by byte, so that nothing after it is consumed.
async fn read_response_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(WAIT, stream.read_exact(&mut byte))
            .await
            .expect("response in time")
            .unwrap();
        head.push(byte[0]);
    }
    head
}

/// A client that never reads, with a small receive buffer, on `/raw` (its messages are not
/// read back; the handshake response is read by hand).
async fn non_reading_client(addr: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(upgrade_request("/raw", "").as_bytes())
        .await
        .unwrap();
    let head = read_response_head(&mut stream).await;
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

fn small_queue_config() -> ServerConfig {
    {
        let mut c = config();
        c.broker.max_outbound_messages = 16;
        c.broker.max_outbound_bytes = 64 * 1024;
        c.broker.slow_consumer_timeout = Duration::from_millis(300);
        c
    }
}

/// Sends 8 KiB messages until one is refused; returns how many were taken.
fn send_until_refused(server: &Server, conn: u64) -> usize {
    let chunk = vec![b'x'; 8192];
    for sent in 0..100_000 {
        match server.raw_send(conn, &chunk, true) {
            Ok(()) => {}
            Err(Error::Backpressure(_)) => return sent,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    panic!("the queue never filled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_by_default() {
    let (server, mut events) = host_server(small_queue_config(), RawEndpointOptions::default());
    let _stream = non_reading_client(server.ws).await;
    let id = events.opened().await.conn;
    // Flow control first: while its queue is congested, sends are refused, not queued...
    send_until_refused(&server, id);
    assert!(server.stats().publishes_refused >= 1);
    // ... and once it has not moved for the slow-consumer timeout, a send closes it (the
    // kernel's socket buffers may take a little more meanwhile: keep offering).
    let deadline = std::time::Instant::now() + WAIT;
    while server.stats().slow_consumer_disconnects == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never closed as stuck"
        );
        if server.raw_send(id, &[b'z'; 8192], true).is_err() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let closed = events.closed(id).await;
    assert_eq!(closed.code, 1008);
    assert!(closed.reason.contains("slow consumer"), "{}", closed.reason);
    server
        .wait_stats("one slow consumer", |s| s.slow_consumer_disconnects == 1)
        .await;
    server.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_policies_keep_the_connection_and_bound_buffered_bytes() {
    for policy in [
        SlowConsumerPolicy::DropNewest,
        SlowConsumerPolicy::DropOldest,
    ] {
        let options = RawEndpointOptions {
            slow_consumer_policy: Some(policy),
            ..Default::default()
        };
        let (server, mut events) = host_server(small_queue_config(), options);
        let _stream = non_reading_client(server.ws).await;
        let id = events.opened().await.conn;
        let chunk = vec![b'y'; 8192];
        let mut sent = 0;
        let buffered = loop {
            if policy == SlowConsumerPolicy::DropNewest {
                sent += send_until_refused(&server, id);
            } else {
                // Drop-oldest always takes the newest: send until something was dropped.
                let dropped = server.stats().dropped;
                while server.stats().dropped == dropped {
                    server.raw_send(id, &chunk, true).unwrap();
                    sent += 1;
                    assert!(sent < 100_000, "nothing was ever dropped");
                }
            }
            // The queue was full a moment ago; it stays so once the socket's kernel buffers
            // are full too (the client never reads), so fill again until it is seen so.
            let buffered = server.raw_buffered_bytes(id).unwrap();
            if buffered > 0 {
                break buffered;
            }
            assert!(sent < 100_000, "{policy:?}: the queue never stayed full");
        };
        assert!(buffered <= 64 * 1024, "{policy:?}: bounded, got {buffered}");
        assert!(server.stats().dropped > 0);
        assert_eq!(server.stats().slow_consumer_disconnects, 0);
        // Still open: the host can still reach it.
        assert_eq!(server.raw_user_data(id).unwrap(), 0);
        server.finish().await;
    }
}

/// The response head of a hand-written upgrade request for `path` offering `protocols`.
async fn handshake_head(addr: std::net::SocketAddr, path: &str, protocols: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = upgrade_request(path, &format!("Sec-WebSocket-Protocol: {protocols}\r\n"));
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_response_head(&mut stream).await;
    String::from_utf8(head).unwrap().to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocols_are_per_endpoint() {
    let server = Server::new(config()).unwrap();
    let options = RawEndpointOptions {
        behaviour: RawBehaviour::Echo,
        ..Default::default()
    };
    server.add_raw_endpoint("/plain", options).unwrap();
    let options = RawEndpointOptions {
        behaviour: RawBehaviour::Echo,
        subprotocols: vec!["chat.v2".into(), "chat.v1".into()],
        ..Default::default()
    };
    server.add_raw_endpoint("/chat", options).unwrap();
    server.start().unwrap();
    let server = TestServer::from_server(server);

    // A STOMP client that lands on a raw endpoint is not told it speaks STOMP.
    let head = handshake_head(server.ws, "/plain", "v12.stomp, v11.stomp").await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    // The endpoint's own protocols, in its preference order.
    let head = handshake_head(server.ws, "/chat", "chat.v1, chat.v2").await;
    assert!(
        head.contains("sec-websocket-protocol: chat.v2\r\n"),
        "{head}"
    );
    let head = handshake_head(server.ws, "/chat", "v12.stomp").await;
    assert!(!head.contains("sec-websocket-protocol"), "{head}");
    // The STOMP endpoint still negotiates STOMP.
    let head = handshake_head(server.ws, "/ws", "v12.stomp").await;
    assert!(
        head.contains("sec-websocket-protocol: v12.stomp\r\n"),
        "{head}"
    );
    // Unknown paths are still refused.
    let head = handshake_head(server.ws, "/nothing", "x").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");

    // A real client negotiating the endpoint's protocol.
    let mut request = format!("ws://{}/chat", server.ws)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("chat.v1"),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "chat.v1"
    );
    send_text(&mut ws, "echoed").await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text("echoed"));
    server.stop().await.unwrap();
}

#[test]
fn endpoint_registration_is_checked() {
    let server = Server::new(config()).unwrap();
    assert!(
        matches!(
            server.add_raw_endpoint("/raw", RawEndpointOptions::default()),
            Err(Error::InvalidArgument(_))
        ),
        "host-driven needs event delivery"
    );
    let echo = || RawEndpointOptions {
        behaviour: RawBehaviour::Echo,
        ..Default::default()
    };
    assert!(matches!(
        server.add_raw_endpoint("/ws", echo()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        server.add_raw_endpoint("raw", echo()),
        Err(Error::InvalidArgument(_))
    ));
    server.add_raw_endpoint("/raw", echo()).unwrap();
    assert!(matches!(
        server.add_raw_endpoint("/raw", echo()),
        Err(Error::InvalidArgument(_))
    ));
    let stopped = Server::new(config()).unwrap();
    stopped.start().unwrap();
    stopped.stop(Duration::from_secs(1)).unwrap();
    stopped.add_raw_endpoint("/late", echo()).unwrap();
    assert!(matches!(
        stopped.raw_publish("t", b"x", false),
        Err(Error::NotRunning)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_mode_can_answer_from_the_open_event() {
    let server = Arc::new(Server::new(config()).unwrap());
    let weak = Arc::downgrade(&server);
    server
        .enable_event_callback(EventCallback {
            callback: Arc::new(move |event| {
                let Some(server) = weak.upgrade() else { return };
                match event {
                    Event::RawOpen(open) => {
                        server.raw_subscribe(open.conn, "news").unwrap();
                        server.raw_send(open.conn, b"welcome", false).unwrap();
                    }
                    Event::RawMessage(message) => {
                        // Host-side echo with a prefix, from the runtime thread.
                        let mut reply = b"re: ".to_vec();
                        reply.extend_from_slice(&message.data);
                        server
                            .raw_send(message.conn, &reply, message.binary)
                            .unwrap();
                    }
                    _ => {}
                }
            }),
            defer_connect: false,
            defer_subscribe: false,
        })
        .unwrap();
    server
        .add_raw_endpoint("/raw", RawEndpointOptions::default())
        .unwrap();
    server.start().unwrap();
    let server = TestServer::from_arc(server);
    let mut ws = connect(server.ws, "/raw").await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text("welcome"));
    assert_eq!(server.raw_publish("news", b"extra", false).unwrap(), 1);
    assert_eq!(next_data(&mut ws).await, WsMessage::text("extra"));
    send_text(&mut ws, "question").await;
    assert_eq!(next_data(&mut ws).await, WsMessage::text("re: question"));
    server.stop().await.unwrap();
}
