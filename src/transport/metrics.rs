//! `/metrics`: the server's counters in the Prometheus text format.

use std::fmt::Write;

use crate::broker::{JournalStats, Stats};
use crate::cluster::ClusterStats;

/// Per-destination gauges are written for at most this many destinations (the largest): a
/// label per destination must not make the page unbounded.
const DESTINATIONS_SHOWN: usize = 50;

/// Renders `stats`, the number of open SockJS sessions, the history sizes (destination,
/// retained messages) and the presence counts (destination, members) as Prometheus text.
pub(crate) fn render(
    stats: &Stats,
    sockjs_sessions: usize,
    history: Vec<(String, usize)>,
    presence: Vec<(String, usize)>,
    store: Option<JournalStats>,
    cluster: Option<ClusterStats>,
) -> String {
    let mut rows = stats.metrics();
    rows.push((
        "sockjs_sessions",
        "gauge",
        "Open SockJS sessions over HTTP transports.",
        sockjs_sessions as u64,
    ));
    if let Some(store) = store {
        rows.extend([
            (
                "store_backlog",
                "gauge",
                "Records waiting for the durable store's next commit.",
                store.backlog,
            ),
            (
                "store_commits_total",
                "counter",
                "Transactions the durable store committed.",
                store.commits,
            ),
            (
                "store_records_total",
                "counter",
                "Records the durable store committed.",
                store.records,
            ),
            (
                "store_failing",
                "gauge",
                "1 while the durable store's commits fail (they are retried).",
                u64::from(store.failing),
            ),
        ]);
    }
    if let Some(cluster) = cluster {
        rows.extend([
            (
                "cluster_available",
                "gauge",
                "1 while the cluster engine (Redis or NATS) is reachable.",
                u64::from(cluster.available),
            ),
            (
                "cluster_engine_subscriptions",
                "gauge",
                "Engine subscriptions this node holds (destinations and patterns).",
                cluster.engine_subscriptions,
            ),
            (
                "cluster_published_total",
                "counter",
                "Publications of this node handed to the cluster engine.",
                cluster.published,
            ),
            (
                "cluster_received_total",
                "counter",
                "Publications of other nodes received.",
                cluster.received,
            ),
            (
                "cluster_dropped_total",
                "counter",
                "Publications of this node the other nodes did not get (engine unreachable).",
                cluster.dropped,
            ),
            (
                "cluster_reconnects_total",
                "counter",
                "Times the link to the cluster engine was opened again after a loss.",
                cluster.reconnects,
            ),
        ]);
    }
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        let _ = writeln!(out, "# HELP wsbroker_{name} {help}");
        let _ = writeln!(out, "# TYPE wsbroker_{name} {kind}");
        let _ = writeln!(out, "wsbroker_{name} {value}");
    }
    destination_gauges(
        &mut out,
        history,
        ["history", "Destinations keeping a message history."],
        ["history_retained", "Messages retained in histories."],
        [
            "history_destination_retained",
            "Messages retained per destination",
        ],
    );
    destination_gauges(
        &mut out,
        presence,
        ["presence", "Destinations with presence members."],
        ["presence_members", "Presence members of all destinations."],
        [
            "presence_destination_members",
            "Presence members per destination",
        ],
    );
    out
}

/// Gauges of a per-destination quantity: how many destinations (`wsbroker_{count}_destinations`),
/// the total, and the value of each of the largest (names and help texts as given).
fn destination_gauges(
    out: &mut String,
    mut values: Vec<(String, usize)>,
    [count, count_help]: [&str; 2],
    [total, total_help]: [&str; 2],
    [each, each_help]: [&str; 2],
) {
    if values.is_empty() {
        return;
    }
    let sum: usize = values.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        out,
        "# HELP wsbroker_{count}_destinations {count_help}\n\
         # TYPE wsbroker_{count}_destinations gauge\nwsbroker_{count}_destinations {}",
        values.len()
    );
    let _ = writeln!(
        out,
        "# HELP wsbroker_{total} {total_help}\n# TYPE wsbroker_{total} gauge\nwsbroker_{total} {sum}"
    );
    values.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let _ = writeln!(
        out,
        "# HELP wsbroker_{each} {each_help} (the {DESTINATIONS_SHOWN} largest).\n\
         # TYPE wsbroker_{each} gauge"
    );
    for (destination, n) in values.iter().take(DESTINATIONS_SHOWN) {
        let _ = writeln!(
            out,
            "wsbroker_{each}{{destination=\"{}\"}} {n}",
            label_value(destination)
        );
    }
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
        let text = super::render(&stats, 2, Vec::new(), Vec::new(), None, None);
        assert!(text.contains("# TYPE wsbroker_connections gauge\nwsbroker_connections 3\n"));
        assert!(text.contains("wsbroker_sockjs_sessions 2\n"));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 18);
    }

    #[test]
    fn store_figures_appear_with_a_store() {
        let store = crate::broker::JournalStats {
            backlog: 4,
            commits: 9,
            records: 120,
            failing: true,
        };
        let stats = crate::broker::Stats::default();
        let text = super::render(&stats, 0, Vec::new(), Vec::new(), Some(store), None);
        for line in [
            "wsbroker_store_backlog 4\n",
            "# TYPE wsbroker_store_commits_total counter\nwsbroker_store_commits_total 9\n",
            "wsbroker_store_records_total 120\n",
            "wsbroker_store_failing 1\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
        assert!(!super::render(&stats, 0, Vec::new(), Vec::new(), None, None).contains("store_"));
    }

    #[test]
    fn cluster_figures_appear_in_cluster_mode() {
        let cluster = crate::cluster::ClusterStats {
            available: true,
            engine_subscriptions: 3,
            dropped: 5,
            ..Default::default()
        };
        let stats = crate::broker::Stats::default();
        let text = super::render(&stats, 0, Vec::new(), Vec::new(), None, Some(cluster));
        for line in [
            "wsbroker_cluster_available 1\n",
            "wsbroker_cluster_engine_subscriptions 3\n",
            "# TYPE wsbroker_cluster_dropped_total counter\nwsbroker_cluster_dropped_total 5\n",
            "wsbroker_cluster_reconnects_total 0\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
        assert!(!super::render(&stats, 0, Vec::new(), Vec::new(), None, None).contains("cluster_"));
    }

    #[test]
    fn history_and_presence_are_gauges_with_escaped_labels() {
        let history = vec![("/topic/a".to_string(), 3), ("/topic/\"b\"".to_string(), 7)];
        let presence = vec![("/topic/room".to_string(), 4)];
        let text = super::render(
            &crate::broker::Stats::default(),
            0,
            history,
            presence,
            None,
            None,
        );
        assert!(text.contains("wsbroker_history_destinations 2\n"));
        assert!(text.contains("wsbroker_presence_destinations 1\n"));
        assert!(text.contains("wsbroker_presence_members 4\n"));
        assert!(
            text.contains("wsbroker_presence_destination_members{destination=\"/topic/room\"} 4\n")
        );
        assert!(text.contains("wsbroker_history_retained 10\n"));
        let b = text.find("destination=\"/topic/\\\"b\\\"\"} 7").unwrap();
        let a = text.find("destination=\"/topic/a\"} 3").unwrap();
        assert!(b < a, "largest first");
    }
}
