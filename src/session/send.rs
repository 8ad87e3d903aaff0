//! SEND: to subscribers through the broker, or to the host's application handlers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::Mutex;

use super::Session;
use super::refusal::{Refusal, required};
use crate::broker::{Message, destination};
use crate::hooks::AppMessage;
use crate::host::{OnBehalf, Publisher};
use crate::stomp::Frame;
use crate::ws::codes;

impl Session {
    pub(super) fn on_send(&mut self, frame: Frame) -> Result<(), Refusal> {
        required(&frame, "destination")?;
        if let Some(tx) = frame.header("transaction") {
            return self.buffer(tx.to_string(), frame);
        }
        self.send_now(frame)
    }

    pub(super) fn send_now(&mut self, frame: Frame) -> Result<(), Refusal> {
        let dest = required(&frame, "destination")?.to_string();
        if self.engine.session_config().is_app_destination(&dest) {
            return self.hand_to_application(dest, frame);
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
        broker.publish(&route, Arc::new(message), &mut self.congested)?;
        Ok(())
    }

    fn hand_to_application(&mut self, destination: String, frame: Frame) -> Result<(), Refusal> {
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
        let on_behalf: OnBehalf = Arc::new(Mutex::new(Some(Vec::new())));
        let publisher = Publisher::for_session(self.engine.clone(), self.id, on_behalf.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(&message, &publisher)));
        // The handler's publishes were this session's: it pauses for what they congested.
        self.congested
            .extend(on_behalf.lock().take().unwrap_or_default());
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Refusal::new(format!("{} failed: {e}", message.destination))),
            Err(_) => Err(Refusal::with_code(
                codes::INTERNAL_ERROR,
                format!(
                    "{} failed: the application handler panicked",
                    message.destination
                ),
            )),
        }
    }
}
