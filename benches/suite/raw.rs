//! Load generator for raw WebSocket servers (no STOMP): broadcast fan-out and echo.
//!
//! Every message is a binary frame whose payload starts with the sequence number and the send
//! time (ns since the bench's epoch), both big-endian u64, padded with zeros to the message size,
//! so loss, order and latency are measured the same way as in the STOMP fan-out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::fanout::{
    Broker, CONNECT_PARALLELISM, FrameReader, MAX_SAMPLES, OP_BINARY, OP_CLOSE, OP_TEXT,
    ServerProcess, SubResult, now_nanos, percentile, put_frame, self_cpu_secs, ws_connect_with,
};

/// Whether this run's connections offer permessage-deflate (set by `run_fanout`/`run_echo`
/// for their run; runs are sequential).
static OFFER_DEFLATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Payload bytes this run's receivers read (compressed size when compressed).
static WIRE_PAYLOAD: AtomicU64 = AtomicU64::new(0);
const DEFLATE_OFFER: &str = "permessage-deflate; client_no_context_takeover";

/// Payload prefix: sequence number and send time.
pub(crate) const RAW_STAMP_LEN: usize = 16;
/// Sequence number of the probe messages that check every receiver is registered.
const PROBE: u64 = u64::MAX;
/// The fan-out publisher never runs more than this many messages ahead of the slowest receiver.
const FANOUT_WINDOW: u64 = 1_000;
/// Longest wait for every receiver to get a probe.
const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// Messages each echo connection keeps in flight.
const ECHO_WINDOW: u64 = 32;
/// Receivers report progress to the publisher every this many messages.
const PROGRESS_EVERY: u64 = 64;

/// Figures of one raw run.
#[derive(Debug, Default)]
pub(crate) struct RawReport {
    pub(crate) conns: usize,
    pub(crate) msgs: u64,
    pub(crate) size: usize,
    pub(crate) expected: u64,
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) out_of_order: u64,
    pub(crate) elapsed_secs: f64,
    /// Deliveries (fan-out) or echoed messages (echo) per second.
    pub(crate) per_sec: f64,
    pub(crate) server_cpu_us_per_msg: f64,
    /// Payload bytes a receiver read per message (less than `size` when compressed).
    pub(crate) wire_bytes_per_msg: f64,
    pub(crate) client_cpu_us_per_msg: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) errors: Vec<String>,
    pub(crate) server_exit: String,
}

/// What pads a message after its stamp: game-state-like JSON, so that compression figures
/// are those of a realistic payload (zeros would shrink to nothing).
const FILLER: &[u8] =
    br#"{"id":17,"pos":[12.5,-3.25,7.0],"vel":[0.5,0.0,-1.25],"hp":97,"name":"player-17"},"#;

/// [`FILLER`] repeated over the largest message, made once (a message copies its prefix).
fn filler() -> &'static [u8; 4096] {
    static BYTES: std::sync::OnceLock<[u8; 4096]> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| std::array::from_fn(|i| FILLER[i % FILLER.len()]))
}

fn stamp(out: &mut Vec<u8>, seq: u64, size: usize) {
    let mut payload = *filler();
    let size = size.clamp(RAW_STAMP_LEN, payload.len());
    payload[..8].copy_from_slice(&seq.to_be_bytes());
    payload[8..16].copy_from_slice(&now_nanos().to_be_bytes());
    put_frame(out, OP_BINARY, &payload[..size]);
}

/// A data frame's message (counted on the wire; inflated when compressed), or `None` for
/// another frame.
fn data_of(opcode: u8, payload: &bytes::Bytes) -> Result<Option<bytes::Bytes>, String> {
    let data = opcode & 0x0f == OP_BINARY || opcode & 0x0f == OP_TEXT;
    if !data {
        return Ok(None);
    }
    WIRE_PAYLOAD.fetch_add(payload.len() as u64, Ordering::Relaxed);
    if opcode & 0x40 != 0 {
        // Compressed (RSV1): inflate as a permessage-deflate client does.
        return inflate(payload).map(Some);
    }
    Ok(Some(payload.clone()))
}

/// A compressed message payload inflated (RFC 7692: the `00 00 ff ff` tail appended).
fn inflate(payload: &[u8]) -> Result<bytes::Bytes, String> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut inflater = flate2::Decompress::new(false);
    loop {
        let consumed = inflater.total_in() as usize;
        out.reserve(4096);
        inflater
            .decompress_vec(&input[consumed..], &mut out, flate2::FlushDecompress::Sync)
            .map_err(|e| format!("inflate: {e}"))?;
        if inflater.total_in() as usize >= input.len() && out.len() < out.capacity() {
            return Ok(out.into());
        }
    }
}

fn read_stamp(payload: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    let sent = u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

type Conn = (FrameReader<OwnedReadHalf>, OwnedWriteHalf);

async fn connect(addr: SocketAddr, path: &str) -> Result<Conn, String> {
    let offer = OFFER_DEFLATE
        .load(Ordering::Relaxed)
        .then_some(DEFLATE_OFFER);
    let (stream, leftover) = ws_connect_with(addr, path, None, offer).await?;
    let (r, w) = stream.into_split();
    Ok((
        FrameReader {
            io: r,
            buf: leftover,
        },
        w,
    ))
}

/// The next data message's payload; control frames other than close are skipped.
async fn next_data(reader: &mut FrameReader<OwnedReadHalf>) -> Result<bytes::Bytes, String> {
    loop {
        let (opcode, payload) = reader.next().await?;
        if let Some(data) = data_of(opcode, &payload)? {
            return Ok(data);
        }
        if opcode == OP_CLOSE {
            return Err("server closed the WebSocket".into());
        }
    }
}

/// Shared between the fan-out receivers and the publisher.
struct FanoutState {
    /// Messages each receiver has got (`u64::MAX` once it has ended).
    progress: Vec<AtomicU64>,
    /// Receivers that have seen a probe.
    probed: AtomicUsize,
    /// Wakes the publisher when a receiver made progress.
    progressed: Notify,
}

impl FanoutState {
    fn slowest(&self) -> u64 {
        self.progress
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .min()
            .unwrap_or(u64::MAX)
    }
}

async fn fanout_receiver(
    conn: Conn,
    index: usize,
    msgs: u64,
    sample_every: u64,
    state: Arc<FanoutState>,
    mut stop: watch::Receiver<bool>,
) -> SubResult {
    let (mut reader, _w) = conn;
    let mut result = SubResult::default();
    let mut probed = false;
    while result.received < msgs {
        let payload = tokio::select! {
            biased;
            p = next_data(&mut reader) => p,
            _ = stop.changed() => {
                result.error = Some(format!("timed out after {} of {msgs} messages", result.received));
                break;
            }
        };
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                result.error = Some(e);
                break;
            }
        };
        let now = now_nanos();
        let Some((seq, sent)) = read_stamp(&payload) else {
            result.error = Some("message without a sequence/timestamp stamp".into());
            break;
        };
        if seq == PROBE {
            if !probed {
                probed = true;
                state.probed.fetch_add(1, Ordering::Relaxed);
                state.progressed.notify_one();
            }
            continue;
        }
        result.record(seq, sent, now, sample_every);
        if result.received % PROGRESS_EVERY == 0 {
            state.progress[index].store(result.received, Ordering::Relaxed);
            state.progressed.notify_one();
        }
    }
    result.last_delivery = Some(Instant::now());
    // Done (or failed): never hold the publisher back again.
    state.progress[index].store(u64::MAX, Ordering::Relaxed);
    state.progressed.notify_one();
    result
}

/// Flushes `out` to `w`.
async fn flush(w: &mut OwnedWriteHalf, out: &mut Vec<u8>) -> Result<(), String> {
    if !out.is_empty() {
        w.write_all(out)
            .await
            .map_err(|e| format!("publisher write: {e}"))?;
        out.clear();
    }
    Ok(())
}

/// Publishes `msgs` messages as fast as the window to the slowest receiver allows, after
/// probing until every receiver is registered. Returns the time of the first real message.
async fn fanout_publisher(
    conn: Conn,
    subs: usize,
    msgs: u64,
    size: usize,
    state: Arc<FanoutState>,
    mut stop: watch::Receiver<bool>,
) -> Result<Instant, String> {
    let (_reader, mut w) = conn;
    let mut out = Vec::with_capacity(32 * 1024);
    // Probe until every receiver has one: servers may register a connection after its 101.
    let probe_deadline = Instant::now() + PROBE_LIMIT;
    while state.probed.load(Ordering::Relaxed) < subs {
        stamp(&mut out, PROBE, size);
        flush(&mut w, &mut out).await?;
        let gave_up = tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(10)) => Instant::now() > probe_deadline,
            _ = stop.changed() => true,
        };
        if gave_up {
            return Err(format!(
                "only {} of {subs} receivers got a probe message",
                state.probed.load(Ordering::Relaxed)
            ));
        }
    }
    let first = Instant::now();
    let mut slowest = 0u64;
    for seq in 0..msgs {
        while seq >= slowest.saturating_add(FANOUT_WINDOW) {
            slowest = state.slowest();
            if seq < slowest.saturating_add(FANOUT_WINDOW) {
                break;
            }
            flush(&mut w, &mut out).await?;
            tokio::select! {
                _ = state.progressed.notified() => {}
                _ = stop.changed() => return Err("publisher timed out waiting for receivers".into()),
            }
        }
        stamp(&mut out, seq, size);
        if out.len() >= 16 * 1024 {
            flush(&mut w, &mut out).await?;
        }
    }
    flush(&mut w, &mut out).await?;
    Ok(first)
}

/// Connects `n` clients to `path`, at most [`CONNECT_PARALLELISM`] at a time.
async fn connect_all(addr: SocketAddr, path: &str, n: usize) -> Result<Vec<Conn>, String> {
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let path: Arc<str> = path.into();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (gate, path) = (gate.clone(), path.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                tokio::time::timeout(Duration::from_secs(20), connect(addr, &path))
                    .await
                    .map_err(|_| "connect timed out after 20 s".to_string())?
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(n);
    for task in tasks {
        conns.push(task.await.map_err(|e| e.to_string())??);
    }
    Ok(conns)
}

fn finish(report: &mut RawReport, results: Vec<SubResult>, first: Instant, cpu: (f64, f64)) {
    let mut latencies = Vec::new();
    let mut last = first;
    let mut errors = 0;
    for r in results {
        report.received += r.received;
        report.out_of_order += r.out_of_order;
        latencies.extend_from_slice(&r.latencies_ns);
        if r.received > 0
            && let Some(t) = r.last_delivery
        {
            last = last.max(t);
        }
        if let Some(e) = r.error {
            errors += 1;
            if errors <= 3 {
                report.errors.push(e);
            }
        }
    }
    if errors > 3 {
        report
            .errors
            .push(format!("... {errors} connections ended with an error"));
    }
    report.lost = report.expected.saturating_sub(report.received);
    report.elapsed_secs = (last - first).as_secs_f64();
    report.per_sec = report.received as f64 / report.elapsed_secs.max(1e-9);
    let n = report.received.max(1) as f64;
    report.server_cpu_us_per_msg = cpu.0 * 1e6 / n;
    report.client_cpu_us_per_msg = cpu.1 * 1e6 / n;
    latencies.sort_unstable();
    report.p50_us = percentile(&latencies, 0.50);
    report.p99_us = percentile(&latencies, 0.99);
}

/// Fires `stop` once `timeout` has passed: receivers still waiting give up then.
fn stop_after(timeout: Duration, stop: watch::Sender<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let _ = stop.send(true);
    })
}

/// The end of a run: waits for every receiver, fills `report` from their results and the CPU
/// both processes used since `cpu0`, and stops the broker.
async fn end_run(
    mut report: RawReport,
    broker: &mut Broker,
    receivers: Vec<JoinHandle<SubResult>>,
    timer: JoinHandle<()>,
    first: Instant,
    cpu0: (f64, f64),
) -> Result<RawReport, String> {
    let mut results = Vec::with_capacity(receivers.len());
    for h in receivers {
        results.push(h.await.map_err(|e| e.to_string())?);
    }
    timer.abort();
    let cpu = (broker.cpu_secs() - cpu0.0, self_cpu_secs() - cpu0.1);
    finish(&mut report, results, first, cpu);
    report.wire_bytes_per_msg =
        WIRE_PAYLOAD.load(Ordering::Relaxed) as f64 / (report.received.max(1)) as f64;
    report.server_exit = broker.stop();
    Ok(report)
}

/// One publisher and `subs` receivers on `path`: every message the publisher sends should reach
/// every receiver.
pub(crate) async fn run_fanout(
    server: &ServerProcess,
    path: &str,
    (subs, msgs, size): (usize, u64, usize),
    deflate: bool,
    timeout: Duration,
) -> Result<RawReport, String> {
    OFFER_DEFLATE.store(deflate, Ordering::Relaxed);
    WIRE_PAYLOAD.store(0, Ordering::Relaxed);
    let mut broker = Broker::start(server)?;
    let mut report = RawReport {
        conns: subs,
        msgs,
        size,
        expected: subs as u64 * msgs,
        ..RawReport::default()
    };
    let receivers = connect_all(broker.addr, path, subs).await?;
    let publisher = connect(broker.addr, path).await?;
    let state = Arc::new(FanoutState {
        progress: (0..subs).map(|_| AtomicU64::new(0)).collect(),
        probed: AtomicUsize::new(0),
        progressed: Notify::new(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let sample_every = (report.expected / MAX_SAMPLES).max(1);
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(i, conn)| {
            tokio::spawn(fanout_receiver(
                conn,
                i,
                msgs,
                sample_every,
                state.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let timer = stop_after(timeout, stop_tx);
    let cpu0 = (broker.cpu_secs(), self_cpu_secs());
    let started = fanout_publisher(publisher, subs, msgs, size, state, stop_rx).await;
    let first = match started {
        Ok(first) => first,
        Err(e) => {
            report.errors.push(e);
            Instant::now()
        }
    };
    end_run(report, &mut broker, handles, timer, first, cpu0).await
}

async fn echo_client(
    conn: Conn,
    msgs: u64,
    size: usize,
    mut start: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> SubResult {
    let (mut reader, mut w) = conn;
    let mut result = SubResult::default();
    result.latencies_ns.reserve(msgs as usize);
    if start.wait_for(|&go| go).await.is_err() {
        result.error = Some("start signal lost".into());
        return result;
    }
    let mut out = Vec::with_capacity(4096);
    let mut sent = 0u64;
    let run = async {
        loop {
            while sent < msgs && sent - result.received < ECHO_WINDOW {
                stamp(&mut out, sent, size);
                sent += 1;
            }
            flush(&mut w, &mut out).await?;
            if result.received >= msgs {
                return Ok(());
            }
            // One awaited message, then everything already buffered.
            let mut payload = Some(next_data(&mut reader).await?);
            while let Some(p) = payload {
                let now = now_nanos();
                let (seq, sent_at) = read_stamp(&p).ok_or("echo without a stamp")?;
                // Every echo is a latency sample.
                result.record(seq, sent_at, now, 1);
                payload = match reader.parse()? {
                    Some((OP_CLOSE, _)) => return Err("server closed the WebSocket".into()),
                    Some((opcode, p)) => data_of(opcode, &p)?,
                    None => None,
                };
            }
        }
    };
    // `None`: the timeout fired (the run future, which borrows `result`, is gone by then).
    let outcome = tokio::select! {
        r = run => Some(r),
        _ = stop.changed() => None,
    };
    match outcome {
        Some(Ok(())) => {}
        Some(Err(e)) => result.error = Some(e),
        None => {
            result.error = Some(format!(
                "timed out after {} of {msgs} echoes",
                result.received
            ));
        }
    }
    result.last_delivery = Some(Instant::now());
    result
}

/// `conns` clients each send `msgs` messages (at most [`ECHO_WINDOW`] in flight) and wait
/// for every echo.
pub(crate) async fn run_echo(
    server: &ServerProcess,
    path: &str,
    (conns, msgs, size): (usize, u64, usize),
    deflate: bool,
    timeout: Duration,
) -> Result<RawReport, String> {
    OFFER_DEFLATE.store(deflate, Ordering::Relaxed);
    WIRE_PAYLOAD.store(0, Ordering::Relaxed);
    let mut broker = Broker::start(server)?;
    let report = RawReport {
        conns,
        msgs,
        size,
        expected: conns as u64 * msgs,
        ..RawReport::default()
    };
    let clients = connect_all(broker.addr, path, conns).await?;
    let (start_tx, start_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let handles: Vec<_> = clients
        .into_iter()
        .map(|conn| {
            tokio::spawn(echo_client(
                conn,
                msgs,
                size,
                start_rx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let timer = stop_after(timeout, stop_tx);
    let cpu0 = (broker.cpu_secs(), self_cpu_secs());
    let first = Instant::now();
    let _ = start_tx.send(true);
    end_run(report, &mut broker, handles, timer, first, cpu0).await
}
