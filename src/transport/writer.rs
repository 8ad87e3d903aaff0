//! The writing half of a connection: drains the outbox in batches and writes each batch with as
//! few vectored writes as possible. MESSAGE frames are assembled here from a small per-delivery
//! prefix and the message's shared tail, so a fan-out copies no payload per subscriber.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::time::{Instant, sleep_until};

use super::deflate::OutboundDeflate;
use crate::broker::outbox::{CloseReason, Delivery, Outbound, Outbox};
use crate::broker::shared_frame::SharedFrame;
use crate::broker::stats::{self, Counters};
use crate::session::error_frame;
use crate::stomp::encoder::{encode, encode_header_line};
use crate::stomp::escape::Escaping;
use crate::ws::deflate::{RSV1, STORED_BLOCK_HEADER_LEN, stored_block_header};
use crate::ws::frame::{OpCode, encode_close, encode_header};

/// Most outbox items taken per batch (each becomes at most two iovecs).
const MAX_BATCH: usize = 256;
/// Stay well under the kernel's IOV_MAX (1024) per writev.
const MAX_IOVECS: usize = 512;
/// Scratch capacity kept between busy batches; more is released.
const KEEP_SCRATCH: usize = 64 * 1024;

/// How frames are put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Each STOMP frame in its own WebSocket message.
    WebSocket,
    /// STOMP frames back to back on a byte stream.
    Raw,
    /// WebSocket messages that are not STOMP (raw endpoints, `crate::raw`): items arrive as
    /// encoded frames, and a close carries its error text in the close frame only.
    PlainWebSocket,
}

impl Framing {
    fn is_websocket(self) -> bool {
        self != Framing::Raw
    }
}

enum Piece {
    Scratch(usize, usize),
    Shared(Bytes),
}

/// One batch being encoded: small encoded parts in `scratch`, shared payloads by reference.
struct Batch {
    scratch: BytesMut,
    pieces: Vec<Piece>,
    framing: Framing,
    /// permessage-deflate, when the WebSocket connection negotiated it (boxed: most do not,
    /// and every idle connection keeps this).
    deflate: Option<Box<OutboundDeflate>>,
}

impl Batch {
    fn piece(&self, index: usize) -> &[u8] {
        match &self.pieces[index] {
            Piece::Scratch(a, b) => &self.scratch[*a..*b],
            Piece::Shared(bytes) => bytes,
        }
    }

    fn clear(&mut self) {
        self.pieces.clear();
        if self.scratch.capacity() > KEEP_SCRATCH {
            self.scratch = BytesMut::new();
        } else {
            self.scratch.clear();
        }
    }

    /// Appends a WebSocket frame header when framed; `compressed` sets RSV1.
    fn push_ws_header(&mut self, opcode: OpCode, len: usize, compressed: bool) {
        if self.framing.is_websocket() {
            let mut header = [0u8; 10];
            let n = encode_header(opcode, true, len, &mut header);
            if compressed {
                header[0] |= RSV1;
            }
            let start = self.scratch.len();
            self.scratch.extend_from_slice(&header[..n]);
            self.pieces.push(Piece::Scratch(start, start + n));
        }
    }

    fn push_shared(&mut self, opcode: OpCode, bytes: Bytes) {
        let (bytes, compressed) = match self.deflate.as_deref().and_then(|d| d.compress(&bytes)) {
            Some(compressed) => (compressed, true),
            None => (bytes, false),
        };
        self.push_ws_header(opcode, bytes.len(), compressed);
        self.pieces.push(Piece::Shared(bytes));
    }

    /// A shared raw data frame: as it is, or (permessage-deflate negotiated) with its payload
    /// compressed once for every connection that shares the frame.
    fn push_raw(&mut self, frame: &SharedFrame) {
        let compressed = self
            .deflate
            .as_deref()
            .and_then(|d| d.shared_payload(frame));
        match compressed {
            Some(payload) => {
                let opcode = if frame.is_binary() {
                    OpCode::Binary
                } else {
                    OpCode::Text
                };
                self.push_ws_header(opcode, payload.len(), true);
                self.pieces.push(Piece::Shared(payload));
            }
            None => self.pieces.push(Piece::Shared(frame.frame().clone())),
        }
    }

    fn push_control(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.framing.is_websocket() {
            self.push_ws_header(opcode, payload.len(), false);
            let start = self.scratch.len();
            self.scratch.extend_from_slice(payload);
            self.pieces
                .push(Piece::Scratch(start, start + payload.len()));
        }
    }

    fn push_message(&mut self, outbox: &Outbox, delivery: &Delivery) {
        let escaping = outbox.message_escaping();
        let tail = delivery.message.tail(escaping).clone();
        // Reserve room for the largest WebSocket header (and a stored-block header, when
        // compressing), write the prefix after it, then put the header(s) right-aligned in the
        // reserved room so header + prefix are contiguous.
        let reserve = match (self.framing, self.deflate.is_some()) {
            (Framing::Raw, _) => 0,
            (_, false) => 10,
            (_, true) => 10 + STORED_BLOCK_HEADER_LEN,
        };
        let start = self.scratch.len();
        self.scratch.put_bytes(0, reserve);
        let prefix_start = self.scratch.len();
        encode_message_prefix(delivery, escaping, &mut self.scratch);
        let prefix_len = self.scratch.len() - prefix_start;
        let mut piece_start = prefix_start;
        let mut tail = tail;
        if self.framing.is_websocket() {
            let opcode = if delivery.message.is_text() {
                OpCode::Text
            } else {
                OpCode::Binary
            };
            // Compressed: [stored block with the prefix][the shared compressed tail].
            let compressed = self
                .deflate
                .as_deref()
                .and_then(|d| d.message_tail(&delivery.message, escaping, prefix_len));
            let mut header = [0u8; 10];
            let n = match compressed {
                Some(compressed) => {
                    piece_start -= STORED_BLOCK_HEADER_LEN;
                    self.scratch[piece_start..prefix_start]
                        .copy_from_slice(&stored_block_header(prefix_len));
                    tail = compressed;
                    let len = STORED_BLOCK_HEADER_LEN + prefix_len + tail.len();
                    let n = encode_header(opcode, true, len, &mut header);
                    header[0] |= RSV1;
                    n
                }
                None => encode_header(opcode, true, prefix_len + tail.len(), &mut header),
            };
            self.scratch[piece_start - n..piece_start].copy_from_slice(&header[..n]);
            piece_start -= n;
        }
        debug_assert!(piece_start >= start);
        self.pieces
            .push(Piece::Scratch(piece_start, self.scratch.len()));
        self.pieces.push(Piece::Shared(tail));
    }

    /// Encodes the closing sequence; returns nothing to write after it.
    fn push_close(&mut self, outbox: &Outbox, reason: &CloseReason) {
        let stomp = self.framing != Framing::PlainWebSocket;
        if let Some(frame) = error_frame(reason).filter(|_| stomp) {
            let mut out = BytesMut::new();
            encode(&frame, outbox.version(), &mut out);
            self.push_shared(OpCode::Text, out.freeze());
        }
        if self.framing.is_websocket() {
            let mut out = BytesMut::new();
            encode_close(reason.code, reason.error.as_deref().unwrap_or(""), &mut out);
            let start = self.scratch.len();
            self.scratch.extend_from_slice(&out);
            self.pieces.push(Piece::Scratch(start, self.scratch.len()));
        }
    }
}

/// Appends the per-delivery start of a MESSAGE frame (command, subscription, message-id, ack,
/// redelivered); the message's shared tail (its other headers and body) follows it.
pub(crate) fn encode_message_prefix(delivery: &Delivery, escaping: Escaping, out: &mut BytesMut) {
    out.extend_from_slice(b"MESSAGE\n");
    encode_header_line("subscription", &delivery.subscription, escaping, out);
    let mut id = itoa::Buffer::new();
    out.extend_from_slice(b"message-id:");
    write_ack_id(out, delivery, &mut id);
    if delivery.ack_header {
        out.extend_from_slice(b"ack:");
        write_ack_id(out, delivery, &mut id);
    }
    if delivery.redelivered {
        out.extend_from_slice(b"redelivered:true\n");
    }
    match delivery.recovered {
        Some(true) => out.extend_from_slice(b"x-recovered:true\n"),
        Some(false) => out.extend_from_slice(b"x-recovered:false\n"),
        None => {}
    }
}

fn write_ack_id(out: &mut BytesMut, delivery: &Delivery, buf: &mut itoa::Buffer) {
    out.extend_from_slice(buf.format(delivery.session).as_bytes());
    out.put_u8(b'-');
    out.extend_from_slice(buf.format(delivery.seq).as_bytes());
    out.put_u8(b'\n');
}

/// Where the batch in hand stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No batch: waiting for the outbox (or a heart-beat).
    Idle,
    /// A batch is encoded and partly written.
    Writing,
    /// The closing batch is written: flushing, then shutting the write side down.
    Flushing,
    ShuttingDown,
    /// The close went out (or writing failed): nothing more is written.
    Ended,
}

/// The writing half of a connection as plain state, so the connection's one task can drive it
/// next to reading (no task, no future of its own while idle): [`Writer::step`] takes a batch
/// from the outbox, encodes it and writes it; a write that blocks leaves its progress here and
/// the next `step` resumes it. Plain WebSocket and TCP connections run it inside
/// `connection::drive`; [`run`] runs it alone (raw endpoints).
pub(crate) struct Writer<W> {
    io: W,
    outbox: Arc<Outbox>,
    counters: Arc<Counters>,
    batch: Batch,
    phase: Phase,
    /// The batch ends with the close.
    closing: bool,
    /// Pieces of the batch fully written (at most two per item and a few for the close: far
    /// below `u32::MAX`), and bytes written of the next one.
    sent_pieces: u32,
    sent_bytes: usize,
    last_write: Instant,
}

impl<W: AsyncWrite + Unpin + Send> Writer<W> {
    pub(crate) fn new(
        io: W,
        outbox: Arc<Outbox>,
        framing: Framing,
        deflate: Option<OutboundDeflate>,
        counters: Arc<Counters>,
    ) -> Writer<W> {
        Writer {
            io,
            outbox,
            counters,
            batch: Batch {
                scratch: BytesMut::new(),
                pieces: Vec::new(),
                framing,
                deflate: deflate.map(Box::new),
            },
            phase: Phase::Idle,
            closing: false,
            sent_pieces: 0,
            sent_bytes: 0,
            last_write: Instant::now(),
        }
    }

    /// Whether a batch is in hand or items are queued.
    pub(crate) fn has_queued(&self) -> bool {
        self.phase != Phase::Idle || !self.outbox.is_empty()
    }

    /// When a STOMP heart-beat (an EOL) is due: nothing was written for the negotiated
    /// interval. `None` without heart-beats, and while a batch is in hand.
    pub(crate) fn heartbeat_due(&self) -> Option<Instant> {
        let heartbeat = self.outbox.heartbeat_ms();
        (heartbeat > 0 && self.phase == Phase::Idle)
            .then(|| self.last_write + Duration::from_millis(u64::from(heartbeat)))
    }

    /// Queues a heart-beat as the next batch (the next [`Writer::step`] writes it).
    pub(crate) fn heartbeat(&mut self) {
        if self.phase == Phase::Idle {
            self.encode(vec![Outbound::Frame(Bytes::from_static(b"\n"))]);
        }
    }

    /// Waits for queued items unless a batch is in hand, then writes the batch out. Resolves
    /// with `true` once the close is written and the write side shut down, `false` after any
    /// other batch. Cancel-safe: dropped mid-write, the next call resumes where this one was.
    pub(crate) async fn step(&mut self) -> io::Result<bool> {
        if self.phase == Phase::Idle {
            // Taken only once there is something: no item vector is kept while waiting.
            self.outbox.ready().await;
            let mut items = Vec::new();
            self.outbox.try_drain(&mut items, MAX_BATCH);
            self.encode(items);
        }
        poll_fn(|cx| self.poll_write(cx)).await
    }

    /// Writes until the close is written or the peer stops accepting bytes, once the close
    /// is queued (so no heart-beats: there is no idle time left to fill).
    pub(crate) async fn close_out(&mut self) -> io::Result<()> {
        while !self.step().await? {}
        Ok(())
    }

    /// Runs until the close is written or the peer stops accepting bytes, with heart-beats.
    pub(crate) async fn finish(&mut self) -> io::Result<()> {
        loop {
            let due = self.heartbeat_due();
            tokio::select! {
                biased;
                ended = self.step() => if ended? { return Ok(()) },
                _ = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => self.heartbeat(),
            }
        }
    }

    /// Encodes the taken items into the batch.
    fn encode(&mut self, items: Vec<Outbound>) {
        for item in items {
            match item {
                Outbound::Frame(bytes) => {
                    // Relayed MESSAGE frames may carry binary bodies, which a text
                    // WebSocket message must not (RFC 6455 §8.1).
                    let opcode = if std::str::from_utf8(&bytes).is_ok() {
                        OpCode::Text
                    } else {
                        OpCode::Binary
                    };
                    self.batch.push_shared(opcode, bytes);
                }
                Outbound::Message(delivery) => self.batch.push_message(&self.outbox, &delivery),
                Outbound::WsFrame(frame) => self.batch.push_raw(&frame),
                Outbound::Pong(payload) => self.batch.push_control(OpCode::Pong, &payload),
                Outbound::Ping(payload) => self.batch.push_control(OpCode::Ping, &payload),
                Outbound::Close(reason) => {
                    self.batch.push_close(&self.outbox, &reason);
                    self.closing = true;
                    break;
                }
            }
        }
        self.phase = Phase::Writing;
    }

    fn sent(&self) -> usize {
        self.sent_pieces as usize
    }

    /// Moves the cursor over `n` written bytes and past empty pieces.
    fn advance(&mut self, mut n: usize) {
        while self.sent() < self.batch.pieces.len() {
            let remaining = self.batch.piece(self.sent()).len() - self.sent_bytes;
            if n < remaining {
                self.sent_bytes += n;
                return;
            }
            n -= remaining;
            self.sent_pieces += 1;
            self.sent_bytes = 0;
        }
    }

    /// Writes the rest of the batch with vectored writes (at most `MAX_IOVECS` pieces each),
    /// then, for the closing batch, flushes and shuts the write side down.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        loop {
            match self.phase {
                Phase::Idle => return Poll::Ready(Ok(false)),
                Phase::Ended => return Poll::Ready(Ok(true)),
                Phase::Writing => {
                    self.advance(0);
                    let sent = self.sent();
                    if sent < self.batch.pieces.len() {
                        let end = (sent + MAX_IOVECS).min(self.batch.pieces.len());
                        let (batch, io) = (&self.batch, &mut self.io);
                        let mut slices: Vec<IoSlice<'_>> =
                            (sent..end).map(|i| IoSlice::new(batch.piece(i))).collect();
                        slices[0] = IoSlice::new(&batch.piece(sent)[self.sent_bytes..]);
                        let polled = Pin::new(io).poll_write_vectored(cx, &slices);
                        drop(slices);
                        let n = match polled {
                            Poll::Pending => return Poll::Pending,
                            Poll::Ready(Ok(0)) => {
                                self.phase = Phase::Ended;
                                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                            }
                            Poll::Ready(Ok(n)) => {
                                self.outbox.wrote();
                                n
                            }
                            Poll::Ready(Err(error)) => {
                                self.phase = Phase::Ended;
                                return Poll::Ready(Err(error));
                            }
                        };
                        self.advance(n);
                        continue;
                    }
                    self.batch_done();
                    if !self.closing {
                        return Poll::Ready(Ok(false));
                    }
                    self.phase = Phase::Flushing;
                }
                Phase::Flushing => {
                    if let Err(error) = ready!(Pin::new(&mut self.io).poll_flush(cx)) {
                        self.phase = Phase::Ended;
                        return Poll::Ready(Err(error));
                    }
                    self.phase = Phase::ShuttingDown;
                }
                Phase::ShuttingDown => {
                    // FIN after the last frame; the reader keeps draining so no RST eats it.
                    let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                    self.phase = Phase::Ended;
                }
            }
        }
    }

    /// Bookkeeping once a batch is fully written.
    fn batch_done(&mut self) {
        // All of it went out: the batch's length is what was written.
        let written: usize = (0..self.batch.pieces.len())
            .map(|i| self.batch.piece(i).len())
            .sum();
        stats::add(&self.counters.bytes_out, written as u64);
        self.batch.clear();
        self.sent_pieces = 0;
        self.sent_bytes = 0;
        self.phase = Phase::Idle;
        if self.outbox.release_if_empty() {
            // Idle again: give back what the burst grew (an idle connection keeps no buffer).
            self.batch.scratch = BytesMut::new();
            self.batch.pieces = Vec::new();
        }
        self.last_write = Instant::now();
    }
}

/// Runs a writer on its own until a `Close` item is written or the peer stops accepting
/// bytes. STOMP heart-beats (an EOL) go out whenever nothing else was written for the
/// negotiated interval.
///
/// An `async move` block rather than an `async fn`, so the arguments are not stored twice in
/// a future that lives as long as the connection.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice in the long-lived future"
)]
pub(crate) fn run<W: AsyncWrite + Unpin + Send + 'static>(
    io: W,
    outbox: Arc<Outbox>,
    framing: Framing,
    deflate: Option<OutboundDeflate>,
    counters: Arc<Counters>,
) -> impl Future<Output = io::Result<()>> + Send + 'static {
    async move {
        let mut writer = Writer::new(io, outbox, framing, deflate, counters);
        writer.finish().await
    }
}
