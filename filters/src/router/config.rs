//! The router's config, as written under a listener's `routes`.
//!
//! ```yaml
//! routes:
//!   - name: override-v2
//!     hostnames: [api.example.com]  # optional: only for these hosts (`*.example.com` too)
//!     matches:                      # entries are OR-ed; the tests inside one are AND-ed
//!       - headers:
//!           - name: x-version-override
//!             value: v2             # type: Exact (default) or RegularExpression
//!     backend: app-v2
//!   - name: api-get
//!     matches:
//!       - path: { type: PathPrefix, value: /api }   # Exact, PathPrefix (default), RegularExpression
//!         method: GET
//!         query_params:
//!           - { name: debug, value: "1" }
//!     backend: app-latest
//!   - name: canary
//!     matches: [{ path: { value: /orders } }]
//!     backends:                     # the traffic split by weight
//!       - { backend: app-v2, weight: 9 }
//!       - { backend: app-v3, weight: 1 }
//!   - name: old-docs
//!     matches: [{ path: { value: /docs } }]
//!     redirect: { hostname: docs.example.com, path: { prefix: { from: /docs, to: / } }, status: 301 }
//!   - name: orders
//!     matches: [{ path: { value: /orders } }]
//!     backend: app-latest
//!     filters:                      # this route's own, after the listener's
//!       request: [{ name: url_rewrite, config: { path: { prefix: { from: /orders, to: /v2/orders } } } }]
//!   - name: retired
//!     matches: [{ path: { value: /v0 } }]
//!     respond: { status: 410, message: "v0 is retired" }   # answered by the gateway
//!   - name: default                 # no `matches`: matches every request
//!     backend: app-latest
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::redirect::RedirectConfig;
use crate::FilterEntry;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique within the listener; used in metrics, logs and error bodies.
    pub name: String,
    /// The host names the route answers for (`api.example.com`, `*.example.com`), matched
    /// against the request's host without its port. Empty or absent: any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Alternatives: the route matches when any entry matches. Empty or absent: every request.
    #[serde(default)]
    pub matches: Vec<MatchConfig>,
    /// The name of a backend defined under the top-level `backends`. A route has one of
    /// `backend`, `backends` and `respond`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Several backends sharing the route's traffic by weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<WeightedBackendConfig>,
    /// An answer the gateway gives itself, instead of proxying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond: Option<DirectResponseConfig>,
    /// A redirect the gateway answers with, built from the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectConfig>,
    /// The route's own filters, for the requests it sends to a backend: `request` ones run
    /// after the listener's `post_routing` filters, `response` ones before its `response`
    /// filters.
    #[serde(default, skip_serializing_if = "RouteFiltersConfig::is_empty")]
    pub filters: RouteFiltersConfig,
    /// The largest request body this route accepts, in bytes; larger ones get 413. Absent:
    /// the listener's `limits.max_request_body_bytes`.
    #[serde(default)]
    pub max_request_body_bytes: Option<u64>,
    /// Time bounds of a request on this route, beyond its backend's own.
    #[serde(default, skip_serializing_if = "RouteTimeouts::is_empty")]
    pub timeouts: RouteTimeouts,
    /// Sending a request again when an attempt fails in one of the listed ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
}

/// When and how often a route's request is sent again. Only a request that is safe to replay
/// is (an idempotent method, and a body still held whole), within its backend's retry budget,
/// and to another host when the backend has one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries after the first attempt (1 to 10).
    pub attempts: u32,
    /// What is retried: `connect-failure`, `reset` (the connection failed after the request
    /// was sent), `gateway-error` (a 502, 503 or 504, from the backend or for a timeout),
    /// `5xx` (any 5xx, timeouts included), or a status code.
    pub on: Vec<RetryOn>,
    /// The first wait before a retry; each next one doubles, at most ten times the first,
    /// with full jitter.
    #[serde(default = "default_retry_backoff", with = "humantime_serde")]
    pub backoff: Duration,
}

fn default_retry_backoff() -> Duration {
    Duration::from_millis(25)
}

/// One condition a retry is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RetryOn {
    Status(u16),
    Named(RetryCondition),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryCondition {
    ConnectFailure,
    Reset,
    GatewayError,
    #[serde(rename = "5xx")]
    FiveXx,
}

/// How long a request on a route may take (the Gateway API's HTTPRoute `timeouts`). Past
/// either, the request gets 504 (or, once its response has begun, is cut off) and its
/// upstream connection is closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTimeouts {
    /// The whole exchange: from the request's header to the last byte of the response,
    /// every attempt included.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub request: Option<Duration>,
    /// One attempt at a backend: from sending it the request to its response's last byte.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub backend_request: Option<Duration>,
}

impl RouteTimeouts {
    pub fn is_empty(&self) -> bool {
        self.request.is_none() && self.backend_request.is_none()
    }
}

/// One share of a route's traffic: a backend, or an answer the gateway gives.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedBackendConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond: Option<DirectResponseConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectConfig>,
    /// This share's own filters, run after the route's when the share is drawn.
    #[serde(default, skip_serializing_if = "RouteFiltersConfig::is_empty")]
    pub filters: RouteFiltersConfig,
    /// Its share relative to the others' (0 to 1,000,000; 0 gets no traffic). Default 1.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

impl Default for WeightedBackendConfig {
    /// A share of weight 1 that goes nowhere yet.
    fn default() -> Self {
        WeightedBackendConfig {
            backend: None,
            respond: None,
            redirect: None,
            filters: RouteFiltersConfig::default(),
            weight: default_weight(),
        }
    }
}

/// A route's (or a share's) own filters, by phase.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFiltersConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request: Vec<FilterEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response: Vec<FilterEntry>,
}

impl RouteFiltersConfig {
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// A route's own answer: `status` with the gateway's JSON error body,
/// `{"error": error, "message": message, "route": name}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DirectResponseConfig {
    /// 200 to 599.
    pub status: u16,
    /// A short code. Absent: the status's reason in snake case (`service_unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Absent: "answered by route `name`".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One alternative of a route: every test it names must pass.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    #[serde(default)]
    pub path: Option<PathMatchConfig>,
    #[serde(default)]
    pub headers: Vec<HeaderMatchConfig>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub query_params: Vec<QueryParamMatchConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum PathMatchType {
    /// The whole path equals the value.
    Exact,
    /// The path starts with the value on a segment boundary: `/api` matches `/api` and
    /// `/api/v1`, never `/apiv1`. A trailing `/` in the value is ignored.
    #[default]
    PathPrefix,
    /// The whole path matches the regular expression (it is anchored at both ends).
    RegularExpression,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathMatchConfig {
    #[serde(rename = "type", default)]
    pub kind: PathMatchType,
    pub value: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum ValueMatchType {
    /// The value equals the configured one, byte for byte (case-sensitive).
    #[default]
    Exact,
    /// The whole value matches the regular expression (it is anchored at both ends).
    RegularExpression,
}

/// A header test. The name is case-insensitive; when a request carries the header several times,
/// the values are joined with `,` before the test, as HTTP folds them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderMatchConfig {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: ValueMatchType,
    pub value: String,
}

/// A query parameter test. The name is case-sensitive and both name and value are compared
/// after URL decoding; when a parameter repeats, only its first occurrence is considered.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryParamMatchConfig {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: ValueMatchType,
    pub value: String,
}
