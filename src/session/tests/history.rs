//! Message history through the session: offsets and epochs on MESSAGEs, resume with `x-since`
//! (the RECEIPT and the first MESSAGE say whether it recovered), `x-last`, last-value
//! destinations, and the SUBSCRIBE errors.

use super::common::*;
use crate::broker::{HistoryRule, Outbound};
use crate::stomp::{Command, Frame, Version};

fn history_engine(rules: &[&str]) -> std::sync::Arc<crate::engine::Engine> {
    engine_with(|c| {
        c.broker.history = rules
            .iter()
            .map(|r| HistoryRule::parse(r).unwrap())
            .collect();
    })
}

/// The MESSAGE frames queued for `c`, decoded as its client would.
fn messages(c: &Client) -> Vec<Frame> {
    c.messages()
        .iter()
        .map(|d| decode_one(&wire(&c.outbox, d), Version::V1_2))
        .collect()
}

fn offsets(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| f.header("x-offset").unwrap().parse().unwrap())
        .collect()
}

/// SUBSCRIBE with a receipt; returns the RECEIPT.
fn subscribe_with(c: &mut Client, id: &str, destination: &str, extra: &[(&str, &str)]) -> Frame {
    let mut headers = vec![("id", id), ("destination", destination), ("receipt", "sub")];
    headers.extend_from_slice(extra);
    let flow = c.feed(frame(Command::Subscribe, &headers));
    assert!(matches!(flow, crate::session::Flow::Continue), "{flow:?}");
    // The RECEIPT is taken out; the replayed MESSAGEs stay queued, in order.
    let mut queued = Vec::new();
    c.outbox.try_drain(&mut queued, usize::MAX);
    let mut receipts = Vec::new();
    for item in queued {
        match item {
            Outbound::Frame(bytes) => receipts.push(decode_one(&bytes, Version::V1_2)),
            other => c.outbox.push(other).expect("re-queue"),
        }
    }
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].header("receipt-id"), Some("sub"));
    receipts[0].clone()
}

#[test]
fn messages_carry_offsets_and_a_resume_gets_what_it_missed() {
    let engine = history_engine(&["/topic/chat/**=100"]);
    let mut reader = Client::connected(&engine, "1.2", None);
    let mut writer = Client::connected(&engine, "1.2", None);
    let receipt = subscribe_with(&mut reader, "s", "/topic/chat/1", &[]);
    assert_eq!(receipt.header("x-offset"), Some("0"));
    let epoch = receipt.header("x-epoch").unwrap().to_string();
    assert_eq!(receipt.header("x-recovered"), None, "no resume asked");
    for i in 0..5 {
        writer.send("/topic/chat/1", &format!("m{i}"));
    }
    let live = messages(&reader);
    assert_eq!(offsets(&live), [1, 2, 3, 4, 5]);
    assert!(live.iter().all(|m| m.header("x-epoch") == Some(&*epoch)));
    assert!(live.iter().all(|m| m.header("x-recovered").is_none()));

    // Gone for a while: three more are published.
    reader.ok(frame(Command::Unsubscribe, &[("id", "s")]));
    for i in 5..8 {
        writer.send("/topic/chat/1", &format!("m{i}"));
    }
    let receipt = subscribe_with(
        &mut reader,
        "s2",
        "/topic/chat/1",
        &[("x-since", "5"), ("x-epoch", &epoch)],
    );
    assert_eq!(receipt.header("x-recovered"), Some("true"));
    assert_eq!(receipt.header("x-offset"), Some("8"));
    let replayed = messages(&reader);
    assert_eq!(offsets(&replayed), [6, 7, 8]);
    assert_eq!(replayed[0].header("x-recovered"), Some("true"));
    assert_eq!(
        replayed[1].header("x-recovered"),
        None,
        "only the first says"
    );
    assert_eq!(replayed[0].body, "m5".as_bytes());
    // Then live, with no gap and no duplicate at the seam.
    writer.send("/topic/chat/1", "m8");
    assert_eq!(offsets(&messages(&reader)), [9]);

    // Another epoch: everything retained, not recovered.
    let receipt = subscribe_with(
        &mut reader,
        "s3",
        "/topic/chat/1",
        &[("x-since", "7"), ("x-epoch", "stale")],
    );
    assert_eq!(receipt.header("x-recovered"), Some("false"));
    assert_eq!(offsets(&messages(&reader)), (1..=9).collect::<Vec<_>>());
}

#[test]
fn a_sender_cannot_forge_positions() {
    let engine = history_engine(&["/topic/a=10"]);
    let mut reader = Client::connected(&engine, "1.2", None);
    let mut writer = Client::connected(&engine, "1.2", None);
    reader.subscribe("s", "/topic/a", "auto");
    writer.ok(send("/topic/a", "x")
        .with_header("x-offset", "999")
        .with_header("x-epoch", "forged")
        .with_header("x-recovered", "true"));
    let got = messages(&reader);
    assert_eq!(offsets(&got), [1]);
    assert_ne!(got[0].header("x-epoch"), Some("forged"));
    assert_eq!(got[0].header("x-recovered"), None);
    assert_eq!(
        got[0]
            .headers
            .iter()
            .filter(|(n, _)| n == "x-offset")
            .count(),
        1
    );
}

#[test]
fn last_n_and_last_value_snapshots() {
    let engine = history_engine(&["/topic/chat=50", "/topic/price/*=1,last"]);
    let mut writer = Client::connected(&engine, "1.2", None);
    for i in 0..10 {
        writer.send("/topic/chat", &format!("c{i}"));
        writer.send("/topic/price/eur", &format!("p{i}"));
    }
    let mut reader = Client::connected(&engine, "1.2", None);
    subscribe_with(&mut reader, "chat", "/topic/chat", &[("x-last", "3")]);
    assert_eq!(reader.bodies(), ["c7", "c8", "c9"]);
    subscribe_with(&mut reader, "price", "/topic/price/eur", &[]);
    assert_eq!(
        reader.bodies(),
        ["p9"],
        "the newest value on every subscribe"
    );
    // Without history a resume is reported as not recovered.
    let receipt = subscribe_with(&mut reader, "q", "/topic/none", &[("x-since", "3")]);
    assert_eq!(receipt.header("x-recovered"), Some("false"));
    assert_eq!(receipt.header("x-epoch"), None);
}

#[test]
fn resume_needs_one_history_destination_and_numbers() {
    let engine = history_engine(&["/topic/**=10"]);
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[("id", "p"), ("destination", "/topic/*"), ("x-since", "1")],
    ));
    assert!(
        error
            .header("message")
            .unwrap()
            .contains("not a queue or pattern"),
        "{error:?}"
    );
    let mut c = Client::connected(&engine, "1.2", None);
    let (error, _) = c.refused(frame(
        Command::Subscribe,
        &[
            ("id", "p"),
            ("destination", "/topic/a"),
            ("x-since", "soon"),
        ],
    ));
    assert!(error.header("message").unwrap().contains("invalid x-since"));
}

#[test]
fn a_replay_never_makes_its_subscriber_a_slow_consumer() {
    // 20 retained messages of 1 KiB, but a queue of 16 frames / 8 KiB: the replay keeps to
    // half of either and says the resume is incomplete.
    let engine = engine_with(|c| {
        c.broker.max_outbound_messages = 16;
        c.broker.max_outbound_bytes = 8 * 1024;
        c.broker.outbound_high_watermark = 8 * 1024;
        c.broker.outbound_low_watermark = 2 * 1024;
        c.broker.history = vec![HistoryRule::parse("/topic/big=8").unwrap()];
    });
    let mut writer = Client::connected(&engine, "1.2", None);
    let body = "x".repeat(1024);
    for _ in 0..8 {
        writer.send("/topic/big", &body);
    }
    let mut reader = Client::with_outbox(&engine, 16, 8 * 1024);
    reader.connect(&[("accept-version", "1.2")]);
    let receipt = subscribe_with(&mut reader, "s", "/topic/big", &[("x-since", "0")]);
    assert_eq!(receipt.header("x-recovered"), Some("false"));
    let replayed = messages(&reader);
    assert!(
        !replayed.is_empty() && replayed.len() < 8,
        "{}",
        replayed.len()
    );
    assert_eq!(
        *offsets(&replayed).last().unwrap(),
        8,
        "the newest are kept"
    );
}
