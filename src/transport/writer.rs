//! The writing half of a connection: drains the outbox in batches and writes each batch with as
//! few vectored writes as possible. MESSAGE frames are assembled here from a small per-delivery
//! prefix and the message's shared tail, so a fan-out copies no payload per subscriber.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::deflate::OutboundDeflate;
use crate::broker::outbox::{CloseReason, Delivery, Outbound, Outbox};
use crate::broker::stats::{self, Counters};
use crate::stomp::encoder::{encode, encode_header_line};
use crate::stomp::escape::Escaping;
use crate::stomp::session::error_frame;
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
    /// permessage-deflate, when the WebSocket connection negotiated it.
    deflate: Option<OutboundDeflate>,
}

impl Batch {
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
        let (bytes, compressed) = match self.deflate.and_then(|d| d.compress(&bytes)) {
            Some(compressed) => (compressed, true),
            None => (bytes, false),
        };
        self.push_ws_header(opcode, bytes.len(), compressed);
        self.pieces.push(Piece::Shared(bytes));
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
        let reserve = match (self.framing, self.deflate) {
            (Framing::Raw, _) => 0,
            (_, None) => 10,
            (_, Some(_)) => 10 + STORED_BLOCK_HEADER_LEN,
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
}

fn write_ack_id(out: &mut BytesMut, delivery: &Delivery, buf: &mut itoa::Buffer) {
    out.extend_from_slice(buf.format(delivery.session).as_bytes());
    out.put_u8(b'-');
    out.extend_from_slice(buf.format(delivery.seq).as_bytes());
    out.put_u8(b'\n');
}

/// Writes every piece, looping over partial writes.
async fn write_pieces<W: AsyncWrite + Unpin>(io: &mut W, batch: &Batch) -> io::Result<usize> {
    let mut total = 0;
    for chunk in batch.pieces.chunks(MAX_IOVECS) {
        let mut slices: Vec<IoSlice<'_>> = chunk
            .iter()
            .map(|p| match p {
                Piece::Scratch(a, b) => IoSlice::new(&batch.scratch[*a..*b]),
                Piece::Shared(bytes) => IoSlice::new(bytes),
            })
            .collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = io.write_vectored(slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            total += n;
            IoSlice::advance_slices(&mut slices, n);
        }
    }
    Ok(total)
}

/// Runs until a `Close` item is written or the peer stops accepting bytes. STOMP heart-beats
/// (an EOL) go out whenever nothing else was written for the negotiated interval.
///
/// An `async move` block rather than an `async fn`, so the arguments are not stored twice in
/// a future that lives as long as the connection.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice in the long-lived future"
)]
pub(crate) fn run<W: AsyncWrite + Unpin + Send + 'static>(
    mut io: W,
    outbox: Arc<Outbox>,
    framing: Framing,
    deflate: Option<OutboundDeflate>,
    counters: Arc<Counters>,
) -> impl Future<Output = io::Result<()>> + Send + 'static {
    async move {
        let mut items = Vec::new();
        let mut batch = Batch {
            scratch: BytesMut::new(),
            pieces: Vec::new(),
            framing,
            deflate,
        };
        let mut last_write = Instant::now();
        loop {
            let heartbeat = outbox.heartbeat_ms();
            tokio::select! {
                biased;
                _ = outbox.next_batch(&mut items, MAX_BATCH) => {}
                _ = tokio::time::sleep_until(last_write + Duration::from_millis(u64::from(heartbeat))), if heartbeat > 0 => {
                    items.push(Outbound::Frame(Bytes::from_static(b"\n")));
                }
            }
            let mut closing = false;
            for item in items.drain(..) {
                match item {
                    Outbound::Frame(bytes) => {
                        // Relayed MESSAGE frames may carry binary bodies, which a text
                        // WebSocket message must not (RFC 6455 §8.1).
                        let opcode = if std::str::from_utf8(&bytes).is_ok() {
                            OpCode::Text
                        } else {
                            OpCode::Binary
                        };
                        batch.push_shared(opcode, bytes)
                    }
                    Outbound::Message(delivery) => batch.push_message(&outbox, &delivery),
                    Outbound::WsFrame(frame) => batch.pieces.push(Piece::Shared(frame)),
                    Outbound::Pong(payload) => batch.push_control(OpCode::Pong, &payload),
                    Outbound::Ping(payload) => batch.push_control(OpCode::Ping, &payload),
                    Outbound::Close(reason) => {
                        batch.push_close(&outbox, &reason);
                        closing = true;
                        break;
                    }
                }
            }
            let written = write_pieces(&mut io, &batch).await?;
            stats::add(&counters.bytes_out, written as u64);
            batch.clear();
            if outbox.release_if_empty() {
                // Idle again: give back what the burst grew (an idle connection keeps no buffer).
                items = Vec::new();
                batch.scratch = BytesMut::new();
                batch.pieces = Vec::new();
            }
            last_write = Instant::now();
            if closing {
                io.flush().await?;
                // FIN after the last frame; the reader keeps draining so no RST eats it.
                let _ = io.shutdown().await;
                return Ok(());
            }
        }
    }
}
