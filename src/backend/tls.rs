//! The TLS side of a backend's peer: SNI, trusted roots and the client certificate.

use std::net::SocketAddr;

use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{BackendTls, ConfigError, LoadedConfig};

/// A TLS peer that verifies the backend's certificate chain and name.
pub(super) fn tls_peer(
    address: SocketAddr,
    host: &str,
    tls: &BackendTls,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<HttpPeer, ConfigError> {
    // With rustls an empty SNI turns certificate verification off; validation has made sure
    // there is a name (`sni`, or the host's own when it is not an address).
    let sni = tls.sni.clone().unwrap_or_else(|| host.to_owned());
    let base = loaded.origin.base_dir();
    let mut peer = HttpPeer::new(address, true, sni);
    peer.options.verify_cert = true;
    peer.options.verify_hostname = true;

    if let Some(ca_file) = &tls.ca_file {
        let path = base.join(ca_file);
        let field = format!("{at}.tls.ca_file");
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect())
            .map_err(|e| {
                loaded.error_at(
                    &field,
                    format!("cannot read CA certificates from {}: {e}", path.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(loaded.error_at(&field, format!("{} holds no certificate", path.display())));
        }
        let cas: Vec<WrappedX509> = certs
            .into_iter()
            .map(|der| WrappedX509::new(der.as_ref().to_vec(), parse_x509))
            .collect();
        peer.options.ca = Some(cas.into());
    }

    // Validation has made sure `client_cert` and `client_key` come together.
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        let cert_path = base.join(cert);
        let key_path = base.join(key);
        let chain: Vec<Vec<u8>> = CertificateDer::pem_file_iter(&cert_path)
            .and_then(|certs| certs.map(|c| c.map(|c| c.as_ref().to_vec())).collect())
            .map_err(|e| {
                loaded.error_at(
                    format!("{at}.tls.client_cert"),
                    format!("cannot read {}: {e}", cert_path.display()),
                )
            })?;
        if chain.is_empty() {
            return Err(loaded.error_at(
                format!("{at}.tls.client_cert"),
                format!("{} holds no certificate", cert_path.display()),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
            loaded.error_at(
                format!("{at}.tls.client_key"),
                format!("cannot read a private key from {}: {e}", key_path.display()),
            )
        })?;
        peer.client_cert_key = Some(std::sync::Arc::new(CertKey::new(
            chain,
            key.secret_der().to_vec(),
        )));
    }
    Ok(peer)
}
