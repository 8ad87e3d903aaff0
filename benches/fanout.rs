//! Fan-out benchmark of the standalone `wsbroker` binary.
//!
//! The broker runs in its own process (so its CPU time and RSS can be read from `/proc`); the
//! clients run here on a single-threaded tokio runtime with a minimal hand-written WebSocket
//! client, so the load generator stays cheap on a small machine. One publisher SENDs to
//! `/topic/bench` with a bounded in-flight window (a `receipt` every 100 messages, at most
//! 1,000 messages ahead of the last RECEIPT); N subscribers count messages, check the order and
//! measure the latency from the send timestamp carried in each body.
//!
//! This is a measurement, not a test: it prints figures and never asserts on timing.
//!
//! ```text
//! cargo bench --bench fanout                    # default scenarios (< 3 min on 2 cores)
//! cargo bench --bench fanout -- --quick         # 1/10 of the messages (CI smoke run)
//! cargo bench --bench fanout -- --subs 500 --msgs 1000 --size 256
//! cargo bench --bench fanout -- --rate 5000 --latency-secs 5
//! ```
//!
//! Figures also go to `target/bench/fanout.json`. `WSBROKER_BIN` overrides the broker binary.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Semaphore, mpsc, watch};

/// A `rate` that means: no pacing and no window either — the publisher writes as fast as TCP
/// takes it (the broker's flow control is all that slows it).
pub(crate) const UNTHROTTLED: u64 = u64::MAX;

/// Destination every scenario publishes to.
const DEST: &str = "/topic/bench";
/// Every this many messages the publisher asks for a RECEIPT.
const RECEIPT_EVERY: u64 = 100;
/// The publisher never runs more than this many messages ahead of the last RECEIPT.
const WINDOW: u64 = 1_000;
/// ... and never more than this many body bytes (well under the broker's default 8 MiB
/// per-connection outbound bound, so large `--size` values do not trip its slow-consumer rule).
const WINDOW_BYTES: u64 = 2 << 20;
/// Fixed client masking key (RFC 6455 requires masking, not unpredictability here).
const MASK: [u8; 4] = [0x3a, 0x91, 0x5c, 0xe7];
/// Body prefix: 16 hex digits of sequence number, 16 of send time (ns since [`epoch`]).
const STAMP_LEN: usize = 32;
/// Most subscribers connecting at the same time.
pub(crate) const CONNECT_PARALLELISM: usize = 64;
/// A subscriber pings the server this often (keeps idle-timeout servers from closing it).
const KEEPALIVE: Duration = Duration::from_secs(20);
/// Upper bound on the latency samples kept per scenario (deliveries are sampled evenly by seq).
pub(crate) const MAX_SAMPLES: u64 = 1_000_000;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant all send timestamps count from (shared by publisher and subscribers).
pub(crate) fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

pub(crate) fn now_nanos() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct FanoutSpec {
    name: String,
    subs: usize,
    msgs: u64,
}

#[derive(Clone, Debug)]
struct Options {
    fanouts: Vec<FanoutSpec>,
    size: usize,
    rates: Vec<u64>,
    rounds: usize,
    latency_subs: usize,
    latency_secs: f64,
    timeout: Duration,
    quick: bool,
    /// The fan-out scenarios' publisher has no window (see [`UNTHROTTLED`]).
    unthrottled: bool,
    /// `--client N`: also run N subscribers made with the library's own `wsbroker::Client`.
    client_subs: usize,
}

const USAGE: &str = "\
usage: cargo bench --bench fanout -- [options]
  --quick              1/10 of the messages, one round, 0.5 s latency runs
  --unthrottled        the fan-out publisher writes as fast as TCP takes it (no window)
  --subs N --msgs N    run one fan-out scenario of N subscribers x N messages instead
  --size BYTES         message body size (default 64, at least 32)
  --rounds N           rounds per fan-out scenario, each on a fresh broker (default 5)
  --rate MSG/S[,...]   publish rate(s) of the latency runs (default 2000,20000; 0 skips)
  --latency-subs N     subscribers of the latency run (default 100)
  --latency-secs S     duration of the latency run (default 2)
  --timeout S          per-scenario limit from first publish (default 60)
  --client N           also compare N subscribers of the library's own wsbroker::Client with
                       N of this bench's minimal client (CPU per received message; 0 skips)
env: WSBROKER_BIN      broker binary (default: the one cargo built for this bench)";

/// The value after command-line flag `name`, parsed (a `String` takes it as it is).
pub(crate) fn flag_value<T: FromStr>(
    args: &mut impl Iterator<Item = String>,
    name: &str,
) -> Result<T, String> {
    let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
    parse_flag(name, &value)
}

/// `value` of flag `name`, parsed.
pub(crate) fn parse_flag<T: FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{name}: not a number: {value}"))
}

fn parse_options() -> Result<Options, String> {
    let mut subs: Option<usize> = None;
    let mut msgs: Option<u64> = None;
    let mut opts = Options {
        fanouts: Vec::new(),
        size: 64,
        rates: vec![2_000, 20_000],
        rounds: 5,
        latency_subs: 100,
        latency_secs: 2.0,
        timeout: Duration::from_secs(60),
        quick: false,
        unthrottled: false,
        client_subs: 0,
    };
    let mut latency_secs: Option<f64> = None;
    let mut rounds: Option<usize> = None;
    // `cargo test --all-targets` runs this binary without `--bench` (and with a debug broker):
    // a one-round, 1/10-size smoke run then, so the tests stay fast.
    if !std::env::args().any(|a| a == "--bench") {
        opts.quick = true;
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--quick" => opts.quick = true,
            "--unthrottled" => opts.unthrottled = true,
            "--client" => opts.client_subs = flag_value(&mut args, "--client")?,
            "--subs" => subs = Some(flag_value(&mut args, "--subs")?),
            "--msgs" => msgs = Some(flag_value(&mut args, "--msgs")?),
            "--size" => opts.size = flag_value(&mut args, "--size")?,
            "--rate" => {
                opts.rates = flag_value::<String>(&mut args, "--rate")?
                    .split(',')
                    .map(|r| parse_flag("--rate", r.trim()))
                    .collect::<Result<_, _>>()?;
            }
            "--rounds" => rounds = Some(flag_value(&mut args, "--rounds")?),
            "--latency-subs" => opts.latency_subs = flag_value(&mut args, "--latency-subs")?,
            "--latency-secs" => latency_secs = Some(flag_value(&mut args, "--latency-secs")?),
            "--timeout" => {
                opts.timeout = Duration::from_secs_f64(flag_value(&mut args, "--timeout")?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => eprintln!("fanout: ignoring argument {other:?}"),
        }
    }
    if opts.size < STAMP_LEN {
        eprintln!(
            "fanout: --size {} raised to {STAMP_LEN} (sequence + timestamp)",
            opts.size
        );
        opts.size = STAMP_LEN;
    }
    let div = if opts.quick { 10 } else { 1 };
    opts.fanouts = if subs.is_some() || msgs.is_some() {
        let subs = subs.unwrap_or(100);
        let msgs = (msgs.unwrap_or(2_000) / div).max(1);
        vec![FanoutSpec {
            name: format!("fanout-{subs}"),
            subs,
            msgs,
        }]
    } else {
        vec![
            FanoutSpec {
                name: "fanout-100".into(),
                subs: 100,
                msgs: 2_000 / div,
            },
            FanoutSpec {
                name: "fanout-1000".into(),
                subs: 1_000,
                msgs: 200 / div,
            },
        ]
    };
    opts.rounds = rounds.unwrap_or(if opts.quick { 1 } else { 5 }).max(1);
    opts.latency_secs = latency_secs.unwrap_or(if opts.quick { 0.5 } else { 2.0 });
    Ok(opts)
}

// ---------------------------------------------------------------------------------------------
// The broker process
// ---------------------------------------------------------------------------------------------

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"))
}

/// `WSBROKER_BIN`, else the binary cargo built alongside this bench, else
/// `target/release/wsbroker` (built on demand).
pub(crate) fn broker_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("WSBROKER_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("WSBROKER_BIN={} does not exist", bin.display()))
        };
    }
    if let Some(bin) = option_env!("CARGO_BIN_EXE_wsbroker").map(PathBuf::from)
        && bin.is_file()
    {
        return Ok(bin);
    }
    let bin = target_dir().join("release").join("wsbroker");
    if !bin.is_file() {
        eprintln!(
            "fanout: {} missing, running cargo build --release --bin wsbroker",
            bin.display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "wsbroker"])
            .current_dir(manifest_dir())
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() || !bin.is_file() {
            return Err(format!(
                "no broker binary at {}; build it with `cargo build --release --bin wsbroker` \
                 or set WSBROKER_BIN",
                bin.display()
            ));
        }
    }
    Ok(bin)
}

/// The STOMP server a scenario runs against, and how to talk to it.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) server: ServerProcess,
    /// The whole CONNECT frame (NUL-terminated STOMP text).
    pub(crate) connect: Arc<[u8]>,
    /// Destination the publisher sends to and the subscribers subscribe to.
    pub(crate) dest: Arc<str>,
    /// A second node the publisher connects to (cluster and relay runs: subscribers on one
    /// node, the publisher on another); `None`: the publisher uses the subscribers' server.
    pub(crate) publisher_server: Option<ServerProcess>,
    /// Processes whose CPU counts as the server's too (the cluster engine, the relayed
    /// broker), read around each round like the nodes'.
    pub(crate) extra_cpu_pids: Vec<u32>,
    /// Before publishing, wait until the nodes' `/metrics` say the cluster engine is
    /// reachable and holds the subscribers' engine subscription.
    pub(crate) wait_for_cluster: bool,
}

/// The flags every benchmarked `wsbroker` process starts with: a free port on loopback, no
/// heart-beats, quiet logs.
pub(crate) const WSBROKER_BENCH_FLAGS: [&str; 6] = [
    "--listen",
    "127.0.0.1:0",
    "--heartbeat",
    "0",
    "--log",
    "warn",
];

impl Target {
    /// The `wsbroker` binary at `bin`, a fresh process per round.
    pub(crate) fn wsbroker(bin: &Path) -> Target {
        Target {
            server: ServerProcess::Spawn {
                program: bin.to_path_buf(),
                args: WSBROKER_BENCH_FLAGS.map(String::from).to_vec(),
            },
            connect: Arc::from(
                &b"CONNECT\naccept-version:1.2\nhost:bench\nheart-beat:0,0\n\n\0"[..],
            ),
            dest: DEST.into(),
            publisher_server: None,
            extra_cpu_pids: Vec::new(),
            wait_for_cluster: false,
        }
    }
}

/// Where the server under test comes from.
#[derive(Clone, Debug)]
pub(crate) enum ServerProcess {
    /// Started per round as `program args...`; it prints a line containing
    /// `listening websocket ws://HOST:PORT/PATH` on stdout once it accepts connections.
    Spawn { program: PathBuf, args: Vec<String> },
    /// Already running (e.g. RabbitMQ); its CPU time is read from `pid` when known.
    #[allow(dead_code, reason = "only the `suite` bench measures external servers")]
    External {
        addr: SocketAddr,
        path: String,
        pid: Option<u32>,
    },
}

/// The text a spawned server prints before its URL.
const LISTENING: &str = "listening websocket ws://";

/// The server process of one round; a spawned child is killed on drop.
pub(crate) struct Broker {
    child: Option<Child>,
    pid: Option<u32>,
    pub(crate) addr: SocketAddr,
    pub(crate) path: String,
    stopped: bool,
}

impl Broker {
    pub(crate) fn start(server: &ServerProcess) -> Result<Broker, String> {
        match server {
            ServerProcess::Spawn { program, args } => Broker::spawn(program, args),
            ServerProcess::External { addr, path, pid } => Ok(Broker {
                child: None,
                pid: *pid,
                addr: *addr,
                path: path.clone(),
                stopped: false,
            }),
        }
    }

    fn spawn(program: &Path, args: &[String]) -> Result<Broker, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        // Read the listening line on a thread (with a deadline), then keep draining.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(LISTENING) {
                    let _ = tx.send(line[at + LISTENING.len()..].to_string());
                }
            }
        });
        let mut broker = Broker {
            child: Some(child),
            pid: Some(pid),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: String::new(),
            stopped: false,
        };
        let url = rx.recv_timeout(Duration::from_secs(10)).map_err(|_| {
            format!(
                "{} printed no `{LISTENING}` line in 10 s",
                program.display()
            )
        })?;
        let (host, path) = url.split_at(url.find('/').unwrap_or(url.len()));
        broker.addr = host
            .parse()
            .map_err(|_| format!("cannot parse the broker address in {url:?}"))?;
        broker.path = if path.is_empty() {
            "/".into()
        } else {
            path.into()
        };
        Ok(broker)
    }

    /// Server CPU time (user + system) in seconds.
    /// NaN when the server's pid is unknown.
    pub(crate) fn cpu_secs(&self) -> f64 {
        self.pid.map_or(f64::NAN, pid_cpu_secs)
    }

    pub(crate) fn rss_kib(&self) -> u64 {
        self.pid
            .and_then(|pid| proc_status_kib(pid, "VmRSS:"))
            .unwrap_or(0)
    }

    fn hwm_kib(&self) -> u64 {
        self.pid
            .and_then(|pid| proc_status_kib(pid, "VmHWM:"))
            .unwrap_or(0)
    }

    /// SIGTERM, then wait (up to 10 s, then SIGKILL); describes how it ended.
    pub(crate) fn stop(&mut self) -> String {
        if self.stopped {
            return "already stopped".into();
        }
        self.stopped = true;
        let (Some(child), Some(pid)) = (&mut self.child, self.pid) else {
            return "exited cleanly (external server, left running)".into();
        };
        // SAFETY: plain kill(2) on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let took = start.elapsed().as_secs_f64();
                    return if status.success() {
                        format!("exited cleanly in {took:.2} s")
                    } else {
                        format!("exited with {status} after {took:.2} s")
                    };
                }
                Ok(None) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return "did not exit within 10 s of SIGTERM; killed".into();
                }
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if !self.stopped
            && let Some(child) = &mut self.child
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime (fields 14 and 15) of a `/proc/.../stat` file, in clock ticks.
pub(crate) fn proc_cpu_ticks(stat_path: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name may contain spaces and parentheses: fields restart after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // rest starts at field 3 (state); utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

pub(crate) fn self_cpu_secs() -> f64 {
    proc_cpu_ticks("/proc/self/stat").unwrap_or(0) as f64 / clock_ticks()
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Minimal WebSocket + STOMP client
// ---------------------------------------------------------------------------------------------

pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Connects and upgrades; returns the stream and any bytes read past the 101 response.
pub(crate) async fn ws_connect(
    addr: SocketAddr,
    path: &str,
    protocol: Option<&str>,
) -> Result<(TcpStream, BytesMut), String> {
    ws_connect_with(addr, path, protocol, None).await
}

/// [`ws_connect`] offering `extensions` (`Sec-WebSocket-Extensions`); fails when the server
/// does not agree to them.
pub(crate) async fn ws_connect_with(
    addr: SocketAddr,
    path: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Result<(TcpStream, BytesMut), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let protocol = protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default()
        + &extensions
            .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
            .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         {protocol}\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("upgrade request: {e}"))?;
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = buf.split_to(end + 4);
            if extensions.is_some() && find(&head, b"Sec-WebSocket-Extensions: ").is_none() {
                return Err("the server did not agree to the offered extension".into());
            }
            if !head.starts_with(b"HTTP/1.1 101") {
                let line = head[..].split(|&b| b == b'\r').next().unwrap_or_default();
                return Err(format!(
                    "upgrade refused: {}",
                    String::from_utf8_lossy(line)
                ));
            }
            return Ok((stream, buf));
        }
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| format!("upgrade response: {e}"))?;
        if n == 0 {
            return Err("connection closed during the upgrade".into());
        }
    }
}

/// Appends one masked, final client frame.
pub(crate) fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
}

/// Reads unmasked server frames from a byte stream.
pub(crate) struct FrameReader<R> {
    pub(crate) io: R,
    pub(crate) buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn parse(&mut self) -> Result<Option<(u8, Bytes)>, String> {
        let buf = &mut self.buf;
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b1 & 0x80 != 0 {
            return Err("server sent a masked frame".into());
        }
        if b0 & 0x80 == 0 || b0 & 0x0f == 0 {
            return Err("server sent a fragmented message (not expected from wsbroker)".into());
        }
        let (head, len) = match b1 & 0x7f {
            126 if buf.len() >= 4 => (4, u16::from_be_bytes([buf[2], buf[3]]) as usize),
            127 if buf.len() >= 10 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&buf[2..10]);
                (10, u64::from_be_bytes(l) as usize)
            }
            126 | 127 => return Ok(None),
            n => (2, n as usize),
        };
        if buf.len() < head + len {
            buf.reserve(head + len - buf.len());
            return Ok(None);
        }
        buf.advance(head);
        // The opcode, with RSV1 (0x40) kept: a permessage-deflate compressed message.
        Ok(Some((b0 & 0x4f, buf.split_to(len).freeze())))
    }

    /// The next complete frame: `(opcode, payload)`.
    pub(crate) async fn next(&mut self) -> Result<(u8, Bytes), String> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(frame);
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            let n = self
                .io
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed by the broker".into());
            }
        }
    }

    /// The next STOMP frame (text/binary message that is not a heart-beat). Pings are answered
    /// through `pong` when given.
    async fn next_stomp(&mut self, mut pong: Option<&mut OwnedWriteHalf>) -> Result<Bytes, String> {
        loop {
            let (opcode, payload) = self.next().await?;
            match opcode {
                OP_TEXT | OP_BINARY => {
                    if payload.iter().all(|&b| b == b'\n' || b == b'\r') {
                        continue; // STOMP heart-beat
                    }
                    return Ok(payload);
                }
                OP_PING => {
                    if let Some(w) = pong.as_deref_mut() {
                        let mut out = Vec::with_capacity(payload.len() + 8);
                        put_frame(&mut out, OP_PONG, &payload);
                        w.write_all(&out).await.map_err(|e| format!("pong: {e}"))?;
                    }
                }
                OP_CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Err(format!(
                        "broker closed the WebSocket (code {code:?}: {})",
                        String::from_utf8_lossy(payload.get(2..).unwrap_or_default())
                    ));
                }
                _ => {}
            }
        }
    }
}

fn stomp_command(frame: &[u8]) -> &[u8] {
    let end = frame
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(frame.len());
    frame[..end].strip_suffix(b"\r").unwrap_or(&frame[..end])
}

/// Value of the first header `name` (no unescaping; bench values need none).
fn stomp_header<'a>(frame: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let head_end = find(frame, b"\n\n").unwrap_or(frame.len());
    frame[..head_end]
        .split(|&b| b == b'\n')
        .skip(1)
        .find_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            line.strip_prefix(name.as_bytes())?.strip_prefix(b":")
        })
}

fn stomp_body(frame: &[u8]) -> &[u8] {
    let start = find(frame, b"\n\n").map(|i| i + 2).unwrap_or(frame.len());
    let body = &frame[start..];
    body.strip_suffix(b"\0").unwrap_or(body)
}

/// Text of an ERROR frame, for messages.
fn describe_error(frame: &[u8]) -> String {
    let message = stomp_header(frame, "message").unwrap_or_default();
    let message = String::from_utf8_lossy(message)
        .replace("\\c", ":")
        .replace("\\n", " ");
    format!(
        "{} {}: {}",
        String::from_utf8_lossy(stomp_command(frame)),
        message,
        String::from_utf8_lossy(stomp_body(frame)).trim()
    )
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.len() != 16 {
        return None;
    }
    let mut v = 0u64;
    for &d in digits {
        let n = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(n);
    }
    Some(v)
}

/// Sends one STOMP frame in its own WebSocket message.
async fn send_stomp(w: &mut OwnedWriteHalf, stomp: &[u8]) -> Result<(), String> {
    let mut out = Vec::with_capacity(stomp.len() + 14);
    put_frame(&mut out, OP_TEXT, stomp);
    w.write_all(&out).await.map_err(|e| format!("write: {e}"))
}

/// Upgrade + CONNECT/CONNECTED; returns the split connection.
async fn stomp_connect(
    addr: SocketAddr,
    path: &str,
    connect: &[u8],
) -> Result<(FrameReader<tokio::net::tcp::OwnedReadHalf>, OwnedWriteHalf), String> {
    let (stream, leftover) = ws_connect(addr, path, Some("v12.stomp")).await?;
    let (r, mut w) = stream.into_split();
    let mut reader = FrameReader {
        io: r,
        buf: leftover,
    };
    send_stomp(&mut w, connect).await?;
    let frame = reader.next_stomp(Some(&mut w)).await?;
    if stomp_command(&frame) != b"CONNECTED" {
        return Err(format!("CONNECT refused: {}", describe_error(&frame)));
    }
    Ok((reader, w))
}

// ---------------------------------------------------------------------------------------------
// Subscribers and publisher
// ---------------------------------------------------------------------------------------------

/// What one receiving client saw (STOMP subscribers here, raw receivers in the suite).
#[derive(Default)]
pub(crate) struct SubResult {
    pub(crate) received: u64,
    pub(crate) out_of_order: u64,
    pub(crate) latencies_ns: Vec<u64>,
    pub(crate) last_delivery: Option<Instant>,
    pub(crate) error: Option<String>,
    /// The sequence number expected next.
    next_seq: u64,
}

impl SubResult {
    /// Counts message `seq`, sent at `sent_ns` and received at `now_ns`: out of order unless
    /// it is the one expected next; its latency is sampled when `seq` is a multiple of
    /// `sample_every`.
    pub(crate) fn record(&mut self, seq: u64, sent_ns: u64, now_ns: u64, sample_every: u64) {
        if seq != self.next_seq {
            self.out_of_order += 1;
        }
        self.next_seq = seq + 1;
        self.received += 1;
        if seq.is_multiple_of(sample_every) {
            self.latencies_ns.push(now_ns.saturating_sub(sent_ns));
        }
    }
}

/// Address, path and STOMP dialect of the server of a round, shared by its clients.
#[derive(Clone)]
struct Endpoint {
    addr: SocketAddr,
    path: Arc<str>,
    connect: Arc<[u8]>,
    dest: Arc<str>,
}

async fn subscriber(
    endpoint: Endpoint,
    msgs: u64,
    sample_every: u64,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
    mut stop: watch::Receiver<bool>,
) -> SubResult {
    let mut result = SubResult::default();
    let setup = async {
        let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
        let (mut reader, mut w) =
            stomp_connect(endpoint.addr, &endpoint.path, &endpoint.connect).await?;
        let subscribe = format!(
            "SUBSCRIBE\nid:0\ndestination:{}\nreceipt:s\n\n\0",
            endpoint.dest
        );
        send_stomp(&mut w, subscribe.as_bytes()).await?;
        let frame = reader.next_stomp(Some(&mut w)).await?;
        if stomp_command(&frame) != b"RECEIPT" {
            return Err(format!("SUBSCRIBE refused: {}", describe_error(&frame)));
        }
        Ok((reader, w))
    };
    let (mut reader, mut w) = match setup.await {
        Ok(conn) => {
            let _ = ready.send(Ok(()));
            conn
        }
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            result.error = Some(e);
            return result;
        }
    };
    drop(ready);
    result
        .latencies_ns
        .reserve((msgs / sample_every + 1) as usize);
    // Servers such as RabbitMQ Web-STOMP (Cowboy) close a WebSocket that has sent nothing for
    // 60 s, which a subscriber of a long run does: ping now and then.
    let start = tokio::time::Instant::now();
    let mut keepalive = tokio::time::interval_at(start + KEEPALIVE, KEEPALIVE);
    enum Next {
        Frame(Result<Bytes, String>),
        Keepalive,
        Stop,
    }
    while result.received < msgs {
        let next = tokio::select! {
            biased;
            _ = keepalive.tick() => Next::Keepalive,
            frame = reader.next_stomp(Some(&mut w)) => Next::Frame(frame),
            _ = stop.changed() => Next::Stop,
        };
        let frame = match next {
            Next::Frame(frame) => frame,
            Next::Keepalive => {
                let mut ping = Vec::with_capacity(8);
                put_frame(&mut ping, OP_PING, b"");
                if let Err(e) = w.write_all(&ping).await {
                    result.error = Some(format!("ping: {e}"));
                    break;
                }
                continue;
            }
            Next::Stop => {
                let got = result.received;
                result.error = Some(format!("timed out after {got} of {msgs} messages"));
                break;
            }
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                result.error = Some(e);
                break;
            }
        };
        if stomp_command(&frame) != b"MESSAGE" {
            result.error = Some(format!("unexpected frame {}", describe_error(&frame)));
            break;
        }
        let now = now_nanos();
        let body = stomp_body(&frame);
        let (Some(seq), Some(sent)) = (
            body.get(..16).and_then(parse_hex),
            body.get(16..32).and_then(parse_hex),
        ) else {
            result.error = Some("MESSAGE body without a sequence/timestamp stamp".into());
            break;
        };
        result.record(seq, sent, now, sample_every);
    }
    result.last_delivery = Some(Instant::now());
    result
}

struct PubResult {
    first_send: Instant,
    last_send: Instant,
    sent: u64,
    error: Option<String>,
}

/// Publishes `msgs` messages of `size` bytes, as fast as the window allows or at `rate` msg/s.
async fn publisher(
    endpoint: &Endpoint,
    msgs: u64,
    size: usize,
    rate: Option<u64>,
    mut stop: watch::Receiver<bool>,
) -> PubResult {
    let mut result = PubResult {
        first_send: Instant::now(),
        last_send: Instant::now(),
        sent: 0,
        error: None,
    };
    let (mut reader, mut w) =
        match stomp_connect(endpoint.addr, &endpoint.path, &endpoint.connect).await {
            Ok(conn) => conn,
            Err(e) => {
                result.error = Some(format!("publisher: {e}"));
                return result;
            }
        };
    // Receipts arrive in order: `acked` = messages the broker has fully routed.
    let (acked_tx, mut acked_rx) = watch::channel((0u64, None::<String>));
    let receipts = tokio::spawn(async move {
        loop {
            let frame = match reader.next_stomp(None).await {
                Ok(frame) => frame,
                Err(e) => {
                    acked_tx.send_modify(|s| s.1 = Some(e));
                    return;
                }
            };
            let id = stomp_header(&frame, "receipt-id")
                .and_then(|id| std::str::from_utf8(id).ok())
                .and_then(|id| id.strip_prefix('r'))
                .and_then(|id| id.parse::<u64>().ok());
            match (stomp_command(&frame), id) {
                (b"RECEIPT", Some(seq)) => acked_tx.send_modify(|s| s.0 = s.0.max(seq + 1)),
                _ => {
                    acked_tx.send_modify(|s| s.1 = Some(describe_error(&frame)));
                    return;
                }
            }
        }
    });

    let padding = vec![b'x'; size - STAMP_LEN];
    let window = WINDOW.min(WINDOW_BYTES / (size as u64 + 128)).max(1);
    let receipt_every = RECEIPT_EVERY.min(window.div_ceil(2));
    let mut stomp = Vec::with_capacity(size + 128);
    let mut out = Vec::with_capacity(32 * 1024);
    let start = Instant::now();
    result.first_send = start;
    let unthrottled = rate == Some(UNTHROTTLED);
    let interval = rate
        .filter(|_| !unthrottled)
        .map(|r| Duration::from_secs_f64(1.0 / r.max(1) as f64));
    'send: for seq in 0..msgs {
        // Pacing: flush what is encoded, then sleep until this message is due.
        if let Some(interval) = interval {
            let due = start + interval.mul_f64(seq as f64);
            if Instant::now() < due {
                if !out.is_empty() {
                    if let Err(e) = w.write_all(&out).await {
                        result.error = Some(format!("publisher write: {e}"));
                        break 'send;
                    }
                    out.clear();
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = stop.changed() => {
                        result.error = Some("publisher stopped by the timeout".into());
                        break 'send;
                    }
                }
            }
        }
        // Window: never more than `window` messages past the last receipt.
        if !unthrottled && seq >= acked_rx.borrow().0 + window {
            if !out.is_empty() {
                if let Err(e) = w.write_all(&out).await {
                    result.error = Some(format!("publisher write: {e}"));
                    break 'send;
                }
                out.clear();
            }
            let wait = acked_rx.wait_for(|(acked, err)| err.is_some() || seq < acked + window);
            tokio::select! {
                r = wait => {
                    if let Err(e) = r {
                        result.error = Some(format!("publisher: {e}"));
                        break 'send;
                    }
                }
                _ = stop.changed() => {
                    result.error = Some("publisher timed out waiting for a RECEIPT".into());
                    break 'send;
                }
            }
        }
        if let Some(e) = &acked_rx.borrow().1 {
            result.error = Some(format!("publisher: {e}"));
            break 'send;
        }
        let with_receipt = (seq + 1) % receipt_every == 0 || seq + 1 == msgs;
        stomp.clear();
        stomp.extend_from_slice(b"SEND\ndestination:");
        stomp.extend_from_slice(endpoint.dest.as_bytes());
        stomp.extend_from_slice(b"\ncontent-type:text/plain\n");
        if with_receipt {
            let _ = writeln!(ByteWriter(&mut stomp), "receipt:r{seq}");
        }
        let _ = write!(
            ByteWriter(&mut stomp),
            "content-length:{size}\n\n{seq:016x}{:016x}",
            now_nanos()
        );
        stomp.extend_from_slice(&padding);
        stomp.push(0);
        put_frame(&mut out, OP_TEXT, &stomp);
        result.sent = seq + 1;
        if with_receipt || out.len() >= 16 * 1024 {
            if let Err(e) = w.write_all(&out).await {
                result.error = Some(format!("publisher write: {e}"));
                break 'send;
            }
            out.clear();
        }
    }
    result.last_send = Instant::now();
    // Wait for the final receipt so the publisher connection outlives its last message.
    if result.error.is_none() {
        let total = result.sent;
        let wait = acked_rx.wait_for(|(acked, err)| err.is_some() || *acked >= total);
        tokio::select! {
            r = wait => {
                if let Ok(s) = r
                    && let Some(e) = &s.1
                {
                    result.error = Some(format!("publisher: {e}"));
                }
            }
            _ = stop.changed() => {
                result.error = Some("publisher timed out waiting for the last RECEIPT".into());
            }
        }
    }
    receipts.abort();
    result
}

/// `fmt::Write` into a byte vector.
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) name: String,
    pub(crate) subs: usize,
    pub(crate) msgs: u64,
    pub(crate) size: usize,
    pub(crate) rate: Option<u64>,
    pub(crate) rounds: usize,
    pub(crate) connect_secs: f64,
    pub(crate) elapsed_secs: f64,
    pub(crate) publish_secs: f64,
    pub(crate) expected: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) out_of_order: u64,
    pub(crate) failed_subscribers: usize,
    pub(crate) deliveries_per_sec: f64,
    pub(crate) round_rate_min: f64,
    pub(crate) round_rate_max: f64,
    pub(crate) server_cpu_secs: f64,
    pub(crate) server_cpu_us_per_delivery: f64,
    pub(crate) server_cpu_util: f64,
    pub(crate) client_cpu_secs: f64,
    pub(crate) client_cpu_us_per_delivery: f64,
    pub(crate) latency_samples: usize,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
    pub(crate) rss_idle_kib: u64,
    pub(crate) rss_subscribed_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) hwm_kib: u64,
    pub(crate) kib_per_connection: f64,
    pub(crate) errors: Vec<String>,
    pub(crate) broker_exit: String,
}

/// Raw figures of one round (one fresh broker process).
#[derive(Default)]
struct Round {
    connect_secs: f64,
    elapsed_secs: f64,
    publish_secs: f64,
    wall_secs: f64,
    expected: u64,
    received: u64,
    out_of_order: u64,
    failed_subscribers: usize,
    server_cpu_secs: f64,
    client_cpu_secs: f64,
    latencies_ns: Vec<u64>,
    rss_idle_kib: u64,
    rss_subscribed_kib: u64,
    rss_after_kib: u64,
    hwm_kib: u64,
    ready: usize,
    errors: Vec<String>,
    broker_exit: String,
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// One round: fresh broker, connect the subscribers, publish, wait for every delivery.
async fn run_round(
    target: &Target,
    subs: usize,
    msgs: u64,
    size: usize,
    rate: Option<u64>,
    timeout: Duration,
    sample_every: u64,
) -> Result<Round, String> {
    let mut broker = Broker::start(&target.server)?;
    let publisher_node = match &target.publisher_server {
        Some(server) => Some(Broker::start(server)?),
        None => None,
    };
    // Let the freshly started process settle before the idle RSS reading.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut round = Round {
        expected: subs as u64 * msgs,
        rss_idle_kib: broker.rss_kib(),
        ..Round::default()
    };
    let endpoint = Endpoint {
        addr: broker.addr,
        path: broker.path.as_str().into(),
        connect: target.connect.clone(),
        dest: target.dest.clone(),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLELISM));

    let connect_start = Instant::now();
    let handles: Vec<_> = (0..subs)
        .map(|_| {
            tokio::spawn(subscriber(
                endpoint.clone(),
                msgs,
                sample_every,
                gate.clone(),
                ready_tx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    drop(ready_tx);
    let connect_deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while round.ready + round.failed_subscribers < subs {
        match tokio::time::timeout_at(connect_deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => round.ready += 1,
            Ok(Some(Err(e))) => {
                round.failed_subscribers += 1;
                if round.errors.len() < 3 {
                    round.errors.push(format!("subscriber setup: {e}"));
                }
            }
            Ok(None) => break,
            Err(_) => {
                round.errors.push(format!(
                    "only {} of {subs} subscribers ready after 60 s",
                    round.ready
                ));
                break;
            }
        }
    }
    round.connect_secs = connect_start.elapsed().as_secs_f64();
    if target.wait_for_cluster {
        let nodes = [Some(&broker), publisher_node.as_ref()];
        for (node, subscriptions) in nodes.into_iter().flatten().zip([1, 0]) {
            if let Err(e) = wait_for_cluster(node.addr, subscriptions).await {
                round.errors.push(e);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    round.rss_subscribed_kib = broker.rss_kib();
    let publisher_endpoint = match &publisher_node {
        Some(node) => Endpoint {
            addr: node.addr,
            path: node.path.as_str().into(),
            ..endpoint.clone()
        },
        None => endpoint.clone(),
    };
    let servers_cpu = |broker: &Broker, publisher_node: &Option<Broker>| {
        broker.cpu_secs()
            + publisher_node.as_ref().map_or(0.0, Broker::cpu_secs)
            + target
                .extra_cpu_pids
                .iter()
                .map(|pid| pid_cpu_secs(*pid))
                .sum::<f64>()
    };

    let server_cpu0 = servers_cpu(&broker, &publisher_node);
    let client_cpu0 = self_cpu_secs();
    let run_start = Instant::now();
    let stop_at = tokio::time::Instant::from_std(run_start + timeout);
    let timer = tokio::spawn(async move {
        tokio::time::sleep_until(stop_at).await;
        let _ = stop_tx.send(true);
    });
    let published = publisher(&publisher_endpoint, msgs, size, rate, stop_rx.clone()).await;
    if let Some(e) = &published.error {
        round.errors.push(e.clone());
    }
    round.publish_secs = (published.last_send - published.first_send).as_secs_f64();
    let mut last_delivery = published.first_send;
    let mut sub_errors = 0usize;
    for handle in handles {
        let Ok(r) = handle.await else {
            round.errors.push("subscriber task panicked".into());
            continue;
        };
        round.received += r.received;
        round.out_of_order += r.out_of_order;
        round.latencies_ns.extend_from_slice(&r.latencies_ns);
        if r.received > 0
            && let Some(t) = r.last_delivery
        {
            last_delivery = last_delivery.max(t);
        }
        if let Some(e) = r.error
            && !e.starts_with("subscriber setup")
        {
            sub_errors += 1;
            if sub_errors <= 3 {
                round.errors.push(format!("subscriber: {e}"));
            }
        }
    }
    round.wall_secs = run_start.elapsed().as_secs_f64();
    timer.abort();
    if sub_errors > 3 {
        round
            .errors
            .push(format!("... {sub_errors} subscribers ended with an error"));
    }
    round.server_cpu_secs = servers_cpu(&broker, &publisher_node) - server_cpu0;
    round.client_cpu_secs = self_cpu_secs() - client_cpu0;
    round.rss_after_kib = broker.rss_kib();
    round.hwm_kib = broker.hwm_kib();
    round.elapsed_secs = (last_delivery - published.first_send).as_secs_f64();
    // Every client is closed by now (the tasks ended); stop the broker.
    drop(stop_rx);
    tokio::time::sleep(Duration::from_millis(50)).await;
    round.broker_exit = broker.stop();
    if let Some(mut node) = publisher_node {
        let exit = node.stop();
        if !exit.starts_with("exited cleanly") {
            round.broker_exit = format!("publisher node {exit}");
        }
    }
    Ok(round)
}

/// CPU time (user + system) of process `pid` in seconds.
pub(crate) fn pid_cpu_secs(pid: u32) -> f64 {
    let ticks = proc_cpu_ticks(&format!("/proc/{pid}/stat")).unwrap_or(0);
    ticks as f64 / clock_ticks()
}

/// Polls the node's `/metrics` (bounded, 15 s) until the cluster engine is reachable and holds
/// at least `subscriptions` engine subscriptions of the node's.
async fn wait_for_cluster(addr: SocketAddr, subscriptions: u64) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let figure = |text: &str, name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    let mut last = String::new();
    loop {
        if let Ok(text) = http_get(addr, "/metrics").await {
            let available = figure(&text, "wsbroker_cluster_available");
            let held = figure(&text, "wsbroker_cluster_engine_subscriptions");
            if available == Some(1) && held.is_some_and(|n| n >= subscriptions) {
                return Ok(());
            }
            last = format!("available {available:?}, engine subscriptions {held:?}");
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("cluster node {addr} not ready after 15 s ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The body of `GET path` (HTTP/1.0, the connection closed by the server).
async fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    Ok(text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string()))
}

/// Runs `rounds` rounds and aggregates them: rates and CPU per delivery over the sums,
/// latency percentiles over all samples, memory averaged.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_scenario(
    target: &Target,
    name: &str,
    subs: usize,
    msgs: u64,
    size: usize,
    rate: Option<u64>,
    rounds: usize,
    timeout: Duration,
) -> Result<Report, String> {
    let rounds = rounds.max(1);
    let mut report = Report {
        name: name.to_string(),
        subs,
        msgs,
        size,
        rate,
        rounds,
        round_rate_min: f64::INFINITY,
        round_rate_max: 0.0,
        ..Report::default()
    };
    let sample_every = (subs as u64 * msgs * rounds as u64 / MAX_SAMPLES).max(1);
    let mut latencies = Vec::new();
    let (mut idle, mut subscribed, mut per_conn, mut wall) = (0.0, 0.0, 0.0, 0.0);
    let mut exits = Vec::new();
    for i in 0..rounds {
        let round = run_round(target, subs, msgs, size, rate, timeout, sample_every).await?;
        report.connect_secs += round.connect_secs / rounds as f64;
        report.elapsed_secs += round.elapsed_secs;
        report.publish_secs += round.publish_secs;
        report.expected += round.expected;
        report.received += round.received;
        report.out_of_order += round.out_of_order;
        report.failed_subscribers += round.failed_subscribers;
        report.server_cpu_secs += round.server_cpu_secs;
        report.client_cpu_secs += round.client_cpu_secs;
        wall += round.wall_secs;
        let round_rate = round.received as f64 / round.elapsed_secs.max(1e-9);
        report.round_rate_min = report.round_rate_min.min(round_rate);
        report.round_rate_max = report.round_rate_max.max(round_rate);
        latencies.extend_from_slice(&round.latencies_ns);
        idle += round.rss_idle_kib as f64 / rounds as f64;
        subscribed += round.rss_subscribed_kib as f64 / rounds as f64;
        if round.ready > 0 {
            per_conn += (round.rss_subscribed_kib as f64 - round.rss_idle_kib as f64)
                / round.ready as f64
                / rounds as f64;
        }
        report.rss_after_kib = report.rss_after_kib.max(round.rss_after_kib);
        report.hwm_kib = report.hwm_kib.max(round.hwm_kib);
        for e in round.errors {
            report.errors.push(format!("round {}: {e}", i + 1));
        }
        exits.push(round.broker_exit);
    }
    report.rss_idle_kib = idle.round() as u64;
    report.rss_subscribed_kib = subscribed.round() as u64;
    report.kib_per_connection = per_conn;
    report.lost = report.expected.saturating_sub(report.received);
    let delivered = report.received.max(1) as f64;
    report.deliveries_per_sec = report.received as f64 / report.elapsed_secs.max(1e-9);
    report.server_cpu_us_per_delivery = report.server_cpu_secs * 1e6 / delivered;
    report.server_cpu_util = report.server_cpu_secs / wall.max(1e-9);
    report.client_cpu_us_per_delivery = report.client_cpu_secs * 1e6 / delivered;
    latencies.sort_unstable();
    report.latency_samples = latencies.len();
    report.p50_us = percentile(&latencies, 0.50);
    report.p99_us = percentile(&latencies, 0.99);
    report.p999_us = percentile(&latencies, 0.999);
    report.max_us = latencies.last().map_or(f64::NAN, |&m| m as f64 / 1000.0);
    report.broker_exit = match exits.iter().find(|e| !e.starts_with("exited cleanly")) {
        Some(bad) => bad.clone(),
        None => exits.last().cloned().unwrap_or_default(),
    };
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// The library's own client as the load generator
// ---------------------------------------------------------------------------------------------

/// CPU seconds of this process's threads named `name` (the `wsbroker::Client` network threads
/// are "wsbroker-client"), by thread id, from `/proc/self/task`.
fn thread_cpu_secs(name: &str) -> std::collections::HashMap<u32, f64> {
    let mut out = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        if let Some(ticks) = proc_cpu_ticks(&dir.join("stat").to_string_lossy()) {
            out.insert(tid, ticks as f64 / clock_ticks());
        }
    }
    out
}

/// `subs` subscribers made with `wsbroker::Client` (callback delivery counting messages, the
/// cheapest host) and a publisher client SENDing `msgs` messages (a receipt every
/// `RECEIPT_EVERY`), against a fresh broker; then the same shape with this bench's minimal
/// client. Prints the CPU each spends per received message: the library client's network
/// threads alone, and the whole process (publisher included) for both, like the fan-out rows.
fn client_comparison(
    runtime: &tokio::runtime::Runtime,
    target: &Target,
    subs: usize,
    msgs: u64,
    size: usize,
    timeout: Duration,
) -> Result<Report, String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use wsbroker::{AckMode, Client, ClientConfig, ClientDelivery};

    let broker = Broker::start(&target.server)?;
    let url = format!("ws://{}{}", broker.addr, broker.path);
    let received = Arc::new(AtomicU64::new(0));
    let config = |delivery: ClientDelivery| {
        let mut c = ClientConfig::new(url.as_str());
        c.host = Some("bench".into());
        c.heartbeat = (Duration::ZERO, Duration::ZERO);
        c.tls.system_roots = false;
        c.delivery = delivery;
        c
    };
    let mut subscribers = Vec::with_capacity(subs);
    for _ in 0..subs {
        let counter = received.clone();
        let client = Client::new(config(ClientDelivery::Callback(Arc::new(move |event| {
            if let wsbroker::ClientEvent::Message(m) = event {
                std::hint::black_box(&m.body);
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }))))
        .map_err(|e| e.to_string())?;
        client
            .connect(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        client
            .subscribe_confirmed(DEST, AckMode::Auto, &[], Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        subscribers.push(client);
    }
    let sub_threads0 = thread_cpu_secs("wsbroker-client");
    let publisher = Client::new(config(ClientDelivery::default())).map_err(|e| e.to_string())?;
    publisher
        .connect(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![b'x'; size.max(STAMP_LEN)]);
    let process0 = self_cpu_secs();
    let server0 = broker.cpu_secs();
    let started = Instant::now();
    for i in 1..=msgs {
        let result = if i % RECEIPT_EVERY == 0 {
            publisher.send_with_receipt(DEST, &[], body.clone(), Duration::from_secs(10))
        } else {
            publisher.send(DEST, &[], body.clone())
        };
        result.map_err(|e| format!("publish {i}: {e}"))?;
    }
    let expected = msgs * subs as u64;
    let deadline = started + timeout;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let got = received.load(Ordering::Relaxed);
    let process = self_cpu_secs() - process0;
    let server = broker.cpu_secs() - server0;
    let sub_threads: f64 = thread_cpu_secs("wsbroker-client")
        .iter()
        .filter_map(|(tid, cpu)| sub_threads0.get(tid).map(|before| cpu - before))
        .sum();
    drop(publisher);
    drop(subscribers);
    drop(broker);
    let per = |cpu: f64| cpu * 1e6 / got.max(1) as f64;
    println!(
        "library client x{subs} subscribers, {msgs} msgs of {size} B: received {got}/{expected} in {elapsed:.2} s; \
         client CPU per received message: {:.2} us (subscriber network threads), {:.2} us (whole process, publisher included); \
         broker {:.2} us",
        per(sub_threads),
        per(process),
        per(server),
    );
    let minimal = runtime.block_on(run_scenario(
        target,
        "minimal-client",
        subs,
        msgs,
        size,
        None,
        1,
        timeout,
    ))?;
    println!(
        "bench's minimal client x{subs}: client CPU per received message {:.2} us (whole process, publisher included); \
         library client / minimal client (whole process): {:.2}x",
        minimal.client_cpu_us_per_delivery,
        per(process) / minimal.client_cpu_us_per_delivery.max(1e-9)
    );
    Ok(Report {
        name: "lib-client".into(),
        subs,
        msgs,
        size,
        rounds: 1,
        expected,
        received: got,
        lost: expected.saturating_sub(got),
        elapsed_secs: elapsed,
        deliveries_per_sec: got as f64 / elapsed.max(1e-9),
        server_cpu_secs: server,
        server_cpu_us_per_delivery: per(server),
        client_cpu_secs: process,
        client_cpu_us_per_delivery: per(process),
        ..Report::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

pub(crate) fn print_line(r: &Report) {
    let how = match r.rate {
        Some(UNTHROTTLED) => "unthrottled".to_string(),
        Some(rate) => format!("@ {rate} msg/s"),
        None if r.rounds > 1 => format!(
            "x {} rounds ({:.0}..{:.0}/s)",
            r.rounds, r.round_rate_min, r.round_rate_max
        ),
        None => String::new(),
    };
    println!(
        "{:<12} {} subs x {} msgs x {} B {how}: {:.0} deliveries/s, server {:.2} us/delivery \
         ({:.0}% of a core), lost {}, out-of-order {}, latency p50 {:.0} us p99 {:.0} us max {:.0} us, \
         RSS {} -> {} KiB ({:.1} KiB/conn), subscribers ready in {:.2} s",
        r.name,
        r.subs,
        r.msgs,
        r.size,
        r.deliveries_per_sec,
        r.server_cpu_us_per_delivery,
        r.server_cpu_util * 100.0,
        r.lost,
        r.out_of_order,
        r.p50_us,
        r.p99_us,
        r.max_us,
        r.rss_idle_kib,
        r.rss_subscribed_kib,
        r.kib_per_connection,
        r.connect_secs,
    );
    for e in &r.errors {
        println!("    ! {e}");
    }
    if !r.broker_exit.starts_with("exited cleanly") {
        println!("    ! broker {}", r.broker_exit);
    }
}

fn print_table(reports: &[Report]) {
    println!();
    println!(
        "{:<12} {:>5} {:>6} {:>5} {:>11} {:>8} {:>8} {:>6} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "scenario",
        "subs",
        "msgs",
        "size",
        "deliv/s",
        "srv us/d",
        "cli us/d",
        "lost",
        "p50 us",
        "p99 us",
        "max us",
        "RSS KiB",
        "KiB/conn"
    );
    for r in reports {
        let name = match r.rate {
            Some(rate) => format!("{}@{}", r.name, rate),
            None => r.name.clone(),
        };
        println!(
            "{:<12} {:>5} {:>6} {:>5} {:>11.0} {:>8.2} {:>8.2} {:>6} {:>8.0} {:>8.0} {:>8.0} {:>10} {:>9.1}",
            name,
            r.subs,
            r.msgs,
            r.size,
            r.deliveries_per_sec,
            r.server_cpu_us_per_delivery,
            r.client_cpu_us_per_delivery,
            r.lost,
            r.p50_us,
            r.p99_us,
            r.max_us,
            r.rss_subscribed_kib,
            r.kib_per_connection
        );
    }
    println!(
        "(deliv/s: deliveries / (first publish -> last delivery); srv/cli us/d: server / bench \
         process CPU per delivery; RSS KiB: broker RSS with the subscribers connected)"
    );
}

pub(crate) fn json_num(out: &mut String, key: &str, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "\"{key}\": {v:.3}, ");
    } else {
        let _ = write!(out, "\"{key}\": null, ");
    }
}

pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn to_json(opts: &Options, reports: &[Report]) -> String {
    let mut out = String::from("{\n  \"bench\": \"fanout\",\n");
    let _ = writeln!(out, "  \"quick\": {},", opts.quick);
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let _ = writeln!(out, "  \"cpus\": {cpus},");
    out.push_str("  \"scenarios\": [\n");
    for (i, r) in reports.iter().enumerate() {
        out.push_str("    {");
        let _ = write!(out, "\"name\": {}, ", json_str(&r.name));
        let _ = write!(
            out,
            "\"subscribers\": {}, \"messages\": {}, \"size\": {}, ",
            r.subs, r.msgs, r.size
        );
        match r.rate {
            Some(rate) => {
                let _ = write!(out, "\"rate\": {rate}, ");
            }
            None => out.push_str("\"rate\": null, "),
        }
        let _ = write!(out, "\"rounds\": {}, ", r.rounds);
        let _ = write!(
            out,
            "\"expected\": {}, \"received\": {}, \"lost\": {}, \"out_of_order\": {}, \
             \"failed_subscribers\": {}, ",
            r.expected, r.received, r.lost, r.out_of_order, r.failed_subscribers
        );
        json_num(&mut out, "connect_secs", r.connect_secs);
        json_num(&mut out, "publish_secs", r.publish_secs);
        json_num(&mut out, "elapsed_secs", r.elapsed_secs);
        json_num(&mut out, "deliveries_per_sec", r.deliveries_per_sec);
        json_num(&mut out, "round_deliveries_per_sec_min", r.round_rate_min);
        json_num(&mut out, "round_deliveries_per_sec_max", r.round_rate_max);
        json_num(&mut out, "server_cpu_secs", r.server_cpu_secs);
        json_num(
            &mut out,
            "server_cpu_us_per_delivery",
            r.server_cpu_us_per_delivery,
        );
        json_num(&mut out, "server_cpu_utilization", r.server_cpu_util);
        json_num(&mut out, "client_cpu_secs", r.client_cpu_secs);
        json_num(
            &mut out,
            "client_cpu_us_per_delivery",
            r.client_cpu_us_per_delivery,
        );
        let _ = write!(out, "\"latency_samples\": {}, ", r.latency_samples);
        json_num(&mut out, "latency_p50_us", r.p50_us);
        json_num(&mut out, "latency_p99_us", r.p99_us);
        json_num(&mut out, "latency_p999_us", r.p999_us);
        json_num(&mut out, "latency_max_us", r.max_us);
        let _ = write!(
            out,
            "\"rss_idle_kib\": {}, \"rss_subscribed_kib\": {}, \"rss_after_kib\": {}, \
             \"rss_peak_kib\": {}, ",
            r.rss_idle_kib, r.rss_subscribed_kib, r.rss_after_kib, r.hwm_kib
        );
        json_num(&mut out, "kib_per_connection", r.kib_per_connection);
        let errors: Vec<String> = r.errors.iter().map(|e| json_str(e)).collect();
        let _ = write!(
            out,
            "\"errors\": [{}], \"broker_exit\": {}}}",
            errors.join(", "),
            json_str(&r.broker_exit)
        );
        out.push_str(if i + 1 < reports.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ]\n}\n");
    out
}

fn main() -> ExitCode {
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fanout: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let bin = match broker_binary() {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("fanout: {e}");
            return ExitCode::FAILURE;
        }
    };
    epoch();
    println!(
        "wsbroker fan-out bench: broker {} ({} CPUs){}",
        bin.display(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        if opts.quick { ", quick" } else { "" }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut runs: Vec<(String, usize, u64, Option<u64>, usize)> = opts
        .fanouts
        .iter()
        .map(|f| {
            let pace = opts.unthrottled.then_some(UNTHROTTLED);
            (f.name.clone(), f.subs, f.msgs, pace, opts.rounds)
        })
        .collect();
    for &rate in opts.rates.iter().filter(|&&r| r > 0) {
        if opts.latency_subs > 0 {
            let msgs = ((rate as f64 * opts.latency_secs).round() as u64).max(1);
            runs.push(("latency".into(), opts.latency_subs, msgs, Some(rate), 1));
        }
    }
    let target = Target::wsbroker(&bin);
    for (name, subs, msgs, rate, rounds) in runs {
        match runtime.block_on(run_scenario(
            &target,
            &name,
            subs,
            msgs,
            opts.size,
            rate,
            rounds,
            opts.timeout,
        )) {
            Ok(report) => {
                print_line(&report);
                reports.push(report);
            }
            Err(e) => {
                eprintln!("fanout: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if opts.client_subs > 0 {
        let msgs = if opts.quick { 2_000 } else { 20_000 };
        match client_comparison(
            &runtime,
            &target,
            opts.client_subs,
            msgs,
            opts.size,
            opts.timeout,
        ) {
            Ok(report) => reports.push(report),
            Err(e) => {
                eprintln!("fanout: client comparison: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_table(&reports);
    println!("total bench time {:.1} s", started.elapsed().as_secs_f64());
    let dir = target_dir().join("bench");
    let file = dir.join("fanout.json");
    match std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&file, to_json(&opts, &reports)))
    {
        Ok(()) => println!("figures written to {}", file.display()),
        Err(e) => eprintln!("fanout: cannot write {}: {e}", file.display()),
    }
    ExitCode::SUCCESS
}
