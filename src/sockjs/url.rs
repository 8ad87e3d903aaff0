//! The URL scheme under a SockJS prefix.

/// A receiving or sending transport of a session URL `/<server>/<session>/<transport>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `websocket`: a WebSocket carrying SockJS frames.
    WebSocket,
    /// `xhr`: XHR polling (POST, one response per poll).
    Xhr,
    /// `xhr_send`: messages from the client for XHR-based and other transports.
    XhrSend,
    /// `xhr_streaming`: one long POST response carrying frames.
    XhrStreaming,
    /// `eventsource`: a GET `text/event-stream` response.
    EventSource,
    /// `htmlfile`: a GET HTML page of script tags (needs `?c=callback`).
    HtmlFile,
    /// `jsonp`: JSONP polling (needs `?c=callback`).
    Jsonp,
    /// `jsonp_send`: messages from the client, form-encoded (`d=...`) or raw.
    JsonpSend,
}

impl Transport {
    /// The transport named by the last URL segment.
    pub fn from_segment(segment: &str) -> Option<Transport> {
        Some(match segment {
            "websocket" => Transport::WebSocket,
            "xhr" => Transport::Xhr,
            "xhr_send" => Transport::XhrSend,
            "xhr_streaming" => Transport::XhrStreaming,
            "eventsource" => Transport::EventSource,
            "htmlfile" => Transport::HtmlFile,
            "jsonp" => Transport::Jsonp,
            "jsonp_send" => Transport::JsonpSend,
            _ => return None,
        })
    }

    /// Whether requests on this transport receive frames (as opposed to sending messages).
    pub fn is_receiving(self) -> bool {
        !matches!(self, Transport::XhrSend | Transport::JsonpSend)
    }

    /// Whether a receiving response ends after the first frame (polling).
    pub fn is_polling(self) -> bool {
        matches!(self, Transport::Xhr | Transport::Jsonp)
    }

    /// The HTTP method the transport uses (besides `OPTIONS` preflights).
    pub fn method(self) -> &'static str {
        match self {
            Transport::WebSocket
            | Transport::EventSource
            | Transport::HtmlFile
            | Transport::Jsonp => "GET",
            Transport::Xhr
            | Transport::XhrSend
            | Transport::XhrStreaming
            | Transport::JsonpSend => "POST",
        }
    }
}

/// What a path under the prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// The prefix itself (with or without a trailing slash): the greeting.
    Greeting,
    /// `/info`.
    Info,
    /// `/iframe.html` and its versioned forms `/iframe-<version>.html`.
    Iframe,
    /// `/websocket`: a plain WebSocket without SockJS framing.
    RawWebSocket,
    /// `/<server>/<session>/<transport>`.
    Session {
        /// Load-balancer hint chosen by the client; ignored by the server.
        server: &'a str,
        /// The session id.
        session: &'a str,
        /// The transport.
        transport: Transport,
    },
    /// Anything else: 404.
    NotFound,
}

/// Splits `path` (without the query) into what it names under `prefix` (which has no
/// trailing slash); `None` when it is not under the prefix at all.
pub fn route<'a>(prefix: &str, path: &'a str) -> Option<Route<'a>> {
    let rest = path.strip_prefix(prefix)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None; // "/sockjsfoo" is not under "/sockjs"
    }
    Some(match rest {
        "" | "/" => Route::Greeting,
        "/info" => Route::Info,
        "/websocket" => Route::RawWebSocket,
        _ if is_iframe(rest) => Route::Iframe,
        _ => session_route(rest).unwrap_or(Route::NotFound),
    })
}

fn is_iframe(rest: &str) -> bool {
    let Some(middle) = rest
        .strip_prefix("/iframe")
        .and_then(|r| r.strip_suffix(".html"))
    else {
        return false;
    };
    middle.is_empty()
        || middle.strip_prefix('-').is_some_and(|version| {
            version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

fn session_route(rest: &str) -> Option<Route<'_>> {
    let mut parts = rest.strip_prefix('/')?.split('/');
    let (server, session, transport) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_id(server) || !is_id(session) {
        return None;
    }
    Some(Route::Session {
        server,
        session,
        transport: Transport::from_segment(transport)?,
    })
}

/// Server and session ids: any non-empty segment without dots.
fn is_id(segment: &str) -> bool {
    !segment.is_empty() && !segment.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_routes() {
        assert_eq!(route("/sockjs", "/sockjs"), Some(Route::Greeting));
        assert_eq!(route("/sockjs", "/sockjs/"), Some(Route::Greeting));
        assert_eq!(route("/sockjs", "/sockjs/info"), Some(Route::Info));
        assert_eq!(
            route("/sockjs", "/sockjs/websocket"),
            Some(Route::RawWebSocket)
        );
        assert_eq!(route("/sockjs", "/sockjsx"), None);
        assert_eq!(route("/sockjs", "/other"), None);
        for iframe in [
            "/iframe.html",
            "/iframe-a.html",
            "/iframe-.html",
            "/iframe-0.1.2abc-dirty.2144.html",
        ] {
            assert_eq!(
                route("/s", &format!("/s{iframe}")),
                Some(Route::Iframe),
                "{iframe}"
            );
        }
        for bad in [
            "/iframe.htm",
            "/iframe",
            "/IFRAME.HTML",
            "/iframe.HTML",
            "/iframe.xml",
            "/iframe-/.html",
        ] {
            assert_eq!(
                route("/s", &format!("/s{bad}")),
                Some(Route::NotFound),
                "{bad}"
            );
        }
    }

    #[test]
    fn session_routes() {
        assert_eq!(
            route("/s", "/s/000/abc-1/xhr_streaming"),
            Some(Route::Session {
                server: "000",
                session: "abc-1",
                transport: Transport::XhrStreaming
            })
        );
        for bad in [
            "/s/a/a",
            "/s/a/a/",
            "/s//a/xhr",
            "/s/a./a/xhr",
            "/s/a/a./xhr",
            "/s/./././xhr",
            "/s/a/a/xhr/x",
            "/s/a/a/nope",
            "/s///xhr",
            "/s/a",
            "/s//",
        ] {
            assert_eq!(route("/s", bad), Some(Route::NotFound), "{bad}");
        }
        assert!(Transport::Xhr.is_polling() && !Transport::XhrStreaming.is_polling());
        assert!(!Transport::XhrSend.is_receiving());
    }
}
