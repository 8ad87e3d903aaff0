//! TLS through the C ABI: a `wss://` server configured from in-memory PEM and from PEM
//! files, reached by a rustls client that trusts only the test CA; a client CA set with
//! `wsb_config_set_tls_client_ca` refuses a client without a certificate.

use std::net::TcpStream;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tungstenite::Message;
use wsbroker::ffi::*;

const WAIT: Duration = Duration::from_secs(5);
const OK: wsb_result = wsb_result::WSB_OK;

struct Pki {
    ca_der: Vec<u8>,
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "wsbroker ffi test CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_der: ca.der().to_vec(),
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// Creates and starts a server on 127.0.0.1:0 after `setup` configured TLS.
fn start(setup: impl FnOnce(*mut wsb_config)) -> *mut wsb_server {
    let mut config = ptr::null_mut();
    let mut server = ptr::null_mut();
    let addr = "127.0.0.1:0";
    // SAFETY: valid out pointers, a live config, valid strings.
    unsafe {
        assert_eq!(wsb_config_new(&mut config), OK);
        assert_eq!(
            wsb_config_set_listen(config, addr.as_ptr().cast(), addr.len()),
            OK
        );
        assert_eq!(wsb_config_set_worker_threads(config, 2), OK);
        setup(config);
        assert_eq!(wsb_server_new(config, &mut server), OK);
        wsb_config_free(config);
        assert_eq!(wsb_server_start(server), OK);
    }
    server
}

fn port(server: *mut wsb_server) -> u16 {
    let mut port = 0;
    // SAFETY: a live, started server; a valid out pointer.
    assert_eq!(unsafe { wsb_server_local_port(server, &mut port) }, OK);
    port
}

/// A `wss://` STOMP CONNECT; returns the first frame the server sends, or the error.
fn wss_connect(port: u16, ca_der: &[u8]) -> Result<String, String> {
    let mut roots = RootCertStore::empty();
    roots.add(ca_der.to_vec().into()).unwrap();
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = StreamOwned::new(ClientConnection::new(Arc::new(config), name).unwrap(), tcp);
    let url = format!("wss://localhost:{port}/ws");
    let (mut ws, _) = tungstenite::client(url.as_str(), tls).map_err(|e| e.to_string())?;
    ws.send(Message::text(
        "CONNECT\naccept-version:1.2\nhost:localhost\n\n\0",
    ))
    .map_err(|e| e.to_string())?;
    match ws.read().map_err(|e| e.to_string())? {
        Message::Text(text) => Ok(text.to_string()),
        other => Err(format!("unexpected {other:?}")),
    }
}

fn free(server: *mut wsb_server) {
    // SAFETY: from wsb_server_new, freed once.
    assert_eq!(unsafe { wsb_server_free(server) }, OK);
}

#[test]
fn wss_from_in_memory_pem() {
    let pki = pki();
    let server = start(|config| {
        // SAFETY: a live config; buffers valid for their lengths.
        let rc = unsafe {
            wsb_config_set_tls_pem(
                config,
                pki.cert_pem.as_ptr(),
                pki.cert_pem.len(),
                pki.key_pem.as_ptr(),
                pki.key_pem.len(),
            )
        };
        assert_eq!(rc, OK);
    });
    let frame = wss_connect(port(server), &pki.ca_der).expect("wss connect");
    assert!(frame.starts_with("CONNECTED\n"), "{frame:?}");
    free(server);
}

#[test]
fn wss_from_pem_files() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("wsbroker-ffi-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let server = start(|config| {
        // SAFETY: a live config; strings valid for their lengths.
        let rc = unsafe {
            wsb_config_set_tls_files(
                config,
                cert.as_ptr().cast(),
                cert.len(),
                key.as_ptr().cast(),
                key.len(),
            )
        };
        assert_eq!(rc, OK);
    });
    let frame = wss_connect(port(server), &pki.ca_der).expect("wss connect");
    assert!(frame.starts_with("CONNECTED\n"), "{frame:?}");
    free(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn client_ca_requires_a_client_certificate() {
    let pki = pki();
    // Without a server certificate first, the client CA is refused.
    let mut config = ptr::null_mut();
    // SAFETY: valid out pointer, a live config, a buffer valid for its length.
    unsafe {
        assert_eq!(wsb_config_new(&mut config), OK);
        assert_eq!(
            wsb_config_set_tls_client_ca(config, pki.ca_pem.as_ptr(), pki.ca_pem.len(), false),
            wsb_result::WSB_ERR_INVALID_ARGUMENT
        );
        wsb_config_free(config);
    }
    let server = start(|config| {
        // SAFETY: a live config; buffers valid for their lengths.
        unsafe {
            assert_eq!(
                wsb_config_set_tls_pem(
                    config,
                    pki.cert_pem.as_ptr(),
                    pki.cert_pem.len(),
                    pki.key_pem.as_ptr(),
                    pki.key_pem.len(),
                ),
                OK
            );
            assert_eq!(
                wsb_config_set_tls_client_ca(config, pki.ca_pem.as_ptr(), pki.ca_pem.len(), false),
                OK
            );
        }
    });
    let refused = wss_connect(port(server), &pki.ca_der);
    assert!(refused.is_err(), "no client certificate, yet {refused:?}");
    free(server);
}
