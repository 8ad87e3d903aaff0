//! Settings of relay mode: which external broker, as whom, and which destinations go there.

use std::time::Duration;

use crate::error::{Error, Result};

/// Relay mode: destinations under [`RelayConfig::prefixes`] live on an external STOMP broker
/// (RabbitMQ, ActiveMQ) instead of the in-process one, so several wsbroker instances can share
/// them. Every client session gets its own STOMP-over-TCP connection to that broker; host
/// publishes and host subscriptions share one "system" connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayConfig {
    /// The broker's STOMP endpoint, `HOST:PORT` (RabbitMQ's `rabbitmq_stomp`: 61613).
    pub broker: String,
    /// Login of the client sessions' broker connections (every client uses the same one; the
    /// client's own credentials are checked by wsbroker's connect decision, not by the broker).
    pub login: String,
    /// Passcode of the client sessions' broker connections.
    pub passcode: String,
    /// Login of the shared system connection.
    pub system_login: String,
    /// Passcode of the shared system connection.
    pub system_passcode: String,
    /// Sent as the `host` header of every CONNECT (RabbitMQ: the virtual host). When `None`
    /// no `host` header is sent and the broker uses its default virtual host (as Spring's
    /// relay does: RabbitMQ would take a host name there for a virtual host that does not exist).
    pub virtual_host: Option<String>,
    /// Heart-beat wsbroker offers to send on broker connections; zero disables.
    pub heartbeat_send: Duration,
    /// Heart-beat wsbroker wants from the broker; zero disables.
    pub heartbeat_receive: Duration,
    /// Destination prefixes that are relayed; everything else (`/app`, `/user`, ...) stays local.
    pub prefixes: Vec<String>,
    /// Time allowed to open a broker connection and get its CONNECTED.
    pub connect_timeout: Duration,
    /// When the broker connection of a live client session drops, reconnect it and
    /// re-subscribe its subscriptions instead of closing the client.
    pub session_restore: bool,
    /// How long session restore keeps trying before it gives up and closes the client.
    pub restore_timeout: Duration,
    /// First delay between reconnect attempts (doubles up to `reconnect_max_delay`).
    pub reconnect_initial_delay: Duration,
    /// Longest delay between reconnect attempts.
    pub reconnect_max_delay: Duration,
    /// Most client frames waiting for a session's broker connection (during connect or restore);
    /// one more closes the session with an ERROR.
    pub max_pending_frames: usize,
}

/// Prefixes relayed by default (those RabbitMQ and ActiveMQ understand).
pub const DEFAULT_PREFIXES: [&str; 6] = [
    "/topic",
    "/queue",
    "/exchange",
    "/amq/queue",
    "/temp-queue",
    "/reply-queue",
];

impl RelayConfig {
    /// Relaying to `broker` (`HOST:PORT`) with RabbitMQ's default `guest` credentials.
    pub fn new(broker: impl Into<String>) -> RelayConfig {
        RelayConfig {
            broker: broker.into(),
            login: "guest".into(),
            passcode: "guest".into(),
            system_login: "guest".into(),
            system_passcode: "guest".into(),
            virtual_host: None,
            heartbeat_send: Duration::from_secs(10),
            heartbeat_receive: Duration::from_secs(10),
            prefixes: DEFAULT_PREFIXES
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            connect_timeout: Duration::from_secs(10),
            session_restore: false,
            restore_timeout: Duration::from_secs(30),
            reconnect_initial_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
            max_pending_frames: 1024,
        }
    }

    /// The `host` header of CONNECT frames, if any.
    pub fn host_header(&self) -> Option<&str> {
        self.virtual_host.as_deref()
    }

    /// Checks every field; the error names the first that is out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::InvalidConfig(format!("relay: {msg}")));
        match self.broker.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => return bad("broker must be HOST:PORT"),
        }
        if self.prefixes.is_empty() || self.prefixes.iter().any(|p| !p.starts_with('/')) {
            return bad("prefixes must be non-empty and each must start with '/'");
        }
        if self.connect_timeout.is_zero() || self.restore_timeout.is_zero() {
            return bad("connect_timeout and restore_timeout must be greater than 0");
        }
        if self.reconnect_initial_delay.is_zero()
            || self.reconnect_max_delay < self.reconnect_initial_delay
        {
            return bad("reconnect delays must be > 0 and max >= initial");
        }
        if self.max_pending_frames == 0 {
            return bad("max_pending_frames must be greater than 0");
        }
        if self.heartbeat_send.as_millis() > u32::MAX as u128
            || self.heartbeat_receive.as_millis() > u32::MAX as u128
        {
            return bad("heart-beat intervals must fit in 32-bit milliseconds");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_host_header_is_the_virtual_host() {
        let config = RelayConfig::new("127.0.0.1:61613");
        config.validate().unwrap();
        assert_eq!(config.host_header(), None);
        let vhost = RelayConfig {
            virtual_host: Some("/".into()),
            ..config
        };
        assert_eq!(vhost.host_header(), Some("/"));
    }

    #[test]
    fn bad_values_are_named() {
        for broker in ["localhost", ":61613", "h:0", "h:x"] {
            let err = RelayConfig::new(broker).validate().unwrap_err().to_string();
            assert!(err.contains("HOST:PORT"), "{broker}: {err}");
        }
        let config = RelayConfig {
            prefixes: vec!["topic".into()],
            ..RelayConfig::new("h:1")
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("prefixes")
        );
    }
}
