//! The verified-token cache: a token seen and verified before skips the signature check.
//!
//! Verifying an RS256 signature is most of what `jwt_authn` costs, and a client sends the same
//! token with every request for its lifetime. So a valid token's verdict is kept, bounded in
//! number (`token_cache_entries`, S3-FIFO eviction), and reused when:
//!
//! - the token is byte for byte the same: entries are keyed by the token's SHA-256, which no
//!   two tokens share (a fast 64-bit hash could be made to collide); the token itself is not
//!   kept, which also keeps an entry small;
//! - the provider still holds the very key set that verified it: a rotation (a new JWKS
//!   document) makes every verdict given under the old keys a miss;
//! - the time-based checks pass again, now: `exp` and `nbf` with the same leeway, so an entry
//!   never outlives its token.
//!
//! Only valid tokens are cached: a forged token costs a verification every time it is sent.
//! Lookups and their outcome are counted (`jwt_authn_token_cache_total{result}`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::rejection::Reason;
use super::verify::Verifier;
use crate::{MetricKind, MetricSample, VerifiedJwt};

/// A verdict kept for one token.
#[derive(Clone)]
struct Entry {
    provider: usize,
    /// The [`KeySet::generation`](super::KeySet::generation) that verified it.
    generation: u64,
    exp: Option<u64>,
    nbf: Option<u64>,
    jwt: Arc<VerifiedJwt>,
}

pub(super) struct TokenCache {
    entries: quick_cache::sync::Cache<Digest, Arc<Entry>>,
    leeway: u64,
    /// Hits, misses, and entries dropped because their keys rotated or their time ran out.
    counts: [AtomicU64; 3],
}

const OUTCOMES: [&str; 3] = ["hit", "miss", "stale"];

/// What a lookup found.
pub(super) enum Cached {
    /// The token is valid: its provider and claims.
    Valid(usize, Arc<VerifiedJwt>),
    /// The token was valid and no longer is (it expired since).
    Invalid(usize, Reason),
    /// Nothing usable: verify it.
    Miss,
}

impl TokenCache {
    /// A cache of up to `capacity` tokens; `None` when `capacity` is zero (no caching).
    pub(super) fn new(capacity: usize, leeway: u64) -> Option<Self> {
        (capacity > 0).then(|| TokenCache {
            entries: quick_cache::sync::Cache::new(capacity),
            leeway,
            counts: Default::default(),
        })
    }

    /// The cached verdict on `token`, if it still holds under `verifier`'s current keys.
    pub(super) fn lookup(&self, token: &str, verifier: &Verifier) -> Cached {
        let key = digest(token);
        let Some(entry) = self.entries.get(&key) else {
            self.count(1);
            return Cached::Miss;
        };
        let current = verifier
            .providers()
            .get(entry.provider)
            .and_then(|p| p.keys().generation());
        if current != Some(entry.generation) {
            self.entries.remove(&key);
            self.count(2);
            return Cached::Miss;
        }
        let now = unix_now();
        // The same tests jsonwebtoken applies, with the same leeway.
        if entry
            .exp
            .is_some_and(|exp| exp < now.saturating_sub(self.leeway))
        {
            self.entries.remove(&key);
            self.count(2);
            return Cached::Invalid(entry.provider, Reason::Expired);
        }
        if entry.nbf.is_some_and(|nbf| nbf > now + self.leeway) {
            self.count(2);
            return Cached::Invalid(entry.provider, Reason::NotYetValid);
        }
        self.count(0);
        Cached::Valid(entry.provider, entry.jwt.clone())
    }

    /// Keeps the verdict on a token just verified by `provider`'s keys of `generation`.
    pub(super) fn insert(
        &self,
        token: &str,
        provider: usize,
        generation: u64,
        jwt: Arc<VerifiedJwt>,
    ) {
        let time = |name| {
            jwt.claims
                .get(name)
                .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
        };
        let entry = Entry {
            provider,
            generation,
            exp: time("exp"),
            nbf: time("nbf"),
            jwt: jwt.clone(),
        };
        self.entries.insert(digest(token), Arc::new(entry));
    }

    fn count(&self, outcome: usize) {
        self.counts[outcome].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn metrics(&self, out: &mut Vec<MetricSample>) {
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            let value = self.counts[i].load(Ordering::Relaxed);
            if value > 0 {
                out.push(MetricSample {
                    name: "jwt_authn_token_cache_total",
                    help: "Verified-token cache lookups: hit, miss, or stale (the keys rotated or the token's time ran out).",
                    kind: MetricKind::Counter,
                    labels: vec![("result", (*outcome).to_owned())],
                    value,
                });
            }
        }
    }
}

/// A token's cache key.
type Digest = [u8; 32];

fn digest(token: &str) -> Digest {
    let mut key = [0u8; 32];
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    key.copy_from_slice(d.as_ref());
    key
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
