//! A published message, shared by every subscriber it is delivered to.
//!
//! The part of a MESSAGE frame that is the same for every subscriber — `destination`, the
//! sender's headers, `content-length`, the body and the closing NUL — is encoded once per
//! publish (once per header-escaping dialect actually in use) and shared as `Bytes`. Each
//! delivery only adds its own small `subscription` / `message-id` / `ack` prefix at write time.

use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};

use crate::stomp::encoder::encode_header_line;
use crate::stomp::escape::Escaping;

/// Headers a sender may not set on a MESSAGE: the broker writes these itself.
const BROKER_HEADERS: [&str; 7] = [
    "destination",
    "message-id",
    "subscription",
    "ack",
    "content-length",
    "transaction",
    "receipt",
];

/// True for header names that the broker controls and so drops from a SEND's headers.
pub fn is_broker_header(name: &str) -> bool {
    BROKER_HEADERS.contains(&name)
}

/// An immutable published message.
#[derive(Debug)]
pub struct Message {
    id: u64,
    destination: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    text: bool,
    sender: Option<u64>,
    tails: [OnceLock<Bytes>; 3],
    /// Transport-encoded forms of the tails (permessage-deflate), made on first use; boxed so
    /// a message no compressing connection receives pays one pointer.
    encoded_tails: OnceLock<Box<[OnceLock<Option<Bytes>>; 3]>>,
}

impl Message {
    /// Builds a message. `headers` are user headers (broker-controlled names are dropped);
    /// `destination` is what subscribers see in the `destination` header.
    pub fn new(
        id: u64,
        destination: impl Into<String>,
        headers: Vec<(String, String)>,
        body: Bytes,
        sender: Option<u64>,
    ) -> Message {
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .filter(|(name, _)| !is_broker_header(name))
            .collect();
        // Headers are always UTF-8; a body that is too can travel in a WebSocket text frame.
        let text = std::str::from_utf8(&body).is_ok();
        Message {
            id,
            destination: destination.into(),
            headers,
            body,
            text,
            sender,
            tails: Default::default(),
            encoded_tails: OnceLock::new(),
        }
    }

    /// This message at `offset` of a destination's stream of `epoch` (history): the same
    /// message with `x-offset` and `x-epoch` headers, replacing any the sender set (and a
    /// forged `x-recovered`).
    pub fn with_position(&self, offset: u64, epoch: &str) -> Message {
        use super::history::{EPOCH_HEADER, OFFSET_HEADER, RECOVERED_HEADER};
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(n, _)| n != OFFSET_HEADER && n != EPOCH_HEADER && n != RECOVERED_HEADER)
            .cloned()
            .collect();
        headers.push((OFFSET_HEADER.into(), offset.to_string()));
        headers.push((EPOCH_HEADER.into(), epoch.to_string()));
        Message {
            id: self.id,
            destination: self.destination.clone(),
            headers,
            body: self.body.clone(),
            text: self.text,
            sender: self.sender,
            tails: Default::default(),
            encoded_tails: OnceLock::new(),
        }
    }

    /// Broker-wide sequence number of this publish.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// The destination subscribers see.
    pub fn destination(&self) -> &str {
        &self.destination
    }
    /// User headers carried from the SEND (or the host publish).
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    /// First value of a user header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// Session that sent it, `None` for messages published by the host.
    pub fn sender(&self) -> Option<u64> {
        self.sender
    }
    /// True when the whole encoded frame is valid UTF-8 (so it may go in a WebSocket text frame).
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// The shared tail of the MESSAGE frame for one escaping dialect, encoded on first use.
    pub fn tail(&self, escaping: Escaping) -> &Bytes {
        let slot = match escaping {
            Escaping::None => &self.tails[0],
            Escaping::V1_1 => &self.tails[1],
            Escaping::V1_2 => &self.tails[2],
        };
        slot.get_or_init(|| self.encode_tail(escaping))
    }

    /// The tail for `escaping` transformed once by `encode` (e.g. compressed) and shared by
    /// every connection that asks, or `None` when `encode` declined (e.g. it would not shrink).
    /// The first caller's `encode` runs; later callers get its result.
    pub fn encoded_tail(
        &self,
        escaping: Escaping,
        encode: impl FnOnce(&Bytes) -> Option<Bytes>,
    ) -> Option<&Bytes> {
        let slots = self.encoded_tails.get_or_init(Default::default);
        let slot = match escaping {
            Escaping::None => &slots[0],
            Escaping::V1_1 => &slots[1],
            Escaping::V1_2 => &slots[2],
        };
        slot.get_or_init(|| encode(self.tail(escaping))).as_ref()
    }

    fn encode_tail(&self, escaping: Escaping) -> Bytes {
        let header_guess: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum();
        let mut out =
            BytesMut::with_capacity(self.destination.len() + header_guess + self.body.len() + 48);
        encode_header_line("destination", &self.destination, escaping, &mut out);
        for (name, value) in &self.headers {
            encode_header_line(name, value, escaping, &mut out);
        }
        let len = self.body.len().to_string();
        encode_header_line("content-length", &len, escaping, &mut out);
        out.put_u8(b'\n');
        out.extend_from_slice(&self.body);
        out.put_u8(0);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_encoded_once_and_drops_broker_headers() {
        let msg = Message::new(
            1,
            "/topic/a",
            vec![
                ("content-type".into(), "text/plain".into()),
                ("x-key".into(), "a:b".into()),
                ("message-id".into(), "forged".into()),
            ],
            Bytes::from_static(b"hi"),
            None,
        );
        let tail = msg.tail(Escaping::V1_2).clone();
        assert_eq!(
            &tail[..],
            b"destination:/topic/a\ncontent-type:text/plain\nx-key:a\\cb\ncontent-length:2\n\nhi\0"
        );
        assert!(std::ptr::eq(
            msg.tail(Escaping::V1_2).as_ptr(),
            tail.as_ptr()
        ));
        assert_eq!(
            &msg.tail(Escaping::None)[..],
            b"destination:/topic/a\ncontent-type:text/plain\nx-key:a:b\ncontent-length:2\n\nhi\0"
        );
        assert!(msg.is_text());
        assert_eq!(msg.header("message-id"), None);
    }

    #[test]
    fn encoded_tail_is_made_once() {
        let msg = Message::new(3, "/t", vec![], Bytes::from_static(b"body"), None);
        let mut calls = 0;
        let first = msg
            .encoded_tail(Escaping::V1_2, |tail| {
                calls += 1;
                Some(Bytes::from(tail.to_ascii_uppercase()))
            })
            .cloned();
        let again = msg.encoded_tail(Escaping::V1_2, |_| unreachable!("cached"));
        assert_eq!(calls, 1);
        assert_eq!(first.as_ref(), again);
        assert_eq!(
            &first.unwrap()[..],
            b"DESTINATION:/T\nCONTENT-LENGTH:4\n\nBODY\0"
        );
        assert_eq!(msg.encoded_tail(Escaping::None, |_| None), None);
        assert_eq!(
            msg.encoded_tail(Escaping::None, |_| unreachable!("cached")),
            None
        );
    }

    #[test]
    fn binary_body_is_not_text() {
        let msg = Message::new(2, "/q", vec![], Bytes::from_static(&[0xff, 0, 1]), Some(3));
        assert!(!msg.is_text());
        assert_eq!(msg.sender(), Some(3));
    }
}
