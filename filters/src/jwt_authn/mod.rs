//! `jwt_authn`: verifies the caller's JWT and records its claims for later filters.
//!
//! Runs in `pre_routing` (or `post_routing`). For each request it looks for a token where
//! `from` says (by default `Authorization: Bearer`), verifies it against the provider its `iss`
//! names, and then, by `mode`:
//!
//! | token          | `strict` | `optional` | `permissive` |
//! |----------------|----------|------------|--------------|
//! | none           | 401      | continue   | continue     |
//! | valid          | claims   | claims     | claims       |
//! | present, bad   | 401      | 401        | continue     |
//!
//! A valid token's claims go into the request context ([`RequestContext::jwt`]), where
//! `transformation` reads them as the CEL variable `jwt`. Unless `forward: true`, the token is
//! removed before the request goes upstream.
//!
//! # Verification
//! - The algorithm comes from the key (the JWK's `alg`, else its type), never from the token:
//!   `alg: none`, or an HMAC token against an RSA or EC key, is `algorithm_not_allowed`.
//! - A `kid` selects the key; a token without one is accepted only when exactly one key of its
//!   algorithm exists.
//! - `iss` must be the provider's issuer; `aud` must hold one of its audiences (when any are
//!   configured); `exp` is required unless `require_exp: false`; `nbf` is honoured; both with
//!   `clock_skew` (default 60 s) of leeway.
//!
//! # Keys
//! Each provider's keys come from an `inline` JWKS, a `file`, or a `remote` JWKS fetched
//! through a configured backend (so the hop to the identity provider gets that backend's TLS
//! settings) and kept fresh in the background: refreshed by the answer's `Cache-Control:
//! max-age` within configured bounds, refetched (rate-limited) when a token names an unknown
//! `kid`, and kept when a refresh fails. `key_cache.rs` tells the whole story. Until a remote
//! provider's first fetch succeeds, `/readyz` says not ready and names it.
//!
//! # Rejection
//! 401 with `WWW-Authenticate: Bearer realm="...", error="invalid_token",
//! error_description="..."` and `{"error": "invalid_token", "reason": "...", "message": "..."}`.
//! A missing token in `strict` mode gets the bare challenge (no `error`, RFC 6750 §3.1). A
//! wrong audience is also 401: the token was not issued for this API, which is an invalid token
//! here rather than a lack of scope (403). The token itself is never echoed.
//!
//! A token for a remote provider whose keys were never fetched (the provider down since
//! start) is answered 503 with `Retry-After: 5` and reason `keys_unavailable` in `strict`
//! and `optional` mode: the token may be good, and a 401 would make the client discard it for
//! the gateway's failure. Requests without a token are not affected.
//!
//! # Files
//! - `config.rs`: the YAML shape.
//! - `factory.rs`: config to filter, at load: the checks, and the key sources they start.
//! - `extract.rs`: finding the token in a header or query parameter, and removing it.
//! - `jwks.rs`: JWKS documents into keys pinned to one algorithm each.
//! - `fetch.rs`: one fetch of a published JWKS, and its `Cache-Control: max-age`.
//! - `key_cache.rs`: where a provider's keys come from; the remote cache, its refresh task,
//!   its rate limit.
//! - `verify.rs`: provider and key selection, signature and claim checks.
//! - `token_cache.rs`: verdicts on valid tokens, reused until their keys or time run out.
//! - `rejection.rs`: reasons and the 401 (or 503) they produce.
//! - `stats.rs`: outcome counters by provider and reason; the key cache's fetch counters.
//! - `tests.rs`: the filter end to end on real signed tokens.
//! - `remote_tests.rs`: the remote cache against a scripted provider on a paused clock.

mod config;
mod extract;
mod factory;
mod fetch;
mod jwks;
mod key_cache;
mod rejection;
#[cfg(test)]
mod remote_tests;
mod stats;
#[cfg(test)]
mod tests;
mod token_cache;
mod verify;

use std::sync::Arc;

use async_trait::async_trait;

use config::Mode;
use extract::{Found, TokenSource};
use rejection::Reason;
use token_cache::{Cached, TokenCache};
use verify::{Verification, Verifier};

use crate::{Filter, Flow, MetricSample, RequestContext, RequestHeader, VerifiedJwt};

pub use factory::JwtAuthnFactory;

pub const NAME: &str = "jwt_authn";

/// What became of one request's token: its claims, or why there are none; and the provider
/// that decided (`None` when none could be chosen), for the counters.
struct Verdict {
    provider: Option<usize>,
    claims: Result<Arc<VerifiedJwt>, Reason>,
}

impl From<Verification> for Verdict {
    fn from(verification: Verification) -> Self {
        match verification {
            Ok(verified) => Verdict {
                provider: Some(verified.provider),
                claims: Ok(Arc::new(verified.jwt)),
            },
            Err((provider, reason)) => Verdict {
                provider,
                claims: Err(reason),
            },
        }
    }
}

struct JwtAuthn {
    mode: Mode,
    realm: String,
    forward: bool,
    source: TokenSource,
    verifier: Verifier,
    cache: Option<TokenCache>,
    stats: stats::OutcomeCounters,
}

impl JwtAuthn {
    /// Finds the request's token and verifies it: through the token cache, and waiting for
    /// remote keys where they must be. `None` when there is no token at all.
    async fn verify_token(&self, request: &RequestHeader) -> Option<Verdict> {
        let token = match self.source.find(request) {
            Found::Nothing => return None,
            Found::Malformed => {
                return Some(Verdict {
                    provider: None,
                    claims: Err(Reason::Malformed),
                })
            }
            Found::Token(token) => token,
        };
        if let Some(cache) = &self.cache {
            let (provider, claims) = match cache.lookup(&token, &self.verifier) {
                Cached::Valid(provider, jwt) => (provider, Ok(jwt)),
                Cached::Invalid(provider, reason) => (provider, Err(reason)),
                Cached::Miss => return Some(self.verify_and_cache(&token, cache).await),
            };
            return Some(Verdict {
                provider: Some(provider),
                claims,
            });
        }
        Some(self.verifier.verify(&token).await.into())
    }

    /// Verifies a token the cache does not hold, and keeps it there if it is valid, tied to the
    /// key set that verified it.
    async fn verify_and_cache(&self, token: &str, cache: &TokenCache) -> Verdict {
        let verification = self.verifier.verify(token).await;
        let generation = verification.as_ref().ok().map(|v| v.generation);
        let verdict = Verdict::from(verification);
        if let (Some(provider), Ok(jwt), Some(generation)) =
            (verdict.provider, &verdict.claims, generation)
        {
            cache.insert(token, provider, generation, jwt.clone());
        }
        verdict
    }

    /// What became of the request's token and what that means in this mode, in one line.
    fn describe_verdict(&self, verdict: Option<&Verdict>) -> String {
        let mode = self.mode.as_str();
        match (verdict.map(|v| &v.claims), self.mode) {
            (Some(Ok(jwt)), _) => {
                let claims = jwt.claims.to_string();
                format!("token valid (provider {}); claims {claims}", jwt.provider)
            }
            (None, Mode::Strict) => {
                format!("no token in {}; {mode} mode: 401", self.source.describe())
            }
            (None, _) => format!(
                "no token in {}; {mode} mode: continue without claims",
                self.source.describe()
            ),
            (Some(Err(reason)), Mode::Permissive) => format!(
                "token rejected ({}: {}); permissive mode: continue without claims",
                reason.code(),
                reason.description()
            ),
            (Some(Err(reason)), _) => format!(
                "token rejected ({}: {}); {mode} mode: {}",
                reason.code(),
                reason.description(),
                reason.response(&self.realm).status().as_u16()
            ),
        }
    }
}

#[async_trait]
impl Filter for JwtAuthn {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn on_request(&self, ctx: &mut RequestContext<'_>) -> Flow {
        let verdict = self.verify_token(ctx.request()).await;
        match &verdict {
            None => self.stats.record(None, Err(Reason::Missing)),
            Some(v) => self
                .stats
                .record(v.provider, v.claims.as_ref().map(|_| ()).map_err(|r| *r)),
        }
        ctx.note(|| self.describe_verdict(verdict.as_ref()));
        // Claims from an earlier filter never survive a failed check here.
        ctx.set_jwt(None);
        if !self.forward {
            self.source.remove(ctx.request_mut());
            ctx.note(|| "the token is removed before the request goes upstream".to_owned());
        }
        match (verdict.map(|v| v.claims), self.mode) {
            (Some(Ok(jwt)), _) => {
                ctx.set_jwt(Some(jwt));
                Flow::Continue
            }
            (None, Mode::Strict) => Flow::Respond(Reason::Missing.response(&self.realm)),
            (None, _) => Flow::Continue,
            (Some(Err(reason)), Mode::Strict | Mode::Optional) => {
                Flow::Respond(reason.response(&self.realm))
            }
            (Some(Err(_)), Mode::Permissive) => Flow::Continue,
        }
    }

    fn metrics(&self) -> Vec<MetricSample> {
        let providers = self.verifier.providers();
        let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
        let mut samples = self.stats.samples(&names);
        if let Some(cache) = &self.cache {
            cache.metrics(&mut samples);
        }
        for p in providers {
            p.keys().metrics(p.name(), &mut samples);
        }
        samples
    }

    fn waiting_for(&self) -> Vec<String> {
        self.verifier
            .providers()
            .iter()
            .filter_map(|p| {
                p.keys()
                    .waiting_for()
                    .map(|why| format!("jwt_authn provider {}: {why}", p.name()))
            })
            .collect()
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "jwt_authn: mode {}, token from {}{}",
            self.mode.as_str(),
            self.source.describe(),
            if self.forward {
                ", forwarded"
            } else {
                ", removed before upstream"
            }
        )];
        lines.extend(
            self.verifier
                .providers()
                .iter()
                .map(|p| format!("  {}", p.describe())),
        );
        lines
    }
}
