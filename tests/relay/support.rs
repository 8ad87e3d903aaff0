//! Shared by the relay tests: where RabbitMQ's STOMP adapter is, relay-mode configurations and
//! destination names unique to one test run.
//!
//! The tests need RabbitMQ with `rabbitmq_stomp` on 127.0.0.1:61613 (`bash scripts/rabbitmq.sh
//! ensure`; `WSBROKER_RELAY_BROKER` overrides the address). Without it they are skipped with a
//! printed reason, except in CI (`CI=true`), where a missing broker fails them.

#![allow(dead_code)]

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wsbroker::{RelayConfig, ServerConfig};

/// The broker's STOMP address, or `None` (after printing why) when the test must be skipped.
pub fn rabbitmq() -> Option<String> {
    let address =
        std::env::var("WSBROKER_RELAY_BROKER").unwrap_or_else(|_| "127.0.0.1:61613".into());
    let reachable = address
        .parse()
        .ok()
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok())
        .is_some();
    if reachable {
        return Some(address);
    }
    let why = format!(
        "RabbitMQ STOMP is not reachable on {address}; run `bash scripts/rabbitmq.sh ensure`"
    );
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
