//! A SEND to an application destination becomes a call of the host's handler that the session
//! hands to the transport ([`super::Flow::App`]): the transport runs it on a callback thread
//! (never an IO thread, so a slow handler stalls nobody else) and hands the result back with
//! [`super::Session::app_done`]. The session reads no further frame meanwhile, so a client's
//! application messages are handled one at a time and in order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::Mutex;

use super::refusal::Refusal;
use crate::broker::Congestion;
use crate::engine::Engine;
use crate::hooks::{AppHandler, AppMessage};
use crate::host::{OnBehalf, Publisher};
use crate::ws::codes;

/// One application handler call, ready to run on any thread.
pub struct AppCall {
    handler: AppHandler,
    message: AppMessage,
    publisher: Publisher,
    on_behalf: OnBehalf,
}

/// What a handler call came to, for [`super::Session::app_done`].
#[derive(Debug)]
pub struct AppDone {
    outcome: Result<(), Refusal>,
    /// Subscribers' queues the handler's publishes left congested (the session pauses on them).
    congested: Congestion,
}

impl std::fmt::Debug for AppCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCall")
            .field("session", &self.message.session)
            .field("destination", &self.message.destination)
            .finish_non_exhaustive()
    }
}

impl AppCall {
    pub(super) fn new(engine: Arc<Engine>, handler: AppHandler, message: AppMessage) -> AppCall {
        let on_behalf: OnBehalf = Arc::new(Mutex::new(Some(Vec::new())));
        let publisher = Publisher::for_session(engine, message.session, on_behalf.clone());
        AppCall {
            handler,
            message,
            publisher,
            on_behalf,
        }
    }

    /// The session whose SEND this is (calls for one session run in order on one lane).
    pub fn session(&self) -> u64 {
        self.message.session
    }

    /// Runs the handler; a panic becomes a refusal (1011) instead of unwinding.
    pub fn run(self) -> AppDone {
        let AppCall {
            handler,
            message,
            publisher,
            on_behalf,
        } = self;
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(&message, &publisher)));
        // From here on a clone of the publisher the handler kept publishes as the host.
        let congested = on_behalf.lock().take().unwrap_or_default();
        let destination = &message.destination;
        let outcome = match outcome {
            Ok(Ok(())) => Ok(()),
            // A refusal by the application is a policy violation (1008), as when a host in
            // poll mode refuses the event with `disconnect_session`.
            Ok(Err(e)) => Err(Refusal::policy(format!("{destination} failed: {e}"))),
            Err(_) => {
                tracing::error!(
                    session = message.session,
                    destination,
                    "application handler panicked"
                );
                Err(Refusal::with_code(
                    codes::INTERNAL_ERROR,
                    format!("{destination} failed: the application handler panicked"),
                ))
            }
        };
        AppDone { outcome, congested }
    }
}

impl AppDone {
    /// The call could not run (the server is stopping): the SEND fails, closing with 1001.
    pub fn not_run(why: &str) -> AppDone {
        AppDone {
            outcome: Err(Refusal::with_code(codes::GOING_AWAY, why)),
            congested: Vec::new(),
        }
    }

    pub(super) fn into_parts(self) -> (Result<(), Refusal>, Congestion) {
        (self.outcome, self.congested)
    }
}
