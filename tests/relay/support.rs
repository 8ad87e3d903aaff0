//! Shared by the relay tests: where RabbitMQ's STOMP adapter is, relay-mode configurations and
//! destination names unique to one test run.
//!
//! The tests need RabbitMQ with `rabbitmq_stomp` on 127.0.0.1:61613 (`bash scripts/rabbitmq.sh
//! ensure`; `WSBROKER_RELAY_BROKER` overrides the address); the ones that stop their broker use
//! a private node instead (`WSBROKER_RELAY_FAULT_BROKER`, scripts/rabbitmq-private.sh). Without
//! them they are skipped with a printed reason, except in CI (`CI=true`), where a missing broker
//! fails them.

#![allow(dead_code)]

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wsbroker::{RelayConfig, ServerConfig};

/// The broker's STOMP address, or `None` (after printing why) when the test must be skipped.
pub fn rabbitmq() -> Option<String> {
    let address =
        std::env::var("WSBROKER_RELAY_BROKER").unwrap_or_else(|_| "127.0.0.1:61613".into());
    reachable_or_skip(
        address,
        "RabbitMQ STOMP",
        "run `bash scripts/rabbitmq.sh ensure`",
    )
}

/// The STOMP address of the private RabbitMQ node that the tests which stop their broker use
/// (`WSBROKER_RELAY_FAULT_BROKER`, set by scripts/test.sh after `bash scripts/rabbitmq-private.sh
/// start`), or `None` (after printing why) when the test must be skipped. Never the machine's
/// RabbitMQ: those tests stop and start the node with `scripts/rabbitmq-private.sh ctl`.
pub fn private_rabbitmq() -> Option<String> {
    let how = "start it with `bash scripts/rabbitmq-private.sh start` and set \
               WSBROKER_RELAY_FAULT_BROKER (`eval \"$(bash scripts/rabbitmq-private.sh env)\"`)";
    match std::env::var("WSBROKER_RELAY_FAULT_BROKER") {
        Ok(address) => reachable_or_skip(address, "the private RabbitMQ node's STOMP", how),
        Err(_) => skip(format!(
            "WSBROKER_RELAY_FAULT_BROKER is not set (the private RabbitMQ node); {how}"
        )),
    }
}

fn reachable_or_skip(address: String, what: &str, how: &str) -> Option<String> {
    let reachable = address
        .parse()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if reachable {
        return Some(address);
    }
    skip(format!("{what} is not reachable on {address}; {how}"))
}

/// Prints why the test is skipped, or fails it in CI (`CI=true`), where relay tests must run.
fn skip(why: String) -> Option<String> {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{why} (CI=true: relay tests must run)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// A test server configuration relaying to `broker`.
pub fn relay_config(broker: &str, session_restore: bool) -> ServerConfig {
    {
        let mut c = super::common::config();
        c.relay = Some({
            let mut c = RelayConfig::new(broker);
            c.session_restore = session_restore;
            c.heartbeat_send = Duration::from_secs(2);
            c.heartbeat_receive = Duration::from_secs(2);
            c
        });
        c
    }
}

/// `name` made unique to this run (RabbitMQ keeps queues between runs).
pub fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{name}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
