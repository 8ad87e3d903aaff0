//! What a connection's reader loop ([`drive`](super::connection)) drives or waits on for the
//! writing half: either a [`Writer`] it runs itself, in the same task (plain WebSocket and TCP
//! connections: one task per connection instead of two), or a task that writes on its own
//! (the SockJS WebSocket writer, a SockJS session's lifetime).

use std::io;

use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::writer::Writer;

/// The writing half of a connection, as seen by its reader loop.
pub(crate) trait Output: Send {
    /// Makes progress (waits for queued items, writes them); resolves with `true` once the
    /// writing is over (the close went out, the peer stopped accepting bytes, or the task
    /// ended), `false` when there is more to do. Cancel-safe.
    fn step(&mut self) -> impl Future<Output = bool> + Send;

    /// Whether more is ready to write right away.
    fn has_queued(&self) -> bool;

    /// When [`Output::heartbeat`] should be called, if ever.
    fn heartbeat_due(&self) -> Option<Instant>;

    /// Sends a heart-beat: nothing was written for the negotiated interval.
    fn heartbeat(&mut self);

    /// Writes until the writing is over (the reader has stopped; the close is queued).
    fn finish(&mut self) -> impl Future<Output = ()> + Send;

    /// Gives up on a peer that does not read; nothing more is written.
    fn abort(&mut self);
}

impl<W: AsyncWrite + Unpin + Send> Output for Writer<W> {
    async fn step(&mut self) -> bool {
        !matches!(Writer::step(self).await, Ok(false))
    }

    fn has_queued(&self) -> bool {
        Writer::has_queued(self)
    }

    fn heartbeat_due(&self) -> Option<Instant> {
        Writer::heartbeat_due(self)
    }

    fn heartbeat(&mut self) {
        Writer::heartbeat(self);
    }

    async fn finish(&mut self) {
        let _ = Writer::close_out(self).await;
    }

    /// Nothing to stop: the writer only runs when polled, and the socket closes when the
    /// connection's task ends right after this.
    fn abort(&mut self) {}
}

impl Output for JoinHandle<io::Result<()>> {
    async fn step(&mut self) -> bool {
        let _ = self.await;
        true
    }

    fn has_queued(&self) -> bool {
        false
    }

    fn heartbeat_due(&self) -> Option<Instant> {
        None
    }

    fn heartbeat(&mut self) {}

    async fn finish(&mut self) {
        let _ = self.await;
    }

    fn abort(&mut self) {
        JoinHandle::abort(self);
    }
}
