//! The only IO: tokio listeners and, per connection, one task that reads, runs the STOMP
//! [`crate::stomp::session::Session`] and writes (see `output.rs`).

mod connection;
mod deflate;
pub(crate) mod http;
mod http_body;
mod keepalive;
pub(crate) mod listener;
mod metrics;
mod output;
mod paused;
mod prefixed_io;
mod raw_connection;
mod signals;
pub(crate) mod sockjs;
mod source;
mod static_files;
pub(crate) mod tls;
mod writer;

pub(crate) use signals::block_sigpipe_on_this_thread;
