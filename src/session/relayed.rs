//! Relay mode in the session: which frames go to the message broker, and how they get there.

use super::flow::Flow;
use super::refusal::Refusal;
use super::{Phase, Session, Waiting};
use crate::broker::outbox::CloseReason;
use crate::hooks::{Question, SubscribeRequest};
use crate::relay::client::ClientRelay;
use crate::relay::link::SessionLink;
use crate::relay::routing::Route;
use crate::stomp::{Command, Frame, Version};
use crate::ws::codes;

impl Session {
    /// Relay mode: the transport opened this session's broker connection (after
    /// [`Flow::OpenRelay`]); hands the session its end of the link.
    pub(crate) fn attach_relay(&mut self, link: SessionLink) {
        if let Some(relay) = self.engine.relay.clone() {
            self.relay = Some(Box::new(ClientRelay::new(relay, link)));
        }
    }

    /// Relay mode: the broker answered the connection opened for [`Flow::OpenRelay`] with
    /// CONNECTED (`Ok`), or it could not be opened (`Err` says why). Completes the CONNECT.
    pub fn broker_connected(&mut self, result: Result<(), String>) -> Flow {
        let waiting = self.waiting.take();
        let Some(Waiting::RelayConnect {
            version,
            heartbeat,
            user,
        }) = waiting.map(|w| *w)
        else {
            return Flow::Continue;
        };
        match result {
            Ok(()) => self.complete_connect(version, heartbeat, user),
            Err(message) => {
                self.phase = Phase::AwaitingConnect;
                self.relay = None;
                self.refuse(
                    Refusal::with_code(
                        codes::TRY_AGAIN_LATER,
                        format!("message broker unavailable: {message}"),
                    ),
                    None,
                )
            }
        }
    }

    /// A frame for the message broker (or, for transaction boundaries, for both brokers).
    pub(super) fn handle_relayed(&mut self, frame: Frame, route: Route) -> Flow {
        let receipt = frame.header("receipt").map(str::to_string);
        if route == Route::Both {
            // The local half runs first, without the receipt, which the broker answers.
            let mut local = frame.clone();
            local.headers.retain(|(name, _)| name != "receipt");
            let result = match frame.command {
                Command::Begin => self.on_begin(&local).map(|()| Flow::Continue),
                Command::Commit => self.on_commit(&local, None),
                _ => self.on_abort(&local).map(|()| Flow::Continue),
            };
            return match result {
                Err(refusal) => self.refuse(refusal, receipt),
                // An application handler in the local half: the broker's half follows it.
                Ok(Flow::App(call)) => {
                    if let Some(Waiting::App { forward, .. }) = self.waiting.as_deref_mut() {
                        *forward = Some(Box::new(frame));
                    }
                    Flow::App(call)
                }
                Ok(_) => self.forward_to_broker(frame, receipt),
            };
        }
        if frame.command == Command::Subscribe {
            let relayed = self.relay.as_ref().map_or(0, |r| r.subscription_count());
            let max = self.engine.broker.config().max_subscriptions_per_session;
            if relayed >= max {
                return self.refuse(
                    Refusal::policy(format!("too many subscriptions (at most {max})")),
                    receipt,
                );
            }
            if self.version != Version::V1_0 && frame.header("id").is_none() {
                return self.refuse(
                    Refusal::new("SUBSCRIBE frame is missing the 'id' header"),
                    receipt,
                );
            }
            if self.engine.wants_subscribe_decision() {
                let request = SubscribeRequest {
                    session: self.id,
                    user: self.user.clone(),
                    destination: frame.header("destination").unwrap_or_default().to_string(),
                    headers: frame.headers.clone(),
                };
                self.phase = Phase::Deciding;
                self.waiting = Some(Box::new(Waiting::RelaySubscribe { frame, receipt }));
                return Flow::Ask(Question::Subscribe(request));
            }
        }
        self.forward_to_broker(frame, receipt)
    }

    pub(super) fn forward_to_broker(&mut self, frame: Frame, receipt: Option<String>) -> Flow {
        let version = self.version;
        let Some(relay) = self.relay.as_mut() else {
            return Flow::Continue;
        };
        match relay.forward(frame, version) {
            Ok(()) => Flow::Continue,
            Err(message) => {
                self.refuse(Refusal::with_code(codes::TRY_AGAIN_LATER, message), receipt)
            }
        }
    }

    /// DISCONNECT in relay mode: the broker gets it too; with a receipt, the session ends
    /// when the broker's RECEIPT has reached the client.
    pub(super) fn relay_disconnect(&mut self, frame: Frame) -> Flow {
        let with_receipt = frame.header("receipt").is_some();
        let version = self.version;
        let forwarded = self
            .relay
            .as_mut()
            .is_some_and(|relay| relay.forward(frame.clone(), version).is_ok());
        if forwarded && with_receipt {
            if let Some(relay) = self.relay.as_mut() {
                relay.disconnecting = true;
            }
            return Flow::Continue;
        }
        if let Some(receipt) = frame.header("receipt") {
            self.send_receipt(receipt);
        }
        self.outbox.close(CloseReason::normal());
        self.end();
        Flow::Close
    }
}
