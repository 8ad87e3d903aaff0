//! Token authentication in the session: CONNECT tokens, permissions, refresh and expiry.

use std::time::{Duration, UNIX_EPOCH};

use super::common::*;
use crate::auth::{self, AuthConfig, AuthKey};
use crate::session::Flow;
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

fn private_engine() -> std::sync::Arc<crate::engine::Engine> {
    engine_auth(|a| a.private = vec!["/topic/private.*".into()])
}

fn sub_token(subject: &str, destination: &str, exp: u64) -> String {
    token(json!({"sub": subject, "exp": exp, "wsb": {"dest": destination}}))
}

/// A host-side publish of `body` to `dest`; how many subscriptions got it.
fn publish_to(engine: &crate::engine::Engine, dest: &str, body: &str) -> usize {
    let message = crate::broker::Message::new(
        1,
        dest,
        Vec::new(),
        bytes::Bytes::copy_from_slice(body.as_bytes()),
        None,
    );
    engine
        .broker
        .publish(dest, std::sync::Arc::new(message), &mut Vec::new())
        .unwrap()
}

fn subscribe_private(c: &mut Client, id: &str, destination: &str, sub_token: &str) -> Flow {
    c.feed(frame(
        Command::Subscribe,
        &[
            ("id", id),
            ("destination", destination),
            ("x-sub-token", sub_token),
            ("receipt", "sub"),
        ],
    ))
}

#[test]
fn a_private_destination_opens_only_with_a_matching_subscription_token() {
    let engine = private_engine();
    let exp = auth::unix_now() + 600;
    // alice's own token lets her subscribe to nothing: the subscription token is enough.
    let alice = token(json!({"sub": "alice", "exp": exp, "wsb": {"sub": [], "pub": []}}));
    let refusals = [
        (None, "needs a subscription token"),
        (
            Some(sub_token("bob", "/topic/private.alice", exp)),
            "subject bob",
        ),
        (
            Some(sub_token("alice", "/topic/private.bob", exp)),
            "it is for /topic/private.bob",
        ),
        (
            Some(token(json!({"sub": "alice", "exp": exp}))),
            "no destination",
        ),
        (
            Some(sub_token(
                "alice",
                "/topic/private.alice",
                auth::unix_now() - 1,
            )),
            "expired",
        ),
    ];
    for (sub, expected) in refusals {
        let mut c = connected_with(&engine, &alice);
        match &sub {
            Some(t) => {
                subscribe_private(&mut c, "p", "/topic/private.alice", t);
            }
            None => {
                c.feed(frame(
                    Command::Subscribe,
                    &[("id", "p"), ("destination", "/topic/private.alice")],
                ));
            }
        }
        let (error, _) = c.expect_error();
        let message = error.header("message").unwrap();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let mut c = connected_with(&engine, &alice);
    let good = sub_token("alice", "/topic/private.alice", exp);
    assert!(matches!(
        subscribe_private(&mut c, "p", "/topic/private.alice", &good),
        Flow::Continue
    ));
    let receipts = c.drain_frames_only();
    assert_eq!(receipts[0].command, Command::Receipt);
    publish_to(&engine, "/topic/private.alice", "for alice");
    assert_eq!(c.bodies(), ["for alice"]);
}

#[test]
fn a_wildcard_that_could_reach_private_destinations_is_refused() {
    let engine = private_engine();
    let all = token(json!({"sub": "eve", "exp": auth::unix_now() + 600}));
    for pattern in ["/topic/**", "/topic/priv*", "/**"] {
        let mut c = connected_with(&engine, &all);
        c.feed(frame(
            Command::Subscribe,
            &[("id", "w"), ("destination", pattern)],
        ));
        let (error, _) = c.expect_error();
        assert!(
            error
                .header("message")
                .unwrap()
                .contains("private destinations"),
            "{pattern}: {error:?}"
        );
    }
    let mut c = connected_with(&engine, &all);
    c.subscribe("ok", "/topic/public.*", "auto");
}

#[test]
fn an_expired_subscription_token_ends_only_its_subscription_and_a_refresh_extends_it() {
    let engine = private_engine();
    let now = auth::unix_now();
    let mut c = connected_with(&engine, &token(json!({"sub": "alice", "exp": now + 600})));
    c.subscribe("pub", "/topic/public.news", "auto");
    let short = sub_token("alice", "/topic/private.alice", now + 5);
    subscribe_private(&mut c, "p", "/topic/private.alice", &short);
    c.drain();
    assert_eq!(
        c.session.token_deadline(),
        Some(UNIX_EPOCH + Duration::from_secs(now + 5)),
        "the subscription token's expiry comes first"
    );
    // A refresh naming the subscription moves its deadline.
    let longer = sub_token("alice", "/topic/private.alice", now + 50);
    c.ok(frame(
        Command::Send,
        &[
            ("destination", "/wsb/refresh"),
            ("subscription", "p"),
            ("token", longer.as_str()),
        ],
    ));
    assert_eq!(
        c.session.token_deadline(),
        Some(UNIX_EPOCH + Duration::from_secs(now + 50))
    );
    assert!(
        c.session.deadline_passed_at(now + 49),
        "nothing expired yet"
    );
    assert!(c.drain().is_empty());
    assert!(
        c.session.deadline_passed_at(now + 51),
        "the session goes on"
    );
    let notice = c.drain_frames_only();
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0].command, Command::Message);
    assert_eq!(notice[0].header("subscription"), Some("p"));
    assert_eq!(notice[0].header("x-unsubscribed"), Some("token expired"));
    assert_eq!(
        c.session.token_deadline(),
        Some(UNIX_EPOCH + Duration::from_secs(now + 600))
    );
    let publish = |dest: &str| publish_to(&engine, dest, "m");
    assert_eq!(
        publish("/topic/private.alice"),
        0,
        "that subscription ended"
    );
    assert_eq!(publish("/topic/public.news"), 1, "the other one goes on");
    assert_eq!(c.bodies(), ["m"]);
    // Refreshing a subscription that is gone is refused.
    c.feed(frame(
        Command::Send,
        &[
            ("destination", "/wsb/refresh"),
            ("subscription", "p"),
            ("token", longer.as_str()),
        ],
    ));
    let (error, _) = c.expect_error();
    assert!(
        error
            .header("message")
            .unwrap()
            .contains("no private subscription with id 'p'"),
        "{error:?}"
    );
    assert_eq!(engine.counters().snapshot().auth_expired, 1);
}
