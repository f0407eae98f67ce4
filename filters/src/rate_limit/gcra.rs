//! The generic cell rate algorithm: a token bucket kept as one number per key.
//!
//! A limit of `n` per period with `burst` lets a request through every `interval` (period /
//! n) on average, and up to `burst` at once after a quiet spell. The state of a key is its
//! theoretical arrival time (TAT): when the bucket would be full again. A request at `now`
//! passes when `max(tat, now) + interval <= now + burst * interval`, and moves the TAT by one
//! interval. One number per key, updated by one compare-and-swap (locally) or one script
//! (in Redis, `redis.rs` runs the same arithmetic in Lua).
//!
//! Times are in one unit chosen by the caller (nanoseconds locally, microseconds in Redis).

/// A limit's shape in the caller's time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Time one request uses up.
    pub interval: u64,
    /// Requests that may pass at once.
    pub burst: u64,
}

impl Quota {
    /// How far ahead of now the TAT may be: `burst` intervals.
    fn tolerance(self) -> u64 {
        self.interval.saturating_mul(self.burst)
    }
}

/// What one check decided, in the caller's time unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests that would pass right now after this one.
    pub remaining: u64,
    /// Until the next request would pass (0 when one would now).
    pub reset: u64,
}

/// The decision for a request at `now` on a key whose TAT is `tat` (`None`: never seen), and
/// the TAT to store when it passes.
pub fn decide(quota: Quota, tat: Option<u64>, now: u64) -> (Decision, Option<u64>) {
    let tat = tat.map_or(now, |t| t.max(now));
    let new_tat = tat.saturating_add(quota.interval);
    let limit = now.saturating_add(quota.tolerance());
    if new_tat > limit {
        // It would pass once the TAT is within the tolerance again.
        let decision = Decision {
            allowed: false,
            remaining: 0,
            reset: new_tat - limit,
        };
        return (decision, None);
    }
    let remaining = (limit - new_tat) / quota.interval.max(1);
    let reset = if remaining > 0 {
        0
    } else {
        new_tat.saturating_add(quota.interval) - limit
    };
    let decision = Decision {
        allowed: true,
        remaining,
        reset,
    };
    (decision, Some(new_tat))
}

/// The state of a key without taking a request from it (for `explain`).
pub fn peek(quota: Quota, tat: Option<u64>, now: u64) -> Decision {
    let tat = tat.map_or(now, |t| t.max(now));
    let limit = now.saturating_add(quota.tolerance());
    let ahead = limit.saturating_sub(tat);
    let remaining = ahead / quota.interval.max(1);
    let reset = if remaining > 0 {
        0
    } else {
        tat.saturating_add(quota.interval) - limit
    };
    Decision {
        allowed: remaining > 0,
        remaining,
        reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        interval: 100,
        burst: 3,
    };

    /// Runs requests at `times`, returning which passed.
    fn run(times: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let (d, next) = decide(Q, tat, now);
                if let Some(next) = next {
                    tat = Some(next);
                }
                d.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_passes_at_once_then_one_per_interval() {
        assert_eq!(
            run(&[0, 0, 0, 0, 50, 100, 150, 200, 200]),
            [true, true, true, false, false, true, false, true, false]
        );
    }

    #[test]
    fn a_quiet_spell_refills_the_bucket_but_no_more() {
        assert_eq!(
            run(&[0, 0, 0, 10_000, 10_000, 10_000, 10_000]),
            [true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn remaining_and_reset_count_down() {
        let (d1, t1) = decide(Q, None, 0);
        assert_eq!((d1.allowed, d1.remaining, d1.reset), (true, 2, 0));
        let (d2, t2) = decide(Q, t1, 0);
        assert_eq!((d2.remaining, d2.reset), (1, 0));
        let (d3, t3) = decide(Q, t2, 0);
        assert_eq!(
            (d3.remaining, d3.reset),
            (0, 100),
            "next passes in one interval"
        );
        let (d4, t4) = decide(Q, t3, 30);
        assert_eq!((d4.allowed, d4.remaining, d4.reset), (false, 0, 70));
        assert_eq!(t4, None, "a refused request takes nothing");
        assert_eq!(
            peek(Q, t3, 30),
            Decision {
                allowed: false,
                remaining: 0,
                reset: 70
            }
        );
        assert_eq!(peek(Q, t3, 100).remaining, 1);
    }

    #[test]
    fn a_steady_rate_over_the_limit_gets_exactly_the_limit_through() {
        // 10 requests per interval for 100 intervals: burst + one per interval pass.
        let times: Vec<u64> = (0..1000).map(|i| i * 10).collect();
        let passed = run(&times).into_iter().filter(|&p| p).count();
        assert_eq!(passed, 3 + 99);
    }
}
