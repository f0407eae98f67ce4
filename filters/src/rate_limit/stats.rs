//! Counts of what each limit decided; lock-free on the request path.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a limit did with a request it applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Counted and let through.
    Allowed,
    /// Over this limit: 429.
    Limited,
    /// The store could not be asked; `failure_mode: allow` let it through uncounted.
    FailedOpen,
    /// The store could not be asked; `failure_mode: deny` answered 503.
    FailedClosed,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Allowed,
        Outcome::Limited,
        Outcome::FailedOpen,
        Outcome::FailedClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Limited => "limited",
            Outcome::FailedOpen => "failed_open",
            Outcome::FailedClosed => "failed_closed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One limit's counts.
#[derive(Debug, Default)]
pub struct Counts([AtomicU64; Outcome::ALL.len()]);

impl Counts {
    pub fn record(&self, outcome: Outcome) {
        self.0[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, outcome: Outcome) -> u64 {
        self.0[outcome.index()].load(Ordering::Relaxed)
    }
}
