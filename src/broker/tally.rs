//! A counter that many threads add to without sharing a cache line: each thread adds to its
//! own shard (picked once per thread), and a read sums them. The throughput counters
//! (`messages_in`/`_out`, `bytes_in`/`_out`) are bumped for every message by every IO thread;
//! as plain atomics side by side they made each increment a cache-line transfer between
//! cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Shards per counter: more than the IO threads of a typical server; threads beyond share.
const SHARDS: usize = 16;

/// One shard on a cache line of its own (128 bytes: adjacent-line prefetching pairs lines).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard(AtomicU64);

/// A sharded counter (see the module docs).
#[derive(Debug, Default)]
pub struct Tally {
    shards: [Shard; SHARDS],
}

/// Hands out shard numbers to threads in turn.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// This thread's shard.
fn shard() -> usize {
    SHARD.with(|slot| {
        slot.get().unwrap_or_else(|| {
            let shard = NEXT_SHARD.fetch_add(1, Relaxed) % SHARDS;
            slot.set(Some(shard));
            shard
        })
    })
}

impl Tally {
    /// Adds `n` on this thread's shard.
    pub fn add(&self, n: u64) {
        self.shards[shard()].0.fetch_add(n, Relaxed);
    }

    /// The sum of the shards (a moment's reading while others add).
    pub fn load(&self) -> u64 {
        self.shards
            .iter()
            .fold(0u64, |sum, shard| sum.wrapping_add(shard.0.load(Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::Tally;
    use std::sync::Arc;

    #[test]
    fn adds_from_many_threads_sum_up() {
        let tally = Arc::new(Tally::default());
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let tally = tally.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| tally.add(3)))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(tally.load(), 20 * 1000 * 3);
        assert_eq!(std::mem::align_of::<super::Shard>(), 128);
    }
}
