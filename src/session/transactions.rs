//! Transactions: BEGIN buffers the SENDs, ACKs and NACKs that name it until COMMIT or ABORT.

use super::refusal::{Refusal, required};
use super::{Flow, Session};
use crate::stomp::{Command, Frame};

impl Session {
    pub(super) fn buffer(&mut self, tx: String, frame: Frame) -> Result<(), Refusal> {
        let max = self.engine.session_config().max_transaction_frames;
        let Some(frames) = self.transactions.as_mut().and_then(|t| t.get_mut(&tx)) else {
            return Err(Refusal::new(format!("unknown transaction '{tx}'")));
        };
        if frames.len() >= max {
            return Err(Refusal::policy(format!(
                "transaction '{tx}' exceeds {max} frames"
            )));
        }
        frames.push(frame);
        Ok(())
    }

    /// Removes an open transaction; the map goes away with the last one.
    pub(super) fn take_transaction(&mut self, tx: &str) -> Option<Vec<Frame>> {
        let transactions = self.transactions.as_mut()?;
        let frames = transactions.remove(tx);
        if transactions.is_empty() {
            self.transactions = None;
        }
        frames
    }

    pub(super) fn on_begin(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        let max = self.engine.session_config().max_open_transactions;
        let transactions = self.transactions.get_or_insert_default();
        if transactions.contains_key(tx) {
            return Err(Refusal::new(format!("transaction '{tx}' is already open")));
        }
        if transactions.len() >= max {
            return Err(Refusal::policy(format!(
                "too many open transactions (at most {max})"
            )));
        }
        transactions.insert(tx.to_string(), Vec::new());
        Ok(())
    }

    pub(super) fn on_commit(
        &mut self,
        frame: &Frame,
        receipt: Option<String>,
    ) -> Result<Flow, Refusal> {
        let tx = required(frame, "transaction")?;
        let frames = self
            .take_transaction(tx)
            .ok_or_else(|| Refusal::new(format!("unknown transaction '{tx}'")))?;
        self.apply_committed(frames, receipt)
    }

    /// Applies a committed transaction's frames in order. A SEND to an application destination
    /// pauses the rest until its handler returns ([`Flow::App`]); `receipt` (the COMMIT's)
    /// waits with them.
    pub(super) fn apply_committed(
        &mut self,
        frames: Vec<Frame>,
        receipt: Option<String>,
    ) -> Result<Flow, Refusal> {
        let mut frames = frames.into_iter();
        while let Some(frame) = frames.next() {
            match frame.command {
                Command::Send => {
                    if let Some(call) = self.send_now(frame)? {
                        return Ok(self.call_application(call, receipt, frames.collect()));
                    }
                }
                Command::Ack => self.ack_now(&frame, false)?,
                Command::Nack => self.ack_now(&frame, true)?,
                _ => {}
            }
        }
        Ok(Flow::Continue)
    }

    pub(super) fn on_abort(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        self.take_transaction(tx)
            .map(|_| ())
            .ok_or_else(|| Refusal::new(format!("unknown transaction '{tx}'")))
    }
}
