//! Server configuration: every limit has a safe default and is checked by [`ServerConfig::validate`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::broker::SlowConsumerPolicy;
use crate::error::{Error, Result};

/// Everything a [`crate::Server`] needs to know before it starts.
///
/// `ServerConfig::default()` is a working broker on `127.0.0.1:61614` at path `/ws`
/// with bounded queues, heart-beats and timeouts on.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// WebSocket listen address; port 0 picks a free port (read it back with `Server::local_addr`).
    pub listen: SocketAddr,
    /// HTTP path of the WebSocket endpoint.
    pub path: String,
    /// Plain-TCP STOMP listener (for native clients such as stomp.py); off when `None`.
    pub tcp_listen: Option<SocketAddr>,
    /// Allowed `Origin` values (`scheme://host[:port]`); empty allows every origin.
    pub allowed_origins: Vec<String>,
    /// Destination prefixes handed to the host's application handlers instead of subscribers.
    pub app_prefixes: Vec<String>,
    /// Prefix of destinations with competing consumers (each message to one subscriber).
    /// Every other destination broadcasts to all of its subscribers.
    pub queue_prefix: String,
    /// Prefix of user destinations (`/user/queue/x` for the subscriber, `/user/{name}/queue/x` for senders).
    pub user_prefix: String,
    /// Heart-beat the server offers to send (STOMP `heart-beat` cx); zero disables.
    pub heartbeat_send: Duration,
    /// Heart-beat the server wants to receive (STOMP `heart-beat` cy); zero disables.
    pub heartbeat_receive: Duration,
    /// WebSocket ping interval on otherwise quiet connections; zero disables.
    pub ws_ping_interval: Duration,
    /// A WebSocket connection from which nothing arrives for this long is closed; zero disables.
    pub idle_timeout: Duration,
    /// Time allowed for the HTTP upgrade request to arrive completely.
    pub handshake_timeout: Duration,
    /// Time allowed between connection and the STOMP CONNECT frame.
    pub connect_timeout: Duration,
    /// How long a session waits for a host decision asked through the event queue (connect or
    /// subscribe) before it is refused.
    pub decision_timeout: Duration,
    /// Largest STOMP frame accepted (headers and body); also bounds WebSocket messages.
    pub max_frame_size: usize,
    /// Most headers in one STOMP frame.
    pub max_headers: usize,
    /// Longest single header line in bytes.
    pub max_header_length: usize,
    /// Most simultaneous connections over all listeners; more are refused at accept.
    pub max_connections: usize,
    /// Most simultaneous connections from one client IP address over all listeners; more are
    /// refused at accept (WebSocket: HTTP 503, TCP: an ERROR frame) and counted in
    /// `connections_refused`. Clients behind one NAT or proxy share an address: raise it there.
    pub max_connections_per_ip: usize,
    /// Most subscriptions one session may hold.
    pub max_subscriptions_per_session: usize,
    /// Most frames queued for one connection before it counts as a slow consumer.
    pub max_outbound_messages: usize,
    /// Most bytes queued for one connection before it counts as a slow consumer.
    pub max_outbound_bytes: usize,
    /// What a broadcast subscription in `auto` ack mode does when its connection's queue is
    /// full: disconnect the session (default), or drop its oldest or newest message (counted in
    /// `Stats::dropped`). A SUBSCRIBE may choose with an `overflow-policy` header.
    pub slow_consumer_policy: SlowConsumerPolicy,
    /// Default limit of unacknowledged messages per subscription in `client` ack modes
    /// (a SUBSCRIBE may lower or raise it with a `prefetch-count` header, up to this value × 16).
    pub max_unacked_per_subscription: usize,
    /// Most messages a `/queue/...` destination holds while no consumer can take them.
    pub max_queue_depth: usize,
    /// Most frames buffered inside one transaction.
    pub max_transaction_frames: usize,
    /// Most transactions open at once in one session.
    pub max_open_transactions: usize,
    /// Worker threads of the server's own tokio runtime; 0 means one per CPU.
    pub worker_threads: usize,
    /// Accept WebSocket compression (permessage-deflate, RFC 7692) when a client offers it,
    /// as browsers do. On by default: it is negotiated so that no connection keeps compression
    /// state (both sides compress each message on its own), a publish is compressed once for
    /// all its subscribers, and inflated messages stay under the message size limit.
    pub permessage_deflate: bool,
    /// With compression negotiated, outbound messages smaller than this many bytes go
    /// uncompressed (small frames barely shrink and are not worth the CPU); 0 compresses all.
    pub deflate_threshold: usize,
    /// zlib compression level of outbound messages, 1 (fastest) ..= 9 (smallest); default 6.
    /// A fan-out pays it once per publish, one-to-one traffic once per message.
    pub deflate_level: u32,
    /// TLS for both listeners (`wss://` on the WebSocket one, TLS on the plain-TCP STOMP one);
    /// plain text when `None`. The files are read and checked by `Server::start`.
    pub tls: Option<TlsConfig>,
    /// Relay mode: destinations under the relayed prefixes live on an external STOMP broker
    /// (RabbitMQ, ActiveMQ) shared by several wsbroker instances; off when `None`.
    pub relay: Option<crate::relay::RelayConfig>,
    /// SockJS settings (prefix, heart-beat, disconnect delay, response limit, ...).
    pub sockjs: SockJsConfig,
    /// Directory served as static files over HTTP on the WebSocket listener (paths that are
    /// neither the WebSocket endpoint, the SockJS prefix nor `/metrics`); off when `None`.
    pub static_dir: Option<PathBuf>,
}

/// SockJS (protocol 0.3.x) on the WebSocket listener, for browsers without WebSocket or
/// behind proxies that block it. The defaults are sockjs-node's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SockJsConfig {
    /// URL prefix of the SockJS service (no trailing slash); empty disables SockJS.
    pub path: String,
    /// Interval of SockJS `h` frames on quiet receiving requests.
    pub heartbeat: Duration,
    /// How long a session lives without a receiving request before it is closed.
    pub disconnect_delay: Duration,
    /// Bytes after which a streaming response is ended (the client opens a new one), so
    /// browsers can release what they buffered.
    pub response_limit: usize,
    /// Whether the `websocket` transport is offered (`/info` says so to clients).
    pub websocket: bool,
    /// Whether session responses set a `JSESSIONID` cookie (for sticky load balancers).
    pub cookie_needed: bool,
    /// Where `/iframe.html` loads the SockJS client from.
    pub client_url: String,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        SockJsConfig {
            path: "/sockjs".into(),
            heartbeat: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            response_limit: 128 * 1024,
            websocket: true,
            cookie_needed: false,
            client_url: "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js".into(),
        }
    }
}

impl SockJsConfig {
    /// Whether SockJS is served at all.
    pub fn enabled(&self) -> bool {
        !self.path.is_empty()
    }
}

/// TLS settings (rustls, TLS 1.2 and 1.3). When set, they apply to every listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the server certificate first, then any intermediates.
    pub cert_chain_pem: PathBuf,
    /// PEM file with the private key of the first certificate (PKCS#8, PKCS#1 or SEC1).
    pub private_key_pem: PathBuf,
    /// PEM bundle of CA certificates; when set, every client must present a certificate
    /// signed by one of them (mutual TLS), and connections without one are refused.
    pub client_ca_pem: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 61614)),
            path: "/ws".into(),
            tcp_listen: None,
            allowed_origins: Vec::new(),
            app_prefixes: vec!["/app".into()],
            queue_prefix: "/queue/".into(),
            user_prefix: "/user/".into(),
            heartbeat_send: Duration::from_secs(10),
            heartbeat_receive: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(70),
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            decision_timeout: Duration::from_secs(10),
            max_frame_size: 4 * 1024 * 1024,
            max_headers: 64,
            max_header_length: 8 * 1024,
            max_connections: 10_000,
            // As many as the global limit: a proxy or NAT puts every client behind one
            // address, so the per-address limit is opt-in (lower it for direct exposure).
            max_connections_per_ip: 10_000,
            max_subscriptions_per_session: 1024,
            max_outbound_messages: 16 * 1024,
            max_outbound_bytes: 8 * 1024 * 1024,
            slow_consumer_policy: SlowConsumerPolicy::Disconnect,
            max_unacked_per_subscription: 1024,
            max_queue_depth: 100_000,
            max_transaction_frames: 10_000,
            max_open_transactions: 16,
            worker_threads: 0,
            tls: None,
            permessage_deflate: true,
            deflate_threshold: 256,
            deflate_level: crate::ws::deflate::DEFAULT_LEVEL,
            relay: None,
            sockjs: SockJsConfig::default(),
            static_dir: None,
        }
    }
}

impl ServerConfig {
    /// Checks every field; the error names the first field that is out of range.
    pub fn validate(&self) -> Result<()> {
        fn bad(msg: &str) -> Result<()> {
            Err(Error::InvalidConfig(msg.to_string()))
        }
        if !self.path.starts_with('/') {
            return bad("path must start with '/'");
        }
        if self.queue_prefix.is_empty() || !self.queue_prefix.starts_with('/') {
            return bad("queue_prefix must start with '/'");
        }
        if !self.user_prefix.starts_with('/') || !self.user_prefix.ends_with('/') {
            return bad("user_prefix must start and end with '/'");
        }
        if self.app_prefixes.iter().any(|p| !p.starts_with('/')) {
            return bad("every app prefix must start with '/'");
        }
        let positive = [
            (self.max_frame_size, "max_frame_size"),
            (self.max_headers, "max_headers"),
            (self.max_header_length, "max_header_length"),
            (self.max_connections, "max_connections"),
            (self.max_connections_per_ip, "max_connections_per_ip"),
            (
                self.max_subscriptions_per_session,
                "max_subscriptions_per_session",
            ),
            (self.max_outbound_messages, "max_outbound_messages"),
            (self.max_outbound_bytes, "max_outbound_bytes"),
            (
                self.max_unacked_per_subscription,
                "max_unacked_per_subscription",
            ),
            (self.max_queue_depth, "max_queue_depth"),
            (self.max_transaction_frames, "max_transaction_frames"),
            (self.max_open_transactions, "max_open_transactions"),
        ];
        for (value, name) in positive {
            if value == 0 {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be greater than 0"
                )));
            }
        }
        if self.max_frame_size > 1 << 30 {
            return bad("max_frame_size must be at most 1 GiB");
        }
        if self.handshake_timeout.is_zero()
            || self.connect_timeout.is_zero()
            || self.decision_timeout.is_zero()
        {
            return bad(
                "handshake_timeout, connect_timeout and decision_timeout must be greater than 0",
            );
        }
        if !(1..=9).contains(&self.deflate_level) {
            return bad("deflate_level must be between 1 and 9");
        }
        if self.heartbeat_send.as_millis() > u32::MAX as u128
            || self.heartbeat_receive.as_millis() > u32::MAX as u128
        {
            return bad("heart-beat intervals must fit in 32-bit milliseconds");
        }
        if let Some(relay) = &self.relay {
            relay.validate()?;
        }
        if self.sockjs.enabled() {
            let prefix = &self.sockjs.path;
            if !prefix.starts_with('/') || prefix.ends_with('/') {
                return bad("sockjs path must start with '/' and not end with '/'");
            }
            if *prefix == self.path || self.path.starts_with(&format!("{prefix}/")) {
                return bad("sockjs path must not contain the WebSocket path");
            }
            if self.sockjs.heartbeat.is_zero() || self.sockjs.disconnect_delay.is_zero() {
                return bad("sockjs heartbeat and disconnect_delay must be greater than 0");
            }
            if self.sockjs.response_limit == 0 {
                return bad("sockjs response_limit must be greater than 0");
            }
        }
        Ok(())
    }

    /// Largest WebSocket message accepted: a STOMP frame plus room for trailing heart-beat EOLs.
    pub(crate) fn max_ws_message_size(&self) -> usize {
        self.max_frame_size + 4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        ServerConfig::default().validate().unwrap();
    }

    #[test]
    fn zero_limits_are_rejected_by_name() {
        let cfg = ServerConfig {
            max_queue_depth: 0,
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("max_queue_depth"), "{err}");
        let cfg = ServerConfig {
            path: "ws".into(),
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        for level in [0, 10] {
            let cfg = ServerConfig {
                deflate_level: level,
                ..Default::default()
            };
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains("deflate_level"), "{err}");
        }
    }
}
