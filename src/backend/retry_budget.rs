//! A backend's retry budget, as Linkerd's and Envoy's: retries may add at most `ratio` of
//! its requests, plus `min_per_second` so that a quiet backend can still be retried. Without
//! it, a failing backend would get each request `attempts + 1` times just when it can least
//! take them (a retry storm).
//!
//! Counted over fixed windows of ten seconds, with atomics only: a request deposits, a retry
//! withdraws. A window's counts start over when it ends, so a burst right after the turn can
//! spend a fresh window's allowance: the bound holds per window, as Linkerd's TTL does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::RetryBudgetConfig;

const WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_window: u64,
    origin: Instant,
    /// The window the counts are for, as a number of windows since `origin`.
    window: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

impl RetryBudget {
    pub fn new(config: &RetryBudgetConfig) -> Self {
        RetryBudget {
            ratio: config.ratio,
            min_per_window: u64::from(config.min_per_second) * WINDOW.as_secs(),
            origin: Instant::now(),
            window: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// Starts a new window when the current one has ended.
    fn roll(&self) {
        let now = self.origin.elapsed().as_secs() / WINDOW.as_secs();
        let current = self.window.load(Ordering::Relaxed);
        if now != current
            && self
                .window
                .compare_exchange(current, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.requests.store(0, Ordering::Relaxed);
            self.retries.store(0, Ordering::Relaxed);
        }
    }

    /// A request to the backend, which earns `ratio` of a retry.
    pub fn deposit(&self) {
        self.roll();
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn withdraw(&self) -> bool {
        self.roll();
        let requests = self.requests.load(Ordering::Relaxed) as f64;
        // The float product of a request count and a ratio of at most 1 fits in a u64.
        let allowed = (requests * self.ratio) as u64 + self.min_per_window;
        self.retries
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < allowed).then_some(n + 1)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_requests_plus_a_floor() {
        let budget = RetryBudget::new(&RetryBudgetConfig {
            ratio: 0.2,
            min_per_second: 0,
        });
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..50).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 20);
        let floor = RetryBudget::new(&RetryBudgetConfig {
            ratio: 0.0,
            min_per_second: 1,
        });
        assert_eq!((0..50).filter(|_| floor.withdraw()).count(), 10);
    }
}
