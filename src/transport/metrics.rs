//! `/metrics`: the server's counters in the Prometheus text format.

use std::fmt::Write;

use crate::broker::Stats;

/// Per-destination history gauges are written for at most this many destinations (the
/// largest): a label per destination must not make the page unbounded.
const HISTORY_DESTINATIONS_SHOWN: usize = 50;

/// Renders `stats`, the number of open SockJS sessions and the history sizes (destination,
/// retained messages) as Prometheus text.
pub(crate) fn render(
    stats: &Stats,
    sockjs_sessions: usize,
    mut history: Vec<(String, usize)>,
) -> String {
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
    if !history.is_empty() {
        let total: usize = history.iter().map(|(_, n)| n).sum();
        let _ = writeln!(
            out,
            "# HELP wsbroker_history_destinations Destinations keeping a message history.\n\
             # TYPE wsbroker_history_destinations gauge\nwsbroker_history_destinations {}",
            history.len()
        );
        let _ = writeln!(
            out,
            "# HELP wsbroker_history_retained Messages retained in histories.\n\
             # TYPE wsbroker_history_retained gauge\nwsbroker_history_retained {total}"
        );
        history.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let _ = writeln!(
            out,
            "# HELP wsbroker_history_destination_retained Messages retained per destination \
             (the {HISTORY_DESTINATIONS_SHOWN} largest).\n\
             # TYPE wsbroker_history_destination_retained gauge"
        );
        for (destination, n) in history.iter().take(HISTORY_DESTINATIONS_SHOWN) {
            let _ = writeln!(
                out,
                "wsbroker_history_destination_retained{{destination=\"{}\"}} {n}",
                label_value(destination)
            );
        }
    }
    out
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_every_counter() {
        let stats = crate::broker::Stats {
            connections: 3,
            ..Default::default()
        };
        let text = super::render(&stats, 2, Vec::new());
        assert!(text.contains("# TYPE wsbroker_connections gauge\nwsbroker_connections 3\n"));
        assert!(text.contains("wsbroker_sockjs_sessions 2\n"));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 18);
    }

    #[test]
    fn history_sizes_are_gauges_with_escaped_labels() {
        let history = vec![("/topic/a".to_string(), 3), ("/topic/\"b\"".to_string(), 7)];
        let text = super::render(&crate::broker::Stats::default(), 0, history);
        assert!(text.contains("wsbroker_history_destinations 2\n"));
        assert!(text.contains("wsbroker_history_retained 10\n"));
        let b = text.find("destination=\"/topic/\\\"b\\\"\"} 7").unwrap();
        let a = text.find("destination=\"/topic/a\"} 3").unwrap();
        assert!(b < a, "largest first");
    }
}
