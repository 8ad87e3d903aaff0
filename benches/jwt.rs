//! Token authentication costs (issue 17):
//!
//! 1. verification per token (`Authenticator::verify`) for HS256, RS256, ES256 and EdDSA;
//! 2. STOMP connects per second over TCP (connect, CONNECT, CONNECTED, close) without tokens,
//!    with HS256 and with ES256 tokens;
//! 3. a good client's connect latency while other clients hammer the server with bad tokens.
//!
//! ```text
//! cargo bench --bench jwt                 # full run (about a minute on 2 cores)
//! cargo bench --bench jwt -- --quick      # 1/10 of the work
//! ```
//!
//! Run without `--bench` (as `cargo test --benches` does) it is a tiny smoke run. Everything is
//! on 127.0.0.1, port 0; every loop is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wsbroker::{AuthConfig, AuthKey, Authenticator, Permissions, Server, ServerConfig};

const RSA_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/jwt/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/jwt/rsa_public.pem");
const SECRET: &[u8] = b"bench-secret-bench-secret-bench!";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A key for the server and a token signed for it.
struct Kind {
    name: &'static str,
    key: AuthKey,
    token: String,
}

fn kinds() -> Vec<Kind> {
    let claims = serde_json::json!({"sub": "bench", "exp": now() + 3600,
        "wsb": {"sub": ["/topic/**"], "pub": ["/topic/**"]}});
    let sign = |alg: Algorithm, key: &EncodingKey| encode(&Header::new(alg), &claims, key).unwrap();
    let es = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    vec![
        Kind {
            name: "HS256",
            key: AuthKey::HmacSecret(SECRET.to_vec()),
            token: sign(Algorithm::HS256, &EncodingKey::from_secret(SECRET)),
        },
        Kind {
            name: "RS256 (2048)",
            key: AuthKey::PublicKeyPem(RSA_PUBLIC.to_vec()),
            token: sign(
                Algorithm::RS256,
                &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
            ),
        },
        Kind {
            name: "ES256",
            key: AuthKey::PublicKeyPem(es.public_key_pem().into_bytes()),
            token: sign(
                Algorithm::ES256,
                &EncodingKey::from_ec_pem(es.serialize_pem().as_bytes()).unwrap(),
            ),
        },
        Kind {
            name: "EdDSA",
            key: AuthKey::PublicKeyPem(ed.public_key_pem().into_bytes()),
            token: sign(
                Algorithm::EdDSA,
                &EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
            ),
        },
    ]
}

fn verify_cost(kind: &Kind, n: usize) -> f64 {
    let config = AuthConfig::new(kind.key.clone());
    let auth = Authenticator::new(&config, None).unwrap();
    let defaults = Permissions::all();
    let at = now();
    assert!(auth.verify(&kind.token, at, &defaults).is_ok());
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(auth.verify(std::hint::black_box(&kind.token), at, &defaults)).ok();
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn server(key: Option<AuthKey>) -> Server {
    let mut config = ServerConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.tcp_listen = Some("127.0.0.1:0".parse().unwrap());
    config.worker_threads = 1;
    config.session.heartbeat_send = Duration::ZERO;
    config.session.heartbeat_receive = Duration::ZERO;
    config.auth = key.map(AuthConfig::new);
    let server = Server::new(config).unwrap();
    server.start().unwrap();
    server
}

/// One STOMP connect over TCP: the first frame's command.
async fn connect_once(addr: SocketAddr, token: Option<&str>) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let token = token.map(|t| format!("token:{t}\n")).unwrap_or_default();
    let frame = format!("CONNECT\naccept-version:1.2\nhost:b\n{token}\n\0");
    tcp.write_all(frame.as_bytes()).await.unwrap();
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buf.contains(&0) {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut chunk))
            .await
            .expect("answer in time")
            .unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Connects per second with `workers` clients each connecting `per_worker` times.
async fn connects_per_second(
    addr: SocketAddr,
    token: Option<String>,
    workers: usize,
    per_worker: usize,
) -> f64 {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_worker {
                let got = connect_once(addr, token.as_deref()).await;
                assert_eq!(got, "CONNECTED");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (workers * per_worker) as f64 / start.elapsed().as_secs_f64()
}

/// Median connect latency of one good client over `n` connects, in µs.
async fn good_latency(addr: SocketAddr, token: &str, n: usize) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        assert_eq!(connect_once(addr, Some(token)).await, "CONNECTED");
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let scale = if !bench {
        0.005
    } else if quick {
        0.1
    } else {
        1.0
    };
    let count = |n: usize| ((n as f64 * scale) as usize).max(2);
    let kinds = kinds();

    println!("== verification cost per token (Authenticator::verify, one thread)");
    for kind in &kinds {
        let n = if kind.name.starts_with("HS") {
            count(200_000)
        } else {
            count(20_000)
        };
        println!(
            "{:>14}: {:8.2} µs/token  ({n} tokens)",
            kind.name,
            verify_cost(kind, n)
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (workers, per_worker) = (8, count(1_000));
    println!(
        "\n== STOMP connects/s over TCP ({workers} clients x {per_worker} connects, server: 1 IO thread)"
    );
    let cases: [(&str, Option<&Kind>); 3] = [
        ("no JWT", None),
        ("HS256", Some(&kinds[0])),
        ("ES256", Some(&kinds[2])),
    ];
    for (name, kind) in cases {
        let s = server(kind.map(|k| k.key.clone()));
        let addr = s.tcp_local_addr().unwrap();
        let token = kind.map(|k| k.token.clone());
        let rate = runtime.block_on(connects_per_second(addr, token, workers, per_worker));
        println!("{name:>14}: {rate:8.0} connects/s");
        s.stop(Duration::from_secs(1)).unwrap();
    }

    let bad_total = count(10_000);
    println!(
        "\n== a good client's median connect latency (HS256) while {bad_total} connects with bad tokens hammer the server"
    );
    let s = server(Some(kinds[0].key.clone()));
    let addr = s.tcp_local_addr().unwrap();
    let good = kinds[0].token.clone();
    let samples = count(2_000);
    let quiet = runtime.block_on(good_latency(addr, &good, samples));
    let (loaded, refused) = runtime.block_on(async {
        let bad = {
            let mut t = good.clone();
            t.pop();
            t.push(if good.ends_with('A') { 'B' } else { 'A' });
            t
        };
        let mut attackers = Vec::new();
        for _ in 0..4 {
            let bad = bad.clone();
            attackers.push(tokio::spawn(async move {
                let mut refused = 0usize;
                for _ in 0..bad_total / 4 {
                    if connect_once(addr, Some(&bad)).await == "ERROR" {
                        refused += 1;
                    }
                }
                refused
            }));
        }
        let latency = good_latency(addr, &good, samples).await;
        let mut refused = 0;
        for a in attackers {
            refused += a.await.unwrap();
        }
        (latency, refused)
    });
    println!("{:>14}: {quiet:8.0} µs median", "quiet");
    println!(
        "{:>14}: {loaded:8.0} µs median ({refused} bad connects refused)",
        "under attack"
    );
    s.stop(Duration::from_secs(1)).unwrap();
}
