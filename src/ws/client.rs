//! Client side of the WebSocket opening handshake (RFC 6455 §4.1): the upgrade request a
//! client writes, and the checks of the server's `101 Switching Protocols` answer.
//!
//! Sans-IO like the server side: [`upgrade_request`] builds bytes, [`parse_response`] looks at
//! the bytes read so far and asks for more, accepts (telling how many bytes the response
//! took: what follows is already WebSocket data) or fails with the reason.

use tungstenite::handshake::derive_accept_key;

use crate::ws::deflate::{self, ClientAgreement};

/// Largest response head a client reads before giving up.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// What the upgrade request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    /// `Host` header value (`host[:port]`).
    pub host: &'a str,
    /// Request target: path and query, e.g. `/ws?token=1`.
    pub target: &'a str,
    /// `Sec-WebSocket-Key`: 16 random bytes, base64 (a fresh value per request).
    pub key: &'a str,
    /// Subprotocols offered, in preference order (none: no header).
    pub subprotocols: &'a [String],
    /// Offer permessage-deflate ([`deflate::CLIENT_OFFER`]).
    pub permessage_deflate: bool,
    /// More request headers (an `Authorization`, a cookie, an `Origin`).
    pub headers: &'a [(String, String)],
}

/// Writes the HTTP/1.1 upgrade request.
pub fn upgrade_request(request: &ClientRequest<'_>) -> Vec<u8> {
    let mut out = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
        request.target, request.host, request.key
    );
    if !request.subprotocols.is_empty() {
        out.push_str("Sec-WebSocket-Protocol: ");
        out.push_str(&request.subprotocols.join(", "));
        out.push_str("\r\n");
    }
    if request.permessage_deflate {
        out.push_str("Sec-WebSocket-Extensions: ");
        out.push_str(deflate::CLIENT_OFFER);
        out.push_str("\r\n");
    }
    for (name, value) in request.headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// An accepted upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAccepted {
    /// The subprotocol the server selected, if any (one of those offered).
    pub subprotocol: Option<String>,
    /// permessage-deflate, when the server agreed to it.
    pub deflate: Option<ClientAgreement>,
}

/// Why the upgrade failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientHandshakeError {
    /// The server answered with another status (401, 403, 404...): it refused the client.
    #[error("the server refused the WebSocket upgrade: HTTP {status} {reason}")]
    Refused {
        /// HTTP status code.
        status: u16,
        /// The status line's reason phrase.
        reason: String,
    },
    /// The answer breaks RFC 6455 (wrong accept key, missing headers, an extension or
    /// subprotocol that was not offered, malformed HTTP).
    #[error("invalid WebSocket upgrade response: {0}")]
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> ClientHandshakeError {
    ClientHandshakeError::Invalid(why.into())
}

/// Parses the response to a request sent with `key` and `subprotocols` offered.
/// `Ok(None)`: incomplete, read more; `Ok(Some((consumed, accepted)))`: the upgrade is done and
/// the bytes after `consumed` are WebSocket frames.
pub fn parse_response(
    buf: &[u8],
    key: &str,
    subprotocols: &[String],
    offered_deflate: bool,
) -> Result<Option<(usize, ClientAccepted)>, ClientHandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let consumed = match response.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_BYTES => {
            return Err(invalid(format!(
                "response head longer than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(n)) => n,
        Err(e) => return Err(invalid(format!("malformed HTTP response: {e}"))),
    };
    let status = response.code.unwrap_or_default();
    if status != 101 {
        return Err(ClientHandshakeError::Refused {
            status,
            reason: response.reason.unwrap_or_default().to_string(),
        });
    }
    let header = |name: &str| -> Vec<&str> {
        response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
            .collect()
    };
    let has_token = |name: &str, token: &str| {
        header(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token("upgrade", "websocket") {
        return Err(invalid("no 'Upgrade: websocket'"));
    }
    if !has_token("connection", "upgrade") {
        return Err(invalid("no 'Connection: Upgrade'"));
    }
    let expected = derive_accept_key(key.as_bytes());
    if header("sec-websocket-accept").first() != Some(&expected.as_str()) {
        return Err(invalid("wrong or missing Sec-WebSocket-Accept"));
    }
    let subprotocol = match header("sec-websocket-protocol").as_slice() {
        [] => None,
        [one] if subprotocols.iter().any(|p| p == one) => Some((*one).to_string()),
        other => {
            return Err(invalid(format!(
                "subprotocol {other:?} was not offered"
            )));
        }
    };
    let extensions = header("sec-websocket-extensions").join(", ");
    let deflate =
        deflate::client_agreement(Some(&extensions)).map_err(ClientHandshakeError::Invalid)?;
    if deflate.is_some() && !offered_deflate {
        return Err(invalid("permessage-deflate was not offered"));
    }
    Ok(Some((
        consumed,
        ClientAccepted {
            subprotocol,
            deflate,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::handshake::{Handshake, HandshakeConfig, parse_upgrade};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn protocols() -> Vec<String> {
        vec!["v12.stomp".into(), "v11.stomp".into()]
    }

    fn request(deflate: bool) -> Vec<u8> {
        let protocols = protocols();
        let headers = vec![("Authorization".to_string(), "Bearer t".to_string())];
        upgrade_request(&ClientRequest {
            host: "127.0.0.1:8080",
            target: "/ws?x=1",
            key: KEY,
            subprotocols: &protocols,
            permessage_deflate: deflate,
            headers: &headers,
        })
    }

    /// The request is one our own server accepts, and its answer is one the client accepts:
    /// both sides of the handshake agree (subprotocol, deflate without context takeover).
    #[test]
    fn round_trip_with_the_server_side() {
        let req = request(true);
        let (n, hs) = parse_upgrade(&req, &HandshakeConfig::default())
            .unwrap()
            .unwrap();
        assert_eq!(n, req.len());
        let Handshake::Accept { request, response } = hs else {
            panic!("rejected: {hs:?}");
        };
        assert_eq!(request.query.as_deref(), Some("x=1"));
        assert_eq!(request.header("authorization"), Some("Bearer t"));
        let mut bytes = response.clone();
        bytes.extend_from_slice(b"\x81\x00");
        // Incomplete first, then complete with the first frame left over.
        assert_eq!(
            parse_response(&response[..10], KEY, &protocols(), true),
            Ok(None)
        );
        let (consumed, accepted) = parse_response(&bytes, KEY, &protocols(), true)
            .unwrap()
            .unwrap();
        assert_eq!(consumed, response.len());
        assert_eq!(accepted.subprotocol.as_deref(), Some("v12.stomp"));
        assert_eq!(
            accepted.deflate,
            Some(ClientAgreement {
                server_no_context_takeover: true,
                client_max_window_bits: 15
            })
        );
    }

    fn answer(extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn rfc_accept_key_and_context_takeover() {
        let ok = parse_response(&answer(""), KEY, &[], false).unwrap().unwrap();
        assert_eq!(ok.1.subprotocol, None);
        assert_eq!(ok.1.deflate, None);
        let takeover = parse_response(
            &answer("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n"),
            KEY,
            &[],
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            takeover.1.deflate,
            Some(ClientAgreement {
                server_no_context_takeover: false,
                client_max_window_bits: 10
            })
        );
    }

    #[test]
    fn bad_answers_fail() {
        let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            parse_response(refused, KEY, &[], false),
            Err(ClientHandshakeError::Refused { status: 403, .. })
        ));
        let wrong_key = answer("");
        assert!(parse_response(&wrong_key, "AAAAAAAAAAAAAAAAAAAAAA==", &[], false).is_err());
        for extra in [
            "Sec-WebSocket-Protocol: mqtt\r\n",
            "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=16\r\n",
        ] {
            assert!(
                parse_response(&answer(extra), KEY, &protocols(), true).is_err(),
                "{extra}"
            );
        }
        // Deflate that was not offered.
        assert!(
            parse_response(
                &answer("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                KEY,
                &[],
                false
            )
            .is_err()
        );
        let no_upgrade = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n";
        assert!(parse_response(no_upgrade, KEY, &[], false).is_err());
        assert!(parse_response(&vec![b'x'; MAX_RESPONSE_BYTES + 1], KEY, &[], false).is_err());
    }
}
