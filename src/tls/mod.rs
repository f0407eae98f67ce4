//! TLS termination on listeners.
//!
//! A TLS listener's [`TlsTerminator`] is compiled with its pipeline: its certificates are read
//! and checked then ([`certificates`]), chosen per handshake by SNI ([`sni`]), and a reload
//! that changes them brings them to new handshakes while established connections keep theirs.
//! The handshake runs in the listener's guard (`proxy::guard`), after the connection has been
//! counted against `max_connections` and under `tls_handshake_timeout`; what it learns of the
//! client travels to the requests in a [`TlsConnection`].
//!
//! rustls with the ring provider, as pingora's own rustls support uses: TLS 1.2 and 1.3, the
//! protocols offered by ALPN (HTTP/2 and HTTP/1.1 by default), and optional mutual TLS
//! against a CA file.

mod certificates;
mod connection;
mod sni;

use std::sync::Arc;
use std::time::Duration;

use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::server::handshake_with_callback;
use pingora::protocols::Stream;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use switchyard_filters::router::Hostname;

use crate::config::{ConfigError, ListenerTls, LoadedConfig, TlsVersion};
pub use certificates::LoadedCertificate;
pub use connection::TlsConnection;
use sni::SniResolver;

/// The crypto rustls uses here: ring, as pingora's rustls build does.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One TLS listener's handshake settings, compiled from its `tls` section.
pub struct TlsTerminator {
    acceptor: Acceptor,
    /// The certificates, in config order, for `check` to describe.
    pub certificates: Vec<LoadedCertificate>,
    /// Whether a client certificate is required.
    pub mutual: bool,
    pub min_version: TlsVersion,
}

impl std::fmt::Debug for TlsTerminator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTerminator")
            .field("certificates", &self.certificates)
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl TlsTerminator {
    /// Reads and checks the certificate files of `config` (the listener's `tls`, at field
    /// path `at`). What still lets it serve but deserves attention is pushed onto `warnings`.
    pub fn build(
        config: &ListenerTls,
        at: &str,
        loaded: &LoadedConfig,
        warnings: &mut Vec<ConfigError>,
    ) -> Result<Self, ConfigError> {
        let provider = provider();
        let mut resolver = SniResolver::default();
        let mut loaded_certificates = Vec::with_capacity(config.certificates.len());
        for (i, entry) in config.certificates.iter().enumerate() {
            let entry_at = format!("{at}.certificates[{i}]");
            let cert = certificates::load(entry, &entry_at, loaded, &provider, warnings)?;
            if entry.hostnames.is_empty() {
                resolver.set_default(cert.key.clone());
            }
            for (j, name) in entry.hostnames.iter().enumerate() {
                // Validation has parsed every name already.
                let field = format!("{entry_at}.hostnames[{j}]");
                let name = Hostname::parse(name, &field)
                    .map_err(|e| loaded.error_at(&field, e.message))?;
                resolver.add(&name, cert.key.clone());
            }
            loaded_certificates.push(cert);
        }

        let versions: &[&rustls::SupportedProtocolVersion] = match config.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| loaded.error_at(format!("{at}.min_version"), e.to_string()))?;
        let builder = match &config.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let field = format!("{at}.client_ca");
                let path = loaded.origin.base_dir().join(ca);
                let mut roots = RootCertStore::empty();
                for cert in certificates::read_chain(&path, &field, loaded)? {
                    roots
                        .add(cert)
                        .map_err(|e| loaded.error_at(&field, format!("{}: {e}", path.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| loaded.error_at(&field, format!("{}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_cert_resolver(Arc::new(resolver));
        server.alpn_protocols = config.alpn.iter().map(|p| p.wire().to_vec()).collect();
        Ok(TlsTerminator {
            acceptor: Acceptor::from_server_config(Arc::new(server)),
            certificates: loaded_certificates,
            mutual: config.client_ca.is_some(),
            min_version: config.min_version,
        })
    }

    /// Runs the server side of the handshake on a freshly accepted connection, for at most
    /// `timeout`.
    pub async fn accept(&self, stream: Stream, timeout: Duration) -> Result<Stream, Failure> {
        // Listeners are bound with `add_tcp`, so what arrives is a plain TCP stream.
        let tcp = stream
            .into_any()
            .downcast::<L4Stream>()
            .map_err(|_| Failure::Error)?;
        let handshake = handshake_with_callback(&self.acceptor, *tcp, &connection::OnHandshake);
        match tokio::time::timeout(timeout, handshake).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(e)) => {
                log::debug!("TLS handshake failed: {e}");
                Err(Failure::of(&e))
            }
            Ok(Ok(tls)) => Ok(Box::new(tls)),
        }
    }
}

/// Why a handshake failed: the `reason` label of `tls_handshake_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not done within `tls_handshake_timeout`.
    Timeout,
    /// No certificate for the SNI name and no default.
    NoCertificate,
    /// Mutual TLS: no client certificate, or one the CA did not sign.
    ClientCertificate,
    /// No TLS version, cipher suite or ALPN protocol in common.
    Incompatible,
    /// The client closed the connection during the handshake.
    Closed,
    /// Anything else: not TLS, a malformed message.
    Error,
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::NoCertificate => "no_certificate",
            Failure::ClientCertificate => "client_certificate",
            Failure::Incompatible => "incompatible",
            Failure::Closed => "closed",
            Failure::Error => "error",
        }
    }

    /// What pingora's handshake error says went wrong. pingora keeps rustls' error only as
    /// text in its context (`explain_err` drops the typed cause), so the text is read, by
    /// the phrases rustls 0.23 and tokio-rustls write.
    fn of(error: &pingora::Error) -> Self {
        let text = error.to_string();
        const PHRASES: &[(&str, Failure)] = &[
            (
                "no server certificate chain resolved",
                Failure::NoCertificate,
            ),
            ("peer sent no certificates", Failure::ClientCertificate),
            ("invalid peer certificate", Failure::ClientCertificate),
            ("peer is incompatible", Failure::Incompatible),
            (
                "peer doesn't support any known protocol",
                Failure::Incompatible,
            ),
            ("tls handshake eof", Failure::Closed),
            ("Connection reset", Failure::Closed),
            ("Broken pipe", Failure::Closed),
        ];
        PHRASES
            .iter()
            .find(|(phrase, _)| text.contains(phrase))
            .map_or(Failure::Error, |(_, failure)| *failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::{ErrorType, OrErr};

    /// A rustls error as pingora's handshake reports it: wrapped in an I/O error by
    /// tokio-rustls, then turned into context text twice.
    fn reported(error: rustls::Error) -> Box<pingora::Error> {
        let io: std::result::Result<(), std::io::Error> =
            Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error));
        let stream = io.explain_err(ErrorType::TLSHandshakeFailure, |e| {
            format!("tls connect error: {e}")
        });
        stream
            .explain_err(ErrorType::TLSHandshakeFailure, |e| {
                format!("TLS accept() failed: {e}")
            })
            .expect_err("an error")
    }

    #[test]
    fn handshake_failures_are_told_apart_by_what_rustls_said() {
        let cases = [
            (
                rustls::Error::General("no server certificate chain resolved".into()),
                Failure::NoCertificate,
            ),
            (
                rustls::Error::NoCertificatesPresented,
                Failure::ClientCertificate,
            ),
            (
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
                Failure::ClientCertificate,
            ),
            (
                rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
                Failure::Incompatible,
            ),
            (rustls::Error::NoApplicationProtocol, Failure::Incompatible),
            (rustls::Error::DecryptError, Failure::Error),
        ];
        for (error, expected) in cases {
            let text = error.to_string();
            assert_eq!(Failure::of(&reported(error)), expected, "{text}");
        }
        let eof: std::result::Result<(), std::io::Error> = Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "tls handshake eof",
        ));
        let eof = eof
            .explain_err(ErrorType::TLSHandshakeFailure, |e| {
                format!("tls connect error: {e}")
            })
            .expect_err("an error");
        assert_eq!(Failure::of(&eof), Failure::Closed);
    }
}
