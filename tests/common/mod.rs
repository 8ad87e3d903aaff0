//! Shared helpers for the `server_*` integration tests: a test server wrapper and a small async
//! STOMP client over WebSocket (tokio-tungstenite) and raw TCP, with its own frame codec so
//! that the tests do not just check the server's codec against itself.
//!
//! Every wait is bounded by [`WAIT`]; absence of a frame is proven with a receipt round-trip
//! ([`Client::barrier`]), never with a sleep.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsbroker::{Server, ServerConfig};

/// Upper bound of every single wait in the tests.
pub const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// A configuration listening on ephemeral ports, WebSocket and TCP.
pub fn config() -> ServerConfig {
    {
        let mut c = ServerConfig::default();
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.tcp_listen = Some("127.0.0.1:0".parse().unwrap());
        c.worker_threads = 2;
        c
    }
}

/// A started server; stopped (off the test's runtime) when dropped if the test did not.
pub struct TestServer {
    pub server: Arc<Server>,
    pub ws: SocketAddr,
    pub tcp: SocketAddr,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(config())
    }

    /// Wraps a server the test configured and started itself.
    pub fn from_server(server: Server) -> TestServer {
        TestServer::from_arc(Arc::new(server))
    }

    /// Wraps a started server shared with the test.
    pub fn from_arc(server: Arc<Server>) -> TestServer {
        let ws = server.local_addr().expect("ws address");
        let tcp = server.tcp_local_addr().expect("tcp address");
        TestServer { server, ws, tcp }
    }

    pub fn start_with(config: ServerConfig) -> TestServer {
        let server = Server::new(config).expect("valid config");
        server.start().expect("server starts");
        let ws = server.local_addr().expect("ws address");
        let tcp = server.tcp_local_addr().expect("tcp address");
        TestServer {
            server: Arc::new(server),
            ws,
            tcp,
        }
    }

    /// `Server::stop` on a blocking thread, so that this test's runtime keeps running the
    /// clients while the server closes them.
    pub async fn stop(&self) -> wsbroker::Result<()> {
        self.stop_with_grace(Duration::from_secs(2)).await
    }

    pub async fn stop_with_grace(&self, grace: Duration) -> wsbroker::Result<()> {
        let server = self.server.clone();
        tokio::time::timeout(
            Duration::from_secs(10),
            tokio::task::spawn_blocking(move || server.stop(grace)),
        )
        .await
        .expect("stop returns in time")
        .expect("stop does not panic")
    }

    /// End of a test whose clients are still open (and not being read, so they cannot answer
    /// the server's close): stop with a short grace.
    pub async fn finish(&self) {
        self.stop_with_grace(Duration::from_millis(50))
            .await
            .expect("server stops");
    }

    pub async fn ws_client(&self) -> Client {
        Client::ws(self.ws).await
    }

    pub async fn tcp_client(&self) -> Client {
        Client::tcp(self.tcp).await
    }

    /// A connected STOMP 1.2 WebSocket client.
    pub async fn ws_connected(&self, login: Option<&str>) -> Client {
        let mut c = self.ws_client().await;
        c.connect_as(login).await;
        c
    }

    /// A connected STOMP 1.2 TCP client.
    pub async fn tcp_connected(&self, login: Option<&str>) -> Client {
        let mut c = self.tcp_client().await;
        c.connect_as(login).await;
        c
    }

    /// Polls `cond` on the stats until it holds (bounded by [`WAIT`]).
    pub async fn wait_stats(&self, what: &str, cond: impl Fn(&wsbroker::Stats) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stats = self.server.stats();
            if cond(&stats) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("stats never satisfied '{what}': {stats:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Deref for TestServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.server.is_running() {
            // Never block (or drop a runtime) inside the test's async context.
            let server = self.server.clone();
            std::thread::spawn(move || {
                let _ = server.stop(Duration::from_millis(200));
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frames: own codec
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ver {
    V10,
    V11,
    V12,
}

impl Ver {
    pub fn parse(s: &str) -> Ver {
        match s {
            "1.0" => Ver::V10,
            "1.1" => Ver::V11,
            "1.2" => Ver::V12,
            other => panic!("unexpected version {other:?}"),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Ver::V10 => "1.0",
            Ver::V11 => "1.1",
            Ver::V12 => "1.2",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?} body={:?}", self.command, self.headers, {
            let b = String::from_utf8_lossy(&self.body);
            if b.len() > 200 {
                format!("{}...({} bytes)", &b[..200], self.body.len())
            } else {
                b.into_owned()
            }
        })
    }
}

impl Frame {
    pub fn new(command: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Frame {
        Frame {
            command: command.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_ref().to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header that must be present.
    pub fn h(&self, name: &str) -> &str {
        self.header(name)
            .unwrap_or_else(|| panic!("header '{name}' missing in {self:?}"))
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

fn escapes(version: Ver, command: &str) -> bool {
    version != Ver::V10 && !matches!(command, "CONNECT" | "STOMP" | "CONNECTED")
}

fn escape(s: &str, version: Ver) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            ':' => out.push_str("\\c"),
            '\r' if version == Ver::V12 => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('r') => out.push('\r'),
            other => panic!("server wrote an invalid escape \\{other:?} in {s:?}"),
        }
    }
    out
}

/// Encodes a frame the way a client would; a `content-length` is added for non-empty bodies
/// unless the frame already has one.
pub fn encode(frame: &Frame, version: Ver) -> Vec<u8> {
    let esc = escapes(version, &frame.command);
    let mut out = Vec::with_capacity(64 + frame.body.len());
    out.extend_from_slice(frame.command.as_bytes());
    out.push(b'\n');
    for (k, v) in &frame.headers {
        if esc {
            out.extend_from_slice(escape(k, version).as_bytes());
            out.push(b':');
            out.extend_from_slice(escape(v, version).as_bytes());
        } else {
            out.extend_from_slice(k.as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'\n');
    }
    if !frame.body.is_empty() && frame.header("content-length").is_none() {
        out.extend_from_slice(format!("content-length:{}\n", frame.body.len()).as_bytes());
    }
    out.push(b'\n');
    out.extend_from_slice(&frame.body);
    out.push(0);
    out
}

/// What a client observes.
#[derive(Debug, Clone)]
pub enum Event {
    Frame(Frame),
    /// One EOL between frames.
    Heartbeat,
    /// The connection ended; `code` is the WebSocket close code (None on TCP or without one).
    Closed {
        code: Option<u16>,
        reason: String,
    },
}

fn find(hay: &[u8], from: usize, byte: u8) -> Option<usize> {
    hay[from..]
        .iter()
        .position(|&b| b == byte)
        .map(|i| i + from)
}

/// Takes one event (heart-beat EOL or complete frame) off the front of `buf`.
fn parse(buf: &mut Vec<u8>, version: Ver) -> Option<Event> {
    if buf.first() == Some(&b'\n') {
        buf.remove(0);
        return Some(Event::Heartbeat);
    }
    if buf.starts_with(b"\r\n") {
        buf.drain(..2);
        return Some(Event::Heartbeat);
    }
    let mut lines = Vec::new();
    let mut pos = 0;
    loop {
        let end = find(buf, pos, b'\n')?;
        let line = &buf[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = end + 1;
        if line.is_empty() {
            break;
        }
        lines.push(String::from_utf8(line.to_vec()).expect("utf-8 header line"));
    }
    let command = lines.remove(0);
    let esc = escapes(version, &command);
    let headers: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let (k, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {l:?}"));
            if esc {
                (unescape(k), unescape(v))
            } else {
                (k.to_string(), v.to_string())
            }
        })
        .collect();
    let content_length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.trim().parse::<usize>().expect("numeric content-length"));
    let body_end = match content_length {
        Some(n) => {
            if buf.len() < pos + n + 1 {
                return None;
            }
            assert_eq!(
                buf[pos + n],
                0,
                "frame not NUL-terminated after content-length"
            );
            pos + n
        }
        None => find(buf, pos, 0)?,
    };
    let body = buf[pos..body_end].to_vec();
    buf.drain(..=body_end);
    Some(Event::Frame(Frame {
        command,
        headers,
        body,
    }))
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

enum Io {
    Ws(Box<Ws>),
    Tcp(TcpStream),
}

pub struct Client {
    io: Io,
    buf: Vec<u8>,
    pub version: Ver,
    /// Events read but not yet consumed (pushed back by receipt waits).
    pending: VecDeque<Event>,
    closed: Option<Event>,
    /// Heart-beat EOLs seen so far.
    pub heartbeats: usize,
    next_receipt: u64,
    /// The `session` header of CONNECTED.
    pub session: Option<u64>,
}

impl Client {
    fn new(io: Io) -> Client {
        Client {
            io,
            buf: Vec::new(),
            version: Ver::V10,
            pending: VecDeque::new(),
            closed: None,
            heartbeats: 0,
            next_receipt: 1,
            session: None,
        }
    }

    /// A WebSocket connection to `/ws` asking for the `v12.stomp` subprotocol.
    pub async fn ws(addr: SocketAddr) -> Client {
        Client::ws_with(addr, Some("v12.stomp")).await
    }

    pub async fn ws_with(addr: SocketAddr, protocol: Option<&str>) -> Client {
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        if let Some(p) = protocol {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
        }
        // Room for the largest frames tests send (tungstenite's default frame limit is 16 MiB).
        let mut limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
        limits.max_frame_size = Some(64 << 20);
        limits.max_message_size = Some(64 << 20);
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(limits), false);
        let (ws, response) = tokio::time::timeout(WAIT, connecting)
            .await
            .expect("websocket handshake in time")
            .expect("websocket handshake succeeds");
        if let Some(p) = protocol {
            assert_eq!(
                response
                    .headers()
                    .get("Sec-WebSocket-Protocol")
                    .map(|v| v.to_str().unwrap()),
                Some(p),
                "server selects the requested subprotocol"
            );
        }
        Client::new(Io::Ws(Box::new(ws)))
    }

    /// A WebSocket connection made with this request (path, query, headers as the test
    /// wants them); the handshake's refusal is returned, not panicked on.
    pub async fn ws_request(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let connecting = tokio_tungstenite::connect_async(request);
        let (ws, _) = tokio::time::timeout(WAIT, connecting)
            .await
            .expect("websocket handshake answered in time")?;
        Ok(Client::new(Io::Ws(Box::new(ws))))
    }

    pub async fn tcp(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("tcp connect in time")
            .expect("tcp connect");
        stream.set_nodelay(true).unwrap();
        Client::new(Io::Tcp(stream))
    }

    /// A TCP client with a small receive buffer (for slow-consumer tests).
    pub async fn tcp_small_buffer(addr: SocketAddr, recv_buffer: u32) -> Client {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(recv_buffer).unwrap();
        let stream = tokio::time::timeout(WAIT, socket.connect(addr))
            .await
            .expect("tcp connect in time")
            .expect("tcp connect");
        stream.set_nodelay(true).unwrap();
        Client::new(Io::Tcp(stream))
    }

    pub fn is_ws(&self) -> bool {
        matches!(self.io, Io::Ws(_))
    }

    // --- writing ---

    /// Writes bytes as they are: one WebSocket text (or binary, if not UTF-8) message, or
    /// straight onto the TCP stream.
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        let result = match &mut self.io {
            Io::Ws(ws) => {
                let msg = match std::str::from_utf8(bytes) {
                    Ok(s) => WsMessage::text(s.to_string()),
                    Err(_) => WsMessage::binary(bytes.to_vec()),
                };
                tokio::time::timeout(WAIT, ws.send(msg))
                    .await
                    .expect("ws write in time")
                    .map_err(|e| e.to_string())
            }
            Io::Tcp(s) => tokio::time::timeout(WAIT, s.write_all(bytes))
                .await
                .expect("tcp write in time")
                .map_err(|e| e.to_string()),
        };
        result.expect("write succeeds");
    }

    /// Like `write_raw` but tolerates a connection the server already closed.
    pub async fn try_write_raw(&mut self, bytes: &[u8]) -> bool {
        match &mut self.io {
            Io::Ws(ws) => {
                let msg = WsMessage::binary(bytes.to_vec());
                matches!(tokio::time::timeout(WAIT, ws.send(msg)).await, Ok(Ok(())))
            }
            Io::Tcp(s) => matches!(
                tokio::time::timeout(WAIT, s.write_all(bytes)).await,
                Ok(Ok(()))
            ),
        }
    }

    pub async fn send_frame(&mut self, frame: &Frame) {
        let bytes = encode(frame, self.version);
        self.write_raw(&bytes).await;
    }

    pub async fn frame(&mut self, command: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) {
        self.send_frame(&Frame::new(command, headers, body)).await;
    }

    // --- reading ---

    async fn read_more(&mut self) -> Option<Event> {
        match &mut self.io {
            Io::Ws(ws) => loop {
                match ws.next().await {
                    None => {
                        return Some(Event::Closed {
                            code: None,
                            reason: String::new(),
                        });
                    }
                    Some(Err(_)) => {
                        return Some(Event::Closed {
                            code: None,
                            reason: String::new(),
                        });
                    }
                    Some(Ok(WsMessage::Text(t))) => {
                        self.buf.extend_from_slice(t.as_bytes());
                        return None;
                    }
                    Some(Ok(WsMessage::Binary(b))) => {
                        self.buf.extend_from_slice(&b);
                        return None;
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        let (code, reason) = match frame {
                            Some(f) => (Some(u16::from(f.code)), f.reason.to_string()),
                            None => (None, String::new()),
                        };
                        return Some(Event::Closed { code, reason });
                    }
                    Some(Ok(_)) => continue,
                }
            },
            Io::Tcp(s) => {
                let mut chunk = [0u8; 16 * 1024];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => Some(Event::Closed {
                        code: None,
                        reason: String::new(),
                    }),
                    Ok(n) => {
                        self.buf.extend_from_slice(&chunk[..n]);
                        None
                    }
                }
            }
        }
    }

    /// The next event, without a timeout (callers bound it).
    pub async fn next_event(&mut self) -> Event {
        if let Some(e) = self.pending.pop_front() {
            return e;
        }
        loop {
            if let Some(e) = parse(&mut self.buf, self.version) {
                if let Event::Heartbeat = e {
                    self.heartbeats += 1;
                }
                return e;
            }
            if let Some(closed) = &self.closed {
                return closed.clone();
            }
            if let Some(closed) = self.read_more().await {
                self.closed = Some(closed);
            }
        }
    }

    /// The next event within `limit`, or `None`.
    pub async fn event_within(&mut self, limit: Duration) -> Option<Event> {
        tokio::time::timeout(limit, self.next_event()).await.ok()
    }

    /// The next frame, skipping heart-beats; panics on close or timeout.
    pub async fn recv(&mut self) -> Frame {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next_event())
                .await
                .expect("timed out waiting for a frame");
            match event {
                Event::Frame(f) => return f,
                Event::Heartbeat => continue,
                Event::Closed { code, reason } => {
                    panic!(
                        "connection closed (code {code:?}, {reason:?}) while waiting for a frame"
                    )
                }
            }
        }
    }

    /// The next frame, which must be `command`.
    pub async fn expect(&mut self, command: &str) -> Frame {
        let f = self.recv().await;
        assert_eq!(f.command, command, "expected {command}, got {f:?}");
        f
    }

    /// Reads until the connection closes (bounded); returns the frames seen and the close code.
    pub async fn until_closed(&mut self) -> (Vec<Frame>, Option<u16>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut frames = Vec::new();
        loop {
            let event = tokio::time::timeout_at(deadline, self.next_event())
                .await
                .unwrap_or_else(|_| panic!("connection not closed in time; frames: {frames:?}"));
            match event {
                Event::Frame(f) => frames.push(f),
                Event::Heartbeat => {}
                Event::Closed { code, .. } => return (frames, code),
            }
        }
    }

    /// Expects exactly one ERROR frame and then the connection to close. Returns the ERROR and
    /// the WebSocket close code (`None` on TCP).
    pub async fn expect_error_and_close(&mut self) -> (Frame, Option<u16>) {
        let (frames, code) = self.until_closed().await;
        assert_eq!(frames.len(), 1, "expected just an ERROR, got {frames:?}");
        let error = frames.into_iter().next().unwrap();
        assert_eq!(error.command, "ERROR", "{error:?}");
        if self.is_ws() {
            assert!(
                code.is_some(),
                "a WebSocket close frame with a code follows the ERROR"
            );
        }
        (error, code)
    }

    // --- STOMP conveniences ---

    /// CONNECT with these headers (an `accept-version` of 1.2 and a `host` are added when
    /// absent); expects CONNECTED and adopts its version.
    pub async fn connect_with(&mut self, headers: &[(&str, &str)]) -> Frame {
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !headers.iter().any(|(k, _)| *k == "accept-version") {
            all.insert(0, ("accept-version", "1.2"));
        }
        if !headers.iter().any(|(k, _)| *k == "host") {
            all.push(("host", "localhost"));
        }
        self.frame("CONNECT", &all, "").await;
        let connected = self.expect("CONNECTED").await;
        self.version = Ver::parse(connected.header("version").unwrap_or("1.0"));
        self.session = connected.header("session").and_then(|s| s.parse().ok());
        connected
    }

    pub async fn connect_as(&mut self, login: Option<&str>) -> Frame {
        match login {
            Some(l) => self.connect_with(&[("login", l), ("passcode", "x")]).await,
            None => self.connect_with(&[]).await,
        }
    }

    pub async fn connect_version(&mut self, version: &str) -> Frame {
        self.connect_with(&[("accept-version", version)]).await
    }

    fn receipt_id(&mut self) -> String {
        let id = format!("r-{}", self.next_receipt);
        self.next_receipt += 1;
        id
    }

    /// Waits for the RECEIPT `id`; frames before it are returned (and kept for later `recv`
    /// when `keep` is set). An ERROR or a close before it fails the test.
    async fn await_receipt(&mut self, id: &str, keep: bool) -> Vec<Frame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            let event = tokio::time::timeout_at(deadline, self.next_event())
                .await
                .unwrap_or_else(|_| panic!("no RECEIPT {id}; frames before: {before:?}"));
            match event {
                Event::Frame(f) if f.command == "RECEIPT" && f.header("receipt-id") == Some(id) => {
                    break;
                }
                Event::Frame(f) if f.command == "ERROR" => {
                    panic!("ERROR while waiting for RECEIPT {id}: {f:?}")
                }
                Event::Frame(f) => before.push(f),
                Event::Heartbeat => {}
                Event::Closed { code, reason } => {
                    panic!("closed ({code:?} {reason:?}) while waiting for RECEIPT {id}")
                }
            }
        }
        if keep {
            for f in before.iter().rev() {
                self.pending.push_front(Event::Frame(f.clone()));
            }
        }
        before
    }

    /// Sends `command` with a fresh `receipt` header and waits for the RECEIPT; frames that
    /// arrived before it stay queued for `recv`.
    pub async fn request(&mut self, command: &str, headers: &[(&str, &str)], body: &[u8]) {
        let id = self.receipt_id();
        let mut all = headers.to_vec();
        all.push(("receipt", &id));
        self.frame(command, &all, body).await;
        self.await_receipt(&id, true).await;
    }

    /// SUBSCRIBE (auto ack) with a receipt.
    pub async fn subscribe(&mut self, destination: &str, id: &str) {
        self.subscribe_with(destination, id, &[]).await;
    }

    pub async fn subscribe_with(&mut self, destination: &str, id: &str, extra: &[(&str, &str)]) {
        let mut headers = vec![("destination", destination), ("id", id)];
        headers.extend_from_slice(extra);
        self.request("SUBSCRIBE", &headers, b"").await;
    }

    /// SUBSCRIBE (id `s`) with `extra` headers and a receipt: the RECEIPT and the MESSAGEs
    /// that arrived before it (a history replay, a presence snapshot).
    pub async fn subscribe_with_receipt(
        &mut self,
        destination: &str,
        extra: &[(&str, &str)],
    ) -> (Frame, Vec<Frame>) {
        let mut headers = vec![
            ("destination", destination),
            ("id", "s"),
            ("receipt", "sub"),
        ];
        headers.extend_from_slice(extra);
        self.frame("SUBSCRIBE", &headers, "").await;
        let mut before = Vec::new();
        loop {
            let f = self.recv().await;
            match f.command.as_str() {
                "RECEIPT" => return (f, before),
                "MESSAGE" => before.push(f),
                other => panic!("{other} while subscribing: {f:?}"),
            }
        }
    }

    /// SEND without a receipt.
    pub async fn send(&mut self, destination: &str, body: impl AsRef<[u8]>) {
        self.frame("SEND", &[("destination", destination)], body)
            .await;
    }

    /// SEND with a receipt: when it returns, the broker has routed the message.
    pub async fn send_sync(&mut self, destination: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut all = vec![("destination", destination)];
        all.extend_from_slice(headers);
        self.request("SEND", &all, body).await;
    }

    /// A side-effect-free receipt round trip (BEGIN + ABORT of a private transaction): returns
    /// every frame that arrived before the RECEIPT (consumed, including earlier queued ones).
    pub async fn barrier(&mut self) -> Vec<Frame> {
        let id = self.receipt_id();
        let tx = format!("barrier-{id}");
        self.frame("BEGIN", &[("transaction", &tx)], "").await;
        self.frame("ABORT", &[("transaction", &tx), ("receipt", &id)], "")
            .await;
        let mut before: Vec<Frame> = self
            .pending
            .drain(..)
            .filter_map(|e| match e {
                Event::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        before.extend(self.await_receipt(&id, false).await);
        before
    }

    /// Asserts that no frame is waiting (proven with a barrier).
    pub async fn assert_quiet(&mut self) {
        let frames = self.barrier().await;
        assert!(frames.is_empty(), "unexpected frames: {frames:?}");
    }

    /// Receives `n` MESSAGE frames.
    pub async fn messages(&mut self, n: usize) -> Vec<Frame> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.expect("MESSAGE").await);
        }
        out
    }

    /// DISCONNECT with a receipt; waits for the receipt and the close.
    pub async fn disconnect(mut self) {
        let id = self.receipt_id();
        self.frame("DISCONNECT", &[("receipt", &id)], "").await;
        self.await_receipt(&id, false).await;
        let (frames, _) = self.until_closed().await;
        assert!(
            frames.is_empty(),
            "frames after DISCONNECT receipt: {frames:?}"
        );
    }

    /// Closes the transport abruptly (no DISCONNECT).
    pub async fn drop_connection(self) {
        match self.io {
            Io::Ws(mut ws) => {
                let _ = tokio::time::timeout(WAIT, Ws::close(&mut ws, None)).await;
            }
            Io::Tcp(mut s) => {
                let _ = s.shutdown().await;
            }
        }
    }

    /// WebSocket only: sends a ping and waits for the matching pong (skipping STOMP traffic).
    pub async fn ws_ping(&mut self, payload: &[u8]) {
        let Io::Ws(ws) = &mut self.io else {
            panic!("not a WebSocket client")
        };
        ws.send(WsMessage::Ping(payload.to_vec().into()))
            .await
            .expect("ping sent");
        tokio::time::timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Pong(p))) => {
                        assert_eq!(&p[..], payload);
                        return;
                    }
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => {
                        panic!("closed while waiting for a pong")
                    }
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .expect("pong in time");
    }

    /// WebSocket only: starts the closing handshake with `code` and returns the code the
    /// server echoes.
    pub async fn ws_close(mut self, code: u16) -> Option<u16> {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let Io::Ws(ws) = &mut self.io else {
            panic!("not a WebSocket client")
        };
        ws.send(WsMessage::Close(Some(CloseFrame {
            code: code.into(),
            reason: "bye".into(),
        })))
        .await
        .expect("close sent");
        tokio::time::timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("close echoed in time")
    }

    /// Reads raw bytes until `n` NUL-terminated frames (ignoring leading EOLs) are in the
    /// buffer, and returns them verbatim, NULs included. Only for tests asserting exact bytes.
    pub async fn raw_frames(&mut self, n: usize) -> Vec<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut out = Vec::new();
        while out.len() < n {
            while self.buf.first().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.remove(0);
            }
            if let Some(end) = find(&self.buf, 0, 0) {
                out.push(self.buf.drain(..=end).collect());
                continue;
            }
            let closed = tokio::time::timeout_at(deadline, self.read_more())
                .await
                .expect("raw frame in time");
            if let Some(e) = closed {
                panic!("closed while reading raw frames: {e:?}; got {out:?}");
            }
        }
        out
    }
}

/// Pulls `"key":"value"` or `"key":number` out of a flat JSON-ish object (test handlers only).
pub fn json_field(body: &str, key: &str) -> Option<String> {
    let pat = format!("\"{key}\"");
    let rest = &body[body.find(&pat)? + pat.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if let Some(s) = rest.strip_prefix('"') {
        Some(s[..s.find('"')?].to_string())
    } else {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        Some(rest[..end].to_string())
    }
}
