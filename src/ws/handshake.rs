//! Server side of the WebSocket opening handshake (RFC 6455 §4.2): validation
//! of the client's HTTP/1.1 upgrade request and construction of the 101
//! response or of an HTTP error response.
//!
//! Sans-IO: [`parse_upgrade`] looks at the bytes read so far and either asks
//! for more, or returns the number of bytes the request occupied together with
//! the response to write. Bytes after the request (a client may pipeline its
//! first WebSocket frames) are not consumed and belong to the frame decoder.

use tungstenite::handshake::derive_accept_key;

use crate::ws::deflate::{self, DeflateParams};

/// Handshake settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeConfig {
    /// Request path (without query) that accepts upgrades. Default `"/ws"`.
    pub path: String,
    /// Allowed `Origin` values, compared case-insensitively and exactly
    /// (`scheme://host[:port]`, no default-port normalization). An entry `"*"`
    /// allows every origin; an empty list (the default) allows all. Requests
    /// without an `Origin` header (non-browser clients, which could forge it
    /// anyway) are always allowed.
    pub allowed_origins: Vec<String>,
    /// Supported subprotocols in server preference order.
    /// Default `["v12.stomp", "v11.stomp", "v10.stomp"]`.
    pub subprotocols: Vec<String>,
    /// When true, a request for which no subprotocol can be selected (none
    /// offered, or none of the offered ones supported) is rejected with 400.
    /// Default false: such requests are accepted without a
    /// `Sec-WebSocket-Protocol` response header.
    pub require_subprotocol: bool,
    /// Largest accepted request head (request line + headers). Default 8192.
    pub max_request_bytes: usize,
    /// Largest number of request headers. Default 64.
    pub max_headers: usize,
    /// Accept a `permessage-deflate` offer (RFC 7692, see [`crate::ws::deflate`]).
    /// Default true.
    pub permessage_deflate: bool,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            path: "/ws".to_owned(),
            allowed_origins: Vec::new(),
            subprotocols: vec![
                "v12.stomp".to_owned(),
                "v11.stomp".to_owned(),
                "v10.stomp".to_owned(),
            ],
            require_subprotocol: false,
            max_request_bytes: 8192,
            max_headers: 64,
            permessage_deflate: true,
        }
    }
}

/// An accepted upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// Request path without the query string.
    pub path: String,
    /// Query string (after `?`, without it), if any.
    pub query: Option<String>,
    /// All request headers in order: names lowercased, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The `Origin` header, if present.
    pub origin: Option<String>,
    /// The selected subprotocol (echoed in the response), if any.
    pub subprotocol: Option<String>,
    /// The client's `Sec-WebSocket-Extensions` offer (all header lines joined
    /// with ", "), if any.
    pub offered_extensions: Option<String>,
    /// permessage-deflate as agreed in the response, when it was.
    pub permessage_deflate: Option<DeflateParams>,
}

impl UpgradeRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Outcome of a complete (or unparseable) upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Valid upgrade: write `response` (the 101 response) and switch to
    /// WebSocket framing.
    Accept {
        /// The parsed request.
        request: UpgradeRequest,
        /// The complete `101 Switching Protocols` response.
        response: Vec<u8>,
    },
    /// Invalid request: write `response` and close the connection.
    Reject {
        /// HTTP status code of the response.
        status: u16,
        /// The complete HTTP error response (see [`reject_response`]).
        response: Vec<u8>,
    },
}

/// Handshake failure that cannot be expressed as a [`Handshake::Reject`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// More than `limit` bytes were received without completing the request
    /// head. Answer with `reject_response(431, ...)` and close.
    #[error("upgrade request exceeds {limit} bytes")]
    RequestTooLarge {
        /// The configured `max_request_bytes`.
        limit: usize,
    },
}

/// Parses and validates the upgrade request at the start of `buf`.
///
/// - `Ok(None)`: the request head is incomplete; read more and call again
///   with the whole buffer.
/// - `Ok(Some((consumed, handshake)))`: `consumed` is the length of the
///   request head (for a request so malformed that its end cannot be found,
///   `buf.len()`); bytes after it are left for the frame decoder. After a
///   `Reject`, write the response and close the connection.
/// - `Err(RequestTooLarge)`: the request is still incomplete but already
///   exceeds `cfg.max_request_bytes`.
pub fn parse_upgrade(
    buf: &[u8],
    cfg: &HandshakeConfig,
) -> Result<Option<(usize, Handshake)>, HandshakeError> {
    let mut header_storage = vec![httparse::EMPTY_HEADER; cfg.max_headers.max(1)];
    let mut req = httparse::Request::new(&mut header_storage);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > cfg.max_request_bytes {
                return Err(HandshakeError::RequestTooLarge {
                    limit: cfg.max_request_bytes,
                });
            }
            return Ok(None);
        }
        Ok(httparse::Status::Complete(n)) => n,
        Err(httparse::Error::TooManyHeaders) => {
            return Ok(Some((buf.len(), reject(431, "too many request headers"))));
        }
        Err(httparse::Error::Version) => {
            return Ok(Some((buf.len(), reject(505, "unsupported HTTP version"))));
        }
        Err(_) => {
            return Ok(Some((buf.len(), reject(400, "malformed HTTP request"))));
        }
    };
    if consumed > cfg.max_request_bytes {
        return Ok(Some((consumed, reject(431, "request header too large"))));
    }
    let handshake = match validate(&req, cfg) {
        Ok(accept) => accept,
        Err(r) => reject_with(r.status, r.reason, r.extra),
    };
    Ok(Some((consumed, handshake)))
}

/// Why a request is rejected (turned into a [`Handshake::Reject`]).
struct Rejection {
    status: u16,
    reason: &'static str,
    extra: &'static [(&'static str, &'static str)],
}

fn rejection(status: u16, reason: &'static str) -> Rejection {
    Rejection {
        status,
        reason,
        extra: &[],
    }
}

/// Validates a complete request; `Err` carries the rejection.
fn validate(
    req: &httparse::Request<'_, '_>,
    cfg: &HandshakeConfig,
) -> Result<Handshake, Rejection> {
    // Method, version, path.
    let method = req.method.unwrap_or_default();
    if method != "GET" {
        return Err(Rejection {
            status: 405,
            reason: "only GET can upgrade to WebSocket",
            extra: &[("Allow", "GET")],
        });
    }
    if req.version.unwrap_or_default() < 1 {
        return Err(rejection(400, "WebSocket upgrade requires HTTP/1.1"));
    }
    let target = req.path.unwrap_or_default();
    let (path, query) = split_target(target);
    if path != cfg.path {
        return Err(rejection(404, "no WebSocket endpoint at this path"));
    }

    // Headers: lowercase names, UTF-8 values.
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(rejection(400, "header value is not valid UTF-8"));
        };
        headers.push((h.name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };

    if !values("host").any(|v| !v.is_empty()) {
        return Err(rejection(400, "missing Host header"));
    }
    if !has_token(values("upgrade"), "websocket") {
        return Err(rejection(400, "missing 'Upgrade: websocket' header"));
    }
    if !has_token(values("connection"), "upgrade") {
        return Err(rejection(400, "missing 'Connection: Upgrade' header"));
    }
    if values("transfer-encoding").next().is_some() || values("content-length").any(|v| v != "0") {
        return Err(rejection(400, "upgrade request must not have a body"));
    }
    if !has_token(values("sec-websocket-version"), "13") {
        return Err(Rejection {
            status: 426,
            reason: "unsupported WebSocket version (only 13 is supported)",
            extra: &[("Sec-WebSocket-Version", "13")],
        });
    }
    let mut keys = values("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) if decode_key(key).is_some() => key,
        _ => return Err(rejection(400, "missing or invalid Sec-WebSocket-Key")),
    };

    // Origin allow-list.
    let mut origins = values("origin");
    let (origin, None) = (origins.next(), origins.next()) else {
        return Err(rejection(400, "multiple Origin headers"));
    };
    if let Some(origin) = origin {
        let allowed = cfg.allowed_origins.is_empty()
            || cfg
                .allowed_origins
                .iter()
                .any(|a| a == "*" || a.trim().eq_ignore_ascii_case(origin));
        if !allowed {
            return Err(rejection(403, "origin not allowed"));
        }
    }

    // Subprotocol: first server-preferred protocol that the client offered.
    let offered: Vec<&str> = values("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let subprotocol = cfg
        .subprotocols
        .iter()
        .find(|p| offered.contains(&p.as_str()))
        .cloned();
    if subprotocol.is_none() && cfg.require_subprotocol {
        return Err(rejection(400, "no supported subprotocol offered"));
    }

    let extension_offers: Vec<&str> = values("sec-websocket-extensions")
        .filter(|v| !v.is_empty())
        .collect();
    let offered_extensions = (!extension_offers.is_empty()).then(|| extension_offers.join(", "));
    let deflate = match &offered_extensions {
        Some(offers) if cfg.permessage_deflate => deflate::negotiate(offers),
        _ => None,
    };

    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(p) = &subprotocol {
        response.push_str("Sec-WebSocket-Protocol: ");
        response.push_str(p);
        response.push_str("\r\n");
    }
    if let Some(agreed) = &deflate {
        response.push_str("Sec-WebSocket-Extensions: ");
        response.push_str(&agreed.response);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");

    let request = UpgradeRequest {
        path: path.to_owned(),
        query: query.map(str::to_owned),
        origin: origin.map(str::to_owned),
        headers,
        subprotocol,
        offered_extensions,
        permessage_deflate: deflate.map(|agreed| agreed.params),
    };
    Ok(Handshake::Accept {
        request,
        response: response.into_bytes(),
    })
}

/// Builds a complete plain-text HTTP error response:
///
/// ```text
/// HTTP/1.1 <status> <reason phrase>\r\n
/// Content-Type: text/plain; charset=utf-8\r\n
/// Content-Length: N\r\n
/// Connection: close\r\n
/// \r\n
/// <reason>\n
/// ```
///
/// Control characters in `reason` are replaced by spaces so the body is a
/// single line.
pub fn reject_response(status: u16, reason: &str) -> Vec<u8> {
    build_reject(status, reason, &[])
}

/// Standard reason phrase for the status codes this module produces
/// (`"Error"` for others).
pub fn status_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

fn reject(status: u16, reason: &str) -> Handshake {
    reject_with(status, reason, &[])
}

fn reject_with(status: u16, reason: &str, extra: &[(&str, &str)]) -> Handshake {
    Handshake::Reject {
        status,
        response: build_reject(status, reason, extra),
    }
}

fn build_reject(status: u16, reason: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut body: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    body.push('\n');
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Connection: close\r\n",
        status_reason(status),
        body.len()
    );
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// Splits a request target into (path, query). Accepts origin-form
/// (`/ws?x=1`) and absolute-form (`http://host/ws?x=1`).
fn split_target(target: &str) -> (&str, Option<&str>) {
    let mut target = target;
    if let Some(idx) = target.find("://") {
        let scheme = &target[..idx];
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            let rest = &target[idx + 3..];
            target = rest.find('/').map_or("/", |slash| &rest[slash..]);
        }
    }
    match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// Whether any comma-separated element of any of `values` equals `token`
/// (ASCII case-insensitive).
fn has_token<'a>(values: impl Iterator<Item = &'a str>, token: &str) -> bool {
    values
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Decodes a `Sec-WebSocket-Key`: standard base64 of exactly 16 bytes
/// (24 characters ending in `==`). Non-zero padding bits in the last
/// significant character are tolerated.
fn decode_key(key: &str) -> Option<[u8; 16]> {
    let b = key.as_bytes();
    if b.len() != 24 || &b[22..] != b"==" {
        return None;
    }
    let mut sextets = [0u8; 22];
    for (dst, &c) in sextets.iter_mut().zip(&b[..22]) {
        *dst = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
    }
    let mut out = [0u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut i = 0;
    for s in sextets {
        acc = (acc << 6) | u32::from(s);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if i < 16 {
                out[i] = (acc >> bits) as u8;
                i += 1;
            }
            acc &= (1 << bits) - 1;
        }
    }
    (i == 16).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn request_with(lines: &[&str]) -> Vec<u8> {
        let mut s = String::new();
        for l in lines {
            s.push_str(l);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    fn valid_lines() -> Vec<&'static str> {
        vec![
            "GET /ws HTTP/1.1",
            "Host: server.example.com",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Origin: http://example.com",
            "Sec-WebSocket-Protocol: v10.stomp, v11.stomp, v12.stomp",
            "Sec-WebSocket-Version: 13",
        ]
    }

    /// Replaces (or, with `None`, removes) the header line starting with `prefix`.
    fn with_replaced(prefix: &str, replacement: Option<&'static str>) -> Vec<u8> {
        let lines: Vec<&str> = valid_lines()
            .into_iter()
            .filter_map(|l| {
                if l.starts_with(prefix) {
                    replacement
                } else {
                    Some(l)
                }
            })
            .collect();
        request_with(&lines)
    }

    fn run(req: &[u8], cfg: &HandshakeConfig) -> (usize, Handshake) {
        parse_upgrade(req, cfg)
            .expect("no error")
            .expect("complete request")
    }

    fn status_of(req: &[u8], cfg: &HandshakeConfig) -> u16 {
        match run(req, cfg).1 {
            Handshake::Accept { .. } => 101,
            Handshake::Reject { status, response } => {
                let text = String::from_utf8(response).unwrap();
                assert!(
                    text.starts_with(&format!("HTTP/1.1 {status} {}\r\n", status_reason(status))),
                    "{text}"
                );
                status
            }
        }
    }

    fn accept(req: &[u8], cfg: &HandshakeConfig) -> (usize, UpgradeRequest, String) {
        match run(req, cfg) {
            (n, Handshake::Accept { request, response }) => {
                (n, request, String::from_utf8(response).unwrap())
            }
            (_, Handshake::Reject { response, .. }) => {
                panic!("rejected: {}", String::from_utf8_lossy(&response))
            }
        }
    }

    #[test]
    fn rfc_accept_key_example() {
        assert_eq!(derive_accept_key(KEY.as_bytes()), ACCEPT);
        assert_eq!(decode_key(KEY).unwrap(), *b"the sample nonce");
    }

    #[test]
    fn valid_request_accepted() {
        let cfg = HandshakeConfig::default();
        let req = request_with(&valid_lines());
        let (n, request, response) = accept(&req, &cfg);
        assert_eq!(n, req.len());
        assert_eq!(
            response,
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
            )
        );
        assert_eq!(request.path, "/ws");
        assert_eq!(request.query, None);
        assert_eq!(request.origin.as_deref(), Some("http://example.com"));
        assert_eq!(request.subprotocol.as_deref(), Some("v12.stomp"));
        assert_eq!(request.offered_extensions, None);
        assert_eq!(request.header("HOST"), Some("server.example.com"));
        assert!(
            request
                .headers
                .iter()
                .all(|(n, _)| *n == n.to_ascii_lowercase())
        );
        assert_eq!(request.headers.len(), 7);
    }

    #[test]
    fn query_extensions_and_token_lists() {
        let cfg = HandshakeConfig::default();
        let req = request_with(&[
            "GET /ws?token=abc&x=1 HTTP/1.1",
            "host: h",
            "upgrade: WebSocket",
            "connection: keep-alive, Upgrade",
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version: 13",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Extensions: x-foo",
        ]);
        let (_, request, response) = accept(&req, &cfg);
        assert_eq!(request.query.as_deref(), Some("token=abc&x=1"));
        assert_eq!(request.origin, None);
        assert_eq!(request.subprotocol, None);
        assert_eq!(
            request.offered_extensions.as_deref(),
            Some("permessage-deflate; client_max_window_bits, x-foo")
        );
        assert!(!response.contains("Sec-WebSocket-Protocol"));
        assert!(response.contains(
            "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
             client_no_context_takeover\r\n"
        ));
        assert_eq!(
            request.permessage_deflate,
            Some(DeflateParams {
                server_max_window_bits: 15
            })
        );

        // Switched off: the offer is ignored.
        let off = HandshakeConfig {
            permessage_deflate: false,
            ..HandshakeConfig::default()
        };
        let (_, request, response) = accept(&req, &off);
        assert!(!response.contains("Extensions"));
        assert_eq!(request.permessage_deflate, None);

        // Only unknown extensions (or declined offers): no extension header.
        let req = request_with(&[
            "GET /ws HTTP/1.1",
            "host: h",
            "upgrade: websocket",
            "connection: Upgrade",
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
            "sec-websocket-version: 13",
            "Sec-WebSocket-Extensions: x-foo, permessage-deflate; server_max_window_bits=8",
        ]);
        let (_, request, response) = accept(&req, &cfg);
        assert!(!response.contains("Extensions"));
        assert_eq!(request.permessage_deflate, None);
    }

    #[test]
    fn absolute_form_target() {
        let cfg = HandshakeConfig::default();
        let mut lines = valid_lines();
        lines[0] = "GET http://server.example.com/ws?a=b HTTP/1.1";
        let (_, request, _) = accept(&request_with(&lines), &cfg);
        assert_eq!(request.path, "/ws");
        assert_eq!(request.query.as_deref(), Some("a=b"));
    }

    #[test]
    fn failure_statuses() {
        let cfg = HandshakeConfig::default();
        let mut lines = valid_lines();
        lines[0] = "POST /ws HTTP/1.1";
        let req = request_with(&lines);
        assert_eq!(status_of(&req, &cfg), 405);
        if let (_, Handshake::Reject { response, .. }) = run(&req, &cfg) {
            assert!(
                String::from_utf8(response)
                    .unwrap()
                    .contains("\r\nAllow: GET\r\n")
            );
        }

        lines[0] = "GET /ws HTTP/1.0";
        assert_eq!(status_of(&request_with(&lines), &cfg), 400);
        lines[0] = "GET /other HTTP/1.1";
        assert_eq!(status_of(&request_with(&lines), &cfg), 404);
        lines[0] = "GET /ws/ HTTP/1.1";
        assert_eq!(status_of(&request_with(&lines), &cfg), 404);

        assert_eq!(status_of(&with_replaced("Host:", None), &cfg), 400);
        assert_eq!(status_of(&with_replaced("Upgrade:", None), &cfg), 400);
        assert_eq!(
            status_of(&with_replaced("Upgrade:", Some("Upgrade: h2c")), &cfg),
            400
        );
        assert_eq!(status_of(&with_replaced("Connection:", None), &cfg), 400);
        assert_eq!(
            status_of(
                &with_replaced("Connection:", Some("Connection: keep-alive")),
                &cfg
            ),
            400
        );
        // Key problems.
        assert_eq!(
            status_of(&with_replaced("Sec-WebSocket-Key:", None), &cfg),
            400
        );
        for bad in [
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ", // no padding
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=", // 23 chars
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==", // bad alphabet
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=", // 17 bytes
            "Sec-WebSocket-Key: aGVsbG8=",               // 5 bytes
        ] {
            assert_eq!(
                status_of(&with_replaced("Sec-WebSocket-Key:", Some(bad)), &cfg),
                400,
                "{bad}"
            );
        }
        let mut lines = valid_lines();
        lines.push("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==");
        assert_eq!(status_of(&request_with(&lines), &cfg), 400, "duplicate key");

        // Version: wrong or missing → 426 with Sec-WebSocket-Version: 13.
        for version in [Some("Sec-WebSocket-Version: 8"), None] {
            let req = with_replaced("Sec-WebSocket-Version:", version);
            let (_, hs) = run(&req, &cfg);
            let Handshake::Reject { status, response } = hs else {
                panic!("accepted")
            };
            assert_eq!(status, 426);
            let text = String::from_utf8(response).unwrap();
            assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{text}");
        }

        // Body not allowed.
        let mut lines = valid_lines();
        lines.push("Content-Length: 5");
        assert_eq!(status_of(&request_with(&lines), &cfg), 400);
        let mut lines = valid_lines();
        lines.push("Content-Length: 0");
        assert_eq!(status_of(&request_with(&lines), &cfg), 101);
    }

    #[test]
    fn malformed_and_oversized() {
        let cfg = HandshakeConfig::default();
        assert_eq!(status_of(b"GARBAGE\x01 / HTTP/1.1\r\n\r\n", &cfg), 400);
        assert_eq!(status_of(b"GET /ws HTTP/2.0\r\n\r\n", &cfg), 505);
        // Non-UTF-8 header value.
        let mut req = request_with(&valid_lines());
        let pos = req.windows(9).position(|w| w == b"server.ex").unwrap();
        req[pos] = 0xFF;
        assert_eq!(status_of(&req, &cfg), 400);
        // Too many headers → 431.
        let small = HandshakeConfig {
            max_headers: 4,
            ..HandshakeConfig::default()
        };
        assert_eq!(status_of(&request_with(&valid_lines()), &small), 431);
        // Complete but over max_request_bytes → 431.
        let tiny = HandshakeConfig {
            max_request_bytes: 100,
            ..HandshakeConfig::default()
        };
        assert_eq!(status_of(&request_with(&valid_lines()), &tiny), 431);
        // Incomplete and over the limit → Err.
        let partial = format!("GET /ws HTTP/1.1\r\nX-Pad: {}\r\n", "a".repeat(200));
        assert_eq!(
            parse_upgrade(partial.as_bytes(), &tiny),
            Err(HandshakeError::RequestTooLarge { limit: 100 })
        );
        let response = reject_response(431, "request header too large");
        assert!(response.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }

    #[test]
    fn incomplete_request_needs_more() {
        let cfg = HandshakeConfig::default();
        let req = request_with(&valid_lines());
        for cut in [0, 1, 10, req.len() / 2, req.len() - 2, req.len() - 1] {
            assert_eq!(parse_upgrade(&req[..cut], &cfg), Ok(None), "cut {cut}");
        }
        assert!(parse_upgrade(&req, &cfg).unwrap().is_some());
    }

    #[test]
    fn pipelined_bytes_not_consumed() {
        let cfg = HandshakeConfig::default();
        let req = request_with(&valid_lines());
        let mut buf = req.clone();
        buf.extend_from_slice(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]);
        let (n, _, _) = accept(&buf, &cfg);
        assert_eq!(n, req.len());
        assert_eq!(&buf[n..], &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]);
    }

    #[test]
    fn subprotocol_selection() {
        let cfg = HandshakeConfig::default();
        let sel = |header: Option<&'static str>, cfg: &HandshakeConfig| {
            let req = with_replaced("Sec-WebSocket-Protocol:", header);
            match run(&req, cfg).1 {
                Handshake::Accept { request, response } => {
                    let text = String::from_utf8(response).unwrap();
                    match &request.subprotocol {
                        Some(p) => {
                            assert!(text.contains(&format!("\r\nSec-WebSocket-Protocol: {p}\r\n")));
                        }
                        None => assert!(!text.contains("Sec-WebSocket-Protocol")),
                    }
                    Ok(request.subprotocol)
                }
                Handshake::Reject { status, .. } => Err(status),
            }
        };
        // Server preference wins over client order.
        assert_eq!(
            sel(Some("Sec-WebSocket-Protocol: v10.stomp, v11.stomp"), &cfg),
            Ok(Some("v11.stomp".into()))
        );
        assert_eq!(
            sel(Some("Sec-WebSocket-Protocol: mqtt,v10.stomp"), &cfg),
            Ok(Some("v10.stomp".into()))
        );
        // No match, not required → accepted without header.
        assert_eq!(sel(Some("Sec-WebSocket-Protocol: mqtt"), &cfg), Ok(None));
        assert_eq!(sel(None, &cfg), Ok(None));
        // Exact (case-sensitive) match.
        assert_eq!(
            sel(Some("Sec-WebSocket-Protocol: V12.STOMP"), &cfg),
            Ok(None)
        );
        // Required.
        let strict = HandshakeConfig {
            require_subprotocol: true,
            ..HandshakeConfig::default()
        };
        assert_eq!(sel(Some("Sec-WebSocket-Protocol: mqtt"), &strict), Err(400));
        assert_eq!(sel(None, &strict), Err(400));
        assert_eq!(
            sel(Some("Sec-WebSocket-Protocol: v12.stomp"), &strict),
            Ok(Some("v12.stomp".into()))
        );
        // Multiple header lines are combined.
        let mut lines = valid_lines();
        lines.retain(|l| !l.starts_with("Sec-WebSocket-Protocol"));
        lines.push("Sec-WebSocket-Protocol: mqtt");
        lines.push("Sec-WebSocket-Protocol: v11.stomp");
        let (_, request, _) = accept(&request_with(&lines), &cfg);
        assert_eq!(request.subprotocol.as_deref(), Some("v11.stomp"));
    }

    #[test]
    fn origin_allow_list() {
        let cfg = HandshakeConfig {
            allowed_origins: vec![
                "https://app.example.com".into(),
                "http://localhost:8080".into(),
            ],
            ..HandshakeConfig::default()
        };
        let with_origin = |o: Option<&'static str>| with_replaced("Origin:", o);
        assert_eq!(
            status_of(&with_origin(Some("Origin: https://app.example.com")), &cfg),
            101
        );
        assert_eq!(
            status_of(&with_origin(Some("Origin: HTTPS://APP.EXAMPLE.COM")), &cfg),
            101
        );
        assert_eq!(
            status_of(&with_origin(Some("Origin: http://localhost:8080")), &cfg),
            101
        );
        assert_eq!(
            status_of(&with_origin(Some("Origin: http://localhost:8081")), &cfg),
            403
        );
        assert_eq!(
            status_of(&with_origin(Some("Origin: http://app.example.com")), &cfg),
            403
        );
        assert_eq!(status_of(&with_origin(Some("Origin: null")), &cfg), 403);
        // No Origin (non-browser client) is allowed.
        assert_eq!(status_of(&with_origin(None), &cfg), 101);
        // Wildcard entry and empty list allow everything.
        let wildcard = HandshakeConfig {
            allowed_origins: vec!["*".into()],
            ..HandshakeConfig::default()
        };
        assert_eq!(
            status_of(&with_origin(Some("Origin: http://evil.test")), &wildcard),
            101
        );
        assert_eq!(
            status_of(
                &with_origin(Some("Origin: http://evil.test")),
                &HandshakeConfig::default()
            ),
            101
        );
        // Two Origin headers.
        let mut lines = valid_lines();
        lines.push("Origin: https://app.example.com");
        assert_eq!(status_of(&request_with(&lines), &cfg), 400);
    }

    #[test]
    fn custom_path() {
        let cfg = HandshakeConfig {
            path: "/stomp".into(),
            ..HandshakeConfig::default()
        };
        assert_eq!(status_of(&request_with(&valid_lines()), &cfg), 404);
        let mut lines = valid_lines();
        lines[0] = "GET /stomp HTTP/1.1";
        assert_eq!(status_of(&request_with(&lines), &cfg), 101);
    }

    #[test]
    fn reject_response_format() {
        let r = reject_response(403, "origin\r\nnot allowed");
        let body = "origin  not allowed\n";
        assert_eq!(
            String::from_utf8(r).unwrap(),
            format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        );
        let r = String::from_utf8(reject_response(999, "x")).unwrap();
        assert!(r.starts_with("HTTP/1.1 999 Error\r\n"));
    }

    #[test]
    fn key_decoding() {
        assert_eq!(decode_key("AAAAAAAAAAAAAAAAAAAAAA=="), Some([0u8; 16]));
        assert_eq!(decode_key("/////////////////////w=="), Some([0xFF; 16]));
        assert_eq!(decode_key("AAAAAAAAAAAAAAAAAAAAAAA="), None);
        assert_eq!(decode_key(""), None);
        assert_eq!(decode_key("dGhlIHNhbXBsZSBub25jZQ==="), None);
    }

    #[test]
    fn split_target_forms() {
        assert_eq!(split_target("/ws"), ("/ws", None));
        assert_eq!(split_target("/ws?"), ("/ws", Some("")));
        assert_eq!(split_target("/ws?a=b?c"), ("/ws", Some("a=b?c")));
        assert_eq!(split_target("https://h:1/ws"), ("/ws", None));
        assert_eq!(split_target("http://h"), ("/", None));
        assert_eq!(split_target("*"), ("*", None));
    }
}
