//! Presence over real sockets: members of a destination by pattern or by `x-presence:true`,
//! snapshots and join/leave MESSAGEs to the subscribers that listen, counts only above the
//! event limit, the host's member list, and the SUBSCRIBE errors.

use crate::common::{self, Client, Frame, TestServer};

fn presence_server() -> TestServer {
    let mut config = common::config();
    config.broker.presence = vec!["/topic/room/*".into()];
    config.broker.presence_event_limit = 3;
    config.broker.presence_max_info = 16;
    TestServer::start_with(config)
}

async fn connected(server: &TestServer) -> Client {
    let mut c = Client::tcp(server.tcp).await;
    c.connect_as(None).await;
    c
}

/// SUBSCRIBE with a receipt: the RECEIPT's `x-presence-count` ("" when absent) and the
/// MESSAGEs queued before it (a listener's snapshot).
async fn subscribe(
    c: &mut Client,
    destination: &str,
    extra: &[(&str, &str)],
) -> (String, Vec<Frame>) {
    let (receipt, before) = c.subscribe_with_receipt(destination, extra).await;
    let count = receipt.header("x-presence-count").unwrap_or_default();
    (count.to_string(), before)
}

fn kind(f: &Frame) -> (&str, &str) {
    (f.h("x-presence"), f.h("x-presence-count"))
}

#[tokio::test]
async fn listeners_get_snapshots_joins_and_leaves_until_the_room_is_big() {
    let server = presence_server();
    let room = "/topic/room/1";
    let listen = [("x-presence", "true"), ("x-presence-info", "ann")];

    let mut ann = connected(&server).await;
    let (count, before) = subscribe(&mut ann, room, &listen).await;
    assert_eq!(count, "1");
    let [snapshot] = &before[..] else {
        panic!("{before:?}")
    };
    assert_eq!(kind(snapshot), ("snapshot", "1"));
    let ann_session = ann.session.unwrap();
    assert_eq!(
        snapshot.body_str(),
        format!(r#"[{{"session":"{ann_session}","user":null,"info":"ann"}}]"#)
    );

    // The pattern makes bob a member; he does not listen, so he is told nothing.
    let mut bob = connected(&server).await;
    assert_eq!(subscribe(&mut bob, room, &[]).await, ("2".into(), vec![]));
    let join = ann.expect("MESSAGE").await;
    assert_eq!(kind(&join), ("join", "2"));
    assert_eq!(
        join.h("x-presence-session"),
        bob.session.unwrap().to_string()
    );
    assert_eq!(join.h("subscription"), "s");

    let mut cy = connected(&server).await;
    let (count, before) = subscribe(&mut cy, room, &[("x-presence", "true")]).await;
    assert_eq!(count, "3");
    assert_eq!(
        before.iter().map(kind).collect::<Vec<_>>(),
        [("snapshot", "3")]
    );
    assert_eq!(kind(&ann.expect("MESSAGE").await), ("join", "3"));

    // A fourth member makes the room bigger than the limit: counted, not announced.
    let mut dan = connected(&server).await;
    assert_eq!(subscribe(&mut dan, room, &[]).await.0, "4");
    let members = server.presence(room).unwrap();
    assert_eq!(members.count, 4);
    assert_eq!(members.members[0].info.as_deref(), Some("ann"));
    dan.frame("DISCONNECT", &[("receipt", "bye")], "").await;
    dan.expect("RECEIPT").await;
    let deadline = std::time::Instant::now() + common::WAIT;
    while server.presence(room).unwrap().count != 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "dan's leave was not counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Back at the limit: bob's leave is announced to both listeners (not to bob).
    bob.frame("UNSUBSCRIBE", &[("id", "s")], "").await;
    bob.barrier().await;
    for listener in [&mut ann, &mut cy] {
        let leave = listener.expect("MESSAGE").await;
        assert_eq!(kind(&leave), ("leave", "2"));
        assert_eq!(
            leave.h("x-presence-session"),
            bob.session.unwrap().to_string()
        );
    }
    // Ordinary messages flow as usual, and nothing else was queued for anyone.
    server.publish(room, &[], "hello").unwrap();
    assert_eq!(ann.expect("MESSAGE").await.body_str(), "hello");
    assert!(ann.barrier().await.is_empty());
    assert_eq!(cy.expect("MESSAGE").await.body_str(), "hello");
    assert!(bob.barrier().await.is_empty(), "bob listened to nothing");
    server.finish().await;
}

#[tokio::test]
async fn presence_outside_the_patterns_is_opt_in_and_bad_requests_are_errors() {
    let server = presence_server();
    let mut plain = connected(&server).await;
    let (count, before) = subscribe(&mut plain, "/topic/lobby", &[]).await;
    assert!(count.is_empty() && before.is_empty());
    assert_eq!(server.presence("/topic/lobby").unwrap().count, 0);
    let mut member = connected(&server).await;
    let (count, _) = subscribe(&mut member, "/topic/lobby", &[("x-presence", "true")]).await;
    assert_eq!(count, "1");
    assert!(server.presence("/topic/room/*").is_err(), "a pattern");

    for (destination, headers, error) in [
        (
            "/queue/q",
            vec![("x-presence", "true")],
            "x-presence needs one topic",
        ),
        (
            "/topic/x",
            vec![("x-presence", "yes")],
            "invalid x-presence",
        ),
        (
            "/topic/x",
            vec![
                ("x-presence", "true"),
                ("x-presence-info", "far too long for 16"),
            ],
            "x-presence-info is 19 bytes",
        ),
    ] {
        let mut c = connected(&server).await;
        let mut all = vec![("destination", destination), ("id", "s")];
        all.extend(headers);
        c.frame("SUBSCRIBE", &all, "").await;
        let (frame, _) = c.expect_error_and_close().await;
        assert!(frame.h("message").contains(error), "{frame:?}");
    }
    server.finish().await;
}
