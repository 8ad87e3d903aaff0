//! The C ABI's token-authentication settings: setters need a key first, bad values fail at
//! `wsb_server_new`, and a server configured through them checks CONNECT tokens (a real
//! STOMP client over TCP) and counts refusals in `wsb_stats`.

use std::ffi::c_char;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ptr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header, encode};
use wsbroker::ffi::*;

const OK: wsb_result = wsb_result::WSB_OK;
const INVALID: wsb_result = wsb_result::WSB_ERR_INVALID_ARGUMENT;
const SECRET: &[u8] = b"ffi-secret";

fn s(text: &str) -> (*const c_char, usize) {
    (text.as_ptr().cast(), text.len())
}

fn new_config() -> *mut wsb_config {
    let mut config = ptr::null_mut();
    // SAFETY: a valid out-pointer, then a live config and valid strings.
    unsafe {
        assert_eq!(wsb_config_new(&mut config), OK);
        let (addr, len) = s("127.0.0.1:0");
        assert_eq!(wsb_config_set_listen(config, addr, len), OK);
        assert_eq!(wsb_config_set_tcp_listen(config, addr, len), OK);
    }
    config
}

/// CONNECT with `token` over TCP; the first frame's command and `message`/`user-name` line.
fn connect(port: u16, token: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "CONNECT\naccept-version:1.2\nhost:h\ntoken:{token}\n\n\0"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.contains(&0) {
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a frame: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let command = text.lines().next().unwrap_or_default().to_string();
    let detail = text
        .lines()
        .find(|l| l.starts_with("user-name:") || l.starts_with("message:"))
        .unwrap_or_default()
        .to_string();
    (command, detail)
}

#[test]
fn jwt_setters_need_a_key_and_bad_values_fail_at_server_new() {
    let config = new_config();
    let (algs, algs_len) = s("HS256,HS512");
    // SAFETY: a live config and valid strings throughout.
    unsafe {
        assert_eq!(
            wsb_config_set_jwt_required(config, true),
            INVALID,
            "no key yet"
        );
        assert_eq!(
            wsb_config_set_jwt_algorithms(config, algs, algs_len),
            INVALID
        );
        assert_eq!(
            wsb_config_set_jwt_hmac_secret(config, SECRET.as_ptr(), SECRET.len()),
            OK
        );
        assert_eq!(wsb_config_set_jwt_algorithms(config, algs, algs_len), OK);
        let (bad, bad_len) = s("HS256,none");
        assert_eq!(wsb_config_set_jwt_algorithms(config, bad, bad_len), INVALID);
        assert_eq!(
            wsb_config_set_jwt_permissions(config, 7, ptr::null(), 0, ptr::null(), 0),
            INVALID
        );
        // An RSA algorithm for an HMAC secret: refused when the server is made.
        let (rs, rs_len) = s("RS256");
        assert_eq!(wsb_config_set_jwt_algorithms(config, rs, rs_len), OK);
        let mut server = ptr::null_mut();
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        // A NULL key turns authentication off again; the setters need a key once more.
        assert_eq!(wsb_config_set_jwt_hmac_secret(config, ptr::null(), 0), OK);
        assert_eq!(wsb_config_set_jwt_required(config, true), INVALID);
        let (pem, pem_len) = s("not a pem");
        assert_eq!(wsb_config_set_jwt_public_key_pem(config, pem, pem_len), OK);
        assert_eq!(
            wsb_server_new(config, &mut server),
            wsb_result::WSB_ERR_INVALID_CONFIG
        );
        wsb_config_free(config);
    }
}

#[test]
fn a_server_configured_through_c_checks_connect_tokens() {
    let config = new_config();
    let (iss, iss_len) = s("c-issuer");
    let (sub, sub_len) = s("/topic/a.*,/topic/b");
    let (dest, dest_len) = s("/auth/refresh");
    let mut server = ptr::null_mut();
    // SAFETY: a live config, valid strings and out pointers throughout.
    unsafe {
        assert_eq!(
            wsb_config_set_jwt_hmac_secret(config, SECRET.as_ptr(), SECRET.len()),
            OK
        );
        assert_eq!(
            wsb_config_set_jwt_claims(config, iss, iss_len, ptr::null(), 0, 0),
            OK
        );
        assert_eq!(wsb_config_set_jwt_required(config, true), OK);
        assert_eq!(
            wsb_config_set_jwt_permissions(config, WSB_JWT_ANONYMOUS, sub, sub_len, ptr::null(), 0),
            OK
        );
        assert_eq!(
            wsb_config_set_jwt_sources(config, ptr::null(), 0, ptr::null(), 0),
            OK
        );
        assert_eq!(wsb_config_set_jwt_refresh(config, dest, dest_len, 4096), OK);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        wsb_config_free(config);
        assert_eq!(wsb_server_start(server), OK);
    }
    let mut port = 0;
    // SAFETY: a live server, a valid out pointer.
    assert_eq!(unsafe { wsb_server_tcp_port(server, &mut port) }, OK);
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let token = |iss: &str| {
        encode(
            &Header::default(),
            &serde_json::json!({"sub": "c-user", "exp": exp, "iss": iss}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    };
    assert_eq!(
        connect(port, &token("c-issuer")),
        ("CONNECTED".into(), "user-name:c-user".into())
    );
    let (command, message) = connect(port, &token("someone-else"));
    assert_eq!(command, "ERROR");
    assert!(message.contains("wrong token issuer"), "{message}");
    let mut stats = wsb_stats::default();
    // SAFETY: a live server, a valid out pointer.
    assert_eq!(unsafe { wsb_server_stats(server, &mut stats) }, OK);
    assert_eq!(stats.auth_refused, 1);
    // SAFETY: from wsb_server_new, freed once.
    assert_eq!(unsafe { wsb_server_free(server) }, OK);
}
