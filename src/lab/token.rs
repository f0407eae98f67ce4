//! `switchyard token`: mints signed test tokens (for the demo, tests and manual checks).

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read key {path}: {source}")]
    ReadKey {
        path: String,
        source: std::io::Error,
    },
    #[error("key {path} is not a PKCS#8 PEM {family} private key: {source}")]
    BadKey {
        path: String,
        family: &'static str,
        source: jsonwebtoken::errors::Error,
    },
    #[error("`{0}` is not a claim: write name=value (name may be a dotted path)")]
    BadClaim(String),
    #[error("unsupported algorithm `{0}`")]
    BadAlgorithm(String),
    #[error("cannot sign: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

/// What goes into a token.
pub struct TokenSpec<'a> {
    pub key_pem: &'a Path,
    pub alg: Algorithm,
    pub kid: Option<&'a str>,
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
    /// `exp` is now plus this; `None` leaves `exp` out.
    pub ttl: Option<Duration>,
    /// `name=value` pairs; see [`set_claim`].
    pub claims: &'a [String],
}

pub fn parse_algorithm(name: &str) -> Result<Algorithm, TokenError> {
    name.parse()
        .map_err(|_| TokenError::BadAlgorithm(name.to_owned()))
}

/// Sets `name=value` in `claims`. `name` may be a dotted path (`userMetadata.version`) that
/// builds nested objects. `value` is JSON when it parses as JSON (`42`, `true`, `{"a":1}`,
/// `"42"`), else the plain string.
pub fn set_claim(claims: &mut Map<String, Value>, pair: &str) -> Result<(), TokenError> {
    let (path, raw) = pair
        .split_once('=')
        .filter(|(p, _)| !p.is_empty() && p.split('.').all(|s| !s.is_empty()))
        .ok_or_else(|| TokenError::BadClaim(pair.to_owned()))?;
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().unwrap_or(path);
    let mut target = claims;
    for segment in segments {
        let entry = target
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        target = match entry {
            Value::Object(map) => map,
            _ => return Err(TokenError::BadClaim(pair.to_owned())),
        };
    }
    target.insert(last.to_owned(), value);
    Ok(())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs a token as `spec` describes.
pub fn mint(spec: &TokenSpec<'_>) -> Result<String, TokenError> {
    Minter::new(spec)?.sign(None)
}

/// `count` tokens of one spec, each with its own `jti` (so no two are equal), signed on every
/// core: a load test's supply of tokens that a verified-token cache cannot help with.
pub fn mint_many(spec: &TokenSpec<'_>, count: usize) -> Result<Vec<String>, TokenError> {
    let minter = Minter::new(spec)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = count.div_ceil(workers).max(1);
    let indices: Vec<usize> = (0..count).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                let minter = &minter;
                scope.spawn(move || {
                    part.iter()
                        .map(|i| minter.sign(Some(&format!("t{i}"))))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut tokens = Vec::with_capacity(count);
        for handle in handles {
            match handle.join() {
                Ok(part) => tokens.extend(part?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(tokens)
    })
}

/// A loaded key and the claims every token of one spec shares.
struct Minter {
    key: EncodingKey,
    header: Header,
    claims: Map<String, Value>,
}

impl Minter {
    fn new(spec: &TokenSpec<'_>) -> Result<Self, TokenError> {
        let path = spec.key_pem.display().to_string();
        let pem = std::fs::read(spec.key_pem).map_err(|source| TokenError::ReadKey {
            path: path.clone(),
            source,
        })?;
        let (family, key) = match spec.alg {
            Algorithm::ES256 | Algorithm::ES384 => ("EC", EncodingKey::from_ec_pem(&pem)),
            Algorithm::EdDSA => ("Ed25519", EncodingKey::from_ed_pem(&pem)),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                ("HMAC", Ok(EncodingKey::from_secret(&pem)))
            }
            _ => ("RSA", EncodingKey::from_rsa_pem(&pem)),
        };
        let key = key.map_err(|source| TokenError::BadKey {
            path,
            family,
            source,
        })?;

        let mut claims = Map::new();
        let iat = now();
        claims.insert("iat".into(), iat.into());
        if let Some(ttl) = spec.ttl {
            claims.insert("exp".into(), (iat + ttl.as_secs()).into());
        }
        if let Some(iss) = spec.issuer {
            claims.insert("iss".into(), iss.into());
        }
        if let Some(aud) = spec.audience {
            claims.insert("aud".into(), aud.into());
        }
        for pair in spec.claims {
            set_claim(&mut claims, pair)?;
        }
        let mut header = Header::new(spec.alg);
        header.kid = spec.kid.map(str::to_owned);
        Ok(Minter {
            key,
            header,
            claims,
        })
    }

    fn sign(&self, jti: Option<&str>) -> Result<String, TokenError> {
        let mut claims = self.claims.clone();
        if let Some(jti) = jti {
            claims.insert("jti".into(), jti.into());
        }
        jsonwebtoken::encode(&self.header, &Value::Object(claims), &self.key)
            .map_err(TokenError::Sign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_nest_and_parse_json() {
        let mut m = Map::new();
        for pair in [
            "version=v2",
            "userMetadata.version=v2",
            "n=42",
            "s=\"42\"",
            "o={\"a\":1}",
        ] {
            set_claim(&mut m, pair).expect("claim parses");
        }
        assert_eq!(
            Value::Object(m),
            serde_json::json!({
                "version": "v2",
                "userMetadata": { "version": "v2" },
                "n": 42,
                "s": "42",
                "o": { "a": 1 },
            })
        );
        assert!(set_claim(&mut Map::new(), "novalue").is_err());
        assert!(set_claim(&mut Map::new(), "a..b=1").is_err());
    }
}
