//! One connection of a client, sans-IO: the WebSocket upgrade and framing (or plain TCP),
//! STOMP encoding and decoding, heart-beat timers. Bytes and time in; bytes to write, events
//! and completions out. The [`Session`] it drives outlives it.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::RngCore;
use rand::rngs::StdRng;

use super::event::ClientEvent;
use super::session::{Action, Failure, Output, Request, Session, Token};
use crate::stomp::decoder::{Decoded, Decoder, FrameLimits};
use crate::stomp::encoder::{HEARTBEAT, encode};
use crate::stomp::frame::Frame;
use crate::stomp::version::Version;
use crate::ws::client::{ClientRequest, parse_response, upgrade_request};
use crate::ws::decoder::{MessageDecoder, WsEvent, WsLimits};
use crate::ws::deflate::{DEFAULT_LEVEL, RSV1, deflate_client_message};
use crate::ws::frame::{OpCode, encode_masked_frame};

/// Messages at least this long are compressed when permessage-deflate was agreed.
const COMPRESS_FROM: usize = 256;

/// The settings of every connection of one client.
#[derive(Debug, Clone)]
pub(crate) struct LinkConfig {
    pub websocket: bool,
    pub raw: bool,
    pub host_header: String,
    pub target: String,
    pub ws_headers: Vec<(String, String)>,
    /// Raw mode's subprotocols (STOMP mode offers `v12.stomp, v11.stomp, v10.stomp`).
    pub subprotocols: Vec<String>,
    pub permessage_deflate: bool,
    /// Raw mode: ping every this often.
    pub ping_every: Option<Duration>,
    pub limits: FrameLimits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The upgrade request is out; waiting for 101.
    Upgrading,
    /// CONNECT is out; waiting for CONNECTED.
    Connecting,
    Open,
    /// Closed (by a Close frame or a confirmed DISCONNECT): nothing more is read or sent.
    Closed,
}

struct WsSide {
    decoder: MessageDecoder,
    key: String,
    subprotocols: Vec<String>,
    /// The window the client may compress with, when deflate was agreed.
    deflate_window: Option<u8>,
    rng: StdRng,
}

/// Output of the link's methods.
#[derive(Debug, Default)]
pub(crate) struct LinkOut {
    /// Bytes to write to the socket, in order.
    pub bytes: BytesMut,
    /// Events and completions.
    pub session: Output,
}

/// One connection.
pub(crate) struct Link {
    config: LinkConfig,
    phase: Phase,
    ws: Option<WsSide>,
    /// STOMP bytes: assembled from WebSocket messages, or the socket's bytes over TCP.
    stomp_buf: BytesMut,
    stomp: Decoder,
    version: Version,
    send_every: Option<Duration>,
    expect_every: Option<Duration>,
    last_read: Instant,
    last_write: Instant,
}

impl Link {
    /// A connection about to start; `key` is the `Sec-WebSocket-Key`, `rng` makes the
    /// masking keys.
    pub(crate) fn new(config: LinkConfig, key: String, rng: StdRng, now: Instant) -> Link {
        let ws = config.websocket.then(|| WsSide {
            decoder: MessageDecoder::for_client(WsLimits {
                max_frame_size: config.limits.max_frame_size.max(1024),
                max_message_size: config.limits.max_frame_size.max(1024) + 4096,
            }),
            key,
            subprotocols: if config.raw {
                config.subprotocols.clone()
            } else {
                [Version::V1_2, Version::V1_1, Version::V1_0]
                    .iter()
                    .map(|v| v.ws_subprotocol().to_string())
                    .collect()
            },
            deflate_window: None,
            rng,
        });
        Link {
            stomp: Decoder::new(config.limits.clone()),
            config,
            phase: Phase::Upgrading,
            ws,
            stomp_buf: BytesMut::new(),
            version: Version::V1_2,
            send_every: None,
            expect_every: None,
            last_read: now,
            last_write: now,
        }
    }

    /// True once the connection carries messages (CONNECTED, or the open raw WebSocket).
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// True after a Close frame or a confirmed DISCONNECT.
    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The first bytes: the upgrade request, or (over TCP) CONNECT.
    pub(crate) fn start(&mut self, session: &Session, out: &mut LinkOut) {
        match &self.ws {
            Some(ws) => {
                let request = upgrade_request(&ClientRequest {
                    host: &self.config.host_header,
                    target: &self.config.target,
                    key: &ws.key,
                    subprotocols: &ws.subprotocols,
                    permessage_deflate: self.config.permessage_deflate,
                    headers: &self.config.ws_headers,
                });
                out.bytes.extend_from_slice(&request);
                self.phase = Phase::Upgrading;
            }
            None => {
                self.phase = Phase::Connecting;
                let connect = session.connect_frame();
                self.write_frame(&connect, out);
            }
        }
    }

    /// Bytes read from the socket (consumed from `input`).
    pub(crate) fn receive(
        &mut self,
        session: &mut Session,
        input: &mut BytesMut,
        now: Instant,
        out: &mut LinkOut,
    ) -> Result<(), String> {
        if input.is_empty() || self.phase == Phase::Closed {
            return Ok(());
        }
        self.last_read = now;
        if self.phase == Phase::Upgrading {
            let ws = self.ws.as_mut().expect("upgrading a WebSocket");
            let Some((consumed, accepted)) = parse_response(
                input,
                &ws.key,
                &ws.subprotocols,
                self.config.permessage_deflate,
            )
            .map_err(|e| e.to_string())?
            else {
                return Ok(());
            };
            let _ = input.split_to(consumed);
            if let Some(agreed) = accepted.deflate {
                if agreed.server_no_context_takeover {
                    ws.decoder.enable_permessage_deflate();
                } else {
                    ws.decoder.enable_permessage_deflate_with_context();
                }
                ws.deflate_window = Some(agreed.client_max_window_bits);
            }
            if self.config.raw {
                self.phase = Phase::Open;
                self.send_every = self.config.ping_every;
                out.session
                    .actions
                    .push(Action::Event(ClientEvent::Connected {
                        server: None,
                        version: accepted.subprotocol.unwrap_or_default(),
                        session: None,
                        reconnected: false,
                    }));
            } else {
                if let Some(version) = accepted
                    .subprotocol
                    .as_deref()
                    .and_then(Version::from_ws_subprotocol)
                {
                    self.version = version;
                }
                self.phase = Phase::Connecting;
                let connect = session.connect_frame();
                self.write_frame(&connect, out);
            }
        }
        if self.ws.is_some() {
            self.receive_ws(session, input, out)
        } else {
            self.stomp_buf.extend_from_slice(input);
            input.clear();
            self.decode_stomp(session, out)
        }
    }

    fn receive_ws(
        &mut self,
        session: &mut Session,
        input: &mut BytesMut,
        out: &mut LinkOut,
    ) -> Result<(), String> {
        loop {
            let ws = self.ws.as_mut().expect("a WebSocket");
            let event = match ws.decoder.decode(input) {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let mut close = BytesMut::new();
                    crate::ws::frame::encode_close(e.close_code, e.reason, &mut close);
                    self.write_ws(OpCode::Close, &close[2..], out);
                    return Err(format!("WebSocket protocol error from the server: {e}"));
                }
            };
            match event {
                WsEvent::Text(data) if self.config.raw => {
                    let raw = ClientEvent::Raw {
                        data,
                        binary: false,
                    };
                    out.session.actions.push(Action::Event(raw));
                }
                WsEvent::Binary(data) if self.config.raw => {
                    let raw = ClientEvent::Raw { data, binary: true };
                    out.session.actions.push(Action::Event(raw));
                }
                WsEvent::Text(data) | WsEvent::Binary(data) => {
                    self.stomp_buf.extend_from_slice(&data);
                    self.decode_stomp(session, out)?;
                }
                WsEvent::Ping(payload) => self.write_ws(OpCode::Pong, &payload, out),
                WsEvent::Pong(_) => {}
                WsEvent::Close { code, reason } => {
                    let mut payload = BytesMut::new();
                    if let Some(code) = code {
                        payload.extend_from_slice(&code.to_be_bytes());
                    }
                    self.write_ws(OpCode::Close, &payload, out);
                    self.phase = Phase::Closed;
                    return Err(match code {
                        Some(code) if reason.is_empty() => {
                            format!("the server closed the WebSocket ({code})")
                        }
                        Some(code) => format!("the server closed the WebSocket ({code} {reason})"),
                        None => "the server closed the WebSocket".to_string(),
                    });
                }
            }
            if self.phase == Phase::Closed {
                return Ok(());
            }
        }
    }

    fn decode_stomp(&mut self, session: &mut Session, out: &mut LinkOut) -> Result<(), String> {
        loop {
            let decoded = self
                .stomp
                .decode(&mut self.stomp_buf)
                .map_err(|e| format!("malformed STOMP frame from the server: {e}"))?;
            let frame = match decoded {
                None => return Ok(()),
                Some(Decoded::Heartbeat) => continue,
                Some(Decoded::Frame(frame)) => frame,
            };
            match self.phase {
                Phase::Connecting => {
                    let mut replies = Output::default();
                    let negotiated = session.on_connect_reply(&frame, &mut replies)?;
                    self.version = negotiated.version;
                    self.stomp.set_version(negotiated.version);
                    let ms = |v: u32| (v > 0).then(|| Duration::from_millis(u64::from(v)));
                    self.send_every = ms(negotiated.heartbeat.send_ms);
                    self.expect_every = ms(negotiated.heartbeat.receive_ms);
                    self.phase = Phase::Open;
                    self.flush(replies, out);
                }
                Phase::Open => {
                    let mut replies = Output::default();
                    session.handle(frame, &mut replies);
                    let closed = replies.actions.contains(&Action::Closed);
                    self.flush(replies, out);
                    if closed {
                        self.phase = Phase::Closed;
                        return Ok(());
                    }
                }
                Phase::Upgrading | Phase::Closed => return Ok(()),
            }
        }
    }

    /// Encodes the session's frames and passes its actions on.
    fn flush(&mut self, output: Output, out: &mut LinkOut) {
        for frame in &output.frames {
            self.write_frame(frame, out);
        }
        out.session.actions.extend(output.actions);
    }

    fn write_frame(&mut self, frame: &Frame, out: &mut LinkOut) {
        if self.ws.is_none() {
            encode(frame, self.version, &mut out.bytes);
            return;
        }
        let mut encoded = BytesMut::new();
        encode(frame, self.version, &mut encoded);
        let opcode = if std::str::from_utf8(&encoded).is_ok() {
            OpCode::Text
        } else {
            OpCode::Binary
        };
        self.write_ws(opcode, &encoded, out);
    }

    /// One masked WebSocket frame (a data message compressed when that pays).
    fn write_ws(&mut self, opcode: OpCode, payload: &[u8], out: &mut LinkOut) {
        let ws = self.ws.as_mut().expect("a WebSocket");
        let mut mask = [0u8; 4];
        ws.rng.fill_bytes(&mut mask);
        let mut b0 = 0x80 | opcode.as_u8();
        if !opcode.is_control()
            && payload.len() >= COMPRESS_FROM
            && let Some(window) = ws.deflate_window
            && let Some(compressed) = deflate_client_message(payload, window, DEFAULT_LEVEL)
        {
            b0 |= RSV1;
            encode_masked_frame(b0, &compressed, mask, &mut out.bytes);
            return;
        }
        encode_masked_frame(b0, payload, mask, &mut out.bytes);
    }

    /// A host request on the open connection.
    pub(crate) fn request(
        &mut self,
        session: &mut Session,
        request: Request,
        token: Option<Token>,
        now: Instant,
        out: &mut LinkOut,
    ) {
        self.last_write = now;
        if self.config.raw {
            match request {
                Request::Raw { data, binary } => {
                    let opcode = if binary { OpCode::Binary } else { OpCode::Text };
                    self.write_ws(opcode, &data, out);
                    if let Some(token) = token {
                        out.session.actions.push(Action::Done(token, Ok(())));
                    }
                }
                _ => {
                    if let Some(token) = token {
                        out.session.actions.push(Action::Done(
                            token,
                            Err(Failure::Invalid("STOMP requests need STOMP mode".into())),
                        ));
                    }
                }
            }
            return;
        }
        let mut output = Output::default();
        session.request(request, token, &mut output);
        self.flush(output, out);
    }

    /// DISCONNECT (STOMP: its RECEIPT closes the link) or a Close frame (raw mode).
    pub(crate) fn disconnect(
        &mut self,
        session: &mut Session,
        token: Option<Token>,
        out: &mut LinkOut,
    ) {
        if self.config.raw {
            let mut payload = BytesMut::new();
            payload.extend_from_slice(&crate::ws::codes::NORMAL.to_be_bytes());
            self.write_ws(OpCode::Close, &payload, out);
            self.phase = Phase::Closed;
            if let Some(token) = token {
                out.session.actions.push(Action::Done(token, Ok(())));
            }
            return;
        }
        let frame = session.disconnect(token);
        self.write_frame(&frame, out);
    }

    /// A Close frame after a confirmed DISCONNECT (WebSocket only).
    pub(crate) fn close(&mut self, out: &mut LinkOut) {
        if self.ws.is_some() {
            let payload = crate::ws::codes::NORMAL.to_be_bytes();
            self.write_ws(OpCode::Close, &payload, out);
        }
        self.phase = Phase::Closed;
    }

    /// When [`Link::on_timer`] should run next (None: no timers).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Open {
            return None;
        }
        let send = self.send_every.map(|every| self.last_write + every);
        let expect = self.expect_every.map(|every| self.last_read + every * 2);
        match (send, expect) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Heart-beats: sends one when due; an error when the server went silent.
    pub(crate) fn on_timer(&mut self, now: Instant, out: &mut LinkOut) -> Result<(), String> {
        if self.phase != Phase::Open {
            return Ok(());
        }
        if let Some(every) = self.expect_every
            && now >= self.last_read + every * 2
        {
            return Err(format!(
                "no heart-beat from the server for {} ms",
                (every * 2).as_millis()
            ));
        }
        if let Some(every) = self.send_every
            && now >= self.last_write + every
        {
            self.last_write = now;
            if self.config.raw {
                self.write_ws(OpCode::Ping, b"", out);
            } else if self.ws.is_some() {
                self.write_ws(OpCode::Text, HEARTBEAT, out);
            } else {
                out.bytes.extend_from_slice(HEARTBEAT);
            }
        }
        Ok(())
    }

    /// Marks a write (requests count as traffic for the send heart-beat).
    pub(crate) fn wrote(&mut self, now: Instant) {
        self.last_write = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stomp::frame::Command;
    use crate::ws::handshake::{Handshake, HandshakeConfig, parse_upgrade};
    use rand::SeedableRng;

    fn config(websocket: bool, raw: bool) -> LinkConfig {
        LinkConfig {
            websocket,
            raw,
            host_header: "127.0.0.1:1".into(),
            target: "/ws".into(),
            ws_headers: Vec::new(),
            subprotocols: Vec::new(),
            permessage_deflate: true,
            ping_every: None,
            limits: FrameLimits::default(),
        }
    }

    fn session() -> Session {
        Session::new(super::super::session::StompParams {
            heartbeat: (1000, 1000),
            ..Default::default()
        })
    }

    /// What the server reads from the client's bytes: STOMP frames (through our server-side
    /// WebSocket decoder, which insists on masking).
    fn server_reads(bytes: &mut BytesMut, ws: &mut MessageDecoder) -> Vec<Frame> {
        let mut stomp = BytesMut::new();
        while let Some(event) = ws.decode(bytes).unwrap() {
            if let WsEvent::Text(data) | WsEvent::Binary(data) = event {
                stomp.extend_from_slice(&data);
            }
        }
        let mut decoder = Decoder::new(FrameLimits::default());
        let mut frames = Vec::new();
        while let Some(decoded) = decoder.decode(&mut stomp).unwrap() {
            if let Decoded::Frame(f) = decoded {
                frames.push(f);
            }
        }
        frames
    }

    fn server_frame(frame: &Frame, out: &mut BytesMut) {
        let mut stomp = BytesMut::new();
        encode(frame, Version::V1_2, &mut stomp);
        crate::ws::frame::encode_frame(OpCode::Text, &stomp, out);
    }

    #[test]
    fn websocket_upgrade_connect_and_heartbeats() {
        let t0 = Instant::now();
        let mut s = session();
        let mut link = Link::new(
            config(true, false),
            "dGhlIHNhbXBsZSBub25jZQ==".into(),
            StdRng::seed_from_u64(1),
            t0,
        );
        let mut out = LinkOut::default();
        link.start(&s, &mut out);
        let (n, hs) = parse_upgrade(&out.bytes, &HandshakeConfig::default())
            .unwrap()
            .unwrap();
        assert_eq!(n, out.bytes.len());
        let Handshake::Accept { request, response } = hs else {
            panic!("{hs:?}")
        };
        assert_eq!(request.subprotocol.as_deref(), Some("v12.stomp"));
        assert!(request.permessage_deflate.is_some());
        // The 101 and CONNECTED arrive in one read.
        let mut input = BytesMut::from(&response[..]);
        server_frame(
            &Frame::new(Command::Connected)
                .with_header("version", "1.2")
                .with_header("heart-beat", "1000,1000"),
            &mut input,
        );
        let mut out = LinkOut::default();
        link.receive(&mut s, &mut input, t0, &mut out).unwrap();
        assert!(link.is_open());
        assert!(matches!(
            out.session.actions[0],
            Action::Event(ClientEvent::Connected { .. })
        ));
        let mut server_ws = MessageDecoder::new(WsLimits::default());
        let frames = server_reads(&mut out.bytes, &mut server_ws);
        assert_eq!(frames[0].command, Command::Connect);
        // A large SEND is compressed (the server's decoder inflates it).
        server_ws.enable_permessage_deflate();
        let mut out = LinkOut::default();
        let body = "x".repeat(4000);
        link.request(
            &mut s,
            Request::Send {
                destination: "/topic/a".into(),
                headers: Vec::new(),
                body: body.clone().into(),
                transaction: None,
            },
            None,
            t0,
            &mut out,
        );
        assert!(out.bytes.len() < 1000, "compressed: {}", out.bytes.len());
        assert_eq!(out.bytes[0] & RSV1, RSV1);
        let frames = server_reads(&mut out.bytes, &mut server_ws);
        assert_eq!(frames[0].body, body.as_bytes());
        // Heart-beats: one due after 1 s of sending nothing; silence for 2 s is fatal.
        assert_eq!(link.deadline(), Some(t0 + Duration::from_secs(1)));
        let mut out = LinkOut::default();
        link.on_timer(t0 + Duration::from_secs(1), &mut out)
            .unwrap();
        assert!(!out.bytes.is_empty(), "a heart-beat frame");
        let err = link
            .on_timer(t0 + Duration::from_millis(2001), &mut LinkOut::default())
            .unwrap_err();
        assert!(err.contains("no heart-beat"), "{err}");
        // A server Close ends the link with its code, answered with a Close.
        let mut input = BytesMut::new();
        crate::ws::frame::encode_close(1001, "going away", &mut input);
        let mut out = LinkOut::default();
        let err = link.receive(&mut s, &mut input, t0, &mut out).unwrap_err();
        assert!(err.contains("1001 going away"), "{err}");
        assert!(link.is_closed());
        assert_eq!(out.bytes[0], 0x88);
    }

    #[test]
    fn tcp_link_refused_and_raw_mode() {
        let t0 = Instant::now();
        let mut s = session();
        let mut link = Link::new(
            config(false, false),
            String::new(),
            StdRng::seed_from_u64(2),
            t0,
        );
        let mut out = LinkOut::default();
        link.start(&s, &mut out);
        assert!(out.bytes.starts_with(b"CONNECT\n"));
        let mut input = BytesMut::from(&b"ERROR\nmessage:bad login\n\n\0"[..]);
        let err = link
            .receive(&mut s, &mut input, t0, &mut LinkOut::default())
            .unwrap_err();
        assert!(err.contains("refused the connection: bad login"), "{err}");

        let mut link = Link::new(
            config(true, true),
            "dGhlIHNhbXBsZSBub25jZQ==".into(),
            StdRng::seed_from_u64(3),
            t0,
        );
        let mut out = LinkOut::default();
        link.start(&s, &mut out);
        let raw_server = HandshakeConfig {
            subprotocols: Vec::new(),
            ..HandshakeConfig::default()
        };
        let Some((_, Handshake::Accept { response, .. })) =
            parse_upgrade(&out.bytes, &raw_server).unwrap()
        else {
            panic!("rejected")
        };
        let mut input = BytesMut::from(&response[..]);
        crate::ws::frame::encode_frame(OpCode::Binary, b"\x00\x01", &mut input);
        crate::ws::frame::encode_frame(OpCode::Ping, b"p", &mut input);
        let mut out = LinkOut::default();
        link.receive(&mut s, &mut input, t0, &mut out).unwrap();
        assert!(link.is_open());
        assert!(matches!(
            &out.session.actions[1],
            Action::Event(ClientEvent::Raw { binary: true, data }) if &data[..] == b"\x00\x01"
        ));
        let mut server_ws = MessageDecoder::new(WsLimits::default());
        assert_eq!(
            server_ws.decode(&mut out.bytes).unwrap(),
            Some(WsEvent::Pong(bytes::Bytes::from_static(b"p")))
        );
    }
}
