//! How a publication travels between nodes: a version byte, the publishing instance, the
//! routing key, the destination subscribers see, the sender's headers and the body, each
//! length-prefixed. History positions are left out: every node numbers its own history.

use bytes::Bytes;

use crate::broker::Message;
use crate::broker::history::{EPOCH_HEADER, OFFSET_HEADER, RECOVERED_HEADER};
use crate::broker::wire::{self, Reader};

const VERSION: u8 = 1;

/// A publication from another node.
#[derive(Debug, PartialEq, Eq)]
pub struct Publication {
    /// The publishing instance.
    pub origin: String,
    /// Routing key.
    pub route: String,
    /// The destination subscribers see.
    pub destination: String,
    /// The sender's headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

fn is_position(name: &str) -> bool {
    name == OFFSET_HEADER || name == EPOCH_HEADER || name == RECOVERED_HEADER
}

/// Encodes a publication of `origin` to `route`.
pub fn encode(origin: &str, route: &str, message: &Message) -> Vec<u8> {
    let headers: Vec<&(String, String)> = message
        .headers()
        .iter()
        .filter(|(name, _)| !is_position(name))
        .collect();
    let mut out = Vec::with_capacity(
        1 + 12
            + origin.len()
            + route.len()
            + message.destination().len()
            + 4
            + headers
                .iter()
                .map(|(n, v)| 8 + n.len() + v.len())
                .sum::<usize>()
            + message.body().len(),
    );
    out.push(VERSION);
    wire::put_bytes(&mut out, origin.as_bytes());
    wire::put_bytes(&mut out, route.as_bytes());
    wire::put_bytes(&mut out, message.destination().as_bytes());
    wire::put_headers(&mut out, headers.into_iter());
    out.extend_from_slice(message.body());
    out
}

/// Decodes what [`encode`] wrote; `None` for a damaged or foreign payload.
pub fn decode(data: &Bytes) -> Option<Publication> {
    let mut reader = Reader::new(data);
    if reader.take(1)? != [VERSION] {
        return None;
    }
    let origin = reader.string()?;
    let route = reader.string()?;
    let destination = reader.string()?;
    let headers = reader.headers()?;
    let body = data.slice(data.len() - reader.data.len()..);
    Some(Publication {
        origin,
        route,
        destination,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publications_round_trip_without_positions_and_damage_is_refused() {
        let message = Message::new(
            7,
            "/user/queue/inbox",
            vec![
                ("x-offset".into(), "3".into()),
                ("x-epoch".into(), "e".into()),
                ("k".into(), "v:é".into()),
            ],
            Bytes::from_static(b"\x00body\xff"),
            Some(1),
        );
        let data = Bytes::from(encode("node-a#1", "/user/alice/queue/inbox", &message));
        let back = decode(&data).unwrap();
        assert_eq!(
            back,
            Publication {
                origin: "node-a#1".into(),
                route: "/user/alice/queue/inbox".into(),
                destination: "/user/queue/inbox".into(),
                headers: vec![("k".into(), "v:é".into())],
                body: Bytes::from_static(b"\x00body\xff"),
            }
        );
        for cut in [0, 1, 4, 9, 20, 40] {
            assert!(decode(&data.slice(..cut)).is_none(), "cut at {cut}");
        }
        let mut foreign = data.to_vec();
        foreign[0] = b'{';
        assert!(decode(&Bytes::from(foreign)).is_none());
    }
}
