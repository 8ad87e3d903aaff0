//! The client's C ABI (`wsb_client_*`) from Rust exactly as C calls it: argument checks,
//! result codes and last errors, a round trip against an in-process server with polled
//! events, callback delivery with drop-once `user_data`, and the calls a callback may not make.

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use wsbroker::ffi::*;
use wsbroker::{Server, ServerConfig};

const WAIT: Duration = Duration::from_secs(5);
const OK: wsb_result = wsb_result::WSB_OK;

fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

fn server() -> Server {
    let mut c = ServerConfig::default();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.worker_threads = 1;
    let server = Server::new(c).unwrap();
    server.start().unwrap();
    server
}

fn client_last_error(client: *const wsb_client) -> String {
    let mut buf = [0u8; 512];
    let mut len = 0;
    // SAFETY: a live client, a buffer of 512 bytes, a valid out pointer.
    let rc = unsafe { wsb_client_last_error(client, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    assert_eq!(rc, OK);
    String::from_utf8_lossy(&buf[..len.min(511)]).into_owned()
}

fn new_config(url: &str) -> *mut wsb_client_config {
    let mut config = ptr::null_mut();
    let (u, n) = s(url);
    // SAFETY: a valid string and out pointer.
    assert_eq!(unsafe { wsb_client_config_new(u, n, &mut config) }, OK);
    config
}

/// A copy of the parts of a polled event the tests look at.
#[derive(Debug, Default)]
struct Ev {
    kind: u32,
    subscription: u64,
    destination: Option<String>,
    ack_id: Option<String>,
    text: Option<String>,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

/// # Safety
/// `ptr`/`len` come from a live event.
unsafe fn text(ptr: *const c_char, len: usize) -> Option<String> {
    if ptr.is_null() {
        assert_eq!(len, 0, "absent strings are NULL with length 0");
        return None;
    }
    // SAFETY: the event's string is valid for len + 1 bytes (NUL-terminated).
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0, "NUL-terminated");
    Some(String::from_utf8(bytes[..len].to_vec()).unwrap())
}

/// # Safety
/// `e` is a live event.
unsafe fn copy(e: &wsb_client_event) -> Ev {
    // SAFETY: the pointers of a live event.
    unsafe {
        Ev {
            kind: e.kind,
            subscription: e.subscription,
            destination: text(e.destination, e.destination_len),
            ack_id: text(e.ack_id, e.ack_id_len),
            text: text(e.text, e.text_len),
            body: if e.body.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(e.body, e.body_len).to_vec()
            },
            headers: (0..e.header_count)
                .map(|i| {
                    let h = &*e.headers.add(i);
                    (
                        text(h.name, h.name_len).unwrap(),
                        text(h.value, h.value_len).unwrap(),
                    )
                })
                .collect(),
        }
    }
}

fn poll_for(client: *mut wsb_client, kind: u32) -> Ev {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        // SAFETY: an all-zero event is a valid value of this plain C struct.
        let mut events: [wsb_client_event; 8] = unsafe { std::mem::zeroed() };
        let mut n = 0;
        // SAFETY: a live client, 8 writable events, a valid out pointer.
        let rc = unsafe { wsb_client_poll_timeout(client, events.as_mut_ptr(), 8, 100, &mut n) };
        assert_eq!(rc, OK);
        for e in &events[..n] {
            // SAFETY: filled by the poll just now.
            let ev = unsafe { copy(e) };
            if ev.kind == kind {
                return ev;
            }
        }
    }
    panic!("no client event of kind {kind} within {WAIT:?}");
}

#[test]
fn client_round_trip_and_argument_checks() {
    let server = server();
    let url = format!("ws://{}/ws", server.local_addr().unwrap());
    assert_eq!(
        wsb_struct_size(WSB_STRUCT_CLIENT_EVENT),
        std::mem::size_of::<wsb_client_event>()
    );
    // SAFETY: every pointer below is a live test value or NULL where NULL is the point.
    unsafe {
        assert_eq!(
            wsb_client_config_new(ptr::null(), 3, &mut ptr::null_mut()),
            wsb_result::WSB_ERR_NULL_ARGUMENT
        );
        let bad = new_config("http://nowhere");
        let mut client = ptr::null_mut();
        assert_eq!(
            wsb_client_new(bad, &mut client),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        assert!(client.is_null(), "written only on success");
        wsb_client_config_free(bad);

        let config = new_config(&url);
        assert_eq!(
            wsb_client_config_set_outbound_queue(config, 16, 7, 0),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        assert_eq!(wsb_client_config_set_heartbeat(config, 1000, 1000), OK);
        let (n, nl) = s("token");
        let (v, vl) = s("t-1");
        assert_eq!(
            wsb_client_config_add_header(config, false, n, nl, v, vl),
            OK
        );
        assert_eq!(wsb_client_new(config, &mut client), OK);
        wsb_client_config_free(config);
        assert_eq!(
            wsb_client_connect(client, 5000),
            OK,
            "{}",
            client_last_error(client)
        );
        let mut connected = false;
        assert_eq!(wsb_client_is_connected(client, &mut connected), OK);
        assert!(connected);
        let up = poll_for(client, WSB_CLIENT_EVENT_CONNECTED);
        assert_eq!(up.text.as_deref(), Some("1.2"));

        let (d, dl) = s("/queue/ffi-client");
        let mut sub = 0;
        assert_eq!(
            wsb_client_subscribe(client, d, dl, 9, ptr::null(), 0, 0, &mut sub),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        assert!(client_last_error(client).contains("WSB_ACK_"));
        assert_eq!(
            wsb_client_subscribe(
                client,
                d,
                dl,
                WSB_ACK_CLIENT_INDIVIDUAL,
                ptr::null(),
                0,
                5000,
                &mut sub
            ),
            OK
        );
        let header = wsb_header {
            name: c"k".as_ptr(),
            name_len: 1,
            value: c"v".as_ptr(),
            value_len: 1,
        };
        let body = b"bytes\0inside";
        assert_eq!(
            wsb_client_send(
                client,
                d,
                dl,
                &header,
                1,
                body.as_ptr(),
                body.len(),
                0,
                5000
            ),
            OK
        );
        let m = poll_for(client, WSB_CLIENT_EVENT_MESSAGE);
        assert_eq!(m.subscription, sub);
        assert_eq!(m.destination.as_deref(), Some("/queue/ffi-client"));
        assert_eq!(m.body, body);
        assert!(m.headers.contains(&("k".into(), "v".into())));
        let ack_id = m.ack_id.expect("client-individual has an ack id");
        let (a, al) = s(&ack_id);
        assert_eq!(wsb_client_ack(client, a, al, 0), OK);
        let (j, jl) = s("junk");
        assert_eq!(
            wsb_client_ack(client, j, jl, 0),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        let mut tx = 0;
        assert_eq!(wsb_client_begin(client, &mut tx), OK);
        assert_ne!(tx, 0);
        assert_eq!(wsb_client_end_transaction(client, tx, true, 5000), OK);
        assert_eq!(
            wsb_client_end_transaction(client, tx, true, 0),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(
            wsb_client_send_raw(client, b"x".as_ptr(), 1, false),
            wsb_result::WSB_ERR_INVALID_ARGUMENT,
            "raw messages need raw mode"
        );
        assert_eq!(wsb_client_unsubscribe(client, sub), OK);
        assert_eq!(
            wsb_client_unsubscribe(client, sub),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(wsb_client_disconnect(client, 5000), OK);
        assert_eq!(
            wsb_client_disconnect(client, 5000),
            wsb_result::WSB_ERR_NOT_RUNNING
        );
        let gone = poll_for(client, WSB_CLIENT_EVENT_DISCONNECTED);
        assert!(gone.text.is_some());
        assert_eq!(wsb_client_free(client), OK);
        assert_eq!(wsb_client_free(ptr::null_mut()), OK);
    }
    server.stop(Duration::from_secs(1)).unwrap();
}

static DROPS: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicUsize = AtomicUsize::new(0);
static MESSAGES: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_event(user_data: *mut c_void, event: *const wsb_client_event) {
    // SAFETY: the client passes a live event; user_data is the client slot set below.
    unsafe {
        if (*event).kind == WSB_CLIENT_EVENT_MESSAGE {
            let client = *user_data.cast::<*mut wsb_client>();
            if wsb_client_disconnect(client, 100) == wsb_result::WSB_ERR_CALLED_FROM_CALLBACK
                && wsb_client_free(client) == wsb_result::WSB_ERR_CALLED_FROM_CALLBACK
            {
                REFUSED.fetch_add(1, Ordering::SeqCst);
            }
            MESSAGES.fetch_add(1, Ordering::SeqCst);
        }
    }
}

unsafe extern "C" fn on_drop(user_data: *mut c_void) {
    DROPS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the Box made by the test.
    drop(unsafe { Box::from_raw(user_data.cast::<*mut wsb_client>()) });
}

#[test]
fn client_callback_delivery_and_drop_once() {
    let mut c = ServerConfig::default();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.tcp_listen = Some("127.0.0.1:0".parse().unwrap());
    c.worker_threads = 1;
    let server = Server::new(c).unwrap();
    server.start().unwrap();
    let url = format!("stomp://{}", server.tcp_local_addr().unwrap());
    let slot: *mut *mut wsb_client = Box::into_raw(Box::new(ptr::null_mut()));
    // SAFETY: live test values throughout.
    unsafe {
        let config = new_config(&url);
        assert_eq!(
            wsb_client_config_set_event_callback(
                config,
                Some(on_event),
                slot.cast(),
                Some(on_drop)
            ),
            OK
        );
        assert_eq!(
            wsb_client_config_set_delivery(config, WSB_DELIVERY_CALLBACK, 1, 0),
            OK
        );
        let mut client = ptr::null_mut();
        assert_eq!(wsb_client_new(config, &mut client), OK);
        *slot = client;
        wsb_client_config_free(config);
        assert_eq!(DROPS.load(Ordering::SeqCst), 0, "the client still holds it");
        assert_eq!(
            wsb_client_connect(client, 5000),
            OK,
            "{}",
            client_last_error(client)
        );
        let mut n = 0;
        assert_eq!(
            wsb_client_poll(client, ptr::null_mut(), 0, &mut n),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        let (d, dl) = s("/topic/ffi-cb");
        let mut sub = 0;
        assert_eq!(
            wsb_client_subscribe(client, d, dl, WSB_ACK_AUTO, ptr::null(), 0, 5000, &mut sub),
            OK
        );
        assert_eq!(
            wsb_client_send(client, d, dl, ptr::null(), 0, ptr::null(), 0, 0, 5000),
            OK
        );
        let deadline = Instant::now() + WAIT;
        while MESSAGES.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(MESSAGES.load(Ordering::SeqCst), 1);
        assert_eq!(
            REFUSED.load(Ordering::SeqCst),
            1,
            "waiting calls refused in the callback"
        );
        assert_eq!(wsb_client_free(client), OK);
    }
    assert_eq!(DROPS.load(Ordering::SeqCst), 1, "drop ran exactly once");
    server.stop(Duration::from_secs(1)).unwrap();
}
