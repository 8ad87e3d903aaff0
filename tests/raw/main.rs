//! Raw (non-STOMP) WebSocket endpoints over real sockets: the built-in behaviours and
//! host-driven endpoints.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod builtin;
mod host;
