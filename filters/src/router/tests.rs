use std::sync::Arc;

use super::*;
use crate::{RequestState, ResponseHeader};

fn backends() -> Vec<Arc<str>> {
    ["a", "b", "c"].into_iter().map(Arc::from).collect()
}

/// Builds a router from `yaml`, a list of routes; a config that does not fit the shape is an
/// error with its path, as the server reports it.
fn try_router(yaml: &str) -> Result<Router, FilterConfigError> {
    let names = backends();
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("test yaml parses");
    let routes: Vec<RouteConfig> = FilterConfigError::parse(&value)?;
    Router::build(
        &routes,
        &BuildContext::new(&names, std::path::Path::new(".")),
    )
}

fn router(yaml: &str) -> Router {
    try_router(yaml).expect("router builds")
}

fn build_err(yaml: &str) -> FilterConfigError {
    match try_router(yaml) {
        Ok(_) => panic!("router must reject {yaml}"),
        Err(e) => e,
    }
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut r = RequestHeader::build(method, uri.as_bytes(), None).expect("request builds");
    for (n, v) in headers {
        r.append_header(n.to_string(), *v).expect("header appends");
    }
    r
}

/// The route name chosen for the request, or `None` for no match.
fn pick(r: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Option<String> {
    r.select(&req(method, uri, headers))
        .map(|t| t.route.to_string())
}

#[test]
fn first_match_in_order_wins() {
    let r = router(
        r#"
- name: first
  matches: [{ path: { value: /api } }]
  backend: a
- name: second
  matches: [{ path: { value: /api/v1 } }]
  backend: b
"#,
    );
    assert_eq!(pick(&r, "GET", "/api/v1/x", &[]).as_deref(), Some("first"));
}

#[test]
fn path_prefix_respects_segment_boundaries() {
    let r = router(
        "- { name: p, matches: [{ path: { type: PathPrefix, value: /api/ } }], backend: a }",
    );
    assert_eq!(pick(&r, "GET", "/api", &[]).as_deref(), Some("p"));
    assert_eq!(pick(&r, "GET", "/api/", &[]).as_deref(), Some("p"));
    assert_eq!(pick(&r, "GET", "/api/users?x=1", &[]).as_deref(), Some("p"));
    assert_eq!(pick(&r, "GET", "/apiv1", &[]), None);
    assert_eq!(pick(&r, "GET", "/", &[]), None);
}

#[test]
fn root_prefix_matches_everything() {
    let r = router("- { name: all, matches: [{ path: { value: / } }], backend: a }");
    assert_eq!(pick(&r, "GET", "/", &[]).as_deref(), Some("all"));
    assert_eq!(pick(&r, "GET", "/deep/path", &[]).as_deref(), Some("all"));
}

#[test]
fn exact_path_ignores_query_but_not_trailing_slash() {
    let r =
        router("- { name: e, matches: [{ path: { type: Exact, value: /health } }], backend: a }");
    assert_eq!(
        pick(&r, "GET", "/health?verbose=1", &[]).as_deref(),
        Some("e")
    );
    assert_eq!(pick(&r, "GET", "/health/", &[]), None);
    assert_eq!(pick(&r, "GET", "/healthz", &[]), None);
}

#[test]
fn regex_path_is_anchored() {
    let r = router(
        r#"- { name: r, matches: [{ path: { type: RegularExpression, value: "/users/[0-9]+" } }], backend: a }"#,
    );
    assert_eq!(pick(&r, "GET", "/users/42", &[]).as_deref(), Some("r"));
    assert_eq!(pick(&r, "GET", "/users/42/posts", &[]), None);
    assert_eq!(pick(&r, "GET", "/x/users/42", &[]), None);
}

#[test]
fn header_names_are_case_insensitive_values_case_sensitive() {
    let r = router(
        "- { name: h, matches: [{ headers: [{ name: X-Version-Override, value: v2 }] }], backend: b }",
    );
    assert_eq!(
        pick(&r, "GET", "/", &[("x-version-override", "v2")]).as_deref(),
        Some("h")
    );
    assert_eq!(
        pick(&r, "GET", "/", &[("X-VERSION-OVERRIDE", "v2")]).as_deref(),
        Some("h")
    );
    assert_eq!(pick(&r, "GET", "/", &[("x-version-override", "V2")]), None);
    assert_eq!(pick(&r, "GET", "/", &[]), None);
}

#[test]
fn header_regex_and_repeated_values() {
    let r = router(
        r#"- { name: h, matches: [{ headers: [{ name: x-v, type: RegularExpression, value: "v[0-9]+" }] }], backend: b }"#,
    );
    assert_eq!(
        pick(&r, "GET", "/", &[("x-v", "v12")]).as_deref(),
        Some("h")
    );
    assert_eq!(pick(&r, "GET", "/", &[("x-v", "v12x")]), None);
    // A repeated header is tested folded (`v1,v2`), so an anchored single-value regex fails.
    assert_eq!(pick(&r, "GET", "/", &[("x-v", "v1"), ("x-v", "v2")]), None);
    let exact = router(
        "- { name: h, matches: [{ headers: [{ name: x-v, value: 'v1,v2' }] }], backend: b }",
    );
    assert_eq!(
        pick(&exact, "GET", "/", &[("x-v", "v1"), ("x-v", "v2")]).as_deref(),
        Some("h")
    );
}

#[test]
fn method_matches_exactly() {
    let r = router("- { name: m, matches: [{ method: POST }], backend: a }");
    assert_eq!(pick(&r, "POST", "/", &[]).as_deref(), Some("m"));
    assert_eq!(pick(&r, "GET", "/", &[]), None);
}

#[test]
fn query_params_are_decoded_and_first_occurrence_counts() {
    let r = router(
        r#"
- name: q
  matches: [{ query_params: [{ name: tenant, value: "acme corp" }] }]
  backend: a
- name: qr
  matches: [{ query_params: [{ name: n, type: RegularExpression, value: "[0-9]{2}" }] }]
  backend: b
"#,
    );
    assert_eq!(
        pick(&r, "GET", "/?tenant=acme%20corp", &[]).as_deref(),
        Some("q")
    );
    assert_eq!(
        pick(&r, "GET", "/?tenant=acme+corp", &[]).as_deref(),
        Some("q")
    );
    assert_eq!(
        pick(&r, "GET", "/?tenant=other&tenant=acme+corp", &[]),
        None
    );
    assert_eq!(pick(&r, "GET", "/?Tenant=acme+corp", &[]), None);
    assert_eq!(pick(&r, "GET", "/?n=42", &[]).as_deref(), Some("qr"));
    assert_eq!(pick(&r, "GET", "/?n=420", &[]), None);
    assert_eq!(pick(&r, "GET", "/", &[]), None);
}

#[test]
fn tests_within_an_entry_are_anded_entries_are_ored() {
    let r = router(
        r#"
- name: both
  matches:
    - { path: { value: /admin }, method: DELETE, headers: [{ name: x-role, value: ops }] }
    - { headers: [{ name: x-break-glass, value: "yes" }] }
  backend: a
"#,
    );
    let ops = [("x-role", "ops")];
    assert_eq!(
        pick(&r, "DELETE", "/admin/x", &ops).as_deref(),
        Some("both")
    );
    assert_eq!(pick(&r, "GET", "/admin/x", &ops), None);
    assert_eq!(pick(&r, "DELETE", "/other", &ops), None);
    assert_eq!(pick(&r, "DELETE", "/admin", &[]), None);
    assert_eq!(
        pick(&r, "GET", "/anything", &[("x-break-glass", "yes")]).as_deref(),
        Some("both")
    );
}

#[test]
fn route_without_matches_takes_everything() {
    let r = router("- { name: default, backend: c }");
    let target = r.select(&req("PATCH", "/x?y", &[])).expect("matches");
    assert_eq!(&*target.route, "default");
    assert_eq!(&*target.backend.name, "c");
    assert_eq!(target.backend.index, 2);
}

#[tokio::test]
async fn no_match_answers_404_json() {
    let r = router("- { name: only, matches: [{ path: { type: Exact, value: /x } }], backend: a }");
    let mut header = req("GET", "/y", &[]);
    let mut state = RequestState::default();
    let mut ctx = RequestContext::new(&mut header, None, &mut state);
    match r.on_request(&mut ctx).await {
        Flow::Respond(resp) => {
            assert_eq!(resp.status(), StatusCode::NOT_FOUND);
            let body: serde_json::Value = serde_json::from_slice(resp.body()).expect("json body");
            assert_eq!(body["error"], "no_route");
        }
        Flow::Continue => panic!("expected a 404"),
    }
    assert!(state.route().is_none());
    let _ = ResponseHeader::build(200, None);
}

#[tokio::test]
async fn a_match_records_the_route_in_the_context() {
    let r = router("- { name: only, backend: b }");
    let mut header = req("GET", "/", &[]);
    let mut state = RequestState::default();
    let mut ctx = RequestContext::new(&mut header, None, &mut state);
    assert!(matches!(r.on_request(&mut ctx).await, Flow::Continue));
    assert_eq!(state.route().map(|t| &*t.backend.name), Some("b"));
}

#[test]
fn config_errors_name_the_field() {
    let e = build_err("- { name: r, backend: nope }");
    assert_eq!(e.path, "[0].backend");
    assert!(
        e.message.contains("`nope`") && e.message.contains("a, b, c"),
        "{e}"
    );

    let e = build_err(
        r#"- { name: r, matches: [{ path: { type: RegularExpression, value: "(" } }], backend: a }"#,
    );
    assert_eq!(e.path, "[0].matches[0].path.value");
    assert!(e.message.contains("regular expression"), "{e}");

    let e = build_err("- { name: r, matches: [{ pth: { value: / } }], backend: a }");
    assert_eq!(e.path, "[0].matches[0].pth");
    assert!(e.message.contains("unknown field `pth`"), "{e}");

    let e = build_err("- { name: r, matches: [{ method: get }], backend: a }");
    assert_eq!(e.path, "[0].matches[0].method");

    let e = build_err("- { name: r, matches: [{ path: { value: api } }], backend: a }");
    assert_eq!(e.path, "[0].matches[0].path.value");

    let e = build_err("- { name: r, matches: [{ path: { type: Prefix, value: / } }], backend: a }");
    assert_eq!(e.path, "[0].matches[0].path.type");

    let e = build_err(
        "- { name: r, matches: [{ headers: [{ name: 'bad name', value: x }] }], backend: a }",
    );
    assert_eq!(e.path, "[0].matches[0].headers[0].name");
}

#[test]
fn describe_lists_routes_in_order() {
    let r = router(
        r#"
- { name: v2, matches: [{ headers: [{ name: x-version-override, value: v2 }] }], backend: b }
- { name: default, backend: a }
"#,
    );
    assert_eq!(
        r.describe(),
        vec![
            r#"v2: header x-version-override = "v2" -> b"#.to_owned(),
            "default: any request -> a".to_owned(),
        ]
    );
}

#[test]
fn host_names_pick_routes_and_answers_stop_the_search() {
    let r = router(
        r#"
- { name: closed, matches: [{ path: { value: /closed } }], respond: { status: 503 } }
- { name: api, hostnames: [api.example.com], backend: a }
- { name: tenants, hostnames: ["*.example.com"], backend: b }
- { name: rest, backend: c }
"#,
    );
    let with_host = |host: &str, path: &str| {
        r.select(&req("GET", path, &[("host", host)]))
            .map(|t| t.route.to_string())
    };
    assert_eq!(with_host("api.example.com", "/").as_deref(), Some("api"));
    assert_eq!(
        with_host("x.api.example.com", "/").as_deref(),
        Some("tenants")
    );
    assert_eq!(with_host("example.com", "/").as_deref(), Some("rest"));
    assert_eq!(
        with_host("api.example.com", "/closed"),
        None,
        "answered, not routed"
    );
    assert_eq!(
        r.describe(),
        vec![
            "closed: path prefix /closed -> answer 503".to_owned(),
            "api: host api.example.com and any request -> a".to_owned(),
            "tenants: host *.example.com and any request -> b".to_owned(),
            "rest: any request -> c".to_owned(),
        ]
    );
}

#[test]
fn a_route_sends_or_answers_never_both() {
    let e = build_err("- { name: r, backend: a, respond: { status: 404 } }");
    assert_eq!(e.path, "[0]");
    let e = build_err("- { name: r }");
    assert_eq!(e.path, "[0]");
    let e = build_err("- { name: r, hostnames: ['*.*.x'], backend: a }");
    assert_eq!(e.path, "[0].hostnames[0]");
}

#[test]
fn a_split_shares_traffic_by_weight() {
    let r = router(
        r#"
- name: split
  backends:
    - { backend: a, weight: 3 }
    - { backend: b, weight: 1 }
    - { backend: c, weight: 0 }
    - { respond: { status: 500 }, weight: 1 }
"#,
    );
    let mut counts = std::collections::BTreeMap::new();
    let draws = 10_000;
    for _ in 0..draws {
        let got = r
            .select(&req("GET", "/", &[]))
            .map_or("answered".to_owned(), |t| t.backend.name.to_string());
        *counts.entry(got).or_insert(0u32) += 1;
    }
    // Expected 6000 / 2000 / 2000; six standard deviations is about 300.
    let near = |name: &str, expected: u32| {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(
            got.abs_diff(expected) < 300,
            "{name}: {got} of {draws}, {counts:?}"
        );
    };
    near("a", 6000);
    near("b", 2000);
    near("answered", 2000);
    assert!(
        !counts.contains_key("c"),
        "weight 0 gets nothing: {counts:?}"
    );
    assert_eq!(
        r.describe(),
        vec!["split: any request -> a (3), b (1), answer 500 (1)".to_owned()]
    );
    let e = build_err("- { name: r, backends: [{ backend: a, weight: 0 }] }");
    assert_eq!(e.path, "[0].backends");
    let e = build_err("- { name: r, backends: [{ backend: a, respond: { status: 500 } }] }");
    assert_eq!(e.path, "[0].backends[0]");
}

#[test]
fn redirects_are_built_from_the_request() {
    let r = router(
        r#"
- { name: host, matches: [{ path: { value: /h } }], redirect: { hostname: example.org } }
- { name: scheme, matches: [{ path: { value: /s } }], redirect: { scheme: https, status: 301 } }
- { name: port, matches: [{ path: { value: /p } }], redirect: { port: 8083 } }
- { name: http80, matches: [{ path: { value: /e } }], redirect: { port: 80 } }
- { name: prefix, matches: [{ path: { value: /old } }], redirect: { path: { prefix: { from: /old, to: /new } } } }
- { name: full, matches: [{ path: { value: /f } }], redirect: { path: { full: /elsewhere }, status: 308 } }
"#,
    );
    let answer = |path: &str| {
        let mut request = req("GET", path, &[("host", "gw.example:8080")]);
        let mut state = RequestState::default();
        let mut ctx = RequestContext::new(&mut request, None, &mut state);
        assert!(matches!(block_on(r.on_request(&mut ctx)), Flow::Continue));
        match ctx.take_route_answer() {
            Some(resp) => (
                resp.status().as_u16(),
                resp.headers()
                    .iter()
                    .find(|(n, _)| n == http::header::LOCATION)
                    .map(|(_, v)| v.to_str().expect("ascii").to_owned())
                    .unwrap_or_default(),
            ),
            None => panic!("{path}: proxied, not redirected"),
        }
    };
    assert_eq!(
        answer("/h/x?q=1"),
        (302, "http://example.org:8080/h/x?q=1".into())
    );
    assert_eq!(answer("/s"), (301, "https://gw.example/s".into()));
    assert_eq!(answer("/p"), (302, "http://gw.example:8083/p".into()));
    assert_eq!(answer("/e"), (302, "http://gw.example/e".into()));
    assert_eq!(
        answer("/old/a"),
        (302, "http://gw.example:8080/new/a".into())
    );
    assert_eq!(
        answer("/f/a"),
        (308, "http://gw.example:8080/elsewhere".into())
    );

    let e = build_err("- { name: r, redirect: { status: 200 } }");
    assert_eq!(e.path, "[0].redirect.status");
    let e = build_err("- { name: r, redirect: { scheme: ftp } }");
    assert_eq!(e.path, "[0].redirect.scheme");
}

/// Runs a future that never waits (the router's) to completion, outside any runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}
