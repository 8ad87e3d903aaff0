//! Token authentication in the session: CONNECT tokens, permissions, refresh and expiry.

use std::time::{Duration, UNIX_EPOCH};

use super::common::*;
use crate::auth::{self, AuthConfig, AuthKey};
use crate::stomp::Command;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

const SECRET: &[u8] = b"session-test-secret";

fn token(claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn engine_auth(f: impl FnOnce(&mut AuthConfig)) -> std::sync::Arc<crate::engine::Engine> {
    engine_with(|c| {
        let mut a = AuthConfig::new(AuthKey::HmacSecret(SECRET.to_vec()));
        a.leeway = Duration::ZERO;
        f(&mut a);
        c.auth = Some(a);
    })
}

fn connected_with(engine: &std::sync::Arc<crate::engine::Engine>, token: &str) -> Client {
    let mut c = Client::new(engine);
    let connected = c.connect(&[("accept-version", "1.2"), ("host", "/"), ("token", token)]);
    assert_eq!(connected.command, Command::Connected);
    c
}

#[test]
fn a_connect_token_names_the_user_and_its_permissions_are_enforced() {
    let engine = engine_auth(|_| {});
    let exp = auth::unix_now() + 60;
    let t = token(
        json!({"sub": "alice", "exp": exp, "wsb": {"sub": ["/topic/ok.*"], "pub": ["/queue/in"]}}),
    );
    let mut c = connected_with(&engine, &t);
    assert_eq!(c.session.user(), Some("alice"));
    assert_eq!(
        c.session.token_deadline(),
        Some(UNIX_EPOCH + Duration::from_secs(exp))
    );
    c.subscribe("1", "/topic/ok.a", "auto");
    c.send("/queue/in", "x");
    c.feed(frame(
        Command::Subscribe,
        &[("id", "2"), ("destination", "/topic/secret")],
    ));
    let (error, _) = c.expect_error();
    let message = error.header("message").unwrap();
    assert!(
        message.contains("/topic/secret") && message.contains("alice"),
        "{message}"
    );
    assert_eq!(engine.counters().snapshot().auth_denied, 1);
}

#[test]
fn connect_refuses_bad_and_missing_tokens() {
    let engine = engine_auth(|a| a.required = true);
    let mut c = Client::new(&engine);
    c.feed(frame(
        Command::Connect,
        &[("accept-version", "1.2"), ("host", "/")],
    ));
    let (error, _) = c.expect_error();
    assert!(
        error
            .header("message")
            .unwrap()
            .contains("authentication required")
    );
    let expired = token(json!({"sub": "a", "exp": auth::unix_now() - 1}));
    let mut c = Client::new(&engine);
    c.feed(frame(
        Command::Connect,
        &[("accept-version", "1.2"), ("passcode", expired.as_str())],
    ));
    let (error, _) = c.expect_error();
    assert_eq!(
        error.header("message"),
        Some("token refused - token expired")
    );
    assert_eq!(engine.counters().snapshot().auth_refused, 2);
}

#[test]
fn anonymous_sessions_get_the_anonymous_permissions() {
    let engine = engine_auth(|a| a.anonymous.subscribe = vec!["/topic/public.**".into()]);
    let mut c = Client::connected(&engine, "1.2", None);
    c.subscribe("1", "/topic/public.news", "auto");
    c.feed(send("/topic/public.news", "x"));
    let (error, _) = c.expect_error();
    assert!(error.header("message").unwrap().contains("anonymous"));
}

#[test]
fn refresh_replaces_the_deadline_and_refuses_another_subject() {
    let engine = engine_auth(|_| {});
    let now = auth::unix_now();
    let mut c = connected_with(&engine, &token(json!({"sub": "alice", "exp": now + 5})));
    let newer = token(json!({"sub": "alice", "exp": now + 500}));
    c.ok(frame(
        Command::Send,
        &[("destination", "/wsb/refresh"), ("token", newer.as_str())],
    ));
    assert_eq!(
        c.session.token_deadline(),
        Some(UNIX_EPOCH + Duration::from_secs(now + 500))
    );
    // A token in the body works too; a shorter one shortens the deadline.
    let shorter = token(json!({"sub": "alice", "exp": now + 50}));
    c.ok(send("/wsb/refresh", &shorter));
    assert_eq!(
        c.session.token_deadline(),
        Some(UNIX_EPOCH + Duration::from_secs(now + 50))
    );
    let bob = token(json!({"sub": "bob", "exp": now + 500}));
    c.feed(send("/wsb/refresh", &bob));
    let (error, _) = c.expect_error();
    assert!(
        error.header("message").unwrap().contains("subject bob"),
        "{error:?}"
    );
    let stats = engine.counters().snapshot();
    assert_eq!((stats.auth_refreshed, stats.auth_refused), (2, 1));
}

#[test]
fn expiry_closes_with_token_expired() {
    let engine = engine_auth(|_| {});
    let mut c = connected_with(
        &engine,
        &token(json!({"sub": "a", "exp": auth::unix_now() + 60})),
    );
    c.session.expire();
    let (error, _) = c.expect_error();
    assert_eq!(error.header("message"), Some("token expired"));
    assert_eq!(engine.counters().snapshot().auth_expired, 1);
}
