//! The client's rustls configuration: trusted roots (the operating system's store and/or a
//! given CA bundle) and an optional client certificate, read once when the client is made.

use std::sync::Arc;

use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use super::config::ClientTlsConfig;
use crate::error::{Error, Result};
use crate::transport::tls::read_certs;

/// Builds the connector; an unusable file or an empty trust store is `InvalidConfig`.
pub(crate) fn connector(config: &ClientTlsConfig) -> Result<TlsConnector> {
    let bad = |msg: String| Error::InvalidConfig(format!("client tls: {msg}"));
    let mut roots = rustls::RootCertStore::empty();
    if config.system_roots {
        // Unreadable entries of the system store are skipped, like browsers do.
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::debug!(errors = ?native.errors, "no usable certificate in the system store");
        }
    }
    if let Some(path) = &config.ca_pem {
        for cert in read_certs(path, "ca_pem")? {
            roots
                .add(cert)
                .map_err(|e| bad(format!("ca_pem {}: {e}", path.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(bad(
            "no trusted certificate: the system store is empty or off, and no ca_pem".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&config.client_cert_pem, &config.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client_cert_pem")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| bad(format!("client_key_pem {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(format!("client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}
