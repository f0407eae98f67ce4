//! The YAML shape of `rate_limit`, and rates as they are written (`100/s`).
//!
//! ```yaml
//! - name: rate_limit
//!   config:
//!     store: local                 # local (default) | redis
//!     redis: { url: redis://127.0.0.1:6379/0, timeout: 20ms, failure_mode: allow }
//!     headers: limited             # limited (default): RateLimit-* on 429s | always
//!     max_keys: 100000             # local store: keys held per limit (default)
//!     limits:
//!       - name: per-tenant
//!         key: jwt.tenantId        # CEL; no value (error, null): this limit does not count it
//!         rate: 100/s              # n/s, n/m, n/h
//!         burst: 200               # default: n of the rate
//!         routes: [orders]         # optional: only these routes (post_routing only)
//! ```

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default)]
    pub store: StoreKind,
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    #[serde(default)]
    pub headers: HeadersOn,
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    pub limits: Vec<LimitConfig>,
}

fn default_max_keys() -> usize {
    100_000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Counted by this process alone, exactly.
    #[default]
    Local,
    /// Counted in Redis, shared by every gateway that asks the same server.
    Redis,
}

/// Which responses carry the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadersOn {
    /// Only the 429s.
    #[default]
    Limited,
    /// Every response of a request some limit counted.
    Always,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// How long a request waits for Redis's verdict before `failure_mode` decides.
    #[serde(default = "default_redis_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default)]
    pub failure_mode: FailureMode,
}

fn default_redis_timeout() -> Duration {
    Duration::from_millis(20)
}

/// What a request gets when Redis cannot be asked (down, slow, refusing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Let it through, uncounted: the limit fails open.
    #[default]
    Allow,
    /// Answer 503 with `Retry-After`: the limit fails closed.
    Deny,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    pub name: String,
    pub key: String,
    pub rate: Rate,
    #[serde(default)]
    pub burst: Option<u64>,
    #[serde(default)]
    pub routes: Option<Vec<String>>,
}

/// `n` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests: u64,
    pub period: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a rate: write n/s, n/m or n/h, n at least 1");
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let requests: u64 = n.trim().parse().map_err(|_| bad())?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if requests == 0 || requests > 1_000_000_000 {
            return Err(bad());
        }
        Ok(Rate { requests, period })
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.requests)
    }
}
