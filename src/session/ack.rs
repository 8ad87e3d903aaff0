//! ACK and NACK.

use super::Session;
use super::refusal::Refusal;
use crate::stomp::{Frame, Version};

impl Session {
    pub(super) fn on_ack(&mut self, frame: Frame, nack: bool) -> Result<(), Refusal> {
        // Checked before a transaction buffers the frame, so the error names the frame.
        self.ack_id(&frame)?;
        if let Some(tx) = frame.header("transaction") {
            return self.buffer(tx.to_string(), frame);
        }
        self.ack_now(&frame, nack)
    }

    /// The delivery an ACK or NACK names: its `id` header in STOMP 1.2 (required there, as the
    /// specification says), its `message-id` in 1.0 and 1.1 (where clients that send `id`
    /// instead are accepted too).
    fn ack_id<'f>(&self, frame: &'f Frame) -> Result<&'f str, Refusal> {
        let missing = |name: &str| {
            Refusal::new(format!(
                "{} frame is missing the '{name}' header",
                frame.command.as_str()
            ))
        };
        if self.version == Version::V1_2 {
            return frame.header("id").ok_or_else(|| missing("id"));
        }
        frame
            .header("message-id")
            .or_else(|| frame.header("id"))
            .ok_or_else(|| missing("message-id"))
    }

    pub(super) fn ack_now(&mut self, frame: &Frame, nack: bool) -> Result<(), Refusal> {
        let ack_id = self.ack_id(frame)?;
        let subscription = if self.version == Version::V1_1 {
            frame.header("subscription")
        } else {
            None
        };
        let durable = self
            .engine
            .broker
            .acknowledge(self.id, ack_id, subscription, nack)?;
        // Its RECEIPT means the message will not come back after a crash.
        self.note_durable(durable);
        Ok(())
    }
}
