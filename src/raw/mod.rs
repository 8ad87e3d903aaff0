//! Raw WebSocket mode (uWebSockets-style pub/sub, no STOMP).
//!
//! The host registers raw endpoints by path (`Server::add_raw_endpoint`). A client that
//! upgrades on such a path exchanges plain text/binary messages. Each endpoint either hands
//! messages to the host as events ([`RawBehaviour::Host`]) or handles them inside the server
//! without a host round-trip ([`RawBehaviour::Broadcast`], [`RawBehaviour::Echo`]). The host
//! can subscribe connections to topics (exact names, no wildcards), publish to a topic, send
//! to one connection, close it, attach a `u64` of its own and read how many bytes wait in its
//! outbound queue. Outbound queues are the same bounded [`crate::broker::Outbox`]es as STOMP
//! sessions', with the same slow-consumer policies.
//!
//! Every outgoing message is encoded once as a complete WebSocket frame and shared by every
//! receiver's queue: a fan-out copies no payload per receiver.

mod endpoint;
mod events;
pub(crate) mod hub;
mod topics;

pub use endpoint::{RawBehaviour, RawEndpoint, RawEndpointOptions, RawSockJs};
pub use events::{RawClose, RawMessage, RawOpen};
pub use hub::{RawDefaults, RawHub, encode_data_frame};
