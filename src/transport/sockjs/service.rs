//! The SockJS service under its prefix: greeting, `/info`, `/iframe.html`, and the session
//! URLs of every transport, with the CORS and caching headers the protocol requires.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::sync::watch;

use super::receive::{self, OwnedWrapping, ReceivePlan};
use super::session::Sessions;
use crate::config::SockJsConfig;
use crate::engine::Engine;
use crate::hooks::UpgradeDecision;
use crate::raw::RawEndpoint;
use crate::sockjs::frame::{
    DecodeError, Shape, decode_each, decode_messages, htmlfile_prelude, is_valid_callback,
    json_string, xhr_streaming_prelude,
};
use crate::sockjs::url::{Route, Transport};
use crate::transport::http::text_response;
use crate::transport::http_body::ResponseBody;
use crate::transport::listener::ConnectionSlot;
use crate::ws::handshake::UpgradeRequest;

/// One year, for what may be cached.
const ONE_YEAR: Duration = Duration::from_secs(31_536_000);
const NO_CACHE: &str = "no-store, no-cache, must-revalidate, max-age=0";
const JS: &str = "application/javascript; charset=UTF-8";
const PLAIN: &str = "text/plain; charset=UTF-8";

pub(crate) struct SockJsService {
    pub(crate) prefix: String,
    /// This service's settings: the server's `sockjs` for the STOMP service; for a raw
    /// endpoint's, the server's with the endpoint's own options.
    config: SockJsConfig,
    /// The raw endpoint whose sessions this service carries; `None`: STOMP sessions.
    raw: Option<Arc<RawEndpoint>>,
    engine: Arc<Engine>,
    sessions: Arc<Sessions>,
    shutdown: watch::Receiver<bool>,
    iframe: Bytes,
    iframe_etag: String,
}

impl SockJsService {
    pub(crate) fn new(engine: Arc<Engine>, shutdown: watch::Receiver<bool>) -> SockJsService {
        let config = engine.config.sockjs.clone();
        SockJsService::with(engine, shutdown, config, None)
    }

    /// The SockJS service of a raw endpoint, under the endpoint's path.
    pub(crate) fn for_raw(
        engine: Arc<Engine>,
        shutdown: watch::Receiver<bool>,
        endpoint: Arc<RawEndpoint>,
    ) -> SockJsService {
        let mut config = engine.config.sockjs.clone();
        config.path = endpoint.path.to_string();
        if let Some(options) = endpoint.sockjs() {
            config.websocket = options.websocket;
            config.cookie_needed = options.cookie_needed;
            if let Some(limit) = options.response_limit {
                config.response_limit = limit;
            }
        }
        SockJsService::with(engine, shutdown, config, Some(endpoint))
    }

    fn with(
        engine: Arc<Engine>,
        shutdown: watch::Receiver<bool>,
        config: SockJsConfig,
        raw: Option<Arc<RawEndpoint>>,
    ) -> SockJsService {
        let iframe = iframe_page(&config.client_url);
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write(iframe.as_bytes());
        SockJsService {
            prefix: config.path.clone(),
            config,
            raw,
            iframe: Bytes::from(iframe),
            iframe_etag: format!("\"{:016x}\"", hasher.finish()),
            engine,
            sessions: Arc::new(Sessions::default()),
            shutdown,
        }
    }

    pub(crate) fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) async fn handle(
        &self,
        route: Route<'_>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResponseBody> {
        let method = request.method().clone();
        match route {
            Route::Greeting if method == Method::GET => {
                text_response(StatusCode::OK, PLAIN, "Welcome to SockJS!\n")
            }
            Route::Info if method == Method::GET => self.info(request.headers()),
            Route::Info if method == Method::OPTIONS => {
                preflight(request.headers(), "OPTIONS, GET")
            }
            Route::Iframe if method == Method::GET => self.iframe(request.headers()),
            Route::RawWebSocket
            | Route::Session {
                transport: Transport::WebSocket,
                ..
            } => {
                if self.config.websocket {
                    not_upgraded(&method)
                } else {
                    not_found()
                }
            }
            Route::Session {
                session, transport, ..
            } => {
                let session = session.to_owned();
                self.session_request(&session, transport, request, peer)
                    .await
            }
            Route::NotFound | Route::Greeting | Route::Info | Route::Iframe => not_found(),
        }
    }

    fn info(&self, headers: &HeaderMap) -> Response<ResponseBody> {
        let config = &self.config;
        let body = format!(
            "{{\"websocket\":{},\"cookie_needed\":{},\"origins\":[\"*:*\"],\"entropy\":{}}}",
            config.websocket,
            config.cookie_needed,
            entropy()
        );
        let mut response = text_response(StatusCode::OK, "application/json; charset=UTF-8", body);
        no_cache(response.headers_mut());
        cors(headers, response.headers_mut());
        response
    }

    fn iframe(&self, headers: &HeaderMap) -> Response<ResponseBody> {
        let etag = HeaderValue::from_str(&self.iframe_etag).expect("hex etag");
        let matches = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == self.iframe_etag.as_bytes());
        let mut response = if matches {
            let mut r = Response::new(ResponseBody::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            text_response(
                StatusCode::OK,
                "text/html; charset=UTF-8",
                self.iframe.clone(),
            )
        };
        cache_for_a_year(response.headers_mut());
        response.headers_mut().insert(header::ETAG, etag);
        response
    }

    async fn session_request(
        &self,
        id: &str,
        transport: Transport,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResponseBody> {
        let method = request.method().clone();
        let allowed = transport.method();
        if !self.origin_allowed(request.headers()) {
            // The same Origin allow-list as WebSocket upgrades (CORS would echo any origin).
            return text_response(StatusCode::FORBIDDEN, PLAIN, "origin not allowed\n");
        }
        let mut response = if method == Method::OPTIONS
            && matches!(
                transport,
                Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming
            ) {
            preflight(request.headers(), "OPTIONS, POST")
        } else if method.as_str() != allowed {
            method_not_allowed(allowed)
        } else if transport.is_receiving() {
            self.receive(id, transport, &request, peer).await
        } else {
            let headers = request.headers().clone();
            let mut response = self.send(id, transport, request).await;
            cors(&headers, response.headers_mut());
            return self.with_cookie(&headers, response);
        };
        let headers = request.headers();
        cors(headers, response.headers_mut());
        self.with_cookie(headers, response)
    }

    /// A receiving request: creates the session when the id is new.
    async fn receive(
        &self,
        id: &str,
        transport: Transport,
        request: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<ResponseBody> {
        let config = &self.config;
        let callback = match transport {
            Transport::HtmlFile | Transport::Jsonp => {
                match query_param(request.uri().query(), "c") {
                    None => {
                        return text_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            PLAIN,
                            "\"callback\" parameter required",
                        );
                    }
                    Some(c) if !is_valid_callback(&c) => {
                        return text_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            PLAIN,
                            "invalid \"callback\" parameter",
                        );
                    }
                    Some(c) => Some(c),
                }
            }
            _ => None,
        };
        let (session, opened) = match self.sessions.get(id) {
            Some(session) => (session, false),
            None => match self.open_session(id, request, peer).await {
                Ok(opened) => opened,
                Err(response) => return *response,
            },
        };
        let (content_type, wrapping, prelude) = match transport {
            Transport::Xhr => (JS, OwnedWrapping::Xhr, None),
            Transport::XhrStreaming => (JS, OwnedWrapping::Xhr, Some(xhr_streaming_prelude())),
            Transport::EventSource => (
                "text/event-stream; charset=UTF-8",
                OwnedWrapping::EventSource,
                Some("\r\n".to_owned()),
            ),
            Transport::HtmlFile => {
                let callback = callback.expect("checked above");
                let prelude = htmlfile_prelude(&callback);
                (
                    "text/html; charset=UTF-8",
                    OwnedWrapping::HtmlFile,
                    Some(prelude),
                )
            }
            _ => (
                JS,
                OwnedWrapping::Jsonp(callback.expect("checked above")),
                None,
            ),
        };
        let plan = ReceivePlan {
            wrapping,
            prelude,
            opened,
            polling: transport.is_polling(),
            response_limit: config.response_limit,
            heartbeat: config.heartbeat,
            counters: self.engine.counters().clone(),
        };
        let body = receive::start(session, plan);
        let mut response = Response::new(ResponseBody::Stream(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        no_cache(headers);
        response
    }

    /// Creates a session: connection limits and the upgrade hook apply as to a WebSocket.
    /// Returns the session and whether this request created it.
    async fn open_session(
        &self,
        id: &str,
        request: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<(Arc<super::session::SockJsSession>, bool), Box<Response<ResponseBody>>> {
        let upgrade = upgrade_request(request);
        // As on a WebSocket: the token first (401), then the upgrade hook.
        let (grant, decision) = match self.engine.upgrade_grant(&upgrade) {
            Ok(grant) => (grant, self.engine.decide_upgrade(&upgrade, peer).await),
            Err(reject) => (None, reject),
        };
        // A raw endpoint: the token's permissions on its path (403 without).
        let raw = match &self.raw {
            None => None,
            Some(endpoint) => {
                let access = crate::transport::listener::raw_access_of(
                    &self.engine,
                    endpoint,
                    grant.as_ref(),
                )
                .map_err(|why| {
                    Box::new(text_response(
                        StatusCode::FORBIDDEN,
                        PLAIN,
                        format!("{why}\n"),
                    ))
                })?;
                Some(super::session::RawStart {
                    endpoint: endpoint.clone(),
                    access,
                    request: upgrade.clone(),
                })
            }
        };
        let principal = match decision {
            UpgradeDecision::Accept { principal } => principal,
            UpgradeDecision::Reject { status, reason } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                return Err(Box::new(text_response(
                    status,
                    PLAIN,
                    format!("{reason}\n"),
                )));
            }
        };
        let slot = ConnectionSlot::acquire(&self.engine, peer.ip()).map_err(|refused| {
            Box::new(text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                format!("{}\n", refused.count(&self.engine)),
            ))
        })?;
        self.sessions
            .open(
                id,
                &self.engine,
                slot,
                peer,
                (principal, grant),
                self.shutdown.clone(),
                raw,
            )
            .map(|session| (session, true))
            // Opened by a concurrent request with the same id a moment ago.
            .or_else(|| self.sessions.get(id).map(|session| (session, false)))
            .ok_or_else(|| Box::new(not_found()))
    }

    /// `xhr_send` and `jsonp_send`.
    async fn send(
        &self,
        id: &str,
        transport: Transport,
        request: Request<Incoming>,
    ) -> Response<ResponseBody> {
        let Some(session) = self.sessions.get(id) else {
            return not_found();
        };
        let form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let limit = self.payload_limit();
        // A body dripped in (or never sent) would otherwise hold its connection slot forever.
        let deadline = self.config.request_body_timeout;
        let collected =
            tokio::time::timeout(deadline, Limited::new(request.into_body(), limit).collect());
        let body = match collected.await {
            Ok(Ok(body)) => body.to_bytes(),
            Ok(Err(_)) => {
                let error = DecodeError::TooLarge { limit };
                return text_response(StatusCode::PAYLOAD_TOO_LARGE, PLAIN, error.to_string());
            }
            Err(_) => {
                let secs = deadline.as_secs_f32();
                return text_response(
                    StatusCode::REQUEST_TIMEOUT,
                    PLAIN,
                    format!("request body not received within {secs} s\n"),
                );
            }
        };
        let payload: Vec<u8> = if transport == Transport::JsonpSend && form {
            form_field(&body, "d").unwrap_or_default()
        } else {
            body.to_vec()
        };
        let delivered = if self.raw.is_some() {
            // A raw session: each string is one message.
            match decode_each(&payload, Shape::Array, limit) {
                Ok(messages) => session.deliver_each(messages).await,
                Err(error) => {
                    return text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        PLAIN,
                        error.to_string(),
                    );
                }
            }
        } else {
            let mut bytes = Vec::new();
            if let Err(error) = decode_messages(&payload, Shape::Array, limit, &mut bytes) {
                return text_response(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, error.to_string());
            }
            session.deliver(bytes).await
        };
        if !delivered {
            return not_found();
        }
        let mut response = if transport == Transport::XhrSend {
            let mut r = Response::new(ResponseBody::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(PLAIN));
            r
        } else {
            text_response(StatusCode::OK, PLAIN, "ok")
        };
        no_cache(response.headers_mut());
        response
    }

    /// Whether the request's `Origin` (if any) passes `allowed_origins`.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let allowed = &self.engine.config.allowed_origins;
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let origin = origin.to_str().unwrap_or_default();
        allowed.is_empty()
            || allowed
                .iter()
                .any(|a| a == "*" || a.trim().eq_ignore_ascii_case(origin))
    }

    /// Largest send body: a maximal STOMP frame, JSON-escaped (up to 6 bytes per byte).
    fn payload_limit(&self) -> usize {
        let max = match &self.raw {
            Some(endpoint) => endpoint.limits.max_message_size,
            None => self.engine.config.max_ws_message_size(),
        };
        max.saturating_mul(6)
    }

    fn with_cookie(
        &self,
        headers: &HeaderMap,
        mut response: Response<ResponseBody>,
    ) -> Response<ResponseBody> {
        if self.config.cookie_needed {
            let value = cookie(headers, "JSESSIONID").unwrap_or_else(|| "dummy".to_owned());
            if let Ok(v) = HeaderValue::from_str(&format!("JSESSIONID={value}; Path=/")) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
        response
    }
}

/// The page `/iframe.html` serves: it loads the SockJS client and bootstraps it.
fn iframe_page(client_url: &str) -> String {
    let url = json_string(client_url);
    let url = &url[1..url.len() - 1];
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n  \
         <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  \
         <script>\n    document.domain = document.domain;\n    \
         _sockjs_onload = function(){{SockJS.bootstrap_iframe();}};\n  </script>\n  \
         <script src=\"{url}\"></script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  \
         <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n\
         </body>\n</html>"
    )
}

/// A random number for `/info` (browsers lacked a good entropy source).
fn entropy() -> u32 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish() as u32
}

fn not_found() -> Response<ResponseBody> {
    text_response(StatusCode::NOT_FOUND, PLAIN, "Not found\n")
}

/// 405 with `Allow`, no body and no content type (as the protocol's tests want).
fn method_not_allowed(allowed: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

/// A WebSocket URL asked for without an upgrade.
fn not_upgraded(method: &Method) -> Response<ResponseBody> {
    if method != Method::GET {
        return method_not_allowed("GET");
    }
    text_response(
        StatusCode::BAD_REQUEST,
        PLAIN,
        "Can \"Upgrade\" only to \"WebSocket\".",
    )
}

/// CORS: echo the origin (`*` for none or `null`) with credentials, and echo the requested
/// headers.
fn cors(request: &HeaderMap, response: &mut HeaderMap) {
    let origin = request
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null" && !o.is_empty());
    match origin {
        Some(origin) => {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            response.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            response.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        None => {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    if let Some(requested) = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|v| !v.is_empty())
    {
        response.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
}

/// An `OPTIONS` preflight answer, cacheable for a year.
fn preflight(request: &HeaderMap, methods: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    cache_for_a_year(headers);
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(ONE_YEAR.as_secs()),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    cors(request, headers);
    response
}

fn cache_for_a_year(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000"),
    );
    let expires = httpdate::fmt_http_date(SystemTime::now() + ONE_YEAR);
    if let Ok(v) = HeaderValue::from_str(&expires) {
        headers.insert(header::EXPIRES, v);
    }
}

fn no_cache(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_CACHE));
}

/// The request as the upgrade hook sees WebSocket requests (path, query, headers, origin).
fn upgrade_request(request: &Request<Incoming>) -> UpgradeRequest {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((
                name.as_str().to_owned(),
                value.to_str().ok()?.trim().to_owned(),
            ))
        })
        .collect();
    UpgradeRequest {
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        origin: request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers,
        subprotocol: None,
        offered_extensions: None,
        permessage_deflate: None,
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| String::from_utf8(form_decode(v.as_bytes())).ok())?
    })
}

/// A field of an `application/x-www-form-urlencoded` body, decoded.
fn form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        (&pair[..eq] == name.as_bytes()).then(|| form_decode(&pair[eq + 1..]))
    })
}

/// Percent-decoding with `+` as space; malformed escapes are kept as they are.
fn form_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len() => {
                let hex = std::str::from_utf8(&input[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_query_decoding() {
        assert_eq!(form_field(b"d=%5B%22x%22%5D", "d").unwrap(), br#"["x"]"#);
        assert_eq!(form_field(b"p=p", "d"), None);
        assert_eq!(form_field(b"d=", "d").unwrap(), b"");
        assert_eq!(form_decode(b"a+b%2"), b"a b%2");
        assert_eq!(
            query_param(Some("t=1&c=%63allback"), "c").as_deref(),
            Some("callback")
        );
        assert_eq!(query_param(Some("t=1"), "c"), None);
    }
}
