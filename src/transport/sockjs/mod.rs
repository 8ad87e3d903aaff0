//! SockJS transports: HTTP sessions (`session`, `receive`), the `websocket` transport's writer
//! (`ws`), and the service that routes requests under the prefix (`service`). The protocol's
//! pure parts are in [`crate::sockjs`].

mod encode;
mod raw_session;
mod receive;
pub(crate) mod service;
mod session;
pub(crate) mod ws;
