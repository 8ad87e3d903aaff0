//! The client's STOMP state machine, sans-IO: commands and server frames in, frames to send,
//! events and completions out. It outlives connections: subscriptions (with the last
//! `x-offset`/`x-epoch` seen) are re-made on every new connection, with `x-since` when the
//! server gave offsets.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::event::{ClientEvent, ClientMessage};
use crate::broker::AckMode;
use crate::stomp::frame::{Command, Frame};
use crate::stomp::heartbeat::Heartbeat;
use crate::stomp::version::Version;

/// Identifies a caller waiting for the outcome of one command (the IO task maps it to the
/// waiting thread).
pub(crate) type Token = u64;

/// What the host asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Subscribe {
        id: u64,
        destination: String,
        ack: AckMode,
        headers: Vec<(String, String)>,
    },
    Unsubscribe {
        id: u64,
    },
    Send {
        destination: String,
        headers: Vec<(String, String)>,
        body: Bytes,
        transaction: Option<u64>,
    },
    Ack {
        ack_id: String,
        nack: bool,
        transaction: Option<u64>,
    },
    Begin {
        tx: u64,
    },
    Commit {
        tx: u64,
    },
    Abort {
        tx: u64,
    },
    /// Raw mode only (handled by the link).
    Raw {
        data: Bytes,
        binary: bool,
    },
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection was lost before the server confirmed it.
    Lost(String),
    /// The server answered with an ERROR.
    Refused(String),
    /// An unknown (or stale) subscription, transaction or ack id.
    NotFound(String),
    /// Not possible in this mode.
    Invalid(String),
}

#[cfg(test)]
impl Failure {
    /// The description.
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Lost(m) | Failure::Refused(m) | Failure::NotFound(m) | Failure::Invalid(m) => {
                m
            }
        }
    }
}

/// What the session asks of the IO side besides sending frames.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Tell the host.
    Event(ClientEvent),
    /// The command behind `Token` finished (a RECEIPT, or why not).
    Done(Token, Result<(), Failure>),
    /// The DISCONNECT was confirmed: close the connection.
    Closed,
}

/// Frames to send and actions, filled by the session's methods.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub frames: Vec<Frame>,
    pub actions: Vec<Action>,
}

impl Output {
    fn event(&mut self, event: ClientEvent) {
        self.actions.push(Action::Event(event));
    }

    fn done(&mut self, token: Option<Token>, result: Result<(), Failure>) {
        if let Some(token) = token {
            self.actions.push(Action::Done(token, result));
        }
    }
}

/// The CONNECT settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct StompParams {
    pub login: Option<String>,
    pub passcode: Option<String>,
    pub host: Option<String>,
    pub headers: Vec<(String, String)>,
    /// (can send every, wants to receive every) in ms.
    pub heartbeat: (u32, u32),
}

/// What CONNECTED said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub version: Version,
    pub heartbeat: Heartbeat,
}

/// Where a subscription's stream is: the last `x-offset` and `x-epoch` received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resume {
    offset: u64,
    epoch: Option<String>,
}

#[derive(Debug)]
struct Subscription {
    destination: String,
    ack: AckMode,
    headers: Vec<(String, String)>,
    resume: Option<Resume>,
    /// After a re-subscription: `Resubscribed` not reported yet.
    reporting: bool,
}

#[derive(Debug)]
enum Pending {
    /// A host command waiting for its receipt.
    Host(Token),
    /// A re-subscription: its receipt carries `x-recovered`.
    Resubscribe(u64),
    /// The DISCONNECT.
    Disconnect(Option<Token>),
}

/// Prefix of the receipts the client asks for.
const RECEIPT_PREFIX: &str = "wsb-";

/// The STOMP client session.
#[derive(Debug)]
pub(crate) struct Session {
    params: StompParams,
    version: Version,
    /// Connections that reached CONNECTED so far (the current one's number).
    generation: u64,
    connected: bool,
    subscriptions: BTreeMap<u64, Subscription>,
    receipts: HashMap<String, Pending>,
    next_receipt: u64,
    /// Open transactions and the connection they were begun on.
    transactions: HashMap<u64, u64>,
    /// MESSAGEs dropped as duplicates of an offset already received.
    pub duplicates: u64,
}

fn ack_str(mode: AckMode) -> &'static str {
    match mode {
        AckMode::Auto => "auto",
        AckMode::Client => "client",
        AckMode::ClientIndividual => "client-individual",
    }
}

fn tx_name(tx: u64) -> String {
    format!("tx-{tx}")
}

/// `{generation}:{subscription}:{server id}`: an ack id bound to its connection.
fn tag_ack(generation: u64, subscription: u64, id: &str) -> String {
    format!("{generation}:{subscription}:{id}")
}

/// The parts of a tagged ack id.
pub(crate) fn untag_ack(ack_id: &str) -> Option<(u64, u64, &str)> {
    let mut parts = ack_id.splitn(3, ':');
    let generation = parts.next()?.parse().ok()?;
    let subscription = parts.next()?.parse().ok()?;
    Some((generation, subscription, parts.next()?))
}

impl Session {
    pub(crate) fn new(params: StompParams) -> Session {
        Session {
            params,
            version: Version::V1_2,
            generation: 0,
            connected: false,
            subscriptions: BTreeMap::new(),
            receipts: HashMap::new(),
            next_receipt: 0,
            transactions: HashMap::new(),
            duplicates: 0,
        }
    }

    /// True between CONNECTED and the loss of that connection.
    #[cfg(test)]
    pub(crate) fn is_connected(&self) -> bool {
        self.connected
    }

    /// The CONNECT frame that opens every connection.
    pub(crate) fn connect_frame(&self) -> Frame {
        let p = &self.params;
        let mut frame = Frame::new(Command::Connect)
            .with_header("accept-version", "1.0,1.1,1.2")
            .with_header("heart-beat", format!("{},{}", p.heartbeat.0, p.heartbeat.1));
        if let Some(host) = &p.host {
            frame.push_header("host", host.as_str());
        }
        if let Some(login) = &p.login {
            frame.push_header("login", login.as_str());
        }
        if let Some(passcode) = &p.passcode {
            frame.push_header("passcode", passcode.as_str());
        }
        for (name, value) in &p.headers {
            frame.push_header(name.as_str(), value.as_str());
        }
        frame
    }

    /// The answer to CONNECT: CONNECTED starts the session (and re-makes the subscriptions);
    /// anything else is why the connection failed.
    pub(crate) fn on_connect_reply(
        &mut self,
        frame: &Frame,
        out: &mut Output,
    ) -> Result<Negotiated, String> {
        match frame.command {
            Command::Connected => {}
            Command::Error => {
                let message = frame.header("message").unwrap_or("no reason given");
                let body = String::from_utf8_lossy(&frame.body);
                let body = body.trim();
                return Err(if body.is_empty() {
                    format!("the server refused the connection: {message}")
                } else {
                    format!("the server refused the connection: {message} ({body})")
                });
            }
            other => return Err(format!("the server answered CONNECT with {other}")),
        }
        let version = frame
            .header("version")
            .and_then(|v| Version::parse(v.trim()))
            .unwrap_or(Version::V1_0);
        let heartbeat = if version == Version::V1_0 {
            Heartbeat::default()
        } else {
            crate::relay::frames::client_side_heartbeat(self.params.heartbeat, frame)
        };
        self.version = version;
        self.generation += 1;
        self.connected = true;
        let reconnected = self.generation > 1;
        out.event(ClientEvent::Connected {
            server: frame.header("server").map(str::to_string),
            version: version.as_str().to_string(),
            session: frame.header("session").map(str::to_string),
            reconnected,
        });
        let ids: Vec<u64> = self.subscriptions.keys().copied().collect();
        for id in ids {
            let receipt = reconnected.then(|| self.receipt(Pending::Resubscribe(id)));
            let sub = self.subscriptions.get_mut(&id).expect("listed");
            sub.reporting = reconnected;
            out.frames.push(subscribe_frame(id, sub, receipt));
        }
        Ok(Negotiated { version, heartbeat })
    }

    fn receipt(&mut self, pending: Pending) -> String {
        self.next_receipt += 1;
        let id = format!("{RECEIPT_PREFIX}{}", self.next_receipt);
        self.receipts.insert(id.clone(), pending);
        id
    }

    fn with_receipt(&mut self, mut frame: Frame, token: Option<Token>) -> Frame {
        if let Some(token) = token {
            let receipt = self.receipt(Pending::Host(token));
            frame.push_header("receipt", receipt);
        }
        frame
    }

    /// Carries out a host request on the current connection.
    pub(crate) fn request(&mut self, request: Request, token: Option<Token>, out: &mut Output) {
        let frame = match request {
            Request::Subscribe {
                id,
                destination,
                ack,
                headers,
            } => {
                let sub = Subscription {
                    destination,
                    ack,
                    headers,
                    resume: None,
                    reporting: false,
                };
                let frame = subscribe_frame(id, &sub, None);
                self.subscriptions.insert(id, sub);
                frame
            }
            Request::Unsubscribe { id } => {
                if self.subscriptions.remove(&id).is_none() {
                    out.done(
                        token,
                        Err(Failure::NotFound(format!("no subscription {id}"))),
                    );
                    return;
                }
                Frame::new(Command::Unsubscribe).with_header("id", id.to_string())
            }
            Request::Send {
                destination,
                headers,
                body,
                transaction,
            } => {
                let mut frame = Frame::new(Command::Send).with_header("destination", destination);
                if let Some(tx) = transaction {
                    if let Err(why) = self.check_transaction(tx) {
                        out.done(token, Err(why));
                        return;
                    }
                    frame.push_header("transaction", tx_name(tx));
                }
                frame.headers.extend(headers);
                frame.with_body(body)
            }
            Request::Ack {
                ack_id,
                nack,
                transaction,
            } => match self.ack_frame(&ack_id, nack, transaction) {
                Ok(frame) => frame,
                Err(why) => {
                    out.done(token, Err(why));
                    return;
                }
            },
            Request::Begin { tx } => {
                self.transactions.insert(tx, self.generation);
                Frame::new(Command::Begin).with_header("transaction", tx_name(tx))
            }
            Request::Commit { tx } | Request::Abort { tx } => {
                let command = if matches!(request, Request::Commit { .. }) {
                    Command::Commit
                } else {
                    Command::Abort
                };
                let check = self.check_transaction(tx);
                self.transactions.remove(&tx);
                if let Err(why) = check {
                    out.done(token, Err(why));
                    return;
                }
                Frame::new(command).with_header("transaction", tx_name(tx))
            }
            Request::Raw { .. } => {
                out.done(
                    token,
                    Err(Failure::Invalid("raw messages need raw mode".into())),
                );
                return;
            }
        };
        let frame = self.with_receipt(frame, token);
        out.frames.push(frame);
    }

    fn check_transaction(&self, tx: u64) -> Result<(), Failure> {
        match self.transactions.get(&tx) {
            None => Err(Failure::NotFound(format!("no open transaction {tx}"))),
            Some(g) if *g != self.generation => Err(Failure::NotFound(format!(
                "transaction {tx} was lost with the connection it was begun on"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn ack_frame(&self, ack_id: &str, nack: bool, tx: Option<u64>) -> Result<Frame, Failure> {
        let (generation, subscription, id) = untag_ack(ack_id)
            .ok_or_else(|| Failure::Invalid(format!("not an ack id: {ack_id:?}")))?;
        if generation != self.generation {
            return Err(Failure::NotFound(
                "the message came on an earlier connection (the server redelivers it)".into(),
            ));
        }
        let mut frame = Frame::new(if nack { Command::Nack } else { Command::Ack });
        match self.version {
            Version::V1_2 => frame.push_header("id", id),
            Version::V1_1 => {
                frame.push_header("message-id", id);
                frame.push_header("subscription", subscription.to_string());
            }
            Version::V1_0 => frame.push_header("message-id", id),
        }
        if let Some(tx) = tx {
            self.check_transaction(tx)?;
            frame.push_header("transaction", tx_name(tx));
        }
        Ok(frame)
    }

    /// The DISCONNECT frame (with a receipt: the RECEIPT closes the connection).
    pub(crate) fn disconnect(&mut self, token: Option<Token>) -> Frame {
        let receipt = self.receipt(Pending::Disconnect(token));
        Frame::new(Command::Disconnect).with_header("receipt", receipt)
    }

    /// A frame from the server after CONNECTED.
    pub(crate) fn handle(&mut self, frame: Frame, out: &mut Output) {
        match frame.command {
            Command::Message => self.message(frame, out),
            Command::Receipt => {
                let Some(pending) = frame
                    .header("receipt-id")
                    .and_then(|id| self.receipts.remove(id))
                else {
                    return;
                };
                match pending {
                    Pending::Host(token) => out.done(Some(token), Ok(())),
                    Pending::Resubscribe(id) => {
                        let recovered = frame.header("x-recovered") == Some("true");
                        self.report(id, recovered, out);
                    }
                    Pending::Disconnect(token) => {
                        out.done(token, Ok(()));
                        out.actions.push(Action::Closed);
                    }
                }
            }
            Command::Error => {
                let message = frame.header("message").unwrap_or("").to_string();
                // An ERROR naming one of our receipts fails that command.
                if let Some(pending) = frame
                    .header("receipt-id")
                    .and_then(|id| self.receipts.remove(id))
                    && let Pending::Host(token) | Pending::Disconnect(Some(token)) = pending
                {
                    out.done(
                        Some(token),
                        Err(Failure::Refused(format!(
                            "the server refused it: {message}"
                        ))),
                    );
                }
                out.event(ClientEvent::Error {
                    message,
                    headers: frame.headers,
                    body: frame.body,
                });
            }
            _ => {}
        }
    }

    fn report(&mut self, id: u64, recovered: bool, out: &mut Output) {
        if let Some(sub) = self.subscriptions.get_mut(&id)
            && sub.reporting
        {
            sub.reporting = false;
            out.event(ClientEvent::Resubscribed {
                subscription: id,
                destination: sub.destination.clone(),
                recovered,
            });
        }
    }

    fn message(&mut self, frame: Frame, out: &mut Output) {
        let Some(id) = frame
            .header("subscription")
            .and_then(|s| s.parse::<u64>().ok())
        else {
            return;
        };
        let generation = self.generation;
        let Some(sub) = self.subscriptions.get_mut(&id) else {
            // Unsubscribed while it was on its way.
            return;
        };
        if let Some(offset) = frame.header("x-offset").and_then(|o| o.parse::<u64>().ok()) {
            let epoch = frame.header("x-epoch").map(str::to_string);
            if let Some(last) = &sub.resume
                && last.epoch == epoch
                && offset <= last.offset
            {
                self.duplicates += 1;
                return;
            }
            sub.resume = Some(Resume { offset, epoch });
        }
        let ack_id = if sub.ack == AckMode::Auto {
            None
        } else {
            frame
                .header(if self.version == Version::V1_2 {
                    "ack"
                } else {
                    "message-id"
                })
                .or_else(|| frame.header("message-id"))
                .map(|raw| tag_ack(generation, id, raw))
        };
        if sub.reporting
            && let Some(recovered) = frame.header("x-recovered")
        {
            let recovered = recovered == "true";
            self.report(id, recovered, out);
        }
        let destination = frame.header("destination").unwrap_or_default().to_string();
        out.event(ClientEvent::Message(ClientMessage {
            subscription: id,
            destination,
            headers: frame.headers,
            body: frame.body,
            ack_id,
        }));
    }

    /// The connection is gone: every command waiting for a receipt fails (a SEND may or may
    /// not have arrived), subscriptions stay for the next connection.
    pub(crate) fn connection_lost(&mut self, reason: &str, out: &mut Output) {
        self.connected = false;
        for (_, pending) in self.receipts.drain() {
            if let Pending::Host(token) | Pending::Disconnect(Some(token)) = pending {
                out.done(
                    Some(token),
                    Err(Failure::Lost(format!("connection lost: {reason}"))),
                );
            }
        }
        for sub in self.subscriptions.values_mut() {
            sub.reporting = false;
        }
    }
}

/// SUBSCRIBE for `sub`, resuming after its last offset when the server gave one.
fn subscribe_frame(id: u64, sub: &Subscription, receipt: Option<String>) -> Frame {
    let mut frame = Frame::new(Command::Subscribe)
        .with_header("id", id.to_string())
        .with_header("destination", sub.destination.as_str())
        .with_header("ack", ack_str(sub.ack));
    let resuming = sub.resume.is_some();
    for (name, value) in &sub.headers {
        // A resume replaces the host's own starting point.
        if resuming && matches!(name.as_str(), "x-since" | "x-epoch" | "x-last") {
            continue;
        }
        if matches!(name.as_str(), "id" | "destination" | "ack" | "receipt") {
            continue;
        }
        frame.push_header(name.as_str(), value.as_str());
    }
    if let Some(resume) = &sub.resume {
        frame.push_header("x-since", resume.offset.to_string());
        if let Some(epoch) = &resume.epoch {
            frame.push_header("x-epoch", epoch.as_str());
        }
    }
    if let Some(receipt) = receipt {
        frame.push_header("receipt", receipt);
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(StompParams {
            login: Some("guest".into()),
            passcode: Some("secret".into()),
            host: Some("/".into()),
            headers: vec![("token".into(), "abc".into())],
            heartbeat: (1000, 2000),
        })
    }

    fn connected(version: &str, heartbeat: &str) -> Frame {
        Frame::new(Command::Connected)
            .with_header("version", version)
            .with_header("heart-beat", heartbeat)
            .with_header("server", "test/1")
    }

    fn message(sub: u64, offset: Option<u64>, epoch: &str, extra: &[(&str, &str)]) -> Frame {
        let mut f = Frame::new(Command::Message)
            .with_header("subscription", sub.to_string())
            .with_header("destination", "/topic/a")
            .with_header("message-id", "m-1")
            .with_header("ack", "a-1")
            .with_body("x");
        if let Some(o) = offset {
            f.push_header("x-offset", o.to_string());
            f.push_header("x-epoch", epoch);
        }
        for (n, v) in extra {
            f.push_header(*n, *v);
        }
        f
    }

    fn events(out: &Output) -> Vec<&ClientEvent> {
        out.actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn subscribe(s: &mut Session, id: u64, headers: &[(&str, &str)], out: &mut Output) {
        s.request(
            Request::Subscribe {
                id,
                destination: "/topic/a".into(),
                ack: AckMode::ClientIndividual,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            },
            None,
            out,
        );
    }

    #[test]
    fn connect_frame_and_negotiation() {
        let mut s = session();
        let f = s.connect_frame();
        assert_eq!(f.command, Command::Connect);
        assert_eq!(f.header("accept-version"), Some("1.0,1.1,1.2"));
        assert_eq!(f.header("heart-beat"), Some("1000,2000"));
        assert_eq!(f.header("host"), Some("/"));
        assert_eq!(f.header("login"), Some("guest"));
        assert_eq!(f.header("passcode"), Some("secret"));
        assert_eq!(f.header("token"), Some("abc"));
        let mut out = Output::default();
        let n = s
            .on_connect_reply(&connected("1.2", "5000,500"), &mut out)
            .unwrap();
        assert_eq!(n.version, Version::V1_2);
        // We send at max(1000, 500); the server at max(5000, 2000).
        assert_eq!(
            n.heartbeat,
            Heartbeat {
                send_ms: 1000,
                receive_ms: 5000
            }
        );
        assert!(s.is_connected());
        assert!(matches!(
            events(&out)[0],
            ClientEvent::Connected {
                reconnected: false,
                ..
            }
        ));
        let refused = Frame::new(Command::Error)
            .with_header("message", "bad login")
            .with_body("wrong passcode");
        let err = session()
            .on_connect_reply(&refused, &mut Output::default())
            .unwrap_err();
        assert!(
            err.contains("bad login") && err.contains("wrong passcode"),
            "{err}"
        );
        // No version header: STOMP 1.0, no heart-beats.
        let n = session()
            .on_connect_reply(&Frame::new(Command::Connected), &mut Output::default())
            .unwrap();
        assert_eq!(
            (n.version, n.heartbeat),
            (Version::V1_0, Heartbeat::default())
        );
    }

    #[test]
    fn resubscribes_with_x_since_and_reports_recovered() {
        let mut s = session();
        let mut out = Output::default();
        s.on_connect_reply(&connected("1.2", "0,0"), &mut out)
            .unwrap();
        subscribe(&mut s, 7, &[("x-last", "10"), ("selector", "a")], &mut out);
        subscribe(&mut s, 8, &[], &mut out);
        let first = &out.frames[0];
        assert_eq!(first.header("id"), Some("7"));
        assert_eq!(first.header("ack"), Some("client-individual"));
        assert_eq!(first.header("x-last"), Some("10"));
        assert_eq!(first.header("receipt"), None);
        // Offsets arrive on 7 only; a duplicate offset is dropped.
        let mut out = Output::default();
        s.handle(message(7, Some(41), "e1", &[]), &mut out);
        s.handle(message(7, Some(42), "e1", &[]), &mut out);
        s.handle(message(7, Some(42), "e1", &[]), &mut out);
        s.handle(message(8, None, "", &[]), &mut out);
        assert_eq!(events(&out).len(), 3);
        assert_eq!(s.duplicates, 1);
        s.connection_lost("test", &mut out);
        assert!(!s.is_connected());

        let mut out = Output::default();
        s.on_connect_reply(&connected("1.2", "0,0"), &mut out)
            .unwrap();
        assert!(matches!(
            events(&out)[0],
            ClientEvent::Connected {
                reconnected: true,
                ..
            }
        ));
        let (r7, r8) = (&out.frames[0], &out.frames[1]);
        assert_eq!(r7.header("x-since"), Some("42"));
        assert_eq!(r7.header("x-epoch"), Some("e1"));
        assert_eq!(
            r7.header("x-last"),
            None,
            "a resume replaces the backlog request"
        );
        assert_eq!(r7.header("selector"), Some("a"));
        assert_eq!(r8.header("x-since"), None);
        let receipt = |f: &Frame| f.header("receipt").unwrap().to_string();
        let (rc7, rc8) = (receipt(r7), receipt(r8));
        // 7: the first MESSAGE says x-recovered:true before the receipt; 8: the receipt
        // says nothing, so false.
        let mut out = Output::default();
        s.handle(
            message(7, Some(43), "e1", &[("x-recovered", "true")]),
            &mut out,
        );
        s.handle(
            Frame::new(Command::Receipt)
                .with_header("receipt-id", rc7)
                .with_header("x-recovered", "false"),
            &mut out,
        );
        s.handle(
            Frame::new(Command::Receipt).with_header("receipt-id", rc8),
            &mut out,
        );
        let reports: Vec<(u64, bool)> = events(&out)
            .into_iter()
            .filter_map(|e| match e {
                ClientEvent::Resubscribed {
                    subscription,
                    recovered,
                    ..
                } => Some((*subscription, *recovered)),
                _ => None,
            })
            .collect();
        assert_eq!(reports, [(7, true), (8, false)]);
        // A new epoch: the same offset is not a duplicate.
        let mut out = Output::default();
        s.handle(message(7, Some(43), "e2", &[]), &mut out);
        assert_eq!(events(&out).len(), 1);
    }

    #[test]
    fn acks_are_bound_to_their_connection_and_version() {
        let mut s = session();
        let mut out = Output::default();
        s.on_connect_reply(&connected("1.1", "0,0"), &mut out)
            .unwrap();
        subscribe(&mut s, 3, &[], &mut out);
        let mut out = Output::default();
        s.handle(message(3, None, "", &[]), &mut out);
        let ClientEvent::Message(m) = events(&out)[0] else {
            panic!("{out:?}")
        };
        let ack_id = m.ack_id.clone().unwrap();
        assert_eq!(
            untag_ack(&ack_id),
            Some((1, 3, "m-1")),
            "1.1 acks by message-id"
        );
        let mut out = Output::default();
        s.request(
            Request::Ack {
                ack_id: ack_id.clone(),
                nack: true,
                transaction: None,
            },
            Some(5),
            &mut out,
        );
        let nack = &out.frames[0];
        assert_eq!(nack.command, Command::Nack);
        assert_eq!(nack.header("message-id"), Some("m-1"));
        assert_eq!(nack.header("subscription"), Some("3"));
        assert!(nack.header("receipt").is_some());
        // The connection is lost: the waiting NACK fails, and the old ack id is refused.
        let mut out = Output::default();
        s.connection_lost("gone", &mut out);
        assert!(matches!(&out.actions[0], Action::Done(5, Err(e)) if e.message().contains("gone")));
        s.on_connect_reply(&connected("1.2", "0,0"), &mut Output::default())
            .unwrap();
        let mut out = Output::default();
        s.request(
            Request::Ack {
                ack_id,
                nack: false,
                transaction: None,
            },
            Some(6),
            &mut out,
        );
        assert!(out.frames.is_empty());
        assert!(
            matches!(&out.actions[0], Action::Done(6, Err(e)) if e.message().contains("earlier"))
        );
    }

    #[test]
    fn transactions_receipts_errors_and_disconnect() {
        let mut s = session();
        s.on_connect_reply(&connected("1.2", "0,0"), &mut Output::default())
            .unwrap();
        let mut out = Output::default();
        s.request(Request::Begin { tx: 1 }, None, &mut out);
        s.request(
            Request::Send {
                destination: "/queue/q".into(),
                headers: vec![("k".into(), "v".into())],
                body: Bytes::from_static(b"b"),
                transaction: Some(1),
            },
            Some(10),
            &mut out,
        );
        s.request(Request::Commit { tx: 1 }, None, &mut out);
        s.request(Request::Commit { tx: 1 }, Some(11), &mut out);
        assert_eq!(out.frames.len(), 3);
        assert_eq!(out.frames[0].header("transaction"), Some("tx-1"));
        let send = &out.frames[1];
        assert_eq!(send.header("transaction"), Some("tx-1"));
        assert_eq!(send.header("k"), Some("v"));
        assert_eq!(out.frames[2].command, Command::Commit);
        assert!(
            matches!(&out.actions[0], Action::Done(11, Err(e)) if e.message().contains("no open"))
        );
        let receipt = send.header("receipt").unwrap().to_string();
        let mut out = Output::default();
        s.handle(
            Frame::new(Command::Error)
                .with_header("message", "denied")
                .with_header("receipt-id", receipt),
            &mut out,
        );
        assert!(
            matches!(&out.actions[0], Action::Done(10, Err(e)) if e.message().contains("denied"))
        );
        assert!(
            matches!(&out.actions[1], Action::Event(ClientEvent::Error { message, .. }) if message == "denied")
        );
        let bye = s.disconnect(Some(12));
        let mut out = Output::default();
        s.handle(
            Frame::new(Command::Receipt).with_header("receipt-id", bye.header("receipt").unwrap()),
            &mut out,
        );
        assert_eq!(out.actions, [Action::Done(12, Ok(())), Action::Closed]);
    }
}
