//! The C ABI's relay-mode settings and events: setters need relay mode on, the configuration
//! is validated by `wsb_server_new`, and an unreachable broker becomes a BROKER_UNAVAILABLE
//! event with its reason in `body`. No external broker is needed.

use std::ffi::c_char;
use std::ptr;
use std::time::{Duration, Instant};

use wsbroker::ffi::*;

const OK: wsb_result = wsb_result::WSB_OK;

pub(crate) fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

pub(crate) fn new_config() -> *mut wsb_config {
    let mut config = ptr::null_mut();
    // SAFETY: a valid out-pointer.
    assert_eq!(unsafe { wsb_config_new(&mut config) }, OK);
    let (addr, len) = s("127.0.0.1:0");
    // SAFETY: a live config and a valid string.
    assert_eq!(unsafe { wsb_config_set_listen(config, addr, len) }, OK);
    config
}

#[test]
fn relay_setters_need_relay_mode_and_bad_values_fail_at_server_new() {
    let config = new_config();
    let (login, login_len) = s("user");
    // SAFETY: a live config and valid strings throughout.
    unsafe {
        assert_eq!(
            wsb_config_set_relay_credentials(config, login, login_len, login, login_len),
            wsb_result::WSB_ERR_INVALID_ARGUMENT,
            "relay mode is off"
        );
        let (broker, broker_len) = s("127.0.0.1:61613");
        assert_eq!(wsb_config_set_relay(config, broker, broker_len), OK);
        assert_eq!(
            wsb_config_set_relay_credentials(config, login, login_len, login, login_len),
            OK
        );
        assert_eq!(
            wsb_config_set_relay_system_credentials(config, login, login_len, login, login_len),
            OK
        );
        let (vhost, vhost_len) = s("/");
        assert_eq!(
            wsb_config_set_relay_virtual_host(config, vhost, vhost_len),
            OK
        );
        assert_eq!(
            wsb_config_set_relay_virtual_host(config, ptr::null(), 0),
            OK
        );
        assert_eq!(wsb_config_set_relay_heartbeat(config, 5000, 5000), OK);
        assert_eq!(wsb_config_set_relay_session_restore(config, true), OK);
        // No prefixes at all is an invalid configuration, named at wsb_server_new.
        assert_eq!(wsb_config_clear_relay_prefixes(config), OK);
        let mut server = ptr::null_mut();
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        let (prefix, prefix_len) = s("/topic");
        assert_eq!(wsb_config_add_relay_prefix(config, prefix, prefix_len), OK);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        assert_eq!(wsb_server_free(server), OK);
        let (bad, bad_len) = s("no-port");
        assert_eq!(wsb_config_set_relay(config, bad, bad_len), OK);
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        wsb_config_free(config);
    }
}

#[test]
fn an_unreachable_broker_is_a_broker_unavailable_event() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = unused.local_addr().unwrap().to_string();
    drop(unused);
    let config = new_config();
    let (broker, broker_len) = s(&address);
    let mut server = ptr::null_mut();
    // SAFETY: live config and server, valid strings and buffers throughout.
    unsafe {
        assert_eq!(wsb_config_set_relay(config, broker, broker_len), OK);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        wsb_config_free(config);
        assert_eq!(wsb_server_start(server), OK);
        let reason = event_body(server, WSB_EVENT_BROKER_UNAVAILABLE, Duration::from_secs(5));
        assert!(reason.contains(&address), "{reason}");
        assert_eq!(wsb_server_stop(server, 1000), OK);
        assert_eq!(wsb_server_free(server), OK);
    }
}

/// Polls `server` (bounded by `limit`) until an event of `kind` arrives; returns its body.
///
/// # Safety
/// `server` is a live, started server.
pub(crate) unsafe fn event_body(server: *mut wsb_server, kind: u32, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        assert!(
            Instant::now() < deadline,
            "no event of kind {kind} within {limit:?}"
        );
        let mut events: [std::mem::MaybeUninit<wsb_event>; 8] =
            [const { std::mem::MaybeUninit::uninit() }; 8];
        let mut n = 0usize;
        // SAFETY: a live server and a buffer of 8 events.
        let polled =
            unsafe { wsb_server_poll_timeout(server, events.as_mut_ptr().cast(), 8, 50, &mut n) };
        assert_eq!(polled, OK);
        for event in &events[..n] {
            // SAFETY: the first `n` events were written; their body lives until the next poll.
            unsafe {
                let event = event.assume_init_ref();
                if event.kind == kind {
                    let body = std::slice::from_raw_parts(event.body, event.body_len);
                    return String::from_utf8(body.to_vec()).unwrap();
                }
            }
        }
    }
}
