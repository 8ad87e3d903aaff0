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
    /// Also serve the endpoint as a SockJS 0.3 service whose prefix is the endpoint's path
    /// (`/echo/info`, `/echo/<server>/<session>/xhr`, ..., `/echo/websocket`), for clients such
    /// as `sockjs-client`; `None` (the default): plain WebSocket only. SockJS carries text:
    /// binary messages are not sent to SockJS connections (counted in `dropped`).
    pub sockjs: Option<RawSockJs>,
}

/// SockJS options of a raw endpoint (heart-beat, disconnect delay and the iframe's client URL
/// are the server's `SockJsConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawSockJs {
    /// Whether the `websocket` transport is offered (`/info` says so). Default true.
    pub websocket: bool,
    /// Whether responses set a `JSESSIONID` cookie (sticky load balancers). Default false.
    pub cookie_needed: bool,
    /// Bytes after which a streaming response ends; `None`: the server's.
    pub response_limit: Option<usize>,
}

impl Default for RawSockJs {
    fn default() -> Self {
        RawSockJs {
            websocket: true,
            cookie_needed: false,
            response_limit: None,
        }
    }
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
    /// Served over SockJS too, under its path.
    pub(crate) sockjs: Option<RawSockJs>,
}

impl RawEndpoint {
    /// Whether its SockJS service offers the `websocket` transport.
    pub(crate) fn sockjs_websocket(&self) -> bool {
        self.sockjs.as_ref().is_some_and(|s| s.websocket)
    }

    /// Its SockJS options, when it is served over SockJS.
    pub(crate) fn sockjs(&self) -> Option<&RawSockJs> {
        self.sockjs.as_ref()
    }

    /// The handshake settings of requests for this endpoint.
    pub(crate) fn handshake(&self) -> &HandshakeConfig {
        &self.handshake
    }
}
