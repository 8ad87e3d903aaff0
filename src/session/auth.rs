//! Tokens in the session: the CONNECT token, permissions on SUBSCRIBE and SEND, refresh on the
//! live connection and expiry (a deadline the transport's timer enforces).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::refusal::Refusal;
use super::{Flow, Phase, PrivateSub, Session};
use crate::auth::{self, AuthError, Grant, Permissions};
use crate::broker::{pattern, stats};
use crate::stomp::{Command, Frame, Version};
use crate::ws::codes;

/// The SUBSCRIBE header carrying a subscription token.
pub const SUB_TOKEN_HEADER: &str = "x-sub-token";
/// Header of the MESSAGE that tells a client its subscription ended (its token expired).
pub const UNSUBSCRIBED_HEADER: &str = "x-unsubscribed";

impl Session {
    /// Records the grant of a token the upgrade request carried (verified by the transport).
    pub fn set_grant(&mut self, grant: Option<Grant>) {
        self.grant = grant.map(Box::new);
    }

    /// The subject of the session's token, if it has one.
    pub fn token_subject(&self) -> Option<&str> {
        self.grant.as_deref().map(|g| g.subject.as_str())
    }

    /// CONNECT with token authentication on: a `token` header, else a `passcode` shaped like a
    /// JWT, replaces the upgrade's token; without any, `required` refuses.
    pub(super) fn connect_token(&mut self, frame: &Frame) -> Result<(), Refusal> {
        let Some(authenticator) = self.engine.auth.clone() else {
            return Ok(());
        };
        let config = self.engine.config.auth.as_ref().expect("auth on");
        let token = frame.header("token").or_else(|| {
            frame
                .header("passcode")
                .filter(|p| auth::looks_like_jwt(p.trim()))
        });
        let now = auth::unix_now();
        if let Some(token) = token {
            let grant = authenticator
                .verify(token, now, &config.token_defaults)
                .map_err(|e| self.token_refused(&e))?;
            self.grant = Some(Box::new(grant));
        } else if let Some(grant) = &self.grant {
            if now >= grant.valid_until {
                return Err(self.token_refused(&AuthError::Expired));
            }
        } else if config.required {
            stats::add(&self.engine.counters().auth_refused, 1);
            // No ':' in ERRORs before CONNECTED: the client does not know the escaping yet.
            return Err(Refusal::policy(
                "authentication required - no token in the upgrade request (Authorization \
                 Bearer header, cookie or query parameter) nor in CONNECT (token or passcode \
                 header)",
            ));
        }
        Ok(())
    }

    fn token_refused(&self, error: &AuthError) -> Refusal {
        stats::add(&self.engine.counters().auth_refused, 1);
        Refusal::policy(format!("token refused - {error}"))
    }

    /// Checks a connected session's SUBSCRIBE or SEND against its permissions and handles a
    /// refresh. `None`: the frame goes on as usual.
    pub(super) fn authorize(&mut self, frame: &Frame) -> Option<Result<Flow, Refusal>> {
        self.engine.auth.as_ref()?;
        if !matches!(frame.command, Command::Send | Command::Subscribe) {
            return None;
        }
        let config = self.engine.config.auth.as_ref().expect("auth on");
        let destination = frame.header("destination")?;
        if frame.command == Command::Send && destination == config.refresh_destination {
            return Some(self.refresh(frame));
        }
        if let Some(grant) = &self.grant
            && auth::unix_now() >= grant.valid_until
        {
            // The timer is about to fire; never let an expired token act meanwhile.
            stats::add(&self.engine.counters().auth_expired, 1);
            return Some(Err(Refusal::policy("token expired")));
        }
        if frame.command == Command::Subscribe {
            if config.is_private(destination) {
                return self.authorize_private(frame, destination).err().map(Err);
            }
            if pattern::is_pattern(destination) && config.may_reach_private(destination) {
                stats::add(&self.engine.counters().auth_denied, 1);
                return Some(Err(Refusal::policy(format!(
                    "permission denied: {destination} could match private destinations, which \
                     need a subscription token each"
                ))));
            }
        }
        let permissions = self
            .grant
            .as_deref()
            .map_or(&config.anonymous, |g| &g.permissions);
        let (allowed, verb) = if frame.command == Command::Subscribe {
            (permissions.may_subscribe(destination), "subscribe to")
        } else {
            (permissions.may_publish(destination), "send to")
        };
        if allowed {
            return None;
        }
        stats::add(&self.engine.counters().auth_denied, 1);
        let who = self.grant.as_deref().map_or_else(
            || "anonymous sessions".to_string(),
            |g| format!("user {}", g.subject),
        );
        Some(Err(Refusal::policy(format!(
            "permission denied: {who} may not {verb} {destination}"
        ))))
    }

    /// Who subscription tokens must be issued to: the session token's subject, else the user.
    fn identity(&self) -> Option<&str> {
        self.token_subject().or(self.user.as_deref())
    }

    /// Verifies a subscription token for `destination` (issued to this session's identity,
    /// naming exactly that destination).
    fn verify_sub_token(&self, token: &str, destination: &str) -> Result<u64, Refusal> {
        let authenticator = self.engine.auth.clone().expect("auth on");
        let refused = |why: String| {
            stats::add(&self.engine.counters().auth_refused, 1);
            Refusal::policy(format!("subscription token refused: {why}"))
        };
        let grant = authenticator
            .verify(token, auth::unix_now(), &Permissions::default())
            .map_err(|e| refused(e.to_string()))?;
        if grant.destination.as_deref() != Some(destination) {
            return Err(refused(format!(
                "it is for {}, not {destination}",
                grant
                    .destination
                    .as_deref()
                    .unwrap_or("no destination (wsb.dest)")
            )));
        }
        let Some(me) = self.identity() else {
            return Err(refused("the session is anonymous".into()));
        };
        if grant.subject != me {
            return Err(refused(format!(
                "it is for subject {}, the session's is {me}",
                grant.subject
            )));
        }
        Ok(grant.valid_until)
    }

    /// A SUBSCRIBE to a private destination: its subscription token opens it (and its
    /// expiry will end it).
    fn authorize_private(&mut self, frame: &Frame, destination: &str) -> Result<(), Refusal> {
        let Some(token) = frame.header(SUB_TOKEN_HEADER) else {
            stats::add(&self.engine.counters().auth_denied, 1);
            return Err(Refusal::policy(format!(
                "permission denied: {destination} is a private destination; SUBSCRIBE needs a \
                 subscription token ({SUB_TOKEN_HEADER} header)"
            )));
        };
        let valid_until = self.verify_sub_token(token, destination)?;
        let id = match (frame.header("id"), self.version) {
            (Some(id), _) => id.to_string(),
            (None, Version::V1_0) => destination.to_string(),
            (None, _) => return Ok(()), // refused by on_subscribe
        };
        let subs = self.private_subs.get_or_insert_with(Box::default);
        subs.retain(|s| s.id != id);
        subs.push(PrivateSub {
            id,
            destination: destination.to_string(),
            valid_until,
        });
        Ok(())
    }

    /// The subscription `id` ended: its token no longer matters.
    pub(super) fn forget_private(&mut self, id: &str) {
        if let Some(subs) = &mut self.private_subs {
            subs.retain(|s| s.id != id);
            if subs.is_empty() {
                self.private_subs = None;
            }
        }
    }

    /// A refresh naming a `subscription`: a new subscription token for it extends it.
    fn refresh_private(&mut self, id: &str, token: &str) -> Result<Flow, Refusal> {
        let destination = self
            .private_subs
            .as_deref()
            .and_then(|subs| subs.iter().find(|s| s.id == id))
            .map(|s| s.destination.clone())
            .ok_or_else(|| {
                stats::add(&self.engine.counters().auth_refused, 1);
                Refusal::policy(format!(
                    "token refresh refused: no private subscription with id '{id}'"
                ))
            })?;
        let valid_until = self.verify_sub_token(token, &destination)?;
        if let Some(sub) = self
            .private_subs
            .as_deref_mut()
            .and_then(|subs| subs.iter_mut().find(|s| s.id == id))
        {
            sub.valid_until = valid_until;
        }
        stats::add(&self.engine.counters().auth_refreshed, 1);
        Ok(Flow::Continue)
    }

    /// `SEND` to the refresh destination: the new token (a `token` header, else the body)
    /// must verify and name the same subject; it replaces the session's permissions and expiry.
    /// With a `subscription` header it is a subscription token for that private subscription.
    fn refresh(&mut self, frame: &Frame) -> Result<Flow, Refusal> {
        let authenticator = self.engine.auth.clone().expect("auth on");
        let config = self.engine.config.auth.as_ref().expect("auth on");
        let body = std::str::from_utf8(&frame.body).unwrap_or_default();
        let token = frame.header("token").unwrap_or(body).trim();
        let refused = |why: String| {
            stats::add(&self.engine.counters().auth_refused, 1);
            Refusal::policy(format!("token refresh refused: {why}"))
        };
        if token.is_empty() {
            return Err(refused("no token in the 'token' header or the body".into()));
        }
        if let Some(id) = frame.header("subscription") {
            let (id, token) = (id.to_string(), token.to_string());
            return self.refresh_private(&id, &token);
        }
        let Some(current) = self.grant.as_deref() else {
            return Err(refused("the session has no token to refresh".into()));
        };
        let grant = authenticator
            .verify(token, auth::unix_now(), &config.token_defaults)
            .map_err(|e| refused(e.to_string()))?;
        if grant.subject != current.subject {
            return Err(refused(format!(
                "the new token is for subject {}, the session's is {}",
                grant.subject, current.subject
            )));
        }
        self.grant = Some(Box::new(grant));
        stats::add(&self.engine.counters().auth_refreshed, 1);
        Ok(Flow::Continue)
    }

    /// When the session's token, or the token of one of its private subscriptions, stops
    /// counting (its `exp` plus the leeway), while connected; the transport's timer calls
    /// [`Session::deadline_passed`] then.
    pub fn token_deadline(&self) -> Option<SystemTime> {
        if self.phase != Phase::Connected {
            return None;
        }
        let session = self.grant.as_deref().map(|g| g.valid_until);
        let private = self
            .private_subs
            .as_deref()
            .and_then(|subs| subs.iter().map(|s| s.valid_until).min());
        let at = match (session, private) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(UNIX_EPOCH + Duration::from_secs(at))
    }

    /// The timer reached [`Session::token_deadline`]: an expired session token ends the
    /// session ([`Session::expire`]; returns false), an expired subscription token ends only
    /// its subscription, with a last MESSAGE on it carrying `x-unsubscribed:token expired`.
    pub fn deadline_passed(&mut self) -> bool {
        self.deadline_passed_at(auth::unix_now())
    }

    /// [`Session::deadline_passed`] at `now` (seconds since the Unix epoch).
    pub(crate) fn deadline_passed_at(&mut self, now: u64) -> bool {
        if self.grant.as_deref().is_some_and(|g| now >= g.valid_until) {
            self.expire();
            return false;
        }
        let Some(subs) = self.private_subs.as_deref_mut() else {
            return true;
        };
        let (expired, kept): (Vec<PrivateSub>, Vec<PrivateSub>) = std::mem::take(subs)
            .into_iter()
            .partition(|s| now >= s.valid_until);
        *subs = kept;
        if subs.is_empty() {
            self.private_subs = None;
        }
        for sub in expired {
            stats::add(&self.engine.counters().auth_expired, 1);
            if self.engine.broker.unsubscribe(self.id, &sub.id).is_err() {
                continue; // already gone
            }
            let notice = Frame::new(Command::Message)
                .with_header("subscription", &sub.id)
                .with_header("destination", &sub.destination)
                .with_header("message-id", format!("{}-unsubscribed-{}", self.id, now))
                .with_header(UNSUBSCRIBED_HEADER, "token expired");
            self.push(&notice);
        }
        true
    }

    /// The token's deadline passed without a refresh: ERROR `token expired`, then close.
    pub fn expire(&mut self) -> Flow {
        stats::add(&self.engine.counters().auth_expired, 1);
        self.terminate(codes::POLICY_VIOLATION, "token expired")
    }
}
