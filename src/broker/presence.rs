//! Presence: who is subscribed to a destination. A subscription is a *member* of its
//! destination when a presence pattern covers the destination or its SUBSCRIBE said
//! `x-presence:true`; the latter also *listens*: it gets a snapshot of the members when it
//! joins and a MESSAGE for every later join and leave — while the destination has at most
//! `event_limit` members (big channels keep counts only, so one join never fans out into
//! thousands of frames).
//!
//! Sans-IO and kept under the broker's lock with the subscriptions, so a member list never
//! disagrees with who receives the destination's messages.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::message::Message;
use super::pattern;

/// SUBSCRIBE header: `true` joins the destination's presence and listens to its changes.
pub const PRESENCE_HEADER: &str = "x-presence";
/// SUBSCRIBE header: a member's client info (bounded), shown to the others.
pub const INFO_HEADER: &str = "x-presence-info";
/// On presence MESSAGEs: the member's session id.
pub const SESSION_HEADER: &str = "x-presence-session";
/// On presence MESSAGEs: the member's user, when it has one.
pub const USER_HEADER: &str = "x-presence-user";
/// On presence MESSAGEs and the SUBSCRIBE's RECEIPT: the destination's member count.
pub const COUNT_HEADER: &str = "x-presence-count";

/// What a subscription asks of its destination's presence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PresenceRequest {
    /// `x-presence:true`: be a member and get the snapshot, joins and leaves.
    pub listen: bool,
    /// `x-presence-info`: client info shown to the other members.
    pub info: Option<String>,
}

/// One member of a destination's presence.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceMember {
    /// Its session.
    pub session: u64,
    /// The session's user, when it has one.
    pub user: Option<String>,
    /// The client info its SUBSCRIBE gave (`x-presence-info`).
    pub info: Option<String>,
}

/// A destination's members, for the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Presence {
    /// How many members it has.
    pub count: usize,
    /// The members, in the order they joined (a session subscribed twice is there twice).
    pub members: Vec<PresenceMember>,
}

/// A member with its subscription.
struct Entry {
    subscription: Arc<str>,
    member: PresenceMember,
    listen: bool,
}

/// Who was told what about one change.
pub(crate) struct Change {
    /// The presence MESSAGE (join or leave), `None` when the destination has more members
    /// than the event limit.
    pub event: Option<Arc<Message>>,
    /// The listening subscriptions to give it to (`(session, subscription)`).
    pub listeners: Vec<(u64, Arc<str>)>,
    /// The member count after the change.
    pub count: usize,
}

/// Presence of every destination that has members.
pub(crate) struct Rooms {
    patterns: Vec<String>,
    event_limit: usize,
    rooms: HashMap<String, Vec<Entry>>,
}

impl Rooms {
    pub fn new(patterns: Vec<String>, event_limit: usize) -> Rooms {
        Rooms {
            patterns,
            event_limit,
            rooms: HashMap::new(),
        }
    }

    /// Whether a subscription to `route` with `request` becomes a member.
    pub fn tracks(&self, route: &str, request: &PresenceRequest) -> bool {
        request.listen || self.patterns.iter().any(|p| pattern::matches(p, route))
    }

    /// Adds a member; returns the join to announce to the other listeners.
    pub fn join(
        &mut self,
        route: &str,
        subscription: Arc<str>,
        member: PresenceMember,
        listen: bool,
        message_id: u64,
    ) -> Change {
        let entries = self.rooms.entry(route.to_string()).or_default();
        entries.push(Entry {
            subscription: subscription.clone(),
            member: member.clone(),
            listen,
        });
        let count = entries.len();
        let session = member.session;
        let listeners = listeners(entries, |e| {
            !(e.member.session == session && e.subscription == subscription)
        });
        let event = (count <= self.event_limit)
            .then(|| Arc::new(event_message(message_id, route, "join", &member, count)));
        Change {
            event,
            listeners,
            count,
        }
    }

    /// Removes the member of `(session, subscription)`, if it is one; returns the leave.
    pub fn leave(
        &mut self,
        route: &str,
        session: u64,
        subscription: &str,
        message_id: u64,
    ) -> Option<Change> {
        let entries = self.rooms.get_mut(route)?;
        let at = entries
            .iter()
            .position(|e| e.member.session == session && &*e.subscription == subscription)?;
        let gone = entries.remove(at);
        let count = entries.len();
        let listeners = listeners(entries, |_| true);
        if entries.is_empty() {
            self.rooms.remove(route);
        }
        let event = (count < self.event_limit).then(|| {
            Arc::new(event_message(
                message_id,
                route,
                "leave",
                &gone.member,
                count,
            ))
        });
        Some(Change {
            event,
            listeners,
            count,
        })
    }

    /// The snapshot a joining listener gets: every member as JSON, `None` above the limit.
    pub fn snapshot(&self, route: &str, message_id: u64) -> Option<Arc<Message>> {
        let entries = self.rooms.get(route)?;
        if entries.len() > self.event_limit {
            return None;
        }
        let mut body = String::from("[");
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!("{{\"session\":\"{}\",\"user\":", e.member.session));
            json_opt(&mut body, e.member.user.as_deref());
            body.push_str(",\"info\":");
            json_opt(&mut body, e.member.info.as_deref());
            body.push('}');
        }
        body.push(']');
        let headers = vec![
            (PRESENCE_HEADER.to_string(), "snapshot".to_string()),
            (COUNT_HEADER.to_string(), entries.len().to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        Some(Arc::new(Message::new(
            message_id,
            route,
            headers,
            Bytes::from(body),
            None,
        )))
    }

    /// The members of `route` (empty when it has none).
    pub fn presence(&self, route: &str) -> Presence {
        let members: Vec<PresenceMember> = self
            .rooms
            .get(route)
            .map(|entries| entries.iter().map(|e| e.member.clone()).collect())
            .unwrap_or_default();
        Presence {
            count: members.len(),
            members,
        }
    }

    /// Destinations with members and how many each has (for `/metrics`).
    pub fn counts(&self) -> Vec<(String, usize)> {
        self.rooms
            .iter()
            .map(|(r, e)| (r.clone(), e.len()))
            .collect()
    }
}

fn listeners(entries: &[Entry], keep: impl Fn(&Entry) -> bool) -> Vec<(u64, Arc<str>)> {
    entries
        .iter()
        .filter(|e| e.listen && keep(e))
        .map(|e| (e.member.session, e.subscription.clone()))
        .collect()
}

/// A join or leave MESSAGE: headers say who and the count after it; a join's body is the
/// member's info.
fn event_message(
    id: u64,
    route: &str,
    kind: &str,
    member: &PresenceMember,
    count: usize,
) -> Message {
    let mut headers = vec![
        (PRESENCE_HEADER.to_string(), kind.to_string()),
        (SESSION_HEADER.to_string(), member.session.to_string()),
        (COUNT_HEADER.to_string(), count.to_string()),
    ];
    if let Some(user) = &member.user {
        headers.push((USER_HEADER.to_string(), user.clone()));
    }
    let body = match (kind, &member.info) {
        ("join", Some(info)) => Bytes::from(info.clone()),
        _ => Bytes::new(),
    };
    Message::new(id, route, headers, body, None)
}

/// Appends `text` as a JSON string, or `null`.
fn json_opt(out: &mut String, text: Option<&str>) {
    let Some(text) = text else {
        out.push_str("null");
        return;
    };
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(session: u64, user: &str) -> PresenceMember {
        PresenceMember {
            session,
            user: Some(user.into()),
            info: Some(format!("{user} \"info\"")),
        }
    }

    fn header<'m>(m: &'m Message, name: &str) -> Option<&'m str> {
        m.header(name)
    }

    #[test]
    fn joins_and_leaves_reach_the_other_listeners_only() {
        let mut rooms = Rooms::new(vec!["/topic/room/*".into()], 10);
        let listen = PresenceRequest {
            listen: true,
            info: None,
        };
        assert!(rooms.tracks("/topic/room/a", &PresenceRequest::default()));
        assert!(!rooms.tracks("/topic/other", &PresenceRequest::default()));
        assert!(rooms.tracks("/topic/other", &listen));

        let first = rooms.join("/topic/room/a", "s1".into(), member(1, "ann"), true, 1);
        assert!(first.listeners.is_empty(), "nobody else to tell");
        // A member that does not listen is announced but told nothing.
        let second = rooms.join("/topic/room/a", "s1".into(), member(2, "bob"), false, 2);
        assert_eq!(second.listeners, [(1, Arc::from("s1"))]);
        let join = second.event.unwrap();
        assert_eq!(header(&join, PRESENCE_HEADER), Some("join"));
        assert_eq!(header(&join, SESSION_HEADER), Some("2"));
        assert_eq!(header(&join, USER_HEADER), Some("bob"));
        assert_eq!(header(&join, COUNT_HEADER), Some("2"));
        assert_eq!(&join.body()[..], b"bob \"info\"");

        let snapshot = rooms.snapshot("/topic/room/a", 3).unwrap();
        assert_eq!(
            std::str::from_utf8(snapshot.body()).unwrap(),
            r#"[{"session":"1","user":"ann","info":"ann \"info\""},{"session":"2","user":"bob","info":"bob \"info\""}]"#
        );
        assert_eq!(rooms.presence("/topic/room/a").count, 2);

        assert!(rooms.leave("/topic/room/a", 2, "other", 4).is_none());
        let leave = rooms.leave("/topic/room/a", 2, "s1", 4).unwrap();
        assert_eq!(leave.count, 1);
        assert_eq!(
            header(leave.event.as_ref().unwrap(), PRESENCE_HEADER),
            Some("leave")
        );
        assert_eq!(leave.listeners, [(1, Arc::from("s1"))]);
        rooms.leave("/topic/room/a", 1, "s1", 5).unwrap();
        assert!(rooms.counts().is_empty(), "an empty room is forgotten");
    }

    #[test]
    fn big_rooms_keep_counts_but_send_no_events() {
        let mut rooms = Rooms::new(Vec::new(), 2);
        for session in 1..=2 {
            let change = rooms.join(
                "/topic/big",
                "s".into(),
                member(session, "u"),
                true,
                session,
            );
            assert!(change.event.is_some());
        }
        let third = rooms.join("/topic/big", "s".into(), member(3, "u"), true, 3);
        assert!(third.event.is_none(), "above the limit");
        assert_eq!(third.count, 3);
        assert!(rooms.snapshot("/topic/big", 4).is_none());
        let leave = rooms.leave("/topic/big", 3, "s", 5).unwrap();
        assert!(
            leave.event.is_none(),
            "from 3 to 2: still counted as a big room"
        );
        assert!(
            rooms
                .leave("/topic/big", 2, "s", 6)
                .unwrap()
                .event
                .is_some()
        );
        assert_eq!(rooms.presence("/topic/big").count, 1);
    }
}
