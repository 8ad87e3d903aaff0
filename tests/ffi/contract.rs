//! The C ABI's contract, exercised from Rust through the exported `extern "C"` functions:
//! argument checks, result codes, last errors, lifecycle, polling from several threads,
//! re-entrancy from callbacks, drop-once of `user_data`, deferred decisions with a real STOMP
//! client over TCP, and (with `--features ffi-test-panic`) the panic boundary.
//!
//! Every wait is bounded (`WAIT`); servers listen on 127.0.0.1 port 0.

use std::ffi::{CStr, c_char, c_void};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wsbroker::ffi::*;

const WAIT: Duration = Duration::from_secs(5);
const OK: wsb_result = wsb_result::WSB_OK;
const NULL_ARG: wsb_result = wsb_result::WSB_ERR_NULL_ARGUMENT;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A string argument: pointer + length.
pub(crate) fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

pub(crate) fn last_error() -> String {
    // SAFETY: NULL buffer: only the length is asked.
    let len = unsafe { wsb_last_error(ptr::null_mut(), 0) };
    let mut buf = vec![0u8; len + 1];
    // SAFETY: `buf` has len + 1 writable bytes.
    let full = unsafe { wsb_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(full, len);
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn server_last_error(server: *const wsb_server) -> String {
    let mut len = 0usize;
    // SAFETY: a live server; NULL buffer with cap 0.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_last_error(server, ptr::null_mut(), 0, &mut len) },
        OK
    );
    let mut buf = vec![0u8; len + 1];
    let mut len2 = 0usize;
    // SAFETY: `buf` has len + 1 writable bytes.
    let rc =
        unsafe { wsb_server_last_error(server, buf.as_mut_ptr().cast(), buf.len(), &mut len2) };
    assert_eq!(rc, OK);
    assert_eq!(len, len2);
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A config listening on ephemeral ports (WebSocket and TCP), two worker threads.
pub(crate) fn config() -> *mut wsb_config {
    let mut config = ptr::null_mut();
    // SAFETY: valid out pointer; then a live config and valid strings.
    unsafe {
        assert_eq!(wsb_config_new(&mut config), OK);
        let (a, n) = s("127.0.0.1:0");
        assert_eq!(wsb_config_set_listen(config, a, n), OK);
        assert_eq!(wsb_config_set_tcp_listen(config, a, n), OK);
        assert_eq!(wsb_config_set_worker_threads(config, 2), OK);
    }
    config
}

pub(crate) fn new_server(config: *mut wsb_config) -> *mut wsb_server {
    let mut server = ptr::null_mut();
    // SAFETY: a live config, a valid out pointer.
    let rc = unsafe { wsb_server_new(config, &mut server) };
    assert_eq!(rc, OK, "wsb_server_new: {}", last_error());
    // SAFETY: from wsb_config_new.
    unsafe { wsb_config_free(config) };
    server
}

pub(crate) fn start(server: *mut wsb_server) {
    // SAFETY: a live server.
    let rc = unsafe { wsb_server_start(server) };
    assert_eq!(rc, OK, "wsb_server_start: {}", last_error());
}

pub(crate) fn tcp_port(server: *mut wsb_server) -> u16 {
    let mut port = 0;
    // SAFETY: a live server, a valid out pointer.
    assert_eq!(unsafe { wsb_server_tcp_port(server, &mut port) }, OK);
    port
}

pub(crate) fn free(server: *mut wsb_server) {
    // SAFETY: from wsb_server_new, freed once.
    assert_eq!(unsafe { wsb_server_free(server) }, OK);
}

fn publish(server: *mut wsb_server, destination: &str, body: &[u8]) -> wsb_result {
    let (d, dn) = s(destination);
    let header = wsb_header {
        name: c"x-test".as_ptr(),
        name_len: 6,
        value: c"1".as_ptr(),
        value_len: 1,
    };
    // SAFETY: a live server, valid strings, one header, a valid body.
    unsafe { wsb_server_publish(server, d, dn, &header, 1, body.as_ptr(), body.len()) }
}

/// A server pointer that test threads may share (the C API is thread-safe).
#[derive(Clone, Copy)]
struct Shared(*mut wsb_server);
// SAFETY: every wsb_server_* function is thread-safe.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// A string of an event: checks the NUL terminator and the absent = (NULL, 0) rule.
///
/// # Safety
/// `ptr` comes from a live event.
pub(crate) unsafe fn text(ptr: *const c_char, len: usize) -> Option<String> {
    if ptr.is_null() {
        assert_eq!(len, 0, "absent string with a length");
        return None;
    }
    // SAFETY: events carry len bytes plus a NUL.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0, "event string not NUL-terminated");
    Some(String::from_utf8(bytes[..len].to_vec()).unwrap())
}

/// An owned copy of a `wsb_event`.
#[derive(Debug, Clone, Default)]
struct Ev {
    kind: u32,
    transport: u32,
    session: u64,
    subscription: u64,
    dropped: u64,
    user: Option<String>,
    login: Option<String>,
    passcode: Option<String>,
    destination: Option<String>,
    remote_addr: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Ev {
    /// # Safety
    /// `e` is a live event.
    unsafe fn copy(e: &wsb_event) -> Ev {
        // SAFETY: the pointers of a live event.
        unsafe {
            let headers = if e.header_count == 0 {
                assert!(e.headers.is_null());
                Vec::new()
            } else {
                std::slice::from_raw_parts(e.headers, e.header_count)
                    .iter()
                    .map(|h| {
                        (
                            text(h.name, h.name_len).unwrap(),
                            text(h.value, h.value_len).unwrap(),
                        )
                    })
                    .collect()
            };
            let body = (!e.body.is_null())
                .then(|| std::slice::from_raw_parts(e.body, e.body_len).to_vec());
            Ev {
                kind: e.kind,
                transport: e.transport,
                session: e.session,
                subscription: e.subscription,
                dropped: e.dropped,
                user: text(e.user, e.user_len),
                login: text(e.login, e.login_len),
                passcode: text(e.passcode, e.passcode_len),
                destination: text(e.destination, e.destination_len),
                remote_addr: text(e.remote_addr, e.remote_addr_len),
                headers,
                body,
            }
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn blank_events<const N: usize>() -> [wsb_event; N] {
    // SAFETY: wsb_event is plain data (integers and raw pointers): all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Waits (bounded by `WAIT`) until `counter` reaches `n`: callbacks run on the server's
/// callback threads, after the call that caused them returned.
fn wait_for_count(counter: &AtomicUsize, n: usize, what: &str) {
    let deadline = Instant::now() + WAIT;
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} within {WAIT:?}",
            counter.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(counter.load(Ordering::SeqCst), n, "{what}");
}

/// Polls until an event of `kind` arrives (others are skipped), within `WAIT`.
fn poll_for(server: *mut wsb_server, kind: u32) -> Ev {
    let deadline = Instant::now() + WAIT;
    let mut events = blank_events::<8>();
    while Instant::now() < deadline {
        let mut n = 0;
        // SAFETY: a live server, 8 event slots, a valid out pointer.
        let rc = unsafe { wsb_server_poll_timeout(server, events.as_mut_ptr(), 8, 50, &mut n) };
        assert_eq!(rc, OK);
        for e in &events[..n] {
            if e.kind == kind {
                // SAFETY: filled by this thread's last poll.
                return unsafe { Ev::copy(e) };
            }
        }
    }
    panic!("no event of kind {kind} within {WAIT:?}");
}

/// A STOMP frame read by [`Client`].
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) command: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Frame {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal blocking STOMP client over plain TCP.
pub(crate) struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn open(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub(crate) fn send(&mut self, command: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut frame = format!("{command}\n");
        for (n, v) in headers {
            frame.push_str(&format!("{n}:{v}\n"));
        }
        frame.push('\n');
        let mut bytes = frame.into_bytes();
        bytes.extend_from_slice(body);
        bytes.push(0);
        self.stream.write_all(&bytes).unwrap();
    }

    fn connect_frame(&mut self, login: &str) {
        self.send(
            "CONNECT",
            &[
                ("accept-version", "1.2"),
                ("host", "localhost"),
                ("login", login),
                ("passcode", "secret"),
                ("heart-beat", "0,0"),
            ],
            b"",
        );
    }

    /// Connects (no deferral) and expects CONNECTED.
    pub(crate) fn connected(port: u16, login: &str) -> Client {
        let mut client = Client::open(port);
        client.connect_frame(login);
        let frame = client.read();
        assert_eq!(frame.command, "CONNECTED", "{frame:?}");
        client
    }

    pub(crate) fn read(&mut self) -> Frame {
        loop {
            while matches!(self.buf.first(), Some(b'\n' | b'\r')) {
                self.buf.remove(0);
            }
            if let Some(end) = self.buf.iter().position(|&b| b == 0) {
                let raw: Vec<u8> = self.buf.drain(..=end).collect();
                let raw = &raw[..raw.len() - 1];
                let split = raw
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .expect("frame without a blank line");
                let head = String::from_utf8(raw[..split].to_vec()).unwrap();
                let mut lines = head.lines();
                let command = lines.next().unwrap().to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                return Frame {
                    command,
                    headers,
                    body: raw[split + 2..].to_vec(),
                };
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("reading a frame");
            assert!(n > 0, "connection closed while waiting for a frame");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Subscribes and waits for the receipt, so that the subscription is active.
    fn subscribe(&mut self, destination: &str, id: &str) {
        self.send(
            "SUBSCRIBE",
            &[
                ("destination", destination),
                ("id", id),
                ("receipt", "r-sub"),
            ],
            b"",
        );
        let frame = self.read();
        assert_eq!(frame.command, "RECEIPT", "{frame:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Counters used as user_data
// ---------------------------------------------------------------------------------------------

unsafe extern "C" fn count_drop(user_data: *mut c_void) {
    // SAFETY: every test passes a live AtomicUsize.
    unsafe { &*(user_data as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn ignore_event(_: *mut c_void, _: *const wsb_event) {}

unsafe extern "C" fn count_wake(user_data: *mut c_void) {
    // SAFETY: a live AtomicUsize.
    unsafe { &*(user_data as *const AtomicUsize) }.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn ignore_wake(_: *mut c_void) {}

unsafe extern "C" fn accept_app(
    _: *mut c_void,
    _: *const wsb_event,
    _: *mut c_char,
    _: usize,
) -> i32 {
    0
}

fn counter() -> &'static AtomicUsize {
    Box::leak(Box::new(AtomicUsize::new(0)))
}

fn ud(counter: &'static AtomicUsize) -> *mut c_void {
    counter as *const AtomicUsize as *mut c_void
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn version_abi_and_result_strings() {
    // SAFETY: static strings.
    let version = unsafe { CStr::from_ptr(wsb_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(wsb_abi_version(), WSB_ABI_VERSION);
    let describe = |code: i32| {
        // SAFETY: a static string.
        unsafe { CStr::from_ptr(wsb_result_str(code)) }
            .to_str()
            .unwrap()
            .to_string()
    };
    assert!(describe(202).starts_with("WSB_ERR_NOT_FOUND"));
    assert!(describe(0).starts_with("WSB_OK"));
    assert!(describe(900).starts_with("WSB_ERR_PANIC"));
    for code in [100, 101, 102, 103, 200, 201, 203, 300, 301, 302] {
        assert!(describe(code).starts_with("WSB_ERR_"), "{code}");
    }
    assert_eq!(describe(-1), "unknown result code");
    assert_eq!(describe(104), "unknown result code");
}

#[test]
fn null_arguments_are_rejected_everywhere() {
    let null_cfg: *mut wsb_config = ptr::null_mut();
    let null_srv: *mut wsb_server = ptr::null_mut();
    let (a, n) = s("127.0.0.1:0");
    let mut port = 0u16;
    let mut count = 0usize;
    let mut id = 0u64;
    let mut stats = wsb_stats::default();
    let mut events = blank_events::<2>();
    // SAFETY: every pointer is NULL or valid; that is what is tested.
    unsafe {
        assert_eq!(wsb_config_new(ptr::null_mut()), NULL_ARG);
        assert!(last_error().contains("out_config"), "{}", last_error());
        wsb_config_free(ptr::null_mut());
        assert_eq!(wsb_config_set_listen(null_cfg, a, n), NULL_ARG);
        assert!(last_error().contains("config"));
        assert_eq!(wsb_config_set_path(null_cfg, a, n), NULL_ARG);
        assert_eq!(wsb_config_set_tcp_listen(null_cfg, a, n), NULL_ARG);
        assert_eq!(wsb_config_add_allowed_origin(null_cfg, a, n), NULL_ARG);
        assert_eq!(wsb_config_add_app_prefix(null_cfg, a, n), NULL_ARG);
        assert_eq!(wsb_config_set_heartbeat(null_cfg, 0, 0), NULL_ARG);
        assert_eq!(wsb_config_set_timeouts(null_cfg, 0, 0, 0, 0), NULL_ARG);
        assert_eq!(wsb_config_set_max_frame_size(null_cfg, 1), NULL_ARG);
        assert_eq!(
            wsb_config_set_permessage_deflate(null_cfg, true, 1, 0),
            NULL_ARG
        );
        assert_eq!(wsb_config_set_max_connections(null_cfg, 1), NULL_ARG);
        assert_eq!(wsb_config_set_max_connections_per_ip(null_cfg, 1), NULL_ARG);
        assert_eq!(wsb_config_set_outbound_limits(null_cfg, 1, 1), NULL_ARG);
        assert_eq!(wsb_config_set_max_queue_depth(null_cfg, 1), NULL_ARG);
        assert_eq!(wsb_config_set_worker_threads(null_cfg, 1), NULL_ARG);
        assert_eq!(wsb_config_set_delivery_mode(null_cfg, 0), NULL_ARG);
        assert_eq!(wsb_config_set_event_queue(null_cfg, 1, 0), NULL_ARG);
        assert_eq!(wsb_config_set_defer(null_cfg, true, true), NULL_ARG);
        assert_eq!(wsb_config_set_decision_timeout(null_cfg, 1), NULL_ARG);
        assert_eq!(wsb_config_set_sockjs_path(null_cfg, a, n), NULL_ARG);
        assert_eq!(wsb_config_set_sockjs_limits(null_cfg, 0, 0, 0), NULL_ARG);
        assert_eq!(
            wsb_config_set_sockjs_options(null_cfg, true, false),
            NULL_ARG
        );
        assert_eq!(wsb_config_set_static_dir(null_cfg, a, n), NULL_ARG);
        assert_eq!(
            wsb_config_set_wake_callback(null_cfg, Some(count_wake), ptr::null_mut(), None),
            NULL_ARG
        );
        assert_eq!(
            wsb_config_set_event_callback(null_cfg, Some(ignore_event), ptr::null_mut(), None),
            NULL_ARG
        );

        // NULL strings with a length, on a real config.
        let config = config();
        assert_eq!(wsb_config_set_listen(config, ptr::null(), 3), NULL_ARG);
        assert!(last_error().contains("addr"), "{}", last_error());
        assert_eq!(wsb_config_set_path(config, ptr::null(), 1), NULL_ARG);
        assert_eq!(
            wsb_config_add_allowed_origin(config, ptr::null(), 1),
            NULL_ARG
        );
        assert_eq!(wsb_config_add_app_prefix(config, ptr::null(), 1), NULL_ARG);
        let mut out = ptr::null_mut();
        assert_eq!(wsb_server_new(null_cfg, &mut out), NULL_ARG);
        assert_eq!(wsb_server_new(config, ptr::null_mut()), NULL_ARG);
        assert!(out.is_null(), "out pointers are written only on success");

        // Every server function with a NULL server.
        assert_eq!(wsb_server_free(null_srv), OK, "freeing NULL is fine");
        assert_eq!(wsb_server_start(null_srv), NULL_ARG);
        assert_eq!(wsb_server_stop(null_srv, 0), NULL_ARG);
        assert_eq!(wsb_server_local_port(null_srv, &mut port), NULL_ARG);
        assert_eq!(wsb_server_tcp_port(null_srv, &mut port), NULL_ARG);
        assert_eq!(
            wsb_server_last_error(null_srv, ptr::null_mut(), 0, &mut count),
            NULL_ARG
        );
        assert_eq!(wsb_server_stats(null_srv, &mut stats), NULL_ARG);
        assert_eq!(
            wsb_server_publish(null_srv, a, n, ptr::null(), 0, ptr::null(), 0),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_send_to_user(null_srv, a, n, a, n, ptr::null(), 0, ptr::null(), 0),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_send_to_session(null_srv, 1, a, n, ptr::null(), 0, ptr::null(), 0),
            NULL_ARG
        );
        assert_eq!(wsb_server_disconnect(null_srv, 1, a, n), NULL_ARG);
        assert_eq!(
            wsb_server_subscribe(null_srv, a, n, None, ptr::null_mut(), None, &mut id),
            NULL_ARG
        );
        assert_eq!(wsb_server_unsubscribe(null_srv, 1), NULL_ARG);
        assert_eq!(
            wsb_server_handle_app(null_srv, a, n, None, ptr::null_mut(), None),
            NULL_ARG
        );
        assert_eq!(wsb_server_remove_app(null_srv, a, n), NULL_ARG);
        assert_eq!(wsb_server_accept(null_srv, 1, ptr::null(), 0), NULL_ARG);
        assert_eq!(wsb_server_reject(null_srv, 1, a, n), NULL_ARG);
        assert_eq!(
            wsb_server_answer_subscribe(null_srv, 1, true, a, n),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_poll(null_srv, events.as_mut_ptr(), 2, &mut count),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_poll_timeout(null_srv, events.as_mut_ptr(), 2, 1, &mut count),
            NULL_ARG
        );

        // NULL out-pointers and NULL data with lengths, on a real server.
        let server = new_server(config);
        assert_eq!(wsb_server_local_port(server, ptr::null_mut()), NULL_ARG);
        assert_eq!(wsb_server_tcp_port(server, ptr::null_mut()), NULL_ARG);
        assert!(server_last_error(server).contains("out_port"));
        assert_eq!(
            wsb_server_last_error(server, ptr::null_mut(), 0, ptr::null_mut()),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_last_error(server, ptr::null_mut(), 5, &mut count),
            NULL_ARG
        );
        assert_eq!(wsb_server_stats(server, ptr::null_mut()), NULL_ARG);
        assert_eq!(
            wsb_server_publish(server, ptr::null(), 4, ptr::null(), 0, ptr::null(), 0),
            NULL_ARG
        );
        let (t, tn) = s("/topic/a");
        assert_eq!(
            wsb_server_publish(server, t, tn, ptr::null(), 2, ptr::null(), 0),
            NULL_ARG
        );
        assert!(last_error().contains("headers"), "{}", last_error());
        assert_eq!(
            wsb_server_publish(server, t, tn, ptr::null(), 0, ptr::null(), 9),
            NULL_ARG
        );
        assert!(last_error().contains("body"), "{}", last_error());
        let bad_header = wsb_header {
            name: ptr::null(),
            name_len: 2,
            value: ptr::null(),
            value_len: 0,
        };
        assert_eq!(
            wsb_server_publish(server, t, tn, &bad_header, 1, ptr::null(), 0),
            NULL_ARG
        );
        assert!(last_error().contains("headers[0].name"), "{}", last_error());
        assert_eq!(
            wsb_server_send_to_user(
                server,
                ptr::null(),
                1,
                t,
                tn,
                ptr::null(),
                0,
                ptr::null(),
                0
            ),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_subscribe(server, t, tn, None, ptr::null_mut(), None, ptr::null_mut()),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_subscribe(server, ptr::null(), 3, None, ptr::null_mut(), None, &mut id),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_handle_app(server, ptr::null(), 3, None, ptr::null_mut(), None),
            NULL_ARG
        );
        assert_eq!(wsb_server_reject(server, 1, ptr::null(), 3), NULL_ARG);
        assert_eq!(
            wsb_server_poll(server, ptr::null_mut(), 4, &mut count),
            NULL_ARG
        );
        assert_eq!(
            wsb_server_poll(server, events.as_mut_ptr(), 2, ptr::null_mut()),
            NULL_ARG
        );
        // NULL with length 0 is the empty string / no data.
        assert_eq!(wsb_server_poll(server, ptr::null_mut(), 0, &mut count), OK);
        assert_eq!(count, 0);
        free(server);
    }
}

#[test]
fn invalid_utf8_is_rejected() {
    let bad = b"/topic/\xff";
    let config = config();
    // SAFETY: valid pointers and lengths throughout.
    unsafe {
        assert_eq!(
            wsb_config_set_path(config, bad.as_ptr().cast(), bad.len()),
            wsb_result::WSB_ERR_INVALID_UTF8
        );
        assert!(last_error().contains("path"), "{}", last_error());
        let server = new_server(config);
        assert_eq!(
            wsb_server_publish(
                server,
                bad.as_ptr().cast(),
                bad.len(),
                ptr::null(),
                0,
                ptr::null(),
                0
            ),
            wsb_result::WSB_ERR_INVALID_UTF8
        );
        assert!(server_last_error(server).contains("destination"));
        let header = wsb_header {
            name: c"k".as_ptr(),
            name_len: 1,
            value: bad.as_ptr().cast(),
            value_len: bad.len(),
        };
        let (t, tn) = s("/topic/a");
        assert_eq!(
            wsb_server_publish(server, t, tn, &header, 1, ptr::null(), 0),
            wsb_result::WSB_ERR_INVALID_UTF8
        );
        assert!(
            last_error().contains("headers[0].value"),
            "{}",
            last_error()
        );
        let mut id = 0;
        assert_eq!(
            wsb_server_subscribe(
                server,
                bad.as_ptr().cast(),
                bad.len(),
                None,
                ptr::null_mut(),
                None,
                &mut id
            ),
            wsb_result::WSB_ERR_INVALID_UTF8
        );
        assert_eq!(
            wsb_server_accept(server, 1, bad.as_ptr().cast(), bad.len()),
            wsb_result::WSB_ERR_INVALID_UTF8
        );
        // Binary bodies are fine (once the server runs: before, publishing is NOT_RUNNING).
        let body = [0xffu8, 0, 0xfe];
        assert_eq!(
            wsb_server_publish(server, t, tn, ptr::null(), 0, body.as_ptr(), body.len()),
            wsb_result::WSB_ERR_NOT_RUNNING
        );
        start(server);
        assert_eq!(
            wsb_server_publish(server, t, tn, ptr::null(), 0, body.as_ptr(), body.len()),
            OK
        );
        free(server);
    }
}

#[test]
fn bad_enum_values_and_addresses_are_invalid_arguments() {
    let invalid = wsb_result::WSB_ERR_INVALID_ARGUMENT;
    let config = config();
    // SAFETY: a live config, valid strings.
    unsafe {
        assert_eq!(wsb_config_set_delivery_mode(config, 2), invalid);
        assert!(last_error().contains("mode"), "{}", last_error());
        assert_eq!(wsb_config_set_delivery_mode(config, u32::MAX), invalid);
        assert_eq!(wsb_config_set_event_queue(config, 10, 2), invalid);
        assert!(last_error().contains("overflow_policy"));
        assert_eq!(
            wsb_config_set_event_queue(config, 10, WSB_OVERFLOW_DROP_OLDEST),
            OK
        );
        assert_eq!(wsb_config_set_slow_consumer_policy(config, 3), invalid);
        assert!(
            last_error().contains("WSB_SLOW_CONSUMER"),
            "{}",
            last_error()
        );
        assert_eq!(
            wsb_config_set_slow_consumer_policy(config, WSB_SLOW_CONSUMER_DROP_OLDEST),
            OK
        );
        let (a, n) = s("localhost:http");
        assert_eq!(wsb_config_set_listen(config, a, n), invalid);
        assert!(last_error().contains("localhost:http"));
        assert_eq!(wsb_config_set_tcp_listen(config, a, n), invalid);
        assert_eq!(wsb_config_set_tcp_listen(config, ptr::null(), 0), OK);
        assert_eq!(
            wsb_set_log_callback(Some(ignore_log), ptr::null_mut(), 0),
            invalid
        );
        assert_eq!(
            wsb_set_log_callback(Some(ignore_log), ptr::null_mut(), 6),
            invalid
        );
        let server = new_server(config);
        // The TCP listener was turned off again.
        start(server);
        let mut port = 0;
        assert_eq!(
            wsb_server_tcp_port(server, &mut port),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(port, 0);
        free(server);
    }
}

unsafe extern "C" fn ignore_log(_: *mut c_void, _: i32, _: *const c_char, _: *const c_char) {}

#[test]
fn invalid_config_names_the_field_and_keeps_the_callbacks() {
    let config = config();
    let dropped = counter();
    let mut server = ptr::null_mut();
    // SAFETY: a live config, valid out pointers.
    unsafe {
        assert_eq!(wsb_config_set_max_frame_size(config, 0), OK);
        assert_eq!(
            wsb_config_set_wake_callback(config, Some(count_wake), ud(dropped), Some(count_drop)),
            OK
        );
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        assert!(server.is_null());
        assert!(last_error().contains("max_frame_size"), "{}", last_error());
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            0,
            "a failed new leaves the config"
        );

        assert_eq!(wsb_config_set_max_frame_size(config, 1 << 20), OK);
        assert_eq!(wsb_config_set_decision_timeout(config, 0), OK);
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        assert!(
            last_error().contains("decision_timeout"),
            "{}",
            last_error()
        );
        assert_eq!(wsb_config_set_decision_timeout(config, 1000), OK);

        assert_eq!(
            wsb_config_set_delivery_mode(config, WSB_DELIVERY_CALLBACK),
            OK
        );
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        assert!(last_error().contains("event callback"), "{}", last_error());
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        wsb_config_free(config);
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "wsb_config_free drops");
}

#[test]
fn every_limit_setter_reaches_the_validated_config() {
    // Each zero limit must be refused by name at wsb_server_new, which proves the setter wrote
    // the field it claims to.
    type Setter = unsafe fn(*mut wsb_config);
    let cases: [(&str, Setter); 7] = [
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        ("deflate_level", |c| unsafe {
            wsb_config_set_permessage_deflate(c, true, 256, 10);
        }),
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        ("max_headers", |c| unsafe {
            wsb_config_set_header_limits(c, 0, 100);
        }),
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        ("max_header_length", |c| unsafe {
            wsb_config_set_header_limits(c, 10, 0);
        }),
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        ("max_subscriptions_per_session", |c| unsafe {
            wsb_config_set_max_subscriptions(c, 0);
        }),
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        ("max_unacked_per_subscription", |c| unsafe {
            wsb_config_set_max_unacked(c, 0);
        }),
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        ("max_transaction_frames", |c| unsafe {
            wsb_config_set_transaction_limits(c, 0, 1);
        }),
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        ("max_open_transactions", |c| unsafe {
            wsb_config_set_transaction_limits(c, 1, 0);
        }),
    ];
    for (field, set) in cases {
        let config = config();
        let mut server = ptr::null_mut();
        // SAFETY: a live config and out pointer.
        unsafe {
            set(config);
            assert_eq!(
                wsb_server_new(config, &mut server),
                wsb_result::WSB_ERR_INVALID_CONFIG
            );
            assert!(last_error().contains(field), "{field}: {}", last_error());
            wsb_config_free(config);
        }
    }
    let config = config();
    let (queue, queue_len) = s("/q/");
    let (bad, bad_len) = s("user");
    let mut server = ptr::null_mut();
    // SAFETY: a live config, valid strings and out pointer.
    unsafe {
        assert_eq!(
            wsb_config_set_prefixes(config, queue, queue_len, ptr::null(), 0),
            OK
        );
        assert_eq!(
            wsb_config_set_prefixes(config, ptr::null(), 0, bad, bad_len),
            OK
        );
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        assert!(last_error().contains("user_prefix"), "{}", last_error());
        wsb_config_free(config);
    }
}

#[test]
fn lifecycle_results() {
    let server = new_server(config());
    let mut port = 0u16;
    // SAFETY: a live server and valid out pointers.
    unsafe {
        assert_eq!(
            wsb_server_local_port(server, &mut port),
            wsb_result::WSB_ERR_NOT_RUNNING
        );
        assert_eq!(wsb_server_stop(server, 0), wsb_result::WSB_ERR_NOT_RUNNING);
        start(server);
        assert_eq!(wsb_server_local_port(server, &mut port), OK);
        assert_ne!(port, 0);
        assert_ne!(tcp_port(server), 0);
        assert_eq!(
            wsb_server_start(server),
            wsb_result::WSB_ERR_ALREADY_STARTED
        );
        assert!(server_last_error(server).contains("already started"));
        assert_eq!(publish(server, "/topic/a", b"x"), OK);
        let mut stats = wsb_stats::default();
        assert_eq!(wsb_server_stats(server, &mut stats), OK);
        assert_eq!(stats.messages_in, 1);
        assert_eq!(wsb_server_stop(server, 100), OK);
        assert_eq!(
            wsb_server_stop(server, 100),
            wsb_result::WSB_ERR_NOT_RUNNING
        );
        assert!(last_error().contains("not running"), "{}", last_error());
        assert_eq!(
            publish(server, "/topic/a", b"x"),
            wsb_result::WSB_ERR_NOT_RUNNING
        );
        assert_eq!(
            wsb_server_local_port(server, &mut port),
            wsb_result::WSB_ERR_NOT_RUNNING
        );
        assert_eq!(
            wsb_server_start(server),
            wsb_result::WSB_ERR_ALREADY_STARTED
        );
    }
    free(server);
}

#[test]
fn unknown_ids_are_not_found() {
    let server = new_server(config());
    start(server);
    let (t, tn) = s("/topic/a");
    let (app, appn) = s("/app/none");
    let not_found = wsb_result::WSB_ERR_NOT_FOUND;
    // SAFETY: a live server, valid strings.
    unsafe {
        assert_eq!(wsb_server_unsubscribe(server, 12345), not_found);
        assert_eq!(wsb_server_remove_app(server, app, appn), not_found);
        assert_eq!(
            wsb_server_send_to_session(server, 999, t, tn, ptr::null(), 0, ptr::null(), 0),
            not_found
        );
        assert_eq!(wsb_server_disconnect(server, 999, t, tn), not_found);
        assert_eq!(wsb_server_accept(server, 999, ptr::null(), 0), not_found);
        assert_eq!(wsb_server_reject(server, 999, t, tn), not_found);
        assert_eq!(
            wsb_server_answer_subscribe(server, 999, true, ptr::null(), 0),
            not_found
        );
        assert!(server_last_error(server).contains("999"));
    }
    free(server);
}

#[test]
fn address_in_use_reports_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let config = config();
    let (a, n) = s(&addr);
    // SAFETY: a live config, a valid string.
    assert_eq!(unsafe { wsb_config_set_listen(config, a, n) }, OK);
    let server = new_server(config);
    // SAFETY: a live server.
    let rc = unsafe { wsb_server_start(server) };
    assert_eq!(rc, wsb_result::WSB_ERR_ADDRESS_IN_USE);
    assert!(last_error().contains(&addr), "{}", last_error());
    assert!(server_last_error(server).contains(&addr));
    free(server);
}

#[test]
fn last_error_is_truncated_on_a_char_boundary() {
    let config = config();
    let (a, n) = s("ü-not-an-address-ü-ü-ü");
    // SAFETY: a live config, valid string.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_config_set_listen(config, a, n) },
        wsb_result::WSB_ERR_INVALID_ARGUMENT
    );
    let full = last_error();
    let mut buf = [0x55u8; 8];
    // SAFETY: 8 writable bytes.
    let len = unsafe { wsb_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(len, full.len());
    let copy = CStr::from_bytes_until_nul(&buf).unwrap().to_str().unwrap();
    assert!(full.starts_with(copy) && copy.len() <= 7, "{copy:?}");
    // Successful calls leave it alone; other threads have their own.
    // SAFETY: a live config.
    assert_eq!(unsafe { wsb_config_set_heartbeat(config, 0, 0) }, OK);
    assert_eq!(last_error(), full);
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
    // SAFETY: from wsb_config_new.
    unsafe { wsb_config_free(config) };
}

#[test]
fn poll_in_callback_mode_is_an_invalid_argument() {
    let config = config();
    // SAFETY: a live config; a valid callback.
    unsafe {
        assert_eq!(
            wsb_config_set_delivery_mode(config, WSB_DELIVERY_CALLBACK),
            OK
        );
        assert_eq!(
            wsb_config_set_event_callback(config, Some(ignore_event), ptr::null_mut(), None),
            OK
        );
    }
    let server = new_server(config);
    let mut events = blank_events::<1>();
    let mut n = 0;
    // SAFETY: a live server, one slot.
    let rc = unsafe { wsb_server_poll(server, events.as_mut_ptr(), 1, &mut n) };
    assert_eq!(rc, wsb_result::WSB_ERR_INVALID_ARGUMENT);
    free(server);
}

#[test]
fn two_threads_polling_get_each_event_exactly_once() {
    const MESSAGES: usize = 2000;
    let server = new_server(config());
    start(server);
    let (t, tn) = s("/topic/poll");
    let mut sub = 0u64;
    // SAFETY: a live server, valid pattern and out pointer.
    let rc = unsafe { wsb_server_subscribe(server, t, tn, None, ptr::null_mut(), None, &mut sub) };
    assert_eq!(rc, OK);
    let shared = Shared(server);
    let seen = Arc::new(Mutex::new(Vec::<usize>::new()));
    let total = Arc::new(AtomicUsize::new(0));
    let pollers: Vec<_> = (0..2)
        .map(|_| {
            let seen = seen.clone();
            let total = total.clone();
            std::thread::spawn(move || {
                let shared = shared;
                let mut events = blank_events::<16>();
                let mut mine = Vec::new();
                let deadline = Instant::now() + WAIT * 2;
                while total.load(Ordering::SeqCst) < MESSAGES && Instant::now() < deadline {
                    let mut n = 0;
                    // SAFETY: a live server, 16 slots.
                    let rc = unsafe {
                        wsb_server_poll_timeout(shared.0, events.as_mut_ptr(), 16, 20, &mut n)
                    };
                    assert_eq!(rc, OK);
                    // Give the other poller a chance to poll (and replace its own batch)
                    // before this thread reads its events: they must stay valid.
                    std::thread::yield_now();
                    for e in &events[..n] {
                        // SAFETY: filled by this thread's last poll.
                        let ev = unsafe { Ev::copy(e) };
                        assert_eq!(ev.kind, WSB_EVENT_MESSAGE, "{ev:?}");
                        assert_eq!(ev.subscription, sub);
                        assert_eq!(ev.destination.as_deref(), Some("/topic/poll"));
                        assert_eq!(ev.header("x-test"), Some("1"));
                        let body = String::from_utf8(ev.body.unwrap()).unwrap();
                        mine.push(body.parse::<usize>().unwrap());
                    }
                    total.fetch_add(n, Ordering::SeqCst);
                }
                seen.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for i in 0..MESSAGES {
        assert_eq!(publish(server, "/topic/poll", i.to_string().as_bytes()), OK);
    }
    for poller in pollers {
        poller.join().unwrap();
    }
    let mut seen = Arc::try_unwrap(seen).unwrap().into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..MESSAGES).collect::<Vec<_>>(),
        "each event exactly once"
    );
    free(server);
}

#[test]
fn poll_results_stay_valid_until_the_same_threads_next_poll() {
    let server = new_server(config());
    start(server);
    let (t, tn) = s("/topic/keep");
    let mut sub = 0u64;
    // SAFETY: a live server, valid pattern and out pointer.
    let rc = unsafe { wsb_server_subscribe(server, t, tn, None, ptr::null_mut(), None, &mut sub) };
    assert_eq!(rc, OK);
    assert_eq!(publish(server, "/topic/keep", b"first"), OK);
    assert_eq!(publish(server, "/topic/keep", b"second"), OK);
    let mut mine = blank_events::<1>();
    let mut n = 0;
    // SAFETY: a live server, one slot.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_poll(server, mine.as_mut_ptr(), 1, &mut n) },
        OK
    );
    assert_eq!(n, 1);
    let shared = Shared(server);
    let other = std::thread::spawn(move || {
        let shared = shared;
        let mut events = blank_events::<4>();
        let mut n = 0;
        // SAFETY: a live server, 4 slots.
        let rc = unsafe { wsb_server_poll(shared.0, events.as_mut_ptr(), 4, &mut n) };
        assert_eq!(rc, OK);
        assert_eq!(n, 1);
        // SAFETY: filled by this thread's poll.
        unsafe { Ev::copy(&events[0]) }.body.unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(other, b"second");
    // SAFETY: this thread has not polled again: still valid.
    let first = unsafe { Ev::copy(&mine[0]) };
    assert_eq!(first.body.as_deref(), Some(&b"first"[..]));
    free(server);
}

/// What a re-entering callback saw.
#[derive(Default)]
struct Reentry {
    server: AtomicPtr<wsb_server>,
    calls: AtomicUsize,
    stop: AtomicI32,
    free: AtomicI32,
    publish: AtomicI32,
    accept: AtomicI32,
    thread_name: Mutex<Option<String>>,
}

/// What a re-entering callback could do; the count goes up last, so a test that saw it (or
/// the message published here) sees everything recorded before it.
fn record(r: &Reentry) {
    let server = r.server.load(Ordering::SeqCst);
    *r.thread_name.lock().unwrap() = std::thread::current().name().map(str::to_string);
    // SAFETY: the server outlives its callbacks.
    unsafe {
        r.stop
            .store(wsb_server_stop(server, 0) as i32, Ordering::SeqCst);
        r.free
            .store(wsb_server_free(server) as i32, Ordering::SeqCst);
    }
    r.publish.store(
        publish(server, "/topic/echo", b"from-callback") as i32,
        Ordering::SeqCst,
    );
    r.calls.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn reenter_event(user_data: *mut c_void, _: *const wsb_event) {
    // SAFETY: a live Reentry.
    record(unsafe { &*(user_data as *const Reentry) });
}

unsafe extern "C" fn reenter_app(
    user_data: *mut c_void,
    event: *const wsb_event,
    error_buf: *mut c_char,
    error_cap: usize,
) -> i32 {
    // SAFETY: a live Reentry; a live event; error_buf has error_cap bytes.
    unsafe {
        record(&*(user_data as *const Reentry));
        let ev = Ev::copy(&*event);
        if ev.body.as_deref() == Some(b"refuse") {
            let text = b"refused: no thanks\0";
            assert!(error_cap >= text.len());
            ptr::copy_nonoverlapping(text.as_ptr(), error_buf.cast::<u8>(), text.len());
            return 1;
        }
    }
    0
}

#[test]
fn stop_and_free_inside_a_host_thread_callback_are_refused() {
    let server = new_server(config());
    start(server);
    let reentry = Reentry::default();
    reentry.server.store(server, Ordering::SeqCst);
    let echoes = counter();
    let (t, tn) = s("/topic/reenter");
    let (e, en) = s("/topic/echo");
    let mut id = 0;
    // SAFETY: a live server; `reentry` outlives the server (freed below).
    unsafe {
        assert_eq!(
            wsb_server_subscribe(
                server,
                t,
                tn,
                Some(reenter_event),
                &reentry as *const _ as *mut c_void,
                None,
                &mut id
            ),
            OK
        );
        assert_eq!(
            wsb_server_subscribe(server, e, en, Some(count_echo), ud(echoes), None, &mut id),
            OK
        );
    }
    assert_eq!(publish(server, "/topic/reenter", b"go"), OK);
    let called_from_callback = wsb_result::WSB_ERR_CALLED_FROM_CALLBACK as i32;
    wait_for_count(&reentry.calls, 1, "host-subscription callback");
    wait_for_count(echoes, 1, "the nested publish");
    assert_eq!(reentry.stop.load(Ordering::SeqCst), called_from_callback);
    assert_eq!(reentry.free.load(Ordering::SeqCst), called_from_callback);
    assert_eq!(reentry.publish.load(Ordering::SeqCst), OK as i32);
    assert_eq!(
        echoes.load(Ordering::SeqCst),
        1,
        "the nested publish was delivered"
    );
    assert!(server_last_error(server).contains("callback"));
    // Outside the callback both work again.
    // SAFETY: a live server.
    assert_eq!(unsafe { wsb_server_stop(server, 100) }, OK);
    free(server);
}

unsafe extern "C" fn count_echo(user_data: *mut c_void, event: *const wsb_event) {
    // SAFETY: a live event and counter.
    unsafe {
        let ev = Ev::copy(&*event);
        assert_eq!(ev.body.as_deref(), Some(&b"from-callback"[..]));
        (*(user_data as *const AtomicUsize)).fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn app_callback_on_a_callback_thread_can_publish_refuse_but_not_stop() {
    let server = new_server(config());
    start(server);
    let reentry = Reentry::default();
    reentry.server.store(server, Ordering::SeqCst);
    let (app, appn) = s("/app/echo");
    // SAFETY: a live server; `reentry` outlives the server.
    let rc = unsafe {
        wsb_server_handle_app(
            server,
            app,
            appn,
            Some(reenter_app),
            &reentry as *const _ as *mut c_void,
            None,
        )
    };
    assert_eq!(rc, OK);
    let mut client = Client::connected(tcp_port(server), "alice");
    client.subscribe("/topic/echo", "s1");
    client.send("SEND", &[("destination", "/app/echo")], b"hello");
    let frame = client.read();
    assert_eq!(frame.command, "MESSAGE", "{frame:?}");
    assert_eq!(frame.body, b"from-callback");
    assert_eq!(frame.header("x-test"), Some("1"));
    let called_from_callback = wsb_result::WSB_ERR_CALLED_FROM_CALLBACK as i32;
    assert_eq!(reentry.stop.load(Ordering::SeqCst), called_from_callback);
    assert_eq!(reentry.free.load(Ordering::SeqCst), called_from_callback);
    assert_eq!(reentry.publish.load(Ordering::SeqCst), OK as i32);
    assert_eq!(
        reentry.thread_name.lock().unwrap().as_deref(),
        Some("wsbroker-callback")
    );
    // A refusal becomes an ERROR carrying the handler's text.
    client.send("SEND", &[("destination", "/app/echo")], b"refuse");
    let mut frame = client.read();
    if frame.command == "MESSAGE" {
        frame = client.read();
    }
    assert_eq!(frame.command, "ERROR", "{frame:?}");
    let message = frame.header("message").unwrap_or_default().to_string();
    assert!(
        message.contains("refused: no thanks")
            || String::from_utf8_lossy(&frame.body).contains("refused: no thanks"),
        "{frame:?}"
    );
    free(server);
}

#[test]
fn drop_callbacks_run_exactly_once() {
    let config = config();
    let wake_first = counter();
    let wake_second = counter();
    let event_cb = counter();
    // SAFETY: a live config; valid callbacks and counters.
    unsafe {
        assert_eq!(
            wsb_config_set_wake_callback(
                config,
                Some(ignore_wake),
                ud(wake_first),
                Some(count_drop)
            ),
            OK
        );
        assert_eq!(
            wsb_config_set_wake_callback(
                config,
                Some(ignore_wake),
                ud(wake_second),
                Some(count_drop)
            ),
            OK
        );
        assert_eq!(wake_first.load(Ordering::SeqCst), 1, "replaced: dropped");
        // Poll mode: the event callback is never called; the config keeps it until it is freed.
        assert_eq!(
            wsb_config_set_event_callback(
                config,
                Some(ignore_event),
                ud(event_cb),
                Some(count_drop)
            ),
            OK
        );
    }
    let mut server = ptr::null_mut();
    // SAFETY: a live config.
    assert_eq!(unsafe { wsb_server_new(config, &mut server) }, OK);
    assert_eq!(event_cb.load(Ordering::SeqCst), 0, "still the config's");
    // SAFETY: from wsb_config_new.
    unsafe { wsb_config_free(config) };
    assert_eq!(
        event_cb.load(Ordering::SeqCst),
        1,
        "dropped with the config"
    );
    assert_eq!(
        wake_second.load(Ordering::SeqCst),
        0,
        "shared with the server, which still holds it"
    );
    start(server);

    let (t, tn) = s("/topic/d");
    let (app, appn) = s("/app/d");
    let sub_removed = counter();
    let sub_kept = counter();
    let sub_null_cb = counter();
    let sub_failed = counter();
    let app_replaced = counter();
    let app_removed = counter();
    let app_kept = counter();
    let mut id = 0;
    let mut kept_id = 0;
    // SAFETY: a live server; valid callbacks and counters.
    unsafe {
        assert_eq!(
            wsb_server_subscribe(
                server,
                t,
                tn,
                Some(ignore_event),
                ud(sub_removed),
                Some(count_drop),
                &mut id
            ),
            OK
        );
        assert_eq!(
            wsb_server_subscribe(
                server,
                t,
                tn,
                Some(ignore_event),
                ud(sub_kept),
                Some(count_drop),
                &mut kept_id
            ),
            OK
        );
        assert_ne!(id, kept_id, "ids are never reused");
        assert_eq!(sub_removed.load(Ordering::SeqCst), 0);
        assert_eq!(wsb_server_unsubscribe(server, id), OK);
        assert_eq!(sub_removed.load(Ordering::SeqCst), 1);
        assert_eq!(
            wsb_server_unsubscribe(server, id),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert_eq!(sub_removed.load(Ordering::SeqCst), 1);

        let mut other = 0;
        assert_eq!(
            wsb_server_subscribe(
                server,
                t,
                tn,
                None,
                ud(sub_null_cb),
                Some(count_drop),
                &mut other
            ),
            OK
        );
        assert_eq!(
            sub_null_cb.load(Ordering::SeqCst),
            1,
            "NULL cb: dropped at once"
        );

        assert_eq!(
            wsb_server_subscribe(
                server,
                ptr::null(),
                4,
                Some(ignore_event),
                ud(sub_failed),
                Some(count_drop),
                &mut other
            ),
            NULL_ARG
        );
        assert_eq!(
            sub_failed.load(Ordering::SeqCst),
            0,
            "failed: caller keeps user_data"
        );

        assert_eq!(
            wsb_server_handle_app(
                server,
                app,
                appn,
                Some(accept_app),
                ud(app_replaced),
                Some(count_drop)
            ),
            OK
        );
        assert_eq!(
            wsb_server_handle_app(
                server,
                app,
                appn,
                Some(accept_app),
                ud(app_removed),
                Some(count_drop)
            ),
            OK
        );
        assert_eq!(app_replaced.load(Ordering::SeqCst), 1, "replaced: dropped");
        assert_eq!(wsb_server_remove_app(server, app, appn), OK);
        assert_eq!(app_removed.load(Ordering::SeqCst), 1);
        let (app2, app2n) = s("/app/kept/**");
        assert_eq!(
            wsb_server_handle_app(
                server,
                app2,
                app2n,
                Some(accept_app),
                ud(app_kept),
                Some(count_drop)
            ),
            OK
        );
    }
    assert_eq!(publish(server, "/topic/d", b"x"), OK);
    free(server);
    for (name, c) in [
        ("wake_first", wake_first),
        ("wake_second", wake_second),
        ("event_cb", event_cb),
        ("sub_removed", sub_removed),
        ("sub_kept", sub_kept),
        ("sub_null_cb", sub_null_cb),
        ("app_replaced", app_replaced),
        ("app_removed", app_removed),
        ("app_kept", app_kept),
    ] {
        assert_eq!(c.load(Ordering::SeqCst), 1, "{name} dropped exactly once");
    }
    assert_eq!(sub_failed.load(Ordering::SeqCst), 0);
}

#[test]
fn wake_callback_fires_when_the_queue_becomes_non_empty() {
    let config = config();
    let wakes = counter();
    // SAFETY: a live config, a valid callback.
    unsafe {
        assert_eq!(
            wsb_config_set_wake_callback(config, Some(count_wake), ud(wakes), None),
            OK
        );
    }
    let server = new_server(config);
    start(server);
    let (t, tn) = s("/topic/w");
    let mut id = 0;
    // SAFETY: a live server.
    let rc = unsafe { wsb_server_subscribe(server, t, tn, None, ptr::null_mut(), None, &mut id) };
    assert_eq!(rc, OK);
    assert_eq!(publish(server, "/topic/w", b"1"), OK);
    assert_eq!(publish(server, "/topic/w", b"2"), OK);
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    let mut events = blank_events::<8>();
    let mut n = 0;
    // SAFETY: a live server, 8 slots.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_poll(server, events.as_mut_ptr(), 8, &mut n) },
        OK
    );
    assert_eq!(n, 2);
    assert_eq!(publish(server, "/topic/w", b"3"), OK);
    assert_eq!(wakes.load(Ordering::SeqCst), 2);
    free(server);
}

#[test]
fn overflow_is_reported_first() {
    let config = config();
    // SAFETY: a live config.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_config_set_event_queue(config, 2, WSB_OVERFLOW_DROP_NEWEST) },
        OK
    );
    let server = new_server(config);
    start(server);
    let (t, tn) = s("/topic/o");
    let mut id = 0;
    // SAFETY: a live server.
    let rc = unsafe { wsb_server_subscribe(server, t, tn, None, ptr::null_mut(), None, &mut id) };
    assert_eq!(rc, OK);
    for i in 0..5 {
        assert_eq!(publish(server, "/topic/o", &[i]), OK);
    }
    let mut events = blank_events::<8>();
    let mut n = 0;
    // SAFETY: a live server, 8 slots.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_poll(server, events.as_mut_ptr(), 8, &mut n) },
        OK
    );
    assert_eq!(n, 3);
    // SAFETY: filled by this thread's poll.
    let evs: Vec<Ev> = events[..n].iter().map(|e| unsafe { Ev::copy(e) }).collect();
    assert_eq!(evs[0].kind, WSB_EVENT_OVERFLOW);
    assert_eq!(evs[0].dropped, 3);
    assert!(evs[0].destination.is_none() && evs[0].body.is_none());
    assert_eq!(evs[1].body.as_deref(), Some(&[0u8][..]));
    assert_eq!(evs[2].body.as_deref(), Some(&[1u8][..]));
    free(server);
}

#[test]
fn full_queue_destination_is_backpressure() {
    let config = config();
    // SAFETY: a live config.
    assert_eq!(unsafe { wsb_config_set_max_queue_depth(config, 2) }, OK);
    let server = new_server(config);
    start(server);
    assert_eq!(publish(server, "/queue/jobs", b"1"), OK);
    assert_eq!(publish(server, "/queue/jobs", b"2"), OK);
    assert_eq!(
        publish(server, "/queue/jobs", b"3"),
        wsb_result::WSB_ERR_BACKPRESSURE
    );
    assert!(server_last_error(server).contains("backpressure"));
    free(server);
}

#[test]
fn deferred_connect_is_accepted_or_rejected_through_poll_events() {
    let config = config();
    // SAFETY: a live config.
    assert_eq!(unsafe { wsb_config_set_defer(config, true, true) }, OK);
    let server = new_server(config);
    start(server);
    let port = tcp_port(server);

    // Accepted, as a user chosen by the host.
    let mut alice = Client::open(port);
    alice.connect_frame("alice");
    let connect = poll_for(server, WSB_EVENT_CONNECT);
    assert_eq!(connect.transport, WSB_TRANSPORT_TCP);
    assert_eq!(connect.login.as_deref(), Some("alice"));
    assert_eq!(connect.passcode.as_deref(), Some("secret"));
    assert_eq!(connect.header("accept-version"), Some("1.2"));
    let remote: SocketAddr = connect.remote_addr.as_deref().unwrap().parse().unwrap();
    assert_eq!(remote, alice.stream.local_addr().unwrap());
    assert!(connect.user.is_none() && connect.body.is_none());
    let (u, un) = s("alice-user");
    // SAFETY: a live server, a valid string.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_accept(server, connect.session, u, un) },
        OK
    );
    assert_eq!(alice.read().command, "CONNECTED");
    // SAFETY: a live server.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_accept(server, connect.session, ptr::null(), 0) },
        wsb_result::WSB_ERR_NOT_FOUND,
        "answered already"
    );

    // Deferred subscribe, answered through the same queue.
    alice.send(
        "SUBSCRIBE",
        &[("destination", "/topic/x"), ("id", "1"), ("receipt", "r1")],
        b"",
    );
    let subscribe = poll_for(server, WSB_EVENT_SUBSCRIBE);
    assert_eq!(subscribe.session, connect.session);
    assert_eq!(subscribe.user.as_deref(), Some("alice-user"));
    assert_eq!(subscribe.destination.as_deref(), Some("/topic/x"));
    assert_eq!(subscribe.header("id"), Some("1"));
    // SAFETY: a live server.
    let rc =
        unsafe { wsb_server_answer_subscribe(server, subscribe.session, true, ptr::null(), 0) };
    assert_eq!(rc, OK);
    assert_eq!(alice.read().command, "RECEIPT");
    assert_eq!(publish(server, "/topic/x", b"hi"), OK);
    let message = alice.read();
    assert_eq!(message.command, "MESSAGE");
    assert_eq!(message.body, b"hi");

    // Rejected with the host's message.
    let mut mallory = Client::open(port);
    mallory.connect_frame("mallory");
    let connect2 = poll_for(server, WSB_EVENT_CONNECT);
    assert_eq!(connect2.login.as_deref(), Some("mallory"));
    assert!(connect2.session > connect.session, "ids are never reused");
    let (m, mn) = s("go away");
    // SAFETY: a live server, a valid string.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_reject(server, connect2.session, m, mn) },
        OK
    );
    let error = mallory.read();
    assert_eq!(error.command, "ERROR", "{error:?}");
    assert_eq!(error.header("message"), Some("go away"));

    // Leaving is told with the user.
    alice.send("DISCONNECT", &[("receipt", "bye")], b"");
    assert_eq!(alice.read().command, "RECEIPT");
    drop(alice);
    let deadline = Instant::now() + WAIT;
    let left = loop {
        let ev = poll_for(server, WSB_EVENT_DISCONNECT);
        if ev.session == connect.session || Instant::now() > deadline {
            break ev;
        }
    };
    assert_eq!(left.session, connect.session);
    assert_eq!(left.user.as_deref(), Some("alice-user"));
    assert_eq!(left.transport, WSB_TRANSPORT_TCP);
    free(server);
}

#[test]
fn app_messages_as_poll_events_and_replies_to_the_session() {
    let server = new_server(config());
    start(server);
    let (app, appn) = s("/app/**");
    // SAFETY: a live server, a valid pattern.
    let rc = unsafe { wsb_server_handle_app(server, app, appn, None, ptr::null_mut(), None) };
    assert_eq!(rc, OK);
    let mut client = Client::connected(tcp_port(server), "bob");
    client.subscribe("/user/queue/reply", "r");
    client.send(
        "SEND",
        &[("destination", "/app/ask"), ("x-q", "1")],
        b"question",
    );
    let ev = poll_for(server, WSB_EVENT_APP_MESSAGE);
    assert_eq!(ev.destination.as_deref(), Some("/app/ask"));
    assert_eq!(ev.user.as_deref(), Some("bob"));
    assert_eq!(ev.header("x-q"), Some("1"));
    assert_eq!(ev.body.as_deref(), Some(&b"question"[..]));
    let (d, dn) = s("/user/queue/reply");
    let body = b"answer";
    // SAFETY: a live server, valid strings and body.
    let rc = unsafe {
        wsb_server_send_to_session(
            server,
            ev.session,
            d,
            dn,
            ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
        )
    };
    assert_eq!(rc, OK, "{}", last_error());
    let reply = client.read();
    assert_eq!(reply.command, "MESSAGE");
    assert_eq!(reply.body, b"answer");

    // send_to_user reaches the same subscription.
    let (u, un) = s("bob");
    let (q, qn) = s("/queue/reply");
    // SAFETY: as above.
    let rc = unsafe {
        wsb_server_send_to_user(
            server,
            u,
            un,
            q,
            qn,
            ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
        )
    };
    assert_eq!(rc, OK, "{}", last_error());
    assert_eq!(client.read().body, b"answer");

    // And the host can close the session.
    let (r, rn) = s("bye bob");
    // SAFETY: a live server, a valid string.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_server_disconnect(server, ev.session, r, rn) },
        OK
    );
    let error = client.read();
    assert_eq!(error.command, "ERROR");
    assert_eq!(error.header("message"), Some("bye bob"));
    free(server);
}

/// Callback mode: CONNECT events arrive on a runtime thread and are accepted from inside the
/// callback; stop/free there are refused.
#[derive(Default)]
struct Decider {
    reentry: Reentry,
    events: Mutex<Vec<Ev>>,
}

unsafe extern "C" fn decide(user_data: *mut c_void, event: *const wsb_event) {
    // SAFETY: a live Decider and event.
    let (decider, ev) = unsafe { (&*(user_data as *const Decider), Ev::copy(&*event)) };
    if ev.kind == WSB_EVENT_CONNECT {
        record(&decider.reentry);
        let server = decider.reentry.server.load(Ordering::SeqCst);
        let (u, un) = s("cb-user");
        // SAFETY: the server outlives its callbacks.
        let rc = unsafe { wsb_server_accept(server, ev.session, u, un) };
        decider.reentry.accept.store(rc as i32, Ordering::SeqCst);
    }
    decider.events.lock().unwrap().push(ev);
}

#[test]
fn callback_mode_decides_inside_the_callback() {
    let decider = Box::leak(Box::new(Decider::default()));
    let dropped = counter();
    let config = config();
    // SAFETY: a live config; `decider` lives forever.
    unsafe {
        assert_eq!(
            wsb_config_set_delivery_mode(config, WSB_DELIVERY_CALLBACK),
            OK
        );
        assert_eq!(wsb_config_set_defer(config, true, false), OK);
        assert_eq!(
            wsb_config_set_event_callback(
                config,
                Some(decide),
                decider as *mut Decider as *mut c_void,
                None
            ),
            OK
        );
        // Unused in callback mode: dropped by wsb_server_new.
        assert_eq!(
            wsb_config_set_wake_callback(config, Some(count_wake), ud(dropped), Some(count_drop)),
            OK
        );
    }
    let server = new_server(config);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    decider.reentry.server.store(server, Ordering::SeqCst);
    start(server);
    let mut client = Client::open(tcp_port(server));
    client.connect_frame("carol");
    let frame = client.read();
    assert_eq!(frame.command, "CONNECTED", "{frame:?}");
    let r = &decider.reentry;
    let called_from_callback = wsb_result::WSB_ERR_CALLED_FROM_CALLBACK as i32;
    assert_eq!(r.accept.load(Ordering::SeqCst), OK as i32);
    assert_eq!(r.stop.load(Ordering::SeqCst), called_from_callback);
    assert_eq!(r.free.load(Ordering::SeqCst), called_from_callback);
    assert_eq!(r.publish.load(Ordering::SeqCst), OK as i32);
    assert_eq!(
        r.thread_name.lock().unwrap().as_deref(),
        Some("wsbroker-callback")
    );
    // Host subscriptions without a callback deliver through the event callback too.
    let (t, tn) = s("/topic/cb");
    let mut id = 0;
    // SAFETY: a live server.
    let rc = unsafe { wsb_server_subscribe(server, t, tn, None, ptr::null_mut(), None, &mut id) };
    assert_eq!(rc, OK);
    assert_eq!(publish(server, "/topic/cb", b"direct"), OK);
    // The event callback runs on a callback thread, after the publish returned.
    let deadline = Instant::now() + WAIT;
    let (events, message) = loop {
        let events = decider.events.lock().unwrap().clone();
        if let Some(message) = events.iter().find(|e| e.kind == WSB_EVENT_MESSAGE).cloned() {
            break (events, message);
        }
        assert!(
            Instant::now() < deadline,
            "no MESSAGE event within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(message.subscription, id);
    assert_eq!(message.body.as_deref(), Some(&b"direct"[..]));
    let connect = &events[0];
    assert_eq!(connect.kind, WSB_EVENT_CONNECT);
    assert_eq!(connect.login.as_deref(), Some("carol"));
    drop(client);
    free(server);
}

static LOG_RECORDS: AtomicUsize = AtomicUsize::new(0);
static LOG_SAW_LISTENING: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn count_log(
    user_data: *mut c_void,
    level: i32,
    target: *const c_char,
    message: *const c_char,
) {
    assert!(user_data.is_null());
    assert!((WSB_LOG_ERROR..=WSB_LOG_INFO).contains(&level));
    // SAFETY: NUL-terminated strings valid during the call.
    let (target, message) = unsafe {
        (
            CStr::from_ptr(target).to_string_lossy().into_owned(),
            CStr::from_ptr(message).to_string_lossy().into_owned(),
        )
    };
    LOG_RECORDS.fetch_add(1, Ordering::SeqCst);
    if target.starts_with("wsbroker") && message.contains("listening") {
        LOG_SAW_LISTENING.fetch_add(1, Ordering::SeqCst);
    }
    // Not allowed from the log callback.
    // SAFETY: NULL callback.
    let rc = unsafe { wsb_set_log_callback(None, ptr::null_mut(), 0) };
    assert_eq!(rc, wsb_result::WSB_ERR_CALLED_FROM_CALLBACK);
}

#[test]
fn log_callback_receives_records_up_to_its_level() {
    // SAFETY: a valid callback.
    let rc = unsafe { wsb_set_log_callback(Some(count_log), ptr::null_mut(), WSB_LOG_INFO) };
    assert_eq!(rc, OK);
    let server = new_server(config());
    start(server);
    free(server);
    assert!(LOG_SAW_LISTENING.load(Ordering::SeqCst) >= 1);
    // SAFETY: turning it off.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_set_log_callback(None, ptr::null_mut(), 0) },
        OK
    );
    let before = LOG_RECORDS.load(Ordering::SeqCst);
    let server = new_server(config());
    start(server);
    free(server);
    assert_eq!(LOG_RECORDS.load(Ordering::SeqCst), before, "off means off");
}

#[cfg(feature = "ffi-test-panic")]
#[test]
fn panics_are_caught_at_the_boundary() {
    assert_eq!(wsb_debug_panic(), wsb_result::WSB_ERR_PANIC);
    assert!(
        last_error().contains("deliberate panic"),
        "{}",
        last_error()
    );
    // The library stays usable.
    let server = new_server(config());
    start(server);
    free(server);
    assert_eq!(wsb_debug_panic(), wsb_result::WSB_ERR_PANIC);
}

#[test]
fn event_and_struct_layouts_match_the_spec() {
    let word = std::mem::size_of::<usize>();
    assert_eq!(std::mem::size_of::<wsb_header>(), 4 * word);
    assert_eq!(std::mem::size_of::<wsb_stats>(), 17 * 8);
    assert_eq!(std::mem::size_of::<wsb_event>(), 40 + 18 * word);
    assert_eq!(std::mem::size_of::<wsb_result>(), 4);
    assert_eq!(std::mem::offset_of!(wsb_event, body_len), 32 + 13 * word);
    assert_eq!(std::mem::offset_of!(wsb_event, binary), 32 + 14 * word);
    assert_eq!(
        std::mem::offset_of!(wsb_event, reason_len),
        40 + 17 * word,
        "reason_len is last"
    );
    assert_eq!(
        [
            WSB_EVENT_CONNECT,
            WSB_EVENT_SUBSCRIBE,
            WSB_EVENT_DISCONNECT,
            WSB_EVENT_APP_MESSAGE,
            WSB_EVENT_MESSAGE,
            WSB_EVENT_OVERFLOW,
            WSB_EVENT_MESSAGES_DROPPED,
            WSB_EVENT_RAW_OPEN,
            WSB_EVENT_RAW_MESSAGE,
            WSB_EVENT_RAW_CLOSE,
            WSB_EVENT_BROKER_AVAILABLE,
            WSB_EVENT_BROKER_UNAVAILABLE,
        ],
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    );
    assert_eq!([WSB_RAW_HOST, WSB_RAW_BROADCAST, WSB_RAW_ECHO], [0, 1, 2]);
    assert_eq!([WSB_DELIVERY_POLL, WSB_DELIVERY_CALLBACK], [0, 1]);
    assert_eq!([WSB_OVERFLOW_DROP_NEWEST, WSB_OVERFLOW_DROP_OLDEST], [0, 1]);
    assert_eq!(
        [
            WSB_TRANSPORT_NONE,
            WSB_TRANSPORT_WEBSOCKET,
            WSB_TRANSPORT_TCP
        ],
        [0, 1, 2]
    );
    assert_eq!(
        [
            WSB_LOG_ERROR,
            WSB_LOG_WARN,
            WSB_LOG_INFO,
            WSB_LOG_DEBUG,
            WSB_LOG_TRACE
        ],
        [1, 2, 3, 4, 5]
    );
}

#[test]
fn sockjs_setters_reach_the_server() {
    let first = config();
    let prefix = "/sj";
    // SAFETY: a live config; strings valid for their lengths.
    unsafe {
        assert_eq!(
            wsb_config_set_sockjs_path(first, prefix.as_ptr().cast(), prefix.len()),
            OK
        );
        assert_eq!(wsb_config_set_sockjs_limits(first, 1000, 2000, 4096), OK);
        assert_eq!(wsb_config_set_sockjs_options(first, false, true), OK);
        let dir = env!("CARGO_MANIFEST_DIR");
        assert_eq!(
            wsb_config_set_static_dir(first, dir.as_ptr().cast(), dir.len()),
            OK
        );
        assert_eq!(
            wsb_config_set_static_dir(first, [0xffu8].as_ptr().cast(), 1),
            wsb_result::WSB_ERR_INVALID_UTF8
        );
    }
    let server = new_server(first);
    start(server);
    let mut port = 0u16;
    // SAFETY: a live server.
    assert_eq!(unsafe { wsb_server_local_port(server, &mut port) }, OK);
    let get = |port: u16, path: &str| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let info = get(port, "/sj/info");
    assert!(
        info.contains(r#""websocket":false,"cookie_needed":true"#),
        "{info}"
    );
    assert!(
        get(port, "/Cargo.toml").contains("name = \"wsbroker\""),
        "static dir served"
    );
    free(server);

    // An empty path turns SockJS off.
    let second = config();
    // SAFETY: a live config; NULL path.
    assert_eq!(
        // SAFETY: the pointers are live test values, valid for the lengths passed.
        unsafe { wsb_config_set_sockjs_path(second, ptr::null(), 0) },
        OK
    );
    let server = new_server(second);
    start(server);
    // SAFETY: a live server.
    assert_eq!(unsafe { wsb_server_local_port(server, &mut port) }, OK);
    assert!(get(port, "/sockjs/info").starts_with("HTTP/1.1 404"));
    free(server);
}
