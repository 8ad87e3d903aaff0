//! TLS on both listeners: STOMP over TLS+TCP, `wss://`, plain clients on a TLS port, client
//! certificates, and unusable certificate files. Certificates are made at test time (rcgen).

use crate::common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use wsbroker::{Error, Server, TlsConfig};

/// A CA, a server certificate and a client certificate it signed, written as PEM files into
/// a directory of their own (removed on drop).
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
    ca: Certificate,
    ca_key: KeyPair,
}

pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wsbroker-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "wsbroker test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key).unwrap();
        let pki = Pki { dir, ca, ca_key };
        pki.write("ca.pem", &pki.ca.pem());
        pki
    }

    pub(crate) fn issue(&self, usage: ExtendedKeyUsagePurpose) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// TLS settings with a fresh server certificate, optionally requiring client certificates.
    pub(crate) fn server_tls(&self, client_ca: bool) -> TlsConfig {
        let server = self.issue(ExtendedKeyUsagePurpose::ServerAuth);
        let mut tls = TlsConfig::new(
            self.write("server.pem", &server.cert_pem),
            self.write("server.key", &server.key_pem),
        );
        tls.client_ca_pem = client_ca.then(|| self.dir.join("ca.pem").into());
        tls
    }

    fn connector(&self, client_cert: Option<&Issued>) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots);
        let config = match client_cert {
            None => builder.with_no_client_auth(),
            Some(issued) => {
                let chain =
                    vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()];
                let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        TlsConnector::from(Arc::new(config))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn start(tls: TlsConfig) -> TestServer {
    let config = {
        let mut c = common::config();
        c.tls = Some(tls);
        c
    };
    TestServer::start_with(config)
}

async fn tls_connect(
    connector: &TlsConnector,
    addr: std::net::SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = timeout(WAIT, TcpStream::connect(addr)).await??;
    let name = ServerName::try_from("localhost").unwrap();
    timeout(WAIT, connector.connect(name, tcp)).await?
}

/// Reads raw STOMP until `needle` has arrived; panics after `WAIT` or at end of stream.
async fn read_until<S: AsyncRead + Unpin>(stream: &mut S, seen: &mut Vec<u8>, needle: &str) {
    let found = |seen: &[u8]| String::from_utf8_lossy(seen).contains(needle);
    timeout(WAIT, async {
        while !found(seen) {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "stream ended before {needle:?}; got {:?}",
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} within {WAIT:?}"));
}

/// CONNECT, SUBSCRIBE with a receipt, SEND to self, expect the MESSAGE: over any byte stream.
async fn stomp_round_trip<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let mut seen = Vec::new();
    stream
        .write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
        .await
        .unwrap();
    read_until(stream, &mut seen, "CONNECTED").await;
    stream
        .write_all(b"SUBSCRIBE\nid:0\ndestination:/topic/tls\nreceipt:r1\n\n\0")
        .await
        .unwrap();
    read_until(stream, &mut seen, "receipt-id:r1").await;
    stream
        .write_all(b"SEND\ndestination:/topic/tls\ncontent-type:text/plain\n\nover tls\0")
        .await
        .unwrap();
    read_until(stream, &mut seen, "over tls").await;
    assert!(String::from_utf8_lossy(&seen).contains("MESSAGE\n"));
}

/// True when the peer closes (or fails) the stream without ever answering with CONNECTED.
async fn refused<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> bool {
    let _ = stream
        .write_all(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
        .await;
    let mut seen = Vec::new();
    let outcome = timeout(WAIT, async {
        loop {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    outcome.is_ok() && !String::from_utf8_lossy(&seen).contains("CONNECTED")
}

#[tokio::test]
async fn stomp_over_tls_tcp_round_trip() {
    let pki = Pki::new();
    let server = start(pki.server_tls(false));
    let mut stream = tls_connect(&pki.connector(None), server.tcp)
        .await
        .expect("TLS handshake");
    stomp_round_trip(&mut stream).await;
    server.finish().await;
}

#[tokio::test]
async fn stomp_over_wss_round_trip() {
    let pki = Pki::new();
    let server = start(pki.server_tls(false));
    let stream = tls_connect(&pki.connector(None), server.ws)
        .await
        .expect("TLS handshake");
    let mut request = format!("wss://localhost:{}/ws", server.ws.port())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("v12.stomp"),
    );
    let (mut ws, _) = timeout(WAIT, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("upgrade in time")
        .expect("upgrade accepted");
    let mut text = String::new();
    let mut expect = async |ws: &mut tokio_tungstenite::WebSocketStream<_>, needle: &str| {
        timeout(WAIT, async {
            while !text.contains(needle) {
                match ws.next().await.expect("stream open").expect("ws message") {
                    WsMessage::Text(t) => text.push_str(&t),
                    WsMessage::Binary(b) => text.push_str(&String::from_utf8_lossy(&b)),
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} within {WAIT:?}"));
    };
    ws.send(WsMessage::text(
        "CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0",
    ))
    .await
    .unwrap();
    expect(&mut ws, "CONNECTED").await;
    ws.send(WsMessage::text(
        "SUBSCRIBE\nid:0\ndestination:/topic/wss\nreceipt:r1\n\n\0",
    ))
    .await
    .unwrap();
    expect(&mut ws, "receipt-id:r1").await;
    ws.send(WsMessage::text(
        "SEND\ndestination:/topic/wss\n\nover wss\0",
    ))
    .await
    .unwrap();
    expect(&mut ws, "over wss").await;
    server.finish().await;
}

#[tokio::test]
async fn plain_client_on_tls_port_is_closed() {
    let pki = Pki::new();
    let server = start(pki.server_tls(false));
    for addr in [server.tcp, server.ws] {
        let mut plain = timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        assert!(refused(&mut plain).await, "plain client on {addr} closed");
    }
    // The server is still fine.
    let mut stream = tls_connect(&pki.connector(None), server.tcp)
        .await
        .expect("TLS handshake");
    stomp_round_trip(&mut stream).await;
    server.finish().await;
}

#[tokio::test]
async fn client_certificate_required_when_ca_set() {
    let pki = Pki::new();
    let server = start(pki.server_tls(true));

    // No certificate: the handshake fails, or (TLS 1.3) the server's alert ends the stream.
    match tls_connect(&pki.connector(None), server.tcp).await {
        Err(_) => {}
        Ok(mut stream) => assert!(refused(&mut stream).await, "certless client refused"),
    }
    // A certificate from another CA is refused too.
    let other = Pki::new();
    let stranger = other.issue(ExtendedKeyUsagePurpose::ClientAuth);
    match tls_connect(&pki.connector(Some(&stranger)), server.tcp).await {
        Err(_) => {}
        Ok(mut stream) => assert!(refused(&mut stream).await, "foreign cert refused"),
    }

    let client = pki.issue(ExtendedKeyUsagePurpose::ClientAuth);
    let mut stream = tls_connect(&pki.connector(Some(&client)), server.tcp)
        .await
        .expect("TLS handshake with a client certificate");
    stomp_round_trip(&mut stream).await;
    server.finish().await;
}

#[test]
fn unusable_files_are_invalid_config() {
    let pki = Pki::new();
    let good = pki.server_tls(false);
    let garbage = pki.write("garbage.pem", "not a certificate\n");
    let missing = pki.dir.join("missing.pem");
    let cases = [
        {
            let mut c = good.clone();
            c.cert_chain_pem = missing.clone().into();
            c
        },
        {
            let mut c = good.clone();
            c.cert_chain_pem = garbage.clone().into();
            c
        },
        {
            let mut c = good.clone();
            c.private_key_pem = garbage.clone().into();
            c
        },
        {
            let mut c = good.clone();
            c.client_ca_pem = Some(missing.clone().into());
            c
        },
    ];
    for tls in cases {
        let named: Vec<String> = [&tls.cert_chain_pem, &tls.private_key_pem]
            .into_iter()
            .chain(tls.client_ca_pem.as_ref())
            .filter(|p| **p == missing.clone().into() || **p == garbage.clone().into())
            .map(wsbroker::PemSource::describe)
            .collect();
        let server = Server::new({
            let mut c = common::config();
            c.tls = Some(tls.clone());
            c
        })
        .expect("config itself is valid");
        match server.start() {
            Err(Error::InvalidConfig(message)) => {
                assert!(
                    named.iter().any(|n| message.contains(n.as_str())),
                    "{message:?} names the bad file {named:?}"
                );
            }
            other => panic!("{tls:?}: expected InvalidConfig, got {other:?}"),
        }
        assert!(!server.is_running());
    }
}

#[tokio::test]
async fn sockjs_over_https() {
    let pki = Pki::new();
    let server = start(pki.server_tls(false));
    let mut stream = tls_connect(&pki.connector(None), server.ws)
        .await
        .expect("TLS handshake");
    stream
        .write_all(b"GET /sockjs/info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, "\"entropy\"").await;
    let response = String::from_utf8_lossy(&seen);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("\"websocket\":true"), "{response}");
    server.stop().await.unwrap();
}
