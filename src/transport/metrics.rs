//! `/metrics`: the server's counters in the Prometheus text format.

use std::fmt::Write;

use crate::broker::Stats;

/// Renders `stats` (and the number of open SockJS sessions) as Prometheus text.
pub(crate) fn render(stats: &Stats, sockjs_sessions: usize) -> String {
    let rows: [(&str, &str, &str, u64); 12] = [
        (
            "connections",
            "gauge",
            "Open connections.",
            stats.connections,
        ),
        (
            "connections_total",
            "counter",
            "Connections accepted since start.",
            stats.connections_total,
        ),
        (
            "connections_refused_total",
            "counter",
            "Connections refused at a connection limit.",
            stats.connections_refused,
        ),
        (
            "sessions",
            "gauge",
            "STOMP sessions past CONNECT.",
            stats.sessions,
        ),
        (
            "subscriptions",
            "gauge",
            "Active client subscriptions.",
            stats.subscriptions,
        ),
        (
            "messages_in_total",
            "counter",
            "Messages published.",
            stats.messages_in,
        ),
        (
            "messages_out_total",
            "counter",
            "MESSAGE frames queued to subscribers.",
            stats.messages_out,
        ),
        (
            "bytes_in_total",
            "counter",
            "Bytes read from clients.",
            stats.bytes_in,
        ),
        (
            "bytes_out_total",
            "counter",
            "Bytes written to clients.",
            stats.bytes_out,
        ),
        (
            "dropped_total",
            "counter",
            "Messages discarded.",
            stats.dropped,
        ),
        (
            "slow_consumer_disconnects_total",
            "counter",
            "Sessions closed as slow consumers.",
            stats.slow_consumer_disconnects,
        ),
        (
            "sockjs_sessions",
            "gauge",
            "Open SockJS sessions over HTTP transports.",
            sockjs_sessions as u64,
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        let _ = writeln!(out, "# HELP wsbroker_{name} {help}");
        let _ = writeln!(out, "# TYPE wsbroker_{name} {kind}");
        let _ = writeln!(out, "wsbroker_{name} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_every_counter() {
        let stats = crate::broker::Stats {
            connections: 3,
            ..Default::default()
        };
        let text = super::render(&stats, 2);
        assert!(text.contains("# TYPE wsbroker_connections gauge\nwsbroker_connections 3\n"));
        assert!(text.contains("wsbroker_sockjs_sessions 2\n"));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 12);
    }
}
