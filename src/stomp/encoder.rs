//! STOMP frame encoder.
//!
//! Output uses `\n` line endings, header escaping per
//! [`escaping_for`]`(version, command)`, and a NUL terminator. Lines are
//! never trimmed or reordered; repeated headers are all written (receivers
//! honour the first).
//!
//! `content-length` is always made to match the body: if the frame carries
//! a `content-length` header its first occurrence is written (in place) with
//! the real body length and any later occurrences are dropped; otherwise one
//! is appended after the other headers when the body is non-empty. Bodies may
//! therefore contain NUL bytes.

use bytes::{BufMut, BytesMut};

use super::escape::{Escaping, escape_into, escape_name_into, escaping_for};
use super::frame::Frame;
use super::version::Version;

/// A heart-beat: a single EOL.
pub const HEARTBEAT: &[u8] = b"\n";

/// Appends the encoding of `frame` for a `version` connection to `out`.
pub fn encode(frame: &Frame, version: Version, out: &mut BytesMut) {
    let esc = escaping_for(version, frame.command);
    let command = frame.command.as_str();
    let headers_estimate: usize = frame
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    out.reserve(command.len() + headers_estimate + frame.body.len() + 24);

    out.put_slice(command.as_bytes());
    out.put_u8(b'\n');
    let mut length_written = false;
    for (name, value) in &frame.headers {
        if name == "content-length" {
            if !length_written {
                write_content_length(frame.body.len(), out);
                length_written = true;
            }
            continue;
        }
        encode_header_line(name, value, esc, out);
    }
    if !length_written && !frame.body.is_empty() {
        write_content_length(frame.body.len(), out);
    }
    out.put_u8(b'\n');
    out.put_slice(&frame.body);
    out.put_u8(0);
}

/// Appends `name:value\n` with name and value escaped per `esc`.
pub fn encode_header_line(name: &str, value: &str, esc: Escaping, out: &mut BytesMut) {
    escape_name_into(name, esc, out);
    out.put_u8(b':');
    escape_into(value, esc, out);
    out.put_u8(b'\n');
}

/// Appends `content-length:<len>\n` (no escaping needed).
fn write_content_length(len: usize, out: &mut BytesMut) {
    out.put_slice(b"content-length:");
    write_decimal(len, out);
    out.put_u8(b'\n');
}

fn write_decimal(mut n: usize, out: &mut BytesMut) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stomp::decoder::{DecodeError, Decoded, Decoder};
    use crate::stomp::frame::Command;
    use bytes::Bytes;

    fn enc(frame: &Frame, version: Version) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(frame, version, &mut out);
        out.to_vec()
    }

    /// Decodes one frame as a peer on a `version` connection would (the
    /// version is only set for frames after CONNECT/STOMP).
    fn dec(bytes: &[u8], version: Version) -> Result<Frame, DecodeError> {
        let mut d = Decoder::default();
        d.set_version(version);
        let mut buf = BytesMut::from(bytes);
        match d.decode(&mut buf)? {
            Some(Decoded::Frame(f)) => {
                assert!(buf.is_empty(), "trailing bytes {buf:?}");
                Ok(f)
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// A representative frame of each command.
    fn sample(command: Command) -> Frame {
        let f = Frame::new(command);
        match command {
            Command::Connect | Command::Stomp => f
                .with_header("accept-version", "1.0,1.1,1.2")
                .with_header("host", "/")
                .with_header("login", "guest")
                .with_header("passcode", "p:a\\ss")
                .with_header("heart-beat", "10000,10000"),
            Command::Connected => f
                .with_header("version", "1.2")
                .with_header("heart-beat", "0,0")
                .with_header("server", "wsbroker/0.1.0")
                .with_header("session", "s-1"),
            Command::Send => f
                .with_header("destination", "/queue/a:b")
                .with_header("content-type", "application/octet-stream")
                .with_header("receipt", "r\\1")
                .with_body(Bytes::from_static(b"bin\0ary\n\r\n")),
            Command::Subscribe => f
                .with_header("id", "0")
                .with_header("destination", "/topic/x")
                .with_header("ack", "client-individual"),
            Command::Unsubscribe => f.with_header("id", "0"),
            Command::Ack | Command::Nack => f
                .with_header("id", "msg:1")
                .with_header("transaction", "tx1"),
            Command::Begin | Command::Commit | Command::Abort => {
                f.with_header("transaction", "tx 1")
            }
            Command::Disconnect => f.with_header("receipt", "77"),
            Command::Message => f
                .with_header("subscription", "0")
                .with_header("message-id", "m:1")
                .with_header("destination", "/queue/a")
                .with_header("ack", "a\nb")
                .with_header("x-user", "café")
                .with_body("hello"),
            Command::Receipt => f.with_header("receipt-id", "77"),
            Command::Error => f
                .with_header("message", "bad: thing")
                .with_header("content-type", "text/plain")
                .with_body("details"),
        }
    }

    /// Drops `content-length` headers, which the encoder manages.
    fn without_length(mut f: Frame) -> Frame {
        f.headers.retain(|(k, _)| k != "content-length");
        f
    }

    #[test]
    fn every_frame_round_trips_in_every_version() {
        for version in Version::ALL {
            for command in Command::ALL {
                let frame = sample(command);
                let esc = escaping_for(version, command);
                let needs_escape = frame
                    .headers
                    .iter()
                    .any(|(k, v)| k.contains(['\n', '\r']) || v.contains(['\n', '\r']));
                let got = dec(&enc(&frame, version), version).unwrap();
                if esc == Escaping::None && needs_escape {
                    // Unrepresentable: CR/LF become spaces, the rest survives.
                    assert_eq!(got.header("ack"), Some("a b"));
                    continue;
                }
                assert_eq!(without_length(got.clone()), frame, "{version} {command}");
                let expect_len = (!frame.body.is_empty()).then(|| frame.body.len().to_string());
                assert_eq!(got.header("content-length"), expect_len.as_deref());
            }
        }
    }

    #[test]
    fn exact_bytes_1_2() {
        let f = Frame::new(Command::Message)
            .with_header("destination", "/q")
            .with_header("a:b", "c\\d\ne\rf")
            .with_body("hi");
        assert_eq!(
            enc(&f, Version::V1_2),
            b"MESSAGE\ndestination:/q\na\\cb:c\\\\d\\ne\\rf\ncontent-length:2\n\nhi\0"
        );
        assert_eq!(
            enc(&f, Version::V1_1),
            b"MESSAGE\ndestination:/q\na\\cb:c\\\\d\\ne f\ncontent-length:2\n\nhi\0",
            "1.1 cannot escape CR: it becomes a space"
        );
        assert_eq!(
            enc(&f, Version::V1_0),
            b"MESSAGE\ndestination:/q\na b:c\\d e f\ncontent-length:2\n\nhi\0",
            "1.0 cannot escape: a ':' in a name (which would end it early), CR and LF become spaces"
        );
    }

    #[test]
    fn connect_frames_are_never_escaped() {
        for command in [Command::Connect, Command::Stomp, Command::Connected] {
            let f = Frame::new(command).with_header("login", "a:b\\c");
            for version in Version::ALL {
                let expected = format!("{command}\nlogin:a:b\\c\n\n\0");
                assert_eq!(enc(&f, version), expected.as_bytes());
                let got = dec(&enc(&f, version), version).unwrap();
                assert_eq!(got.header("login"), Some("a:b\\c"));
            }
        }
    }

    #[test]
    fn v1_0_is_literal() {
        let f = Frame::new(Command::Send).with_header("selector", "a\\b:c");
        assert_eq!(enc(&f, Version::V1_0), b"SEND\nselector:a\\b:c\n\n\0");
        let got = dec(&enc(&f, Version::V1_0), Version::V1_0).unwrap();
        assert_eq!(got, f);
    }

    #[test]
    fn empty_frame() {
        assert_eq!(
            enc(&Frame::new(Command::Disconnect), Version::V1_2),
            b"DISCONNECT\n\n\0"
        );
    }

    #[test]
    fn content_length_is_corrected_in_place() {
        let f = Frame::new(Command::Send)
            .with_header("content-length", "999")
            .with_header("destination", "/q")
            .with_header("content-length", "1")
            .with_body("abc");
        assert_eq!(
            enc(&f, Version::V1_2),
            b"SEND\ncontent-length:3\ndestination:/q\n\nabc\0"
        );
        // An explicit length for an empty body is kept (as 0).
        let f = Frame::new(Command::Send).with_header("content-length", "5");
        assert_eq!(enc(&f, Version::V1_2), b"SEND\ncontent-length:0\n\n\0");
    }

    #[test]
    fn body_with_nuls_round_trips() {
        let body = Bytes::from_static(b"\0\0a\0");
        let f = Frame::new(Command::Send).with_body(body.clone());
        for version in Version::ALL {
            assert_eq!(dec(&enc(&f, version), version).unwrap().body, body);
        }
    }

    #[test]
    fn header_line_helper() {
        let mut out = BytesMut::new();
        encode_header_line("k:1", "v\\\r\n", Escaping::V1_2, &mut out);
        encode_header_line("k", "v:", Escaping::None, &mut out);
        assert_eq!(&out[..], b"k\\c1:v\\\\\\r\\n\nk:v:\n");
    }

    #[test]
    fn decimal() {
        for n in [0usize, 7, 10, 99, 1234567, usize::MAX] {
            let mut out = BytesMut::new();
            write_decimal(n, &mut out);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn heartbeat_decodes_as_heartbeat() {
        let mut d = Decoder::default();
        let mut buf = BytesMut::from(HEARTBEAT);
        assert_eq!(d.decode(&mut buf), Ok(Some(Decoded::Heartbeat)));
    }

    #[test]
    fn stream_of_frames_and_heartbeats() {
        let mut out = BytesMut::new();
        for command in Command::ALL {
            encode(&sample(command), Version::V1_2, &mut out);
            out.extend_from_slice(HEARTBEAT);
        }
        let mut d = Decoder::default();
        d.set_version(Version::V1_2);
        let mut got = Vec::new();
        while let Some(item) = d.decode(&mut out).unwrap() {
            got.push(item);
        }
        assert_eq!(got.len(), 2 * Command::ALL.len());
        for (i, command) in Command::ALL.into_iter().enumerate() {
            let Decoded::Frame(f) = &got[2 * i] else {
                panic!("expected a frame")
            };
            assert_eq!(without_length(f.clone()), sample(command));
            assert_eq!(got[2 * i + 1], Decoded::Heartbeat);
        }
    }

    #[test]
    fn random_frames_round_trip_1_2() {
        // xorshift64; strings drawn from an alphabet heavy in special bytes.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = ['a', ':', '\\', '\n', '\r', ' ', 'é', 'c', 'n', 'r', '\0'];
        for _ in 0..2000 {
            let command = Command::ALL[(next() % 15) as usize];
            let mut f = Frame::new(command);
            for _ in 0..next() % 5 {
                let mut s = |min: u64| -> String {
                    let len = min + next() % 6;
                    (0..len)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                        .collect()
                };
                let name = s(1);
                let value = s(0);
                f.push_header(name, value);
            }
            let body: Vec<u8> = (0..next() % 8).map(|_| next() as u8).collect();
            f.body = Bytes::from(body);
            if escaping_for(Version::V1_2, command) == Escaping::None
                || f.headers.iter().any(|(k, _)| k == "content-length")
            {
                continue;
            }
            let got = dec(&enc(&f, Version::V1_2), Version::V1_2).unwrap();
            // NUL cannot be represented (it would end the frame): it comes back as a space.
            let mut expected = f.clone();
            for (name, value) in &mut expected.headers {
                *name = name.replace('\0', " ");
                *value = value.replace('\0', " ");
            }
            assert_eq!(without_length(got), expected);
        }
    }
}
