//! SEND: to subscribers through the broker, or to the host's application handlers.

use std::sync::Arc;

use super::app_call::{AppCall, AppDone};
use super::refusal::{Refusal, required};
use super::{Flow, Phase, Session, Waiting};
use crate::broker::{Message, destination};
use crate::hooks::AppMessage;
use crate::stomp::Frame;

impl Session {
    /// A SEND outside a transaction; an application destination's handler is handed to the
    /// transport as [`Flow::App`] (the receipt follows once it returns).
    pub(super) fn on_send(
        &mut self,
        frame: Frame,
        receipt: Option<String>,
    ) -> Result<Flow, Refusal> {
        required(&frame, "destination")?;
        if let Some(tx) = frame.header("transaction") {
            self.buffer(tx.to_string(), frame)?;
            return Ok(Flow::Continue);
        }
        match self.send_now(frame)? {
            None => Ok(Flow::Continue),
            Some(call) => Ok(self.call_application(call, receipt, Vec::new())),
        }
    }

    /// Delivers a SEND (now, or as part of a COMMIT); an application destination gives the
    /// handler call to make instead.
    pub(super) fn send_now(&mut self, frame: Frame) -> Result<Option<AppCall>, Refusal> {
        let dest = required(&frame, "destination")?.to_string();
        if self.engine.session_config().is_app_destination(&dest) {
            return self.application_call(dest, frame).map(Some);
        }
        let (route, display) =
            destination::send_route(&dest, &self.engine.broker.config().user_prefix)?;
        let broker = &self.engine.broker;
        let message = Message::new(
            broker.next_message_id(),
            display,
            frame.headers,
            frame.body,
            Some(self.id),
        );
        let published = broker.publish_recorded(&route, Arc::new(message), &mut self.congested)?;
        self.note_durable(published.durable);
        Ok(None)
    }

    fn application_call(&mut self, destination: String, frame: Frame) -> Result<AppCall, Refusal> {
        let Some(handler) = self.engine.hooks.app_handler(&destination) else {
            return Err(Refusal::new(format!(
                "no application handler for destination {destination}"
            )));
        };
        let message = AppMessage {
            session: self.id,
            user: self.user.clone(),
            destination,
            headers: frame.headers,
            body: frame.body,
        };
        Ok(AppCall::new(self.engine.clone(), handler, message))
    }

    /// Waits for `call`; `receipt` is sent once it (and the committed frames in `rest`, if it
    /// was part of a COMMIT) are done.
    pub(super) fn call_application(
        &mut self,
        call: AppCall,
        receipt: Option<String>,
        rest: Vec<Frame>,
    ) -> Flow {
        self.phase = Phase::Deciding;
        self.waiting = Some(Box::new(Waiting::App {
            receipt,
            rest,
            forward: None,
        }));
        Flow::App(call)
    }

    /// Completes the frame whose application handler call returned [`Flow::App`].
    pub fn app_done(&mut self, done: AppDone) -> Flow {
        let Some(waiting) = self.waiting.take() else {
            return Flow::Continue; // the session ended meanwhile
        };
        let Waiting::App {
            receipt,
            rest,
            forward,
        } = *waiting
        else {
            self.waiting = Some(waiting);
            tracing::error!(session = self.id, "an application result nobody waits for");
            return Flow::Continue;
        };
        self.phase = Phase::Connected;
        let (outcome, congested) = done.into_parts();
        self.congested.extend(congested);
        let flow = outcome
            .and_then(|()| self.apply_committed(rest, receipt.clone()))
            .unwrap_or_else(|refusal| self.refuse(refusal, receipt.clone()));
        let flow = match (flow, forward) {
            (Flow::Continue, Some(commit)) => {
                let receipt = commit.header("receipt").map(str::to_string);
                self.forward_to_broker(*commit, receipt)
            }
            (Flow::Continue, None) => {
                if let Some(receipt) = &receipt {
                    self.send_receipt(receipt);
                }
                Flow::Continue
            }
            (Flow::App(call), forward) => {
                if let Some(Waiting::App { forward: f, .. }) = self.waiting.as_deref_mut() {
                    *f = forward;
                }
                Flow::App(call)
            }
            (flow, _) => flow,
        };
        self.throttle_after(flow)
    }
}
