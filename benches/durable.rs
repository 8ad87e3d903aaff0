//! The durable store's cost (issue 15), side by side with RabbitMQ's persistent queues:
//!
//! 1. **confirmed sends**: P publishers, each sending a 256 B message to a queue and waiting
//!    for its RECEIPT before the next (a receipt from a durable target means "on disk");
//! 2. **pipelined sends**: one publisher sends M messages without waiting (a receipt on the
//!    last), then one consumer drains them.
//!
//! Targets: wsbroker in memory, wsbroker with `--data-dir` and fsync `every-message`, and with
//! a 5 ms batch window, RabbitMQ STOMP (61613, `persistent:true`, when it runs here).
//!
//! ```text
//! cargo bench --bench durable              # full run (about a minute on 2 cores)
//! cargo bench --bench durable -- --quick   # 1/10 of the work
//! ```
//!
//! Run without `--bench` (as `cargo test --benches` does) it is a tiny smoke run. Everything
//! is on 127.0.0.1; every loop is bounded; the RabbitMQ queue is drained again.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbroker::{FsyncPolicy, Server, ServerConfig, StoreConfig};

const BODY: [u8; 256] = [b'x'; 256];
const WAIT: Duration = Duration::from_secs(30);

/// A STOMP connection over TCP, just enough for the bench.
struct Stomp {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Stomp {
    async fn connect(addr: SocketAddr) -> Stomp {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.write_all(
            b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\0",
        )
        .await
        .unwrap();
        let mut stomp = Stomp {
            tcp,
            buf: Vec::new(),
        };
        let (command, _) = stomp.frame().await;
        assert_eq!(command, "CONNECTED");
        stomp
    }

    fn send_frame(destination: &str, receipt: Option<u64>) -> Vec<u8> {
        let mut f =
            format!("SEND\ndestination:{destination}\npersistent:true\ncontent-length:256\n");
        if let Some(r) = receipt {
            f.push_str(&format!("receipt:{r}\n"));
        }
        f.push('\n');
        let mut bytes = f.into_bytes();
        bytes.extend_from_slice(&BODY);
        bytes.push(0);
        bytes
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    /// The next frame: command and whole text (heart-beat newlines skipped).
    async fn frame(&mut self) -> (String, String) {
        loop {
            while self.buf.first() == Some(&b'\n') || self.buf.first() == Some(&b'\r') {
                self.buf.remove(0);
            }
            if let Some(end) = self.buf.iter().position(|b| *b == 0) {
                let frame: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&frame).into_owned();
                let command = text.lines().next().unwrap_or_default().to_string();
                return (command, text);
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
                .await
                .expect("a frame in time")
                .unwrap();
            assert!(n > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn expect_receipt(&mut self) {
        let (command, text) = self.frame().await;
        assert_eq!(command, "RECEIPT", "{text}");
    }
}

/// Confirmed sends: `publishers` x `each`, each waiting for its receipt. Messages/s and the
/// median receipt latency in µs.
async fn confirmed(addr: SocketAddr, queue: &str, publishers: usize, each: usize) -> (f64, f64) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let queue = queue.to_string();
        tasks.push(tokio::spawn(async move {
            let mut c = Stomp::connect(addr).await;
            let mut samples = Vec::with_capacity(each);
            for i in 0..each {
                let t = Instant::now();
                c.write(&Stomp::send_frame(&queue, Some(i as u64))).await;
                c.expect_receipt().await;
                samples.push(t.elapsed().as_secs_f64() * 1e6);
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap());
    }
    let rate = samples.len() as f64 / start.elapsed().as_secs_f64();
    samples.sort_by(f64::total_cmp);
    (rate, samples[samples.len() / 2])
}

/// Pipelined sends of `n` (a receipt on the last), then a consumer drains them: the publish
/// rate and the drain rate, messages/s.
async fn pipelined(addr: SocketAddr, queue: &str, n: usize) -> (f64, f64) {
    let mut publisher = Stomp::connect(addr).await;
    let start = Instant::now();
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend(Stomp::send_frame(queue, (i + 1 == n).then_some(1)));
        if batch.len() > 64 * 1024 || i + 1 == n {
            publisher.write(&batch).await;
            batch.clear();
        }
    }
    publisher.expect_receipt().await;
    let publish = n as f64 / start.elapsed().as_secs_f64();
    (publish, drain(addr, queue, n).await)
}

/// Consumes `n` messages of `queue` (auto ack); messages/s.
async fn drain(addr: SocketAddr, queue: &str, n: usize) -> f64 {
    let mut consumer = Stomp::connect(addr).await;
    let start = Instant::now();
    consumer
        .write(format!("SUBSCRIBE\ndestination:{queue}\nid:d\nack:auto\n\n\0").as_bytes())
        .await;
    for _ in 0..n {
        let (command, text) = consumer.frame().await;
        assert_eq!(command, "MESSAGE", "{text}");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    // Gone before the next phase: an auto-ack consumer still registered would be handed
    // (and lose, closing) part of the next phase's messages.
    consumer.write(b"DISCONNECT\nreceipt:bye\n\n\0").await;
    consumer.expect_receipt().await;
    rate
}

fn server(store: Option<(&std::path::Path, FsyncPolicy)>) -> Server {
    let mut config = ServerConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.tcp_listen = Some("127.0.0.1:0".parse().unwrap());
    config.worker_threads = 1;
    config.broker.max_queue_depth = 1_000_000;
    config.store = store.map(|(dir, fsync)| {
        let mut s = StoreConfig::new(dir);
        s.fsync = fsync;
        s
    });
    let server = Server::new(config).unwrap();
    server.start().unwrap();
    server
}

fn rabbitmq() -> Option<SocketAddr> {
    let addr: SocketAddr = "127.0.0.1:61613".parse().unwrap();
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .ok()
        .map(|_| addr)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if !bench {
        0.005
    } else if quick {
        0.1
    } else {
        1.0
    };
    let count = |n: usize| ((n as f64 * scale) as usize).max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("wsb-bench-durable-{}", std::process::id()));
    let (single, many, each_many, piped) = (count(2_000), 16, count(500), count(100_000));
    println!(
        "== 256 B messages to a queue, server: 1 IO thread; confirmed: each publisher waits for \
         its RECEIPT; pipelined: {piped} sent, receipt on the last, then drained"
    );
    println!(
        "{:>26} | {:>22} | {:>22} | {:>12} | {:>10}",
        "target", "1 publisher msg/s (p50)", "16 publishers msg/s (p50)", "pipelined/s", "drain/s"
    );
    let mut targets: Vec<(String, Option<FsyncPolicy>)> = vec![
        ("wsbroker, memory".into(), None),
        (
            "wsbroker, every-message".into(),
            Some(FsyncPolicy::EveryMessage),
        ),
        (
            "wsbroker, 5ms window".into(),
            Some(FsyncPolicy::Batched(Duration::from_millis(5))),
        ),
    ];
    if rabbitmq().is_some() {
        targets.push(("RabbitMQ persistent".into(), None));
    } else {
        println!("(RabbitMQ STOMP is not reachable on 127.0.0.1:61613: its row is skipped)");
    }
    for (name, fsync) in targets {
        let _ = std::fs::remove_dir_all(&dir);
        let rabbit = name.starts_with("RabbitMQ");
        let s = (!rabbit).then(|| server(fsync.map(|f| (dir.as_path(), f))));
        let addr = match &s {
            Some(s) => s.tcp_local_addr().unwrap(),
            None => rabbitmq().unwrap(),
        };
        let queue = "/queue/wsbroker-bench-durable";
        let (one, one_p50) = runtime.block_on(confirmed(addr, queue, 1, single));
        runtime.block_on(drain(addr, queue, single));
        let (sixteen, sixteen_p50) = runtime.block_on(confirmed(addr, queue, many, each_many));
        runtime.block_on(drain(addr, queue, many * each_many));
        let (publish, drained) = runtime.block_on(pipelined(addr, queue, piped));
        println!(
            "{name:>26} | {one:>12.0} ({one_p50:>5.0} µs) | {sixteen:>12.0} ({sixteen_p50:>5.0} µs) | {publish:>12.0} | {drained:>10.0}"
        );
        if let Some(s) = s {
            s.stop(Duration::from_secs(2)).unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
