//! What a [`Client`](super::Client) connects to and how: the endpoint URL, STOMP login,
//! heart-beats, TLS, reconnection, the outbound queue and how events reach the host.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::event::ClientEvent;
use super::url::Endpoint;
use crate::error::{Error, Result};
use crate::events::OverflowPolicy;
use crate::stomp::FrameLimits;

/// What the connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientMode {
    /// STOMP 1.0–1.2 (over WebSocket with the `v1x.stomp` subprotocols, or over TCP).
    #[default]
    Stomp,
    /// Raw WebSocket: text and binary messages, no STOMP (a game protocol). WebSocket URLs
    /// only.
    Raw,
}

/// TLS settings for `wss://` and `stomp+ssl://` (rustls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTlsConfig {
    /// Trust the operating system's certificate store (default true; read once when the
    /// client is created, with `rustls-native-certs`).
    pub system_roots: bool,
    /// A PEM bundle of CA certificates to trust as well (a private CA, a test CA).
    pub ca_pem: Option<PathBuf>,
    /// A client certificate chain (PEM) to present, for servers that require one (with
    /// `client_key_pem`).
    pub client_cert_pem: Option<PathBuf>,
    /// The private key of `client_cert_pem` (PEM: PKCS#8, PKCS#1 or SEC1).
    pub client_key_pem: Option<PathBuf>,
    /// The name the server certificate must carry; default: the URL's host.
    pub server_name: Option<String>,
}

impl Default for ClientTlsConfig {
    fn default() -> Self {
        ClientTlsConfig {
            system_roots: true,
            ca_pem: None,
            client_cert_pem: None,
            client_key_pem: None,
            server_name: None,
        }
    }
}

/// Automatic reconnection after a connection was lost (or could not be made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Reconnect at all (default true).
    pub enabled: bool,
    /// First delay (default 200 ms); doubles after each failed attempt, with up to 20 %
    /// random jitter so that many clients of one server do not knock at the same instant.
    pub initial_delay: Duration,
    /// Longest delay (default 10 s).
    pub max_delay: Duration,
    /// Give up after this many consecutive failed attempts (0, the default: never).
    pub max_attempts: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_attempts: 0,
        }
    }
}

/// What `send` (and every other command) does when the outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Wait up to this long for room, then fail with `Backpressure`.
    Block(Duration),
    /// Fail with `Backpressure` at once.
    FailFast,
}

/// The bounded queue between the host's threads and the client's network thread: commands
/// wait there while the connection is busy or being re-made, so a producer never blocks the
/// network thread and memory stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundQueue {
    /// Most commands queued (default 4096).
    pub capacity: usize,
    /// When it is full (default: block up to 5 s).
    pub policy: QueuePolicy,
}

impl Default for OutboundQueue {
    fn default() -> Self {
        OutboundQueue {
            capacity: 4096,
            policy: QueuePolicy::Block(Duration::from_secs(5)),
        }
    }
}

/// A host callback for client events, run on the client's network thread.
pub type ClientCallback = Arc<dyn Fn(ClientEvent) + Send + Sync>;

/// How events reach the host.
#[derive(Clone)]
pub enum ClientDelivery {
    /// A bounded queue drained with [`Client::poll_events`](super::Client::poll_events);
    /// `wake` runs (on the network thread) when it goes from empty to non-empty.
    Queue {
        /// Most events queued (default 65536).
        capacity: usize,
        /// What a full queue does (the first event polled after a loss is
        /// [`ClientEvent::Overflow`]).
        overflow: OverflowPolicy,
        /// Called when the queue becomes non-empty; must be quick and must not block.
        wake: Option<Arc<dyn Fn() + Send + Sync>>,
    },
    /// Every event handed to a callback on the client's network thread, in order. It must
    /// return quickly; it may call any `Client` method that does not wait (`send`,
    /// `subscribe`, `ack`...).
    Callback(ClientCallback),
}

impl Default for ClientDelivery {
    fn default() -> Self {
        ClientDelivery::Queue {
            capacity: 65_536,
            overflow: OverflowPolicy::DropNewest,
            wake: None,
        }
    }
}

impl std::fmt::Debug for ClientDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientDelivery::Queue {
                capacity, overflow, ..
            } => f
                .debug_struct("Queue")
                .field("capacity", capacity)
                .field("overflow", overflow)
                .finish_non_exhaustive(),
            ClientDelivery::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// A client's settings. Only `url` is required; `ClientConfig::new(url)` fills in the rest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `ws://host[:port]/path`, `wss://...` (STOMP over WebSocket, or raw WebSocket with
    /// [`ClientMode::Raw`]), `stomp://host:port` or `tcp://` (STOMP over TCP),
    /// `stomp+ssl://host:port` or `stomps://` (STOMP over TLS).
    pub url: String,
    /// STOMP (default) or raw WebSocket.
    pub mode: ClientMode,
    /// CONNECT `login` header.
    pub login: Option<String>,
    /// CONNECT `passcode` header.
    pub passcode: Option<String>,
    /// CONNECT `host` header (RabbitMQ's virtual host, e.g. "/"). None (default): no header.
    pub host: Option<String>,
    /// More CONNECT headers, e.g. a bearer token the server's connect hook reads.
    pub connect_headers: Vec<(String, String)>,
    /// More headers of the WebSocket upgrade request (`Authorization`, `Cookie`, `Origin`).
    pub ws_headers: Vec<(String, String)>,
    /// Raw mode: the WebSocket subprotocols to offer (default none).
    pub subprotocols: Vec<String>,
    /// STOMP heart-beats (send, receive) offered in CONNECT; zero turns a direction off.
    /// The negotiated receive interval is enforced: twice that without a byte from the
    /// server drops the connection (and reconnects). Default 10 s, 10 s. In raw mode the
    /// send interval is how often the client pings.
    pub heartbeat: (Duration, Duration),
    /// Offer permessage-deflate (default true); inflates with or without context takeover,
    /// whichever the server chose, and compresses messages larger than 256 bytes.
    pub permessage_deflate: bool,
    /// TLS settings (for `wss://` and `stomp+ssl://`).
    pub tls: ClientTlsConfig,
    /// Bound of one connection attempt: TCP, TLS, upgrade and CONNECTED (default 10 s).
    pub connect_timeout: Duration,
    /// How long the client waits for a RECEIPT it asked for on its own (the DISCONNECT in
    /// `Drop`); calls that wait take their own timeout. Default 5 s.
    pub receipt_timeout: Duration,
    /// Automatic reconnection (on by default).
    pub reconnect: ReconnectPolicy,
    /// The outbound queue.
    pub outbound: OutboundQueue,
    /// How events reach the host (default: a polled queue).
    pub delivery: ClientDelivery,
    /// Limits of the frames the client accepts (the server's frames).
    pub limits: FrameLimits,
    /// Threads of the client's runtime (default 1: one network thread).
    pub worker_threads: usize,
}

impl ClientConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            mode: ClientMode::Stomp,
            login: None,
            passcode: None,
            host: None,
            connect_headers: Vec::new(),
            ws_headers: Vec::new(),
            subprotocols: Vec::new(),
            heartbeat: (Duration::from_secs(10), Duration::from_secs(10)),
            permessage_deflate: true,
            tls: ClientTlsConfig::default(),
            connect_timeout: Duration::from_secs(10),
            receipt_timeout: Duration::from_secs(5),
            reconnect: ReconnectPolicy::default(),
            outbound: OutboundQueue::default(),
            delivery: ClientDelivery::default(),
            limits: FrameLimits::default(),
            worker_threads: 1,
        }
    }

    /// Checks every field; the error names the first that is wrong. Returns the parsed URL.
    pub(crate) fn validate(&self) -> Result<Endpoint> {
        let bad = |msg: String| Err(Error::InvalidConfig(format!("client: {msg}")));
        let endpoint = Endpoint::parse(&self.url)
            .map_err(|e| Error::InvalidConfig(format!("client: url {:?}: {e}", self.url)))?;
        if self.mode == ClientMode::Raw && !endpoint.websocket {
            return bad("raw mode needs a ws:// or wss:// url".into());
        }
        for (name, value) in self.connect_headers.iter().chain(&self.ws_headers) {
            if let Err(e) = crate::stomp::frame::check_header(name, value) {
                return bad(e);
            }
            if value.contains(['\r', '\n']) {
                return bad(format!("header {name:?}: CR or LF in its value"));
            }
        }
        if self.outbound.capacity == 0 {
            return bad("outbound.capacity must be at least 1".into());
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must not be zero".into());
        }
        if self.reconnect.enabled
            && (self.reconnect.initial_delay.is_zero()
                || self.reconnect.max_delay < self.reconnect.initial_delay)
        {
            return bad("reconnect: need 0 < initial_delay <= max_delay".into());
        }
        if self.tls.client_cert_pem.is_some() != self.tls.client_key_pem.is_some() {
            return bad("tls: client_cert_pem and client_key_pem go together".into());
        }
        if self.worker_threads == 0 {
            return bad("worker_threads must be at least 1".into());
        }
        Ok(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_fields_are_named() {
        let ok = ClientConfig::new("ws://127.0.0.1:1/ws");
        ok.validate().unwrap();
        type Change = fn(&mut ClientConfig);
        let cases: [(&str, Change); 6] = [
            ("url", |c| c.url = "http://x".into()),
            ("raw mode", |c| {
                c.url = "stomp://h:1".into();
                c.mode = ClientMode::Raw;
            }),
            ("outbound.capacity", |c| c.outbound.capacity = 0),
            ("reconnect", |c| c.reconnect.max_delay = Duration::ZERO),
            ("client_key_pem", |c| {
                c.tls.client_cert_pem = Some("c".into());
            }),
            ("CR or LF", |c| {
                c.connect_headers.push(("token".into(), "a\nb".into()));
            }),
        ];
        for (needle, change) in cases {
            let mut c = ok.clone();
            change(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
