//! The STOMP session's own settings: heart-beats, application prefixes, transaction limits.

use std::time::Duration;

/// What every STOMP session of a server is configured with. `SessionConfig::default()` is
/// what `ServerConfig::default()` uses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Destination prefixes handed to the host's application handlers instead of subscribers.
    /// Default `["/app"]`; see [`SessionConfig::add_app_prefix`].
    pub app_prefixes: Vec<String>,
    /// Heart-beat the server offers to send (STOMP `heart-beat` cx); zero disables. Default 10 s.
    pub heartbeat_send: Duration,
    /// Heart-beat the server wants to receive (STOMP `heart-beat` cy); zero disables.
    /// Default 10 s.
    pub heartbeat_receive: Duration,
    /// Most frames buffered inside one transaction. Default 10,000.
    pub max_transaction_frames: usize,
    /// Most transactions open at once in one session. Default 16.
    pub max_open_transactions: usize,
    /// Whether `app_prefixes` still holds the default (the first `add_app_prefix` replaces it).
    default_app_prefixes: bool,
}

/// The application prefix every server has until it is given its own.
pub const DEFAULT_APP_PREFIX: &str = "/app";

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            app_prefixes: vec![DEFAULT_APP_PREFIX.into()],
            heartbeat_send: Duration::from_secs(10),
            heartbeat_receive: Duration::from_secs(10),
            max_transaction_frames: 10_000,
            max_open_transactions: 16,
            default_app_prefixes: true,
        }
    }
}

impl SessionConfig {
    /// Adds an application destination prefix. The first call replaces the default `/app`
    /// (a host that names its prefixes gets exactly those); later calls add to the list.
    pub fn add_app_prefix(&mut self, prefix: impl Into<String>) {
        if std::mem::take(&mut self.default_app_prefixes) {
            self.app_prefixes.clear();
        }
        self.app_prefixes.push(prefix.into());
    }

    /// The server's heart-beat offer in milliseconds: (can send, wants to receive).
    pub fn heartbeat_offer_ms(&self) -> (u32, u32) {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        (ms(self.heartbeat_send), ms(self.heartbeat_receive))
    }

    /// Checks every field; the error text names the first one out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.app_prefixes.iter().any(|p| !p.starts_with('/')) {
            return Err("every app prefix must start with '/'".into());
        }
        if self.max_transaction_frames == 0 {
            return Err("max_transaction_frames must be greater than 0".into());
        }
        if self.max_open_transactions == 0 {
            return Err("max_open_transactions must be greater than 0".into());
        }
        if self.heartbeat_send.as_millis() > u128::from(u32::MAX)
            || self.heartbeat_receive.as_millis() > u128::from(u32::MAX)
        {
            return Err("heart-beat intervals must fit in 32-bit milliseconds".into());
        }
        Ok(())
    }

    /// Whether `destination` goes to the host's application handlers: it starts with an app
    /// prefix at a path boundary (`/app` matches `/app` and `/app/x`, not `/apple`).
    pub fn is_app_destination(&self, destination: &str) -> bool {
        self.app_prefixes.iter().any(|prefix| {
            destination
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| {
                    rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/')
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_added_prefix_replaces_the_default() {
        let mut config = SessionConfig::default();
        assert_eq!(config.app_prefixes, ["/app"]);
        config.add_app_prefix("/game");
        config.add_app_prefix("/chat/");
        assert_eq!(config.app_prefixes, ["/game", "/chat/"]);
        assert!(config.is_app_destination("/game"));
        assert!(config.is_app_destination("/game/move"));
        assert!(!config.is_app_destination("/gamer"));
        assert!(config.is_app_destination("/chat/x"));
        assert!(!config.is_app_destination("/app/x"));
    }
}
