//! The library's own `Client` over real sockets: against this server (WebSocket, TCP, TLS,
//! permessage-deflate, raw endpoints, a restart mid-stream), against scripted peers (heart-beat
//! silence, history resume with `x-since`) and against RabbitMQ's Web-STOMP and STOMP adapters
//! (brokers it was not written with; skipped with a printed reason when RabbitMQ is absent,
//! required in CI).
//!
//! Every wait is bounded; absence is proven with receipts, never with sleeps.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rcgen::ExtendedKeyUsagePurpose;
use wsbroker::{
    AckMode, Client, ClientConfig, ClientDelivery, ClientEvent, ClientMessage, ClientMode, Error,
    QueuePolicy, RawBehaviour, RawEndpointOptions, Server,
};

use crate::common::{self, TestServer, WAIT};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn ws_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/ws")
}

fn tcp_url(addr: SocketAddr) -> String {
    format!("stomp://{addr}")
}

/// A config with fast reconnects and short timeouts.
fn client_config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.connect_timeout = WAIT;
    c.reconnect.initial_delay = Duration::from_millis(50);
    c.reconnect.max_delay = Duration::from_millis(200);
    c.tls.system_roots = false;
    c
}

fn connected(config: ClientConfig) -> Client {
    let client = Client::new(config).expect("valid client config");
    client.connect(WAIT).expect("client connects");
    client
}

/// The next event matching `pred` within `WAIT` (others are collected into `skipped`).
fn wait_for(
    client: &Client,
    what: &str,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) -> ClientEvent {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut batch = Vec::new();
        client.poll_events(&mut batch, 1, left).unwrap();
        match batch.pop() {
            Some(event) if pred(&event) => return event,
            Some(event) => seen.push(event),
            None => panic!("no {what} within {WAIT:?}; saw {seen:#?}"),
        }
    }
}

fn next_message(client: &Client) -> ClientMessage {
    match wait_for(client, "MESSAGE", |e| matches!(e, ClientEvent::Message(_))) {
        ClientEvent::Message(m) => m,
        _ => unreachable!(),
    }
}

/// Every event already queued (none are waited for).
fn drain(client: &Client) -> Vec<ClientEvent> {
    let mut out = Vec::new();
    client
        .poll_events(&mut out, 10_000, Duration::ZERO)
        .unwrap();
    out
}

fn unique(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Subscribe, send with a receipt, get the message back: the round trip every transport must
/// pass, checked with headers and a body.
fn round_trip(client: &Client, destination: &str) {
    let sub = client
        .subscribe_confirmed(destination, AckMode::Auto, &[("x-test", "1")], WAIT)
        .expect("subscribed");
    client
        .send_with_receipt(
            destination,
            &[("content-type", "text/plain"), ("k", "a:b\\c")],
            "hello",
            WAIT,
        )
        .expect("sent with receipt");
    let m = next_message(client);
    assert_eq!(m.subscription, sub);
    assert_eq!(m.destination, destination);
    assert_eq!(&m.body[..], b"hello");
    assert_eq!(m.header("k"), Some("a:b\\c"), "escaped header survives");
    assert_eq!(m.ack_id, None, "auto ack");
    client.unsubscribe(sub).unwrap();
    assert!(matches!(client.unsubscribe(sub), Err(Error::NotFound(_))));
}

// ---------------------------------------------------------------------------------------------
// Against wsbroker
// ---------------------------------------------------------------------------------------------

#[test]
fn websocket_and_tcp_round_trips_with_receipts_and_disconnect() {
    let server = TestServer::start();
    for url in [ws_url(server.ws), tcp_url(server.tcp)] {
        let client = connected(client_config(&url));
        assert!(client.is_connected());
        match &drain(&client)[0] {
            ClientEvent::Connected {
                version,
                reconnected,
                ..
            } => {
                assert_eq!(version, "1.2");
                assert!(!reconnected);
            }
            other => panic!("{url}: {other:?}"),
        }
        round_trip(&client, "/topic/client-round-trip");
        client.disconnect(WAIT).expect("DISCONNECT confirmed");
        assert!(!client.is_connected());
        let events = drain(&client);
        assert!(
            events.iter().any(|e| matches!(
                e,
                ClientEvent::Disconnected {
                    reconnecting: false,
                    ..
                }
            )),
            "{url}: {events:?}"
        );
        assert!(matches!(
            client.send("/topic/x", &[], "late"),
            Err(Error::NotRunning)
        ));
        assert!(matches!(client.disconnect(WAIT), Err(Error::NotRunning)));
    }
}

#[test]
fn connect_headers_reach_the_server_and_a_refusal_is_an_error() {
    let server = TestServer::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    server.server.on_connect(move |request| {
        record.lock().push(request.headers.clone());
        if request
            .headers
            .iter()
            .any(|(n, v)| n == "token" && v == "good")
        {
            wsbroker::ConnectDecision::Accept { user: None }
        } else {
            wsbroker::ConnectDecision::Reject("bad token".into())
        }
    });
    let mut config = client_config(&ws_url(server.ws));
    config.login = Some("alice".into());
    config.passcode = Some("pw".into());
    config.host = Some("example".into());
    config.connect_headers = vec![("token".into(), "good".into())];
    let client = connected(config.clone());
    let headers = seen.lock()[0].clone();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("login"), Some("alice"));
    assert_eq!(get("passcode"), Some("pw"));
    assert_eq!(get("host"), Some("example"));
    assert_eq!(get("accept-version"), Some("1.0,1.1,1.2"));
    client.disconnect(WAIT).unwrap();

    config.connect_headers = vec![("token".into(), "bad".into())];
    let refused = Client::new(config).unwrap();
    match refused.connect(WAIT) {
        Err(Error::Refused(why)) => assert!(why.contains("bad token"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A port where nothing listens.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nobody = Client::new(client_config(&ws_url(closed))).unwrap();
    assert!(matches!(nobody.connect(WAIT), Err(Error::NotConnected(_))));
}

#[test]
fn tls_wss_and_stomp_over_tls_with_a_client_certificate() {
    let pki = crate::tls::Pki::new();
    let server = crate::tls::start(pki.server_tls(true));
    let client_cert = pki.issue(ExtendedKeyUsagePurpose::ClientAuth);
    let mut tls = wsbroker::ClientTlsConfig {
        system_roots: false,
        ca_pem: Some(pki.dir.join("ca.pem")),
        client_cert_pem: Some(pki.write("client.pem", &client_cert.cert_pem)),
        client_key_pem: Some(pki.write("client.key", &client_cert.key_pem)),
        server_name: Some("localhost".into()),
    };
    for url in [
        format!("wss://{}/ws", server.ws),
        format!("stomp+ssl://{}", server.tcp),
    ] {
        let mut config = client_config(&url);
        config.tls = tls.clone();
        let client = connected(config);
        round_trip(&client, "/topic/tls");
        client.disconnect(WAIT).unwrap();
    }
    // Without the client certificate the server refuses the handshake.
    tls.client_cert_pem = None;
    tls.client_key_pem = None;
    let mut config = client_config(&format!("wss://{}/ws", server.ws));
    config.tls = tls;
    let client = Client::new(config).unwrap();
    assert!(client.connect(WAIT).is_err());
    // A CA that is not the server's: the certificate is not trusted.
    let other = crate::tls::Pki::new();
    let mut config = client_config(&format!("wss://{}/ws", server.ws));
    config.tls.ca_pem = Some(other.dir.join("ca.pem"));
    let err = Client::new(config).unwrap().connect(WAIT).unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    // No trusted root at all is a configuration error.
    let mut config = client_config(&format!("wss://{}/ws", server.ws));
    config.tls.system_roots = false;
    assert!(matches!(Client::new(config), Err(Error::InvalidConfig(_))));
}

#[test]
fn permessage_deflate_both_ways() {
    let server = TestServer::start();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    server
        .server
        .subscribe("/topic/deflate-in", move |m| {
            sink.lock().push(m.body().to_vec());
        })
        .unwrap();
    let client = connected(client_config(&ws_url(server.ws)));
    let body: String = (0..2000).map(|i| format!("{{\"seq\":{i}}}")).collect();
    // Client → server: compressed by the client, inflated by the server.
    client
        .send_with_receipt("/topic/deflate-in", &[], body.clone(), WAIT)
        .unwrap();
    // Host subscriptions run on the callback threads: the RECEIPT may come first.
    let deadline = Instant::now() + WAIT;
    while got.lock().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(got.lock().as_slice(), [body.as_bytes().to_vec()]);
    // Server → client: the server compresses the shared tail, the client inflates.
    client
        .subscribe_confirmed("/topic/deflate-out", AckMode::Auto, &[], WAIT)
        .unwrap();
    for i in 0..3 {
        let body = format!("{i}:{body}");
        server
            .server
            .publish("/topic/deflate-out", &[], body.clone())
            .unwrap();
        assert_eq!(next_message(&client).body, body.as_bytes());
    }
    client.disconnect(WAIT).unwrap();
}

#[test]
fn queue_acks_nacks_and_transactions() {
    let server = TestServer::start();
    let client = connected(client_config(&tcp_url(server.tcp)));
    let queue = "/queue/client-acks";
    let sub = client
        .subscribe_confirmed(queue, AckMode::ClientIndividual, &[], WAIT)
        .unwrap();
    let tx = client.begin().unwrap();
    client
        .send_with(queue, &[], "one".into(), Some(tx), None)
        .unwrap();
    client
        .send_with(queue, &[], "two".into(), Some(tx), None)
        .unwrap();
    // Nothing is delivered before the commit: a receipt round trip proves it.
    client
        .send_with_receipt("/topic/barrier", &[], "", WAIT)
        .unwrap();
    assert!(
        !drain(&client)
            .iter()
            .any(|e| matches!(e, ClientEvent::Message(_)))
    );
    client.commit(tx, Some(WAIT)).unwrap();
    assert!(matches!(client.commit(tx, None), Err(Error::NotFound(_))));
    let one = next_message(&client);
    let two = next_message(&client);
    assert_eq!((&one.body[..], &two.body[..]), (&b"one"[..], &b"two"[..]));
    assert_eq!(one.subscription, sub);
    // ACK one inside a transaction that is aborted, then for real; NACK the other.
    let tx = client.begin().unwrap();
    client
        .ack(one.ack_id.as_deref().unwrap(), Some(tx))
        .unwrap();
    client.abort(tx, Some(WAIT)).unwrap();
    client.ack(one.ack_id.as_deref().unwrap(), None).unwrap();
    client.nack(two.ack_id.as_deref().unwrap(), None).unwrap();
    client
        .send_with_receipt("/topic/barrier", &[], "", WAIT)
        .unwrap();
    assert!(matches!(
        client.ack("junk", None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        client.send_with(queue, &[], "x".into(), Some(999), None),
        Err(Error::NotFound(_))
    ));
    // The server saw no protocol error.
    assert!(
        !drain(&client)
            .iter()
            .any(|e| matches!(e, ClientEvent::Error { .. })),
    );
    client.disconnect(WAIT).unwrap();
}

#[test]
fn a_server_error_fails_the_waiting_receipt() {
    let server = TestServer::start();
    server
        .server
        .handle_app("/app/fail", |_, _| Err("no thanks".into()));
    let client = connected(client_config(&ws_url(server.ws)));
    // The ERROR names the SEND's receipt (Refused), or the server closes first (lost).
    match client.send_with_receipt("/app/fail", &[], "x", WAIT) {
        Err(Error::Refused(why)) => assert!(why.contains("no thanks"), "{why}"),
        Err(Error::NotConnected(_)) => {}
        other => panic!("{other:?}"),
    }
    wait_for(
        &client,
        "ERROR",
        |e| matches!(e, ClientEvent::Error { message, .. } if message.contains("no thanks")),
    );
    // The server closes after an ERROR; the client reconnects on its own.
    wait_for(&client, "reconnection", |e| {
        matches!(
            e,
            ClientEvent::Connected {
                reconnected: true,
                ..
            }
        )
    });
    round_trip(&client, "/topic/after-error");
}

/// The reconnect test: the server is stopped mid-stream and a new one started on the same
/// port; the client reconnects, re-subscribes and reports `recovered: false` (this server has
/// no history yet, issue 15), and the stream continues on the new server.
#[test]
fn reconnects_and_resubscribes_after_a_server_restart() {
    let mut first_config = common::config();
    first_config.tcp_listen = None;
    let first = Server::new(first_config).unwrap();
    first.start().unwrap();
    let addr = first.local_addr().unwrap();
    let client = connected(client_config(&ws_url(addr)));
    let sub = client
        .subscribe_confirmed("/topic/stream", AckMode::Auto, &[], WAIT)
        .unwrap();
    let queue_sub = client
        .subscribe_confirmed("/queue/stream", AckMode::Client, &[], WAIT)
        .unwrap();
    for i in 0..50 {
        first.publish("/topic/stream", &[], i.to_string()).unwrap();
    }
    for i in 0..50 {
        assert_eq!(next_message(&client).body, i.to_string().as_bytes());
    }
    first.stop(Duration::from_secs(2)).unwrap();
    match wait_for(&client, "Disconnected", |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    }) {
        ClientEvent::Disconnected { reconnecting, .. } => assert!(reconnecting),
        _ => unreachable!(),
    }
    let mut second_config = common::config();
    second_config.tcp_listen = None;
    second_config.listen = addr;
    let second = Server::new(second_config).unwrap();
    second.start().expect("the same port again");
    wait_for(&client, "reconnection", |e| {
        matches!(
            e,
            ClientEvent::Connected {
                reconnected: true,
                ..
            }
        )
    });
    let mut resubscribed = Vec::new();
    while resubscribed.len() < 2 {
        if let ClientEvent::Resubscribed {
            subscription,
            recovered,
            ..
        } = wait_for(&client, "Resubscribed", |e| {
            matches!(e, ClientEvent::Resubscribed { .. })
        }) {
            resubscribed.push((subscription, recovered));
        }
    }
    resubscribed.sort_unstable();
    assert_eq!(resubscribed, [(sub, false), (queue_sub, false)]);
    for i in 50..100 {
        second.publish("/topic/stream", &[], i.to_string()).unwrap();
    }
    for i in 50..100 {
        let m = next_message(&client);
        assert_eq!(m.subscription, sub);
        assert_eq!(m.body, i.to_string().as_bytes());
    }
    // The queue subscription works again (with a fresh ack id).
    second.publish("/queue/stream", &[], "q").unwrap();
    let m = next_message(&client);
    assert_eq!(m.subscription, queue_sub);
    client.ack(m.ack_id.as_deref().unwrap(), None).unwrap();
    client.disconnect(WAIT).unwrap();
    second.stop(Duration::from_secs(1)).unwrap();
}

/// With history on for `/topic/history/**`, messages published while the client's connection
/// is down are replayed on its resubscription (`x-since` from the last `x-offset` it saw),
/// each once, and the client reports the resume recovered.
#[test]
fn resume_is_gap_free_against_wsbroker_with_history() {
    let mut config = common::config();
    config
        .broker
        .history
        .push(wsbroker::HistoryRule::new("/topic/history/**", 100));
    let server = TestServer::start_with(config);
    let sessions = Arc::new(Mutex::new(Vec::new()));
    let record = sessions.clone();
    server.server.on_connect(move |request| {
        record.lock().push(request.session);
        wsbroker::ConnectDecision::Accept { user: None }
    });
    let client = connected(client_config(&ws_url(server.ws)));
    client
        .subscribe_confirmed("/topic/history/a", AckMode::Auto, &[], WAIT)
        .unwrap();
    for i in 1..=5 {
        server
            .server
            .publish("/topic/history/a", &[], i.to_string())
            .unwrap();
    }
    let mut bodies: Vec<String> = (0..5)
        .map(|_| String::from_utf8(next_message(&client).body.to_vec()).unwrap())
        .collect();
    let session = sessions.lock()[0];
    server
        .server
        .disconnect_session(session, "dropped by the test")
        .unwrap();
    for i in 6..=10 {
        server
            .server
            .publish("/topic/history/a", &[], i.to_string())
            .unwrap();
    }
    wait_for(&client, "Resubscribed", |e| {
        matches!(
            e,
            ClientEvent::Resubscribed {
                recovered: true,
                ..
            }
        )
    });
    while bodies.len() < 10 {
        bodies.push(String::from_utf8(next_message(&client).body.to_vec()).unwrap());
    }
    let expected: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    assert_eq!(bodies, expected, "0 gaps, 0 duplicates");
}

#[test]
fn raw_mode_against_raw_endpoints() {
    let server = TestServer::start();
    server
        .server
        .add_raw_endpoint(
            "/echo",
            RawEndpointOptions {
                behaviour: RawBehaviour::Echo,
                ..RawEndpointOptions::default()
            },
        )
        .unwrap();
    let mut config = client_config(&format!("ws://{}/echo", server.ws));
    config.mode = ClientMode::Raw;
    let client = connected(config);
    assert!(matches!(
        client.subscribe("/topic/a", AckMode::Auto, &[]),
        Err(Error::InvalidArgument(_))
    ));
    client.send_text("ping 1").unwrap();
    client.send_binary(vec![0u8, 1, 2, 255]).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        if let ClientEvent::Raw { data, binary } = wait_for(&client, "raw message", |e| {
            matches!(e, ClientEvent::Raw { .. })
        }) {
            got.push((data.to_vec(), binary));
        }
    }
    assert_eq!(
        got,
        [(b"ping 1".to_vec(), false), (vec![0, 1, 2, 255], true)]
    );
    client.disconnect(WAIT).unwrap();
}

#[test]
fn callback_delivery_runs_on_the_network_thread_and_may_send() {
    let server = TestServer::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let client_slot: Arc<Mutex<Option<Arc<Client>>>> = Arc::new(Mutex::new(None));
    let mut config = client_config(&ws_url(server.ws));
    {
        let seen = seen.clone();
        let slot = client_slot.clone();
        config.delivery = ClientDelivery::Callback(Arc::new(move |event| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            if let ClientEvent::Message(m) = &event {
                seen.lock().push((thread, m.body.clone()));
                if &m.body[..] == b"ping" {
                    let client = slot.lock().clone().unwrap();
                    // Non-waiting calls work inside the callback; waiting ones refuse.
                    client.send("/topic/cb", &[], "pong").unwrap();
                    assert!(matches!(
                        client.send_with_receipt("/topic/cb", &[], "x", WAIT),
                        Err(Error::CalledFromCallback(_))
                    ));
                    assert!(matches!(
                        client.disconnect(WAIT),
                        Err(Error::CalledFromCallback(_))
                    ));
                } else {
                    let _ = done_tx.send(());
                }
            }
        }));
    }
    let client = Arc::new(connected(config));
    *client_slot.lock() = Some(client.clone());
    assert!(matches!(
        client.poll_events(&mut Vec::new(), 1, Duration::ZERO),
        Err(Error::InvalidArgument(_))
    ));
    client
        .subscribe_confirmed("/topic/cb", AckMode::Auto, &[], WAIT)
        .unwrap();
    client.send("/topic/cb", &[], "ping").unwrap();
    done_rx.recv_timeout(WAIT).expect("pong came back");
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(t, _)| t == "wsbroker-client"), "{seen:?}");
    client_slot.lock().take();
    client.disconnect(WAIT).unwrap();
}

#[test]
fn the_outbound_queue_is_bounded_with_a_policy() {
    // Nothing listens: the queue is never drained, so it fills.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for policy in [
        QueuePolicy::FailFast,
        QueuePolicy::Block(Duration::from_millis(100)),
    ] {
        let mut config = client_config(&ws_url(closed));
        config.outbound.capacity = 2;
        config.outbound.policy = policy;
        config.reconnect.initial_delay = Duration::from_secs(1);
        config.reconnect.max_delay = Duration::from_secs(1);
        let client = Client::new(config).unwrap();
        client.start().unwrap();
        client.send("/topic/a", &[], "1").unwrap();
        client.send("/topic/a", &[], "2").unwrap();
        let started = Instant::now();
        assert!(matches!(
            client.send("/topic/a", &[], "3"),
            Err(Error::Backpressure(_))
        ));
        let waited = started.elapsed();
        match policy {
            QueuePolicy::FailFast => assert!(waited < Duration::from_millis(100), "{waited:?}"),
            QueuePolicy::Block(t) => assert!(waited >= t, "{waited:?}"),
        }
        // A waiting call on a connection that never comes times out.
        assert!(matches!(
            client.subscribe_confirmed("/topic/a", AckMode::Auto, &[], Duration::from_millis(50)),
            Err(Error::Backpressure(_) | Error::Timeout(_))
        ));
        client.disconnect(Duration::from_millis(200)).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Against scripted peers
// ---------------------------------------------------------------------------------------------

/// A STOMP-over-TCP peer run by the test: reads frames, writes what the test says.
struct Peer {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Peer {
    fn accept(listener: &TcpListener) -> Peer {
        listener.set_nonblocking(false).unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Peer { stream, reader }
    }

    /// The next frame's command and headers (heart-beat EOLs skipped), or None on EOF.
    fn frame(&mut self) -> Option<(String, Vec<(String, String)>)> {
        let mut raw = Vec::new();
        if self.reader.read_until(0, &mut raw).ok()? == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim_start_matches(['\n', '\r']);
        let mut lines = text.lines();
        let command = lines.next()?.to_string();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Some((command, headers))
    }

    fn expect(&mut self, command: &str) -> Vec<(String, String)> {
        let (got, headers) = self.frame().expect("a frame");
        assert_eq!(got, command, "{headers:?}");
        headers
    }

    fn write(&mut self, frame: &str) {
        self.stream.write_all(frame.as_bytes()).unwrap();
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn heartbeats_are_sent_and_a_silent_server_is_dropped() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = client_config(&tcp_url(listener.local_addr().unwrap()));
    config.heartbeat = (Duration::from_millis(100), Duration::from_millis(100));
    config.reconnect.enabled = false;
    let client = Client::new(config).unwrap();
    client.start().unwrap();
    let mut peer = Peer::accept(&listener);
    let connect = peer.expect("CONNECT");
    assert_eq!(header(&connect, "heart-beat"), Some("100,100"));
    // The server promises a beat every 150 ms and wants one every 100 ms; then goes silent.
    peer.write("CONNECTED\nversion:1.2\nheart-beat:150,100\n\n\0");
    let started = Instant::now();
    let mut beat = [0u8; 1];
    peer.stream.read_exact(&mut beat).unwrap();
    assert_eq!(&beat, b"\n", "the client sends heart-beats");
    match wait_for(&client, "Disconnected", |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    }) {
        ClientEvent::Disconnected {
            reason,
            reconnecting,
        } => {
            assert!(reason.contains("no heart-beat"), "{reason}");
            assert!(!reconnecting);
        }
        _ => unreachable!(),
    }
    let silent_for = started.elapsed();
    assert!(silent_for >= Duration::from_millis(300), "{silent_for:?}");
}

/// History resume, client side: messages carry `x-offset`/`x-epoch`; after a lost connection
/// the client re-subscribes with `x-since`/`x-epoch`, reports the server's `x-recovered`, and
/// drops a replayed offset it already has — 0 gaps, 0 duplicates.
#[test]
fn resumes_with_x_since_and_reports_recovered_without_duplicates() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Client::new(client_config(&tcp_url(listener.local_addr().unwrap()))).unwrap();
    client.start().unwrap();
    let peer = std::thread::spawn(move || {
        let mut peer = Peer::accept(&listener);
        peer.expect("CONNECT");
        peer.write("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0");
        let sub = peer.expect("SUBSCRIBE");
        assert_eq!(header(&sub, "x-since"), None);
        let id = header(&sub, "id").unwrap().to_string();
        let receipt = header(&sub, "receipt").unwrap().to_string();
        peer.write(&format!("RECEIPT\nreceipt-id:{receipt}\n\n\0"));
        for offset in 1..=5 {
            peer.write(&format!(
                "MESSAGE\nsubscription:{id}\ndestination:/topic/h\nmessage-id:{offset}\nx-offset:{offset}\nx-epoch:e7\n\n{offset}\0"
            ));
        }
        drop(peer); // the connection drops mid-stream
        let mut peer = Peer::accept(&listener);
        peer.expect("CONNECT");
        peer.write("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0");
        let sub = peer.expect("SUBSCRIBE");
        let resume = (
            header(&sub, "x-since").map(str::to_string),
            header(&sub, "x-epoch").map(str::to_string),
        );
        let receipt = header(&sub, "receipt").unwrap().to_string();
        peer.write(&format!(
            "RECEIPT\nreceipt-id:{receipt}\nx-recovered:true\n\n\0"
        ));
        // Offset 5 again (a replay overlapping what the client has), then 6..=10.
        for offset in 5..=10 {
            peer.write(&format!(
                "MESSAGE\nsubscription:{id}\ndestination:/topic/h\nmessage-id:{offset}\nx-offset:{offset}\nx-epoch:e7\n\n{offset}\0"
            ));
        }
        let (command, _) = peer.frame().expect("DISCONNECT");
        assert_eq!(command, "DISCONNECT");
        resume
    });
    let sub = client
        .subscribe_confirmed("/topic/h", AckMode::Auto, &[], WAIT)
        .unwrap();
    let mut bodies = Vec::new();
    let mut recovered = None;
    while bodies.len() < 10 {
        match wait_for(&client, "message or report", |e| {
            matches!(
                e,
                ClientEvent::Message(_) | ClientEvent::Resubscribed { .. }
            )
        }) {
            ClientEvent::Message(m) => {
                assert_eq!(m.subscription, sub);
                bodies.push(String::from_utf8(m.body.to_vec()).unwrap());
            }
            ClientEvent::Resubscribed {
                subscription,
                recovered: r,
                ..
            } => {
                assert_eq!(subscription, sub);
                recovered = Some(r);
            }
            _ => unreachable!(),
        }
    }
    let expected: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
    assert_eq!(bodies, expected, "0 gaps, 0 duplicates");
    assert_eq!(recovered, Some(true));
    client.disconnect(Duration::from_millis(300)).ok();
    let resume = peer.join().unwrap();
    assert_eq!(resume, (Some("5".into()), Some("e7".into())));
}

// ---------------------------------------------------------------------------------------------
// Against RabbitMQ (Web-STOMP on 15674, STOMP on 61613)
// ---------------------------------------------------------------------------------------------

/// RabbitMQ's address for `port`, or None (after printing why) when it is not running here;
/// in CI a missing RabbitMQ fails the test.
fn rabbitmq(port: u16) -> Option<SocketAddr> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok() {
        return Some(addr);
    }
    let why = format!("RabbitMQ is not reachable on {addr}; run `bash scripts/rabbitmq.sh ensure`");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{why} (CI=true: the client's RabbitMQ tests must run)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

fn rabbitmq_config(url: &str) -> ClientConfig {
    let mut config = client_config(url);
    config.login = Some("guest".into());
    config.passcode = Some("guest".into());
    config.host = Some("/".into());
    config
}

#[test]
fn against_rabbitmq_web_stomp_and_stomp() {
    let Some(web) = rabbitmq(15674) else { return };
    let Some(tcp) = rabbitmq(61613) else { return };
    for url in [format!("ws://{web}/ws"), tcp_url(tcp)] {
        let client = connected(rabbitmq_config(&url));
        match &drain(&client)[0] {
            ClientEvent::Connected {
                server, version, ..
            } => {
                assert!(
                    server.as_deref().unwrap_or("").starts_with("RabbitMQ"),
                    "{url}: {server:?}"
                );
                assert_eq!(version, "1.2");
            }
            other => panic!("{url}: {other:?}"),
        }
        round_trip(&client, &format!("/topic/{}", unique("wsb-client")));
        // A queue with client acks, a NACK (RabbitMQ requeues it) and a transaction.
        let queue = format!("/queue/{}", unique("wsb-client"));
        let sub = client
            .subscribe_confirmed(&queue, AckMode::ClientIndividual, &[], WAIT)
            .unwrap();
        let tx = client.begin().unwrap();
        client
            .send_with(
                &queue,
                &[("persistent", "false")],
                "in tx".into(),
                Some(tx),
                None,
            )
            .unwrap();
        client.commit(tx, Some(WAIT)).unwrap();
        let first = next_message(&client);
        assert_eq!((first.subscription, &first.body[..]), (sub, &b"in tx"[..]));
        client.nack(first.ack_id.as_deref().unwrap(), None).unwrap();
        let again = next_message(&client);
        assert_eq!(&again.body[..], b"in tx", "{url}: requeued after NACK");
        client.ack(again.ack_id.as_deref().unwrap(), None).unwrap();
        // A large compressible body (Web-STOMP may or may not agree to deflate).
        let big: String = (0..5000).map(|i| format!("{i},")).collect();
        client
            .send_with_receipt(&queue, &[], big.clone(), WAIT)
            .unwrap();
        let m = next_message(&client);
        assert_eq!(m.body, big.as_bytes());
        client.ack(m.ack_id.as_deref().unwrap(), None).unwrap();
        client.unsubscribe(sub).unwrap();
        client
            .disconnect(WAIT)
            .expect("RabbitMQ confirms DISCONNECT");
    }
    // A wrong password is refused.
    let mut config = rabbitmq_config(&tcp_url(tcp));
    config.passcode = Some("wrong".into());
    assert!(matches!(
        Client::new(config).unwrap().connect(WAIT),
        Err(Error::Refused(_) | Error::NotConnected(_))
    ));
}

#[test]
fn against_rabbitmq_heartbeats_are_negotiated() {
    let Some(web) = rabbitmq(15674) else { return };
    let mut config = rabbitmq_config(&format!("ws://{web}/ws"));
    config.heartbeat = (Duration::from_millis(200), Duration::from_millis(200));
    let client = connected(config);
    // RabbitMQ beats every 200 ms; for over five intervals the connection stays up and
    // nothing but the first Connected happens.
    let deadline = Instant::now() + Duration::from_millis(1200);
    let mut events = Vec::new();
    while Instant::now() < deadline {
        client
            .poll_events(
                &mut events,
                16,
                deadline.saturating_duration_since(Instant::now()),
            )
            .unwrap();
    }
    assert!(client.is_connected());
    assert!(
        events.iter().all(|e| matches!(
            e,
            ClientEvent::Connected {
                reconnected: false,
                ..
            }
        )),
        "{events:?}"
    );
    round_trip(&client, &format!("/topic/{}", unique("wsb-hb")));
    client.disconnect(WAIT).unwrap();
}
