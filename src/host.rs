//! Publishing on behalf of the host program: from the safe API, or from inside an application
//! handler (which may also reply to the session that sent the message).

use std::sync::Arc;

use bytes::Bytes;

use crate::broker::{BrokerError, Message, destination};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stomp::frame::check_header;

/// Publishes messages into the broker. Cheap to clone; usable from any thread.
#[derive(Clone, Debug)]
pub struct Publisher {
    engine: Arc<Engine>,
    /// The session whose SEND is being handled, for `reply`.
    session: Option<u64>,
}

/// Copies the host's headers, refusing any that could not be sent safely.
fn owned_headers(headers: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
    headers
        .iter()
        .map(|(n, v)| {
            check_header(n, v).map_err(Error::InvalidArgument)?;
            Ok((n.to_string(), v.to_string()))
        })
        .collect()
}

impl Publisher {
    pub(crate) fn new(engine: Arc<Engine>, session: Option<u64>) -> Publisher {
        Publisher { engine, session }
    }

    /// The session whose message is being handled, if any.
    pub fn session(&self) -> Option<u64> {
        self.session
    }

    fn message(
        &self,
        display: String,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Arc<Message> {
        let id = self.engine.broker.next_message_id();
        Arc::new(Message::new(id, display, headers, body, None))
    }

    /// Publishes to a destination (topic, queue or `/user/{name}/...`). Returns how many client
    /// subscriptions it was queued to; a queue that holds the message for later counts 0.
    /// In relay mode, a relayed destination goes to the external broker through the system
    /// connection and counts 0; it fails with `Backpressure` while the broker is unavailable.
    /// A destination or header that could not be sent safely (empty, NUL, CR or LF in a name,
    /// NUL in a value) is `InvalidArgument`.
    pub fn publish(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize> {
        let owned = owned_headers(headers)?;
        destination::check_name(destination).map_err(|e| Error::InvalidArgument(e.0))?;
        if let Some(relay) = &self.engine.relay
            && relay.is_relayed(destination)
        {
            relay.system.publish(destination, headers, body.into())?;
            return Ok(0);
        }
        let routed = destination::send_route(destination, &self.engine.broker.config().user_prefix);
        self.publish_routed(routed, owned, body.into())
    }

    /// Sends to every session of `user` subscribed to `/user{destination}` (e.g. `destination`
    /// `/queue/reply` reaches subscriptions to `/user/queue/reply`).
    pub fn send_to_user(
        &self,
        user: &str,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize> {
        let owned = owned_headers(headers)?;
        let routed =
            destination::user_route(user, destination, &self.engine.broker.config().user_prefix);
        self.publish_routed(routed, owned, body.into())
    }

    /// Publishes on a routing key computed by `destination`: a bad name is the caller's
    /// error, a refusal by the broker (a full queue) is backpressure.
    fn publish_routed(
        &self,
        routed: std::result::Result<(String, String), BrokerError>,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<usize> {
        let (route, display) = routed.map_err(|e| Error::InvalidArgument(e.0))?;
        let message = self.message(display, headers, body);
        self.engine
            .broker
            .publish(&route, message)
            .map_err(|e| Error::Backpressure(e.0))
    }

    /// Sends only to the subscriptions of `session` that match `destination`, written as that
    /// session subscribes (`/user/queue/x` is its own user queue): for example an application
    /// handler answering the client that sent the message.
    pub fn send_to_session(
        &self,
        session: u64,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize> {
        destination::check_name(destination).map_err(|e| Error::InvalidArgument(e.0))?;
        if destination.contains('*') {
            return Err(Error::InvalidArgument(format!(
                "invalid destination '{destination}': no wildcards in a destination to send to"
            )));
        }
        let owned = owned_headers(headers)?;
        let message = self.message(destination.to_string(), owned, body.into());
        self.engine
            .broker
            .publish_to_session(session, destination, message)
            .map_err(|e| Error::NotFound(e.0))
    }

    /// Replies to the session whose message is being handled: delivered to that session's
    /// subscriptions matching `destination` only.
    pub fn reply(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<usize> {
        let session = self.session.ok_or_else(|| {
            Error::InvalidArgument("reply outside of an application handler".into())
        })?;
        self.send_to_session(session, destination, headers, body)
    }
}
