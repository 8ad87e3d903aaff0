//! Publishing on behalf of the host program: from the safe API, or from inside an application
//! handler (which may also reply to the session that sent the message).
//!
//! Flow control: a publish by the host is refused with `Backpressure` while a subscriber it
//! would reach is congested (nothing is delivered, so a retry duplicates nothing); a publish
//! made by an application handler while it handles a client's SEND is that client's: it is
//! delivered, and the client's connection pauses until the congested queues are relieved.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::broker::{BrokerError, Congestion, Message, Published, destination};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::stomp::frame::check_header;

/// Publishes messages into the broker. Cheap to clone; usable from any thread.
#[derive(Clone, Debug)]
pub struct Publisher {
    engine: Arc<Engine>,
    /// The session whose SEND is being handled, for `reply`.
    session: Option<u64>,
    /// While that SEND is being handled: the congested queues its publishes met, for the
    /// session to pause on afterwards (`None` inside once the handler returned: a clone kept
    /// beyond that publishes as the host).
    on_behalf: Option<Arc<Mutex<Option<Congestion>>>>,
}

/// The congested queues an application handler's publishes met, handed back to the session
/// that called it.
pub(crate) type OnBehalf = Arc<Mutex<Option<Congestion>>>;

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
    /// A publisher for the host program.
    pub(crate) fn new(engine: Arc<Engine>) -> Publisher {
        Publisher {
            engine,
            session: None,
            on_behalf: None,
        }
    }

    /// A publisher for an application handler running for `session`'s SEND; its publishes are
    /// the session's until the session takes `on_behalf` back.
    pub(crate) fn for_session(engine: Arc<Engine>, session: u64, on_behalf: OnBehalf) -> Publisher {
        Publisher {
            engine,
            session: Some(session),
            on_behalf: Some(on_behalf),
        }
    }

    /// Delivers for the session whose SEND is being handled, if that is still going on:
    /// `Some(result)`, with the congested queues noted for it; `None` otherwise.
    fn on_behalf_of_session<T>(
        &self,
        deliver: impl FnOnce(&mut Congestion) -> std::result::Result<T, BrokerError>,
    ) -> Option<std::result::Result<T, BrokerError>> {
        let sink = self.on_behalf.as_ref()?;
        sink.lock().as_ref()?;
        // Not delivered under the lock: host-subscription callbacks run inside the publish.
        let mut congested = Vec::new();
        let result = deliver(&mut congested);
        if let Some(noted) = sink.lock().as_mut() {
            noted.extend(congested);
        }
        Some(result)
    }

    /// The session whose message is being handled, if any.
    pub fn session(&self) -> Option<u64> {
        self.session
    }

    /// Refuses what a client could not have sent either: a body above `max_frame_size`, more
    /// than `max_headers` headers (every accepted message can be delivered, see the broker's
    /// outbound bounds).
    fn check_size(&self, headers: &[(&str, &str)], body: &Bytes) -> Result<()> {
        let limits = &self.engine.config.frame_limits;
        if body.len() > limits.max_frame_size {
            return Err(Error::InvalidArgument(format!(
                "a body of {} bytes is above max_frame_size ({})",
                body.len(),
                limits.max_frame_size
            )));
        }
        if headers.len() > limits.max_headers {
            return Err(Error::InvalidArgument(format!(
                "{} headers are more than max_headers ({})",
                headers.len(),
                limits.max_headers
            )));
        }
        Ok(())
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
        self.publish_recorded(destination, headers, body)
            .map(|published| published.delivered)
    }

    /// As [`Publisher::publish`], also returning the message's offset in its destination's
    /// history (when a history rule covers the destination).
    pub fn publish_recorded(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Published> {
        let body = body.into();
        self.check_size(headers, &body)?;
        let owned = owned_headers(headers)?;
        destination::check_name(destination).map_err(|e| Error::InvalidArgument(e.0))?;
        if let Some(relay) = &self.engine.relay
            && relay.is_relayed(destination)
        {
            relay.system.publish(destination, headers, body)?;
            return Ok(Published {
                delivered: 0,
                offset: None,
                durable: None,
            });
        }
        let routed = destination::send_route(destination, &self.engine.broker.config().user_prefix);
        self.publish_routed(routed, owned, body)
    }

    /// As [`Publisher::publish_recorded`], waiting up to `timeout` while flow control refuses
    /// it with `Backpressure` (see `Server::publish_wait`, which also refuses to block a server
    /// thread).
    pub fn publish_wait(
        &self,
        destination: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        timeout: std::time::Duration,
    ) -> Result<Published> {
        /// Retry at least this often: a full queue destination has no relief signal.
        const RETRY: std::time::Duration = std::time::Duration::from_millis(50);
        let deadline = std::time::Instant::now() + timeout;
        let signal = self.engine.broker.flow_signal();
        loop {
            let seen = signal.generation();
            match self.publish_recorded(destination, headers, body.clone()) {
                Err(Error::Backpressure(why)) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return Err(Error::Backpressure(why));
                    }
                    signal.wait(seen, deadline.min(now + RETRY));
                }
                other => return other,
            }
        }
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
        let body = body.into();
        self.check_size(headers, &body)?;
        let owned = owned_headers(headers)?;
        let routed =
            destination::user_route(user, destination, &self.engine.broker.config().user_prefix);
        self.publish_routed(routed, owned, body)
            .map(|published| published.delivered)
    }

    /// Publishes on a routing key computed by `destination`: a bad name is the caller's
    /// error, a refusal by the broker (a full queue) is backpressure.
    fn publish_routed(
        &self,
        routed: std::result::Result<(String, String), BrokerError>,
        headers: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<Published> {
        let (route, display) = routed.map_err(|e| Error::InvalidArgument(e.0))?;
        let message = self.message(display, headers, body);
        let broker = &self.engine.broker;
        let published = match self
            .on_behalf_of_session(|c| broker.publish_recorded(&route, message.clone(), c))
        {
            Some(published) => published,
            None => {
                let congested = broker.congested_targets(&route);
                if !congested.is_empty() {
                    crate::broker::stats::add(&broker.counters().publishes_refused, 1);
                    return Err(Error::Backpressure(format!(
                        "{} subscriber queue(s) of {} are congested: retry later (or publish \
                         with a wait)",
                        congested.len(),
                        message.destination()
                    )));
                }
                if broker.host_callbacks_behind(&route) {
                    crate::broker::stats::add(&broker.counters().publishes_refused, 1);
                    return Err(Error::Backpressure(format!(
                        "the host callbacks subscribed to {} are behind: retry later (or \
                             publish with a wait)",
                        message.destination()
                    )));
                }
                broker.publish_recorded(&route, message, &mut Vec::new())
            }
        };
        published.map_err(|e| Error::Backpressure(e.0))
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
        let body = body.into();
        self.check_size(headers, &body)?;
        let owned = owned_headers(headers)?;
        let message = self.message(destination.to_string(), owned, body);
        let broker = &self.engine.broker;
        // One session's own queue: delivered (never refused); an application handler's reply
        // pauses its sender like any of its publishes.
        self.on_behalf_of_session(|c| {
            broker.publish_to_session(session, destination, message.clone(), c)
        })
        .unwrap_or_else(|| {
            broker.publish_to_session(session, destination, message, &mut Vec::new())
        })
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
