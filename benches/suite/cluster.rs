//! Cluster mode in the suite: the STOMP fan-out with the subscribers on node A and the
//! publisher on node B, nodes joined by a private Redis or NATS server (the cluster tests'
//! `engine_process`, on its own port, never the machine's), next to relay mode (both nodes
//! relaying to the machine's RabbitMQ STOMP adapter) and the single-node run; plus the engine
//! connections one node holds with many idle clients.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::engine_process::{EngineProcess, Kind};
use crate::fanout::{ServerProcess, Target, WSBROKER_BENCH_FLAGS};
use crate::idle_memory;

/// RabbitMQ's STOMP adapter, which relay mode connects to.
pub(crate) const RABBITMQ_STOMP: &str = "127.0.0.1:61613";

/// A running private engine and what the nodes need to join it.
pub(crate) struct Engine {
    pub(crate) name: &'static str,
    process: EngineProcess,
    flag: &'static str,
    url: String,
}

impl Engine {
    /// Starts a private engine of `kind`, or says why not.
    pub(crate) fn start(kind: Kind, name: &'static str) -> Result<Engine, String> {
        let flag = match kind {
            Kind::Redis | Kind::RedisClusterNode | Kind::Sentinel => "--cluster-redis",
            Kind::Nats => "--cluster-nats",
        };
        let process = EngineProcess::start(kind)
            .ok_or_else(|| format!("{name}: the engine's server is not installed"))?;
        let url = match process.engine() {
            wsbroker::ClusterEngine::Redis(url) | wsbroker::ClusterEngine::Nats(url) => url,
            other => return Err(format!("unexpected engine {other:?}")),
        };
        Ok(Engine {
            name,
            process,
            flag,
            url,
        })
    }

    /// The flags that make a node of this engine's cluster.
    fn cluster_args(&self) -> Vec<String> {
        [self.flag, &self.url, "--cluster-prefix", "bench"]
            .map(String::from)
            .to_vec()
    }

    /// The fan-out target: subscribers on node A, publisher on node B, the engine's CPU
    /// counted with the nodes'.
    pub(crate) fn target(&self, bin: &Path) -> Target {
        let node = ServerProcess::Spawn {
            program: bin.to_path_buf(),
            args: node_args(&self.cluster_args()),
        };
        Target {
            publisher_server: Some(node.clone()),
            server: node,
            extra_cpu_pids: self.process.pid().into_iter().collect(),
            wait_for_cluster: true,
            ..Target::wsbroker(bin)
        }
    }

    /// Connections one node holds to the engine with 2 and with `clients` idle subscribed
    /// clients (on 100 destinations) connected: a fresh node for each count.
    pub(crate) fn connections_with_clients(
        &self,
        bin: &Path,
        clients: usize,
    ) -> Result<(usize, usize), String> {
        let port = self.process.port();
        // idle_memory starts the node with its own listen and limit flags.
        let args = self.cluster_args();
        let count = |n: usize| -> Result<usize, String> {
            let seen = std::cell::Cell::new(0);
            idle_memory::measure_with(idle_memory::Target::SpawnWith(bin, &args), n, &|| {
                seen.set(established_to(port));
            })?;
            Ok(seen.get())
        };
        Ok((count(2)?, count(clients)?))
    }
}

/// Relay mode: both nodes relay to RabbitMQ's STOMP adapter (one broker connection per client
/// session), RabbitMQ's CPU counted with the nodes'; or why it is skipped.
pub(crate) fn relay_target(bin: &Path, rabbitmq_pid: Option<u32>) -> Result<Target, String> {
    let addr: SocketAddr = RABBITMQ_STOMP.parse().expect("valid address");
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).is_err() {
        return Err(format!("RabbitMQ STOMP not listening on {addr}"));
    }
    let node = ServerProcess::Spawn {
        program: bin.to_path_buf(),
        args: node_args(&["--relay".into(), RABBITMQ_STOMP.into()]),
    };
    Ok(Target {
        publisher_server: Some(node.clone()),
        server: node,
        extra_cpu_pids: rabbitmq_pid.into_iter().collect(),
        connect: Arc::from(
            &b"CONNECT\naccept-version:1.2\nhost:bench\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\0"[..],
        ),
        ..Target::wsbroker(bin)
    })
}

/// The bench flags of every wsbroker process, then `extra`.
fn node_args(extra: &[String]) -> Vec<String> {
    WSBROKER_BENCH_FLAGS
        .iter()
        .map(ToString::to_string)
        .chain(extra.iter().cloned())
        .collect()
}

/// Established loopback TCP connections to `port` as seen from their client side (the node's
/// sockets to the engine; the engine's own ends have `port` as their local port).
fn established_to(port: u16) -> usize {
    let wanted = format!(":{port:04X}");
    let mut count = 0;
    for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        // sl, local_address, rem_address, st (01: ESTABLISHED), ...
        count += text
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 3 && f[2].ends_with(&wanted) && f[3] == "01")
            .count();
    }
    count
}
