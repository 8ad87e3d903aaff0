//! permessage-deflate (RFC 7692): negotiation, inbound inflation with a size limit, and
//! outbound compression that one publish can share between many connections.
//!
//! Sans-IO: pure functions over header values and bytes.
//!
//! Design choices (all permitted by RFC 7692 §7.1):
//! - The server always answers with `server_no_context_takeover`: every outbound message is
//!   compressed on its own, so the compressed tail of a published MESSAGE is computed once and
//!   shared by every subscriber ([`deflate_shared`]), and no connection keeps a compressor.
//! - The server always answers with `client_no_context_takeover`: every inbound message
//!   inflates on its own ([`inflate_message`]), so an idle connection keeps no inflate window
//!   (32 KiB + state) either. Clients then compress each message independently, which costs
//!   some ratio on streams of small similar frames, but bounds the memory per connection.
//! - `client_max_window_bits` needs no answer: inflation uses a 15-bit window, which reads
//!   streams made with any smaller window.
//! - `server_max_window_bits=N` is honoured for 9 ≤ N ≤ 15 (the zlib-rs backend compresses with
//!   that window). N = 8 is valid syntax but zlib cannot produce raw deflate with a 256-byte
//!   window, so such an offer is declined (the client may have another offer, or talks
//!   uncompressed).
//! - A parameter that is unknown, repeated or out of range declines that offer (§7.1); the
//!   first acceptable offer wins.

use std::cell::RefCell;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Extension name (RFC 7692 §7).
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The RSV1 bit of a frame's first byte: set on the first frame of a compressed message.
pub const RSV1: u8 = 0x40;

/// The empty stored block a sync flush ends with; stripped by the sender, appended back by
/// the receiver (RFC 7692 §7.2.1, §7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Largest LZ77 window (bits) of raw deflate.
pub const MAX_WINDOW_BITS: u8 = 15;

/// Smallest window zlib can compress raw deflate with.
const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// Default compression level: zlib's default, a good ratio for text at a moderate cost (paid
/// once per publish for a fan-out). Level 1 costs about a third of the CPU for a somewhat
/// larger output.
pub const DEFAULT_LEVEL: u32 = 6;

/// What was agreed for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// Largest window the server may compress with (`server_max_window_bits`, 15 when the
    /// client did not limit it).
    pub server_max_window_bits: u8,
}

/// An accepted offer: the parameters and the `Sec-WebSocket-Extensions` response value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The parameters in force.
    pub params: DeflateParams,
    /// The response header value, e.g.
    /// `permessage-deflate; server_no_context_takeover; client_no_context_takeover`.
    pub response: String,
}

/// Picks the first acceptable permessage-deflate offer in `offers` (the client's
/// `Sec-WebSocket-Extensions` values joined with ", "); `None` when there is none, in which
/// case the connection runs without compression.
pub fn negotiate(offers: &str) -> Option<Agreement> {
    split_outside_quotes(offers, ',')
        .into_iter()
        .filter_map(|offer| parse_extension(offer))
        .filter(|(name, _)| name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|(_, params)| accept_offer(&params))
}

/// Validates one offer's parameters (§7.1) and builds the answer; `None` declines it.
fn accept_offer(params: &[(String, Option<String>)]) -> Option<Agreement> {
    let mut seen: Vec<&str> = Vec::new();
    let mut server_max_window_bits = None;
    for (name, value) in params {
        if seen.contains(&name.as_str()) {
            return None;
        }
        seen.push(name);
        match name.as_str() {
            "server_no_context_takeover" | "client_no_context_takeover" => {
                if value.is_some() {
                    return None;
                }
            }
            "server_max_window_bits" => {
                let bits = window_bits(value.as_deref()?)?;
                if bits < MIN_COMPRESS_WINDOW_BITS {
                    return None;
                }
                server_max_window_bits = Some(bits);
            }
            "client_max_window_bits" => {
                if let Some(value) = value {
                    window_bits(value)?;
                }
            }
            _ => return None,
        }
    }
    let mut response =
        format!("{EXTENSION_NAME}; server_no_context_takeover; client_no_context_takeover");
    if let Some(bits) = server_max_window_bits {
        response.push_str(&format!("; server_max_window_bits={bits}"));
    }
    Some(Agreement {
        params: DeflateParams {
            server_max_window_bits: server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
        },
        response,
    })
}

/// A window size value: decimal 8..=15 without leading zeros (§7.1.2.1).
fn window_bits(value: &str) -> Option<u8> {
    match value {
        "8" | "9" | "10" | "11" | "12" | "13" | "14" | "15" => value.parse().ok(),
        _ => None,
    }
}

/// An extension's parameters in offer order: name and unquoted value, if any.
type Params = Vec<(String, Option<String>)>;

/// Splits `s` at `sep` where it is not inside a quoted-string.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Parses `name *( ";" param [ "=" (token | quoted-string) ] )` (RFC 6455 §9.1); `None` when
/// malformed. Parameter names are returned as written (they are compared exactly).
fn parse_extension(text: &str) -> Option<(&str, Params)> {
    let mut parts = split_outside_quotes(text, ';').into_iter();
    let name = parts.next()?.trim();
    if !is_token(name) {
        return None;
    }
    let mut params = Vec::new();
    for part in parts {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), Some(parse_value(v.trim())?)),
            None => (part.trim(), None),
        };
        if !is_token(key) {
            return None;
        }
        params.push((key.to_owned(), value));
    }
    Some((name, params))
}

/// A parameter value: a token, or a quoted-string whose unescaped content is a token (§7.1:
/// "the value MUST conform to the ABNF below" after unquoting).
fn parse_value(v: &str) -> Option<String> {
    let value = match v.strip_prefix('"') {
        Some(rest) => {
            let inner = rest.strip_suffix('"')?;
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(chars.next()?),
                    '"' => return None,
                    c => out.push(c),
                }
            }
            out
        }
        None => v.to_owned(),
    };
    is_token(&value).then_some(value)
}

/// RFC 7230 token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The offer a client sends (`Sec-WebSocket-Extensions`): permessage-deflate, letting the
/// server limit the client's window and choose whether it keeps its own context.
pub const CLIENT_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// permessage-deflate as a server agreed to it, seen from the client (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAgreement {
    /// The server compresses each message on its own (`server_no_context_takeover`): every
    /// received message inflates alone. Otherwise the client keeps one inflater.
    pub server_no_context_takeover: bool,
    /// The largest window the client may compress with (`client_max_window_bits`, 15 when
    /// the server did not limit it).
    pub client_max_window_bits: u8,
}

/// Reads a server's `Sec-WebSocket-Extensions` answer to [`CLIENT_OFFER`]: `Ok(None)` when
/// it declined (no header), the agreement, or an error when the answer is not one the client
/// may accept (another extension, an unknown, repeated or out-of-range parameter: §7.1 says
/// the client must then fail the connection).
pub fn client_agreement(answer: Option<&str>) -> Result<Option<ClientAgreement>, String> {
    let Some(answer) = answer.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let bad = |why: &str| Err(format!("unacceptable Sec-WebSocket-Extensions {answer:?}: {why}"));
    let extensions = split_outside_quotes(answer, ',');
    if extensions.len() != 1 {
        return bad("more than one extension");
    }
    let Some((name, params)) = parse_extension(extensions[0]) else {
        return bad("malformed");
    };
    if !name.eq_ignore_ascii_case(EXTENSION_NAME) {
        return bad("an extension that was not offered");
    }
    let mut agreement = ClientAgreement {
        server_no_context_takeover: false,
        client_max_window_bits: MAX_WINDOW_BITS,
    };
    let mut seen: Vec<&str> = Vec::new();
    for (param, value) in &params {
        if seen.contains(&param.as_str()) {
            return bad("a repeated parameter");
        }
        seen.push(param);
        match (param.as_str(), value.as_deref()) {
            ("server_no_context_takeover", None) => agreement.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(v)) if window_bits(v).is_some() => {}
            ("client_max_window_bits", Some(v)) if window_bits(v).is_some() => {
                agreement.client_max_window_bits = window_bits(v).unwrap_or(MAX_WINDOW_BITS);
            }
            _ => return bad("an unknown or invalid parameter"),
        }
    }
    Ok(Some(agreement))
}

/// Compresses one outbound client message on its own (never taking context over, which any
/// agreement allows) within `window_bits`; `None` when the window is too small for zlib (8)
/// or compression would not shrink the message.
pub fn deflate_client_message(data: &[u8], window_bits: u8, level: u32) -> Option<Bytes> {
    if window_bits < MIN_COMPRESS_WINDOW_BITS {
        return None;
    }
    deflate_shared(data, window_bits, level)
}

/// Why an inbound compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The inflated message would exceed the limit (close 1009).
    TooBig,
    /// The payload is not a valid deflate stream (close 1007).
    Corrupt,
}

/// Inflates one complete compressed message (the concatenated payloads of its frames),
/// appending the stripped `00 00 ff ff` (§7.2.2). Stops with [`InflateError::TooBig`] as soon
/// as the output would pass `max_len`, so a small "zip bomb" never allocates more than the
/// message limit. A fresh inflater per message: the client was told not to take context over.
pub fn inflate_message(compressed: &[u8], max_len: usize) -> Result<Bytes, InflateError> {
    let mut inflater = Decompress::new_with_window_bits(false, MAX_WINDOW_BITS);
    inflate_into(&mut inflater, compressed, max_len)
}

/// Inflates one message with a connection's inflater, keeping its window for the next message
/// (context takeover, §7.2.2: the sender did not reset its compressor). A message that ends
/// the deflate stream (a final block) resets the inflater for the next one. On an error the
/// connection is failed, so the inflater's state does not matter afterwards.
pub fn inflate_continuing(
    inflater: &mut Decompress,
    compressed: &[u8],
    max_len: usize,
) -> Result<Bytes, InflateError> {
    inflate_into(inflater, compressed, max_len)
}

/// Runs one message's payload and the stripped sync tail through `inflater`.
fn inflate_into(
    inflater: &mut Decompress,
    compressed: &[u8],
    max_len: usize,
) -> Result<Bytes, InflateError> {
    // A first guess; grown as needed, never beyond the limit (+1 to detect passing it).
    let initial = compressed.len().saturating_mul(4).clamp(64, 64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(initial.min(max_len.saturating_add(1)));
    for input in [compressed, &SYNC_TAIL[..]] {
        let mut consumed = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > max_len {
                    return Err(InflateError::TooBig);
                }
                let room = out
                    .capacity()
                    .max(64)
                    .min(max_len.saturating_add(1) - out.len());
                out.reserve_exact(room);
            }
            let before_in = inflater.total_in();
            let before_out = inflater.total_out();
            let status = inflater
                .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            consumed += (inflater.total_in() - before_in) as usize;
            if out.len() > max_len {
                return Err(InflateError::TooBig);
            }
            match status {
                // A final block (BFINAL) ends the message's stream; what follows is ignored,
                // and a continuing inflater starts a new stream with the next message.
                Status::StreamEnd => {
                    inflater.reset(false);
                    return Ok(Bytes::from(out));
                }
                _ if consumed == input.len() && out.len() < out.capacity() => break,
                _ if inflater.total_out() == before_out
                    && inflater.total_in() == before_in
                    && out.len() < out.capacity() =>
                {
                    // No progress with room left and input pending: cannot happen for a
                    // well-formed stream.
                    return Err(InflateError::Corrupt);
                }
                _ => {}
            }
        }
    }
    Ok(Bytes::from(out))
}

thread_local! {
    /// One reusable compressor (with its level) per worker thread and window size in use (a
    /// zlib deflate state is ~300 KiB: kept per thread, never per connection).
    /// Index: window bits - 9.
    static COMPRESSORS: RefCell<[Option<(u32, Compress)>; 7]> = const {
        RefCell::new([None, None, None, None, None, None, None])
    };
}

/// Compresses `data` as one self-contained message body (no context taken over), ending with
/// a sync flush whose `00 00 ff ff` is stripped (§7.2.1). The result starts on a fresh block
/// and needs no preceding bytes, so it can follow any byte-aligned deflate data: this is what
/// lets one compressed MESSAGE tail be shared after per-subscriber prefixes.
///
/// `level` is zlib's 1 (fastest) ..= 9 (smallest); `window_bits` 9..=15 bounds the distance of
/// back-references (`server_max_window_bits`).
///
/// Returns `None` when compression would not make `data` smaller (send it uncompressed).
pub fn deflate_shared(data: &[u8], window_bits: u8, level: u32) -> Option<Bytes> {
    let bits = window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
    let level = level.clamp(1, 9);
    COMPRESSORS.with(|cell| {
        let mut slots = cell.borrow_mut();
        let slot = &mut slots[usize::from(bits - MIN_COMPRESS_WINDOW_BITS)];
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let compressor = Compress::new_with_window_bits(Compression::new(level), false, bits);
            *slot = Some((level, compressor));
        }
        let (_, compressor) = slot.as_mut().expect("just filled");
        let out = compress_with(compressor, data);
        // Ready for the next message (also after one abandoned for not shrinking).
        compressor.reset();
        out
    })
}

/// Runs `data` through `compressor` with a sync flush; `None` if the result is not smaller.
fn compress_with(compressor: &mut Compress, data: &[u8]) -> Option<Bytes> {
    // Worth it only if strictly smaller than the input: stop at that size.
    let budget = data.len() + SYNC_TAIL.len();
    let mut out: Vec<u8> = Vec::with_capacity((data.len() / 2 + 64).min(budget));
    let mut consumed = 0;
    loop {
        if out.len() == out.capacity() {
            if out.len() >= budget {
                return None;
            }
            out.reserve_exact((out.capacity()).min(budget - out.len()).max(64));
        }
        let before = compressor.total_in();
        compressor
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
            .ok()?;
        consumed += (compressor.total_in() - before) as usize;
        // Done when all input is in and the flush fit (room left in the buffer).
        if consumed == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&SYNC_TAIL) {
        return None;
    }
    out.truncate(out.len() - SYNC_TAIL.len());
    (out.len() < data.len()).then(|| Bytes::from(out))
}

/// Largest data a single stored block can carry.
pub const MAX_STORED_BLOCK: usize = u16::MAX as usize;

/// Length of a stored block's header: [`stored_block_header`].
pub const STORED_BLOCK_HEADER_LEN: usize = 5;

/// The header of a non-final stored deflate block (RFC 1951 §3.2.4) carrying `len` ≤
/// [`MAX_STORED_BLOCK`] bytes, starting at a byte boundary: `00 LEN NLEN`. The block ends
/// byte-aligned, so any deflate data may follow it. Used for the small per-subscriber
/// MESSAGE prefix, which is not worth a compressor.
pub fn stored_block_header(len: usize) -> [u8; STORED_BLOCK_HEADER_LEN] {
    assert!(len <= MAX_STORED_BLOCK, "stored block too long");
    let [lo, hi] = (len as u16).to_le_bytes();
    // BFINAL = 0, BTYPE = 00, then padding to the byte boundary: one zero byte.
    [0x00, lo, hi, !lo, !hi]
}

/// Appends `data` (≤ [`MAX_STORED_BLOCK`] bytes) as a stored block ([`stored_block_header`]).
pub fn put_stored_block(data: &[u8], out: &mut BytesMut) {
    out.put_slice(&stored_block_header(data.len()));
    out.put_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(offers: &str) -> Option<String> {
        negotiate(offers).map(|a| a.response)
    }

    const PLAIN: &str =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn browser_and_library_offers_are_accepted() {
        // Chromium, Node ws (default), Python websockets (default).
        assert_eq!(
            accept("permessage-deflate; client_max_window_bits").as_deref(),
            Some(PLAIN)
        );
        assert_eq!(
            accept("permessage-deflate; client_max_window_bits=15").as_deref(),
            Some(PLAIN)
        );
        assert_eq!(accept("permessage-deflate").as_deref(), Some(PLAIN));
        let agreed = negotiate("permessage-deflate").unwrap();
        assert_eq!(agreed.params.server_max_window_bits, 15);
    }

    #[test]
    fn server_window_is_honoured_from_9_bits() {
        let a = negotiate("permessage-deflate; server_max_window_bits=10").unwrap();
        assert_eq!(a.params.server_max_window_bits, 10);
        assert_eq!(a.response, format!("{PLAIN}; server_max_window_bits=10"));
        // Quoted values are unquoted first (§7.1).
        let a = negotiate("permessage-deflate; server_max_window_bits=\"12\"").unwrap();
        assert_eq!(a.params.server_max_window_bits, 12);
        // 8 is valid but cannot be produced by zlib: declined.
        assert_eq!(accept("permessage-deflate; server_max_window_bits=8"), None);
    }

    #[test]
    fn invalid_parameters_decline_the_offer() {
        for offer in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=\"1 5\"",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=true",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; unknown_param",
            "permessage-deflate; x=\"unterminated",
            "permessage-deflate;; client_max_window_bits",
        ] {
            assert_eq!(accept(offer), None, "{offer}");
        }
    }

    #[test]
    fn first_acceptable_offer_wins() {
        // An invalid first offer falls back to the next one.
        let a = negotiate(
            "permessage-deflate; server_max_window_bits=8, \
             permessage-deflate; server_max_window_bits=11, permessage-deflate",
        )
        .unwrap();
        assert_eq!(a.params.server_max_window_bits, 11);
        // Other extensions are skipped; a quoted comma does not split an offer.
        let a = negotiate(
            "x-webkit-deflate-frame, foo; bar=\"a,b\", permessage-deflate; client_max_window_bits",
        )
        .unwrap();
        assert_eq!(a.response, PLAIN);
        assert_eq!(accept("x-webkit-deflate-frame, foo"), None);
        assert_eq!(accept(""), None);
        // Extension names compare case-insensitively.
        assert_eq!(accept("Permessage-Deflate").as_deref(), Some(PLAIN));
    }

    /// RFC 7692 §7.2.3.1: "Hello" compressed in one block.
    #[test]
    fn rfc_example_hello() {
        let compressed = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(&inflate_message(&compressed, 100).unwrap()[..], b"Hello");
        // Our compressor produces exactly the RFC's bytes for it.
        // ("Hello" is too short to shrink, so use the compressor directly.)
        let mut c = Compress::new_with_window_bits(Compression::new(DEFAULT_LEVEL), false, 15);
        let mut out = Vec::with_capacity(64);
        c.compress_vec(b"Hello", &mut out, FlushCompress::Sync)
            .unwrap();
        assert_eq!(
            out,
            [
                0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00, 0x00, 0xff, 0xff
            ]
        );
    }

    /// RFC 7692 §7.2.3.1: the same message sent as two fragments is concatenated first.
    #[test]
    fn rfc_example_fragmented_hello() {
        let first = [0xf2, 0x48, 0xcd];
        let second = [0xc9, 0xc9, 0x07, 0x00];
        let whole: Vec<u8> = first.iter().chain(second.iter()).copied().collect();
        assert_eq!(&inflate_message(&whole, 100).unwrap()[..], b"Hello");
    }

    /// RFC 7692 §7.2.3.3: "Hello" in a stored (no compression) block.
    #[test]
    fn rfc_example_no_compression_block() {
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(&inflate_message(&stored, 100).unwrap()[..], b"Hello");
        let mut out = BytesMut::new();
        put_stored_block(b"Hello", &mut out);
        assert_eq!(&out[..], &stored[..10]);
    }

    /// RFC 7692 §7.2.3.2: a second "Hello" compressed with the first one's window is a
    /// back-reference; with context takeover on the sender, the receiver needs the window.
    #[test]
    fn rfc_example_shared_window() {
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut inflater = Decompress::new_with_window_bits(false, 15);
        let mut out = Vec::with_capacity(64);
        for msg in [&first[..], &second[..]] {
            let stream: Vec<u8> = msg.iter().chain(SYNC_TAIL.iter()).copied().collect();
            inflater
                .decompress_vec(&stream, &mut out, FlushDecompress::Sync)
                .unwrap();
        }
        assert_eq!(out, b"HelloHello");
        // Without the first message's window (no context takeover, which we negotiate) the
        // second message does not inflate: it refers to bytes before its start.
        assert_eq!(inflate_message(&second, 100), Err(InflateError::Corrupt));
    }

    /// RFC 7692 §7.2.3.4: "Hello" in a BFINAL block; what follows it is ignored.
    #[test]
    fn rfc_example_final_block() {
        let compressed = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(&inflate_message(&compressed, 100).unwrap()[..], b"Hello");
        let padded = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(&inflate_message(&padded, 100).unwrap()[..], b"Hello");
    }

    #[test]
    fn zip_bomb_stops_at_the_limit() {
        let bomb = deflate_shared(&vec![b'a'; 4 * 1024 * 1024], 15, DEFAULT_LEVEL).unwrap();
        assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
        assert_eq!(
            inflate_message(&bomb, 1024 * 1024),
            Err(InflateError::TooBig)
        );
        assert_eq!(
            inflate_message(&bomb, 4 * 1024 * 1024 - 1),
            Err(InflateError::TooBig)
        );
        assert_eq!(
            inflate_message(&bomb, 4 * 1024 * 1024).unwrap().len(),
            4 * 1024 * 1024
        );
    }

    #[test]
    fn corrupt_input_is_an_error() {
        // BTYPE = 11 is reserved.
        assert_eq!(
            inflate_message(&[0xff, 0xff], 100),
            Err(InflateError::Corrupt)
        );
        // Stored block whose NLEN does not match.
        assert_eq!(
            inflate_message(&[0x00, 0x05, 0x00, 0x00, 0x00, b'x'], 100),
            Err(InflateError::Corrupt)
        );
        // Empty payload: an empty message.
        assert_eq!(inflate_message(&[], 100).unwrap().len(), 0);
        assert_eq!(&inflate_message(&[0x00], 100).unwrap()[..], b"");
    }

    #[test]
    fn shared_tail_after_stored_prefix_inflates() {
        let tail: Vec<u8> = (0..200)
            .flat_map(|i| {
                format!("{{\"seq\":{i},\"price\":{}.25,\"sym\":\"ABC\"}}\n", i * 7).into_bytes()
            })
            .collect();
        let compressed_tail = deflate_shared(&tail, 15, DEFAULT_LEVEL).unwrap();
        assert!(compressed_tail.len() < tail.len() / 3);
        for prefix in [&b""[..], b"MESSAGE\nsubscription:sub-1\nmessage-id:1-1\n"] {
            let mut payload = BytesMut::new();
            put_stored_block(prefix, &mut payload);
            payload.extend_from_slice(&compressed_tail);
            let out = inflate_message(&payload, 1 << 20).unwrap();
            assert_eq!(&out[..prefix.len()], prefix);
            assert_eq!(&out[prefix.len()..], &tail[..]);
        }
    }

    #[test]
    fn small_windows_produce_valid_streams() {
        let data: Vec<u8> = (0..5000u32)
            .flat_map(|i| (i % 97).to_string().into_bytes())
            .collect();
        for (bits, level) in (9..=15).flat_map(|bits| [(bits, 1), (bits, 9), (bits, DEFAULT_LEVEL)])
        {
            let c = deflate_shared(&data, bits, level).unwrap();
            let mut inflater = Decompress::new_with_window_bits(false, bits);
            let stream: Vec<u8> = c.iter().chain(SYNC_TAIL.iter()).copied().collect();
            let mut out = Vec::with_capacity(data.len() + 16);
            inflater
                .decompress_vec(&stream, &mut out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(out, data, "window {bits}");
        }
    }

    #[test]
    fn incompressible_data_is_not_compressed() {
        // A xorshift byte stream has no repetition to exploit.
        let mut x: u32 = 0x9e37_79b9;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        assert_eq!(deflate_shared(&noise, 15, DEFAULT_LEVEL), None);
        assert_eq!(deflate_shared(b"", 15, DEFAULT_LEVEL), None);
        // Large compressible input needs several output growths.
        let big = vec![b'z'; 1 << 20];
        let c = deflate_shared(&big, 15, DEFAULT_LEVEL).unwrap();
        assert_eq!(&inflate_message(&c, 1 << 20).unwrap()[..], &big[..]);
    }
}
