//! The STOMP server over real sockets (127.0.0.1, port 0), driven by clients written for the
//! tests and by tokio-tungstenite: pub/sub, acknowledgements, application destinations, errors,
//! lifecycle, events, RFC 6455 details, hostile clients, TLS, upgrade auth, permessage-deflate
//! and SockJS, and the library's own `Client` against it (and against RabbitMQ). One test
//! binary (build time matters on small machines); one module per theme.

#[path = "../common/mod.rs"]
mod common;

mod acks;
mod app;
mod auth;
mod callbacks;
mod cli;
mod client;
mod drops;
mod durable;
mod errors;
mod events;
mod flow_control;
mod history;
mod hostile;
mod lifecycle;
mod permessage_deflate;
mod presence;
mod pubsub;
mod rfc6455;
mod sockjs;
mod tls;
mod upgrade_auth;
