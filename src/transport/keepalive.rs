//! WebSocket keepalive, shared by STOMP and raw connections: a ping after `ws_ping_interval`
//! of silence from the peer, and a close after `idle_timeout` of it (zero turns either off).

use std::time::Duration;

use tokio::time::Instant;

/// What an expired keepalive timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeepaliveDue {
    /// Nothing yet.
    Nothing,
    /// Send a ping (once per silence).
    Ping,
    /// Close the connection: the peer has been silent for the idle timeout.
    Idle,
}

/// The two intervals (zero: off), from the server's configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeepaliveTimes {
    pub(super) idle_timeout: Duration,
    pub(super) ping_interval: Duration,
}

impl KeepaliveTimes {
    /// The WebSocket keepalive of `config`.
    pub(super) fn of(config: &crate::config::ServerConfig) -> KeepaliveTimes {
        KeepaliveTimes {
            idle_timeout: config.idle_timeout,
            ping_interval: config.ws_ping_interval,
        }
    }

    /// No keepalive (plain TCP: STOMP heart-beats only).
    pub(super) const OFF: KeepaliveTimes = KeepaliveTimes {
        idle_timeout: Duration::ZERO,
        ping_interval: Duration::ZERO,
    };
}

/// When the peer was last heard from, and whether it was pinged since. The intervals are
/// passed in rather than kept: every connection's long-lived state holds one of these.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keepalive {
    last_read: Instant,
    ping_sent: bool,
}

impl Keepalive {
    pub(super) fn new() -> Keepalive {
        Keepalive {
            last_read: Instant::now(),
            ping_sent: false,
        }
    }

    /// The peer sent something (or a pause of ours ended: it does not count as silence).
    pub(super) fn heard(&mut self) {
        self.last_read = Instant::now();
        self.ping_sent = false;
    }

    /// When the peer was last heard from.
    pub(super) fn last_read(&self) -> Instant {
        self.last_read
    }

    /// The next instant a keepalive timer expires, if any.
    pub(super) fn deadline(&self, times: KeepaliveTimes) -> Option<Instant> {
        let idle = (!times.idle_timeout.is_zero()).then(|| self.last_read + times.idle_timeout);
        let ping = (!times.ping_interval.is_zero() && !self.ping_sent)
            .then(|| self.last_read + times.ping_interval);
        match (idle, ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is due at `now`; a due ping counts as sent.
    pub(super) fn due(&mut self, times: KeepaliveTimes, now: Instant) -> KeepaliveDue {
        if !times.idle_timeout.is_zero() && now >= self.last_read + times.idle_timeout {
            return KeepaliveDue::Idle;
        }
        if !times.ping_interval.is_zero()
            && !self.ping_sent
            && now >= self.last_read + times.ping_interval
        {
            self.ping_sent = true;
            return KeepaliveDue::Ping;
        }
        KeepaliveDue::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_once_per_silence_then_closes_when_idle() {
        let times = KeepaliveTimes {
            idle_timeout: Duration::from_secs(70),
            ping_interval: Duration::from_secs(25),
        };
        let mut keepalive = Keepalive::new();
        let start = keepalive.last_read();
        let at = |s| start + Duration::from_secs(s);
        assert_eq!(keepalive.deadline(times), Some(at(25)));
        assert_eq!(keepalive.due(times, at(24)), KeepaliveDue::Nothing);
        assert_eq!(keepalive.due(times, at(25)), KeepaliveDue::Ping);
        assert_eq!(keepalive.due(times, at(30)), KeepaliveDue::Nothing);
        assert_eq!(keepalive.deadline(times), Some(at(70)));
        assert_eq!(keepalive.due(times, at(70)), KeepaliveDue::Idle);
        tokio::time::advance(Duration::from_secs(71)).await;
        keepalive.heard();
        assert_eq!(
            keepalive.deadline(times),
            Some(keepalive.last_read() + Duration::from_secs(25))
        );
    }

    #[test]
    fn zero_turns_each_timer_off() {
        let mut keepalive = Keepalive::new();
        assert_eq!(keepalive.deadline(KeepaliveTimes::OFF), None);
        let ping_only = KeepaliveTimes {
            ping_interval: Duration::from_secs(1),
            ..KeepaliveTimes::OFF
        };
        let later = keepalive.last_read() + Duration::from_secs(3600);
        assert_eq!(keepalive.due(ping_only, later), KeepaliveDue::Ping);
        assert_eq!(keepalive.due(ping_only, later), KeepaliveDue::Nothing);
    }
}
