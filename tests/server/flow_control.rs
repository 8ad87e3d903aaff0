//! Delivery integrity under load: publisher flow control (a subscriber that keeps reading
//! loses nothing, however fast the publisher is), stuck subscribers still closed, and messages
//! of the largest accepted size delivered.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbroker::ServerConfig;

use crate::common::{Client, TestServer, WAIT, config};

/// A minimal STOMP 1.2 subscriber over TCP that keeps reading — 4 KiB at a time, with a
/// millisecond's pause after each read, so that it is always busy but slower than an
/// unthrottled publisher — and checks that the `n` header of its MESSAGEs counts 0, 1, 2, ...
/// without a gap. Returns how many it got before `expected` arrived, the connection closed,
/// or `limit` passed.
async fn counting_subscriber(
    addr: std::net::SocketAddr,
    destination: &str,
    ready: tokio::sync::mpsc::Sender<()>,
    expected: usize,
    limit: Duration,
) -> Result<usize, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).unwrap();
    let subscribe = format!(
        "CONNECT\naccept-version:1.2\nhost:x\n\n\0SUBSCRIBE\nid:s\ndestination:{destination}\nreceipt:r\n\n\0"
    );
    stream.write_all(subscribe.as_bytes()).await.unwrap();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 4 * 1024];
    let mut next = 0usize;
    let mut subscribed = false;
    let deadline = tokio::time::Instant::now() + limit;
    while next < expected {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Err(format!("timed out after {next} messages")),
            Ok(Ok(0) | Err(_)) => return Err(format!("closed after {next} messages")),
            Ok(Ok(n)) => n,
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(end) = buf[start..].iter().position(|&b| b == 0) {
            let frame = &buf[start..start + end];
            start += end + 1;
            let frame = std::str::from_utf8(frame).map_err(|e| e.to_string())?;
            let frame = frame.trim_start_matches('\n');
            if frame.starts_with("RECEIPT") && !subscribed {
                subscribed = true;
                ready.send(()).await.unwrap();
            } else if frame.starts_with("MESSAGE") {
                let n: usize = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("n:"))
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("no n header in {frame:.80}"))?;
                if n != next {
                    return Err(format!("expected message {next}, got {n}"));
                }
                next += 1;
            } else if frame.starts_with("ERROR") {
                return Err(format!("ERROR after {next} messages: {frame:.200}"));
            }
        }
        buf.drain(..start);
    }
    Ok(next)
}

fn flow_config() -> ServerConfig {
    let mut c = config();
    // Small queues, so flow control works hard in a test of a few MB.
    c.broker.max_outbound_bytes = 1024 * 1024;
    c.broker.outbound_high_watermark = 128 * 1024;
    c.broker.outbound_low_watermark = 32 * 1024;
    // Long enough for a slow reader with big kernel socket buffers (the writer is woken only
    // when a good part of them drained), short enough for the test.
    c.broker.slow_consumer_timeout = Duration::from_secs(2);
    c
}

/// One publisher writing as fast as TCP lets it (no receipts, no pacing) into a topic with
/// ten subscribers that keep reading (slower than it publishes) and one that never reads: every
/// reader gets every message in order, none is disconnected, the publisher was paused (flow
/// control), and the one that never reads is closed as a slow consumer. (Without flow control
/// the readers' queues pass their 1 MiB cap within the first few thousand messages.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unthrottled_publisher_loses_nothing_for_readers_and_stuck_ones_are_still_closed() {
    const READERS: usize = 10;
    const N: usize = 10_000;
    let server = TestServer::start_with(flow_config());
    let mut stuck = Client::tcp_small_buffer(server.tcp, 4096).await;
    stuck.connect_as(None).await;
    stuck.subscribe("/topic/x", "stuck").await;
    let (ready_tx, mut ready) = tokio::sync::mpsc::channel(READERS);
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let ready = ready_tx.clone();
            tokio::spawn(counting_subscriber(
                server.tcp,
                "/topic/x",
                ready,
                N,
                WAIT * 12,
            ))
        })
        .collect();
    for _ in 0..READERS {
        tokio::time::timeout(WAIT, ready.recv()).await.unwrap();
    }

    let mut publisher = TcpStream::connect(server.tcp).await.unwrap();
    publisher
        .write_all(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
        .await
        .unwrap();
    let body = "x".repeat(1024);
    let mut frames = Vec::with_capacity(N * 1100);
    for i in 0..N {
        frames
            .extend_from_slice(format!("SEND\ndestination:/topic/x\nn:{i}\n\n{body}\0").as_bytes());
    }
    let (mut read_half, mut write_half) = publisher.into_split();
    // The publisher reads nothing but CONNECTED; its socket is drained so it never blocks us.
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 4096];
        while matches!(read_half.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    write_half.write_all(&frames).await.unwrap();

    for (i, reader) in readers.into_iter().enumerate() {
        let got = reader.await.unwrap();
        assert_eq!(got, Ok(N), "reader {i}");
    }
    let stats = server.stats();
    assert!(
        stats.publishers_paused > 0,
        "flow control paused the publisher: {stats:?}"
    );
    assert_eq!(stats.messages_in, N as u64);
    server
        .wait_stats("the stuck subscriber closed, and only it", |s| {
            s.slow_consumer_disconnects == 1
        })
        .await;
    let (frames, _) = stuck.until_closed().await;
    assert!(
        frames.iter().filter(|f| f.command == "MESSAGE").count() < N,
        "the stuck one did not get everything"
    );
    eprintln!("flow control: {stats:?}");
    drop(write_half);
    drain.abort();
    server.finish().await;
}

/// Messages of the largest accepted size reach every subscriber, over WebSocket and TCP,
/// although they are bigger than the outbound queue's byte cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_mib_message_reaches_subscribers_over_websocket_and_tcp() {
    let mut cfg = config();
    cfg.frame_limits.max_frame_size = 20 * 1024 * 1024;
    assert!(cfg.broker.max_outbound_bytes < 16 * 1024 * 1024);
    let server = TestServer::start_with(cfg);
    let mut ws = server.ws_connected(None).await;
    ws.subscribe("/topic/16mb", "w").await;
    let mut tcp = server.tcp_connected(None).await;
    tcp.subscribe("/topic/16mb", "t").await;
    let body: Vec<u8> = (0..16 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut publisher = server.tcp_connected(None).await;
    publisher.send_sync("/topic/16mb", &[], &body).await;
    for subscriber in [&mut ws, &mut tcp] {
        let m = subscriber.expect("MESSAGE").await;
        assert_eq!(m.body.len(), body.len());
        assert!(m.body == body, "the body arrives intact");
    }
    // And a second one after it (the queue was relieved in between).
    publisher.send_sync("/topic/16mb", &[], &body).await;
    for subscriber in [&mut ws, &mut tcp] {
        assert_eq!(subscriber.expect("MESSAGE").await.body.len(), body.len());
    }
    assert_eq!(server.stats().slow_consumer_disconnects, 0);
    server.finish().await;
}

/// A queue backlog far larger than a connection's outbound queue reaches an auto-ack consumer
/// in full and in order: the consumer is fed as its connection drains, never closed as a
/// slow consumer for what the queue held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_backlog_larger_than_the_outbound_queue_reaches_an_auto_ack_consumer() {
    const BACKLOG: usize = 20_000;
    let mut config = crate::common::config();
    config.broker.max_queue_depth = BACKLOG;
    config.broker.max_outbound_messages = 1_000;
    let server = TestServer::start_with(config);
    let mut publisher = server.tcp_connected(None).await;
    for i in 0..BACKLOG {
        publisher.send("/queue/backlog", i.to_string()).await;
    }
    publisher.barrier().await;
    let mut consumer = server.tcp_connected(None).await;
    consumer.subscribe("/queue/backlog", "q").await;
    for i in 0..BACKLOG {
        let m = consumer.expect("MESSAGE").await;
        assert_eq!(m.body_str(), i.to_string());
    }
    assert!(consumer.barrier().await.is_empty());
    assert_eq!(server.server.stats().slow_consumer_disconnects, 0);
    server.finish().await;
}
