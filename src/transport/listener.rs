//! Accept loops for the WebSocket and plain-TCP STOMP listeners, and the per-connection
//! setup: connection limit, WebSocket upgrade handshake, writer, session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::connection::{Connection, Inbound, drive};
use super::deflate::OutboundDeflate;
use super::http::HttpRouter;
use super::raw_connection::{self, RawUpgrade};
use super::source::ReadSource;
use super::writer::{Framing, Writer};
use crate::broker::stats;
use crate::engine::Engine;
use crate::hooks::{TransportKind, UpgradeDecision};
use crate::raw::{RawEndpoint, RawHub};
use crate::session::Session;
use crate::sockjs::url::{Route, Transport};
use crate::ws::handshake::{
    Handshake, HandshakeConfig, HandshakeError, parse_upgrade, reject_response,
};

/// Keeps the open-connection gauge and the per-address count right however a connection
/// task ends.
pub(crate) struct ConnectionSlot {
    engine: Arc<Engine>,
    ip: IpAddr,
}

/// Why [`ConnectionSlot::acquire`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections` reached.
    Global,
    /// `max_connections_per_ip` reached for the peer's address.
    PerIp,
}

impl Refused {
    /// Counts the refusal (`Stats::connections_refused`) and gives its reason for the client.
    pub(crate) fn count(self, engine: &Engine) -> &'static str {
        stats::add(&engine.counters().connections_refused, 1);
        self.reason()
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refused::Global => "connection limit reached",
            Refused::PerIp => "too many connections from this address",
        }
    }
}

impl ConnectionSlot {
    /// Takes a slot, or refuses at the global or the per-address connection limit (the caller
    /// counts a refusal it carries out with [`Refused::count`]).
    pub(crate) fn acquire(engine: &Arc<Engine>, ip: IpAddr) -> Result<ConnectionSlot, Refused> {
        let counters = engine.counters();
        let open = counters
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let refused = if open as usize >= engine.config.max_connections {
            Some(Refused::Global)
        } else if !engine.acquire_ip(ip) {
            Some(Refused::PerIp)
        } else {
            None
        };
        if let Some(refused) = refused {
            stats::sub(&counters.connections, 1);
            return Err(refused);
        }
        stats::add(&counters.connections_total, 1);
        Ok(ConnectionSlot {
            engine: engine.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.engine.release_ip(self.ip);
        stats::sub(&self.engine.counters().connections, 1);
    }
}

/// Shared by every connection of one listener.
pub(crate) struct ListenerContext {
    pub engine: Arc<Engine>,
    pub kind: TransportKind,
    pub handshake: Arc<HandshakeConfig>,
    pub shutdown: watch::Receiver<bool>,
    /// TLS is run on every accepted connection before anything else when set.
    pub tls: Option<TlsAcceptor>,
}

/// Accepts until shutdown.
pub(crate) async fn accept_loop(listener: TcpListener, ctx: ListenerContext) {
    // The WebSocket listener also serves HTTP: SockJS, /metrics, static files.
    let http = (ctx.kind == TransportKind::WebSocket)
        .then(|| Arc::new(HttpRouter::new(ctx.engine.clone(), ctx.shutdown.clone())));
    let ctx = Arc::new(ctx);
    let mut shutdown = ctx.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve(stream, peer, ctx.clone(), http.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Sets a connection up (limit, handshake, writer, session), then hands it to its own task
/// running [`drive`]: this task and everything the handshake needed end here, so a
/// long-lived connection keeps only the (small) state of `drive`.
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
    http: Option<Arc<HttpRouter>>,
) {
    let slot = match ConnectionSlot::acquire(&ctx.engine, peer.ip()) {
        Ok(slot) => slot,
        Err(Refused::Global) if ctx.tls.is_none() && http.is_some() => {
            // Monitoring must not go blind when clients took every slot: a few extra
            // connections may still ask for /metrics or /health.
            let router = http.expect("checked above");
            serve_monitoring(stream, &ctx.engine, &router).await;
            return;
        }
        Err(refused) => {
            let reason = refused.count(&ctx.engine);
            let refusal: Vec<u8> = match ctx.kind {
                TransportKind::WebSocket => reject_response(503, reason),
                TransportKind::Tcp => format!("ERROR\nmessage:{reason}\n\n\0").into_bytes(),
            };
            // A TLS client could not read a plain-text refusal: it only sees the close.
            if ctx.tls.is_none() {
                let _ = timeout(Duration::from_secs(1), stream.write_all(&refusal)).await;
            }
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    match &ctx.tls {
        None => {
            let (read, write) = stream.into_split();
            serve_stream(read, write, peer, ctx, http, slot).await;
        }
        // Boxed: keeps the TLS state out of the plain connections' setup future.
        Some(acceptor) => {
            let acceptor = acceptor.clone();
            Box::pin(serve_tls(acceptor, stream, peer, ctx, http, slot)).await;
        }
    }
}

/// Connections beyond `max_connections` that may still read the monitoring endpoints.
const MONITORING_SLOTS: usize = 4;
/// How long such a connection may take to send its request.
const MONITORING_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `GET /metrics` or `GET /health` on a connection that found every client slot
/// taken (at most `MONITORING_SLOTS` at once, each bounded by `MONITORING_TIMEOUT`); anything
/// else gets the 503 a refused connection always got, and is counted as refused.
async fn serve_monitoring(mut stream: TcpStream, engine: &Arc<Engine>, router: &HttpRouter) {
    use std::sync::atomic::{AtomicUsize, Ordering::AcqRel};
    struct Held<'a>(&'a AtomicUsize);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, AcqRel);
        }
    }
    let in_use = &router.monitoring_in_use;
    let held = Held(in_use);
    let answer = match in_use.fetch_add(1, AcqRel) < MONITORING_SLOTS {
        true => timeout(MONITORING_TIMEOUT, monitoring_request(&mut stream))
            .await
            .ok()
            .flatten()
            .and_then(|path| router.monitoring(&path)),
        false => None,
    };
    drop(held);
    let response = match answer {
        Some((content_type, body)) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        None => reject_response(503, Refused::Global.count(engine)),
    };
    let _ = timeout(Duration::from_secs(1), stream.write_all(&response)).await;
    let _ = stream.shutdown().await;
}

/// The path of a `GET` request head read from `stream` (at most 8 KiB), if it is one.
async fn monitoring_request(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::io::AsyncReadExt::read(stream, &mut chunk)
            .await
            .ok()?;
        if n == 0 || head.len() + n > 8192 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    (method == "GET").then(|| target.split('?').next().unwrap_or(target).to_string())
}

/// Runs the TLS handshake (bounded by `handshake_timeout`, dropped at shutdown), then the
/// same setup as a plain connection over the split TLS stream.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
    http: Option<Arc<HttpRouter>>,
    slot: ConnectionSlot,
) {
    let limit = ctx.engine.config.handshake_timeout;
    let mut shutdown = ctx.shutdown.clone();
    let accepted = tokio::select! {
        accepted = timeout(limit, acceptor.accept(stream)) => accepted,
        _ = shutdown.wait_for(|stopping| *stopping) => return,
    };
    let stream = match accepted {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let (read, write) = tokio::io::split(stream);
    serve_stream(read, write, peer, ctx, http, slot).await;
}

/// The setup shared by plain and TLS connections: WebSocket handshake (on that listener),
/// writer, session, then [`drive`] in its own task.
async fn serve_stream<R, W>(
    mut read: R,
    mut write: W,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
    http: Option<Arc<HttpRouter>>,
    slot: ConnectionSlot,
) where
    R: ReadSource + AsyncRead + Unpin + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::new();
    // Who the upgrade request proved the client to be (handshake-level auth hook).
    let mut principal = None;
    // What the upgrade request's token granted (token authentication).
    let mut grant = None;
    // permessage-deflate as agreed in the upgrade response.
    let mut deflate = None;
    // Set when the upgrade was for a raw (non-STOMP) endpoint.
    let mut raw = None;
    // A SockJS `websocket` transport connection (SockJS frames in the WebSocket messages).
    let mut sockjs = false;
    let (framing, inbound) = match ctx.kind {
        TransportKind::Tcp => (Framing::Raw, Inbound::Raw),
        TransportKind::WebSocket => {
            let limit = ctx.engine.config.handshake_timeout;
            let mut shutdown = ctx.shutdown.clone();
            let outcome = tokio::select! {
                outcome = timeout(limit, read_head(&mut read, &mut buf, &ctx.handshake, http.as_deref(), &ctx.engine.raw)) => outcome,
                // Stopping: a connection still in the handshake has no session to close
                // cleanly; drop it rather than make `stop` wait out its grace period.
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            };
            let response = match outcome {
                Err(_) => Err(reject_response(408, "handshake timed out")),
                Ok(Err(HandshakeError::RequestTooLarge { .. })) => {
                    Err(reject_response(431, "request header fields too large"))
                }
                Ok(Ok(None)) => return,
                Ok(Ok(Some(Head::Http))) => {
                    let router = http.expect("HTTP is only routed with a router");
                    let shutdown = ctx.shutdown.clone();
                    // Boxed: keeps hyper's connection state out of every connection's setup.
                    Box::pin(super::http::serve(
                        read, write, buf, peer, router, shutdown, slot,
                    ))
                    .await;
                    return;
                }
                Ok(Ok(Some(Head::WebSocket {
                    consumed,
                    handshake: Handshake::Accept { response, request },
                    sockjs: framed,
                    raw: endpoint,
                }))) => {
                    sockjs = framed;
                    // A token in the request is checked first (401 when it does not verify),
                    // then the upgrade hook decides; its principal wins over the token's `sub`.
                    let decision = match ctx.engine.upgrade_grant(&request) {
                        Ok(verified) => {
                            grant = verified;
                            ctx.engine.decide_upgrade(&request, peer).await
                        }
                        Err(reject) => reject,
                    };
                    match decision {
                        UpgradeDecision::Accept { principal: p } => {
                            buf.advance(consumed);
                            if let Some(endpoint) = endpoint {
                                // Token permissions on the endpoint's path (403 without).
                                match raw_access(&ctx.engine, &endpoint, grant.as_ref()) {
                                    Ok(access) => {
                                        let p = p.or_else(|| grant.take().map(|g| g.subject));
                                        deflate = request.permessage_deflate;
                                        raw = Some((endpoint, request, p, access));
                                        Ok(response)
                                    }
                                    Err(reject) => Err(reject),
                                }
                            } else {
                                principal = p;
                                deflate = request.permessage_deflate;
                                Ok(response)
                            }
                        }
                        UpgradeDecision::Reject { status, reason } => {
                            Err(reject_response(status, &reason))
                        }
                    }
                }
                Ok(Ok(Some(Head::WebSocket {
                    handshake: Handshake::Reject { response, .. },
                    ..
                }))) => Err(response),
            };
            match response {
                Ok(accept) => {
                    if let Some((endpoint, request, principal, access)) = raw {
                        // The raw connection writes the response itself, once registered.
                        let upgrade = RawUpgrade {
                            endpoint,
                            request,
                            principal,
                            access,
                            deflate,
                            sockjs,
                            peer,
                            response: accept,
                        };
                        let (engine, shutdown) = (ctx.engine.clone(), ctx.shutdown.clone());
                        raw_connection::start(read, write, buf, upgrade, engine, shutdown, slot);
                        return;
                    }
                    if write.write_all(&accept).await.is_err() {
                        return;
                    }
                }
                Err(reject) => {
                    let _ = timeout(Duration::from_secs(1), async {
                        let _ = write.write_all(&reject).await;
                        let _ = write.shutdown().await;
                    })
                    .await;
                    return;
                }
            }
            (
                Framing::WebSocket,
                Inbound::websocket(&ctx.engine, deflate.is_some(), sockjs),
            )
        }
    };
    let config = &ctx.engine.config;
    let outbox = ctx.engine.broker.new_outbox();
    let counters = ctx.engine.counters().clone();
    let mut session = Session::new(ctx.engine.clone(), outbox.clone(), ctx.kind, Some(peer));
    session.set_principal(principal);
    session.set_grant(grant);
    let conn = Connection::new(session, inbound);
    let shutdown = ctx.shutdown.clone();
    if sockjs {
        // SockJS frames go out uncompressed (allowed per message even when deflate was agreed).
        let heartbeat = config.sockjs.heartbeat;
        let writer = tokio::spawn(super::sockjs::ws::run(
            write, outbox, counters, heartbeat, true,
        ));
        tokio::spawn(drive(read, buf, conn, writer, shutdown, slot));
    } else {
        // Written from the connection's own task: one task per connection.
        let deflate = OutboundDeflate::new(deflate, config.deflate_threshold, config.deflate_level);
        let writer = Writer::new(write, outbox, framing, deflate, counters);
        tokio::spawn(drive(read, buf, conn, writer, shutdown, slot));
    }
}

/// What a complete request head asks for.
enum Head {
    /// A WebSocket upgrade (accepted or not) on the WebSocket endpoint, SockJS's raw
    /// `/websocket`, a SockJS `websocket` transport URL (`sockjs`), or a raw (non-STOMP)
    /// endpoint (`raw`).
    WebSocket {
        consumed: usize,
        handshake: Handshake,
        sockjs: bool,
        raw: Option<Arc<RawEndpoint>>,
    },
    /// Anything else: served by the HTTP side.
    Http,
}

/// Reads until the request head is complete and decides who serves it; `Ok(None)` when the
/// peer went away.
async fn read_head<S: ReadSource>(
    read: &mut S,
    buf: &mut BytesMut,
    config: &HandshakeConfig,
    http: Option<&HttpRouter>,
    raw: &RawHub,
) -> Result<Option<Head>, HandshakeError> {
    loop {
        if !buf.is_empty() {
            match classify(buf, config, http, raw) {
                Classified::Incomplete if buf.len() > config.max_request_bytes => {
                    return Err(HandshakeError::RequestTooLarge {
                        limit: config.max_request_bytes,
                    });
                }
                Classified::Incomplete => {}
                Classified::Http => return Ok(Some(Head::Http)),
                Classified::Raw {
                    endpoint,
                    path,
                    sockjs,
                } => {
                    // A raw endpoint's own handshake settings (subprotocols, deflate), at its
                    // path or at one of its SockJS WebSocket URLs.
                    let at_path;
                    let handshake_config = match path {
                        None => endpoint.handshake(),
                        Some(path) => {
                            at_path = HandshakeConfig {
                                path,
                                ..endpoint.handshake().clone()
                            };
                            &at_path
                        }
                    };
                    if let Some((consumed, handshake)) = parse_upgrade(buf, handshake_config)? {
                        return Ok(Some(Head::WebSocket {
                            consumed,
                            handshake,
                            sockjs,
                            raw: Some(endpoint),
                        }));
                    }
                }
                Classified::WebSocket { path, sockjs } => {
                    let endpoint;
                    let config = match path {
                        None => config,
                        Some(path) => {
                            endpoint = HandshakeConfig {
                                path,
                                ..config.clone()
                            };
                            &endpoint
                        }
                    };
                    if let Some((consumed, handshake)) = parse_upgrade(buf, config)? {
                        return Ok(Some(Head::WebSocket {
                            consumed,
                            handshake,
                            sockjs,
                            raw: None,
                        }));
                    }
                }
            }
        }
        match read.read_into(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

enum Classified {
    Incomplete,
    Http,
    /// A raw (non-STOMP) endpoint's path, or one of its SockJS WebSocket URLs (`path`; framed
    /// when `sockjs`): validated with that endpoint's handshake settings.
    Raw {
        endpoint: Arc<RawEndpoint>,
        path: Option<String>,
        sockjs: bool,
    },
    /// Validate as a WebSocket upgrade, at `path` when it is not the configured endpoint.
    WebSocket {
        path: Option<String>,
        sockjs: bool,
    },
}

/// Upgrade requests to the WebSocket endpoint and to SockJS WebSocket URLs (and malformed
/// requests, which the handshake answers) take the WebSocket path; other requests are HTTP.
fn classify(
    buf: &[u8],
    config: &HandshakeConfig,
    http: Option<&HttpRouter>,
    raw: &RawHub,
) -> Classified {
    let mut headers = vec![httparse::EMPTY_HEADER; config.max_headers.max(1)];
    let mut request = httparse::Request::new(&mut headers);
    let websocket = Classified::WebSocket {
        path: None,
        sockjs: false,
    };
    match request.parse(buf) {
        Ok(httparse::Status::Partial) => return Classified::Incomplete,
        Ok(httparse::Status::Complete(_)) => {}
        Err(_) => return websocket,
    }
    let target = request.path.unwrap_or_default();
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if let Some(endpoint) = raw.endpoint(path) {
        return Classified::Raw {
            endpoint,
            path: None,
            sockjs: false,
        };
    }
    let upgrade = request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && String::from_utf8_lossy(h.value)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    });
    // A raw endpoint served over SockJS too: its WebSocket URLs are upgrades, the rest HTTP.
    if let Some(endpoint) = raw.sockjs_endpoint(path) {
        let websocket_on = endpoint.sockjs_websocket();
        let sockjs = match crate::sockjs::url::route(&endpoint.path, path) {
            Some(Route::RawWebSocket) if upgrade && websocket_on => false,
            Some(Route::Session {
                transport: Transport::WebSocket,
                ..
            }) if upgrade && websocket_on => true,
            _ => return Classified::Http,
        };
        return Classified::Raw {
            endpoint,
            path: Some(path.to_owned()),
            sockjs,
        };
    }
    let Some(http) = http else {
        return websocket;
    };
    if path == config.path {
        return websocket;
    }
    if let Some(sockjs) = http.sockjs()
        && let Some(route) = crate::sockjs::url::route(&sockjs.prefix, path)
    {
        return match route {
            Route::RawWebSocket if upgrade && http.sockjs_websocket() => Classified::WebSocket {
                path: Some(path.to_owned()),
                sockjs: false,
            },
            Route::Session {
                transport: Transport::WebSocket,
                ..
            } if upgrade && http.sockjs_websocket() => Classified::WebSocket {
                path: Some(path.to_owned()),
                sockjs: true,
            },
            _ => Classified::Http,
        };
    }
    if upgrade { websocket } else { Classified::Http }
}

/// Token authentication on a raw endpoint: what the upgrade's token (or an anonymous client)
/// may do there, or the 403 response refusing it.
fn raw_access(
    engine: &Engine,
    endpoint: &RawEndpoint,
    grant: Option<&crate::auth::Grant>,
) -> Result<Option<raw_connection::RawAccess>, Vec<u8>> {
    raw_access_of(engine, endpoint, grant).map_err(|why| reject_response(403, &why))
}

/// [`raw_access`] with the refusal as text (SockJS answers it over HTTP).
pub(crate) fn raw_access_of(
    engine: &Engine,
    endpoint: &RawEndpoint,
    grant: Option<&crate::auth::Grant>,
) -> Result<Option<raw_connection::RawAccess>, String> {
    let Some(config) = engine.config.auth.as_ref() else {
        return Ok(None);
    };
    match crate::auth::endpoint_access(config, grant, &endpoint.path) {
        Ok(may_send) => Ok(Some(raw_connection::RawAccess {
            may_send,
            who: grant.map_or_else(
                || "anonymous clients".to_string(),
                |g| format!("user {}", g.subject),
            ),
            valid_until: grant.map(|g| g.valid_until),
        })),
        Err(why) => {
            stats::add(&engine.counters().auth_denied, 1);
            Err(why)
        }
    }
}
