//! Reading a JWKS document into verification keys, each pinned to one algorithm.
//!
//! `DecodingKey::from_jwk` ignores a JWK's `alg` and `use`, so both are handled here: the
//! algorithm comes from the key (`alg`, else its type and curve) and never from a token, and
//! encryption keys are skipped. Symmetric (`oct`) keys are refused: a JWKS is published, and a
//! published HMAC secret would let anyone mint tokens.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A public key ready to verify tokens signed with `alg`.
#[derive(Clone)]
pub(super) struct VerifyingKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum JwksError {
    #[error("not a JWKS document: {0}")]
    Document(String),
    #[error("keys[{index}]{}: {message}", kid.as_ref().map(|k| format!(" (kid `{k}`)")).unwrap_or_default())]
    Key {
        index: usize,
        kid: Option<String>,
        message: String,
    },
    #[error("the JWKS holds no signing key")]
    NoSigningKey,
}

/// A provider's keys at one moment: from the config, or one fetch of a published JWKS.
#[derive(Debug, Clone)]
pub(super) struct KeySet {
    keys: Vec<VerifyingKey>,
    /// Unique to this parse of a document: what a verified token was checked against, so a
    /// cached verdict dies with the keys that gave it.
    generation: u64,
    /// A hash of the document's text, to tell an unchanged refresh from a rotation.
    fingerprint: u64,
}

impl KeySet {
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub(super) fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids, `(no kid)` for a key without one, for logs and `check`.
    pub(super) fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.kid.clone().unwrap_or_else(|| "(no kid)".to_owned()))
            .collect()
    }
}

#[derive(serde::Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS document from the config. Every key must be usable (an unusable key in a
/// config is a mistake to report, not to skip), except encryption keys, which are skipped.
pub(super) fn parse(text: &str) -> Result<KeySet, JwksError> {
    let (keys, skipped) = parse_keys(text)?;
    match skipped.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(keys),
    }
}

/// Parses a JWKS document an identity provider publishes. A provider may list keys this
/// gateway cannot use (another curve, an algorithm it refuses) next to the ones it signs with,
/// so unusable keys are skipped and returned for logging; the document is rejected only when
/// it is not a JWKS or holds no usable signing key.
pub(super) fn parse_published(text: &str) -> Result<(KeySet, Vec<JwksError>), JwksError> {
    parse_keys(text)
}

fn parse_keys(text: &str) -> Result<(KeySet, Vec<JwksError>), JwksError> {
    let doc: Document =
        serde_json::from_str(text).map_err(|e| JwksError::Document(e.to_string()))?;
    let mut keys = Vec::with_capacity(doc.keys.len());
    let mut skipped = Vec::new();
    for (index, raw) in doc.keys.into_iter().enumerate() {
        match parse_key(index, raw) {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(e) => skipped.push(e),
        }
    }
    if keys.is_empty() {
        return Err(skipped
            .into_iter()
            .next()
            .unwrap_or(JwksError::NoSigningKey));
    }
    static GENERATIONS: AtomicU64 = AtomicU64::new(1);
    let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let fingerprint = hasher.finish();
    Ok((
        KeySet {
            keys,
            generation,
            fingerprint,
        },
        skipped,
    ))
}

/// One key: `None` for an encryption key, which has no place in verification.
fn parse_key(index: usize, raw: serde_json::Value) -> Result<Option<VerifyingKey>, JwksError> {
    let kid = raw.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
    let key_error = |message: String| JwksError::Key {
        index,
        kid: kid.clone(),
        message,
    };
    let jwk: Jwk = serde_json::from_value(raw).map_err(|e| key_error(e.to_string()))?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Ok(None);
    }
    let alg = pinned_algorithm(&jwk).map_err(key_error)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| key_error(e.to_string()))?;
    Ok(Some(VerifyingKey {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    }))
}

/// The kinds of public key a JWKS may hold, by what they can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// Every algorithm a key may be pinned to: its JWK name, and the kind of key it needs. The
/// first of each kind is the one a key of that kind verifies when its JWK names none.
const SIGNING_ALGORITHMS: [(KeyAlgorithm, Algorithm, KeyType); 9] = [
    (KeyAlgorithm::RS256, Algorithm::RS256, KeyType::Rsa),
    (KeyAlgorithm::RS384, Algorithm::RS384, KeyType::Rsa),
    (KeyAlgorithm::RS512, Algorithm::RS512, KeyType::Rsa),
    (KeyAlgorithm::PS256, Algorithm::PS256, KeyType::Rsa),
    (KeyAlgorithm::PS384, Algorithm::PS384, KeyType::Rsa),
    (KeyAlgorithm::PS512, Algorithm::PS512, KeyType::Rsa),
    (KeyAlgorithm::ES256, Algorithm::ES256, KeyType::P256),
    (KeyAlgorithm::ES384, Algorithm::ES384, KeyType::P384),
    (KeyAlgorithm::EdDSA, Algorithm::EdDSA, KeyType::Ed25519),
];

/// Every algorithm a key may be pinned to, so a provider can prepare a validation for each.
pub(super) fn signing_algorithms() -> impl Iterator<Item = Algorithm> {
    SIGNING_ALGORITHMS.iter().map(|&(_, alg, _)| alg)
}

/// The one algorithm a key verifies: its `alg` when given (checked against its type), else
/// its type's usual one.
fn pinned_algorithm(jwk: &Jwk) -> Result<Algorithm, String> {
    // The declared `alg` is judged first: an HMAC key says so by its `alg` before its type.
    let declared = jwk
        .common
        .key_algorithm
        .map(|declared| {
            match SIGNING_ALGORITHMS
                .iter()
                .find(|(name, _, _)| *name == declared)
            {
                Some(&(_, alg, kind)) => Ok((alg, kind)),
                None if matches!(
                    declared,
                    KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512
                ) =>
                {
                    Err("HMAC algorithms are not accepted in a JWKS".to_owned())
                }
                None => Err(format!("alg {declared:?} is not a signing algorithm")),
            }
        })
        .transpose()?;
    let key_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => KeyType::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => KeyType::P256,
            EllipticCurve::P384 => KeyType::P384,
            ref other => return Err(format!("curve {other:?} is not supported")),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => KeyType::Ed25519,
            ref other => return Err(format!("curve {other:?} is not supported")),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err("symmetric (oct) keys are not accepted in a JWKS".to_owned())
        }
        _ => return Err("unsupported key type".to_owned()),
    };
    match declared {
        Some((alg, kind)) if kind == key_type => Ok(alg),
        Some((alg, _)) => Err(format!("alg {alg:?} does not fit the key's type")),
        // The first algorithm listed for the key's type is its usual one.
        None => SIGNING_ALGORITHMS
            .iter()
            .find(|&&(_, _, kind)| kind == key_type)
            .map(|&(_, alg, _)| alg)
            .ok_or_else(|| "unsupported key type".to_owned()),
    }
}
