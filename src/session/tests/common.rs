//! Helpers for the socket-free session and broker tests: a `Client` drives one `Session` and
//! reads its `Outbox` back as decoded frames, deliveries and closes.

#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::broker::{CloseReason, Delivery, Outbound, Outbox};
use crate::engine::Engine;
use crate::hooks::{Answer, Question};
use crate::session::{Flow, Session, error_frame};
use crate::stomp::{Command, Decoded, Decoder, Frame, Version, encode, encode_header_line};
use crate::{ConnectDecision, ServerConfig, TransportKind};
use bytes::{BufMut, Bytes, BytesMut};

/// A fresh engine with the default configuration.
pub fn engine() -> Arc<Engine> {
    Engine::new(ServerConfig::default())
}

/// A fresh engine with a modified default configuration.
pub fn engine_with(f: impl FnOnce(&mut ServerConfig)) -> Arc<Engine> {
    let mut config = ServerConfig::default();
    f(&mut config);
    config.validate().expect("test configuration is valid");
    Engine::new(config)
}

/// A client frame with headers and no body.
pub fn frame(command: Command, headers: &[(&str, &str)]) -> Frame {
    let mut f = Frame::new(command);
    for (name, value) in headers {
        f.push_header(*name, *value);
    }
    f
}

/// A SEND with a body.
pub fn send(destination: &str, body: &str) -> Frame {
    frame(Command::Send, &[("destination", destination)]).with_body(Bytes::from(body.to_string()))
}

/// One item read back from an outbox.
#[derive(Debug)]
pub enum Out {
    /// An encoded frame (CONNECTED, RECEIPT, version ERROR), decoded again.
    Frame(Frame),
    /// A MESSAGE to one subscription.
    Message(Delivery),
    /// The end of the connection.
    Close(CloseReason),
}

/// Decodes exactly one frame as a client of `version` would.
pub fn decode_one(bytes: &[u8], version: Version) -> Frame {
    let mut decoder = Decoder::default();
    decoder.set_version(version);
    let mut buf = BytesMut::from(bytes);
    match decoder.decode(&mut buf) {
        Ok(Some(Decoded::Frame(f))) => {
            assert!(buf.is_empty(), "trailing bytes after frame: {buf:?}");
            f
        }
        other => panic!("expected one frame in {bytes:?}, got {other:?}"),
    }
}

/// The exact bytes the transport writes for a delivery on a raw (TCP) connection, mirroring
/// `transport::writer::Batch::push_message`: a per-delivery prefix, then the shared tail.
pub fn wire(outbox: &Outbox, delivery: &Delivery) -> Vec<u8> {
    let escaping = outbox.message_escaping();
    let mut out = BytesMut::new();
    out.extend_from_slice(b"MESSAGE\n");
    encode_header_line("subscription", &delivery.subscription, escaping, &mut out);
    let ack_id = format!("{}-{}", delivery.session, delivery.seq);
    out.extend_from_slice(format!("message-id:{ack_id}\n").as_bytes());
    if delivery.ack_header {
        out.extend_from_slice(format!("ack:{ack_id}\n").as_bytes());
    }
    if delivery.redelivered {
        out.extend_from_slice(b"redelivered:true\n");
    }
    if let Some(recovered) = delivery.recovered {
        out.extend_from_slice(format!("x-recovered:{recovered}\n").as_bytes());
    }
    out.extend_from_slice(delivery.message.tail(escaping));
    out.to_vec()
}

/// The ERROR frame the transport writes for a close reason, decoded as the client reads it.
pub fn error_of(reason: &CloseReason, version: Version) -> Option<Frame> {
    let frame = error_frame(reason)?;
    let mut out = BytesMut::new();
    encode(&frame, version, &mut out);
    Some(decode_one(&out, version))
}

/// Answers a question the way the transport does: by asking the engine's hooks.
pub fn ask_hooks(engine: &Engine, question: Question) -> Answer {
    match question {
        Question::Connect(request) => Answer::Connect(
            catch_unwind(AssertUnwindSafe(|| engine.hooks.decide_connect(&request)))
                .unwrap_or_else(|_| ConnectDecision::Reject("connect hook panicked".into())),
        ),
        Question::Subscribe(request) => Answer::Subscribe(
            catch_unwind(AssertUnwindSafe(|| {
                engine.hooks.authorize_subscribe(&request)
            }))
            .unwrap_or_else(|_| Err("subscribe hook panicked".into())),
        ),
    }
}

/// One simulated connection: a session and its outbox.
pub struct Client {
    pub engine: Arc<Engine>,
    pub outbox: Arc<Outbox>,
    pub session: Session,
}

impl Client {
    /// A new, unconnected client with the configured outbox bounds.
    pub fn new(engine: &Arc<Engine>) -> Client {
        let (m, b) = (
            engine.config.broker.max_outbound_messages,
            engine.config.broker.max_outbound_bytes,
        );
        Client::with_outbox(engine, m, b)
    }

    /// A new, unconnected client with explicit outbox bounds.
    pub fn with_outbox(engine: &Arc<Engine>, max_messages: usize, max_bytes: usize) -> Client {
        let outbox = Arc::new(Outbox::new(max_messages, max_bytes));
        let session = Session::new(
            engine.clone(),
            outbox.clone(),
            TransportKind::WebSocket,
            None,
        );
        Client {
            engine: engine.clone(),
            outbox,
            session,
        }
    }

    /// A client connected with `accept-version: version` (and `login` when given).
    pub fn connected(engine: &Arc<Engine>, version: &str, login: Option<&str>) -> Client {
        let mut client = Client::new(engine);
        let mut headers = vec![("accept-version", version), ("host", "/")];
        if let Some(login) = login {
            headers.push(("login", login));
        }
        let connected = client.connect(&headers);
        assert_eq!(connected.header("version"), Some(version));
        client
    }

    /// Sends CONNECT with `headers`, answers through the hooks, and returns CONNECTED.
    pub fn connect(&mut self, headers: &[(&str, &str)]) -> Frame {
        let flow = self.feed(frame(Command::Connect, headers));
        assert!(matches!(flow, Flow::Continue), "CONNECT gave {flow:?}");
        let out = self.drain();
        match out.as_slice() {
            [Out::Frame(f)] if f.command == Command::Connected => f.clone(),
            other => panic!("expected CONNECTED, got {other:?}"),
        }
    }

    /// Hands one frame to the session without answering questions.
    pub fn raw(&mut self, f: Frame) -> Flow {
        let flow = self.session.handle(f);
        self.engine.run_queued_callbacks();
        flow
    }

    /// Hands one frame to the session and answers its questions through the hooks, as the
    /// transport does.
    pub fn feed(&mut self, f: Frame) -> Flow {
        let mut flow = self.session.handle(f);
        loop {
            flow = match flow {
                Flow::Ask(question) => self.session.answer(ask_hooks(&self.engine, question)),
                // Inline here; a server runs handlers on its callback threads.
                Flow::App(call) => self.session.app_done(call.run()),
                other => {
                    // Host callbacks the frame queued run now (a server has threads for them).
                    self.engine.run_queued_callbacks();
                    return other;
                }
            };
        }
    }

    /// Feeds a frame that must be accepted, then expects exactly one RECEIPT for it and no
    /// other frame. What was queued before, and the deliveries the frame caused (a SUBSCRIBE
    /// to a queue with waiting messages, an ACK that opens a prefetch window), are queued
    /// again, in order, for the test to read.
    pub fn ok(&mut self, f: Frame) {
        let f = f.with_header("receipt", "ok");
        let command = f.command;
        let mut earlier = Vec::new();
        self.outbox.try_drain(&mut earlier, usize::MAX);
        let flow = self.feed(f);
        assert!(matches!(flow, Flow::Continue), "{command} gave {flow:?}");
        let mut receipts = Vec::new();
        let mut deliveries = Vec::new();
        for item in self.drain() {
            match item {
                Out::Frame(f) => receipts.push(f),
                Out::Message(d) => deliveries.push(d),
                Out::Close(reason) => panic!("{command}: unexpected close {reason:?}"),
            }
        }
        assert_eq!(
            receipts.len(),
            1,
            "{command}: expected one RECEIPT, got {receipts:?}"
        );
        assert_eq!(receipts[0].command, Command::Receipt);
        assert_eq!(receipts[0].header("receipt-id"), Some("ok"));
        let again = earlier
            .into_iter()
            .chain(deliveries.into_iter().map(Outbound::Message));
        for item in again {
            self.outbox.push(item).expect("re-queue an item");
        }
    }

    /// Subscribes (checked with a receipt).
    pub fn subscribe(&mut self, id: &str, destination: &str, ack: &str) {
        self.ok(frame(
            Command::Subscribe,
            &[("id", id), ("destination", destination), ("ack", ack)],
        ));
    }

    /// Sends a message (checked with a receipt).
    pub fn send(&mut self, destination: &str, body: &str) {
        self.ok(send(destination, body));
    }

    /// The negotiated version.
    pub fn version(&self) -> Version {
        self.session.version()
    }

    /// Everything queued so far.
    pub fn drain(&self) -> Vec<Out> {
        let mut items = Vec::new();
        self.outbox.try_drain(&mut items, 100_000);
        let version = self.outbox.version();
        items
            .into_iter()
            .filter_map(|item| match item {
                Outbound::Frame(bytes) => Some(Out::Frame(decode_one(&bytes, version))),
                Outbound::Message(d) => Some(Out::Message(d)),
                Outbound::Close(reason) => Some(Out::Close(reason)),
                Outbound::Ping(_) | Outbound::Pong(_) => None,
                Outbound::WsFrame(_) => panic!("a STOMP session queued a raw WebSocket frame"),
            })
            .collect()
    }

    /// Drains, asserting only frames (no messages, no close) were queued.
    pub fn drain_frames_only(&self) -> Vec<Frame> {
        self.drain()
            .into_iter()
            .map(|o| match o {
                Out::Frame(f) => f,
                other => panic!("expected only frames, got {other:?}"),
            })
            .collect()
    }

    /// Drains, asserting only deliveries were queued.
    pub fn messages(&self) -> Vec<Delivery> {
        self.drain()
            .into_iter()
            .map(|o| match o {
                Out::Message(d) => d,
                other => panic!("expected only messages, got {other:?}"),
            })
            .collect()
    }

    /// Bodies of the deliveries queued so far.
    pub fn bodies(&self) -> Vec<String> {
        self.messages()
            .iter()
            .map(|d| String::from_utf8(d.message.body().to_vec()).unwrap())
            .collect()
    }

    /// Drains and expects the connection to be closing with an ERROR: returns the decoded
    /// ERROR frame and the close reason. Frames queued before the close must be absent.
    pub fn expect_error(&self) -> (Frame, CloseReason) {
        let out = self.drain();
        match out.as_slice() {
            [Out::Close(reason)] => {
                let error = error_of(reason, self.outbox.version())
                    .unwrap_or_else(|| panic!("close without ERROR: {reason:?}"));
                assert_eq!(error.command, Command::Error);
                (error, reason.clone())
            }
            other => panic!("expected a single ERROR close, got {other:?}"),
        }
    }

    /// Feeds a frame that must be refused; returns the ERROR and close reason.
    pub fn refused(&mut self, f: Frame) -> (Frame, CloseReason) {
        let command = f.command;
        let flow = self.feed(f);
        assert!(matches!(flow, Flow::Close), "{command} gave {flow:?}");
        assert!(self.session.is_closed());
        assert!(self.outbox.is_closing());
        self.expect_error()
    }

    /// Acknowledges a delivery with the header the session's version uses.
    pub fn ack_frame(&self, command: Command, d: &Delivery) -> Frame {
        let id = format!("{}-{}", d.session, d.seq);
        match self.version() {
            Version::V1_2 => frame(command, &[("id", &id)]),
            Version::V1_1 => frame(
                command,
                &[("message-id", &id), ("subscription", &d.subscription)],
            ),
            Version::V1_0 => frame(command, &[("message-id", &id)]),
        }
    }
}

/// The `message-id` / `ack` value of a delivery.
pub fn ack_id(d: &Delivery) -> String {
    format!("{}-{}", d.session, d.seq)
}

/// Body of a delivery as text.
pub fn body(d: &Delivery) -> String {
    String::from_utf8(d.message.body().to_vec()).unwrap()
}

/// Builds the raw framing of many deliveries at once (as one writev batch would).
pub fn wire_all(outbox: &Outbox, deliveries: &[Delivery]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for d in deliveries {
        out.put_slice(&wire(outbox, d));
    }
    out.to_vec()
}
