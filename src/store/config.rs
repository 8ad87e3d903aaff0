//! Settings of the durable store.

use std::path::PathBuf;
use std::time::Duration;

/// When the store makes committed records durable (`fsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Each commit is synced as soon as records wait (records that arrive while a sync runs
    /// share the next one): the lowest latency for a RECEIPT.
    EveryMessage,
    /// Records are collected for up to this long and synced together: fewer syncs, receipts
    /// later by up to the window.
    Batched(Duration),
}

impl FsyncPolicy {
    /// Parses `every-message` or a window such as `5ms` / `2s`.
    pub fn parse(text: &str) -> Result<FsyncPolicy, String> {
        if text == "every-message" {
            return Ok(FsyncPolicy::EveryMessage);
        }
        let window = if let Some(ms) = text.strip_suffix("ms") {
            ms.parse::<u64>().ok().map(Duration::from_millis)
        } else if let Some(s) = text.strip_suffix('s') {
            s.parse::<u64>().ok().map(Duration::from_secs)
        } else {
            None
        };
        match window {
            Some(w) if !w.is_zero() && w <= Duration::from_secs(10) => Ok(FsyncPolicy::Batched(w)),
            _ => Err(format!(
                "fsync policy {text:?}: expected 'every-message' or a window from 1ms to 10s \
                 (e.g. '5ms')"
            )),
        }
    }
}

/// Where and how the broker persists queues and histories.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Directory of the store (created if missing); holds `wsbroker.redb`.
    pub data_dir: PathBuf,
    /// When commits are synced; default [`FsyncPolicy::EveryMessage`].
    pub fsync: FsyncPolicy,
    /// Records waiting for a commit above which a publisher waits for its own (and, while
    /// the store fails, new persisted messages are refused); default 65,536.
    pub max_backlog: usize,
}

impl StoreConfig {
    /// A store in `data_dir` with the default policy.
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            fsync: FsyncPolicy::EveryMessage,
            max_backlog: 65_536,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.data_dir.as_os_str().is_empty() {
            return Err("data_dir must not be empty".into());
        }
        if self.max_backlog == 0 {
            return Err("store max_backlog must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policies_parse() {
        assert_eq!(
            FsyncPolicy::parse("every-message"),
            Ok(FsyncPolicy::EveryMessage)
        );
        assert_eq!(
            FsyncPolicy::parse("5ms"),
            Ok(FsyncPolicy::Batched(Duration::from_millis(5)))
        );
        assert_eq!(
            FsyncPolicy::parse("2s"),
            Ok(FsyncPolicy::Batched(Duration::from_secs(2)))
        );
        for bad in ["", "0ms", "11s", "fast", "5m"] {
            assert!(FsyncPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
