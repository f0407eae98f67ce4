//! Reading a listener's certificates: PEM files into a key rustls can sign with, checked
//! before anything serves with them, so that a broken file is a config error naming its field
//! and never a panic or a failed handshake later.

use std::path::Path;
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

/// Reads `entry`'s chain and key (paths relative to `base`) and checks that they belong
/// together. `at` is the entry's field path. Problems that still let it serve (expired, soon
/// to expire, a hostname the certificate does not cover) are pushed onto `warnings`.
pub fn load(
    entry: &CertificateConfig,
    at: &str,
    loaded: &LoadedConfig,
    provider: &CryptoProvider,
    warnings: &mut Vec<ConfigError>,
) -> Result<LoadedCertificate, ConfigError> {
    let base = loaded.origin.base_dir();
    let chain = read_chain(&base.join(&entry.cert), &format!("{at}.cert"), loaded)?;
    let key_path = base.join(&entry.key);
    let key_field = format!("{at}.key");
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        loaded.error_at(
            &key_field,
            format!("cannot read a private key from {}: {e}", key_path.display()),
        )
    })?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| {
        loaded.error_at(
            &key_field,
            format!("{}: unusable private key: {e}", key_path.display()),
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
                    key_path.display(),
                    entry.cert.display()
                ),
            ));
        }
    }

    let cert_field = format!("{at}.cert");
    let (_, parsed) = X509Certificate::from_der(leaf.as_ref()).map_err(|e| {
        loaded.error_at(
            &cert_field,
            format!("{}: not an X.509 certificate: {e}", entry.cert.display()),
        )
    })?;
    let dns_names = dns_names(&parsed);
    let not_after = unix_time(parsed.validity().not_after.timestamp());
    let not_before = unix_time(parsed.validity().not_before.timestamp());
    let now = SystemTime::now();
    let cert_name = entry.cert.display();
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
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .map_err(|e| loaded.error_at(field, format!("cannot read {}: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(loaded.error_at(
            field,
            format!("{} holds no PEM certificate", path.display()),
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
