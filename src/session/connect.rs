//! CONNECT: version and heart-beat negotiation, the host's decision, CONNECTED.

use bytes::Bytes;

use super::flow::{Flow, RelayOpen};
use super::refusal::Refusal;
use super::{Phase, SUPPORTED_VERSIONS, Session, Waiting};
use crate::broker::destination;
use crate::broker::outbox::CloseReason;
use crate::hooks::{ConnectDecision, ConnectRequest, Question};
use crate::stomp::{
    Command, Frame, Heartbeat, Version, negotiate, negotiate_heartbeat, parse_heartbeat,
};
use crate::ws::codes;

impl Session {
    pub(super) fn on_connect(&mut self, frame: Frame) -> Result<Flow, Refusal> {
        let Some(version) = negotiate(frame.header("accept-version"), &SUPPORTED_VERSIONS) else {
            // The ERROR must tell the client which versions exist (STOMP 1.2 §CONNECT).
            let mut error = Frame::new(Command::Error)
                .with_header("version", "1.0,1.1,1.2")
                .with_header("message", "Supported protocol versions are 1.0,1.1,1.2")
                .with_header("content-type", "text/plain");
            error = error.with_body(Bytes::from(format!(
                "None of the versions in accept-version '{}' is supported; this server speaks 1.0, 1.1 and 1.2.",
                frame.header("accept-version").unwrap_or_default()
            )));
            self.push(&error);
            self.outbox.close(CloseReason {
                code: codes::PROTOCOL_ERROR,
                ..CloseReason::normal()
            });
            self.end();
            return Ok(Flow::Close);
        };
        self.version = version;
        self.outbox.set_version(version);
        let client_hb = if version == Version::V1_0 {
            (0, 0)
        } else {
            parse_heartbeat(frame.header("heart-beat"))?
        };
        let heartbeat =
            negotiate_heartbeat(client_hb, self.engine.session_config().heartbeat_offer_ms());
        self.connect_token(&frame)?;
        let request = ConnectRequest {
            session: self.id,
            login: frame.header("login").map(str::to_string),
            // The upgrade hook's principal, else the token's subject.
            principal: self
                .principal
                .clone()
                .or_else(|| self.token_subject().map(str::to_string)),
            passcode: frame.header("passcode").map(str::to_string),
            headers: frame.headers,
            remote_addr: self.remote_addr,
            transport: self.transport,
        };
        self.phase = Phase::Deciding;
        self.waiting = Some(Box::new(Waiting::Connect { version, heartbeat }));
        Ok(Flow::Ask(Question::Connect(request)))
    }

    pub(super) fn finish_connect(
        &mut self,
        version: Version,
        heartbeat: Heartbeat,
        decision: ConnectDecision,
    ) -> Flow {
        let user = match decision {
            ConnectDecision::Reject(message) => {
                self.phase = Phase::AwaitingConnect;
                return self.refuse(Refusal::policy(message), None);
            }
            ConnectDecision::Accept { user } => user,
        };
        if let Some(Err(e)) = user.as_deref().map(destination::check_user_name) {
            self.phase = Phase::AwaitingConnect;
            return self.refuse(Refusal::policy(e.0), None);
        }
        if self.engine.relay.is_some() {
            // Relay mode: the client is connected once its broker connection is.
            self.waiting = Some(Box::new(Waiting::RelayConnect {
                version,
                heartbeat,
                user,
            }));
            return Flow::OpenRelay(RelayOpen {
                session: self.id,
                version,
            });
        }
        self.complete_connect(version, heartbeat, user)
    }

    pub(super) fn complete_connect(
        &mut self,
        version: Version,
        heartbeat: Heartbeat,
        user: Option<String>,
    ) -> Flow {
        self.user = user;
        self.heartbeat = heartbeat;
        self.phase = Phase::Connected;
        self.engine.broker.register_session(
            self.id,
            self.outbox.clone(),
            version == Version::V1_2,
            self.user.clone(),
        );
        self.registered = true;
        // 1.0 has no heart-beats (the client's header was ignored): advertise none.
        let server_hb = if version == Version::V1_0 {
            "0,0".to_string()
        } else {
            let (send, receive) = self.engine.session_config().heartbeat_offer_ms();
            format!("{send},{receive}")
        };
        let mut connected = Frame::new(Command::Connected)
            .with_header("version", version.as_str())
            .with_header("heart-beat", server_hb)
            .with_header("server", concat!("wsbroker/", env!("CARGO_PKG_VERSION")))
            .with_header("session", self.id.to_string());
        if let Some(user) = &self.user {
            connected.push_header("user-name", user.clone());
        }
        // Before CONNECTED is queued, so the writer that wakes for it sees the interval.
        self.outbox.set_heartbeat_ms(heartbeat.send_ms);
        self.push(&connected);
        Flow::Continue
    }
}
