//! Outbound permessage-deflate for one connection: which frames get compressed and how.
//!
//! The state is two numbers. Compressors are per worker thread
//! ([`crate::ws::deflate::deflate_shared`]) and inflation allocates per message, so an idle
//! connection that negotiated compression holds no buffer for it.

use bytes::Bytes;

use crate::broker::message::Message;
use crate::broker::shared_frame::SharedFrame;
use crate::stomp::escape::Escaping;
use crate::ws::deflate::{DeflateParams, MAX_STORED_BLOCK, MAX_WINDOW_BITS, deflate_shared};

/// Outbound compression settings of a connection that negotiated permessage-deflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutboundDeflate {
    /// Messages whose payload is shorter go uncompressed (RSV1 clear), which RFC 7692 allows
    /// per message: tiny frames do not shrink and are not worth the CPU.
    threshold: usize,
    /// The window the client allows us (`server_max_window_bits`).
    window_bits: u8,
    /// zlib level 1..=9.
    level: u32,
}

impl OutboundDeflate {
    /// `None` when the connection did not negotiate compression.
    pub(crate) fn new(
        params: Option<DeflateParams>,
        threshold: usize,
        level: u32,
    ) -> Option<OutboundDeflate> {
        params.map(|p| OutboundDeflate {
            threshold,
            window_bits: p.server_max_window_bits,
            level,
        })
    }

    /// A complete data payload compressed (without the trailing `00 00 ff ff`), or `None` to
    /// send it as it is (below the threshold, or it would not shrink).
    pub(crate) fn compress(&self, payload: &[u8]) -> Option<Bytes> {
        if payload.len() < self.threshold {
            return None;
        }
        deflate_shared(payload, self.window_bits, self.level)
    }

    /// A raw data frame's payload compressed, or `None` to send the frame as it is. With the
    /// full window it is compressed once and shared by every connection the frame goes to.
    pub(crate) fn shared_payload(&self, frame: &SharedFrame) -> Option<Bytes> {
        if frame.payload_len() < self.threshold {
            return None;
        }
        if self.window_bits == MAX_WINDOW_BITS {
            frame.compressed(|payload| self.compress(payload)).cloned()
        } else {
            self.compress(&frame.payload())
        }
    }

    /// For a MESSAGE frame whose per-delivery `prefix` precedes the message's shared tail: the
    /// compressed tail to send after `prefix` wrapped in a stored block (see
    /// [`crate::ws::deflate::stored_block_header`]), or `None` to send the frame uncompressed.
    ///
    /// With the full window (the usual case) the compressed tail is made once per publish and
    /// shared by every subscriber with the same STOMP escaping; a client that limited our
    /// window gets its own compression.
    pub(crate) fn message_tail(
        &self,
        message: &Message,
        escaping: Escaping,
        prefix_len: usize,
    ) -> Option<Bytes> {
        let tail = message.tail(escaping);
        if prefix_len + tail.len() < self.threshold || prefix_len > MAX_STORED_BLOCK {
            return None;
        }
        if self.window_bits == MAX_WINDOW_BITS {
            message
                .encoded_tail(escaping, |tail| {
                    deflate_shared(tail, MAX_WINDOW_BITS, self.level)
                })
                .cloned()
        } else {
            deflate_shared(tail, self.window_bits, self.level)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::deflate::{
        DEFAULT_LEVEL, STORED_BLOCK_HEADER_LEN, inflate_message, stored_block_header,
    };

    #[test]
    fn message_prefix_and_shared_tail_inflate_to_the_frame() {
        let body = Bytes::from("{\"price\":101.25,\"symbol\":\"ABC\",\"size\":300}".repeat(40));
        let message = Message::new(1, "/topic/prices", vec![], body, None);
        let deflate = OutboundDeflate::new(
            Some(DeflateParams {
                server_max_window_bits: 15,
            }),
            256,
            DEFAULT_LEVEL,
        )
        .unwrap();
        let prefix = b"MESSAGE\nsubscription:s-1\nmessage-id:7-1\n";
        let tail = deflate
            .message_tail(&message, Escaping::V1_2, prefix.len())
            .expect("compressible");
        // Shared: a second subscriber gets the very same bytes.
        let again = deflate.message_tail(&message, Escaping::V1_2, 10).unwrap();
        assert_eq!(tail.as_ptr(), again.as_ptr());

        let mut payload = stored_block_header(prefix.len()).to_vec();
        assert_eq!(payload.len(), STORED_BLOCK_HEADER_LEN);
        payload.extend_from_slice(prefix);
        payload.extend_from_slice(&tail);
        let frame = inflate_message(&payload, 1 << 20).unwrap();
        let mut expected = prefix.to_vec();
        expected.extend_from_slice(message.tail(Escaping::V1_2));
        assert_eq!(&frame[..], &expected[..]);
        assert!(payload.len() < expected.len() / 4);
    }

    #[test]
    fn threshold_and_small_windows() {
        let params = DeflateParams {
            server_max_window_bits: 10,
        };
        let deflate = OutboundDeflate::new(Some(params), 100, 1).unwrap();
        assert_eq!(deflate.compress(&[b'a'; 99]), None);
        let c = deflate.compress(&[b'a'; 100]).unwrap();
        assert_eq!(&inflate_message(&c, 100).unwrap()[..], &[b'a'; 100]);
        let message = Message::new(1, "/t", vec![], Bytes::from(vec![b'x'; 5000]), None);
        // A limited window compresses per connection (not cached on the message).
        let tail = deflate.message_tail(&message, Escaping::V1_2, 20).unwrap();
        assert_eq!(
            &inflate_message(&tail, 1 << 20).unwrap()[..],
            &message.tail(Escaping::V1_2)[..]
        );
        assert_eq!(message.encoded_tail(Escaping::V1_2, |_| None), None);
        assert_eq!(OutboundDeflate::new(None, 100, DEFAULT_LEVEL), None);
    }
}
