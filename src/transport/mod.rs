//! The only IO: tokio listeners and, per connection, a reader (this task) and a writer task
//! that adapt a socket to a STOMP [`crate::stomp::session::Session`].

mod connection;
mod deflate;
pub(crate) mod http;
mod http_body;
pub(crate) mod listener;
mod metrics;
mod prefixed_io;
mod raw_connection;
pub(crate) mod sockjs;
mod source;
mod static_files;
pub(crate) mod tls;
mod writer;
