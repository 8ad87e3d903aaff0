//! A client session's own broker connection: a tokio task between the session (which hands it
//! frames through a bounded channel) and the broker (whose MESSAGE, RECEIPT and ERROR frames go
//! to the session's outbox, under the same slow-consumer rules as local deliveries).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::Relay;
use super::backoff::Backoff;
use super::conn::BrokerConn;
use super::frames;
use crate::broker::outbox::{CloseReason, Outbound, Outbox, PushError};
use crate::broker::{Counters, stats};
use crate::stomp::decoder::Decoded;
use crate::stomp::encoder::encode;
use crate::stomp::frame::{Command, Frame};
use crate::stomp::version::Version;
use crate::ws::codes;

/// How long a DISCONNECT with a receipt waits for the broker's RECEIPT.
const DISCONNECT_RECEIPT_WAIT: Duration = Duration::from_secs(5);

/// The session's end of its broker connection. Dropping it ends the connection (with a
/// DISCONNECT to the broker) once the frames already handed over are written.
#[derive(Debug)]
pub(crate) struct SessionLink {
    frames: mpsc::Sender<Frame>,
}

impl SessionLink {
    /// Hands a frame to the broker connection without blocking. Fails when too many frames
    /// are waiting (the broker is slow or being reconnected) or the connection is gone.
    pub(crate) fn forward(&self, frame: Frame) -> Result<(), String> {
        self.frames.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => format!(
                "too many frames waiting for the message broker (at most {})",
                self.frames.max_capacity()
            ),
            mpsc::error::TrySendError::Closed(_) => {
                "the connection to the message broker is closed".to_string()
            }
        })
    }

    /// Flow control: when fewer than a quarter of the link's frame slots are free (the broker
    /// or its connection is behind), what to wait on before the session hands over more; the
    /// transport stops reading the client meanwhile instead of refusing its frames.
    pub(crate) fn backlog(&self) -> Option<Backlog> {
        let max = self.frames.max_capacity();
        (self.frames.capacity() < max.div_ceil(4)).then(|| Backlog {
            frames: self.frames.clone(),
        })
    }
}

/// A session's broker link that is behind; see [`SessionLink::backlog`].
#[derive(Debug)]
pub struct Backlog {
    frames: mpsc::Sender<Frame>,
}

impl Backlog {
    /// Resolves once at least half of the link's frame slots are free again (or the link is
    /// gone: then the next frame's forward reports it).
    pub async fn drained(&self) {
        let half = self.frames.max_capacity().div_ceil(2);
        // Reserving the slots waits for them; dropping the permits frees them at once.
        drop(self.frames.reserve_many(half).await);
    }
}

/// The broker's verdict on a session's connection: `Ok` once it sent CONNECTED, else why not.
pub(crate) type Connected = oneshot::Receiver<Result<(), String>>;

/// Opens the broker connection of session `session` in a new task (on the current runtime;
/// the transport calls this for the session's `Flow::OpenRelay`). The receiver gets the
/// broker's verdict.
pub(crate) fn open(
    relay: Arc<Relay>,
    outbox: Arc<Outbox>,
    counters: Arc<Counters>,
    version: Version,
    session: u64,
) -> (SessionLink, Connected) {
    let (connected, verdict) = oneshot::channel();
    let (tx, rx) = mpsc::channel(relay.config.max_pending_frames);
    tokio::spawn(async move {
        let opened = BrokerConn::open(
            &relay.config,
            &relay.config.login,
            &relay.config.passcode,
            version,
            relay.limits.clone(),
        )
        .await;
        let conn = match opened {
            Ok(conn) => conn,
            Err(message) => {
                tracing::info!(session, %message, "relay: broker connection failed");
                let _ = connected.send(Err(message));
                return;
            }
        };
        if connected.send(Ok(())).is_err() {
            conn.close().await; // the client left while we connected
            return;
        }
        let link = Link {
            relay,
            outbox,
            counters,
            version,
            session,
            conn,
            frames: rx,
            generation: 0,
            subscriptions: Vec::new(),
            disconnect_receipt: None,
        };
        link.serve().await;
    });
    (SessionLink { frames: tx }, verdict)
}

/// What to do after handling a frame.
enum Next {
    Continue,
    /// The session is over (closed here or elsewhere): end the task.
    Stop,
}

struct Link {
    relay: Arc<Relay>,
    outbox: Arc<Outbox>,
    counters: Arc<Counters>,
    version: Version,
    session: u64,
    conn: BrokerConn,
    frames: mpsc::Receiver<Frame>,
    /// Broker connections opened so far minus one (ack ids carry it; see `frames`).
    generation: u64,
    /// Live relayed subscriptions, in order, with the SUBSCRIBE that made each.
    subscriptions: Vec<(String, Frame)>,
    /// A DISCONNECT's receipt being waited for, and until when.
    disconnect_receipt: Option<(String, Instant)>,
}

impl Link {
    async fn serve(mut self) {
        loop {
            let mut deadline = self.conn.next_deadline();
            if let Some((_, until)) = &self.disconnect_receipt {
                deadline = deadline.min(*until);
            }
            let outbox = self.outbox.clone();
            // Flow control: while the client's queue is congested, the broker is not read (TCP
            // backpressure to it) until the queue is relieved, or found stuck.
            let congested = outbox.is_congested();
            if let Some(stuck_at) = outbox.stuck_at() {
                deadline = deadline.min(Instant::from_std(stuck_at));
            }
            let next = tokio::select! {
                biased;
                _ = outbox.closing(), if self.disconnect_receipt.is_none() => Next::Stop,
                () = outbox.relieved(), if congested => {
                    // The pause was ours: the broker's silence meanwhile does not count.
                    self.conn.last_read = Instant::now();
                    Next::Continue
                }
                frame = self.frames.recv(), if self.disconnect_receipt.is_none() => match frame {
                    None => Next::Stop,
                    Some(frame) => match self.write_to_broker(frame).await {
                        Ok(next) => next,
                        Err(error) => self.lost(error).await,
                    },
                },
                read = self.conn.read(), if !congested => match read {
                    Ok(Some(Decoded::Frame(frame))) => self.on_broker_frame(frame),
                    Ok(Some(Decoded::Heartbeat)) => Next::Continue,
                    Ok(None) => self.lost("the message broker closed the connection".into()).await,
                    Err(error) => self.lost(error.to_string()).await,
                },
                _ = sleep_until(deadline) => {
                    if congested && outbox.close_if_stuck() {
                        stats::count_overflow(&self.counters, &outbox);
                        Next::Stop
                    } else if self.disconnect_receipt.as_ref().is_some_and(|(_, until)| Instant::now() >= *until) {
                        // No RECEIPT from the broker: end the session without it.
                        self.outbox.close(CloseReason::normal());
                        Next::Stop
                    } else {
                        if congested {
                            // Not reading the broker is our doing, not its silence.
                            self.conn.last_read = Instant::now();
                        }
                        match self.conn.on_timer().await {
                            Ok(()) => Next::Continue,
                            Err(error) => self.lost(error.to_string()).await,
                        }
                    }
                }
            };
            if let Next::Stop = next {
                break;
            }
        }
        self.conn.close().await;
        tracing::debug!(session = self.session, "relay: broker connection closed");
    }

    /// Writes a client frame to the broker (an IO error means the connection is lost).
    async fn write_to_broker(&mut self, frame: Frame) -> Result<Next, String> {
        let frame = match frame.command {
            Command::Subscribe => {
                if let Some(id) = frame.header("id").or_else(|| frame.header("destination")) {
                    let id = id.to_string();
                    self.subscriptions.retain(|(s, _)| *s != id);
                    self.subscriptions.push((id, frame.clone()));
                }
                frame
            }
            Command::Unsubscribe => {
                if let Some(id) = frame.header("id").or_else(|| frame.header("destination")) {
                    self.subscriptions.retain(|(s, _)| s != id);
                }
                frame
            }
            Command::Ack | Command::Nack => {
                let receipt = frame.header("receipt").map(str::to_string);
                match frames::ack_to_broker(frame, self.generation) {
                    Some(frame) => frame,
                    None => {
                        // A message of the lost connection: the broker redelivers it anyway.
                        if let Some(receipt) = receipt {
                            let receipt =
                                Frame::new(Command::Receipt).with_header("receipt-id", receipt);
                            return Ok(self.push_to_client(&receipt));
                        }
                        return Ok(Next::Continue);
                    }
                }
            }
            Command::Disconnect => {
                if let Some(receipt) = frame.header("receipt") {
                    self.disconnect_receipt = Some((
                        receipt.to_string(),
                        Instant::now() + DISCONNECT_RECEIPT_WAIT,
                    ));
                }
                frame
            }
            _ => frame,
        };
        self.conn.write(&frame).await.map_err(|e| e.to_string())?;
        if frame.command == Command::Disconnect && self.disconnect_receipt.is_none() {
            return Ok(Next::Stop);
        }
        Ok(Next::Continue)
    }

    fn on_broker_frame(&mut self, frame: Frame) -> Next {
        match frame.command {
            Command::Message => {
                let frame = frames::message_to_client(frame, self.generation);
                self.push_to_client(&frame)
            }
            Command::Receipt => {
                let id = frame.header("receipt-id").unwrap_or_default();
                if id.starts_with(frames::RELAY_RECEIPT_PREFIX) {
                    return Next::Continue;
                }
                if self
                    .disconnect_receipt
                    .as_ref()
                    .is_some_and(|(receipt, _)| receipt == id)
                {
                    self.push_to_client(&frame);
                    self.outbox.close(CloseReason::normal());
                    return Next::Stop;
                }
                self.push_to_client(&frame)
            }
            Command::Error => {
                let message = frame.header("message").unwrap_or("no reason given");
                let detail = (!frame.body.is_empty())
                    .then(|| String::from_utf8_lossy(&frame.body).into_owned());
                tracing::debug!(session = self.session, message, "relay: broker ERROR");
                self.outbox.close(CloseReason {
                    code: codes::POLICY_VIOLATION,
                    error: Some(format!("message broker: {message}")),
                    receipt_id: frame.header("receipt-id").map(str::to_string),
                    detail,
                });
                Next::Stop
            }
            _ => Next::Continue,
        }
    }

    /// Queues a frame for the client in the client's version; a full queue closes the session
    /// as a slow consumer.
    fn push_to_client(&self, frame: &Frame) -> Next {
        let mut out = BytesMut::with_capacity(128 + frame.body.len());
        encode(frame, self.version, &mut out);
        match self
            .outbox
            .push_or_close_if_stuck(Outbound::Frame(out.freeze()))
        {
            Ok(()) => Next::Continue,
            Err(PushError::Overflow) => {
                stats::count_overflow(&self.counters, &self.outbox);
                Next::Stop
            }
            Err(_) => Next::Stop,
        }
    }

    /// The broker connection broke: restore it when configured, else close the client.
    async fn lost(&mut self, reason: String) -> Next {
        if self.outbox.is_closing() {
            return Next::Stop;
        }
        tracing::info!(session = self.session, %reason, "relay: broker connection lost");
        if self.relay.config.session_restore && self.disconnect_receipt.is_none() {
            match self.restore().await {
                Ok(()) => return Next::Continue,
                Err(Some(why)) => return self.close_client(why),
                Err(None) => return Next::Stop, // the session ended meanwhile
            }
        }
        self.close_client(reason)
    }

    fn close_client(&self, detail: String) -> Next {
        self.outbox.close(CloseReason {
            detail: Some(detail),
            ..CloseReason::error(
                codes::INTERNAL_ERROR,
                "lost the connection to the message broker",
            )
        });
        Next::Stop
    }

    /// Reconnects with backoff and re-subscribes every subscription, each confirmed by a
    /// receipt. `Err(None)`: the session ended meanwhile; `Err(Some(why))`: gave up.
    async fn restore(&mut self) -> Result<(), Option<String>> {
        let relay = self.relay.clone();
        let config = &relay.config;
        let started = Instant::now();
        let mut backoff = Backoff::new(config.reconnect_initial_delay, config.reconnect_max_delay);
        let mut last_error = String::from("no attempt made");
        while started.elapsed() < config.restore_timeout {
            if self.frames.is_closed() {
                return Err(None); // the session ended (its side of the channel is gone)
            }
            let outbox = self.outbox.clone();
            tokio::select! {
                _ = outbox.closing() => return Err(None),
                _ = sleep(backoff.next_delay()) => {}
            }
            let opened = tokio::select! {
                _ = outbox.closing() => return Err(None),
                opened = BrokerConn::open(config, &config.login, &config.passcode, self.version, self.relay.limits.clone()) => opened,
            };
            let conn = match opened {
                Ok(conn) => conn,
                Err(error) => {
                    last_error = error;
                    continue;
                }
            };
            let old = std::mem::replace(&mut self.conn, conn);
            drop(old);
            self.generation += 1;
            match self.resubscribe().await {
                Ok(()) => {
                    tracing::info!(
                        session = self.session,
                        subscriptions = self.subscriptions.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "relay: session restored"
                    );
                    return Ok(());
                }
                Err(None) => return Err(None),
                Err(Some(error)) => last_error = error,
            }
        }
        Err(Some(format!(
            "could not restore the broker connection within {} s: {last_error}",
            config.restore_timeout.as_secs_f32()
        )))
    }

    /// Sends every SUBSCRIBE again and waits for all their receipts, passing messages through.
    async fn resubscribe(&mut self) -> Result<(), Option<String>> {
        let mut pending = Vec::with_capacity(self.subscriptions.len());
        for (n, (_, subscribe)) in self.subscriptions.iter().enumerate() {
            let receipt = format!("{}{}-{n}", frames::RELAY_RECEIPT_PREFIX, self.generation);
            let frame = frames::resubscribe(subscribe, &receipt);
            self.conn
                .write(&frame)
                .await
                .map_err(|e| Some(e.to_string()))?;
            pending.push(receipt);
        }
        let deadline = Instant::now() + self.relay.config.connect_timeout;
        while !pending.is_empty() {
            let read = timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.conn.read(),
            )
            .await
            .map_err(|_| Some("no receipt for a re-subscription".to_string()))?;
            match read {
                Ok(Some(Decoded::Frame(frame))) => match frame.command {
                    Command::Receipt => {
                        let id = frame.header("receipt-id").unwrap_or_default();
                        pending.retain(|p| p != id);
                    }
                    Command::Error => {
                        let message = frame.header("message").unwrap_or("no reason given");
                        return Err(Some(format!("re-subscription refused: {message}")));
                    }
                    _ => {
                        if let Next::Stop = self.on_broker_frame(frame) {
                            return Err(None);
                        }
                    }
                },
                Ok(Some(Decoded::Heartbeat)) => {}
                Ok(None) => return Err(Some("closed during re-subscription".into())),
                Err(e) => return Err(Some(e.to_string())),
            }
        }
        Ok(())
    }
}
