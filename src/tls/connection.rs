//! What a TLS handshake leaves for the requests of its connection: the client certificate
//! (mutual TLS) and the flag that the guard's header deadline reads. It travels in pingora's
//! `SslDigest` extension, which every request of the connection sees, HTTP/1.1 or HTTP/2;
//! a task-local would not reach HTTP/2 streams, which pingora serves on tasks of their own.

use std::any::Any;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::proxy::Session;
use switchyard_filters::ClientCertificate;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::certificates::dns_names;

/// The TLS side of one client connection.
#[derive(Debug, Default)]
pub struct TlsConnection {
    header_read: AtomicBool,
    /// The certificate the client presented, verified against `client_ca`.
    pub client_certificate: Option<Arc<ClientCertificate>>,
}

impl TlsConnection {
    /// Records that a request header arrived: the guard's deadline no longer applies.
    pub fn mark_header_read(&self) {
        self.header_read.store(true, Ordering::Relaxed);
    }

    pub fn header_read(&self) -> bool {
        self.header_read.load(Ordering::Relaxed)
    }

    /// The TLS side of `session`'s connection; `None` on plaintext.
    pub fn of(session: &Session) -> Option<&TlsConnection> {
        session
            .digest()?
            .ssl_digest
            .as_ref()?
            .extension
            .get::<TlsConnection>()
    }
}

/// Builds the [`TlsConnection`] once the handshake is done.
pub(super) struct OnHandshake;

#[async_trait]
impl TlsAccept for OnHandshake {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let client_certificate = tls
            .peer_certificate_der()
            .and_then(client_certificate)
            .map(Arc::new);
        Some(Arc::new(TlsConnection {
            header_read: AtomicBool::new(false),
            client_certificate,
        }))
    }
}

/// What CEL and the access log see of a verified client certificate.
fn client_certificate(der: &[u8]) -> Option<ClientCertificate> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let digest = pingora::tls::hash_certificate(&der.to_vec().into());
    let mut fingerprint = String::with_capacity(digest.len() * 2);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(fingerprint, "{byte:02x}");
    }
    Some(ClientCertificate {
        subject: cert.subject().to_string(),
        dns_names: dns_names(&cert),
        fingerprint,
    })
}
