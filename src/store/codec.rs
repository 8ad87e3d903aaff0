//! How a message is laid out in the store: a version byte, then publish time, id,
//! destination, headers and body, each length-prefixed (little-endian). Decoding checks
//! every length, so a damaged value is reported, never trusted.

use std::sync::Arc;

use bytes::Bytes;

use crate::broker::Message;
use crate::broker::wire::{self, Reader};

const VERSION: u8 = 1;

/// Encodes `message` published at `at_ms` (ms since the Unix epoch).
pub fn encode(at_ms: u64, message: &Message) -> Vec<u8> {
    let headers = message.headers();
    let size = 1
        + 8
        + 8
        + 4
        + message.destination().len()
        + wire::headers_len(headers)
        + message.body().len();
    let mut out = Vec::with_capacity(size);
    out.push(VERSION);
    out.extend_from_slice(&at_ms.to_le_bytes());
    out.extend_from_slice(&message.id().to_le_bytes());
    wire::put_bytes(&mut out, message.destination().as_bytes());
    wire::put_headers(&mut out, headers.iter());
    out.extend_from_slice(message.body());
    out
}

/// Decodes what [`encode`] wrote: the publish time and the message. `None` for a damaged or
/// unknown value.
pub fn decode(data: &[u8]) -> Option<(u64, Arc<Message>)> {
    let mut reader = Reader::new(data);
    if reader.take(1)? != [VERSION] {
        return None;
    }
    let at_ms = reader.u64()?;
    let id = reader.u64()?;
    let destination = reader.string()?;
    let headers = reader.headers()?;
    let body = Bytes::copy_from_slice(reader.data);
    Some((
        at_ms,
        Arc::new(Message::new(id, destination, headers, body, None)),
    ))
}

/// A stream's metadata: its epoch and last offset.
pub fn encode_meta(epoch: &str, last: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + epoch.len());
    out.extend_from_slice(&last.to_le_bytes());
    out.extend_from_slice(epoch.as_bytes());
    out
}

/// Decodes [`encode_meta`]: epoch and last offset.
pub fn decode_meta(data: &[u8]) -> Option<(String, u64)> {
    let (last, epoch) = data.split_at_checked(8)?;
    let last = u64::from_le_bytes(last.try_into().ok()?);
    Some((String::from_utf8(epoch.to_vec()).ok()?, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_damage_is_refused() {
        let message = Message::new(
            42,
            "/queue/jobs",
            vec![("x-offset".into(), "7".into()), ("k".into(), "v:é".into())],
            Bytes::from_static(b"\x00binary\xff body"),
            Some(3),
        );
        let data = encode(1_700_000_000_123, &message);
        let (at, back) = decode(&data).unwrap();
        assert_eq!(at, 1_700_000_000_123);
        assert_eq!(back.id(), 42);
        assert_eq!(back.destination(), "/queue/jobs");
        assert_eq!(back.headers(), message.headers());
        assert_eq!(back.body(), message.body());
        for cut in [0, 1, 9, 17, 20, 30] {
            assert!(decode(&data[..cut]).is_none(), "cut at {cut}");
        }
        let mut huge = data.clone();
        huge[21 + 11..25 + 11].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_none());
        let mut unknown = data;
        unknown[0] = 9;
        assert!(decode(&unknown).is_none());
        assert_eq!(
            decode_meta(&encode_meta("e1", 9)),
            Some(("e1".to_string(), 9))
        );
        assert!(decode_meta(b"short").is_none());
    }
}
