//! The STOMP frame model: a command, an ordered list of headers and a body.

use bytes::Bytes;
use std::fmt;

/// A STOMP command (the first line of a frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    // Client frames.
    Connect,
    Stomp,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    // Server frames.
    Connected,
    Message,
    Receipt,
    Error,
}

impl Command {
    /// Every command, client commands first.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// Length in bytes of the longest command name (`UNSUBSCRIBE`).
    pub const MAX_LEN: usize = 11;

    /// The command as it appears on the wire, e.g. `"SEND"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses a command line (without its EOL). Commands are case-sensitive
    /// and must match exactly (no surrounding whitespace).
    pub fn parse(bytes: &[u8]) -> Option<Command> {
        Some(match bytes {
            b"CONNECT" => Command::Connect,
            b"STOMP" => Command::Stomp,
            b"SEND" => Command::Send,
            b"SUBSCRIBE" => Command::Subscribe,
            b"UNSUBSCRIBE" => Command::Unsubscribe,
            b"ACK" => Command::Ack,
            b"NACK" => Command::Nack,
            b"BEGIN" => Command::Begin,
            b"COMMIT" => Command::Commit,
            b"ABORT" => Command::Abort,
            b"DISCONNECT" => Command::Disconnect,
            b"CONNECTED" => Command::Connected,
            b"MESSAGE" => Command::Message,
            b"RECEIPT" => Command::Receipt,
            b"ERROR" => Command::Error,
            _ => return None,
        })
    }

    /// `true` for frames sent by clients, `false` for server frames
    /// (CONNECTED, MESSAGE, RECEIPT, ERROR).
    pub fn is_client(self) -> bool {
        !matches!(
            self,
            Command::Connected | Command::Message | Command::Receipt | Command::Error
        )
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decoded (unescaped) STOMP frame.
///
/// Headers keep their wire order and may repeat; per the specification only
/// the first occurrence of a repeated header is significant, which is what
/// [`Frame::header`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub command: Command,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Checks a header the host (Rust, C, Python) wants to send: a non-empty name without NUL, CR
/// or LF, and a value without NUL. (A NUL would end the frame early in every subscriber's
/// stream; CR and LF in a value are escaped for STOMP 1.1+ peers and become spaces for 1.0.)
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a header name must not be empty".into());
    }
    if name.contains(['\0', '\r', '\n']) {
        return Err(format!(
            "invalid header name {name:?}: it must not contain NUL, CR or LF"
        ));
    }
    if value.contains('\0') {
        return Err(format!(
            "invalid value of header '{name}': it must not contain NUL"
        ));
    }
    Ok(())
}

impl Frame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Self {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The value of the first header called `name` (case-sensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Builder form of [`Frame::push_header`].
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.push_header(name, value);
        self
    }

    /// Appends a header (after any existing ones, even with the same name).
    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Replaces the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::parse(c.as_str().as_bytes()), Some(c));
            assert_eq!(c.to_string(), c.as_str());
            assert!(c.as_str().len() <= Command::MAX_LEN);
        }
        assert_eq!(Command::parse(b"send"), None);
        assert_eq!(Command::parse(b"SEND "), None);
        assert_eq!(Command::parse(b""), None);
        assert_eq!(Command::parse(b"FOO"), None);
    }

    #[test]
    fn client_vs_server() {
        let server = [
            Command::Connected,
            Command::Message,
            Command::Receipt,
            Command::Error,
        ];
        for c in Command::ALL {
            assert_eq!(c.is_client(), !server.contains(&c), "{c}");
        }
    }

    #[test]
    fn header_first_occurrence_wins() {
        let f = Frame::new(Command::Message)
            .with_header("foo", "first")
            .with_header("bar", "x")
            .with_header("foo", "second");
        assert_eq!(f.header("foo"), Some("first"));
        assert_eq!(f.header("bar"), Some("x"));
        assert_eq!(f.header("Foo"), None);
        assert_eq!(f.headers.len(), 3);
    }

    #[test]
    fn builders() {
        let mut f = Frame::new(Command::Send).with_body("hello");
        f.push_header("destination", "/queue/a");
        assert_eq!(f.body, Bytes::from_static(b"hello"));
        assert_eq!(f.header("destination"), Some("/queue/a"));
        assert_eq!(Frame::new(Command::Ack).body.len(), 0);
    }
}
