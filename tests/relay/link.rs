//! A client session's broker connection against a scripted fake STOMP broker on 127.0.0.1
//! port 0 (no RabbitMQ needed): session restore with re-subscription confirmed by receipts and
//! stale ACKs dropped, a broker ERROR passed on to the client, a relayed DISCONNECT receipt,
//! the ERROR a client gets when its broker connection drops without session restore, binary
//! bodies, transactions mixing local and relayed frames, and the host's subscribe decision.

use crate::common;

use std::time::Duration;

use crate::common::{TestServer, Ver, WAIT};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsbroker::stomp::{Decoded, Decoder, Frame as StompFrame, Version};
use wsbroker::{RelayConfig, ServerConfig};

/// Login of the system connection, to tell it from session connections.
const SYSTEM_LOGIN: &str = "system";

struct FakeBroker {
    listener: TcpListener,
    /// System connections, kept open (and unread) for the test's duration.
    system: Vec<FakeConn>,
}

struct FakeConn {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl FakeBroker {
    async fn start() -> FakeBroker {
        FakeBroker {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            system: Vec::new(),
        }
    }

    fn address(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Connects `client` (its CONNECT waits for the broker's CONNECTED, so it runs on its own
    /// task meanwhile); returns the session's broker connection and the connected client.
    async fn connect(&mut self, mut client: common::Client) -> (FakeConn, common::Client) {
        let connecting = tokio::spawn(async move {
            client.connect_as(None).await;
            client
        });
        let conn = self.accept_session().await;
        (conn, connecting.await.unwrap())
    }

    /// Accepts connections, answering each CONNECT, until a session's (not the system's).
    async fn accept_session(&mut self) -> FakeConn {
        loop {
            let (stream, _) = tokio::time::timeout(WAIT, self.listener.accept())
                .await
                .expect("a broker connection")
                .unwrap();
            let mut conn = FakeConn {
                stream,
                buf: BytesMut::new(),
                decoder: Decoder::default(),
            };
            let connect = conn.recv().await;
            assert_eq!(connect.command.as_str(), "CONNECT");
            assert_eq!(connect.header("host"), None, "no virtual host configured");
            conn.decoder.set_version(Version::V1_2);
            conn.send(
                "CONNECTED",
                &[("version", "1.2"), ("heart-beat", "0,0")],
                "",
            )
            .await;
            if connect.header("login") == Some(SYSTEM_LOGIN) {
                self.system.push(conn);
            } else {
                assert_eq!(connect.header("login"), Some("session"));
                return conn;
            }
        }
    }
}

impl FakeConn {
    async fn recv(&mut self) -> StompFrame {
        loop {
            match self.decoder.decode(&mut self.buf).unwrap() {
                Some(Decoded::Frame(frame)) => return frame,
                Some(Decoded::Heartbeat) => continue,
                None => {}
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("a frame from wsbroker")
                .unwrap();
            assert!(n > 0, "wsbroker closed the broker connection");
        }
    }

    async fn send(&mut self, command: &str, headers: &[(&str, &str)], body: &str) {
        let frame = common::Frame::new(command, headers, body);
        self.stream
            .write_all(&common::encode(&frame, Ver::parse("1.2")))
            .await
            .unwrap();
    }

    /// Reads a SUBSCRIBE and confirms its receipt; returns it.
    async fn accept_subscribe(&mut self) -> StompFrame {
        let subscribe = self.recv().await;
        assert_eq!(subscribe.command.as_str(), "SUBSCRIBE", "{subscribe:?}");
        let receipt = subscribe.header("receipt").expect("a receipt").to_string();
        self.send("RECEIPT", &[("receipt-id", &receipt)], "").await;
        subscribe
    }

    async fn message(&mut self, ack: &str, body: &str) {
        self.send(
            "MESSAGE",
            &[
                ("destination", "/queue/work"),
                ("subscription", "s"),
                ("message-id", ack),
                ("ack", ack),
            ],
            body,
        )
        .await;
    }
}

/// A fake broker and a server relaying to it.
async fn server_relaying_to_fake_broker(session_restore: bool) -> (FakeBroker, TestServer) {
    let broker = FakeBroker::start().await;
    let server = TestServer::start_with(config(&broker.address(), session_restore));
    (broker, server)
}

fn config(broker: &str, session_restore: bool) -> ServerConfig {
    {
        let mut c = common::config();
        c.relay = Some({
            let mut c = RelayConfig::new(broker);
            c.login = "session".into();
            c.system_login = SYSTEM_LOGIN.into();
            c.session_restore = session_restore;
            c.reconnect_initial_delay = Duration::from_millis(10);
            c.reconnect_max_delay = Duration::from_millis(50);
            c
        });
        c
    }
}

#[tokio::test]
async fn session_restore_resubscribes_and_drops_acks_of_the_lost_connection() {
    let (mut broker, server) = server_relaying_to_fake_broker(true).await;
    let (mut first, mut client) = broker.connect(server.ws_client().await).await;
    client
        .frame(
            "SUBSCRIBE",
            &[
                ("destination", "/queue/work"),
                ("id", "s"),
                ("ack", "client-individual"),
                ("receipt", "sub-1"),
            ],
            "",
        )
        .await;
    let subscribe = first.accept_subscribe().await;
    assert_eq!(
        subscribe.header("receipt"),
        Some("sub-1"),
        "the client's own receipt"
    );
    client.expect("RECEIPT").await;
    first.message("a1", "one").await;
    let one = client.expect("MESSAGE").await;
    assert_eq!(one.h("ack"), "relay:0:a1");
    assert_eq!(one.h("subscription"), "s");

    drop(first); // the broker connection drops
    let mut second = broker.accept_session().await;
    let again = second.accept_subscribe().await;
    assert_eq!(again.header("destination"), Some("/queue/work"));
    assert_eq!(again.header("ack"), Some("client-individual"));
    assert!(
        again
            .header("receipt")
            .unwrap()
            .starts_with("wsbroker-relay-"),
        "{again:?}"
    );
    // An ACK for the lost connection's message is answered but not sent to the new one.
    client.request("ACK", &[("id", one.h("ack"))], b"").await;
    second.message("a2", "two").await;
    let two = client.expect("MESSAGE").await;
    assert_eq!(two.body_str(), "two");
    assert_eq!(two.h("ack"), "relay:1:a2");
    client.frame("ACK", &[("id", two.h("ack"))], "").await;
    let ack = second.recv().await;
    assert_eq!(ack.command.as_str(), "ACK");
    assert_eq!(
        ack.header("id"),
        Some("a2"),
        "untagged, and not the stale a1"
    );

    // DISCONNECT with a receipt: the broker's RECEIPT ends the session.
    client.frame("DISCONNECT", &[("receipt", "bye")], "").await;
    let disconnect = second.recv().await;
    assert_eq!(disconnect.command.as_str(), "DISCONNECT");
    second.send("RECEIPT", &[("receipt-id", "bye")], "").await;
    let (frames, _) = client.until_closed().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].h("receipt-id"), "bye");
    end_session(server, client).await;
}

/// The tasks a relaying server runs whatever its sessions do.
const SERVER_TASKS: usize = 4;

/// Drops the client, checks that its session's tasks end, and stops the server.
async fn end_session(server: TestServer, client: common::Client) {
    drop(client);
    assert_no_session_tasks_left(&server).await;
    server.stop().await.unwrap();
}

/// Waits (bounded) until only the server's own tasks are alive: two listeners, the drop
/// reporter and the relay's system connection; the session's reader, writer and broker link
/// have ended.
async fn assert_no_session_tasks_left(server: &TestServer) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let alive = server.server.alive_tasks().unwrap();
        if alive == SERVER_TASKS {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{alive} tasks alive, expected {SERVER_TASKS} (listeners, drop reporter, system connection)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_binary_relayed_body_reaches_a_websocket_client_intact() {
    let (mut broker, server) = server_relaying_to_fake_broker(false).await;
    let (mut conn, mut client) = broker.connect(server.ws_client().await).await;
    let body: Vec<u8> = vec![0xff, 0x00, 0xfe, b'x', 0x80];
    let length = body.len().to_string();
    let frame = common::Frame::new(
        "MESSAGE",
        &[
            ("destination", "/topic/bin"),
            ("subscription", "s"),
            ("message-id", "m"),
            ("content-length", &length),
        ],
        &body,
    );
    conn.stream
        .write_all(&common::encode(&frame, Ver::parse("1.2")))
        .await
        .unwrap();
    let message = client.expect("MESSAGE").await;
    assert_eq!(
        message.body, body,
        "a binary WebSocket message, not invalid text"
    );
    end_session(server, client).await;
}

#[tokio::test]
async fn a_broker_error_reaches_the_client_and_closes_it() {
    let (mut broker, server) = server_relaying_to_fake_broker(true).await;
    let (mut conn, mut client) = broker.connect(server.tcp_client().await).await;
    client.send("/queue/forbidden", "x").await;
    let send = conn.recv().await;
    assert_eq!(send.header("destination"), Some("/queue/forbidden"));
    conn.send(
        "ERROR",
        &[("message", "access refused")],
        "no write access to /queue/forbidden",
    )
    .await;
    let (error, _) = client.expect_error_and_close().await;
    assert_eq!(error.h("message"), "message broker: access refused");
    assert_eq!(error.body_str(), "no write access to /queue/forbidden");
    end_session(server, client).await;
}

#[tokio::test]
async fn without_session_restore_a_dropped_broker_connection_closes_the_client() {
    let (mut broker, server) = server_relaying_to_fake_broker(false).await;
    let (conn, mut client) = broker.connect(server.ws_client().await).await;
    drop(conn);
    let (error, code) = client.expect_error_and_close().await;
    assert_eq!(
        error.h("message"),
        "lost the connection to the message broker"
    );
    assert_eq!(code, Some(1011));
    end_session(server, client).await;
}

#[tokio::test]
async fn a_transaction_mixing_local_and_relayed_frames_commits_both_sides() {
    let (mut broker, server) = server_relaying_to_fake_broker(false).await;
    let (mut conn, mut client) = broker.connect(server.ws_client().await).await;
    // "/chat/..." is not a relayed prefix: a local topic.
    client.subscribe("/chat/room", "local").await;
    client.frame("BEGIN", &[("transaction", "t")], "").await;
    client
        .frame(
            "SEND",
            &[("destination", "/topic/relayed"), ("transaction", "t")],
            "to the broker",
        )
        .await;
    client
        .frame(
            "SEND",
            &[("destination", "/chat/room"), ("transaction", "t")],
            "to wsbroker",
        )
        .await;
    let begin = conn.recv().await;
    assert_eq!(
        (begin.command.as_str(), begin.header("transaction")),
        ("BEGIN", Some("t"))
    );
    let send = conn.recv().await;
    assert_eq!(send.command.as_str(), "SEND");
    assert_eq!(send.header("transaction"), Some("t"), "the broker holds it");
    client
        .frame("COMMIT", &[("transaction", "t"), ("receipt", "done")], "")
        .await;
    // The local part is delivered at COMMIT; the receipt is the broker's.
    let local = client.expect("MESSAGE").await;
    assert_eq!(local.body_str(), "to wsbroker");
    let commit = conn.recv().await;
    assert_eq!(commit.command.as_str(), "COMMIT");
    assert_eq!(commit.header("receipt"), Some("done"));
    conn.send("RECEIPT", &[("receipt-id", "done")], "").await;
    assert_eq!(client.expect("RECEIPT").await.h("receipt-id"), "done");
    end_session(server, client).await;
}

#[tokio::test]
async fn the_hosts_subscribe_decision_applies_to_relayed_subscriptions() {
    let (mut broker, server) = server_relaying_to_fake_broker(false).await;
    server.server.on_subscribe(|request| {
        if request.destination.ends_with("/secret") {
            Err("not for you".into())
        } else {
            Ok(())
        }
    });
    let (mut conn, mut client) = broker.connect(server.ws_client().await).await;
    client
        .frame(
            "SUBSCRIBE",
            &[
                ("destination", "/topic/open"),
                ("id", "a"),
                ("receipt", "ok"),
            ],
            "",
        )
        .await;
    conn.accept_subscribe().await;
    assert_eq!(client.expect("RECEIPT").await.h("receipt-id"), "ok");
    client
        .frame(
            "SUBSCRIBE",
            &[
                ("destination", "/topic/secret"),
                ("id", "b"),
                ("receipt", "no"),
            ],
            "",
        )
        .await;
    let (error, _) = client.expect_error_and_close().await;
    assert_eq!(error.h("message"), "subscription refused: not for you");
    assert_eq!(error.h("receipt-id"), "no");
    // Only the allowed SUBSCRIBE reached the broker; the session's end says goodbye.
    let next = conn.recv().await;
    assert_eq!(next.command.as_str(), "DISCONNECT", "{next:?}");
    end_session(server, client).await;
}

/// Flow control in relay mode: a client whose burst of SENDs outruns the message broker is
/// paused (not read) while its broker link is behind, instead of being refused with "too many
/// frames waiting": every frame reaches the broker, in order, and the client stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_faster_than_the_broker_is_paused_not_refused() {
    const FRAMES: usize = 300;
    let broker = FakeBroker::start().await;
    let mut cfg = config(&broker.address(), false);
    if let Some(relay) = cfg.relay.as_mut() {
        relay.max_pending_frames = 16;
    }
    let mut broker = broker;
    let server = TestServer::start_with(cfg);
    let (mut conn, mut client) = broker.connect(server.tcp_client().await).await;
    // A broker that reads slowly: the link's writes block on its socket, its frame channel
    // fills, and the client's connection must stop being read meanwhile.
    let reading = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(FRAMES);
        for _ in 0..FRAMES {
            let send = conn.recv().await;
            seen.push(send.header("n").unwrap_or_default().to_string());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let last = conn.recv().await;
        let receipt = last.header("receipt").expect("a receipt").to_string();
        conn.send("RECEIPT", &[("receipt-id", &receipt)], "").await;
        (seen, conn)
    });
    let body = "x".repeat(64 * 1024);
    let mut burst = Vec::new();
    for i in 0..FRAMES {
        let frame = common::Frame::new(
            "SEND",
            &[("destination", "/topic/r"), ("n", &i.to_string())],
            &body,
        );
        burst.extend_from_slice(&common::encode(&frame, Ver::parse("1.2")));
    }
    client.write_raw(&burst).await;
    client
        .frame(
            "SEND",
            &[("destination", "/topic/r"), ("receipt", "done")],
            "",
        )
        .await;
    let receipt = client.expect("RECEIPT").await;
    assert_eq!(receipt.h("receipt-id"), "done");
    let (seen, _conn) = reading.await.unwrap();
    let expected: Vec<String> = (0..FRAMES).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected, "every frame, in order");
    let stats = server.stats();
    assert!(
        stats.publishers_paused > 0,
        "the client was paused: {stats:?}"
    );
    end_session(server, client).await;
}
