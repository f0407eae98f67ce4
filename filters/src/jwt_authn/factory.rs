//! Building a `jwt_authn` filter from its config: checks that run once, at config load, and
//! the key sources they set up. Nothing here runs on the request path.

use std::sync::{Arc, Once};

use super::config::{JwksSource, JwtAuthnConfig, RemoteJwks};
use super::extract::TokenSource;
use super::key_cache::{KeySource, RefreshPolicy, RemoteKeys};
use super::token_cache::TokenCache;
use super::verify::{ClaimRules, Provider, Verifier};
use super::{jwks, stats, JwtAuthn, NAME};
use crate::validate::{distinct, unique_names};
use crate::{BuildContext, Filter, FilterConfigError, FilterFactory, Phase};

impl JwtAuthn {
    /// Checks `config` and builds the filter; remote key sets start fetching (with a running
    /// server's background) or stay offline (for `check` and `explain`).
    pub(super) fn build(
        config: &JwtAuthnConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Self, FilterConfigError> {
        install_crypto_provider();
        if config.realm.is_empty()
            || !config
                .realm
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            return Err(FilterConfigError::new(
                "realm",
                "the realm must be non-empty printable ASCII without quotes or backslashes",
            ));
        }
        if config.providers.is_empty() {
            return Err(FilterConfigError::new(
                "providers",
                "at least one provider is needed",
            ));
        }
        let source = TokenSource::from_config(&config.from)?;
        let rules = ClaimRules {
            clock_skew: config.clock_skew,
            require_exp: config.require_exp,
        };
        // The name labels metrics; the issuer picks the provider for a token.
        unique_names("provider", config.providers.iter().map(|p| p.name.as_str())).map_err(
            |e| FilterConfigError::new(format!("providers[{}].name", e.index), e.message),
        )?;
        if let Some(i) = config.providers.iter().position(|p| p.issuer.is_empty()) {
            return Err(FilterConfigError::new(
                format!("providers[{i}].issuer"),
                "the issuer cannot be empty",
            ));
        }
        distinct(
            "provider issuer",
            config.providers.iter().map(|p| p.issuer.as_str()),
        )
        .map_err(|e| FilterConfigError::new(format!("providers[{}].issuer", e.index), e.message))?;
        let mut providers = Vec::with_capacity(config.providers.len());
        for (i, p) in config.providers.iter().enumerate() {
            let at = format!("providers[{i}]");
            let keys = key_source(&p.jwks, &format!("{at}.jwks"), ctx)?;
            providers.push(Provider::new(&p.name, &p.issuer, &p.audiences, keys, rules));
        }
        let stats = stats::OutcomeCounters::new(providers.len());
        Ok(JwtAuthn {
            mode: config.mode,
            realm: config.realm.clone(),
            forward: config.forward,
            source,
            verifier: Verifier::new(providers),
            cache: TokenCache::new(config.token_cache_entries, config.clock_skew.as_secs()),
            stats,
        })
    }
}

/// Where a provider's keys come from, checked and loaded (or, for `remote`, started).
fn key_source(
    jwks: &JwksSource,
    at: &str,
    ctx: &BuildContext<'_>,
) -> Result<KeySource, FilterConfigError> {
    let fixed = |text: &str, field: String| {
        jwks::parse(text)
            .map(|keys| KeySource::Fixed(Arc::new(keys)))
            .map_err(|e| FilterConfigError::new(field, e.to_string()))
    };
    match (&jwks.inline, &jwks.file, &jwks.remote) {
        (Some(text), None, None) => fixed(text, format!("{at}.inline")),
        (None, Some(path), None) => {
            let resolved = ctx.resolve_path(path);
            let text = std::fs::read_to_string(&resolved).map_err(|e| {
                FilterConfigError::new(
                    format!("{at}.file"),
                    format!("cannot read {}: {e}", resolved.display()),
                )
            })?;
            fixed(&text, format!("{at}.file"))
        }
        (None, None, Some(remote)) => remote_source(remote, &format!("{at}.remote"), ctx),
        _ => Err(FilterConfigError::new(
            at,
            "give exactly one of `inline`, `file` and `remote`",
        )),
    }
}

fn remote_source(
    remote: &RemoteJwks,
    at: &str,
    ctx: &BuildContext<'_>,
) -> Result<KeySource, FilterConfigError> {
    let backend = ctx
        .backend(&remote.backend)
        .map_err(|message| FilterConfigError::new(format!("{at}.backend"), message))?;
    if !remote.path.starts_with('/')
        || http::uri::PathAndQuery::from_maybe_shared(remote.path.clone()).is_err()
    {
        return Err(FilterConfigError::new(
            format!("{at}.path"),
            format!("`{}` is not an absolute request path", remote.path),
        ));
    }
    let policy = RefreshPolicy::from_config(remote)
        .map_err(|(field, message)| FilterConfigError::new(format!("{at}.{field}"), message))?;
    let (Some(background), Some(client)) = (ctx.background(), ctx.client(&backend)) else {
        return Ok(KeySource::Offline {
            backend: remote.backend.clone(),
            path: remote.path.clone(),
        });
    };
    let key = RemoteKeys::shared_key(&*client, &remote.path, &policy);
    let path = remote.path.clone();
    Ok(KeySource::Remote(background.shared(&key, || {
        RemoteKeys::start(client, path, policy, background)
    })))
}

/// jsonwebtoken needs a process-wide crypto provider; installing one explicitly avoids a panic
/// at the first verification should feature unification ever enable two backends.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // `Err` means one is installed already, which is as good.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

pub struct JwtAuthnFactory;

impl FilterFactory for JwtAuthnFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> &'static [Phase] {
        &[Phase::PreRouting, Phase::PostRouting]
    }

    fn build(
        &self,
        config: &serde_yaml::Value,
        ctx: &BuildContext<'_>,
    ) -> Result<Arc<dyn Filter>, FilterConfigError> {
        let config: JwtAuthnConfig = FilterConfigError::parse(config)?;
        Ok(Arc::new(JwtAuthn::build(&config, ctx)?))
    }
}
