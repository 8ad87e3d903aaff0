//! SockJS protocol 0.3.x, the IO-free part: frame encoding, decoding of the messages clients
//! send (JSON strings and arrays of strings), the JSON escaping the protocol requires, and
//! the URL scheme under the SockJS prefix. The transport side (HTTP and WebSocket) lives in
//! `crate::transport::sockjs`.

pub mod frame;
pub mod url;
