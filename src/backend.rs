//! Static backends: a named upstream address and the connection settings used to reach it.

use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{BackendConfig, BackendTls, ConfigError, LoadedConfig};

/// A backend ready for the request path: its address resolved and its peer template built.
#[derive(Debug)]
pub struct Backend {
    pub name: Arc<str>,
    pub address: SocketAddr,
    pub config: BackendConfig,
    peer: HttpPeer,
}

impl Backend {
    /// Resolves the backend's host once, here, at load: pingora's `HttpPeer::new` would resolve
    /// with blocking DNS (and panic on failure) if handed a name per request.
    pub fn build(
        config: &BackendConfig,
        at: &str,
        loaded: &LoadedConfig,
    ) -> Result<Backend, ConfigError> {
        let endpoint = &config.endpoint;
        let address = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()
            .map_err(|e| {
                loaded.error_at(
                    format!("{at}.static.host"),
                    format!("cannot resolve `{}`: {e}", endpoint.host),
                )
            })?
            .next()
            .ok_or_else(|| {
                loaded.error_at(
                    format!("{at}.static.host"),
                    format!("`{}` resolves to no address", endpoint.host),
                )
            })?;
        for (field, value) in [
            ("connect_timeout", config.connect_timeout),
            ("read_timeout", config.read_timeout),
            ("write_timeout", config.write_timeout),
        ] {
            if value.is_zero() {
                return Err(loaded.error_at(
                    format!("{at}.{field}"),
                    "must be greater than zero (a zero timeout would fail every request)",
                ));
            }
        }

        let mut peer = match &config.tls {
            None => HttpPeer::new(address, false, String::new()),
            Some(tls) => tls_peer(address, &endpoint.host, tls, at, loaded)?,
        };
        // pingora pools upstream connections by a hash that leaves out the trusted CAs: two
        // backends at one address and SNI but with different trust would share connections,
        // and one could skip the other's certificate check. Each backend gets its own pool.
        peer.group_key = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            config.name.hash(&mut hasher);
            hasher.finish()
        };
        // pingora leaves every timeout unset, which waits on a stuck backend forever.
        peer.options.connection_timeout = Some(config.connect_timeout);
        peer.options.read_timeout = Some(config.read_timeout);
        peer.options.write_timeout = Some(config.write_timeout);
        peer.options.idle_timeout = Some(config.idle_timeout);
        Ok(Backend {
            name: Arc::from(config.name.as_str()),
            address,
            config: config.clone(),
            peer,
        })
    }

    /// The peer to hand to pingora for one request.
    pub fn peer(&self) -> Box<HttpPeer> {
        Box::new(self.peer.clone())
    }
}

/// A TLS peer that verifies the backend's certificate chain and name.
fn tls_peer(
    address: SocketAddr,
    host: &str,
    tls: &BackendTls,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<HttpPeer, ConfigError> {
    // With rustls an empty SNI turns certificate verification off, so there is always one.
    let sni = match (&tls.sni, host.parse::<std::net::IpAddr>()) {
        (Some(sni), _) if !sni.is_empty() => sni.clone(),
        (Some(_), _) => {
            return Err(loaded.error_at(format!("{at}.tls.sni"), "the SNI name cannot be empty"))
        }
        (None, Err(_)) => host.to_owned(),
        (None, Ok(_)) => {
            return Err(loaded.error_at(
                format!("{at}.tls"),
                "`sni` is required when static.host is an IP address: it is the name the \
                 backend's certificate is checked against",
            ))
        }
    };
    let base = loaded.path.parent().unwrap_or(std::path::Path::new("."));
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

    match (&tls.client_cert, &tls.client_key) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
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
        _ => {
            return Err(loaded.error_at(
                format!("{at}.tls"),
                "`client_cert` and `client_key` go together",
            ))
        }
    }
    Ok(peer)
}
