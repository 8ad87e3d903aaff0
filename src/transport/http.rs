//! The HTTP side of the WebSocket listener (everything that is not a WebSocket upgrade):
//! SockJS under its prefix, `/metrics`, and static files. hyper's http1 server runs the
//! connection (keep-alive, chunked bodies, HTTP/1.0).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::http_body::ResponseBody;
use super::listener::ConnectionSlot;
use super::metrics;
use super::prefixed_io::PrefixedIo;
use super::sockjs::service::SockJsService;
use super::static_files;
use crate::engine::Engine;

/// Routes the HTTP requests of one listener.
pub(crate) struct HttpRouter {
    engine: Arc<Engine>,
    sockjs: Option<SockJsService>,
    /// The SockJS services of raw endpoints, by endpoint path, made on first use (endpoints
    /// may be added after the server started).
    raw_sockjs: parking_lot::Mutex<std::collections::HashMap<Arc<str>, Arc<SockJsService>>>,
    shutdown: watch::Receiver<bool>,
    /// Canonical static directory.
    static_root: Option<PathBuf>,
    /// Monitoring connections accepted past `max_connections` (see `listener`).
    pub(crate) monitoring_in_use: std::sync::atomic::AtomicUsize,
}

impl HttpRouter {
    pub(crate) fn new(engine: Arc<Engine>, shutdown: watch::Receiver<bool>) -> HttpRouter {
        let config = &engine.config;
        let sockjs = config
            .sockjs
            .enabled()
            .then(|| SockJsService::new(engine.clone(), shutdown.clone()));
        let static_root = config
            .static_dir
            .as_ref()
            .and_then(|dir| match dir.canonicalize() {
                Ok(root) => Some(root),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "static directory not served");
                    None
                }
            });
        HttpRouter {
            engine,
            sockjs,
            raw_sockjs: parking_lot::Mutex::new(std::collections::HashMap::new()),
            shutdown,
            static_root,
            monitoring_in_use: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(crate) fn sockjs(&self) -> Option<&SockJsService> {
        self.sockjs.as_ref()
    }

    /// Whether SockJS offers its `websocket` transport.
    pub(crate) fn sockjs_websocket(&self) -> bool {
        self.engine.config.sockjs.websocket
    }

    /// `/metrics` (Prometheus text) and `/health` (`ok`): the monitoring endpoints, which are
    /// served even when every connection slot is taken (see `listener::serve_monitoring`).
    pub(crate) fn monitoring(&self, path: &str) -> Option<(&'static str, String)> {
        match path {
            "/metrics" => {
                let sessions = self
                    .sockjs
                    .as_ref()
                    .map_or(0, super::sockjs::service::SockJsService::session_count);
                let body = metrics::render(
                    &self.engine.counters().snapshot(),
                    sessions,
                    self.engine.broker.history_sizes(),
                    self.engine.broker.presence_counts(),
                    self.engine.broker.journal().map(|j| j.stats()),
                    self.engine.cluster.as_ref().map(|link| link.stats()),
                );
                Some(("text/plain; version=0.0.4; charset=utf-8", body))
            }
            "/health" => Some(("text/plain; charset=utf-8", "ok\n".to_string())),
            _ => None,
        }
    }

    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<ResponseBody> {
        let path = request.uri().path().to_owned();
        if let Some(sockjs) = &self.sockjs
            && let Some(route) = crate::sockjs::url::route(&sockjs.prefix, &path)
        {
            return sockjs.handle(route, request, peer).await;
        }
        if let Some(endpoint) = self.engine.raw.sockjs_endpoint(&path)
            && let Some(route) = crate::sockjs::url::route(&endpoint.path, &path)
        {
            let service = self
                .raw_sockjs
                .lock()
                .entry(endpoint.path.clone())
                .or_insert_with(|| {
                    Arc::new(SockJsService::for_raw(
                        self.engine.clone(),
                        self.shutdown.clone(),
                        endpoint.clone(),
                    ))
                })
                .clone();
            return service.handle(route, request, peer).await;
        }
        if request.method() == Method::GET
            && let Some((content_type, body)) = self.monitoring(&path)
        {
            return text_response(StatusCode::OK, content_type, body);
        }
        if let Some(root) = &self.static_root
            && matches!(*request.method(), Method::GET | Method::HEAD)
            && let Some(file) = static_files::resolve(root, &path)
            && let Ok(Ok(contents)) =
                tokio::task::spawn_blocking(move || std::fs::read(file.path)).await
        {
            let head = request.method() == Method::HEAD;
            let length = contents.len();
            let mut response = Response::new(if head {
                ResponseBody::empty()
            } else {
                ResponseBody::full(contents)
            });
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(file.content_type),
            );
            headers.insert(header::CONTENT_LENGTH, length.into());
            headers.insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-cache"),
            );
            return response;
        }
        text_response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=UTF-8",
            "Not found\n",
        )
    }
}

/// A complete plain response.
pub(crate) fn text_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<bytes::Bytes>,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// Serves HTTP on a connection whose first bytes (`head`) were already read.
pub(crate) async fn serve<R, W>(
    read: R,
    write: W,
    head: BytesMut,
    peer: SocketAddr,
    router: Arc<HttpRouter>,
    mut shutdown: watch::Receiver<bool>,
    slot: ConnectionSlot,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(PrefixedIo::new(head, read, write));
    let handshake_timeout = router.engine.config.handshake_timeout;
    let service = service_fn(move |request| {
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.handle(request, peer).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "http connection ended");
            }
        }
        _ = async { let _ = shutdown.wait_for(|stopping| *stopping).await; } => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), connection).await;
        }
    }
    drop(slot);
}
