//! What the host's hooks are shown: upgrade requests, CONNECT and SUBSCRIBE frames, ended
//! sessions and application messages.

use std::net::SocketAddr;

use bytes::Bytes;

/// Which listener a connection came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// STOMP over WebSocket.
    WebSocket,
    /// STOMP over plain TCP.
    Tcp,
}

/// A WebSocket upgrade request, as the upgrade hook sees it. Browsers cannot set headers on a
/// WebSocket, so this is where cookies, query tokens and the Origin are checked.
#[derive(Clone, Debug)]
pub struct UpgradeInfo {
    /// Request path without the query.
    pub path: String,
    /// The query string (after `?`), if any.
    pub query: Option<String>,
    /// Every header, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The `Origin` header.
    pub origin: Option<String>,
    /// The subprotocol chosen (`v12.stomp`, ...), if any.
    pub subprotocol: Option<String>,
    /// Peer address.
    pub remote_addr: Option<SocketAddr>,
}

impl UpgradeInfo {
    /// First value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A cookie from the `Cookie` header(s).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim_matches('"'))
    }

    /// A query parameter, percent-decoded (`+` as space); `None` when absent or not UTF-8.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref()?, name)
    }
}

/// A parameter of a query string, percent-decoded (`+` as space); `None` when absent or not
/// UTF-8.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(n)? == name).then(|| percent_decode(v))
        })
        .next()
        .flatten()
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A CONNECT (or STOMP) frame, as the connect hook sees it.
#[derive(Clone, Debug)]
pub struct ConnectRequest {
    /// Session id, unique for the server's lifetime.
    pub session: u64,
    /// `login` header.
    pub login: Option<String>,
    /// The principal the upgrade hook accepted the connection as, if any.
    pub principal: Option<String>,
    /// `passcode` header.
    pub passcode: Option<String>,
    /// Every header of the frame.
    pub headers: Vec<(String, String)>,
    /// Peer address.
    pub remote_addr: Option<SocketAddr>,
    /// Listener kind.
    pub transport: TransportKind,
}

/// A SUBSCRIBE, as the subscribe hook sees it.
#[derive(Clone, Debug)]
pub struct SubscribeRequest {
    /// Session id.
    pub session: u64,
    /// The session's user, if any.
    pub user: Option<String>,
    /// Destination as the client wrote it.
    pub destination: String,
    /// Every header of the frame.
    pub headers: Vec<(String, String)>,
}

/// A session that ended, as the disconnect hook sees it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// Session id.
    pub session: u64,
    /// The session's user, if any.
    pub user: Option<String>,
    /// Peer address.
    pub remote_addr: Option<SocketAddr>,
    /// Listener kind.
    pub transport: TransportKind,
}

/// A SEND to an application destination, handed to the host's handler.
#[derive(Clone, Debug)]
pub struct AppMessage {
    /// Sending session.
    pub session: u64,
    /// Its user, if any.
    pub user: Option<String>,
    /// Destination as sent (e.g. `/app/chat`).
    pub destination: String,
    /// Every header of the SEND.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl AppMessage {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
