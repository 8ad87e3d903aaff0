//! The raw-mode C ABI (`wsb_server_add_raw_endpoint`, `wsb_server_raw_*`, RAW_* events) called
//! as C would, against a real client.

use std::ffi::c_char;
use std::ptr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use wsbroker::ffi::*;

const OK: wsb_result = wsb_result::WSB_OK;
const WAIT: Duration = Duration::from_secs(5);

fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

fn server() -> *mut wsb_server {
    let mut config = ptr::null_mut();
    let mut server = ptr::null_mut();
    // SAFETY: valid out pointers, a live config, valid strings.
    unsafe {
        assert_eq!(wsb_config_new(&mut config), OK);
        let (a, n) = s("127.0.0.1:0");
        assert_eq!(wsb_config_set_listen(config, a, n), OK);
        assert_eq!(wsb_config_set_worker_threads(config, 2), OK);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        wsb_config_free(config);
    }
    server
}

/// An owned copy of the interesting fields of a RAW_* event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Raw {
    kind: u32,
    conn: u64,
    destination: Option<String>,
    query: Option<String>,
    remote_addr: Option<String>,
    header_count: usize,
    body: Vec<u8>,
    binary: u32,
    close_code: u32,
    reason: Option<String>,
}

/// # Safety
/// `ptr` comes from a live event.
unsafe fn text(ptr: *const c_char, len: usize) -> Option<String> {
    if ptr.is_null() {
        assert_eq!(len, 0);
        return None;
    }
    // SAFETY: events carry len bytes plus a NUL.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0, "NUL-terminated");
    Some(String::from_utf8(bytes[..len].to_vec()).unwrap())
}

/// Polls until an event of `kind` arrives (others are skipped).
fn next_raw(server: *mut wsb_server, kind: u32) -> Raw {
    let deadline = Instant::now() + WAIT;
    let mut events: Vec<wsb_event> = Vec::with_capacity(8);
    while Instant::now() < deadline {
        let mut n = 0;
        // SAFETY: a live server, room for 8 events, a valid out pointer.
        let rc = unsafe { wsb_server_poll_timeout(server, events.as_mut_ptr(), 8, 100, &mut n) };
        assert_eq!(rc, OK);
        // SAFETY: the library filled `n` events.
        unsafe { events.set_len(n) };
        for ev in &events {
            if ev.kind != kind {
                continue;
            }
            // SAFETY: pointers of a live event (valid until the next poll).
            return unsafe {
                Raw {
                    kind: ev.kind,
                    conn: ev.session,
                    destination: text(ev.destination, ev.destination_len),
                    query: text(ev.query, ev.query_len),
                    remote_addr: text(ev.remote_addr, ev.remote_addr_len),
                    header_count: ev.header_count,
                    body: if ev.body.is_null() {
                        Vec::new()
                    } else {
                        std::slice::from_raw_parts(ev.body, ev.body_len).to_vec()
                    },
                    binary: ev.binary,
                    close_code: ev.close_code,
                    reason: text(ev.reason, ev.reason_len),
                }
            };
        }
        events.clear();
    }
    panic!("no event of kind {kind}");
}

#[test]
fn add_raw_endpoint_checks_its_arguments() {
    let server = server();
    let (p, pn) = s("/raw");
    let policy = WSB_RAW_POLICY_SERVER;
    // SAFETY: every pointer is NULL or valid for its length.
    unsafe {
        assert_eq!(
            wsb_server_add_raw_endpoint(
                ptr::null_mut(),
                p,
                pn,
                WSB_RAW_ECHO,
                ptr::null(),
                0,
                policy,
                0
            ),
            wsb_result::WSB_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            wsb_server_add_raw_endpoint(
                server,
                ptr::null(),
                4,
                WSB_RAW_ECHO,
                ptr::null(),
                0,
                policy,
                0
            ),
            wsb_result::WSB_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            wsb_server_add_raw_endpoint(server, p, pn, 7, ptr::null(), 0, policy, 0),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            wsb_server_add_raw_endpoint(server, p, pn, WSB_RAW_ECHO, ptr::null(), 0, 9, 0),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        let (ws, wn) = s("/ws");
        assert_eq!(
            wsb_server_add_raw_endpoint(server, ws, wn, WSB_RAW_ECHO, ptr::null(), 0, policy, 0),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        let bad = [0xffu8, b'/'];
        assert_eq!(
            wsb_server_add_raw_endpoint(
                server,
                bad.as_ptr().cast(),
                2,
                WSB_RAW_ECHO,
                ptr::null(),
                0,
                policy,
                0
            ),
            wsb_result::WSB_ERR_INVALID_UTF8
        );
        assert_eq!(
            wsb_server_add_raw_endpoint(server, p, pn, WSB_RAW_ECHO, ptr::null(), 0, policy, 0),
            OK
        );
        let mut out = 0u64;
        assert_eq!(
            wsb_server_raw_user_data(server, 1, ptr::null_mut()),
            wsb_result::WSB_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            wsb_server_raw_user_data(server, 1, &mut out),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        let mut buffered = 0usize;
        assert_eq!(
            wsb_server_raw_buffered_bytes(server, 1, &mut buffered),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        wsb_server_free(server);
    }
}

#[test]
fn host_endpoint_round_trip_through_the_c_abi() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server();
    let (p, pn) = s("/raw");
    let (protocols, protocols_len) = s("chat.v1, chat.v2");
    // SAFETY: a live server, valid strings.
    unsafe {
        assert_eq!(
            wsb_server_add_raw_endpoint(
                server,
                p,
                pn,
                WSB_RAW_HOST,
                protocols,
                protocols_len,
                WSB_SLOW_CONSUMER_DROP_NEWEST,
                1 << 16
            ),
            OK
        );
        assert_eq!(wsb_server_start(server), OK);
    }
    let mut port = 0;
    // SAFETY: a live server, a valid out pointer.
    assert_eq!(unsafe { wsb_server_local_port(server, &mut port) }, OK);
    let url = format!("ws://127.0.0.1:{port}/raw?room=9");
    let (mut ws, _) = runtime
        .block_on(tokio_tungstenite::connect_async(url))
        .unwrap();

    let open = next_raw(server, WSB_EVENT_RAW_OPEN);
    assert_eq!(open.destination.as_deref(), Some("/raw"));
    assert_eq!(open.query.as_deref(), Some("room=9"));
    assert!(open.remote_addr.unwrap().starts_with("127.0.0.1:"));
    assert!(open.header_count >= 4);
    let conn = open.conn;

    runtime
        .block_on(ws.send(WsMessage::binary(vec![1, 2, 3])))
        .unwrap();
    let message = next_raw(server, WSB_EVENT_RAW_MESSAGE);
    assert_eq!(
        (message.conn, message.body.as_slice(), message.binary),
        (conn, &[1u8, 2, 3][..], 1)
    );

    let (t, tn) = s("room/9");
    let mut added = 9;
    let mut receivers = 9;
    let mut value = 0u64;
    let mut buffered = usize::MAX;
    // SAFETY: a live server, valid strings and out pointers.
    unsafe {
        assert_eq!(
            wsb_server_raw_subscribe(server, conn, t, tn, &mut added),
            OK
        );
        assert_eq!(added, 1);
        assert_eq!(
            wsb_server_raw_subscribe(server, conn, t, tn, &mut added),
            OK
        );
        assert_eq!(added, 0);
        let body = b"to the room";
        assert_eq!(
            wsb_server_raw_publish(server, t, tn, body.as_ptr(), body.len(), 0, &mut receivers),
            OK
        );
        assert_eq!(receivers, 1);
        let bad = [0xffu8];
        assert_eq!(
            wsb_server_raw_send(server, conn, bad.as_ptr(), 1, 0),
            wsb_result::WSB_ERR_INVALID_UTF8,
            "text must be UTF-8 (the same code as every other UTF-8 check)"
        );
        assert_eq!(wsb_server_raw_send(server, conn, bad.as_ptr(), 1, 1), OK);
        assert_eq!(wsb_server_raw_set_user_data(server, conn, 0xdead_beef), OK);
        assert_eq!(wsb_server_raw_user_data(server, conn, &mut value), OK);
        assert_eq!(
            wsb_server_raw_buffered_bytes(server, conn, &mut buffered),
            OK
        );
        let mut removed = 9;
        assert_eq!(
            wsb_server_raw_unsubscribe(server, conn, t, tn, &mut removed),
            OK
        );
        assert_eq!(removed, 1);
    }
    assert_eq!(value, 0xdead_beef);
    assert!(buffered < 1 << 20);
    let got: Vec<WsMessage> = runtime.block_on(async {
        let mut got = Vec::new();
        while got.len() < 2 {
            let message = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
            if let m @ (WsMessage::Text(_) | WsMessage::Binary(_)) = message.unwrap().unwrap() {
                got.push(m);
            }
        }
        got
    });
    assert_eq!(
        got,
        [
            WsMessage::text("to the room"),
            WsMessage::binary(vec![0xff])
        ]
    );

    let (r, rn) = s("see you");
    // SAFETY: a live server, a valid string.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_raw_close(server, conn, 4000, r, rn) },
        OK
    );
    let close = next_raw(server, WSB_EVENT_RAW_CLOSE);
    assert_eq!(
        (close.conn, close.close_code, close.reason.as_deref()),
        (conn, 4000, Some("see you"))
    );
    // SAFETY: a live server; the id is stale now.
    unsafe {
        assert_eq!(
            wsb_server_raw_send(server, conn, b"x".as_ptr(), 1, 0),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(
            wsb_server_raw_close(server, conn, 1000, ptr::null(), 0),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(
            wsb_server_raw_subscribe(server, conn, t, tn, ptr::null_mut()),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(wsb_server_free(server), OK);
    }
    drop(ws);
}
