//! `/metrics`: the server's counters in the Prometheus text format.

use std::fmt::Write;

use crate::broker::Stats;

/// Renders `stats` (and the number of open SockJS sessions) as Prometheus text.
pub(crate) fn render(stats: &Stats, sockjs_sessions: usize) -> String {
    let mut rows = stats.metrics();
    rows.push((
        "sockjs_sessions",
        "gauge",
        "Open SockJS sessions over HTTP transports.",
        sockjs_sessions as u64,
    ));
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
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 14);
    }
}
