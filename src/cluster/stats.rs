//! Cluster mode's figures.

/// Figures for `/metrics` and the host (`wsb_cluster_stats` in C: this struct as it is).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Whether the engine is reachable.
    pub available: bool,
    /// Engine subscriptions held and confirmed by the engine (destinations and patterns with
    /// local subscribers, and the history rules' patterns): a publication made anywhere after
    /// the count includes a new subscriber's reaches it.
    pub engine_subscriptions: u64,
    /// Publications of this node handed to the engine.
    pub published: u64,
    /// Publications of other nodes received.
    pub received: u64,
    /// Publications of this node the other nodes did not get: made while the engine was
    /// unreachable, or lost with the connection.
    pub dropped: u64,
    /// Times the engine link was lost and opened again.
    pub reconnects: u64,
}
