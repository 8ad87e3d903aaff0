//! What every connection of one server shares: configuration, broker, hooks and counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::broker::{Broker, Counters};
use crate::config::ServerConfig;
use crate::hooks::Hooks;

/// The IO-free heart of a server; transports and the safe API hold it in an `Arc`.
#[derive(Debug)]
pub struct Engine {
    /// The validated configuration.
    pub config: ServerConfig,
    /// Routing state.
    pub broker: Broker,
    /// The host's hooks.
    pub hooks: Hooks,
    next_session: AtomicU64,
}

impl Engine {
    /// A new engine for `config` (which the caller validated).
    pub fn new(config: ServerConfig) -> Arc<Engine> {
        let counters = Arc::new(Counters::default());
        Arc::new(Engine {
            broker: Broker::new(&config, counters),
            config,
            hooks: Hooks::default(),
            next_session: AtomicU64::new(1),
        })
    }

    /// Server-wide counters.
    pub fn counters(&self) -> &Arc<Counters> {
        self.broker.counters()
    }

    /// A session id never used before on this server.
    pub fn next_session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Relaxed)
    }
}
