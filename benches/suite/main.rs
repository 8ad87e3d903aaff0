//! The issue-8 benchmark suite: one command measures wsbroker against RabbitMQ Web-STOMP and a
//! naive tokio-tungstenite server on the same machine, in the same run, and checks the targets.
//!
//! ```text
//! cargo bench --bench suite                     # full run (several minutes on 2 cores)
//! cargo bench --bench suite -- --quick          # 1/10 of the messages, 2,000 idle connections
//! cargo bench --bench suite -- --no-rabbitmq --rounds 1
//! ```
//!
//! Scenarios (all servers in their own process; CPU and memory from `/proc/PID`):
//! - STOMP fan-out 100 subscribers × 2,000 messages × 64 B and 1,000 × 200 × 64 B against
//!   wsbroker and RabbitMQ Web-STOMP (`ws://127.0.0.1:15674/ws`, guest/guest, `/topic/bench.x`),
//!   with the load generator of the `fanout` bench;
//! - paced latency: wsbroker with the publisher at half the fan-out-100 maximum message rate;
//! - raw fan-out (the same two shapes) and raw echo (64 connections × 2,000 × 64 B) against
//!   `wsbroker --raw-broadcast/--raw-echo` and the naive baseline (`naive.rs`);
//! - server memory per idle STOMP connection (CONNECT + SUBSCRIBE) at 10,000 connections.
//!
//! Prints a table of figures, ratios and targets met, and writes it to
//! `target/bench/results.json`. Run without `--bench` (as `cargo test` does) it is a small smoke
//! run that asserts nothing. `WSBROKER_BIN` overrides the broker binary.

mod chart;
mod cluster;
#[path = "../../tests/relay/engine_process.rs"]
#[allow(
    dead_code,
    reason = "the suite starts engines, the cluster tests also restart them"
)]
mod engine_process;
#[path = "../fanout.rs"]
#[allow(dead_code, reason = "the suite uses part of the fanout bench")]
mod fanout;
#[path = "../idle_memory.rs"]
#[allow(dead_code, reason = "the suite uses part of the idle_memory bench")]
mod idle_memory;
mod naive;
mod raw;
mod report;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanout::{ServerProcess, Target, WSBROKER_BENCH_FLAGS, flag_value};
use report::{Cell, Results, Row};

/// RabbitMQ Web-STOMP endpoint.
const RABBITMQ_ADDR: &str = "127.0.0.1:15674";
const RABBITMQ_PATH: &str = "/ws";
/// Path the raw-mode servers are started on.
const RAW_PATH: &str = "/raw";
/// Message body size of every scenario.
const SIZE: usize = 64;

#[derive(Clone, Debug)]
struct Options {
    /// Smoke run (no `--bench`): tiny counts, RabbitMQ only when already reachable.
    smoke: bool,
    quick: bool,
    rounds: usize,
    rabbitmq: bool,
    cluster: bool,
    latency_secs: f64,
    idle_conns: usize,
    timeout: Duration,
}

const USAGE: &str = "\
usage: cargo bench --bench suite -- [options]
  --quick              1/10 of the messages, one round, 2,000 idle connections
  --rounds N           rounds of each wsbroker STOMP fan-out (default 3)
  --no-rabbitmq        leave RabbitMQ out
  --no-cluster         leave the cluster-mode runs (private Redis / NATS) out
  --latency-secs S     duration of the paced latency run (default 5)
  --idle-conns N       idle connections of the memory run (default 10000)
  --timeout S          limit per scenario from the first publish (default 180)
env: WSBROKER_BIN      broker binary (default: the one cargo built for this bench)";

fn parse_options() -> Result<Options, String> {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut opts = Options {
        smoke,
        quick: smoke,
        rounds: 0,
        rabbitmq: true,
        cluster: true,
        latency_secs: 0.0,
        idle_conns: 0,
        timeout: Duration::from_secs(180),
    };
    let (mut rounds, mut latency_secs, mut idle_conns) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--quick" => opts.quick = true,
            "--rounds" => rounds = Some(flag_value(&mut args, "--rounds")?),
            "--no-rabbitmq" => opts.rabbitmq = false,
            "--no-cluster" => opts.cluster = false,
            "--latency-secs" => latency_secs = Some(flag_value(&mut args, "--latency-secs")?),
            "--idle-conns" => idle_conns = Some(flag_value(&mut args, "--idle-conns")?),
            "--timeout" => {
                opts.timeout = Duration::from_secs_f64(flag_value(&mut args, "--timeout")?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => eprintln!("suite: ignoring argument {other:?}"),
        }
    }
    opts.rounds = rounds.unwrap_or(if opts.quick { 1 } else { 3 }).max(1);
    opts.latency_secs = latency_secs.unwrap_or(if opts.quick { 1.0 } else { 5.0 });
    opts.idle_conns = idle_conns
        .unwrap_or(match (opts.smoke, opts.quick) {
            (true, _) => 200,
            (false, true) => 2_000,
            (false, false) => 10_000,
        })
        .max(2);
    Ok(opts)
}

/// `(subscribers, messages)` of a fan-out shape, scaled down for quick and smoke runs.
fn shape(opts: &Options, subs: usize, msgs: u64) -> (usize, u64) {
    let div = if opts.smoke {
        40
    } else if opts.quick {
        10
    } else {
        1
    };
    let subs = if opts.smoke { subs / 10 } else { subs };
    (subs.max(2), (msgs / div).max(5))
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Runs `cmd` for at most `limit`; `Err` with a reason on failure or timeout.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                let line = err.lines().rev().find(|l| !l.trim().is_empty());
                return Err(format!("{cmd:?} {status}: {}", line.unwrap_or("").trim()));
            }
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd:?} still running after {limit:?}; killed"));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The pid of the process whose command name is `comm` (RabbitMQ's Erlang VM is `beam.smp`).
fn find_pid(comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let name = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (name.trim() == comm).then_some(pid)
        })
}

/// RabbitMQ Web-STOMP as a target, enabling the plugin (bounded) when the port is closed;
/// `Err` says why it is skipped.
fn rabbitmq_target(may_enable: bool) -> Result<Target, String> {
    let addr: SocketAddr = RABBITMQ_ADDR.parse().expect("valid address");
    if !port_open(addr) {
        if !may_enable {
            return Err(format!("RabbitMQ Web-STOMP not listening on {addr}"));
        }
        println!(
            "RabbitMQ Web-STOMP not listening on {addr}: rabbitmq-plugins enable rabbitmq_web_stomp"
        );
        run_bounded(
            Command::new("rabbitmq-plugins").args(["enable", "rabbitmq_web_stomp"]),
            Duration::from_secs(90),
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !port_open(addr) {
            if Instant::now() > deadline {
                return Err(format!(
                    "plugin enabled but nothing listens on {addr} after 30 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let pid = find_pid("beam.smp");
    if pid.is_none() {
        eprintln!("suite: RabbitMQ's beam.smp process not found: no server CPU figures for it");
    }
    Ok(Target {
        server: ServerProcess::External {
            addr,
            path: RABBITMQ_PATH.into(),
            pid,
        },
        connect: Arc::from(
            &b"CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:guest\nheart-beat:0,0\n\n\0"[..],
        ),
        dest: "/topic/bench.x".into(),
        publisher_server: None,
        extra_cpu_pids: Vec::new(),
        wait_for_cluster: false,
    })
}

/// `target` if its server process can open `conns` more sockets (RabbitMQ often runs with a
/// soft limit of 1,024 open files, too few for 1,000 subscribers), else why not.
fn fits_open_files(target: Target, conns: usize) -> Result<Target, String> {
    let ServerProcess::External { pid: Some(pid), .. } = target.server else {
        return Ok(target);
    };
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let soft: Option<usize> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok());
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map(std::iter::Iterator::count);
    match (soft, open) {
        (Some(soft), Ok(open)) if open + conns > soft => Err(format!(
            "the server's open-file limit is {soft} with {open} in use: too few for {conns} \
             more connections"
        )),
        _ => Ok(target),
    }
}

/// The naive baseline: this very executable, re-run with `--serve-naive MODE`.
fn naive_server(mode: naive::Mode) -> Result<ServerProcess, String> {
    let program = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    Ok(ServerProcess::Spawn {
        program,
        args: vec!["--serve-naive".into(), mode.arg().into()],
    })
}

/// wsbroker in raw mode (`--raw-broadcast PATH` / `--raw-echo PATH`), or why not.
fn wsbroker_raw(bin: &Path, flag: &str) -> Result<ServerProcess, String> {
    let help = Command::new(bin)
        .arg("--help")
        .output()
        .map_err(|e| format!("cannot run {} --help: {e}", bin.display()))?;
    if !String::from_utf8_lossy(&help.stdout).contains(flag) {
        return Err("wsbroker has no raw mode".into());
    }
    Ok(ServerProcess::Spawn {
        program: bin.to_path_buf(),
        args: WSBROKER_BENCH_FLAGS
            .into_iter()
            .chain([flag, RAW_PATH])
            .map(String::from)
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

struct Suite {
    opts: Options,
    runtime: tokio::runtime::Runtime,
    wsbroker: Target,
    bin: PathBuf,
    rabbitmq: Result<Target, String>,
    results: Results,
}

impl Suite {
    /// A STOMP fan-out scenario; RabbitMQ failures are retried once (another process may be
    /// restarting its app).
    #[allow(clippy::too_many_arguments)]
    fn stomp(
        &mut self,
        target: &Target,
        server: &str,
        name: &str,
        subs: usize,
        msgs: u64,
        rate: Option<u64>,
        rounds: usize,
    ) -> Cell<fanout::Report> {
        let external = matches!(target.server, ServerProcess::External { .. });
        for attempt in 1..=2 {
            println!(
                "-- {name} on {server}{}",
                if attempt > 1 { " (retry)" } else { "" }
            );
            let run = fanout::run_scenario(
                target,
                name,
                subs,
                msgs,
                SIZE,
                rate,
                rounds,
                self.opts.timeout,
            );
            match self.runtime.block_on(run) {
                Ok(report) => {
                    fanout::print_line(&report);
                    let failed = !report.errors.is_empty() || report.received == 0;
                    if failed && external && attempt == 1 {
                        continue;
                    }
                    self.results.add_stomp(server, &report);
                    return Cell::Measured(report);
                }
                Err(e) if external && attempt == 1 => println!("    ! {e}"),
                Err(e) => {
                    println!("    ! {e}");
                    return Cell::Skipped(e);
                }
            }
        }
        Cell::Skipped("failed twice".into())
    }

    fn raw(
        &mut self,
        server: &Result<ServerProcess, String>,
        server_name: &str,
        echo: bool,
        conns: usize,
        msgs: u64,
    ) -> Cell<raw::RawReport> {
        self.raw_sized(server, server_name, echo, (conns, msgs, SIZE), false)
    }

    /// A raw run with messages of `size` bytes, offering permessage-deflate when `deflate`.
    fn raw_sized(
        &mut self,
        server: &Result<ServerProcess, String>,
        server_name: &str,
        echo: bool,
        (conns, msgs, size): (usize, u64, usize),
        deflate: bool,
    ) -> Cell<raw::RawReport> {
        let kind = if echo { "echo" } else { "fanout" };
        let name = match (size == SIZE, deflate) {
            (true, false) => format!("raw-{kind}-{conns}"),
            (_, false) => format!("raw-{kind}-{conns}-{size}B"),
            (_, true) => format!("raw-{kind}-{conns}-{size}B-deflate"),
        };
        let server = match server {
            Ok(server) => server,
            Err(reason) => {
                println!("-- {name} on {server_name}: skipped: {reason}");
                return Cell::Skipped(reason.clone());
            }
        };
        println!("-- {name} on {server_name}");
        let run = async {
            let shape = (conns, msgs, size);
            if echo {
                raw::run_echo(server, RAW_PATH, shape, deflate, self.opts.timeout).await
            } else {
                raw::run_fanout(server, RAW_PATH, shape, deflate, self.opts.timeout).await
            }
        };
        match self.runtime.block_on(run) {
            Ok(r) => {
                println!(
                    "{name:<16} {conns} conns x {msgs} msgs x {size} B: {:.0} msgs/s, server {:.2} us/msg, \
                     {:.0} B/msg on the wire, lost {}, out-of-order {}, latency p50 {:.0} us p99 {:.0} us",
                    r.per_sec,
                    r.server_cpu_us_per_msg,
                    r.wire_bytes_per_msg,
                    r.lost,
                    r.out_of_order,
                    r.p50_us,
                    r.p99_us
                );
                for e in &r.errors {
                    println!("    ! {e}");
                }
                if !r.server_exit.starts_with("exited cleanly") {
                    println!("    ! server {}", r.server_exit);
                }
                self.results.add_raw(server_name, &name, &r);
                Cell::Measured(r)
            }
            Err(e) => {
                println!("    ! {e}");
                Cell::Skipped(e)
            }
        }
    }
}

fn run(opts: Options) -> Result<(), String> {
    let bin = fanout::broker_binary()?;
    fanout::epoch();
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!(
        "wsbroker bench suite: broker {} ({cpus} CPUs){}",
        bin.display(),
        if opts.smoke {
            ", smoke run"
        } else if opts.quick {
            ", quick"
        } else {
            ""
        }
    );
    let nofile = idle_memory::raise_nofile(65_536);
    let rabbitmq = if opts.rabbitmq {
        rabbitmq_target(!opts.smoke)
    } else {
        Err("left out (--no-rabbitmq)".into())
    };
    if let Err(e) = &rabbitmq {
        println!("RabbitMQ rows skipped: {e}");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut suite = Suite {
        wsbroker: Target::wsbroker(&bin),
        bin: bin.clone(),
        rabbitmq,
        runtime,
        results: Results::new(opts.smoke || opts.quick, cpus),
        opts,
    };
    let started = Instant::now();
    let rounds = suite.opts.rounds;

    // STOMP fan-out, both shapes, wsbroker and RabbitMQ.
    let mut stomp_rows = Vec::new();
    for (subs, msgs) in [(100, 2_000), (1_000, 200)] {
        let (s, m) = shape(&suite.opts, subs, msgs);
        let name = format!("fanout-{s}");
        let target = suite.wsbroker.clone();
        let ws = suite.stomp(&target, "wsbroker", &name, s, m, None, rounds);
        let rabbit = match suite
            .rabbitmq
            .clone()
            .and_then(|t| fits_open_files(t, s + 1))
        {
            Ok(target) => suite.stomp(&target, "rabbitmq", &name, s, m, None, 1),
            Err(e) => {
                println!("-- {name} on rabbitmq: skipped: {e}");
                Cell::Skipped(e)
            }
        };
        stomp_rows.push((name, ws, rabbit));
    }

    // Flow control: the same fan-out with a publisher that has no window at all (it writes
    // as fast as TCP takes it): every reading subscriber must still get everything.
    {
        let (s, m) = shape(&suite.opts, 100, 2_000);
        let name = format!("unthrottled-{s}");
        let unthrottled = Some(fanout::UNTHROTTLED);
        let target = suite.wsbroker.clone();
        let ws = suite.stomp(&target, "wsbroker", &name, s, m, unthrottled, 1);
        let rabbit = match suite
            .rabbitmq
            .clone()
            .and_then(|t| fits_open_files(t, s + 1))
        {
            Ok(target) => suite.stomp(&target, "rabbitmq", &name, s, m, unthrottled, 1),
            Err(e) => Cell::Skipped(e),
        };
        stomp_rows.push((name, ws, rabbit));
    }

    // History on (every bench topic keeps its last 1,000 messages): the first shape again, to
    // compare with history off (target: at most 15 % slower).
    let history = {
        let (s, m) = shape(&suite.opts, 100, 2_000);
        let mut target = suite.wsbroker.clone();
        if let fanout::ServerProcess::Spawn { args, .. } = &mut target.server {
            args.extend(["--history".to_string(), "/topic/**=1000".to_string()]);
        }
        suite.stomp(
            &target,
            "wsbroker+history",
            &format!("history-{s}"),
            s,
            m,
            None,
            rounds,
        )
    };

    // The same with the history in the durable store (--data-dir, fsync every message): each
    // message is committed before it is delivered or its receipt sent.
    let durable_dir = std::env::temp_dir().join(format!("wsb-suite-store-{}", std::process::id()));
    let durable_history = {
        let (s, m) = shape(&suite.opts, 100, 2_000);
        let _ = std::fs::remove_dir_all(&durable_dir);
        let mut target = suite.wsbroker.clone();
        if let fanout::ServerProcess::Spawn { args, .. } = &mut target.server {
            args.extend([
                "--history".to_string(),
                "/topic/**=1000".to_string(),
                "--data-dir".to_string(),
                durable_dir.display().to_string(),
            ]);
        }
        let cell = suite.stomp(
            &target,
            "wsbroker+durable",
            &format!("durable-history-{s}"),
            s,
            m,
            None,
            rounds,
        );
        let _ = std::fs::remove_dir_all(&durable_dir);
        cell
    };

    // Paced latency at half the measured maximum message rate of the first shape.
    let latency = match &stomp_rows[0].1 {
        Cell::Measured(r) if r.deliveries_per_sec > 0.0 => {
            let rate = ((r.deliveries_per_sec / r.subs as f64) / 2.0)
                .round()
                .max(1.0) as u64;
            let msgs = ((rate as f64 * suite.opts.latency_secs).round() as u64).max(1);
            let target = suite.wsbroker.clone();
            let subs = r.subs;
            suite.stomp(&target, "wsbroker", "latency", subs, msgs, Some(rate), 1)
        }
        _ => Cell::Skipped("no fan-out figure to pace from".into()),
    };

    // Raw fan-out and echo: wsbroker raw mode vs the naive baseline.
    let raw_broadcast = wsbroker_raw(&bin, "--raw-broadcast");
    let raw_echo = wsbroker_raw(&bin, "--raw-echo");
    let naive_broadcast = naive_server(naive::Mode::Broadcast);
    let naive_echo = naive_server(naive::Mode::Echo);
    let mut raw_rows = Vec::new();
    for (subs, msgs) in [(100, 2_000), (1_000, 200)] {
        let (s, m) = shape(&suite.opts, subs, msgs);
        let ws = suite.raw(&raw_broadcast, "wsbroker", false, s, m);
        let nv = suite.raw(&naive_broadcast, "naive", false, s, m);
        raw_rows.push((format!("raw fan-out {s}x{m}"), ws, nv));
    }
    let (conns, msgs) = if suite.opts.smoke {
        (8, 100)
    } else {
        shape(&suite.opts, 64, 2_000)
    };
    let ws = suite.raw(&raw_echo, "wsbroker", true, conns, msgs);
    let nv = suite.raw(&naive_echo, "naive", true, conns, msgs);
    let echo_row = (format!("raw echo {conns}x{msgs}"), ws, nv);

    // permessage-deflate on raw endpoints: 1 KiB game-state-like messages, each run once with
    // connections that negotiate compression and once with ones that do not.
    let mut deflate_rows = Vec::new();
    for (echo, subs, msgs) in [(false, 100, 2_000), (true, 64, 2_000)] {
        let (s, m) = if suite.opts.smoke {
            (8, 100)
        } else {
            shape(&suite.opts, subs, msgs)
        };
        let server = if echo { &raw_echo } else { &raw_broadcast };
        let plain = suite.raw_sized(server, "wsbroker", echo, (s, m, 1024), false);
        let deflate = suite.raw_sized(server, "wsbroker", echo, (s, m, 1024), true);
        let kind = if echo { "echo" } else { "fan-out" };
        deflate_rows.push((format!("raw {kind} {s}x{m} 1 KiB"), plain, deflate));
    }

    // Cluster mode: subscribers on node A, publisher on node B, through a private Redis or
    // NATS; relay mode (both nodes on RabbitMQ) and the single node for comparison.
    let cluster_runs = cluster_runs(&mut suite);

    // Idle memory.
    let idle_conns = suite.opts.idle_conns;
    println!("-- idle memory, {idle_conns} connections");
    let idle = if (nofile as usize) < idle_conns + 64 {
        Cell::Skipped(format!("open-file limit {nofile} too low"))
    } else {
        match idle_memory::measure(idle_memory::Target::Spawn(&suite.bin, None), idle_conns) {
            Ok(f) => {
                let per = (f.rss_all as f64 - f.rss_before as f64) / idle_conns as f64;
                println!(
                    "idle memory: {per:.2} KiB/conn (RSS {} -> {} KiB, set up in {:.1} s)",
                    f.rss_before, f.rss_all, f.setup_secs
                );
                Cell::Measured(per)
            }
            Err(e) => {
                println!("    ! {e}");
                Cell::Skipped(e)
            }
        }
    };

    // The table.
    let mut rows = Vec::new();
    for (i, (name, ws, rabbit)) in stomp_rows.iter().enumerate() {
        // One figure of wsbroker and RabbitMQ (no naive server speaks STOMP).
        let row = |metric: &str, figure: fn(&fanout::Report) -> f64, goal| {
            Row::new(
                format!("STOMP {name} {metric}"),
                ws.map(figure),
                rabbit.map(figure),
                Cell::Skipped("n/a".into()),
                goal,
            )
        };
        rows.push(row(
            "deliveries/s",
            |r| r.deliveries_per_sec,
            (i == 0).then_some(report::Goal::RatioToRabbitAtLeast(10.0)),
        ));
        rows.push(row(
            "server us/delivery",
            |r| r.server_cpu_us_per_delivery,
            (i == 0).then_some(report::Goal::AtMost(1.0)),
        ));
        rows.push(row(
            "lost messages",
            |r| r.lost as f64,
            Some(report::Goal::AtMost(0.0)),
        ));
    }
    let history_ratio = match (&history, &stomp_rows[0].1) {
        (Cell::Measured(on), Cell::Measured(off)) if off.deliveries_per_sec > 0.0 => {
            Cell::Measured(on.deliveries_per_sec / off.deliveries_per_sec)
        }
        _ => Cell::Skipped("a fan-out run is missing".into()),
    };
    rows.push(Row::new(
        format!("STOMP {} history on / off, deliveries/s", stomp_rows[0].0),
        history_ratio,
        Cell::Skipped("n/a".into()),
        Cell::Skipped("n/a".into()),
        Some(report::Goal::AtLeast(0.85)),
    ));
    let durable_ratio = match (&durable_history, &stomp_rows[0].1) {
        (Cell::Measured(on), Cell::Measured(off)) if off.deliveries_per_sec > 0.0 => {
            Cell::Measured(on.deliveries_per_sec / off.deliveries_per_sec)
        }
        _ => Cell::Skipped("a fan-out run is missing".into()),
    };
    rows.push(Row::new(
        format!(
            "STOMP {} durable history (--data-dir) / off, deliveries/s",
            stomp_rows[0].0
        ),
        durable_ratio,
        Cell::Skipped("n/a".into()),
        Cell::Skipped("n/a".into()),
        None,
    ));
    let rate_label = match &latency {
        Cell::Measured(r) => format!(" @ {} msg/s x {} subs", r.rate.unwrap_or(0), r.subs),
        Cell::Skipped(_) => String::new(),
    };
    rows.push(Row::new(
        format!("STOMP latency p99 us{rate_label}"),
        latency.map(|r| r.p99_us),
        Cell::Skipped("not run".into()),
        Cell::Skipped("n/a".into()),
        // Issue 19: p99 at most 5 ms at half the maximum rate.
        Some(report::Goal::AtMost(5000.0)),
    ));
    rows.push(Row::new(
        format!("STOMP latency p50 us{rate_label}"),
        latency.map(|r| r.p50_us),
        Cell::Skipped("not run".into()),
        Cell::Skipped("n/a".into()),
        None,
    ));
    for (name, ws, nv) in raw_rows.iter().chain(std::iter::once(&echo_row)) {
        let unit = if name.starts_with("raw echo") {
            "msgs/s"
        } else {
            "deliveries/s"
        };
        // One figure of wsbroker and the naive server (RabbitMQ has no raw mode).
        let row = |metric: &str, figure: fn(&raw::RawReport) -> f64, goal| {
            Row::new(
                format!("{name} {metric}"),
                ws.map(figure),
                Cell::Skipped("n/a".into()),
                nv.map(figure),
                goal,
            )
        };
        rows.push(row(
            unit,
            |r| r.per_sec,
            Some(report::Goal::RatioToNaiveAtLeast(3.0)),
        ));
        // Issue 19: an echo at uWebSockets' cost, at most 0.15 us of server CPU a message.
        let goal = name
            .starts_with("raw echo")
            .then_some(report::Goal::AtMost(0.15));
        rows.push(row("server us/msg", |r| r.server_cpu_us_per_msg, goal));
        rows.push(row("lost", |r| r.lost as f64, None));
    }
    for (name, plain, deflate) in &deflate_rows {
        // wsbroker with permessage-deflate negotiated, next to the same run without it.
        let row = |metric: &str, figure: fn(&raw::RawReport) -> f64| {
            Row::new(
                format!("{name} {metric}, deflate (col 1) vs not (col 3)"),
                deflate.map(figure),
                Cell::Skipped("n/a".into()),
                plain.map(figure),
                None,
            )
        };
        rows.push(row("server us/msg", |r| r.server_cpu_us_per_msg));
        rows.push(row("wire B/msg", |r| r.wire_bytes_per_msg));
        rows.push(row("msgs/s", |r| r.per_sec));
    }
    cluster_rows(&mut rows, &cluster_runs, &stomp_rows[0].1);
    rows.push(Row::new(
        format!("idle KiB/conn at {idle_conns} conns"),
        idle.clone(),
        Cell::Skipped("not measured".into()),
        Cell::Skipped("not measured".into()),
        // Issue 19: at most 1 KiB per idle STOMP connection.
        Some(report::Goal::AtMost(1.0)),
    ));
    suite.results.rows = rows;
    suite.results.print();
    println!(
        "total bench time {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if suite.opts.smoke {
            " (smoke run: figures are not meaningful)"
        } else {
            ""
        }
    );
    // A smoke run (cargo test) must not overwrite the figures of a real run.
    let name = if suite.opts.smoke {
        "results-smoke.json"
    } else {
        "results.json"
    };
    let file = fanout::target_dir().join("bench").join(name);
    suite.results.write_json(&file)?;
    println!("figures written to {}", file.display());
    let svg = file.with_extension("svg");
    let title = format!("wsbroker bench suite, {cpus} CPUs (higher is better)");
    match chart::write_svg(&suite.results.rows, &title, &svg) {
        Ok(()) => println!("chart written to {}", svg.display()),
        Err(e) => println!("no chart: {e}"),
    }
    Ok(())
}

/// One engine's cluster runs: its name, the fan-out, and the engine connections of one node
/// with 2 and with many clients.
type EngineRuns = (&'static str, Cell<fanout::Report>, Cell<(usize, usize)>);

/// The cluster-mode figures: per engine, and the relay-mode fan-out.
struct ClusterRuns {
    engines: Vec<EngineRuns>,
    relay: Cell<fanout::Report>,
    clients: usize,
}

fn cluster_runs(suite: &mut Suite) -> ClusterRuns {
    let (s, m) = shape(&suite.opts, 100, 2_000);
    let name = format!("cluster-fanout-{s}");
    let clients = suite.opts.idle_conns;
    let mut runs = ClusterRuns {
        engines: Vec::new(),
        relay: Cell::Skipped("left out (--no-cluster)".into()),
        clients,
    };
    if !suite.opts.cluster {
        return runs;
    }
    for (kind, engine_name) in [
        (engine_process::Kind::Redis, "cluster-redis"),
        (engine_process::Kind::Nats, "cluster-nats"),
    ] {
        let engine = match cluster::Engine::start(kind, engine_name) {
            Ok(engine) => engine,
            Err(e) => {
                println!("-- {name} on {engine_name}: skipped: {e}");
                runs.engines
                    .push((engine_name, Cell::Skipped(e.clone()), Cell::Skipped(e)));
                continue;
            }
        };
        let target = engine.target(&suite.bin);
        let fan_out = suite.stomp(&target, engine.name, &name, s, m, None, suite.opts.rounds);
        println!(
            "-- engine connections of one {} node, 2 and {clients} idle clients",
            engine.name
        );
        let connections = match engine.connections_with_clients(&suite.bin, clients) {
            Ok((few, many)) => {
                println!("engine connections: {few} with 2 clients, {many} with {clients}");
                Cell::Measured((few, many))
            }
            Err(e) => {
                println!("    ! {e}");
                Cell::Skipped(e)
            }
        };
        runs.engines.push((engine.name, fan_out, connections));
    }
    runs.relay = if suite.opts.rabbitmq {
        match cluster::relay_target(&suite.bin, find_pid("beam.smp")) {
            Ok(target) => suite.stomp(&target, "relay-rabbitmq", &name, s, m, None, 1),
            Err(e) => {
                println!("-- {name} on relay-rabbitmq: skipped: {e}");
                Cell::Skipped(e)
            }
        }
    } else {
        Cell::Skipped("left out (--no-rabbitmq)".into())
    };
    runs
}

/// Rows: cluster (col 1) vs relay mode (col 2) vs one node (col 3).
fn cluster_rows(rows: &mut Vec<Row>, runs: &ClusterRuns, single: &Cell<fanout::Report>) {
    for (engine, fan_out, connections) in &runs.engines {
        let label = format!("{engine} (col 1) vs relay (col 2) vs one node (col 3)");
        let row = |metric: &str, figure: fn(&fanout::Report) -> f64, goal| {
            Row::new(
                format!("STOMP cluster fanout, {metric}: {label}"),
                fan_out.map(figure),
                runs.relay.map(figure),
                single.map(figure),
                goal,
            )
        };
        rows.push(row(
            "deliveries/s",
            |r| r.deliveries_per_sec,
            Some(report::Goal::RatioToRabbitAtLeast(10.0)),
        ));
        rows.push(row(
            "CPU us/delivery (nodes + engine)",
            |r| r.server_cpu_us_per_delivery,
            None,
        ));
        rows.push(row(
            "lost",
            |r| r.lost as f64,
            Some(report::Goal::AtMost(0.0)),
        ));
        let ratio = match (fan_out, single) {
            (Cell::Measured(c), Cell::Measured(one)) if one.deliveries_per_sec > 0.0 => {
                Cell::Measured(c.deliveries_per_sec / one.deliveries_per_sec)
            }
            _ => Cell::Skipped("a fan-out run is missing".into()),
        };
        rows.push(Row::new(
            format!("STOMP cluster fanout {engine} / one node, deliveries/s"),
            ratio,
            Cell::Skipped("n/a".into()),
            Cell::Skipped("n/a".into()),
            Some(report::Goal::AtLeast(0.5)),
        ));
        rows.push(Row::new(
            format!(
                "{engine} engine connections of a node: {} idle clients (col 1) vs 2 (col 3)",
                runs.clients
            ),
            connections.map(|c| c.1 as f64),
            Cell::Skipped("n/a".into()),
            connections.map(|c| c.0 as f64),
            Some(report::Goal::AtMost(2.0)),
        ));
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-naive") {
        return match args.get(i + 1).and_then(|m| naive::Mode::parse(m)) {
            Some(mode) => naive::serve(mode),
            None => {
                eprintln!("suite: --serve-naive broadcast|echo");
                ExitCode::from(2)
            }
        };
    }
    let opts = match parse_options() {
        Ok(opts) => opts,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("suite: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("suite: {e}");
            ExitCode::FAILURE
        }
    }
}
