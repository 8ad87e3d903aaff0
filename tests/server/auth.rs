//! Token (JWT) authentication over real sockets: keys of every kind, hostile tokens, each
//! token source (bearer header, cookie, query parameter, CONNECT token and passcode),
//! permissions, refresh on the live connection, expiry, JWKS rotation and the hooks' word.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use wsbroker::{AuthConfig, AuthKey, ConnectDecision, JwtAlgorithm, ServerConfig, UpgradeDecision};

use crate::common::{self, Client, TestServer, WAIT};

const SECRET: &[u8] = b"integration-test-secret";
const RSA_PRIVATE: &[u8] = include_bytes!("../fixtures/jwt/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../fixtures/jwt/rsa_public.pem");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn claims(sub: &str, exp_in: i64) -> Value {
    json!({"sub": sub, "exp": now().saturating_add_signed(exp_in)})
}

fn server(key: AuthKey, f: impl FnOnce(&mut AuthConfig)) -> TestServer {
    let mut config = common::config();
    let mut auth = AuthConfig::new(key);
    f(&mut auth);
    config.auth = Some(auth);
    TestServer::start_with(config)
}

fn hmac_server(f: impl FnOnce(&mut AuthConfig)) -> TestServer {
    server(AuthKey::HmacSecret(SECRET.to_vec()), f)
}

/// CONNECT with a `token` header; the CONNECTED frame's `user-name` or the ERROR's message.
async fn connect_token(ts: &TestServer, token: &str) -> Result<String, String> {
    connect_headers(ts, &[("token", token)]).await
}

async fn connect_headers(ts: &TestServer, headers: &[(&str, &str)]) -> Result<String, String> {
    let mut c = ts.tcp_client().await;
    let mut all = vec![("accept-version", "1.2"), ("host", "localhost")];
    all.extend_from_slice(headers);
    c.frame("CONNECT", &all, "").await;
    let f = c.recv().await;
    match f.command.as_str() {
        "CONNECTED" => Ok(f.header("user-name").unwrap_or_default().to_string()),
        "ERROR" => Err(f.h("message").to_string()),
        other => panic!("unexpected {other}"),
    }
}

/// A WebSocket upgrade to `/ws?query` with extra headers.
async fn upgrade(
    ts: &TestServer,
    query: &str,
    headers: &[(&str, &str)],
) -> Result<Client, WsError> {
    let mut request = format!("ws://{}/ws{query}", ts.ws)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "v12.stomp".parse().unwrap());
    for (name, value) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    Client::ws_request(request).await
}

fn refusal_status(result: Result<Client, WsError>) -> (u16, String) {
    match result {
        Err(WsError::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade was accepted"),
    }
}

#[tokio::test]
async fn tokens_of_every_key_kind_connect_as_their_subject() {
    // HS256 with a shared secret.
    let ts = hmac_server(|_| {});
    assert_eq!(
        connect_token(&ts, &hs256(&claims("hs", 60))).await,
        Ok("hs".into())
    );
    ts.stop().await.unwrap();

    // RS256 with a fixed test key pair.
    let ts = server(AuthKey::PublicKeyPem(RSA_PUBLIC.to_vec()), |_| {});
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
    let token = encode(&Header::new(Algorithm::RS256), &claims("rs", 60), &key).unwrap();
    assert_eq!(connect_token(&ts, &token).await, Ok("rs".into()));
    ts.stop().await.unwrap();

    // ES256 and EdDSA with keys made now.
    for (alg, rcgen_alg, sub) in [
        (Algorithm::ES256, &rcgen::PKCS_ECDSA_P256_SHA256, "es"),
        (Algorithm::EdDSA, &rcgen::PKCS_ED25519, "ed"),
    ] {
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
        let ts = server(
            AuthKey::PublicKeyPem(pair.public_key_pem().into_bytes()),
            |_| {},
        );
        let private = pair.serialize_pem();
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()).unwrap(),
            _ => EncodingKey::from_ed_pem(private.as_bytes()).unwrap(),
        };
        let token = encode(&Header::new(alg), &claims(sub, 60), &key).unwrap();
        assert_eq!(connect_token(&ts, &token).await, Ok(sub.into()), "{alg:?}");
        ts.stop().await.unwrap();
    }
}

#[tokio::test]
async fn hostile_tokens_are_refused_with_a_clear_error() {
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let ts = server(AuthKey::PublicKeyPem(RSA_PUBLIC.to_vec()), |a| {
        a.issuer = Some("https://id.example".into());
        a.audience = Some("wsbroker".into());
        a.leeway = Duration::ZERO;
        a.max_token_size = 4096;
    });
    let rsa = EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
    let rs256 = |c: &Value| encode(&Header::new(Algorithm::RS256), c, &rsa).unwrap();
    let good =
        json!({"sub": "a", "exp": now() + 60, "iss": "https://id.example", "aud": "wsbroker"});
    assert_eq!(connect_token(&ts, &rs256(&good)).await, Ok("a".into()));

    let with = |name: &str, value: Value| {
        let mut c = good.clone();
        c[name] = value;
        c
    };
    let cases = [
        (rs256(&with("exp", json!(now() - 1))), "token expired"),
        (
            rs256(&with("nbf", json!(now() + 600))),
            "token not valid yet",
        ),
        (
            rs256(&with("iss", json!("https://evil"))),
            "wrong token issuer",
        ),
        (rs256(&with("aud", json!("other"))), "wrong token audience"),
        (
            format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good)),
            "token algorithm not accepted (alg none)",
        ),
        // Algorithm confusion: HS256 signed with the RSA public key as the secret.
        (
            encode(
                &Header::default(),
                &good,
                &EncodingKey::from_secret(RSA_PUBLIC),
            )
            .unwrap(),
            "token algorithm not accepted (alg HS256)",
        ),
        // Signed by another RSA key: the signature does not verify.
        (
            {
                let t = rs256(&good);
                let (head, _) = t.rsplit_once('.').unwrap();
                format!("{head}.{}", b64(&json!("forged")))
            },
            "invalid token signature",
        ),
        ("x".repeat(5_000), "token too large (5000 bytes)"),
        ("not.a.token".into(), "malformed token"),
    ];
    for (token, expected) in &cases {
        assert_eq!(
            connect_token(&ts, token).await,
            Err(format!("token refused - {expected}")),
            "{expected}"
        );
    }
    assert_eq!(ts.server.stats().auth_refused, cases.len() as u64);
    // The same at the upgrade: 401 with the reason.
    let expired = rs256(&with("exp", json!(now() - 1)));
    let (status, body) =
        refusal_status(upgrade(&ts, &format!("?access_token={expired}"), &[]).await);
    assert_eq!(
        (status, body.trim()),
        (401, "token refused - token expired")
    );
}

/// Extra upgrade request headers.
type Headers<'a> = Vec<(&'a str, &'a str)>;

#[tokio::test]
async fn each_token_source_is_read() {
    let ts = hmac_server(|a| a.cookie = Some("jwt".into()));
    let bearer = format!("Bearer {}", hs256(&claims("header-user", 60)));
    let cookie = format!("theme=dark; jwt={}", hs256(&claims("cookie-user", 60)));
    let query = format!("?v=1&access_token={}", hs256(&claims("query-user", 60)));
    let sources: [(&str, Headers, &str); 3] = [
        ("", vec![("Authorization", bearer.as_str())], "header-user"),
        ("", vec![("Cookie", cookie.as_str())], "cookie-user"),
        (query.as_str(), vec![], "query-user"),
    ];
    for (query, headers, user) in &sources {
        let mut c = upgrade(&ts, query, headers)
            .await
            .expect("upgrade accepted");
        let connected = c.connect_with(&[]).await;
        assert_eq!(connected.header("user-name"), Some(*user));
        // `/user/...` destinations work for the token's subject.
        c.subscribe("/user/queue/inbox", "1").await;
        let mut other = ts.tcp_client().await;
        other
            .connect_with(&[("token", &hs256(&claims("sender", 60)))])
            .await;
        other
            .send_sync(&format!("/user/{user}/queue/inbox"), &[], b"hi")
            .await;
        assert_eq!(c.messages(1).await[0].body_str(), "hi");
    }
    // CONNECT: a token header, or a passcode shaped like a JWT.
    let passcode = hs256(&claims("passcode-user", 60));
    assert_eq!(
        connect_headers(&ts, &[("login", "ignored"), ("passcode", &passcode)]).await,
        Ok("passcode-user".into())
    );
    assert_eq!(
        connect_token(&ts, &hs256(&claims("token-user", 60))).await,
        Ok("token-user".into())
    );
    // A bad token in the query: 401 before any hook runs.
    let (status, _) = refusal_status(upgrade(&ts, "?access_token=a.b.c", &[]).await);
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_required_token_refuses_clients_without_one() {
    let ts = hmac_server(|a| a.required = true);
    let mut c = ts.ws_client().await;
    c.frame("CONNECT", &[("accept-version", "1.2"), ("host", "h")], "")
        .await;
    let (error, code) = c.expect_error_and_close().await;
    assert!(
        error.h("message").starts_with("authentication required"),
        "{error:?}"
    );
    assert_eq!(code, Some(1008));
    let ok = upgrade(
        &ts,
        &format!("?access_token={}", hs256(&claims("u", 60))),
        &[],
    )
    .await
    .unwrap();
    let mut ok = ok;
    ok.connect_with(&[]).await;
}

#[tokio::test]
async fn permissions_deny_subscribe_and_send_naming_the_destination() {
    let ts = hmac_server(|a| {
        a.anonymous.subscribe = vec!["/topic/public.*".into()];
    });
    let token = hs256(&json!({
        "sub": "alice", "exp": now() + 60,
        "wsb": {"sub": ["/topic/chat.*", "/user/**"], "pub": ["/topic/chat.*", "/app/**"]}
    }));
    let mut alice = ts.tcp_client().await;
    alice.connect_with(&[("token", &token)]).await;
    alice.subscribe("/topic/chat.lobby", "1").await;
    alice.send_sync("/topic/chat.lobby", &[], b"hello").await;
    assert_eq!(alice.messages(1).await[0].body_str(), "hello");
    alice
        .frame(
            "SUBSCRIBE",
            &[("destination", "/topic/admin"), ("id", "2")],
            "",
        )
        .await;
    let (error, _) = alice.expect_error_and_close().await;
    assert_eq!(
        error.h("message"),
        "permission denied: user alice may not subscribe to /topic/admin"
    );

    let mut again = ts.tcp_client().await;
    again.connect_with(&[("token", &token)]).await;
    // A wildcard wider than the permission is refused too.
    again
        .frame(
            "SUBSCRIBE",
            &[("destination", "/topic/**"), ("id", "3")],
            "",
        )
        .await;
    let (error, _) = again.expect_error_and_close().await;
    assert!(error.h("message").contains("/topic/**"), "{error:?}");

    let mut sender = ts.tcp_client().await;
    sender.connect_with(&[("token", &token)]).await;
    sender.send("/queue/orders", "x").await;
    let (error, _) = sender.expect_error_and_close().await;
    assert_eq!(
        error.h("message"),
        "permission denied: user alice may not send to /queue/orders"
    );

    // Anonymous sessions get the configured anonymous permissions only.
    let mut anon = ts.tcp_connected(None).await;
    anon.subscribe("/topic/public.news", "1").await;
    anon.send("/topic/public.news", "x").await;
    let (error, _) = anon.expect_error_and_close().await;
    assert_eq!(
        error.h("message"),
        "permission denied: anonymous sessions may not send to /topic/public.news"
    );
    ts.wait_stats("auth_denied", |s| s.auth_denied == 4).await;
}

/// A server whose tokens expire exactly at `exp` (no leeway).
fn strict_server() -> TestServer {
    hmac_server(|a| a.leeway = Duration::ZERO)
}

/// Waits (bounded) until the wall clock is past `second`.
async fn wait_past(second: u64) {
    let target = UNIX_EPOCH + Duration::from_secs(second) + Duration::from_millis(300);
    if let Ok(left) = target.duration_since(SystemTime::now()) {
        assert!(left < WAIT, "test clock arithmetic");
        tokio::time::sleep(left).await;
    }
}

#[tokio::test]
async fn expiry_closes_the_session_with_token_expired() {
    let ts = strict_server();
    let exp = now() + 2;
    let mut c = ts.ws_client().await;
    c.connect_with(&[("token", &hs256(&json!({"sub": "a", "exp": exp})))])
        .await;
    c.subscribe("/topic/x", "1").await;
    // Nothing more is sent: the server's timer ends the session (bounded wait for the ERROR).
    let (error, code) = c.expect_error_and_close().await;
    assert_eq!(error.h("message"), "token expired");
    assert_eq!(code, Some(1008));
    assert!(now() >= exp, "not before exp");
    assert_eq!(ts.server.stats().auth_expired, 1);
}

#[tokio::test]
async fn refresh_extends_the_session_and_another_subject_is_refused() {
    let ts = strict_server();
    let exp = now() + 2;
    let mut c = ts.tcp_client().await;
    c.connect_with(&[("token", &hs256(&json!({"sub": "alice", "exp": exp})))])
        .await;
    let newer = hs256(&json!({"sub": "alice", "exp": exp + 60}));
    c.request(
        "SEND",
        &[("destination", "/wsb/refresh"), ("token", &newer)],
        b"",
    )
    .await;
    // Past the first token's exp the session still works...
    wait_past(exp).await;
    c.subscribe("/topic/after", "1").await;
    assert_eq!(ts.server.stats().auth_refreshed, 1);
    // ...and a token for someone else is refused (the body carries it this time).
    let bob = hs256(&json!({"sub": "bob", "exp": exp + 60}));
    c.frame("SEND", &[("destination", "/wsb/refresh")], bob.as_bytes())
        .await;
    let (error, _) = c.expect_error_and_close().await;
    assert_eq!(
        error.h("message"),
        "token refresh refused: the new token is for subject bob, the session's is alice"
    );
}

#[tokio::test]
async fn a_refresh_never_extends_past_the_new_tokens_exp() {
    let ts = strict_server();
    let mut c = ts.tcp_client().await;
    c.connect_with(&[("token", &hs256(&claims("a", 600)))])
        .await;
    let exp = now() + 2;
    let shorter = hs256(&json!({"sub": "a", "exp": exp}));
    c.request(
        "SEND",
        &[("destination", "/wsb/refresh")],
        shorter.as_bytes(),
    )
    .await;
    let (error, _) = c.expect_error_and_close().await;
    assert_eq!(error.h("message"), "token expired");
    assert!(now() >= exp);
}

#[tokio::test]
async fn the_jwks_file_is_reloaded_when_it_changes() {
    use base64::Engine as _;
    let dir = std::env::temp_dir().join(format!("wsb-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.json");
    let set = |kid: &str, secret: &str| {
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        json!({"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": k}]}).to_string()
    };
    std::fs::write(&path, set("k1", "first-secret")).unwrap();
    let ts = server(AuthKey::JwksFile(path.clone()), |_| {});
    let token = |kid: &str, secret: &str| {
        let header = Header {
            kid: Some(kid.into()),
            ..Header::default()
        };
        encode(
            &header,
            &claims("j", 60),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    assert_eq!(
        connect_token(&ts, &token("k1", "first-secret")).await,
        Ok("j".into())
    );
    assert_eq!(
        connect_token(&ts, &token("k2", "second-secret-longer")).await,
        Err("token refused - no key for the token (kid k2)".into())
    );
    std::fs::write(&path, set("k2", "second-secret-longer")).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if connect_token(&ts, &token("k2", "second-secret-longer"))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "JWKS not reloaded in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        connect_token(&ts, &token("k1", "first-secret"))
            .await
            .is_err()
    );
    ts.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn host_hooks_still_decide() {
    let ts = hmac_server(|_| {});
    // The upgrade hook runs after the token check and its principal wins over `sub`.
    ts.server.on_upgrade(|info| match info.header("x-deny") {
        Some(_) => UpgradeDecision::Reject {
            status: 403,
            reason: "denied by host".into(),
        },
        None => UpgradeDecision::Accept { principal: None },
    });
    // The connect hook sees the token's subject as the principal and has the last word.
    ts.server
        .on_connect(|request| match request.principal.as_deref() {
            Some("banned") => ConnectDecision::Reject("banned by host".into()),
            p => ConnectDecision::Accept {
                user: p.map(|p| format!("host-{p}")),
            },
        });
    let good = hs256(&claims("alice", 60));
    let (status, _) =
        refusal_status(upgrade(&ts, &format!("?access_token={good}"), &[("x-deny", "1")]).await);
    assert_eq!(status, 403);
    let mut c = upgrade(&ts, &format!("?access_token={good}"), &[])
        .await
        .unwrap();
    assert_eq!(
        c.connect_with(&[]).await.header("user-name"),
        Some("host-alice")
    );
    assert_eq!(
        connect_token(&ts, &hs256(&claims("banned", 60))).await,
        Err("banned by host".into())
    );
}

#[tokio::test]
async fn configuration_mismatches_are_refused_at_new() {
    let mut config = ServerConfig::default();
    let mut auth = AuthConfig::new(AuthKey::PublicKeyPem(RSA_PUBLIC.to_vec()));
    auth.algorithms = vec![JwtAlgorithm::HS256];
    config.auth = Some(auth);
    let err = wsbroker::Server::new(config).unwrap_err().to_string();
    assert!(err.contains("HS256"), "{err}");
    let mut config = ServerConfig::default();
    config.auth = Some(AuthConfig::new(AuthKey::PublicKeyPem(b"junk".to_vec())));
    assert!(wsbroker::Server::new(config).is_err());
}

#[tokio::test]
async fn a_flood_of_bad_tokens_is_refused_while_good_clients_connect() {
    let ts = hmac_server(|_| {});
    let bad = hs256(&claims("mallory", 60)).replace('.', ".x");
    let flood: Vec<_> = (0..4)
        .map(|_| {
            let (tcp, bad) = (ts.tcp, bad.clone());
            tokio::spawn(async move {
                for _ in 0..250 {
                    let mut c = Client::tcp(tcp).await;
                    c.frame(
                        "CONNECT",
                        &[("accept-version", "1.2"), ("host", "h"), ("token", &bad)],
                        "",
                    )
                    .await;
                    let (error, _) = c.expect_error_and_close().await;
                    assert!(error.h("message").starts_with("token refused"), "{error:?}");
                }
            })
        })
        .collect();
    // Meanwhile good clients keep connecting (each bounded by WAIT inside `connect_token`).
    for i in 0..20 {
        let sub = format!("good-{i}");
        assert_eq!(connect_token(&ts, &hs256(&claims(&sub, 60))).await, Ok(sub));
    }
    for task in flood {
        task.await.unwrap();
    }
    assert_eq!(ts.server.stats().auth_refused, 1_000);
}

/// Raw WebSocket endpoints under token authentication: connecting needs permission to
/// subscribe to the endpoint's path (else 403), each message permission to publish to it
/// (else close 1008), and the connection closes when its token expires.
#[tokio::test]
async fn raw_endpoints_check_the_token_permissions_on_their_path() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let ts = hmac_server(|a| {
        a.leeway = Duration::ZERO;
        a.anonymous.subscribe = vec!["/game/lobby".into()];
    });
    let options = wsbroker::RawEndpointOptions {
        behaviour: wsbroker::RawBehaviour::Broadcast,
        ..Default::default()
    };
    ts.server
        .add_raw_endpoint("/game/lobby", options.clone())
        .unwrap();
    ts.server.add_raw_endpoint("/game/arena", options).unwrap();
    let open = |path: &str, token: Option<String>| {
        let query = token
            .map(|t| format!("?access_token={t}"))
            .unwrap_or_default();
        let url = format!("ws://{}{path}{query}", ts.ws);
        async move { tokio_tungstenite::connect_async(url).await }
    };
    let refused = |result: Result<_, WsError>| match result {
        Err(WsError::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected an HTTP refusal, the upgrade was accepted"),
    };

    // Anonymous: may join the lobby (listen) but not the arena.
    let (status, body) = refused(open("/game/arena", None).await);
    assert_eq!(status, 403);
    assert!(
        body.contains("anonymous clients may not subscribe to /game/arena"),
        "{body}"
    );
    let (mut listener, _) = open("/game/lobby", None).await.unwrap();
    // A player whose token lets it publish to the lobby; one that may only listen.
    let player = hs256(&json!({"sub": "p1", "exp": now() + 300,
        "wsb": {"sub": ["/game/**"], "pub": ["/game/lobby"]}}));
    let (mut p1, _) = open("/game/lobby", Some(player)).await.unwrap();
    p1.send(WsMessage::text("hello lobby")).await.unwrap();
    let got = tokio::time::timeout(WAIT, listener.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.into_text().unwrap().as_str(), "hello lobby");
    // The anonymous listener may not send: closed with 1008, nothing delivered.
    listener.send(WsMessage::text("let me talk")).await.unwrap();
    let closed = loop {
        match tokio::time::timeout(WAIT, listener.next()).await.unwrap() {
            Some(Ok(WsMessage::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(u16::from(closed.code), 1008);
    assert!(
        closed.reason.contains("may not send to /game/lobby"),
        "{}",
        closed.reason
    );

    // A short token: the connection closes with "token expired" at its exp.
    let short = hs256(&json!({"sub": "p2", "exp": now() + 2}));
    let (mut p2, _) = open("/game/arena", Some(short)).await.unwrap();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(6), p2.next())
            .await
            .unwrap()
        {
            Some(Ok(WsMessage::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => {}
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(u16::from(closed.code), 1008);
    assert_eq!(closed.reason.as_str(), "token expired");
    let stats = ts.server.stats();
    assert!(
        stats.auth_denied >= 2 && stats.auth_expired >= 1,
        "{stats:?}"
    );
    drop(p1);
    ts.finish().await;
}
