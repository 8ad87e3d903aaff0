//! Transactions: BEGIN buffers the SENDs, ACKs and NACKs that name it until COMMIT or ABORT.

use super::Session;
use super::refusal::{Refusal, required};
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

    pub(super) fn on_commit(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        let frames = self
            .take_transaction(tx)
            .ok_or_else(|| Refusal::new(format!("unknown transaction '{tx}'")))?;
        for frame in frames {
            match frame.command {
                Command::Send => self.send_now(frame)?,
                Command::Ack => self.ack_now(&frame, false)?,
                Command::Nack => self.ack_now(&frame, true)?,
                _ => {}
            }
        }
        Ok(())
    }

    pub(super) fn on_abort(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let tx = required(frame, "transaction")?;
        self.take_transaction(tx)
            .map(|_| ())
            .ok_or_else(|| Refusal::new(format!("unknown transaction '{tx}'")))
    }
}
