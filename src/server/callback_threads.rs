//! The threads that run host code (see `crate::executor`): one per lane, named
//! "wsbroker-callback", each running its lane's jobs in order until the pool is closed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::executor::Lanes;

/// The running callback threads of one server.
pub(super) struct CallbackThreads {
    threads: Vec<JoinHandle<()>>,
}

impl CallbackThreads {
    /// Starts one thread per lane; `relieved` runs whenever a lane drains to `relief_mark`
    /// queued jobs (publishers told to retry wait for it).
    pub(super) fn start(
        lanes: Lanes,
        relief_mark: usize,
        relieved: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<CallbackThreads> {
        let mut threads = Vec::with_capacity(lanes.len());
        for mut lane in lanes {
            let relieved = relieved.clone();
            let thread = std::thread::Builder::new()
                .name("wsbroker-callback".into())
                .spawn(move || {
                    super::mark_server_thread();
                    while let Some(job) = lane.blocking_recv() {
                        // Each job catches its own panics; this only keeps the lane alive.
                        if catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a host callback panicked");
                        }
                        if lane.len() == relief_mark {
                            relieved();
                        }
                    }
                })?;
            threads.push(thread);
        }
        Ok(CallbackThreads { threads })
    }

    /// Waits up to `grace` for the threads to finish the queued jobs (the pool must be closed
    /// first); a thread still inside host code after that is left to finish on its own.
    pub(super) fn join(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        for thread in self.threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!("a host callback is still running after stop; not waiting for it");
            }
        }
    }
}
