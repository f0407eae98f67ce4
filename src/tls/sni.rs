//! Choosing a certificate by the name the client asks for (SNI): the exact name, then the
//! longest wildcard suffix, then the default. No SNI gets the default; no match and no
//! default fails the handshake with an alert (`no_certificate` in the handshake failures).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use switchyard_filters::router::Hostname;

/// One listener's certificates by SNI name. Built with its pipeline, so a reload brings new
/// certificates to new handshakes while established connections keep theirs.
#[derive(Debug, Default)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Suffixes with their leading dot (`.example.com`), longest first.
    wildcards: Vec<(String, Arc<CertifiedKey>)>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// Chooses `key` for `name`. Validation has made each name unique across a listener.
    pub fn add(&mut self, name: &Hostname, key: Arc<CertifiedKey>) {
        match name {
            Hostname::Exact(name) => {
                self.exact.insert(name.clone(), key);
            }
            Hostname::Wildcard(suffix) => {
                self.wildcards.push((suffix.clone(), key));
                self.wildcards
                    .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
            }
        }
    }

    pub fn set_default(&mut self, key: Arc<CertifiedKey>) {
        self.default = Some(key);
    }

    /// The certificate for `server_name` (as the client sent it, any case).
    pub fn choose(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = server_name else {
            return self.default.clone();
        };
        let name = name.to_ascii_lowercase();
        if let Some(key) = self.exact.get(&name) {
            return Some(key.clone());
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
            .map(|(_, key)| key.clone())
            .or_else(|| self.default.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(client_hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::sign::{Signer, SigningKey};
    use rustls::{SignatureAlgorithm, SignatureScheme};

    /// A key that signs nothing: choosing a certificate never uses the key.
    #[derive(Debug)]
    struct NoKey;

    impl SigningKey for NoKey {
        fn choose_scheme(&self, _: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
            None
        }
        fn algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::ECDSA
        }
    }

    /// A certificate told apart by its one byte.
    fn key(tag: u8) -> Arc<CertifiedKey> {
        Arc::new(CertifiedKey::new(
            vec![rustls_pki_types::CertificateDer::from(vec![tag])],
            Arc::new(NoKey),
        ))
    }

    fn tag(key: Option<Arc<CertifiedKey>>) -> Option<u8> {
        key.map(|k| k.cert[0].as_ref()[0])
    }

    #[test]
    fn exact_then_longest_wildcard_then_default() {
        let mut sni = SniResolver::default();
        let host = |n: &str| Hostname::parse(n, "t").expect("name");
        sni.add(&host("api.example.com"), key(1));
        sni.add(&host("*.example.com"), key(2));
        sni.add(&host("*.eu.example.com"), key(3));
        assert_eq!(tag(sni.choose(Some("API.example.com"))), Some(1));
        assert_eq!(tag(sni.choose(Some("www.example.com"))), Some(2));
        assert_eq!(tag(sni.choose(Some("a.eu.example.com"))), Some(3));
        assert_eq!(tag(sni.choose(Some("example.com"))), None);
        assert_eq!(tag(sni.choose(None)), None);
        sni.set_default(key(9));
        assert_eq!(tag(sni.choose(Some("other.test"))), Some(9));
        assert_eq!(tag(sni.choose(None)), Some(9));
    }
}
