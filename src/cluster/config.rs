//! Cluster mode's settings.

/// The distributed engine the nodes share.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClusterEngine {
    /// Redis pub/sub, at `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS);
    /// several servers comma-separated (e.g. the nodes of a Redis Cluster): the first that
    /// answers is used, the next one when it fails; or Redis Sentinel,
    /// `redis+sentinel://[:password@]host:port[,host:port...]/SERVICE[/db]`: the master the
    /// sentinels name, again after a failover.
    Redis(String),
    /// NATS core subjects, at `nats://host[:port]` (several servers: comma-separated).
    Nats(String),
}

impl ClusterEngine {
    /// "redis" or "nats", for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterEngine::Redis(_) => "redis",
            ClusterEngine::Nats(_) => "nats",
        }
    }
}

/// How this node joins a cluster (`--cluster-redis` / `--cluster-nats`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The engine.
    pub engine: ClusterEngine,
    /// This node's name, in logs and metrics (default: host name and process id). Nodes tell
    /// their own publications apart by a random instance id, so equal names do no harm.
    pub node_id: String,
    /// Prefix of every engine channel or subject (`wsbroker`): clusters that share an engine
    /// keep apart by using different prefixes. Letters, digits, `-` and `_`.
    pub prefix: String,
    /// Publications waiting for the engine above which publishers on this node pause (the
    /// engine is slower than they are).
    pub high_watermark: usize,
    /// Publications waiting for the engine beyond which the oldest are given up (a bound that
    /// publishers which pause never reach).
    pub max_pending: usize,
}

impl ClusterConfig {
    /// A node of the cluster on `engine`, with the defaults.
    pub fn new(engine: ClusterEngine) -> ClusterConfig {
        ClusterConfig {
            engine,
            node_id: default_node_id(),
            prefix: "wsbroker".into(),
            high_watermark: 16_384,
            max_pending: 1_048_576,
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        let url = match &self.engine {
            ClusterEngine::Redis(url) | ClusterEngine::Nats(url) => url,
        };
        if url.trim().is_empty() {
            return Err("cluster engine URL is empty".into());
        }
        if let ClusterEngine::Redis(url) = &self.engine
            && url.trim_start().starts_with(super::sentinel::SCHEME)
        {
            super::sentinel::SentinelUrl::parse(url.trim())
                .map_err(|e| format!("cluster Redis URL: {e}"))?;
        } else if let ClusterEngine::Redis(url) = &self.engine {
            for server in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                // Parsed as the client will (scheme, host, port, db), without connecting.
                redis::IntoConnectionInfo::into_connection_info(server).map_err(|e| {
                    let shown = server.rsplit('@').next().unwrap_or(server);
                    format!("cluster Redis URL {shown:?}: {e}")
                })?;
            }
        }
        if self.prefix.is_empty()
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "cluster prefix {:?}: use letters, digits, '-' and '_'",
                self.prefix
            ));
        }
        if self.node_id.is_empty() {
            return Err("node id is empty".into());
        }
        if self.high_watermark == 0 || self.max_pending < self.high_watermark {
            return Err("cluster high_watermark must be at least 1 and at most max_pending".into());
        }
        Ok(())
    }
}

/// The host name and process id.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::{ClusterConfig, ClusterEngine};

    #[test]
    fn redis_urls_are_checked_one_by_one_without_showing_passwords() {
        let ok = ClusterConfig::new(ClusterEngine::Redis(
            "redis://127.0.0.1:7000, redis://127.0.0.1:7001/0".into(),
        ));
        assert_eq!(ok.validate(), Ok(()));
        let bad = ClusterConfig::new(ClusterEngine::Redis(
            "redis://127.0.0.1:7000,http://user:secret@host".into(),
        ));
        let why = bad.validate().unwrap_err();
        assert!(why.contains("host") && !why.contains("secret"), "{why}");
        let mut prefix = ClusterConfig::new(ClusterEngine::Nats("nats://127.0.0.1".into()));
        prefix.prefix = "a.b".into();
        assert!(prefix.validate().is_err());
    }
}
