//! SockJS frames (`o`, `h`, `a[...]`, `c[code,"reason"]`), the per-transport wrapping of a
//! frame on an HTTP response, and the decoder of client messages.
//!
//! Outgoing strings are JSON-encoded with the extra escapes the protocol lists
//! (`escapable_by_server` in sockjs-protocol 0.3.3): control characters, U+200C–U+200F,
//! U+2028–U+202F, U+2060–U+206F and U+FFF0–U+FFFF are written as `\uXXXX`, because browsers
//! mangle them on some transports. Surrogates (U+D800–U+DFFF) cannot occur in Rust strings:
//! a lone surrogate escape from a client decodes to U+FFFD.

use std::fmt;

/// The open frame, sent once when a session starts.
pub const OPEN: &str = "o";
/// The heartbeat frame.
pub const HEARTBEAT: &str = "h";

/// Close code and reason sent when the server ends a session normally.
pub const GO_AWAY: (u16, &str) = (3000, "Go away!");
/// Close frame for a second receiving request on a session that already has one.
pub const ANOTHER_CONNECTION: (u16, &str) = (2010, "Another connection still open");
/// Close frame after a receiving request was aborted by the client.
pub const INTERRUPTED: (u16, &str) = (1002, "Connection interrupted");

/// Appends `text` as a JSON string literal (with quotes) using the SockJS escapes.
pub fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if needs_unicode_escape(c) => {
                use fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Characters sent as `\uXXXX` (sockjs-protocol's `escapable_by_server`, plus DEL and the C1
/// controls, which some browsers also mangle).
fn needs_unicode_escape(c: char) -> bool {
    matches!(c as u32,
        0x00..=0x1f
        | 0x7f..=0x9f
        | 0x200c..=0x200f
        | 0x2028..=0x202f
        | 0x2060..=0x206f
        | 0xfff0..=0xffff)
}

/// A JSON string literal for `text`.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_json_string(&mut out, text);
    out
}

/// Builds an `a[...]` frame from messages; each is JSON-encoded.
#[derive(Debug, Default, Clone)]
pub struct ArrayFrame {
    text: String,
    count: usize,
}

impl ArrayFrame {
    /// An empty frame under construction.
    pub fn new() -> ArrayFrame {
        ArrayFrame {
            text: String::from("a["),
            count: 0,
        }
    }

    /// Adds one message.
    pub fn push(&mut self, message: &str) {
        if self.count > 0 {
            self.text.push(',');
        }
        push_json_string(&mut self.text, message);
        self.count += 1;
    }

    /// Number of messages added.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no message was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished frame text.
    pub fn finish(mut self) -> String {
        self.text.push(']');
        self.text
    }
}

/// An `a[...]` frame holding `messages`.
pub fn array_frame<'a>(messages: impl IntoIterator<Item = &'a str>) -> String {
    let mut frame = ArrayFrame::new();
    for m in messages {
        frame.push(m);
    }
    frame.finish()
}

/// A `c[code,"reason"]` frame.
pub fn close_frame(code: u16, reason: &str) -> String {
    let mut out = format!("c[{code},");
    push_json_string(&mut out, reason);
    out.push(']');
    out
}

/// How a receiving transport puts frames on its HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrapping<'a> {
    /// `xhr` and `xhr_streaming`: the frame and a newline.
    Xhr,
    /// `eventsource`: an event-stream `data:` line.
    EventSource,
    /// `htmlfile`: a script calling `p(...)` with the frame as a string.
    HtmlFile,
    /// `jsonp`: a call of the client's callback with the frame as a string.
    Jsonp {
        /// The validated callback name.
        callback: &'a str,
    },
}

impl Wrapping<'_> {
    /// The bytes of one frame on the response.
    pub fn wrap(&self, frame: &str) -> String {
        match self {
            Wrapping::Xhr => format!("{frame}\n"),
            Wrapping::EventSource => format!("data: {frame}\r\n\r\n"),
            Wrapping::HtmlFile => format!("<script>\np({});\n</script>\r\n", json_string(frame)),
            Wrapping::Jsonp { callback } => format!("{callback}({});\r\n", json_string(frame)),
        }
    }
}

/// Size of the `h` prelude of `xhr_streaming` (2 KiB, so that browsers start delivering
/// the response before it ends).
pub const XHR_STREAMING_PRELUDE_LEN: usize = 2048;

/// The start of an `xhr_streaming` response.
pub fn xhr_streaming_prelude() -> String {
    let mut s = "h".repeat(XHR_STREAMING_PRELUDE_LEN);
    s.push('\n');
    s
}

/// The start of an `htmlfile` response: the page that hands frames to `parent.<callback>`,
/// padded past 1 KiB (some browsers render nothing before that).
pub fn htmlfile_prelude(callback: &str) -> String {
    let mut page = format!(
        "<!doctype html>\n<html><head>\n  \
         <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
         </head><body><h2>Don't panic!</h2>\n  <script>\n    \
         document.domain = document.domain;\n    \
         var c = parent.{callback};\n    c.start();\n    \
         function p(d) {{c.message(d);}};\n    \
         window.onload = function() {{c.stop();}};\n  </script>"
    );
    let padding = 1024usize.saturating_sub(page.len()) + 14;
    page.push_str(&" ".repeat(padding));
    page.push_str("\r\n\r\n");
    page
}

/// Whether a JSONP/htmlfile callback name is safe to echo into a script
/// (letters, digits, `_`, `-` and `.`, at most 64 characters).
pub fn is_valid_callback(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Why a client payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Nothing but whitespace (`"Payload expected."` in the protocol).
    Empty,
    /// Not a JSON string or array of strings (`"Broken JSON encoding."`).
    Broken,
    /// Longer than the configured limit.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("Payload expected."),
            DecodeError::Broken => f.write_str("Broken JSON encoding."),
            DecodeError::TooLarge { limit } => write!(f, "Payload exceeds {limit} bytes."),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Which shapes of client payload a transport accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Only an array of strings (`xhr_send`, `jsonp_send`).
    Array,
    /// An array of strings or a single string (WebSocket messages).
    ArrayOrString,
}

/// Decodes a client payload (a JSON array of strings, or a single string when `shape`
/// allows it) and appends the UTF-8 bytes of every string, in order, to `out`: SockJS
/// messages carry a byte stream for us (STOMP frames may span messages). Returns the number
/// of strings. `out` is left unchanged on error. Payloads longer than `limit` are refused
/// before parsing.
pub fn decode_messages(
    input: &[u8],
    shape: Shape,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    if input.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    let start = out.len();
    let result = Parser {
        input,
        pos: 0,
        out: &mut *out,
        ends: None,
    }
    .payload(shape);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Decodes a client payload like [`decode_messages`], keeping the messages apart: for a
/// protocol whose messages are the unit (raw endpoints), not a byte stream.
pub fn decode_each(input: &[u8], shape: Shape, limit: usize) -> Result<Vec<String>, DecodeError> {
    if input.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    let mut out = Vec::new();
    let mut ends = Vec::new();
    Parser {
        input,
        pos: 0,
        out: &mut out,
        ends: Some(&mut ends),
    }
    .payload(shape)?;
    let mut messages = Vec::with_capacity(ends.len());
    let mut start = 0;
    for end in ends {
        // Every string was checked to be UTF-8 as it was decoded.
        messages.push(String::from_utf8_lossy(&out[start..end]).into_owned());
        start = end;
    }
    Ok(messages)
}

struct Parser<'a, 'o> {
    input: &'a [u8],
    pos: usize,
    out: &'o mut Vec<u8>,
    /// Where each decoded string ends in `out`, when the caller keeps messages apart.
    ends: Option<&'o mut Vec<usize>>,
}

impl Parser<'_, '_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.input.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// A string was decoded: remember where it ends.
    fn ended(&mut self) {
        let len = self.out.len();
        if let Some(ends) = self.ends.as_deref_mut() {
            ends.push(len);
        }
    }

    fn payload(mut self, shape: Shape) -> Result<usize, DecodeError> {
        self.skip_ws();
        let count = match self.peek() {
            None => return Err(DecodeError::Empty),
            Some(b'[') => self.array()?,
            Some(b'"') if shape == Shape::ArrayOrString => {
                self.string()?;
                self.ended();
                1
            }
            Some(_) => return Err(DecodeError::Broken),
        };
        self.skip_ws();
        if self.pos != self.input.len() {
            return Err(DecodeError::Broken);
        }
        Ok(count)
    }

    fn array(&mut self) -> Result<usize, DecodeError> {
        self.pos += 1; // '['
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(0);
        }
        let mut count = 0;
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(DecodeError::Broken);
            }
            self.string()?;
            self.ended();
            count += 1;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(count);
                }
                _ => return Err(DecodeError::Broken),
            }
        }
    }

    /// Decodes one string literal (at `"`) into `out`.
    fn string(&mut self) -> Result<(), DecodeError> {
        self.pos += 1; // opening quote
        loop {
            // Copy the run of plain bytes at once.
            let run = self.input[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or(DecodeError::Broken)?;
            let plain = &self.input[self.pos..self.pos + run];
            if std::str::from_utf8(plain).is_err() {
                return Err(DecodeError::Broken);
            }
            self.out.extend_from_slice(plain);
            self.pos += run;
            match self.input[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => self.escape()?,
                _ => return Err(DecodeError::Broken), // raw control character
            }
        }
    }

    fn escape(&mut self) -> Result<(), DecodeError> {
        let Some(&kind) = self.input.get(self.pos + 1) else {
            return Err(DecodeError::Broken);
        };
        self.pos += 2;
        let simple = match kind {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let c = self.unicode_escape()?;
                let mut buf = [0u8; 4];
                self.out
                    .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                return Ok(());
            }
            _ => return Err(DecodeError::Broken),
        };
        self.out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, DecodeError> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or(DecodeError::Broken)?;
        let mut value = 0;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or(DecodeError::Broken)?;
            value = value * 16 + v;
        }
        self.pos += 4;
        Ok(value)
    }

    /// After `\u`: one code unit, or a surrogate pair. A lone surrogate becomes U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, DecodeError> {
        let unit = self.hex4()?;
        if (0xd800..0xdc00).contains(&unit) {
            if self.input.get(self.pos..self.pos + 2) == Some(b"\\u") {
                let save = self.pos;
                self.pos += 2;
                let low = self.hex4()?;
                if (0xdc00..0xe000).contains(&low) {
                    let c = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                    return Ok(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                // Not a pair: the second escape is decoded on its own.
                self.pos = save;
            }
            return Ok(char::REPLACEMENT_CHARACTER);
        }
        Ok(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &str, shape: Shape) -> Result<(usize, String), DecodeError> {
        let mut out = Vec::new();
        let n = decode_messages(input.as_bytes(), shape, 1 << 20, &mut out)?;
        Ok((n, String::from_utf8(out).unwrap()))
    }

    #[test]
    fn frames() {
        assert_eq!(array_frame(["a", "b\"c"]), r#"a["a","b\"c"]"#);
        assert_eq!(array_frame([]), "a[]");
        assert_eq!(close_frame(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
    }

    #[test]
    fn escapes_what_the_protocol_lists() {
        assert_eq!(json_string("\u{0}\n\u{1f}"), r#""\u0000\n\u001f""#);
        assert_eq!(
            json_string("\u{200c}\u{2028}\u{2060}\u{fff0}\u{ffff}"),
            r#""\u200c\u2028\u2060\ufff0\uffff""#
        );
        assert_eq!(json_string("é€😀"), "\"é€😀\"");
        assert_eq!(
            json_string("\u{2030}"),
            "\"\u{2030}\"",
            "outside the ranges"
        );
    }

    #[test]
    fn wrappings() {
        assert_eq!(Wrapping::Xhr.wrap("o"), "o\n");
        assert_eq!(Wrapping::EventSource.wrap("o"), "data: o\r\n\r\n");
        assert_eq!(
            Wrapping::HtmlFile.wrap(r#"a["x"]"#),
            "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
        );
        assert_eq!(
            Wrapping::Jsonp { callback: "cb" }.wrap("o"),
            "cb(\"o\");\r\n"
        );
        assert_eq!(xhr_streaming_prelude().len(), 2049);
        let page = htmlfile_prelude("callback");
        assert!(page.len() > 1024);
        assert!(page.contains("var c = parent.callback;"));
    }

    #[test]
    fn callbacks() {
        assert!(is_valid_callback("jQuery_1.2-x"));
        assert!(!is_valid_callback(""));
        assert!(!is_valid_callback("a(b)"));
        assert!(!is_valid_callback("a<script>"));
    }

    #[test]
    fn decodes_arrays_and_strings() {
        assert_eq!(decode(r#"["a","b"]"#, Shape::Array), Ok((2, "ab".into())));
        assert_eq!(decode(r#" [ "x" ] "#, Shape::Array), Ok((1, "x".into())));
        assert_eq!(decode("[]", Shape::Array), Ok((0, String::new())));
        assert_eq!(
            decode(r#""one""#, Shape::ArrayOrString),
            Ok((1, "one".into()))
        );
        assert_eq!(decode(r#""one""#, Shape::Array), Err(DecodeError::Broken));
        assert_eq!(
            decode(r#"["\u0000\n\"\\\/\t\u00e9\ud83d\ude00"]"#, Shape::Array),
            Ok((1, "\0\n\"\\/\t\u{e9}\u{1f600}".into()))
        );
        assert_eq!(
            decode(r#"["\ud800x"]"#, Shape::Array),
            Ok((1, "\u{fffd}x".into()))
        );
        assert_eq!(
            decode(r#"["\ud800\u0041"]"#, Shape::Array),
            Ok((1, "\u{fffd}A".into()))
        );
    }

    #[test]
    fn refuses_broken_payloads() {
        assert_eq!(decode("", Shape::Array), Err(DecodeError::Empty));
        assert_eq!(decode("  \n", Shape::Array), Err(DecodeError::Empty));
        for bad in [
            r#"["x"#,
            "[",
            "[1]",
            r#"["a",]"#,
            r#"["a"] x"#,
            r#"["\x"]"#,
            "[\"\u{1}\"]",
            r#"["\u12"]"#,
            "{}",
            "null",
        ] {
            assert_eq!(
                decode(bad, Shape::ArrayOrString),
                Err(DecodeError::Broken),
                "{bad:?}"
            );
        }
        let mut out = b"keep".to_vec();
        assert_eq!(
            decode_messages(&[b'[', b'"', 0xff, b'"', b']'], Shape::Array, 100, &mut out),
            Err(DecodeError::Broken)
        );
        assert_eq!(out, b"keep");
        assert_eq!(
            decode_messages(br#"["abc"]"#, Shape::Array, 4, &mut out),
            Err(DecodeError::TooLarge { limit: 4 })
        );
    }

    #[test]
    fn round_trips_through_the_encoder() {
        let text = "CONNECT\naccept-version:1.2\n\n\0\u{2028}\u{ffff}\"\\";
        let frame = array_frame([text]);
        let mut out = Vec::new();
        decode_messages(&frame.as_bytes()[1..], Shape::Array, 1 << 20, &mut out).unwrap();
        assert_eq!(out, text.as_bytes());
    }
}

#[cfg(test)]
mod each_tests {
    use super::*;

    #[test]
    fn messages_stay_apart() {
        let each = decode_each(br#"["a\"b", "", "\u00e9x"]"#, Shape::Array, 100).unwrap();
        assert_eq!(each, ["a\"b", "", "éx"]);
        assert_eq!(
            decode_each(br#""one""#, Shape::ArrayOrString, 100).unwrap(),
            ["one"]
        );
        assert!(decode_each(br#""one""#, Shape::Array, 100).is_err());
        assert!(decode_each(br#"["x"#, Shape::Array, 100).is_err());
        assert!(matches!(
            decode_each(br#"["xxxxxxxx"]"#, Shape::Array, 4),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
