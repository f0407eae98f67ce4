//! Counting in this process: one TAT per key in a bounded concurrent map, updated by
//! compare-and-swap, so worker threads never wait on each other for a key and no lock covers
//! the whole table (the map is sharded). Exact within the process.
//!
//! The table holds at most `max_keys` keys per limit; past that the least useful are evicted
//! (S3-FIFO), and an evicted key starts again with a full bucket. A key whose TAT is in the
//! past is the same as a key never seen, so nothing needs expiring by time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use super::gcra::{self, Decision, Quota};

/// The bucket a request was taken from.
pub struct Bucket(Arc<AtomicU64>);

/// One limit's keys.
pub struct LocalCounts {
    quota: Quota,
    keys: Cache<String, Arc<AtomicU64>>,
}

/// Nanoseconds since the first use in this process: a clock all threads share, never going back.
fn now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A quota in nanoseconds: `requests` per `period`, `burst` at once.
pub fn quota(requests: u64, period: Duration, burst: u64) -> Quota {
    let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
    Quota {
        interval: (period / requests.max(1)).max(1),
        burst,
    }
}

/// A decision's `reset` from nanoseconds to whole seconds, rounded up.
pub fn seconds(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

impl LocalCounts {
    pub fn new(quota: Quota, max_keys: usize) -> LocalCounts {
        LocalCounts {
            quota,
            keys: Cache::new(max_keys.max(1)),
        }
    }

    /// Takes one request from `key` if it may pass; the bucket it came from, to give it back.
    pub fn take(&self, key: &str) -> (Decision, Bucket) {
        let cell = self.cell(key);
        let now = now();
        let mut current = cell.load(Ordering::Acquire);
        loop {
            let seen = (current != 0).then_some(current);
            let (decision, next) = gcra::decide(self.quota, seen, now);
            let Some(next) = next else {
                return (decision, Bucket(cell));
            };
            match cell.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return (decision, Bucket(cell)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives back a request [`take`](Self::take) let through that another limit refused, to
    /// the very bucket it came from (the key may have been evicted and made anew since).
    pub fn give_back(&self, bucket: &Bucket) {
        let _ = bucket
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.saturating_sub(self.quota.interval).max(1))
            });
    }

    /// The state of `key` without taking from it.
    pub fn peek(&self, key: &str) -> Decision {
        let tat = self
            .keys
            .get(key)
            .map(|c| c.load(Ordering::Acquire))
            .filter(|&t| t != 0);
        gcra::peek(self.quota, tat, now())
    }

    fn cell(&self, key: &str) -> Arc<AtomicU64> {
        if let Some(cell) = self.keys.get(key) {
            return cell;
        }
        // Two threads may race to insert: both end up with whichever cell the map kept.
        match self.keys.get_or_insert_with(key, || {
            Ok::<_, std::convert::Infallible>(Arc::new(AtomicU64::new(0)))
        }) {
            Ok(cell) => cell,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_taking_at_once_get_exactly_the_burst() {
        // An hour's worth per request: only the burst passes during the test.
        let counts = Arc::new(LocalCounts::new(
            quota(1, Duration::from_secs(3600), 50),
            10,
        ));
        let passed = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (counts, passed) = (counts.clone(), passed.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        if counts.take("tenant").0.allowed {
                            passed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a thread");
        }
        assert_eq!(passed.load(Ordering::Relaxed), 50);
        assert_eq!(counts.peek("tenant").remaining, 0);
        assert_eq!(counts.peek("other").remaining, 50, "keys are apart");
    }

    #[test]
    fn a_request_given_back_can_be_taken_again() {
        let counts = LocalCounts::new(quota(1, Duration::from_secs(3600), 1), 10);
        let (first, bucket) = counts.take("k");
        assert!(first.allowed);
        assert!(!counts.take("k").0.allowed);
        counts.give_back(&bucket);
        assert!(counts.take("k").0.allowed);
    }
}
