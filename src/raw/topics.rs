//! Which raw connections listen to which topic: an IO-free registry, generic over what is
//! stored per subscriber (the transport stores the connection's outbox).
//!
//! Topics match exactly (no wildcards): a raw publish is a hash lookup and a walk over the
//! subscribers, the uWebSockets model.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Topic name → subscribers (connection id → value), plus each connection's topics so that a
/// closing connection leaves every topic in one call.
#[derive(Debug)]
pub struct TopicRegistry<V> {
    topics: HashMap<Arc<str>, HashMap<u64, V>>,
    by_conn: HashMap<u64, HashSet<Arc<str>>>,
}

impl<V> Default for TopicRegistry<V> {
    fn default() -> Self {
        TopicRegistry {
            topics: HashMap::new(),
            by_conn: HashMap::new(),
        }
    }
}

impl<V> TopicRegistry<V> {
    /// Adds `conn` to `topic`; false when it was already subscribed (nothing changes).
    pub fn subscribe(&mut self, topic: &str, conn: u64, value: V) -> bool {
        let topics = self.by_conn.entry(conn).or_default();
        if topics.contains(topic) {
            return false;
        }
        let name: Arc<str> = match self.topics.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => Arc::from(topic),
        };
        topics.insert(name.clone());
        self.topics.entry(name).or_default().insert(conn, value);
        true
    }

    /// Removes `conn` from `topic`; false when it was not subscribed.
    pub fn unsubscribe(&mut self, topic: &str, conn: u64) -> bool {
        let Some(topics) = self.by_conn.get_mut(&conn) else {
            return false;
        };
        if !topics.remove(topic) {
            return false;
        }
        if topics.is_empty() {
            self.by_conn.remove(&conn);
        }
        self.remove_subscriber(topic, conn);
        true
    }

    /// Removes `conn` from every topic; returns how many it left.
    pub fn remove_connection(&mut self, conn: u64) -> usize {
        let Some(topics) = self.by_conn.remove(&conn) else {
            return 0;
        };
        for topic in &topics {
            self.remove_subscriber(topic, conn);
        }
        topics.len()
    }

    fn remove_subscriber(&mut self, topic: &str, conn: u64) {
        if let Some(subscribers) = self.topics.get_mut(topic) {
            subscribers.remove(&conn);
            if subscribers.is_empty() {
                // An unused topic costs nothing: its entry goes with its last subscriber.
                self.topics.remove(topic);
            }
        }
    }

    /// The subscribers of `topic` (connection id, value), in no particular order.
    pub fn subscribers(&self, topic: &str) -> impl Iterator<Item = (u64, &V)> {
        self.topics
            .get(topic)
            .into_iter()
            .flat_map(|subscribers| subscribers.iter().map(|(id, v)| (*id, v)))
    }

    /// Number of subscribers of `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.topics.get(topic).map_or(0, HashMap::len)
    }

    /// Whether `conn` is subscribed to `topic`.
    pub fn is_subscribed(&self, topic: &str, conn: u64) -> bool {
        self.by_conn
            .get(&conn)
            .is_some_and(|topics| topics.contains(topic))
    }

    #[cfg(test)]
    /// Topics with at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(registry: &TopicRegistry<&'static str>, topic: &str) -> Vec<u64> {
        let mut ids: Vec<u64> = registry.subscribers(topic).map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn subscribe_is_idempotent_and_exact() {
        let mut registry = TopicRegistry::default();
        assert!(registry.subscribe("chat", 1, "a"));
        assert!(
            !registry.subscribe("chat", 1, "a"),
            "second subscribe changes nothing"
        );
        assert!(registry.subscribe("chat", 2, "b"));
        assert!(registry.subscribe("chat/room", 1, "a"));
        assert_eq!(ids(&registry, "chat"), [1, 2]);
        assert_eq!(ids(&registry, "chat/room"), [1]);
        assert_eq!(
            ids(&registry, "cha"),
            Vec::<u64>::new(),
            "no prefix matching"
        );
        assert_eq!(ids(&registry, "chat/*"), Vec::<u64>::new(), "no wildcards");
        assert_eq!(registry.subscriber_count("chat"), 2);
        assert!(registry.is_subscribed("chat", 2));
        assert!(!registry.is_subscribed("chat/room", 2));
    }

    #[test]
    fn unsubscribe_removes_one_and_forgets_empty_topics() {
        let mut registry = TopicRegistry::default();
        registry.subscribe("t", 1, "a");
        registry.subscribe("t", 2, "b");
        assert!(registry.unsubscribe("t", 1));
        assert!(!registry.unsubscribe("t", 1), "already gone");
        assert!(!registry.unsubscribe("other", 2), "never subscribed");
        assert_eq!(ids(&registry, "t"), [2]);
        assert!(registry.unsubscribe("t", 2));
        assert_eq!(registry.topic_count(), 0);
        assert!(registry.by_conn.is_empty());
    }

    #[test]
    fn removing_a_connection_leaves_every_topic() {
        let mut registry = TopicRegistry::default();
        for topic in ["a", "b", "c"] {
            registry.subscribe(topic, 7, "x");
        }
        registry.subscribe("a", 8, "y");
        assert_eq!(registry.remove_connection(7), 3);
        assert_eq!(registry.remove_connection(7), 0);
        assert_eq!(ids(&registry, "a"), [8]);
        assert_eq!(registry.topic_count(), 1);
    }

    #[test]
    fn values_are_kept_per_subscriber() {
        let mut registry = TopicRegistry::default();
        registry.subscribe("t", 1, "one");
        registry.subscribe("t", 2, "two");
        let mut values: Vec<&str> = registry.subscribers("t").map(|(_, v)| *v).collect();
        values.sort_unstable();
        assert_eq!(values, ["one", "two"]);
    }
}
