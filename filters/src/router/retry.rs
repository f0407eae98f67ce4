//! A route's retry policy, compiled from its `retry` config: which failures of an attempt
//! send the request again, how many times, and how long to wait first.

use std::time::Duration;

use super::config::{RetryCondition, RetryConfig, RetryOn};
use crate::FilterConfigError;

/// The most retries a route may ask for.
pub const MAX_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    connect_failure: bool,
    reset: bool,
    gateway_error: bool,
    any_5xx: bool,
    statuses: Vec<u16>,
    backoff: Duration,
}

impl RetryPolicy {
    /// `config` at `at` (`routes[2].retry`) as a policy, or what is wrong with it.
    pub fn compile(config: &RetryConfig, at: &str) -> Result<Self, FilterConfigError> {
        if !(1..=MAX_ATTEMPTS).contains(&config.attempts) {
            return Err(FilterConfigError::new(
                format!("{at}.attempts"),
                format!("must be 1 to {MAX_ATTEMPTS}"),
            ));
        }
        if config.on.is_empty() {
            return Err(FilterConfigError::new(
                format!("{at}.on"),
                "name what to retry: connect-failure, reset, gateway-error, 5xx or a status",
            ));
        }
        if config.backoff.is_zero() || config.backoff > Duration::from_secs(10) {
            return Err(FilterConfigError::new(
                format!("{at}.backoff"),
                "must be above zero and at most 10s",
            ));
        }
        let mut policy = RetryPolicy {
            attempts: config.attempts,
            connect_failure: false,
            reset: false,
            gateway_error: false,
            any_5xx: false,
            statuses: Vec::new(),
            backoff: config.backoff,
        };
        for (i, on) in config.on.iter().enumerate() {
            match on {
                RetryOn::Named(RetryCondition::ConnectFailure) => policy.connect_failure = true,
                RetryOn::Named(RetryCondition::Reset) => policy.reset = true,
                RetryOn::Named(RetryCondition::GatewayError) => policy.gateway_error = true,
                RetryOn::Named(RetryCondition::FiveXx) => policy.any_5xx = true,
                RetryOn::Status(status) if (400..=599).contains(status) => {
                    policy.statuses.push(*status)
                }
                RetryOn::Status(status) => {
                    return Err(FilterConfigError::new(
                        format!("{at}.on[{i}]"),
                        format!("{status} is not an error status (400 to 599)"),
                    ))
                }
            }
        }
        Ok(policy)
    }

    /// Whether a failure to connect is retried.
    pub fn on_connect_failure(&self) -> bool {
        self.connect_failure
    }

    /// Whether a connection that failed after the request was sent is retried.
    pub fn on_reset(&self) -> bool {
        self.reset
    }

    /// Whether a backend that did not answer in time is retried (it stands for a 504).
    pub fn on_timeout(&self) -> bool {
        self.on_status(504)
    }

    /// Whether a response with `status` is retried.
    pub fn on_status(&self, status: u16) -> bool {
        (self.any_5xx && (500..=599).contains(&status))
            || (self.gateway_error && (502..=504).contains(&status))
            || self.statuses.contains(&status)
    }

    /// How long to wait before retry number `retry` (from 1): a random time up to the
    /// backoff doubled for each earlier retry, at most ten times the first ("full jitter").
    pub fn backoff(&self, retry: u32) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(4));
        let cap = doubled.min(self.backoff.saturating_mul(10));
        let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=millis))
    }
}

/// `retry 2 on gateway-error, 429 (backoff 25ms)`, as `check` prints it.
impl std::fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut on: Vec<String> = [
            (self.connect_failure, "connect-failure"),
            (self.reset, "reset"),
            (self.gateway_error, "gateway-error"),
            (self.any_5xx, "5xx"),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name.to_owned())
        .collect();
        on.extend(self.statuses.iter().map(u16::to_string));
        write!(
            f,
            "retry {} on {} (backoff {})",
            self.attempts,
            on.join(", "),
            humantime_serde::re::humantime::format_duration(self.backoff)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Result<RetryPolicy, FilterConfigError> {
        let config: RetryConfig = serde_yaml::from_str(yaml).expect("yaml");
        RetryPolicy::compile(&config, "retry")
    }

    #[test]
    fn conditions_and_their_statuses() {
        let p = policy("{ attempts: 2, on: [gateway-error, 429] }").expect("compiles");
        assert_eq!(
            p.to_string(),
            "retry 2 on gateway-error, 429 (backoff 25ms)"
        );
        assert!(p.on_status(502) && p.on_status(503) && p.on_status(504) && p.on_status(429));
        assert!(!p.on_status(500) && !p.on_reset() && !p.on_connect_failure());
        assert!(p.on_timeout());
        let p = policy("{ attempts: 1, on: [5xx, reset, connect-failure] }").expect("compiles");
        assert!(p.on_status(500) && p.on_status(599) && !p.on_status(429));
        assert!(p.on_reset() && p.on_connect_failure());
        for _ in 0..100 {
            assert!(p.backoff(1) <= Duration::from_millis(25));
            assert!(p.backoff(9) <= Duration::from_millis(250));
        }
    }

    #[test]
    fn bad_policies_say_which_field() {
        assert_eq!(
            policy("{ attempts: 0, on: [5xx] }").unwrap_err().path,
            "retry.attempts"
        );
        assert_eq!(
            policy("{ attempts: 1, on: [] }").unwrap_err().path,
            "retry.on"
        );
        assert_eq!(
            policy("{ attempts: 1, on: [200] }").unwrap_err().path,
            "retry.on[0]"
        );
        assert_eq!(
            policy("{ attempts: 1, on: [5xx], backoff: 0s }")
                .unwrap_err()
                .path,
            "retry.backoff"
        );
        assert!(serde_yaml::from_str::<RetryConfig>("{ attempts: 1, on: [bogus] }").is_err());
    }
}
