//! Accept loops for the WebSocket and plain-TCP STOMP listeners, and the per-connection
//! setup: connection limit, WebSocket upgrade handshake, writer task, session.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::connection::{Connection, Inbound, drive};
use super::deflate::OutboundDeflate;
use super::raw_connection::{self, RawUpgrade};
use super::source::ReadSource;
use super::writer::{self, Framing};
use crate::broker::Outbox;
use crate::broker::stats;
use crate::engine::Engine;
use crate::hooks::{TransportKind, UpgradeDecision};
use crate::raw::{RawEndpoint, request_path};
use crate::stomp::session::Session;
use crate::ws::handshake::{
    Handshake, HandshakeConfig, HandshakeError, parse_upgrade, reject_response,
};

/// Keeps the open-connection gauge and the per-address count right however a connection
/// task ends.
struct ConnectionSlot {
    engine: Arc<Engine>,
    ip: IpAddr,
}

/// Why [`ConnectionSlot::acquire`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// `max_connections` reached.
    Global,
    /// `max_connections_per_ip` reached for the peer's address.
    PerIp,
}

impl Refused {
    fn reason(self) -> &'static str {
        match self {
            Refused::Global => "connection limit reached",
            Refused::PerIp => "too many connections from this address",
        }
    }
}

impl ConnectionSlot {
    /// Takes a slot, or refuses at the global or the per-address connection limit.
    fn acquire(engine: &Arc<Engine>, ip: IpAddr) -> Result<ConnectionSlot, Refused> {
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
            stats::add(&counters.connections_refused, 1);
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
    let ctx = Arc::new(ctx);
    let mut shutdown = ctx.shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve(stream, peer, ctx.clone()));
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
async fn serve(mut stream: TcpStream, peer: SocketAddr, ctx: Arc<ListenerContext>) {
    let slot = match ConnectionSlot::acquire(&ctx.engine, peer.ip()) {
        Ok(slot) => slot,
        Err(refused) => {
            let refusal: Vec<u8> = match ctx.kind {
                TransportKind::WebSocket => reject_response(503, refused.reason()),
                TransportKind::Tcp => {
                    format!("ERROR\nmessage:{}\n\n\0", refused.reason()).into_bytes()
                }
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
            serve_stream(read, write, peer, ctx, slot).await;
        }
        // Boxed: keeps the TLS state out of the plain connections' setup future.
        Some(acceptor) => {
            let acceptor = acceptor.clone();
            Box::pin(serve_tls(acceptor, stream, peer, ctx, slot)).await;
        }
    }
}

/// Runs the TLS handshake (bounded by `handshake_timeout`, dropped at shutdown), then the
/// same setup as a plain connection over the split TLS stream.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
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
    serve_stream(read, write, peer, ctx, slot).await;
}

/// The setup shared by plain and TLS connections: WebSocket handshake (on that listener),
/// writer task, session, then [`drive`] in its own task.
async fn serve_stream<R, W>(
    mut read: R,
    mut write: W,
    peer: SocketAddr,
    ctx: Arc<ListenerContext>,
    slot: ConnectionSlot,
) where
    R: ReadSource + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::new();
    // Who the upgrade request proved the client to be (handshake-level auth hook).
    let mut principal = None;
    // permessage-deflate as agreed in the upgrade response.
    let mut deflate = None;
    // Set when the upgrade was for a raw (non-STOMP) endpoint.
    let mut raw = None;
    let (framing, inbound) = match ctx.kind {
        TransportKind::Tcp => (Framing::Raw, Inbound::Raw),
        TransportKind::WebSocket => {
            let limit = ctx.engine.config.handshake_timeout;
            let mut shutdown = ctx.shutdown.clone();
            let outcome = tokio::select! {
                outcome = timeout(limit, read_upgrade(&mut read, &mut buf, &ctx)) => outcome,
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
                Ok(Ok(Some((consumed, Handshake::Accept { response, request }, endpoint)))) => {
                    match ctx.engine.hooks.decide_upgrade(&request, Some(peer)) {
                        UpgradeDecision::Accept { principal: p } => {
                            buf.advance(consumed);
                            if let Some(endpoint) = endpoint {
                                raw = Some((endpoint, request, p));
                            } else {
                                principal = p;
                                deflate = request.permessage_deflate;
                            }
                            Ok(response)
                        }
                        UpgradeDecision::Reject { status, reason } => {
                            Err(reject_response(status, &reason))
                        }
                    }
                }
                Ok(Ok(Some((_, Handshake::Reject { response, .. }, _)))) => Err(response),
            };
            match response {
                Ok(accept) => {
                    if let Some((endpoint, request, principal)) = raw {
                        // The raw connection writes the response itself, once registered.
                        let upgrade = RawUpgrade {
                            endpoint,
                            request,
                            principal,
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
                Inbound::websocket(&ctx.engine, deflate.is_some()),
            )
        }
    };
    let config = &ctx.engine.config;
    let outbox = Arc::new(Outbox::new(
        config.max_outbound_messages,
        config.max_outbound_bytes,
    ));
    let writer = tokio::spawn(writer::run(
        write,
        outbox.clone(),
        framing,
        OutboundDeflate::new(deflate, config.deflate_threshold, config.deflate_level),
        ctx.engine.counters().clone(),
    ));
    let mut session = Session::new(ctx.engine.clone(), outbox, ctx.kind, Some(peer));
    session.set_principal(principal);
    let conn = Connection::new(session, inbound);
    tokio::spawn(drive(read, buf, conn, writer, ctx.shutdown.clone(), slot));
}

/// What [`read_upgrade`] found: the request's length, the outcome, and the raw endpoint the
/// request was for (`None`: the STOMP endpoint).
type Upgrade = (usize, Handshake, Option<Arc<RawEndpoint>>);

/// Reads until a complete upgrade request is parsed; `Ok(None)` when the peer went away. A
/// request for a raw endpoint's path is checked with that endpoint's handshake settings.
async fn read_upgrade<S: ReadSource>(
    read: &mut S,
    buf: &mut BytesMut,
    ctx: &ListenerContext,
) -> Result<Option<Upgrade>, HandshakeError> {
    loop {
        let endpoint = request_path(buf).and_then(|path| ctx.engine.raw.endpoint(path));
        let config = endpoint.as_ref().map_or(&*ctx.handshake, |e| e.handshake());
        if !buf.is_empty()
            && let Some((consumed, handshake)) = parse_upgrade(buf, config)?
        {
            return Ok(Some((consumed, handshake, endpoint)));
        }
        match read.read_into(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}
