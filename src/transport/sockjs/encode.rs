//! Outbox items → SockJS frames: STOMP frames become the strings of an `a[...]` frame, a close
//! becomes the ERROR frame (if any) and a `c[code,"reason"]` frame.

use bytes::BytesMut;

use crate::broker::outbox::{CloseReason, Delivery, Outbound, Outbox};
use crate::session::error_frame;
use crate::sockjs::frame::{ArrayFrame, GO_AWAY, close_frame};
use crate::stomp::encoder::encode;
use crate::transport::writer::encode_message_prefix;
use crate::ws::codes;

/// The frames one drained batch of outbox items turns into.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    /// The `a[...]` frame, when the batch held STOMP frames.
    pub array: Option<String>,
    /// The close (code, reason) when the batch ended the session.
    pub close: Option<(u16, String)>,
    /// Transport-level items (WebSocket pings and pongs), for the WebSocket transport.
    pub control: Vec<Outbound>,
    /// Binary raw messages left out (SockJS frames carry text).
    pub dropped: u64,
}

/// Encodes `items` (in order; nothing after a close counts). A `stomp` session's close
/// carries its ERROR frame first; a raw endpoint's is the close frame alone.
pub(crate) fn encode_batch(outbox: &Outbox, items: &mut Vec<Outbound>, stomp: bool) -> Encoded {
    let mut array = ArrayFrame::new();
    let mut encoded = Encoded::default();
    for item in items.drain(..) {
        match item {
            Outbound::Frame(bytes) => array.push(&String::from_utf8_lossy(&bytes)),
            Outbound::Message(delivery) => array.push(&message_text(outbox, &delivery)),
            Outbound::Ping(_) | Outbound::Pong(_) => encoded.control.push(item),
            // A raw endpoint's message: SockJS carries text, so a binary one is left out
            // (`raw_send`/`raw_publish` of binary data to a SockJS client).
            Outbound::WsFrame(frame) if !frame.is_binary() => {
                array.push(&String::from_utf8_lossy(&frame.payload()));
            }
            Outbound::WsFrame(_) => encoded.dropped += 1,
            Outbound::Close(reason) => {
                if let Some(frame) = error_frame(&reason).filter(|_| stomp) {
                    let mut out = BytesMut::new();
                    encode(&frame, outbox.version(), &mut out);
                    array.push(&String::from_utf8_lossy(&out));
                }
                encoded.close = Some(close_of(&reason));
                break;
            }
        }
    }
    if !array.is_empty() {
        encoded.array = Some(array.finish());
    }
    encoded
}

/// The SockJS close for a session close: "Go away!" after a normal end, else the WebSocket
/// close code and the error (SockJS frames carry text; binary bodies are sent lossily).
pub(crate) fn close_of(reason: &CloseReason) -> (u16, String) {
    match &reason.error {
        Some(error) if reason.code != codes::NORMAL => {
            let mut text = error.clone();
            if text.len() > 120 {
                let mut cut = 120;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            (reason.code, text)
        }
        _ => (GO_AWAY.0, GO_AWAY.1.to_owned()),
    }
}

/// A close frame for a (code, reason).
pub(crate) fn close_text(close: &(u16, String)) -> String {
    close_frame(close.0, &close.1)
}

/// The whole MESSAGE frame of a delivery, as text.
fn message_text(outbox: &Outbox, delivery: &Delivery) -> String {
    let escaping = outbox.message_escaping();
    let mut out = BytesMut::new();
    encode_message_prefix(delivery, escaping, &mut out);
    out.extend_from_slice(delivery.message.tail(escaping));
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn batch_becomes_one_array_frame_then_the_close() {
        let outbox = Outbox::new(16, 1 << 20);
        let mut items = vec![
            Outbound::Frame(Bytes::from_static(b"RECEIPT\nreceipt-id:1\n\n\0")),
            Outbound::Pong(Bytes::new()),
            Outbound::Close(CloseReason::error(codes::POLICY_VIOLATION, "slow consumer")),
            Outbound::Frame(Bytes::from_static(b"after the close\0")),
        ];
        let encoded = encode_batch(&outbox, &mut items, true);
        let array = encoded.array.unwrap();
        assert!(
            array.starts_with(
                r#"a["RECEIPT\nreceipt-id:1\n\n\u0000","ERROR\nmessage:slow consumer"#
            ),
            "{array}"
        );
        assert!(!array.contains("after the close"));
        assert_eq!(
            encoded.close,
            Some((codes::POLICY_VIOLATION, "slow consumer".to_owned()))
        );
        assert_eq!(encoded.control.len(), 1);
    }

    #[test]
    fn normal_close_is_go_away() {
        assert_eq!(
            close_of(&CloseReason::normal()),
            (3000, "Go away!".to_owned())
        );
        let long = CloseReason::error(codes::POLICY_VIOLATION, "é".repeat(100));
        assert!(close_of(&long).1.len() <= 120);
        assert_eq!(
            close_text(&(3000, "Go away!".into())),
            r#"c[3000,"Go away!"]"#
        );
    }
}
