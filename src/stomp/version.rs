//! STOMP protocol versions and version negotiation.
//!
//! See "Protocol Negotiation" in the STOMP 1.2 specification: the client
//! lists the versions it accepts in the `accept-version` header of its
//! CONNECT/STOMP frame; a missing header means the client only speaks 1.0.
//! The server picks the highest version both sides support.

use std::fmt;

/// A STOMP protocol version.
///
/// Ordered by age, so `Version::V1_0 < Version::V1_2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping.
    V1_0,
    /// STOMP 1.1: header escaping of `\\`, `\n` and `:` (`\c`).
    V1_1,
    /// STOMP 1.2: like 1.1 plus `\r`, and `\r\n` line endings.
    V1_2,
}

impl Version {
    /// All versions, oldest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as written in `accept-version` / `version` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses `"1.0"`, `"1.1"` or `"1.2"` (exactly, no surrounding whitespace).
    pub fn parse(s: &str) -> Option<Version> {
        match s {
            "1.0" => Some(Version::V1_0),
            "1.1" => Some(Version::V1_1),
            "1.2" => Some(Version::V1_2),
            _ => None,
        }
    }

    /// Maps a WebSocket subprotocol name (`v10.stomp`, `v11.stomp`,
    /// `v12.stomp`) to its version. Matching is ASCII case-insensitive.
    pub fn from_ws_subprotocol(name: &str) -> Option<Version> {
        Version::ALL
            .into_iter()
            .find(|v| v.ws_subprotocol().eq_ignore_ascii_case(name))
    }

    /// The WebSocket subprotocol name for this version, e.g. `"v12.stomp"`.
    pub fn ws_subprotocol(self) -> &'static str {
        match self {
            Version::V1_0 => "v10.stomp",
            Version::V1_1 => "v11.stomp",
            Version::V1_2 => "v12.stomp",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Picks the protocol version for a connection.
///
/// * `accept_version` is the value of the client's `accept-version` header.
///   When the header is absent (or empty / only whitespace, leniently) the
///   client is taken to speak only STOMP 1.0.
/// * Otherwise it is a comma-separated list; entries are trimmed of ASCII
///   whitespace and unknown entries (e.g. `"2.0"`) are ignored.
/// * Returns the highest version present in both the list and `supported`,
///   or `None` when there is no overlap (the server must then send an ERROR
///   frame with a `version` header listing what it supports, and close).
pub fn negotiate(accept_version: Option<&str>, supported: &[Version]) -> Option<Version> {
    let requested = accept_version.map(str::trim).filter(|s| !s.is_empty());
    match requested {
        None => supported.contains(&Version::V1_0).then_some(Version::V1_0),
        Some(list) => list
            .split(',')
            .filter_map(|v| Version::parse(v.trim()))
            .filter(|v| supported.contains(v))
            .max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Version] = &Version::ALL;

    #[test]
    fn as_str_parse_round_trip() {
        for v in Version::ALL {
            assert_eq!(Version::parse(v.as_str()), Some(v));
            assert_eq!(v.to_string(), v.as_str());
        }
        assert_eq!(Version::parse("1.3"), None);
        assert_eq!(Version::parse(" 1.2"), None);
        assert_eq!(Version::parse(""), None);
    }

    #[test]
    fn ordering() {
        assert!(Version::V1_0 < Version::V1_1);
        assert!(Version::V1_1 < Version::V1_2);
    }

    #[test]
    fn ws_subprotocols() {
        assert_eq!(
            Version::from_ws_subprotocol("v10.stomp"),
            Some(Version::V1_0)
        );
        assert_eq!(
            Version::from_ws_subprotocol("v11.stomp"),
            Some(Version::V1_1)
        );
        assert_eq!(
            Version::from_ws_subprotocol("v12.stomp"),
            Some(Version::V1_2)
        );
        assert_eq!(
            Version::from_ws_subprotocol("V12.STOMP"),
            Some(Version::V1_2)
        );
        assert_eq!(Version::from_ws_subprotocol("stomp"), None);
        assert_eq!(Version::from_ws_subprotocol("v13.stomp"), None);
        for v in Version::ALL {
            assert_eq!(Version::from_ws_subprotocol(v.ws_subprotocol()), Some(v));
        }
    }

    #[test]
    fn negotiate_absent_header_is_1_0() {
        assert_eq!(negotiate(None, ALL), Some(Version::V1_0));
        assert_eq!(negotiate(Some(""), ALL), Some(Version::V1_0));
        assert_eq!(negotiate(Some("  "), ALL), Some(Version::V1_0));
        assert_eq!(negotiate(None, &[Version::V1_1, Version::V1_2]), None);
    }

    #[test]
    fn negotiate_picks_highest_common() {
        assert_eq!(negotiate(Some("1.0,1.1,1.2"), ALL), Some(Version::V1_2));
        assert_eq!(negotiate(Some("1.2,1.0"), ALL), Some(Version::V1_2));
        assert_eq!(negotiate(Some("1.1"), ALL), Some(Version::V1_1));
        assert_eq!(negotiate(Some("1.0, 1.1 "), ALL), Some(Version::V1_1));
        assert_eq!(
            negotiate(Some("1.0,1.1,1.2"), &[Version::V1_0, Version::V1_1]),
            Some(Version::V1_1)
        );
        assert_eq!(negotiate(Some("1.1,2.0,x"), ALL), Some(Version::V1_1));
    }

    #[test]
    fn negotiate_no_overlap() {
        assert_eq!(negotiate(Some("2.0"), ALL), None);
        assert_eq!(negotiate(Some("1.0"), &[Version::V1_2]), None);
        assert_eq!(negotiate(Some("1.2"), &[]), None);
        assert_eq!(negotiate(Some(","), ALL), None);
    }
}
