//! Measures what permessage-deflate costs and saves on a fan-out: bytes on the wire and the
//! server's CPU time for ~2 KiB JSON messages published to many subscribers, once with
//! subscribers that negotiate compression and once with subscribers that do not.
//!
//! A measurement, not a test: it prints figures and asserts nothing about timing.
//!
//! The same for a raw (non-STOMP) broadcast endpoint: the messages come from one more raw
//! client on the endpoint, and every other client gets them as they are.
//!
//! ```text
//! cargo run --release --example deflate_fanout                 # 200 subscribers × 2,000 messages
//! cargo run --release --example deflate_fanout -- 50 500 1     # subscribers, messages, level
//! ```
//!
//! The broker runs in this process; its CPU time is that of its `wsbroker-worker` threads
//! (read from `/proc/self/task`), where the writers run and compress. The publishing thread
//! (the host API's `publish`) is reported separately. The subscribers run on one extra thread
//! and only parse frame headers (they do not inflate), so they stay cheap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbroker::{Server, ServerConfig};

const DEST: &str = "/topic/prices";
const BATCH: u64 = 100;
const WAIT: Duration = Duration::from_secs(30);

/// A ~2 KiB JSON document whose numbers change with `seq` (so no two messages are equal).
fn json_body(seq: u64) -> String {
    let items: Vec<String> = (0..35)
        .map(|i| {
            format!(
                "{{\"symbol\":\"SYM{i:02}\",\"bid\":{}.{:02},\"ask\":{}.{:02},\"volume\":{}}}",
                100 + (seq + i) % 37,
                (seq * 7 + i) % 100,
                101 + (seq + i) % 37,
                (seq * 3 + i) % 100,
                (seq * 131 + i * 17) % 100_000
            )
        })
        .collect();
    format!("{{\"seq\":{seq},\"quotes\":[{}]}}", items.join(","))
}

/// Total CPU seconds (user + system) of this process' threads whose name starts with `prefix`.
fn threads_cpu_secs(prefix: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3; utime and stime are 14 and 15.
        if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
            total += field(14).unwrap_or(0) + field(15).unwrap_or(0);
        }
    }
    total as f64 / ticks
}

/// CPU seconds of the calling thread.
fn this_thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    (field(14).unwrap_or(0) + field(15).unwrap_or(0)) as f64 / 100.0
}

fn client_frame(payload: &[u8]) -> Vec<u8> {
    wsbroker::ws::frame::encode_client_frame(0x81, payload, [1, 2, 3, 4])
}

/// A subscriber that counts MESSAGE frames and the bytes it reads after the handshake.
async fn subscriber(
    addr: SocketAddr,
    raw: bool,
    offer_deflate: bool,
    ready: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    wire_bytes: Arc<AtomicU64>,
    compressed_frames: Arc<AtomicU64>,
) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let ext = if offer_deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    let path = if raw { RAW_PATH } else { "/ws" };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let head_end = loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    assert_eq!(head.contains("permessage-deflate"), offer_deflate, "{head}");
    buf.drain(..head_end);
    // A raw client is a member of the endpoint once its handshake completed.
    let mut saw_receipt = raw;
    if raw {
        ready.fetch_add(1, Ordering::Relaxed);
    } else {
        s.write_all(&client_frame(
            b"CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\0",
        ))
        .await
        .unwrap();
        s.write_all(&client_frame(
            format!("SUBSCRIBE\nid:0\ndestination:{DEST}\nreceipt:ready\n\n\0").as_bytes(),
        ))
        .await
        .unwrap();
    }
    loop {
        // Parse every complete frame in the buffer.
        loop {
            if buf.len() < 2 {
                break;
            }
            let (len, start) = match buf[1] & 0x7F {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < start + len {
                break;
            }
            let b0 = buf[0];
            if !saw_receipt {
                if buf[start..start + len].starts_with(b"RECEIPT") {
                    saw_receipt = true;
                    ready.fetch_add(1, Ordering::Relaxed);
                }
            } else if b0 & 0x0F == 0x1 || b0 & 0x0F == 0x2 {
                if b0 & 0x40 != 0 {
                    compressed_frames.fetch_add(1, Ordering::Relaxed);
                }
                received.fetch_add(1, Ordering::Relaxed);
            } else if b0 & 0x0F == 0x8 {
                return;
            }
            buf.drain(..start + len);
        }
        let n = match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if saw_receipt {
            wire_bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Figures {
    wire_bytes: u64,
    compressed: u64,
    worker_cpu: f64,
    publish_cpu: f64,
    elapsed: f64,
}

fn run(subscribers: u64, messages: u64, raw: bool, deflate: bool, level: u32) -> Figures {
    let server = Server::new({
        let mut c = ServerConfig::default();
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.worker_threads = 1;
        c.deflate_level = level;
        c
    })
    .expect("config");
    let broadcast = wsbroker::RawEndpointOptions {
        behaviour: wsbroker::RawBehaviour::Broadcast,
        ..Default::default()
    };
    server
        .add_raw_endpoint(RAW_PATH, broadcast)
        .expect("raw endpoint");
    server.start().expect("start");
    let addr = server.local_addr().expect("address");
    let ready = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let wire = Arc::new(AtomicU64::new(0));
    let compressed = Arc::new(AtomicU64::new(0));
    let clients = std::thread::spawn({
        let (ready, received, wire, compressed) = (
            ready.clone(),
            received.clone(),
            wire.clone(),
            compressed.clone(),
        );
        move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let tasks: Vec<_> = (0..subscribers)
                    .map(|_| {
                        tokio::spawn(subscriber(
                            addr,
                            raw,
                            deflate,
                            ready.clone(),
                            received.clone(),
                            wire.clone(),
                            compressed.clone(),
                        ))
                    })
                    .collect();
                for t in tasks {
                    let _ = t.await;
                }
            });
        }
    });
    let deadline = Instant::now() + WAIT;
    while ready.load(Ordering::Relaxed) < subscribers {
        assert!(Instant::now() < deadline, "subscribers did not get ready");
        std::thread::sleep(Duration::from_millis(5));
    }
    let bodies: Vec<String> = (0..messages).map(json_body).collect();
    // Raw: the messages come from one more client of the endpoint (a blocking socket here).
    let mut raw_publisher = raw.then(|| raw_client(addr));
    let worker_before = threads_cpu_secs("wsbroker-worker");
    let publish_before = this_thread_cpu_secs();
    let started = Instant::now();
    for (i, body) in bodies.iter().enumerate() {
        match raw_publisher.as_mut() {
            Some(socket) => {
                use std::io::Write;
                socket
                    .write_all(&client_frame(body.as_bytes()))
                    .expect("raw publish");
            }
            None => {
                server
                    .publish(DEST, &[("content-type", "application/json")], body.clone())
                    .expect("publish");
            }
        }
        // Stay within the per-connection outbound bound: let each batch drain first.
        if (i as u64 + 1).is_multiple_of(BATCH) {
            let want = (i as u64 + 1) * subscribers;
            let deadline = Instant::now() + WAIT;
            while received.load(Ordering::Relaxed) < want {
                assert!(Instant::now() < deadline, "deliveries stalled");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
    let deadline = Instant::now() + WAIT;
    while received.load(Ordering::Relaxed) < messages * subscribers {
        assert!(Instant::now() < deadline, "deliveries stalled");
        std::thread::sleep(Duration::from_micros(200));
    }
    let figures = Figures {
        wire_bytes: wire.load(Ordering::Relaxed),
        compressed: compressed.load(Ordering::Relaxed),
        worker_cpu: threads_cpu_secs("wsbroker-worker") - worker_before,
        publish_cpu: this_thread_cpu_secs() - publish_before,
        elapsed: started.elapsed().as_secs_f64(),
    };
    server.stop(Duration::from_millis(200)).expect("stop");
    let _ = clients.join();
    figures
}

const RAW_PATH: &str = "/raw";

/// A blocking raw WebSocket client of the broadcast endpoint (no compression offered).
fn raw_client(addr: SocketAddr) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET {RAW_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed during the handshake");
        head.push(byte[0]);
    }
    s
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: SUBSCRIBERS MESSAGES LEVEL"))
        .collect();
    let subscribers = args.first().copied().unwrap_or(200);
    let messages = args.get(1).copied().unwrap_or(2_000);
    let level = args.get(2).copied().unwrap_or(6) as u32;
    let body_len = json_body(1).len();
    println!(
        "fan-out: {subscribers} subscribers × {messages} messages, JSON body ≈ {body_len} B, \
         1 broker worker thread, deflate level {level}"
    );
    println!(
        "{:<14} {:>14} {:>12} {:>12} {:>14} {:>13} {:>10}",
        "mode", "wire bytes", "B/delivery", "compressed", "worker CPU s", "publish CPU s", "wall s"
    );
    let mut plain_bytes = 0;
    for (raw, deflate) in [(false, false), (false, true), (true, false), (true, true)] {
        let f = run(subscribers, messages, raw, deflate, level);
        let deliveries = subscribers * messages;
        let mode = match (raw, deflate) {
            (false, false) => "uncompressed",
            (false, true) => "deflate",
            (true, false) => "raw",
            (true, true) => "raw deflate",
        };
        println!(
            "{:<14} {:>14} {:>12.0} {:>12} {:>14.2} {:>13.2} {:>10.2}",
            mode,
            f.wire_bytes,
            f.wire_bytes as f64 / deliveries as f64,
            f.compressed,
            f.worker_cpu,
            f.publish_cpu,
            f.elapsed
        );
        if deflate {
            println!(
                "wire bytes with deflate: {:.1}% of uncompressed",
                100.0 * f.wire_bytes as f64 / plain_bytes as f64
            );
        } else {
            plain_bytes = f.wire_bytes;
        }
    }
}
