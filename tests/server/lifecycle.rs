//! Server lifecycle, heart-beats, slow consumers and statistics, over real sockets.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::{Client, Event, TestServer, WAIT, config};
use wsbroker::{Error, Server, ServerConfig};

// --- heart-beats ---

#[tokio::test]
async fn silent_client_is_closed_after_twice_its_heartbeat() {
    let server = TestServer::start_with({
        let mut c = config();
        c.session.heartbeat_receive = Duration::from_millis(100);
        c.session.heartbeat_send = Duration::ZERO;
        c
    });
    for ws in [true, false] {
        let mut c = if ws {
            server.ws_client().await
        } else {
            server.tcp_client().await
        };
        // cx=100: the client promises a heart-beat every 100 ms, then stays silent.
        let connected = c.connect_with(&[("heart-beat", "100,0")]).await;
        assert_eq!(connected.h("heart-beat"), "0,100");
        let start = Instant::now();
        let closed = tokio::time::timeout(Duration::from_secs(3), c.until_closed())
            .await
            .expect("silent client closed within 3 s");
        let elapsed = start.elapsed();
        let (frames, code) = closed;
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0].command, "ERROR");
        assert!(
            frames[0].h("message").contains("heart-beat timeout"),
            "{frames:?}"
        );
        assert!(
            elapsed >= Duration::from_millis(150),
            "closed too early: {elapsed:?}"
        );
        if ws {
            assert_eq!(code, Some(1008));
        }
    }
    server.finish().await;
}

#[tokio::test]
async fn client_sending_heartbeats_stays_connected() {
    let server = TestServer::start_with({
        let mut c = config();
        c.session.heartbeat_receive = Duration::from_millis(100);
        c.session.heartbeat_send = Duration::ZERO;
        c
    });
    let mut c = server.tcp_client().await;
    c.connect_with(&[("heart-beat", "100,0")]).await;
    // 1 s of heart-beats every 50 ms: far beyond the 200 ms timeout.
    for _ in 0..20 {
        c.write_raw(b"\n").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn server_sends_heartbeats_when_asked() {
    let server = TestServer::start_with({
        let mut c = config();
        c.session.heartbeat_send = Duration::from_millis(100);
        c.session.heartbeat_receive = Duration::from_millis(100);
        c
    });
    for ws in [true, false] {
        let mut c = if ws {
            server.ws_client().await
        } else {
            server.tcp_client().await
        };
        // cy=100: the client wants a heart-beat every 100 ms and sends none (cx=0), so the
        // server must not time it out either.
        let connected = c.connect_with(&[("heart-beat", "0,100")]).await;
        assert_eq!(connected.h("heart-beat"), "100,100");
        let start = Instant::now();
        while c.heartbeats < 5 {
            match c.event_within(Duration::from_secs(1)).await {
                Some(Event::Heartbeat) => {}
                other => panic!("expected a heart-beat, got {other:?}"),
            }
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(3),
            "5 heart-beats at 100 ms took {elapsed:?}"
        );
        // Still connected after > 2 x 100 ms of client silence.
        c.assert_quiet().await;
    }
    server.finish().await;
}

#[tokio::test]
async fn no_heartbeats_without_agreement() {
    let server = TestServer::start_with({
        let mut c = config();
        c.session.heartbeat_send = Duration::from_millis(50);
        c.session.heartbeat_receive = Duration::from_millis(50);
        c
    });
    let mut c = server.tcp_client().await;
    let connected = c.connect_with(&[("heart-beat", "0,0")]).await;
    assert_eq!(connected.h("heart-beat"), "50,50");
    assert!(
        c.event_within(Duration::from_millis(400)).await.is_none(),
        "nothing is sent (and the silent client is not closed) without heart-beats"
    );
    c.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn invalid_heartbeat_header_is_an_error() {
    let server = TestServer::start();
    let mut c = server.ws_client().await;
    c.frame(
        "CONNECT",
        &[("accept-version", "1.2"), ("heart-beat", "fast")],
        "",
    )
    .await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("heart-beat"), "{error:?}");
    server.finish().await;
}

// --- slow consumers ---

/// Subscribes a never-reading TCP client and a reading one to `/topic/firehose`, publishes
/// `N` 1 KiB messages from the host in bursts the fast one keeps up with, and checks that the
/// fast one got everything in order. Flow control refuses host publishes while the stuck
/// client's queue is congested: `publish_wait` waits, at most about the slow-consumer timeout,
/// until the stuck client is closed.
async fn firehose(server: &TestServer) -> (Client, Client) {
    const N: usize = 5_000;
    let mut slow = Client::tcp_small_buffer(server.tcp, 4096).await;
    slow.connect_as(None).await;
    slow.subscribe("/topic/firehose", "slow").await;
    let mut fast = server.tcp_connected(None).await;
    fast.subscribe("/topic/firehose", "fast").await;

    let body = vec![b'x'; 1024];
    let mut slowest_publish = Duration::ZERO;
    let mut received = 0;
    // Bursts of 32 and the fast consumer catches up before the next one, so its outbound
    // queue (64) never fills; the slow one never reads.
    for burst in 0..N.div_ceil(32) {
        let from = burst * 32;
        let to = (from + 32).min(N);
        for i in from..to {
            let t = Instant::now();
            let srv = server.server.clone();
            let body = body.clone();
            tokio::task::spawn_blocking(move || {
                srv.publish_wait("/topic/firehose", &[("n", &i.to_string())], body, WAIT)
            })
            .await
            .unwrap()
            .unwrap();
            slowest_publish = slowest_publish.max(t.elapsed());
        }
        while received < to {
            let m = fast.expect("MESSAGE").await;
            assert_eq!(m.h("n"), received.to_string());
            assert_eq!(m.body.len(), 1024);
            received += 1;
        }
    }
    assert_eq!(received, N);
    // Bounded by the slow-consumer timeout (300 ms), not by the stuck client.
    assert!(slowest_publish < WAIT, "publish waited {slowest_publish:?}");
    let stats = server.stats();
    assert!(stats.slow_consumer_disconnects >= 1, "{stats:?}");
    fast.assert_quiet().await;
    (slow, fast)
}

fn slow_config() -> ServerConfig {
    {
        let mut c = config();
        c.broker.max_outbound_messages = 64;
        c.broker.slow_consumer_timeout = Duration::from_millis(300);
        c
    }
}

#[tokio::test]
async fn slow_consumer_is_disconnected_without_blocking_others() {
    let server = TestServer::start_with(slow_config());
    let (mut slow, _fast) = firehose(&server).await;
    // When the slow client finally reads: what the kernel buffered, fewer than all messages,
    // then the end of the stream (with the slow-consumer ERROR if it could still be written).
    let (frames, _) = slow.until_closed().await;
    let messages = frames.iter().filter(|f| f.command == "MESSAGE").count();
    assert!(messages < 5_000, "the slow consumer did not get everything");
    for f in frames.iter().filter(|f| f.command != "MESSAGE") {
        assert_eq!(f.command, "ERROR", "{f:?}");
        assert!(f.h("message").contains("slow consumer"), "{f:?}");
    }
    drop(slow);
    server
        .wait_stats("slow session gone", |s| {
            s.sessions == 1 && s.connections == 1
        })
        .await;
    server.finish().await;
}

#[tokio::test]
async fn slow_consumer_that_never_reads_leaves_the_broker() {
    let server = TestServer::start_with(slow_config());
    let (_slow, _fast) = firehose(&server).await;
    // Without the slow client ever reading again, its session is removed and its connection
    // closed (its writer is stuck on a full socket, so this needs the reader to notice).
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let s = server.stats();
        if s.sessions == 1 && s.connections == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slow consumer still attached: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.finish().await;
}

// --- stop, start, errors ---

#[tokio::test]
async fn graceful_stop_closes_clients_with_going_away() {
    let server = TestServer::start();
    let mut ws = server.ws_connected(None).await;
    ws.subscribe("/topic/x", "s").await;
    let mut tcp = server.tcp_connected(None).await;
    // A WebSocket connection that has not sent CONNECT yet.
    let mut fresh = server.ws_client().await;

    let stopping = {
        let server = server.server.clone();
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let r = server.stop(Duration::from_secs(2));
            (r, t.elapsed())
        })
    };
    let (error, code) = ws.expect_error_and_close().await;
    assert_eq!(error.h("message"), "server shutting down");
    assert_eq!(code, Some(1001));
    let (error, code) = tcp.expect_error_and_close().await;
    assert_eq!(error.h("message"), "server shutting down");
    assert_eq!(code, None);
    let (error, code) = fresh.expect_error_and_close().await;
    assert_eq!(error.h("message"), "server shutting down");
    assert_eq!(code, Some(1001));
    drop((ws, tcp, fresh));

    let (result, took) = stopping.await.unwrap();
    result.unwrap();
    assert!(took < Duration::from_secs(2), "stop waited {took:?}");
    assert!(!server.is_running());
    assert_eq!(server.stats().connections, 0);
    assert_eq!(server.stats().sessions, 0);

    // Stopping twice, publishing after stop, restarting.
    assert!(matches!(server.stop().await, Err(Error::NotRunning)));
    assert!(matches!(
        server.publish("/topic/x", &[], "late"),
        Err(Error::NotRunning)
    ));
    assert!(matches!(
        server.send_to_user("alice", "/queue/x", &[], "late"),
        Err(Error::NotRunning)
    ));
    assert!(matches!(server.start(), Err(Error::AlreadyStarted)));
    // Nobody listens any more.
    assert!(
        tokio::net::TcpStream::connect(server.ws).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn start_twice_and_stop_before_start() {
    let server = Server::new(config()).unwrap();
    assert!(matches!(
        server.stop(Duration::from_millis(10)),
        Err(Error::NotRunning)
    ));
    assert!(!server.is_running());
    assert!(server.local_addr().is_none());
    server.start().unwrap();
    assert!(server.is_running());
    assert!(matches!(server.start(), Err(Error::AlreadyStarted)));
    let server = std::sync::Arc::new(server);
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.stop(Duration::from_millis(100)))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn start_on_a_port_in_use_is_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let server = Server::new({
        let mut c = config();
        c.listen = addr;
        c
    })
    .unwrap();
    assert!(matches!(server.start(), Err(Error::AddressInUse(_))));
    assert!(!server.is_running());
    // The TCP listener too.
    let server = Server::new({
        let mut c = config();
        c.tcp_listen = Some(addr);
        c
    })
    .unwrap();
    assert!(matches!(server.start(), Err(Error::AddressInUse(_))));
    assert!(!server.is_running());
    drop(taken);
}

#[tokio::test]
async fn invalid_config_is_refused_by_name() {
    let err = Server::new({
        let mut c = config();
        c.broker.max_outbound_messages = 0;
        c
    })
    .unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig(m) if m.contains("max_outbound_messages")));
}

#[tokio::test]
async fn stop_from_a_callback_is_refused() {
    let server = TestServer::start();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let inner = server.server.clone();
    server.handle_app("/app/stop", move |_, _| {
        let _ = tx.send(inner.stop(Duration::from_millis(10)));
        Ok(())
    });
    let mut c = server.ws_connected(None).await;
    c.send_sync("/app/stop", &[], b"").await;
    let result = tokio::time::timeout(common::WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, Err(Error::CalledFromCallback(_))),
        "{result:?}"
    );
    assert!(server.is_running());
    c.assert_quiet().await;
    server.finish().await;
}

// --- statistics ---

#[tokio::test]
async fn stats_follow_connections_sessions_subscriptions_and_messages() {
    let server = TestServer::start();
    assert_eq!(server.stats(), wsbroker::Stats::default());

    let mut a = server.ws_client().await;
    let mut b = server.tcp_client().await;
    server
        .wait_stats("2 connections", |s| s.connections == 2)
        .await;
    assert_eq!(server.stats().sessions, 0, "no CONNECT yet");
    a.connect_as(None).await;
    b.connect_as(None).await;
    let s = server.stats();
    assert_eq!((s.connections, s.connections_total, s.sessions), (2, 2, 2));

    a.subscribe("/topic/s", "1").await;
    a.subscribe("/topic/*", "2").await;
    b.subscribe("/queue/s", "3").await;
    assert_eq!(server.stats().subscriptions, 3);

    b.send_sync("/topic/s", &[], b"x").await;
    a.messages(2).await;
    server.publish("/queue/s", &[], "q").unwrap();
    b.expect("MESSAGE").await;
    let s = server.stats();
    assert_eq!(s.messages_in, 2);
    assert_eq!(s.messages_out, 3);
    assert!(s.bytes_in > 0 && s.bytes_out > 0);

    a.request("UNSUBSCRIBE", &[("id", "2")], b"").await;
    assert_eq!(server.stats().subscriptions, 2);

    a.disconnect().await;
    server
        .wait_stats("a gone", |s| {
            s.connections == 1 && s.sessions == 1 && s.subscriptions == 1
        })
        .await;
    b.drop_connection().await;
    server
        .wait_stats("all gone", |s| {
            s.connections == 0 && s.sessions == 0 && s.subscriptions == 0
        })
        .await;
    assert_eq!(server.stats().connections_total, 2);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn connection_limit_refuses_extra_connections() {
    let server = TestServer::start_with({
        let mut c = config();
        c.max_connections = 1;
        c
    });
    let mut first = server.tcp_connected(None).await;
    let mut second = server.tcp_client().await;
    let (frames, _) = second.until_closed().await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].command, "ERROR");
    assert!(frames[0].h("message").contains("connection limit"));
    assert_eq!(server.stats().connections_refused, 1);
    first.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn websocket_pings_keep_a_reading_client_alive_and_idle_ones_are_closed() {
    let server = TestServer::start_with({
        let mut c = config();
        c.ws_ping_interval = Duration::from_millis(100);
        c.idle_timeout = Duration::from_millis(400);
        c
    });
    // A client that keeps reading answers the pings (tungstenite replies with pongs), which
    // count as traffic: 1 s, well over the idle timeout, without a STOMP frame.
    let mut alive = server.ws_connected(None).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if let Some(e) = alive.event_within(Duration::from_millis(100)).await {
            panic!("unexpected event {e:?}");
        }
    }
    alive.assert_quiet().await;
    alive.disconnect().await;

    // A client that does not read cannot answer: closed as idle, with 1001.
    let mut idle = server.ws_connected(None).await;
    let start = Instant::now();
    server
        .wait_stats("idle one closed", |s| s.sessions == 0)
        .await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    let (error, code) = idle.expect_error_and_close().await;
    assert_eq!(error.h("message"), "idle timeout");
    assert_eq!(code, Some(1001));
    server.finish().await;
}

#[tokio::test]
async fn stop_under_load_finishes_promptly() {
    let server = TestServer::start();
    let mut readers = Vec::new();
    for i in 0..2 {
        let mut c = server.ws_connected(None).await;
        c.subscribe("/topic/load", &format!("{i}")).await;
        readers.push(tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                match tokio::time::timeout(common::WAIT, c.next_event()).await {
                    Ok(Event::Frame(f)) if f.command == "MESSAGE" => n += 1,
                    Ok(Event::Frame(f)) => {
                        assert_eq!(f.command, "ERROR");
                        assert_eq!(f.h("message"), "server shutting down");
                    }
                    Ok(Event::Heartbeat) => {}
                    Ok(Event::Closed { .. }) => return n,
                    Err(_) => panic!("reader not closed"),
                }
            }
        }));
    }
    let mut publisher = server.tcp_connected(None).await;
    let writer = tokio::spawn(async move {
        let frame = b"SEND\ndestination:/topic/load\n\npayload\0".repeat(50);
        while publisher.try_write_raw(&frame).await {
            tokio::task::yield_now().await;
        }
    });
    server
        .wait_stats("traffic flowing", |s| s.messages_out > 1000)
        .await;
    let t = Instant::now();
    server
        .stop_with_grace(Duration::from_secs(1))
        .await
        .expect("stop");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    for r in readers {
        assert!(r.await.unwrap() > 0);
    }
    tokio::time::timeout(common::WAIT, writer)
        .await
        .expect("publisher sees the close")
        .unwrap();
}

#[tokio::test]
async fn origin_allow_list_applies_to_browsers() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start_with({
        let mut c = config();
        c.allowed_origins = vec!["http://good.example".into()];
        c
    });
    let request = |origin: &str| {
        let mut r = format!("ws://{}/ws", server.ws)
            .into_client_request()
            .unwrap();
        r.headers_mut().insert("Origin", origin.parse().unwrap());
        r
    };
    assert!(
        tokio_tungstenite::connect_async(request("http://evil.example"))
            .await
            .is_err()
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request("http://good.example"))
        .await
        .expect("allowed origin");
    ws.close(None).await.unwrap();
    // No Origin (not a browser): allowed.
    let mut c = server.ws_connected(None).await;
    c.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn slow_consumer_discards_count_as_dropped() {
    let server = TestServer::start_with(slow_config());
    let (_slow, _fast) = firehose(&server).await;
    let stats = server.stats();
    assert!(stats.dropped >= 1, "{stats:?}");
    server.finish().await;
}

#[tokio::test]
async fn stop_does_not_wait_for_connections_still_in_the_handshake() {
    let server = TestServer::start();
    // Connected to the WebSocket port, upgrade request not (completely) sent yet.
    let mut half = tokio::net::TcpStream::connect(server.ws).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    half.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    server.wait_stats("connected", |s| s.connections == 1).await;
    let t = Instant::now();
    server.stop().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stop waited {:?} for a connection in the handshake",
        t.elapsed()
    );
    // And that connection is closed.
    let mut sink = Vec::new();
    tokio::time::timeout(common::WAIT, half.read_to_end(&mut sink))
        .await
        .expect("closed")
        .ok();
}

#[tokio::test]
async fn websocket_ping_and_close_handshake() {
    let server = TestServer::start();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<u64>>> = Default::default();
    let log = seen.clone();
    server.on_disconnect(move |info| log.lock().unwrap().push(info.session));
    let mut c = server.ws_connected(None).await;
    c.subscribe("/topic/p", "p").await;
    c.ws_ping(b"are you there").await;
    c.assert_quiet().await;
    let session = c.session.unwrap();
    // The server echoes the client's close code.
    assert_eq!(c.ws_close(4001).await, Some(4001));
    server
        .wait_stats("closed", |s| s.connections == 0 && s.sessions == 0)
        .await;
    // The disconnect hook runs on a callback thread: wait for it (bounded).
    let deadline = Instant::now() + common::WAIT;
    while seen.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*seen.lock().unwrap(), vec![session]);
    server.finish().await;
}
