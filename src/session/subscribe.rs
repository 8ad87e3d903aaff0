//! SUBSCRIBE and UNSUBSCRIBE.

use std::sync::Arc;

use super::flow::Flow;
use super::refusal::{Refusal, required};
use super::{Phase, Session, Waiting};
use crate::broker::{AckMode, SlowConsumerPolicy, SubscribeSpec, destination};
use crate::hooks::{Question, SubscribeRequest};
use crate::stomp::{Frame, Version};

impl Session {
    pub(super) fn on_subscribe(
        &mut self,
        frame: Frame,
        receipt: Option<String>,
    ) -> Result<Flow, Refusal> {
        let dest = required(&frame, "destination")?.to_string();
        let id: Arc<str> = match frame.header("id") {
            Some(id) => id.into(),
            None if self.version == Version::V1_0 => dest.as_str().into(),
            None => return Err(Refusal::new("SUBSCRIBE frame is missing the 'id' header")),
        };
        let ack = AckMode::parse(frame.header("ack")).ok_or_else(|| {
            Refusal::new(format!(
                "invalid ack mode '{}': expected auto, client or client-individual",
                frame.header("ack").unwrap_or_default()
            ))
        })?;
        let default_prefetch = self.engine.broker.config().max_unacked_per_subscription;
        let prefetch = match frame.header("prefetch-count") {
            None => default_prefetch,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(0) => default_prefetch,
                Ok(n) => n.min(default_prefetch.saturating_mul(16)),
                Err(_) => return Err(Refusal::new(format!("invalid prefetch-count '{v}'"))),
            },
        };
        let route = destination::subscribe_route(
            &dest,
            &self.engine.broker.config().user_prefix,
            self.user.as_deref(),
        )?;
        let policy = match frame.header("overflow-policy") {
            None => self.engine.broker.config().slow_consumer_policy,
            Some(v) => SlowConsumerPolicy::parse(v).ok_or_else(|| {
                Refusal::new(format!(
                    "invalid overflow-policy '{v}': expected disconnect, drop-oldest or drop-newest"
                ))
            })?,
        };
        let spec = SubscribeSpec {
            id,
            route,
            ack,
            prefetch,
            policy,
        };
        if self.engine.wants_subscribe_decision() {
            let request = SubscribeRequest {
                session: self.id,
                user: self.user.clone(),
                destination: dest,
                headers: frame.headers,
            };
            self.phase = Phase::Deciding;
            self.waiting = Some(Box::new(Waiting::Subscribe { spec, receipt }));
            return Ok(Flow::Ask(Question::Subscribe(request)));
        }
        self.engine.broker.subscribe(self.id, spec)?;
        Ok(Flow::Continue)
    }

    pub(super) fn on_unsubscribe(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(frame, "destination")?,
            (None, _) => return Err(Refusal::new("UNSUBSCRIBE frame is missing the 'id' header")),
        };
        self.engine.broker.unsubscribe(self.id, id)?;
        Ok(())
    }
}
