//! Drop reports over real sockets: a subscriber that never reads, under drop-newest.

use std::time::Duration;

use bytes::Bytes;
use wsbroker::{Event, EventQueueConfig};

use crate::common;

/// Over real sockets: a TCP subscriber that never reads, under drop-newest, while the host
/// publishes far more than its queue and socket buffers hold. The server's timer reports the
/// drops; their sum is exactly the `dropped` counter, in fewer events than drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_reports_drops_through_its_event_queue() {
    let server = wsbroker::Server::new({
        let mut c = common::config();
        c.broker.max_outbound_messages = 8;
        c
    })
    .unwrap();
    server.enable_events(EventQueueConfig::default()).unwrap();
    server.start().unwrap();
    let server = common::TestServer::from_server(server);
    let mut slow = common::Client::tcp_small_buffer(server.tcp, 4096).await;
    slow.connect_as(None).await;
    slow.subscribe_with(
        "/topic/flood",
        "flood",
        &[("overflow-policy", "drop-newest")],
    )
    .await;
    let body = Bytes::from(vec![b'x'; 4096]);
    for _ in 0..5000 {
        server
            .server
            .publish("/topic/flood", &[], body.clone())
            .unwrap();
    }
    let dropped = server.server.stats().dropped;
    assert!(
        dropped > 0,
        "20 MB cannot fit in 8 queued frames and the socket buffers"
    );

    let (mut reported, mut reports) = (0, 0);
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while reported < dropped {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {reported} of {dropped} drops reported"
        );
        let mut events = Vec::new();
        let srv = server.server.clone();
        events = tokio::task::spawn_blocking(move || {
            srv.poll_events(&mut events, 100, Duration::from_millis(100))
                .unwrap();
            events
        })
        .await
        .unwrap();
        for event in events {
            if let Event::MessagesDropped(report) = event {
                assert_eq!(&*report.subscription, "flood");
                assert_eq!(report.destination, "/topic/flood");
                reported += report.count;
                reports += 1;
            }
        }
    }
    assert_eq!(reported, dropped, "every drop reported exactly once");
    assert!(
        reports < dropped,
        "coalesced: {reports} reports for {dropped} drops"
    );
    println!("{dropped} drops reported in {reports} events");
    server.finish().await;
}
