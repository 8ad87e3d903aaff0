//! Server memory per idle subscribed STOMP-over-WebSocket connection.
//!
//! Starts `wsbroker --listen 127.0.0.1:0 --heartbeat 0 --log warn` as a child process, opens N
//! connections (default 10,000) that each upgrade, CONNECT (`heart-beat:0,0`) and SUBSCRIBE to
//! `/topic/idle/<i % 100>` with a receipt, waits for every RECEIPT and then reads the broker's
//! `/proc/PID/status`: KiB per connection = (VmRSS with the connections − VmRSS before) / N, and
//! the marginal figure between N/2 and N connections (which leaves out one-time growth such as
//! the broker's session map reaching its size or a malloc arena being created).
//!
//! By default it runs twice, with glibc's default malloc arenas and with `MALLOC_ARENA_MAX=2`.
//! The clients are plain blocking sockets on a few threads, pipelined in batches, holding
//! nothing but the socket once set up.
//!
//! ```text
//! cargo bench --bench idle_memory                      # 10,000 connections, both variants
//! cargo bench --bench idle_memory -- --conns 2000
//! cargo bench --bench idle_memory -- --arena default   # or --arena 2, --arena both
//! cargo bench --bench idle_memory -- --deflate         # clients negotiate permessage-deflate
//! ```
//!
//! `WSBROKER_BIN` overrides the broker binary. Nothing is asserted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Fixed client masking key.
const MASK: [u8; 4] = [0x3a, 0x91, 0x5c, 0xe7];
/// Client threads.
const THREADS: usize = 4;
/// Connections a thread sets up at once (requests written for all, then answers read).
const BATCH: usize = 64;
/// Destinations the connections spread over.
const TOPICS: usize = 100;
/// Pause before reading RSS, so the writers have released their buffers.
const SETTLE: Duration = Duration::from_millis(500);
/// `--deflate`: every client offers permessage-deflate (as browsers do).
static OFFER_DEFLATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"))
}

/// `WSBROKER_BIN`, else the binary cargo built alongside this bench, else
/// `target/release/wsbroker` (built on demand).
fn broker_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("WSBROKER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    if let Some(bin) = option_env!("CARGO_BIN_EXE_wsbroker").map(PathBuf::from)
        && bin.is_file()
    {
        return Ok(bin);
    }
    let bin = target_dir().join("release").join("wsbroker");
    if !bin.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--bin", "wsbroker"])
            .current_dir(manifest_dir())
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err("cargo build --release --bin wsbroker failed".into());
        }
    }
    Ok(bin)
}

/// Raises this process's open-file limit (children inherit it).
#[allow(clippy::unnecessary_cast, reason = "rlim_t is not u64 on every target")]
pub(crate) fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let target = want as libc::rlim_t;
        if lim.rlim_cur < target {
            let mut raised = libc::rlimit {
                rlim_cur: target,
                rlim_max: lim.rlim_max.max(target),
            };
            // Without the privilege to raise the hard limit, settle for it.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                raised.rlim_cur = lim.rlim_max.min(target);
                raised.rlim_max = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
            }
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    lim.rlim_cur as u64
}

struct Broker {
    /// `None` for a broker started elsewhere (`--external`).
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
}

impl Broker {
    fn spawn(
        bin: &Path,
        arena_max: Option<u32>,
        max_connections: usize,
        extra_args: &[String],
    ) -> Result<Broker, String> {
        let mut cmd = Command::new(bin);
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--heartbeat",
            "0",
            "--log",
            "warn",
            "--max-connections",
            &max_connections.to_string(),
        ])
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        match arena_max {
            Some(n) => cmd.env("MALLOC_ARENA_MAX", n.to_string()),
            None => cmd.env_remove("MALLOC_ARENA_MAX"),
        };
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("wsbroker listening websocket ws://") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let mut broker = Broker {
            child: Some(child),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let url = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "broker printed no `wsbroker listening websocket` line in 10 s")?;
        let host = &url[..url.find('/').unwrap_or(url.len())];
        broker.addr = host
            .parse()
            .map_err(|_| format!("cannot parse the broker address in {url:?}"))?;
        Ok(broker)
    }

    fn status(&self, key: &str) -> u64 {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", self.pid)) else {
            return 0;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn stop(&mut self) {
        let Some(child) = &mut self.child else { return };
        // SAFETY: kill(2) on our own, not yet reaped child.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child
            && let Ok(None) = child.try_wait()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Appends one masked, final client text frame (payloads here are < 126 bytes).
fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    assert!(payload.len() < 126);
    out.push(0x81);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `done(buf)` says how many bytes form the complete answer.
fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> Result<Option<usize>, String>,
) -> Result<(), String> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(n) = done(buf)? {
            buf.drain(..n);
            return Ok(());
        }
        let n = stream.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed by the broker".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Parses server frames in `buf`; `Some(len)` once frames holding CONNECTED and RECEIPT were
/// seen (in that order).
fn connected_and_receipt(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    let mut seen = 0;
    while buf.len() >= at + 2 {
        let (b0, b1) = (buf[at], buf[at + 1]);
        let (head, len) = match b1 & 0x7f {
            126 if buf.len() >= at + 4 => {
                (4, u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize)
            }
            126 => return Ok(None),
            127 => return Err("unexpected 64-bit frame length".into()),
            n => (2, n as usize),
        };
        if buf.len() < at + head + len {
            return Ok(None);
        }
        let payload = &buf[at + head..at + head + len];
        match b0 & 0x0f {
            0x1 | 0x2 => {
                let expect: &[u8] = if seen == 0 {
                    b"CONNECTED\n"
                } else {
                    b"RECEIPT\n"
                };
                if payload.starts_with(expect) {
                    seen += 1;
                } else if !payload.iter().all(|&b| b == b'\n' || b == b'\r') {
                    let line = payload.split(|&b| b == b'\n').take(3).collect::<Vec<_>>();
                    return Err(format!(
                        "unexpected frame: {}",
                        String::from_utf8_lossy(&line.join(&b' '))
                    ));
                }
            }
            0x8 => return Err("broker closed the WebSocket".into()),
            _ => {}
        }
        at += head + len;
        if seen == 2 {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// Sets up connections `ids` (upgrade, CONNECT, SUBSCRIBE with receipt), batch by batch, and
/// appends the sockets to `out`; `on_ready` runs per finished connection.
fn open_connections(
    addr: SocketAddr,
    ids: std::ops::Range<usize>,
    out: &mut Vec<TcpStream>,
    on_ready: &dyn Fn(),
) -> Result<(), String> {
    let extensions = if OFFER_DEFLATE.load(std::sync::atomic::Ordering::Relaxed) {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: v12.stomp\r\n{extensions}\r\n"
    );
    let mut buf = Vec::with_capacity(1024);
    let mut frames = Vec::with_capacity(256);
    let ids: Vec<usize> = ids.collect();
    for batch in ids.chunks(BATCH) {
        let mut streams = Vec::with_capacity(batch.len());
        for _ in batch {
            let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .map_err(|e| e.to_string())?;
            s.write_all(request.as_bytes())
                .map_err(|e| format!("upgrade request: {e}"))?;
            streams.push(s);
        }
        for s in &mut streams {
            buf.clear();
            read_until(s, &mut buf, |b| Ok(find(b, b"\r\n\r\n").map(|end| end + 4)))?;
            if !buf.is_empty() {
                return Err("bytes after the 101 response before CONNECT".into());
            }
        }
        for (s, &i) in streams.iter_mut().zip(batch) {
            frames.clear();
            put_frame(
                &mut frames,
                b"CONNECT\naccept-version:1.2\nhost:bench\nheart-beat:0,0\n\n\0",
            );
            let sub = format!(
                "SUBSCRIBE\nid:0\ndestination:/topic/idle/{}\nreceipt:r\n\n\0",
                i % TOPICS
            );
            put_frame(&mut frames, sub.as_bytes());
            s.write_all(&frames).map_err(|e| format!("write: {e}"))?;
        }
        for s in &mut streams {
            buf.clear();
            read_until(s, &mut buf, connected_and_receipt)?;
            on_ready();
        }
        out.append(&mut streams);
    }
    Ok(())
}

pub(crate) struct Figures {
    pub(crate) rss_before: u64,
    pub(crate) rss_half: u64,
    pub(crate) rss_all: u64,
    pub(crate) anon_before: u64,
    pub(crate) anon_all: u64,
    pub(crate) hwm: u64,
    pub(crate) threads: u64,
    pub(crate) setup_secs: f64,
}

/// Opens `n` connections on [`THREADS`] threads; `half` runs once when half are up.
fn run_clients(addr: SocketAddr, n: usize, half: &dyn Fn()) -> Result<Vec<TcpStream>, String> {
    // Two phases (half, then the rest), so the RSS at N/2 is read while nothing is in flight.
    let mut all = Vec::with_capacity(n);
    for (lo, hi) in [(0, n / 2), (n / 2, n)] {
        let ready = std::sync::atomic::AtomicUsize::new(0);
        let per = (hi - lo).div_ceil(THREADS).max(1);
        let results: Vec<Result<Vec<TcpStream>, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (lo..hi)
                .step_by(per)
                .map(|start| {
                    let end = (start + per).min(hi);
                    let ready = &ready;
                    scope.spawn(move || {
                        let mut out = Vec::with_capacity(end - start);
                        open_connections(addr, start..end, &mut out, &|| {
                            ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        })
                        .map(|()| out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("client thread panicked".into()))
                })
                .collect()
        });
        for r in results {
            all.extend(r?);
        }
        if lo == 0 {
            half();
        }
    }
    Ok(all)
}

/// Where to connect: a broker this bench starts, or one started elsewhere (address and, for the
/// memory figures, its pid), e.g. under heaptrack.
pub(crate) enum Target<'a> {
    Spawn(&'a Path, Option<u32>),
    /// Started with these extra flags (e.g. a cluster node's).
    #[allow(
        dead_code,
        reason = "the suite starts cluster nodes; this bench does not"
    )]
    SpawnWith(&'a Path, &'a [String]),
    External(SocketAddr, u32),
}

pub(crate) fn measure(target: Target<'_>, n: usize) -> Result<Figures, String> {
    measure_with(target, n, &|| {})
}

/// [`measure`], calling `at_full` while all `n` connections are open.
pub(crate) fn measure_with(
    target: Target<'_>,
    n: usize,
    at_full: &dyn Fn(),
) -> Result<Figures, String> {
    let mut broker = match target {
        Target::Spawn(bin, arena_max) => Broker::spawn(bin, arena_max, n + 100, &[])?,
        Target::SpawnWith(bin, args) => Broker::spawn(bin, None, n + 100, args)?,
        Target::External(addr, pid) => Broker {
            child: None,
            pid,
            addr,
        },
    };
    std::thread::sleep(SETTLE);
    let rss_before = broker.status("VmRSS:");
    let anon_before = broker.status("RssAnon:");
    let started = Instant::now();
    let rss_half = std::cell::Cell::new(0);
    let conns = run_clients(broker.addr, n, &|| {
        std::thread::sleep(SETTLE);
        rss_half.set(broker.status("VmRSS:"));
    })?;
    let setup_secs = started.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let figures = Figures {
        rss_before,
        rss_half: rss_half.get(),
        rss_all: broker.status("VmRSS:"),
        anon_before,
        anon_all: broker.status("RssAnon:"),
        hwm: broker.status("VmHWM:"),
        threads: broker.status("Threads:"),
        setup_secs,
    };
    at_full();
    drop(conns);
    broker.stop();
    Ok(figures)
}

fn report(label: &str, conns: usize, f: &Figures) {
    let per = (f.rss_all as f64 - f.rss_before as f64) / conns as f64;
    let rest = conns - conns / 2;
    let marginal = (f.rss_all as f64 - f.rss_half as f64) / rest as f64;
    let anon = (f.anon_all as f64 - f.anon_before as f64) / conns as f64;
    println!(
        "{label:<20} {per:6.2} KiB/conn (marginal {marginal:.2}, anon {anon:.2}) | \
         RSS {} -> {} -> {} KiB, VmHWM {} KiB, {} threads, set up in {:.2} s",
        f.rss_before, f.rss_half, f.rss_all, f.hwm, f.threads, f.setup_secs
    );
}

fn main() -> ExitCode {
    // `cargo test --all-targets` runs this binary without `--bench`: a small smoke run then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut conns = if smoke { 200usize } else { 10_000 };
    let mut arenas: Vec<Option<u32>> = if smoke {
        vec![None]
    } else {
        vec![None, Some(2)]
    };
    let mut external: Option<(SocketAddr, u32)> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--conns" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) if n >= 2 => conns = n,
                _ => {
                    eprintln!("idle_memory: --conns needs a number >= 2");
                    return ExitCode::from(2);
                }
            },
            "--arena" => match args.next().as_deref() {
                Some("default") => arenas = vec![None],
                Some("both") => arenas = vec![None, Some(2)],
                Some(n) => match n.parse() {
                    Ok(n) => arenas = vec![Some(n)],
                    Err(_) => {
                        eprintln!("idle_memory: --arena default|both|N");
                        return ExitCode::from(2);
                    }
                },
                None => {
                    eprintln!("idle_memory: --arena default|both|N");
                    return ExitCode::from(2);
                }
            },
            "--external" => {
                let addr = args.next().and_then(|v| v.parse().ok());
                let pid = args.next().and_then(|v| v.parse().ok());
                match (addr, pid) {
                    (Some(addr), Some(pid)) => external = Some((addr, pid)),
                    _ => {
                        eprintln!("idle_memory: --external ADDR:PORT PID");
                        return ExitCode::from(2);
                    }
                }
            }
            "--deflate" => OFFER_DEFLATE.store(true, std::sync::atomic::Ordering::Relaxed),
            "--bench" => {}
            "-h" | "--help" => {
                eprintln!(
                    "usage: cargo bench --bench idle_memory -- [--conns N] [--arena default|both|N] \
                     [--external ADDR:PORT PID] [--deflate]"
                );
                return ExitCode::SUCCESS;
            }
            other => eprintln!("idle_memory: ignoring argument {other:?}"),
        }
    }
    let nofile = raise_nofile(65_536);
    if (nofile as usize) < conns + 64 {
        eprintln!("idle_memory: open-file limit {nofile} is too low for {conns} connections");
        return ExitCode::FAILURE;
    }
    if let Some((addr, pid)) = external {
        return match measure(Target::External(addr, pid), conns) {
            Ok(f) => {
                report(&format!("external pid {pid}"), conns, &f);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("idle_memory: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let bin = match broker_binary() {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("idle_memory: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "wsbroker idle-memory bench: {} ({conns} connections, open-file limit {nofile})",
        bin.display()
    );
    for arena in arenas {
        let label = match arena {
            None => "default arenas".to_string(),
            Some(n) => format!("MALLOC_ARENA_MAX={n}"),
        };
        match measure(Target::Spawn(&bin, arena), conns) {
            Ok(f) => report(&label, conns, &f),
            Err(e) => {
                eprintln!("idle_memory: {label}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
