//! What the host learns about raw connections (carried by [`crate::events::Event`]).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

/// A client connected to a raw endpoint. Sent before any message of the connection; the
/// connection can be used (`raw_send`, `raw_subscribe`, ...) from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOpen {
    /// The connection id (never reused).
    pub conn: u64,
    /// The endpoint's path (the request path without query).
    pub endpoint: Arc<str>,
    /// The peer's address.
    pub remote_addr: Option<SocketAddr>,
    /// The request's query string (after `?`), if any.
    pub query: Option<String>,
    /// The upgrade request's headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// The selected subprotocol, if any.
    pub subprotocol: Option<String>,
    /// The principal the upgrade hook accepted the request with, if any.
    pub user: Option<String>,
}

/// A data message from a client of a host-driven endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The connection it came from.
    pub conn: u64,
    /// The payload (valid UTF-8 when `binary` is false).
    pub data: Bytes,
    /// Binary (true) or text (false) message.
    pub binary: bool,
}

/// A raw connection ended; its id is stale from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawClose {
    /// The connection.
    pub conn: u64,
    /// The close code: the peer's (1005 when its close had none), the server's when the server
    /// closed (1001 shutdown or idle, 1008 slow consumer, the host's code, a protocol error's),
    /// 1006 when the connection dropped without a close.
    pub code: u16,
    /// The close reason (may be empty).
    pub reason: String,
}
