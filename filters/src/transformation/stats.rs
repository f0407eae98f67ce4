//! Counts of headers dropped by a transformation, by header and reason.

use std::sync::atomic::{AtomicU64, Ordering};

use super::header_value::Dropped;

/// One counter per reason for one header operation; lock-free on the request path.
#[derive(Debug, Default)]
pub(super) struct DropCounters {
    counts: [AtomicU64; Dropped::ALL.len()],
}

impl DropCounters {
    pub(super) fn record(&self, reason: Dropped) {
        self.counts[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn get(&self, reason: Dropped) -> u64 {
        self.counts[reason.index()].load(Ordering::Relaxed)
    }
}

/// A snapshot row: header, reason, count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DropCount {
    pub header: String,
    pub reason: Dropped,
    pub count: u64,
}
