//! What the host decides: the hooks' answers, and the questions a session asks through the
//! hooks or the event queue with the answers it gets back.

use super::requests::{ConnectRequest, SubscribeRequest};

/// The upgrade hook's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpgradeDecision {
    /// Let the client upgrade; the principal (if any) becomes the STOMP session's user unless
    /// the connect hook decides otherwise.
    Accept {
        /// Who the request proved the client to be.
        principal: Option<String>,
    },
    /// Refuse the upgrade with an HTTP status (401 or 403 usually; anything outside 400–499
    /// becomes 403) and a one-line reason.
    Reject {
        /// HTTP status code.
        status: u16,
        /// Reason sent in the response body.
        reason: String,
    },
}

/// The connect hook's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectDecision {
    /// Accept, optionally as a named user (enables `/user/...` destinations).
    Accept {
        /// The principal; must not contain `/` or `*`.
        user: Option<String>,
    },
    /// Refuse with a message sent to the client in an ERROR frame.
    Reject(String),
}

/// A decision the host makes.
#[derive(Debug, Clone)]
pub enum Question {
    /// May this client connect, and as which user?
    Connect(ConnectRequest),
    /// May this session subscribe?
    Subscribe(SubscribeRequest),
}

/// The host's decision on a [`Question`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// On a CONNECT.
    Connect(ConnectDecision),
    /// On a SUBSCRIBE: `Err(message)` refuses it.
    Subscribe(Result<(), String>),
}
