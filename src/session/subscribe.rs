//! SUBSCRIBE and UNSUBSCRIBE.

use std::sync::Arc;

use super::flow::{DurableWait, Flow};
use super::refusal::{Refusal, required};
use super::{EngineWait, Phase, Session, Waiting};
use crate::broker::history::{EPOCH_HEADER, OFFSET_HEADER, RECOVERED_HEADER};
use crate::broker::presence::{self, PresenceRequest};
use crate::broker::{AckMode, ResumeRequest, SlowConsumerPolicy, SubscribeSpec, destination};
use crate::hooks::{Question, SubscribeRequest};
use crate::stomp::{Command, Frame, Version};

impl Session {
    /// A SUBSCRIBE; its RECEIPT (taken from `receipt` once the subscription exists) carries
    /// the history position when the destination keeps one.
    pub(super) fn on_subscribe(
        &mut self,
        frame: Frame,
        receipt: &mut Option<String>,
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
            resume: resume_request(&frame)?,
            presence: presence_request(&frame, self.engine.broker.config().presence_max_info)?,
        };
        if self.engine.wants_subscribe_decision() {
            let request = SubscribeRequest {
                session: self.id,
                user: self.user.clone(),
                destination: dest,
                headers: frame.headers,
            };
            self.phase = Phase::Deciding;
            self.waiting = Some(Box::new(Waiting::Subscribe {
                spec,
                receipt: receipt.clone(),
            }));
            return Ok(Flow::Ask(Question::Subscribe(request)));
        }
        self.subscribe_now(spec, receipt.clone())?;
        // Sent with the subscription's position; the caller must not send another.
        *receipt = None;
        Ok(Flow::Continue)
    }

    /// Registers the subscription (with its replay) and sends the RECEIPT, if one was asked,
    /// with `x-recovered` (a resume) and the stream's `x-offset` / `x-epoch`.
    pub(super) fn subscribe_now(
        &mut self,
        spec: SubscribeSpec,
        receipt: Option<String>,
    ) -> Result<(), Refusal> {
        let subscribed = self.engine.broker.subscribe(self.id, spec)?;
        let Some(receipt) = receipt else {
            return Ok(());
        };
        let mut frame = Frame::new(Command::Receipt).with_header("receipt-id", receipt);
        if let Some(recovered) = subscribed.recovered {
            frame.push_header(RECOVERED_HEADER, recovered.to_string());
        }
        if let Some(position) = subscribed.position {
            frame.push_header(OFFSET_HEADER, position.offset.to_string());
            frame.push_header(EPOCH_HEADER, position.epoch.to_string());
        }
        if let Some(count) = subscribed.presence_count {
            frame.push_header(presence::COUNT_HEADER, count.to_string());
        }
        // Cluster mode: the RECEIPT promises the subscription cluster-wide, so it waits for
        // the engine's confirmation (see `throttle_after`).
        if let Some((signal, ticket)) = self.engine.broker.cluster_confirmation() {
            self.unsubscribed = Some(Box::new(EngineWait {
                wait: DurableWait { signal, ticket },
                receipt: frame,
            }));
            return Ok(());
        }
        self.push(&frame);
        Ok(())
    }

    pub(super) fn on_unsubscribe(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(frame, "destination")?,
            (None, _) => return Err(Refusal::new("UNSUBSCRIBE frame is missing the 'id' header")),
        };
        self.engine.broker.unsubscribe(self.id, id)?;
        self.forget_private(id);
        Ok(())
    }
}

/// `x-since` / `x-epoch` / `x-last` of a SUBSCRIBE.
fn resume_request(frame: &Frame) -> Result<ResumeRequest, Refusal> {
    let number = |name: &str| -> Result<Option<u64>, Refusal> {
        frame
            .header(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| Refusal::new(format!("invalid {name} '{v}': expected a number")))
            })
            .transpose()
    };
    let last = number("x-last")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(ResumeRequest {
        since: number("x-since")?,
        epoch: frame.header("x-epoch").map(str::to_string),
        last,
    })
}

/// `x-presence` / `x-presence-info` of a SUBSCRIBE.
fn presence_request(frame: &Frame, max_info: usize) -> Result<PresenceRequest, Refusal> {
    let listen = match frame.header(presence::PRESENCE_HEADER) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(Refusal::new(format!(
                "invalid {} '{v}': expected true or false",
                presence::PRESENCE_HEADER
            )));
        }
    };
    let info = frame.header(presence::INFO_HEADER).map(str::to_string);
    if let Some(info) = &info
        && info.len() > max_info
    {
        return Err(Refusal::new(format!(
            "{} is {} bytes, more than the {max_info} allowed",
            presence::INFO_HEADER,
            info.len()
        )));
    }
    Ok(PresenceRequest { listen, info })
}
