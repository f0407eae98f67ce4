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
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

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
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    Some(ClientCertificate {
        subject: rfc4514(cert.subject()),
        common_name,
        dns_names: dns_names(&cert),
        fingerprint: hex(&digest),
    })
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A distinguished name as RFC 4514 writes it: the last RDN first, `,` between RDNs and `+`
/// within one, each value escaped, so no value can pass for more RDNs (x509-parser's own
/// `Display` joins with `, ` and escapes nothing: a CN of `x, O=Acme` would read as two).
pub(super) fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            let attributes: Vec<String> = rdn
                .iter()
                .map(|attr| {
                    let kind = oid2abbrev(attr.attr_type(), oid_registry())
                        .map(str::to_owned)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let value = match attr.as_str() {
                        Ok(text) => escape(text),
                        // Not a string type: its DER, in hex (RFC 4514 §2.4).
                        Err(_) => format!("#{}", hex(attr.attr_value().as_bytes())),
                    };
                    format!("{kind}={value}")
                })
                .collect();
            attributes.join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 §2.4: `"+,;<>\` anywhere, `#` or a space first, a space last, with a backslash;
/// NUL as `\00`.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_so_they_cannot_pass_for_more_names() {
        assert_eq!(escape("legacy-client, O=Acme"), "legacy-client\\, O=Acme");
        assert_eq!(escape("#1 a+b "), "\\#1 a\\+b\\ ");
        assert_eq!(escape(" x"), "\\ x");
        assert_eq!(escape("plain.name"), "plain.name");
    }
}
