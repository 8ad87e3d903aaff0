//! Socket-free tests of the session state machine and the broker behind it: frames in, the
//! outbox read back as decoded frames, deliveries and closes.

mod auth;
mod broker;
mod cluster;
mod common;
mod durable;
mod history;
mod protocol;
mod slow_consumer;
