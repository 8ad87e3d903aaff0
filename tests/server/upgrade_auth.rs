//! The handshake-level auth hook: the upgrade request's path, query, cookies and headers decide
//! whether a browser may connect and as whom; the principal becomes the STOMP user.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wsbroker::{ConnectDecision, UpgradeDecision};

use crate::common::{TestServer, WAIT};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(ts: &TestServer, path_and_query: &str, cookie: Option<&str>) -> Result<Ws, WsError> {
    let mut request = format!("ws://{}{}", ts.ws, path_and_query)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "v12.stomp".parse().unwrap());
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("Cookie", cookie.parse().unwrap());
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake answered in time")
        .map(|(ws, _)| ws)
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg
            && text.as_str() != "\n"
        {
            return text.to_string();
        }
    }
}

fn start_with_token_hook() -> TestServer {
    let ts = TestServer::start();
    ts.server.on_upgrade(|info| {
        match (info.query_param("token").as_deref(), info.cookie("session")) {
            (Some("t-alice"), _) => UpgradeDecision::Accept {
                principal: Some("alice".into()),
            },
            (_, Some("s-bob")) => UpgradeDecision::Accept {
                principal: Some("bob".into()),
            },
            (None, None) => UpgradeDecision::Reject {
                status: 401,
                reason: "log in first".into(),
            },
            _ => UpgradeDecision::Reject {
                status: 403,
                reason: "bad token".into(),
            },
        }
    });
    ts
}

fn status_of(result: Result<Ws, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade was accepted"),
    }
}

#[tokio::test]
async fn query_token_and_cookie_become_the_stomp_user() {
    let ts = start_with_token_hook();
    let mut alice = open(&ts, "/ws?x=1&token=t%2Dalice", None)
        .await
        .expect("token accepted");
    alice
        .send(Message::text("CONNECT\naccept-version:1.2\nhost:h\n\n\0"))
        .await
        .unwrap();
    let connected = next_text(&mut alice).await;
    assert!(connected.starts_with("CONNECTED\n"), "{connected}");
    assert!(connected.contains("\nuser-name:alice\n"), "{connected}");

    let mut bob = open(&ts, "/ws", Some("theme=dark; session=s-bob"))
        .await
        .expect("cookie accepted");
    // A login header cannot override the principal the upgrade established.
    bob.send(Message::text(
        "CONNECT\naccept-version:1.2\nhost:h\nlogin:alice\n\n\0",
    ))
    .await
    .unwrap();
    let connected = next_text(&mut bob).await;
    assert!(connected.contains("\nuser-name:bob\n"), "{connected}");

    // The principal drives user destinations.
    bob.send(Message::text(
        "SUBSCRIBE\nid:1\ndestination:/user/queue/x\nreceipt:r\n\n\0",
    ))
    .await
    .unwrap();
    assert!(next_text(&mut bob).await.starts_with("RECEIPT\n"));
    ts.server
        .send_to_user("bob", "/queue/x", &[], "for bob")
        .unwrap();
    let message = next_text(&mut bob).await;
    assert!(
        message.starts_with("MESSAGE\n") && message.contains("for bob"),
        "{message}"
    );
    ts.finish().await;
}

#[tokio::test]
async fn missing_or_bad_credentials_get_401_or_403() {
    let ts = start_with_token_hook();
    assert_eq!(status_of(open(&ts, "/ws", None).await), 401);
    assert_eq!(status_of(open(&ts, "/ws?token=nope", None).await), 403);
    assert_eq!(
        status_of(open(&ts, "/ws", Some("session=wrong")).await),
        403
    );
    ts.finish().await;
}

#[tokio::test]
async fn connect_hook_sees_the_principal_and_may_override() {
    let ts = start_with_token_hook();
    ts.server.on_connect(|req| match req.principal.as_deref() {
        Some("alice") => ConnectDecision::Accept {
            user: Some("alice-admin".into()),
        },
        _ => ConnectDecision::Reject("only alice today".into()),
    });
    let mut alice = open(&ts, "/ws?token=t-alice", None).await.unwrap();
    alice
        .send(Message::text("CONNECT\naccept-version:1.2\nhost:h\n\n\0"))
        .await
        .unwrap();
    assert!(
        next_text(&mut alice)
            .await
            .contains("\nuser-name:alice-admin\n")
    );
    let mut bob = open(&ts, "/ws", Some("session=s-bob")).await.unwrap();
    bob.send(Message::text("CONNECT\naccept-version:1.2\nhost:h\n\n\0"))
        .await
        .unwrap();
    let error = next_text(&mut bob).await;
    assert!(
        error.starts_with("ERROR\n") && error.contains("only alice today"),
        "{error}"
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), bob.next()).await;
    ts.finish().await;
}
