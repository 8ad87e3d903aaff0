//! SockJS 0.3.3 protocol tests (after sockjs-protocol's `sockjs-protocol-0.3.3.py`), with STOMP
//! as the application: greeting, info, iframe, sessions, every transport, framing, heart-beats,
//! close frames, the response limit, cookies, CORS, HTTP/1.0 and 1.1, plus `/metrics` and
//! static files on the same listener.
//!
//! HTTP is spoken by a small raw client here (not hyper), so that the wire format itself is
//! checked. Every wait is bounded by `WAIT`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{TestServer, WAIT, config};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wsbroker::{ServerConfig, UpgradeDecision};

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.x client
// ---------------------------------------------------------------------------------------------

/// A response head and, for complete requests, its whole body.
#[derive(Debug)]
struct Response {
    version: String,
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// One HTTP connection; reads a response head, then the body as it arrives (de-chunked).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    chunked: bool,
    /// Bytes left in the current chunk (chunked) or of the body (content-length).
    remaining: Option<usize>,
    /// Decoded body bytes not consumed yet.
    body: Vec<u8>,
    eof: bool,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Conn {
            stream,
            buf: Vec::new(),
            chunked: false,
            remaining: None,
            body: Vec::new(),
            eof: false,
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        version: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let mut request = format!("{method} {path} HTTP/{version}\r\nHost: test\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if method == "POST" || !body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).await.expect("write request");
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("data in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads a response head and prepares to read its body.
    async fn head(&mut self, method: &str) -> Response {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(
                self.fill().await,
                "connection closed before a response head"
            );
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).unwrap();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap().trim_start_matches("HTTP/").to_owned();
        let status: u16 = parts.next().unwrap().parse().unwrap();
        let mut headers = HashMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').unwrap();
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        self.chunked = headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let no_body = method == "HEAD" || status == 204 || status == 304;
        self.remaining = if no_body {
            Some(0)
        } else if self.chunked {
            None
        } else {
            headers.get("content-length").map(|v| v.parse().unwrap())
        };
        self.body.clear();
        self.eof = false;
        Response {
            version,
            status,
            headers,
            body: String::new(),
        }
    }

    /// Decodes more body bytes into `self.body`; false at the end of the body.
    async fn more(&mut self) -> bool {
        if self.eof {
            return false;
        }
        loop {
            if self.chunked {
                match self.remaining {
                    Some(0) | None => {
                        // Next chunk-size line (after the previous chunk's CRLF).
                        if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                            let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                            self.buf.drain(..i + 2);
                            if line.is_empty() {
                                continue; // CRLF closing the previous chunk
                            }
                            let size =
                                usize::from_str_radix(line.split(';').next().unwrap(), 16).unwrap();
                            if size == 0 {
                                // Trailer section ends with an empty line.
                                while !self.buf.starts_with(b"\r\n") {
                                    assert!(self.fill().await, "eof in chunked trailer");
                                }
                                self.buf.drain(..2);
                                self.eof = true;
                                return false;
                            }
                            self.remaining = Some(size);
                            continue;
                        }
                    }
                    Some(n) => {
                        if !self.buf.is_empty() {
                            let take = n.min(self.buf.len());
                            self.body.extend(self.buf.drain(..take));
                            self.remaining = Some(n - take);
                            return true;
                        }
                    }
                }
            } else {
                match self.remaining {
                    Some(0) => {
                        self.eof = true;
                        return false;
                    }
                    Some(n) if !self.buf.is_empty() => {
                        let take = n.min(self.buf.len());
                        self.body.extend(self.buf.drain(..take));
                        self.remaining = Some(n - take);
                        return true;
                    }
                    None if !self.buf.is_empty() => {
                        self.body.append(&mut self.buf);
                        return true;
                    }
                    _ => {}
                }
            }
            if !self.fill().await {
                self.eof = true;
                return false;
            }
        }
    }

    /// The body up to and including `delimiter`; `None` at the end of the body.
    async fn until(&mut self, delimiter: &str) -> Option<String> {
        loop {
            let d = delimiter.as_bytes();
            if let Some(i) = self.body.windows(d.len()).position(|w| w == d) {
                let part: Vec<u8> = self.body.drain(..i + d.len()).collect();
                return Some(String::from_utf8(part).unwrap());
            }
            if !self.more().await {
                assert!(
                    self.body.is_empty(),
                    "body ended inside a frame: {:?}",
                    String::from_utf8_lossy(&self.body)
                );
                return None;
            }
        }
    }

    /// Exactly `n` body bytes.
    async fn exactly(&mut self, n: usize) -> String {
        while self.body.len() < n {
            assert!(self.more().await, "body ended early");
        }
        String::from_utf8(self.body.drain(..n).collect()).unwrap()
    }

    /// The rest of the body.
    async fn rest(&mut self) -> String {
        while self.more().await {}
        String::from_utf8(std::mem::take(&mut self.body)).unwrap()
    }

    /// Whether the server closed the connection (after the body was read).
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await
    }
}

/// A complete request on its own connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut conn = Conn::open(addr).await;
    conn.send(method, path, "1.1", headers, body.as_bytes())
        .await;
    let mut response = conn.head(method).await;
    response.body = conn.rest().await;
    response
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], "").await
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> Response {
    request(addr, "POST", path, &[], body).await
}

/// A receiving request whose body is read as it streams.
async fn stream(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Response, Conn) {
    let mut conn = Conn::open(addr).await;
    conn.send(method, path, "1.1", headers, b"").await;
    let response = conn.head(method).await;
    (response, conn)
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn sockjs_config() -> ServerConfig {
    let mut cfg = config();
    // STOMP heart-beats would add a["\n"] frames to the exact comparisons below.
    cfg.session.heartbeat_send = Duration::ZERO;
    cfg.session.heartbeat_receive = Duration::ZERO;
    cfg
}

fn start() -> TestServer {
    TestServer::start_with(sockjs_config())
}

static NEXT_SESSION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// A fresh session URL (`/sockjs/000/<unique>`).
fn session_url() -> String {
    let n = NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("/sockjs/000/s{n}-{}", std::process::id())
}

/// A JSON array holding one string (the caller's text, JSON-escaped).
fn json_array(text: &str) -> String {
    let mut out = String::from("[\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("\"]");
    out
}

/// Decodes the strings of an `a[...]` frame (one line, without the trailing newline).
fn array_messages(frame: &str) -> Vec<String> {
    let json = frame.strip_prefix('a').expect("an a[...] frame");
    let mut out = Vec::new();
    wsbroker::sockjs::frame::decode_messages(
        json.trim_end().as_bytes(),
        wsbroker::sockjs::frame::Shape::Array,
        usize::MAX,
        &mut out,
    )
    .expect("valid array frame");
    // Each string holds whole STOMP frames here; split them at the NULs.
    String::from_utf8(out)
        .unwrap()
        .split_terminator('\0')
        .map(|f| f.trim_start_matches('\n').to_owned())
        .collect()
}

fn stomp(command: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut frame = format!("{command}\n");
    for (name, value) in headers {
        frame.push_str(&format!("{name}:{value}\n"));
    }
    frame.push('\n');
    frame.push_str(body);
    frame.push('\0');
    frame
}

/// The CONNECT frame most tests open their STOMP session with.
fn connect_frame() -> String {
    stomp("CONNECT", &[("accept-version", "1.2")], "")
}

async fn xhr_send(addr: SocketAddr, url: &str, stomp_text: &str) {
    let r = post(addr, &format!("{url}/xhr_send"), &json_array(stomp_text)).await;
    assert_eq!(r.status, 204, "xhr_send: {r:?}");
    assert_eq!(r.body, "");
}

/// One xhr poll of the session at `url`.
async fn xhr_poll(addr: SocketAddr, url: &str) -> Response {
    post(addr, &format!("{url}/xhr"), "").await
}

/// One xhr poll answered with an `a[...]` frame: the STOMP frames it carries.
async fn xhr_poll_stomp(addr: SocketAddr, url: &str) -> Vec<String> {
    let r = xhr_poll(addr, url).await;
    array_messages(r.body.trim_end())
}

/// Opens an xhr_streaming request for the session at `url`, past its prelude and open frame.
async fn open_xhr_streaming(addr: SocketAddr, url: &str) -> Conn {
    let (_, mut conn) = stream(addr, "POST", &format!("{url}/xhr_streaming"), &[]).await;
    conn.until("\n").await.unwrap();
    assert_eq!(next_line(&mut conn).await, "o");
    conn
}

/// As `open_xhr_streaming`, then a STOMP CONNECT whose CONNECTED it reads.
async fn connected_xhr_streaming(addr: SocketAddr, url: &str) -> Conn {
    let mut conn = open_xhr_streaming(addr, url).await;
    xhr_send(addr, url, &connect_frame()).await;
    let frames = next_stomp(&mut conn).await;
    assert!(frames[0].starts_with("CONNECTED"), "{frames:?}");
    conn
}

/// Session responses must never be cached.
fn assert_not_cacheable(r: &Response) {
    assert_eq!(
        r.header("cache-control"),
        Some("no-store, no-cache, must-revalidate, max-age=0")
    );
}

/// A 200 answer with `content_type` that must not be cached (info, every session answer).
fn assert_uncached_ok(r: &Response, content_type: &str) {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some(content_type));
    assert_not_cacheable(r);
}

/// Static answers (info preflight, iframe) are cached for a year.
fn assert_cacheable_for_a_year(r: &Response) {
    let cache_control = r.header("cache-control").unwrap();
    assert!(cache_control.contains("public"), "{cache_control}");
    assert!(
        cache_control.contains("max-age=31536000"),
        "{cache_control}"
    );
    assert!(r.header("expires").is_some());
}

/// Next frame of an xhr_streaming body, without its newline.
async fn next_line(conn: &mut Conn) -> String {
    let line = conn.until("\n").await.expect("a frame");
    line.trim_end_matches('\n').to_owned()
}

/// Next STOMP frames carried by `a[...]` frames of an xhr_streaming body (skipping `h`).
async fn next_stomp(conn: &mut Conn) -> Vec<String> {
    loop {
        let line = next_line(conn).await;
        if line != "h" {
            return array_messages(&line);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Greeting, info, iframe
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn greeting_and_not_found() {
    let server = start();
    for url in ["/sockjs", "/sockjs/"] {
        let r = get(server.ws, url).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
        assert_eq!(r.body, "Welcome to SockJS!\n");
        assert_eq!(r.header("set-cookie"), None);
    }
    for suffix in ["/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/"] {
        assert_eq!(
            get(server.ws, &format!("/sockjs{suffix}")).await.status,
            404,
            "{suffix}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn info_and_its_preflight() {
    let server = start();
    let r = get(server.ws, "/sockjs/info").await;
    assert_uncached_ok(&r, "application/json; charset=UTF-8");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("set-cookie"), None);
    assert!(
        r.body
            .starts_with(r#"{"websocket":true,"cookie_needed":false,"origins":["*:*"],"entropy":"#),
        "{}",
        r.body
    );
    let entropy = |body: &str| {
        body.rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('}')
            .parse::<u64>()
            .unwrap()
    };
    let again = get(server.ws, "/sockjs/info").await;
    assert_ne!(entropy(&r.body), entropy(&again.body));

    for origin in [None, Some("test"), Some("null")] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let r = request(server.ws, "OPTIONS", "/sockjs/info", &headers, "").await;
        assert_eq!(r.status, 204);
        assert_cacheable_for_a_year(&r);
        assert!(
            r.header("access-control-max-age")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 1_000_000
        );
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("OPTIONS, GET")
        );
        assert_eq!(r.body, "");
        match origin {
            Some("test") => {
                assert_eq!(r.header("access-control-allow-origin"), Some("test"));
                assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
            }
            _ => assert_eq!(r.header("access-control-allow-origin"), Some("*")),
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_can_be_disabled() {
    let mut cfg = sockjs_config();
    cfg.sockjs.websocket = false;
    let server = TestServer::start_with(cfg);
    let r = get(server.ws, "/sockjs/info").await;
    assert!(r.body.contains(r#""websocket":false"#), "{}", r.body);
    let url = format!("ws://{}{}/websocket", server.ws, session_url());
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "upgrade refused"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn iframe_is_cacheable_with_an_etag() {
    let server = start();
    let first = get(server.ws, "/sockjs/iframe.html").await;
    for suffix in [
        "/iframe.html",
        "/iframe-a.html",
        "/iframe-.html",
        "/iframe-0.1.2.html",
        "/iframe-0.1.2abc-dirty.2144.html",
        "/iframe-a.html?t=1234",
    ] {
        let r = get(server.ws, &format!("/sockjs{suffix}")).await;
        assert_eq!(r.status, 200, "{suffix}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
        assert_cacheable_for_a_year(&r);
        assert_eq!(r.header("etag"), first.header("etag"));
        assert_eq!(r.header("last-modified"), None);
        assert_eq!(r.header("set-cookie"), None);
        assert!(r.body.starts_with("<!DOCTYPE html>\n<html>\n<head>\n"));
        assert!(
            r.body
                .contains("_sockjs_onload = function(){SockJS.bootstrap_iframe();};")
        );
        assert!(r.body.contains("<script src=\"https://"));
    }
    for bad in [
        "/iframe.htm",
        "/iframe",
        "/IFRAME.HTML",
        "/IFRAME",
        "/iframe.HTML",
        "/iframe.xml",
        "/iframe-/.html",
    ] {
        assert_eq!(
            get(server.ws, &format!("/sockjs{bad}")).await.status,
            404,
            "{bad}"
        );
    }
    let etag = first.header("etag").unwrap();
    let r = request(
        server.ws,
        "GET",
        "/sockjs/iframe.html",
        &[("If-None-Match", etag)],
        "",
    )
    .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.body, "");
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Sessions and framing (xhr polling)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn xhr_polling_session_lifecycle() {
    let server = start();
    let url = session_url();
    let r = xhr_poll(server.ws, &url).await;
    assert_uncached_ok(&r, "application/javascript; charset=UTF-8");
    assert_eq!(r.body, "o\n");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    let send = post(
        server.ws,
        &format!("{url}/xhr_send"),
        &json_array(&stomp(
            "CONNECT",
            &[("accept-version", "1.2"), ("host", "x")],
            "",
        )),
    )
    .await;
    assert_eq!(send.status, 204);
    assert_eq!(
        send.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_not_cacheable(&send);
    assert_eq!(send.body, "");

    let frames = xhr_poll_stomp(server.ws, &url).await;
    assert!(
        frames[0].starts_with("CONNECTED\nversion:1.2\n"),
        "{frames:?}"
    );

    // The server id is only for load balancers.
    let other_server = url.replace("/000/", "/999/");
    xhr_send(
        server.ws,
        &other_server,
        &stomp(
            "SUBSCRIBE",
            &[("id", "0"), ("destination", "/topic/t"), ("receipt", "r1")],
            "",
        ),
    )
    .await;
    let frames = xhr_poll_stomp(server.ws, &other_server).await;
    assert!(
        frames[0].starts_with("RECEIPT\nreceipt-id:r1"),
        "{frames:?}"
    );

    // A second receiving request while one waits.
    let (head, mut waiting) = stream(server.ws, "POST", &format!("{url}/xhr"), &[]).await;
    assert_eq!(head.status, 200);
    // The waiting poll is attached once it is answered; prove that with a concurrent one.
    let busy = loop {
        let r = xhr_poll(server.ws, &url).await;
        if r.body.starts_with("c[2010") {
            break r;
        }
        // Raced ahead of the first poll's attach: it got the (empty) attach; retry.
        assert!(r.body.starts_with("a[") || r.body == "h\n", "{}", r.body);
    };
    assert_eq!(busy.status, 200);
    assert_eq!(busy.body, "c[2010,\"Another connection still open\"]\n");

    // The waiting poll gets the next message.
    xhr_send(
        server.ws,
        &url,
        &stomp("SEND", &[("destination", "/topic/t")], "hello"),
    )
    .await;
    let body = waiting.rest().await;
    let frames = array_messages(body.trim_end());
    assert!(
        frames[0].starts_with("MESSAGE\n") && frames[0].ends_with("\n\nhello"),
        "{frames:?}"
    );

    let r = post(
        server.ws,
        "/sockjs/000/no_such_session/xhr_send",
        r#"["x"]"#,
    )
    .await;
    assert_eq!(r.status, 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_session_paths_are_not_found() {
    let server = start();
    for suffix in ["//", "/a./a", "/a/a.", "/./.", "/", "///"] {
        assert_eq!(
            get(server.ws, &format!("/sockjs{suffix}/xhr")).await.status,
            404,
            "{suffix}"
        );
        assert_eq!(
            post(server.ws, &format!("/sockjs{suffix}/xhr"), "")
                .await
                .status,
            404,
            "{suffix}"
        );
    }
    for any in ["/a/a", "/_/_", "/1/1", "/abcdefgh_i-j%20/abcdefg_i-j%20"] {
        let r = post(server.ws, &format!("/sockjs{any}/xhr"), "").await;
        assert_eq!(r.body, "o\n", "{any}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_payloads_are_refused() {
    let server = start();
    let url = session_url();
    assert_eq!(xhr_poll(server.ws, &url).await.body, "o\n");
    let r = post(server.ws, &format!("{url}/xhr_send"), r#"["x"#).await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("Broken JSON encoding."));
    let r = post(server.ws, &format!("{url}/xhr_send"), "").await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("Payload expected."));
    // The session still works after refused payloads.
    xhr_send(server.ws, &url, &connect_frame()).await;
    let frames = xhr_poll_stomp(server.ws, &url).await;
    assert!(frames[0].starts_with("CONNECTED"), "{frames:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn xhr_accepts_any_content_type() {
    let server = start();
    let url = session_url();
    assert_eq!(xhr_poll(server.ws, &url).await.body, "o\n");
    let types = [
        "text/plain",
        "T",
        "application/json",
        "application/xml",
        "application/json; charset=utf-8",
        "text/xml",
    ];
    for content_type in types {
        let r = request(
            server.ws,
            "POST",
            &format!("{url}/xhr_send"),
            &[("Content-Type", content_type)],
            &json_array("\n"),
        )
        .await;
        assert_eq!(r.status, 204, "{content_type}");
    }
    // Only heart-beat EOLs were sent: the session is still waiting for CONNECT.
    xhr_send(server.ws, &url, &connect_frame()).await;
    let frames = xhr_poll_stomp(server.ws, &url).await;
    assert!(frames[0].starts_with("CONNECTED"), "{frames:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cors_headers_on_session_requests() {
    let server = start();
    let url = session_url();
    let r = request(
        server.ws,
        "POST",
        &format!("{url}/xhr"),
        &[
            ("Origin", "http://example.com"),
            ("Access-Control-Request-Headers", "a, b, c"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-allow-headers"), Some("a, b, c"));
    let r = request(
        server.ws,
        "POST",
        &format!("{}/xhr", session_url()),
        &[("Access-Control-Request-Headers", "")],
        "",
    )
    .await;
    assert_eq!(r.header("access-control-allow-headers"), None);
    for suffix in ["/xhr", "/xhr_send", "/xhr_streaming"] {
        let r = request(
            server.ws,
            "OPTIONS",
            &format!("/sockjs/abc/abc{suffix}"),
            &[("Origin", "test")],
            "",
        )
        .await;
        assert_eq!(r.status, 204, "{suffix}");
        assert_eq!(
            r.header("access-control-allow-methods"),
            Some("OPTIONS, POST")
        );
        assert_eq!(r.header("access-control-allow-origin"), Some("test"));
        assert!(
            r.header("cache-control")
                .unwrap()
                .contains("max-age=31536000")
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn jsessionid_cookie_when_needed() {
    let mut cfg = sockjs_config();
    cfg.sockjs.cookie_needed = true;
    let server = TestServer::start_with(cfg);
    let r = get(server.ws, "/sockjs/info").await;
    assert!(r.body.contains(r#""cookie_needed":true"#));
    assert_eq!(r.header("set-cookie"), None);
    let r = post(server.ws, &format!("{}/xhr", session_url()), "").await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=dummy; Path=/"));
    let r = request(
        server.ws,
        "POST",
        &format!("{}/xhr", session_url()),
        &[("Cookie", "JSESSIONID=abcdef")],
        "",
    )
    .await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=abcdef; Path=/"));
    let (r, _conn) = stream(
        server.ws,
        "POST",
        &format!("{}/xhr_streaming", session_url()),
        &[],
    )
    .await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=dummy; Path=/"));
    let (r, _conn) = stream(
        server.ws,
        "GET",
        &format!("{}/eventsource", session_url()),
        &[],
    )
    .await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=dummy; Path=/"));
    let url = session_url();
    let r = get(server.ws, &format!("{url}/jsonp?c=cb")).await;
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=dummy; Path=/"));
    let r = request(
        server.ws,
        "POST",
        &format!("{url}/jsonp_send"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "d=%5B%22%5Cn%22%5D",
    )
    .await;
    assert_eq!(r.body, "ok");
    assert_eq!(r.header("set-cookie"), Some("JSESSIONID=dummy; Path=/"));
    server.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Streaming transports
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stomp_round_trip_over_xhr_streaming() {
    let server = start();
    let url = session_url();
    let (head, mut conn) = stream(server.ws, "POST", &format!("{url}/xhr_streaming"), &[]).await;
    assert_uncached_ok(&head, "application/javascript; charset=UTF-8");
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    assert_eq!(
        conn.until("\n").await.unwrap(),
        format!("{}\n", "h".repeat(2048))
    );
    assert_eq!(next_line(&mut conn).await, "o");

    xhr_send(
        server.ws,
        &url,
        &stomp(
            "CONNECT",
            &[("accept-version", "1.1,1.2"), ("host", "/")],
            "",
        ),
    )
    .await;
    let frames = next_stomp(&mut conn).await;
    assert!(
        frames[0].starts_with("CONNECTED\nversion:1.2"),
        "{frames:?}"
    );
    // One payload may carry a frame split over two strings, and two frames in one.
    let subscribe = stomp(
        "SUBSCRIBE",
        &[
            ("id", "s"),
            ("destination", "/topic/chat"),
            ("receipt", "sub"),
        ],
        "",
    );
    let (a, b) = subscribe.split_at(10);
    let send = stomp(
        "SEND",
        &[
            ("destination", "/topic/chat"),
            ("content-type", "text/plain"),
        ],
        "héllo \u{2028} \"q\"",
    );
    let (first, second) = (json_array(a), json_array(&format!("{b}{send}")));
    let payload = format!(
        "[{},{}]",
        &first[1..first.len() - 1],
        &second[1..second.len() - 1]
    );
    let r = post(server.ws, &format!("{url}/xhr_send"), &payload).await;
    assert_eq!(r.status, 204);
    let mut frames = Vec::new();
    while frames.len() < 2 {
        frames.extend(next_stomp(&mut conn).await);
    }
    assert!(
        frames[0].starts_with("RECEIPT\nreceipt-id:sub"),
        "{frames:?}"
    );
    assert!(frames[1].starts_with("MESSAGE\n"), "{frames:?}");
    assert!(frames[1].contains("destination:/topic/chat\n"));
    assert!(
        frames[1].ends_with("\n\nhéllo \u{2028} \"q\""),
        "{frames:?}"
    );

    // A message from the host arrives the same way.
    server.publish("/topic/chat", &[], "from host").unwrap();
    let frames = next_stomp(&mut conn).await;
    assert!(frames[0].ends_with("\n\nfrom host"), "{frames:?}");

    // DISCONNECT: the receipt, then the close frame; later requests get the close frame too.
    xhr_send(
        server.ws,
        &url,
        &stomp("DISCONNECT", &[("receipt", "bye")], ""),
    )
    .await;
    let frames = next_stomp(&mut conn).await;
    assert!(
        frames[0].starts_with("RECEIPT\nreceipt-id:bye"),
        "{frames:?}"
    );
    assert_eq!(next_line(&mut conn).await, "c[3000,\"Go away!\"]");
    assert_eq!(
        conn.until("\n").await,
        None,
        "the response ends after the close frame"
    );
    for _ in 0..2 {
        let r = xhr_poll(server.ws, &url).await;
        assert_eq!(r.body, "c[3000,\"Go away!\"]\n");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn server_escapes_the_unicode_ranges_of_the_protocol() {
    let server = start();
    let url = session_url();
    let mut conn = connected_xhr_streaming(server.ws, &url).await;
    xhr_send(
        server.ws,
        &url,
        &stomp("SUBSCRIBE", &[("id", "1"), ("destination", "/topic/u")], ""),
    )
    .await;
    let tricky: String = [
        '\u{200c}', '\u{200f}', '\u{2028}', '\u{202f}', '\u{2060}', '\u{206f}', '\u{fff0}',
        '\u{ffff}', '\u{1}',
    ]
    .iter()
    .collect();
    // The client escapes everything (as sockjs-client does for its own list).
    let escaped: String = tricky
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let send = stomp("SEND", &[("destination", "/topic/u")], "BODY");
    let payload = format!(
        "[\"{}\"]",
        json_array(&send)[2..json_array(&send).len() - 2].replace("BODY", &escaped)
    );
    let r = post(server.ws, &format!("{url}/xhr_send"), &payload).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let line = loop {
        let line = next_line(&mut conn).await;
        if line.starts_with("a[\"MESSAGE") {
            break line;
        }
    };
    assert!(line.contains(&escaped), "escaped on the wire: {line}");
    assert!(array_messages(&line)[0].ends_with(&tricky));
    server.finish().await;
}

#[tokio::test]
async fn streaming_response_ends_at_the_limit_and_the_session_continues() {
    let mut cfg = sockjs_config();
    cfg.sockjs.response_limit = 4096;
    let server = TestServer::start_with(cfg);
    let url = session_url();
    let mut conn = connected_xhr_streaming(server.ws, &url).await;
    xhr_send(
        server.ws,
        &url,
        &stomp(
            "SUBSCRIBE",
            &[("id", "1"), ("destination", "/topic/big"), ("receipt", "r")],
            "",
        ),
    )
    .await;
    next_stomp(&mut conn).await;
    let body = "x".repeat(1000);
    let mut received = 0;
    loop {
        server.publish("/topic/big", &[], body.clone()).unwrap();
        match conn.until("\n").await {
            Some(line) => {
                assert!(array_messages(line.trim_end())[0].ends_with(&body));
                received += 1;
            }
            None => break,
        }
        assert!(received < 10, "the response passed 4 KiB without ending");
    }
    assert!(received >= 4, "ended after {received} messages");
    // The session lives on: the next receiving request continues it (no open frame).
    server.publish("/topic/big", &[], "after").unwrap();
    let (_, mut next) = stream(server.ws, "POST", &format!("{url}/xhr_streaming"), &[]).await;
    next.until("\n").await.unwrap();
    // (A message published before the first response ended may come first.)
    let frames = next_stomp(&mut next).await;
    assert!(frames.last().unwrap().ends_with("\n\nafter"), "{frames:?}");
    server.finish().await;
}

#[tokio::test]
async fn heartbeat_frames_on_quiet_streams() {
    let mut cfg = sockjs_config();
    cfg.sockjs.heartbeat = Duration::from_millis(50);
    let server = TestServer::start_with(cfg);
    let url = session_url();
    let mut conn = open_xhr_streaming(server.ws, &url).await;
    assert_eq!(next_line(&mut conn).await, "h");
    assert_eq!(next_line(&mut conn).await, "h");
    // A poll with nothing to deliver is answered with a heart-beat.
    drop(conn);
    let url = session_url();
    assert_eq!(xhr_poll(server.ws, &url).await.body, "o\n");
    assert_eq!(xhr_poll(server.ws, &url).await.body, "h\n");
    server.finish().await;
}

#[tokio::test]
async fn stomp_heartbeats_over_sockjs() {
    let mut cfg = sockjs_config();
    cfg.session.heartbeat_send = Duration::from_millis(50);
    let server = TestServer::start_with(cfg);
    let url = session_url();
    let mut conn = open_xhr_streaming(server.ws, &url).await;
    xhr_send(
        server.ws,
        &url,
        &stomp(
            "CONNECT",
            &[("accept-version", "1.2"), ("heart-beat", "0,50")],
            "",
        ),
    )
    .await;
    let frames = next_stomp(&mut conn).await;
    assert!(frames[0].contains("heart-beat:50,0"), "{frames:?}");
    assert_eq!(next_line(&mut conn).await, "a[\"\\n\"]");
    server.finish().await;
}

#[tokio::test]
async fn eventsource_transport() {
    let server = start();
    let url = session_url();
    let (head, mut conn) = stream(server.ws, "GET", &format!("{url}/eventsource"), &[]).await;
    assert_uncached_ok(&head, "text/event-stream; charset=UTF-8");
    assert_eq!(head.header("expires"), None);
    assert_eq!(head.header("last-modified"), None);
    assert_eq!(conn.exactly(2).await, "\r\n");
    assert_eq!(conn.until("\r\n\r\n").await.unwrap(), "data: o\r\n\r\n");
    xhr_send(server.ws, &url, &connect_frame()).await;
    let event = conn.until("\r\n\r\n").await.unwrap();
    let frame = event.strip_prefix("data: ").unwrap().trim_end();
    assert!(array_messages(frame)[0].starts_with("CONNECTED"), "{event}");
    assert!(frame.contains("\\u0000"), "NUL is escaped: {frame}");
    server.finish().await;
}

#[tokio::test]
async fn htmlfile_transport() {
    let server = start();
    let r = get(server.ws, "/sockjs/a/a/htmlfile").await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("\"callback\" parameter required"));
    let r = get(server.ws, "/sockjs/a/a/htmlfile?c=alert(1)").await;
    assert_eq!(r.status, 500);
    let url = session_url();
    let (head, mut conn) = stream(
        server.ws,
        "GET",
        &format!("{url}/htmlfile?c=%63allback"),
        &[],
    )
    .await;
    assert_uncached_ok(&head, "text/html; charset=UTF-8");
    let prelude = conn.until("\r\n\r\n").await.unwrap();
    assert!(prelude.len() > 1024);
    assert!(prelude.starts_with("<!doctype html>\n<html><head>\n"));
    assert!(
        prelude.contains(
            "var c = parent.callback;\n    c.start();\n    function p(d) {c.message(d);};"
        )
    );
    assert_eq!(
        conn.until("</script>\r\n").await.unwrap(),
        "<script>\np(\"o\");\n</script>\r\n"
    );
    xhr_send(server.ws, &url, &connect_frame()).await;
    let script = conn.until("</script>\r\n").await.unwrap();
    assert!(
        script.starts_with("<script>\np(\"a[\\\"CONNECTED"),
        "{script}"
    );
    server.finish().await;
}

#[tokio::test]
async fn jsonp_transport() {
    let server = start();
    let r = get(server.ws, "/sockjs/a/a/jsonp").await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("\"callback\" parameter required"));
    let url = session_url();
    let r = get(server.ws, &format!("{url}/jsonp?c=%63allback")).await;
    assert_uncached_ok(&r, "application/javascript; charset=UTF-8");
    assert_eq!(r.body, "callback(\"o\");\r\n");

    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = request(
        server.ws,
        "POST",
        &format!("{url}/jsonp_send"),
        &form,
        "d=%5B%22x",
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("Broken JSON encoding."));
    for data in ["", "d=", "p=p"] {
        let r = request(server.ws, "POST", &format!("{url}/jsonp_send"), &form, data).await;
        assert_eq!(r.status, 500, "{data:?}");
        assert!(r.body.contains("Payload expected."), "{data:?}");
    }
    let connect = json_array(&connect_frame());
    let encoded: String = connect.bytes().map(|b| format!("%{b:02X}")).collect();
    let r = request(
        server.ws,
        "POST",
        &format!("{url}/jsonp_send"),
        &form,
        &format!("d={encoded}"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    // Raw (not form-encoded) bodies are accepted too.
    let r = request(
        server.ws,
        "POST",
        &format!("{url}/jsonp_send"),
        &[("Content-Type", "text/plain")],
        &json_array("\n"),
    )
    .await;
    assert_eq!(r.body, "ok");
    let r = get(server.ws, &format!("{url}/jsonp?c=x")).await;
    assert!(r.body.starts_with("x(\"a[\\\"CONNECTED"), "{}", r.body);
    assert!(r.body.ends_with("\");\r\n"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn aborted_receiving_request_interrupts_the_session() {
    let server = start();
    let url = session_url();
    let first = open_xhr_streaming(server.ws, &url).await;
    let (_, mut second) = stream(server.ws, "POST", &format!("{url}/xhr_streaming"), &[]).await;
    second.until("\n").await.unwrap();
    assert_eq!(
        next_line(&mut second).await,
        "c[2010,\"Another connection still open\"]"
    );
    assert_eq!(second.until("\n").await, None);
    drop(first);
    // The server learns of the abort when it next writes (a heart-beat at the latest) or
    // reads EOF; until then a new request still finds the session busy.
    let deadline = tokio::time::Instant::now() + WAIT * 6;
    loop {
        let r = xhr_poll(server.ws, &url).await;
        if r.body == "c[1002,\"Connection interrupted\"]\n" {
            break;
        }
        assert_eq!(r.body, "c[2010,\"Another connection still open\"]\n");
        assert!(
            tokio::time::Instant::now() < deadline,
            "abort never noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn session_times_out_without_a_receiver() {
    let mut cfg = sockjs_config();
    cfg.sockjs.disconnect_delay = Duration::from_millis(100);
    let server = TestServer::start_with(cfg);
    let url = session_url();
    assert_eq!(xhr_poll(server.ws, &url).await.body, "o\n");
    xhr_send(server.ws, &url, &connect_frame()).await;
    server
        .wait_stats("session opened", |s| s.sessions == 1)
        .await;
    server
        .wait_stats("session closed after the delay", |s| {
            s.sessions == 0 && s.connections == 0
        })
        .await;
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// WebSocket transports
// ---------------------------------------------------------------------------------------------

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens a SockJS WebSocket session at `url` and reads its open frame.
async fn open_sockjs_websocket(url: &str) -> WsStream {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("o"));
    ws
}

async fn ws_text(ws: &mut WsStream) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("message in time")
        {
            Some(Ok(WsMessage::Text(text))) => return Some(text.to_string()),
            Some(Ok(WsMessage::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn websocket_transport_carries_sockjs_frames() {
    let server = start();
    let url = format!("ws://{}{}/websocket", server.ws, session_url());
    let mut ws = open_sockjs_websocket(&url).await;
    ws.send(WsMessage::text("")).await.unwrap(); // ignored
    ws.send(WsMessage::text(json_array(&connect_frame())))
        .await
        .unwrap();
    let connected = ws_text(&mut ws).await.unwrap();
    assert!(
        array_messages(&connected)[0].starts_with("CONNECTED"),
        "{connected}"
    );
    // A single JSON string is a message too.
    let subscribe = json_array(&stomp(
        "SUBSCRIBE",
        &[("id", "1"), ("destination", "/topic/w"), ("receipt", "r")],
        "",
    ));
    ws.send(WsMessage::text(&subscribe[1..subscribe.len() - 1]))
        .await
        .unwrap();
    assert!(array_messages(&ws_text(&mut ws).await.unwrap())[0].starts_with("RECEIPT"));
    ws.send(WsMessage::text(json_array(&stomp(
        "SEND",
        &[("destination", "/topic/w")],
        "over ws",
    ))))
    .await
    .unwrap();
    let message = ws_text(&mut ws).await.unwrap();
    assert!(
        array_messages(&message)[0].ends_with("\n\nover ws"),
        "{message}"
    );
    ws.send(WsMessage::text(json_array(&stomp("DISCONNECT", &[], ""))))
        .await
        .unwrap();
    assert_eq!(
        ws_text(&mut ws).await.as_deref(),
        Some("c[3000,\"Go away!\"]")
    );
    assert_eq!(ws_text(&mut ws).await, None);

    // Broken JSON ends the connection.
    let mut ws = open_sockjs_websocket(&url).await; // (id reuse is fine)
    ws.send(WsMessage::text("[\"a")).await.unwrap();
    let mut texts = Vec::new();
    while let Some(text) = ws_text(&mut ws).await {
        texts.push(text);
    }
    assert!(
        texts.last().is_some_and(|t| t.starts_with("c[1007,")),
        "{texts:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_urls_without_upgrade() {
    let server = start();
    let r = get(server.ws, "/sockjs/0/0/websocket").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("Can \"Upgrade\" only to \"WebSocket\"."));
    let r = post(server.ws, "/sockjs/0/0/websocket", "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.body, "");
    let r = request(
        server.ws,
        "GET",
        "/sockjs/0/0/websocket",
        &[("Upgrade", "WebSocket"), ("Connection", "close")],
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn raw_websocket_speaks_plain_stomp() {
    let server = start();
    let url = format!("ws://{}/sockjs/websocket", server.ws);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("upgrade");
    ws.send(WsMessage::text(connect_frame())).await.unwrap();
    let connected = ws_text(&mut ws).await.unwrap();
    assert!(
        connected.starts_with("CONNECTED\nversion:1.2"),
        "{connected}"
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Hooks, HTTP versions, metrics and static files
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn upgrade_hook_decides_on_sockjs_sessions() {
    let server = start();
    server.on_upgrade(|info| match info.query_param("token").as_deref() {
        Some("alice") => UpgradeDecision::Accept {
            principal: Some("alice".into()),
        },
        _ => UpgradeDecision::Reject {
            status: 401,
            reason: "no token".into(),
        },
    });
    let r = post(server.ws, &format!("{}/xhr", session_url()), "").await;
    assert_eq!(r.status, 401);
    let url = session_url();
    let r = post(server.ws, &format!("{url}/xhr?token=alice"), "").await;
    assert_eq!(r.body, "o\n");
    xhr_send(server.ws, &url, &connect_frame()).await;
    let frames = xhr_poll_stomp(server.ws, &url).await;
    assert!(frames[0].contains("user-name:alice"), "{frames:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http_1_0_and_1_1_connections() {
    let server = start();
    // HTTP/1.0: no chunking.
    let mut conn = Conn::open(server.ws).await;
    conn.send(
        "GET",
        "/sockjs",
        "1.0",
        &[("Connection", "Keep-Alive")],
        b"",
    )
    .await;
    let head = conn.head("GET").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), None);
    assert_eq!(head.header("content-length"), Some("19"));
    assert_eq!(conn.rest().await, "Welcome to SockJS!\n");
    // HTTP/1.1 keep-alive: two requests on one connection.
    let mut conn = Conn::open(server.ws).await;
    for _ in 0..2 {
        conn.send("GET", "/sockjs", "1.1", &[], b"").await;
        let head = conn.head("GET").await;
        assert_eq!(head.status, 200);
        assert_eq!(head.version, "1.1");
        assert_ne!(head.header("connection"), Some("close"));
        assert_eq!(conn.rest().await, "Welcome to SockJS!\n");
    }
    // Streaming over HTTP/1.0: no chunking, the body ends with the connection.
    let url = session_url();
    let mut conn = Conn::open(server.ws).await;
    conn.send("POST", &format!("{url}/xhr_streaming"), "1.0", &[], b"")
        .await;
    let head = conn.head("POST").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), None);
    assert_eq!(conn.exactly(2049).await.as_bytes()[0], b'h');
    assert_eq!(conn.until("\n").await.unwrap(), "o\n");
    xhr_send(server.ws, &url, &connect_frame()).await;
    assert!(conn.until("\n").await.unwrap().starts_with("a[\"CONNECTED"));
    xhr_send(server.ws, &url, &stomp("DISCONNECT", &[], "")).await;
    assert_eq!(conn.until("\n").await.unwrap(), "c[3000,\"Go away!\"]\n");
    assert_eq!(conn.rest().await, "");
    assert!(conn.closed().await);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_endpoint() {
    let server = start();
    let _client = server.ws_connected(None).await;
    let r = get(server.ws, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(
        r.body
            .contains("# TYPE wsbroker_sessions gauge\nwsbroker_sessions 1\n"),
        "{}",
        r.body
    );
    server.finish().await;
}

/// A send whose body never completes is answered 408 after the body deadline, instead of
/// holding its connection slot (and a SockJS session) forever.
#[tokio::test]
async fn a_send_body_that_never_arrives_gets_408_at_the_deadline() {
    let mut cfg = sockjs_config();
    cfg.sockjs.request_body_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(cfg);
    let url = session_url();
    let _stream = open_xhr_streaming(server.ws, &url).await;
    let mut conn = Conn::open(server.ws).await;
    let head =
        format!("POST {url}/xhr_send HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n[");
    conn.stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let response = conn.head("POST").await;
    assert_eq!(response.status, 408, "{response:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.finish().await;
}

/// Monitoring does not go blind at saturation: with every client slot taken, `/metrics` and
/// `/health` still answer (on a few reserved connections), anything else still gets 503.
#[tokio::test]
async fn metrics_and_health_answer_when_every_connection_slot_is_taken() {
    let mut cfg = sockjs_config();
    cfg.max_connections = 2;
    let server = TestServer::start_with(cfg);
    let _a = server.ws_connected(None).await;
    let _b = server.ws_connected(None).await;
    let r = get(server.ws, "/metrics").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("\nwsbroker_connections 2\n"), "{}", r.body);
    let r = get(server.ws, "/health").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    assert_eq!(
        server.stats().connections_refused,
        0,
        "monitoring is not refused"
    );
    let r = get(server.ws, "/sockjs/info").await;
    assert_eq!(r.status, 503, "clients still are");
    assert_eq!(server.stats().connections_refused, 1);
    server.finish().await;
}

#[tokio::test]
async fn static_files_stay_inside_their_directory() {
    let dir = std::env::temp_dir().join(format!("wsb-static-test-{}", std::process::id()));
    let root = dir.join("www");
    std::fs::create_dir_all(root.join("js")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>chat</h1>").unwrap();
    std::fs::write(root.join("js/app.js"), "console.log(1)").unwrap();
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("escape.txt")).unwrap();
    let mut cfg = sockjs_config();
    cfg.static_dir = Some(root.clone());
    let server = TestServer::start_with(cfg);
    let r = get(server.ws, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(r.body, "<h1>chat</h1>");
    let r = get(server.ws, "/js/app.js").await;
    assert_eq!(
        r.header("content-type"),
        Some("application/javascript; charset=UTF-8")
    );
    assert_eq!(r.body, "console.log(1)");
    for bad in [
        "/../secret.txt",
        "/js/%2e%2e/%2e%2e/secret.txt",
        "/escape.txt",
        "/missing.html",
    ] {
        assert_eq!(get(server.ws, bad).await.status, 404, "{bad}");
    }
    // The WebSocket endpoint is unaffected.
    let client = server.ws_connected(None).await;
    client.disconnect().await;
    server.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn websocket_transport_heartbeats() {
    let mut cfg = sockjs_config();
    cfg.sockjs.heartbeat = Duration::from_millis(50);
    let server = TestServer::start_with(cfg);
    let url = format!("ws://{}{}/websocket", server.ws, session_url());
    let mut ws = open_sockjs_websocket(&url).await;
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("h"));
    assert_eq!(ws_text(&mut ws).await.as_deref(), Some("h"));
    server.finish().await;
}

#[tokio::test]
async fn origin_allow_list_applies_to_sockjs_sessions() {
    let mut cfg = sockjs_config();
    cfg.allowed_origins = vec!["http://good.example".into()];
    let server = TestServer::start_with(cfg);
    let url = session_url();
    let evil = [("Origin", "http://evil.example")];
    let r = request(server.ws, "POST", &format!("{url}/xhr"), &evil, "").await;
    assert_eq!(r.status, 403);
    let good = [("Origin", "http://good.example")];
    let r = request(server.ws, "POST", &format!("{url}/xhr"), &good, "").await;
    assert_eq!(r.body, "o\n");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://good.example")
    );
    let r = request(
        server.ws,
        "POST",
        &format!("{url}/xhr_send"),
        &evil,
        r#"["\n"]"#,
    )
    .await;
    assert_eq!(r.status, 403);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disabled_websocket_also_disables_the_raw_endpoint() {
    let mut cfg = sockjs_config();
    cfg.sockjs.websocket = false;
    let server = TestServer::start_with(cfg);
    let url = format!("ws://{}/sockjs/websocket", server.ws);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    assert_eq!(get(server.ws, "/sockjs/websocket").await.status, 404);
    server.stop().await.unwrap();
}

/// SockJS cannot send an `Authorization` header: the token rides in the query of the request
/// that opens the session (the SockJS client keeps the query on every transport URL); a bad
/// one is answered 401 and no session exists.
#[tokio::test]
async fn a_query_token_authenticates_the_session() {
    let mut cfg = sockjs_config();
    let mut auth = wsbroker::AuthConfig::new(wsbroker::AuthKey::HmacSecret(b"sockjs-k".to_vec()));
    auth.required = true;
    cfg.auth = Some(auth);
    let server = TestServer::start_with(cfg);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "sockjs-user", "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(b"sockjs-k"),
    )
    .unwrap();

    let url = session_url();
    let r = post(server.ws, &format!("{url}/xhr?access_token={token}"), "").await;
    assert_eq!(r.body, "o\n", "{r:?}");
    xhr_send(server.ws, &url, &connect_frame()).await;
    let frames = xhr_poll_stomp(server.ws, &url).await;
    assert!(frames[0].contains("user-name:sockjs-user"), "{frames:?}");

    let url = session_url();
    let r = post(server.ws, &format!("{url}/xhr?access_token=x.y.z"), "").await;
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.body.starts_with("token refused - malformed token"),
        "{r:?}"
    );
    let r = post(
        server.ws,
        &format!("{url}/xhr_send"),
        &json_array(&connect_frame()),
    )
    .await;
    assert_eq!(r.status, 404, "the refused request opened no session");

    // Without a token the session opens (the transport cannot tell yet), CONNECT is refused.
    let url = session_url();
    assert_eq!(xhr_poll(server.ws, &url).await.body, "o\n");
    xhr_send(server.ws, &url, &connect_frame()).await;
    let r = xhr_poll(server.ws, &url).await;
    let first = r.body.lines().next().unwrap_or_default();
    let frames = array_messages(first);
    assert!(
        frames[0].starts_with("ERROR") && frames[0].contains("authentication required"),
        "{r:?}"
    );
}

/// A host-driven raw endpoint served over SockJS: the session is a raw connection (RawOpen,
/// one RawMessage per SockJS string, host sends arrive as `a[...]` strings, a binary send is
/// left out), and the host's close reaches the client as the SockJS close frame.
#[tokio::test]
async fn a_host_raw_endpoint_over_sockjs_is_a_raw_connection() {
    let server = wsbroker::Server::new(sockjs_config()).unwrap();
    server
        .enable_events(wsbroker::EventQueueConfig::default())
        .unwrap();
    let options = wsbroker::RawEndpointOptions {
        sockjs: Some(wsbroker::RawSockJs::default()),
        ..Default::default()
    };
    server.add_raw_endpoint("/game", options).unwrap();
    server.start().unwrap();
    let server = TestServer::from_server(server);
    let url = format!("/game/000/g{}", std::process::id());
    assert_eq!(xhr_poll(server.ws, &url).await.body, "o\n");
    let next_event = || async {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut events = Vec::new();
            server
                .server
                .poll_events(&mut events, 1, Duration::ZERO)
                .unwrap();
            if let Some(event) = events.pop() {
                return event;
            }
            assert!(tokio::time::Instant::now() < deadline, "no event");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let conn = match next_event().await {
        wsbroker::Event::RawOpen(open) => {
            assert_eq!(&*open.endpoint, "/game");
            open.conn
        }
        other => panic!("expected RawOpen, got {other:?}"),
    };
    let send = post(
        server.ws,
        &format!("{url}/xhr_send"),
        r#"["move 1","","move \"2\""]"#,
    )
    .await;
    assert_eq!(send.status, 204);
    let mut got = Vec::new();
    while got.len() < 3 {
        match next_event().await {
            wsbroker::Event::RawMessage(m) => {
                assert_eq!(m.conn, conn);
                assert!(!m.binary);
                got.push(String::from_utf8(m.data.to_vec()).unwrap());
            }
            other => panic!("expected RawMessage, got {other:?}"),
        }
    }
    assert_eq!(got, ["move 1", "", "move \"2\""], "one message per string");
    server.server.raw_send(conn, b"\xff\x00", true).unwrap();
    server
        .server
        .raw_send(conn, "state é".as_bytes(), false)
        .unwrap();
    assert_eq!(
        xhr_poll(server.ws, &url).await.body,
        "a[\"state é\"]\n",
        "binary left out"
    );
    server.server.raw_close(conn, 4000, "game over").unwrap();
    assert_eq!(
        xhr_poll(server.ws, &url).await.body,
        "c[4000,\"game over\"]\n"
    );
    match next_event().await {
        wsbroker::Event::RawClose(close) => {
            assert_eq!((close.conn, close.code), (conn, 4000));
        }
        other => panic!("expected RawClose, got {other:?}"),
    }
    server.stop().await.unwrap();
}
