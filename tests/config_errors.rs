//! `switchyard check` on broken configs: each is rejected with a non-zero exit and a message
//! naming file, line, column and field. And the shipped config passes with a full summary.

mod common;

use common::*;

const VALID: &str = r#"server:
  threads: 2
backends:
  - name: a
    static: { host: 127.0.0.2, port: 30080 }
  - name: b
    static: { host: 127.0.0.3, port: 30080 }
listeners:
  - name: public
    address: 127.0.0.1:18080
    routes:
      - name: r1
        matches:
          - headers:
              - { name: x-version-override, value: v2 }
        backend: b
      - name: r2
        backend: a
"#;

/// Writes `yaml` as `gateway.yaml` in a new temporary folder and runs `check` on it; returns
/// the folder (kept while the caller reads the output), the file's path and the output.
fn run_check(yaml: &str) -> (tempfile::TempDir, String, std::process::Output) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let path = path.to_str().expect("utf-8 path").to_owned();
    let out = run_cli(&["check", "--config", &path]);
    (dir, path, out)
}

/// Runs `check` on `yaml` and returns (exit code, stderr), with the file path replaced by
/// `FILE` so expectations read plainly.
fn check(yaml: &str) -> (Option<i32>, String) {
    let (dir, path, out) = run_check(yaml);
    let dir = dir.path().to_str().expect("utf-8 path");
    let stderr = String::from_utf8_lossy(&out.stderr)
        .replace(&path, "FILE")
        .replace(dir, "FILEDIR");
    (out.status.code(), stderr.trim().to_owned())
}

/// The summary `check` prints for a config that passes, which must hold each of `expected`.
fn assert_summary(out: &std::process::Output, expected: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in expected {
        assert!(
            stdout.contains(expected),
            "summary lacks {expected:?}:\n{stdout}"
        );
    }
}

fn assert_rejected(yaml: &str, expected: &str) {
    let (code, stderr) = check(yaml);
    assert_eq!(
        code,
        Some(2),
        "expected exit 2 for {expected:?}; stderr: {stderr}"
    );
    assert_eq!(stderr, format!("error: {expected}"));
}

#[test]
fn valid_config_passes() {
    let (code, stderr) = check(VALID);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn route_to_missing_backend() {
    assert_rejected(
        &VALID.replace("backend: b\n", "backend: nope\n"),
        "FILE:16:9: listeners[0].routes[0].backend: unknown backend `nope` (backends: a, b)",
    );
}

#[test]
fn duplicate_names() {
    assert_rejected(
        &VALID.replace("name: b\n", "name: a\n"),
        "FILE:6:5: backends[1].name: duplicate backend name `a`",
    );
    assert_rejected(
        &VALID.replace("name: r2", "name: r1"),
        "FILE:17:9: listeners[0].routes[1].name: duplicate route name `r1`",
    );
}

#[test]
fn bad_regex() {
    assert_rejected(
        &VALID.replace(
            "{ name: x-version-override, value: v2 }",
            "{ name: x-version-override, type: RegularExpression, value: 'v(2' }",
        ),
        "FILE:15:70: listeners[0].routes[0].matches[0].headers[0].value: invalid regular expression: regex parse error:\n    ^(?:v(2)$\n     ^\nerror: unclosed group",
    );
}

#[test]
fn unknown_filter() {
    assert_rejected(
        &VALID.replace(
            "    routes:\n",
            "    filters:\n      pre_routing:\n        - name: jwt_auth\n    routes:\n",
        ),
        &format!(
            "FILE:13:11: listeners[0].filters.pre_routing[0].name: unknown filter `jwt_auth` (filters: {})",
            known_filters()
        ),
    );
}

/// The filters the registry offers for phases, as the error lists them.
fn known_filters() -> String {
    let (_, stderr) = check(&VALID.replace(
        "    routes:\n",
        "    filters: { response: [{ name: zzz }] }\n    routes:\n",
    ));
    stderr
        .split("(filters: ")
        .nth(1)
        .and_then(|s| s.strip_suffix(')'))
        .expect("error lists the known filters")
        .to_owned()
}

#[test]
fn router_is_not_placed_in_a_phase() {
    assert_rejected(
        &VALID.replace(
            "    routes:\n",
            "    filters:\n      post_routing: [{ name: router }]\n    routes:\n",
        ),
        "FILE:12:24: listeners[0].filters.post_routing[0].name: `router` is not placed in a phase: it is built from the listener's `routes`",
    );
}

#[test]
fn unknown_fields_are_errors() {
    assert_rejected(
        &format!("{VALID}extra: 1\n"),
        "FILE:19:1: extra: unknown field `extra`, expected one of `server`, `admin`, `access_log`, `backends`, `listeners`, `gateway_api`",
    );
    assert_rejected(
        &VALID.replace("address: 127.0.0.1:18080", "adress: 127.0.0.1:18080"),
        "FILE:10:5: listeners[0].adress: unknown field `adress`, expected one of `name`, `address`, `filters`, `limits`, `routes`, `tls`, `h2c`",
    );
    assert_rejected(
        &VALID.replace("        backend: a\n", "        backend: a\n        timeout: 1s\n"),
        "FILE:19:9: listeners[0].routes[1].timeout: unknown field `timeout`, expected one of `name`, `hostnames`, `matches`, `backend`, `backends`, `respond`, `redirect`, `filters`, `max_request_body_bytes`, `timeouts`, `retry`",
    );
}

#[test]
fn bad_values() {
    assert_rejected(
        &VALID.replace("127.0.0.1:18080", "localhost-8080"),
        "FILE:10:14: listeners[0].address: invalid socket address syntax",
    );
    assert_rejected(
        &VALID.replace("threads: 2", "threads: 0"),
        "FILE:2:3: server.threads: must be between 1 and 1024",
    );
    assert_rejected(
        &VALID.replace("port: 30080 }\n  - name: b", "port: 30080 }\n    connect_timeout: 0s\n  - name: b"),
        "FILE:6:5: backends[0].connect_timeout: must be greater than zero (a zero timeout would fail every request)",
    );
    assert_rejected(
        &VALID.replace(
            "port: 30080 }\n  - name: b",
            "port: 30080 }\n    read_timeout: soon\n  - name: b",
        ),
        "FILE:6:19: backends[0].read_timeout: invalid value: string \"soon\", expected a duration",
    );
    assert_rejected(
        &VALID.replace("- name: r2", "- name: r2\n        matches: [{ method: get }]"),
        "FILE:18:21: listeners[0].routes[1].matches[0].method: `get` is not a method: write it in upper case, e.g. GET",
    );
}

#[test]
fn bad_backend_hosts() {
    let hosts = |list: &str| {
        VALID.replace(
            "static: { host: 127.0.0.2, port: 30080 }",
            &format!("static:\n      hosts:\n{list}"),
        )
    };
    assert_rejected(
        &hosts("        - { host: 127.0.0.2, port: 1, weight: 0 }\n"),
        "FILE:7:39: backends[0].static.hosts[0].weight: must be between 1 and 128",
    );
    assert_rejected(
        &hosts("        - { host: 127.0.0.2, port: 1 }\n        - { host: 127.0.0.2, port: 1 }\n"),
        "FILE:8:11: backends[0].static.hosts[1]: 127.0.0.2:1 is already the address of 127.0.0.2:1",
    );
    assert_rejected(
        &VALID.replace(
            "static: { host: 127.0.0.2, port: 30080 }",
            "static: { host: 127.0.0.2, port: 30080, hosts: [{ host: 127.0.0.4, port: 1 }] }",
        ),
        "FILE:5:45: backends[0].static.hosts: give either `host` and `port` or `hosts`, not both",
    );
    assert_rejected(
        &VALID.replace("{ host: 127.0.0.2, port: 30080 }", "{ host: 127.0.0.2 }"),
        "FILE:5:5: backends[0].static: `host` and `port` go together",
    );
    assert_rejected(
        &VALID.replace(
            "port: 30080 }\n  - name: b",
            "port: 30080 }\n    health_check: { path: healthz }\n  - name: b",
        ),
        "FILE:6:21: backends[0].health_check.path: must be a path starting with `/`",
    );
}

#[test]
fn route_answers_and_host_names() {
    assert_rejected(
        &VALID.replace(
            "        backend: a\n",
            "        backend: a\n        respond: { status: 503 }\n",
        ),
        "FILE:17:9: listeners[0].routes[1]: give one of `backend`, `backends`, `respond` and `redirect`",
    );
    assert_rejected(
        &VALID.replace("        backend: a\n", "        respond: { status: 99 }\n"),
        "FILE:18:20: listeners[0].routes[1].respond.status: must be between 200 and 599",
    );
    assert_rejected(
        &VALID.replace("        backend: a\n", "        backends: [{ backend: a, weight: 0 }, { backend: nope }]\n"),
        "FILE:18:49: listeners[0].routes[1].backends[1].backend: unknown backend `nope` (backends: a, b)",
    );
    assert_rejected(
        &VALID.replace(
            "        backend: a\n",
            "        backends: [{ backend: a, weight: 0 }]\n",
        ),
        "FILE:18:9: listeners[0].routes[1].backends: every weight is 0: no share would get traffic",
    );
    assert_rejected(
        &VALID.replace("- name: r2", "- name: r2\n        hostnames: [api.example.com, '*']"),
        "FILE:18:38: listeners[0].routes[1].hostnames[1]: `*` is not a host name: each label is letters, digits and inner hyphens; only a leading `*.` may be a wildcard",
    );
}

#[test]
fn route_filters_are_placed_like_a_listeners() {
    assert_rejected(
        &VALID.replace(
            "        backend: a\n",
            "        backend: a\n        filters: { request: [{ name: url_rewrite, config: { path: { full: /x } } }], response: [{ name: url_rewrite }] }\n",
        ),
        "FILE:19:99: listeners[0].routes[1].filters.response[0].name: filter `url_rewrite` cannot run in response (it runs in: post_routing)",
    );
    assert_rejected(
        &VALID.replace("        backend: a\n", "        redirect: { status: 200 }\n"),
        "FILE:18:21: listeners[0].routes[1].redirect.status: 200 is not a redirect: 301, 302, 303, 307 or 308",
    );
}

#[test]
fn missing_fields_and_syntax() {
    assert_rejected(
        &VALID.replace("        backend: a\n", ""),
        "FILE:17:9: listeners[0].routes[1]: a route needs a `backend` to send to, `backends` to split over, a `respond` to answer with or a `redirect`",
    );
    assert_rejected(
        "backends: []\nlisteners: [\n",
        "FILE:3:1: did not find expected node content, while parsing a flow node",
    );
}

#[test]
fn missing_file() {
    let out = run_cli(&["check", "--config", "/nonexistent/gateway.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: /nonexistent/gateway.yaml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn shipped_config_summary() {
    let out = run_cli(&["check", "--config", "conf/gateway.yaml"]);
    assert_summary(
        &out,
        &[
            "conf/gateway.yaml: ok",
            "app-latest = 127.0.0.2:30080",
            "app-v2 = 127.0.0.3:30080",
            "listener public on http://127.0.0.1:8080:",
            "1. override-v2: header x-version-override = \"v2\" -> app-v2",
            "2. override-latest: header x-version-override = \"latest\" -> app-latest",
            "3. tenant-v2: header x-tenant-version = \"v2\" -> app-v2",
            "4. default: path prefix / -> app-latest",
        ],
    );
}

#[test]
fn filter_config_errors_point_into_the_filter() {
    let with_filters = |filters: &str| {
        VALID.replace(
            "    routes:\n",
            &format!("    filters:\n      pre_routing:\n{filters}    routes:\n"),
        )
    };
    assert_rejected(
        &with_filters(
            "        - name: transformation\n          config:\n            request:\n              set:\n                - { name: x-tenant-version, value: 'jwt.version +' }\n",
        ),
        "FILE:17:45: listeners[0].filters.pre_routing[0].config.request.set[0].value: invalid CEL expression: ERROR: <input>:1:14: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n| jwt.version +\n| .............^",
    );
    assert_rejected(
        &with_filters(
            "        - name: jwt_authn\n          config:\n            mode: lax\n            providers: []\n",
        ),
        "FILE:15:13: listeners[0].filters.pre_routing[0].config.mode: unknown variant `lax`, expected one of `strict`, `optional`, `permissive`",
    );
    assert_rejected(
        &with_filters(
            "        - name: jwt_authn\n          config:\n            providers:\n              - { name: a, issuer: i, jwks: { file: missing.json } }\n",
        ),
        "FILE:16:47: listeners[0].filters.pre_routing[0].config.providers[0].jwks.file: cannot read FILEDIR/missing.json: No such file or directory (os error 2)",
    );
}

#[test]
fn summary_describes_the_filters_of_every_phase() {
    let yaml = VALID.replace(
        "    routes:\n",
        "    filters:\n      pre_routing:\n        - { name: transformation, config: { request: { remove: [x-pre] } } }\n      post_routing:\n        - { name: transformation, config: { request: { set: [{ name: x-post, value: \"'1'\" }] } } }\n      response:\n        - { name: transformation, config: { response: { add: [{ name: x-resp, value: \"'2'\" }] } } }\n    routes:\n",
    );
    let (_dir, _, out) = run_check(&yaml);
    assert_summary(
        &out,
        &[
            "  pre_routing: transformation\n    transformation: remove x-pre\n",
            "  post_routing: transformation\n    transformation: set x-post = '1'\n",
            "  response: transformation\n    transformation: add x-resp = '2'\n",
        ],
    );
}

#[test]
fn a_backends_protocol_matches_its_transport() {
    assert_rejected(
        &VALID.replace(
            "static: { host: 127.0.0.2, port: 30080 }",
            "static: { host: 127.0.0.2, port: 30080 }\n    protocol: h2",
        ),
        "FILE:6:5: backends[0].protocol: h2 is HTTP/2 over TLS and needs `tls`; for plaintext HTTP/2 use h2c",
    );
    assert_rejected(
        &VALID.replace(
            "static: { host: 127.0.0.2, port: 30080 }",
            "static: { host: 127.0.0.2, port: 30080 }\n    protocol: h2c\n    tls: { sni: a.test }",
        ),
        "FILE:6:5: backends[0].protocol: h2c is plaintext HTTP/2; over TLS use h2",
    );
    assert_rejected(
        &VALID.replace(
            "static: { host: 127.0.0.2, port: 30080 }",
            "static: { host: 127.0.0.2, port: 30080 }\n    protocol: http2",
        ),
        "FILE:6:15: backends[0].protocol: unknown variant `http2`, expected one of `http1`, `h2`, `h2c`",
    );
}

#[test]
fn max_requests_of_zero_is_refused() {
    assert_rejected(
        &VALID.replace(
            "static: { host: 127.0.0.2, port: 30080 }",
            "static: { host: 127.0.0.2, port: 30080 }\n    max_requests: 0",
        ),
        "FILE:6:5: backends[0].max_requests: must be greater than zero (zero would refuse every request)",
    );
}

#[test]
fn route_timeouts_must_be_positive_and_an_attempt_within_the_whole() {
    assert_rejected(
        &VALID.replace("        backend: a\n", "        backend: a\n        timeouts: { request: 0s }\n"),
        "FILE:19:21: listeners[0].routes[1].timeouts.request: must be greater than zero; leave it out for no bound",
    );
    assert_rejected(
        &VALID.replace(
            "        backend: a\n",
            "        backend: a\n        timeouts: { request: 1s, backend_request: 2s }\n",
        ),
        "FILE:19:34: listeners[0].routes[1].timeouts.backend_request: cannot be longer than timeouts.request, which bounds every attempt too",
    );
}

#[test]
fn max_pending_needs_max_connections() {
    assert_rejected(
        &VALID.replace(
            "static: { host: 127.0.0.2, port: 30080 }",
            "static: { host: 127.0.0.2, port: 30080 }\n    max_pending: 5",
        ),
        "FILE:6:5: backends[0].max_pending: requests wait only for one of `max_connections`: set it too",
    );
}

#[test]
fn check_describes_bounds_timeouts_and_retries() {
    let yaml = VALID
        .replace(
            "static: { host: 127.0.0.3, port: 30080 }",
            "static: { host: 127.0.0.3, port: 30080 }\n    protocol: h2c\n    max_requests: 100\n    max_connections: 10\n    max_pending: 5",
        )
        .replace(
            "        backend: b\n",
            "        backend: b\n        timeouts: { request: 10s, backend_request: 2s }\n        retry: { attempts: 2, on: [gateway-error, 429] }\n",
        );
    let (_dir, _path, out) = run_check(&yaml);
    assert_summary(
        &out,
        &[
            "    speaks HTTP/2 in plaintext (h2c); at most 100 requests in flight; at most 10 connections in use, 5 waiting",
            "-> b (request within 10s; each attempt within 2s; retry 2 on gateway-error, 429 (backoff 25ms))",
        ],
    );
}

#[test]
fn resolver_settings_are_checked() {
    let with_dns =
        |dns: &str| VALID.replace("  threads: 2\n", &format!("  threads: 2\n  dns: {dns}\n"));
    assert_rejected(
        &with_dns("{ min_refresh: 10ms }"),
        "FILE:3:10: server.dns.min_refresh: must be at least 100ms: a name looked up more often loads its servers for nothing",
    );
    assert_rejected(
        &with_dns("{ min_refresh: 10s, max_refresh: 5s }"),
        "FILE:3:28: server.dns.max_refresh: must not be shorter than `min_refresh`",
    );
    let (code, stderr) = check(&with_dns("{ servers: [dns.example] }"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("FILE:3:")
            && stderr.contains("server.dns.servers")
            && stderr.contains("`dns.example` is not an IP address"),
        "{stderr}"
    );
    let (code, stderr) = check(&with_dns("{ servers: ['127.0.0.53', '[::1]:5353'] }"));
    assert_eq!(code, Some(0), "{stderr}");
}
