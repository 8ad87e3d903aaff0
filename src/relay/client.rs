//! A relaying session's view of its broker connection: the link, and which of its
//! subscriptions live on the broker (to route UNSUBSCRIBE).

use std::collections::HashSet;
use std::sync::Arc;

use super::Relay;
use super::link::SessionLink;
use super::routing::{self, Route};
use crate::stomp::frame::{Command, Frame};
use crate::stomp::version::Version;

/// Per-session relay state, held by the session from CONNECT on.
#[derive(Debug)]
pub(crate) struct ClientRelay {
    relay: Arc<Relay>,
    link: SessionLink,
    subscriptions: HashSet<String>,
    /// A DISCONNECT with a receipt went to the broker; the session ends with its RECEIPT.
    pub(crate) disconnecting: bool,
}

impl ClientRelay {
    pub(crate) fn new(relay: Arc<Relay>, link: SessionLink) -> ClientRelay {
        ClientRelay {
            relay,
            link,
            subscriptions: HashSet::new(),
            disconnecting: false,
        }
    }

    /// Where `frame` goes.
    pub(crate) fn route(&self, frame: &Frame, version: Version) -> Route {
        routing::route(
            frame,
            &self.relay.config.prefixes,
            &self.subscriptions,
            version,
        )
    }

    /// The link's backlog when it is behind (flow control, see `SessionLink::backlog`).
    pub(crate) fn backlog(&self) -> Option<super::link::Backlog> {
        self.link.backlog()
    }

    /// Relayed subscriptions of the session.
    pub(crate) fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Hands a frame to the broker connection, tracking relayed subscription ids.
    pub(crate) fn forward(&mut self, frame: Frame, version: Version) -> Result<(), String> {
        let id = routing::subscription_id(&frame, version).map(str::to_string);
        let command = frame.command;
        self.link.forward(frame)?;
        match (command, id) {
            (Command::Subscribe, Some(id)) => {
                self.subscriptions.insert(id);
            }
            (Command::Unsubscribe, Some(id)) => {
                self.subscriptions.remove(&id);
            }
            _ => {}
        }
        Ok(())
    }
}
