//! WebSocket frame encoding (RFC 6455 §5.2).
//!
//! Frames sent by a server are never masked (§5.1), so a frame is a 2–10 byte
//! header followed by the raw payload; a client masks every frame
//! ([`encode_masked_frame`]). [`encode_header`] writes only the
//! header into a stack buffer: this lets one encoded payload (a shared
//! `bytes::Bytes`) be written to many connections, each connection writing
//! its own small header followed by the shared payload.

use bytes::{BufMut, BytesMut};

/// Largest possible server frame header: 2 bytes + 8-byte extended length
/// (no masking key, since server frames are never masked).
pub const MAX_HEADER_LEN: usize = 10;

/// Largest payload allowed in a control frame (Close, Ping, Pong), §5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Largest close reason that fits in a control frame (125 - 2 code bytes).
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Frame opcodes defined by RFC 6455 §5.2. Reserved opcodes (3–7, 0xB–0xF)
/// have no variant: [`OpCode::from_u8`] returns `None` for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// 0x0: continuation of a fragmented message.
    Continuation = 0x0,
    /// 0x1: text (UTF-8) data frame.
    Text = 0x1,
    /// 0x2: binary data frame.
    Binary = 0x2,
    /// 0x8: connection close.
    Close = 0x8,
    /// 0x9: ping.
    Ping = 0x9,
    /// 0xA: pong.
    Pong = 0xA,
}

impl OpCode {
    /// Parses the 4-bit opcode field; `None` for reserved/unknown opcodes.
    pub fn from_u8(value: u8) -> Option<OpCode> {
        match value {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Close, Ping and Pong are control frames (opcode MSB set).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Writes an unmasked frame header for a payload of `payload_len` bytes into
/// `out` and returns the header length (2, 4 or 10 bytes). Uses the minimal
/// 7-bit / 16-bit / 64-bit length encoding.
///
/// Control frames must have `fin == true` and a payload ≤ 125 bytes; this is
/// the caller's responsibility (checked with `debug_assert!`).
pub fn encode_header(opcode: OpCode, fin: bool, payload_len: usize, out: &mut [u8; 10]) -> usize {
    debug_assert!(
        !opcode.is_control() || (fin && payload_len <= MAX_CONTROL_PAYLOAD),
        "control frames must be final and carry at most 125 bytes"
    );
    out[0] = (if fin { 0x80 } else { 0 }) | opcode.as_u8();
    if payload_len < 126 {
        out[1] = payload_len as u8;
        2
    } else if payload_len <= u16::MAX as usize {
        out[1] = 126;
        out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    }
}

/// Appends a complete, final (FIN set), unmasked frame to `out`.
pub fn encode_frame(opcode: OpCode, payload: &[u8], out: &mut BytesMut) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(opcode, true, payload.len(), &mut header);
    out.reserve(n + payload.len());
    out.put_slice(&header[..n]);
    out.put_slice(payload);
}

/// Appends a Close frame carrying `code` and `reason` to `out`.
///
/// The reason is truncated at a UTF-8 character boundary so that the whole
/// control payload (2-byte code + reason) is at most 125 bytes. The code is
/// written as given: callers must not send 1005/1006/1015 (see
/// [`crate::ws::close::is_valid_received_code`] for what peers accept).
pub fn encode_close(code: u16, reason: &str, out: &mut BytesMut) {
    let reason = truncate_at_char_boundary(reason, MAX_CLOSE_REASON);
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(OpCode::Close, true, 2 + reason.len(), &mut header);
    out.reserve(n + 2 + reason.len());
    out.put_slice(&header[..n]);
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
}

/// Appends a Close frame with an empty payload (no status code) to `out`.
pub fn encode_close_empty(out: &mut BytesMut) {
    encode_frame(OpCode::Close, &[], out);
}

/// Longest prefix of `s` that is at most `max` bytes and ends on a char boundary.
fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends a masked frame, as a client sends it (RFC 6455 §5.3): `b0` is the first byte (FIN,
/// RSV bits, opcode), `mask` the frame's masking key (a fresh random one per frame).
pub fn encode_masked_frame(b0: u8, payload: &[u8], mask: [u8; 4], out: &mut BytesMut) {
    let len = payload.len();
    out.reserve(MAX_HEADER_LEN + 4 + len);
    out.put_u8(b0);
    if len < 126 {
        out.put_u8(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.put_u8(0x80 | 126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(0x80 | 127);
        out.put_u64(len as u64);
    }
    out.put_slice(&mask);
    let start = out.len();
    out.put_slice(payload);
    crate::ws::decoder::apply_mask(&mut out[start..], mask, 0);
}

/// A masked client frame with an explicit first byte (FIN, RSV bits, opcode), as a `Vec`:
/// tests and the fuzz targets build input with it.
#[doc(hidden)]
pub fn encode_client_frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_masked_frame(b0, payload, mask, &mut out);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_roundtrip_and_control() {
        for v in 0u8..16 {
            match OpCode::from_u8(v) {
                Some(op) => {
                    assert_eq!(op.as_u8(), v);
                    assert_eq!(op.is_control(), v >= 8);
                }
                None => assert!(matches!(v, 3..=7 | 0xB..=0xF), "opcode {v}"),
            }
        }
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
        assert!(!OpCode::Text.is_control());
        assert!(!OpCode::Binary.is_control());
        assert!(!OpCode::Continuation.is_control());
    }

    #[test]
    fn header_length_forms() {
        let mut h = [0u8; 10];
        // 7-bit
        assert_eq!(encode_header(OpCode::Text, true, 0, &mut h), 2);
        assert_eq!(&h[..2], &[0x81, 0x00]);
        assert_eq!(encode_header(OpCode::Text, true, 125, &mut h), 2);
        assert_eq!(&h[..2], &[0x81, 125]);
        // 16-bit
        assert_eq!(encode_header(OpCode::Binary, true, 126, &mut h), 4);
        assert_eq!(&h[..4], &[0x82, 126, 0x00, 126]);
        assert_eq!(encode_header(OpCode::Binary, true, 256, &mut h), 4);
        assert_eq!(&h[..4], &[0x82, 0x7E, 0x01, 0x00]); // RFC 6455 §5.7
        assert_eq!(encode_header(OpCode::Binary, true, 65535, &mut h), 4);
        assert_eq!(&h[..4], &[0x82, 0x7E, 0xFF, 0xFF]);
        // 64-bit
        assert_eq!(encode_header(OpCode::Binary, true, 65536, &mut h), 10);
        assert_eq!(
            &h[..10],
            &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00] // RFC 6455 §5.7
        );
        // FIN clear, continuation
        assert_eq!(encode_header(OpCode::Text, false, 3, &mut h), 2);
        assert_eq!(&h[..2], &[0x01, 0x03]);
        assert_eq!(encode_header(OpCode::Continuation, true, 2, &mut h), 2);
        assert_eq!(&h[..2], &[0x80, 0x02]);
    }

    #[test]
    fn rfc_examples_unmasked() {
        // RFC 6455 §5.7: single-frame unmasked text message "Hello".
        let mut out = BytesMut::new();
        encode_frame(OpCode::Text, b"Hello", &mut out);
        assert_eq!(&out[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // Unmasked Ping "Hello".
        out.clear();
        encode_frame(OpCode::Ping, b"Hello", &mut out);
        assert_eq!(&out[..], &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        // Unmasked Pong "Hello".
        out.clear();
        encode_frame(OpCode::Pong, b"Hello", &mut out);
        assert_eq!(&out[..], &[0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn frame_large_payloads() {
        let payload = vec![7u8; 70_000];
        let mut out = BytesMut::new();
        encode_frame(OpCode::Binary, &payload, &mut out);
        assert_eq!(out.len(), 10 + payload.len());
        assert_eq!(out[1], 127);
        assert_eq!(&out[10..], &payload[..]);
    }

    #[test]
    fn close_frames() {
        let mut out = BytesMut::new();
        encode_close(1000, "bye", &mut out);
        assert_eq!(&out[..], &[0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);

        out.clear();
        encode_close_empty(&mut out);
        assert_eq!(&out[..], &[0x88, 0]);

        // Long ASCII reason: truncated to 123 bytes.
        out.clear();
        let long = "x".repeat(300);
        encode_close(1009, &long, &mut out);
        assert_eq!(out[1] as usize, MAX_CONTROL_PAYLOAD);
        assert_eq!(out.len(), 2 + MAX_CONTROL_PAYLOAD);

        // Multi-byte reason: 'é' is 2 bytes; 62 of them = 124 bytes > 123,
        // so it must be cut to 61 chars (122 bytes), never mid-character.
        out.clear();
        let accented = "é".repeat(62);
        encode_close(1000, &accented, &mut out);
        let reason = &out[4..];
        assert_eq!(reason.len(), 122);
        assert!(std::str::from_utf8(reason).is_ok());

        // 3-byte chars: 41 * 3 = 123 fits exactly.
        out.clear();
        encode_close(1000, &"€".repeat(41), &mut out);
        assert_eq!(out[1] as usize, 125);
        out.clear();
        encode_close(1000, &"€".repeat(42), &mut out);
        assert_eq!(out[1] as usize, 125);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    #[test]
    fn truncate_helper() {
        assert_eq!(truncate_at_char_boundary("abc", 5), "abc");
        assert_eq!(truncate_at_char_boundary("abc", 2), "ab");
        assert_eq!(truncate_at_char_boundary("a€", 3), "a");
        assert_eq!(truncate_at_char_boundary("a€", 4), "a€");
        assert_eq!(truncate_at_char_boundary("€", 0), "");
    }
}
