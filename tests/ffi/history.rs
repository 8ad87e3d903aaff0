//! Message history through the C ABI: `wsb_config_add_history`, the offsets
//! `wsb_server_publish_recorded` returns, and pages read with `wsb_server_history`.

use std::ptr;

use wsbroker::ffi::*;

use crate::contract::{config, free, last_error, new_server, s, start, text};

const OK: wsb_result = wsb_result::WSB_OK;

fn add_history(config: *mut wsb_config, pattern: &str, size: usize, ttl_ms: u64) -> wsb_result {
    let (p, n) = s(pattern);
    // SAFETY: a live config, a valid string.
    unsafe { wsb_config_add_history(config, p, n, size, ttl_ms, false) }
}

/// Publishes `body` and returns (offset, delivered).
fn publish_recorded(server: *mut wsb_server, destination: &str, body: &str) -> (u64, usize) {
    let (d, dn) = s(destination);
    let (mut offset, mut delivered) = (u64::MAX, usize::MAX);
    // SAFETY: a live server, valid strings and out-pointers; no headers.
    let rc = unsafe {
        wsb_server_publish_recorded(
            server,
            d,
            dn,
            ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            0,
            &mut offset,
            &mut delivered,
        )
    };
    assert_eq!(rc, OK, "publish_recorded: {}", last_error());
    (offset, delivered)
}

/// The history page of `destination`: (epoch, last offset, complete, [(offset, body, x-offset)]).
fn read(
    server: *mut wsb_server,
    destination: &str,
    since: u64,
    limit: usize,
) -> (String, u64, bool, Vec<(u64, String, String)>) {
    let (d, dn) = s(destination);
    let mut page = ptr::null_mut();
    // SAFETY: a live server, a valid string and out-pointer.
    let rc = unsafe { wsb_server_history(server, d, dn, since, limit, &mut page) };
    assert_eq!(rc, OK, "wsb_server_history: {}", last_error());
    let (mut epoch, mut epoch_len, mut last, mut complete) = (ptr::null(), 0, 0, false);
    let mut messages = Vec::new();
    // SAFETY: a live page; the pointers it hands out are read before it is freed.
    unsafe {
        assert_eq!(
            wsb_history_position(page, &mut epoch, &mut epoch_len, &mut last, &mut complete),
            OK
        );
        let epoch = text(epoch, epoch_len).expect("an epoch");
        for index in 0..wsb_history_len(page) {
            let (mut offset, mut event) = (0u64, ptr::null());
            assert_eq!(
                wsb_history_message(page, index, &mut offset, &mut event),
                OK
            );
            let event = &*event;
            assert_eq!(event.kind, WSB_EVENT_MESSAGE);
            let body = std::slice::from_raw_parts(event.body, event.body_len);
            let headers = std::slice::from_raw_parts(event.headers, event.header_count);
            let x_offset = headers
                .iter()
                .find(|h| text(h.name, h.name_len).as_deref() == Some("x-offset"))
                .and_then(|h| text(h.value, h.value_len))
                .expect("x-offset header");
            messages.push((offset, String::from_utf8(body.to_vec()).unwrap(), x_offset));
        }
        let (mut o, mut e) = (0u64, ptr::null());
        let past = wsb_history_len(page);
        assert_eq!(
            wsb_history_message(page, past, &mut o, &mut e),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        wsb_history_free(page);
        (epoch, last, complete, messages)
    }
}

#[test]
fn publish_returns_offsets_and_history_reads_them_back() {
    let config = config();
    assert_eq!(add_history(config, "/topic/h/**", 3, 0), OK);
    let server = new_server(config);
    start(server);
    let offsets: Vec<u64> = (1..=5)
        .map(|i| publish_recorded(server, "/topic/h/a", &format!("m{i}")).0)
        .collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5], "gap-free offsets");
    // Not covered by a rule: offset 0; a queue: 0 too.
    assert_eq!(publish_recorded(server, "/topic/other", "x").0, 0);
    assert_eq!(publish_recorded(server, "/queue/h/a", "x").0, 0);

    let (epoch, last, complete, messages) = read(server, "/topic/h/a", 0, 10);
    assert!(!epoch.is_empty());
    assert_eq!(last, 5);
    assert!(!complete, "offsets 1 and 2 are no longer retained");
    let expected: Vec<(u64, String, String)> = (3..=5)
        .map(|i| (i, format!("m{i}"), i.to_string()))
        .collect();
    assert_eq!(messages, expected, "the last 3 retained, oldest first");
    // After offset 1, offset 2 is missing; after offset 2 the page holds everything.
    assert!(!read(server, "/topic/h/a", 1, 10).2);
    let (_, _, complete, messages) = read(server, "/topic/h/a", 2, 10);
    assert!(complete);
    assert_eq!(messages.len(), 3);
    // A limit, and a read after the last offset.
    assert_eq!(
        read(server, "/topic/h/a", 3, 1).3,
        [(4, "m4".into(), "4".into())]
    );
    let (same_epoch, _, complete, messages) = read(server, "/topic/h/a", 5, 10);
    assert_eq!((same_epoch, complete, messages.len()), (epoch, true, 0));

    let (d, dn) = s("/topic/other");
    let mut page = ptr::null_mut();
    // SAFETY: a live server, valid arguments.
    unsafe {
        assert_eq!(
            wsb_server_history(server, d, dn, 0, 10, &mut page),
            wsb_result::WSB_ERR_NOT_FOUND
        );
        assert!(last_error().contains("/topic/other"), "{}", last_error());
        assert!(page.is_null(), "not written on failure");
        assert_eq!(
            wsb_server_history(server, d, dn, 0, 10, ptr::null_mut()),
            wsb_result::WSB_ERR_NULL_ARGUMENT
        );
        assert_eq!(wsb_history_len(ptr::null()), 0);
        wsb_history_free(ptr::null_mut());
        assert_eq!(
            wsb_history_position(
                ptr::null(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut()
            ),
            wsb_result::WSB_ERR_NULL_ARGUMENT
        );
    }
    free(server);
}

#[test]
fn bad_history_rules_are_refused_when_added() {
    let config = config();
    assert_eq!(
        add_history(config, "/topic/x", 0, 0),
        wsb_result::WSB_ERR_INVALID_ARGUMENT
    );
    assert!(last_error().contains("at least 1"), "{}", last_error());
    assert_eq!(
        add_history(config, "topic/x", 10, 0),
        wsb_result::WSB_ERR_INVALID_ARGUMENT
    );
    assert!(
        last_error().contains("must start with '/'"),
        "{}",
        last_error()
    );
    // Larger than one replay may queue: refused when the server is made, naming the field.
    assert_eq!(add_history(config, "/topic/x", 1 << 30, 1000), OK);
    let mut server = ptr::null_mut();
    // SAFETY: a live config, a valid out-pointer.
    unsafe {
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        assert!(last_error().contains("history size"), "{}", last_error());
        assert_eq!(wsb_config_set_history_max_destinations(config, 10), OK);
        wsb_config_free(config);
    }
}
