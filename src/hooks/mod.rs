//! The host program's hooks: what it is asked (connect, subscribe), told (disconnect) and
//! handed (application destinations). Hooks run on the server's callback threads
//! (`crate::executor`), never its IO threads.

mod decision;
mod requests;

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;

pub use decision::{Answer, ConnectDecision, Question, UpgradeDecision};
pub(crate) use requests::query_param;
pub use requests::{
    AppMessage, ConnectRequest, SessionInfo, SubscribeRequest, TransportKind, UpgradeInfo,
};

use crate::broker::pattern;
use crate::host::Publisher;

/// Decides on a WebSocket upgrade request.
pub type UpgradeHook = Arc<dyn Fn(&UpgradeInfo) -> UpgradeDecision + Send + Sync>;
/// Decides on a CONNECT.
pub type ConnectHook = Arc<dyn Fn(&ConnectRequest) -> ConnectDecision + Send + Sync>;
/// Authorizes a SUBSCRIBE: `Err(message)` refuses it with an ERROR.
pub type SubscribeHook = Arc<dyn Fn(&SubscribeRequest) -> Result<(), String> + Send + Sync>;
/// Told when a connected session ends.
pub type DisconnectHook = Arc<dyn Fn(&SessionInfo) + Send + Sync>;
/// Handles a SEND to an application destination. It may reply to the sender or publish through
/// the [`Publisher`]; `Err(message)` answers the sender with an ERROR.
pub type AppHandler = Arc<dyn Fn(&AppMessage, &Publisher) -> Result<(), String> + Send + Sync>;

/// The set of hooks of one server. Each may be replaced at any time.
#[derive(Default)]
pub struct Hooks {
    upgrade: RwLock<Option<UpgradeHook>>,
    connect: RwLock<Option<ConnectHook>>,
    subscribe: RwLock<Option<SubscribeHook>>,
    disconnect: RwLock<Option<DisconnectHook>>,
    apps: RwLock<Vec<(String, AppHandler)>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("apps", &self.apps.read().len())
            .finish_non_exhaustive()
    }
}

impl Hooks {
    /// Sets (or clears) the upgrade hook.
    pub fn set_upgrade(&self, hook: Option<UpgradeHook>) {
        *self.upgrade.write() = hook;
    }

    /// True when an upgrade hook is set.
    pub fn has_upgrade_hook(&self) -> bool {
        self.upgrade.read().is_some()
    }

    /// The upgrade decision; without a hook every request that passed the protocol checks is
    /// accepted without a principal. A panicking hook refuses with 403.
    pub fn decide_upgrade(
        &self,
        request: &crate::ws::handshake::UpgradeRequest,
        remote_addr: Option<SocketAddr>,
    ) -> UpgradeDecision {
        let Some(hook) = self.upgrade.read().clone() else {
            return UpgradeDecision::Accept { principal: None };
        };
        let info = UpgradeInfo {
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            origin: request.origin.clone(),
            subprotocol: request.subprotocol.clone(),
            remote_addr,
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&info))) {
            Ok(UpgradeDecision::Reject { status, reason }) => UpgradeDecision::Reject {
                status: if (400..500).contains(&status) {
                    status
                } else {
                    403
                },
                reason,
            },
            Ok(accept) => accept,
            Err(_) => {
                tracing::error!("upgrade hook panicked");
                UpgradeDecision::Reject {
                    status: 403,
                    reason: "refused".into(),
                }
            }
        }
    }

    /// Sets (or clears) the connect hook.
    pub fn set_connect(&self, hook: Option<ConnectHook>) {
        *self.connect.write() = hook;
    }
    /// Sets (or clears) the subscribe hook.
    pub fn set_subscribe(&self, hook: Option<SubscribeHook>) {
        *self.subscribe.write() = hook;
    }
    /// Sets (or clears) the disconnect hook.
    pub fn set_disconnect(&self, hook: Option<DisconnectHook>) {
        *self.disconnect.write() = hook;
    }
    /// Registers a handler for an application destination pattern; a later registration of the
    /// same pattern replaces the earlier one.
    pub fn add_app(&self, pattern: &str, handler: AppHandler) {
        let mut apps = self.apps.write();
        apps.retain(|(p, _)| p != pattern);
        apps.push((pattern.to_string(), handler));
    }
    /// Removes the handler of a pattern; false when there was none.
    pub fn remove_app(&self, pattern: &str) -> bool {
        let mut apps = self.apps.write();
        let before = apps.len();
        apps.retain(|(p, _)| p != pattern);
        apps.len() != before
    }

    /// The connect decision; without a hook every client is accepted as the principal the
    /// upgrade hook gave it, else as its `login`.
    pub fn decide_connect(&self, request: &ConnectRequest) -> ConnectDecision {
        let hook = self.connect.read().clone();
        match hook {
            Some(hook) => hook(request),
            None => ConnectDecision::Accept {
                user: request
                    .principal
                    .clone()
                    .or_else(|| request.login.clone().filter(|l| !l.is_empty())),
            },
        }
    }

    /// True when a hook decides CONNECTs (`connect`) or SUBSCRIBEs (else): its answer is
    /// computed on a callback thread.
    pub fn decides(&self, connect: bool) -> bool {
        if connect {
            self.connect.read().is_some()
        } else {
            self.subscribe.read().is_some()
        }
    }

    /// True when a subscribe hook is set (so a SUBSCRIBE must wait for its answer).
    pub fn has_subscribe_hook(&self) -> bool {
        self.subscribe.read().is_some()
    }

    /// The subscribe decision; without a hook every subscription is allowed.
    pub fn authorize_subscribe(&self, request: &SubscribeRequest) -> Result<(), String> {
        let hook = self.subscribe.read().clone();
        hook.map_or(Ok(()), |hook| hook(request))
    }

    /// The hook told when a session ends, if any (run by the caller on a callback thread).
    pub fn disconnect_hook(&self) -> Option<DisconnectHook> {
        self.disconnect.read().clone()
    }

    /// The handler for an application destination: an exact registration first, else the
    /// first matching pattern.
    pub fn app_handler(&self, destination: &str) -> Option<AppHandler> {
        let apps = self.apps.read();
        apps.iter()
            .find(|(p, _)| p == destination)
            .or_else(|| apps.iter().find(|(p, _)| pattern::matches(p, destination)))
            .map(|(_, h)| h.clone())
    }
}
