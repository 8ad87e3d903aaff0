//! SockJS sessions over HTTP: state that outlives any one request.
//!
//! A session is a STOMP session driven exactly like a WebSocket one (the same
//! [`drive`](crate::transport::connection) loop, `Session`, limits and hooks). Its byte source
//! is a channel fed by `xhr_send`/`jsonp_send`; its outbox is drained by whichever receiving
//! request is attached. In place of a socket writer, a small task watches the session's
//! lifetime: the session ends when no receiving request has been attached for the disconnect
//! delay, or when its close frame has been delivered.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep_until};

use crate::auth::Grant;
use crate::broker::Outbox;
use crate::broker::outbox::CloseReason;
use crate::engine::Engine;
use crate::hooks::TransportKind;
use crate::session::Session;
use crate::sockjs::frame::INTERRUPTED;
use crate::transport::connection::{Connection, Inbound, drive};
use crate::transport::listener::ConnectionSlot;
use crate::transport::source::ReadSource;

/// Chunks of client bytes waiting for the STOMP reader; a sender waits when it is full.
const INBOUND_CHUNKS: usize = 16;

/// Why a receiving request could not attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttachError {
    /// Another receiving request is attached.
    Busy,
    /// The session is over; this close frame answers.
    Closed((u16, String)),
}

struct State {
    /// A receiving request is attached.
    receiving: bool,
    /// When the last receiving request ended (or the session started).
    detached_at: Instant,
    /// The close frame, once the session's end was delivered or decided.
    closed: Option<(u16, String)>,
}

/// One SockJS session over HTTP transports.
pub(crate) struct SockJsSession {
    outbox: Arc<Outbox>,
    inbound: mpsc::Sender<Bytes>,
    state: Mutex<State>,
    /// Woken on attach, detach and close, for the lifetime task.
    changed: Notify,
    /// True once the STOMP side is over: the reader sees end of stream, receivers answer
    /// with the close frame.
    ended: watch::Sender<bool>,
    /// A STOMP session (else a raw endpoint's).
    stomp: bool,
}

impl SockJsSession {
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Whether it carries STOMP (else a raw endpoint's messages).
    pub(crate) fn is_stomp(&self) -> bool {
        self.stomp
    }

    /// Hands client bytes (decoded from a send request) to the STOMP reader; false when the
    /// session is over.
    pub(crate) async fn deliver(&self, bytes: Vec<u8>) -> bool {
        if bytes.is_empty() {
            return !*self.ended.borrow();
        }
        self.inbound.send(Bytes::from(bytes)).await.is_ok()
    }

    /// Hands a raw session's messages (one per SockJS string, empty ones included) to its
    /// reader; false when the session is over.
    pub(crate) async fn deliver_each(&self, messages: Vec<String>) -> bool {
        for message in messages {
            if self.inbound.send(Bytes::from(message)).await.is_err() {
                return false;
            }
        }
        !*self.ended.borrow()
    }

    /// Attaches a receiving request; the guard detaches it when dropped.
    pub(crate) fn attach(self: &Arc<Self>) -> Result<Receiving, AttachError> {
        let mut state = self.state.lock();
        if let Some(close) = &state.closed {
            return Err(AttachError::Closed(close.clone()));
        }
        if state.receiving {
            return Err(AttachError::Busy);
        }
        state.receiving = true;
        drop(state);
        self.changed.notify_one();
        Ok(Receiving {
            session: self.clone(),
        })
    }

    /// Records the close frame the session ended with (the first one counts).
    pub(crate) fn set_closed(&self, close: (u16, String)) {
        self.state.lock().closed.get_or_insert(close);
        self.changed.notify_one();
    }

    /// The close frame to answer with once the session is over.
    pub(crate) fn close_frame(&self) -> (u16, String) {
        let state = self.state.lock();
        state.closed.clone().unwrap_or_else(|| {
            let (code, reason) = crate::sockjs::frame::GO_AWAY;
            (code, reason.to_owned())
        })
    }

    /// A receiving request was aborted by the client: messages may be lost, so the session
    /// ends (sockjs-node does the same) and later requests learn it with a 1002 close.
    pub(crate) fn interrupted(&self) {
        self.set_closed((INTERRUPTED.0, INTERRUPTED.1.to_owned()));
        self.outbox.close(CloseReason::normal());
    }

    /// Waits until the STOMP side is over.
    pub(crate) async fn wait_ended(&self) {
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
    }
}

/// A receiving request's hold on its session.
pub(crate) struct Receiving {
    session: Arc<SockJsSession>,
}

impl Receiving {
    pub(crate) fn session(&self) -> &Arc<SockJsSession> {
        &self.session
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        let mut state = self.session.state.lock();
        state.receiving = false;
        state.detached_at = Instant::now();
        drop(state);
        self.session.changed.notify_one();
    }
}

/// The sessions of one SockJS service, by session id.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<SockJsSession>>>,
}

impl Sessions {
    pub(crate) fn get(&self, id: &str) -> Option<Arc<SockJsSession>> {
        self.map.lock().get(id).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Starts a session (its STOMP side, or with `raw` its raw endpoint side, runs in its own
    /// task) for the upgrade hook's principal and the request token's grant; `None` when `id`
    /// is taken.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, each argument distinct"
    )]
    pub(crate) fn open(
        self: &Arc<Self>,
        id: &str,
        engine: &Arc<Engine>,
        slot: ConnectionSlot,
        peer: SocketAddr,
        (principal, grant): (Option<String>, Option<Grant>),
        shutdown: watch::Receiver<bool>,
        raw: Option<RawStart>,
    ) -> Option<Arc<SockJsSession>> {
        let config = &engine.config;
        let outbox = engine.broker.new_outbox();
        let (inbound, receiver) = mpsc::channel(INBOUND_CHUNKS);
        let (ended, ended_rx) = watch::channel(false);
        let session = Arc::new(SockJsSession {
            outbox: outbox.clone(),
            inbound,
            state: Mutex::new(State {
                receiving: false,
                detached_at: Instant::now(),
                closed: None,
            }),
            changed: Notify::new(),
            ended,
            stomp: raw.is_none(),
        });
        {
            let mut map = self.map.lock();
            if map.contains_key(id) {
                return None;
            }
            map.insert(id.to_owned(), session.clone());
        }
        let delay = config.sockjs.disconnect_delay;
        let end = SessionEnd {
            sessions: self.clone(),
            id: id.to_owned(),
            session: session.clone(),
            delay,
            _slot: slot,
        };
        if let Some(start) = raw {
            let lifetime = tokio::spawn(lifetime(session.clone(), delay));
            let conn = engine
                .raw
                .open(engine.next_session_id(), start.endpoint.clone(), outbox);
            let user = principal.or_else(|| grant.map(|g| g.subject));
            engine.emit(crate::events::Event::RawOpen(crate::raw::RawOpen {
                conn: conn.id,
                endpoint: start.endpoint.path.clone(),
                remote_addr: Some(peer),
                query: start.request.query,
                headers: start.request.headers,
                subprotocol: None,
                user,
            }));
            tokio::spawn(super::raw_session::run(super::raw_session::RawSessionRun {
                engine: engine.clone(),
                conn,
                access: start.access,
                messages: receiver,
                ended: ended_rx,
                lifetime,
                shutdown,
                end,
                disconnect_delay: delay,
            }));
            return Some(session);
        }
        let mut stomp = Session::new(engine.clone(), outbox, TransportKind::WebSocket, Some(peer));
        stomp.set_principal(principal);
        stomp.set_grant(grant);
        let conn = Connection::new(stomp, Inbound::Raw);
        let lifetime = tokio::spawn(lifetime(session.clone(), delay));
        let source = ChannelSource {
            receiver,
            ended: ended_rx,
        };
        tokio::spawn(drive(
            source,
            BytesMut::new(),
            conn,
            lifetime,
            shutdown,
            end,
        ));
        Some(session)
    }
}

/// Stands in for a socket writer: returns when the session should end.
async fn lifetime(session: Arc<SockJsSession>, delay: Duration) -> io::Result<()> {
    session_lifetime(&session, delay).await;
    // The reader sees end of stream, so the STOMP side finishes at once.
    session.ended.send_replace(true);
    Ok(())
}

async fn session_lifetime(session: &SockJsSession, delay: Duration) {
    loop {
        let changed = session.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let deadline = {
            let state = session.state.lock();
            if state.closed.is_some() {
                return;
            }
            (!state.receiving).then_some(state.detached_at + delay)
        };
        match deadline {
            Some(deadline) if Instant::now() >= deadline => return,
            Some(deadline) => {
                tokio::select! {
                    _ = changed => {}
                    _ = sleep_until(deadline) => {}
                }
            }
            None => changed.await,
        }
    }
}

/// What a raw endpoint's SockJS session starts with.
pub(crate) struct RawStart {
    pub endpoint: Arc<crate::raw::RawEndpoint>,
    /// Token permissions on the endpoint (token authentication on).
    pub access: Option<crate::transport::raw_connection::RawAccess>,
    /// The opening request (query and headers for `RawOpen`).
    pub request: crate::ws::handshake::UpgradeRequest,
}

/// Runs when the session's STOMP side has ended: marks the session over, and forgets it after
/// the disconnect delay (until then, requests are answered with its close frame).
pub(crate) struct SessionEnd {
    sessions: Arc<Sessions>,
    id: String,
    session: Arc<SockJsSession>,
    delay: Duration,
    _slot: ConnectionSlot,
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        self.session.ended.send_replace(true);
        let sessions = self.sessions.clone();
        let id = std::mem::take(&mut self.id);
        let session = self.session.clone();
        let forget = move || {
            let mut map = sessions.map.lock();
            if map.get(&id).is_some_and(|s| Arc::ptr_eq(s, &session)) {
                map.remove(&id);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let delay = self.delay;
                handle.spawn(async move {
                    tokio::time::sleep(delay).await;
                    forget();
                });
            }
            Err(_) => forget(),
        }
    }
}

/// The session's byte source: chunks from send requests; end of stream once it is over.
struct ChannelSource {
    receiver: mpsc::Receiver<Bytes>,
    ended: watch::Receiver<bool>,
}

impl ReadSource for ChannelSource {
    async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            if *self.ended.borrow() {
                return Ok(0);
            }
            tokio::select! {
                chunk = self.receiver.recv() => return match chunk {
                    Some(chunk) => {
                        buf.extend_from_slice(&chunk);
                        Ok(chunk.len())
                    }
                    None => Ok(0),
                },
                changed = self.ended.changed() => if changed.is_err() {
                    return Ok(0);
                },
            }
        }
    }
}
