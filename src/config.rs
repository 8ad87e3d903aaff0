//! Server configuration: every limit has a safe default and is checked by [`ServerConfig::validate`].
//!
//! [`ServerConfig`] composes the configurations each layer owns — [`FrameLimits`] (the STOMP
//! codec), [`SessionConfig`] (the session state machine), [`BrokerConfig`] (routing, queues,
//! outbound bounds) and [`RelayConfig`] (relay mode) — next to the transport's own settings
//! (listeners, timeouts, connection limits, compression, TLS, SockJS), which are its top-level
//! fields. Lower layers receive only their part, never the whole `ServerConfig`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::AuthConfig;
use crate::broker::config::BrokerConfig;
use crate::cluster::ClusterConfig;
use crate::error::{Error, Result};
use crate::relay::RelayConfig;
use crate::session::config::SessionConfig;
use crate::stomp::FrameLimits;
use crate::store::StoreConfig;

/// Everything a [`crate::Server`] needs to know before it starts.
///
/// `ServerConfig::default()` is a working broker on `127.0.0.1:61614` at path `/ws`
/// with bounded queues, heart-beats and timeouts on.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// WebSocket listen address; port 0 picks a free port (read it back with `Server::local_addr`).
    pub listen: SocketAddr,
    /// HTTP path of the WebSocket endpoint.
    pub path: String,
    /// Plain-TCP STOMP listener (for native clients such as stomp.py); off when `None`.
    pub tcp_listen: Option<SocketAddr>,
    /// Allowed `Origin` values (`scheme://host[:port]`); empty allows every origin.
    pub allowed_origins: Vec<String>,
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
    /// Most simultaneous connections over all listeners; more are refused at accept.
    pub max_connections: usize,
    /// Most simultaneous connections from one client IP address over all listeners; more are
    /// refused at accept (WebSocket: HTTP 503, TCP: an ERROR frame) and counted in
    /// `connections_refused`. Clients behind one NAT or proxy share an address: raise it there.
    pub max_connections_per_ip: usize,
    /// Worker threads of the server's own tokio runtime; 0 means one per CPU.
    pub worker_threads: usize,
    /// Threads that run host code — application handlers, host-subscription callbacks, event
    /// callbacks, hook decisions — so that a slow or blocking callback never stalls the IO
    /// threads. One session's application messages (and one host subscription's messages)
    /// always run on the same thread, in order. Default 4.
    pub callback_threads: usize,
    /// Jobs those threads may have waiting in all. A connection handing over an application
    /// message waits for room (it is paused); a host-subscription message that finds its
    /// thread's queue full is dropped and counted (`Stats::dropped`), an event is dropped and
    /// logged. Default 65,536.
    pub callback_queue: usize,
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
    /// STOMP frame limits (largest frame, most headers, longest header line); the frame limit
    /// also bounds WebSocket messages. Default: 4 MiB, 64 headers, 8 KiB lines.
    pub frame_limits: FrameLimits,
    /// STOMP session settings: heart-beats, application prefixes, transaction limits.
    pub session: SessionConfig,
    /// Broker settings: destination prefixes, queue and subscription limits, outbound queue
    /// bounds and the slow-consumer policy.
    pub broker: BrokerConfig,
    /// Relay mode: destinations under the relayed prefixes live on an external STOMP broker
    /// (RabbitMQ, ActiveMQ) shared by several wsbroker instances; off when `None`.
    pub relay: Option<RelayConfig>,
    /// SockJS settings (prefix, heart-beat, disconnect delay, response limit, ...).
    pub sockjs: SockJsConfig,
    /// Directory served as static files over HTTP on the WebSocket listener (paths that are
    /// neither the WebSocket endpoint, the SockJS prefix nor `/metrics`); off when `None`.
    pub static_dir: Option<PathBuf>,
    /// Token (JWT) authentication and per-destination permissions; off when `None` (the
    /// default). See `docs/authentication.md`.
    pub auth: Option<AuthConfig>,
    /// A durable store (`--data-dir`): queues and histories persist in it and survive a
    /// restart; in memory only when `None` (the default). See `docs/history.md`.
    pub store: Option<StoreConfig>,
    /// Cluster mode (`--cluster-redis` / `--cluster-nats`): this node shares its destination
    /// space with the other nodes on the same engine; a single node when `None` (the
    /// default). See `docs/cluster.md`.
    pub cluster: Option<ClusterConfig>,
}

/// SockJS (protocol 0.3.x) on the WebSocket listener, for browsers without WebSocket or
/// behind proxies that block it. The defaults are sockjs-node's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// How long the body of an `xhr_send` / `jsonp_send` request may take to arrive once its
    /// head is in; a slower one is answered 408. Default 10 s.
    pub request_body_timeout: Duration,
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
            request_body_timeout: Duration::from_secs(10),
        }
    }
}

impl SockJsConfig {
    /// Whether SockJS is served at all.
    pub fn enabled(&self) -> bool {
        !self.path.is_empty()
    }
}

/// Where a PEM document comes from: a file read when the server starts, or PEM bytes held
/// in memory (for hosts that keep keys out of the file system).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemSource {
    /// A PEM file, read when the server starts.
    File(PathBuf),
    /// PEM text held in memory.
    Pem(Vec<u8>),
}

impl PemSource {
    /// How error messages name this source: the path, or "in-memory PEM".
    pub fn describe(&self) -> String {
        match self {
            PemSource::File(path) => path.display().to_string(),
            PemSource::Pem(bytes) => format!("in-memory PEM ({} bytes)", bytes.len()),
        }
    }
}

/// Never prints PEM bytes (they may be a private key).
impl std::fmt::Debug for PemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemSource::File(path) => f.debug_tuple("File").field(path).finish(),
            PemSource::Pem(bytes) => write!(f, "Pem(<{} bytes>)", bytes.len()),
        }
    }
}

impl From<PathBuf> for PemSource {
    fn from(path: PathBuf) -> Self {
        PemSource::File(path)
    }
}

impl From<&std::path::Path> for PemSource {
    fn from(path: &std::path::Path) -> Self {
        PemSource::File(path.to_path_buf())
    }
}

/// TLS settings (rustls, TLS 1.2 and 1.3). When set, they apply to every listener.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// The server certificate first, then any intermediates (PEM).
    pub cert_chain_pem: PemSource,
    /// The private key of the first certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub private_key_pem: PemSource,
    /// PEM bundle of CA certificates; when set, every client must present a certificate
    /// signed by one of them (mutual TLS), and connections without one are refused.
    pub client_ca_pem: Option<PemSource>,
}

impl TlsConfig {
    /// TLS with the certificate chain and key in these PEM files (or other [`PemSource`]s),
    /// without client certificates.
    pub fn new(
        cert_chain_pem: impl Into<PemSource>,
        private_key_pem: impl Into<PemSource>,
    ) -> Self {
        TlsConfig {
            cert_chain_pem: cert_chain_pem.into(),
            private_key_pem: private_key_pem.into(),
            client_ca_pem: None,
        }
    }

    /// TLS with the certificate chain and key given as PEM text in memory.
    pub fn from_pem(
        cert_chain_pem: impl Into<Vec<u8>>,
        private_key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        TlsConfig::new(
            PemSource::Pem(cert_chain_pem.into()),
            PemSource::Pem(private_key_pem.into()),
        )
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 61614)),
            path: "/ws".into(),
            tcp_listen: None,
            allowed_origins: Vec::new(),
            ws_ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(70),
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            decision_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            // As many as the global limit: a proxy or NAT puts every client behind one
            // address, so the per-address limit is opt-in (lower it for direct exposure).
            max_connections_per_ip: 10_000,
            worker_threads: 0,
            callback_threads: 4,
            callback_queue: 65_536,
            tls: None,
            permessage_deflate: true,
            deflate_threshold: 256,
            deflate_level: crate::ws::deflate::DEFAULT_LEVEL,
            frame_limits: FrameLimits::default(),
            session: SessionConfig::default(),
            broker: BrokerConfig::default(),
            relay: None,
            sockjs: SockJsConfig::default(),
            static_dir: None,
            auth: None,
            store: None,
            cluster: None,
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
        let positive = [
            (self.frame_limits.max_frame_size, "max_frame_size"),
            (self.frame_limits.max_headers, "max_headers"),
            (self.frame_limits.max_header_length, "max_header_length"),
            (self.max_connections, "max_connections"),
            (self.max_connections_per_ip, "max_connections_per_ip"),
            (self.callback_threads, "callback_threads"),
            (self.callback_queue, "callback_queue"),
        ];
        for (value, name) in positive {
            if value == 0 {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be greater than 0"
                )));
            }
        }
        self.session.validate().map_err(Error::InvalidConfig)?;
        self.broker.validate().map_err(Error::InvalidConfig)?;
        if self.frame_limits.max_frame_size > 1 << 30 {
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
        if let Some(relay) = &self.relay {
            relay.validate()?;
        }
        if let Some(store) = &self.store {
            store.validate().map_err(Error::InvalidConfig)?;
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate().map_err(Error::InvalidConfig)?;
        }
        if let Some(auth) = &self.auth {
            auth.validate().map_err(Error::InvalidConfig)?;
        }
        if self.sockjs.enabled() {
            let prefix = &self.sockjs.path;
            if !prefix.starts_with('/') || prefix.ends_with('/') {
                return bad("sockjs path must start with '/' and not end with '/'");
            }
            if *prefix == self.path || self.path.starts_with(&format!("{prefix}/")) {
                return bad("sockjs path must not contain the WebSocket path");
            }
            if self.sockjs.heartbeat.is_zero()
                || self.sockjs.disconnect_delay.is_zero()
                || self.sockjs.request_body_timeout.is_zero()
            {
                return bad(
                    "sockjs heartbeat, disconnect_delay and request_body_timeout must be greater than 0",
                );
            }
            if self.sockjs.response_limit == 0 {
                return bad("sockjs response_limit must be greater than 0");
            }
        }
        Ok(())
    }

    /// Largest WebSocket message accepted: a STOMP frame plus room for trailing heart-beat EOLs.
    pub(crate) fn max_ws_message_size(&self) -> usize {
        self.frame_limits.max_frame_size + 4096
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
        let mut cfg = ServerConfig::default();
        cfg.broker.max_queue_depth = 0;
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
