//! The durable store (`--data-dir`): histories keep their epoch and offsets across a restart,
//! unacknowledged queue messages come back after one, a confirmed message survives `kill -9`,
//! and a client that reconnects to the restarted broker resumes with 0 gaps.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wsbroker::{AckMode, ClientConfig, ClientEvent, HistoryRule, ServerConfig, StoreConfig};

use crate::common::{self, Frame, TestServer, WAIT};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wsb-durable-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn durable_config(dir: &std::path::Path) -> ServerConfig {
    let mut config = common::config();
    config.broker.history = vec![HistoryRule::parse("/topic/chat=100").unwrap()];
    config.store = Some(StoreConfig::new(dir));
    config
}

fn offset(f: &Frame) -> u64 {
    f.h("x-offset").parse().unwrap()
}

#[tokio::test]
async fn history_and_unacknowledged_queue_messages_survive_a_restart() {
    let dir = temp_dir("restart");
    let epoch;
    {
        let server = TestServer::start_with(durable_config(&dir));
        let mut sub = server.tcp_connected(None).await;
        let (receipt, replayed) = sub.subscribe_with_receipt("/topic/chat", &[]).await;
        assert!(replayed.is_empty());
        assert_eq!(receipt.h("x-offset"), "0");
        let mut publisher = server.ws_connected(None).await;
        for i in 1..=5 {
            publisher
                .send_sync("/topic/chat", &[], i.to_string().as_bytes())
                .await;
        }
        for i in 1..=3 {
            publisher
                .send_sync("/queue/jobs", &[], format!("job {i}").as_bytes())
                .await;
        }
        let mut seen = Vec::new();
        let mut epochs = Vec::new();
        for _ in 0..5 {
            let m = sub.expect("MESSAGE").await;
            seen.push((offset(&m), m.body_str().to_string()));
            epochs.push(m.h("x-epoch").to_string());
        }
        let expected: Vec<(u64, String)> = (1..=5).map(|i| (i, i.to_string())).collect();
        assert_eq!(seen, expected);
        epochs.dedup();
        assert_eq!(epochs.len(), 1);
        epoch = epochs.remove(0);

        // A client-ack consumer takes job 1 and acknowledges it, takes job 2 and does not.
        let mut worker = server.tcp_connected(None).await;
        worker
            .subscribe_with("/queue/jobs", "w", &[("ack", "client-individual")])
            .await;
        let first = worker.expect("MESSAGE").await;
        assert_eq!(first.body_str(), "job 1");
        worker.request("ACK", &[("id", first.h("ack"))], b"").await;
        let second = worker.expect("MESSAGE").await;
        assert_eq!(second.body_str(), "job 2");
        // A later confirmed SEND: once its receipt is here, the ACK before it is on disk too
        // (records commit in order).
        publisher.send_sync("/topic/chat", &[], b"6").await;
        server.stop().await.unwrap();
    }
    let server = TestServer::start_with(durable_config(&dir));
    let mut again = server.tcp_connected(None).await;
    let (receipt, replayed) = again
        .subscribe_with_receipt("/topic/chat", &[("x-since", "3"), ("x-epoch", &epoch)])
        .await;
    assert_eq!(receipt.h("x-recovered"), "true", "{receipt:?}");
    assert_eq!(
        receipt.h("x-epoch"),
        epoch,
        "the same epoch after a restart"
    );
    let offsets: Vec<u64> = replayed.iter().map(offset).collect();
    assert_eq!(offsets, [4, 5, 6]);
    let mut publisher = server.ws_connected(None).await;
    publisher.send_sync("/topic/chat", &[], b"7").await;
    let live = again.expect("MESSAGE").await;
    assert_eq!((offset(&live), live.h("x-epoch")), (7, epoch.as_str()));

    let mut worker = server.tcp_connected(None).await;
    worker
        .subscribe_with("/queue/jobs", "w", &[("ack", "client-individual")])
        .await;
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let m = worker.expect("MESSAGE").await;
        jobs.push(m.body_str().to_string());
        worker.request("ACK", &[("id", m.h("ack"))], b"").await;
    }
    assert_eq!(
        jobs,
        ["job 2", "job 3"],
        "job 1 was acknowledged before the restart"
    );
    assert!(worker.barrier().await.is_empty(), "nothing else queued");
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary, started on the given ports with a data dir; returns it with its TCP port.
#[allow(
    clippy::zombie_processes,
    reason = "the child is returned: the caller kills and waits for it"
)]
fn start_broker(dir: &std::path::Path, tcp_port: u16) -> (Child, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbroker"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tcp-listen",
            &format!("127.0.0.1:{tcp_port}"),
            "--history",
            "/topic/stream=5000",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wsbroker");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "wsbroker did not start");
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsbroker ended before listening");
        }
        if let Some(addr) = line.trim().strip_prefix("wsbroker listening tcp ") {
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            // Keep draining its stdout so it never blocks on a full pipe.
            std::thread::spawn(move || for _ in stdout.lines() {});
            return (child, port);
        }
    }
}

fn client_config(port: u16) -> ClientConfig {
    let mut c = ClientConfig::new(format!("stomp://127.0.0.1:{port}"));
    c.connect_timeout = WAIT;
    c.reconnect.initial_delay = Duration::from_millis(20);
    c.reconnect.max_delay = Duration::from_millis(200);
    c.tls.system_roots = false;
    c
}

fn connected(port: u16) -> wsbroker::Client {
    let client = wsbroker::Client::new(client_config(port)).unwrap();
    client.connect(WAIT).unwrap();
    client
}

/// `kill -9` in the middle of a stream: every message whose RECEIPT came is there after the
/// restart, with the same epoch and no gap in the offsets, and the library's client — which
/// reconnects and resumes with x-since by itself — gets every offset exactly once. Queue
/// messages confirmed before the kill are delivered after it.
#[test]
fn kill_9_mid_stream_loses_no_confirmed_message_and_the_client_resumes_without_gaps() {
    const TOTAL: u64 = 1_500;
    const KILL_AFTER: u64 = 600;
    let dir = temp_dir("kill9");
    let (mut broker, port) = start_broker(&dir, 0);

    let publisher = Arc::new(connected(port));
    for i in 1..=50 {
        publisher
            .send_with_receipt("/queue/kept", &[], format!("q{i}"), WAIT)
            .unwrap();
    }
    let subscriber = connected(port);
    let sub = subscriber
        .subscribe_confirmed("/topic/stream", AckMode::Auto, &[], WAIT)
        .unwrap();

    let confirmed = Arc::new(AtomicU64::new(0));
    let sender = {
        let (publisher, confirmed) = (publisher.clone(), confirmed.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut i = 1;
            while i <= TOTAL {
                assert!(Instant::now() < deadline, "publishing took too long");
                // Retried until confirmed: a message whose receipt the kill swallowed may be
                // there twice (at-least-once on the publishing side), never missing.
                if publisher
                    .send_with_receipt("/topic/stream", &[], i.to_string(), WAIT)
                    .is_ok()
                {
                    confirmed.store(i, Ordering::Release);
                    i += 1;
                } else {
                    publisher.wait_connected(WAIT);
                }
            }
        })
    };

    let mut received: Vec<(u64, String, String)> = Vec::new(); // offset, epoch, body
    let mut recovered = Vec::new();
    let mut killed_at = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !received.iter().any(|(_, _, b)| b == &TOTAL.to_string()) {
        assert!(
            Instant::now() < deadline,
            "stream did not complete: {} received",
            received.len()
        );
        if killed_at.is_none() && confirmed.load(Ordering::Acquire) >= KILL_AFTER {
            broker.kill().unwrap(); // SIGKILL: no shutdown code runs
            broker.wait().unwrap();
            killed_at = Some(confirmed.load(Ordering::Acquire));
            broker = start_broker(&dir, port).0;
        }
        let mut events = Vec::new();
        subscriber
            .poll_events(&mut events, 1000, Duration::from_millis(100))
            .unwrap();
        for event in events {
            match event {
                ClientEvent::Message(m) => {
                    assert_eq!(m.subscription, sub);
                    received.push((
                        m.header("x-offset").unwrap().parse().unwrap(),
                        m.header("x-epoch").unwrap().to_string(),
                        String::from_utf8(m.body.to_vec()).unwrap(),
                    ));
                }
                ClientEvent::Resubscribed { recovered: r, .. } => recovered.push(r),
                _ => {}
            }
        }
    }
    sender.join().unwrap();
    let killed_at = killed_at.expect("the broker was killed mid-stream");
    assert!(killed_at < TOTAL, "killed mid-stream");

    let offsets: Vec<u64> = received.iter().map(|(o, _, _)| *o).collect();
    let expected: Vec<u64> = (1..=offsets.len() as u64).collect();
    assert_eq!(
        offsets, expected,
        "every offset once, in order: 0 gaps, 0 duplicates"
    );
    assert!(
        received.iter().all(|(_, e, _)| *e == received[0].1),
        "one epoch across the kill"
    );
    assert_eq!(recovered, [true], "one resume, recovered");
    let mut bodies: Vec<u64> = received
        .iter()
        .map(|(_, _, b)| b.parse().unwrap())
        .collect();
    bodies.dedup(); // a retried publish right after the kill may be there twice in a row
    let all: Vec<u64> = (1..=TOTAL).collect();
    assert_eq!(bodies, all, "every confirmed message, in publish order");

    let consumer = connected(port);
    consumer
        .subscribe_confirmed("/queue/kept", AckMode::Auto, &[], WAIT)
        .unwrap();
    let mut queued = Vec::new();
    let deadline = Instant::now() + WAIT;
    while queued.len() < 50 && Instant::now() < deadline {
        let mut events = Vec::new();
        consumer
            .poll_events(&mut events, 100, Duration::from_millis(100))
            .unwrap();
        for event in events {
            if let ClientEvent::Message(m) = event {
                queued.push(String::from_utf8(m.body.to_vec()).unwrap());
            }
        }
    }
    let expected: Vec<String> = (1..=50).map(|i| format!("q{i}")).collect();
    assert_eq!(queued, expected, "queue messages confirmed before the kill");
    consumer.disconnect(Duration::from_millis(500)).ok();
    subscriber.disconnect(Duration::from_millis(500)).ok();
    publisher.disconnect(Duration::from_millis(500)).ok();
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
