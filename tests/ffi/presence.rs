//! Presence through the C ABI: `wsb_config_add_presence`, `wsb_config_set_presence_limits`
//! and the members `wsb_server_presence` reads while real STOMP clients subscribe.

use std::ptr;

use wsbroker::ffi::*;

use crate::contract::{Client, config, free, last_error, new_server, s, start, tcp_port, text};

const OK: wsb_result = wsb_result::WSB_OK;

/// The members of `destination`: (session, user, info).
fn members(
    server: *mut wsb_server,
    destination: &str,
) -> Vec<(u64, Option<String>, Option<String>)> {
    let (d, dn) = s(destination);
    let mut page = ptr::null_mut();
    // SAFETY: a live server, valid arguments; the page is read before it is freed.
    unsafe {
        let rc = wsb_server_presence(server, d, dn, &mut page);
        assert_eq!(rc, OK, "wsb_server_presence: {}", last_error());
        let mut out = Vec::new();
        for index in 0..wsb_presence_count(page) {
            let (mut session, mut user, mut user_len, mut info, mut info_len) =
                (0u64, ptr::null(), 0usize, ptr::null(), 0usize);
            let rc = wsb_presence_member(
                page,
                index,
                &mut session,
                &mut user,
                &mut user_len,
                &mut info,
                &mut info_len,
            );
            assert_eq!(rc, OK);
            out.push((session, text(user, user_len), text(info, info_len)));
        }
        let past = wsb_presence_count(page);
        let null = ptr::null_mut();
        assert_eq!(
            wsb_presence_member(
                page,
                past,
                null,
                null.cast(),
                null.cast(),
                null.cast(),
                null.cast()
            ),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        wsb_presence_free(page);
        out
    }
}

#[test]
fn members_are_listed_as_clients_subscribe_and_leave() {
    let config = config();
    let (p, n) = s("/topic/room/*");
    // SAFETY: a live config, valid strings.
    unsafe {
        assert_eq!(wsb_config_add_presence(config, p, n), OK);
        let (bad, bad_len) = s("room");
        assert_eq!(
            wsb_config_add_presence(config, bad, bad_len),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        assert_eq!(wsb_config_set_presence_limits(config, 10, 8), OK);
    }
    let server = new_server(config);
    start(server);
    let port = tcp_port(server);
    assert!(members(server, "/topic/room/a").is_empty());

    let mut ann = Client::connected(port, "ann");
    ann.send(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/room/a"),
            ("id", "1"),
            ("x-presence-info", "ann-info"),
            ("receipt", "r"),
        ],
        b"",
    );
    let receipt = ann.read();
    assert_eq!(receipt.header("x-presence-count"), Some("1"), "{receipt:?}");
    let listed = members(server, "/topic/room/a");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.as_deref(), Some("ann"), "the login is the user");
    assert_eq!(listed[0].2.as_deref(), Some("ann-info"));

    // Longer info than the limit (8 bytes): an ERROR, and no member.
    let mut bob = Client::connected(port, "bob");
    bob.send(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/room/a"),
            ("id", "1"),
            ("x-presence-info", "123456789"),
        ],
        b"",
    );
    assert_eq!(bob.read().command, "ERROR");
    ann.send("UNSUBSCRIBE", &[("id", "1"), ("receipt", "u")], b"");
    assert_eq!(ann.read().command, "RECEIPT");
    assert!(members(server, "/topic/room/a").is_empty());

    let (d, dn) = s("/topic/room/*");
    let mut page = ptr::null_mut();
    // SAFETY: a live server, valid arguments.
    unsafe {
        assert_eq!(
            wsb_server_presence(server, d, dn, &mut page),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        assert!(page.is_null());
        assert_eq!(wsb_presence_count(ptr::null()), 0);
        wsb_presence_free(ptr::null_mut());
    }
    free(server);
}
