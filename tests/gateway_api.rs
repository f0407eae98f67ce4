//! Gateway API manifests served without a cluster, over real sockets: precedence across
//! routes, host names and listener isolation, allowedRoutes and parentRefs, unresolved
//! references, errors that point into the manifest, and a reload when a manifest changes.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;

/// Echo apps on loopback, by name, with the `services` entries that reach them as Services
/// `<namespace>/<name>:80`.
struct Echoes {
    _procs: Vec<Proc>,
    services: String,
    _dir: tempfile::TempDir,
}

fn echoes(namespace: &str, names: &[&str]) -> Echoes {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut procs = Vec::new();
    let mut services = String::new();
    for (i, name) in names.iter().enumerate() {
        let addr = free_addr(&format!("127.0.0.{}", 2 + i % 6));
        procs.push(echo(addr, name, dir.path()));
        services.push_str(&format!("    {namespace}/{name}:80: {addr}\n"));
    }
    Echoes {
        _procs: procs,
        services,
        _dir: dir,
    }
}

/// The config: the manifests in `manifests/`, the `switchyard` class, the Gateway `edge/gw`
/// bound to 127.0.0.1, and `services`.
fn config(services: &str) -> String {
    format!(
        "server: {{ threads: 1 }}\n\
         gateway_api:\n  manifests: [manifests/]\n  gateway_class: switchyard\n  \
         gateway_addresses: {{ edge/gw: 127.0.0.1 }}\n  services:\n{services}"
    )
}

/// A Gateway `edge/gw` of class `switchyard` with `listeners` (YAML list items, indented four).
fn gateway(listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
         metadata: {{ name: gw, namespace: edge }}\n\
         spec:\n  gatewayClassName: switchyard\n  listeners:\n{listeners}"
    )
}

/// An HTTPRoute; `spec` is its spec, indented two.
fn route(namespace: &str, name: &str, created: Option<&str>, spec: &str) -> String {
    let created = created
        .map(|t| format!(", creationTimestamp: '{t}'"))
        .unwrap_or_default();
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{ name: {name}, namespace: {namespace}{created} }}\nspec:\n{spec}"
    )
}

/// Runs the gateway on `manifests` and waits until each of `listen` accepts connections.
fn start(services: &str, manifests: &str, listen: &[SocketAddr]) -> Gateway {
    let mut gw = Gateway::start_with_files(
        &config(services),
        &[("manifests/all.yaml", manifests)],
        listen[0],
        &[],
    );
    for addr in &listen[1..] {
        wait_for_port(*addr, &mut gw.proc.child);
    }
    gw
}

fn served(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let resp = request(addr, method, path, headers);
    match resp.status {
        200 => resp.served_by(),
        status => format!("{status} {}", resp.json()["error"].as_str().unwrap_or("")),
    }
}

#[test]
fn precedence_across_routes_is_the_specs() {
    let e = echoes(
        "edge",
        &[
            "exact", "longer", "method", "headers", "older", "alpha", "prefix",
        ],
    );
    let listen = free_addr("127.0.0.1");
    let port = listen.port();
    let parent = "  parentRefs: [{ name: gw }]\n";
    let manifests = [
        gateway(&format!(
            "    - {{ name: http, protocol: HTTP, port: {port} }}\n"
        )),
        // Declared first, and with every rule, yet each of its matches loses to a more
        // precise one elsewhere.
        route(
            "edge",
            "z-prefix",
            Some("2021-01-01T00:00:00Z"),
            &format!(
                "{parent}  rules:\n    - matches: [{{ path: {{ type: PathPrefix, value: /api }} }}]\n      backendRefs: [{{ name: prefix, port: 80 }}]\n"
            ),
        ),
        route(
            "edge",
            "m-exact",
            None,
            &format!(
                "{parent}  rules:\n    - matches: [{{ path: {{ type: PathPrefix, value: /api/v1 }} }}]\n      backendRefs: [{{ name: longer, port: 80 }}]\n    - matches: [{{ path: {{ type: Exact, value: /api/v1 }} }}]\n      backendRefs: [{{ name: exact, port: 80 }}]\n"
            ),
        ),
        route(
            "edge",
            "m-method",
            None,
            &format!(
                "{parent}  rules:\n    - matches:\n        - {{ path: {{ value: /api }}, headers: [{{ name: x-a, value: '1' }}] }}\n      backendRefs: [{{ name: headers, port: 80 }}]\n    - matches:\n        - {{ path: {{ value: /api }}, method: POST }}\n      backendRefs: [{{ name: method, port: 80 }}]\n"
            ),
        ),
        // The same match as z-prefix: the older route wins...
        route(
            "edge",
            "y-older",
            Some("2020-01-01T00:00:00Z"),
            &format!(
                "{parent}  rules:\n    - matches: [{{ path: {{ value: /api }} }}]\n      backendRefs: [{{ name: older, port: 80 }}]\n"
            ),
        ),
        // ...and between two of the same age, the first by namespace/name.
        route(
            "edge",
            "a-same-age",
            Some("2021-01-01T00:00:00Z"),
            &format!(
                "{parent}  rules:\n    - matches: [{{ path: {{ value: /api/old }} }}]\n      backendRefs: [{{ name: alpha, port: 80 }}]\n"
            ),
        ),
        route(
            "edge",
            "b-same-age",
            Some("2021-01-01T00:00:00Z"),
            &format!(
                "{parent}  rules:\n    - matches: [{{ path: {{ value: /api/old }} }}]\n      backendRefs: [{{ name: prefix, port: 80 }}]\n"
            ),
        ),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[listen]);
    for (method, path, headers, expect, why) in [
        (
            "GET",
            "/api/v1",
            vec![],
            "exact",
            "Exact beats every prefix",
        ),
        ("GET", "/api/v1/x", vec![], "longer", "the longest prefix"),
        (
            "POST",
            "/api/x",
            vec![("x-a", "1")],
            "method",
            "a method beats headers",
        ),
        (
            "GET",
            "/api/x",
            vec![("x-a", "1")],
            "headers",
            "a header beats none",
        ),
        ("GET", "/api/x", vec![], "older", "the oldest route"),
        ("GET", "/api/old/1", vec![], "alpha", "then namespace/name"),
        ("GET", "/other", vec![], "404 no_route", "nothing matches"),
    ] {
        assert_eq!(
            served(gw.addr, method, path, &headers),
            expect,
            "{method} {path}: {why}"
        );
    }
}

#[test]
fn host_names_intersect_and_listeners_are_isolated() {
    let e = echoes("edge", &["wild", "foo", "any", "bar"]);
    let listen = free_addr("127.0.0.1");
    let port = listen.port();
    let all = "allowedRoutes: { namespaces: { from: All } }";
    let section = |s: &str| format!("  parentRefs: [{{ name: gw, sectionName: {s} }}]\n");
    let manifests = [
        gateway(&format!(
            "    - {{ name: wild, protocol: HTTP, port: {port}, hostname: '*.example.com', {all} }}\n\
             \x20   - {{ name: foo, protocol: HTTP, port: {port}, hostname: foo.example.com, {all} }}\n\
             \x20   - {{ name: any, protocol: HTTP, port: {port}, {all} }}\n"
        )),
        route(
            "edge",
            "r-wild",
            None,
            &format!("{}  rules: [{{ backendRefs: [{{ name: wild, port: 80 }}] }}]\n", section("wild")),
        ),
        route(
            "edge",
            "r-foo",
            None,
            &format!(
                "{}  rules:\n    - matches: [{{ path: {{ type: Exact, value: /only }} }}]\n      backendRefs: [{{ name: foo, port: 80 }}]\n",
                section("foo")
            ),
        ),
        route(
            "edge",
            "r-any",
            None,
            &format!("{}  rules: [{{ backendRefs: [{{ name: any, port: 80 }}] }}]\n", section("any")),
        ),
        // No section: it attaches wherever its host names fit, here all three listeners.
        route(
            "edge",
            "r-bar",
            None,
            "  parentRefs: [{ name: gw }]\n  hostnames: [bar.example.com, foo.example.com]\n  rules:\n    - matches: [{ path: { type: Exact, value: /bar } }]\n      backendRefs: [{ name: bar, port: 80 }]\n",
        ),
        // Its host name fits no listener but `any`; with a section of `foo` it fits none.
        route(
            "edge",
            "r-none",
            None,
            &format!("{}  hostnames: [other.test]\n  rules: [{{ backendRefs: [{{ name: bar, port: 80 }}] }}]\n", section("foo")),
        ),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[listen]);
    for (host, path, expect, why) in [
        (
            "foo.example.com",
            "/only",
            "foo",
            "the most specific listener",
        ),
        (
            "foo.example.com",
            "/x",
            "404 no_route",
            "isolation: foo's requests stay with foo",
        ),
        (
            "foo.example.com",
            "/bar",
            "bar",
            "r-bar has no section: it is on foo too",
        ),
        ("x.example.com", "/", "wild", "the wildcard listener"),
        ("a.b.example.com", "/", "wild", "wildcards cover any depth"),
        (
            "bar.example.com",
            "/bar",
            "bar",
            "the route's own host name, within the wildcard",
        ),
        ("bar.example.com", "/x", "wild", "r-bar takes only /bar"),
        (
            "example.com",
            "/",
            "any",
            "a wildcard never covers the apex",
        ),
        ("other.test", "/", "any", "the listener without a host name"),
        ("127.0.0.1", "/", "any", "an address is no host name"),
    ] {
        assert_eq!(
            served(gw.addr, "GET", path, &[("host", host)]),
            expect,
            "{host}{path}: {why}"
        );
    }
    let out = run_cli(&[
        "check",
        "--config",
        gw.dir.path().join("gateway.yaml").to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("HTTPRoute edge/r-none\n    parent Gateway edge/gw/foo\n      Accepted: False (NoMatchingListenerHostname)"),
        "{summary}"
    );
}

#[test]
fn allowed_routes_and_parent_refs_decide_attachment() {
    let e = echoes("edge", &["home"]);
    let blue = echoes("blue", &["teal"]);
    let listen = free_addr("127.0.0.1");
    let other = free_addr("127.0.0.1");
    let manifests = [
        gateway(&format!(
            "    - {{ name: same, protocol: HTTP, port: {} }}\n\
             \x20   - name: sel\n      protocol: HTTP\n      port: {}\n      allowedRoutes:\n        namespaces:\n          from: Selector\n          selector: {{ matchLabels: {{ team: blue }} }}\n",
            listen.port(),
            other.port()
        )),
        "---\napiVersion: v1\nkind: Namespace\nmetadata: { name: blue, labels: { team: blue } }\n".to_owned(),
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: app, namespace: edge }\nspec: { replicas: 2 }\n".to_owned(),
        route("edge", "home", None, "  parentRefs: [{ name: gw }]\n  rules: [{ backendRefs: [{ name: home, port: 80 }] }]\n"),
        route("blue", "teal", None, "  parentRefs: [{ name: gw, namespace: edge }]\n  rules: [{ backendRefs: [{ name: teal, port: 80 }] }]\n"),
        route("red", "red", None, "  parentRefs: [{ name: gw, namespace: edge }]\n  rules: [{ backendRefs: [{ name: home, port: 80 }] }]\n"),
        route("edge", "lost", None, "  parentRefs: [{ name: gw, sectionName: nope }]\n  rules: [{ backendRefs: [{ name: home, port: 80 }] }]\n"),
        route("edge", "wrong-port", None, "  parentRefs: [{ name: gw, sectionName: same, port: 1 }]\n  rules: [{ backendRefs: [{ name: home, port: 80 }] }]\n"),
        route("edge", "elsewhere", None, "  parentRefs: [{ name: not-ours }]\n  rules: [{ backendRefs: [{ name: home, port: 80 }] }]\n"),
    ]
    .concat();
    let services = format!("{}{}", e.services, blue.services);
    let gw = start(&services, &manifests, &[listen, other]);
    assert_eq!(
        served(listen, "GET", "/", &[]),
        "home",
        "Same: the Gateway's namespace only"
    );
    assert_eq!(
        served(other, "GET", "/", &[]),
        "teal",
        "Selector: namespaces labelled team=blue"
    );

    let out = run_cli(&[
        "check",
        "--config",
        gw.dir.path().join("gateway.yaml").to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "listener same port",
        "HTTPRoute red/red\n    parent Gateway edge/gw\n      Accepted: False (NotAllowedByListeners)",
        "HTTPRoute edge/lost\n    parent Gateway edge/gw/nope\n      Accepted: False (NoMatchingParent)",
        "HTTPRoute edge/wrong-port\n    parent Gateway edge/gw/same:1\n      Accepted: False (NoMatchingParent)",
        "HTTPRoute edge/elsewhere\n    no parent served here",
        "ignored: Deployment edge/app",
    ] {
        assert!(summary.contains(expected), "check lacks {expected:?}:\n{summary}");
    }
}

#[test]
fn rules_that_cannot_send_answer_500_and_say_why() {
    let e = echoes("edge", &["ok"]);
    let listen = free_addr("127.0.0.1");
    let rule = |path: &str, rest: &str| {
        format!("    - matches: [{{ path: {{ type: Exact, value: {path} }} }}]\n{rest}")
    };
    let spec = [
        "  parentRefs: [{ name: gw }]\n  rules:\n".to_owned(),
        rule("/ok", "      backendRefs: [{ name: ok, port: 80 }]\n"),
        rule("/empty", ""),
        rule("/missing", "      backendRefs: [{ group: agentgateway.dev, kind: AgentgatewayBackend, name: nope }]\n"),
        rule("/unmapped", "      backendRefs: [{ name: unmapped, port: 80 }]\n"),
        rule("/cross", "      backendRefs: [{ name: ok, namespace: other, port: 80 }]\n"),
        rule("/kind", "      backendRefs: [{ group: example.com, kind: Bucket, name: b }]\n"),
        rule("/weightless", "      backendRefs: [{ name: ok, port: 80, weight: 0 }]\n"),
        rule("/filtered", "      filters: [{ type: RequestMirror, requestMirror: { backendRef: { name: ok, port: 80 } } }]\n      backendRefs: [{ name: ok, port: 80 }]\n"),
    ]
    .concat();
    let manifests = [
        gateway(&format!(
            "    - {{ name: http, protocol: HTTP, port: {} }}\n",
            listen.port()
        )),
        route("edge", "r", None, &spec),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[listen]);
    for (path, expect) in [
        ("/ok", "ok"),
        ("/empty", "500 no_backend"),
        ("/missing", "500 backend_not_found"),
        ("/unmapped", "500 backend_not_found"),
        ("/cross", "500 backend_not_found"),
        ("/kind", "500 backend_not_found"),
        ("/weightless", "500 no_backend"),
        ("/filtered", "500 not_implemented"),
    ] {
        assert_eq!(served(gw.addr, "GET", path, &[]), expect, "{path}");
    }
    let out = run_cli(&[
        "check",
        "--config",
        gw.dir.path().join("gateway.yaml").to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "Accepted: True (Accepted)",
        "PartiallyInvalid: True (UnsupportedValue): rule 7: filter RequestMirror (requestMirror): not implemented yet; the rule answers 500",
        "ResolvedRefs: False (BackendNotFound): rule 2: AgentgatewayBackend edge/nope is not in the manifests",
    ] {
        assert!(summary.contains(expected), "check lacks {expected:?}:\n{summary}");
    }
}

/// Runs `check` on `gateway_api` manifests (files by name) and returns its stderr, with the
/// folder replaced by `DIR`.
fn check_manifests(files: &[(&str, &str)]) -> String {
    check_failure(&config_text(), files)
}

/// Runs `check` on the config `text` with `files` beside it, and returns its error.
fn check_failure(text: &str, files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    let config = dir.path().join("gateway.yaml");
    std::fs::write(&config, text).expect("write config");
    let out = run_cli(&["check", "--config", config.to_str().expect("path")]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr)
        .replace(dir.path().to_str().expect("path"), "DIR")
        .trim()
        .to_owned()
}

fn config_text() -> String {
    config("    edge/a:80: 127.0.0.2:1\n")
}

#[test]
fn manifest_errors_point_into_the_manifest() {
    let gw = gateway("    - { name: http, protocol: HTTP, port: 18081 }\n");
    let typo = format!(
        "{gw}{}",
        route(
            "edge",
            "r",
            None,
            "  parentRefs: [{ name: gw }]\n  rules:\n    - matchs: []\n"
        )
    );
    assert_eq!(
        check_manifests(&[("manifests/all.yaml", &typo)]),
        "error: DIR/manifests/all.yaml:15:7: HTTPRoute edge/r spec.rules[0].matchs: unknown field `matchs`, expected one of `name`, `matches`, `filters`, `backendRefs`, `timeouts`, `retry`, `sessionPersistence`"
    );
    let regex = format!(
        "{gw}{}",
        route(
            "edge",
            "r",
            None,
            "  parentRefs: [{ name: gw }]\n  rules:\n    - matches:\n        - headers: [{ type: RegularExpression, name: x, value: 'a(' }]\n      backendRefs: [{ name: a, port: 80 }]\n"
        )
    );
    let err = check_manifests(&[("manifests/all.yaml", &regex)]);
    assert!(
        err.starts_with("error: DIR/manifests/all.yaml:16:57: HTTPRoute edge/r spec.rules[0].matches[0].headers[0].value: invalid regular expression"),
        "{err}"
    );
    let policy = format!(
        "{gw}---\napiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayPolicy\nmetadata: {{ name: p, namespace: edge }}\nspec:\n  targetRefs: [{{ group: gateway.networking.k8s.io, kind: Gateway, name: gw }}]\n  traffic:\n    rateLimit: {{ local: [] }}\n"
    );
    assert_eq!(
        check_manifests(&[("manifests/all.yaml", &policy)]),
        "error: DIR/manifests/all.yaml:15:5: AgentgatewayPolicy edge/p spec.traffic.rateLimit: `traffic.rateLimit` is not implemented yet, and a policy is applied whole or not at all"
    );
    let mismatched = format!(
        "{gw}{}",
        route(
            "edge",
            "r",
            None,
            "  parentRefs: [{ name: gw }]\n  rules:\n    - filters:\n        - type: RequestHeaderModifier\n          requestRedirect: { hostname: x.example }\n"
        )
    );
    assert_eq!(
        check_manifests(&[("manifests/all.yaml", &mismatched)]),
        "error: DIR/manifests/all.yaml:16:11: HTTPRoute edge/r spec.rules[0].filters[0]: a RequestHeaderModifier filter needs `requestHeaderModifier`"
    );
    let same_name = gateway(
        "    - { name: http, protocol: HTTP, port: 18081 }\n    - { name: http, protocol: HTTP, port: 18082 }\n",
    );
    assert_eq!(
        check_manifests(&[("manifests/all.yaml", &same_name)]),
        "error: DIR/manifests/all.yaml:8:9: Gateway edge/gw spec.listeners[1].name: two listeners are named `http`"
    );
    let on_route = format!(
        "{gw}{}---\napiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayPolicy\nmetadata: {{ name: p, namespace: edge }}\nspec:\n  targetRefs: [{{ group: gateway.networking.k8s.io, kind: HTTPRoute, name: r }}]\n  traffic:\n{}",
        route("edge", "r", None, "  parentRefs: [{ name: gw }]\n"),
        lab_jwt("Strict")
    );
    let err = check_manifests(&[("manifests/all.yaml", &on_route)]);
    assert!(
        err.starts_with("error: DIR/manifests/all.yaml:19:52: AgentgatewayPolicy edge/p spec.targetRefs[0].kind: a policy on kind HTTPRoute is not implemented yet"),
        "{err}"
    );
    let list = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: gateway.networking.k8s.io/v1\n    kind: Gateway\n    metadata: { name: gw, namespace: edge }\n    spec:\n      gatewayClassName: switchyard\n      listeners: [{ name: http, protocol: HTTP, port: 18081, colour: blue }]\n";
    assert_eq!(
        check_manifests(&[("manifests/all.yaml", list)]),
        "error: DIR/manifests/all.yaml:9:62: Gateway edge/gw items[0].spec.listeners[0].colour: unknown field `colour`, expected one of `name`, `hostname`, `port`, `protocol`, `tls`, `allowedRoutes`"
    );
    assert_eq!(
        check_failure(
            &config("    edge/a:80: nowhere\n"),
            &[("manifests/all.yaml", &gw)]
        ),
        "error: DIR/gateway.yaml:7:5: gateway_api.services.edge/a:80: `nowhere` is not host:port"
    );
    let twice = format!("{gw}---\n{gw}");
    assert_eq!(
        check_manifests(&[("manifests/all.yaml", &twice)]),
        "error: DIR/manifests/all.yaml:11:13: Gateway edge/gw metadata.name: Gateway edge/gw is defined twice (first in DIR/manifests/all.yaml)"
    );
}

#[test]
fn a_changed_manifest_reloads_and_a_broken_one_keeps_the_last_good() {
    let e = echoes("edge", &["first", "second"]);
    let listen = free_addr("127.0.0.1");
    let manifests = |backend: &str| {
        [
            gateway(&format!("    - {{ name: http, protocol: HTTP, port: {} }}\n", listen.port())),
            route("edge", "r", None, &format!("  parentRefs: [{{ name: gw }}]\n  rules: [{{ backendRefs: [{{ name: {backend}, port: 80 }}] }}]\n")),
        ]
        .concat()
    };
    let gw = start(&e.services, &manifests("first"), &[listen]);
    assert_eq!(served(gw.addr, "GET", "/", &[]), "first");
    // /config shows the model the manifests became, beside the section that lists them.
    let config = gw.admin_get("/config").json();
    assert_eq!(
        config["config"]["listeners"][0]["name"],
        format!("edge/gw:{}", listen.port())
    );
    assert_eq!(
        config["config"]["gateway_api"]["gateway_class"],
        "switchyard"
    );

    let file = gw.dir.path().join("manifests/all.yaml");
    std::fs::write(&file, manifests("second")).expect("rewrite manifest");
    let deadline = Instant::now() + Duration::from_secs(10);
    while served(gw.addr, "GET", "/", &[]) != "second" {
        assert!(
            Instant::now() < deadline,
            "the manifest change was not picked up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    std::fs::write(&file, "kind: [broken").expect("break manifest");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = String::from_utf8_lossy(&gw.admin_get("/metrics").body).into_owned();
        if sample(
            &metrics,
            r#"switchyard_config_reloads_total{result="failure"}"#,
        ) == Some(1.0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken manifest was not seen:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        served(gw.addr, "GET", "/", &[]),
        "second",
        "the last good config serves"
    );
}

#[test]
fn explain_shows_why_the_seeds_three_rule_route_sends_an_override_to_v2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = repo_root().join("conf");
    std::fs::create_dir(dir.path().join("gateway-api")).expect("mkdir");
    for name in [
        "gateway.yaml",
        "backends.yaml",
        "jwt-policy.yaml",
        "httproute.yaml",
    ] {
        let mut text =
            std::fs::read_to_string(shipped.join("gateway-api").join(name)).expect("read");
        if name == "httproute.yaml" {
            // The seed's route: without the explicit `latest` override rule.
            let start = text.find("    - matches:            # 2.").expect("rule 2");
            let end = text.find("    - matches:            # 3.").expect("rule 3");
            text.replace_range(start..end, "");
        }
        std::fs::write(dir.path().join("gateway-api").join(name), text).expect("write");
    }
    let config = dir.path().join("gateway-api.yaml");
    std::fs::copy(shipped.join("gateway-api.yaml"), &config).expect("copy config");
    let token = lab_token_cli("v2");
    let explain = |extra: &[&str]| {
        let mut args = vec![
            "explain",
            "--config",
            config.to_str().expect("path"),
            "--token",
            &token,
        ];
        args.extend_from_slice(extra);
        args.push("/");
        let out = run_cli(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = explain(&["-H", "x-version-override: latest"]);
    assert!(
        report.contains("first match is route 2 of 3: agentgateway-system/versioned-routing/rules[1]/match0/http: path prefix / and header x-tenant-version = \"v2\""),
        "{report}"
    );
    assert!(
        report.contains("-> backend agentgateway-system/app-v2"),
        "{report}"
    );
}

#[test]
fn backend_refs_share_traffic_by_weight() {
    let e = echoes("edge", &["heavy", "light", "idle"]);
    let listen = free_addr("127.0.0.1");
    let manifests = [
        gateway(&format!("    - {{ name: http, protocol: HTTP, port: {} }}\n", listen.port())),
        route(
            "edge",
            "split",
            None,
            "  parentRefs: [{ name: gw }]\n  rules:\n    - backendRefs:\n        - { name: heavy, port: 80, weight: 3 }\n        - { name: light, port: 80 }\n        - { name: idle, port: 80, weight: 0 }\n        - { name: gone, port: 80, weight: 1 }\n",
        ),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[listen]);
    let mut counts = std::collections::BTreeMap::new();
    let mut client = Client::connect(gw.addr);
    let total = 400;
    for _ in 0..total {
        let resp = client.send("GET", "/", &[]);
        let got = match resp.status {
            200 => resp.served_by(),
            status => format!("{status} {}", resp.json()["error"].as_str().unwrap_or("")),
        };
        *counts.entry(got).or_insert(0u32) += 1;
    }
    // Expected 240 / 80 / 80 of 400; about five standard deviations of slack.
    let near = |name: &str, expected: u32, slack: u32| {
        let got = counts.get(name).copied().unwrap_or(0);
        assert!(
            got.abs_diff(expected) <= slack,
            "{name}: {got} of {total}, {counts:?}"
        );
    };
    near("heavy", 240, 50);
    near("light", 80, 40);
    near("500 backend_not_found", 80, 40);
    assert!(
        !counts.contains_key("idle"),
        "weight 0 gets nothing: {counts:?}"
    );
}

#[test]
fn the_frontegg_variant_fetches_its_keys_through_an_agentgateway_backend() {
    // The shipped variant, with the identity provider's host given as an address: this
    // machine may have no DNS, and the host is resolved when the config loads.
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = repo_root().join("conf/examples");
    std::fs::create_dir(dir.path().join("frontegg-gateway-api")).expect("mkdir");
    for entry in std::fs::read_dir(shipped.join("frontegg-gateway-api")).expect("list") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("host: acme.frontegg.com", "host: 127.0.0.9");
        let name = path.file_name().expect("name");
        std::fs::write(dir.path().join("frontegg-gateway-api").join(name), text).expect("write");
    }
    let config = dir.path().join("frontegg-gateway-api.yaml");
    std::fs::copy(shipped.join("frontegg-gateway-api.yaml"), &config).expect("copy");
    let out = run_cli(&["check", "--config", config.to_str().expect("path")]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "agentgateway-system/frontegg-idp = 127.0.0.9:443",
        "provider https://acme.frontegg.com: issuer https://acme.frontegg.com, audiences [environment-id], keys fetched at run time from backend agentgateway-system/frontegg-idp, path /.well-known/jwks.json",
        "transformation: set x-tenant-version = jwt.userMetadata.version",
        "EnterpriseAgentgatewayPolicy agentgateway-system/jwt-version: traffic.jwtAuthentication applies to Gateway agentgateway-system/agentgateway-proxy port 8080 (PreRouting)",
    ] {
        assert!(summary.contains(expected), "check lacks {expected:?}:\n{summary}");
    }
}

#[test]
fn a_value_outside_the_specs_enums_leaves_the_route_unaccepted() {
    let e = echoes("edge", &["ok"]);
    let listen = free_addr("127.0.0.1");
    let manifests = [
        gateway(&format!("    - {{ name: http, protocol: HTTP, port: {} }}\n", listen.port())),
        route("edge", "good", None, "  parentRefs: [{ name: gw }]\n  rules:\n    - matches: [{ path: { type: Exact, value: /good } }]\n      backendRefs: [{ name: ok, port: 80 }]\n"),
        route("edge", "odd", None, "  parentRefs: [{ name: gw }]\n  rules:\n    - matches: [{ path: { type: Glob, value: /odd } }, { method: BREW }]\n      backendRefs: [{ name: ok, port: 80 }]\n"),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[listen]);
    assert_eq!(served(gw.addr, "GET", "/good", &[]), "ok");
    assert_eq!(
        served(gw.addr, "GET", "/odd", &[]),
        "404 no_route",
        "the route is not served"
    );
    let out = run_cli(&[
        "check",
        "--config",
        gw.dir.path().join("gateway.yaml").to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("HTTPRoute edge/odd\n    parent Gateway edge/gw\n      Accepted: False (UnsupportedValue): rules[0].matches[0].path.type `Glob`, rules[0].matches[1].method `BREW` not implemented yet; the route is not served"),
        "{summary}"
    );
}

/// The response header `name` of `resp`.
fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.header(name)
}

/// The header `name` as the echo app saw it (repeated values joined with ", ").
fn seen(resp: &Response, name: &str) -> Option<String> {
    resp.json()["headers"][name].as_str().map(str::to_owned)
}

#[test]
fn header_modifiers_rewrites_and_redirects() {
    let e = echoes("edge", &["v1", "v2"]);
    let listen = free_addr("127.0.0.1");
    let port = listen.port();
    let rule = |path: &str, body: &str| {
        format!("    - matches: [{{ path: {{ type: PathPrefix, value: {path} }} }}]\n{body}")
    };
    let v1 = "      backendRefs: [{ name: v1, port: 80 }]\n";
    let spec = [
        "  parentRefs: [{ name: gw }]\n  rules:\n".to_owned(),
        rule("/set", &format!("      filters: [{{ type: RequestHeaderModifier, requestHeaderModifier: {{ set: [{{ name: X-Header-Set, value: set-overwrites-values }}] }} }}]\n{v1}")),
        rule("/add", &format!("      filters: [{{ type: RequestHeaderModifier, requestHeaderModifier: {{ add: [{{ name: X-Header-Add, value: add-appends-values }}] }} }}]\n{v1}")),
        rule("/remove", &format!("      filters: [{{ type: RequestHeaderModifier, requestHeaderModifier: {{ remove: [X-Header-Remove] }} }}]\n{v1}")),
        rule("/response", &format!("      filters: [{{ type: ResponseHeaderModifier, responseHeaderModifier: {{ set: [{{ name: X-Header-Set, value: set-overwrites-values }}], add: [{{ name: X-Header-Add, value: add-appends-values }}], remove: [X-Header-Remove] }} }}]\n{v1}")),
        rule("/backend-filter", "      backendRefs:\n        - { name: v1, port: 80, filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: Backend, value: v1 }] } }] }\n        - { name: v2, port: 80, filters: [{ type: RequestHeaderModifier, requestHeaderModifier: { set: [{ name: Backend, value: v2 }] } }] }\n"),
        rule("/rewrite-prefix", &format!("      filters: [{{ type: URLRewrite, urlRewrite: {{ hostname: one.example.org, path: {{ type: ReplacePrefixMatch, replacePrefixMatch: /one }} }} }}]\n{v1}")),
        rule("/strip-prefix", &format!("      filters: [{{ type: URLRewrite, urlRewrite: {{ path: {{ type: ReplacePrefixMatch, replacePrefixMatch: / }} }} }}]\n{v1}")),
        rule("/rewrite-full", &format!("      filters: [{{ type: URLRewrite, urlRewrite: {{ path: {{ type: ReplaceFullPath, replaceFullPath: /one }} }} }}]\n{v1}")),
        rule("/hostname-redirect", "      filters: [{ type: RequestRedirect, requestRedirect: { hostname: example.org } }]\n"),
        rule("/host-and-status", "      filters: [{ type: RequestRedirect, requestRedirect: { hostname: example.org, statusCode: 301 } }]\n"),
        rule("/original-prefix", "      filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix } } }]\n"),
        rule("/scheme", "      filters: [{ type: RequestRedirect, requestRedirect: { scheme: https } }]\n"),
        rule("/port", "      filters: [{ type: RequestRedirect, requestRedirect: { port: 8083, statusCode: 308 } }]\n"),
        rule("/see-other", "      filters: [{ type: RequestRedirect, requestRedirect: { statusCode: 303 } }]\n"),
        rule("/temporary", "      filters: [{ type: RequestRedirect, requestRedirect: { statusCode: 307 } }]\n"),
        rule("/https-443", "      filters: [{ type: RequestRedirect, requestRedirect: { scheme: https, port: 443, hostname: example.org } }]\n"),
        rule("/http-80", "      filters: [{ type: RequestRedirect, requestRedirect: { port: 80, hostname: example.org } }]\n"),
        rule("/https-8443", "      filters: [{ type: RequestRedirect, requestRedirect: { scheme: https, port: 8443, hostname: example.org } }]\n"),
        rule("/backend-redirect", "      backendRefs:\n        - { name: v1, port: 80, filters: [{ type: RequestRedirect, requestRedirect: { path: { type: ReplaceFullPath, replaceFullPath: /redirected-full } } }] }\n"),
    ]
    .concat();
    let manifests = [
        gateway(&format!(
            "    - {{ name: http, protocol: HTTP, port: {port} }}\n"
        )),
        route("edge", "filters", None, &spec),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[listen]);
    let get = |path: &str, headers: &[(&str, &str)]| request(gw.addr, "GET", path, headers);

    let r = get(
        "/set",
        &[
            ("X-Header-Set", "some-other-value"),
            ("Some-Other-Header", "val"),
        ],
    );
    assert_eq!(
        seen(&r, "x-header-set").as_deref(),
        Some("set-overwrites-values")
    );
    assert_eq!(seen(&r, "some-other-header").as_deref(), Some("val"));
    let r = get("/add", &[("x-header-add", "some-other-value")]);
    assert_eq!(
        seen(&r, "x-header-add").as_deref(),
        Some("some-other-value, add-appends-values")
    );
    let r = get("/remove", &[("X-Header-Remove", "val")]);
    assert_eq!(seen(&r, "x-header-remove"), None);

    let echo =
        "X-Header-Set:some-other-value,X-Header-Add:original,X-Header-Remove:val,Another:kept";
    let r = get("/response", &[("x-echo-set-header", echo)]);
    assert_eq!(header(&r, "x-header-set"), Some("set-overwrites-values"));
    let added: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-header-add"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(added, ["original", "add-appends-values"]);
    assert_eq!(header(&r, "x-header-remove"), None);
    assert_eq!(header(&r, "another"), Some("kept"));

    // Each share's own filter applies only when that share is drawn.
    for _ in 0..40 {
        let r = get("/backend-filter", &[]);
        assert_eq!(
            seen(&r, "backend"),
            Some(r.served_by()),
            "the filter of the backend chosen"
        );
    }

    let r = get("/rewrite-prefix/two?x=1", &[("host", "rewrite.example")]);
    assert_eq!(r.json()["path"], "/one/two?x=1");
    assert_eq!(seen(&r, "host").as_deref(), Some("one.example.org"));
    assert_eq!(get("/strip-prefix/three", &[]).json()["path"], "/three");
    assert_eq!(get("/strip-prefix", &[]).json()["path"], "/");
    assert_eq!(get("/rewrite-full/a/b", &[]).json()["path"], "/one");

    let host = format!("gw.example:{port}");
    let redirect = |path: &str| {
        let r = get(path, &[("host", &host)]);
        (r.status, header(&r, "location").unwrap_or("").to_owned())
    };
    assert_eq!(
        redirect("/hostname-redirect"),
        (302, format!("http://example.org:{port}/hostname-redirect"))
    );
    assert_eq!(
        redirect("/host-and-status"),
        (301, format!("http://example.org:{port}/host-and-status"))
    );
    assert_eq!(
        redirect("/original-prefix/lemon"),
        (
            302,
            format!("http://gw.example:{port}/replacement-prefix/lemon")
        )
    );
    assert_eq!(
        redirect("/scheme"),
        (302, "https://gw.example/scheme".to_owned()),
        "https goes to 443, left out"
    );
    assert_eq!(
        redirect("/port"),
        (308, "http://gw.example:8083/port".to_owned())
    );
    assert_eq!(
        redirect("/see-other"),
        (303, format!("http://gw.example:{port}/see-other"))
    );
    assert_eq!(
        redirect("/backend-redirect/x"),
        (302, format!("http://gw.example:{port}/redirected-full"))
    );
}

#[test]
fn a_reference_grant_lets_a_route_reach_into_another_namespace() {
    let e = echoes("web", &["web-backend", "other"]);
    let listen = free_addr("127.0.0.1");
    let rule = |path: &str, backend: &str| {
        format!(
            "    - matches: [{{ path: {{ type: Exact, value: {path} }} }}]\n      backendRefs: [{{ name: {backend}, namespace: web, port: 80 }}]\n"
        )
    };
    let manifests = [
        gateway(&format!(
            "    - {{ name: http, protocol: HTTP, port: {}, allowedRoutes: {{ namespaces: {{ from: All }} }} }}\n",
            listen.port()
        )),
        "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: { name: grant, namespace: web }\nspec:\n  from: [{ group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: edge }]\n  to: [{ group: '', kind: Service, name: web-backend }]\n".to_owned(),
        route(
            "edge",
            "cross",
            None,
            &format!("  parentRefs: [{{ name: gw }}]\n  rules:\n{}{}", rule("/granted", "web-backend"), rule("/not-granted", "other")),
        ),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[listen]);
    assert_eq!(served(gw.addr, "GET", "/granted", &[]), "web-backend");
    assert_eq!(
        served(gw.addr, "GET", "/not-granted", &[]),
        "500 backend_not_found",
        "the grant names one Service"
    );
    let out = run_cli(&[
        "check",
        "--config",
        gw.dir.path().join("gateway.yaml").to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("ResolvedRefs: False (RefNotPermitted): rule 1: Service web/other is in another namespace, and no ReferenceGrant there lets HTTPRoute edge/cross refer to it"),
        "{summary}"
    );
}

/// An AgentgatewayPolicy `edge/<name>` on Gateway `edge/gw` (or its listener `section`) with
/// `traffic` (YAML, indented four).
fn policy(name: &str, section: Option<&str>, traffic: &str) -> String {
    let section = section
        .map(|s| format!(", sectionName: {s}"))
        .unwrap_or_default();
    format!(
        "---\napiVersion: agentgateway.dev/v1alpha1\nkind: AgentgatewayPolicy\n\
         metadata: {{ name: {name}, namespace: edge }}\nspec:\n  \
         targetRefs: [{{ group: gateway.networking.k8s.io, kind: Gateway, name: gw{section} }}]\n  \
         traffic:\n{traffic}"
    )
}

/// `jwtAuthentication` for the lab's tokens, in `mode`, inline keys.
fn lab_jwt(mode: &str) -> String {
    let jwks: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("conf/demo/jwks.json")).expect("jwks"),
    )
    .expect("jwks json");
    format!(
        "    jwtAuthentication:\n      mode: {mode}\n      providers:\n        - issuer: versioned-routing-lab\n          audiences: [public-api]\n          jwks: {{ inline: '{jwks}' }}\n"
    )
}

#[test]
fn policies_merge_and_run_as_agentgateway_runs_them() {
    let e = echoes("edge", &["v2", "latest"]);
    let open = free_addr("127.0.0.1");
    let secure = free_addr("127.0.0.1");
    let manifests = [
        gateway(&format!(
            "    - {{ name: open, protocol: HTTP, port: {} }}\n    - {{ name: secure, protocol: HTTP, port: {} }}\n",
            open.port(),
            secure.port()
        )),
        route(
            "edge",
            "r",
            None,
            "  parentRefs: [{ name: gw }]\n  rules:\n    - matches: [{ headers: [{ name: x-tenant-version, value: v2-listener }] }]\n      backendRefs: [{ name: v2, port: 80 }]\n    - matches: [{ path: { value: /moved } }]\n      filters: [{ type: RequestRedirect, requestRedirect: { hostname: example.org } }]\n    - backendRefs: [{ name: latest, port: 80 }]\n",
        ),
        // First in the file, yet it runs after the authentication, which it reads; and the
        // listener's own transformation overrides it there.
        policy(
            "a-transform",
            None,
            "    phase: PreRouting\n    transformation: { request: { set: [{ name: x-tenant-version, value: jwt.version }] } }\n",
        ),
        policy(
            "b-jwt",
            None,
            &format!("    phase: PreRouting\n{}", lab_jwt("Optional")),
        ),
        policy(
            "c-transform-open",
            Some("open"),
            "    phase: PreRouting\n    transformation: { request: { set: [{ name: x-tenant-version, value: 'jwt.version + \"-listener\"' }] } }\n",
        ),
        // On the secure listener, a strict check after routing overrides the optional one.
        policy(
            "d-jwt-secure",
            Some("secure"),
            &format!("    phase: PostRouting\n{}", lab_jwt("Strict")),
        ),
    ]
    .concat();
    let gw = start(&e.services, &manifests, &[open, secure]);
    let token = format!("Bearer {}", lab_token_cli("v2"));
    let with_token = [("authorization", token.as_str())];
    assert_eq!(served(open, "GET", "/", &with_token), "v2");
    assert_eq!(served(open, "GET", "/", &[]), "latest");
    assert_eq!(
        served(open, "GET", "/", &[("x-tenant-version", "v2-listener")]),
        "latest",
        "a client cannot choose its version"
    );
    assert_eq!(
        served(open, "GET", "/", &[("authorization", "Bearer not.a.token")]),
        "401 invalid_token"
    );
    // After routing, the strict check still comes before the route's own redirect.
    assert_eq!(request(secure, "GET", "/moved", &[]).status, 401);
    assert_eq!(request(secure, "GET", "/moved", &with_token).status, 302);
    assert_eq!(request(open, "GET", "/moved", &[]).status, 302);

    let out = run_cli(&[
        "check",
        "--config",
        gw.dir.path().join("gateway.yaml").to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    for expected in [
        format!("AgentgatewayPolicy edge/a-transform: traffic.transformation is overridden on Gateway edge/gw port {} by AgentgatewayPolicy edge/c-transform-open", open.port()),
        format!("AgentgatewayPolicy edge/b-jwt: traffic.jwtAuthentication is overridden on Gateway edge/gw port {} by AgentgatewayPolicy edge/d-jwt-secure", secure.port()),
        format!("AgentgatewayPolicy edge/d-jwt-secure: traffic.jwtAuthentication applies to Gateway edge/gw port {} (PostRouting)", secure.port()),
    ] {
        assert!(summary.contains(&expected), "check lacks {expected:?}:\n{summary}");
    }
}

/// Runs `check` on manifests that load, and returns what it prints.
fn check_ok(services: &str, manifests: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("manifests")).expect("mkdir");
    std::fs::write(dir.path().join("manifests/all.yaml"), manifests).expect("write");
    let file = dir.path().join("gateway.yaml");
    std::fs::write(&file, config(services)).expect("write config");
    let out = run_cli(&["check", "--config", file.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_reports_conflicts_route_kinds_and_namespace_selectors() {
    // As `kubectl get -o yaml` exports them: one List.
    let manifests = r#"apiVersion: v1
kind: List
items:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: { name: gw, namespace: edge }
    spec:
      gatewayClassName: switchyard
      listeners:
        - { name: a, protocol: HTTP, port: 18091, hostname: x.example }
        - { name: b, protocol: HTTP, port: 18091, hostname: x.example }
        - name: c
          protocol: HTTP
          port: 18092
          allowedRoutes:
            kinds: [{ kind: HTTPRoute }, { kind: TCPRoute }]
            namespaces:
              from: Selector
              selector: { matchLabels: { kubernetes.io/metadata.name: team } }
        - { name: d, protocol: HTTP, port: 18093, allowedRoutes: { namespaces: { from: Selector } } }
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: r, namespace: team }
    spec:
      parentRefs:
        - { name: gw, namespace: edge, sectionName: c }
        - { name: gw, namespace: edge, sectionName: d }
      rules:
        - filters:
            - { type: RequestHeaderModifier, requestHeaderModifier: {} }
            - { type: URLRewrite, urlRewrite: {} }
          backendRefs: [{ name: ok, port: 80 }, { name: gone, port: 80, weight: 0 }]
  - apiVersion: agentgateway.dev/v1alpha1
    kind: AgentgatewayPolicy
    metadata: { name: theirs, namespace: edge }
    spec:
      targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: elsewhere }]
      traffic: { rateLimit: {} }
"#;
    let summary = check_ok("    team/ok:80: 127.0.0.2:1\n", manifests);
    for expected in [
        "Accepted: True (ListenersNotValid): 2 of 4 listeners are not valid",
        "listener a port 18091 hostname x.example (0 routes)\n      Conflicted: True (HostnameConflict): listener b has the same port and hostname\n      Programmed: False (Invalid)",
        "Conflicted: True (HostnameConflict): listener a has the same port and hostname",
        "listener c port 18092 hostname * (1 routes)",
        "ResolvedRefs: False (InvalidRouteKinds): gateway.networking.k8s.io/TCPRoute not served here (HTTPRoute is)",
        "parent Gateway edge/gw/d\n      Accepted: False (NotAllowedByListeners): the listeners' allowedRoutes do not admit this route (listener d: allowedRoutes.namespaces.from is Selector, without a selector)",
        "ResolvedRefs: False (BackendNotFound): rule 0: Service team/gone:80 has no entry in gateway_api.services",
        "ignored: AgentgatewayPolicy edge/theirs",
    ] {
        assert!(summary.contains(expected), "check lacks {expected:?}:\n{summary}");
    }
    assert!(
        !summary.contains("team/gone:80 ="),
        "a ref without traffic adds no backend:\n{summary}"
    );
}

/// A `kubernetes.io/tls` Secret `edge/<name>` holding `dir`'s `<name>.pem` and
/// `<name>-key.pem`, as base64 `data` the way the API server stores it.
fn tls_secret(dir: &std::path::Path, name: &str) -> String {
    use base64::Engine;
    let read = |f: String| std::fs::read(dir.join(f)).expect("read PEM");
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{ name: {name}, namespace: edge }}\n\
         type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(read(format!("{name}.pem"))),
        b64(read(format!("{name}-key.pem"))),
    )
}

#[test]
fn https_listeners_serve_their_secrets_and_http_redirects_to_them() {
    use common::curl::{ca_args, fetch, served_certificate};
    let e = echoes("edge", &["app"]);
    let pki = tempfile::tempdir().expect("temp dir");
    let d = pki.path();
    common::pki::make_pki(d, "api", "api.example.test");
    common::pki::make_pki(d, "files", "files.example.test");
    let (http, https) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let manifests = format!(
        "{}{}{}{}",
        gateway(&format!(
            "    - {{ name: web, port: {http}, protocol: HTTP }}
    - name: api
      port: {https}
      protocol: HTTPS
      hostname: api.example.test
      tls: {{ certificateRefs: [{{ name: api }}] }}
    - name: files
      port: {https}
      protocol: HTTPS
      hostname: files.example.test
      tls: {{ certificateRefs: [{{ name: from-files }}] }}
    - name: missing
      port: {https}
      protocol: HTTPS
      hostname: missing.example.test
      tls: {{ certificateRefs: [{{ name: nowhere }}] }}
",
            http = http.port(),
            https = https.port()
        )),
        tls_secret(d, "api"),
        route(
            "edge",
            "to-https",
            None,
            &format!(
                "  parentRefs: [{{ name: gw, sectionName: web }}]
  rules:
    - filters:
        - type: RequestRedirect
          requestRedirect: {{ scheme: https, port: {} }}
",
                https.port()
            ),
        ),
        route(
            "edge",
            "secure",
            None,
            "  parentRefs: [{ name: gw, sectionName: api }, { name: gw, sectionName: files }]
  rules:
    - backendRefs: [{ name: app, port: 80 }]
",
        ),
    );
    let services = format!(
        "{}  secrets:\n    edge/from-files: {{ cert: {}, key: {} }}\n",
        e.services,
        d.join("files.pem").display(),
        d.join("files-key.pem").display()
    );
    let gw = start(&services, &manifests, &[http, https]);

    // Each host name gets its own certificate, from a Secret or from files.
    let subject = |sni| served_certificate(https, Some(sni)).unwrap_or_default();
    assert!(subject("api.example.test").contains("api.example.test"));
    assert!(subject("files.example.test").contains("files.example.test"));
    // The listener whose Secret does not exist is not served: no certificate for its name.
    assert_eq!(
        served_certificate(https, Some("missing.example.test")),
        None
    );

    let ca = ca_args(d, "api");
    let secure = fetch(
        "https://api.example.test/x",
        https,
        &["--http2", ca[0].as_str(), &ca[1]],
    );
    assert_eq!(
        (secure.served_by().as_str(), secure.version.as_str()),
        ("app", "2")
    );

    // HTTP redirects to HTTPS, and following it (curl keeps --resolve's address) lands there.
    let redirected = request(http, "GET", "/x?q=1", &[("host", "api.example.test")]);
    assert_eq!(redirected.status, 302);
    assert_eq!(
        redirected.header("location"),
        Some(format!("https://api.example.test:{}/x?q=1", https.port()).as_str())
    );
    let followed = fetch(
        "http://api.example.test/x",
        http,
        &[
            "-L",
            "--resolve",
            &format!("api.example.test:{}:127.0.0.1", https.port()),
            ca[0].as_str(),
            &ca[1],
        ],
    );
    assert_eq!(followed.served_by(), "app", "{followed:?}");

    let out = run_cli(&[
        "check",
        "--config",
        gw.dir.path().join("gateway.yaml").to_str().expect("utf-8"),
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("ResolvedRefs: False (InvalidCertificateRef): Secret edge/nowhere is neither in the manifests nor in gateway_api.secrets"),
        "{report}"
    );
    assert!(
        report.contains(&format!("listener edge/gw:{} on https://", https.port())),
        "{report}"
    );
}

#[test]
fn rule_timeouts_bound_each_request_to_a_backend() {
    let e = echoes("edge", &["app"]);
    // A Service that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.6:0").expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let listen = free_addr("127.0.0.1");
    let manifests = format!(
        "{}{}",
        gateway(&format!(
            "    - {{ name: web, port: {}, protocol: HTTP }}\n",
            listen.port()
        )),
        route(
            "edge",
            "timed",
            None,
            "  parentRefs: [{ name: gw }]
  rules:
    - matches: [{ path: { value: /slow } }]
      timeouts: { request: 2s, backendRequest: 500ms }
      backendRefs: [{ name: silent, port: 80 }]
    - backendRefs: [{ name: app, port: 80 }]
",
        ),
    );
    let services = format!("{}    edge/silent:80: {silent_addr}\n", e.services);
    let gw = start(&services, &manifests, &[listen]);
    let started = Instant::now();
    let resp = request(listen, "GET", "/slow", &[]);
    let took = started.elapsed();
    assert_eq!(resp.status, 504, "{}", resp.text());
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "answered after {took:?}"
    );
    assert_eq!(served(listen, "GET", "/", &[]), "app");
    drop(gw);

    // The CRD's own rules: a malformed duration, an attempt longer than the whole.
    for (timeouts, expected) in [
        ("{ request: 1d }", "`1d` is not a Gateway API duration"),
        (
            "{ request: 1s, backendRequest: 2s }",
            "backendRequest cannot be longer than request",
        ),
    ] {
        let manifests = format!(
            "{}{}",
            gateway("    - { name: web, port: 18095, protocol: HTTP }\n"),
            route(
                "edge",
                "timed",
                None,
                &format!(
                    "  parentRefs: [{{ name: gw }}]\n  rules:\n    - timeouts: {timeouts}\n      backendRefs: [{{ name: app, port: 80 }}]\n"
                ),
            ),
        );
        let error = check_failure(&config(&e.services), &[("manifests/all.yaml", &manifests)]);
        assert!(error.contains(expected), "{error}");
    }
}

/// A backend that answers 503 to every other request (the first, the third, ...) and 200
/// `ok` to the rest, closing each connection.
fn every_other_fails() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.6:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().take(100).enumerate() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut conn, &mut buf);
            let answer: &[u8] = if n % 2 == 0 {
                b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            };
            let _ = std::io::Write::write_all(&mut conn, answer);
        }
    });
    addr
}

#[test]
fn a_rules_retry_sends_a_listed_status_again() {
    let flaky = every_other_fails();
    let listen = free_addr("127.0.0.1");
    let manifests = format!(
        "{}{}",
        gateway(&format!(
            "    - {{ name: web, port: {}, protocol: HTTP }}\n",
            listen.port()
        )),
        route(
            "edge",
            "retried",
            None,
            "  parentRefs: [{ name: gw }]
  rules:
    - retry: { codes: [503], attempts: 1, backoff: 10ms }
      backendRefs: [{ name: flaky, port: 80 }]
",
        ),
    );
    let _gw = start(
        &format!("    edge/flaky:80: {flaky}\n"),
        &manifests,
        &[listen],
    );
    for _ in 0..4 {
        let resp = request(listen, "GET", "/", &[]);
        assert_eq!((resp.status, resp.body.as_slice()), (200, b"ok".as_slice()));
    }
}
