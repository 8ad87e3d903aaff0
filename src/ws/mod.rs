//! Sans-IO WebSocket layer (RFC 6455).
//!
//! Nothing in this module touches sockets or an async runtime: everything is a
//! pure function or a state machine over bytes, so it can be driven by any I/O
//! loop and tested exhaustively.
//!
//! - [`handshake`]: validates the client's HTTP/1.1 upgrade request
//!   ([`parse_upgrade`]) and builds the `101 Switching Protocols` response or an
//!   HTTP error response ([`reject_response`]).
//! - [`decoder`]: [`MessageDecoder`] parses masked client frames from a
//!   connection's read buffer, enforces every RFC 6455 framing rule plus size
//!   limits ([`WsLimits`]), validates UTF-8 incrementally, reassembles
//!   fragmented messages and yields [`WsEvent`]s. Violations are reported as
//!   [`WsError`] with the close code to send.
//! - [`deflate`]: permessage-deflate (RFC 7692): offer negotiation
//!   ([`deflate::negotiate`]), bounded inflation of received messages and
//!   compression that one publish shares between connections. The decoder
//!   inflates once [`MessageDecoder::enable_permessage_deflate`] was called.
//! - [`frame`]: server-side (unmasked) frame encoding. [`encode_header`] writes
//!   only the 2–10 byte header so one encoded payload can be shared by many
//!   connections.
//! - [`client`]: the client side of the handshake (the upgrade request and the checks of
//!   the answer); [`MessageDecoder::for_client`] decodes a server's (unmasked) frames and
//!   [`frame::encode_masked_frame`] encodes a client's.
//! - [`close`]: close codes ([`close::codes`]) and validation of received
//!   codes ([`is_valid_received_code`]).
//!
//! Typical connection flow: accumulate bytes until [`parse_upgrade`] returns
//! `Some((consumed, Handshake::Accept { .. }))`, write the response, drop the
//! first `consumed` bytes (anything after them is already WebSocket data), then
//! loop on [`MessageDecoder::decode`]. On a `WsError`, send
//! `encode_close(err.close_code, err.reason, ..)` and close the connection.

pub mod client;
pub mod close;
pub mod decoder;
pub mod deflate;
pub mod frame;
pub mod handshake;

pub use close::{codes, is_valid_received_code};
pub use decoder::{MessageDecoder, WsError, WsEvent, WsLimits};
pub use frame::{OpCode, encode_close, encode_close_empty, encode_frame, encode_header};
pub use handshake::{
    Handshake, HandshakeConfig, HandshakeError, UpgradeRequest, parse_upgrade, reject_response,
};
