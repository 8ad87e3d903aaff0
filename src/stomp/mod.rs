//! Sans-IO STOMP 1.0 / 1.1 / 1.2 frame codec.
//!
//! Pure functions over bytes, no sockets and no async runtime:
//!
//! * [`frame`]: the [`Frame`] model and [`Command`]s.
//! * [`version`]: [`Version`], `accept-version` negotiation and the
//!   `v1x.stomp` WebSocket subprotocols.
//! * [`escape`]: header escaping per version ([`escaping_for`]).
//! * [`decoder`]: the incremental [`Decoder`], which turns a growing
//!   `BytesMut` into [`Decoded`] frames and heart-beats, enforcing
//!   [`FrameLimits`].
//! * [`heartbeat`]: the `heart-beat` header and its negotiation.
//! * [`encoder`]: [`encode`] a frame, or single header lines for building
//!   shared frame parts once per publish.
//!
//! Typical server-side use: create a [`Decoder`] per connection, feed it the
//! bytes read, handle the CONNECT/STOMP frame, [`negotiate`] the version,
//! call [`Decoder::set_version`], and [`encode`] outgoing frames with the
//! same version. A [`DecodeError`] is fatal: send an ERROR frame whose
//! `message` header is the error's `Display` text, then close.
//!
//! Reference: <https://stomp.github.io/stomp-specification-1.2.html>.

pub mod decoder;
pub mod encoder;
pub mod escape;
pub mod frame;
pub mod heartbeat;
pub mod version;

pub use decoder::{DecodeError, Decoded, Decoder, FrameLimits};
pub use encoder::{HEARTBEAT, encode, encode_header_line};
pub use escape::{Escaping, escape_into, escape_name_into, escaping_for, unescape};
pub use frame::{Command, Frame};
pub use heartbeat::{Heartbeat, negotiate_heartbeat, parse_heartbeat};
pub use version::{Version, negotiate};
