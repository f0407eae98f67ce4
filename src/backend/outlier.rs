//! Passive health: what real requests say about a host.
//!
//! Every request reports its outcome for the host that served it. `consecutive_failures` in a
//! row eject the host for `ejection_time`: selection skips it until then, and it comes back by
//! itself, with a clean count, once the time is up. A success anywhere in between resets the
//! count. The state is atomics only: reporting an outcome takes no lock on the request path.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::config::OutlierDetectionConfig;

/// Milliseconds on a monotonic clock started with the process, so "ejected until" fits an
/// atomic. Never 0 after the first call, which keeps 0 free to mean "not ejected".
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// One host's passive health and the counts that show it.
#[derive(Debug, Default)]
pub struct Outlier {
    consecutive_failures: AtomicU32,
    /// `now_ms()` at which the ejection ends; 0 when the host is in rotation.
    ejected_until: AtomicU64,
    ejections: AtomicU64,
    failures: AtomicU64,
}

impl Outlier {
    /// Whether selection should skip the host now.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Relaxed);
        until != 0 && now_ms() < until
    }

    pub fn record_success(&self) {
        // Only write when there is something to clear: a shared cache line written by every
        // request of every worker would cost more than the check.
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
        }
    }

    /// Counts a failure; returns true when it ejected the host.
    pub fn record_failure(&self, config: &OutlierDetectionConfig) -> bool {
        self.failures.fetch_add(1, Relaxed);
        if config.consecutive_failures == 0 {
            return false;
        }
        let failures = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        if failures < config.consecutive_failures || self.is_ejected() {
            return false;
        }
        let until = now_ms().saturating_add(millis(config.ejection_time));
        self.ejected_until.store(until, Relaxed);
        self.consecutive_failures.store(0, Relaxed);
        self.ejections.fetch_add(1, Relaxed);
        true
    }

    pub fn ejections(&self) -> u64 {
        self.ejections.load(Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: u32, ms: u64) -> OutlierDetectionConfig {
        OutlierDetectionConfig {
            consecutive_failures: n,
            ejection_time: Duration::from_millis(ms),
        }
    }

    #[test]
    fn ejects_after_consecutive_failures_and_returns_after_the_time() {
        let outlier = Outlier::default();
        let config = config(3, 50);
        assert!(!outlier.record_failure(&config));
        assert!(!outlier.record_failure(&config));
        assert!(!outlier.is_ejected());
        assert!(outlier.record_failure(&config), "third failure ejects");
        assert!(outlier.is_ejected());
        assert_eq!(outlier.ejections(), 1);
        std::thread::sleep(Duration::from_millis(80));
        assert!(!outlier.is_ejected(), "back after ejection_time");
        assert_eq!(outlier.failures(), 3);
    }

    #[test]
    fn a_success_resets_the_count() {
        let outlier = Outlier::default();
        let config = config(2, 10_000);
        outlier.record_failure(&config);
        outlier.record_success();
        assert!(!outlier.record_failure(&config));
        assert!(!outlier.is_ejected());
    }

    #[test]
    fn zero_turns_ejection_off() {
        let outlier = Outlier::default();
        let config = config(0, 10_000);
        for _ in 0..100 {
            assert!(!outlier.record_failure(&config));
        }
        assert!(!outlier.is_ejected());
        assert_eq!(outlier.failures(), 100);
    }
}
