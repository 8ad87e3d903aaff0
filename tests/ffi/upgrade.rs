//! The C ABI of the upgrade (handshake-level auth) hook, through the exported functions:
//! argument checks, what the accessors return for a real upgrade request over a socket, the
//! decisions (accept, 401/403, invalid status, none), and drop-once of `user_data`.
//!
//! Every wait is bounded (`WAIT`); servers listen on 127.0.0.1 port 0.

use std::ffi::{CStr, c_char, c_void};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wsbroker::ffi::*;

const WAIT: Duration = Duration::from_secs(5);
const OK: wsb_result = wsb_result::WSB_OK;
const NULL_ARG: wsb_result = wsb_result::WSB_ERR_NULL_ARGUMENT;
const NOT_FOUND: wsb_result = wsb_result::WSB_ERR_NOT_FOUND;

fn server() -> *mut wsb_server {
    let mut config = ptr::null_mut();
    let mut server = ptr::null_mut();
    let addr = "127.0.0.1:0";
    // SAFETY: valid out pointers, a live config, a valid string.
    unsafe {
        assert_eq!(wsb_config_new(&mut config), OK);
        assert_eq!(
            wsb_config_set_listen(config, addr.as_ptr().cast(), addr.len()),
            OK
        );
        assert_eq!(wsb_config_set_worker_threads(config, 2), OK);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        wsb_config_free(config);
    }
    server
}

fn port(server: *mut wsb_server) -> u16 {
    let mut port = 0;
    // SAFETY: a live, started server; a valid out pointer.
    assert_eq!(unsafe { wsb_server_local_port(server, &mut port) }, OK);
    port
}

/// Sends an upgrade request for `target` with extra header lines; returns the status code.
fn upgrade_status(port: u16, target: &str, extra: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && s.read(&mut byte).unwrap() == 1 {
        head.push(byte[0]);
    }
    let line = String::from_utf8(head).unwrap();
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

/// What the callback saw, per request.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    path: String,
    query: Option<String>,
    token: Option<String>,
    header: Option<String>,
    cookie: Option<String>,
    remote: Option<String>,
    bad_status: Option<wsb_result>,
}

struct Hook {
    seen: Mutex<Vec<Seen>>,
    drops: AtomicUsize,
}

/// Reads one string accessor: `None` for NOT_FOUND; checks the NUL terminator.
fn got(rc: wsb_result, ptr: *const c_char, len: usize) -> Option<String> {
    if rc == NOT_FOUND {
        return None;
    }
    assert_eq!(rc, OK);
    // SAFETY: the accessor wrote a NUL-terminated string of `len` bytes, valid during the call.
    let text = unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_string();
    assert_eq!(text.len(), len);
    Some(text)
}

unsafe extern "C" fn on_upgrade(
    user_data: *mut c_void,
    req: *const wsb_upgrade_request,
    decision: *mut wsb_upgrade_decision,
) {
    // SAFETY: the `Hook` registered with this callback, alive until its drop.
    let hook = unsafe { &*(user_data as *const Hook) };
    let (mut p, mut n) = (ptr::null(), 0usize);
    let mut seen = Seen::default();
    // SAFETY (all calls): the request and decision of this call; valid names and out pointers.
    // SAFETY: the pointers are live test values, valid for the lengths passed.
    unsafe {
        seen.path = got(wsb_upgrade_request_path(req, &mut p, &mut n), p, n).unwrap();
        seen.query = got(wsb_upgrade_request_query(req, &mut p, &mut n), p, n);
        let rc = wsb_upgrade_request_query_param(req, c"token".as_ptr(), 5, &mut p, &mut n);
        seen.token = got(rc, p, n);
        let rc = wsb_upgrade_request_header(req, c"X-TEST".as_ptr(), 6, &mut p, &mut n);
        seen.header = got(rc, p, n);
        let rc = wsb_upgrade_request_cookie(req, c"sid".as_ptr(), 3, &mut p, &mut n);
        seen.cookie = got(rc, p, n);
        seen.remote = got(wsb_upgrade_request_remote_addr(req, &mut p, &mut n), p, n);
        match seen.token.as_deref() {
            Some("good") => assert_eq!(wsb_upgrade_accept(decision, c"carol".as_ptr(), 5), OK),
            Some("anonymous") => assert_eq!(wsb_upgrade_accept(decision, ptr::null(), 0), OK),
            Some("bad") => assert_eq!(wsb_upgrade_reject(decision, 401, c"no".as_ptr(), 2), OK),
            Some("redirect") => {
                seen.bad_status = Some(wsb_upgrade_reject(decision, 302, ptr::null(), 0));
            }
            _ => {} // no decision: refused with 403
        }
    }
    hook.seen.lock().unwrap().push(seen);
}

unsafe extern "C" fn drop_hook(user_data: *mut c_void) {
    // SAFETY: the leaked `Hook` of the test.
    let hook = unsafe { &*(user_data as *const Hook) };
    hook.drops.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn null_arguments_are_rejected() {
    let (mut p, mut n) = (ptr::null(), 0usize);
    // SAFETY: every pointer is NULL or valid; NULL ones must be reported, not dereferenced.
    unsafe {
        assert_eq!(
            wsb_server_set_upgrade_callback(
                ptr::null_mut(),
                Some(on_upgrade),
                ptr::null_mut(),
                None
            ),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_request_path(ptr::null(), &mut p, &mut n),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_request_query(ptr::null(), &mut p, &mut n),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_request_header(ptr::null(), c"a".as_ptr(), 1, &mut p, &mut n),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_request_cookie(ptr::null(), c"a".as_ptr(), 1, &mut p, &mut n),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_request_query_param(ptr::null(), c"a".as_ptr(), 1, &mut p, &mut n),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_request_remote_addr(ptr::null(), &mut p, &mut n),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_accept(ptr::null_mut(), ptr::null(), 0),
            NULL_ARG
        );
        assert_eq!(
            wsb_upgrade_reject(ptr::null_mut(), 403, ptr::null(), 0),
            NULL_ARG
        );
    }
}

#[test]
fn the_callback_sees_the_request_and_decides() {
    let hook: &'static Hook = Box::leak(Box::new(Hook {
        seen: Mutex::new(Vec::new()),
        drops: AtomicUsize::new(0),
    }));
    let user_data = hook as *const Hook as *mut c_void;
    let server = server();
    // SAFETY: a live server, valid callbacks and user data that outlives them.
    unsafe {
        let rc =
            wsb_server_set_upgrade_callback(server, Some(on_upgrade), user_data, Some(drop_hook));
        assert_eq!(rc, OK);
        assert_eq!(wsb_server_start(server), OK);
    }
    let port = port(server);
    let extra = "X-Test: yes\r\nCookie: theme=dark; sid=\"s-42\"\r\n";
    assert_eq!(upgrade_status(port, "/ws?token=good&x=%20y", extra), 101);
    assert_eq!(upgrade_status(port, "/ws?token=anonymous", ""), 101);
    assert_eq!(upgrade_status(port, "/ws?token=bad", ""), 401);
    assert_eq!(upgrade_status(port, "/ws?token=redirect", ""), 403);
    assert_eq!(upgrade_status(port, "/ws", ""), 403);

    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].path, "/ws");
    assert_eq!(seen[0].query.as_deref(), Some("token=good&x=%20y"));
    assert_eq!(seen[0].header.as_deref(), Some("yes"));
    assert_eq!(seen[0].cookie.as_deref(), Some("s-42"));
    assert!(seen[0].remote.as_deref().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(
        seen[3].bad_status,
        Some(wsb_result::WSB_ERR_INVALID_ARGUMENT),
        "a 3xx status is refused"
    );
    assert_eq!(
        (seen[4].query.as_ref(), seen[4].cookie.as_ref()),
        (None, None)
    );

    // Replacing the callback drops the old registration once; removing it accepts everyone.
    // SAFETY: a live server; valid callbacks and user data.
    unsafe {
        let rc =
            wsb_server_set_upgrade_callback(server, Some(on_upgrade), user_data, Some(drop_hook));
        assert_eq!(rc, OK);
        assert_eq!(hook.drops.load(Ordering::SeqCst), 1);
        let rc = wsb_server_set_upgrade_callback(server, None, user_data, Some(drop_hook));
        assert_eq!(rc, OK);
        assert_eq!(
            hook.drops.load(Ordering::SeqCst),
            3,
            "the replaced one and the unused one"
        );
    }
    assert_eq!(upgrade_status(port, "/ws", ""), 101);
    assert_eq!(hook.seen.lock().unwrap().len(), 5, "no callback any more");
    // SAFETY: from wsb_server_new, freed once.
    assert_eq!(unsafe { wsb_server_free(server) }, OK);
    assert_eq!(hook.drops.load(Ordering::SeqCst), 3);
}

#[test]
fn free_drops_the_registered_callback() {
    let hook: &'static Hook = Box::leak(Box::new(Hook {
        seen: Mutex::new(Vec::new()),
        drops: AtomicUsize::new(0),
    }));
    let server = server();
    // SAFETY: a live server; valid callback and user data; then freed once.
    unsafe {
        let user_data = hook as *const Hook as *mut c_void;
        let rc =
            wsb_server_set_upgrade_callback(server, Some(on_upgrade), user_data, Some(drop_hook));
        assert_eq!(rc, OK);
        assert_eq!(hook.drops.load(Ordering::SeqCst), 0);
        assert_eq!(wsb_server_free(server), OK);
    }
    assert_eq!(hook.drops.load(Ordering::SeqCst), 1);
}
