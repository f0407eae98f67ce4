//! Checking a token: which provider, which key, then signature and claims.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use super::jwks::VerifyingKey;
use super::rejection::Reason;
use crate::VerifiedJwt;

/// Tokens longer than this are rejected before any parsing: real access tokens are a few KiB,
/// and parsing cost should not be the client's to choose.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// How claims are checked, the same for every provider of one filter.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRules {
    pub clock_skew: Duration,
    pub require_exp: bool,
}

/// One key of one provider, with the validation its tokens must pass.
struct ProviderKey {
    key: VerifyingKey,
    validation: Validation,
}

/// An issuer, its audiences and its keys.
pub struct Provider {
    name: Arc<str>,
    issuer: String,
    audiences: Vec<String>,
    keys: Vec<ProviderKey>,
}

impl Provider {
    pub fn new(
        name: &str,
        issuer: &str,
        audiences: &[String],
        keys: Vec<VerifyingKey>,
        rules: ClaimRules,
    ) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| {
                let validation = validation_for(&key, issuer, audiences, rules);
                ProviderKey { key, validation }
            })
            .collect();
        Provider {
            name: Arc::from(name),
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
            keys,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn describe(&self) -> String {
        let kids: Vec<String> = self
            .keys
            .iter()
            .map(|k| {
                format!(
                    "{} {:?}",
                    k.key.kid.as_deref().unwrap_or("(no kid)"),
                    k.key.alg
                )
            })
            .collect();
        format!(
            "provider {}: issuer {}, audiences [{}], keys [{}]",
            self.name,
            self.issuer,
            self.audiences.join(", "),
            kids.join(", ")
        )
    }

    /// The key for a token, by `kid`; without a `kid`, the one key of the token's algorithm.
    fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<&ProviderKey, Reason> {
        let key = match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.key.kid.as_deref() == Some(kid))
                .ok_or(Reason::UnknownKey)?,
            None => {
                let mut candidates = self.keys.iter().filter(|k| k.key.alg == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => only,
                    (Some(_), Some(_)) => return Err(Reason::UnknownKey),
                    (None, _) if self.keys.is_empty() => return Err(Reason::UnknownKey),
                    (None, _) => return Err(Reason::AlgorithmNotAllowed),
                }
            }
        };
        // The algorithm is the key's, never the token's choice.
        if key.key.alg != alg {
            return Err(Reason::AlgorithmNotAllowed);
        }
        Ok(key)
    }
}

fn validation_for(
    key: &VerifyingKey,
    issuer: &str,
    audiences: &[String],
    rules: ClaimRules,
) -> Validation {
    let mut v = Validation::new(key.alg);
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
pub struct Verifier {
    providers: Vec<Provider>,
}

#[derive(serde::Deserialize)]
struct IssuerOnly {
    #[serde(default)]
    iss: Option<serde_json::Value>,
}

impl Verifier {
    pub fn new(providers: Vec<Provider>) -> Self {
        Verifier { providers }
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Verifies `token` and returns its claims, or why it is not acceptable together with the
    /// index of the provider that judged it (`None` when no provider could be chosen).
    pub fn verify(&self, token: &str) -> Result<(usize, VerifiedJwt), (Option<usize>, Reason)> {
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
        let index = match unverified.iss.as_ref().and_then(|i| i.as_str()) {
            Some(iss) => self
                .providers
                .iter()
                .position(|p| p.issuer == iss)
                .ok_or((None, Reason::WrongIssuer))?,
            None if self.providers.len() == 1 => 0,
            None => return Err((None, Reason::MissingClaim("iss"))),
        };
        let provider = &self.providers[index];
        let judged = |reason| (Some(index), reason);

        let key = provider
            .key_for(header.kid.as_deref(), header.alg)
            .map_err(judged)?;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key.key, &key.validation)
            .map_err(|e| judged(reason_for(e.kind())))?;
        if !data.claims.is_object() {
            return Err(judged(Reason::Malformed));
        }
        Ok((
            index,
            VerifiedJwt {
                provider: provider.name.clone(),
                claims: data.claims,
            },
        ))
    }
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
