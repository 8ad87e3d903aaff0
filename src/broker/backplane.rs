//! The broker's side of cluster mode: what it tells the engine that links the nodes, and how
//! publications from other nodes come in.
//!
//! The broker stays IO-free. It reports **interests** — the destinations and patterns this
//! node has subscribers for, reference-counted so the engine hears only the first arrival and
//! the last departure — and hands each publication made on this node to the [`Backplane`],
//! which sends it to the other nodes (never back to this one). A publication from another
//! node comes in through [`super::Broker::deliver_remote`] with the interest it matched
//! ([`Reach`]): each local subscription is reached through exactly one interest, so it gets
//! every remote publication once and in the order of the engine subscription it came by.
//!
//! A destination covered by a history rule whose pattern has wildcards is reached through the
//! rule's pattern (an interest held for as long as the node runs), not through its own name:
//! every node records every publication of such destinations, whether or not it has
//! subscribers there at the moment, so its history has no holes.

use std::collections::HashMap;
use std::sync::Arc;

use super::journal::{DurableSignal, Ticket};
use super::message::Message;
use super::outbox::Outbox;

/// What this node wants from the other nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Interest {
    /// Publications to this exact destination (routing key).
    Exact(Arc<str>),
    /// Publications to destinations matching this pattern (see [`super::pattern`]).
    Pattern(Arc<str>),
}

/// The interest a publication from another node arrived through.
#[derive(Clone, Copy, Debug)]
pub enum Reach<'a> {
    /// Its own destination: the exact subscribers (and exact host subscriptions).
    Exact,
    /// These patterns (the ones sharing one engine subscription): the subscriptions with
    /// one of them that match.
    Patterns(&'a [Arc<str>]),
}

/// The engine linking this node to the others. Every method is called with the broker's
/// routing lock held, in routing order, and must not block.
pub trait Backplane: Send + Sync {
    /// The first local subscriber of `interest` arrived (`present`), or the last one left.
    fn interest(&self, interest: &Interest, present: bool);
    /// A publication made on this node to broadcast destination `route`: for the other nodes.
    fn publish(&self, route: &str, message: &Arc<Message>);
    /// The queue of publications waiting for the engine, while it is congested: publishers
    /// pause on it like on a subscriber's.
    fn congested(&self) -> Option<Arc<Outbox>>;
    /// What a subscription made just now must wait for before its RECEIPT says it is in
    /// place cluster-wide: the engine confirming every engine subscription asked for so far
    /// (`None`: nothing unconfirmed, or the engine is unreachable and the node serves alone).
    fn pending_confirmation(&self) -> Option<(Arc<DurableSignal>, Ticket)> {
        None
    }
}

/// Reference counts of this node's interests.
#[derive(Default)]
pub(super) struct Interests {
    counts: HashMap<Interest, usize>,
}

impl Interests {
    /// One more holder of `interest`; the backplane hears of the first.
    pub(super) fn add(&mut self, interest: Interest, backplane: &dyn Backplane) {
        let count = self.counts.entry(interest.clone()).or_default();
        *count += 1;
        if *count == 1 {
            backplane.interest(&interest, true);
        }
    }

    /// One holder fewer; the backplane hears of the last.
    pub(super) fn remove(&mut self, interest: &Interest, backplane: &dyn Backplane) {
        let Some(count) = self.counts.get_mut(interest) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.counts.remove(interest);
            backplane.interest(interest, false);
        }
    }

    /// Every interest held, sorted.
    #[cfg(test)]
    pub(super) fn all(&self) -> Vec<Interest> {
        let mut all: Vec<Interest> = self.counts.keys().cloned().collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Interest, bool)>>);

    impl Backplane for Recorder {
        fn interest(&self, interest: &Interest, present: bool) {
            self.0.lock().push((interest.clone(), present));
        }
        fn publish(&self, _: &str, _: &Arc<Message>) {}
        fn congested(&self) -> Option<Arc<Outbox>> {
            None
        }
    }

    #[test]
    fn only_the_first_arrival_and_the_last_departure_reach_the_backplane() {
        let recorder = Recorder::default();
        let mut interests = Interests::default();
        let a = Interest::Exact("/topic/a".into());
        let p = Interest::Pattern("/topic/*".into());
        interests.add(a.clone(), &recorder);
        interests.add(a.clone(), &recorder);
        interests.add(p.clone(), &recorder);
        interests.remove(&a, &recorder);
        assert_eq!(interests.all(), vec![a.clone(), p.clone()]);
        interests.remove(&a, &recorder);
        interests.remove(&a, &recorder); // unknown: ignored
        assert_eq!(
            *recorder.0.lock(),
            vec![(a.clone(), true), (p.clone(), true), (a, false)]
        );
        assert_eq!(interests.all(), vec![p]);
    }
}
