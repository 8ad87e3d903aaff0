//! The naive baseline the issue compares raw mode against: tokio + tokio-tungstenite, one task
//! per connection, a `tokio::sync::broadcast` channel for fan-out, a plain echo loop for echo.
//!
//! It runs in its own process (the suite re-executes itself with `--serve-naive MODE`), so its
//! CPU time and memory are read from `/proc` exactly like the broker's. Deliberately
//! unoptimised: every outgoing message is a `send` (write + flush) of its own, and a receiver
//! that falls more than [`CHANNEL_CAPACITY`] messages behind loses messages (`Lagged`), as such
//! servers do.

use std::net::SocketAddr;
use std::process::ExitCode;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// Messages the broadcast channel holds for its slowest receiver.
const CHANNEL_CAPACITY: usize = 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every data message goes to every other connection.
    Broadcast,
    /// Every data message goes back to its sender.
    Echo,
}

impl Mode {
    pub(crate) fn parse(s: &str) -> Option<Mode> {
        match s {
            "broadcast" => Some(Mode::Broadcast),
            "echo" => Some(Mode::Echo),
            _ => None,
        }
    }

    pub(crate) fn arg(self) -> &'static str {
        match self {
            Mode::Broadcast => "broadcast",
            Mode::Echo => "echo",
        }
    }
}

/// Serves on 127.0.0.1 (a free port) until SIGTERM; prints the fanout bench's
/// `listening websocket ws://…` line once it accepts connections.
pub(crate) fn serve(mode: Mode) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("naive baseline: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| format!("bind: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("naive baseline listening websocket ws://{addr}/");
        let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        let (tx, _) = broadcast::channel::<(u64, Message)>(CHANNEL_CAPACITY);
        let mut next_id = 0u64;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    next_id += 1;
                    let (id, tx) = (next_id, tx.clone());
                    tokio::spawn(async move {
                        // Errors just end the connection, as in the simplest servers.
                        let _ = connection(stream, id, tx, mode).await;
                    });
                }
                _ = terminate.recv() => return Ok::<(), String>(()),
            }
        }
    });
    // Dropping the runtime cancels the connection tasks.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("naive baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connection(
    stream: TcpStream,
    id: u64,
    tx: broadcast::Sender<(u64, Message)>,
    mode: Mode,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    stream.set_nodelay(true)?;
    // Subscribe before the handshake so nothing sent after the 101 response is missed.
    let mut rx = tx.subscribe();
    let ws = tokio_tungstenite::accept_async(stream).await?;
    let (mut sink, mut source) = ws.split();
    match mode {
        Mode::Echo => {
            while let Some(msg) = source.next().await {
                match msg? {
                    msg @ (Message::Text(_) | Message::Binary(_)) => sink.send(msg).await?,
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        }
        Mode::Broadcast => loop {
            tokio::select! {
                msg = source.next() => match msg {
                    Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        let _ = tx.send((id, msg));
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                got = rx.recv() => match got {
                    Ok((from, msg)) if from != id => sink.send(msg).await?,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        },
    }
    Ok(())
}
