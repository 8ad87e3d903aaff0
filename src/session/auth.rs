//! Tokens in the session: the CONNECT token, permissions on SUBSCRIBE and SEND, refresh on the
//! live connection and expiry (a deadline the transport's timer enforces).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::refusal::Refusal;
use super::{Flow, Phase, Session};
use crate::auth::{self, AuthError, Grant};
use crate::broker::stats;
use crate::stomp::{Command, Frame};
use crate::ws::codes;

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

    /// `SEND` to the refresh destination: the new token (a `token` header, else the body)
    /// must verify and name the same subject; it replaces the session's permissions and expiry.
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

    /// When the session's token stops counting (its `exp` plus the leeway), while connected;
    /// the transport's timer calls [`Session::expire`] then.
    pub fn token_deadline(&self) -> Option<SystemTime> {
        let grant = self.grant.as_deref()?;
        (self.phase == Phase::Connected)
            .then(|| UNIX_EPOCH + Duration::from_secs(grant.valid_until))
    }

    /// The token's deadline passed without a refresh: ERROR `token expired`, then close.
    pub fn expire(&mut self) -> Flow {
        stats::add(&self.engine.counters().auth_expired, 1);
        self.terminate(codes::POLICY_VIOLATION, "token expired")
    }
}
