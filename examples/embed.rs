//! The README's "embedded in a Rust program" example, compiled by `cargo test --all-targets`:
//! a broker with a connect hook and the chat application handler, then one publish each way.
//!
//! Run: `cargo run --example embed` (listens on an ephemeral port and stops after a moment).

use std::time::Duration;

use wsbroker::{ConnectDecision, Server, ServerConfig};

/// The number after `"chatRoomId":` in a JSON body (no JSON library needed for one field).
fn chat_room_id(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = text.split("\"chatRoomId\":").nth(1)?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new({
        let mut c = ServerConfig::default();
        c.listen = "127.0.0.1:0".parse()?;
        c
    })?;
    server.on_connect(|req| match req.passcode.as_deref() {
        Some("secret") => ConnectDecision::Accept {
            user: req.login.clone(),
        },
        _ => ConnectDecision::Reject("bad credentials".into()),
    });
    // SEND /app/chat {"chatRoomId":5,...} → published to /topic/chat/room/5
    server.handle_app("/app/chat", |msg, publisher| {
        let room = chat_room_id(&msg.body).ok_or("no chatRoomId")?;
        publisher
            .publish(&format!("/topic/chat/room/{room}"), &[], msg.body.clone())
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    server.start()?;
    println!(
        "wsbroker listening websocket ws://{}/ws",
        server.local_addr().expect("started")
    );
    server.publish("/topic/news", &[("content-type", "text/plain")], "hello")?;
    server.send_to_user("alice", "/queue/notice", &[], "just for alice")?;
    std::thread::sleep(Duration::from_millis(200));
    server.stop(Duration::from_secs(2))?;
    Ok(())
}
