//! Protocol-compliance review: STOMP 1.0–1.2 and RFC 6455 edge cases that real clients and
//! conformance suites (stomp.py, stompjs, Autobahn) exercise.

use crate::common;

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbroker::ws::{MessageDecoder, WsEvent, WsLimits, codes};

// --- helpers ---------------------------------------------------------------------------------

/// A masked client frame with a first byte `b0` (FIN/opcode) and a short payload.
fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    assert!(payload.len() < 126);
    let mut out = vec![b0, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Decodes client bytes; an error ends the list as `Err(close code)`.
fn ws_events(bytes: &[u8]) -> Vec<Result<WsEvent, u16>> {
    let mut d = MessageDecoder::new(WsLimits::default());
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        match d.decode(&mut buf) {
            Ok(Some(e)) => out.push(Ok(e)),
            Ok(None) => return out,
            Err(e) => {
                out.push(Err(e.close_code));
                return out;
            }
        }
    }
}

/// Opens a raw WebSocket connection to `/ws` (no client library in between).
async fn raw_ws(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: v12.stomp\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut buf).await.unwrap(), 1, "handshake response");
        got.push(buf[0]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101"), "{got:?}");
    s
}

/// Reads server frames (first byte, payload) until `n` arrived or `eof` is reached.
async fn read_frames(s: &mut TcpStream, n: usize) -> (Vec<(u8, Vec<u8>)>, bool) {
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut eof = false;
    let frames = loop {
        let frames = split_frames(&raw);
        if frames.len() >= n || eof {
            break frames;
        }
        match tokio::time::timeout(common::WAIT, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => eof = true,
            Ok(Ok(k)) => raw.extend_from_slice(&buf[..k]),
            Err(_) => panic!("timed out; got {:?}", split_frames(&raw)),
        }
    };
    (frames, eof)
}

fn split_frames(raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 <= raw.len() {
        assert_eq!(raw[i + 1] & 0x80, 0, "server frames are never masked");
        let (mut len, mut p) = ((raw[i + 1] & 0x7f) as usize, i + 2);
        if len == 126 {
            if raw.len() < p + 2 {
                break;
            }
            len = u16::from_be_bytes([raw[p], raw[p + 1]]) as usize;
            p += 2;
        }
        if raw.len() < p + len {
            break;
        }
        out.push((raw[i], raw[p..p + len].to_vec()));
        i = p + len;
    }
    out
}

async fn expect_eof(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("server closes TCP after its Close frame")
        .unwrap_or(0);
    assert_eq!(n, 0, "no bytes after the Close frame");
}

// --- RFC 6455, socket-free -------------------------------------------------------------------

/// RFC 6455 §5.4/§5.5: control frames must not be fragmented, but may be interleaved with the
/// fragments of a data message (whose UTF-8 may be split across fragments).
#[test]
fn control_frames_interleave_but_never_fragment() {
    let text = "h\u{e9}".as_bytes();
    let mut b = masked(0x01, &text[..2]);
    b.extend(masked(0x89, b"ping-data"));
    b.extend(masked(0x80, &text[2..]));
    assert_eq!(
        ws_events(&b),
        vec![
            Ok(WsEvent::Ping(bytes::Bytes::from_static(b"ping-data"))),
            Ok(WsEvent::Text(bytes::Bytes::from(text.to_vec()))),
        ]
    );
    for op in [0x08, 0x09, 0x0a] {
        assert_eq!(
            ws_events(&masked(op, b"")),
            vec![Err(codes::PROTOCOL_ERROR)],
            "fragmented control opcode {op:#x}"
        );
    }
}

/// RFC 6455 §5.5.1/§7.4: 1005/1006/1015 never appear on the wire; a close reason is UTF-8.
#[test]
fn close_payload_validation() {
    for code in [1005u16, 1006, 1015, 999, 1004, 5000] {
        let [hi, lo] = code.to_be_bytes();
        assert_eq!(
            ws_events(&masked(0x88, &[hi, lo])),
            vec![Err(codes::PROTOCOL_ERROR)],
            "{code}"
        );
    }
    assert_eq!(
        ws_events(&masked(0x88, &[0x03, 0xe8, 0xff])),
        vec![Err(codes::INVALID_PAYLOAD)]
    );
    assert_eq!(
        ws_events(&masked(0x88, &[])),
        vec![Ok(WsEvent::Close {
            code: None,
            reason: String::new()
        })]
    );
}

// --- RFC 6455, over a socket -----------------------------------------------------------------

/// RFC 6455 §5.5.1 and §7.1.1: the server answers a client Close with a Close echoing the
/// code, sends nothing after it, and then closes TCP first.
#[tokio::test(flavor = "multi_thread")]
async fn client_close_is_echoed_then_tcp_closes() {
    let server = common::TestServer::start();
    let mut s = raw_ws(server.ws).await;
    let [hi, lo] = 4001u16.to_be_bytes();
    s.write_all(&masked(0x88, &[hi, lo, b'b', b'y', b'e']))
        .await
        .unwrap();
    let (frames, _) = read_frames(&mut s, 1).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].0, 0x88);
    assert_eq!(&frames[0].1[..2], &[hi, lo]);
    expect_eof(&mut s).await;
    server.finish().await;
}

/// RFC 6455 §5.6: a MESSAGE whose body is not UTF-8 must travel in a binary frame; a UTF-8
/// one may use a text frame (what browsers' stompjs expects). A ping's payload is echoed.
#[tokio::test(flavor = "multi_thread")]
async fn message_frame_type_follows_the_body() {
    let server = common::TestServer::start();
    let mut s = raw_ws(server.ws).await;
    let connect = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0";
    s.write_all(&masked(0x01, &connect[..10])).await.unwrap();
    s.write_all(&masked(0x89, b"pp")).await.unwrap();
    s.write_all(&masked(0x80, &connect[10..])).await.unwrap();
    s.write_all(&masked(
        0x81,
        b"SUBSCRIBE\nid:1\ndestination:/topic/b\nreceipt:r\n\n\0",
    ))
    .await
    .unwrap();
    let (frames, _) = read_frames(&mut s, 3).await;
    assert_eq!(frames[0], (0x8a, b"pp".to_vec()), "pong echoes the ping");
    assert!(frames[1].1.starts_with(b"CONNECTED\n"));
    assert!(frames[2].1.starts_with(b"RECEIPT\n"));
    s.write_all(&masked(
        0x82,
        b"SEND\ndestination:/topic/b\ncontent-length:3\n\n\xff\x00\xfe\0",
    ))
    .await
    .unwrap();
    s.write_all(&masked(0x81, b"SEND\ndestination:/topic/b\n\nhi\0"))
        .await
        .unwrap();
    let (frames, _) = read_frames(&mut s, 2).await;
    assert_eq!(frames[0].0, 0x82, "non-UTF-8 body in a binary frame");
    assert!(frames[0].1.ends_with(b"\n\n\xff\x00\xfe\0"));
    assert_eq!(frames[1].0, 0x81, "UTF-8 body in a text frame");
    // A STOMP error: ERROR (text), then Close with a UTF-8 reason, then TCP FIN.
    s.write_all(&masked(0x81, b"BOGUS\n\n\0")).await.unwrap();
    let (frames, _) = read_frames(&mut s, 2).await;
    assert_eq!(frames[0].0, 0x81);
    assert!(frames[0].1.starts_with(b"ERROR\n"));
    assert_eq!(frames[1].0, 0x88);
    assert!(frames[1].1.len() <= 125);
    assert!(std::str::from_utf8(&frames[1].1[2..]).is_ok());
    expect_eof(&mut s).await;
    server.finish().await;
}

/// A ping followed by a close (in one write, in two, or after the pong arrived) gets the pong
/// and then the answering close, every time: repeated on several connections at once, because
/// a race in the close path once lost the close about one run in fifty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_then_close_always_gets_the_pong_and_the_close() {
    let server = common::TestServer::start();
    let addr = server.ws;
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            tokio::spawn(async move {
                for round in 0..150 {
                    let mut s = raw_ws(addr).await;
                    let ping = masked(0x89, b"p");
                    let close = masked(0x88, &1000u16.to_be_bytes());
                    let frames = match round % 3 {
                        0 => {
                            let mut both = ping.clone();
                            both.extend_from_slice(&close);
                            s.write_all(&both).await.unwrap();
                            read_frames(&mut s, 2).await.0
                        }
                        1 => {
                            s.write_all(&ping).await.unwrap();
                            s.write_all(&close).await.unwrap();
                            read_frames(&mut s, 2).await.0
                        }
                        _ => {
                            s.write_all(&ping).await.unwrap();
                            let mut frames = read_frames(&mut s, 1).await.0;
                            s.write_all(&close).await.unwrap();
                            frames.extend(read_frames(&mut s, 1).await.0);
                            frames
                        }
                    };
                    let opcodes: Vec<u8> = frames.iter().map(|(b0, _)| b0 & 0x0f).collect();
                    assert_eq!(opcodes, [0xa, 0x8], "task {task} round {round}: {frames:?}");
                    assert_eq!(frames[1].1, 1000u16.to_be_bytes(), "the code is echoed");
                    expect_eof(&mut s).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    server.finish().await;
}
