//! Hostile and slow clients: each test drives real sockets on 127.0.0.1 and asserts a bound.
//! Every wait is bounded (by [`common::WAIT`] or an explicit deadline); nothing sleeps and hopes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{Client, TestServer, WAIT, config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// Raw WebSocket helpers (hand-written frames, to send what a well-behaved client library won't)
// ---------------------------------------------------------------------------------------------

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n";

/// Sends the upgrade request and reads the HTTP response head (bounded); returns both.
async fn raw_upgrade(addr: SocketAddr) -> (TcpStream, String) {
    let mut s = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(UPGRADE.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(0) | Err(_) => break,
                Ok(_) => head.push(byte[0]),
            }
        }
    })
    .await
    .expect("upgrade response in time");
    (s, String::from_utf8_lossy(&head).into_owned())
}

/// An upgraded raw WebSocket stream.
async fn raw_ws(addr: SocketAddr) -> TcpStream {
    let (s, head) = raw_upgrade(addr).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// One client frame (FIN set); masked with a fixed key when `masked`.
fn ws_frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x11, 0x22, 0x33, 0x44];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads server frames until a close frame (its code) or the end of the stream (`None`).
async fn raw_close_code(s: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        loop {
            // Parse every complete (unmasked, server) frame in the buffer.
            while buf.len() >= 2 {
                let opcode = buf[0] & 0x0f;
                let (len, at) = match buf[1] & 0x7f {
                    126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                    127 if buf.len() >= 10 => (
                        u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => break,
                    n => (n as usize, 2),
                };
                if buf.len() < at + len {
                    break;
                }
                if opcode == 0x8 {
                    return (len >= 2).then(|| u16::from_be_bytes([buf[at], buf[at + 1]]));
                }
                buf.drain(..at + len);
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("connection closed in time")
}

/// Reads until the peer closes (bounded by `deadline`); returns everything read.
async fn read_to_end_by(s: &mut TcpStream, deadline: tokio::time::Instant) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout_at(deadline, s.read_to_end(&mut out))
        .await
        .expect("closed by the deadline");
    out
}

/// A client that must still be served: a round trip through the broker.
async fn assert_served(server: &TestServer) {
    let mut c = server.tcp_connected(None).await;
    c.subscribe("/topic/alive", "a").await;
    c.send("/topic/alive", "ping").await;
    assert_eq!(c.expect("MESSAGE").await.body_str(), "ping");
    c.disconnect().await;
}

// ---------------------------------------------------------------------------------------------
// Slowloris
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn slowloris_handshakes_are_closed_by_the_handshake_timeout() {
    const ATTACKERS: usize = 200;
    let handshake_timeout = Duration::from_millis(300);
    let server = TestServer::start_with({
        let mut c = config();
        c.handshake_timeout = handshake_timeout;
        c
    });
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + handshake_timeout + Duration::from_secs(2);
    let mut attackers = tokio::task::JoinSet::new();
    for _ in 0..ATTACKERS {
        let mut s = TcpStream::connect(server.ws).await.unwrap();
        s.write_all(b"GET /ws HTT").await.unwrap();
        attackers.spawn(async move {
            let answer = read_to_end_by(&mut s, deadline).await;
            (answer, start.elapsed())
        });
    }
    // A normal client during the attack: connects, subscribes, receives.
    let normal_start = Instant::now();
    let mut normal = server.ws_connected(None).await;
    normal.subscribe("/topic/t", "s").await;
    let mut publisher = server.tcp_connected(None).await;
    publisher.send("/topic/t", "hello").await;
    assert_eq!(normal.expect("MESSAGE").await.body_str(), "hello");
    let normal_took = normal_start.elapsed();
    // Served during the attack, not after it: the attackers are all still open (this takes
    // milliseconds; the attackers stay for the 300 ms handshake timeout).
    let open = server.stats().connections;
    assert!(
        open >= ATTACKERS as u64 + 2,
        "attack over already: {open} open"
    );

    let mut slowest = Duration::ZERO;
    while let Some(joined) = attackers.join_next().await {
        let (answer, at) = joined.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
        slowest = slowest.max(at);
    }
    eprintln!(
        "slowloris: {ATTACKERS} closed after {slowest:?}; normal client took {normal_took:?}"
    );
    assert!(slowest <= handshake_timeout + Duration::from_secs(2));
    normal.disconnect().await;
    publisher.disconnect().await;
    server
        .wait_stats("attackers gone", |s| s.connections == 0)
        .await;
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Slow consumer
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn subscriber_that_never_reads_is_disconnected_while_others_get_everything() {
    const N: usize = 3_000;
    const BURST: usize = 16;
    let server = TestServer::start_with({
        let mut c = config();
        c.broker.max_outbound_messages = 32;
        c.broker.max_outbound_bytes = 64 * 1024;
        // The publisher is paused while the stuck queue is congested, at most this long.
        c.broker.slow_consumer_timeout = Duration::from_millis(300);
        c
    });
    let mut stuck = Client::tcp_small_buffer(server.tcp, 4096).await;
    stuck.connect_as(None).await;
    stuck.subscribe("/topic/firehose", "stuck").await;
    let mut reader = server.ws_connected(None).await;
    reader.subscribe("/topic/firehose", "reader").await;
    let mut publisher = server.tcp_connected(None).await;

    let body = vec![b'x'; 1024];
    let mut received = 0;
    for burst in 0..N.div_ceil(BURST) {
        let to = ((burst + 1) * BURST).min(N);
        for i in burst * BURST..to {
            publisher
                .frame(
                    "SEND",
                    &[("destination", "/topic/firehose"), ("n", &i.to_string())],
                    &body,
                )
                .await;
        }
        while received < to {
            let m = reader.expect("MESSAGE").await;
            assert_eq!(m.h("n"), received.to_string());
            received += 1;
        }
    }
    assert_eq!(received, N);
    server
        .wait_stats("stuck subscriber disconnected", |s| {
            s.slow_consumer_disconnects >= 1 && s.sessions == 2
        })
        .await;
    eprintln!("slow consumer: {:?}", server.stats());
    reader.assert_quiet().await;
    server.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Floods and malformed input
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn heartbeat_and_send_floods_do_not_starve_others() {
    const EOLS: usize = 20_000;
    const SENDS: usize = 5_000;
    let server = TestServer::start();
    let mut watcher = server.tcp_connected(None).await;
    watcher.subscribe("/topic/flood", "w").await;
    for ws in [false, true] {
        let mut flooder = if ws {
            server.ws_connected(None).await
        } else {
            server.tcp_connected(None).await
        };
        let start = Instant::now();
        flooder.write_raw(&vec![b'\n'; EOLS]).await;
        assert_served(&server).await;
        flooder.assert_quiet().await;

        let one = b"SEND\ndestination:/topic/flood\n\nx\0";
        let flood: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * SENDS)
            .collect();
        flooder.write_raw(&flood).await;
        assert_served(&server).await;
        assert_eq!(watcher.messages(SENDS).await.len(), SENDS);
        flooder.assert_quiet().await;
        watcher.assert_quiet().await;
        eprintln!("floods (ws={ws}): {:?}", start.elapsed());
        flooder.disconnect().await;
    }
    server.finish().await;
}

/// A connected session of either transport.
async fn connected(server: &TestServer, ws: bool) -> Client {
    if ws {
        server.ws_connected(None).await
    } else {
        server.tcp_connected(None).await
    }
}

#[tokio::test]
async fn header_bombs_get_an_error_and_close() {
    let server = TestServer::start_with({
        let mut c = config();
        c.frame_limits.max_headers = 16;
        c.frame_limits.max_header_length = 256;
        c
    });
    let many: Vec<(String, String)> = (0..17).map(|i| (format!("h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let long = "v".repeat(300);
    for ws in [false, true] {
        let mut c = connected(&server, ws).await;
        let mut headers = vec![("destination", "/topic/x")];
        headers.extend_from_slice(&many);
        c.frame("SEND", &headers, "").await;
        let (error, _) = c.expect_error_and_close().await;
        assert!(error.h("message").contains("headers"), "{error:?}");

        let mut c = connected(&server, ws).await;
        c.frame("SEND", &[("destination", "/topic/x"), ("big", &long)], "")
            .await;
        let (error, _) = c.expect_error_and_close().await;
        eprintln!("header bomb (ws={ws}): {}", error.h("message"));
    }
    assert_served(&server).await;
    server.finish().await;
}

#[tokio::test]
async fn oversized_frames_are_refused() {
    let server = TestServer::start_with({
        let mut c = config();
        c.frame_limits.max_frame_size = 4096;
        c
    });
    // TCP: an ERROR, then the close.
    let mut c = server.tcp_connected(None).await;
    c.send("/topic/x", vec![b'x'; 8192]).await;
    let (error, _) = c.expect_error_and_close().await;
    eprintln!("oversized (tcp): {}", error.h("message"));
    // WebSocket: a message past the WebSocket limit (frame size + 4 KiB) is closed with 1009.
    let mut c = server.ws_connected(None).await;
    c.send("/topic/x", vec![b'x'; 16 * 1024]).await;
    let (frames, code) = c.until_closed().await;
    assert!(frames.iter().all(|f| f.command == "ERROR"), "{frames:?}");
    assert_eq!(code, Some(1009));
    assert_served(&server).await;
    server.finish().await;
}

#[tokio::test]
async fn unmasked_client_frame_is_closed_with_1002() {
    let server = TestServer::start();
    let mut s = raw_ws(server.ws).await;
    let connect = b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0";
    s.write_all(&ws_frame(0x1, connect, false)).await.unwrap();
    assert_eq!(raw_close_code(&mut s).await, Some(1002));
    assert_served(&server).await;
    server.finish().await;
}

#[tokio::test]
async fn invalid_utf8_text_frame_is_closed_with_1007() {
    let server = TestServer::start();
    let mut s = raw_ws(server.ws).await;
    let mut payload = b"CONNECT\naccept-version:1.2\nhost:".to_vec();
    payload.extend_from_slice(&[0xc3, 0x28, 0xff]);
    payload.extend_from_slice(b"\n\n\0");
    s.write_all(&ws_frame(0x1, &payload, true)).await.unwrap();
    assert_eq!(raw_close_code(&mut s).await, Some(1007));
    assert_served(&server).await;
    server.finish().await;
}

#[tokio::test]
async fn garbage_after_connect_gets_an_error_and_close() {
    let server = TestServer::start();
    let garbage: &[u8] = b"\x01\x02\x7f garbage \xde\xad\xbe\xef\n\xff:\xfe\n\n\0";
    // TCP: CONNECT and the garbage in one write.
    let mut c = server.tcp_client().await;
    let mut bytes = b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0".to_vec();
    bytes.extend_from_slice(garbage);
    c.write_raw(&bytes).await;
    c.expect("CONNECTED").await;
    let (error, _) = c.expect_error_and_close().await;
    eprintln!("garbage (tcp): {}", error.h("message"));
    // WebSocket: the garbage as the message after CONNECT.
    let mut c = server.ws_connected(None).await;
    c.write_raw(garbage).await;
    let (error, code) = c.expect_error_and_close().await;
    eprintln!("garbage (ws): {} {code:?}", error.h("message"));
    assert_served(&server).await;
    server.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Per-address connection limit
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn per_ip_limit_refuses_the_sixth_connection() {
    let server = TestServer::start_with({
        let mut c = config();
        c.max_connections_per_ip = 5;
        c
    });
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(connected(&server, i % 2 == 0).await);
    }
    // The sixth, on the WebSocket listener: 503.
    let (mut s, head) = raw_upgrade(server.ws).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let rest = String::from_utf8_lossy(&read_to_end_by(&mut s, deadline).await).into_owned();
    assert!(
        rest.contains("too many connections from this address"),
        "{head}{rest}"
    );
    // The limit covers both listeners: the TCP one answers with an ERROR frame.
    let mut tcp = server.tcp_client().await;
    let (frames, _) = tcp.until_closed().await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(
        frames[0].h("message"),
        "too many connections from this address"
    );
    let stats = server.stats();
    assert_eq!(stats.connections_refused, 2, "{stats:?}");
    assert_eq!(stats.connections, 5, "{stats:?}");
    // The first five still work.
    for c in &mut clients {
        c.assert_quiet().await;
    }
    // Closing one frees a place.
    clients.pop().unwrap().disconnect().await;
    server
        .wait_stats("one closed", |s| s.connections == 4)
        .await;
    let mut again = server.ws_connected(None).await;
    again.assert_quiet().await;
    assert_eq!(server.stats().connections_refused, 2);
    server.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Connect/disconnect churn
// ---------------------------------------------------------------------------------------------

/// The server under test as a child process (the `wsbroker` binary of this build), so that its
/// resident memory and descriptors are its own, not the test's.
struct ChildServer {
    child: std::process::Child,
    tcp: SocketAddr,
    ws: SocketAddr,
}

impl ChildServer {
    fn start() -> ChildServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wsbroker"))
            .args(["--listen", "127.0.0.1:0", "--tcp-listen", "127.0.0.1:0"])
            .args(["--workers", "2", "--log", "warn"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the wsbroker binary");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut ws, mut tcp) = (None, None);
        while ws.is_none() || tcp.is_none() {
            let line = lines
                .next()
                .expect("wsbroker prints its listeners")
                .unwrap();
            if let Some(url) = line.strip_prefix("wsbroker listening websocket ws://") {
                ws = Some(url.trim_end_matches("/ws").parse().unwrap());
            } else if let Some(addr) = line.strip_prefix("wsbroker listening tcp ") {
                tcp = Some(addr.parse().unwrap());
            }
        }
        ChildServer {
            child,
            ws: ws.unwrap(),
            tcp: tcp.unwrap(),
        }
    }

    fn proc(&self, what: &str) -> std::path::PathBuf {
        format!("/proc/{}/{what}", self.child.id()).into()
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(self.proc("fd")).unwrap().count()
    }

    /// Resident memory in KiB (`VmRSS`).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(self.proc("status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Runs `cycles` connect/CONNECT/DISCONNECT/close cycles (one in ten over WebSocket), a
    /// few at a time, then waits (bounded) until the server's descriptors are back to `fds`.
    async fn churn(&self, cycles: usize, fds: Option<usize>) {
        const CONCURRENCY: usize = 4;
        let (tcp, ws) = (self.tcp, self.ws);
        let workers: Vec<_> = (0..CONCURRENCY)
            .map(|w| {
                tokio::spawn(async move {
                    for i in (w..cycles).step_by(CONCURRENCY) {
                        if i % 10 == 0 {
                            let mut c = Client::ws(ws).await;
                            c.connect_as(None).await;
                            c.disconnect().await;
                        } else {
                            tcp_session(tcp).await;
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.expect("churn worker");
        }
        if let Some(fds) = fds {
            // The server closes its side just after the client sees the close: poll, bounded.
            let deadline = Instant::now() + WAIT;
            while self.open_fds() > fds && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One STOMP session over TCP, its frames written at once: CONNECT, then DISCONNECT with a
/// receipt; reads until the server closes (bounded) and checks it answered both.
async fn tcp_session(addr: SocketAddr) {
    let mut s = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0DISCONNECT\nreceipt:bye\n\n\0")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut answer))
        .await
        .expect("the server closes after the receipt")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("CONNECTED\n") && answer.contains("RECEIPT\nreceipt-id:bye\n"),
        "{answer:?}"
    );
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 10,000 connect/disconnect cycles leave the server's descriptors and resident memory where
/// they were. The baseline is taken after 1,000 warm-up cycles: by then the runtime's threads,
/// the allocator's arenas and per-thread caches have reached their working size, so what
/// remains is growth per connection. The memory bound (4 MiB) is what a leak of 420 bytes per
/// connection would add over 10,000 cycles, well above the allocator's noise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_disconnect_cycles_return_to_baseline() {
    const WARM_UP: usize = 1_000;
    const CYCLES: usize = 10_000;
    const RSS_SLACK_KIB: u64 = 4 * 1024;
    let server = ChildServer::start();
    let idle_fds = server.open_fds();
    server.churn(WARM_UP, Some(idle_fds)).await;
    let (fds, rss) = (server.open_fds(), server.rss_kib());
    let start = Instant::now();
    server.churn(CYCLES, Some(fds)).await;
    let took = start.elapsed();
    let (fds_after, rss_after) = (server.open_fds(), server.rss_kib());
    eprintln!(
        "churn: {CYCLES} cycles in {took:?}; server fds {idle_fds} idle, {fds} -> {fds_after}; \
         RSS {rss} KiB -> {rss_after} KiB"
    );
    assert!(fds_after <= fds, "descriptors leaked: {fds} -> {fds_after}");
    assert!(
        rss_after <= rss + RSS_SLACK_KIB,
        "resident memory grew by {} KiB over {CYCLES} cycles",
        rss_after.saturating_sub(rss)
    );
}

/// A NUL inside a header would end the frame early in every subscriber's stream, and what
/// follows it (`ERROR ...`) would reach them as a frame the publisher wrote. The SEND is a frame
/// error instead, and subscribers, on every transport and version, see nothing from it.
#[tokio::test]
async fn a_nul_in_a_header_cannot_inject_frames_into_subscribers() {
    let server = TestServer::start();
    let mut subscribers = Vec::new();
    for version in ["1.0", "1.1", "1.2"] {
        let mut ws = server.ws_client().await;
        ws.connect_version(version).await;
        ws.subscribe("/topic/inj", "s").await;
        let mut tcp = server.tcp_client().await;
        tcp.connect_version(version).await;
        tcp.subscribe("/topic/inj", "s").await;
        subscribers.push(ws);
        subscribers.push(tcp);
    }
    for sub in &mut subscribers {
        sub.barrier().await;
    }
    let mut attacker = server.tcp_connected(None).await;
    attacker
        .write_raw(
            b"SEND\ndestination:/topic/inj\nx:a\x00ERROR\nmessage:forged by attacker\n\nattacker body\x00",
        )
        .await;
    let (error, _) = attacker.expect_error_and_close().await;
    assert!(
        error.h("message").contains("NUL"),
        "the attacker learns why: {error:?}"
    );
    // A legitimate message afterwards is the first and only thing each subscriber gets.
    server.publish("/topic/inj", &[], "after").unwrap();
    for sub in &mut subscribers {
        let frame = sub.recv().await;
        assert_eq!(frame.command, "MESSAGE", "{frame:?}");
        assert_eq!(frame.body_str(), "after");
        sub.assert_quiet().await;
    }
    server.finish().await;
}

/// The host's API refuses what it could not send safely: a NUL in a header value, NUL/CR/LF in
/// a header name, an empty or control-character destination or subscription pattern.
#[tokio::test]
async fn host_publishes_with_unsendable_headers_or_destinations_are_refused() {
    let server = TestServer::start();
    let invalid =
        |r: wsbroker::Result<usize>| matches!(r, Err(wsbroker::Error::InvalidArgument(_)));
    assert!(invalid(server.publish("/t", &[("x", "a\0b")], "")));
    assert!(invalid(server.publish("/t", &[("x\ny", "v")], "")));
    assert!(invalid(server.publish("/t", &[("", "v")], "")));
    assert!(invalid(server.publish("", &[], "")));
    assert!(invalid(server.publish("/t\nx", &[], "")));
    assert!(invalid(server.publish("/t\0", &[], "")));
    assert!(invalid(server.send_to_user("al\nice", "/queue/x", &[], "")));
    assert!(invalid(server.send_to_session(1, "/t\r", &[], "")));
    assert!(matches!(
        server.subscribe("", |_| {}),
        Err(wsbroker::Error::InvalidArgument(_))
    ));
    assert!(matches!(
        server.subscribe("/t\n", |_| {}),
        Err(wsbroker::Error::InvalidArgument(_))
    ));
    // CR, LF, ':' and '\' in a value are fine: escaped for 1.1/1.2 subscribers.
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/t", "s").await;
    server
        .publish("/t", &[("x-multi", "line one\nline:two\\")], "ok")
        .unwrap();
    let frame = sub.recv().await;
    assert_eq!(frame.h("x-multi"), "line one\nline:two\\");
    server.finish().await;
}
