//! A session's subscriptions by id. Most sessions have one or two, so the first few live in a
//! vector sized exactly to them and searched linearly (one small allocation, where even the
//! smallest hash table costs a hundred bytes and hashing); past `FEW` they move to a hash map.

use std::collections::HashMap;
use std::sync::Arc;

/// Most subscriptions kept in the vector; a linear search over them is cheaper than hashing.
const FEW: usize = 8;

pub(super) enum SubMap<V> {
    Few(Vec<(Arc<str>, V)>),
    #[allow(
        clippy::box_collection,
        reason = "keeps every session's map at a vector's 24 bytes instead of a hash map's 48"
    )]
    Many(Box<HashMap<Arc<str>, V>>),
}

impl<V> Default for SubMap<V> {
    fn default() -> Self {
        SubMap::Few(Vec::new())
    }
}

impl<V> SubMap<V> {
    pub(super) fn len(&self) -> usize {
        match self {
            SubMap::Few(few) => few.len(),
            SubMap::Many(many) => many.len(),
        }
    }

    pub(super) fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    pub(super) fn get(&self, id: &str) -> Option<&V> {
        match self {
            SubMap::Few(few) => few.iter().find(|(k, _)| &**k == id).map(|(_, v)| v),
            SubMap::Many(many) => many.get(id),
        }
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut V> {
        match self {
            SubMap::Few(few) => few.iter_mut().find(|(k, _)| &**k == id).map(|(_, v)| v),
            SubMap::Many(many) => many.get_mut(id),
        }
    }

    /// Adds or replaces the value for `id`.
    pub(super) fn insert(&mut self, id: Arc<str>, value: V) {
        match self {
            SubMap::Few(few) => {
                if let Some(slot) = few.iter_mut().find(|(k, _)| *k == id) {
                    slot.1 = value;
                } else if few.len() < FEW {
                    // Exactly sized: an idle session's one subscription costs one slot.
                    few.reserve_exact(1);
                    few.push((id, value));
                } else {
                    let mut many: HashMap<Arc<str>, V> = std::mem::take(few).into_iter().collect();
                    many.insert(id, value);
                    *self = SubMap::Many(Box::new(many));
                }
            }
            SubMap::Many(many) => {
                many.insert(id, value);
            }
        }
    }

    pub(super) fn remove(&mut self, id: &str) -> Option<V> {
        match self {
            SubMap::Few(few) => {
                let index = few.iter().position(|(k, _)| &**k == id)?;
                let (_, value) = few.swap_remove(index);
                if few.is_empty() {
                    *few = Vec::new();
                }
                Some(value)
            }
            SubMap::Many(many) => many.remove(id),
        }
    }

    pub(super) fn values(&self) -> Box<dyn Iterator<Item = &V> + '_> {
        match self {
            SubMap::Few(few) => Box::new(few.iter().map(|(_, v)| v)),
            SubMap::Many(many) => Box::new(many.values()),
        }
    }

    /// Removes and returns every entry.
    pub(super) fn drain(&mut self) -> Vec<(Arc<str>, V)> {
        match std::mem::take(self) {
            SubMap::Few(few) => few,
            SubMap::Many(many) => many.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> Arc<str> {
        Arc::from(format!("sub-{n}"))
    }

    #[test]
    fn keeps_entries_across_the_move_to_a_hash_map() {
        let mut map = SubMap::default();
        for n in 0..FEW + 3 {
            map.insert(id(n), n);
            assert_eq!(map.len(), n + 1);
        }
        assert!(matches!(map, SubMap::Many(_)));
        for n in 0..FEW + 3 {
            assert_eq!(map.get(&id(n)), Some(&n));
        }
        *map.get_mut("sub-2").expect("present") = 200;
        assert_eq!(map.remove("sub-2"), Some(200));
        assert!(!map.contains_key("sub-2"));
        let mut values: Vec<usize> = map.values().copied().collect();
        values.sort_unstable();
        assert_eq!(values.len(), FEW + 2);
        assert_eq!(map.drain().len(), FEW + 2);
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn few_entries_replace_remove_and_drain() {
        let mut map = SubMap::default();
        map.insert(id(1), "a");
        map.insert(id(2), "b");
        map.insert(id(1), "c");
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("sub-1"), Some(&"c"));
        assert_eq!(map.remove("sub-3"), None);
        assert_eq!(map.remove("sub-1"), Some("c"));
        assert_eq!(map.values().copied().collect::<Vec<_>>(), vec!["b"]);
        let drained = map.drain();
        assert_eq!(drained.len(), 1);
        assert_eq!(&*drained[0].0, "sub-2");
        assert!(map.get("sub-2").is_none());
    }
}
