//! The one error type of the safe API. Every fallible call returns [`Result`]; the C ABI maps each
//! variant to a stable `wsb_result` code, so variants are added, never renumbered or repurposed.

use std::io;

/// Errors returned by the safe Rust API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range or inconsistent; the message names the field.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A listener could not bind because the address is already taken.
    #[error("address in use: {0}")]
    AddressInUse(String),
    /// Any other I/O failure while binding or starting.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The server was already started.
    #[error("server already started")]
    AlreadyStarted,
    /// The server is not running (never started, or stopped).
    #[error("server not running")]
    NotRunning,
    /// A destination, header or argument was rejected.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Text that must be UTF-8 (a raw text message) is not.
    #[error("invalid UTF-8: {0}")]
    InvalidUtf8(String),
    /// An internal bounded queue is full; the call did not block and nothing was queued.
    #[error("backpressure: {0}")]
    Backpressure(String),
    /// The referenced session, subscription or handler does not exist (or no longer exists).
    #[error("not found: {0}")]
    NotFound(String),
    /// `stop` was called from a thread owned by the server's runtime (e.g. inside a callback),
    /// where waiting for the runtime to finish would deadlock.
    #[error("called from a server callback thread: {0}")]
    CalledFromCallback(&'static str),
    /// A client operation did not finish in time (a receipt that did not come, a connection
    /// that was not made).
    #[error("timed out: {0}")]
    Timeout(String),
    /// A client is not connected, or its connection was lost before the operation finished.
    #[error("not connected: {0}")]
    NotConnected(String),
    /// The peer refused: a server's ERROR frame or HTTP status, a rejected login.
    #[error("refused by the server: {0}")]
    Refused(String),
}

/// Result alias for the safe API.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Maps a bind error, so that "address in use" gets its own variant.
    pub(crate) fn from_bind(addr: &str, err: io::Error) -> Error {
        if err.kind() == io::ErrorKind::AddrInUse {
            Error::AddressInUse(addr.to_string())
        } else {
            Error::Io(io::Error::new(err.kind(), format!("binding {addr}: {err}")))
        }
    }
}
