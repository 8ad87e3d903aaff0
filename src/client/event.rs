//! What a client tells its host: connection changes, messages, resubscriptions, errors.

use bytes::Bytes;

use crate::events::QueuedEvent;

/// A MESSAGE received for one of the client's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// The subscription id returned by `subscribe`.
    pub subscription: u64,
    /// The `destination` header.
    pub destination: String,
    /// Every header, in wire order (`message-id`, `subscription`, `x-offset`...).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// What to pass to `ack` / `nack` for subscriptions with a client ack mode: an opaque
    /// id bound to the connection that delivered the message. `None` for `auto`.
    pub ack_id: Option<String>,
}

impl ClientMessage {
    /// The first header called `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Something the client tells its host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A connection is up: STOMP CONNECTED received (raw mode: the WebSocket is open).
    /// After a reconnection, the subscriptions are being re-made
    /// ([`ClientEvent::Resubscribed`] follows for each).
    Connected {
        /// The server's `server` header (STOMP), if any.
        server: Option<String>,
        /// The negotiated STOMP version ("1.2"), or the WebSocket subprotocol in raw mode
        /// (empty when none).
        version: String,
        /// The server's `session` header, if any.
        session: Option<String>,
        /// True when this is not the first connection of the client.
        reconnected: bool,
    },
    /// The connection was lost or closed.
    Disconnected {
        /// Why (I/O error, heart-beat timeout, server ERROR, close frame...).
        reason: String,
        /// True when the client will try again (per its reconnect policy).
        reconnecting: bool,
    },
    /// A MESSAGE for a subscription.
    Message(ClientMessage),
    /// A subscription was re-made after a reconnection. `recovered` is the server's
    /// `x-recovered` report (history resume: every message since the last one received was
    /// replayed, no gap); false when the server did not say so (no history there).
    Resubscribed {
        /// The subscription id.
        subscription: u64,
        /// The destination.
        destination: String,
        /// Gap-free resume confirmed by the server.
        recovered: bool,
    },
    /// The server sent an ERROR frame (it closes the connection after it).
    Error {
        /// The `message` header.
        message: String,
        /// Every header.
        headers: Vec<(String, String)>,
        /// The body (often a longer description).
        body: Bytes,
    },
    /// Raw mode: a message from the server.
    Raw {
        /// The payload.
        data: Bytes,
        /// Binary (true) or text (false: valid UTF-8).
        binary: bool,
    },
    /// Events were discarded because the event queue was full.
    Overflow {
        /// How many.
        dropped: u64,
    },
}

impl QueuedEvent for ClientEvent {
    fn overflow(dropped: u64) -> Self {
        ClientEvent::Overflow { dropped }
    }
}
