//! Cluster mode against real engines: several nodes in this process share one destination
//! space through a private Redis or NATS server (engine_process.rs), subscribers on one node,
//! publishers on another. Each test uses its own engine prefix, so tests sharing nothing run
//! side by side. Every wait is bounded; readiness is read off the nodes' cluster figures (the
//! engine confirmed their subscriptions), never slept for.

use std::time::Duration;

use crate::common::{Client, Frame, TestServer, WAIT, config};
use crate::engine_process::{EngineProcess, Kind, RedisCluster, RedisSentinel};
use crate::support::unique;
use wsbroker::{
    ClusterConfig, ClusterEngine, ClusterStats, Event, EventQueueConfig, HistoryRule, Server,
};

/// Upper bound of an engine restart and of the nodes' reconnection after it (their backoff
/// tops out at 5 s).
const OUTAGE_WAIT: Duration = Duration::from_secs(30);

/// A node of the cluster on `engine` under `prefix`, with events on and `history` rules.
fn node(engine: &EngineProcess, prefix: &str, history: &[&str]) -> TestServer {
    node_on(engine.engine(), prefix, history)
}

fn node_on(engine: ClusterEngine, prefix: &str, history: &[&str]) -> TestServer {
    let mut c = config();
    c.cluster = Some({
        let mut cluster = ClusterConfig::new(engine);
        cluster.prefix = prefix.into();
        cluster
    });
    for rule in history {
        c.broker.history.push(HistoryRule::parse(rule).unwrap());
    }
    let server = Server::new(c).expect("valid cluster config");
    server.enable_events(EventQueueConfig::default()).unwrap();
    server.start().expect("node starts");
    TestServer::from_server(server)
}

fn stats(node: &TestServer) -> ClusterStats {
    node.server.cluster_stats().expect("a cluster node")
}

/// Waits (bounded by `limit`) until the node's cluster figures satisfy `cond`.
async fn wait_cluster(
    node: &TestServer,
    what: &str,
    limit: Duration,
    cond: impl Fn(&ClusterStats) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let s = stats(node);
        if cond(&s) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}; cluster figures {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the node is connected and the engine holds at least `subscriptions` of its.
async fn wait_subscribed(node: &TestServer, subscriptions: u64) {
    wait_cluster(node, "engine subscriptions", WAIT, |s| {
        s.available && s.engine_subscriptions >= subscriptions
    })
    .await;
}

/// Waits (bounded) for the next backplane availability event of `node`. Events are taken
/// one at a time, so an availability event right behind another stays for the next call.
async fn next_availability(node: &TestServer, limit: Duration) -> Event {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut events = Vec::new();
        node.server
            .poll_events(&mut events, 1, Duration::ZERO)
            .unwrap();
        match events.pop() {
            Some(event @ (Event::BackplaneAvailable | Event::BackplaneUnavailable { .. })) => {
                return event;
            }
            Some(_) => continue, // another kind of event: look at the next one at once
            None => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no backplane availability event within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The bodies of `n` MESSAGE frames, in arrival order.
async fn bodies(client: &mut Client, n: usize) -> Vec<String> {
    client
        .messages(n)
        .await
        .iter()
        .map(|m| m.body_str().to_string())
        .collect()
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Three nodes: exact, wildcard and `/user` subscribers on different nodes than their
/// publishers, host publishes and `send_to_user` from any node. Each subscriber gets each
/// publication once (none twice through an exact and a pattern subscription, none echoed back
/// to the publishing node), in publish order.
async fn fan_out_across_nodes(kind: Kind) {
    let Some(engine) = EngineProcess::start(kind) else {
        return;
    };
    let prefix = unique("fanout");
    let (a, b, c) = (
        node(&engine, &prefix, &[]),
        node(&engine, &prefix, &[]),
        node(&engine, &prefix, &[]),
    );
    let mut exact_on_a = a.ws_connected(None).await;
    exact_on_a.subscribe("/topic/chat.room1", "s").await;
    let mut pattern_on_b = b.ws_connected(None).await;
    pattern_on_b.subscribe("/topic/chat.*", "s").await;
    // Also exact on the publisher's node: it must not get an echo from the engine.
    let mut exact_on_b = b.tcp_connected(None).await;
    exact_on_b.subscribe("/topic/chat.room1", "s").await;
    let mut alice_on_c = c.ws_connected(Some("alice")).await;
    alice_on_c.subscribe("/user/queue/inbox", "s").await;
    let mut alice_on_a = a.tcp_connected(Some("alice")).await;
    alice_on_a.subscribe("/user/queue/inbox", "s").await;
    wait_subscribed(&a, 2).await;
    wait_subscribed(&b, 2).await;
    wait_subscribed(&c, 1).await;

    const N: usize = 200;
    let mut publisher = b.tcp_connected(None).await;
    for i in 0..N {
        publisher.send("/topic/chat.room1", format!("m{i}")).await;
    }
    publisher
        .send_sync("/topic/chat.room2", &[], b"other")
        .await;
    assert_eq!(bodies(&mut exact_on_a, N).await, numbered("m", 0..N));
    let mut expected = numbered("m", 0..N);
    expected.push("other".into());
    assert_eq!(bodies(&mut pattern_on_b, N + 1).await, expected);
    assert_eq!(bodies(&mut exact_on_b, N).await, numbered("m", 0..N));

    // `/user/alice/...` sent on B reaches alice's sessions on A and C.
    publisher
        .send_sync("/user/alice/queue/inbox", &[], b"to alice")
        .await;
    // The host API of any node reaches the other nodes' subscribers.
    b.server
        .send_to_user("alice", "/queue/inbox", &[], "from host")
        .unwrap();
    c.server
        .publish("/topic/chat.room1", &[("k", "v")], "host publish")
        .unwrap();
    for alice in [&mut alice_on_c, &mut alice_on_a] {
        assert_eq!(bodies(alice, 2).await, ["to alice", "from host"]);
    }
    let from_host = exact_on_a.expect("MESSAGE").await;
    assert_eq!(from_host.body_str(), "host publish");
    assert_eq!(from_host.header("k"), Some("v"));
    assert_eq!(from_host.h("destination"), "/topic/chat.room1");
    assert_eq!(bodies(&mut pattern_on_b, 1).await, ["host publish"]);
    assert_eq!(bodies(&mut exact_on_b, 1).await, ["host publish"]);

    // Nothing more, anywhere: no duplicates.
    for client in [
        &mut exact_on_a,
        &mut pattern_on_b,
        &mut exact_on_b,
        &mut alice_on_c,
        &mut alice_on_a,
    ] {
        client.assert_quiet().await;
    }
    let (sa, sb, sc) = (stats(&a), stats(&b), stats(&c));
    assert!(sb.published >= N as u64 + 2, "{sb:?}");
    assert!(sa.received >= N as u64 + 2, "{sa:?}");
    assert!(sc.received >= 2, "{sc:?}");
    assert_eq!(sb.dropped, 0, "{sb:?}");

    // The last local subscriber leaving gives the engine subscription back.
    exact_on_a.request("UNSUBSCRIBE", &[("id", "s")], b"").await;
    wait_cluster(&a, "subscription given back", WAIT, |s| {
        s.engine_subscriptions == 1
    })
    .await;
    for node in [&a, &b, &c] {
        node.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_fans_out_across_nodes() {
    fan_out_across_nodes(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_fans_out_across_nodes() {
    fan_out_across_nodes(Kind::Nats).await;
}

/// A SUBSCRIBE's RECEIPT means the subscription is in place cluster-wide: a publication made
/// on another node right after it arrives (no waiting for the engine's figures).
async fn receipt_means_subscribed_everywhere(kind: Kind) {
    let Some(engine) = EngineProcess::start(kind) else {
        return;
    };
    let prefix = unique("receipt");
    let (a, b) = (node(&engine, &prefix, &[]), node(&engine, &prefix, &[]));
    wait_subscribed(&a, 0).await;
    wait_subscribed(&b, 0).await;
    let mut subscriber = a.ws_connected(None).await;
    let mut publisher = b.tcp_connected(None).await;
    // Fresh destinations and patterns, each a new engine subscription.
    for i in 0..25 {
        let (destination, subscription) = if i % 2 == 0 {
            let d = format!("/topic/fresh.{i}");
            (d.clone(), d)
        } else {
            (format!("/topic/wild{i}.x"), format!("/topic/wild{i}.*"))
        };
        let id = format!("s{i}");
        subscriber.subscribe(&subscription, &id).await;
        publisher.send(&destination, format!("m{i}")).await;
        let message = subscriber.expect("MESSAGE").await;
        assert_eq!(message.body_str(), format!("m{i}"));
        assert_eq!(message.h("subscription"), id);
    }
    subscriber.assert_quiet().await;
    a.finish().await;
    b.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscribe_receipt_means_subscribed_everywhere() {
    receipt_means_subscribed_everywhere(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_subscribe_receipt_means_subscribed_everywhere() {
    receipt_means_subscribed_everywhere(Kind::Nats).await;
}

/// A Redis Cluster as the engine: nodes of ours connected to different Redis nodes share
/// publications (classic pub/sub crosses the cluster bus), and a server list whose first
/// server is down moves on to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_nodes_share_publications() {
    let Some(redis) = RedisCluster::start() else {
        return;
    };
    let prefix = unique("rcluster");
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = node_on(
        ClusterEngine::Redis(format!("redis://127.0.0.1:{dead}/,{}", redis.urls(0))),
        &prefix,
        &[],
    );
    let b = node_on(ClusterEngine::Redis(redis.urls(1)), &prefix, &[]);
    // A tried the dead server first, said so, and went on to the next one.
    match next_availability(&a, WAIT).await {
        Event::BackplaneUnavailable { reason } => {
            assert!(reason.contains(&dead.to_string()), "{reason}");
        }
        other => panic!("expected BackplaneUnavailable first, got {other:?}"),
    }
    assert!(matches!(
        next_availability(&a, WAIT).await,
        Event::BackplaneAvailable
    ));
    let mut on_a = a.ws_connected(None).await;
    on_a.subscribe("/topic/rc.*", "s").await;
    let mut on_b = b.ws_connected(None).await;
    on_b.subscribe("/topic/rc.x", "s").await;
    wait_subscribed(&a, 1).await;
    wait_subscribed(&b, 1).await;
    let mut from_b = b.tcp_connected(None).await;
    let mut from_a = a.tcp_connected(None).await;
    const N: usize = 100;
    for i in 0..N {
        from_b.send("/topic/rc.x", format!("b{i}")).await;
    }
    assert_eq!(bodies(&mut on_a, N).await, numbered("b", 0..N));
    for i in 0..N {
        from_a.send("/topic/rc.x", format!("a{i}")).await;
    }
    let mut expected = numbered("b", 0..N);
    expected.extend(numbered("a", 0..N));
    assert_eq!(bodies(&mut on_b, 2 * N).await, expected);
    assert_eq!(bodies(&mut on_a, N).await, numbered("a", 0..N));
    on_a.assert_quiet().await;
    on_b.assert_quiet().await;
    assert!(stats(&a).received >= N as u64 && stats(&b).received >= N as u64);
    a.finish().await;
    b.finish().await;
    drop(redis);
}

/// Redis Sentinel: the nodes find the master through the sentinel, and when the master dies
/// they report the outage, reconnect to the replica the sentinel promotes, and carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_failover_moves_the_nodes_to_the_new_master() {
    let Some(mut redis) = RedisSentinel::start() else {
        return;
    };
    let prefix = unique("sentinel");
    let url = redis.url();
    let (a, b) = (
        node_on(ClusterEngine::Redis(url.clone()), &prefix, &[]),
        node_on(ClusterEngine::Redis(url), &prefix, &[]),
    );
    for n in [&a, &b] {
        let event = next_availability(n, WAIT).await;
        assert!(matches!(event, Event::BackplaneAvailable), "{event:?}");
    }
    let mut on_a = a.ws_connected(None).await;
    on_a.subscribe("/topic/ha", "s").await;
    let mut publisher = b.tcp_connected(None).await;
    publisher.send("/topic/ha", "before").await;
    assert_eq!(bodies(&mut on_a, 1).await, ["before"]);

    redis.master.kill();
    for n in [&a, &b] {
        let event = next_availability(n, OUTAGE_WAIT).await;
        assert!(
            matches!(event, Event::BackplaneUnavailable { .. }),
            "{event:?}"
        );
        let back = tokio::time::timeout(OUTAGE_WAIT, next_availability(n, OUTAGE_WAIT * 2)).await;
        assert!(
            matches!(back, Ok(Event::BackplaneAvailable)),
            "{back:?}; {:?}; sentinel log:\n{}",
            stats(n),
            redis.sentinel.log_tail(30)
        );
    }
    assert_eq!(
        redis.replica_role(),
        "master",
        "the sentinel promoted the replica"
    );
    wait_subscribed(&a, 1).await;
    wait_subscribed(&b, 0).await;
    publisher.send("/topic/ha", "after").await;
    assert_eq!(bodies(&mut on_a, 1).await, ["after"]);
    on_a.assert_quiet().await;
    assert!(stats(&a).reconnects >= 1);
    a.finish().await;
    b.finish().await;
}

/// A node that is its own process (the `wsbroker` binary in cluster mode), killed with
/// SIGKILL when dropped.
struct NodeProcess {
    child: std::process::Child,
    ws: std::net::SocketAddr,
}

impl NodeProcess {
    fn start(engine: &EngineProcess, prefix: &str) -> NodeProcess {
        use std::io::BufRead;
        let ClusterEngine::Redis(url) = engine.engine() else {
            panic!("a Redis engine")
        };
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wsbroker"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--heartbeat",
                "0",
                "--log",
                "warn",
            ])
            .args(["--cluster-redis", &url, "--cluster-prefix", prefix])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start wsbroker");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the listening line, then keeps draining so the child never blocks on it.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("wsbroker listening websocket ws://") {
                    let _ = tx.send(url.trim_end_matches("/ws").to_string());
                }
            }
        });
        let address = rx.recv_timeout(WAIT).expect("the node prints its address");
        NodeProcess {
            child,
            ws: address.parse().expect("a socket address"),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Subscribers of `channel` on `engine`, as Redis counts them (`PUBSUB NUMSUB`).
fn redis_subscribers(engine: &EngineProcess, channel: &str) -> u64 {
    let out = std::process::Command::new(engine.redis_cli())
        .args([
            "-p",
            &engine.port().to_string(),
            "pubsub",
            "numsub",
            channel,
        ])
        .output()
        .expect("redis-cli pubsub numsub");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits (bounded) until Redis counts `n` subscribers of `channel`.
async fn wait_redis_subscribers(engine: &EngineProcess, channel: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while redis_subscribers(engine, channel) != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis does not count {n} subscribers of {channel}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A node killed (SIGKILL) in the middle of a stream: the other nodes keep every
/// publication, in order; Redis drops the dead node's subscription with its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_leaves_the_others_whole() {
    let Some(engine) = EngineProcess::start(Kind::Redis) else {
        return;
    };
    let prefix = unique("nodekill");
    let channel = format!("{prefix}:/topic/stream");
    let mut doomed = NodeProcess::start(&engine, &prefix);
    let (b, c) = (node(&engine, &prefix, &[]), node(&engine, &prefix, &[]));
    let mut on_doomed = Client::ws(doomed.ws).await;
    on_doomed.connect_as(None).await;
    on_doomed.subscribe("/topic/stream", "s").await;
    let mut on_b = b.ws_connected(None).await;
    on_b.subscribe("/topic/stream", "s").await;
    wait_redis_subscribers(&engine, &channel, 2).await;

    const N: usize = 400;
    let mut publisher = c.tcp_connected(None).await;
    for i in 0..N / 2 {
        publisher.send("/topic/stream", format!("m{i}")).await;
    }
    doomed.kill();
    for i in N / 2..N {
        publisher.send("/topic/stream", format!("m{i}")).await;
    }
    publisher.barrier().await;
    assert_eq!(bodies(&mut on_b, N).await, numbered("m", 0..N));
    on_b.assert_quiet().await;
    // The killed node's subscriber got a prefix of the stream, in order.
    let (frames, _) = on_doomed.until_closed().await;
    let got: Vec<String> = frames
        .iter()
        .filter(|f| f.command == "MESSAGE")
        .map(|f| f.body_str().to_string())
        .collect();
    assert_eq!(got, numbered("m", 0..got.len()));
    wait_redis_subscribers(&engine, &channel, 1).await;
    assert_eq!(stats(&c).dropped, 0);
    b.finish().await;
    c.finish().await;
}

/// The engine killed and started again mid-stream: the nodes keep serving their own clients,
/// report the outage and the return, count what the other nodes could not get, subscribe again
/// and carry on in order; histories start a new epoch, so a resume there is not claimed
/// complete.
async fn engine_restart(kind: Kind) {
    let Some(mut engine) = EngineProcess::start(kind) else {
        return;
    };
    let prefix = unique("restart");
    let history = ["/topic/feed=100"];
    let (a, b) = (
        node(&engine, &prefix, &history),
        node(&engine, &prefix, &history),
    );
    for n in [&a, &b] {
        assert!(matches!(
            next_availability(n, WAIT).await,
            Event::BackplaneAvailable
        ));
    }
    let mut on_a = a.ws_connected(None).await;
    on_a.subscribe("/topic/feed", "s").await;
    let mut on_b = b.ws_connected(None).await;
    on_b.subscribe("/topic/feed", "s").await;
    wait_subscribed(&a, 1).await;
    wait_subscribed(&b, 1).await;

    let mut publisher = b.tcp_connected(None).await;
    for i in 0..10 {
        publisher.send("/topic/feed", format!("before{i}")).await;
    }
    let before = on_a.messages(10).await;
    assert_eq!(
        before.iter().map(Frame::body_str).collect::<Vec<_>>(),
        numbered("before", 0..10)
    );
    let epoch_before = before[9].h("x-epoch").to_string();
    assert_eq!(bodies(&mut on_b, 10).await, numbered("before", 0..10));

    engine.kill();
    for n in [&a, &b] {
        match next_availability(n, OUTAGE_WAIT).await {
            Event::BackplaneUnavailable { reason } => assert!(!reason.is_empty()),
            other => panic!("expected BackplaneUnavailable, got {other:?}"),
        }
        assert!(!stats(n).available);
    }
    // Local traffic goes on; what the other node misses is counted.
    let dropped_before = stats(&b).dropped;
    for i in 0..5 {
        publisher.send("/topic/feed", format!("gap{i}")).await;
    }
    assert_eq!(bodies(&mut on_b, 5).await, numbered("gap", 0..5));
    assert!(stats(&b).dropped >= dropped_before + 5, "{:?}", stats(&b));

    engine.resume();
    for n in [&a, &b] {
        let event = next_availability(n, OUTAGE_WAIT).await;
        assert!(matches!(event, Event::BackplaneAvailable), "{event:?}");
    }
    wait_subscribed(&a, 1).await;
    wait_subscribed(&b, 1).await;
    assert!(stats(&a).reconnects >= 1, "{:?}", stats(&a));
    for i in 0..10 {
        publisher.send("/topic/feed", format!("after{i}")).await;
    }
    let after = on_a.messages(10).await;
    assert_eq!(
        after.iter().map(Frame::body_str).collect::<Vec<_>>(),
        numbered("after", 0..10),
        "A missed the gap, and nothing after it"
    );
    assert_ne!(
        after[0].h("x-epoch"),
        epoch_before,
        "A's history lost the gap: a new epoch"
    );
    assert_eq!(after[0].h("x-offset"), "1");
    assert_eq!(bodies(&mut on_b, 10).await, numbered("after", 0..10));

    // A client that resumes on A from before the outage is told the replay is not complete.
    let mut resumer = a.ws_connected(None).await;
    let (receipt, replayed) = resumer
        .subscribe_with_receipt(
            "/topic/feed",
            &[("x-since", "10"), ("x-epoch", &epoch_before)],
        )
        .await;
    assert_eq!(receipt.header("x-recovered"), Some("false"), "{receipt:?}");
    assert_eq!(
        replayed.iter().map(Frame::body_str).collect::<Vec<_>>(),
        numbered("after", 0..10)
    );
    for n in [&a, &b] {
        n.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_stream_is_reported_and_recovered() {
    engine_restart(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_stream_is_reported_and_recovered() {
    engine_restart(Kind::Nats).await;
}
