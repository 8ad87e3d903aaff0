//! Fuzz targets over the sans-IO layers (not part of the public API).
//!
//! Each function takes arbitrary bytes and panics only if an invariant is broken. The same
//! functions run under libFuzzer (`fuzz/`, see `scripts/fuzz.sh`) and in the stable smoke test
//! `tests/fuzz_smoke.rs`, which replays the committed corpus plus deterministic mutations.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::ServerConfig;
use crate::broker::{Outbound, Outbox};
use crate::engine::Engine;
use crate::hooks::{ConnectDecision, TransportKind};
use crate::hooks::{Answer, Question};
use crate::session::{Flow, Session, error_frame};
use crate::stomp::{Command, DecodeError, Decoded, Decoder, FrameLimits, Frame, Version, encode};
use crate::ws::decoder::{MessageDecoder, WsError, WsEvent, WsLimits};
use crate::ws::handshake::{Handshake, HandshakeConfig, parse_upgrade};

/// Small deterministic PRNG used to pick split points from the input itself.
struct XorShift(u64);

impl XorShift {
    fn seeded(data: &[u8]) -> XorShift {
        // FNV-1a of the input, never 0.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        XorShift(h | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Chunk boundaries for feeding `len` bytes: whole, byte-at-a-time (short inputs) and random.
fn splits(data: &[u8]) -> Vec<Vec<usize>> {
    let len = data.len();
    let mut out = vec![vec![len]];
    if len <= 512 {
        out.push((1..=len).collect());
    }
    let mut rng = XorShift::seeded(data);
    for _ in 0..2 {
        let mut cuts: Vec<usize> = (0..rng.below(8) + 1).map(|_| rng.below(len + 1)).collect();
        cuts.push(len);
        cuts.sort_unstable();
        cuts.dedup();
        out.push(cuts);
    }
    out
}

// ---- WebSocket frame decoder ---------------------------------------------------------------

fn ws_run(
    limits: WsLimits,
    deflate: bool,
    data: &[u8],
    cuts: &[usize],
) -> (Vec<WsEvent>, Option<WsError>) {
    let mut dec = MessageDecoder::new(limits);
    if deflate {
        dec.enable_permessage_deflate();
    }
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut pos = 0;
    for &cut in cuts {
        buf.extend_from_slice(&data[pos..cut]);
        pos = cut;
        // Each event consumes at least a 2-byte header, so this bounds a correct decoder.
        let mut budget = buf.len() + 2;
        loop {
            assert!(budget > 0, "ws decoder makes no progress");
            budget -= 1;
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(ev)) => {
                    assert!(buf.len() < before, "event without consuming bytes");
                    check_ws_event(&ev);
                    events.push(ev);
                }
                Ok(None) => break,
                Err(err) => {
                    assert_eq!(dec.decode(&mut buf), Err(err), "decoder must stay failed");
                    assert!(matches!(err.close_code, 1002 | 1007 | 1009), "{err:?}");
                    return (events, Some(err));
                }
            }
        }
        if dec.is_closed() {
            let rest = buf.len();
            assert_eq!(dec.decode(&mut buf), Ok(None));
            assert_eq!(buf.len(), rest, "bytes consumed after Close");
            break;
        }
    }
    (events, None)
}

fn check_ws_event(ev: &WsEvent) {
    match ev {
        WsEvent::Text(b) => assert!(std::str::from_utf8(b).is_ok(), "text is not UTF-8"),
        WsEvent::Ping(b) | WsEvent::Pong(b) => assert!(b.len() <= 125),
        WsEvent::Close { code, reason } => {
            assert!(code.is_some() || reason.is_empty());
            assert!(reason.len() <= 123);
        }
        WsEvent::Binary(_) => {}
    }
}

/// A masked client frame.
fn ws_client_frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    crate::ws::frame::encode_client_frame(b0, payload, mask)
}

fn ws_encode_event(ev: &WsEvent) -> Vec<u8> {
    let mask = [0xA5, 0x01, 0x7E, 0xFF];
    match ev {
        WsEvent::Text(b) => ws_client_frame(0x81, b, mask),
        WsEvent::Binary(b) => ws_client_frame(0x82, b, mask),
        WsEvent::Ping(b) => ws_client_frame(0x89, b, mask),
        WsEvent::Pong(b) => ws_client_frame(0x8A, b, mask),
        WsEvent::Close { code, reason } => {
            let mut payload = Vec::new();
            if let Some(code) = code {
                payload.extend_from_slice(&code.to_be_bytes());
                payload.extend_from_slice(reason.as_bytes());
            }
            ws_client_frame(0x88, &payload, mask)
        }
    }
}

/// WebSocket frame parser and message assembler. The first byte picks the limits (bit 0: default
/// or tiny) and whether permessage-deflate is on (bit 1: compressed messages are inflated within
/// the limits); the rest is the client's byte stream. Splitting the stream differently must give the
/// same events and the same error, and every event must re-encode and decode back equal.
pub fn ws_decoder(data: &[u8]) {
    let Some((&sel, wire)) = data.split_first() else {
        return;
    };
    let limits = if sel & 1 == 0 {
        WsLimits::default()
    } else {
        WsLimits {
            max_frame_size: 64 + usize::from(sel >> 2),
            max_message_size: 96 + usize::from(sel >> 2) * 2,
        }
    };
    let deflate = sel & 2 != 0;
    let mut reference = None;
    for cuts in splits(wire) {
        let got = ws_run(limits, deflate, wire, &cuts);
        match &reference {
            None => reference = Some(got),
            Some(want) => assert_eq!(&got, want, "split {cuts:?} differs"),
        }
    }
    let (events, _) = reference.expect("at least one split");
    for ev in &events {
        let wire = ws_encode_event(ev);
        let (again, err) = ws_run(WsLimits::default(), false, &wire, &[wire.len()]);
        assert_eq!(err, None, "re-encoded {ev:?} fails");
        assert_eq!(again.as_slice(), std::slice::from_ref(ev), "round trip");
    }
}

// ---- WebSocket handshake -------------------------------------------------------------------

fn check_handshake(data: &[u8], cfg: &HandshakeConfig) {
    let result = parse_upgrade(data, cfg);
    match &result {
        Err(_) => assert!(data.len() > cfg.max_request_bytes),
        Ok(None) => assert!(data.len() <= cfg.max_request_bytes),
        Ok(Some((consumed, hs))) => {
            assert!(*consumed <= data.len());
            match hs {
                Handshake::Accept { request, response } => {
                    assert!(response.starts_with(b"HTTP/1.1 101 "));
                    let agreed = String::from_utf8_lossy(response)
                        .contains("\r\nSec-WebSocket-Extensions: permessage-deflate; ");
                    assert_eq!(agreed, request.permessage_deflate.is_some());
                    assert!(cfg.permessage_deflate || !agreed);
                    assert!(response.ends_with(b"\r\n\r\n"));
                    assert_eq!(request.path, cfg.path);
                    if let Some(p) = &request.subprotocol {
                        assert!(cfg.subprotocols.contains(p));
                    }
                }
                Handshake::Reject { status, response } => {
                    assert!((400..600).contains(status));
                    let line = format!("HTTP/1.1 {status} ");
                    assert!(response.starts_with(line.as_bytes()));
                }
            }
            // A complete head (followed by other bytes) parses the same without those bytes,
            // and with more of them.
            if *consumed < data.len() {
                assert_eq!(parse_upgrade(&data[..*consumed], cfg), result, "prefix");
                let mut longer = data.to_vec();
                longer.extend_from_slice(b"\x81\x80abcd");
                assert_eq!(parse_upgrade(&longer, cfg), result, "suffix");
            }
        }
    }
}

/// WebSocket upgrade request parser, with the default configuration and a strict one.
pub fn ws_handshake(data: &[u8]) {
    check_handshake(data, &HandshakeConfig::default());
    let strict = HandshakeConfig {
        path: "/stomp".to_owned(),
        allowed_origins: vec!["https://example.com".to_owned(), "http://a:8080".to_owned()],
        subprotocols: vec!["v12.stomp".to_owned()],
        require_subprotocol: true,
        max_request_bytes: 256,
        max_headers: 4,
        permessage_deflate: false,
    };
    check_handshake(data, &strict);
}

// ---- STOMP decoder -------------------------------------------------------------------------

fn stomp_limits(sel: u8) -> FrameLimits {
    if sel & 0x04 == 0 {
        FrameLimits::default()
    } else {
        FrameLimits {
            max_frame_size: 200,
            max_headers: 4,
            max_header_length: 40,
        }
    }
}

fn stomp_version(sel: u8) -> Option<Version> {
    match sel & 0x03 {
        0 => None,
        1 => Some(Version::V1_0),
        2 => Some(Version::V1_1),
        _ => Some(Version::V1_2),
    }
}

/// Frames (heart-beats dropped: a run split across reads may be reported more than once) and
/// the kind of the first error.
fn stomp_run(
    limits: &FrameLimits,
    version: Option<Version>,
    data: &[u8],
    cuts: &[usize],
) -> (Vec<Frame>, Option<std::mem::Discriminant<DecodeError>>) {
    let mut dec = Decoder::new(limits.clone());
    if let Some(v) = version {
        dec.set_version(v);
    }
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    for &cut in cuts {
        buf.extend_from_slice(&data[pos..cut]);
        pos = cut;
        // Every item consumes at least one byte.
        let mut budget = buf.len() + 2;
        loop {
            assert!(budget > 0, "stomp decoder makes no progress");
            budget -= 1;
            match dec.decode(&mut buf) {
                Ok(Some(Decoded::Frame(f))) => {
                    assert!(f.body.len() <= limits.max_frame_size);
                    assert!(f.headers.len() <= limits.max_headers);
                    frames.push(f);
                }
                Ok(Some(Decoded::Heartbeat)) => {}
                Ok(None) => break,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    return (frames, Some(std::mem::discriminant(&e)));
                }
            }
        }
    }
    (frames, None)
}

/// The frame without `content-length` headers (the encoder rewrites them).
fn normalized(f: &Frame) -> (Command, Vec<(String, String)>, Bytes) {
    let headers = f
        .headers
        .iter()
        .filter(|(n, _)| n != "content-length")
        .cloned()
        .collect();
    (f.command, headers, f.body.clone())
}

/// Can `encode` represent `f` exactly for `version`? Without an escape for CR (1.0, 1.1,
/// CONNECT/CONNECTED) a CR in a header is written raw and a trailing one is stripped again.
fn representable(f: &Frame, version: Version) -> bool {
    let esc = crate::stomp::escaping_for(version, f.command);
    esc == crate::stomp::Escaping::V1_2
        || !f
            .headers
            .iter()
            .any(|(n, v)| n.contains('\r') || v.contains('\r'))
}

/// STOMP decoder. The first byte picks the version set on the decoder (none, 1.0, 1.1, 1.2)
/// and the limits; the rest is the byte stream. Splitting differently must give the same
/// frames and the same kind of error; every frame must encode and decode back equal.
pub fn stomp_decoder(data: &[u8]) {
    let Some((&sel, wire)) = data.split_first() else {
        return;
    };
    let limits = stomp_limits(sel);
    let version = stomp_version(sel);
    let mut reference = None;
    for cuts in splits(wire) {
        let got = stomp_run(&limits, version, wire, &cuts);
        match &reference {
            None => reference = Some(got),
            Some(want) => assert_eq!(&got, want, "split {cuts:?} differs"),
        }
    }
    let (frames, _) = reference.expect("at least one split");
    let enc_version = version.unwrap_or(Version::V1_0);
    for f in &frames {
        if !representable(f, enc_version) {
            continue;
        }
        let mut out = BytesMut::new();
        encode(f, enc_version, &mut out);
        let (again, err) = stomp_run(&FrameLimits::default(), version, &out, &[out.len()]);
        assert_eq!(err, None, "re-encoded {f:?} fails: {out:?}");
        assert_eq!(again.len(), 1, "re-encoded {f:?}: {again:?}");
        assert_eq!(normalized(&again[0]), normalized(f), "round trip");
    }
}

/// What [`crate::stomp::escape_into`] promises a header comes back as after encoding for
/// `esc` and decoding: NUL always, CR and LF without escaping, CR in 1.1, and `:` in a name
/// without escaping become spaces; everything else is kept.
fn sanitised(text: &str, esc: crate::stomp::Escaping, name: bool) -> String {
    use crate::stomp::Escaping;
    text.chars()
        .map(|c| match (c, esc) {
            ('\0', _) | ('\r' | '\n', Escaping::None) | ('\r', Escaping::V1_1) => ' ',
            (':', Escaping::None) if name => ' ',
            (c, _) => c,
        })
        .collect()
}

/// STOMP encoder: a frame built from arbitrary bytes — headers holding NUL, CR, LF, `:` and
/// `\`, as a host or a relayed broker might hand them over — encodes to bytes that decode back
/// to exactly one frame (nothing forged after it), with the body intact and every header as
/// [`sanitised`] says. The first byte picks the version and the command; the rest is split at
/// 0xFF into name, value, name, value, ..., body.
pub fn stomp_encoder(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let version = Version::ALL[usize::from(sel) % Version::ALL.len()];
    let command = Command::ALL[usize::from(sel / 3) % Command::ALL.len()];
    let mut parts: Vec<&[u8]> = rest.split(|&b| b == 0xff).collect();
    let body = Bytes::copy_from_slice(parts.pop().unwrap_or_default());
    let mut frame = Frame::new(command).with_body(body);
    for pair in parts.chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).into_owned();
        let value = String::from_utf8_lossy(pair.get(1).copied().unwrap_or_default()).into_owned();
        // The decoder refuses empty names; the encoder rewrites content-length itself.
        if !name.is_empty() && name != "content-length" {
            frame.push_header(name, value);
        }
    }
    let mut out = BytesMut::new();
    encode(&frame, version, &mut out);
    let limits = FrameLimits {
        max_frame_size: usize::MAX,
        max_headers: usize::MAX,
        max_header_length: usize::MAX,
    };
    let (frames, err) = stomp_run(&limits, Some(version), &out, &[out.len()]);
    assert_eq!(err, None, "{frame:?} encoded as {out:?}");
    assert_eq!(frames.len(), 1, "{frame:?} encoded as {out:?} decodes as {frames:?}");
    let esc = crate::stomp::escaping_for(version, command);
    let expected: Vec<(String, String)> = frame
        .headers
        .iter()
        .map(|(n, v)| (sanitised(n, esc, true), sanitised(v, esc, false)))
        .collect();
    let (got_command, got_headers, got_body) = normalized(&frames[0]);
    assert_eq!(got_command, command);
    assert_eq!(got_headers, expected, "{frame:?} encoded as {out:?}");
    assert_eq!(got_body, frame.body);
}

// ---- STOMP session -------------------------------------------------------------------------

fn drain_outbox(outbox: &Outbox) {
    let mut items = Vec::new();
    outbox.try_drain(&mut items, usize::MAX);
    let version = outbox.version();
    for item in items {
        let bytes = match item {
            Outbound::Frame(bytes) if bytes[..] != b"\n"[..] => bytes,
            Outbound::Close(reason) => match error_frame(&reason) {
                Some(f) => {
                    let mut out = BytesMut::new();
                    encode(&f, version, &mut out);
                    out.freeze()
                }
                None => continue,
            },
            _ => continue,
        };
        {
            let mut dec = Decoder::default();
            dec.set_version(version);
            let mut buf = BytesMut::from(&bytes[..]);
            match dec.decode(&mut buf) {
                Ok(Some(Decoded::Frame(_))) => assert!(buf.is_empty(), "trailing bytes"),
                other => panic!("server frame {bytes:?} does not decode: {other:?}"),
            }
        }
    }
}

/// STOMP session state machine over a fresh engine. The first byte picks how the host answers
/// (CONNECT accepted with or without a user or rejected, SUBSCRIBE accepted or refused); the
/// rest is decoded into frames as the transport does and handed to the session.
pub fn stomp_session(data: &[u8]) {
    let Some((&sel, wire)) = data.split_first() else {
        return;
    };
    let engine = Engine::new(ServerConfig::default());
    let outbox = Arc::new(Outbox::new(64, 1 << 20));
    let mut session = Session::new(engine, outbox.clone(), TransportKind::WebSocket, None);
    let mut decoder = Decoder::new(stomp_limits(sel));
    let mut buf = BytesMut::from(wire);
    let mut budget = wire.len() + 2;
    'frames: loop {
        assert!(budget > 0, "session loop makes no progress");
        budget -= 1;
        let frame = match decoder.decode(&mut buf) {
            Ok(Some(Decoded::Frame(f))) => f,
            Ok(Some(Decoded::Heartbeat)) => continue,
            Ok(None) => break,
            Err(e) => {
                let flow = session.protocol_error(e.to_string());
                assert!(matches!(flow, Flow::Close), "{flow:?}");
                break;
            }
        };
        let mut flow = session.handle(frame);
        let mut asks = 0;
        loop {
            let question = match flow {
                Flow::Ask(question) => question,
                // Handlers run inline here; the transports run them on callback threads.
                Flow::App(call) => {
                    flow = session.app_done(call.run());
                    continue;
                }
                other => {
                    flow = other;
                    break;
                }
            };
            asks += 1;
            assert!(asks < 4, "session keeps asking");
            let answer = match question {
                Question::Connect(_) => Answer::Connect(match sel & 0x18 {
                    0x08 => ConnectDecision::Accept {
                        user: Some("fuzz".to_owned()),
                    },
                    0x18 => ConnectDecision::Reject("no".to_owned()),
                    _ => ConnectDecision::Accept { user: None },
                }),
                Question::Subscribe(_) => Answer::Subscribe(if sel & 0x20 == 0 {
                    Ok(())
                } else {
                    Err("no".into())
                }),
            };
            flow = session.answer(answer);
        }
        if session.is_connected() {
            decoder.set_version(session.version());
        }
        drain_outbox(&outbox);
        match flow {
            Flow::Continue => assert!(!session.is_closed()),
            Flow::Close => {
                assert!(session.is_closed());
                break 'frames;
            }
            Flow::Ask(_) | Flow::App(_) => unreachable!("answered above"),
            Flow::OpenRelay(_) => unreachable!("no relay in fuzzing"),
            // The fuzzed outbox has no flow control; a throttle would only pause reading.
            Flow::Throttle(_) => {}
        }
    }
    if !session.is_closed() {
        let _ = session.terminate(1000, "fuzz input ends");
    }
    session.closed();
    drain_outbox(&outbox);
}

// ---- SockJS framing ------------------------------------------------------------------------

/// SockJS message decoding (the JSON strings and arrays clients send) and URL routing.
/// Selector byte: bit0 = also accept a single string (WebSocket messages), bit1 = tiny limit.
/// Invariants: no panic; errors leave the output untouched; what decodes is UTF-8 and survives
/// a round trip through the server's own `a[...]` encoding unchanged.
pub fn sockjs_frame(data: &[u8]) {
    use crate::sockjs::frame::{DecodeError, Shape, array_frame, decode_messages};
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let shape = if selector & 1 == 1 {
        Shape::ArrayOrString
    } else {
        Shape::Array
    };
    let limit = if selector & 2 == 2 { 16 } else { 1 << 20 };
    let mut out = b"prefix".to_vec();
    match decode_messages(input, shape, limit, &mut out) {
        Ok(count) => {
            let decoded = std::str::from_utf8(&out[6..]).expect("decoded text is UTF-8");
            assert!(count > 0 || decoded.is_empty(), "text without messages");
            let frame = array_frame([decoded]);
            let mut again = Vec::new();
            let n = decode_messages(&frame.as_bytes()[1..], Shape::Array, usize::MAX, &mut again)
                .expect("own frames decode");
            assert_eq!(n, 1);
            assert_eq!(again, decoded.as_bytes(), "round trip");
        }
        Err(error) => {
            assert_eq!(out, b"prefix", "error left output behind");
            if let DecodeError::TooLarge { limit: l } = error {
                assert!(input.len() > l);
            }
        }
    }
    if let Ok(path) = std::str::from_utf8(input) {
        let _ = crate::sockjs::url::route("/sockjs", path);
    }
}

#[cfg(test)]
mod smoke;
