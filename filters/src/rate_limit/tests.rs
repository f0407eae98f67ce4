//! `rate_limit` on the local store, through its factory and `on_request`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::{RequestHeader, RequestState, VerifiedJwt};

const ROUTES: &[&str] = &["orders", "other"];

fn build(yaml: &str, phase: Phase) -> Result<Arc<dyn Filter>, FilterConfigError> {
    let backends: [Arc<str>; 0] = [];
    let routes: Vec<String> = ROUTES.iter().map(|r| (*r).to_owned()).collect();
    let ctx = BuildContext::new(&backends, Path::new("."))
        .for_listener(crate::Listener {
            name: "main",
            routes: &routes,
        })
        .in_phase(phase);
    RateLimitFactory.build(&serde_yaml::from_str(yaml).expect("yaml"), &ctx)
}

/// What one request got: `None` when it went on, else the answer's status and headers.
struct Outcome {
    answer: Option<LocalResponse>,
    response_headers: Vec<(String, String)>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.answer.is_none()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.answer
            .as_ref()
            .and_then(|a| a.headers().iter().find(|(n, _)| n == name))
            .map(|(_, v)| v.to_str().unwrap_or("").to_owned())
            .or_else(|| {
                self.response_headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            })
    }
}

async fn send(
    filter: &Arc<dyn Filter>,
    tenant: Option<&str>,
    ip: &str,
    route: Option<&str>,
) -> Outcome {
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    let mut state = RequestState::default();
    let ip: IpAddr = ip.parse().expect("ip");
    let mut ctx = crate::RequestContext::new(&mut req, Some(ip), &mut state);
    if let Some(t) = tenant {
        ctx.set_jwt(Some(Arc::new(VerifiedJwt::new(
            Arc::from("idp"),
            json!({ "sub": "user", "tenantId": t }),
        ))));
    }
    if let Some(route) = route {
        ctx.set_route(crate::RouteTarget {
            route: Arc::from(route),
            backend: crate::BackendRef {
                index: 0,
                name: Arc::from("b"),
            },
            max_request_body_bytes: None,
            timeouts: Default::default(),
            retry: None,
            filters: Default::default(),
        });
    }
    let answer = match filter.on_request(&mut ctx).await {
        Flow::Continue => None,
        Flow::Respond(r) => Some(r),
    };
    drop(ctx);
    Outcome {
        answer,
        response_headers: state
            .response_headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
    }
}

const PER_TENANT: &str = "limits: [{ name: per-tenant, key: jwt.tenantId, rate: 3/h }]";

#[tokio::test]
async fn a_tenant_gets_its_burst_then_429_with_the_headers() {
    let f = build(PER_TENANT, Phase::PreRouting).expect("builds");
    for _ in 0..3 {
        assert!(send(&f, Some("acme"), "10.0.0.1", None).await.passed());
    }
    let refused = send(&f, Some("acme"), "10.0.0.1", None).await;
    let answer = refused.answer.as_ref().expect("refused");
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = serde_json::from_slice(answer.body()).expect("json");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["limit"], "per-tenant");
    assert!(
        !body.to_string().contains("acme"),
        "the key stays out: {body}"
    );
    assert_eq!(refused.header("ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(refused.header("ratelimit-remaining").as_deref(), Some("0"));
    // One request an hour: the next passes in 20 minutes.
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((1199..=1200).contains(&retry), "{retry}");
    assert_eq!(
        refused.header("ratelimit-reset"),
        refused.header("retry-after")
    );

    // Another tenant has its own bucket; a request without a token is not counted.
    assert!(send(&f, Some("globex"), "10.0.0.1", None).await.passed());
    for _ in 0..5 {
        assert!(send(&f, None, "10.0.0.1", None).await.passed());
    }
    let samples = f.metrics();
    let value = |result: &str| {
        samples
            .iter()
            .find(|s| s.labels[1].1 == result)
            .map(|s| s.value)
    };
    assert_eq!(value("allowed"), Some(4));
    assert_eq!(value("limited"), Some(1));
}

#[tokio::test]
async fn several_limits_count_all_or_nothing_and_the_closest_is_reported() {
    let f = build(
        "headers: always
limits:
  - { name: tenant, key: jwt.tenantId, rate: 10/h }
  - { name: address, key: source.address, rate: 2/h }",
        Phase::PreRouting,
    )
    .expect("builds");
    let first = send(&f, Some("acme"), "10.0.0.1", None).await;
    assert!(first.passed());
    // The address limit is the closer one: 1 left of 2.
    assert_eq!(first.header("ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(first.header("ratelimit-remaining").as_deref(), Some("1"));
    assert!(send(&f, Some("acme"), "10.0.0.1", None).await.passed());
    // The address is spent; the refused requests take nothing from the tenant...
    for _ in 0..5 {
        assert!(!send(&f, Some("acme"), "10.0.0.1", None).await.passed());
    }
    // ...which has 8 left for its other addresses.
    let other = send(&f, Some("acme"), "10.0.0.2", None).await;
    assert!(other.passed());
    for _ in 0..7 {
        assert!(
            send(&f, Some("acme"), &format!("10.0.1.{}", rand_octet()), None)
                .await
                .passed()
        );
    }
    assert!(
        !send(&f, Some("acme"), "10.0.0.3", None).await.passed(),
        "tenant spent"
    );
}

/// Distinct addresses for the test above, one per call.
fn rand_octet() -> u8 {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn a_per_route_limit_counts_only_its_routes() {
    let f = build(
        "limits: [{ name: orders, key: source.address, rate: 1/h, routes: [orders] }]",
        Phase::PostRouting,
    )
    .expect("builds");
    assert!(send(&f, None, "10.0.0.1", Some("orders")).await.passed());
    assert!(!send(&f, None, "10.0.0.1", Some("orders")).await.passed());
    for _ in 0..3 {
        assert!(send(&f, None, "10.0.0.1", Some("other")).await.passed());
    }
}

#[test]
fn bad_configs_are_refused_with_their_field() {
    let cases = [
        ("limits: []", Phase::PreRouting, "limits"),
        (
            "limits: [{ name: a, key: source.address, rate: 10/d }]",
            Phase::PreRouting,
            "limits[0].rate",
        ),
        (
            "limits: [{ name: a, key: source.address, rate: 10/s, burst: 0 }]",
            Phase::PreRouting,
            "limits[0].burst",
        ),
        (
            "limits: [{ name: a, key: 'jwt.', rate: 10/s }]",
            Phase::PreRouting,
            "limits[0].key",
        ),
        (
            "limits: [{ name: a, key: source.address, rate: 1/s, routes: [orders] }]",
            Phase::PreRouting,
            "limits[0].routes",
        ),
        (
            "limits: [{ name: a, key: source.address, rate: 1/s, routes: [nope] }]",
            Phase::PostRouting,
            "limits[0].routes[0]",
        ),
        (
            "limits: [{ name: a, key: x, rate: 1/s }, { name: a, key: x, rate: 1/s }]",
            Phase::PreRouting,
            "limits[1].name",
        ),
        (
            "{ store: redis, limits: [{ name: a, key: x, rate: 1/s }] }",
            Phase::PreRouting,
            "redis",
        ),
        (
            "{ store: redis, redis: { url: 'http://x' }, limits: [{ name: a, key: x, rate: 1/s }] }",
            Phase::PreRouting,
            "redis.url",
        ),
        (
            "{ store: redis, redis: { url: 'redis://127.0.0.1:1/0' }, limits: [{ name: a, key: x, rate: 2000000/s }] }",
            Phase::PreRouting,
            "limits[0].rate",
        ),
    ];
    for (yaml, phase, path) in cases {
        let e = build(yaml, phase)
            .err()
            .unwrap_or_else(|| panic!("{yaml} builds"));
        assert!(
            e.path.starts_with(path),
            "{yaml}: {} ({})",
            e.path,
            e.message
        );
    }
}

#[tokio::test]
async fn a_key_can_count_only_callers_without_a_token() {
    let f = build(
        "limits: [{ name: anonymous, key: 'has(jwt.sub) ? null : source.address', rate: 1/h }]",
        Phase::PreRouting,
    )
    .expect("builds");
    assert!(send(&f, None, "10.0.0.1", None).await.passed());
    assert!(!send(&f, None, "10.0.0.1", None).await.passed());
    assert!(send(&f, None, "10.0.0.2", None).await.passed());
    for _ in 0..3 {
        assert!(send(&f, Some("acme"), "10.0.0.1", None).await.passed());
    }
}
