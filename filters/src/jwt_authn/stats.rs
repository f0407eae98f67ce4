//! Outcome counters: one per provider and outcome, lock-free on the request path.
//!
//! Exposed as `switchyard_jwt_authn_total{provider, outcome}`. `provider` is a configured
//! name, or `none` when no provider could be chosen (no token, a malformed one, an unknown
//! issuer); `outcome` is `valid` or a [`Reason`] code.

use std::sync::atomic::{AtomicU64, Ordering};

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
