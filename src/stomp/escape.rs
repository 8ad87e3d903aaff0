//! Header name/value escaping ("Value Encoding" in the STOMP 1.2 spec).
//!
//! | version        | escaped octets                         |
//! |----------------|----------------------------------------|
//! | 1.0            | none                                   |
//! | 1.1            | `\` → `\\`, LF → `\n`, `:` → `\c`      |
//! | 1.2            | as 1.1, plus CR → `\r`                 |
//!
//! CONNECT, STOMP and CONNECTED frames are never escaped, in any version, so
//! that they stay readable by 1.0 peers before the version is negotiated.
//! Decoding an undefined escape sequence (such as `\t`, or `\r` in 1.1) is a
//! fatal protocol error.

use bytes::{BufMut, BytesMut};

use super::decoder::DecodeError;
use super::frame::Command;
use super::version::Version;

/// Which header escaping rules apply to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escaping {
    /// Bytes are taken literally (STOMP 1.0, and CONNECT/STOMP/CONNECTED).
    None,
    /// STOMP 1.1: `\\`, `\n`, `\c`.
    V1_1,
    /// STOMP 1.2: `\\`, `\n`, `\c`, `\r`.
    V1_2,
}

/// The escaping rules for a frame with `command` on a `version` connection.
pub fn escaping_for(version: Version, command: Command) -> Escaping {
    match command {
        Command::Connect | Command::Stomp | Command::Connected => Escaping::None,
        _ => match version {
            Version::V1_0 => Escaping::None,
            Version::V1_1 => Escaping::V1_1,
            Version::V1_2 => Escaping::V1_2,
        },
    }
}

/// Does `b` need to be rewritten when writing with `esc`? `name`: in a header name, where an
/// unescaped `:` would end the name early.
#[inline]
fn is_special(b: u8, esc: Escaping, name: bool) -> bool {
    match esc {
        // Unescapable octets that would break framing (see `escape_into`).
        Escaping::None => b == 0 || b == b'\n' || b == b'\r' || (name && b == b':'),
        Escaping::V1_1 => b == 0 || b == b'\\' || b == b'\n' || b == b':' || b == b'\r',
        Escaping::V1_2 => b == 0 || b == b'\\' || b == b'\n' || b == b':' || b == b'\r',
    }
}

/// Appends `s` (a header value) to `out`, escaped per `esc`.
///
/// Whatever `s` holds, the result re-decodes as one header value and never breaks the frame:
/// octets the dialect cannot represent become a space — NUL always (STOMP has no escape for it,
/// and it would end the frame early: a forged frame in the peer's stream), CR and LF without
/// escaping (1.0, CONNECT/CONNECTED), and CR in 1.1 (which has no `\r`; a peer strips a
/// trailing one).
pub fn escape_into(s: &str, esc: Escaping, out: &mut BytesMut) {
    escape(s, esc, false, out);
}

/// As [`escape_into`], for a header name: without escaping a `:` (which would end the name)
/// becomes a space too.
pub fn escape_name_into(s: &str, esc: Escaping, out: &mut BytesMut) {
    escape(s, esc, true, out);
}

fn escape(s: &str, esc: Escaping, name: bool, out: &mut BytesMut) {
    let bytes = s.as_bytes();
    // Fast path: nothing to escape.
    if !bytes.iter().any(|&b| is_special(b, esc, name)) {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(bytes.len() + 8);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !is_special(b, esc, name) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        let rep: &[u8] = match (esc, b) {
            (Escaping::None, _) | (_, 0) | (Escaping::V1_1, b'\r') => b" ",
            (_, b'\\') => b"\\\\",
            (_, b'\n') => b"\\n",
            (_, b':') => b"\\c",
            (_, b'\r') => b"\\r",
            _ => unreachable!("is_special only admits the bytes above"),
        };
        out.put_slice(rep);
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Decodes a raw header name or value.
///
/// With [`Escaping::None`] the bytes are taken literally (backslashes
/// included). Otherwise `\\`, `\n`, `\c` (and `\r` for 1.2) are decoded and
/// any other sequence, including a trailing lone backslash, is
/// [`DecodeError::InvalidEscape`]. Text that is not UTF-8 is
/// [`DecodeError::InvalidUtf8`].
pub fn unescape(raw: &[u8], esc: Escaping) -> Result<String, DecodeError> {
    if esc == Escaping::None || !raw.contains(&b'\\') {
        return std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut iter = raw.iter().copied();
    while let Some(b) = iter.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let decoded = match iter.next() {
            Some(b'\\') => b'\\',
            Some(b'n') => b'\n',
            Some(b'c') => b':',
            Some(b'r') if esc == Escaping::V1_2 => b'\r',
            _ => return Err(DecodeError::InvalidEscape),
        };
        out.push(decoded);
    }
    String::from_utf8(out).map_err(|_| DecodeError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, e: Escaping) -> String {
        let mut out = BytesMut::new();
        escape_into(s, e, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn escaping_for_versions_and_commands() {
        for c in Command::ALL {
            let expect_none = matches!(c, Command::Connect | Command::Stomp | Command::Connected);
            assert_eq!(escaping_for(Version::V1_0, c), Escaping::None);
            let e11 = escaping_for(Version::V1_1, c);
            let e12 = escaping_for(Version::V1_2, c);
            if expect_none {
                assert_eq!((e11, e12), (Escaping::None, Escaping::None), "{c}");
            } else {
                assert_eq!((e11, e12), (Escaping::V1_1, Escaping::V1_2), "{c}");
            }
        }
    }

    #[test]
    fn escape_1_1() {
        assert_eq!(esc("a:b\\c\nd", Escaping::V1_1), "a\\cb\\\\c\\nd");
        // No escape for CR in 1.1: a space, so that no peer strips or misreads it.
        assert_eq!(esc("a\rb", Escaping::V1_1), "a b");
        assert_eq!(esc("plain", Escaping::V1_1), "plain");
    }

    #[test]
    fn escape_1_2() {
        assert_eq!(esc("a:b\\c\nd\re", Escaping::V1_2), "a\\cb\\\\c\\nd\\re");
        assert_eq!(esc(":", Escaping::V1_2), "\\c");
        assert_eq!(esc("", Escaping::V1_2), "");
        assert_eq!(esc("ünï:cödé", Escaping::V1_2), "ünï\\ccödé");
    }

    #[test]
    fn escape_none_is_literal_but_keeps_framing() {
        assert_eq!(esc("a:b\\c", Escaping::None), "a:b\\c");
        assert_eq!(esc("a\nb\r\nc", Escaping::None), "a b  c");
    }

    #[test]
    fn unescape_per_version() {
        assert_eq!(
            unescape(b"a\\cb\\\\c\\nd", Escaping::V1_1).unwrap(),
            "a:b\\c\nd"
        );
        assert_eq!(
            unescape(b"a\\cb\\\\c\\nd\\re", Escaping::V1_2).unwrap(),
            "a:b\\c\nd\re"
        );
        // `\r` is undefined in 1.1.
        assert_eq!(
            unescape(b"a\\rb", Escaping::V1_1),
            Err(DecodeError::InvalidEscape)
        );
        // 1.0 / CONNECT: literal.
        assert_eq!(unescape(b"a\\cb\\t", Escaping::None).unwrap(), "a\\cb\\t");
        assert_eq!(unescape(b"", Escaping::V1_2).unwrap(), "");
    }

    #[test]
    fn undefined_escape_is_error() {
        for e in [Escaping::V1_1, Escaping::V1_2] {
            assert_eq!(unescape(b"a\\tb", e), Err(DecodeError::InvalidEscape));
            assert_eq!(unescape(b"a\\", e), Err(DecodeError::InvalidEscape));
            assert_eq!(unescape(b"\\C", e), Err(DecodeError::InvalidEscape));
            assert_eq!(unescape(b"\\N", e), Err(DecodeError::InvalidEscape));
        }
    }

    #[test]
    fn invalid_utf8_is_error() {
        for e in [Escaping::None, Escaping::V1_1, Escaping::V1_2] {
            assert_eq!(unescape(b"a\xffb", e), Err(DecodeError::InvalidUtf8));
            assert!(unescape(b"\\n\xc3", e).is_err());
        }
        assert_eq!(
            unescape(b"\\n\xc3", Escaping::V1_2),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(unescape("é".as_bytes(), Escaping::V1_2).unwrap(), "é");
    }

    #[test]
    fn round_trip_tricky_strings() {
        let samples = [
            "",
            "\\",
            "\\\\n",
            ":::",
            "\n\n",
            "a\\nb",
            "x:\\c:y",
            "tab\there",
            "unicode ✓ : \\ \n",
            "\r\n",
        ];
        for s in samples {
            for e in [Escaping::V1_1, Escaping::V1_2] {
                let mut out = BytesMut::new();
                escape_into(s, e, &mut out);
                let expected = if e == Escaping::V1_1 {
                    s.replace('\r', " ")
                } else {
                    s.to_string()
                };
                assert_eq!(unescape(&out, e).unwrap(), expected, "{s:?} {e:?}");
                assert!(!out.contains(&b'\n'));
                assert!(!out.contains(&b':'));
                if e == Escaping::V1_2 {
                    assert!(!out.contains(&b'\r'));
                }
            }
        }
    }
}
