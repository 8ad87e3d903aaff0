//! Dropped messages, tallied per subscription until they are reported to the host.
//!
//! A slow subscriber under a drop policy can lose thousands of messages a second; one event per
//! drop would flood the host's event queue (and push out the events that matter). So drops are
//! added up here, under a small lock, and a timer of the server takes the tallies every
//! [`DROP_REPORT_INTERVAL`]: the host gets at most one report per subscription per interval,
//! with the exact count, whatever the drop rate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// How often drop tallies are reported: quick enough for a host to react to a slow consumer,
/// slow enough that a flood costs a handful of events a second.
pub const DROP_REPORT_INTERVAL: Duration = Duration::from_millis(250);

/// Messages of one subscription dropped since the previous report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReport {
    /// The session.
    pub session: u64,
    /// The client's subscription id.
    pub subscription: Arc<str>,
    /// The destination of the last dropped message.
    pub destination: String,
    /// How many were dropped.
    pub count: u64,
}

/// A session and one of its subscription ids.
type SubscriptionKey = (u64, Arc<str>);

/// Pending drop tallies: the last dropped message's destination and the count.
#[derive(Debug, Default)]
pub struct DropLog {
    pending: Mutex<HashMap<SubscriptionKey, (String, u64)>>,
}

impl DropLog {
    /// Adds `n` drops of a subscription.
    pub fn record(&self, session: u64, subscription: &Arc<str>, destination: &str, n: u64) {
        let mut pending = self.pending.lock();
        let entry = pending
            .entry((session, subscription.clone()))
            .or_insert_with(|| (destination.to_string(), 0));
        if entry.0 != destination {
            destination.clone_into(&mut entry.0);
        }
        entry.1 += n;
    }

    /// Takes every pending tally (ordered by session, then subscription).
    pub fn take(&self) -> Vec<DropReport> {
        let pending = std::mem::take(&mut *self.pending.lock());
        let mut reports: Vec<DropReport> = pending
            .into_iter()
            .map(
                |((session, subscription), (destination, count))| DropReport {
                    session,
                    subscription,
                    destination,
                    count,
                },
            )
            .collect();
        reports.sort_by(|a, b| (a.session, &a.subscription).cmp(&(b.session, &b.subscription)));
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_add_up_per_subscription_until_taken() {
        let log = DropLog::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        for _ in 0..1000 {
            log.record(7, &a, "/topic/x", 1);
        }
        log.record(7, &a, "/topic/y", 5);
        log.record(7, &b, "/topic/z", 2);
        log.record(3, &a, "/topic/x", 1);
        let reports = log.take();
        let summary: Vec<(u64, &str, &str, u64)> = reports
            .iter()
            .map(|r| (r.session, &*r.subscription, r.destination.as_str(), r.count))
            .collect();
        assert_eq!(
            summary,
            [
                (3, "a", "/topic/x", 1),
                (7, "a", "/topic/y", 1005),
                (7, "b", "/topic/z", 2)
            ]
        );
        assert!(log.take().is_empty(), "taking empties the log");
    }
}
