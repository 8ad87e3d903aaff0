//! Relay mode: destinations under the relayed prefixes live on an external STOMP broker
//! (RabbitMQ, ActiveMQ), so that several wsbroker instances scale out on it, as Spring's
//! broker relay does.
//!
//! - Every client session gets its own STOMP-over-TCP connection to the broker ([`link`]), so
//!   acknowledgements, transactions and durable subscriptions work end to end. The session
//!   routes each frame ([`routing`]): relayed destinations to the broker, `/app` to the host's
//!   handlers and `/user` and other destinations to the in-process broker as before.
//! - One shared system connection ([`system`]) carries host publishes and host subscriptions;
//!   it reconnects with backoff ([`backoff`]) and reports `BrokerAvailable` /
//!   `BrokerUnavailable` events.
//! - With session restore on, a session whose broker connection drops gets a new one with
//!   its subscriptions re-made (each confirmed by a receipt) instead of being closed.
//!
//! The pure parts (routing, frame rewriting in [`frames`], backoff) have no IO; [`conn`] is
//! the one TCP client, shared by sessions and the system connection.

pub mod backoff;
pub(crate) mod client;
pub mod config;
pub(crate) mod conn;
pub mod frames;
pub(crate) mod link;
pub mod routing;
pub(crate) mod system;

pub use config::{DEFAULT_PREFIXES, RelayConfig};
pub(crate) use system::SystemListener;

use std::sync::Arc;

use crate::stomp::decoder::FrameLimits;

/// What the sessions and the system connection of one server share.
#[derive(Debug)]
pub struct Relay {
    pub(crate) config: RelayConfig,
    pub(crate) limits: FrameLimits,
    pub(crate) system: system::System,
}

impl Relay {
    /// The relay of a server: `config`, and the limits of the frames it accepts from the
    /// broker (the same as from clients).
    pub(crate) fn new(config: RelayConfig, limits: FrameLimits) -> Arc<Relay> {
        Arc::new(Relay {
            limits,
            system: system::System::new(config.max_pending_frames),
            config,
        })
    }

    /// True when `destination` goes to the external broker.
    pub fn is_relayed(&self, destination: &str) -> bool {
        routing::is_relayed(destination, &self.config.prefixes)
    }

    /// True while the system connection is up.
    pub fn is_available(&self) -> bool {
        self.system.is_available()
    }
}

/// Starts the system connection on the current runtime (from `Server::start`).
pub(crate) fn start(
    relay: &Arc<Relay>,
    engine: std::sync::Weak<dyn SystemListener>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    system::System::start(relay.clone(), engine, shutdown);
}
