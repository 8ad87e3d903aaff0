//! Frame rewriting between a client session and its broker connection (pure functions).
//!
//! Acknowledgement ids of relayed messages are tagged with the generation of the broker
//! connection that delivered them (`relay:{generation}:{broker id}`): the session tells relayed
//! ACKs from local ones by the tag, and after a session restore an ACK for a message of the
//! lost connection is dropped instead of confusing the new one (the broker already put that
//! unacknowledged message back on its queue).

use crate::stomp::frame::{Command, Frame};
use crate::stomp::heartbeat::{Heartbeat, negotiate_heartbeat, parse_heartbeat};
use crate::stomp::version::Version;

const ACK_TAG: &str = "relay:";

/// Receipt ids the relay uses for its own frames (re-subscriptions after a restore); the
/// broker's RECEIPTs for them are consumed, never shown to the client.
pub const RELAY_RECEIPT_PREFIX: &str = "wsbroker-relay-";

/// `relay:{generation}:{id}`.
pub fn tag_ack_id(generation: u64, id: &str) -> String {
    format!("{ACK_TAG}{generation}:{id}")
}

/// True for an ack id produced by [`tag_ack_id`].
pub fn is_relay_ack_id(id: &str) -> bool {
    id.starts_with(ACK_TAG)
}

/// The generation and broker id inside a tagged ack id.
pub fn untag_ack_id(id: &str) -> Option<(u64, &str)> {
    let (generation, id) = id.strip_prefix(ACK_TAG)?.split_once(':')?;
    Some((generation.parse().ok()?, id))
}

/// The CONNECT frame of a broker connection.
pub fn connect_frame(
    login: &str,
    passcode: &str,
    host: Option<&str>,
    version: Version,
    heartbeat: (u32, u32),
) -> Frame {
    let mut frame = Frame::new(Command::Connect).with_header("accept-version", version.as_str());
    if let Some(host) = host {
        frame.push_header("host", host);
    }
    frame.push_header("login", login);
    frame.push_header("passcode", passcode);
    if version != Version::V1_0 {
        frame.push_header("heart-beat", format!("{},{}", heartbeat.0, heartbeat.1));
    }
    frame
}

/// Heart-beats of a broker connection, from wsbroker's side (the STOMP client there):
/// `send_ms` is how often wsbroker must send, `receive_ms` how often the broker will.
pub fn client_side_heartbeat(ours: (u32, u32), connected: &Frame) -> Heartbeat {
    // A broker that sends a malformed header gets no heart-beats either way.
    let theirs = parse_heartbeat(connected.header("heart-beat")).unwrap_or((0, 0));
    negotiate_heartbeat(theirs, ours)
}

/// A MESSAGE from the broker as the client sees it: ack ids tagged with `generation`.
pub fn message_to_client(mut frame: Frame, generation: u64) -> Frame {
    for (name, value) in &mut frame.headers {
        if name == "ack" || name == "message-id" {
            *value = tag_ack_id(generation, value);
        }
    }
    frame
}

/// A client's ACK or NACK for the broker: its id untagged. `None` when it acknowledges a
/// message of an earlier broker connection (which the broker redelivers anyway).
pub fn ack_to_broker(mut frame: Frame, generation: u64) -> Option<Frame> {
    let mut current = true;
    for (name, value) in &mut frame.headers {
        if (name == "id" || name == "message-id")
            && let Some((g, id)) = untag_ack_id(value)
        {
            current &= g == generation;
            *value = id.to_string();
        }
    }
    current.then_some(frame)
}

/// The SUBSCRIBE that restores a subscription on a new broker connection, asking for receipt
/// `receipt`.
pub fn resubscribe(original: &Frame, receipt: &str) -> Frame {
    let mut frame = original.clone();
    frame.headers.retain(|(name, _)| name != "receipt");
    frame.push_header("receipt", receipt);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_ids_round_trip_and_stale_generations_are_dropped() {
        let tagged = tag_ack_id(2, "T_1@@session-a@@5");
        assert!(is_relay_ack_id(&tagged));
        assert_eq!(untag_ack_id(&tagged), Some((2, "T_1@@session-a@@5")));
        assert_eq!(untag_ack_id("3-4"), None);
        let message = Frame::new(Command::Message)
            .with_header("message-id", "m1")
            .with_header("ack", "a1")
            .with_header("destination", "/queue/q");
        let seen = message_to_client(message, 2);
        assert_eq!(seen.header("ack"), Some("relay:2:a1"));
        assert_eq!(seen.header("message-id"), Some("relay:2:m1"));
        assert_eq!(seen.header("destination"), Some("/queue/q"));
        let ack = Frame::new(Command::Ack).with_header("id", "relay:2:a1");
        let out = ack_to_broker(ack.clone(), 2).unwrap();
        assert_eq!(out.header("id"), Some("a1"));
        assert!(ack_to_broker(ack, 3).is_none());
    }

    #[test]
    fn connect_frame_and_heartbeats() {
        let f = connect_frame("u", "p", Some("/"), Version::V1_2, (10_000, 5_000));
        assert_eq!(f.header("accept-version"), Some("1.2"));
        assert_eq!(f.header("host"), Some("/"));
        assert_eq!(f.header("heart-beat"), Some("10000,5000"));
        let f10 = connect_frame("u", "p", None, Version::V1_0, (10_000, 5_000));
        assert_eq!(f10.header("heart-beat"), None);
        assert_eq!(f10.header("host"), None);
        // We send every 10 s (broker wants 4 s → max 10 s); broker sends at max(8 s, 5 s).
        let connected = Frame::new(Command::Connected).with_header("heart-beat", "8000,4000");
        let hb = client_side_heartbeat((10_000, 5_000), &connected);
        assert_eq!(
            hb,
            Heartbeat {
                send_ms: 10_000,
                receive_ms: 8_000
            }
        );
        let none = Frame::new(Command::Connected);
        assert_eq!(
            client_side_heartbeat((10_000, 5_000), &none),
            Heartbeat::default()
        );
    }

    #[test]
    fn resubscribe_replaces_the_receipt() {
        let sub = Frame::new(Command::Subscribe)
            .with_header("id", "s")
            .with_header("destination", "/topic/a")
            .with_header("receipt", "client-r");
        let again = resubscribe(&sub, "wsbroker-relay-1");
        assert_eq!(again.header("receipt"), Some("wsbroker-relay-1"));
        assert_eq!(
            again.headers.iter().filter(|(n, _)| n == "receipt").count(),
            1
        );
    }
}
