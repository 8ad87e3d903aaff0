//! The only IO: tokio listeners and, per connection, a reader (this task) and a writer task
//! that adapt a socket to a STOMP [`crate::stomp::session::Session`].

mod connection;
mod deflate;
pub(crate) mod listener;
mod raw_connection;
mod source;
pub(crate) mod tls;
mod writer;
