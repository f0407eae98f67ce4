//! Checking a token: which provider, which key, then signature and claims.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use super::jwks::{signing_algorithms, KeySet, VerifyingKey};
use super::key_cache::KeySource;
use super::rejection::Reason;
use crate::VerifiedJwt;

/// Tokens longer than this are rejected before any parsing: real access tokens are a few KiB,
/// and parsing cost should not be the client's to choose.
pub(super) const MAX_TOKEN_LEN: usize = 16 * 1024;

/// How claims are checked, the same for every provider of one filter.
#[derive(Debug, Clone, Copy)]
pub(super) struct ClaimRules {
    pub clock_skew: Duration,
    pub require_exp: bool,
}

/// An issuer, its audiences and where its keys come from.
pub(super) struct Provider {
    name: Arc<str>,
    issuer: String,
    audiences: Vec<String>,
    keys: KeySource,
    /// The validation for tokens of each algorithm a key may be pinned to, built once.
    validations: Vec<(Algorithm, Validation)>,
}

impl Provider {
    pub(super) fn new(
        name: &str,
        issuer: &str,
        audiences: &[String],
        keys: KeySource,
        rules: ClaimRules,
    ) -> Self {
        let validations = signing_algorithms()
            .map(|alg| (alg, validation_for(alg, issuer, audiences, rules)))
            .collect();
        Provider {
            name: Arc::from(name),
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
            keys,
            validations,
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn keys(&self) -> &KeySource {
        &self.keys
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "provider {}: issuer {}, audiences [{}], {}",
            self.name,
            self.issuer,
            self.audiences.join(", "),
            self.keys.describe()
        )
    }

    fn validation(&self, alg: Algorithm) -> Option<&Validation> {
        self.validations
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }
}

/// The key in `keys` for a token, by `kid`; without a `kid`, the one key of the token's
/// algorithm.
fn key_for<'k>(
    keys: &'k KeySet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<&'k VerifyingKey, Reason> {
    let key = match kid {
        Some(kid) => keys
            .keys()
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or(Reason::UnknownKey)?,
        None => {
            let mut candidates = keys.keys().iter().filter(|k| k.alg == alg);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => only,
                (Some(_), Some(_)) => return Err(Reason::UnknownKey),
                (None, _) if keys.is_empty() => return Err(Reason::UnknownKey),
                (None, _) => return Err(Reason::AlgorithmNotAllowed),
            }
        }
    };
    // The algorithm is the key's, never the token's choice.
    if key.alg != alg {
        return Err(Reason::AlgorithmNotAllowed);
    }
    Ok(key)
}

fn validation_for(
    alg: Algorithm,
    issuer: &str,
    audiences: &[String],
    rules: ClaimRules,
) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = rules.clock_skew.as_secs();
    v.validate_exp = rules.require_exp;
    // jsonwebtoken leaves nbf unchecked by default.
    v.validate_nbf = true;
    v.set_issuer(&[issuer]);
    let mut required: HashSet<String> = HashSet::from(["iss".to_owned()]);
    if rules.require_exp {
        required.insert("exp".to_owned());
    }
    if audiences.is_empty() {
        v.validate_aud = false;
    } else {
        v.set_audience(audiences);
        required.insert("aud".to_owned());
    }
    v.required_spec_claims = required;
    v
}

/// The providers of one `jwt_authn` filter.
pub(super) struct Verifier {
    providers: Vec<Provider>,
}

#[derive(serde::Deserialize)]
struct IssuerOnly {
    #[serde(default)]
    iss: Option<serde_json::Value>,
}

impl Verifier {
    pub(super) fn new(providers: Vec<Provider>) -> Self {
        Verifier { providers }
    }

    pub(super) fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Verifies `token` and returns its claims, or why it is not acceptable together with the
    /// index of the provider that judged it (`None` when no provider could be chosen). Before a
    /// remote provider's first fetch it waits for it (bounded), and a `kid` missing from a
    /// remote set asks for a refetch (rate-limited) before the token is refused.
    pub(super) async fn verify(&self, token: &str) -> Verification {
        let selected = self.select(token)?;
        let provider = &self.providers[selected.provider];
        let keys = provider
            .keys
            .initial()
            .await
            .ok_or((Some(selected.provider), Reason::KeysUnavailable))?;
        match self.check(&selected, &keys) {
            Err((_, Reason::UnknownKey)) if selected.kid.is_some() => {
                match provider.keys.after_unknown_kid().await {
                    Some(newer) if !Arc::ptr_eq(&newer, &keys) => self.check(&selected, &newer),
                    _ => Err((Some(selected.provider), Reason::UnknownKey)),
                }
            }
            judged => judged,
        }
    }

    /// Reads what picks the key and the provider: the header and the (unverified) issuer.
    fn select<'t>(&self, token: &'t str) -> Result<Selected<'t>, (Option<usize>, Reason)> {
        if token.len() > MAX_TOKEN_LEN {
            return Err((None, Reason::Malformed));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| (None, header_failure(token)))?;

        // The issuer picks the provider. This read of the payload is unverified and used for
        // nothing else; the chosen provider's validation checks `iss` again after the
        // signature.
        let unverified: IssuerOnly = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| (None, Reason::Malformed))?;
        let provider = match unverified.iss.as_ref().and_then(|i| i.as_str()) {
            Some(iss) => self
                .providers
                .iter()
                .position(|p| p.issuer == iss)
                .ok_or((None, Reason::WrongIssuer))?,
            None if self.providers.len() == 1 => 0,
            None => return Err((None, Reason::MissingClaim("iss"))),
        };
        Ok(Selected {
            token,
            provider,
            kid: header.kid,
            alg: header.alg,
        })
    }

    /// Checks the selected token's signature and claims with `keys`.
    fn check(&self, selected: &Selected<'_>, keys: &KeySet) -> Verification {
        let index = selected.provider;
        let provider = &self.providers[index];
        let judged = |reason| (Some(index), reason);
        let key = key_for(keys, selected.kid.as_deref(), selected.alg).map_err(judged)?;
        let validation = provider
            .validation(key.alg)
            .ok_or(judged(Reason::AlgorithmNotAllowed))?;
        let data = jsonwebtoken::decode::<serde_json::Value>(selected.token, &key.key, validation)
            .map_err(|e| judged(reason_for(e.kind())))?;
        if !data.claims.is_object() {
            return Err(judged(Reason::Malformed));
        }
        Ok(Verified {
            provider: index,
            jwt: VerifiedJwt::new(provider.name.clone(), data.claims),
            generation: keys.generation(),
        })
    }
}

/// A token that passed: its provider (by index), its claims, and the key set that verified it.
#[derive(Debug)]
pub(super) struct Verified {
    pub provider: usize,
    pub jwt: VerifiedJwt,
    pub generation: u64,
}

/// A verified token, or why it was refused and by which provider (`None`: none was chosen).
pub(super) type Verification = Result<Verified, (Option<usize>, Reason)>;

/// A token whose provider is chosen, before its signature is checked.
struct Selected<'t> {
    token: &'t str,
    provider: usize,
    kid: Option<String>,
    alg: Algorithm,
}

/// Why the header could not be read: an algorithm we do not accept at all (`none`, an unknown
/// name), or plain garbage.
fn header_failure(token: &str) -> Reason {
    let alg = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(alg) if alg.parse::<Algorithm>().is_err() => Reason::AlgorithmNotAllowed,
        _ => Reason::Malformed,
    }
}

fn reason_for(kind: &ErrorKind) -> Reason {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_) => Reason::BadSignature,
        ErrorKind::ExpiredSignature => Reason::Expired,
        ErrorKind::ImmatureSignature => Reason::NotYetValid,
        ErrorKind::InvalidIssuer => Reason::WrongIssuer,
        ErrorKind::InvalidAudience => Reason::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            Reason::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(claim) => Reason::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            _ => "other",
        }),
        _ => Reason::Malformed,
    }
}
