//! Event delivery: the polled queue and the direct callback, with connect and subscribe
//! decisions answered later by the host.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{TestServer, WAIT, config};
use wsbroker::Server;
use wsbroker::{Event, EventCallback, EventQueueConfig};

fn start_polled(
    queue: EventQueueConfig,
    tweak: impl FnOnce(&mut wsbroker::ServerConfig),
) -> TestServer {
    let mut cfg = config();
    tweak(&mut cfg);
    let server = Server::new(cfg).unwrap();
    server.enable_events(queue).unwrap();
    server.start().unwrap();
    TestServer::from_server(server)
}

fn deferring() -> EventQueueConfig {
    EventQueueConfig {
        defer_connect: true,
        ..Default::default()
    }
}

/// Polls (off the test runtime) until an event matching `pick` arrives; other events are kept.
async fn wait_event<T: Send + 'static>(
    server: &Arc<Server>,
    pick: impl Fn(&Event) -> Option<T> + Send + 'static,
) -> T {
    let server = server.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        let mut events = Vec::new();
        while std::time::Instant::now() < deadline {
            let from = events.len();
            server
                .poll_events(&mut events, 64, Duration::from_millis(50))
                .unwrap();
            if let Some(found) = events[from..].iter().find_map(&pick) {
                return found;
            }
        }
        panic!("event not seen within {WAIT:?}; saw {events:?}");
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn deferred_connect_accepted_later_as_a_user() {
    let ts = start_polled(deferring(), |_| {});
    let mut client = ts.ws_client().await;
    client
        .frame(
            "CONNECT",
            &[
                ("accept-version", "1.2"),
                ("host", "h"),
                ("login", "al"),
                ("passcode", "pw"),
            ],
            "",
        )
        .await;
    let (session, login, passcode) = wait_event(&ts.server, |e| match e {
        Event::Connect(req) => Some((req.session, req.login.clone(), req.passcode.clone())),
        _ => None,
    })
    .await;
    assert_eq!(login.as_deref(), Some("al"));
    assert_eq!(passcode.as_deref(), Some("pw"));
    ts.server.accept_connect(session, Some("alice")).unwrap();
    let connected = client.expect("CONNECTED").await;
    assert_eq!(connected.header("user-name"), Some("alice"));
    assert_eq!(
        connected.header("session"),
        Some(session.to_string().as_str())
    );
    // A second answer finds nobody waiting.
    assert!(matches!(
        ts.server.accept_connect(session, None),
        Err(wsbroker::Error::NotFound(_))
    ));
    ts.finish().await;
}

#[tokio::test]
async fn deferred_connect_rejected_and_timed_out() {
    let ts = start_polled(deferring(), |c| {
        c.decision_timeout = Duration::from_millis(300);
    });
    let mut rejected = ts.ws_client().await;
    rejected
        .frame("CONNECT", &[("accept-version", "1.2"), ("host", "h")], "")
        .await;
    let session = wait_event(&ts.server, |e| match e {
        Event::Connect(req) => Some(req.session),
        _ => None,
    })
    .await;
    ts.server
        .reject_connect(session, "bad credentials")
        .unwrap();
    let (error, _) = rejected.expect_error_and_close().await;
    assert_eq!(error.header("message"), Some("bad credentials"));

    let mut ignored = ts.ws_client().await;
    ignored
        .frame("CONNECT", &[("accept-version", "1.2"), ("host", "h")], "")
        .await;
    let (error, _) = ignored.expect_error_and_close().await;
    assert!(
        error.h("message").contains("no decision"),
        "{:?}",
        error.header("message")
    );
    ts.finish().await;
}

#[tokio::test]
async fn app_message_refused_in_poll_mode_closes_with_1008_as_in_callback_mode() {
    let queue = EventQueueConfig {
        defer_connect: false,
        ..Default::default()
    };
    let ts = start_polled(queue, |_| {});
    ts.server.route_app_to_events("/app/**").unwrap();
    let mut client = ts.ws_connected(None).await;
    client.send("/app/fail", "x").await;
    let app = wait_event(&ts.server, |e| match e {
        Event::AppMessage(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    ts.server
        .disconnect_session(app.session, "room is closed")
        .unwrap();
    let (error, code) = client.expect_error_and_close().await;
    assert!(error.h("message").contains("room is closed"), "{error:?}");
    // The same code as a refusal by a handler (app::handler_error_is_an_error_frame_to_the_sender).
    assert_eq!(code, Some(1008));
    ts.finish().await;
}

#[tokio::test]
async fn app_messages_host_subscriptions_and_disconnects_arrive_as_events() {
    let queue = EventQueueConfig {
        defer_connect: false,
        ..Default::default()
    };
    let ts = start_polled(queue, |_| {});
    ts.server.route_app_to_events("/app/**").unwrap();
    let tap = ts.server.subscribe_events("/topic/**").unwrap();
    let mut client = ts.ws_connected(Some("bob")).await;
    client.subscribe("/topic/reply", "s1").await;
    client
        .send_sync("/app/chat", &[("x-k", "v")], b"{\"chatRoomId\":5}")
        .await;
    let app = wait_event(&ts.server, |e| match e {
        Event::AppMessage(m) => Some(m.clone()),
        _ => None,
    })
    .await;
    assert_eq!(app.destination, "/app/chat");
    assert_eq!(app.user.as_deref(), Some("bob"));
    assert_eq!(app.header("x-k"), Some("v"));
    assert_eq!(&app.body[..], b"{\"chatRoomId\":5}");
    // The host answers the sender only.
    ts.server
        .send_to_session(app.session, "/topic/reply", &[], "pong")
        .unwrap();
    let reply = client.expect("MESSAGE").await;
    assert_eq!(reply.body_str(), "pong");
    let (sub, body) = wait_event(&ts.server, |e| match e {
        Event::Message {
            subscription,
            message,
        } => Some((*subscription, message.body().clone())),
        _ => None,
    })
    .await;
    assert_eq!(sub, tap.0);
    assert_eq!(&body[..], b"pong");
    client.disconnect().await;
    let (session, user) = wait_event(&ts.server, |e| match e {
        Event::Disconnect(info) => Some((info.session, info.user.clone())),
        _ => None,
    })
    .await;
    assert_eq!(session, app.session);
    assert_eq!(user.as_deref(), Some("bob"));
    ts.finish().await;
}

#[tokio::test]
async fn deferred_subscribe_refused() {
    let queue = EventQueueConfig {
        defer_connect: false,
        defer_subscribe: true,
        ..Default::default()
    };
    let ts = start_polled(queue, |_| {});
    let mut client = ts.ws_connected(Some("eve")).await;
    client
        .frame(
            "SUBSCRIBE",
            &[("id", "1"), ("destination", "/topic/secret")],
            "",
        )
        .await;
    let (session, destination) = wait_event(&ts.server, |e| match e {
        Event::Subscribe(req) => Some((req.session, req.destination.clone())),
        _ => None,
    })
    .await;
    assert_eq!(destination, "/topic/secret");
    ts.server
        .answer_subscribe(session, Err("forbidden topic".into()))
        .unwrap();
    let (error, _) = client.expect_error_and_close().await;
    assert!(error.h("message").contains("forbidden topic"));
    ts.finish().await;
}

#[tokio::test]
async fn callback_delivery_answers_from_inside_the_callback() {
    let server = Arc::new(Server::new(config()).unwrap());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let weak = Arc::downgrade(&server);
    let log = seen.clone();
    server
        .enable_event_callback(EventCallback {
            callback: Arc::new(move |event| {
                let Some(server) = weak.upgrade() else { return };
                match event {
                    Event::Connect(req) => {
                        log.lock().unwrap().push(format!("connect {:?}", req.login));
                        if req.passcode.as_deref() == Some("secret") {
                            server
                                .accept_connect(req.session, req.login.as_deref())
                                .unwrap();
                        } else {
                            server
                                .reject_connect(req.session, "wrong passcode")
                                .unwrap();
                        }
                    }
                    Event::Disconnect(info) => {
                        log.lock().unwrap().push(format!("bye {:?}", info.user));
                    }
                    _ => {}
                }
            }),
            defer_connect: true,
            defer_subscribe: false,
        })
        .unwrap();
    server.start().unwrap();
    let ts = TestServer::from_arc(server);
    let mut good = ts.ws_client().await;
    let connected = good
        .connect_with(&[("login", "carol"), ("passcode", "secret")])
        .await;
    assert_eq!(connected.header("user-name"), Some("carol"));
    let mut bad = ts.ws_client().await;
    bad.frame(
        "CONNECT",
        &[
            ("accept-version", "1.2"),
            ("host", "h"),
            ("login", "mallory"),
            ("passcode", "guess"),
        ],
        "",
    )
    .await;
    let (error, _) = bad.expect_error_and_close().await;
    assert_eq!(error.header("message"), Some("wrong passcode"));
    good.disconnect().await;
    ts.wait_stats("sessions to end", |s| s.sessions == 0).await;
    // The disconnect event runs on a callback thread, after the session is gone: wait for it.
    let deadline = std::time::Instant::now() + WAIT;
    let bye = "bye Some(\"carol\")".to_string();
    while !seen.lock().unwrap().contains(&bye) {
        assert!(
            std::time::Instant::now() < deadline,
            "no disconnect event: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let log = seen.lock().unwrap().clone();
    assert!(
        log.contains(&"connect Some(\"carol\")".to_string()),
        "{log:?}"
    );
    ts.finish().await;
}
