//! What `jwt_authn` counts, all lock-free on the request path:
//!
//! - outcomes, one counter per provider and outcome:
//!   `switchyard_jwt_authn_total{provider, outcome}`. `provider` is a configured name, or
//!   `none` when no provider could be chosen (no token, a malformed one, an unknown issuer);
//!   `outcome` is `valid` or a [`Reason`] code;
//! - a remote key cache's fetches by result, its unknown-kid refetches, and the time of its
//!   last good fetch (`switchyard_jwks_*`). These belong to the cache, which outlives the
//!   filters of one config, so they are shared counters.
//!
//! The token cache counts its own lookups (`token_cache.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::fetch::{FetchFailure, RESULTS};
use super::rejection::Reason;
use crate::{MetricKind, MetricSample};

const OUTCOMES: usize = Reason::ALL.len() + 1;
const VALID: usize = Reason::ALL.len();

pub(super) struct OutcomeCounters {
    /// One row per provider, then one for "none".
    rows: Vec<[AtomicU64; OUTCOMES]>,
}

impl OutcomeCounters {
    pub(super) fn new(providers: usize) -> Self {
        OutcomeCounters {
            rows: (0..=providers).map(|_| Default::default()).collect(),
        }
    }

    pub(super) fn record(&self, provider: Option<usize>, outcome: Result<(), Reason>) {
        let row = provider.unwrap_or(self.rows.len() - 1);
        let column = match outcome {
            Ok(()) => VALID,
            Err(reason) => reason.index(),
        };
        if let Some(row) = self.rows.get(row) {
            row[column].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Non-zero counters, labelled with `names` (the providers, in order).
    pub(super) fn samples(&self, names: &[&str]) -> Vec<MetricSample> {
        let mut out = Vec::new();
        for (row, counts) in self.rows.iter().enumerate() {
            let provider = names.get(row).copied().unwrap_or("none");
            for (column, count) in counts.iter().enumerate() {
                let value = count.load(Ordering::Relaxed);
                if value == 0 {
                    continue;
                }
                let outcome = if column == VALID {
                    "valid"
                } else {
                    Reason::ALL[column].code()
                };
                out.push(MetricSample {
                    name: "jwt_authn_total",
                    help: "Requests seen by jwt_authn, by provider and outcome.",
                    kind: MetricKind::Counter,
                    labels: vec![
                        ("provider", provider.to_owned()),
                        ("outcome", outcome.to_owned()),
                    ],
                    value,
                });
            }
        }
        out
    }
}

/// Fetch outcomes and unknown-kid refetches. They belong to the cache, which outlives the
/// filters of one config, so they are exposed as shared counters.
#[derive(Default)]
pub(super) struct KeyCacheStats {
    /// Indexed like [`RESULTS`].
    results: [AtomicU64; RESULTS.len()],
    /// Started, and refused by the cooldown.
    kid_refetches: [AtomicU64; 2],
    last_success_unix: AtomicU64,
}

impl KeyCacheStats {
    pub(super) fn record_fetch(&self, failure: Option<&FetchFailure>) {
        let code = failure.map_or("ok", FetchFailure::code);
        if let Some(i) = RESULTS.iter().position(|r| *r == code) {
            self.results[i].fetch_add(1, Ordering::Relaxed);
        }
        if failure.is_none() {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            self.last_success_unix.store(now, Ordering::Relaxed);
        }
    }

    /// A refetch asked for by a token with an unknown `kid`: started, or refused by the
    /// cooldown.
    pub(super) fn record_kid_refetch(&self, started: bool) {
        self.kid_refetches[usize::from(!started)].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn samples(&self, provider: &str, out: &mut Vec<MetricSample>) {
        for (i, result) in RESULTS.iter().enumerate() {
            let value = self.results[i].load(Ordering::Relaxed);
            if value > 0 {
                out.push(provider_sample(
                    "jwks_fetches_total",
                    "JWKS fetches by provider and result.",
                    MetricKind::SharedCounter,
                    provider,
                    Some(("result", result)),
                    value,
                ));
            }
        }
        for (i, result) in ["started", "rate_limited"].iter().enumerate() {
            let value = self.kid_refetches[i].load(Ordering::Relaxed);
            if value > 0 {
                out.push(provider_sample(
                    "jwks_unknown_kid_refetches_total",
                    "Refetches asked for by tokens with an unknown kid: started, or refused by the cooldown.",
                    MetricKind::SharedCounter,
                    provider,
                    Some(("result", result)),
                    value,
                ));
            }
        }
        let last = self.last_success_unix.load(Ordering::Relaxed);
        if last > 0 {
            out.push(provider_sample(
                "jwks_last_success_timestamp_seconds",
                "When a provider's JWKS was last fetched successfully (Unix time).",
                MetricKind::Gauge,
                provider,
                None,
                last,
            ));
        }
    }
}

/// A sample labelled with `provider` and, optionally, one more label.
pub(super) fn provider_sample(
    name: &'static str,
    help: &'static str,
    kind: MetricKind,
    provider: &str,
    extra: Option<(&'static str, &str)>,
    value: u64,
) -> MetricSample {
    let mut labels = vec![("provider", provider.to_owned())];
    if let Some((k, v)) = extra {
        labels.push((k, v.to_owned()));
    }
    MetricSample {
        name,
        help,
        kind,
        labels,
        value,
    }
}
