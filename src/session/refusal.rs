//! Refused frames and the ERROR frames that tell the client why.

use bytes::Bytes;

use crate::broker::BrokerError;
use crate::broker::outbox::CloseReason;
use crate::stomp::{Command, Frame};
use crate::ws::codes;

/// A refused frame: becomes an ERROR frame, then the connection closes.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) message: String,
    pub(super) detail: Option<String>,
    pub(super) code: u16,
}

impl Refusal {
    pub(super) fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            detail: None,
            code: codes::PROTOCOL_ERROR,
        }
    }
    pub(super) fn policy(message: impl Into<String>) -> Refusal {
        Refusal {
            code: codes::POLICY_VIOLATION,
            ..Refusal::new(message)
        }
    }

    /// A refusal closing with `code` (e.g. 1013 "try again later", 1011 "internal error").
    pub(super) fn with_code(code: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            ..Refusal::new(message)
        }
    }
}

impl From<BrokerError> for Refusal {
    fn from(e: BrokerError) -> Refusal {
        Refusal::new(e.0)
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal::new(message)
    }
}

/// The ERROR frame for a close reason (also used by transports for closes they initiate).
pub fn error_frame(reason: &CloseReason) -> Option<Frame> {
    let message = reason.error.as_ref()?;
    let mut frame = Frame::new(Command::Error).with_header("message", message.clone());
    if let Some(receipt) = &reason.receipt_id {
        frame.push_header("receipt-id", receipt.clone());
    }
    frame.push_header("content-type", "text/plain");
    let body = reason.detail.clone().unwrap_or_else(|| message.clone());
    Some(frame.with_body(Bytes::from(body)))
}

pub(super) fn required<'a>(frame: &'a Frame, name: &str) -> Result<&'a str, Refusal> {
    frame.header(name).ok_or_else(|| {
        Refusal::new(format!(
            "{} frame is missing the '{name}' header",
            frame.command.as_str()
        ))
    })
}
