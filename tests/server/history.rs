//! Message history over real sockets: a subscriber dropped in the middle of a 10,000-message
//! stream that keeps flowing resumes with 0 gaps and 0 duplicates; epochs, TTL and backlogs as
//! a client sees them.

use std::time::{Duration, Instant};

use wsbroker::HistoryRule;

use crate::common::{self, Client, Frame, TestServer, WAIT};

fn history_server(rules: &[&str]) -> TestServer {
    let mut config = common::config();
    config.broker.history = rules
        .iter()
        .map(|r| HistoryRule::parse(r).unwrap())
        .collect();
    TestServer::start_with(config)
}

/// SUBSCRIBE with a receipt: the RECEIPT and the replayed MESSAGEs before it.
async fn subscribe(
    c: &mut Client,
    destination: &str,
    extra: &[(&str, &str)],
) -> (Frame, Vec<Frame>) {
    c.subscribe_with_receipt(destination, extra).await
}

fn offset(f: &Frame) -> u64 {
    f.h("x-offset").parse().unwrap()
}

#[tokio::test]
async fn dropped_subscriber_resumes_a_live_10000_message_stream_without_gaps_or_duplicates() {
    const TOTAL: u64 = 10_000;
    const DROP_AT: u64 = 5_000;
    // Retains more than can be missed (at most TOTAL - DROP_AT), so the resume must recover.
    let server = history_server(&["/topic/stream=8000"]);
    let mut first = Client::tcp(server.tcp).await;
    first.connect_as(None).await;
    let (receipt, replayed) = subscribe(&mut first, "/topic/stream", &[]).await;
    assert!(replayed.is_empty());
    assert_eq!(
        receipt.h("x-offset"),
        "0",
        "the stream's position at subscribe"
    );

    // A WebSocket client publishes the stream: the first 6,000, then (once the subscriber
    // has dropped) the rest, racing its resubscription.
    let ws = server.ws;
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(async move {
        let mut p = Client::ws(ws).await;
        p.connect_as(None).await;
        let mut dropped = Some(dropped_rx);
        for i in 1..=TOTAL {
            if i == DROP_AT + 1_000 {
                p.barrier().await;
                dropped.take().unwrap().await.unwrap();
            }
            p.send("/topic/stream", i.to_string()).await;
        }
        p.barrier().await;
    });

    let mut seen = Vec::new();
    let mut epoch = String::new();
    while (seen.len() as u64) < DROP_AT {
        let m = first.expect("MESSAGE").await;
        seen.push((offset(&m), m.body_str().to_string()));
        epoch = m.h("x-epoch").to_string();
    }
    drop(first); // the connection drops mid-stream, frames still in flight
    dropped_tx.send(()).unwrap();

    let mut again = Client::tcp(server.tcp).await;
    again.connect_as(None).await;
    let since = seen.last().unwrap().0.to_string();
    let (receipt, mut resumed) = subscribe(
        &mut again,
        "/topic/stream",
        &[("x-since", &since), ("x-epoch", &epoch)],
    )
    .await;
    assert_eq!(receipt.h("x-recovered"), "true", "{receipt:?}");
    assert_eq!(receipt.h("x-epoch"), epoch);
    while resumed.last().is_none_or(|m| offset(m) < TOTAL) {
        resumed.push(again.expect("MESSAGE").await);
    }
    assert_eq!(resumed[0].header("x-recovered"), Some("true"));
    assert!(
        resumed[1..]
            .iter()
            .all(|m| m.header("x-recovered").is_none())
    );
    seen.extend(
        resumed
            .iter()
            .map(|m| (offset(m), m.body_str().to_string())),
    );
    let expected: Vec<(u64, String)> = (1..=TOTAL).map(|i| (i, i.to_string())).collect();
    let gaps = expected.iter().filter(|e| !seen.contains(e)).count();
    assert_eq!(seen.len() as u64, TOTAL, "{gaps} gaps");
    assert_eq!(seen, expected, "0 gaps, 0 duplicates, in order");
    tokio::time::timeout(WAIT, publisher)
        .await
        .unwrap()
        .unwrap();
    server.finish().await;
}

#[tokio::test]
async fn a_wrong_epoch_or_an_expired_offset_replays_what_is_retained_and_says_so() {
    let server = history_server(&["/topic/ttl=100,300ms", "/topic/kept=3"]);
    for i in 1..=5 {
        server.publish("/topic/kept", &[], i.to_string()).unwrap();
    }
    let mut c = Client::tcp(server.tcp).await;
    c.connect_as(None).await;
    // Another epoch: everything retained (the last 3), not recovered.
    let (receipt, replayed) = subscribe(
        &mut c,
        "/topic/kept",
        &[("x-since", "4"), ("x-epoch", "not-this-one")],
    )
    .await;
    assert_eq!(receipt.h("x-recovered"), "false");
    assert_eq!(replayed.iter().map(offset).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(replayed[0].h("x-recovered"), "false");
    c.frame("UNSUBSCRIBE", &[("id", "s")], "").await;
    // x-last: a backlog, no resume report.
    let (receipt, replayed) = subscribe(&mut c, "/topic/kept", &[("x-last", "2")]).await;
    assert!(receipt.header("x-recovered").is_none());
    assert_eq!(replayed.iter().map(offset).collect::<Vec<_>>(), [4, 5]);
    c.frame("UNSUBSCRIBE", &[("id", "s")], "").await;

    // TTL: once the messages expired (read back until the host sees none, bounded), a resume
    // from before them cannot recover, and nothing is replayed.
    for i in 1..=3 {
        server.publish("/topic/ttl", &[], i.to_string()).unwrap();
    }
    let epoch = server.history("/topic/ttl", 0, 10).unwrap().position.epoch;
    let deadline = Instant::now() + WAIT;
    while !server
        .history("/topic/ttl", 0, 10)
        .unwrap()
        .messages
        .is_empty()
    {
        assert!(Instant::now() < deadline, "messages outlived their TTL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (receipt, replayed) = subscribe(
        &mut c,
        "/topic/ttl",
        &[("x-since", "1"), ("x-epoch", &epoch)],
    )
    .await;
    assert_eq!(receipt.h("x-recovered"), "false");
    assert!(replayed.is_empty(), "{replayed:?}");
    // Offsets go on after expiry.
    server.publish("/topic/ttl", &[], "4").unwrap();
    let m = c.expect("MESSAGE").await;
    assert_eq!((offset(&m), m.h("x-epoch")), (4, &*epoch));
    server.finish().await;
}
