//! wsbroker — an embeddable WebSocket/STOMP message broker.
//!
//! A [`Server`] owns its own runtime and serves STOMP 1.0–1.2 over WebSocket (RFC 6455, with
//! permessage-deflate and SockJS) and plain TCP, optionally with TLS, to an in-process broker:
//! topics with wildcards, queues with competing consumers, acknowledgements, transactions,
//! application destinations handed to the host ([`Server::handle_app`]) and per-user
//! destinations. Raw (non-STOMP) WebSocket endpoints ([`Server::add_raw_endpoint`]) and relay
//! mode ([`RelayConfig`]) share the same listeners. The C ABI (`include/wsbroker.h`) and the
//! Python package wrap exactly this API. A [`Client`] (STOMP over WebSocket, TCP or TLS, or
//! raw WebSocket, with automatic reconnection and resume) connects to wsbroker or any other
//! STOMP broker.
//!
//! ```no_run
//! use wsbroker::{Server, ServerConfig};
//! let mut config = ServerConfig::default();
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! let server = Server::new(config)?;
//! server.start()?;
//! server.publish("/topic/news", &[("content-type", "text/plain")], "hello")?;
//! server.stop(std::time::Duration::from_secs(1))?;
//! # Ok::<(), wsbroker::Error>(())
//! ```
//!
//! Layers, from the wire up (ARCHITECTURE.md has the whole picture): sans-IO codecs
//! (`ws`, `stomp`, `sockjs`: bytes in, frames out), the STOMP session state machine
//! (`session`: frames in, broker calls and actions out), the broker (`broker`: destinations,
//! subscriptions, acknowledgements, bounded outboxes; it knows sessions, not sockets), relay
//! and raw mode beside it, the transports (`transport`: listeners and one task per
//! connection, the only IO) and this crate's safe API on top. Every module is private; what
//! is public is re-exported here.
#![warn(missing_docs)]

/// Declares a module that is private, or public (hidden from the docs) with the `internals`
/// feature, which the fuzz targets and the integration tests of the codecs and the C ABI use.
macro_rules! internal_mod {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$attr])*
        #[cfg(not(feature = "internals"))]
        #[allow(
            dead_code,
            unused_imports,
            reason = "parts are used only by the internals feature's users"
        )]
        mod $name;
    };
}

mod auth;
mod broker;
mod client;
mod cluster;
mod config;
mod engine;
mod error;
mod events;
mod executor;
internal_mod!(ffi);
internal_mod!(fuzzing);
mod hooks;
mod host;
#[cfg(test)]
mod layering;
mod raw;
mod relay;
mod server;
mod session;
internal_mod!(sockjs);
mod store;
internal_mod!(stomp);
mod transport;
internal_mod!(ws);

pub use auth::{
    AuthConfig, AuthError, AuthKey, Authenticator, DEFAULT_REFRESH_DESTINATION, Grant,
    JWKS_RELOAD_INTERVAL, JwtAlgorithm, Permissions,
};
pub use broker::{
    AckMode, BrokerConfig, DropReport, HistoryPage, HistoryRule, Message, Presence, PresenceMember,
    Published, SlowConsumerPolicy, Stats, StreamPosition,
};
pub use client::{
    Client, ClientCallback, ClientConfig, ClientDelivery, ClientEvent, ClientMessage, ClientMode,
    ClientTlsConfig, OutboundQueue, QueuePolicy, ReconnectPolicy,
};
pub use cluster::{ClusterConfig, ClusterEngine, ClusterStats};
pub use config::{PemSource, ServerConfig, SockJsConfig, TlsConfig};
pub use error::{Error, Result};
pub use events::{
    DeliveryMode, Event, EventCallback, EventCallbackFn, EventDelivery, EventOptions,
    EventQueueConfig, OverflowPolicy,
};
pub use hooks::{
    AppHandler, AppMessage, ConnectDecision, ConnectRequest, SessionInfo, SubscribeRequest,
    TransportKind, UpgradeDecision, UpgradeInfo,
};
pub use host::Publisher;
pub use raw::{RawBehaviour, RawClose, RawEndpointOptions, RawMessage, RawOpen, RawSockJs};
pub use relay::{DEFAULT_PREFIXES as DEFAULT_RELAY_PREFIXES, RelayConfig};
pub use server::{HostSubscriptionId, Server};
pub use session::{DEFAULT_APP_PREFIX, SessionConfig};
pub use stomp::FrameLimits;
pub use store::{FsyncPolicy, StoreConfig};
