//! The raw endpoints, connections and topics of one server, and the delivery of frames to
//! them. Frames are encoded once per publish and shared (`Bytes`) by every receiver's outbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::BytesMut;
use parking_lot::{Mutex, RwLock};

use super::endpoint::{RawEndpoint, RawEndpointOptions};
use super::topics::TopicRegistry;
use crate::broker::outbox::{CloseReason, LossyPush, Outbound, Outbox, PushError};
use crate::broker::shared_frame::SharedFrame;
use crate::broker::stats::{self, Counters};
use crate::broker::{Congestion, SlowConsumerPolicy};
use crate::error::{Error, Result};
use crate::ws::close::is_valid_received_code;
use crate::ws::codes;
use crate::ws::decoder::WsLimits;
use crate::ws::frame::{OpCode, encode_frame};
use crate::ws::handshake::HandshakeConfig;

/// Encodes one complete, unmasked, final data frame (header and payload in one buffer, so a
/// receiver's writer hands it to the socket as a single slice).
pub fn encode_data_frame(payload: &[u8], binary: bool) -> Arc<SharedFrame> {
    let opcode = if binary { OpCode::Binary } else { OpCode::Text };
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    encode_frame(opcode, payload, &mut out);
    let header_len = out.len() - payload.len();
    Arc::new(SharedFrame::new(out.freeze(), header_len, binary))
}

/// One open raw connection as the rest of the server sees it.
#[derive(Debug)]
pub struct RawConn {
    pub(crate) id: u64,
    pub(crate) endpoint: Arc<RawEndpoint>,
    pub(crate) outbox: Arc<Outbox>,
    user_data: AtomicU64,
    /// The first close decided (code, reason), reported in `RawClose`.
    close: Mutex<Option<(u16, String)>>,
}

impl RawConn {
    /// Remembers why the connection closes unless a reason was recorded before.
    pub(crate) fn record_close(&self, code: u16, reason: &str) {
        let mut close = self.close.lock();
        if close.is_none() {
            *close = Some((code, reason.to_owned()));
        }
    }

    /// The recorded close; else 1008 when its queue was closed as a slow consumer (by a
    /// publisher that found it stuck), else 1006 (closed without a close handshake).
    pub(crate) fn close_reason(&self) -> (u16, String) {
        self.close.lock().clone().unwrap_or_else(|| {
            if self.outbox.was_slow_consumer() {
                (codes::POLICY_VIOLATION, SLOW_CONSUMER.to_owned())
            } else {
                (codes::ABNORMAL_CLOSURE, String::new())
            }
        })
    }

    /// Queues `frame` under the endpoint's slow-consumer policy; true when it was queued.
    pub(crate) fn deliver(&self, frame: Arc<SharedFrame>, counters: &Counters) -> bool {
        let pushed = match self.endpoint.policy {
            SlowConsumerPolicy::Disconnect => {
                // The close slot is held across the push: a reader that sees the overflow's
                // close and finishes the connection at once must report this slow-consumer
                // close, not an abnormal one.
                let mut close = self.close.lock();
                let pushed = self.outbox.push_or_close_if_stuck(Outbound::WsFrame(frame));
                if pushed == Err(PushError::Overflow) && close.is_none() {
                    *close = Some((codes::POLICY_VIOLATION, SLOW_CONSUMER.to_owned()));
                }
                pushed.map(|()| LossyPush {
                    queued: true,
                    dropped: 0,
                })
            }
            policy => self
                .outbox
                .push_frame_lossy(frame, policy == SlowConsumerPolicy::DropOldest),
        };
        match pushed {
            Ok(LossyPush { queued, dropped }) => {
                stats::add(&counters.dropped, dropped as u64);
                queued
            }
            Err(PushError::Overflow) => {
                self.record_close(codes::POLICY_VIOLATION, SLOW_CONSUMER);
                stats::count_overflow(counters, &self.outbox);
                false
            }
            Err(PushError::Closed | PushError::Dropped) => false,
        }
    }

    /// Flow control: whether host sends to this connection should wait (its queue is
    /// congested under the disconnect policy; drop policies never make senders wait). A stuck
    /// queue is closed on the way as a slow consumer, and then does not count.
    pub(crate) fn is_congested(&self, counters: &Counters) -> bool {
        if self.endpoint.policy != SlowConsumerPolicy::Disconnect || !self.outbox.is_congested() {
            return false;
        }
        // The close slot is held across the close, as in `deliver`: the reader that sees it
        // and finishes the connection must report this slow-consumer close.
        let mut close = self.close.lock();
        if self.outbox.close_if_stuck() {
            close.get_or_insert_with(|| (codes::POLICY_VIOLATION, SLOW_CONSUMER.to_owned()));
            drop(close);
            stats::count_overflow(counters, &self.outbox);
            return false;
        }
        true
    }

    /// Queues `frame`, noting in `congestion` whether that left the queue congested.
    pub(crate) fn deliver_noting(
        &self,
        frame: Arc<SharedFrame>,
        counters: &Counters,
        congestion: &mut Congestion,
    ) -> bool {
        let queued = self.deliver(frame, counters);
        if self.endpoint.policy == SlowConsumerPolicy::Disconnect && self.outbox.is_congested() {
            congestion.push(self.outbox.clone());
        }
        queued
    }
}

/// The close reason of a raw connection whose queue overflowed (the outbox's own text).
const SLOW_CONSUMER: &str = "slow consumer: outbound queue full";

/// The connections of one endpoint by id.
type Members = HashMap<u64, Arc<RawConn>>;

/// What an endpoint takes from the server's configuration unless its options say otherwise.
#[derive(Debug, Clone, Copy)]
pub struct RawDefaults<'a> {
    /// The STOMP WebSocket path, which no raw endpoint may take.
    pub stomp_path: &'a str,
    /// Largest message, unless `RawEndpointOptions::max_message_size` is set.
    pub max_message_size: usize,
    /// Slow-consumer policy, unless `RawEndpointOptions::slow_consumer_policy` is set.
    pub slow_consumer_policy: SlowConsumerPolicy,
    /// Allowed `Origin` values (empty: any).
    pub allowed_origins: &'a [String],
    /// Accept permessage-deflate offers, unless `RawEndpointOptions::permessage_deflate` says.
    pub permessage_deflate: bool,
    /// Outbound messages below this size go uncompressed (unless the options say).
    pub deflate_threshold: usize,
    /// zlib level of outbound messages (unless the options say).
    pub deflate_level: u32,
}

/// Endpoints, connections, topics.
#[derive(Debug, Default)]
pub struct RawHub {
    endpoints: RwLock<HashMap<Arc<str>, Arc<RawEndpoint>>>,
    conns: RwLock<HashMap<u64, Arc<RawConn>>>,
    /// Members of each endpoint (what a broadcast endpoint sends to).
    members: RwLock<HashMap<Arc<str>, Members>>,
    topics: RwLock<TopicRegistry<Arc<RawConn>>>,
}

impl RawHub {
    /// Registers an endpoint at `path` (exact match of the request path).
    pub fn add_endpoint(
        &self,
        config: &RawDefaults<'_>,
        path: &str,
        options: RawEndpointOptions,
    ) -> Result<Arc<RawEndpoint>> {
        if !path.starts_with('/') || path.contains('?') || path.contains(' ') {
            return Err(Error::InvalidArgument(format!(
                "raw endpoint path {path:?} must start with '/' and contain no query or space"
            )));
        }
        if path == config.stomp_path {
            return Err(Error::InvalidArgument(format!(
                "{path} is the STOMP WebSocket endpoint"
            )));
        }
        let max = options.max_message_size.unwrap_or(config.max_message_size);
        if options.deflate_level.is_some_and(|l| !(1..=9).contains(&l)) {
            return Err(Error::InvalidArgument(
                "deflate_level must be between 1 and 9".into(),
            ));
        }
        if max == 0 {
            return Err(Error::InvalidArgument(
                "max_message_size must be at least 1".into(),
            ));
        }
        let path: Arc<str> = Arc::from(path);
        let endpoint = Arc::new(RawEndpoint {
            path: path.clone(),
            behaviour: options.behaviour,
            policy: options
                .slow_consumer_policy
                .unwrap_or(config.slow_consumer_policy),
            limits: WsLimits {
                max_frame_size: max,
                max_message_size: max,
            },
            handshake: Arc::new(HandshakeConfig {
                path: path.to_string(),
                allowed_origins: config.allowed_origins.to_vec(),
                subprotocols: options.subprotocols,
                require_subprotocol: false,
                // Negotiated as on the STOMP endpoint: no context takeover either way, so a
                // shared frame is compressed once for every receiver.
                permessage_deflate: options
                    .permessage_deflate
                    .unwrap_or(config.permessage_deflate),
                ..HandshakeConfig::default()
            }),
            deflate_threshold: options
                .deflate_threshold
                .unwrap_or(config.deflate_threshold),
            deflate_level: options.deflate_level.unwrap_or(config.deflate_level),
            sockjs: options.sockjs,
        });
        let mut endpoints = self.endpoints.write();
        if endpoints.contains_key(&path) {
            return Err(Error::InvalidArgument(format!(
                "a raw endpoint is already registered at {path}"
            )));
        }
        endpoints.insert(path, endpoint.clone());
        Ok(endpoint)
    }

    /// The endpoint at exactly `path`.
    /// The endpoint served over SockJS whose prefix `path` is under (`/echo/info` for the
    /// endpoint `/echo`).
    pub fn sockjs_endpoint(&self, path: &str) -> Option<Arc<RawEndpoint>> {
        self.endpoints
            .read()
            .values()
            .find(|e| {
                e.sockjs.is_some()
                    && path
                        .strip_prefix(&*e.path)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .cloned()
    }

    pub fn endpoint(&self, path: &str) -> Option<Arc<RawEndpoint>> {
        self.endpoints.read().get(path).cloned()
    }

    /// Registers a new connection of `endpoint`.
    pub(crate) fn open(
        &self,
        id: u64,
        endpoint: Arc<RawEndpoint>,
        outbox: Arc<Outbox>,
    ) -> Arc<RawConn> {
        let conn = Arc::new(RawConn {
            id,
            endpoint,
            outbox,
            user_data: AtomicU64::new(0),
            close: Mutex::new(None),
        });
        self.conns.write().insert(id, conn.clone());
        self.members
            .write()
            .entry(conn.endpoint.path.clone())
            .or_default()
            .insert(id, conn.clone());
        conn
    }

    /// Forgets a connection: its id is stale from now on.
    pub(crate) fn remove(&self, conn: &RawConn) {
        // The id goes first: a `subscribe` racing with this either sees it gone, or subscribed
        // before the topics are cleaned below (it checks under the topics lock).
        self.conns.write().remove(&conn.id);
        self.topics.write().remove_connection(conn.id);
        let mut members = self.members.write();
        if let Some(of_endpoint) = members.get_mut(&conn.endpoint.path) {
            of_endpoint.remove(&conn.id);
            if of_endpoint.is_empty() {
                members.remove(&conn.endpoint.path);
            }
        }
    }

    fn conn(&self, id: u64) -> Result<Arc<RawConn>> {
        self.conns
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("raw connection {id}")))
    }

    /// Sends `frame` to every other member of `from`'s endpoint; returns how many queued it.
    pub(crate) fn broadcast_from(
        &self,
        from: &RawConn,
        frame: Arc<SharedFrame>,
        counters: &Counters,
        congestion: &mut Congestion,
    ) -> usize {
        let members = self.members.read();
        let Some(of_endpoint) = members.get(&from.endpoint.path) else {
            return 0;
        };
        let mut delivered = 0;
        for (id, conn) in of_endpoint {
            if *id != from.id && conn.deliver_noting(frame.clone(), counters, congestion) {
                delivered += 1;
            }
        }
        delivered
    }

    /// Subscribes a connection to `topic`; false when it already was.
    pub fn subscribe(&self, id: u64, topic: &str) -> Result<bool> {
        let conn = self.conn(id)?;
        let mut topics = self.topics.write();
        // Checked under the topic lock: a connection removed meanwhile must not be re-added.
        if !self.conns.read().contains_key(&id) {
            return Err(Error::NotFound(format!("raw connection {id}")));
        }
        Ok(topics.subscribe(topic, id, conn))
    }

    /// Unsubscribes a connection from `topic`; false when it was not subscribed.
    pub fn unsubscribe(&self, id: u64, topic: &str) -> Result<bool> {
        self.conn(id)?;
        Ok(self.topics.write().unsubscribe(topic, id))
    }

    /// Whether a connection is subscribed to `topic`.
    pub fn is_subscribed(&self, id: u64, topic: &str) -> Result<bool> {
        self.conn(id)?;
        Ok(self.topics.read().is_subscribed(topic, id))
    }

    /// Sends one message to every subscriber of `topic`; returns how many queued it.
    /// `Backpressure` (and nothing sent) while a subscriber's queue is congested.
    pub fn publish(
        &self,
        topic: &str,
        data: &[u8],
        binary: bool,
        counters: &Counters,
    ) -> Result<usize> {
        let topics = self.topics.read();
        if topics.subscriber_count(topic) == 0 {
            return Ok(0);
        }
        let congested = topics
            .subscribers(topic)
            .filter(|(_, conn)| conn.is_congested(counters))
            .count();
        if congested > 0 {
            stats::add(&counters.publishes_refused, 1);
            return Err(Error::Backpressure(format!(
                "{congested} subscriber(s) of raw topic {topic} are congested: retry later"
            )));
        }
        let frame = encode_data_frame(data, binary);
        stats::add(&counters.messages_in, 1);
        let delivered = topics
            .subscribers(topic)
            .filter(|(_, conn)| conn.deliver(frame.clone(), counters))
            .count();
        stats::add(&counters.messages_out, delivered as u64);
        Ok(delivered)
    }

    /// Sends one message to one connection. `Backpressure` when it was not queued (the
    /// connection is congested, or a slow consumer: closing, or dropping under its policy).
    pub fn send(&self, id: u64, data: &[u8], binary: bool, counters: &Counters) -> Result<()> {
        let conn = self.conn(id)?;
        if conn.is_congested(counters) {
            stats::add(&counters.publishes_refused, 1);
            return Err(Error::Backpressure(format!(
                "raw connection {id} is congested: retry later"
            )));
        }
        if conn.deliver(encode_data_frame(data, binary), counters) {
            stats::add(&counters.messages_out, 1);
            Ok(())
        } else {
            Err(Error::Backpressure(format!(
                "raw connection {id} did not take the message (closing or outbound queue full)"
            )))
        }
    }

    /// Closes a connection with `code` and `reason` after what is already queued.
    pub fn close(&self, id: u64, code: u16, reason: &str) -> Result<()> {
        if !is_valid_received_code(code) {
            return Err(Error::InvalidArgument(format!(
                "{code} is not a close code an endpoint may send (1000-1003, 1007-1014, 3000-4999)"
            )));
        }
        if reason.len() > 123 {
            return Err(Error::InvalidArgument(
                "a close reason is at most 123 bytes".into(),
            ));
        }
        let conn = self.conn(id)?;
        conn.record_close(code, reason);
        let reason = if reason.is_empty() {
            CloseReason {
                code,
                ..CloseReason::normal()
            }
        } else {
            CloseReason::error(code, reason)
        };
        conn.outbox.close(reason);
        Ok(())
    }

    /// Stores the host's value for a connection.
    pub fn set_user_data(&self, id: u64, value: u64) -> Result<()> {
        self.conn(id)?.user_data.store(value, Relaxed);
        Ok(())
    }

    /// The host's value for a connection (0 until set).
    pub fn user_data(&self, id: u64) -> Result<u64> {
        Ok(self.conn(id)?.user_data.load(Relaxed))
    }

    /// Bytes queued for a connection and not yet handed to its socket.
    pub fn buffered_bytes(&self, id: u64) -> Result<usize> {
        Ok(self.conn(id)?.outbox.queued_bytes())
    }

    #[cfg(test)]
    /// Open raw connections.
    pub fn connection_count(&self) -> usize {
        self.conns.read().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawBehaviour;

    const DEFAULTS: RawDefaults<'static> = RawDefaults {
        stomp_path: "/ws",
        max_message_size: 1 << 20,
        slow_consumer_policy: SlowConsumerPolicy::Disconnect,
        allowed_origins: &[],
        permessage_deflate: true,
        deflate_threshold: 256,
        deflate_level: 6,
    };

    fn hub_with(behaviour: RawBehaviour, policy: SlowConsumerPolicy) -> (RawHub, Arc<RawEndpoint>) {
        let hub = RawHub::default();
        let endpoint = hub
            .add_endpoint(
                &DEFAULTS,
                "/raw",
                RawEndpointOptions {
                    behaviour,
                    slow_consumer_policy: Some(policy),
                    ..Default::default()
                },
            )
            .unwrap();
        (hub, endpoint)
    }

    fn drain(outbox: &Outbox) -> Vec<Outbound> {
        let mut out = Vec::new();
        outbox.try_drain(&mut out, 1000);
        out
    }

    #[test]
    fn data_frames_are_complete_and_unmasked() {
        assert_eq!(&encode_data_frame(b"hi", false).frame()[..], b"\x81\x02hi");
        assert_eq!(&encode_data_frame(b"", true).frame()[..], b"\x82\x00");
        let big = encode_data_frame(&[7; 300], true);
        assert_eq!(&big.frame()[..4], b"\x82\x7e\x01\x2c");
        assert_eq!(big.wire_len(), 304);
        assert_eq!((big.payload_len(), big.is_binary()), (300, true));
    }

    #[test]
    fn endpoint_paths_are_checked() {
        let hub = RawHub::default();
        let config = DEFAULTS;
        assert!(
            hub.add_endpoint(&config, "raw", Default::default())
                .is_err()
        );
        assert!(
            hub.add_endpoint(&config, "/ws", Default::default())
                .is_err(),
            "STOMP path"
        );
        assert!(
            hub.add_endpoint(&config, "/a?b", Default::default())
                .is_err()
        );
        assert!(hub.add_endpoint(&config, "/a", Default::default()).is_ok());
        assert!(
            hub.add_endpoint(&config, "/a", Default::default()).is_err(),
            "twice"
        );
        assert!(hub.endpoint("/a").is_some());
        assert!(hub.endpoint("/a/").is_none(), "exact match");
    }

    #[test]
    fn publish_shares_one_frame_and_skips_others() {
        let (hub, endpoint) = hub_with(RawBehaviour::Host, SlowConsumerPolicy::Disconnect);
        let counters = Counters::default();
        let a = hub.open(1, endpoint.clone(), Arc::new(Outbox::new(10, 1 << 20)));
        let b = hub.open(2, endpoint.clone(), Arc::new(Outbox::new(10, 1 << 20)));
        let c = hub.open(3, endpoint, Arc::new(Outbox::new(10, 1 << 20)));
        assert!(hub.subscribe(1, "t").unwrap());
        assert!(hub.subscribe(2, "t").unwrap());
        assert_eq!(hub.publish("t", b"x", true, &counters).unwrap(), 2);
        let (fa, fb) = (drain(&a.outbox), drain(&b.outbox));
        match (&fa[..], &fb[..]) {
            ([Outbound::WsFrame(x)], [Outbound::WsFrame(y)]) => {
                assert_eq!(&x.frame()[..], b"\x82\x01x");
                assert!(Arc::ptr_eq(x, y), "one encoding shared by both");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(drain(&c.outbox).is_empty());
        assert_eq!(hub.publish("nobody", b"x", true, &counters).unwrap(), 0);
    }

    #[test]
    fn broadcast_goes_to_every_other_member() {
        let (hub, endpoint) = hub_with(RawBehaviour::Broadcast, SlowConsumerPolicy::Disconnect);
        let counters = Counters::default();
        let conns: Vec<_> = (1..=3)
            .map(|id| hub.open(id, endpoint.clone(), Arc::new(Outbox::new(10, 1 << 20))))
            .collect();
        let frame = encode_data_frame(b"m", false);
        assert_eq!(
            hub.broadcast_from(&conns[0], frame, &counters, &mut Vec::new()),
            2
        );
        assert!(drain(&conns[0].outbox).is_empty(), "not back to the sender");
        assert_eq!(drain(&conns[1].outbox).len(), 1);
        assert_eq!(drain(&conns[2].outbox).len(), 1);
    }

    #[test]
    fn removed_connections_are_stale() {
        let (hub, endpoint) = hub_with(RawBehaviour::Host, SlowConsumerPolicy::Disconnect);
        let counters = Counters::default();
        let conn = hub.open(5, endpoint, Arc::new(Outbox::new(10, 1 << 20)));
        hub.subscribe(5, "t").unwrap();
        hub.set_user_data(5, 42).unwrap();
        assert_eq!(hub.user_data(5).unwrap(), 42);
        hub.remove(&conn);
        assert!(matches!(hub.user_data(5), Err(Error::NotFound(_))));
        assert!(matches!(hub.subscribe(5, "t"), Err(Error::NotFound(_))));
        assert!(matches!(
            hub.send(5, b"x", false, &counters),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(hub.close(5, 1000, ""), Err(Error::NotFound(_))));
        assert_eq!(hub.publish("t", b"x", false, &counters).unwrap(), 0);
        assert_eq!(hub.connection_count(), 0);
    }

    #[test]
    fn slow_consumer_policies() {
        // Connection 1 with room for two frames, sent "1", "2" and "3": the results of the sends.
        let send_three_to_room_for_two = |policy| {
            let (hub, endpoint) = hub_with(RawBehaviour::Host, policy);
            let conn = hub.open(1, endpoint, Arc::new(Outbox::new(2, 1 << 20)));
            let counters = Counters::default();
            let sent = [b"1", b"2", b"3"].map(|m| hub.send(1, m, false, &counters));
            (conn, sent)
        };

        // Disconnect: the overflow closes the connection with 1008.
        let (conn, sent) = send_three_to_room_for_two(SlowConsumerPolicy::Disconnect);
        assert!(
            matches!(sent, [Ok(()), Ok(()), Err(Error::Backpressure(_))]),
            "{sent:?}"
        );
        assert!(conn.outbox.is_closing());
        assert_eq!(conn.close_reason().0, codes::POLICY_VIOLATION);

        // Drop-oldest: the newest frames are kept.
        let (conn, sent) = send_three_to_room_for_two(SlowConsumerPolicy::DropOldest);
        assert!(matches!(sent, [Ok(()), Ok(()), Ok(())]), "{sent:?}");
        let kept: Vec<bytes::Bytes> = drain(&conn.outbox)
            .into_iter()
            .map(|o| match o {
                Outbound::WsFrame(f) => f.frame().clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kept,
            [
                encode_data_frame(b"2", false).frame().clone(),
                encode_data_frame(b"3", false).frame().clone()
            ]
        );

        // Drop-newest: the queued frames are kept, the new one refused.
        let (conn, sent) = send_three_to_room_for_two(SlowConsumerPolicy::DropNewest);
        assert!(
            matches!(sent, [Ok(()), Ok(()), Err(Error::Backpressure(_))]),
            "{sent:?}"
        );
        assert!(!conn.outbox.is_closing());
        assert_eq!(drain(&conn.outbox).len(), 2);
    }

    #[test]
    fn close_codes_are_checked() {
        let (hub, endpoint) = hub_with(RawBehaviour::Host, SlowConsumerPolicy::Disconnect);
        let conn = hub.open(1, endpoint, Arc::new(Outbox::new(2, 1 << 20)));
        assert!(matches!(
            hub.close(1, 1006, ""),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            hub.close(1, 1000, &"x".repeat(124)),
            Err(Error::InvalidArgument(_))
        ));
        hub.close(1, 4000, "bye").unwrap();
        assert_eq!(conn.close_reason(), (4000, "bye".to_owned()));
        assert!(conn.outbox.is_closing());
    }
}
