//! The host side: application handlers, user destinations and hooks, over real sockets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{TestServer, WAIT, json_field};
use tokio::sync::mpsc;
use wsbroker::{AppMessage, ConnectDecision, SessionInfo, TransportKind};

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("callback in time")
        .expect("channel open")
}

// --- application handlers ---

#[tokio::test]
async fn app_handler_sees_the_send_and_publishes_to_a_room() {
    let server = TestServer::start();
    let (tx, mut rx) = mpsc::unbounded_channel::<AppMessage>();
    server.handle_app("/app/chat", move |msg, publisher| {
        tx.send(msg.clone()).unwrap();
        let body = std::str::from_utf8(&msg.body).map_err(|e| e.to_string())?;
        let room = json_field(body, "room").ok_or("no room")?;
        let text = json_field(body, "text").ok_or("no text")?;
        publisher
            .publish(
                &format!("/topic/chat/room/{room}"),
                &[
                    ("content-type", "text/plain"),
                    ("x-user", msg.user.as_deref().unwrap_or("-")),
                ],
                text,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut room42 = server.ws_connected(None).await;
    room42.subscribe("/topic/chat/room/42", "r42").await;
    let mut room7 = server.tcp_connected(None).await;
    room7.subscribe("/topic/chat/room/7", "r7").await;

    let mut alice = server.ws_connected(Some("alice")).await;
    alice
        .send_sync(
            "/app/chat",
            &[("content-type", "application/json"), ("x-client", "test")],
            br#"{"room": 42, "text": "hello room"}"#,
        )
        .await;

    let seen = next(&mut rx).await;
    assert_eq!(seen.destination, "/app/chat");
    assert_eq!(seen.user.as_deref(), Some("alice"));
    assert_eq!(Some(seen.session), alice.session);
    assert_eq!(seen.header("x-client"), Some("test"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(&seen.body[..], br#"{"room": 42, "text": "hello room"}"#);

    let m = room42.expect("MESSAGE").await;
    assert_eq!(m.h("destination"), "/topic/chat/room/42");
    assert_eq!(m.body_str(), "hello room");
    assert_eq!(m.h("x-user"), "alice");
    room7.assert_quiet().await;
    // The app destination itself is not a broker destination.
    alice.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn app_patterns_and_prefix_boundaries() {
    let server = TestServer::start();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let tx2 = tx.clone();
    server.handle_app("/app/**", move |msg, _| {
        tx.send(format!("any {}", msg.destination)).unwrap();
        Ok(())
    });
    server.handle_app("/app/exact", move |msg, _| {
        tx2.send(format!("exact {}", msg.destination)).unwrap();
        Ok(())
    });
    let mut c = server.ws_connected(None).await;
    c.send_sync("/app/exact", &[], b"").await;
    assert_eq!(next(&mut rx).await, "exact /app/exact");
    c.send_sync("/app/a/b.c", &[], b"").await;
    assert_eq!(next(&mut rx).await, "any /app/a/b.c");
    // `/apples` is not under the `/app` prefix: it is an ordinary (broadcast) destination.
    let mut sub = server.ws_connected(None).await;
    sub.subscribe("/apples", "s").await;
    c.send_sync("/apples", &[], b"fruit").await;
    assert_eq!(sub.expect("MESSAGE").await.body_str(), "fruit");
    assert!(rx.try_recv().is_err());
    // Removing a handler.
    server.remove_app("/app/exact").unwrap();
    assert!(server.remove_app("/app/exact").is_err());
    c.send_sync("/app/exact", &[], b"").await;
    assert_eq!(next(&mut rx).await, "any /app/exact");
    server.finish().await;
}

#[tokio::test]
async fn reply_reaches_only_the_sender() {
    let server = TestServer::start();
    server.handle_app("/app/ask", |msg, publisher| {
        let n1 = publisher
            .reply("/user/queue/reply", &[("x-kind", "user")], msg.body.clone())
            .map_err(|e| e.to_string())?;
        let n2 = publisher
            .reply("/topic/x", &[("x-kind", "topic")], msg.body.clone())
            .map_err(|e| e.to_string())?;
        if n1 != 1 || n2 != 1 {
            return Err(format!("reply reached {n1} and {n2} subscriptions"));
        }
        Ok(())
    });
    let mut alice = server.ws_connected(Some("alice")).await;
    alice.subscribe("/user/queue/reply", "u").await;
    alice.subscribe("/topic/x", "t").await;
    // Another alice session and bob, subscribed the same way, get nothing.
    let mut alice2 = server.tcp_connected(Some("alice")).await;
    alice2.subscribe("/user/queue/reply", "u").await;
    alice2.subscribe("/topic/x", "t").await;
    let mut bob = server.ws_connected(Some("bob")).await;
    bob.subscribe("/user/queue/reply", "u").await;
    bob.subscribe("/topic/x", "t").await;

    alice.send_sync("/app/ask", &[], b"question").await;
    let replies = alice.messages(2).await;
    let user = replies.iter().find(|m| m.h("x-kind") == "user").unwrap();
    assert_eq!(user.h("destination"), "/user/queue/reply");
    assert_eq!(user.h("subscription"), "u");
    assert_eq!(user.body_str(), "question");
    let topic = replies.iter().find(|m| m.h("x-kind") == "topic").unwrap();
    assert_eq!(topic.h("destination"), "/topic/x");
    assert_eq!(topic.h("subscription"), "t");
    alice.assert_quiet().await;
    alice2.assert_quiet().await;
    bob.assert_quiet().await;
    server.finish().await;
}

#[tokio::test]
async fn handler_error_is_an_error_frame_to_the_sender() {
    let server = TestServer::start();
    server.handle_app("/app/fail", |_, _| Err("room is closed".into()));
    let mut c = server.ws_connected(None).await;
    c.frame(
        "SEND",
        &[("destination", "/app/fail"), ("receipt", "f")],
        "x",
    )
    .await;
    let (error, code) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("room is closed"), "{error:?}");
    assert!(error.h("message").contains("/app/fail"), "{error:?}");
    assert_eq!(error.header("receipt-id"), Some("f"));
    // 1008, the code of a poll-mode refusal too (events::app_message_refused_in_poll_mode...).
    assert_eq!(code, Some(1008));
    server.finish().await;
}

#[tokio::test]
async fn no_handler_is_an_error() {
    let server = TestServer::start();
    let mut c = server.tcp_connected(None).await;
    c.send("/app/nobody", "x").await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(
        error.h("message").contains("no application handler"),
        "{error:?}"
    );
    server.finish().await;
}

#[tokio::test]
async fn panicking_handler_is_an_error_and_the_server_keeps_serving() {
    let server = TestServer::start();
    server.handle_app("/app/panic", |_, _| panic!("handler bug"));
    server.handle_app("/app/echo", |msg, p| {
        p.reply("/topic/echo", &[], msg.body.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let mut watcher = server.ws_connected(None).await;
    watcher.subscribe("/topic/w", "w").await;
    for _ in 0..3 {
        let mut c = server.ws_connected(None).await;
        c.send("/app/panic", "boom").await;
        let (error, code) = c.expect_error_and_close().await;
        assert!(error.h("message").contains("panicked"), "{error:?}");
        assert_eq!(code, Some(1011));
    }
    // Everyone else is still served, application handlers included.
    let mut c = server.tcp_connected(None).await;
    c.subscribe("/topic/echo", "e").await;
    c.send_sync("/app/echo", &[], b"still alive").await;
    assert_eq!(c.expect("MESSAGE").await.body_str(), "still alive");
    c.send_sync("/topic/w", &[], b"w").await;
    assert_eq!(watcher.expect("MESSAGE").await.body_str(), "w");
    server.finish().await;
}

#[tokio::test]
async fn app_send_in_a_transaction_runs_at_commit() {
    let server = TestServer::start();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    server.handle_app("/app/tx", move |msg, _| {
        tx.send(String::from_utf8_lossy(&msg.body).into_owned())
            .unwrap();
        Ok(())
    });
    let mut c = server.ws_connected(None).await;
    c.request("BEGIN", &[("transaction", "t")], b"").await;
    c.request(
        "SEND",
        &[("destination", "/app/tx"), ("transaction", "t")],
        b"in tx",
    )
    .await;
    assert!(rx.try_recv().is_err(), "not before COMMIT");
    c.request("COMMIT", &[("transaction", "t")], b"").await;
    assert_eq!(next(&mut rx).await, "in tx");
    server.finish().await;
}

// --- user destinations ---

#[tokio::test]
async fn send_to_user_reaches_every_session_of_that_user_only() {
    let server = TestServer::start();
    let mut alice1 = server.ws_connected(Some("alice")).await;
    alice1.subscribe("/user/queue/x", "a1").await;
    let mut alice2 = server.tcp_connected(Some("alice")).await;
    alice2.subscribe("/user/queue/x", "a2").await;
    let mut bob = server.ws_connected(Some("bob")).await;
    bob.subscribe("/user/queue/x", "b").await;

    let n = server
        .send_to_user("alice", "/queue/x", &[("x-n", "1")], "for alice")
        .unwrap();
    assert_eq!(n, 2);
    for (c, id) in [(&mut alice1, "a1"), (&mut alice2, "a2")] {
        let m = c.expect("MESSAGE").await;
        assert_eq!(m.h("destination"), "/user/queue/x");
        assert_eq!(m.h("subscription"), id);
        assert_eq!(m.h("x-n"), "1");
        assert_eq!(m.body_str(), "for alice");
        c.assert_quiet().await;
    }
    bob.assert_quiet().await;

    // A client SEND to /user/alice/queue/x does the same.
    let mut sender = server.tcp_connected(Some("carol")).await;
    sender
        .send_sync("/user/alice/queue/x", &[], b"from carol")
        .await;
    for c in [&mut alice1, &mut alice2] {
        let m = c.expect("MESSAGE").await;
        assert_eq!(m.h("destination"), "/user/queue/x");
        assert_eq!(m.body_str(), "from carol");
    }
    bob.assert_quiet().await;
    sender.assert_quiet().await;

    // Nobody of that name: delivered to none, no error.
    assert_eq!(
        server
            .send_to_user("dave", "/queue/x", &[], "nobody")
            .unwrap(),
        0
    );
    assert!(server.send_to_user("a/b", "/queue/x", &[], "x").is_err());
    server.finish().await;
}

#[tokio::test]
async fn user_destinations_need_a_user() {
    let server = TestServer::start();
    let mut anon = server.ws_connected(None).await;
    anon.frame(
        "SUBSCRIBE",
        &[("destination", "/user/queue/x"), ("id", "1")],
        "",
    )
    .await;
    let (error, _) = anon.expect_error_and_close().await;
    assert!(
        error.h("message").contains("authenticated user"),
        "{error:?}"
    );
    // A login with a '/' is not a valid user name.
    let mut c = server.ws_client().await;
    c.frame(
        "CONNECT",
        &[("accept-version", "1.2"), ("login", "a/b")],
        "",
    )
    .await;
    let (error, code) = c.expect_error_and_close().await;
    assert!(
        error.h("message").contains("invalid user name"),
        "{error:?}"
    );
    assert_eq!(code, Some(1008));
    server.finish().await;
}

#[tokio::test]
async fn send_to_session_targets_one_session() {
    let server = TestServer::start();
    let mut a = server.ws_connected(None).await;
    a.subscribe("/topic/direct", "d").await;
    let mut b = server.ws_connected(None).await;
    b.subscribe("/topic/direct", "d").await;
    let n = server
        .send_to_session(a.session.unwrap(), "/topic/direct", &[], "just a")
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(a.expect("MESSAGE").await.body_str(), "just a");
    b.assert_quiet().await;
    assert!(
        server
            .send_to_session(999_999, "/topic/direct", &[], "x")
            .is_err()
    );
    // And disconnecting a session from the host.
    server
        .disconnect_session(b.session.unwrap(), "kicked")
        .unwrap();
    let (error, code) = b.expect_error_and_close().await;
    assert_eq!(error.h("message"), "kicked");
    assert_eq!(code, Some(1008));
    server.finish().await;
}

// --- hooks ---

#[tokio::test]
async fn connect_hook_rejects_bad_passcodes() {
    let server = TestServer::start();
    server.on_connect(|req| {
        assert_eq!(req.transport, TransportKind::WebSocket);
        assert!(req.remote_addr.is_some());
        match (req.login.as_deref(), req.passcode.as_deref()) {
            (Some(login), Some("secret")) => ConnectDecision::Accept {
                user: Some(format!("user-{login}")),
            },
            _ => ConnectDecision::Reject("bad credentials".into()),
        }
    });
    let mut bad = server.ws_client().await;
    bad.frame(
        "CONNECT",
        &[
            ("accept-version", "1.2"),
            ("login", "eve"),
            ("passcode", "guess"),
        ],
        "",
    )
    .await;
    let (error, code) = bad.expect_error_and_close().await;
    assert_eq!(error.h("message"), "bad credentials");
    assert_eq!(code, Some(1008));
    assert_eq!(server.stats().sessions, 0);

    let mut good = server.ws_client().await;
    let connected = good
        .connect_with(&[("login", "ann"), ("passcode", "secret")])
        .await;
    assert_eq!(connected.h("user-name"), "user-ann");
    // The hook's user name is the one user destinations use.
    good.subscribe("/user/queue/in", "in").await;
    server
        .send_to_user("user-ann", "/queue/in", &[], "hi")
        .unwrap();
    assert_eq!(good.expect("MESSAGE").await.body_str(), "hi");
    server.finish().await;
}

#[tokio::test]
async fn panicking_connect_hook_rejects() {
    let server = TestServer::start();
    server.on_connect(|_| panic!("hook bug"));
    let mut c = server.tcp_client().await;
    c.frame("CONNECT", &[("accept-version", "1.2")], "").await;
    let (error, _) = c.expect_error_and_close().await;
    assert!(error.h("message").contains("connect hook"), "{error:?}");
    server.finish().await;
}

#[tokio::test]
async fn subscribe_hook_refuses_a_topic() {
    let server = TestServer::start();
    server.on_subscribe(|req| {
        if req.destination.starts_with("/topic/secret") && req.user.as_deref() != Some("admin") {
            Err(format!("{} is not for you", req.destination))
        } else {
            Ok(())
        }
    });
    let mut admin = server.ws_connected(Some("admin")).await;
    admin.subscribe("/topic/secret", "s").await;
    let mut c = server.ws_connected(Some("joe")).await;
    c.subscribe("/topic/public", "p").await;
    c.frame(
        "SUBSCRIBE",
        &[
            ("destination", "/topic/secret"),
            ("id", "s"),
            ("receipt", "sub"),
        ],
        "",
    )
    .await;
    let (error, code) = c.expect_error_and_close().await;
    assert!(
        error.h("message").contains("/topic/secret is not for you"),
        "{error:?}"
    );
    assert_eq!(error.header("receipt-id"), Some("sub"));
    assert_eq!(code, Some(1008));
    // The refused session's subscriptions are gone; the admin's works.
    server
        .wait_stats("joe gone", |s| s.sessions == 1 && s.subscriptions == 1)
        .await;
    server.publish("/topic/secret", &[], "classified").unwrap();
    assert_eq!(admin.expect("MESSAGE").await.body_str(), "classified");
    server.finish().await;
}

#[tokio::test]
async fn disconnect_hook_runs_once_per_session() {
    let server = TestServer::start();
    let seen: Arc<Mutex<Vec<SessionInfo>>> = Arc::default();
    let log = seen.clone();
    server.on_disconnect(move |info| log.lock().unwrap().push(info.clone()));

    let a = server.ws_connected(Some("alice")).await;
    let b = server.tcp_connected(Some("bob")).await;
    let mut c = server.ws_connected(None).await;
    let mut never = server.ws_client().await; // never CONNECTs: no session, no hook
    let sessions = (a.session.unwrap(), b.session.unwrap(), c.session.unwrap());

    a.disconnect().await;
    b.drop_connection().await;
    c.write_raw(b"NOPE\n\n\0").await;
    c.expect_error_and_close().await;
    drop(c);
    never.write_raw(b"SEND\n\n\0").await;
    never.expect_error_and_close().await;

    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.lock().unwrap().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "hooks: {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(never);
    server.stop().await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "exactly once each: {seen:?}");
    let find = |id: u64| {
        seen.iter()
            .find(|i| i.session == id)
            .expect("hook for session")
    };
    assert_eq!(find(sessions.0).user.as_deref(), Some("alice"));
    assert_eq!(find(sessions.0).transport, TransportKind::WebSocket);
    assert_eq!(find(sessions.1).user.as_deref(), Some("bob"));
    assert_eq!(find(sessions.1).transport, TransportKind::Tcp);
    assert_eq!(find(sessions.2).user, None);
}

#[tokio::test]
async fn disconnect_hook_runs_for_sessions_closed_by_stop() {
    let server = TestServer::start();
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let log = seen.clone();
    server.on_disconnect(move |info| log.lock().unwrap().push(info.user.clone()));
    let _a = server.ws_connected(Some("alice")).await;
    let _b = server.tcp_connected(Some("bob")).await;
    server.finish().await;
    let mut users = seen.lock().unwrap().clone();
    users.sort();
    assert_eq!(users, vec![Some("alice".into()), Some("bob".into())]);
}

#[tokio::test]
async fn host_subscription_sees_client_sends() {
    let server = TestServer::start();
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String, Option<u64>)>();
    let id = server
        .subscribe("/topic/**", move |m| {
            tx.send((
                m.destination().to_string(),
                String::from_utf8_lossy(m.body()).into_owned(),
                m.sender(),
            ))
            .unwrap();
        })
        .unwrap();
    let (qtx, mut qrx) = mpsc::unbounded_channel::<String>();
    server
        .subscribe("/queue/jobs", move |m| {
            qtx.send(String::from_utf8_lossy(m.body()).into_owned())
                .unwrap();
        })
        .unwrap();
    let mut c = server.ws_connected(None).await;
    c.send_sync("/topic/a/b", &[], b"one").await;
    c.send_sync("/other", &[], b"not matched").await;
    server.publish("/topic/host", &[], "two").unwrap();
    assert_eq!(
        next(&mut rx).await,
        ("/topic/a/b".into(), "one".into(), c.session)
    );
    assert_eq!(
        next(&mut rx).await,
        ("/topic/host".into(), "two".into(), None)
    );

    // Host subscriptions see queue messages without consuming them.
    c.send_sync("/queue/jobs", &[], b"job").await;
    assert_eq!(next(&mut qrx).await, "job");
    c.subscribe("/queue/jobs", "j").await;
    assert_eq!(c.expect("MESSAGE").await.body_str(), "job");

    server.unsubscribe(id).unwrap();
    assert!(server.unsubscribe(id).is_err());
    c.send_sync("/topic/a/b", &[], b"after").await;
    assert!(rx.try_recv().is_err(), "no callback after unsubscribe");
    server.finish().await;
}
