//! Protocol errors: each bad frame gets one ERROR, then the connection closes (WebSocket close
//! 1002 for protocol errors, 1008 for policy). Several tests use hand-written bytes.

use crate::common;

use crate::common::{Client, TestServer, config};

/// Connects a raw 1.2 session (hand-written CONNECT) and returns the client.
async fn raw_connected(c: &mut Client) {
    c.write_raw(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
        .await;
    let connected = c.expect("CONNECTED").await;
    assert_eq!(connected.h("version"), "1.2");
    c.version = common::Ver::V12;
}

/// Sends `bytes` on a fresh connected WebSocket and a fresh connected TCP session; both must
/// answer with one ERROR whose message contains `needle`, then close (1002 on WebSocket).
async fn assert_refused(server: &TestServer, bytes: &[u8], needle: &str) {
    assert_refused_with(server, bytes, needle, &[1002]).await;
}

async fn assert_refused_with(server: &TestServer, bytes: &[u8], needle: &str, codes: &[u16]) {
    for ws in [true, false] {
        let mut c = if ws {
            server.ws_client().await
        } else {
            server.tcp_client().await
        };
        raw_connected(&mut c).await;
        c.write_raw(bytes).await;
        let (error, code) = c.expect_error_and_close().await;
        let message = error.h("message");
        assert!(
            message.contains(needle),
            "{:?}: expected '{needle}' in {error:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(error.header("content-type"), Some("text/plain"));
        if ws {
            assert!(
                code.is_some_and(|c| codes.contains(&c)),
                "close code {code:?} for {error:?}"
            );
        } else {
            assert_eq!(code, None);
        }
    }
}

#[tokio::test]
async fn unknown_command() {
    let server = TestServer::start();
    assert_refused(&server, b"FOO\ndestination:/x\n\n\0", "malformed frame").await;
    // Commands are case-sensitive.
    assert_refused(&server, b"send\ndestination:/x\n\n\0", "malformed frame").await;
    server.finish().await;
}

#[tokio::test]
async fn send_without_destination() {
    let server = TestServer::start();
    assert_refused(&server, b"SEND\n\nbody\0", "'destination'").await;
    server.finish().await;
}

#[tokio::test]
async fn subscribe_without_id_in_1_2() {
    let server = TestServer::start();
    assert_refused(
        &server,
        b"SUBSCRIBE\ndestination:/topic/a\nreceipt:77\n\n\0",
        "'id'",
    )
    .await;
    // The ERROR names the receipt of the frame that caused it.
    let mut c = server.ws_client().await;
    raw_connected(&mut c).await;
    c.write_raw(b"SUBSCRIBE\ndestination:/topic/a\nreceipt:77\n\n\0")
        .await;
    let (error, _) = c.expect_error_and_close().await;
    assert_eq!(error.header("receipt-id"), Some("77"));
    server.finish().await;
}

#[tokio::test]
async fn bad_ack_mode_and_prefetch() {
    let server = TestServer::start();
    assert_refused(
        &server,
        b"SUBSCRIBE\ndestination:/queue/a\nid:1\nack:sometimes\n\n\0",
        "invalid ack mode",
    )
    .await;
    assert_refused(
        &server,
        b"SUBSCRIBE\ndestination:/queue/a\nid:1\nack:client\nprefetch-count:lots\n\n\0",
        "prefetch-count",
    )
    .await;
    server.finish().await;
}

#[tokio::test]
async fn duplicate_subscription_id() {
    let server = TestServer::start();
    let mut c = server.ws_connected(None).await;
    c.subscribe("/topic/a", "same").await;
    c.frame(
        "SUBSCRIBE",
        &[("destination", "/topic/b"), ("id", "same")],
        "",
    )
    .await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("already in use"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn frame_before_connect() {
    let server = TestServer::start();
    for ws in [true, false] {
        let mut c = if ws {
            server.ws_client().await
        } else {
            server.tcp_client().await
        };
        c.write_raw(b"SEND\ndestination:/topic/a\n\nhi\0").await;
        let (error, code) = c.expect_error_and_close().await;
        assert!(
            error.h("message").contains("expected a CONNECT"),
            "{error:?}"
        );
        if ws {
            assert_eq!(code, Some(1002));
        }
    }
    server.finish().await;
}

#[tokio::test]
async fn connect_twice_and_server_frames_from_clients() {
    let server = TestServer::start();
    assert_refused(
        &server,
        b"CONNECT\naccept-version:1.2\nhost:x\n\n\0",
        "already connected",
    )
    .await;
    assert_refused(
        &server,
        b"MESSAGE\ndestination:/topic/a\nmessage-id:1\nsubscription:1\n\n\0",
        "server frame",
    )
    .await;
    server.finish().await;
}

#[tokio::test]
async fn invalid_escape_in_1_2() {
    let server = TestServer::start();
    assert_refused(
        &server,
        b"SEND\ndestination:/topic/a\nx:bad\\tescape\n\n\0",
        "malformed frame",
    )
    .await;
    server.finish().await;
}

#[tokio::test]
async fn oversize_frame() {
    let server = TestServer::start_with({
        let mut c = config();
        c.frame_limits.max_frame_size = 1024;
        c
    });
    // Over max_frame_size, by a little and by a lot.
    for size in [1100, 64 * 1024] {
        let mut frame = b"SEND\ndestination:/topic/big\n\n".to_vec();
        frame.extend(std::iter::repeat_n(b'x', size));
        frame.push(0);
        // Within the WebSocket message limit the STOMP decoder refuses it (1002); beyond it,
        // the WebSocket layer does (1009, message too big).
        assert_refused_with(&server, &frame, "", &[1002, 1009]).await;
    }
    // With content-length, refused as soon as the headers are read.
    assert_refused(
        &server,
        b"SEND\ndestination:/topic/big\ncontent-length:5000\n\n",
        "",
    )
    .await;
    // Just under the limit is fine.
    let mut c = server.ws_connected(None).await;
    c.subscribe("/topic/big", "s").await;
    let body = vec![b'y'; 900];
    c.send_sync("/topic/big", &[], &body).await;
    assert_eq!(c.expect("MESSAGE").await.body, body);
    server.finish().await;
}

#[tokio::test]
async fn too_many_headers_and_long_header_line() {
    let server = TestServer::start_with({
        let mut c = config();
        c.frame_limits.max_headers = 8;
        c.frame_limits.max_header_length = 256;
        c
    });
    let mut many = b"SEND\ndestination:/topic/a\n".to_vec();
    for i in 0..20 {
        many.extend(format!("h{i}:v\n").bytes());
    }
    many.extend(b"\n\0");
    assert_refused(&server, &many, "").await;
    let mut long = b"SEND\ndestination:/topic/a\nx:".to_vec();
    long.extend(std::iter::repeat_n(b'v', 1000));
    long.extend(b"\n\n\0");
    assert_refused(&server, &long, "").await;
    server.finish().await;
}

#[tokio::test]
async fn version_negotiation_failure() {
    let server = TestServer::start();
    for ws in [true, false] {
        let mut c = if ws {
            server.ws_client().await
        } else {
            server.tcp_client().await
        };
        c.write_raw(b"CONNECT\naccept-version:9.9\nhost:x\n\n\0")
            .await;
        let (error, code) = c.expect_error_and_close().await;
        assert_eq!(error.h("version"), "1.0,1.1,1.2");
        assert!(error.h("message").contains("1.2"), "{error:?}");
        assert!(error.body_str().contains("9.9"), "{error:?}");
        if ws {
            assert_eq!(code, Some(1002));
        }
    }
    server.finish().await;
}

#[tokio::test]
async fn negotiates_the_highest_common_version() {
    let server = TestServer::start();
    for (accept, expected) in [
        ("1.0,1.1", "1.1"),
        ("1.1,1.2,2.0", "1.2"),
        ("1.0", "1.0"),
        (" 1.2 ", "1.2"),
    ] {
        let mut c = server.tcp_client().await;
        let connected = c.connect_with(&[("accept-version", accept)]).await;
        assert_eq!(
            connected.h("version"),
            expected,
            "accept-version {accept:?}"
        );
        assert!(connected.h("server").starts_with("wsbroker/"));
        assert!(!connected.h("session").is_empty());
    }
    // No accept-version at all: 1.0.
    let mut c = server.tcp_client().await;
    c.write_raw(b"CONNECT\n\n\0").await;
    let connected = c.expect("CONNECTED").await;
    assert_eq!(connected.h("version"), "1.0");
    server.finish().await;
}

#[tokio::test]
async fn error_frame_bytes_are_well_formed() {
    let server = TestServer::start();
    let mut c = server.tcp_client().await;
    c.write_raw(b"CONNECT\naccept-version:1.2\nhost:x\n\n\0")
        .await;
    let connected = String::from_utf8(c.raw_frames(1).await.remove(0)).unwrap();
    assert!(
        connected.starts_with("CONNECTED\nversion:1.2\n"),
        "{connected:?}"
    );
    assert!(connected.ends_with("\n\n\0"), "{connected:?}");
    c.write_raw(b"BOGUS\n\n\0").await;
    let error = String::from_utf8(c.raw_frames(1).await.remove(0)).unwrap();
    assert!(
        error.starts_with("ERROR\nmessage:malformed frame"),
        "{error:?}"
    );
    assert!(error.contains("\ncontent-type:text/plain\n"), "{error:?}");
    let (head, body) = error.split_once("\n\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("content-length")
        .parse()
        .unwrap();
    assert_eq!(
        len + 1,
        body.len(),
        "content-length matches the body: {error:?}"
    );
    // Then the server closes the TCP stream.
    let (frames, _) = c.until_closed().await;
    assert!(frames.is_empty(), "{frames:?}");
    server.finish().await;
}

#[tokio::test]
async fn wrong_websocket_path_or_protocol() {
    let server = TestServer::start();
    // Wrong path: the HTTP upgrade is refused.
    let err = tokio_tungstenite::connect_async(format!("ws://{}/nope", server.ws)).await;
    assert!(err.is_err(), "upgrade on a wrong path must fail");
    // No subprotocol requested: still STOMP (version from accept-version).
    let mut c = Client::ws_with(server.ws, None).await;
    let connected = c.connect_with(&[("accept-version", "1.1,1.2")]).await;
    assert_eq!(connected.h("version"), "1.2");
    // v11.stomp subprotocol.
    let mut c = Client::ws_with(server.ws, Some("v11.stomp")).await;
    let connected = c.connect_with(&[("accept-version", "1.1")]).await;
    assert_eq!(connected.h("version"), "1.1");
    server.finish().await;
}

#[tokio::test]
async fn connect_timeout_closes_silent_connections() {
    let server = TestServer::start_with({
        let mut c = config();
        c.connect_timeout = std::time::Duration::from_millis(200);
        c
    });
    let mut c = server.ws_client().await;
    let (error, code) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("no CONNECT"), "{error:?}");
    assert_eq!(code, Some(1008));
    let mut c = server.tcp_client().await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("no CONNECT"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn errors_do_not_disturb_other_sessions() {
    let server = TestServer::start();
    let mut good = server.ws_connected(None).await;
    good.subscribe("/topic/ok", "s").await;
    let mut bad = server.ws_connected(None).await;
    bad.write_raw(b"GARBAGE\n\n\0").await;
    bad.expect_error_and_close().await;
    let mut p = server.tcp_connected(None).await;
    p.send_sync("/topic/ok", &[], b"still here").await;
    assert_eq!(good.expect("MESSAGE").await.body_str(), "still here");
    server.finish().await;
}

#[tokio::test]
async fn content_length_mismatch() {
    let server = TestServer::start();
    // content-length says 2 but the body goes on: the byte after 2 bytes is not NUL.
    assert_refused(
        &server,
        b"SEND\ndestination:/topic/a\ncontent-length:2\n\nhello\0",
        "malformed frame",
    )
    .await;
    assert_refused(
        &server,
        b"SEND\ndestination:/topic/a\ncontent-length:two\n\nhello\0",
        "malformed frame",
    )
    .await;
    server.finish().await;
}
