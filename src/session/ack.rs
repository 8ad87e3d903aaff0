//! ACK and NACK.

use super::Session;
use super::refusal::Refusal;
use crate::stomp::{Frame, Version};

impl Session {
    pub(super) fn on_ack(&mut self, frame: Frame, nack: bool) -> Result<(), Refusal> {
        if let Some(tx) = frame.header("transaction") {
            return self.buffer(tx.to_string(), frame);
        }
        self.ack_now(&frame, nack)
    }

    pub(super) fn ack_now(&mut self, frame: &Frame, nack: bool) -> Result<(), Refusal> {
        let (primary, secondary) = if self.version == Version::V1_2 {
            ("id", "message-id")
        } else {
            ("message-id", "id")
        };
        let ack_id = frame
            .header(primary)
            .or_else(|| frame.header(secondary))
            .ok_or_else(|| {
                Refusal::new(format!(
                    "{} frame is missing the '{primary}' header",
                    frame.command.as_str()
                ))
            })?;
        let subscription = if self.version == Version::V1_1 {
            frame.header("subscription")
        } else {
            None
        };
        self.engine
            .broker
            .acknowledge(self.id, ack_id, subscription, nack)?;
        Ok(())
    }
}
