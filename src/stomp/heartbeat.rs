//! STOMP 1.1+ heart-beats: the `heart-beat` header and its negotiation (STOMP 1.2 §Heart-beating).

/// Negotiated heart-beat intervals in milliseconds (0 = none), seen from the side that
/// negotiated them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// How often this side must send something.
    pub send_ms: u32,
    /// How often the peer promised to send something.
    pub receive_ms: u32,
}

/// Parses a `heart-beat` header value `cx,cy`; absent means `0,0`. The error text is meant
/// for an ERROR frame.
pub fn parse_heartbeat(value: Option<&str>) -> Result<(u32, u32), String> {
    let Some(value) = value else {
        return Ok((0, 0));
    };
    let bad = || format!("invalid heart-beat header '{value}': expected two integers 'cx,cy'");
    let (x, y) = value.split_once(',').ok_or_else(bad)?;
    let x = x.trim().parse::<u32>().map_err(|_| bad())?;
    let y = y.trim().parse::<u32>().map_err(|_| bad())?;
    Ok((x, y))
}

/// Heart-beat negotiation: `ours` is (can send, wants to receive) of this side, `theirs` the
/// peer's header. Each direction runs at the slower of what the sender can do and the
/// receiver wants; zero on either side turns that direction off.
pub fn negotiate_heartbeat(theirs: (u32, u32), ours: (u32, u32)) -> Heartbeat {
    let (tx, ty) = theirs;
    let (ox, oy) = ours;
    let both = |a: u32, b: u32| if a == 0 || b == 0 { 0 } else { a.max(b) };
    Heartbeat {
        send_ms: both(ox, ty),
        receive_ms: both(tx, oy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_slower_side_and_zero_disables() {
        assert_eq!(
            negotiate_heartbeat((1000, 5000), (2000, 3000)),
            Heartbeat {
                send_ms: 5000,
                receive_ms: 3000
            }
        );
        assert_eq!(
            negotiate_heartbeat((0, 5000), (2000, 3000)),
            Heartbeat {
                send_ms: 5000,
                receive_ms: 0
            }
        );
        assert_eq!(negotiate_heartbeat((1, 1), (0, 0)), Heartbeat::default());
    }

    #[test]
    fn header_parsing() {
        assert_eq!(parse_heartbeat(None), Ok((0, 0)));
        assert_eq!(parse_heartbeat(Some("10, 20")), Ok((10, 20)));
        assert!(parse_heartbeat(Some("10")).unwrap_err().contains("'10'"));
        assert!(parse_heartbeat(Some("a,1")).is_err());
        assert!(parse_heartbeat(Some("-1,1")).is_err());
    }
}
