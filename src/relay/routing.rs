//! Which client frames go to the external broker, which stay local, and which go to both.

use std::collections::HashSet;

use super::frames;
use crate::stomp::frame::{Command, Frame};
use crate::stomp::version::Version;

/// True when `destination` is under one of the relayed `prefixes` (`/topic` relays
/// `/topic/x` and `/topic` itself, not `/topical`).
pub fn is_relayed(destination: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|prefix| {
        destination
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
    })
}

/// Where a client frame of a relaying session goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The in-process broker (and application handlers), as without relay.
    Local,
    /// The session's broker connection; the broker answers receipts.
    Relay,
    /// Both: transaction boundaries, since a transaction may hold local and relayed frames.
    /// The local side runs first without the receipt; the broker answers the receipt.
    Both,
}

/// Routes one client frame. `relayed_subscriptions` are the ids of the session's
/// subscriptions that live on the broker.
pub fn route(
    frame: &Frame,
    prefixes: &[String],
    relayed_subscriptions: &HashSet<String>,
    version: Version,
) -> Route {
    let relayed = |yes: bool| if yes { Route::Relay } else { Route::Local };
    match frame.command {
        Command::Send | Command::Subscribe => relayed(
            frame
                .header("destination")
                .is_some_and(|d| is_relayed(d, prefixes)),
        ),
        Command::Unsubscribe => {
            let id = frame.header("id").or_else(|| {
                (version == Version::V1_0)
                    .then(|| frame.header("destination"))
                    .flatten()
            });
            relayed(id.is_some_and(|id| relayed_subscriptions.contains(id)))
        }
        Command::Ack | Command::Nack => {
            let id = match version {
                Version::V1_2 => frame.header("id"),
                _ => frame.header("message-id"),
            };
            relayed(id.is_some_and(frames::is_relay_ack_id))
        }
        Command::Begin | Command::Commit | Command::Abort => Route::Both,
        _ => Route::Local,
    }
}

/// The subscription id a SUBSCRIBE or UNSUBSCRIBE frame names (1.0 may use the destination).
pub fn subscription_id(frame: &Frame, version: Version) -> Option<&str> {
    frame.header("id").or_else(|| {
        (version == Version::V1_0)
            .then(|| frame.header("destination"))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Vec<String> {
        super::super::config::DEFAULT_PREFIXES
            .iter()
            .map(std::string::ToString::to_string)
            .collect()
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let p = prefixes();
        assert!(is_relayed("/topic/a", &p));
        assert!(is_relayed("/topic", &p));
        assert!(is_relayed("/amq/queue/q", &p));
        assert!(!is_relayed("/topical", &p));
        assert!(!is_relayed("/app/x", &p));
        assert!(!is_relayed("/user/queue/x", &p));
        assert!(is_relayed("/x/y", &["/x/".to_string()]));
    }

    #[test]
    fn frames_route_by_destination_subscription_and_ack_id() {
        let p = prefixes();
        let mut subs = HashSet::new();
        subs.insert("r1".to_string());
        let send = |d: &str| Frame::new(Command::Send).with_header("destination", d);
        assert_eq!(
            route(&send("/topic/a"), &p, &subs, Version::V1_2),
            Route::Relay
        );
        assert_eq!(
            route(&send("/app/a"), &p, &subs, Version::V1_2),
            Route::Local
        );
        assert_eq!(
            route(&send("/user/u/queue/a"), &p, &subs, Version::V1_2),
            Route::Local
        );
        let unsub = |id: &str| Frame::new(Command::Unsubscribe).with_header("id", id);
        assert_eq!(route(&unsub("r1"), &p, &subs, Version::V1_2), Route::Relay);
        assert_eq!(route(&unsub("l1"), &p, &subs, Version::V1_2), Route::Local);
        let tagged = frames::tag_ack_id(3, "T_sub-1@@session-x@@1");
        let ack12 = Frame::new(Command::Ack).with_header("id", tagged.clone());
        assert_eq!(route(&ack12, &p, &subs, Version::V1_2), Route::Relay);
        let ack11 = Frame::new(Command::Ack).with_header("message-id", tagged);
        assert_eq!(route(&ack11, &p, &subs, Version::V1_1), Route::Relay);
        let local = Frame::new(Command::Ack).with_header("id", "7-3");
        assert_eq!(route(&local, &p, &subs, Version::V1_2), Route::Local);
        let begin = Frame::new(Command::Begin).with_header("transaction", "t");
        assert_eq!(route(&begin, &p, &subs, Version::V1_2), Route::Both);
    }

    #[test]
    fn version_1_0_unsubscribes_by_destination() {
        let p = prefixes();
        let mut subs = HashSet::new();
        subs.insert("/topic/a".to_string());
        let unsub = Frame::new(Command::Unsubscribe).with_header("destination", "/topic/a");
        assert_eq!(route(&unsub, &p, &subs, Version::V1_0), Route::Relay);
        assert_eq!(subscription_id(&unsub, Version::V1_0), Some("/topic/a"));
        assert_eq!(subscription_id(&unsub, Version::V1_2), None);
    }
}
