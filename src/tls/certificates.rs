//! Reading a listener's certificates: PEM files into a key rustls can sign with, checked
//! before anything serves with them, so that a broken file is a config error naming its field
//! and never a panic or a failed handshake later.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::{CertificateConfig, ConfigError, LoadedConfig};

/// A certificate expiring sooner than this is worth a warning at load.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// One certificate entry, loaded and checked.
#[derive(Debug)]
pub struct LoadedCertificate {
    pub key: Arc<CertifiedKey>,
    /// The leaf's subject, as text.
    pub subject: String,
    /// The leaf's DNS names (subjectAltName).
    pub dns_names: Vec<String>,
    pub not_after: SystemTime,
}

/// Where one PEM comes from: a file (relative to the config's folder) or text in the config.
enum Pem<'a> {
    File(PathBuf),
    Text(&'a str),
}

impl<'a> Pem<'a> {
    /// The entry's `name` (`cert`, `key`) as given, and the field it was given in; validation
    /// has made sure one of the two forms is.
    fn of(
        file: Option<&PathBuf>,
        text: Option<&'a String>,
        name: &str,
        at: &str,
        base: &Path,
    ) -> (Self, String) {
        match (file, text) {
            (Some(path), _) => (Pem::File(base.join(path)), format!("{at}.{name}")),
            (None, text) => (
                Pem::Text(text.map_or("", String::as_str)),
                format!("{at}.{name}_pem"),
            ),
        }
    }

    /// How messages name it.
    fn describe(&self) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Text(_) => "the PEM text".to_owned(),
        }
    }

    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, rustls_pki_types::pem::Error> {
        match self {
            Pem::File(path) => CertificateDer::pem_file_iter(path)?.collect(),
            Pem::Text(text) => CertificateDer::pem_slice_iter(text.as_bytes()).collect(),
        }
    }

    fn private_key(&self) -> Result<PrivateKeyDer<'static>, rustls_pki_types::pem::Error> {
        match self {
            Pem::File(path) => PrivateKeyDer::from_pem_file(path),
            Pem::Text(text) => PrivateKeyDer::from_pem_slice(text.as_bytes()),
        }
    }
}

/// Reads `entry`'s chain and key and checks that they belong together. `at` is the entry's
/// field path. Problems that still let it serve (expired, soon to expire, a hostname the
/// certificate does not cover) are pushed onto `warnings`.
pub fn load(
    entry: &CertificateConfig,
    at: &str,
    loaded: &LoadedConfig,
    provider: &CryptoProvider,
    warnings: &mut Vec<ConfigError>,
) -> Result<LoadedCertificate, ConfigError> {
    let base = loaded.origin.base_dir();
    let (cert, cert_field) = Pem::of(
        entry.cert.as_ref(),
        entry.cert_pem.as_ref(),
        "cert",
        at,
        base,
    );
    let (key_pem, key_field) = Pem::of(entry.key.as_ref(), entry.key_pem.as_ref(), "key", at, base);
    let chain = chain_of(&cert, &cert_field, loaded)?;
    let key = key_pem.private_key().map_err(|e| {
        loaded.error_at(
            &key_field,
            format!("cannot read a private key from {}: {e}", key_pem.describe()),
        )
    })?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| {
        loaded.error_at(
            &key_field,
            format!("{}: unusable private key: {e}", key_pem.describe()),
        )
    })?;
    let leaf = chain[0].clone();
    let key = CertifiedKey::new(chain, signing_key);
    if let Err(e) = key.keys_match() {
        // rustls cannot tell for some key types; a mismatch it can tell is an error.
        if !matches!(
            e,
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)
        ) {
            return Err(loaded.error_at(
                &key_field,
                format!(
                    "{} is not the key of the certificate in {}",
                    key_pem.describe(),
                    entry
                        .cert
                        .as_ref()
                        .map_or("cert_pem".to_owned(), |c| c.display().to_string())
                ),
            ));
        }
    }

    let (_, parsed) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| {
        loaded.error_at(
            &cert_field,
            format!("{}: not an X.509 certificate: {e}", cert.describe()),
        )
    })?;
    let dns_names = dns_names(&parsed);
    let not_after = unix_time(parsed.validity().not_after.timestamp());
    let not_before = unix_time(parsed.validity().not_before.timestamp());
    let now = SystemTime::now();
    let cert_name = entry
        .cert
        .as_ref()
        .map_or("the certificate".to_owned(), |c| c.display().to_string());
    if not_after <= now {
        warnings.push(loaded.error_at(
            &cert_field,
            format!(
                "{cert_name} expired on {}; clients will refuse it",
                humantime::format_rfc3339_seconds(not_after)
            ),
        ));
    } else if not_after.duration_since(now).unwrap_or_default() < EXPIRY_WARNING {
        warnings.push(loaded.error_at(
            &cert_field,
            format!(
                "{cert_name} expires on {}",
                humantime::format_rfc3339_seconds(not_after)
            ),
        ));
    }
    if not_before > now {
        warnings.push(loaded.error_at(
            &cert_field,
            format!(
                "{cert_name} is not valid before {}",
                humantime::format_rfc3339_seconds(not_before)
            ),
        ));
    }
    for (j, name) in entry.hostnames.iter().enumerate() {
        if !covers(&dns_names, name) {
            warnings.push(loaded.error_at(
                format!("{at}.hostnames[{j}]"),
                format!("{cert_name} does not name `{name}`; clients will refuse it for that name"),
            ));
        }
    }
    Ok(LoadedCertificate {
        key: Arc::new(key),
        subject: parsed.subject().to_string(),
        dns_names,
        not_after,
    })
}

/// The certificates of a PEM file, leaf first; at least one.
pub fn read_chain(
    path: &Path,
    field: &str,
    loaded: &LoadedConfig,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    chain_of(&Pem::File(path.to_owned()), field, loaded)
}

fn chain_of(
    pem: &Pem<'_>,
    field: &str,
    loaded: &LoadedConfig,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let chain = pem
        .certificates()
        .map_err(|e| loaded.error_at(field, format!("cannot read {}: {e}", pem.describe())))?;
    if chain.is_empty() {
        return Err(loaded.error_at(
            field,
            format!("{} holds no PEM certificate", pem.describe()),
        ));
    }
    Ok(chain)
}

fn unix_time(seconds: i64) -> SystemTime {
    match u64::try_from(seconds) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => UNIX_EPOCH,
    }
}

/// The DNS names of a certificate's subjectAltName extension.
pub fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a certificate naming `dns_names` is valid for `hostname` as configured: a listed
/// name covers itself; a certificate wildcard (`*.example.com`) covers one label below it.
fn covers(dns_names: &[String], hostname: &str) -> bool {
    let hostname = hostname.to_ascii_lowercase();
    dns_names.iter().any(|name| {
        if *name == hostname {
            return true;
        }
        match (name.strip_prefix("*."), hostname.split_once('.')) {
            (Some(suffix), Some((label, rest))) => label != "*" && rest == suffix,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn certificate_names_cover_exact_and_one_wildcard_label() {
        let names = ["api.example.com".to_owned(), "*.example.org".to_owned()];
        assert!(covers(&names, "API.example.com"));
        assert!(covers(&names, "www.example.org"));
        assert!(covers(&names, "*.example.org"));
        assert!(!covers(&names, "a.b.example.org"));
        assert!(!covers(&names, "*.example.com"));
        assert!(!covers(&names, "example.org"));
    }
}
