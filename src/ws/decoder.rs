//! Client-frame parser and message assembler (RFC 6455 §5, §6.2, §7).
//!
//! [`MessageDecoder`] is a sans-IO state machine: the connection task appends
//! socket bytes to its read buffer (`BytesMut`) and calls
//! [`MessageDecoder::decode`] until it returns `Ok(None)`. Every protocol
//! violation is reported as a [`WsError`] carrying the close code the server
//! should send before closing the connection.
//!
//! Design notes:
//! - The frame header is consumed from the buffer as soon as it is complete
//!   and validated; the payload is then unmasked *in place* (8 bytes at a time)
//!   as it arrives, so every byte is unmasked exactly once even when a frame
//!   trickles in over many reads.
//! - Text payloads are UTF-8 validated incrementally as bytes arrive, so an
//!   invalid sequence is reported as soon as it is certainly invalid — even in
//!   the middle of a frame that has not fully arrived (Autobahn 6.4.x
//!   "fail fast" cases).
//! - An unfragmented data frame larger than [`COPY_THRESHOLD`] is split off the
//!   read buffer without copying (`split_to(..).freeze()`); smaller payloads
//!   (and control payloads) are copied into their own allocation so they do
//!   not pin the connection's read buffer. Fragmented messages are assembled
//!   into a dedicated buffer (one copy), which is handed over — not retained —
//!   when the message completes.
//! - Size limits are enforced from the frame header: an oversized frame or
//!   message is rejected with 1009 before any of its payload is buffered.

use bytes::{Buf, Bytes, BytesMut};

use crate::ws::close::{codes, is_valid_received_code};
use flate2::Decompress;

use crate::ws::deflate::{InflateError, RSV1, inflate_continuing, inflate_message};
use crate::ws::frame::{MAX_CONTROL_PAYLOAD, OpCode};

/// Default [`WsLimits::max_frame_size`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// Default [`WsLimits::max_message_size`]: 16 MiB + 4 KiB, i.e. a maximal
/// 16 MiB body plus room for STOMP command/headers.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024 + 4 * 1024;

/// Data payloads up to this size are copied out of the read buffer instead of
/// being split off it, so that small retained messages do not keep a large
/// read-buffer allocation alive.
pub const COPY_THRESHOLD: usize = 4096;

/// Size limits applied to incoming data frames and assembled messages.
///
/// Default: `max_frame_size` = 16 MiB ([`DEFAULT_MAX_FRAME_SIZE`]),
/// `max_message_size` = 16 MiB + 4 KiB ([`DEFAULT_MAX_MESSAGE_SIZE`]).
/// Exceeding either closes the connection with 1009 (Message Too Big).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsLimits {
    /// Largest payload of a single data frame.
    pub max_frame_size: usize,
    /// Largest total payload of a (possibly fragmented) message.
    pub max_message_size: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// A decoded WebSocket event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete text message. The bytes are guaranteed to be valid UTF-8
    /// (`std::str::from_utf8_unchecked` is sound on them).
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A Ping (payload ≤ 125 bytes); the caller should answer with a Pong
    /// carrying the same payload.
    Ping(Bytes),
    /// A Pong (payload ≤ 125 bytes).
    Pong(Bytes),
    /// A Close frame. `code` is `None` for an empty payload (the caller then
    /// treats it as 1005 "no status received"). `code`, when present, is valid
    /// per [`crate::ws::close::is_valid_received_code`] and `reason` is valid UTF-8.
    Close {
        /// Status code, if the close payload carried one.
        code: Option<u16>,
        /// Close reason (possibly empty).
        reason: String,
    },
}

/// A protocol violation: the connection must be closed with `close_code`.
/// `Display` prints `reason` (suitable as the close frame's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WsError {
    /// Close code to send (1002, 1007 or 1009 from this decoder).
    pub close_code: u16,
    /// Short human-readable reason (≤ 123 bytes, ASCII).
    pub reason: &'static str,
}

impl WsError {
    /// Creates an error with the given close code and reason.
    pub const fn new(close_code: u16, reason: &'static str) -> Self {
        WsError { close_code, reason }
    }

    const fn protocol(reason: &'static str) -> Self {
        WsError::new(codes::PROTOCOL_ERROR, reason)
    }

    const fn invalid_payload(reason: &'static str) -> Self {
        WsError::new(codes::INVALID_PAYLOAD, reason)
    }

    const fn too_big(reason: &'static str) -> Self {
        WsError::new(codes::MESSAGE_TOO_BIG, reason)
    }
}

/// A validated frame header whose bytes have been consumed.
#[derive(Debug, Clone, Copy)]
struct FrameHeader {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    len: usize,
    /// RSV1 on the first frame of a data message: the message is compressed.
    compressed: bool,
}

#[derive(Debug)]
enum State {
    /// Waiting for (the rest of) a frame header at the start of the buffer.
    Header,
    /// Header consumed; the payload starts at the beginning of the buffer.
    /// The first `processed` payload bytes are already unmasked (and, for
    /// text, UTF-8 validated).
    Payload {
        header: FrameHeader,
        processed: usize,
    },
}

/// A data message being received (created when its first frame header is
/// parsed, removed when its final frame completes).
#[derive(Debug)]
struct Message {
    opcode: OpCode,
    /// Payload of the already completed fragments.
    data: BytesMut,
    /// Total payload length of the completed fragments (== `data.len()`).
    len: usize,
    /// Present for uncompressed text messages (compressed ones are validated once inflated).
    utf8: Option<Utf8Validator>,
    /// permessage-deflate: the payload is inflated when the message completes.
    compressed: bool,
}

/// Sans-IO decoder of client frames into complete messages and control events.
#[derive(Debug)]
pub struct MessageDecoder {
    limits: WsLimits,
    state: State,
    message: Option<Message>,
    /// RSV bits (mask over 0x70) that peers may set: RSV1 once permessage-deflate
    /// (RFC 7692) is negotiated, otherwise none. RSV1 is then allowed only on the
    /// *first* frame of a data message (never on continuation or control frames),
    /// marks the message as compressed, and the assembled payload is inflated
    /// (within `max_message_size`) before UTF-8 validation.
    rsv_allowed: u8,
    /// Set after the first error; every later call returns it again.
    failed: Option<WsError>,
    /// Set once a Close frame has been returned.
    closed: bool,
    /// Frames must be masked (a server decoding client frames) or must not be (a client
    /// decoding server frames, RFC 6455 §5.1).
    expect_masked: bool,
    /// permessage-deflate with context takeover (a client whose server keeps its compression
    /// context): one inflater for the whole connection, so back-references into earlier
    /// messages resolve. `None`: every message inflates on its own.
    inflater: Option<Box<Decompress>>,
}

impl MessageDecoder {
    /// Creates a decoder enforcing `limits`.
    pub fn new(limits: WsLimits) -> Self {
        MessageDecoder {
            limits,
            state: State::Header,
            message: None,
            rsv_allowed: 0,
            failed: None,
            closed: false,
            expect_masked: true,
            inflater: None,
        }
    }

    /// A decoder of the frames a *server* sends, for a client: frames must not be masked
    /// (a masked one fails with 1002), otherwise the same rules and limits as [`Self::new`].
    pub fn for_client(limits: WsLimits) -> Self {
        MessageDecoder {
            expect_masked: false,
            ..MessageDecoder::new(limits)
        }
    }

    /// Like [`Self::enable_permessage_deflate`], for a peer that takes its compression
    /// context over from one message to the next (no `*_no_context_takeover` agreed): the
    /// decoder keeps one inflater (a 15-bit window reads any smaller one) for the connection.
    pub fn enable_permessage_deflate_with_context(&mut self) {
        self.rsv_allowed |= RSV1;
        self.inflater = Some(Box::new(Decompress::new_with_window_bits(
            false,
            crate::ws::deflate::MAX_WINDOW_BITS,
        )));
    }

    /// Accepts compressed messages (RSV1), after permessage-deflate was negotiated with
    /// `client_no_context_takeover` (each message inflates on its own). An inflated message
    /// larger than `max_message_size` fails with 1009, an undecodable one with 1007.
    pub fn enable_permessage_deflate(&mut self) {
        self.rsv_allowed |= RSV1;
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> WsLimits {
        self.limits
    }

    /// Whether a Close frame has been decoded. After that, `decode` returns
    /// `Ok(None)` and leaves the buffer untouched (RFC 6455 §5.5.1: no data
    /// is processed after a Close).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Consumes bytes from `buf` (a connection's read buffer) and returns the
    /// next complete event, `Ok(None)` when more bytes are needed. Call
    /// repeatedly until `Ok(None)`.
    ///
    /// Control frames interleaved within a fragmented message are returned
    /// immediately. On error the connection must be failed with
    /// `err.close_code`; the decoder stays failed and returns the same error
    /// on every later call.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<WsEvent>, WsError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.closed {
            return Ok(None);
        }
        match self.decode_inner(buf) {
            Err(err) => {
                self.failed = Some(err);
                self.message = None;
                self.state = State::Header;
                Err(err)
            }
            ok => ok,
        }
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<WsEvent>, WsError> {
        loop {
            if let State::Header = self.state {
                let Some((header, header_len)) = self.parse_header(buf)? else {
                    return Ok(None);
                };
                buf.advance(header_len);
                if matches!(header.opcode, OpCode::Text | OpCode::Binary) {
                    self.message = Some(Message {
                        opcode: header.opcode,
                        data: BytesMut::new(),
                        len: 0,
                        utf8: (header.opcode == OpCode::Text && !header.compressed)
                            .then(Utf8Validator::default),
                        compressed: header.compressed,
                    });
                }
                self.state = State::Payload {
                    header,
                    processed: 0,
                };
            }

            let State::Payload { header, processed } = &mut self.state else {
                unreachable!("state is Payload after header parsing");
            };
            let header = *header;
            let start = *processed;
            let available = buf.len().min(header.len);
            if available > start {
                *processed = available;
                let chunk = &mut buf[start..available];
                if self.expect_masked {
                    apply_mask(chunk, header.mask, start);
                }
                if !header.opcode.is_control()
                    && let Some(utf8) = self.message.as_mut().and_then(|m| m.utf8.as_mut())
                {
                    utf8.feed(chunk)?;
                }
            }
            if available < header.len {
                return Ok(None);
            }
            self.state = State::Header;
            if let Some(event) = self.finish_frame(header, buf)? {
                return Ok(Some(event));
            }
        }
    }

    /// Parses and validates the frame header at the start of `buf`, failing as
    /// early as the available bytes allow. Returns the header and its length,
    /// or `None` if more bytes are needed. Does not consume anything.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, WsError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 & !self.rsv_allowed != 0 {
            return Err(WsError::protocol(
                "reserved bits set without a negotiated extension",
            ));
        }
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(WsError::protocol("reserved opcode"))?;
        let compressed = b0 & RSV1 != 0;
        if compressed && !matches!(opcode, OpCode::Text | OpCode::Binary) {
            // RFC 7692 §6.1: only the first frame of a data message carries RSV1.
            return Err(WsError::protocol(
                "RSV1 set on a control or continuation frame",
            ));
        }
        if opcode.is_control() {
            if !fin {
                return Err(WsError::protocol("fragmented control frame"));
            }
        } else {
            match (opcode, self.message.is_some()) {
                (OpCode::Continuation, false) => {
                    return Err(WsError::protocol(
                        "continuation frame without a message in progress",
                    ));
                }
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(WsError::protocol(
                        "new data message while a fragmented message is in progress",
                    ));
                }
                _ => {}
            }
        }

        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        if masked != self.expect_masked {
            return Err(WsError::protocol(if masked {
                "server frame is masked"
            } else {
                "client frame is not masked"
            }));
        }
        let len7 = b1 & 0x7F;
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::protocol(
                "control frame payload longer than 125 bytes",
            ));
        }
        // Non-minimal length encodings are accepted (RFC 6455 §5.2 says
        // "minimal number of bytes MUST be used" for senders; being lenient
        // here is harmless).
        let (len, mut pos): (u64, usize) = match len7 {
            126 => {
                let Some(ext) = buf.get(2..4) else {
                    return Ok(None);
                };
                (u64::from(u16::from_be_bytes([ext[0], ext[1]])), 4)
            }
            127 => {
                let Some(ext) = buf.get(2..10) else {
                    return Ok(None);
                };
                let len = u64::from_be_bytes(ext.try_into().expect("8 bytes"));
                if len & (1 << 63) != 0 {
                    return Err(WsError::protocol(
                        "64-bit payload length with the most significant bit set",
                    ));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if !opcode.is_control() {
            if len > self.limits.max_frame_size as u64 {
                return Err(WsError::too_big("frame exceeds the maximum frame size"));
            }
            let so_far = self.message.as_ref().map_or(0, |m| m.len) as u64;
            if so_far + len > self.limits.max_message_size as u64 {
                return Err(WsError::too_big("message exceeds the maximum message size"));
            }
        }
        let mut mask = [0u8; 4];
        if masked {
            let Some(key) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            mask.copy_from_slice(key);
            pos += 4;
        }
        // `len` is bounded by a usize limit (data) or 125 (control).
        let len = len as usize;
        Ok(Some((
            FrameHeader {
                fin,
                opcode,
                mask,
                len,
                compressed,
            },
            pos,
        )))
    }

    /// Handles a frame whose unmasked payload is the first `header.len` bytes
    /// of `buf`. Returns an event, or `None` for a non-final data fragment.
    fn finish_frame(
        &mut self,
        header: FrameHeader,
        buf: &mut BytesMut,
    ) -> Result<Option<WsEvent>, WsError> {
        let len = header.len;
        match header.opcode {
            OpCode::Ping => Ok(Some(WsEvent::Ping(copy_out(buf, len)))),
            OpCode::Pong => Ok(Some(WsEvent::Pong(copy_out(buf, len)))),
            OpCode::Close => {
                let event = parse_close(&buf[..len])?;
                buf.advance(len);
                self.closed = true;
                self.message = None;
                Ok(Some(event))
            }
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                let msg = self
                    .message
                    .as_mut()
                    .expect("data frame always has message state");
                if header.fin && msg.len == 0 {
                    // Unfragmented message (or only empty fragments before):
                    // hand out the payload straight from the read buffer.
                    let payload = if len <= COPY_THRESHOLD {
                        copy_out(buf, len)
                    } else {
                        buf.split_to(len).freeze()
                    };
                    let msg = self.message.take().expect("checked above");
                    return finish_message(
                        msg,
                        payload,
                        self.limits.max_message_size,
                        self.inflater.as_deref_mut(),
                    )
                    .map(Some);
                }
                msg.data.extend_from_slice(&buf[..len]);
                msg.len += len;
                buf.advance(len);
                if header.fin {
                    let mut msg = self.message.take().expect("checked above");
                    let data = std::mem::take(&mut msg.data).freeze();
                    return finish_message(
                        msg,
                        data,
                        self.limits.max_message_size,
                        self.inflater.as_deref_mut(),
                    )
                    .map(Some);
                }
                Ok(None)
            }
        }
    }
}

/// Turns a completed message into an event: inflates a compressed one (at most
/// `max_len` bytes), and checks that a text message is valid UTF-8 (compressed)
/// or does not end inside a UTF-8 sequence (validated as it arrived). `inflater` is the
/// connection's inflater under context takeover.
fn finish_message(
    msg: Message,
    payload: Bytes,
    max_len: usize,
    inflater: Option<&mut Decompress>,
) -> Result<WsEvent, WsError> {
    let payload = if msg.compressed {
        let inflated = match inflater {
            Some(inflater) => inflate_continuing(inflater, &payload, max_len),
            None => inflate_message(&payload, max_len),
        };
        let inflated = inflated.map_err(|e| match e {
            InflateError::TooBig => {
                WsError::too_big("inflated message exceeds the maximum message size")
            }
            InflateError::Corrupt => {
                WsError::invalid_payload("compressed message does not inflate")
            }
        })?;
        if msg.opcode == OpCode::Text && std::str::from_utf8(&inflated).is_err() {
            return Err(WsError::invalid_payload("text message is not valid UTF-8"));
        }
        inflated
    } else {
        payload
    };
    match msg.opcode {
        OpCode::Text => {
            if msg.utf8.is_some_and(|v| !v.is_complete()) {
                return Err(WsError::invalid_payload(
                    "text message ends inside a UTF-8 sequence",
                ));
            }
            Ok(WsEvent::Text(payload))
        }
        _ => Ok(WsEvent::Binary(payload)),
    }
}

/// Copies the first `len` bytes of `buf` into a fresh `Bytes` and consumes them.
fn copy_out(buf: &mut BytesMut, len: usize) -> Bytes {
    let out = Bytes::copy_from_slice(&buf[..len]);
    buf.advance(len);
    out
}

/// Parses a (complete, unmasked) Close payload, RFC 6455 §5.5.1 / §7.4.
fn parse_close(payload: &[u8]) -> Result<WsEvent, WsError> {
    match payload {
        [] => Ok(WsEvent::Close {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(WsError::protocol("close frame payload of 1 byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_received_code(code) {
                return Err(WsError::protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| WsError::invalid_payload("close reason is not valid UTF-8"))?;
            Ok(WsEvent::Close {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

/// XORs `data` with the masking key, where `data` starts at payload offset
/// `offset` (so the key is rotated accordingly). Processes 8 bytes at a time.
pub(crate) fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = mask;
    key.rotate_left(offset % 4);
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word: [u8; 8] = (*chunk).try_into().expect("8-byte chunk");
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8 (hence of 4) from `data[0]`.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Incremental UTF-8 validator keeping at most 3 pending bytes of an
/// incomplete trailing sequence between chunks. Rejects as soon as the input
/// is certainly invalid (std's validator reports an invalid byte as soon as it
/// cannot continue a valid sequence, including overlongs and surrogates).
#[derive(Debug, Default, Clone, Copy)]
struct Utf8Validator {
    pending: [u8; 4],
    pending_len: usize,
}

impl Utf8Validator {
    fn feed(&mut self, mut data: &[u8]) -> Result<(), WsError> {
        const INVALID: WsError = WsError::invalid_payload("text message is not valid UTF-8");
        if self.pending_len > 0 {
            // The pending bytes are a valid but incomplete prefix, so the lead
            // byte determines the sequence width (2..=4).
            let width = utf8_width(self.pending[0]);
            let take = (width - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            match std::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(_) => self.pending_len = 0,
                // Still incomplete: `data` is exhausted.
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(INVALID),
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                debug_assert!(tail.len() <= 3);
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
            Err(_) => Err(INVALID),
        }
    }

    fn is_complete(&self) -> bool {
        self.pending_len == 0
    }
}

/// Width of a UTF-8 sequence from its lead byte (only called on lead bytes
/// that std accepted as a valid incomplete prefix).
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::deflate::{DEFAULT_LEVEL, deflate_shared};
    use crate::ws::frame::{OpCode, encode_frame};

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// Builds a masked client frame with explicit first byte (FIN/RSV/opcode).
    fn raw_frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        crate::ws::frame::encode_client_frame(b0, payload, mask)
    }

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        raw_frame(if fin { 0x80 } else { 0 } | opcode, payload, MASK)
    }

    fn decoder() -> MessageDecoder {
        MessageDecoder::new(WsLimits::default())
    }

    /// Feeds all of `bytes` at once and collects events until Ok(None) or Err.
    fn decode_all(dec: &mut MessageDecoder, bytes: &[u8]) -> Result<Vec<WsEvent>, WsError> {
        let mut buf = BytesMut::from(bytes);
        let mut events = Vec::new();
        while let Some(ev) = dec.decode(&mut buf)? {
            events.push(ev);
        }
        Ok(events)
    }

    fn expect_err(bytes: &[u8], code: u16) -> WsError {
        let mut dec = decoder();
        let err = decode_all(&mut dec, bytes).expect_err("expected a protocol error");
        assert_eq!(err.close_code, code, "reason: {}", err.reason);
        // The decoder stays failed.
        assert_eq!(dec.decode(&mut BytesMut::new()), Err(err));
        err
    }

    fn text(s: &str) -> WsEvent {
        WsEvent::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    // ---- RFC 6455 §5.7 examples -------------------------------------------

    #[test]
    fn rfc_single_frame_masked_text() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let events = decode_all(&mut decoder(), &bytes).unwrap();
        assert_eq!(events, vec![text("Hello")]);
    }

    #[test]
    fn rfc_unmasked_frames_rejected() {
        // The §5.7 unmasked examples are client-illegal: 1002.
        expect_err(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], 1002);
        expect_err(&[0x01, 0x03, 0x48, 0x65, 0x6c], 1002);
        expect_err(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], 1002);
    }

    #[test]
    fn rfc_fragmented_hello() {
        let mut bytes = frame(false, 0x1, b"Hel");
        bytes.extend(frame(true, 0x0, b"lo"));
        let events = decode_all(&mut decoder(), &bytes).unwrap();
        assert_eq!(events, vec![text("Hello")]);
    }

    #[test]
    fn rfc_ping_pong() {
        let ping = frame(true, 0x9, b"Hello");
        // Masked Pong "Hello" exactly as in §5.7.
        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut bytes = ping;
        bytes.extend_from_slice(&pong);
        let events = decode_all(&mut decoder(), &bytes).unwrap();
        assert_eq!(
            events,
            vec![
                WsEvent::Ping(Bytes::from_static(b"Hello")),
                WsEvent::Pong(Bytes::from_static(b"Hello")),
            ]
        );
    }

    #[test]
    fn rfc_256_and_64k_binary() {
        for len in [256usize, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let bytes = frame(true, 0x2, &payload);
            if len == 256 {
                assert_eq!(&bytes[..4], &[0x82, 0xFE, 0x01, 0x00]);
            } else {
                assert_eq!(&bytes[..10], &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]);
            }
            let events = decode_all(&mut decoder(), &bytes).unwrap();
            assert_eq!(events, vec![WsEvent::Binary(Bytes::from(payload))]);
        }
    }

    // ---- Fragmentation ------------------------------------------------------

    #[test]
    fn fragmentation_with_interleaved_control_frames() {
        let mut bytes = frame(false, 0x1, b"frag1 ");
        bytes.extend(frame(true, 0x9, b"p1"));
        bytes.extend(frame(false, 0x0, b"frag2 "));
        bytes.extend(frame(true, 0xA, b"p2"));
        bytes.extend(frame(true, 0x9, b""));
        bytes.extend(frame(true, 0x0, b"frag3"));
        bytes.extend(frame(true, 0x2, b"\x00\x01"));
        let events = decode_all(&mut decoder(), &bytes).unwrap();
        assert_eq!(
            events,
            vec![
                WsEvent::Ping(Bytes::from_static(b"p1")),
                WsEvent::Pong(Bytes::from_static(b"p2")),
                WsEvent::Ping(Bytes::new()),
                text("frag1 frag2 frag3"),
                WsEvent::Binary(Bytes::from_static(b"\x00\x01")),
            ]
        );
    }

    #[test]
    fn empty_fragments_and_messages() {
        let mut bytes = frame(true, 0x1, b"");
        bytes.extend(frame(false, 0x2, b""));
        bytes.extend(frame(false, 0x0, b""));
        bytes.extend(frame(true, 0x0, b""));
        bytes.extend(frame(false, 0x1, b""));
        bytes.extend(frame(true, 0x0, b"x"));
        let events = decode_all(&mut decoder(), &bytes).unwrap();
        assert_eq!(
            events,
            vec![text(""), WsEvent::Binary(Bytes::new()), text("x")]
        );
    }

    #[test]
    fn close_interleaved_in_fragmented_message() {
        let mut bytes = frame(false, 0x1, b"abc");
        bytes.extend(frame(true, 0x8, &[0x03, 0xE8]));
        bytes.extend(frame(true, 0x1, b"ignored"));
        let mut dec = decoder();
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(WsEvent::Close {
                code: Some(1000),
                reason: String::new()
            })
        );
        assert!(dec.is_closed());
        // Nothing is processed after Close; remaining bytes are left alone.
        let left = buf.len();
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), left);
    }

    #[test]
    fn continuation_without_message() {
        expect_err(&frame(true, 0x0, b"x"), 1002);
        expect_err(&frame(false, 0x0, b"x"), 1002);
        // Also after a completed message.
        let mut bytes = frame(true, 0x1, b"done");
        bytes.extend(frame(true, 0x0, b"x"));
        expect_err(&bytes, 1002);
    }

    #[test]
    fn new_message_while_fragmented() {
        for op in [0x1, 0x2] {
            let mut bytes = frame(false, 0x1, b"a");
            bytes.extend(frame(true, op, b"b"));
            expect_err(&bytes, 1002);
            let mut bytes = frame(false, 0x2, b"a");
            bytes.extend(frame(false, op, b"b"));
            expect_err(&bytes, 1002);
        }
    }

    // ---- Header rejections -----------------------------------------------

    #[test]
    fn unmasked_rejected() {
        expect_err(&[0x82, 0x01, 0xAA], 1002);
        expect_err(&[0x88, 0x00], 1002);
    }

    #[test]
    fn rsv_bits_rejected() {
        for rsv in [0x40u8, 0x20, 0x10, 0x70] {
            expect_err(&raw_frame(0x80 | rsv | 0x1, b"x", MASK), 1002);
            expect_err(&raw_frame(0x80 | rsv | 0x9, b"", MASK), 1002);
        }
        // Rejected from the first byte alone.
        let mut dec = decoder();
        let mut buf = BytesMut::from(&[0xC1u8][..]);
        assert_eq!(dec.decode(&mut buf).unwrap_err().close_code, 1002);
    }

    // ---- permessage-deflate (RFC 7692) -----------------------------------

    fn deflate_decoder(max_message_size: usize) -> MessageDecoder {
        let mut dec = MessageDecoder::new(WsLimits {
            max_frame_size: max_message_size,
            max_message_size,
        });
        dec.enable_permessage_deflate();
        dec
    }

    /// RFC 7692 §7.2.3.1 "Hello", unfragmented and in two fragments (RSV1 on the first only).
    #[test]
    fn compressed_messages_inflate() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let mut dec = deflate_decoder(1024);
        let mut bytes = raw_frame(0x80 | RSV1 | 0x1, &hello, MASK);
        bytes.extend(raw_frame(0x01 | RSV1, &hello[..3], MASK));
        bytes.extend(frame(true, 0x9, b"p")); // a ping between the fragments
        bytes.extend(raw_frame(0x80, &hello[3..], MASK));
        bytes.extend(raw_frame(0x80 | RSV1 | 0x2, &hello, MASK));
        // Uncompressed messages stay allowed on the same connection.
        bytes.extend(frame(true, 0x1, b"plain"));
        let events = decode_all(&mut dec, &bytes).unwrap();
        assert_eq!(
            events,
            vec![
                text("Hello"),
                WsEvent::Ping(Bytes::from_static(b"p")),
                text("Hello"),
                WsEvent::Binary(Bytes::from_static(b"Hello")),
                text("plain"),
            ]
        );
        // A large compressed message through the zero-copy path, fed byte by byte.
        let body = "{\"k\":\"value\"}".repeat(2000);
        let compressed = deflate_shared(body.as_bytes(), 15, DEFAULT_LEVEL).unwrap();
        let wire = raw_frame(0x80 | RSV1 | 0x1, &compressed, MASK);
        let mut dec = deflate_decoder(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = None;
        for b in wire {
            buf.extend_from_slice(&[b]);
            if let Some(ev) = dec.decode(&mut buf).unwrap() {
                got = Some(ev);
            }
        }
        assert_eq!(got, Some(text(&body)));
    }

    #[test]
    fn rsv1_only_on_the_first_data_frame_when_negotiated() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let fails = |bytes: Vec<u8>| {
            let err = decode_all(&mut deflate_decoder(1024), &bytes).unwrap_err();
            assert_eq!(err.close_code, 1002, "{}", err.reason);
        };
        // Control frames.
        fails(raw_frame(0x80 | RSV1 | 0x9, b"", MASK));
        fails(raw_frame(0x80 | RSV1 | 0x8, &[0x03, 0xe8], MASK));
        // Continuation frame.
        let mut bytes = raw_frame(0x01 | RSV1, &hello[..3], MASK);
        bytes.extend(raw_frame(0x80 | RSV1, &hello[3..], MASK));
        fails(bytes);
        // RSV2 / RSV3 stay reserved.
        fails(raw_frame(0x80 | 0x20 | 0x1, b"x", MASK));
        fails(raw_frame(0x80 | 0x10 | 0x1, b"x", MASK));
        // And RSV1 without negotiation is rejected (see `rsv_bits_rejected`).
        expect_err(&raw_frame(0x80 | RSV1 | 0x1, &hello, MASK), 1002);
    }

    #[test]
    fn compressed_message_limits_and_validity() {
        // Zip bomb: 16 KiB of zeros compress to a few dozen bytes, limit 4 KiB → 1009.
        let bomb = deflate_shared(&[0u8; 16 * 1024], 15, DEFAULT_LEVEL).unwrap();
        assert!(bomb.len() < 100);
        let err = decode_all(
            &mut deflate_decoder(4096),
            &raw_frame(0x82 | RSV1, &bomb, MASK),
        )
        .unwrap_err();
        assert_eq!(err.close_code, 1009);
        // Undecodable data → 1007.
        let err = decode_all(
            &mut deflate_decoder(4096),
            &raw_frame(0x82 | RSV1, &[0xff, 0xff], MASK),
        )
        .unwrap_err();
        assert_eq!(err.close_code, 1007);
        // Inflated text that is not UTF-8 → 1007 (the compressed bytes are not validated).
        let mut stored = BytesMut::new();
        crate::ws::deflate::put_stored_block(&[b'a', 0xff, b'b'], &mut stored);
        let err = decode_all(
            &mut deflate_decoder(4096),
            &raw_frame(0x81 | RSV1, &stored, MASK),
        )
        .unwrap_err();
        assert_eq!(err.close_code, 1007);
        // The same bytes as binary are fine.
        let events = decode_all(
            &mut deflate_decoder(4096),
            &raw_frame(0x82 | RSV1, &stored, MASK),
        )
        .unwrap();
        assert_eq!(
            events,
            vec![WsEvent::Binary(Bytes::from_static(&[b'a', 0xff, b'b']))]
        );
    }

    #[test]
    fn reserved_opcodes_rejected() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            let err = expect_err(&frame(true, op, b""), 1002);
            assert_eq!(err.reason, "reserved opcode");
            expect_err(&frame(true, op, b"payload"), 1002);
            // Rejected as soon as the first byte arrives.
            let mut dec = decoder();
            let mut buf = BytesMut::from(&[0x80 | op][..]);
            assert!(dec.decode(&mut buf).is_err());
        }
    }

    #[test]
    fn control_frame_rules() {
        // Fragmented control frames.
        for op in [0x8u8, 0x9, 0xA] {
            expect_err(&frame(false, op, b""), 1002);
        }
        // Control payload > 125, using 7-bit 126/127 markers or a real length.
        expect_err(&frame(true, 0x9, &[0u8; 126]), 1002);
        expect_err(&frame(true, 0xA, &[0u8; 200]), 1002);
        expect_err(&frame(true, 0x8, &[0x03, 0xE8].repeat(63)), 1002);
        // Exactly 125 is fine.
        let events = decode_all(&mut decoder(), &frame(true, 0x9, &[1u8; 125])).unwrap();
        assert_eq!(events, vec![WsEvent::Ping(Bytes::from(vec![1u8; 125]))]);
    }

    #[test]
    fn length_msb_set_rejected() {
        let mut bytes = vec![0x82, 0xFF];
        bytes.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
        bytes.extend_from_slice(&MASK);
        expect_err(&bytes, 1002);
    }

    #[test]
    fn non_minimal_lengths_accepted() {
        // 5-byte payload with a 16-bit length and with a 64-bit length.
        let masked: Vec<u8> = b"Hello"
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        let mut a = vec![0x81, 0xFE, 0x00, 0x05];
        a.extend_from_slice(&MASK);
        a.extend_from_slice(&masked);
        let mut b = vec![0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0, 5];
        b.extend_from_slice(&MASK);
        b.extend_from_slice(&masked);
        for bytes in [a, b] {
            assert_eq!(
                decode_all(&mut decoder(), &bytes).unwrap(),
                vec![text("Hello")]
            );
        }
    }

    // ---- Close frames -------------------------------------------------------

    #[test]
    fn close_payloads() {
        let ev = decode_all(&mut decoder(), &frame(true, 0x8, b"")).unwrap();
        assert_eq!(
            ev,
            vec![WsEvent::Close {
                code: None,
                reason: String::new()
            }]
        );
        let mut payload = 4000u16.to_be_bytes().to_vec();
        payload.extend_from_slice("bye ✓".as_bytes());
        let ev = decode_all(&mut decoder(), &frame(true, 0x8, &payload)).unwrap();
        assert_eq!(
            ev,
            vec![WsEvent::Close {
                code: Some(4000),
                reason: "bye ✓".into()
            }]
        );
        // 1-byte payload.
        expect_err(&frame(true, 0x8, &[0x03]), 1002);
        // Invalid codes.
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            expect_err(&frame(true, 0x8, &code.to_be_bytes()), 1002);
        }
        // Valid codes.
        for code in [1000u16, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            let ev = decode_all(&mut decoder(), &frame(true, 0x8, &code.to_be_bytes())).unwrap();
            assert_eq!(
                ev,
                vec![WsEvent::Close {
                    code: Some(code),
                    reason: String::new()
                }]
            );
        }
        // Invalid UTF-8 reason.
        expect_err(&frame(true, 0x8, &[0x03, 0xE8, 0xCE, 0xBA, 0xFF]), 1007);
    }

    // ---- UTF-8 --------------------------------------------------------------

    #[test]
    fn invalid_utf8_single_frame() {
        expect_err(&frame(true, 0x1, &[b'a', 0xFF, b'b']), 1007);
        // Truncated sequence at the end of a complete message.
        expect_err(&frame(true, 0x1, &[b'a', 0xE2, 0x82]), 1007);
        // Surrogate (ED A0 80) and overlong (C0 AF).
        expect_err(&frame(true, 0x1, &[0xED, 0xA0, 0x80]), 1007);
        expect_err(&frame(true, 0x1, &[0xC0, 0xAF]), 1007);
        // Binary messages are not validated.
        let ev = decode_all(&mut decoder(), &frame(true, 0x2, &[0xFF, 0xFE])).unwrap();
        assert_eq!(ev, vec![WsEvent::Binary(Bytes::from_static(&[0xFF, 0xFE]))]);
    }

    #[test]
    fn valid_multibyte_split_across_fragments() {
        let s = "κόσμε€𝄞";
        let bytes = s.as_bytes();
        // Every possible split point, plus a 3-way split through a 4-byte char.
        for split in 0..=bytes.len() {
            let mut wire = frame(false, 0x1, &bytes[..split]);
            wire.extend(frame(true, 0x0, &bytes[split..]));
            assert_eq!(decode_all(&mut decoder(), &wire).unwrap(), vec![text(s)]);
        }
        let clef = "𝄞".as_bytes();
        let mut wire = frame(false, 0x1, &clef[..1]);
        wire.extend(frame(false, 0x0, &clef[1..2]));
        wire.extend(frame(false, 0x0, &clef[2..3]));
        wire.extend(frame(true, 0x0, &clef[3..]));
        assert_eq!(decode_all(&mut decoder(), &wire).unwrap(), vec![text("𝄞")]);
    }

    #[test]
    fn invalid_utf8_fails_fast_at_fragment() {
        // Autobahn 6.4.1-style: valid first fragment, second fragment makes it
        // invalid; third fragment never needs to arrive.
        let mut dec = decoder();
        let mut buf = BytesMut::from(&frame(false, 0x1, "κόσμε".as_bytes())[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        // F4 90 is certainly invalid (> U+10FFFF) even though incomplete.
        buf.extend_from_slice(&frame(false, 0x0, &[0xF4, 0x90]));
        assert_eq!(dec.decode(&mut buf).unwrap_err().close_code, 1007);

        // Invalid continuation split across fragments: E2 | 28.
        let mut wire = frame(false, 0x1, &[b'a', 0xE2]);
        wire.extend(frame(false, 0x0, &[0x28]));
        let mut dec = decoder();
        assert_eq!(decode_all(&mut dec, &wire).unwrap_err().close_code, 1007);

        // Incomplete sequence at the end of the final fragment.
        let mut wire = frame(false, 0x1, b"ok");
        wire.extend(frame(true, 0x0, &[0xF0, 0x9D, 0x84]));
        expect_err(&wire, 1007);
    }

    #[test]
    fn invalid_utf8_fails_fast_within_partial_frame() {
        // Autobahn 6.4.3/6.4.4-style: one frame delivered in chops; the error
        // must be reported before the rest of the frame arrives.
        let mut payload = "κόσμε".as_bytes().to_vec();
        payload.extend_from_slice(&[0xF4, 0x90, 0x80, 0x80]);
        payload.extend_from_slice(b"edited");
        let wire = frame(true, 0x1, &payload);
        let mut dec = decoder();
        let mut buf = BytesMut::new();
        // header (6 bytes) + "κόσμε" + F4: still fine.
        let bad = 6 + "κόσμε".len() + 1;
        buf.extend_from_slice(&wire[..bad]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        // + 0x90: certainly invalid, while 8 payload bytes are still missing.
        buf.extend_from_slice(&wire[bad..bad + 1]);
        assert_eq!(dec.decode(&mut buf).unwrap_err().close_code, 1007);
    }

    #[test]
    fn utf8_validator_matches_std() {
        // Feed every string in each possible two-chunk split and compare the
        // verdict with std on the whole input.
        let cases: Vec<Vec<u8>> = vec![
            "hello".into(),
            "κόσμε".into(),
            "𝄞€é".into(),
            vec![
                0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
            ],
            vec![0xF4, 0x8F, 0xBF, 0xBF],
            vec![0xF4, 0x90, 0x80, 0x80],
            vec![0xF8, 0x88, 0x80, 0x80, 0x80],
            vec![0xE0, 0x80, 0xAF],
            vec![0xC2],
            vec![0x80],
            vec![0xEF, 0xBF, 0xBF],
        ];
        for case in cases {
            let expected = std::str::from_utf8(&case).is_ok();
            for split in 0..=case.len() {
                let mut v = Utf8Validator::default();
                let ok = v.feed(&case[..split]).is_ok()
                    && v.feed(&case[split..]).is_ok()
                    && v.is_complete();
                assert_eq!(ok, expected, "{case:x?} split at {split}");
            }
            // Byte at a time.
            let mut v = Utf8Validator::default();
            let ok = case.iter().all(|b| v.feed(&[*b]).is_ok()) && v.is_complete();
            assert_eq!(ok, expected, "{case:x?} bytewise");
        }
    }

    // ---- Streaming ---------------------------------------------------------

    #[test]
    fn one_byte_at_a_time() {
        let mut wire = frame(false, 0x1, b"Hel");
        wire.extend(frame(true, 0x9, b"ping"));
        wire.extend(frame(true, 0x0, "lo ✓".as_bytes()));
        let big: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        wire.extend(frame(true, 0x2, &big));
        wire.extend(frame(true, 0x8, &[0x03, 0xE9, b'x']));
        let mut dec = decoder();
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        for b in &wire {
            buf.extend_from_slice(&[*b]);
            while let Some(ev) = dec.decode(&mut buf).unwrap() {
                events.push(ev);
            }
        }
        assert_eq!(
            events,
            vec![
                WsEvent::Ping(Bytes::from_static(b"ping")),
                text("Hello ✓"),
                WsEvent::Binary(Bytes::from(big)),
                WsEvent::Close {
                    code: Some(1001),
                    reason: "x".into()
                },
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn two_frames_in_one_buffer() {
        let mut wire = frame(true, 0x1, b"one");
        wire.extend(frame(true, 0x2, b"two"));
        let mut buf = BytesMut::from(&wire[..]);
        let mut dec = decoder();
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(text("one")));
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Some(WsEvent::Binary(Bytes::from_static(b"two")))
        );
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_next_frame_left_in_buffer() {
        let mut wire = frame(true, 0x1, b"one");
        let second = frame(true, 0x1, b"two");
        wire.extend_from_slice(&second[..3]);
        let mut buf = BytesMut::from(&wire[..]);
        let mut dec = decoder();
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(text("one")));
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&second[3..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(text("two")));
    }

    /// Tiny deterministic PRNG for the randomized test.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn randomized_fragmentation_and_chunking() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let alphabet = ["a", "é", "€", "𝄞", "xyz", "κόσμε"];
        for round in 0..40 {
            let mut wire = Vec::new();
            let mut expected = Vec::new();
            for _ in 0..rng.below(6) + 1 {
                let is_text = rng.below(2) == 0;
                let payload: Vec<u8> = if is_text {
                    let mut s = String::new();
                    for _ in 0..rng.below(3000) {
                        s.push_str(alphabet[rng.below(alphabet.len() as u64) as usize]);
                    }
                    s.into_bytes()
                } else {
                    (0..rng.below(9000)).map(|_| rng.next() as u8).collect()
                };
                // Random fragmentation points (may split UTF-8 sequences).
                let mut cuts: Vec<usize> = (0..rng.below(4))
                    .map(|_| rng.below(payload.len() as u64 + 1) as usize)
                    .collect();
                cuts.sort_unstable();
                cuts.push(payload.len());
                let mut start = 0;
                for (i, &cut) in cuts.iter().enumerate() {
                    let fin = i == cuts.len() - 1;
                    let op = if i > 0 {
                        0x0
                    } else if is_text {
                        0x1
                    } else {
                        0x2
                    };
                    let mask = (rng.next() as u32).to_be_bytes();
                    wire.extend(raw_frame(
                        if fin { 0x80 } else { 0 } | op,
                        &payload[start..cut],
                        mask,
                    ));
                    start = cut;
                    // Interleave pings between fragments of the message.
                    if !fin && rng.below(3) == 0 {
                        let ping = vec![rng.next() as u8; rng.below(126) as usize];
                        wire.extend(raw_frame(0x89, &ping, mask));
                        expected.push(WsEvent::Ping(Bytes::from(ping)));
                    }
                }
                expected.push(if is_text {
                    WsEvent::Text(Bytes::from(payload))
                } else {
                    WsEvent::Binary(Bytes::from(payload))
                });
            }
            // Deliver in random chunk sizes.
            let mut dec = decoder();
            let mut buf = BytesMut::new();
            let mut events = Vec::new();
            let mut pos = 0;
            while pos < wire.len() {
                let n = (rng.below(700) as usize + 1).min(wire.len() - pos);
                buf.extend_from_slice(&wire[pos..pos + n]);
                pos += n;
                while let Some(ev) = dec.decode(&mut buf).unwrap() {
                    events.push(ev);
                }
            }
            assert!(events == expected, "event mismatch in round {round}");
            assert!(buf.is_empty());
        }
    }

    // ---- Limits ------------------------------------------------------------

    #[test]
    fn oversize_frame_rejected_from_header() {
        let limits = WsLimits {
            max_frame_size: 1000,
            max_message_size: 1500,
        };
        // Only the header of a 1001-byte frame: rejected with no payload.
        let wire = frame(true, 0x2, &[0u8; 1001]);
        let mut dec = MessageDecoder::new(limits);
        let mut buf = BytesMut::from(&wire[..4]); // 2 + 16-bit length
        let err = dec.decode(&mut buf).unwrap_err();
        assert_eq!(err.close_code, 1009);
        // A 64-bit announced huge length is rejected before the mask key.
        let mut dec = MessageDecoder::new(limits);
        let mut buf = BytesMut::from(&[0x82u8, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0][..]);
        assert_eq!(dec.decode(&mut buf).unwrap_err().close_code, 1009);
        // Exactly at the limit is fine.
        let mut dec = MessageDecoder::new(limits);
        let ev = decode_all(&mut dec, &frame(true, 0x2, &[0u8; 1000])).unwrap();
        assert_eq!(ev.len(), 1);
    }

    #[test]
    fn oversize_message_rejected_from_fragment_header() {
        let limits = WsLimits {
            max_frame_size: 1000,
            max_message_size: 1500,
        };
        let mut dec = MessageDecoder::new(limits);
        let mut buf = BytesMut::from(&frame(false, 0x1, &[b'a'; 800])[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        // Second fragment announces 701 bytes: 1501 > 1500, rejected from header.
        buf.extend_from_slice(&frame(true, 0x0, &[b'a'; 701])[..8]);
        assert_eq!(dec.decode(&mut buf).unwrap_err().close_code, 1009);

        // 800 + 700 = 1500 is accepted.
        let mut dec = MessageDecoder::new(limits);
        let mut wire = frame(false, 0x1, &[b'a'; 800]);
        wire.extend(frame(true, 0x0, &[b'a'; 700]));
        let ev = decode_all(&mut dec, &wire).unwrap();
        assert_eq!(ev, vec![WsEvent::Text(Bytes::from(vec![b'a'; 1500]))]);
    }

    #[test]
    fn control_frames_not_subject_to_data_limits() {
        let limits = WsLimits {
            max_frame_size: 10,
            max_message_size: 10,
        };
        let mut dec = MessageDecoder::new(limits);
        let ev = decode_all(&mut dec, &frame(true, 0x9, &[9u8; 100])).unwrap();
        assert_eq!(ev, vec![WsEvent::Ping(Bytes::from(vec![9u8; 100]))]);
    }

    #[test]
    fn default_limits() {
        let l = WsLimits::default();
        assert_eq!(l.max_frame_size, 16 << 20);
        assert_eq!(l.max_message_size, (16 << 20) + 4096);
    }

    // ---- Buffer handling / unmasking ------------------------------------------

    #[test]
    fn large_single_frame_is_split_not_copied() {
        let payload = vec![0x5Au8; COPY_THRESHOLD + 100];
        let wire = frame(true, 0x2, &payload);
        let mut buf = BytesMut::from(&wire[..]);
        let payload_ptr = buf[8..].as_ptr(); // header: 2 + 2 + 4 mask
        let mut dec = decoder();
        let Some(WsEvent::Binary(b)) = dec.decode(&mut buf).unwrap() else {
            panic!("expected binary");
        };
        assert_eq!(b.as_ptr(), payload_ptr, "payload was copied");
        assert_eq!(&b[..], &payload[..]);
    }

    #[test]
    fn fragment_buffer_released_after_message() {
        let mut dec = decoder();
        let mut wire = frame(false, 0x2, &[1u8; 5000]);
        wire.extend(frame(true, 0x0, &[2u8; 5000]));
        let ev = decode_all(&mut dec, &wire).unwrap();
        assert_eq!(ev.len(), 1);
        assert!(dec.message.is_none());
        assert!(matches!(dec.state, State::Header));
    }

    #[test]
    fn apply_mask_matches_naive() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..=255u8).cycle().take(103).collect();
        for offset in 0..8 {
            for len in 0..data.len() {
                let mut fast = data[..len].to_vec();
                apply_mask(&mut fast, mask, offset);
                let naive: Vec<u8> = data[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(i + offset) % 4])
                    .collect();
                assert_eq!(fast, naive, "offset {offset} len {len}");
            }
        }
    }

    #[test]
    fn server_encoded_frame_is_rejected_as_unmasked() {
        // Sanity link with frame.rs: our own (unmasked) output is not a valid
        // client frame.
        let mut out = BytesMut::new();
        encode_frame(OpCode::Text, b"hi", &mut out);
        expect_err(&out, 1002);
    }

    #[test]
    fn client_role_takes_unmasked_frames_and_refuses_masked_ones() {
        let mut dec = MessageDecoder::for_client(WsLimits::default());
        let mut bytes = BytesMut::new();
        encode_frame(OpCode::Text, b"Hello", &mut bytes);
        encode_frame(OpCode::Ping, b"p", &mut bytes);
        assert_eq!(
            decode_all(&mut dec, &bytes).unwrap(),
            vec![text("Hello"), WsEvent::Ping(Bytes::from_static(b"p"))]
        );
        let err = decode_all(&mut dec, &frame(true, 0x1, b"x")).unwrap_err();
        assert_eq!(err.close_code, 1002);
        assert_eq!(err.reason, "server frame is masked");
    }

    #[test]
    fn context_takeover_inflates_back_references_into_earlier_messages() {
        // RFC 7692 §7.2.3.2: the second "Hello" refers to the first one's window.
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut bytes = BytesMut::new();
        for payload in [&first[..], &second[..]] {
            let mut header = [0u8; 10];
            let n = crate::ws::frame::encode_header(OpCode::Text, true, payload.len(), &mut header);
            header[0] |= RSV1;
            bytes.extend_from_slice(&header[..n]);
            bytes.extend_from_slice(payload);
        }
        let mut dec = MessageDecoder::for_client(WsLimits::default());
        dec.enable_permessage_deflate_with_context();
        assert_eq!(
            decode_all(&mut dec, &bytes).unwrap(),
            vec![text("Hello"), text("Hello")]
        );
        // Without the context the second message does not inflate.
        let mut fresh = MessageDecoder::for_client(WsLimits::default());
        fresh.enable_permessage_deflate();
        assert_eq!(decode_all(&mut fresh, &bytes).unwrap_err().close_code, 1007);
    }

    #[test]
    fn masked_encoder_round_trips_through_the_server_decoder() {
        for len in [0usize, 5, 125, 126, 65_535, 65_536] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut out = BytesMut::new();
            crate::ws::frame::encode_masked_frame(0x82, &payload, [1, 2, 3, 4], &mut out);
            let events = decode_all(&mut decoder(), &out).unwrap();
            assert_eq!(events, vec![WsEvent::Binary(Bytes::from(payload))]);
        }
    }

    #[test]
    fn error_display_is_reason() {
        let e = WsError::new(1002, "boom");
        assert_eq!(e.to_string(), "boom");
    }
}
