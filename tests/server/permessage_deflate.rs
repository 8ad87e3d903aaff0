//! permessage-deflate (RFC 7692) over real sockets: negotiation, compressed STOMP traffic in
//! both directions, fan-out of one compressed publish, zip bombs and RSV1 misuse.
//!
//! The client is hand-written (tungstenite has no permessage-deflate) so the tests see the
//! raw frames: which carry RSV1 and what they inflate to. Every wait is bounded by
//! [`common::WAIT`].

use std::net::SocketAddr;

use crate::common::{TestServer, WAIT, config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbroker::ws::deflate::{
    DEFAULT_LEVEL, RSV1, deflate_shared, inflate_message, put_stored_block,
};
use wsbroker::ws::frame::encode_client_frame;

const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// What Chromium offers.
const CHROMIUM_OFFER: &str = "permessage-deflate; client_max_window_bits";

const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// A server frame as received.
struct ServerFrame {
    b0: u8,
    payload: Vec<u8>,
}

impl ServerFrame {
    fn opcode(&self) -> u8 {
        self.b0 & 0x0F
    }
    fn compressed(&self) -> bool {
        self.b0 & RSV1 != 0
    }
}

/// A STOMP data message received over WebSocket, inflated when it was compressed.
struct Received {
    compressed: bool,
    wire_len: usize,
    frame: String,
}

impl Received {
    fn command(&self) -> &str {
        self.frame.split('\n').next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        let head = self.frame.split("\n\n").next()?;
        head.lines()
            .skip(1)
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
    }
    fn body(&self) -> &str {
        let (_, body) = self
            .frame
            .split_once("\n\n")
            .expect("frame has a body part");
        body.trim_end_matches('\0')
    }
}

struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    /// Upgrades, offering `offer` in `Sec-WebSocket-Extensions` when given; returns the client
    /// and the response head.
    async fn connect(addr: SocketAddr, offer: Option<&str>) -> (RawClient, String) {
        RawClient::connect_to(addr, "/ws", offer).await
    }

    /// [`RawClient::connect`] on another path (a raw endpoint).
    async fn connect_to(addr: SocketAddr, path: &str, offer: Option<&str>) -> (RawClient, String) {
        let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let extensions = offer
            .map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n{extensions}\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut client = RawClient {
            stream,
            buf: Vec::new(),
        };
        let head = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(end) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head: Vec<u8> = client.buf.drain(..end + 4).collect();
                    return String::from_utf8(head).unwrap();
                }
                client.fill().await;
            }
        })
        .await
        .expect("upgrade response in time");
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        (client, head)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed unexpectedly");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn write(&mut self, b0: u8, payload: &[u8]) {
        let frame = encode_client_frame(b0, payload, MASK);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// Sends a STOMP frame as one uncompressed text message.
    async fn send_plain(&mut self, frame: &str) {
        self.write(0x81, frame.as_bytes()).await;
    }

    /// Sends a STOMP frame as one compressed text message.
    async fn send_compressed(&mut self, frame: &str) {
        let compressed = deflate_shared(frame.as_bytes(), 15, DEFAULT_LEVEL).unwrap_or_else(|| {
            let mut stored = bytes::BytesMut::new();
            put_stored_block(frame.as_bytes(), &mut stored);
            stored.freeze()
        });
        self.write(0x80 | RSV1 | 0x1, &compressed).await;
    }

    /// The next frame from the server (bounded wait).
    async fn next_frame(&mut self) -> ServerFrame {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(frame) = self.parse_frame() {
                    return frame;
                }
                self.fill().await;
            }
        })
        .await
        .expect("a frame in time")
    }

    fn parse_frame(&mut self) -> Option<ServerFrame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let (len, start) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < start + len {
            return None;
        }
        let b0 = b[0];
        assert_eq!(b0 & 0x80, 0x80, "the server does not fragment");
        let payload = b[start..start + len].to_vec();
        self.buf.drain(..start + len);
        Some(ServerFrame { b0, payload })
    }

    /// The next STOMP frame (heart-beat EOLs skipped), inflated if compressed.
    async fn recv(&mut self) -> Received {
        loop {
            let frame = self.next_frame().await;
            match frame.opcode() {
                0x1 | 0x2 => {
                    let wire_len = frame.payload.len();
                    let data = if frame.compressed() {
                        inflate_message(&frame.payload, 64 << 20).expect("valid deflate data")
                    } else {
                        frame.payload.clone().into()
                    };
                    if data.iter().all(|b| *b == b'\n' || *b == b'\r') {
                        continue;
                    }
                    return Received {
                        compressed: frame.compressed(),
                        wire_len,
                        frame: String::from_utf8(data.to_vec()).expect("text"),
                    };
                }
                0x8 => panic!("closed: {:?}", close_code(&frame.payload)),
                _ => {} // ping / pong
            }
        }
    }

    async fn expect(&mut self, command: &str) -> Received {
        let frame = self.recv().await;
        assert_eq!(frame.command(), command, "{}", frame.frame);
        frame
    }

    /// Reads until the server's Close frame; returns its code and the STOMP ERROR before it.
    async fn until_close(&mut self) -> (Option<u16>, Option<String>) {
        let mut error = None;
        loop {
            let frame = self.next_frame().await;
            match frame.opcode() {
                0x8 => return (close_code(&frame.payload), error),
                0x1 | 0x2 if !frame.compressed() => {
                    let text = String::from_utf8_lossy(&frame.payload).into_owned();
                    if text.starts_with("ERROR") {
                        error = Some(text);
                    }
                }
                0x1 | 0x2 => {
                    let data = inflate_message(&frame.payload, 1 << 20).unwrap();
                    let text = String::from_utf8_lossy(&data).into_owned();
                    if text.starts_with("ERROR") {
                        error = Some(text);
                    }
                }
                _ => {}
            }
        }
    }

    async fn stomp_connect(&mut self) {
        self.send_plain("CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
            .await;
        self.expect("CONNECTED").await;
    }

    async fn subscribe(&mut self, destination: &str, id: &str) {
        self.send_plain(&format!(
            "SUBSCRIBE\nid:{id}\ndestination:{destination}\nreceipt:sub-{id}\n\n\0"
        ))
        .await;
        let receipt = self.expect("RECEIPT").await;
        assert_eq!(
            receipt.header("receipt-id"),
            Some(format!("sub-{id}").as_str())
        );
    }
}

fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

/// A 2 KiB-ish JSON payload, as a market-data or chat application would publish.
fn json_body(seed: usize) -> String {
    let items: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "{{\"id\":{},\"symbol\":\"SYM{}\",\"price\":{}.{:02},\"qty\":{}}}",
                seed * 100 + i,
                i % 7,
                100 + i,
                (seed + i) % 100,
                i * 10
            )
        })
        .collect();
    format!("{{\"seq\":{seed},\"items\":[{}]}}", items.join(","))
}

#[tokio::test]
async fn negotiation_follows_the_offer_and_the_config() {
    let server = TestServer::start();
    // Chromium's offer, Node ws' and Python websockets' default offers.
    for offer in [
        CHROMIUM_OFFER,
        "permessage-deflate; client_max_window_bits=15",
        "permessage-deflate; server_max_window_bits=12; client_no_context_takeover",
    ] {
        let (_, head) = RawClient::connect(server.ws, Some(offer)).await;
        assert!(
            head.contains(&format!("\r\nSec-WebSocket-Extensions: {AGREED}")),
            "{offer}: {head}"
        );
    }
    let (_, head) = RawClient::connect(
        server.ws,
        Some("permessage-deflate; server_max_window_bits=12"),
    )
    .await;
    assert!(head.contains("; server_max_window_bits=12\r\n"), "{head}");
    // No offer, an unknown extension, or only invalid offers: no extension.
    for offer in [
        None,
        Some("x-webkit-deflate-frame"),
        Some("permessage-deflate; bogus"),
    ] {
        let (_, head) = RawClient::connect(server.ws, offer).await;
        assert!(
            !head.contains("Sec-WebSocket-Extensions"),
            "{offer:?}: {head}"
        );
    }
    server.finish().await;

    let server = TestServer::start_with({
        let mut c = config();
        c.permessage_deflate = false;
        c
    });
    let (_, head) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    server.finish().await;
}

#[tokio::test]
async fn large_messages_round_trip_compressed_and_fan_out_shares_the_tail() {
    let server = TestServer::start();
    let mut subscribers = Vec::new();
    for i in 0..3 {
        let (mut sub, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
        sub.stomp_connect().await;
        sub.subscribe("/topic/prices", &format!("s{i}")).await;
        subscribers.push(sub);
    }
    // One subscriber without compression sees the same message uncompressed.
    let (mut plain, head) = RawClient::connect(server.ws, None).await;
    assert!(!head.contains("Extensions"));
    plain.stomp_connect().await;
    plain.subscribe("/topic/prices", "p").await;

    let (mut publisher, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    publisher.stomp_connect().await;
    let body = json_body(1);
    assert!(body.len() > 1500, "{}", body.len());
    // Compressed SEND (RSV1) in, compressed MESSAGE out.
    publisher
        .send_compressed(&format!(
            "SEND\ndestination:/topic/prices\ncontent-type:application/json\nreceipt:r1\n\n{body}\0"
        ))
        .await;
    let receipt = publisher.expect("RECEIPT").await;
    // Small frames stay below the threshold: sent uncompressed.
    assert!(!receipt.compressed);

    let mut wire_lens = Vec::new();
    for (i, sub) in subscribers.iter_mut().enumerate() {
        let msg = sub.expect("MESSAGE").await;
        assert!(msg.compressed, "subscriber {i} got an uncompressed MESSAGE");
        assert_eq!(msg.header("subscription"), Some(format!("s{i}").as_str()));
        assert_eq!(msg.header("destination"), Some("/topic/prices"));
        assert_eq!(msg.header("content-type"), Some("application/json"));
        assert_eq!(msg.body(), body);
        assert!(
            msg.wire_len * 2 < msg.frame.len(),
            "{} vs {}",
            msg.wire_len,
            msg.frame.len()
        );
        wire_lens.push(msg.wire_len);
    }
    let msg = plain.expect("MESSAGE").await;
    assert!(!msg.compressed);
    assert_eq!(msg.body(), body);

    // A compressed message that spans several frames (RSV1 on the first only).
    let frame = format!(
        "SEND\ndestination:/topic/prices\nreceipt:r2\n\n{}\0",
        json_body(2)
    );
    let compressed = deflate_shared(frame.as_bytes(), 15, DEFAULT_LEVEL).unwrap();
    let (a, b) = compressed.split_at(compressed.len() / 2);
    publisher.write(RSV1 | 0x1, a).await;
    publisher.write(0x80, b).await;
    publisher.expect("RECEIPT").await;
    for sub in &mut subscribers {
        let msg = sub.expect("MESSAGE").await;
        assert!(msg.compressed);
        assert_eq!(msg.body(), json_body(2));
    }
    server.finish().await;
}

#[tokio::test]
async fn threshold_is_configurable() {
    let server = TestServer::start_with({
        let mut c = config();
        c.deflate_threshold = 0;
        c
    });
    let (mut client, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    client.stomp_connect().await;
    client.subscribe("/topic/t", "a").await;
    client
        .send_plain("SEND\ndestination:/topic/t\n\nhello hello hello hello hello\0")
        .await;
    let msg = client.expect("MESSAGE").await;
    assert!(msg.compressed);
    assert_eq!(msg.body(), "hello hello hello hello hello");
    server.finish().await;

    let server = TestServer::start_with({
        let mut c = config();
        c.deflate_threshold = 1 << 20;
        c
    });
    let (mut client, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    client.stomp_connect().await;
    client.subscribe("/topic/t", "a").await;
    client
        .send_compressed(&format!("SEND\ndestination:/topic/t\n\n{}\0", json_body(3)))
        .await;
    let msg = client.expect("MESSAGE").await;
    assert!(!msg.compressed);
    assert_eq!(msg.body(), json_body(3));
    server.finish().await;
}

#[tokio::test]
async fn zip_bomb_closes_with_1009() {
    let server = TestServer::start_with({
        let mut c = config();
        c.frame_limits.max_frame_size = 64 * 1024;
        c
    });
    let (mut client, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    client.stomp_connect().await;
    // 8 MiB of a repeated byte compress to a few KiB: far under the 64 KiB wire limit.
    let mut frame = b"SEND\ndestination:/topic/t\n\n".to_vec();
    frame.resize(8 << 20, b'A');
    frame.push(0);
    let bomb = deflate_shared(&frame, 15, DEFAULT_LEVEL).unwrap();
    assert!(bomb.len() < 16 * 1024, "{}", bomb.len());
    client.write(0x80 | RSV1 | 0x1, &bomb).await;
    let (code, error) = client.until_close().await;
    assert_eq!(code, Some(1009));
    let error = error.expect("an ERROR frame before the close");
    assert!(error.contains("maximum message size"), "{error}");
    server.finish().await;
}

#[tokio::test]
async fn rsv1_misuse_closes_with_1002() {
    let server = TestServer::start();
    let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    // Not negotiated (no offer).
    let (mut client, _) = RawClient::connect(server.ws, None).await;
    client.write(0x80 | RSV1 | 0x1, &hello).await;
    assert_eq!(client.until_close().await.0, Some(1002));
    // Negotiated, but on a control frame.
    let (mut client, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    client.write(0x80 | RSV1 | 0x9, b"").await;
    assert_eq!(client.until_close().await.0, Some(1002));
    // Negotiated, but on a continuation frame.
    let (mut client, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    client.write(RSV1 | 0x1, &hello[..3]).await;
    client.write(0x80 | RSV1, &hello[3..]).await;
    assert_eq!(client.until_close().await.0, Some(1002));
    // Negotiated, but the data does not inflate: 1007.
    let (mut client, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    client.write(0x80 | RSV1 | 0x1, &[0xff, 0xff, 0xff]).await;
    assert_eq!(client.until_close().await.0, Some(1007));
    server.finish().await;

    // Switched off: the offer is ignored and RSV1 is a protocol error.
    let server = TestServer::start_with({
        let mut c = config();
        c.permessage_deflate = false;
        c
    });
    let (mut client, _) = RawClient::connect(server.ws, Some(CHROMIUM_OFFER)).await;
    client.write(0x80 | RSV1 | 0x1, &hello).await;
    assert_eq!(client.until_close().await.0, Some(1002));
    server.finish().await;
}

/// The C ABI setter reaches the server: off ignores the offer; on with threshold 0 compresses
/// even a short MESSAGE.
#[tokio::test]
async fn c_abi_setter_switches_compression() {
    use wsbroker::ffi::*;
    for enabled in [false, true] {
        let mut config = std::ptr::null_mut();
        let mut server = std::ptr::null_mut();
        let mut port = 0u16;
        let listen = "127.0.0.1:0";
        // SAFETY: valid out pointers; the config and server are used only while live.
        unsafe {
            assert_eq!(wsb_config_new(&mut config), wsb_result::WSB_OK);
            assert_eq!(
                wsb_config_set_listen(config, listen.as_ptr().cast(), listen.len()),
                wsb_result::WSB_OK
            );
            assert_eq!(
                wsb_config_set_permessage_deflate(config, enabled, 0, 1),
                wsb_result::WSB_OK
            );
            assert_eq!(wsb_server_new(config, &mut server), wsb_result::WSB_OK);
            wsb_config_free(config);
            assert_eq!(wsb_server_start(server), wsb_result::WSB_OK);
            assert_eq!(wsb_server_local_port(server, &mut port), wsb_result::WSB_OK);
        }
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (mut client, head) = RawClient::connect(addr, Some(CHROMIUM_OFFER)).await;
        assert_eq!(head.contains(AGREED), enabled, "{head}");
        client.stomp_connect().await;
        client.subscribe("/topic/c", "c").await;
        client
            .send_plain("SEND\ndestination:/topic/c\n\nabcabcabcabcabcabcabc\0")
            .await;
        let msg = client.expect("MESSAGE").await;
        assert_eq!(msg.compressed, enabled);
        assert_eq!(msg.body(), "abcabcabcabcabcabcabc");
        drop(client);
        let server = server as usize;
        // SAFETY: the live server from above; stopped on a blocking thread (it joins its
        // runtime), then freed.
        tokio::task::spawn_blocking(move || unsafe {
            let server = server as *mut wsb_server;
            assert_eq!(wsb_server_stop(server, 100), wsb_result::WSB_OK);
            assert_eq!(wsb_server_free(server), wsb_result::WSB_OK);
        })
        .await
        .unwrap();
    }
}

/// Raw (non-STOMP) endpoints negotiate permessage-deflate exactly as the STOMP endpoint does,
/// inflate what clients compress (within the endpoint's limit: 1009 past it), and compress a
/// broadcast once for every receiver that negotiated it.
#[tokio::test]
async fn raw_endpoints_negotiate_and_compress_like_the_stomp_endpoint() {
    let server = TestServer::start();
    let options = |behaviour| wsbroker::RawEndpointOptions {
        behaviour,
        max_message_size: Some(64 * 1024),
        ..Default::default()
    };
    let s = &server.server;
    s.add_raw_endpoint("/echo", options(wsbroker::RawBehaviour::Echo))
        .unwrap();
    s.add_raw_endpoint("/room", options(wsbroker::RawBehaviour::Broadcast))
        .unwrap();
    let off = wsbroker::RawEndpointOptions {
        permessage_deflate: Some(false),
        ..options(wsbroker::RawBehaviour::Echo)
    };
    s.add_raw_endpoint("/plain", off).unwrap();
    for offer in [
        CHROMIUM_OFFER,
        "permessage-deflate; client_max_window_bits=15",
        "permessage-deflate; server_max_window_bits=12; client_no_context_takeover",
        "permessage-deflate; server_no_context_takeover",
    ] {
        let (_, head) = RawClient::connect_to(server.ws, "/echo", Some(offer)).await;
        assert!(head.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"), "{offer}: {head}");
    }
    let (_, head) = RawClient::connect_to(server.ws, "/plain", Some(CHROMIUM_OFFER)).await;
    assert!(
        !head.contains("Sec-WebSocket-Extensions"),
        "off per endpoint: {head}"
    );

    // Echo: a compressed message comes back compressed, and inflates to what was sent.
    let (mut echo, _) = RawClient::connect_to(server.ws, "/echo", Some(CHROMIUM_OFFER)).await;
    let text = json_body(1);
    echo.send_compressed(&text).await;
    let back = echo.next_frame().await;
    assert!(back.compressed(), "above the threshold: compressed");
    assert_eq!(
        &inflate_message(&back.payload, 1 << 20).unwrap()[..],
        text.as_bytes()
    );
    assert!(back.payload.len() < text.len() / 2);
    echo.send_plain("tiny").await;
    let back = echo.next_frame().await;
    assert!(!back.compressed(), "below the threshold: as it is");
    assert_eq!(back.payload, b"tiny");

    // Broadcast: both compressing receivers get the same compressed payload, a plain one the
    // plain frame.
    let (mut a, _) = RawClient::connect_to(server.ws, "/room", Some(CHROMIUM_OFFER)).await;
    let (mut b, _) = RawClient::connect_to(server.ws, "/room", Some(CHROMIUM_OFFER)).await;
    let (mut plain, _) = RawClient::connect_to(server.ws, "/room", None).await;
    let (mut sender, _) = RawClient::connect_to(server.ws, "/room", None).await;
    sender.send_plain(&text).await;
    let (fa, fb, fp) = (
        a.next_frame().await,
        b.next_frame().await,
        plain.next_frame().await,
    );
    assert!(fa.compressed() && fb.compressed() && !fp.compressed());
    assert_eq!(fa.payload, fb.payload, "compressed once, shared");
    assert_eq!(fp.payload, text.as_bytes());

    // A bomb: 8 MiB inflating past the endpoint's 64 KiB limit closes with 1009.
    let (mut bomb, _) = RawClient::connect_to(server.ws, "/echo", Some(CHROMIUM_OFFER)).await;
    let zeros = vec![b'A'; 8 << 20];
    let packed = deflate_shared(&zeros, 15, DEFAULT_LEVEL).unwrap();
    assert!(packed.len() < 64 * 1024);
    bomb.write(0x80 | RSV1 | 0x1, &packed).await;
    let (code, _) = bomb.until_close().await;
    assert_eq!(code, Some(1009));
    server.finish().await;
}
