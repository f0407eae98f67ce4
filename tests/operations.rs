//! Operating the gateway: the admin endpoints, Prometheus metrics (checked by promtool and
//! scraped by a real Prometheus server), and the access log.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const ISSUER: &str = "versioned-routing-lab";

/// A gateway with the lab's identity filters, one healthy backend, a dead one, extra `yaml` at
/// the top level, and `args` on its command line.
fn gateway(top: &str, args: &[&str], dir: &tempfile::TempDir) -> (Gateway, Proc) {
    let echo_addr = free_addr("127.0.0.2");
    let backend = echo(echo_addr, "app", dir.path());
    let dead = free_addr("127.0.0.3");
    let listen = free_addr("127.0.0.1");
    let jwks = repo_root().join("conf/demo/jwks.json");
    let yaml = format!(
        r#"{top}
backends:
  - {{ name: app, static: {{ host: {ip}, port: {port} }} }}
  - {{ name: dead, static: {{ host: {dead_ip}, port: {dead_port} }} }}
listeners:
  - name: public
    address: {listen}
    filters:
      pre_routing:
        - name: jwt_authn
          config:
            mode: optional
            providers:
              - {{ name: lab, issuer: {ISSUER}, audiences: [public-api], jwks: {{ file: {jwks} }} }}
        - name: transformation
          config:
            request:
              set: [{{ name: x-tenant-version, value: jwt.version }}]
    routes:
      - {{ name: to-dead, matches: [{{ path: {{ value: /dead }} }}], backend: dead }}
      - {{ name: tenant-v2, matches: [{{ headers: [{{ name: x-tenant-version, value: v2 }}] }}], backend: app }}
      - {{ name: api, matches: [{{ path: {{ value: /api }} }}], backend: app }}
"#,
        ip = echo_addr.ip(),
        port = echo_addr.port(),
        dead_ip = dead.ip(),
        dead_port = dead.port(),
        jwks = jwks.display(),
    );
    (Gateway::start(&yaml, listen, args), backend)
}

/// Sends a fixed mix of traffic: 3 routed by claim, 2 by path, 1 spoof, 1 no route, 1 bad
/// token, 2 to the dead backend.
fn send_mix(gw: &Gateway) {
    let auth = format!("Bearer {}", lab_token_cli("v2"));
    for _ in 0..3 {
        assert_eq!(gw.get("/", &[("authorization", &auth)]).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(gw.get("/api/x", &[]).status, 200);
    }
    assert_eq!(gw.get("/api/y", &[("x-tenant-version", "v2")]).status, 200);
    assert_eq!(gw.get("/nowhere", &[]).status, 404);
    assert_eq!(gw.get("/", &[("authorization", "Bearer abc")]).status, 401);
    for _ in 0..2 {
        assert_eq!(gw.get("/dead", &[]).status, 502);
    }
}

#[test]
fn admin_endpoints() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo) = gateway("server: { threads: 1 }", &["--threads", "3"], &dir);

    let health = gw.admin_get("/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let ready = gw.admin_get("/readyz");
    assert_eq!(
        ready.status,
        200,
        "{}",
        String::from_utf8_lossy(&ready.body)
    );
    assert_eq!(ready.json()["listeners"]["public"], true);

    let config = gw.admin_get("/config");
    assert_eq!(config.status, 200);
    let body = config.json();
    assert_eq!(
        body["config"]["server"]["threads"], 3,
        "--threads shows in /config"
    );
    assert_eq!(body["config"]["backends"][0]["name"], "app");
    let text = String::from_utf8_lossy(&config.body);
    assert!(text.contains("jwt_authn"));
    assert!(
        !text.contains("AQAB") && !text.contains("PRIVATE"),
        "key material in /config"
    );

    assert_eq!(gw.admin_get("/nope").status, 404);
    assert_eq!(
        request(gw.admin, "POST", "/metrics", &[("content-length", "0")]).status,
        405
    );
    assert!(gw.proc.output().contains("with 3 worker threads"));
}

#[test]
fn metrics_count_what_happened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo) = gateway("access_log: { enabled: false }", &[], &dir);
    send_mix(&gw);
    let expect = [
        (
            r#"switchyard_requests_total{backend="app",listener="public",protocol="HTTP/1.1",route="tenant-v2",status="200"}"#,
            3.0,
        ),
        (
            r#"switchyard_requests_total{backend="app",listener="public",protocol="HTTP/1.1",route="api",status="200"}"#,
            3.0,
        ),
        (
            r#"switchyard_requests_total{backend="-",listener="public",protocol="HTTP/1.1",route="-",status="404"}"#,
            1.0,
        ),
        (
            r#"switchyard_requests_total{backend="-",listener="public",protocol="HTTP/1.1",route="-",status="401"}"#,
            1.0,
        ),
        (
            r#"switchyard_requests_total{backend="dead",listener="public",protocol="HTTP/1.1",route="to-dead",status="502"}"#,
            2.0,
        ),
        (
            r#"switchyard_request_duration_seconds_count{backend="app",listener="public",route="api"}"#,
            3.0,
        ),
        (
            r#"switchyard_upstream_failures_total{backend="dead",kind="connect_failed"}"#,
            2.0,
        ),
        (r#"switchyard_requests_in_flight{listener="public"}"#, 0.0),
        (
            r#"switchyard_jwt_authn_total{listener="public",provider="lab",outcome="valid"}"#,
            3.0,
        ),
        (
            r#"switchyard_jwt_authn_total{listener="public",provider="none",outcome="malformed"}"#,
            1.0,
        ),
        (
            r#"switchyard_jwt_authn_total{listener="public",provider="none",outcome="missing"}"#,
            6.0,
        ),
        (
            r#"switchyard_transformation_header_drops_total{listener="public",header="x-tenant-version",reason="no_value"}"#,
            6.0,
        ),
    ];
    // A request is counted in pingora's logging phase, just after its response went out: a
    // scrape right after the last response may come first, so wait (boundedly) for the counts.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let metrics = gw.admin_get("/metrics");
        assert_eq!(metrics.status, 200);
        assert!(metrics
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
        let text = String::from_utf8_lossy(&metrics.body).into_owned();
        if expect.iter().all(|(s, v)| sample(&text, s) == Some(*v)) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    // No label value comes from the request: paths and header values never appear.
    assert!(!text.contains("/api/x") && !text.contains("nowhere"));

    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/setup.sh installs Debian's prometheus)");
    let mut promtool = promtool;
    {
        use std::io::Write;
        let mut stdin = promtool.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write metrics");
    }
    let out = promtool.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn access_log_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("access.log");
    let (gw, _echo) = gateway(
        &format!("access_log: {{ path: {} }}", log.display()),
        &[],
        &dir,
    );
    let secret = lab_token_cli("v2");
    let auth = format!("Bearer {secret}");
    assert_eq!(
        gw.get("/?access_token=hunter2", &[("authorization", &auth)])
            .status,
        200
    );
    assert_eq!(
        gw.get("/nowhere", &[("x-request-id", "req-42")]).status,
        404
    );

    // The writer flushes within a fraction of a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 2, "{lines:?}");
    // A line is written once its response has gone out, from the worker thread that served
    // it: two requests in a row may be logged in either order.
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let by_path = |path: &str| {
        parsed
            .iter()
            .find(|line| line["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("no line for {path}: {lines:?}"))
    };
    let first = by_path("/");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/");
    assert_eq!(first["status"], 200);
    assert_eq!(first["route"], "tenant-v2");
    assert_eq!(first["backend"], "app");
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["headers"]["x-tenant-version"], "v2");
    assert!(first["upstream_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert!(first["total_ms"]
        .as_f64()
        .is_some_and(|ms| ms >= first["upstream_ms"].as_f64().unwrap_or(0.0)));
    assert!(first["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let second = by_path("/nowhere");
    assert_eq!(second["status"], 404);
    assert_eq!(second["route"], "-");
    assert_eq!(second["request_id"], "req-42");
    let all = lines.join("\n");
    assert!(
        !all.contains(&secret) && !all.contains("hunter2"),
        "a secret reached the log"
    );
}

#[test]
fn access_log_can_be_turned_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("access.log");
    let (gw, _echo) = gateway(
        &format!("access_log: {{ enabled: false, path: {} }}", log.display()),
        &[],
        &dir,
    );
    assert_eq!(gw.get("/api", &[]).status, 200);
    std::thread::sleep(Duration::from_millis(400));
    assert!(!log.exists(), "disabled access log was written");
    assert!(!gw.proc.output().contains("\"route\":\"api\""));
}

#[test]
fn prometheus_scrapes_a_per_route_series() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo) = gateway("access_log: { enabled: false }", &[], &dir);
    send_mix(&gw);

    let web = free_addr("127.0.0.1");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: switchyard\n    static_configs: [{{ targets: ['{}'] }}]\n",
            gw.admin
        ),
    )
    .expect("write prometheus config");
    let log = dir.path().join("prometheus.log");
    let file = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("prometheus is installed (scripts/setup.sh installs Debian's prometheus)");
    wait_for_port(web, &mut child);
    let _prometheus = Proc { child, log };

    let query = "/api/v1/query?query=switchyard_requests_total%7Broute%3D%22api%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = request(web, "GET", query, &[]);
        if resp.status == 200 {
            let body = resp.json();
            // The series may first be scraped before the last request was counted.
            if let Some(result) = body["data"]["result"]
                .as_array()
                .filter(|r| !r.is_empty() && r[0]["value"][1] == "3")
            {
                assert_eq!(result[0]["metric"]["route"], "api");
                assert_eq!(result[0]["metric"]["backend"], "app");
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never returned the series; last answer {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
