//! Loading the TLS settings into a rustls acceptor (ring provider), checked before binding.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::config::{PemSource, TlsConfig};
use crate::error::{Error, Result};

fn invalid(source: &str, what: &str, detail: impl std::fmt::Display) -> Error {
    Error::InvalidConfig(format!("tls {what} {source}: {detail}"))
}

/// The certificates of a PEM file (used by the client's TLS settings too).
pub(crate) fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    load_certs(&PemSource::File(path.to_path_buf()), what)
}

fn load_certs(source: &PemSource, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let name = source.describe();
    let certs = match source {
        PemSource::File(path) => CertificateDer::pem_file_iter(path)
            .map_err(|e| invalid(&name, what, e))?
            .collect::<std::result::Result<Vec<_>, _>>(),
        PemSource::Pem(bytes) => {
            CertificateDer::pem_slice_iter(bytes).collect::<std::result::Result<Vec<_>, _>>()
        }
    }
    .map_err(|e| invalid(&name, what, e))?;
    if certs.is_empty() {
        return Err(invalid(&name, what, "no PEM certificate found"));
    }
    Ok(certs)
}

fn load_key(source: &PemSource, what: &str) -> Result<PrivateKeyDer<'static>> {
    match source {
        PemSource::File(path) => PrivateKeyDer::from_pem_file(path),
        PemSource::Pem(bytes) => PrivateKeyDer::from_pem_slice(bytes),
    }
    .map_err(|e| invalid(&source.describe(), what, e))
}

/// Reads the PEM sources and builds the acceptor; a missing or unusable file (or PEM text)
/// is `InvalidConfig` naming it.
pub(crate) fn acceptor(config: &TlsConfig) -> Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = load_certs(&config.cert_chain_pem, "cert_chain_pem")?;
    let key = load_key(&config.private_key_pem, "private_key_pem")?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig(format!("tls: {e}")))?;
    let builder = match &config.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(source) => {
            let name = source.describe();
            let mut roots = rustls::RootCertStore::empty();
            for cert in load_certs(source, "client_ca_pem")? {
                roots
                    .add(cert)
                    .map_err(|e| invalid(&name, "client_ca_pem", e))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| invalid(&name, "client_ca_pem", e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let server = builder.with_single_cert(chain, key).map_err(|e| {
        Error::InvalidConfig(format!(
            "tls cert_chain_pem {} / private_key_pem {}: {e}",
            config.cert_chain_pem.describe(),
            config.private_key_pem.describe()
        ))
    })?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}
