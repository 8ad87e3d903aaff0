//! The raw-mode methods of [`Server`] (kept apart from the STOMP facade).

use super::Server;
use crate::error::{Error, Result};
use crate::raw::{RawBehaviour, RawDefaults, RawEndpointOptions};

impl Server {
    /// Registers a raw WebSocket endpoint at `path` (exact match of the request path; not the
    /// STOMP path). May be called before or after `start`. A [`RawBehaviour::Host`] endpoint
    /// needs event delivery (`enable_events` or `enable_event_callback`, called first): its
    /// connections' messages arrive as [`crate::events::Event::RawMessage`]. Every raw
    /// endpoint reports `RawOpen` and `RawClose` when event delivery is on. The upgrade hook
    /// ([`Server::on_upgrade`]) decides on raw upgrades too; its principal is `RawOpen::user`.
    /// Connection limits, Origin checks, TLS, idle timeout and pings apply as on the STOMP
    /// endpoint.
    pub fn add_raw_endpoint(&self, path: &str, options: RawEndpointOptions) -> Result<()> {
        if options.behaviour == RawBehaviour::Host && !self.engine.has_event_sink() {
            return Err(Error::InvalidArgument(
                "a host-driven raw endpoint needs event delivery: call enable_events or \
                 enable_event_callback first"
                    .into(),
            ));
        }
        let engine = &self.engine;
        let config = &engine.config;
        let defaults = RawDefaults {
            stomp_path: &config.path,
            max_message_size: config.max_ws_message_size(),
            slow_consumer_policy: config.broker.slow_consumer_policy,
            allowed_origins: &config.allowed_origins,
            permessage_deflate: config.permessage_deflate,
            deflate_threshold: config.deflate_threshold,
            deflate_level: config.deflate_level,
        };
        engine.raw.add_endpoint(&defaults, path, options)?;
        Ok(())
    }

    /// Subscribes a raw connection to `topic` (exact name). Returns false when it already was.
    /// `NotFound` for a connection that is closed (ids are never reused).
    pub fn raw_subscribe(&self, conn: u64, topic: &str) -> Result<bool> {
        self.engine.raw.subscribe(conn, topic)
    }

    /// Unsubscribes a raw connection from `topic`. Returns false when it was not subscribed.
    pub fn raw_unsubscribe(&self, conn: u64, topic: &str) -> Result<bool> {
        self.engine.raw.unsubscribe(conn, topic)
    }

    /// Whether a raw connection is subscribed to `topic`.
    pub fn raw_is_subscribed(&self, conn: u64, topic: &str) -> Result<bool> {
        self.engine.raw.is_subscribed(conn, topic)
    }

    /// Sends `data` as one text (`binary` false; must be UTF-8) or binary message to every raw
    /// connection subscribed to `topic`. Never blocks; returns how many connections queued it
    /// (a slow consumer is handled by its endpoint's policy and not counted).
    pub fn raw_publish(&self, topic: &str, data: &[u8], binary: bool) -> Result<usize> {
        self.check_open()?;
        check_text(data, binary)?;
        let engine = &self.engine;
        engine.raw.publish(topic, data, binary, engine.counters())
    }

    /// Sends one message to one raw connection. Never blocks: `Backpressure` when it was not
    /// queued (the connection is closing, or its full queue dropped it under a drop policy).
    pub fn raw_send(&self, conn: u64, data: &[u8], binary: bool) -> Result<()> {
        self.check_open()?;
        check_text(data, binary)?;
        let engine = &self.engine;
        engine.raw.send(conn, data, binary, engine.counters())
    }

    /// Closes a raw connection with a WebSocket close `code` (1000-1003, 1007-1014,
    /// 3000-4999) and `reason` (at most 123 bytes) after what is already queued for it.
    pub fn raw_close(&self, conn: u64, code: u16, reason: &str) -> Result<()> {
        self.engine.raw.close(conn, code, reason)
    }

    /// Attaches a host value to a raw connection (0 until set).
    pub fn raw_set_user_data(&self, conn: u64, value: u64) -> Result<()> {
        self.engine.raw.set_user_data(conn, value)
    }

    /// The host value attached to a raw connection.
    pub fn raw_user_data(&self, conn: u64) -> Result<u64> {
        self.engine.raw.user_data(conn)
    }

    /// Bytes queued for a raw connection and not yet handed to its socket (uWebSockets'
    /// `getBufferedAmount`): a host can hold back while it grows.
    pub fn raw_buffered_bytes(&self, conn: u64) -> Result<usize> {
        self.engine.raw.buffered_bytes(conn)
    }
}

fn check_text(data: &[u8], binary: bool) -> Result<()> {
    if !binary && std::str::from_utf8(data).is_err() {
        return Err(Error::InvalidUtf8(
            "a text message must be valid UTF-8 (send it as binary)".into(),
        ));
    }
    Ok(())
}
