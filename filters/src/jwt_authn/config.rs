//! The YAML shape of `jwt_authn`.
//!
//! ```yaml
//! - name: jwt_authn
//!   config:
//!     mode: optional              # strict (default) | optional | permissive
//!     realm: public-api           # in WWW-Authenticate (default: switchyard)
//!     clock_skew: 60s             # leeway for exp and nbf (default 60s)
//!     require_exp: true           # tokens without exp are rejected (default true)
//!     forward: false              # pass the token on to the backend (default false)
//!     from: { header: authorization, scheme: Bearer }   # default; or { header: x-token },
//!                                                       # or { query: access_token }
//!     providers:
//!       - name: lab
//!         issuer: versioned-routing-lab
//!         audiences: [public-api]  # empty or absent: aud is not checked
//!         jwks:
//!           inline: '{"keys": [...]}'   # or file: demo/jwks.json (relative to the config)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A valid token is required: no token, or a bad one, is 401.
    #[default]
    Strict,
    /// No token passes (without claims); a token that is present must be valid.
    Optional,
    /// Never rejects: a valid token yields claims, anything else passes without them.
    Permissive,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Optional => "optional",
            Mode::Permissive => "permissive",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtAuthnConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_realm")]
    pub realm: String,
    #[serde(default = "default_clock_skew", with = "humantime_serde")]
    pub clock_skew: Duration,
    #[serde(default = "default_true")]
    pub require_exp: bool,
    #[serde(default)]
    pub forward: bool,
    #[serde(default)]
    pub from: TokenSourceConfig,
    pub providers: Vec<ProviderConfig>,
}

fn default_realm() -> String {
    "switchyard".to_owned()
}

fn default_clock_skew() -> Duration {
    Duration::from_secs(60)
}

fn default_true() -> bool {
    true
}

/// Where the token is read from: a header (with or without an auth scheme) or a query
/// parameter. Exactly one of `header` and `query`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSourceConfig {
    #[serde(default)]
    pub header: Option<String>,
    /// The auth scheme in front of the token (`Bearer`), compared case-insensitively. Only
    /// with `header`; absent means the whole header value is the token.
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
}

impl Default for TokenSourceConfig {
    fn default() -> Self {
        TokenSourceConfig {
            header: Some("authorization".to_owned()),
            scheme: Some("Bearer".to_owned()),
            query: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub name: String,
    /// The `iss` this provider's tokens carry; it also picks the provider for a token.
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
}

/// Where a provider's keys come from: exactly one of `inline` and `file`. (A struct rather
/// than an enum: serde_yaml reads enums from YAML tags, not from one-key maps.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSource {
    /// The JWKS document itself, as a JSON string.
    #[serde(default)]
    pub inline: Option<String>,
    /// A JWKS file, read at config load; relative paths start at the config file's folder.
    #[serde(default)]
    pub file: Option<PathBuf>,
}
