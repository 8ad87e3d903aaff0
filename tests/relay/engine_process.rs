//! A private Redis or NATS server for the cluster tests: its own process on a free loopback
//! port with its own (temporary) data directory and nothing kept on disk, stopped and started
//! again by the tests that take the engine away, killed when dropped. Never the machine's own
//! Redis (6379) or NATS (4222).
//!
//! The binaries are `redis-server` and `nats-server` (Debian packages of those names;
//! `bash scripts/cluster-engines.sh ensure` installs them), looked up on `PATH` and in the
//! sbin folders, or named by `WSBROKER_REDIS_SERVER` / `WSBROKER_NATS_SERVER`. Without them
//! the tests are skipped with a printed reason, except in CI (`CI=true`), where they fail.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wsbroker::ClusterEngine;

/// How long a server may take to accept connections after it was started.
const START_WAIT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Redis,
    /// A Redis server in cluster mode (a node of [`RedisCluster`]).
    RedisClusterNode,
    /// A Redis Sentinel (of [`RedisSentinel`]).
    Sentinel,
    Nats,
}

impl Kind {
    fn binary(self) -> (&'static str, &'static str) {
        match self {
            Kind::Redis | Kind::RedisClusterNode | Kind::Sentinel => {
                ("redis-server", "WSBROKER_REDIS_SERVER")
            }
            Kind::Nats => ("nats-server", "WSBROKER_NATS_SERVER"),
        }
    }
}

/// A running private engine server.
pub struct EngineProcess {
    kind: Kind,
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    /// Flags after the kind's own (e.g. `--replicaof`).
    extra: Vec<String>,
    child: Option<Child>,
}

impl EngineProcess {
    /// Starts a private server of `kind`, or returns `None` (after printing why) when its
    /// binary is missing outside CI.
    pub fn start(kind: Kind) -> Option<EngineProcess> {
        EngineProcess::start_with(kind, Vec::new(), |_| {})
    }

    /// Starts one with `extra` flags, after `prepare` wrote what it needs into its data
    /// directory (a sentinel's configuration).
    fn start_with(
        kind: Kind,
        extra: Vec<String>,
        prepare: impl FnOnce(&EngineProcess),
    ) -> Option<EngineProcess> {
        let binary = find_binary(kind)?;
        let dir = std::env::temp_dir().join(format!(
            "wsbroker-test-{kind:?}-{}-{:x}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("engine data directory");
        let port = free_port();
        let mut engine = EngineProcess {
            kind,
            binary,
            port,
            dir,
            extra,
            child: None,
        };
        prepare(&engine);
        engine.resume();
        Some(engine)
    }

    /// The cluster engine setting that reaches this server.
    pub fn engine(&self) -> ClusterEngine {
        match self.kind {
            Kind::Redis | Kind::RedisClusterNode | Kind::Sentinel => {
                ClusterEngine::Redis(format!("redis://127.0.0.1:{}/", self.port))
            }
            Kind::Nats => ClusterEngine::Nats(format!("nats://127.0.0.1:{}", self.port)),
        }
    }

    /// The server's process id (for CPU figures), while it runs.
    #[allow(dead_code, reason = "the bench suite reads it")]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The loopback port it listens on.
    #[allow(dead_code, reason = "the bench suite reads it")]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis-cli` next to this `redis-server`, or the one on `PATH`.
    pub fn redis_cli(&self) -> PathBuf {
        let cli = self.binary.with_file_name("redis-cli");
        if cli.is_file() {
            cli
        } else {
            PathBuf::from("redis-cli")
        }
    }

    /// The last lines of the server's log.
    #[allow(dead_code, reason = "only some tests show it")]
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (with nothing of its former state) and waits
    /// until it accepts connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the engine is already running");
        let port = self.port.to_string();
        let mut command = Command::new(&self.binary);
        if self.kind == Kind::Sentinel {
            command
                .arg(self.dir.join("sentinel.conf"))
                .arg("--sentinel");
        }
        if self.kind == Kind::RedisClusterNode {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ]);
        }
        command.args(&self.extra);
        match self.kind {
            Kind::Redis | Kind::RedisClusterNode | Kind::Sentinel => command.args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
            ]),
            Kind::Nats => command.args(["-a", "127.0.0.1", "-p", &port, "--store_dir"]),
        };
        // The server's log, for a failing test to show (removed with the directory).
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("engine log file");
        command
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + START_WAIT;
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "{:?} on port {} exited at start: {status}",
                    self.kind, self.port
                );
            }
            assert!(
                Instant::now() < deadline,
                "{:?} does not accept connections on port {} within {START_WAIT:?}",
                self.kind,
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_binary(kind: Kind) -> Option<PathBuf> {
    let (name, variable) = kind.binary();
    if let Ok(path) = std::env::var(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin"])
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let why = format!(
            "{name} is not installed (set {variable} or run `bash scripts/cluster-engines.sh ensure`)"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{why} (CI=true: cluster tests must run)");
        }
        eprintln!("SKIPPED: {why}");
    }
    found
}

/// A port nothing listens on right now (the kernel's pick, released for the server).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A private three-node Redis Cluster (all hash slots assigned, no replicas), made with
/// `redis-cli --cluster create`; its nodes are killed when it is dropped.
pub struct RedisCluster {
    pub nodes: Vec<EngineProcess>,
}

impl RedisCluster {
    /// Starts the nodes and joins them, waiting (bounded) until the cluster is up; `None`
    /// (after printing why) when `redis-server` is missing outside CI.
    #[allow(dead_code, reason = "the bench suite does not start a cluster")]
    pub fn start() -> Option<RedisCluster> {
        let nodes: Vec<EngineProcess> = (0..3)
            .map(|_| EngineProcess::start(Kind::RedisClusterNode))
            .collect::<Option<_>>()?;
        let cli = nodes[0].redis_cli();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let status = Command::new(&cli)
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cli.display()));
        assert!(
            status.success(),
            "redis-cli --cluster create failed: {status}"
        );
        let deadline = Instant::now() + START_WAIT;
        for node in &nodes {
            loop {
                let info = Command::new(&cli)
                    .args(["-p", &node.port.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli cluster info");
                if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the Redis Cluster is not up within {START_WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(RedisCluster { nodes })
    }

    /// A URL list naming these nodes, `first` first.
    #[allow(dead_code, reason = "the bench suite does not start a cluster")]
    pub fn urls(&self, first: usize) -> String {
        let n = self.nodes.len();
        (0..n)
            .map(|i| format!("redis://127.0.0.1:{}/", self.nodes[(first + i) % n].port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A private Redis master with one replica, watched by one sentinel (quorum 1, the master
/// counted down after 1 s): killing the master promotes the replica within seconds.
pub struct RedisSentinel {
    pub master: EngineProcess,
    pub replica: EngineProcess,
    pub sentinel: EngineProcess,
}

impl RedisSentinel {
    /// The service name the sentinel watches.
    pub const SERVICE: &'static str = "wsbmaster";

    /// Starts the three and waits (bounded) until the sentinel knows the replica (without
    /// that it could not fail over); `None` when `redis-server` is missing outside CI.
    #[allow(dead_code, reason = "the bench suite does not start sentinels")]
    pub fn start() -> Option<RedisSentinel> {
        let master = EngineProcess::start(Kind::Redis)?;
        let replicaof = vec![
            "--replicaof".to_string(),
            "127.0.0.1".to_string(),
            master.port.to_string(),
        ];
        let replica = EngineProcess::start_with(Kind::Redis, replicaof, |_| {})?;
        let master_port = master.port;
        let sentinel = EngineProcess::start_with(Kind::Sentinel, Vec::new(), |s| {
            let service = RedisSentinel::SERVICE;
            let config = format!(
                "sentinel monitor {service} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {service} 1000\n\
                 sentinel failover-timeout {service} 5000\n"
            );
            std::fs::write(s.dir.join("sentinel.conf"), config).expect("sentinel.conf");
        })?;
        let cli = sentinel.redis_cli();
        let deadline = Instant::now() + START_WAIT;
        loop {
            let replicas = Command::new(&cli)
                .args([
                    "-p",
                    &sentinel.port.to_string(),
                    "sentinel",
                    "replicas",
                    Self::SERVICE,
                ])
                .output()
                .expect("redis-cli sentinel replicas");
            if String::from_utf8_lossy(&replicas.stdout).contains(&replica.port.to_string()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel does not see the replica within {START_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(RedisSentinel {
            master,
            replica,
            sentinel,
        })
    }

    /// The `redis+sentinel://` URL of the set.
    #[allow(dead_code, reason = "the bench suite does not start sentinels")]
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{}",
            self.sentinel.port,
            Self::SERVICE
        )
    }

    /// The role (`master`, `slave`) the replica reports.
    #[allow(dead_code, reason = "the bench suite does not start sentinels")]
    pub fn replica_role(&self) -> String {
        let out = Command::new(self.replica.redis_cli())
            .args(["-p", &self.replica.port.to_string(), "role"])
            .output()
            .expect("redis-cli role");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }
}
