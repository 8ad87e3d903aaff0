//! The host program's hooks: what it is asked (connect, subscribe), told (disconnect) and
//! handed (application destinations). Hooks run on the server's runtime threads.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::broker::pattern;
use crate::host::Publisher;

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
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|pair| {
                let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(n)? == name).then(|| percent_decode(v))
            })
            .next()
            .flatten()
    }
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

/// The upgrade hook's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeDecision {
    /// Let the client upgrade; the principal (if any) becomes the STOMP session's user unless
    /// the connect hook decides otherwise.
    Accept {
        /// Who the request proved the client to be.
        principal: Option<String>,
    },
    /// Refuse the upgrade with an HTTP status (401 or 403 usually; anything outside 400–499
    /// becomes 403) and a one-line reason.
    Reject {
        /// HTTP status code.
        status: u16,
        /// Reason sent in the response body.
        reason: String,
    },
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

/// The connect hook's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectDecision {
    /// Accept, optionally as a named user (enables `/user/...` destinations).
    Accept {
        /// The principal; must not contain `/` or `*`.
        user: Option<String>,
    },
    /// Refuse with a message sent to the client in an ERROR frame.
    Reject(String),
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

/// Decides on a WebSocket upgrade request.
pub type UpgradeHook = Arc<dyn Fn(&UpgradeInfo) -> UpgradeDecision + Send + Sync>;
/// Decides on a CONNECT.
pub type ConnectHook = Arc<dyn Fn(&ConnectRequest) -> ConnectDecision + Send + Sync>;
/// Authorizes a SUBSCRIBE: `Err(message)` refuses it with an ERROR.
pub type SubscribeHook = Arc<dyn Fn(&SubscribeRequest) -> Result<(), String> + Send + Sync>;
/// Told when a connected session ends.
pub type DisconnectHook = Arc<dyn Fn(&SessionInfo) + Send + Sync>;
/// Handles a SEND to an application destination. It may reply to the sender or publish through
/// the [`Publisher`]; `Err(message)` answers the sender with an ERROR.
pub type AppHandler = Arc<dyn Fn(&AppMessage, &Publisher) -> Result<(), String> + Send + Sync>;

/// The set of hooks of one server. Each may be replaced at any time.
#[derive(Default)]
pub struct Hooks {
    upgrade: RwLock<Option<UpgradeHook>>,
    connect: RwLock<Option<ConnectHook>>,
    subscribe: RwLock<Option<SubscribeHook>>,
    disconnect: RwLock<Option<DisconnectHook>>,
    apps: RwLock<Vec<(String, AppHandler)>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("apps", &self.apps.read().len())
            .finish_non_exhaustive()
    }
}

impl Hooks {
    /// Sets (or clears) the upgrade hook.
    pub fn set_upgrade(&self, hook: Option<UpgradeHook>) {
        *self.upgrade.write() = hook;
    }

    /// The upgrade decision; without a hook every request that passed the protocol checks is
    /// accepted without a principal. A panicking hook refuses with 403.
    pub fn decide_upgrade(
        &self,
        request: &crate::ws::handshake::UpgradeRequest,
        remote_addr: Option<SocketAddr>,
    ) -> UpgradeDecision {
        let Some(hook) = self.upgrade.read().clone() else {
            return UpgradeDecision::Accept { principal: None };
        };
        let info = UpgradeInfo {
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            origin: request.origin.clone(),
            subprotocol: request.subprotocol.clone(),
            remote_addr,
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&info))) {
            Ok(UpgradeDecision::Reject { status, reason }) => UpgradeDecision::Reject {
                status: if (400..500).contains(&status) {
                    status
                } else {
                    403
                },
                reason,
            },
            Ok(accept) => accept,
            Err(_) => {
                tracing::error!("upgrade hook panicked");
                UpgradeDecision::Reject {
                    status: 403,
                    reason: "refused".into(),
                }
            }
        }
    }

    /// Sets (or clears) the connect hook.
    pub fn set_connect(&self, hook: Option<ConnectHook>) {
        *self.connect.write() = hook;
    }
    /// Sets (or clears) the subscribe hook.
    pub fn set_subscribe(&self, hook: Option<SubscribeHook>) {
        *self.subscribe.write() = hook;
    }
    /// Sets (or clears) the disconnect hook.
    pub fn set_disconnect(&self, hook: Option<DisconnectHook>) {
        *self.disconnect.write() = hook;
    }
    /// Registers a handler for an application destination pattern; a later registration of the
    /// same pattern replaces the earlier one.
    pub fn add_app(&self, pattern: &str, handler: AppHandler) {
        let mut apps = self.apps.write();
        apps.retain(|(p, _)| p != pattern);
        apps.push((pattern.to_string(), handler));
    }
    /// Removes the handler of a pattern; false when there was none.
    pub fn remove_app(&self, pattern: &str) -> bool {
        let mut apps = self.apps.write();
        let before = apps.len();
        apps.retain(|(p, _)| p != pattern);
        apps.len() != before
    }

    /// The connect decision; without a hook every client is accepted as the principal the
    /// upgrade hook gave it, else as its `login`.
    pub fn decide_connect(&self, request: &ConnectRequest) -> ConnectDecision {
        let hook = self.connect.read().clone();
        match hook {
            Some(hook) => hook(request),
            None => ConnectDecision::Accept {
                user: request
                    .principal
                    .clone()
                    .or_else(|| request.login.clone().filter(|l| !l.is_empty())),
            },
        }
    }

    /// True when a subscribe hook is set (so a SUBSCRIBE must wait for its answer).
    pub fn has_subscribe_hook(&self) -> bool {
        self.subscribe.read().is_some()
    }

    /// The subscribe decision; without a hook every subscription is allowed.
    pub fn authorize_subscribe(&self, request: &SubscribeRequest) -> Result<(), String> {
        let hook = self.subscribe.read().clone();
        hook.map_or(Ok(()), |hook| hook(request))
    }

    /// Tells the host a session ended.
    pub fn disconnected(&self, info: &SessionInfo) {
        let hook = self.disconnect.read().clone();
        if let Some(hook) = hook {
            hook(info);
        }
    }

    /// The handler for an application destination: an exact registration first, else the
    /// first matching pattern.
    pub fn app_handler(&self, destination: &str) -> Option<AppHandler> {
        let apps = self.apps.read();
        apps.iter()
            .find(|(p, _)| p == destination)
            .or_else(|| apps.iter().find(|(p, _)| pattern::matches(p, destination)))
            .map(|(_, h)| h.clone())
    }
}
