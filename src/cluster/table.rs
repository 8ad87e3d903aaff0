//! The engine subscriptions a node holds, and which of its interests each one serves
//! (several patterns may share one engine pattern).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::keys::EngineKey;
use crate::broker::Interest;

/// Engine subscriptions by key.
#[derive(Default)]
pub struct Table {
    keys: HashMap<EngineKey, Entry>,
}

#[derive(Default)]
struct Entry {
    /// Exact interests served (destinations mapping to this channel or subject).
    exact: usize,
    /// Pattern interests served, with their counts.
    patterns: BTreeMap<Arc<str>, usize>,
    /// The patterns, as handed to the broker with each publication.
    reach: Arc<[Arc<str>]>,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.exact == 0 && self.patterns.is_empty()
    }
    fn refresh(&mut self) {
        self.reach = self.patterns.keys().cloned().collect();
    }
}

impl Table {
    /// `interest` is served by `key` from now on; true when `key` is new (subscribe to it).
    pub fn add(&mut self, key: EngineKey, interest: &Interest) -> bool {
        let fresh = !self.keys.contains_key(&key);
        let entry = self.keys.entry(key).or_default();
        match interest {
            Interest::Exact(_) => entry.exact += 1,
            Interest::Pattern(p) => {
                *entry.patterns.entry(p.clone()).or_default() += 1;
                entry.refresh();
            }
        }
        fresh
    }

    /// `interest` no longer needs `key`; true when nothing does (unsubscribe from it).
    pub fn remove(&mut self, key: &EngineKey, interest: &Interest) -> bool {
        let Some(entry) = self.keys.get_mut(key) else {
            return false;
        };
        match interest {
            Interest::Exact(_) => entry.exact = entry.exact.saturating_sub(1),
            Interest::Pattern(p) => {
                if let Some(count) = entry.patterns.get_mut(p) {
                    *count -= 1;
                    if *count == 0 {
                        entry.patterns.remove(p);
                    }
                }
                entry.refresh();
            }
        }
        if entry.is_empty() {
            self.keys.remove(key);
            return true;
        }
        false
    }

    /// The patterns served by pattern subscription `key` (`None`: not subscribed).
    pub fn patterns(&self, key: &EngineKey) -> Option<Arc<[Arc<str>]>> {
        self.keys.get(key).map(|e| e.reach.clone())
    }

    /// Whether `key` is subscribed.
    pub fn contains(&self, key: &EngineKey) -> bool {
        self.keys.contains_key(key)
    }

    /// Every engine subscription held.
    pub fn keys(&self) -> impl Iterator<Item = &EngineKey> {
        self.keys.keys()
    }

    /// How many engine subscriptions are held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::keys;

    #[test]
    fn patterns_sharing_an_engine_pattern_share_one_subscription() {
        let mut table = Table::default();
        let one = Interest::Pattern("/topic/*".into());
        let many = Interest::Pattern("/topic/**".into());
        let key = keys::redis("p", &one);
        assert_eq!(key, keys::redis("p", &many));
        assert!(table.add(key.clone(), &one));
        assert!(!table.add(key.clone(), &many));
        assert_eq!(table.patterns(&key).unwrap().len(), 2);
        assert!(!table.remove(&key, &one));
        assert_eq!(&*table.patterns(&key).unwrap(), &[Arc::from("/topic/**")]);
        assert!(table.remove(&key, &many));
        assert!(!table.contains(&key));
        assert_eq!(table.len(), 0);
    }
}
