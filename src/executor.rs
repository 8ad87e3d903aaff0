//! Where host code runs: application handlers, host-subscription callbacks, event callbacks
//! and hook decisions are jobs on a small pool of dedicated threads ("wsbroker-callback"),
//! never on the runtime threads that do the IO. A callback that blocks for seconds then delays
//! only the jobs behind it in its lane, not other clients' traffic.
//!
//! Jobs carry a key (a session, connection or host-subscription id): one key always goes to
//! the same lane, so a session's application messages, or one host subscription's messages,
//! run one at a time and in order. Lanes are bounded; a producer that may wait (a connection
//! handing over an application message) waits for room, one that may not (a publish) is told
//! the lane is full. This module only queues; the server starts the threads
//! (`server/callback_threads.rs`).

use parking_lot::RwLock;
use tokio::sync::mpsc;

/// Host code to run once.
pub type Job = Box<dyn FnOnce() + Send>;

/// The lanes' receiving ends, for the threads that run the jobs.
pub type Lanes = Vec<mpsc::Receiver<Job>>;

/// The producer side of the callback pool.
#[derive(Debug)]
pub struct Executor {
    /// One bounded queue per thread; emptied by [`Executor::close`].
    lanes: RwLock<Vec<mpsc::Sender<Job>>>,
    /// Jobs one lane holds.
    per_lane: usize,
}

impl Executor {
    /// A pool of `threads` lanes (at least one) holding `capacity` jobs in all; the receivers
    /// go to the threads that run them.
    pub fn new(threads: usize, capacity: usize) -> (Executor, Lanes) {
        let threads = threads.max(1);
        let per_lane = (capacity / threads).max(1);
        let (senders, receivers) = (0..threads).map(|_| mpsc::channel(per_lane)).unzip();
        let executor = Executor {
            lanes: RwLock::new(senders),
            per_lane,
        };
        (executor, receivers)
    }

    fn lane(&self, key: u64) -> Option<mpsc::Sender<Job>> {
        let lanes = self.lanes.read();
        let n = lanes.len();
        // Lane count fits in u64; the remainder fits back in usize.
        (n > 0).then(|| lanes[(key % n as u64) as usize].clone())
    }

    /// Queues `job` on `key`'s lane without waiting; false (and the job dropped) when that
    /// lane is full or the pool is closed.
    pub fn try_run(&self, key: u64, job: Job) -> bool {
        self.lane(key)
            .is_some_and(|lane| lane.try_send(job).is_ok())
    }

    /// Queues `job` on `key`'s lane, waiting for room; false when the pool is closed.
    pub async fn run(&self, key: u64, job: Job) -> bool {
        match self.lane(key) {
            Some(lane) => lane.send(job).await.is_ok(),
            None => false,
        }
    }

    /// True when `key`'s lane is more than three quarters full: producers that can be told to
    /// retry (host publishes) are, so the last quarter stays for those that cannot (messages
    /// from clients).
    pub fn is_backed_up(&self, key: u64) -> bool {
        self.lane(key)
            .is_some_and(|lane| lane.capacity() < self.per_lane.div_ceil(4))
    }

    /// Queued jobs below which a backed-up lane counts as relieved (see
    /// [`Executor::is_backed_up`]): the threads signal waiting publishers there.
    pub fn relief_mark(&self) -> usize {
        self.per_lane / 2
    }

    /// Lets the threads finish what is queued and end: nothing more is accepted.
    pub fn close(&self) {
        self.lanes.write().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    #[test]
    fn one_key_always_takes_one_lane_and_full_lanes_refuse() {
        let (executor, mut lanes) = Executor::new(2, 2);
        let ran = Arc::new(AtomicUsize::new(0));
        let job = |ran: &Arc<AtomicUsize>| -> Job {
            let ran = ran.clone();
            Box::new(move || {
                ran.fetch_add(1, Relaxed);
            })
        };
        // Capacity 2 over 2 lanes: one job per lane.
        assert!(!executor.is_backed_up(7));
        assert!(executor.try_run(7, job(&ran)));
        assert!(executor.is_backed_up(7) && executor.is_backed_up(9));
        assert!(!executor.is_backed_up(8));
        assert!(
            !executor.try_run(9, job(&ran)),
            "key 9 shares key 7's lane, which is full"
        );
        assert!(executor.try_run(8, job(&ran)));
        for lane in &mut lanes {
            while let Ok(job) = lane.try_recv() {
                job();
            }
        }
        assert_eq!(ran.load(Relaxed), 2);
        executor.close();
        assert!(!executor.try_run(1, job(&ran)), "closed");
        assert!(lanes.iter_mut().all(|lane| lane.try_recv().is_err()));
    }
}
