//! The writer of a SockJS `websocket` transport connection: every WebSocket text message is a
//! SockJS frame (`o` first, `a[...]` per batch of STOMP frames, `h` heart-beats, `c[...]` at
//! the end). The reading side is the ordinary WebSocket reader with SockJS message decoding
//! (see `Inbound::WebSocket::sockjs`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, sleep_until};

use super::encode::{close_text, encode_batch};
use crate::broker::outbox::{Outbound, Outbox};
use crate::broker::stats::{self, Counters};
use crate::sockjs::frame::{HEARTBEAT, OPEN, array_frame};
use crate::ws::frame::{OpCode, encode_close, encode_frame};

const MAX_BATCH: usize = 256;

/// Runs until the session's close is written or the peer stops reading.
pub(crate) async fn run<W: AsyncWrite + Unpin + Send + 'static>(
    mut io: W,
    outbox: Arc<Outbox>,
    counters: Arc<Counters>,
    heartbeat: Duration,
    stomp: bool,
) -> io::Result<()> {
    let mut out = BytesMut::new();
    encode_frame(OpCode::Text, OPEN.as_bytes(), &mut out);
    let mut items = Vec::new();
    let mut last_write = Instant::now();
    loop {
        if !out.is_empty() {
            io.write_all(&out).await?;
            stats::add(&counters.bytes_out, out.len() as u64);
            out.clear();
            last_write = Instant::now();
        }
        let stomp_heartbeat = Duration::from_millis(u64::from(outbox.heartbeat_ms()));
        tokio::select! {
            biased;
            _ = outbox.next_batch(&mut items, MAX_BATCH) => {}
            _ = sleep_until(last_write + stomp_heartbeat), if !stomp_heartbeat.is_zero() => {
                encode_frame(OpCode::Text, array_frame(["\n"]).as_bytes(), &mut out);
                continue;
            }
            _ = sleep_until(last_write + heartbeat) => {
                encode_frame(OpCode::Text, HEARTBEAT.as_bytes(), &mut out);
                continue;
            }
        }
        let encoded = encode_batch(&outbox, &mut items, stomp);
        stats::add(&counters.dropped, encoded.dropped);
        for control in &encoded.control {
            match control {
                Outbound::Ping(payload) => encode_frame(OpCode::Ping, payload, &mut out),
                Outbound::Pong(payload) => encode_frame(OpCode::Pong, payload, &mut out),
                _ => {}
            }
        }
        if let Some(array) = &encoded.array {
            encode_frame(OpCode::Text, array.as_bytes(), &mut out);
        }
        if let Some(close) = &encoded.close {
            encode_frame(OpCode::Text, close_text(close).as_bytes(), &mut out);
            // The WebSocket close carries a normal code: the SockJS close frame said why.
            encode_close(crate::ws::codes::NORMAL, "", &mut out);
            io.write_all(&out).await?;
            stats::add(&counters.bytes_out, out.len() as u64);
            io.flush().await?;
            let _ = io.shutdown().await;
            return Ok(());
        }
    }
}
