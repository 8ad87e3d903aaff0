//! wsbroker — an embeddable WebSocket/STOMP message broker.
//!
//! Layers, from the wire up:
//! - [`ws`] and [`stomp`]: sans-IO codecs and the STOMP session state machine (bytes in,
//!   frames and actions out);
//! - [`broker`]: destinations, subscriptions, acknowledgements and queues; knows sessions, not
//!   sockets;
//! - `transport`: tokio listeners and one task pair per connection, the only IO;
//! - [`Server`]: the safe API that owns a runtime and that the C ABI wraps.
//! - [`ffi`]: the C ABI over [`Server`] (header `include/wsbroker.h`).

pub mod broker;
pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub mod ffi;
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod host;
pub mod raw;
pub mod relay;
pub mod server;
pub mod session;
pub mod sockjs;
pub mod stomp;
mod transport;
pub mod ws;

pub use broker::{Message, Stats};
pub use config::{ServerConfig, SockJsConfig, TlsConfig};
pub use error::{Error, Result};
pub use hooks::{
    AppHandler, AppMessage, ConnectDecision, ConnectRequest, SessionInfo, SubscribeRequest,
    TransportKind, UpgradeDecision, UpgradeInfo,
};
pub use host::Publisher;
pub use raw::{RawBehaviour, RawEndpointOptions};
pub use relay::RelayConfig;
pub use server::{HostSubscriptionId, Server};
