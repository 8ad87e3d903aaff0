//! A raw endpoint's SockJS session over HTTP transports: the messages that `xhr_send` /
//! `jsonp_send` carry are handed one by one to the endpoint's behaviour (echo, broadcast, or
//! the host), exactly as a raw WebSocket connection's messages are; what the endpoint sends
//! back leaves through the attached receiving request as SockJS `a[...]` frames.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::session::SessionEnd;
use crate::broker::outbox::CloseReason;
use crate::engine::Engine;
use crate::raw::hub::RawConn;
use crate::transport::paused::Paused;
use crate::transport::raw_connection::{RawAccess, handle_message};
use crate::ws::codes;

/// What a raw SockJS session runs with.
pub(crate) struct RawSessionRun {
    pub engine: Arc<Engine>,
    pub conn: Arc<RawConn>,
    pub access: Option<RawAccess>,
    pub messages: mpsc::Receiver<Bytes>,
    pub ended: watch::Receiver<bool>,
    pub lifetime: JoinHandle<io::Result<()>>,
    pub shutdown: watch::Receiver<bool>,
    pub end: SessionEnd,
    pub disconnect_delay: Duration,
}

/// Runs the session until the client leaves (disconnect delay), the endpoint or host closes
/// it, or the server stops; then reports `RawClose`.
pub(crate) async fn run(mut run: RawSessionRun) {
    let counters = run.engine.counters().clone();
    let outbox = run.conn.outbox.clone();
    let mut stopping = false;
    loop {
        tokio::select! {
            biased;
            _ = outbox.closing() => break,
            changed = run.shutdown.changed() => {
                if changed.is_err() || *run.shutdown.borrow() {
                    close(&run.conn, codes::GOING_AWAY, "server shutting down");
                    stopping = true;
                    break;
                }
            }
            () = async { drop(run.ended.wait_for(|ended| *ended).await) } => break,
            message = run.messages.recv() => {
                let Some(message) = message else { break };
                if let Some(Err(refusal)) = run
                    .access
                    .as_ref()
                    .map(|a| a.check_send(&run.conn.endpoint.path, &counters))
                {
                    close(&run.conn, codes::POLICY_VIOLATION, &refusal);
                    break;
                }
                let mut congestion = Vec::new();
                handle_message(&run.engine, &run.conn, message, false, &mut congestion);
                if !congestion.is_empty() {
                    // Flow control as on a WebSocket: read nothing more until relieved (or
                    // the stuck receivers are closed as slow consumers).
                    let mut paused = Paused::new(congestion, &counters);
                    loop {
                        let deadline = paused.deadline();
                        tokio::select! {
                            () = paused.relieved() => break,
                            () = tokio::time::sleep_until(deadline) => {
                                if paused.recheck(&counters) {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // The close frame reaches a receiving request, or the client stays away for the delay;
    // a stopping server gives an attached request only a moment to take it.
    let linger = if stopping {
        Duration::from_millis(200)
    } else {
        run.disconnect_delay + Duration::from_secs(1)
    };
    let _ = timeout(linger, run.lifetime).await;
    crate::transport::raw_connection::finish(&run.engine, &run.conn);
    drop(run.end);
}

fn close(conn: &RawConn, code: u16, reason: &str) {
    conn.record_close(code, reason);
    conn.outbox
        .close(CloseReason::error(code, reason.to_owned()));
}
