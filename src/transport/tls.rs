//! Loading the TLS settings into a rustls acceptor (ring provider), checked before binding.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::config::TlsConfig;
use crate::error::{Error, Result};

fn invalid(path: &Path, what: &str, detail: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("tls {what} {}: {detail}", path.display()))
}

pub(crate) fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(path, what, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, what, e))?;
    if certs.is_empty() {
        return Err(invalid(path, what, "no PEM certificate found"));
    }
    Ok(certs)
}

/// Reads the PEM files and builds the acceptor; a missing or unusable file is
/// `InvalidConfig` naming it.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs(&config.cert_chain_pem, "cert_chain_pem")?;
    let key = PrivateKeyDer::from_pem_file(&config.private_key_pem)
        .map_err(|e| invalid(&config.private_key_pem, "private_key_pem", e))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig(format!("tls: {e}")))?;
    let builder = match &config.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(path, "client_ca_pem")? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(path, "client_ca_pem", e))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| invalid(path, "client_ca_pem", e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder.with_single_cert(chain, key).map_err(|e| {
        Error::InvalidConfig(format!(
            "tls cert_chain_pem {} / private_key_pem {}: {e}",
            config.cert_chain_pem.display(),
            config.private_key_pem.display()
        ))
    })?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
