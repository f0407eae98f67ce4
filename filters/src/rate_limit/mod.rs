//! `rate_limit`: holds each caller to a rate (a tenant to its plan, an anonymous client to a
//! trickle), counted in this process or, for a fleet of gateways, in Redis.
//!
//! Each limit has a `key`, a CEL expression over the same variables as `transformation`
//! (`jwt`, `request`, `source`): requests with the same key value share a bucket of `burst`
//! requests refilled at `rate`. A key that does not evaluate to a value (an error, `null`, a
//! request without the claim) leaves the request uncounted by that limit, so
//! `'has(jwt.sub) ? null : source.address'` limits only anonymous callers (without a verified
//! token, `jwt` is an empty map here). A limit with
//! `routes` counts only requests routed there, which needs the filter in `post_routing`.
//! Placed after `jwt_authn`, a key from a claim is a verified one: a forged tenant claim never
//! reaches it, and so never spends another tenant's budget.
//!
//! # Verdict
//! Every limit that applies to a request counts it, all or nothing: a request refused by one
//! limit takes nothing from the others. Refused: `429` with `Retry-After` (seconds until it
//! would pass) and `RateLimit-Limit` (the burst), `RateLimit-Remaining`, `RateLimit-Reset`
//! (seconds until the next request would pass), describing the limit that refused it; a JSON
//! body names the limit, never the key. With `headers: always`, a request let through gets
//! the same headers for the limit closest to running out.
//!
//! # Stores
//! - `local` (default): exact per process, shared by its worker threads without a lock on
//!   the whole table (`local.rs`). A reload keeps the counts of every limit it leaves as it
//!   was (same listener, name, rate, burst).
//! - `redis`: one script call per request decides every limit on Redis's clock, shared by
//!   every gateway with the same config (`redis.rs`). Keys are
//!   `switchyard:rl:<listener>:<limit>:<key value>` and expire by themselves. When Redis cannot
//!   answer within `timeout`, `failure_mode` decides: `allow` lets the request through
//!   uncounted, `deny` answers 503 with `Retry-After`; either way it is counted, and the
//!   gateway starts and serves while Redis is down.
//!
//! # Files
//! - `config.rs`: the YAML shape and rates (`100/s`).
//! - `gcra.rs`: the algorithm, one number per key.
//! - `local.rs`, `redis.rs`: the two stores.
//! - `stats.rs`: what each limit decided, for the metrics.
//! - `tests.rs`: the filter end to end on the local store.

mod config;
mod gcra;
mod local;
mod redis;
mod stats;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderName, HeaderValue, StatusCode};

use crate::expression::{Expression, Uses, Variables};
use crate::{
    BuildContext, Filter, FilterConfigError, FilterFactory, Flow, LocalResponse, MetricKind,
    MetricSample, Phase, RequestContext, VerifiedJwt,
};
use config::{FailureMode, HeadersOn, LimitConfig, Rate, RateLimitConfig, StoreKind};
use gcra::Quota;
use local::LocalCounts;
use redis::RedisCounts;
use stats::{Counts, Outcome};

pub const NAME: &str = "rate_limit";

/// Key values longer than this are kept as their SHA-256: a key is a tenant or an address,
/// and a long one only costs memory (here and in Redis).
const MAX_KEY_LEN: usize = 128;

/// A limit's verdict on one request, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict {
    allowed: bool,
    remaining: u64,
    reset_secs: u64,
}

struct Limit {
    name: Arc<str>,
    key: Expression,
    rate: Rate,
    burst: u64,
    routes: Option<Vec<String>>,
    counts: Counts,
    store: LimitStore,
}

enum LimitStore {
    Local(Arc<LocalCounts>),
    /// Its keys' prefix in Redis, and its quota in microseconds.
    Redis {
        prefix: String,
        quota: Quota,
    },
}

/// The Redis server of a filter with `store: redis`.
struct RedisStore {
    url: String,
    timeout: Duration,
    failure_mode: FailureMode,
    /// Made at build in a running server (so its connection lives on the background runtime),
    /// or on first use elsewhere (`explain`); `None` if the client cannot be made.
    counts: Arc<OnceLock<Option<RedisCounts>>>,
}

impl RedisStore {
    fn counts(&self) -> Option<&RedisCounts> {
        self.counts
            .get_or_init(|| RedisCounts::new(&self.url, self.timeout).ok())
            .as_ref()
    }
}

pub struct RateLimit {
    limits: Vec<Limit>,
    redis: Option<RedisStore>,
    headers: HeadersOn,
    uses: Uses,
}

/// The value of a key expression as text; `None` when it has none to count by.
fn key_value(value: Result<cel::Value, cel::ExecutionError>) -> Option<String> {
    let text = match value.ok()? {
        cel::Value::String(s) => s.to_string(),
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => u.to_string(),
        cel::Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    if text.is_empty() {
        return None;
    }
    if text.len() <= MAX_KEY_LEN {
        return Some(text);
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("sha256:{hex}"))
}

/// The claims of a request without a verified token: none.
fn no_token() -> Arc<VerifiedJwt> {
    static NONE: OnceLock<Arc<VerifiedJwt>> = OnceLock::new();
    NONE.get_or_init(|| Arc::new(VerifiedJwt::new(Arc::from("-"), serde_json::json!({}))))
        .clone()
}

fn header(value: u64) -> HeaderValue {
    HeaderValue::from(value)
}

const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

impl RateLimit {
    /// The verdicts of `applying` from the store: taken, or only looked at when `peek`.
    async fn verdicts(
        &self,
        applying: &[(&Limit, String)],
        peek: bool,
    ) -> Result<Vec<Verdict>, String> {
        match &self.redis {
            None => {
                let mut verdicts = Vec::with_capacity(applying.len());
                let mut taken = Vec::new();
                for (limit, key) in applying {
                    let LimitStore::Local(counts) = &limit.store else {
                        return Err("a limit without its local store".into());
                    };
                    let d = if peek {
                        counts.peek(key)
                    } else {
                        let (d, bucket) = counts.take(key);
                        if d.allowed {
                            taken.push((counts, bucket));
                        }
                        d
                    };
                    verdicts.push(Verdict {
                        allowed: d.allowed,
                        remaining: d.remaining,
                        reset_secs: local::seconds(d.reset),
                    });
                }
                if verdicts.iter().any(|v| !v.allowed) {
                    // All or nothing: what the others took goes back. (Meanwhile another
                    // request on those keys may have seen one request fewer left: counts
                    // are exact once every request is decided.)
                    for (counts, bucket) in &taken {
                        counts.give_back(bucket);
                    }
                }
                Ok(verdicts)
            }
            Some(store) => {
                let counts = store
                    .counts()
                    .ok_or_else(|| format!("no Redis client for {}", store.url))?;
                let keys: Vec<(String, Quota)> = applying
                    .iter()
                    .filter_map(|(limit, key)| match &limit.store {
                        LimitStore::Redis { prefix, quota } => {
                            Some((format!("{prefix}{key}"), *quota))
                        }
                        LimitStore::Local(_) => None,
                    })
                    .collect();
                let decisions = if peek {
                    counts.peek(&keys).await
                } else {
                    counts.take(&keys).await
                }
                .map_err(|e| e.to_string())?;
                Ok(decisions
                    .into_iter()
                    .map(|d| Verdict {
                        allowed: d.allowed,
                        remaining: d.remaining,
                        reset_secs: redis::seconds(d.reset),
                    })
                    .collect())
            }
        }
    }
}

#[async_trait]
impl Filter for RateLimit {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn on_request(&self, ctx: &mut RequestContext<'_>) -> Flow {
        let route = ctx.route().map(|r| r.route.clone());
        let vars = Variables::bind(
            self.uses,
            // Without a token `jwt` is an empty map, not unbound: `has(jwt.sub)` is false and
            // `jwt.tenantId` has no value, so a key can tell anonymous callers apart.
            ctx.jwt_shared().or_else(|| Some(no_token())),
            ctx.request(),
            ctx.client_ip(),
            ctx.client_certificate(),
        );
        let mut applying: Vec<(&Limit, String)> = Vec::with_capacity(self.limits.len());
        for limit in &self.limits {
            if let Some(routes) = &limit.routes {
                if !route
                    .as_deref()
                    .is_some_and(|r| routes.iter().any(|n| n == r))
                {
                    continue;
                }
            }
            match key_value(limit.key.evaluate(&vars)) {
                Some(key) => applying.push((limit, key)),
                None => ctx.note(|| {
                    format!(
                        "limit `{}`: `{}` gives no key; not counted",
                        limit.name,
                        limit.key.source()
                    )
                }),
            }
        }
        if applying.is_empty() {
            return Flow::Continue;
        }

        // `explain` looks at the buckets without taking from them.
        let traced = ctx.is_traced();
        let verdicts = match self.verdicts(&applying, traced).await {
            Ok(verdicts) => verdicts,
            Err(why) => return self.store_failed(ctx, &applying, &why),
        };
        for ((limit, _), v) in applying.iter().zip(&verdicts) {
            ctx.note(|| {
                format!(
                    "limit `{}` ({}, burst {}): {} of {} left{}",
                    limit.name,
                    limit.rate,
                    limit.burst,
                    v.remaining,
                    limit.burst,
                    if v.allowed {
                        String::new()
                    } else {
                        format!(", over it for {}s", v.reset_secs)
                    }
                )
            });
        }

        let refused = applying
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| !v.allowed)
            .max_by_key(|(_, v)| v.reset_secs);
        if let Some(((limit, _), v)) = refused {
            if !traced {
                for ((l, _), v) in applying.iter().zip(&verdicts) {
                    if !v.allowed {
                        l.counts.record(Outcome::Limited);
                    }
                }
            }
            let retry_after = v.reset_secs.max(1);
            let answer = LocalResponse::json(
                StatusCode::TOO_MANY_REQUESTS,
                &serde_json::json!({
                    "error": "rate_limited",
                    "message": format!("over the limit `{}` ({}, burst {})", limit.name, limit.rate, limit.burst),
                    "limit": &*limit.name,
                }),
            )
            .with_header(http::header::RETRY_AFTER, header(retry_after))
            .with_header(RATELIMIT_LIMIT, header(limit.burst))
            .with_header(RATELIMIT_REMAINING, header(0))
            .with_header(RATELIMIT_RESET, header(retry_after));
            return Flow::Respond(answer);
        }

        if !traced {
            for (limit, _) in &applying {
                limit.counts.record(Outcome::Allowed);
            }
        }
        if self.headers == HeadersOn::Always {
            if let Some(((limit, _), v)) = applying
                .iter()
                .zip(&verdicts)
                .min_by_key(|(_, v)| v.remaining)
            {
                ctx.add_response_header(RATELIMIT_LIMIT, header(limit.burst));
                ctx.add_response_header(RATELIMIT_REMAINING, header(v.remaining));
                ctx.add_response_header(RATELIMIT_RESET, header(v.reset_secs));
            }
        }
        Flow::Continue
    }

    fn describe(&self) -> Vec<String> {
        let store = match &self.redis {
            None => "counted in this process".to_owned(),
            Some(r) => format!(
                "counted in Redis at {} (timeout {:?}, failure_mode {})",
                r.url,
                r.timeout,
                match r.failure_mode {
                    FailureMode::Allow => "allow",
                    FailureMode::Deny => "deny",
                }
            ),
        };
        let mut lines = vec![store];
        for l in &self.limits {
            lines.push(format!(
                "limit `{}`: {} burst {} per `{}`{}",
                l.name,
                l.rate,
                l.burst,
                l.key.source(),
                l.routes
                    .as_ref()
                    .map(|r| format!(" on routes {}", r.join(", ")))
                    .unwrap_or_default()
            ));
        }
        lines
    }

    fn metrics(&self) -> Vec<MetricSample> {
        let mut out = Vec::with_capacity(self.limits.len() * Outcome::ALL.len());
        for limit in &self.limits {
            for outcome in Outcome::ALL {
                out.push(MetricSample {
                    name: "rate_limit_total",
                    help: "Requests a rate limit applied to, by limit and result: allowed, limited (429), failed_open and failed_closed (the store could not be asked).",
                    kind: MetricKind::Counter,
                    labels: vec![
                        ("limit", limit.name.to_string()),
                        ("result", outcome.as_str().to_owned()),
                    ],
                    value: limit.counts.get(outcome),
                });
            }
        }
        out
    }
}

impl RateLimit {
    /// Redis could not be asked: `failure_mode` decides, and it is counted.
    fn store_failed(
        &self,
        ctx: &mut RequestContext<'_>,
        applying: &[(&Limit, String)],
        why: &str,
    ) -> Flow {
        let mode = self
            .redis
            .as_ref()
            .map_or(FailureMode::Allow, |r| r.failure_mode);
        ctx.note(|| format!("the rate limit store could not be asked: {why}"));
        log::debug!("rate_limit: the store could not be asked: {why}");
        match mode {
            FailureMode::Allow => {
                for (limit, _) in applying {
                    limit.counts.record(Outcome::FailedOpen);
                }
                Flow::Continue
            }
            FailureMode::Deny => {
                for (limit, _) in applying {
                    limit.counts.record(Outcome::FailedClosed);
                }
                Flow::Respond(
                    LocalResponse::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "rate_limit_unavailable",
                        "the rate limit cannot be checked now",
                    )
                    .with_header(http::header::RETRY_AFTER, header(1)),
                )
            }
        }
    }
}

pub struct RateLimitFactory;

impl FilterFactory for RateLimitFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> &'static [Phase] {
        &[Phase::PreRouting, Phase::PostRouting]
    }

    fn build(
        &self,
        config: &serde_yaml::Value,
        ctx: &BuildContext<'_>,
    ) -> Result<Arc<dyn Filter>, FilterConfigError> {
        let config: RateLimitConfig = FilterConfigError::parse(config)?;
        if config.limits.is_empty() {
            return Err(FilterConfigError::new(
                "limits",
                "at least one limit is needed",
            ));
        }
        let listener = ctx.listener().map_or("-", |l| l.name);
        let redis = match (config.store, &config.redis) {
            (StoreKind::Local, None) => None,
            (StoreKind::Local, Some(_)) => {
                return Err(FilterConfigError::new("redis", "only with `store: redis`"))
            }
            (StoreKind::Redis, None) => {
                return Err(FilterConfigError::new(
                    "redis",
                    "`store: redis` needs `redis: { url: ... }`",
                ))
            }
            (StoreKind::Redis, Some(r)) => Some(redis_store(r, ctx)?),
        };
        let mut names = std::collections::HashSet::new();
        let mut limits = Vec::with_capacity(config.limits.len());
        let mut uses = Uses::default();
        for (i, l) in config.limits.iter().enumerate() {
            let at = format!("limits[{i}]");
            if !names.insert(l.name.as_str()) {
                return Err(FilterConfigError::new(
                    format!("{at}.name"),
                    format!("duplicate limit name `{}`", l.name),
                ));
            }
            let limit = build_limit(l, &at, listener, &config, redis.is_some(), ctx)?;
            uses = uses.union(limit.key.uses());
            limits.push(limit);
        }
        Ok(Arc::new(RateLimit {
            limits,
            redis,
            headers: config.headers,
            uses,
        }))
    }
}

fn redis_store(
    r: &config::RedisConfig,
    ctx: &BuildContext<'_>,
) -> Result<RedisStore, FilterConfigError> {
    ::redis::Client::open(r.url.as_str())
        .map_err(|e| FilterConfigError::new("redis.url", format!("not a Redis URL: {e}")))?;
    if r.timeout.is_zero() {
        return Err(FilterConfigError::new(
            "redis.timeout",
            "must be more than zero",
        ));
    }
    let counts = match ctx.background() {
        // One client per server and timeout, shared by every filter and config that asks
        // it; its connection lives on the background runtime.
        Some(bg) => bg.shared(
            &format!("rate_limit redis {} {:?}", r.url, r.timeout),
            || {
                let _runtime = bg.runtime().enter();
                let cell = OnceLock::new();
                let _ = cell.set(RedisCounts::new(&r.url, r.timeout).ok());
                cell
            },
        ),
        None => Arc::new(OnceLock::new()),
    };
    Ok(RedisStore {
        url: r.url.clone(),
        timeout: r.timeout,
        failure_mode: r.failure_mode,
        counts,
    })
}

fn build_limit(
    l: &LimitConfig,
    at: &str,
    listener: &str,
    config: &RateLimitConfig,
    redis: bool,
    ctx: &BuildContext<'_>,
) -> Result<Limit, FilterConfigError> {
    if l.name.is_empty() || l.name.contains(':') {
        return Err(FilterConfigError::new(
            format!("{at}.name"),
            "a limit needs a name without `:`",
        ));
    }
    let burst = l.burst.unwrap_or(l.rate.requests);
    if burst == 0 || burst > 1_000_000_000 {
        return Err(FilterConfigError::new(
            format!("{at}.burst"),
            "must be between 1 and 1000000000",
        ));
    }
    let key = Expression::compile(&l.key, &format!("{at}.key"))?;
    if let Some(routes) = &l.routes {
        if ctx.phase() != Some(Phase::PostRouting) {
            return Err(FilterConfigError::new(
                format!("{at}.routes"),
                "per-route limits need the filter in post_routing, where the route is known",
            ));
        }
        if let Some(known) = ctx.listener().map(|l| l.routes) {
            for (j, route) in routes.iter().enumerate() {
                if !known.contains(route) {
                    return Err(FilterConfigError::new(
                        format!("{at}.routes[{j}]"),
                        crate::validate::unknown("route", route, known.iter().map(String::as_str)),
                    ));
                }
            }
        }
    }
    if redis && l.rate.period.as_micros() < u128::from(l.rate.requests) {
        return Err(FilterConfigError::new(
            format!("{at}.rate"),
            "Redis counts in microseconds: at most 1000000/s",
        ));
    }
    let store = if redis {
        LimitStore::Redis {
            prefix: format!("switchyard:rl:{listener}:{}:", l.name),
            quota: redis::quota(l.rate.requests, l.rate.period, burst),
        }
    } else {
        let make = || {
            LocalCounts::new(
                local::quota(l.rate.requests, l.rate.period, burst),
                config.max_keys,
            )
        };
        // A reload that leaves the limit as it was keeps its counts.
        LimitStore::Local(match ctx.background() {
            Some(bg) => bg.shared(
                &format!(
                    "rate_limit local {listener} {} {} {burst} {}",
                    l.name, l.rate, config.max_keys
                ),
                make,
            ),
            None => Arc::new(make()),
        })
    };
    Ok(Limit {
        name: Arc::from(l.name.as_str()),
        key,
        rate: l.rate,
        burst,
        routes: l.routes.clone(),
        counts: Counts::default(),
        store,
    })
}
