//! A raw (non-STOMP) WebSocket data message encoded once and shared by every connection it
//! goes to: the complete uncompressed frame, and — made on first use by a connection that
//! negotiated permessage-deflate — its compressed payload, so a fan-out compresses once.

use std::sync::OnceLock;

use bytes::Bytes;

/// One shared raw data frame.
#[derive(Debug)]
pub struct SharedFrame {
    /// The complete uncompressed frame (header and payload).
    frame: Bytes,
    /// Where the payload starts in `frame`.
    header_len: u8,
    binary: bool,
    /// The compressed payload (deflate, without the `00 00 ff ff` tail); `None` inside when
    /// it does not pay (below the threshold, or it would not shrink).
    compressed: OnceLock<Option<Bytes>>,
}

impl SharedFrame {
    /// A frame whose first `header_len` bytes are its WebSocket header.
    pub fn new(frame: Bytes, header_len: usize, binary: bool) -> SharedFrame {
        debug_assert!(header_len <= 14 && header_len <= frame.len());
        SharedFrame {
            frame,
            header_len: header_len as u8,
            binary,
            compressed: OnceLock::new(),
        }
    }

    /// The complete uncompressed frame.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The message payload.
    pub fn payload(&self) -> Bytes {
        self.frame.slice(usize::from(self.header_len)..)
    }

    /// Length of the message payload.
    pub fn payload_len(&self) -> usize {
        self.frame.len() - usize::from(self.header_len)
    }

    /// Binary (else text).
    pub fn is_binary(&self) -> bool {
        self.binary
    }

    /// The compressed payload, made by `compress` on the first call and shared after.
    pub fn compressed(&self, compress: impl FnOnce(&[u8]) -> Option<Bytes>) -> Option<&Bytes> {
        self.compressed
            .get_or_init(|| compress(&self.frame[usize::from(self.header_len)..]))
            .as_ref()
    }

    /// Bytes of the uncompressed frame (what it accounts for in an outbound queue).
    pub fn wire_len(&self) -> usize {
        self.frame.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compressed_form_is_made_once() {
        let frame = SharedFrame::new(Bytes::from_static(b"\x81\x05hello"), 2, false);
        assert_eq!(&frame.payload()[..], b"hello");
        let mut calls = 0;
        let mut make = |payload: &[u8]| {
            calls += 1;
            Some(Bytes::copy_from_slice(&payload[..2]))
        };
        assert_eq!(
            frame.compressed(&mut make).map(|b| &b[..]),
            Some(&b"he"[..])
        );
        assert_eq!(
            frame.compressed(&mut make).map(|b| &b[..]),
            Some(&b"he"[..])
        );
        assert_eq!(calls, 1);
        assert_eq!(frame.wire_len(), 7);
    }
}
