//! Helpers of the `raw_*` integration tests: raw WebSocket clients (tokio-tungstenite) and an
//! event reader that waits for a matching event (bounded by `common::WAIT`) without losing the
//! others.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsbroker::Event;
use wsbroker::Server;

use crate::common::WAIT;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client connected to `path` (no subprotocol offered).
pub async fn connect(addr: SocketAddr, path: &str) -> Ws {
    let url = format!("ws://{addr}{path}");
    // Room for the largest messages tests echo (tungstenite's default frame limit is 16 MiB).
    let mut limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    limits.max_frame_size = Some(64 << 20);
    limits.max_message_size = Some(64 << 20);
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(limits), false);
    let (ws, _) = tokio::time::timeout(WAIT, connecting)
        .await
        .expect("handshake in time")
        .expect("handshake accepted");
    ws
}

/// The next text or binary message (pings and pongs skipped); panics on close or timeout.
pub async fn next_data(ws: &mut Ws) -> WsMessage {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("stream open")
            .expect("no protocol error");
        match message {
            WsMessage::Text(_) | WsMessage::Binary(_) => return message,
            WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            other => panic!("expected a data message, got {other:?}"),
        }
    }
}

/// Reads until the server's close frame; returns its code and reason. Data before it is
/// returned too, so tests can check what was flushed before the close.
pub async fn read_until_close(ws: &mut Ws) -> (Vec<WsMessage>, Option<(u16, String)>) {
    let mut data = Vec::new();
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the close in time");
        match next {
            Some(Ok(WsMessage::Close(frame))) => {
                let close =
                    frame.map(|CloseFrame { code, reason }| (u16::from(code), reason.to_string()));
                return (data, close);
            }
            Some(Ok(message @ (WsMessage::Text(_) | WsMessage::Binary(_)))) => data.push(message),
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("error before the close frame: {error}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(WsMessage::text(text)).await.expect("send");
}

pub async fn send_binary(ws: &mut Ws, data: &[u8]) {
    ws.send(WsMessage::binary(data.to_vec()))
        .await
        .expect("send");
}

/// Polls a server's event queue; events not asked for yet are kept for later calls.
pub struct Events {
    server: Arc<Server>,
    pending: VecDeque<Event>,
}

impl Events {
    pub fn new(server: Arc<Server>) -> Events {
        Events {
            server,
            pending: VecDeque::new(),
        }
    }

    /// The first event (oldest first) for which `pick` returns something.
    pub async fn find<T>(&mut self, what: &str, pick: impl Fn(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(index) = self.pending.iter().position(|e| pick(e).is_some()) {
                let event = self.pending.remove(index).expect("index found");
                return pick(&event).expect("picked above");
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("no {what} event; pending: {:?}", self.pending);
            }
            let server = self.server.clone();
            let polled = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                server
                    .poll_events(&mut out, 64, Duration::from_millis(100))
                    .expect("polled delivery is on");
                out
            })
            .await
            .expect("poll does not panic");
            self.pending.extend(polled);
        }
    }

    /// The next `RawOpen` (connection id and the event).
    pub async fn opened(&mut self) -> wsbroker::RawOpen {
        self.find("RawOpen", |e| match e {
            Event::RawOpen(open) => Some(open.clone()),
            _ => None,
        })
        .await
    }

    /// The next `RawMessage` of `conn`.
    pub async fn message_of(&mut self, conn: u64) -> wsbroker::RawMessage {
        self.find("RawMessage", |e| match e {
            Event::RawMessage(m) if m.conn == conn => Some(m.clone()),
            _ => None,
        })
        .await
    }

    /// The `RawClose` of `conn`.
    pub async fn closed(&mut self, conn: u64) -> wsbroker::RawClose {
        self.find("RawClose", |e| match e {
            Event::RawClose(c) if c.conn == conn => Some(c.clone()),
            _ => None,
        })
        .await
    }
}
