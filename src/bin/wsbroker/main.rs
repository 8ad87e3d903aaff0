//! The `wsbroker` command: a standalone STOMP broker over WebSocket (and optionally TCP).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

mod settings;

use clap::{CommandFactory, FromArgMatches};
use wsbroker::{
    AuthConfig, AuthKey, JwtAlgorithm, PemSource, RawBehaviour, RawEndpointOptions, Server,
    ServerConfig, TlsConfig,
};

/// An embeddable WebSocket/STOMP 1.0–1.2 message broker, run standalone.
///
/// Every flag can also be set in a TOML file (`--config FILE`; the keys are the long names,
/// e.g. `tcp-listen = "127.0.0.1:61615"`) or by an environment variable (`WSBROKER_` and the
/// name in capitals, e.g. `WSBROKER_TCP_LISTEN`; lists separated by spaces). A flag wins over
/// the environment, the environment over the file, the file over the default.
#[derive(clap::Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Read settings from this TOML file (below flags and WSBROKER_* variables).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (with where each value came from; secrets masked)
    /// and exit.
    #[arg(long)]
    print_config: bool,
    /// WebSocket listen address (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:61614", value_name = "ADDR:PORT")]
    listen: SocketAddr,
    /// HTTP path of the WebSocket endpoint.
    #[arg(long, default_value = "/ws")]
    path: String,
    /// Also accept STOMP over plain TCP on this address (for native clients such as stomp.py).
    #[arg(long, value_name = "ADDR:PORT")]
    tcp_listen: Option<SocketAddr>,
    /// Destination prefix handed to application handlers (repeatable). The standalone binary
    /// has no handlers, so SENDs there are answered with an ERROR.
    #[arg(long, value_name = "PREFIX")]
    app_prefix: Vec<String>,
    /// Heart-beat interval the server offers and asks for, in ms (0 disables).
    #[arg(long, value_name = "MS", default_value_t = millis(defaults().session.heartbeat_send))]
    heartbeat: u64,
    /// Largest accepted STOMP frame in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().frame_limits.max_frame_size)]
    max_frame_size: usize,
    /// Allowed Origin for browser clients (repeatable; none given allows every origin).
    #[arg(long, value_name = "ORIGIN")]
    allowed_origin: Vec<String>,
    /// Most simultaneous connections.
    #[arg(long, value_name = "N", default_value_t = defaults().max_connections)]
    max_connections: usize,
    /// Most simultaneous connections from one client IP address (clients behind one proxy or
    /// NAT share an address: lower it only for direct exposure).
    #[arg(long, value_name = "N", default_value_t = defaults().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Hard cap of frames queued for one connection: past it, it is a slow consumer.
    #[arg(long, value_name = "N", default_value_t = defaults().broker.max_outbound_messages)]
    max_outbound_messages: usize,
    /// Hard cap of bytes queued for one connection: past it, it is a slow consumer (a bigger
    /// message still reaches a client that keeps up).
    #[arg(long, value_name = "BYTES", default_value_t = defaults().broker.max_outbound_bytes)]
    max_outbound_bytes: usize,
    /// Flow control: above this many queued bytes, the clients publishing into a connection's
    /// queue are paused until it drains to --outbound-low-watermark.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().broker.outbound_high_watermark)]
    outbound_high_watermark: usize,
    /// Flow control: a paused queue resumes its publishers at or below this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().broker.outbound_low_watermark)]
    outbound_low_watermark: usize,
    /// A paused queue from which nothing is written for this long belongs to a stuck client,
    /// which is then disconnected as a slow consumer (ms).
    #[arg(long, value_name = "MS", default_value_t = millis(defaults().broker.slow_consumer_timeout))]
    slow_consumer_timeout: u64,
    /// Do not accept WebSocket compression (permessage-deflate) offers.
    #[arg(long)]
    no_permessage_deflate: bool,
    /// With compression negotiated, send messages smaller than this uncompressed.
    #[arg(long, value_name = "BYTES", default_value_t = defaults().deflate_threshold)]
    deflate_threshold: usize,
    /// Compression level of outbound messages: 1 (fastest) to 9 (smallest).
    #[arg(long, value_name = "1-9", value_parser = clap::value_parser!(u32).range(1..=9),
          default_value_t = defaults().deflate_level)]
    deflate_level: u32,
    /// Worker threads (0 = one per CPU).
    #[arg(long, value_name = "N", default_value_t = defaults().worker_threads)]
    workers: usize,
    /// PEM certificate chain: turns TLS on for every listener (`wss://`, and TLS on the TCP
    /// listener). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the --tls-cert certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA bundle: clients must present a certificate signed by one of these CAs.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Raw WebSocket endpoint (no STOMP) at PATH where every message a client sends goes to
    /// every other client connected on PATH, same opcode (repeatable).
    #[arg(long, value_name = "PATH")]
    raw_broadcast: Vec<String>,
    /// Raw WebSocket endpoint (no STOMP) at PATH that sends every message back to its sender
    /// (repeatable).
    #[arg(long, value_name = "PATH")]
    raw_echo: Vec<String>,
    /// Also serve every --raw-broadcast and --raw-echo endpoint over SockJS, with the
    /// endpoint's path as the SockJS prefix (for sockjs-client with a protocol of its own).
    #[arg(long)]
    raw_sockjs: bool,
    /// Serve the services the SockJS protocol's test suite expects: echo at /echo (response
    /// limit 4096), /close (every session closed with 3000 "Go away!" right after it opens),
    /// /disabled_websocket_echo (no websocket transport) and /cookie_needed_echo (JSESSIONID).
    #[arg(long)]
    sockjs_test_services: bool,
    /// URL prefix of the SockJS endpoint (SockJS 0.3 over HTTP and WebSocket); empty disables it.
    #[arg(long, default_value = "/sockjs", value_name = "PATH")]
    sockjs_path: String,
    /// Serve the files of this directory over HTTP on the WebSocket listener.
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<PathBuf>,
    /// Keep a message history for the destinations matching PATTERN (repeatable; the first
    /// matching rule applies): `PATTERN=SIZE[,TTL][,last]`, e.g. `/topic/chat/**=1000,10m`.
    /// Their MESSAGEs carry x-offset/x-epoch and a SUBSCRIBE may resume with x-since/x-epoch
    /// or ask for a backlog with x-last:N; `last` also sends the newest message on every
    /// SUBSCRIBE. TTL units: ms, s, m, h, d.
    #[arg(long, value_name = "RULE", value_parser = wsbroker::HistoryRule::parse)]
    history: Vec<wsbroker::HistoryRule>,
    /// Most destinations with a history held at once: past it, the least recently used
    /// stream is dropped (its next message starts a new epoch).
    #[arg(long, value_name = "N", default_value_t = defaults().broker.history_max_destinations)]
    history_max_destinations: usize,
    /// Persist queues and histories in this directory (an embedded store, created if
    /// missing): they survive a restart, even kill -9, and a RECEIPT for a SEND to a queue
    /// or history destination comes once the message is on disk. In memory when unset.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// When the store syncs to disk: `every-message` (each commit at once; concurrent
    /// messages share it) or a window such as `5ms` (messages collected and synced together;
    /// receipts later by up to the window).
    #[arg(long, value_name = "POLICY", default_value = "every-message", value_parser = wsbroker::FsyncPolicy::parse)]
    fsync: wsbroker::FsyncPolicy,
    /// Cluster mode on Redis: share the destination space with every node on this Redis
    /// (`redis://[:password@]host[:port][/db]`, `rediss://` for TLS; several servers
    /// comma-separated, e.g. a Redis Cluster's nodes: the next is tried when one fails; or
    /// `redis+sentinel://HOST:PORT[,...]/SERVICE[/db]`: the master Sentinel names). Topics, /user
    /// destinations and host publishes reach the whole cluster; each node fans out locally
    /// over one engine link. Queues, histories and presence stay per node (docs/cluster.md).
    #[arg(long, value_name = "URL", conflicts_with = "cluster_nats")]
    cluster_redis: Option<String>,
    /// Cluster mode on NATS (`nats://host[:port]`, several servers comma-separated); as
    /// --cluster-redis.
    #[arg(long, value_name = "URL")]
    cluster_nats: Option<String>,
    /// This node's name in cluster mode, for logs and metrics [default: host name and
    /// process id].
    #[arg(long, value_name = "NAME")]
    node_id: Option<String>,
    /// Prefix of the cluster's engine channels or subjects: clusters sharing an engine use
    /// different prefixes.
    #[arg(long, value_name = "PREFIX", default_value = "wsbroker")]
    cluster_prefix: String,
    /// Every subscriber of the destinations matching PATTERN is a presence member (repeatable);
    /// a SUBSCRIBE with x-presence:true is one anywhere and also gets a snapshot and join/leave
    /// MESSAGEs.
    #[arg(long, value_name = "PATTERN")]
    presence: Vec<String>,
    /// Above this many members a destination sends no join/leave MESSAGEs or snapshots (its
    /// count is still kept).
    #[arg(long, value_name = "N", default_value_t = defaults().broker.presence_event_limit)]
    presence_event_limit: usize,
    /// Log level: off, error, warn, info, debug or trace, or directives such as
    /// "info,wsbroker=debug" [default: RUST_LOG when set, else info].
    #[arg(long, value_name = "LEVEL")]
    log: Option<String>,
    /// Log line format: text (for people) or json (one JSON object a line, for log shippers).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(flatten)]
    relay: RelayArgs,
    #[command(flatten)]
    jwt: JwtArgs,
}

/// The token key source: at most one.
#[derive(clap::Args, Debug)]
#[group(id = "jwt_key", multiple = false)]
struct JwtKeyArgs {
    /// JWT authentication with this HMAC secret (the file's bytes; one trailing newline is
    /// removed).
    #[arg(long, value_name = "FILE", alias = "jwt-hs256-secret-file")]
    jwt_hmac_secret_file: Option<PathBuf>,
    /// JWT authentication with this RSA, EC (P-256/P-384) or Ed25519 public key (PEM).
    #[arg(long, value_name = "FILE", alias = "jwt-public-key")]
    jwt_public_key_file: Option<PathBuf>,
    /// JWT authentication with the keys of this JWKS file, reloaded when it changes.
    #[arg(long, value_name = "FILE", alias = "jwt-jwks")]
    jwt_jwks_file: Option<PathBuf>,
}

/// Token (JWT) authentication: one key source turns it on (see docs/authentication.md).
#[derive(clap::Args, Debug)]
struct JwtArgs {
    #[command(flatten)]
    key: JwtKeyArgs,
    /// Accepted algorithms, comma-separated (HS256 ... EdDSA); default: inferred from the key.
    #[arg(
        long,
        value_name = "ALGS",
        alias = "jwt-alg",
        value_delimiter = ',',
        requires = "jwt_key"
    )]
    jwt_algorithms: Vec<String>,
    /// Required `iss` claim.
    #[arg(long, value_name = "ISSUER", requires = "jwt_key")]
    jwt_issuer: Option<String>,
    /// Required `aud` claim (tokens with an `aud` are refused when none is configured).
    #[arg(long, value_name = "AUDIENCE", requires = "jwt_key")]
    jwt_audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = jwt_defaults().leeway.as_secs())]
    jwt_leeway: u64,
    /// Cookie carrying the token on WebSocket and SockJS requests.
    #[arg(long, value_name = "NAME", requires = "jwt_key")]
    jwt_cookie: Option<String>,
    /// Query parameter carrying the token on upgrade and SockJS requests ("" reads none).
    #[arg(long, value_name = "NAME", default_value_t = jwt_defaults().query_param)]
    jwt_query_param: String,
    /// Refuse clients without a token (else they connect with the --allow-* permissions).
    #[arg(long, requires = "jwt_key")]
    jwt_required: bool,
    /// Destination a client SENDs a new token to, to refresh its session.
    #[arg(long, value_name = "DEST", default_value_t = jwt_defaults().refresh_destination)]
    jwt_refresh_destination: String,
    /// Largest token accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = jwt_defaults().max_token_size)]
    jwt_max_token_size: usize,
    /// Pattern tokens without `wsb.sub`/`wsb.pub` claims may subscribe to (repeatable;
    /// default `**`, everything).
    #[arg(long, value_name = "PATTERN", requires = "jwt_key")]
    jwt_default_subscribe: Vec<String>,
    /// Pattern tokens without `wsb.sub`/`wsb.pub` claims may publish to (repeatable; default
    /// `**`, everything).
    #[arg(long, value_name = "PATTERN", requires = "jwt_key")]
    jwt_default_publish: Vec<String>,
    /// Pattern sessions without a token may subscribe to (repeatable; default: none).
    #[arg(long, value_name = "PATTERN", requires = "jwt_key")]
    allow_subscribe: Vec<String>,
    /// Pattern sessions without a token may publish to (repeatable; default: none).
    #[arg(long, value_name = "PATTERN", requires = "jwt_key")]
    allow_publish: Vec<String>,
    /// Private destinations (repeatable pattern): a SUBSCRIBE needs a subscription token in an
    /// `x-sub-token` header (`sub` = the session's user, `wsb.dest` = the destination); its
    /// expiry ends that subscription only.
    #[arg(long, value_name = "PATTERN", requires = "jwt_key")]
    jwt_private: Vec<String>,
}

/// The library's token-authentication defaults.
fn jwt_defaults() -> AuthConfig {
    AuthConfig::new(AuthKey::HmacSecret(Vec::new()))
}

impl JwtArgs {
    /// The authentication settings, reading the key file; `None` without a key flag.
    fn config(&self) -> Result<Option<AuthConfig>, String> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        let key = if let Some(path) = &self.key.jwt_hmac_secret_file {
            AuthKey::HmacSecret(settings::read_secret(path)?)
        } else if let Some(path) = &self.key.jwt_public_key_file {
            AuthKey::PublicKeyPem(read(path)?)
        } else if let Some(path) = &self.key.jwt_jwks_file {
            AuthKey::JwksFile(path.clone())
        } else {
            return Ok(None);
        };
        let mut config = AuthConfig::new(key);
        for name in &self.jwt_algorithms {
            config.algorithms.push(
                JwtAlgorithm::parse(name)
                    .ok_or_else(|| format!("--jwt-algorithms: unknown algorithm {name:?}"))?,
            );
        }
        config.issuer.clone_from(&self.jwt_issuer);
        config.audience.clone_from(&self.jwt_audience);
        config.leeway = Duration::from_secs(self.jwt_leeway);
        config.cookie.clone_from(&self.jwt_cookie);
        config.query_param.clone_from(&self.jwt_query_param);
        config.required = self.jwt_required;
        config
            .refresh_destination
            .clone_from(&self.jwt_refresh_destination);
        config.max_token_size = self.jwt_max_token_size;
        if !self.jwt_default_subscribe.is_empty() {
            config.token_defaults.subscribe = self.jwt_default_subscribe.clone();
        }
        if !self.jwt_default_publish.is_empty() {
            config.token_defaults.publish = self.jwt_default_publish.clone();
        }
        config.anonymous.subscribe = self.allow_subscribe.clone();
        config.anonymous.publish = self.allow_publish.clone();
        config.private.clone_from(&self.jwt_private);
        Ok(Some(config))
    }
}

/// Relay mode: relayed destinations live on an external STOMP broker (RabbitMQ, ActiveMQ).
#[derive(clap::Args, Debug)]
struct RelayArgs {
    /// Relay mode: the external broker's STOMP address, e.g. 127.0.0.1:61613.
    #[arg(long, value_name = "HOST:PORT")]
    relay: Option<String>,
    /// Login of the client sessions' broker connections.
    #[arg(long, default_value = "guest", requires = "relay")]
    relay_login: String,
    /// Passcode of the client sessions' broker connections (visible in `ps`: prefer
    /// --relay-passcode-file or WSBROKER_RELAY_PASSCODE).
    #[arg(long, default_value = "guest", requires = "relay")]
    relay_passcode: String,
    /// Read the client sessions' broker passcode from this file (one trailing newline is
    /// ignored).
    #[arg(
        long,
        value_name = "FILE",
        requires = "relay",
        conflicts_with = "relay_passcode"
    )]
    relay_passcode_file: Option<PathBuf>,
    /// Login of the shared system connection (host publishes and subscriptions).
    #[arg(long, default_value = "guest", requires = "relay")]
    relay_system_login: String,
    /// Passcode of the shared system connection.
    #[arg(long, default_value = "guest", requires = "relay")]
    relay_system_passcode: String,
    /// Read the system connection's passcode from this file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "relay",
        conflicts_with = "relay_system_passcode"
    )]
    relay_system_passcode_file: Option<PathBuf>,
    /// `host` header of broker CONNECTs (RabbitMQ: the virtual host); default: none, so the
    /// broker uses its default virtual host.
    #[arg(long, value_name = "VHOST", requires = "relay")]
    relay_vhost: Option<String>,
    /// Heart-beat interval on broker connections, in ms, both directions (0 disables).
    #[arg(long, default_value_t = 10_000, value_name = "MS", requires = "relay")]
    relay_heartbeat: u64,
    /// A relayed destination prefix (repeatable; default /topic /queue /exchange /amq/queue
    /// /temp-queue /reply-queue).
    #[arg(long, value_name = "PREFIX", requires = "relay")]
    relay_prefix: Vec<String>,
    /// Reconnect a client session's broker connection and re-subscribe when it drops,
    /// instead of closing the client.
    #[arg(long, requires = "relay")]
    relay_session_restore: bool,
}

impl RelayArgs {
    fn config(&self) -> Result<Option<wsbroker::RelayConfig>, String> {
        let Some(broker) = self.relay.clone() else {
            return Ok(None);
        };
        let mut config = wsbroker::RelayConfig::new(broker);
        config.login.clone_from(&self.relay_login);
        config.passcode =
            settings::passcode(&self.relay_passcode, self.relay_passcode_file.as_deref())?;
        config.system_login.clone_from(&self.relay_system_login);
        config.system_passcode = settings::passcode(
            &self.relay_system_passcode,
            self.relay_system_passcode_file.as_deref(),
        )?;
        config.virtual_host.clone_from(&self.relay_vhost);
        config.heartbeat_send = Duration::from_millis(self.relay_heartbeat);
        config.heartbeat_receive = Duration::from_millis(self.relay_heartbeat);
        config.session_restore = self.relay_session_restore;
        if !self.relay_prefix.is_empty() {
            config.prefixes = self.relay_prefix.clone();
        }
        Ok(Some(config))
    }
}

/// The library's defaults, which every flag's default is taken from (so `--help` shows them).
fn defaults() -> ServerConfig {
    ServerConfig::default()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The raw endpoints the flags ask for, in flag order.
fn raw_endpoints(args: &Args) -> Vec<(&str, RawBehaviour)> {
    let broadcast = args
        .raw_broadcast
        .iter()
        .map(|p| (p.as_str(), RawBehaviour::Broadcast));
    let echo = args
        .raw_echo
        .iter()
        .map(|p| (p.as_str(), RawBehaviour::Echo));
    broadcast.chain(echo).collect()
}

/// The SockJS protocol test suite's services (sockjs-protocol's `sockjs-protocol.py`).
fn sockjs_test_services() -> Vec<(String, RawEndpointOptions)> {
    let service = |path: &str, behaviour, sockjs: wsbroker::RawSockJs| {
        let options = RawEndpointOptions {
            behaviour,
            sockjs: Some(sockjs),
            ..RawEndpointOptions::default()
        };
        (path.to_string(), options)
    };
    let sockjs = wsbroker::RawSockJs::default;
    vec![
        service("/echo", RawBehaviour::Echo, {
            let mut s = sockjs();
            s.response_limit = Some(4096);
            s
        }),
        service("/close", RawBehaviour::Host, sockjs()),
        service("/disabled_websocket_echo", RawBehaviour::Echo, {
            let mut s = sockjs();
            s.websocket = false;
            s
        }),
        service("/cookie_needed_echo", RawBehaviour::Echo, {
            let mut s = sockjs();
            s.cookie_needed = true;
            s
        }),
    ]
}

/// The host side of `/close`: every session is closed with 3000 "Go away!" once it opened.
fn close_test_sessions(server: &Server) {
    let mut events = Vec::new();
    loop {
        events.clear();
        if server
            .poll_events(&mut events, 256, Duration::from_millis(200))
            .is_err()
        {
            return; // stopped
        }
        for event in &events {
            if let wsbroker::Event::RawOpen(open) = event
                && &*open.endpoint == "/close"
            {
                let _ = server.raw_close(open.conn, 3000, "Go away!");
            }
        }
    }
}

fn config_from(args: &Args) -> Result<ServerConfig, String> {
    let mut config = ServerConfig::default();
    config.listen = args.listen;
    config.path.clone_from(&args.path);
    config.tcp_listen = args.tcp_listen;
    config.allowed_origins.clone_from(&args.allowed_origin);
    config.session.heartbeat_send = Duration::from_millis(args.heartbeat);
    config.session.heartbeat_receive = Duration::from_millis(args.heartbeat);
    config.worker_threads = args.workers;
    config.permessage_deflate = !args.no_permessage_deflate;
    config.deflate_threshold = args.deflate_threshold;
    config.deflate_level = args.deflate_level;
    for prefix in &args.app_prefix {
        config.session.add_app_prefix(prefix.clone());
    }
    config.sockjs.path = args.sockjs_path.clone();
    config.static_dir = args.static_dir.clone();
    config.frame_limits.max_frame_size = args.max_frame_size;
    config.max_connections = args.max_connections;
    config.max_connections_per_ip = args.max_connections_per_ip;
    config.broker.max_outbound_messages = args.max_outbound_messages;
    config.broker.max_outbound_bytes = args.max_outbound_bytes;
    config.broker.outbound_high_watermark = args.outbound_high_watermark;
    config.broker.outbound_low_watermark = args.outbound_low_watermark;
    config.broker.slow_consumer_timeout = Duration::from_millis(args.slow_consumer_timeout);
    config.broker.history.clone_from(&args.history);
    config.broker.history_max_destinations = args.history_max_destinations;
    config.store = args.data_dir.as_ref().map(|dir| {
        let mut store = wsbroker::StoreConfig::new(dir);
        store.fsync = args.fsync;
        store
    });
    config.broker.presence.clone_from(&args.presence);
    config.broker.presence_event_limit = args.presence_event_limit;
    let engine = match (&args.cluster_redis, &args.cluster_nats) {
        (Some(url), _) => Some(wsbroker::ClusterEngine::Redis(url.clone())),
        (None, Some(url)) => Some(wsbroker::ClusterEngine::Nats(url.clone())),
        (None, None) => None,
    };
    config.cluster = engine.map(|engine| {
        let mut cluster = wsbroker::ClusterConfig::new(engine);
        if let Some(node) = &args.node_id {
            cluster.node_id.clone_from(node);
        }
        cluster.prefix.clone_from(&args.cluster_prefix);
        cluster
    });
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let mut tls = TlsConfig::new(cert.clone(), key.clone());
        tls.client_ca_pem = args.tls_client_ca.clone().map(PemSource::File);
        config.tls = Some(tls);
    }
    config.relay = args.relay.config()?;
    config.auth = args.jwt.config()?;
    Ok(config)
}

/// Raises the soft open-file limit to the hard limit (each connection is a descriptor, and
/// soft limits are often 1,024). Returns the limit before and after, if it could be read.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 on every target")]
fn raise_nofile_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a local, initialised struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above. Failure (e.g. a hard limit the kernel caps lower) keeps the old one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Some((before as u64, lim.rlim_cur as u64))
}

#[cfg(not(unix))]
fn raise_nofile_limit() -> Option<(u64, u64)> {
    None
}

/// Ctrl-C and SIGTERM, caught from the moment this exists: made before the listening lines
/// are printed, so a script that reads them and signals at once gets a graceful stop, never the
/// default action (termination by the signal).
struct StopSignals {
    runtime: tokio::runtime::Runtime,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn catch() -> std::io::Result<StopSignals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let entered = runtime.enter();
            let term = signal(SignalKind::terminate())?;
            let interrupt = signal(SignalKind::interrupt())?;
            drop(entered);
            Ok(StopSignals {
                runtime,
                term,
                interrupt,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals { runtime })
    }

    /// Waits for one of them.
    fn wait(mut self) {
        self.runtime.block_on(async {
            #[cfg(unix)]
            tokio::select! {
                _ = self.term.recv() => {}
                _ = self.interrupt.recv() => {}
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
    }
}

/// The format of the log lines on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The log filter and where it came from: the flag wins, then `RUST_LOG`, then "info".
fn log_spec(flag: Option<&str>, env: Option<String>) -> (String, &'static str) {
    match (flag, env) {
        (Some(flag), _) => (flag.to_string(), "--log"),
        (None, Some(env)) if !env.trim().is_empty() => (env, "RUST_LOG"),
        _ => ("info".to_string(), "--log"),
    }
}

/// A filter whose every directive names a known level ("debug", "wsbroker=debug"), so a
/// misspelt level is an error instead of a target that matches nothing.
fn log_filter(spec: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(format!(
                "'{level}' is not a level (off, error, warn, info, debug, trace)"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(spec).map_err(|e| e.to_string())
}

/// Parses the flags over the environment and the config file; `Err` is the exit code.
fn parse_settings() -> Result<Args, ExitCode> {
    let command = Args::command();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let layered =
        settings::layer(&command, argv, &|name| std::env::var(name).ok()).map_err(|e| {
            eprintln!("wsbroker: {e}");
            ExitCode::from(2)
        })?;
    let matches = match command.clone().try_get_matches_from(&layered.argv) {
        Ok(matches) => matches,
        Err(e) => {
            let _ = e.print();
            let elsewhere: Vec<String> = layered
                .sources
                .iter()
                .filter(|(_, s)| matches!(s, settings::Source::Env(_) | settings::Source::File))
                .map(|(key, source)| format!("{key} ({source})"))
                .collect();
            if !elsewhere.is_empty() && e.use_stderr() {
                eprintln!(
                    "note: also set outside the command line: {}",
                    elsewhere.join(", ")
                );
            }
            return Err(ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)));
        }
    };
    let args = Args::from_arg_matches(&matches).map_err(|e| {
        let _ = e.print();
        ExitCode::from(2)
    })?;
    if args.print_config {
        print!("{}", settings::render(&command, &matches, &layered.sources));
        return Err(ExitCode::SUCCESS);
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_settings() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (spec, source) = log_spec(args.log.as_deref(), std::env::var("RUST_LOG").ok());
    let filter = match log_filter(&spec) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("wsbroker: invalid {source} value '{spec}': {e}");
            return ExitCode::from(2);
        }
    };
    // Colours only for a person at a terminal, never into a file or a pipe.
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => log.init(),
        LogFormat::Json => log.json().with_ansi(false).init(),
    }

    let config = match config_from(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("wsbroker: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some((before, after)) = raise_nofile_limit() {
        if after > before {
            tracing::info!("open-file limit raised from {before} to {after}");
        }
        // Listeners, the runtime and the log need a few descriptors besides the connections.
        if after < config.max_connections as u64 + 64 {
            tracing::warn!(
                "open-file limit {after} is below max_connections ({}) + 64: accepts fail \
                 once descriptors run out",
                config.max_connections
            );
        }
    }
    let server = match Server::new(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("wsbroker: {e}");
            return ExitCode::from(2);
        }
    };
    let sockjs = args.raw_sockjs.then(wsbroker::RawSockJs::default);
    let mut endpoints: Vec<(String, RawEndpointOptions)> = raw_endpoints(&args)
        .into_iter()
        .map(|(path, behaviour)| {
            let options = RawEndpointOptions {
                behaviour,
                sockjs: sockjs.clone(),
                ..RawEndpointOptions::default()
            };
            (path.to_string(), options)
        })
        .collect();
    if args.sockjs_test_services {
        endpoints.extend(sockjs_test_services());
        if let Err(e) = server.enable_events(wsbroker::EventQueueConfig::default()) {
            eprintln!("wsbroker: {e}");
            return ExitCode::from(2);
        }
    }
    for (path, options) in &endpoints {
        if let Err(e) = server.add_raw_endpoint(path, options.clone()) {
            eprintln!("wsbroker: raw endpoint {path}: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = server.start() {
        eprintln!("wsbroker: cannot start: {e}");
        return ExitCode::FAILURE;
    }
    let server = std::sync::Arc::new(server);
    if args.sockjs_test_services {
        let host = server.clone();
        std::thread::spawn(move || close_test_sessions(&host));
    }
    let signals = match StopSignals::catch() {
        Ok(signals) => Some(signals),
        Err(e) => {
            eprintln!("wsbroker: cannot wait for signals: {e}");
            None
        }
    };
    // Machine-readable lines (tests and scripts read the real ports from them).
    let mut out = std::io::stdout().lock();
    // With TLS: `websocket wss://...` and `tcp+tls ADDR`, so a plain-text client's parser
    // never picks up a TLS endpoint by mistake.
    let (ws_scheme, tcp_label) = if server.config().tls.is_some() {
        ("wss", "tcp+tls")
    } else {
        ("ws", "tcp")
    };
    if let Some(addr) = server.local_addr() {
        let _ = writeln!(
            out,
            "wsbroker listening websocket {ws_scheme}://{addr}{}",
            args.path
        );
        if server.config().sockjs.enabled() {
            let http_scheme = if ws_scheme == "wss" { "https" } else { "http" };
            let prefix = &server.config().sockjs.path;
            let _ = writeln!(
                out,
                "wsbroker listening sockjs {http_scheme}://{addr}{prefix}"
            );
        }
        for (path, options) in &endpoints {
            let kind = options.behaviour.name();
            let _ = writeln!(
                out,
                "wsbroker listening raw {ws_scheme}://{addr}{path} ({kind})"
            );
            if options.sockjs.is_some() {
                let http_scheme = if ws_scheme == "wss" { "https" } else { "http" };
                let _ = writeln!(
                    out,
                    "wsbroker listening raw-sockjs {http_scheme}://{addr}{path} ({kind})"
                );
            }
        }
    }
    if let Some(addr) = server.tcp_local_addr() {
        let _ = writeln!(out, "wsbroker listening {tcp_label} {addr}");
    }
    let _ = out.flush();
    drop(out);

    if let Some(signals) = signals {
        signals.wait();
    }
    match server.stop(Duration::from_secs(5)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsbroker: stop failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn log_flag_wins_over_rust_log_and_bad_levels_are_errors() {
        assert_eq!(log_spec(Some("warn"), Some("debug".into())).0, "warn");
        assert_eq!(
            log_spec(None, Some("debug".into())),
            ("debug".into(), "RUST_LOG")
        );
        assert_eq!(log_spec(None, None).0, "info");
        assert_eq!(log_spec(None, Some(" ".into())).0, "info");
        for good in [
            "info",
            "DEBUG",
            "off",
            "info,wsbroker=trace",
            "wsbroker::server=warn",
        ] {
            assert!(log_filter(good).is_ok(), "{good}");
        }
        for bad in ["verbose", "info,wsbroker=loud", "inf"] {
            let e = log_filter(bad).expect_err(bad);
            assert!(e.contains("is not a level"), "{bad}: {e}");
        }
    }

    /// Every flag's default (what `--help` prints) is the library's: no flags give exactly
    /// `ServerConfig::default()`.
    #[test]
    fn no_flags_give_the_library_defaults() {
        let args = Args::try_parse_from(["wsbroker"]).unwrap();
        assert_eq!(config_from(&args).unwrap(), ServerConfig::default());
    }

    #[test]
    fn jwt_flags_build_the_auth_config() {
        let dir = std::env::temp_dir().join(format!("wsb-cli-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let args = Args::try_parse_from([
            "wsbroker",
            "--jwt-hmac-secret-file",
            secret.to_str().unwrap(),
            "--jwt-algorithms",
            "HS256,HS512",
            "--jwt-issuer",
            "iss",
            "--jwt-leeway",
            "5",
            "--jwt-required",
            "--allow-subscribe",
            "/topic/public.**",
        ])
        .unwrap();
        let auth = config_from(&args).unwrap().auth.unwrap();
        assert_eq!(auth.key, AuthKey::HmacSecret(b"s3cret".to_vec()));
        assert_eq!(auth.algorithms, [JwtAlgorithm::HS256, JwtAlgorithm::HS512]);
        assert_eq!(auth.issuer.as_deref(), Some("iss"));
        assert_eq!(auth.leeway, Duration::from_secs(5));
        assert!(auth.required);
        assert_eq!(auth.anonymous.subscribe, ["/topic/public.**"]);
        assert_eq!(auth.token_defaults, wsbroker::Permissions::all());
        // Defaults are the library's; two key sources are refused.
        let args = Args::try_parse_from(["wsbroker", "--jwt-jwks-file", "/k.json"]).unwrap();
        let mut expected = AuthConfig::new(AuthKey::JwksFile("/k.json".into()));
        expected.leeway = jwt_defaults().leeway;
        assert_eq!(config_from(&args).unwrap().auth, Some(expected));
        assert!(
            Args::try_parse_from([
                "wsbroker",
                "--jwt-jwks-file",
                "a",
                "--jwt-public-key-file",
                "b"
            ])
            .is_err()
        );
        assert!(Args::try_parse_from(["wsbroker", "--jwt-required"]).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn history_rules_parse_in_flag_order() {
        let args = Args::try_parse_from([
            "wsbroker",
            "--history",
            "/topic/chat/**=1000,10m",
            "--history",
            "/topic/prices/*=1,last",
        ])
        .unwrap();
        let config = config_from(&args).unwrap();
        let rules = &config.broker.history;
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].pattern, "/topic/chat/**");
        assert_eq!(rules[0].size, 1000);
        assert_eq!(rules[0].ttl, Some(Duration::from_secs(600)));
        assert!(rules[1].last_value);
        assert!(Args::try_parse_from(["wsbroker", "--history", "/topic/x=many"]).is_err());
    }

    #[test]
    fn help_shows_the_real_defaults() {
        let help = <Args as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        let config = ServerConfig::default();
        for (flag, default) in [
            (
                "--max-connections-per-ip",
                config.max_connections_per_ip.to_string(),
            ),
            ("--max-connections ", config.max_connections.to_string()),
            (
                "--max-frame-size",
                config.frame_limits.max_frame_size.to_string(),
            ),
            ("--deflate-threshold", config.deflate_threshold.to_string()),
            (
                "--max-outbound-bytes",
                config.broker.max_outbound_bytes.to_string(),
            ),
            ("--slow-consumer-timeout", "10000".to_string()),
        ] {
            let at = help
                .find(flag)
                .unwrap_or_else(|| panic!("{flag} in --help"));
            let section = &help[at..];
            let end = section[2..].find("\n  -").map_or(section.len(), |i| i + 2);
            assert!(
                section[..end].contains(&format!("[default: {default}]")),
                "{flag}: {}",
                &section[..end]
            );
        }
    }
}
