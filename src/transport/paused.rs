//! A publisher paused by flow control, shared by STOMP and raw connections: it waits until
//! every outbound queue its messages left congested is relieved, and at the moments those
//! queues would count as stuck it closes the stuck ones (slow consumers) instead of waiting on.

use std::time::Duration;

use tokio::time::Instant;

use crate::broker::{Congestion, Counters, stats};

/// The congested queues a paused publisher waits for.
pub(super) struct Paused {
    congested: Congestion,
}

impl Paused {
    /// Pauses a publisher (counted in `Stats::publishers_paused`).
    pub(super) fn new(congested: Congestion, counters: &Counters) -> Paused {
        stats::add(&counters.publishers_paused, 1);
        Paused { congested }
    }

    /// Resolves once no queue is congested any more (drained, or closed).
    pub(super) async fn relieved(&self) {
        for outbox in &self.congested {
            outbox.relieved().await;
        }
    }

    /// When to look again even if nothing relieves it: the first moment one of the queues
    /// counts as stuck.
    pub(super) fn deadline(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        self.congested
            .iter()
            .filter_map(|outbox| outbox.stuck_at())
            .map(Instant::from_std)
            .min()
            .map_or(far, |at| at.min(far))
    }

    /// At the deadline: closes the queues that are stuck (counted as slow consumers) and
    /// forgets those no longer congested. True when the publisher may go on.
    pub(super) fn recheck(&mut self, counters: &Counters) -> bool {
        self.congested.retain(|outbox| {
            if outbox.close_if_stuck() {
                stats::count_overflow(counters, outbox);
            }
            outbox.is_congested()
        });
        self.congested.is_empty()
    }
}
