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
//!     token_cache_entries: 4096   # verified tokens remembered (default 4096; 0: no cache)
//!     from: { header: authorization, scheme: Bearer }   # default; or { header: x-token },
//!                                                       # or { query: access_token }
//!     providers:
//!       - name: lab
//!         issuer: versioned-routing-lab
//!         audiences: [public-api]  # empty or absent: aud is not checked
//!         jwks:
//!           inline: '{"keys": [...]}'   # or file: demo/jwks.json (relative to the config)
//!       - name: frontegg
//!         issuer: https://acme.frontegg.com
//!         jwks:
//!           remote:                       # fetched through a backend, kept fresh
//!             backend: frontegg-idp
//!             path: /.well-known/jwks.json
//!             default_refresh: 10m        # when the answer has no Cache-Control max-age
//!             min_refresh: 30s            # max-age is clamped to [min_refresh, max_refresh]
//!             max_refresh: 24h
//!             fetch_timeout: 3s           # one fetch; also how long the very first request waits
//!             unknown_kid_cooldown: 30s   # at most one refetch per this for an unknown kid
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Mode {
    /// A valid token is required: no token, or a bad one, is 401.
    #[default]
    Strict,
    /// No token passes (without claims); a token that is present must be valid.
    Optional,
    /// Never rejects: a valid token yields claims, anything else passes without them.
    Permissive,
}

impl Mode {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Optional => "optional",
            Mode::Permissive => "permissive",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JwtAuthnConfig {
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
    /// How many verified tokens to remember, so that a token sent again skips the signature
    /// check (never the time checks). 0 turns the cache off.
    #[serde(default = "default_token_cache_entries")]
    pub token_cache_entries: usize,
    pub providers: Vec<ProviderConfig>,
}

fn default_token_cache_entries() -> usize {
    4096
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
pub(super) struct TokenSourceConfig {
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
pub(super) struct ProviderConfig {
    pub name: String,
    /// The `iss` this provider's tokens carry; it also picks the provider for a token.
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks: JwksSource,
}

/// Where a provider's keys come from: exactly one of `inline`, `file` and `remote`. (A struct
/// rather than an enum: serde_yaml reads enums from YAML tags, not from one-key maps.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct JwksSource {
    /// The JWKS document itself, as a JSON string.
    #[serde(default)]
    pub inline: Option<String>,
    /// A JWKS file, read at config load; relative paths start at the config file's folder.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// A JWKS fetched from a backend and refreshed in the background.
    #[serde(default)]
    pub remote: Option<RemoteJwks>,
}

/// A JWKS published by the identity provider, fetched through a configured backend (which says
/// whether the hop is TLS, and with which trust).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoteJwks {
    /// The backend the identity provider is reached through.
    pub backend: String,
    /// The path of the JWKS document on that backend (`/.well-known/jwks.json`).
    pub path: String,
    /// How long keys are kept before the next refresh when the answer carries no
    /// `Cache-Control: max-age`.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub default_refresh: Duration,
    /// The shortest refresh interval, whatever max-age says: a `max-age=0` must not turn
    /// into a fetch loop.
    #[serde(default = "min_refresh", with = "humantime_serde")]
    pub min_refresh: Duration,
    /// The longest refresh interval, whatever max-age says: rotation is noticed at least
    /// this often.
    #[serde(default = "max_refresh", with = "humantime_serde")]
    pub max_refresh: Duration,
    /// The bound on one fetch, and on how long a request waits for the very first one.
    #[serde(default = "fetch_timeout", with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// A token with an unknown `kid` triggers a refetch (the provider may have rotated) at
    /// most once per this interval, so a flood of made-up kids cannot hammer the provider.
    #[serde(default = "unknown_kid_cooldown", with = "humantime_serde")]
    pub unknown_kid_cooldown: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_secs(600)
}

fn min_refresh() -> Duration {
    Duration::from_secs(30)
}

fn max_refresh() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn fetch_timeout() -> Duration {
    Duration::from_secs(3)
}

fn unknown_kid_cooldown() -> Duration {
    Duration::from_secs(30)
}
