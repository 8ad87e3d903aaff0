//! WebSocket close status codes (RFC 6455 §7.4 and the IANA "WebSocket Close
//! Code Number Registry").
//!
//! Codes are plain `u16` values; the well-known ones are `pub const`s in the
//! [`codes`] module (`crate::ws::close::codes::NORMAL`, ...).

/// Well-known close status codes, as plain `u16` constants.
pub mod codes {
    /// 1000: normal closure; the purpose of the connection has been fulfilled.
    pub const NORMAL: u16 = 1000;
    /// 1001: endpoint going away (server shutdown, browser navigating away).
    pub const GOING_AWAY: u16 = 1001;
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// 1003: received a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// 1005: reserved, "no status code present". Never sent on the wire.
    pub const NO_STATUS_RECEIVED: u16 = 1005;
    /// 1006: reserved, "abnormal closure" (no close frame). Never sent on the wire.
    pub const ABNORMAL_CLOSURE: u16 = 1006;
    /// 1007: message data inconsistent with its type (e.g. non-UTF-8 text).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// 1008: message violates the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// 1009: message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// 1010: (client only) expected extension not negotiated.
    pub const MANDATORY_EXTENSION: u16 = 1010;
    /// 1011: unexpected condition prevented the server from fulfilling the request.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// 1012: service restart (IANA registry).
    pub const SERVICE_RESTART: u16 = 1012;
    /// 1013: try again later (IANA registry).
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// 1014: bad gateway (IANA registry).
    pub const BAD_GATEWAY: u16 = 1014;
}

/// Whether `code` may legitimately appear in a Close frame received from a
/// peer (RFC 6455 §7.4.1/§7.4.2 plus the IANA registry).
///
/// Valid: 1000–1003, 1007–1014 (registered codes) and 3000–4999
/// (libraries/frameworks and private use). Invalid: 0–999 (unused),
/// 1004 (reserved), 1005/1006/1015 (must never be sent on the wire),
/// 1016–2999 (reserved for future RFCs; treated as invalid until registered)
/// and ≥ 5000.
pub fn is_valid_received_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_table() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        let invalid = [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for c in valid {
            assert!(is_valid_received_code(c), "{c} should be valid");
        }
        for c in invalid {
            assert!(!is_valid_received_code(c), "{c} should be invalid");
        }
    }

    #[test]
    fn exhaustive_matches_ranges() {
        for c in 0..=u16::MAX {
            let expected = (1000..=1003).contains(&c)
                || (1007..=1014).contains(&c)
                || (3000..=4999).contains(&c);
            assert_eq!(is_valid_received_code(c), expected, "code {c}");
        }
    }

    #[test]
    fn constants() {
        assert_eq!(codes::NORMAL, 1000);
        assert_eq!(codes::GOING_AWAY, 1001);
        assert_eq!(codes::PROTOCOL_ERROR, 1002);
        assert_eq!(codes::UNSUPPORTED_DATA, 1003);
        assert_eq!(codes::INVALID_PAYLOAD, 1007);
        assert_eq!(codes::POLICY_VIOLATION, 1008);
        assert_eq!(codes::MESSAGE_TOO_BIG, 1009);
        assert_eq!(codes::INTERNAL_ERROR, 1011);
        assert!(!is_valid_received_code(codes::NO_STATUS_RECEIVED));
        assert!(!is_valid_received_code(codes::ABNORMAL_CLOSURE));
    }
}
