//! A receiving request (`xhr`, `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp`): attaches
//! to its session and writes frames into the response body until it is a poll that got
//! something, the response passed the size limit, or the session ended.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::encode::{close_text, encode_batch};
use super::session::{AttachError, Receiving, SockJsSession};
use crate::sockjs::frame::{
    ANOTHER_CONNECTION, HEARTBEAT, OPEN, Wrapping, array_frame, close_frame,
};

/// Most outbox items encoded into one `a[...]` frame.
const MAX_BATCH: usize = 256;

/// How one receiving request behaves.
pub(crate) struct ReceivePlan {
    /// The transport's framing of frames on the response.
    pub wrapping: OwnedWrapping,
    /// Written first (streaming transports' preludes).
    pub prelude: Option<String>,
    /// The session was created by this request: it starts with the open frame.
    pub opened: bool,
    /// The response ends after the first frame.
    pub polling: bool,
    /// Streaming responses end once they carried this many bytes.
    pub response_limit: usize,
    /// SockJS heart-beat interval.
    pub heartbeat: Duration,
    /// Where binary raw messages left out of a SockJS response are counted (`dropped`).
    pub counters: Arc<crate::broker::Counters>,
}

/// [`Wrapping`] with an owned callback name, to move into a task.
#[derive(Debug, Clone)]
pub(crate) enum OwnedWrapping {
    Xhr,
    EventSource,
    HtmlFile,
    Jsonp(String),
}

impl OwnedWrapping {
    fn wrap(&self, frame: &str) -> Bytes {
        let wrapping = match self {
            OwnedWrapping::Xhr => Wrapping::Xhr,
            OwnedWrapping::EventSource => Wrapping::EventSource,
            OwnedWrapping::HtmlFile => Wrapping::HtmlFile,
            OwnedWrapping::Jsonp(callback) => Wrapping::Jsonp { callback },
        };
        Bytes::from(wrapping.wrap(frame))
    }
}

/// Starts producing the response body; the returned channel is the body.
pub(crate) fn start(session: Arc<SockJsSession>, plan: ReceivePlan) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(8);
    // Attached here, before the response head can go out: requests attach in the order they
    // arrive, so a second one made after the first got its head is always the busy one.
    let attached = session.attach();
    tokio::spawn(run(session, plan, tx, attached));
    rx
}

async fn run(
    session: Arc<SockJsSession>,
    plan: ReceivePlan,
    tx: mpsc::Sender<Bytes>,
    attached: Result<Receiving, AttachError>,
) {
    if let Some(prelude) = &plan.prelude
        && tx.send(Bytes::from(prelude.clone())).await.is_err()
    {
        return; // dropping `attached` detaches it
    }
    let send = |frame: &str| tx.send(plan.wrapping.wrap(frame));
    let receiving = match attached {
        Ok(receiving) => receiving,
        Err(AttachError::Busy) => {
            let _ = send(&close_frame(ANOTHER_CONNECTION.0, ANOTHER_CONNECTION.1)).await;
            return;
        }
        Err(AttachError::Closed(close)) => {
            let _ = send(&close_text(&close)).await;
            return;
        }
    };
    if plan.opened {
        if send(OPEN).await.is_err() {
            receiving.session().interrupted();
            return;
        }
        if plan.polling {
            return;
        }
    }
    let outbox = session.outbox().clone();
    let mut items = Vec::new();
    let mut written = 0usize;
    let mut last_write = Instant::now();
    loop {
        let stomp_heartbeat = Duration::from_millis(u64::from(outbox.heartbeat_ms()));
        let frame: String = tokio::select! {
            biased;
            _ = tx.closed() => {
                // The client went away in the middle of a response.
                session.interrupted();
                return;
            }
            _ = outbox.next_batch(&mut items, MAX_BATCH) => {
                let encoded = encode_batch(&outbox, &mut items, session.is_stomp());
                crate::broker::stats::add(&plan.counters.dropped, encoded.dropped);
                if let Some(array) = encoded.array {
                    if tx.send(plan.wrapping.wrap(&array)).await.is_err() {
                        session.interrupted();
                        return;
                    }
                    written += array.len();
                    last_write = Instant::now();
                }
                if let Some(close) = encoded.close {
                    session.set_closed(close.clone());
                    let _ = send(&close_text(&close)).await;
                    return;
                }
                if plan.polling && written > 0 || written >= plan.response_limit {
                    return;
                }
                continue;
            }
            _ = session.wait_ended() => {
                let _ = send(&close_text(&session.close_frame())).await;
                return;
            }
            _ = sleep_until(last_write + stomp_heartbeat), if !stomp_heartbeat.is_zero() => {
                // A STOMP heart-beat (an EOL) when nothing else went out for its interval.
                array_frame(["\n"])
            }
            _ = sleep_until(last_write + plan.heartbeat) => HEARTBEAT.to_owned(),
        };
        if send(&frame).await.is_err() {
            session.interrupted();
            return;
        }
        written += frame.len();
        last_write = Instant::now();
        if plan.polling || written >= plan.response_limit {
            return;
        }
    }
}
