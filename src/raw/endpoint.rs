//! Raw endpoints: a WebSocket path whose connections carry plain messages instead of STOMP,
//! and what the server does with those messages.

use std::sync::Arc;

use crate::broker::SlowConsumerPolicy;
use crate::ws::decoder::WsLimits;
use crate::ws::handshake::HandshakeConfig;

/// What a raw endpoint does with every data message a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RawBehaviour {
    /// Hand it to the host as an [`crate::events::Event::RawMessage`] (needs event delivery).
    #[default]
    Host,
    /// Send it to every other client connected to the same endpoint, same opcode, inside the
    /// server (no host round-trip).
    Broadcast,
    /// Send it back to its sender, same opcode, inside the server.
    Echo,
}

impl RawBehaviour {
    /// The name used in flags and logs: `host`, `broadcast`, `echo`.
    pub fn name(self) -> &'static str {
        match self {
            RawBehaviour::Host => "host",
            RawBehaviour::Broadcast => "broadcast",
            RawBehaviour::Echo => "echo",
        }
    }
}

/// Settings of one raw endpoint; `RawEndpointOptions::default()` is a host-driven endpoint
/// with the server's limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawEndpointOptions {
    /// What client messages do.
    pub behaviour: RawBehaviour,
    /// Subprotocols accepted, in preference order: the first one the client offers is echoed in
    /// the handshake. Empty (the default): no subprotocol is ever selected, so a client that
    /// insists on one (e.g. `v12.stomp`) learns at the handshake that this is not STOMP.
    pub subprotocols: Vec<String>,
    /// What a connection does when its outbound queue (bounded by `max_outbound_messages` and
    /// `max_outbound_bytes`) is full; `None`: the server's `slow_consumer_policy`.
    pub slow_consumer_policy: Option<SlowConsumerPolicy>,
    /// Largest message accepted from a client (larger ones close with 1009); `None`: the
    /// server's WebSocket message limit (`max_frame_size` + 4 KiB).
    pub max_message_size: Option<usize>,
    /// Accept permessage-deflate (RFC 7692) offers on this endpoint; `None`: the server's
    /// `permessage_deflate` (on by default). Negotiated as on the STOMP endpoint; a message
    /// sent to many connections is compressed once for all of them.
    pub permessage_deflate: Option<bool>,
    /// Outbound messages smaller than this go uncompressed; `None`: the server's
    /// `deflate_threshold`.
    pub deflate_threshold: Option<usize>,
    /// zlib level 1..=9 of outbound messages; `None`: the server's `deflate_level`.
    pub deflate_level: Option<u32>,
}

/// A registered endpoint with its resolved settings.
#[derive(Debug)]
pub struct RawEndpoint {
    pub(crate) path: Arc<str>,
    pub(crate) behaviour: RawBehaviour,
    pub(crate) policy: SlowConsumerPolicy,
    pub(crate) limits: WsLimits,
    pub(crate) handshake: Arc<HandshakeConfig>,
    /// Outbound compression settings when a connection negotiated permessage-deflate.
    pub(crate) deflate_threshold: usize,
    pub(crate) deflate_level: u32,
}

impl RawEndpoint {
    /// The handshake settings of requests for this endpoint.
    pub(crate) fn handshake(&self) -> &HandshakeConfig {
        &self.handshake
    }
}
