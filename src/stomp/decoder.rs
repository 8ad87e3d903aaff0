//! Incremental, sans-IO STOMP frame decoder.
//!
//! Grammar (STOMP 1.2 "Augmented BNF"):
//!
//! ```text
//! frame-stream = 1*frame
//! frame        = command EOL *( header EOL ) EOL *OCTET NULL *( EOL )
//! EOL          = [CR] LF
//! header       = header-name ":" header-value
//! ```
//!
//! Behaviour and leniencies:
//!
//! * `\r\n` and `\n` line endings are accepted in every version; exactly one
//!   trailing CR is stripped from each line.
//! * EOLs between frames (including the optional EOLs after a frame's NUL)
//!   are heart-beats: every run of consecutive EOLs already in the buffer is
//!   reported as one [`Decoded::Heartbeat`] (a run split across reads may
//!   be reported more than once).
//! * Header lines are split at the *first* colon. Further raw colons stay in
//!   the value, even in 1.1/1.2 where they should have been escaped as `\c`
//!   (lenient, like RabbitMQ). An empty header name is an error.
//! * Names and values are kept verbatim (no whitespace trimming, as 1.2
//!   requires; also applied to 1.0/1.1). They must be UTF-8.
//! * Escaping follows [`escaping_for`]: until [`Decoder::set_version`] is
//!   called the decoder uses the 1.0 rules (no escaping), which is what the
//!   CONNECT/STOMP frame needs; CONNECT/STOMP/CONNECTED are never unescaped.
//! * `content-length` (first occurrence wins) must be decimal digits; ASCII
//!   spaces/tabs around the digits are tolerated. With it exactly that many
//!   body bytes are read (they may include NULs) and the next byte must be
//!   NUL. Without it the body ends at the first NUL.
//! * The decoder does not check which commands may carry a body or which
//!   headers are required: that is the session's job.
//!
//! Limits are enforced as soon as they can be known to be exceeded: an
//! incomplete line or body that is already too long is rejected without
//! waiting for the rest, and a `content-length` above the limit is rejected
//! when the headers end. Data is never buffered beyond the limits.
//!
//! Incrementality: complete header lines are parsed and removed from the
//! buffer as they arrive, and the decoder remembers how far it has searched
//! the current line / body, so a large frame arriving in many small chunks is
//! scanned once (linear time). The buffer must therefore be the same one on
//! every call, with new data only ever appended at the end. Bodies are split
//! off the buffer without copying.
//!
//! Every error is fatal for the connection: after an error the decoder is
//! reset to its between-frames state, but the buffer content is undefined.

use bytes::{Buf, BytesMut};

use super::escape::{Escaping, escaping_for, unescape};
use super::frame::{Command, Frame};
use super::version::Version;

/// Default [`FrameLimits::max_frame_size`]: 4 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 4 * 1024 * 1024;
/// Default [`FrameLimits::max_headers`].
pub const DEFAULT_MAX_HEADERS: usize = 64;
/// Default [`FrameLimits::max_header_length`]: 8 KiB.
pub const DEFAULT_MAX_HEADER_LENGTH: usize = 8 * 1024;

/// Size limits applied while decoding STOMP frames (from clients, and in relay mode from the
/// message broker).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameLimits {
    /// Maximum size in bytes of one frame: command line, header lines, the
    /// blank line and the body (the terminating NUL and trailing EOLs are not
    /// counted). Default 4 MiB, which therefore bounds bodies to a little less
    /// than 4 MiB; at most 1 GiB.
    pub max_frame_size: usize,
    /// Maximum number of header lines in one frame (repeats count). Default 64.
    pub max_headers: usize,
    /// Maximum length in bytes of one header line, excluding its EOL and
    /// before unescaping. Default 8 KiB.
    pub max_header_length: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_header_length: DEFAULT_MAX_HEADER_LENGTH,
        }
    }
}

/// One item decoded from the byte stream.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// A complete frame.
    Frame(Frame),
    /// One run of EOLs between frames (a heart-beat).
    Heartbeat,
}

/// A fatal protocol error. The `Display` text is meant to be used verbatim
/// as the `message` header of the STOMP ERROR frame.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The first line of a frame is not a STOMP command. Holds a sanitised
    /// (debug-escaped, truncated) copy of what was received.
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    /// A header line has no `:`.
    #[error("malformed header: missing ':' separator")]
    MissingColon,
    /// A header line starts with `:`.
    #[error("malformed header: empty header name")]
    EmptyHeaderName,
    /// A NUL octet inside a header line: it would end the frame for every peer that reads it
    /// again (a forged frame in a subscriber's stream), so it is never accepted.
    #[error("NUL octet in a header")]
    NulInHeader,
    /// A header name or value is not valid UTF-8.
    #[error("header is not valid UTF-8")]
    InvalidUtf8,
    /// An undefined escape sequence such as `\t` (or `\r` in STOMP 1.1).
    #[error("undefined escape sequence in header")]
    InvalidEscape,
    /// More headers than [`FrameLimits::max_headers`] (the limit).
    #[error("too many headers (limit {0})")]
    TooManyHeaders(usize),
    /// A header line longer than [`FrameLimits::max_header_length`] (the limit).
    #[error("header line too long (limit {0} bytes)")]
    HeaderTooLong(usize),
    /// A frame larger than [`FrameLimits::max_frame_size`] (the limit).
    #[error("frame too large (limit {0} bytes)")]
    FrameTooLarge(usize),
    /// `content-length` is not a non-negative decimal integer.
    #[error("invalid content-length header")]
    BadContentLength,
    /// The byte after `content-length` body bytes is not NUL.
    #[error("frame body not terminated by NUL after content-length bytes")]
    MissingNul,
}

/// Parsing state of the frame in progress.
enum State {
    /// Between frames.
    Idle,
    /// Reading the command line and header lines.
    Head(Head),
    /// Headers complete, reading the body.
    Body(Body),
}

struct Head {
    /// Command and the escaping it implies, once the command line is parsed.
    command: Option<(Command, Escaping)>,
    headers: Vec<(String, String)>,
    /// Bytes of this frame already parsed and removed from the buffer.
    consumed: usize,
    /// Bytes at the front of the buffer known to contain no LF.
    scan: usize,
}

struct Body {
    command: Command,
    headers: Vec<(String, String)>,
    /// Size of the command line + header lines + blank line.
    head_len: usize,
    content_length: Option<usize>,
    /// Bytes at the front of the buffer known to contain no NUL.
    scan: usize,
}

/// Result of one parsing step.
enum Step {
    /// Need more bytes; the state to keep.
    NeedMore(State),
    /// Made progress; continue with this state.
    Continue(State),
    /// Produced an item; the decoder goes back to `Idle`.
    Done(Decoded),
}

/// Incremental STOMP decoder. See the [module documentation](self).
pub struct Decoder {
    limits: FrameLimits,
    version: Option<Version>,
    state: State,
    /// Total bytes searched for delimiters (diagnostics for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    scanned: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(FrameLimits::default())
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Idle => "idle",
            State::Head(_) => "head",
            State::Body(_) => "body",
        };
        f.debug_struct("Decoder")
            .field("limits", &self.limits)
            .field("version", &self.version)
            .field("state", &state)
            .finish()
    }
}

impl Decoder {
    /// A decoder expecting the first frame of a connection (CONNECT/STOMP,
    /// unescaped).
    pub fn new(limits: FrameLimits) -> Self {
        Decoder {
            limits,
            version: None,
            state: State::Idle,
            scanned: 0,
        }
    }

    /// Sets the negotiated version; header escaping of the following frames
    /// follows it. Call it right after handling CONNECT/STOMP (or CONNECTED
    /// on the client side), before decoding the next frame.
    pub fn set_version(&mut self, v: Version) {
        self.version = Some(v);
    }

    /// The version set by [`Decoder::set_version`], if any.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// The limits in force.
    pub fn limits(&self) -> &FrameLimits {
        &self.limits
    }

    /// `true` when part of a frame has been consumed but the frame is not
    /// complete yet.
    pub fn is_mid_frame(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// Drops any partially decoded frame (the version is kept).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Decodes the next item from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed; bytes of an incomplete
    /// frame may already have been consumed (the decoder keeps what it
    /// parsed), so keep appending to the same buffer. Consumes exactly the
    /// bytes of the returned item, so several frames in one buffer are
    /// returned by successive calls.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, DecodeError> {
        loop {
            let state = std::mem::replace(&mut self.state, State::Idle);
            let step = match state {
                State::Idle => self.step_idle(buf),
                State::Head(head) => self.step_head(head, buf),
                State::Body(body) => self.step_body(body, buf),
            };
            // On error `self.state` stays `Idle`.
            match step? {
                Step::NeedMore(state) => {
                    self.state = state;
                    return Ok(None);
                }
                Step::Continue(state) => self.state = state,
                Step::Done(item) => return Ok(Some(item)),
            }
        }
    }

    fn step_idle(&mut self, buf: &mut BytesMut) -> Result<Step, DecodeError> {
        let n = eol_run(buf);
        if n > 0 {
            buf.advance(n);
            return Ok(Step::Done(Decoded::Heartbeat));
        }
        if buf.is_empty() || buf[..] == b"\r"[..] {
            return Ok(Step::NeedMore(State::Idle));
        }
        Ok(Step::Continue(State::Head(Head {
            command: None,
            headers: Vec::new(),
            consumed: 0,
            scan: 0,
        })))
    }

    fn step_head(&mut self, mut head: Head, buf: &mut BytesMut) -> Result<Step, DecodeError> {
        let limits = &self.limits;
        let found = buf[head.scan..].iter().position(|&b| b == b'\n');
        let Some(lf) = found.map(|i| head.scan + i) else {
            // Incomplete line: reject as early as possible.
            self.scanned += (buf.len() - head.scan) as u64;
            head.scan = buf.len();
            let content = buf.len() - usize::from(buf.ends_with(b"\r"));
            if head.command.is_none() {
                if content > Command::MAX_LEN {
                    return Err(unknown_command(buf));
                }
            } else if content > limits.max_header_length {
                return Err(DecodeError::HeaderTooLong(limits.max_header_length));
            }
            if head.consumed + buf.len() > limits.max_frame_size {
                return Err(DecodeError::FrameTooLarge(limits.max_frame_size));
            }
            return Ok(Step::NeedMore(State::Head(head)));
        };
        self.scanned += (lf + 1 - head.scan) as u64;
        let line_total = lf + 1;
        let line = &buf[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);

        let Some((command, esc)) = head.command else {
            let command = Command::parse(line).ok_or_else(|| unknown_command(line))?;
            check_frame_size(head.consumed + line_total, limits)?;
            let esc = escaping_for(self.version.unwrap_or(Version::V1_0), command);
            head.command = Some((command, esc));
            head.consumed += line_total;
            head.scan = 0;
            buf.advance(line_total);
            return Ok(Step::Continue(State::Head(head)));
        };

        if line.len() > limits.max_header_length {
            return Err(DecodeError::HeaderTooLong(limits.max_header_length));
        }
        let head_len = head.consumed + line_total;
        check_frame_size(head_len, limits)?;

        if line.is_empty() {
            // End of headers.
            let content_length = match head.headers.iter().find(|(k, _)| k == "content-length") {
                Some((_, v)) => {
                    let len = parse_content_length(v, limits)?;
                    check_frame_size(head_len.saturating_add(len), limits)?;
                    Some(len)
                }
                None => None,
            };
            buf.advance(line_total);
            return Ok(Step::Continue(State::Body(Body {
                command,
                headers: head.headers,
                head_len,
                content_length,
                scan: 0,
            })));
        }

        if head.headers.len() >= limits.max_headers {
            return Err(DecodeError::TooManyHeaders(limits.max_headers));
        }
        if line.contains(&0) {
            return Err(DecodeError::NulInHeader);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(DecodeError::MissingColon)?;
        if colon == 0 {
            return Err(DecodeError::EmptyHeaderName);
        }
        let name = unescape(&line[..colon], esc)?;
        let value = unescape(&line[colon + 1..], esc)?;
        head.headers.push((name, value));
        head.consumed = head_len;
        head.scan = 0;
        buf.advance(line_total);
        Ok(Step::Continue(State::Head(head)))
    }

    fn step_body(&mut self, mut body: Body, buf: &mut BytesMut) -> Result<Step, DecodeError> {
        let len = match body.content_length {
            Some(len) => {
                // Size was checked against the limit when the headers ended.
                if buf.len() <= len {
                    return Ok(Step::NeedMore(State::Body(body)));
                }
                self.scanned += 1;
                if buf[len] != 0 {
                    return Err(DecodeError::MissingNul);
                }
                len
            }
            None => match buf[body.scan..].iter().position(|&b| b == 0) {
                Some(i) => {
                    self.scanned += (i + 1) as u64;
                    let len = body.scan + i;
                    check_frame_size(body.head_len + len, &self.limits)?;
                    len
                }
                None => {
                    self.scanned += (buf.len() - body.scan) as u64;
                    body.scan = buf.len();
                    check_frame_size(body.head_len + buf.len(), &self.limits)?;
                    return Ok(Step::NeedMore(State::Body(body)));
                }
            },
        };
        let payload = buf.split_to(len).freeze();
        buf.advance(1);
        Ok(Step::Done(Decoded::Frame(Frame {
            command: body.command,
            headers: body.headers,
            body: payload,
        })))
    }

    /// Total bytes searched for delimiters since creation.
    #[cfg(test)]
    fn scanned(&self) -> u64 {
        self.scanned
    }
}

/// Length of the run of EOLs (`\n` or `\r\n`) at the front of `buf`.
fn eol_run(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf.get(i..i + 2).unwrap_or(&buf[i..]) {
            [b'\n', ..] => i += 1,
            [b'\r', b'\n'] => i += 2,
            _ => return i,
        }
    }
}

fn check_frame_size(size: usize, limits: &FrameLimits) -> Result<(), DecodeError> {
    if size > limits.max_frame_size {
        Err(DecodeError::FrameTooLarge(limits.max_frame_size))
    } else {
        Ok(())
    }
}

fn parse_content_length(value: &str, limits: &FrameLimits) -> Result<usize, DecodeError> {
    let digits = value.trim_matches([' ', '\t']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::BadContentLength);
    }
    // All digits: the only possible parse failure is overflow.
    digits
        .parse()
        .map_err(|_| DecodeError::FrameTooLarge(limits.max_frame_size))
}

/// Builds an `UnknownCommand` error with a printable, bounded excerpt.
fn unknown_command(line: &[u8]) -> DecodeError {
    const MAX: usize = 32;
    let excerpt = &line[..line.len().min(MAX)];
    let mut text: String = String::from_utf8_lossy(excerpt).escape_debug().collect();
    if line.len() > MAX {
        text.push_str("...");
    }
    DecodeError::UnknownCommand(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn small_limits() -> FrameLimits {
        FrameLimits {
            max_frame_size: 1024,
            max_headers: 4,
            max_header_length: 64,
        }
    }

    /// Decodes everything in `buf`, stopping at `Ok(None)` or an error.
    fn drain(dec: &mut Decoder, buf: &mut BytesMut) -> Result<Vec<Decoded>, DecodeError> {
        let mut out = Vec::new();
        while let Some(item) = dec.decode(buf)? {
            out.push(item);
        }
        Ok(out)
    }

    fn decode_all(input: &[u8], version: Option<Version>) -> Result<Vec<Decoded>, DecodeError> {
        let mut dec = Decoder::default();
        if let Some(v) = version {
            dec.set_version(v);
        }
        drain(&mut dec, &mut BytesMut::from(input))
    }

    fn frames(items: Vec<Decoded>) -> Vec<Frame> {
        items
            .into_iter()
            .filter_map(|d| match d {
                Decoded::Frame(f) => Some(f),
                Decoded::Heartbeat => None,
            })
            .collect()
    }

    fn one_frame(input: &[u8], version: Option<Version>) -> Frame {
        let mut f = frames(decode_all(input, version).unwrap());
        assert_eq!(f.len(), 1, "expected exactly one frame");
        f.pop().unwrap()
    }

    fn err(input: &[u8], version: Option<Version>) -> DecodeError {
        decode_all(input, version).unwrap_err()
    }

    #[test]
    fn simple_connect() {
        let f = one_frame(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0", None);
        assert_eq!(f.command, Command::Connect);
        assert_eq!(f.header("accept-version"), Some("1.2"));
        assert_eq!(f.header("host"), Some("/"));
        assert!(f.body.is_empty());
    }

    #[test]
    fn body_without_content_length_ends_at_nul() {
        let mut buf = BytesMut::from(&b"SEND\ndestination:/q\n\nhello\0rest"[..]);
        let mut dec = Decoder::default();
        dec.set_version(Version::V1_2);
        let Some(Decoded::Frame(f)) = dec.decode(&mut buf).unwrap() else {
            panic!("expected a frame")
        };
        assert_eq!(f.body, Bytes::from_static(b"hello"));
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn content_length_with_embedded_nuls() {
        let f = one_frame(
            b"SEND\ndestination:/q\ncontent-length:5\n\na\0b\0c\0",
            Some(Version::V1_2),
        );
        assert_eq!(f.body, Bytes::from_static(b"a\0b\0c"));
        // Empty body with content-length:0.
        let f = one_frame(b"SEND\ncontent-length:0\n\n\0", Some(Version::V1_1));
        assert!(f.body.is_empty());
        // Lenient whitespace and leading zeros.
        let f = one_frame(b"SEND\ncontent-length: 003 \n\nabc\0", None);
        assert_eq!(&f.body[..], b"abc");
    }

    #[test]
    fn content_length_first_occurrence_wins() {
        let f = one_frame(
            b"SEND\ncontent-length:2\ncontent-length:4\n\nab\0",
            Some(Version::V1_2),
        );
        assert_eq!(&f.body[..], b"ab");
    }

    #[test]
    fn missing_nul_after_content_length() {
        assert_eq!(
            err(b"SEND\ncontent-length:2\n\nabc\0", Some(Version::V1_2)),
            DecodeError::MissingNul
        );
    }

    #[test]
    fn bad_content_length() {
        for v in ["", "abc", "-1", "+1", "1.5", "0x10", "1 2"] {
            let input = format!("SEND\ncontent-length:{v}\n\n\0");
            assert_eq!(
                err(input.as_bytes(), Some(Version::V1_2)),
                DecodeError::BadContentLength,
                "{v:?}"
            );
        }
    }

    #[test]
    fn crlf_line_endings() {
        let input = b"SEND\r\ndestination:/queue/a\r\nfoo:bar\r\n\r\nbody\0\r\n";
        for v in [
            None,
            Some(Version::V1_0),
            Some(Version::V1_1),
            Some(Version::V1_2),
        ] {
            let items = decode_all(input, v).unwrap();
            assert_eq!(items.len(), 2);
            assert_eq!(items[1], Decoded::Heartbeat);
            let f = frames(items).pop().unwrap();
            assert_eq!(f.header("destination"), Some("/queue/a"));
            assert_eq!(f.header("foo"), Some("bar"));
            assert_eq!(&f.body[..], b"body");
        }
    }

    #[test]
    fn only_one_trailing_cr_is_stripped() {
        let f = one_frame(b"SEND\nfoo:bar\r\r\n\n\0", Some(Version::V1_1));
        assert_eq!(f.header("foo"), Some("bar\r"));
    }

    #[test]
    fn heartbeats_between_frames() {
        let input = b"\n\r\n\nSEND\n\nA\0\n\nSEND\n\nB\0\r\n";
        let items = decode_all(input, Some(Version::V1_2)).unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0], Decoded::Heartbeat);
        assert!(matches!(&items[1], Decoded::Frame(f) if &f.body[..] == b"A"));
        assert_eq!(items[2], Decoded::Heartbeat);
        assert!(matches!(&items[3], Decoded::Frame(f) if &f.body[..] == b"B"));
        assert_eq!(items[4], Decoded::Heartbeat);
    }

    #[test]
    fn heartbeat_split_crlf() {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&b"\r"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
        assert!(!dec.is_mid_frame());
        buf.extend_from_slice(b"\n");
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Decoded::Heartbeat));
        assert!(buf.is_empty());
        assert_eq!(dec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn several_frames_in_one_buffer() {
        let input = b"SEND\ndestination:/a\n\n1\0SEND\ndestination:/b\ncontent-length:1\n\n2\0ACK\nid:7\n\n\0";
        let f = frames(decode_all(input, Some(Version::V1_2)).unwrap());
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].header("destination"), Some("/a"));
        assert_eq!(&f[0].body[..], b"1");
        assert_eq!(f[1].header("destination"), Some("/b"));
        assert_eq!(&f[1].body[..], b"2");
        assert_eq!(f[2].command, Command::Ack);
        assert_eq!(f[2].header("id"), Some("7"));
    }

    #[test]
    fn one_byte_at_a_time() {
        let input: &[u8] = b"\nSEND\r\ndestination:/q\\c1\r\ncontent-length:3\r\n\r\na\0b\0\n\
SUBSCRIBE\nid:0\ndestination:/t\n\n\0";
        let mut dec = Decoder::default();
        dec.set_version(Version::V1_2);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            out.extend(drain(&mut dec, &mut buf).unwrap());
        }
        assert!(buf.is_empty());
        let whole = decode_all(input, Some(Version::V1_2)).unwrap();
        assert_eq!(frames(out), frames(whole));
    }

    #[test]
    fn large_body_in_small_chunks_is_linear() {
        const SIZE: usize = 1024 * 1024;
        for with_length in [false, true] {
            let mut input = b"SEND\ndestination:/q\n".to_vec();
            if with_length {
                input.extend_from_slice(format!("content-length:{SIZE}\n").as_bytes());
            }
            input.push(b'\n');
            let head = input.len();
            input.extend((0..SIZE).map(|i| b'a' + (i % 26) as u8));
            input.push(0);

            let mut dec = Decoder::default();
            dec.set_version(Version::V1_2);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in input.chunks(1024) {
                buf.extend_from_slice(chunk);
                got.extend(frames(drain(&mut dec, &mut buf).unwrap()));
            }
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].body.len(), SIZE);
            assert_eq!(&got[0].body[..], &input[head..head + SIZE]);
            // Every byte is searched at most once.
            let scanned = dec.scanned();
            if with_length {
                assert!(scanned <= head as u64 + 1, "scanned {scanned}");
            } else {
                assert!(scanned <= input.len() as u64, "scanned {scanned}");
            }
        }
    }

    #[test]
    fn body_is_not_copied() {
        let mut buf = BytesMut::from(&b"SEND\n\n0123456789\0"[..]);
        let body_ptr = buf[6..].as_ptr();
        let mut dec = Decoder::default();
        let Some(Decoded::Frame(f)) = dec.decode(&mut buf).unwrap() else {
            panic!()
        };
        assert_eq!(f.body.as_ptr(), body_ptr);
    }

    #[test]
    fn repeated_header_first_wins() {
        let f = one_frame(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0", Some(Version::V1_2));
        assert_eq!(f.header("foo"), Some("World"));
        assert_eq!(f.headers.len(), 2);
        assert_eq!(f.headers[1], ("foo".into(), "Hello".into()));
    }

    #[test]
    fn values_are_verbatim_and_may_contain_colons() {
        let f = one_frame(
            b"SEND\n key : value with spaces \nurl:http://x:80/\nempty:\n\n\0",
            Some(Version::V1_2),
        );
        assert_eq!(f.header(" key "), Some(" value with spaces "));
        assert_eq!(f.header("url"), Some("http://x:80/"));
        assert_eq!(f.header("empty"), Some(""));
    }

    #[test]
    fn escaping_depends_on_version_and_command() {
        let send = b"SEND\na\\cb:c\\nd\\\\e\n\n\0";
        // 1.0 (and before negotiation): literal.
        for v in [None, Some(Version::V1_0)] {
            let f = one_frame(send, v);
            assert_eq!(f.header("a\\cb"), Some("c\\nd\\\\e"));
        }
        for v in [Version::V1_1, Version::V1_2] {
            let f = one_frame(send, Some(v));
            assert_eq!(f.header("a:b"), Some("c\nd\\e"));
        }
        // CONNECT / STOMP / CONNECTED are never unescaped.
        for cmd in ["CONNECT", "STOMP", "CONNECTED"] {
            let input = format!("{cmd}\nlogin:a\\cb\\t\n\n\0");
            let f = one_frame(input.as_bytes(), Some(Version::V1_2));
            assert_eq!(f.header("login"), Some("a\\cb\\t"));
        }
    }

    #[test]
    fn cr_escape_only_in_1_2() {
        let input = b"SEND\nfoo:a\\rb\n\n\0";
        assert_eq!(
            one_frame(input, Some(Version::V1_2)).header("foo"),
            Some("a\rb")
        );
        assert_eq!(err(input, Some(Version::V1_1)), DecodeError::InvalidEscape);
        assert_eq!(one_frame(input, None).header("foo"), Some("a\\rb"));
    }

    #[test]
    fn undefined_escape_is_error() {
        for v in [Version::V1_1, Version::V1_2] {
            assert_eq!(
                err(b"SEND\nfoo:a\\tb\n\n\0", Some(v)),
                DecodeError::InvalidEscape
            );
            assert_eq!(
                err(b"SEND\nfo\\o:ab\n\n\0", Some(v)),
                DecodeError::InvalidEscape
            );
            assert_eq!(
                err(b"SEND\nfoo:a\\\n\n\0", Some(v)),
                DecodeError::InvalidEscape
            );
        }
    }

    #[test]
    fn garbage_command() {
        assert_eq!(
            err(b"FOO\n\n\0", None),
            DecodeError::UnknownCommand("FOO".into())
        );
        assert_eq!(
            err(b"send\n\n\0", None),
            DecodeError::UnknownCommand("send".into())
        );
        assert_eq!(
            err(b"SEND \n\n\0", None),
            DecodeError::UnknownCommand("SEND ".into())
        );
        assert_eq!(
            err(b"\0\n", None),
            DecodeError::UnknownCommand("\\0".into())
        );
        // Rejected before the line is complete, with a bounded excerpt.
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1"[..]);
        assert_eq!(
            dec.decode(&mut buf),
            Err(DecodeError::UnknownCommand("GET / HTTP/1.1".into()))
        );
        let long = vec![b'X'; 100];
        let Err(DecodeError::UnknownCommand(msg)) = decode_all(&long, None) else {
            panic!()
        };
        assert_eq!(msg.len(), 35);
        assert!(msg.ends_with("..."));
        // A partial valid command is fine.
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&b"UNSUBSCRIBE\r"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(dec.is_mid_frame());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            DecodeError::UnknownCommand("FOO".into()).to_string(),
            "unknown command 'FOO'"
        );
        assert_eq!(
            DecodeError::TooManyHeaders(64).to_string(),
            "too many headers (limit 64)"
        );
        for e in [
            DecodeError::MissingColon,
            DecodeError::EmptyHeaderName,
            DecodeError::InvalidUtf8,
            DecodeError::InvalidEscape,
            DecodeError::HeaderTooLong(1),
            DecodeError::FrameTooLarge(1),
            DecodeError::BadContentLength,
            DecodeError::MissingNul,
        ] {
            let m = e.to_string();
            assert!(!m.is_empty() && !m.contains('\n') && !m.contains('\0'));
        }
    }

    #[test]
    fn missing_colon_and_empty_name() {
        assert_eq!(
            err(b"SEND\nnocolon\n\n\0", Some(Version::V1_2)),
            DecodeError::MissingColon
        );
        assert_eq!(err(b"SEND\nnocolon\n\n\0", None), DecodeError::MissingColon);
        assert_eq!(
            err(b"SEND\n:value\n\n\0", Some(Version::V1_2)),
            DecodeError::EmptyHeaderName
        );
    }

    #[test]
    fn invalid_utf8_in_headers() {
        for v in [None, Some(Version::V1_1), Some(Version::V1_2)] {
            assert_eq!(
                err(b"SEND\nfoo:\xff\xfe\n\n\0", v),
                DecodeError::InvalidUtf8
            );
            assert_eq!(err(b"SEND\n\xc3:x\n\n\0", v), DecodeError::InvalidUtf8);
        }
        // Bodies may be arbitrary bytes.
        let f = one_frame(b"SEND\n\n\xff\xfe\0", Some(Version::V1_2));
        assert_eq!(&f.body[..], b"\xff\xfe");
    }

    #[test]
    fn too_many_headers() {
        let limits = small_limits();
        let mut ok = b"SEND\n".to_vec();
        for i in 0..4 {
            ok.extend_from_slice(format!("h{i}:v\n").as_bytes());
        }
        let mut bad = ok.clone();
        ok.extend_from_slice(b"\n\0");
        let mut dec = Decoder::new(limits.clone());
        assert_eq!(
            frames(drain(&mut dec, &mut BytesMut::from(&ok[..])).unwrap())[0]
                .headers
                .len(),
            4
        );
        // The 5th header line is rejected as soon as it is complete.
        bad.extend_from_slice(b"h4:v\n");
        let mut dec = Decoder::new(limits);
        assert_eq!(
            drain(&mut dec, &mut BytesMut::from(&bad[..])),
            Err(DecodeError::TooManyHeaders(4))
        );
    }

    #[test]
    fn header_too_long() {
        let limits = small_limits();
        let value = "v".repeat(62);
        // "k:" + 62 = 64 bytes: exactly at the limit (CRLF not counted).
        let ok = format!("SEND\r\nk:{value}\r\n\r\n\0");
        let mut dec = Decoder::new(limits.clone());
        assert_eq!(
            frames(drain(&mut dec, &mut BytesMut::from(ok.as_bytes())).unwrap()).len(),
            1
        );
        let bad = format!("SEND\nk:{value}v\n\n\0");
        let mut dec = Decoder::new(limits.clone());
        assert_eq!(
            drain(&mut dec, &mut BytesMut::from(bad.as_bytes())),
            Err(DecodeError::HeaderTooLong(64))
        );
        // Rejected before the line is complete.
        let partial = format!("SEND\nk:{value}vv");
        let mut dec = Decoder::new(limits);
        assert_eq!(
            dec.decode(&mut BytesMut::from(partial.as_bytes())),
            Err(DecodeError::HeaderTooLong(64))
        );
    }

    #[test]
    fn frame_too_large_by_content_length() {
        let limits = small_limits();
        // Rejected when the headers end, before any body byte arrives.
        let mut dec = Decoder::new(limits.clone());
        let mut buf = BytesMut::from(&b"SEND\ncontent-length:2000\n\n"[..]);
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::FrameTooLarge(1024)));
        let mut dec = Decoder::new(limits.clone());
        let mut buf = BytesMut::from(&b"SEND\ncontent-length:99999999999999999999999999\n\n"[..]);
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::FrameTooLarge(1024)));
        // Exactly at the limit is accepted: 26 bytes of head + 998 of body.
        let head = b"SEND\ncontent-length:998\n\n";
        let mut at_limit = b"SEND\ncontent-length:0998\n\n".to_vec();
        assert_eq!(at_limit.len(), head.len() + 1);
        at_limit.extend(std::iter::repeat_n(b'x', 998));
        at_limit.push(0);
        let mut dec = Decoder::new(limits.clone());
        let got = frames(drain(&mut dec, &mut BytesMut::from(&at_limit[..])).unwrap());
        assert_eq!(got[0].body.len(), 998);
        // One more byte is over.
        let mut over = b"SEND\ncontent-length:0999\n\n".to_vec();
        over.extend(std::iter::repeat_n(b'x', 999));
        over.push(0);
        let mut dec = Decoder::new(limits);
        assert_eq!(
            drain(&mut dec, &mut BytesMut::from(&over[..])),
            Err(DecodeError::FrameTooLarge(1024))
        );
    }

    #[test]
    fn frame_too_large_by_unterminated_body() {
        let limits = small_limits();
        let mut dec = Decoder::new(limits.clone());
        let mut buf = BytesMut::from(&b"SEND\n\n"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        let mut fed = 6;
        let err = loop {
            buf.extend_from_slice(&[b'x'; 100]);
            fed += 100;
            match dec.decode(&mut buf) {
                Ok(None) => assert!(fed <= 1024, "should have failed by now"),
                Ok(Some(_)) => panic!("no frame expected"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, DecodeError::FrameTooLarge(1024));
        assert!(fed <= 1024 + 100);
        // Also when the NUL is already there.
        let mut input = b"SEND\n\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1019));
        input.push(0);
        let mut dec = Decoder::new(limits);
        assert_eq!(
            drain(&mut dec, &mut BytesMut::from(&input[..])),
            Err(DecodeError::FrameTooLarge(1024))
        );
    }

    #[test]
    fn frame_too_large_by_headers() {
        let limits = FrameLimits {
            max_frame_size: 100,
            max_headers: 64,
            max_header_length: 64,
        };
        let mut input = b"SEND\n".to_vec();
        for i in 0..10 {
            input.extend_from_slice(format!("header{i}:value\n").as_bytes());
        }
        let mut dec = Decoder::new(limits);
        assert_eq!(
            drain(&mut dec, &mut BytesMut::from(&input[..])),
            Err(DecodeError::FrameTooLarge(100))
        );
    }

    #[test]
    fn error_resets_state_and_decoder_is_reusable() {
        let mut dec = Decoder::default();
        dec.set_version(Version::V1_2);
        let mut buf = BytesMut::from(&b"SEND\nbad\n\n\0"[..]);
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::MissingColon));
        assert!(!dec.is_mid_frame());
        assert_eq!(dec.version(), Some(Version::V1_2));
        let mut buf = BytesMut::from(&b"SEND\n\n\0"[..]);
        assert!(matches!(dec.decode(&mut buf), Ok(Some(Decoded::Frame(_)))));
    }

    #[test]
    fn reset_drops_partial_frame() {
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&b"SEND\nfoo:b"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert!(dec.is_mid_frame());
        dec.reset();
        assert!(!dec.is_mid_frame());
    }

    #[test]
    fn eol_run_lengths() {
        assert_eq!(eol_run(b""), 0);
        assert_eq!(eol_run(b"\r"), 0);
        assert_eq!(eol_run(b"\n"), 1);
        assert_eq!(eol_run(b"\r\n\n\r"), 3);
        assert_eq!(eol_run(b"\n\rX"), 1);
        assert_eq!(eol_run(b"S\n"), 0);
    }

    // ---- Fuzz-style properties -------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const COMMANDS: &[&[u8]] = &[
        b"SEND",
        b"CONNECT",
        b"STOMP",
        b"MESSAGE",
        b"ACK",
        b"SUBSCRIBE",
        b"ERROR",
        b"BOGUS",
    ];
    const GOOD_HEADERS: &[&[u8]] = &[
        b"destination:/queue/a",
        b"foo:bar",
        b"foo:b\\\\a\\c",
        b"k\\c:v\\n",
        b"url:http://x:1/",
        b"utf:\xc3\xa9",
        b" sp : ace ",
    ];
    const BAD_HEADERS: &[&[u8]] = &[
        b"esc:\\t",
        b"cr:\\r",
        b"nocolon",
        b":noname",
        b"bad:\xff",
        b"content-length:x",
        b"content-length:2",
    ];
    const EOLS: &[&[u8]] = &[b"\n", b"\r\n"];

    /// Mostly well-formed frames, then a few random mutations.
    fn random_input(rng: &mut XorShift) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..1 + rng.below(3) {
            for _ in 0..rng.below(3) {
                v.extend_from_slice(EOLS[rng.below(2)]);
            }
            v.extend_from_slice(COMMANDS[rng.below(COMMANDS.len())]);
            v.extend_from_slice(EOLS[rng.below(2)]);
            let body: Vec<u8> = (0..rng.below(12)).map(|_| rng.next() as u8).collect();
            let with_length = rng.below(2) == 0;
            for _ in 0..rng.below(5) {
                let line = if rng.below(8) == 0 {
                    BAD_HEADERS[rng.below(BAD_HEADERS.len())]
                } else {
                    GOOD_HEADERS[rng.below(GOOD_HEADERS.len())]
                };
                v.extend_from_slice(line);
                v.extend_from_slice(EOLS[rng.below(2)]);
            }
            if with_length {
                v.extend_from_slice(format!("content-length:{}\n", body.len()).as_bytes());
                v.extend_from_slice(EOLS[rng.below(2)]);
                v.extend_from_slice(&body);
            } else {
                v.push(b'\n');
                v.extend(body.iter().filter(|&&b| b != 0));
            }
            v.push(0);
        }
        for _ in 0..rng.below(3) {
            if v.is_empty() {
                break;
            }
            let at = rng.below(v.len());
            match rng.below(3) {
                0 => v[at] = rng.next() as u8,
                1 => {
                    v.remove(at);
                }
                _ => v.insert(at, [b'\n', b'\r', b':', b'\\', 0][rng.below(5)]),
            }
        }
        v
    }

    /// Feeds `input` in chunks of random size (0 = all at once) and collects
    /// frames until the input is exhausted or an error occurs.
    fn run(
        input: &[u8],
        limits: &FrameLimits,
        version: Option<Version>,
        rng: Option<&mut XorShift>,
    ) -> (Vec<Frame>, bool) {
        let mut dec = Decoder::new(limits.clone());
        if let Some(v) = version {
            dec.set_version(v);
        }
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut rng = rng;
        while !rest.is_empty() {
            let n = match rng.as_deref_mut() {
                Some(r) => 1 + r.below(8),
                None => rest.len(),
            }
            .min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            let mut guard = 0;
            loop {
                guard += 1;
                assert!(guard < 100_000, "decoder made no progress");
                match dec.decode(&mut buf) {
                    Ok(Some(Decoded::Frame(f))) => out.push(f),
                    Ok(Some(Decoded::Heartbeat)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        return (out, true);
                    }
                }
            }
        }
        (out, false)
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let limit_sets = [
            FrameLimits::default(),
            FrameLimits {
                max_frame_size: 48,
                max_headers: 3,
                max_header_length: 16,
            },
            FrameLimits {
                max_frame_size: 0,
                max_headers: 0,
                max_header_length: 0,
            },
        ];
        let (mut frames_seen, mut errors_seen) = (0, 0);
        for i in 0..4000 {
            let input = if i % 2 == 0 {
                random_input(&mut rng)
            } else {
                (0..rng.below(200)).map(|_| rng.next() as u8).collect()
            };
            let limits = &limit_sets[[0, 0, 1, 0, 0, 0, 2, 0][i % 8]];
            let version = [
                None,
                Some(Version::V1_0),
                Some(Version::V1_1),
                Some(Version::V1_2),
            ][rng.below(4)];
            let whole = run(&input, limits, version, None);
            let chunked = run(&input, limits, version, Some(&mut rng));
            // Chunking never changes the outcome.
            assert_eq!(whole, chunked, "input {input:?}");
            frames_seen += whole.0.len();
            errors_seen += usize::from(whole.1);
        }
        // The generator exercises both the success and the error paths.
        println!("fuzz: {frames_seen} frames, {errors_seen} errors");
        assert!(frames_seen > 500, "{frames_seen}");
        assert!(errors_seen > 500, "{errors_seen}");
    }

    #[test]
    fn a_nul_in_a_header_line_is_a_frame_error_however_it_is_split() {
        let wire: &[u8] = b"SEND\ndestination:/t\nx:a\x00ERROR\nmessage:forged\n\nbody\x00";
        for cut in 1..wire.len() {
            let mut dec = Decoder::default();
            let mut buf = BytesMut::from(&wire[..cut]);
            let first = dec.decode(&mut buf);
            let result = match first {
                Ok(None) => {
                    buf.extend_from_slice(&wire[cut..]);
                    dec.decode(&mut buf)
                }
                other => other,
            };
            assert_eq!(result, Err(DecodeError::NulInHeader), "cut at {cut}");
        }
        let mut dec = Decoder::default();
        let mut buf = BytesMut::from(&b"SEND\nna\x00me:v\n\n\x00"[..]);
        assert_eq!(dec.decode(&mut buf), Err(DecodeError::NulInHeader));
    }
}
