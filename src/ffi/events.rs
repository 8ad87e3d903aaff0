//! Rust [`Event`]s as C [`wsb_event`]s: every string is copied once into NUL-terminated storage
//! owned by an [`OwnedEvent`]; bodies point into the Rust message, which the owner keeps alive.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::ptr;

use crate::broker::Message;
use crate::events::Event;
use crate::hooks::{AppMessage, TransportKind};

/// No transport (events other than CONNECT and DISCONNECT).
pub const WSB_TRANSPORT_NONE: u32 = 0;
/// STOMP over WebSocket.
pub const WSB_TRANSPORT_WEBSOCKET: u32 = 1;
/// STOMP over plain TCP.
pub const WSB_TRANSPORT_TCP: u32 = 2;

/// A client sent CONNECT. With deferred connects (`wsb_config_set_defer`) it waits for
/// `wsb_server_accept` / `wsb_server_reject` (or the decision timeout, which rejects).
pub const WSB_EVENT_CONNECT: u32 = 1;
/// A session wants to subscribe; with deferred subscribes it waits for
/// `wsb_server_answer_subscribe`.
pub const WSB_EVENT_SUBSCRIBE: u32 = 2;
/// A connected session ended.
pub const WSB_EVENT_DISCONNECT: u32 = 3;
/// A SEND to an application destination handled with `wsb_server_handle_app` (NULL callback
/// in poll or callback mode, or the argument of a `wsb_app_callback`).
pub const WSB_EVENT_APP_MESSAGE: u32 = 4;
/// A message matching a host subscription (`wsb_server_subscribe`).
pub const WSB_EVENT_MESSAGE: u32 = 5;
/// Events were lost because the event queue was full; `dropped` counts them.
pub const WSB_EVENT_OVERFLOW: u32 = 6;
/// Messages for one client subscription were dropped by a limit (a drop-oldest/drop-newest
/// slow-consumer policy, a slow consumer disconnected with its queue, an unacknowledged
/// limit): `session`, `dropped` (how many since the last such event for this subscription),
/// `destination` (of the last one dropped) and one header, `subscription` (the client's
/// subscription id). Coalesced: at most one per subscription every 250 ms.
pub const WSB_EVENT_MESSAGES_DROPPED: u32 = 7;
/// A client connected to a raw endpoint (`wsb_server_add_raw_endpoint`): `session` is the
/// raw connection id, `destination` the endpoint path, `query`, `remote_addr`, `headers` and
/// `user` (the upgrade hook's principal) describe the request.
pub const WSB_EVENT_RAW_OPEN: u32 = 8;
/// A message from a client of a host-driven raw endpoint: `session` is the raw connection id,
/// `body` the payload, `binary` 1 for a binary message (0: text, valid UTF-8).
pub const WSB_EVENT_RAW_MESSAGE: u32 = 9;
/// A raw connection ended (its id is stale from now on): `session` is the raw connection id,
/// `close_code` and `reason` the close (1006 when it dropped without one).
pub const WSB_EVENT_RAW_CLOSE: u32 = 10;
/// Relay mode: the system connection to the external message broker is up (again); host
/// publishes to relayed destinations flow.
pub const WSB_EVENT_BROKER_AVAILABLE: u32 = 11;
/// Relay mode: the external message broker cannot be reached (the system connection retries
/// with backoff). `body` holds the reason as UTF-8 text.
pub const WSB_EVENT_BROKER_UNAVAILABLE: u32 = 12;
/// Cluster mode: the engine (Redis or NATS) is reachable (again); publications reach the
/// other nodes.
pub const WSB_EVENT_BACKPLANE_AVAILABLE: u32 = 13;
/// Cluster mode: the engine cannot be reached (the link retries with backoff); local clients
/// are still served. `body` holds the reason as UTF-8 text.
pub const WSB_EVENT_BACKPLANE_UNAVAILABLE: u32 = 14;

/// A STOMP header. In arguments: pointer + length, UTF-8, not necessarily NUL-terminated.
/// In events: also NUL-terminated.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wsb_header {
    pub name: *const c_char,
    pub name_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

/// Something the host is told or asked; `kind` says which fields are set. Strings are
/// pointer + length and NUL-terminated; an absent string is NULL with length 0. `body` is
/// not NUL-terminated (it is binary-safe); it is non-NULL for APP_MESSAGE, MESSAGE,
/// RAW_MESSAGE and BROKER_UNAVAILABLE events, NULL otherwise. `session` is the raw
/// connection id in RAW_* events.
///
/// Lifetime: an event filled by `wsb_server_poll*` (and all its pointers) stays valid until
/// the next poll call on the same server from the same thread, or `wsb_server_free`. An event
/// passed to a callback is valid only during that call. Copy what you keep.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct wsb_event {
    /// `WSB_EVENT_*`.
    pub kind: u32,
    /// `WSB_TRANSPORT_*` for CONNECT and DISCONNECT, else 0.
    pub transport: u32,
    /// CONNECT, SUBSCRIBE, DISCONNECT, APP_MESSAGE, MESSAGES_DROPPED: the session id; RAW_*:
    /// the raw connection id; 0 otherwise.
    pub session: u64,
    /// MESSAGE: the host subscription id; 0 otherwise.
    pub subscription: u64,
    /// OVERFLOW: number of events lost. MESSAGES_DROPPED: number of messages dropped.
    pub dropped: u64,
    /// SUBSCRIBE, DISCONNECT, APP_MESSAGE: the session's user; CONNECT: the principal — the
    /// upgrade hook's, else the verified token's `sub` (may be absent); RAW_OPEN: the upgrade
    /// hook's principal, else the token's `sub` (may be absent).
    pub user: *const c_char,
    pub user_len: usize,
    /// CONNECT: the `login` header (may be absent).
    pub login: *const c_char,
    pub login_len: usize,
    /// CONNECT: the `passcode` header (may be absent).
    pub passcode: *const c_char,
    pub passcode_len: usize,
    /// SUBSCRIBE, APP_MESSAGE, MESSAGE, MESSAGES_DROPPED: the destination; RAW_OPEN: the
    /// endpoint path.
    pub destination: *const c_char,
    pub destination_len: usize,
    /// CONNECT, DISCONNECT, RAW_OPEN: the peer, "ip:port" (may be absent).
    pub remote_addr: *const c_char,
    pub remote_addr_len: usize,
    /// CONNECT, SUBSCRIBE, APP_MESSAGE, MESSAGE: the frame's headers; RAW_OPEN: the upgrade
    /// request's headers, names lowercased (NULL when none). MESSAGES_DROPPED: `subscription`.
    pub headers: *const wsb_header,
    pub header_count: usize,
    /// APP_MESSAGE, MESSAGE, RAW_MESSAGE: the body. BROKER_UNAVAILABLE: the reason (UTF-8 text).
    pub body: *const u8,
    pub body_len: usize,
    /// RAW_MESSAGE: 1 for a binary message, 0 for text.
    pub binary: u32,
    /// RAW_CLOSE: the WebSocket close code.
    pub close_code: u32,
    /// RAW_OPEN: the request's query string without `?` (may be absent).
    pub query: *const c_char,
    pub query_len: usize,
    /// RAW_CLOSE: the close reason (may be empty).
    pub reason: *const c_char,
    pub reason_len: usize,
}

impl wsb_event {
    fn empty(kind: u32) -> wsb_event {
        wsb_event {
            kind,
            transport: WSB_TRANSPORT_NONE,
            session: 0,
            subscription: 0,
            dropped: 0,
            user: ptr::null(),
            user_len: 0,
            login: ptr::null(),
            login_len: 0,
            passcode: ptr::null(),
            passcode_len: 0,
            destination: ptr::null(),
            destination_len: 0,
            remote_addr: ptr::null(),
            remote_addr_len: 0,
            headers: ptr::null(),
            header_count: 0,
            body: ptr::null(),
            body_len: 0,
            binary: 0,
            close_code: 0,
            query: ptr::null(),
            query_len: 0,
            reason: ptr::null(),
            reason_len: 0,
        }
    }
}

/// The body pointer of a present but empty body.
static EMPTY_BODY: [u8; 1] = [0];

/// NUL-terminated copies of strings, and header arrays, that C views point into. Moving it
/// keeps the pointers valid (everything is on the heap).
#[derive(Default)]
pub struct CStrings {
    strings: Vec<Box<[u8]>>,
    headers: Vec<Box<[wsb_header]>>,
}

impl CStrings {
    /// A NUL-terminated copy of `text`: its pointer and length (NUL excluded).
    pub fn string(&mut self, text: &str) -> (*const c_char, usize) {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
        let bytes = bytes.into_boxed_slice();
        let ptr = bytes.as_ptr().cast::<c_char>();
        self.strings.push(bytes);
        (ptr, text.len())
    }

    /// Like [`CStrings::string`]; NULL and 0 when absent.
    pub fn opt_string(&mut self, text: Option<&str>) -> (*const c_char, usize) {
        text.map_or((ptr::null(), 0), |t| self.string(t))
    }

    /// A header array (NULL and 0 when empty).
    pub fn headers<'h>(
        &mut self,
        headers: impl ExactSizeIterator<Item = (&'h str, &'h str)>,
    ) -> (*const wsb_header, usize) {
        if headers.len() == 0 {
            return (ptr::null(), 0);
        }
        let mut out = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let (name, name_len) = self.string(name);
            let (value, value_len) = self.string(value);
            out.push(wsb_header {
                name,
                name_len,
                value,
                value_len,
            });
        }
        let out = out.into_boxed_slice();
        let view = (out.as_ptr(), out.len());
        self.headers.push(out);
        view
    }
}

/// The C view of a present body: never NULL, even when empty.
pub fn body_view(body: &[u8]) -> (*const u8, usize) {
    let ptr = if body.is_empty() {
        EMPTY_BODY.as_ptr()
    } else {
        body.as_ptr()
    };
    (ptr, body.len())
}

/// A [`wsb_event`] with the storage its pointers point into. Moving it keeps them valid (the
/// storage is on the heap). Body pointers borrow from the Rust event or message it was built
/// from: keep that alive as long as this.
pub struct OwnedEvent {
    raw: wsb_event,
    store: CStrings,
}

// SAFETY: the raw pointers point into the heap storage owned by this value (or into the Rust
// event its owner keeps alongside), never into thread-local data.
unsafe impl Send for OwnedEvent {}

impl OwnedEvent {
    fn start(kind: u32) -> OwnedEvent {
        OwnedEvent {
            raw: wsb_event::empty(kind),
            store: CStrings::default(),
        }
    }

    /// The C view.
    pub fn raw(&self) -> &wsb_event {
        &self.raw
    }

    fn string(&mut self, text: &str) -> (*const c_char, usize) {
        self.store.string(text)
    }

    fn opt_string(&mut self, text: Option<&str>) -> (*const c_char, usize) {
        self.store.opt_string(text)
    }

    fn addr(&mut self, addr: Option<&SocketAddr>) -> (*const c_char, usize) {
        self.opt_string(addr.map(ToString::to_string).as_deref())
    }

    fn set_headers<'h>(&mut self, headers: impl ExactSizeIterator<Item = (&'h str, &'h str)>) {
        (self.raw.headers, self.raw.header_count) = self.store.headers(headers);
    }

    fn set_body(&mut self, body: &[u8]) {
        (self.raw.body, self.raw.body_len) = body_view(body);
    }

    /// Converts any event (the body borrows from `event`).
    pub fn new(event: &Event) -> OwnedEvent {
        match event {
            Event::Connect(request) => {
                let mut out = OwnedEvent::start(WSB_EVENT_CONNECT);
                out.raw.session = request.session;
                out.raw.transport = transport(request.transport);
                (out.raw.user, out.raw.user_len) = out.opt_string(request.principal.as_deref());
                (out.raw.login, out.raw.login_len) = out.opt_string(request.login.as_deref());
                (out.raw.passcode, out.raw.passcode_len) =
                    out.opt_string(request.passcode.as_deref());
                (out.raw.remote_addr, out.raw.remote_addr_len) =
                    out.addr(request.remote_addr.as_ref());
                out.set_headers(pairs(&request.headers));
                out
            }
            Event::Subscribe(request) => {
                let mut out = OwnedEvent::start(WSB_EVENT_SUBSCRIBE);
                out.raw.session = request.session;
                (out.raw.user, out.raw.user_len) = out.opt_string(request.user.as_deref());
                (out.raw.destination, out.raw.destination_len) = out.string(&request.destination);
                out.set_headers(pairs(&request.headers));
                out
            }
            Event::Disconnect(info) => {
                let mut out = OwnedEvent::start(WSB_EVENT_DISCONNECT);
                out.raw.session = info.session;
                out.raw.transport = transport(info.transport);
                (out.raw.user, out.raw.user_len) = out.opt_string(info.user.as_deref());
                (out.raw.remote_addr, out.raw.remote_addr_len) =
                    out.addr(info.remote_addr.as_ref());
                out
            }
            Event::AppMessage(message) => OwnedEvent::app_message(message),
            Event::Message {
                subscription,
                message,
            } => OwnedEvent::message(*subscription, message),
            Event::RawOpen(open) => {
                let mut out = OwnedEvent::start(WSB_EVENT_RAW_OPEN);
                out.raw.session = open.conn;
                (out.raw.destination, out.raw.destination_len) = out.string(&open.endpoint);
                (out.raw.query, out.raw.query_len) = out.opt_string(open.query.as_deref());
                (out.raw.user, out.raw.user_len) = out.opt_string(open.user.as_deref());
                (out.raw.remote_addr, out.raw.remote_addr_len) =
                    out.addr(open.remote_addr.as_ref());
                out.set_headers(pairs(&open.headers));
                out
            }
            Event::RawMessage(message) => {
                let mut out = OwnedEvent::start(WSB_EVENT_RAW_MESSAGE);
                out.raw.session = message.conn;
                out.raw.binary = u32::from(message.binary);
                out.set_body(&message.data);
                out
            }
            Event::RawClose(close) => {
                let mut out = OwnedEvent::start(WSB_EVENT_RAW_CLOSE);
                out.raw.session = close.conn;
                out.raw.close_code = u32::from(close.code);
                (out.raw.reason, out.raw.reason_len) = out.string(&close.reason);
                out
            }
            Event::Overflow { dropped } => {
                let mut out = OwnedEvent::start(WSB_EVENT_OVERFLOW);
                out.raw.dropped = *dropped;
                out
            }
            Event::MessagesDropped(report) => {
                let mut out = OwnedEvent::start(WSB_EVENT_MESSAGES_DROPPED);
                out.raw.session = report.session;
                out.raw.dropped = report.count;
                (out.raw.destination, out.raw.destination_len) = out.string(&report.destination);
                out.set_headers([("subscription", &*report.subscription)].into_iter());
                out
            }
            Event::BrokerAvailable => OwnedEvent::start(WSB_EVENT_BROKER_AVAILABLE),
            Event::BrokerUnavailable { reason } => {
                let mut out = OwnedEvent::start(WSB_EVENT_BROKER_UNAVAILABLE);
                out.set_body(reason.as_bytes());
                out
            }
            Event::BackplaneAvailable => OwnedEvent::start(WSB_EVENT_BACKPLANE_AVAILABLE),
            Event::BackplaneUnavailable { reason } => {
                let mut out = OwnedEvent::start(WSB_EVENT_BACKPLANE_UNAVAILABLE);
                out.set_body(reason.as_bytes());
                out
            }
        }
    }

    /// An APP_MESSAGE event (the body borrows from `message`).
    pub fn app_message(message: &AppMessage) -> OwnedEvent {
        let mut out = OwnedEvent::start(WSB_EVENT_APP_MESSAGE);
        out.raw.session = message.session;
        (out.raw.user, out.raw.user_len) = out.opt_string(message.user.as_deref());
        (out.raw.destination, out.raw.destination_len) = out.string(&message.destination);
        out.set_headers(pairs(&message.headers));
        out.set_body(&message.body);
        out
    }

    /// A MESSAGE event for host subscription `subscription` (the body borrows from `message`).
    pub fn message(subscription: u64, message: &Message) -> OwnedEvent {
        let mut out = OwnedEvent::start(WSB_EVENT_MESSAGE);
        out.raw.subscription = subscription;
        (out.raw.destination, out.raw.destination_len) = out.string(message.destination());
        out.set_headers(pairs(message.headers()));
        out.set_body(message.body());
        out
    }
}

pub fn pairs(headers: &[(String, String)]) -> impl ExactSizeIterator<Item = (&str, &str)> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
}

fn transport(kind: TransportKind) -> u32 {
    match kind {
        TransportKind::WebSocket => WSB_TRANSPORT_WEBSOCKET,
        TransportKind::Tcp => WSB_TRANSPORT_TCP,
    }
}
