//! Where host code runs: application handlers and host-subscription callbacks run on the
//! server's callback threads, so a handler that blocks stalls nobody else, and a callback that
//! publishes to a destination it matches queues another delivery instead of recursing.
//!
//! The blocking handler waits for the test to release it (no sleeps); whatever must happen
//! meanwhile is awaited with receipts within `WAIT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::common::{self, TestServer, WAIT};

/// One runtime worker: with host code on the IO threads, a blocked handler would stall every
/// other connection here, so the exchange below could not finish.
fn one_io_thread() -> wsbroker::ServerConfig {
    let mut config = common::config();
    config.worker_threads = 1;
    config
}

#[tokio::test]
async fn a_blocked_application_handler_stalls_no_other_client() {
    let server = TestServer::start_with(one_io_thread());
    let (entered_tx, mut entered) = mpsc::unbounded_channel::<()>();
    let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let gate = release.clone();
    server.handle_app("/app/slow", move |_, publisher| {
        entered_tx.send(()).unwrap();
        let (released, changed) = &*gate;
        let mut released = released.lock().unwrap();
        while !*released {
            // Bounded: a broken test must not hang the suite.
            let (next, timeout) = changed.wait_timeout(released, WAIT * 4).unwrap();
            released = next;
            if timeout.timed_out() {
                return Err("never released".into());
            }
        }
        publisher
            .publish("/topic/slow-done", &[], "done")
            .map(|_| ())
            .map_err(|e| e.to_string())
    });

    let mut slow = server.tcp_connected(Some("slow")).await;
    slow.subscribe("/topic/slow-done", "done").await;
    slow.frame(
        "SEND",
        &[("destination", "/app/slow"), ("receipt", "slow-receipt")],
        "x",
    )
    .await;
    tokio::time::timeout(WAIT, entered.recv())
        .await
        .expect("the handler starts")
        .unwrap();

    // While it is blocked, two other clients exchange 1,000 messages, every one confirmed.
    let mut reader = server.ws_connected(Some("reader")).await;
    reader.subscribe("/topic/chat", "chat").await;
    let mut writer = server.tcp_connected(Some("writer")).await;
    const N: usize = 1_000;
    let started = Instant::now();
    for i in 0..N {
        writer
            .send_sync("/topic/chat", &[], format!("m{i}").as_bytes())
            .await;
    }
    let messages = reader.messages(N).await;
    let exchanged = started.elapsed();
    assert_eq!(messages.len(), N);
    assert_eq!(messages[N - 1].body_str(), format!("m{}", N - 1));
    println!(
        "{N} confirmed messages between two clients in {exchanged:?} while a handler was blocked"
    );

    // The blocked client has had nothing yet: its receipt waits for its handler.
    assert!(
        slow.event_within(Duration::ZERO).await.is_none(),
        "nothing for the blocked client before its handler returns"
    );
    {
        let (released, changed) = &*release;
        *released.lock().unwrap() = true;
        changed.notify_all();
    }
    let mut frames = Vec::new();
    while frames.len() < 2 {
        frames.push(slow.recv().await);
    }
    let commands: Vec<&str> = frames.iter().map(|f| f.command.as_str()).collect();
    assert_eq!(
        commands,
        ["MESSAGE", "RECEIPT"],
        "the handler's publish, then the receipt"
    );
    assert_eq!(frames[1].header("receipt-id"), Some("slow-receipt"));
}

#[tokio::test]
async fn a_host_subscription_that_publishes_to_itself_does_not_recurse() {
    let server = TestServer::start();
    const ROUNDS: usize = 100_000;
    let rounds = Arc::new(AtomicUsize::new(0));
    let (done_tx, mut done) = mpsc::unbounded_channel::<()>();
    let counted = rounds.clone();
    let publisher = Arc::downgrade(&server.server);
    server
        .subscribe("/topic/loop", move |_| {
            // Each delivery publishes the next: 100,000 nested calls would overflow the stack.
            if counted.fetch_add(1, Ordering::SeqCst) + 1 == ROUNDS {
                done_tx.send(()).unwrap();
            } else if let Some(server) = publisher.upgrade() {
                server.publish("/topic/loop", &[], "again").unwrap();
            }
        })
        .unwrap();
    server.publish("/topic/loop", &[], "start").unwrap();
    tokio::time::timeout(WAIT * 6, done.recv())
        .await
        .expect("every round within the bound")
        .unwrap();
    assert_eq!(rounds.load(Ordering::SeqCst), ROUNDS);
}

#[tokio::test]
async fn one_sessions_application_messages_run_in_order() {
    let server = TestServer::start();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    server.handle_app("/app/seq", move |message, _| {
        tx.send(String::from_utf8_lossy(&message.body).into_owned())
            .unwrap();
        Ok(())
    });
    let mut client = server.tcp_connected(None).await;
    for i in 0..200 {
        client.send("/app/seq", format!("{i}")).await;
    }
    client.barrier().await;
    for i in 0..200 {
        let seen = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, i.to_string());
    }
}

#[tokio::test]
async fn host_publishes_into_a_backed_up_callback_are_refused_then_wait() {
    let mut config = common::config();
    // One lane of 64 jobs: refused from 49 queued (three quarters), relieved at 32.
    config.callback_threads = 1;
    config.callback_queue = 64;
    let server = TestServer::start_with(config);
    let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let gate = release.clone();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    server
        .subscribe("/topic/behind", move |_| {
            let (released, changed) = &*gate;
            let mut released = released.lock().unwrap();
            while !*released {
                let (next, timeout) = changed.wait_timeout(released, WAIT * 4).unwrap();
                released = next;
                if timeout.timed_out() {
                    return;
                }
            }
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let mut accepted = 0;
    let refusal = loop {
        match server.publish("/topic/behind", &[], "m") {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 64, "never refused");
    };
    assert!(
        matches!(refusal, wsbroker::Error::Backpressure(_)),
        "{refusal:?}"
    );
    assert_eq!(server.stats().dropped, 0, "refused, not dropped");
    // A waiting publish goes through once the callback catches up.
    let waiting = {
        let server = server.server.clone();
        tokio::task::spawn_blocking(move || server.publish_wait("/topic/behind", &[], "last", WAIT))
    };
    {
        let (released, changed) = &*release;
        *released.lock().unwrap() = true;
        changed.notify_all();
    }
    waiting.await.unwrap().expect("published after the wait");
    let deadline = Instant::now() + WAIT;
    while seen.load(Ordering::SeqCst) < accepted + 1 {
        assert!(Instant::now() < deadline, "callbacks within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        seen.load(Ordering::SeqCst),
        accepted + 1,
        "every accepted message, once"
    );
}
