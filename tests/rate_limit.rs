//! `rate_limit` over real sockets: the lab's gateway with limits on verified claims, counted
//! locally and in a Redis server on loopback that the tests start, stop and restart (Debian's
//! `redis-server`, installed by `scripts/test.sh`).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A Redis server on loopback, killed when dropped.
struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start(port: u16, dir: &Path) -> Redis {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                dir.to_str().expect("utf-8 path"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test.sh installs it)");
        wait_for_port(SocketAddr::from(([127, 0, 0, 1], port)), &mut child);
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lab with `post_routing` filters `filters` (YAML, indented for the list under it).
fn lab_with_limits(filters: &str) -> Lab {
    lab(
        "conf/gateway.yaml",
        &[(
            "    # First match wins.",
            &format!("      post_routing:\n{filters}\n    # First match wins."),
        )],
    )
}

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

/// A token of the lab's key whose `sub` is `sub` (and whose version is v2).
fn token_for(sub: &str) -> String {
    lab_token_with(&["version=v2", &format!("sub={sub}")])
}

fn status(gw: &Gateway, headers: &[(&str, &str)]) -> u16 {
    gw.get("/", headers).status
}

#[test]
fn a_burst_then_a_steady_rate_gets_exactly_the_limit_through() {
    let lab = lab_with_limits(
        "        - name: rate_limit
          config:
            limits:
              - { name: per-user, key: jwt.sub, rate: 10/s, burst: 5 }",
    );
    let token = auth(&token_for("alice"));
    let headers = [("authorization", token.as_str())];
    // 50 requests a second for two seconds, on one connection.
    let mut client = Client::connect(lab.gw.addr);
    let start = Instant::now();
    let mut passed = 0u64;
    for i in 0..100u32 {
        let due = start + Duration::from_millis(20) * i;
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let resp = client.send("GET", "/", &headers);
        match resp.status {
            200 => passed += 1,
            429 => {}
            other => panic!("{other}: {}", resp.text()),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    // The burst, then one every 100 ms: within one request of it.
    let expected = 5.0 + (10.0 * elapsed).floor();
    assert!(
        (passed as f64 - expected).abs() <= 1.0,
        "{passed} passed in {elapsed:.2}s; expected {expected}"
    );
    let limited = lab.gw.metric(
        r#"switchyard_rate_limit_total{listener="public",limit="per-user",result="limited"}"#,
    );
    assert_eq!(limited as u64, 100 - passed);
}

#[test]
fn tenants_routes_and_forged_tokens_each_keep_to_their_own() {
    let lab = lab_with_limits(
        "        - name: rate_limit
          config:
            headers: always
            limits:
              - { name: v2-tenants, key: jwt.sub, rate: 3/h, routes: [tenant-v2] }
              - { name: anonymous, key: 'has(jwt.sub) ? null : source.address', rate: 2/h }",
    );
    let alice = auth(&token_for("alice"));
    let bob = auth(&token_for("bob"));
    for _ in 0..3 {
        assert_eq!(status(&lab.gw, &[("authorization", &alice)]), 200);
    }
    let refused = lab.gw.get("/", &[("authorization", &alice)]);
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["limit"], "v2-tenants");
    assert!(
        !refused.text().contains("alice"),
        "the key stays out of the answer"
    );
    assert_eq!(refused.header("ratelimit-limit"), Some("3"));
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!(
        (1199..=1200).contains(&retry),
        "one request every 20 minutes: {retry}"
    );
    assert_eq!(
        refused.header("ratelimit-reset"),
        refused.header("retry-after")
    );

    // Bob is another tenant; alice's override to latest leaves the v2 route and its limit.
    let ok = lab.gw.get("/", &[("authorization", &bob)]);
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("ratelimit-remaining"),
        Some("2"),
        "headers: always"
    );
    assert_eq!(
        status(
            &lab.gw,
            &[("authorization", &alice), ("x-version-override", "latest")]
        ),
        200
    );

    // A forged token claiming alice's identity is refused before it can spend anything.
    let forged = format!("{}x", alice);
    for _ in 0..3 {
        assert_eq!(status(&lab.gw, &[("authorization", &forged)]), 401);
    }
    // Anonymous callers have their own limit, by address.
    assert_eq!(status(&lab.gw, &[]), 200);
    assert_eq!(status(&lab.gw, &[]), 200);
    assert_eq!(status(&lab.gw, &[]), 429);
    assert_eq!(status(&lab.gw, &[("authorization", &bob)]), 200);
}

#[test]
fn a_reload_keeps_the_counts_of_an_unchanged_limit() {
    let lab = lab_with_limits(
        "        - name: rate_limit
          config:
            limits:
              - { name: per-user, key: jwt.sub, rate: 2/h }",
    );
    let token = auth(&token_for("alice"));
    let headers = [("authorization", token.as_str())];
    assert_eq!(status(&lab.gw, &headers), 200);
    assert_eq!(status(&lab.gw, &headers), 200);
    assert_eq!(status(&lab.gw, &headers), 429);

    // Another change to the config, and a reload: the limit is as it was, so is its count.
    let config = lab.gw.dir.path().join("gateway.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        yaml.replace("shutdown_timeout: 10s", "shutdown_timeout: 11s"),
    )
    .expect("write");
    let reloads = r#"switchyard_config_reloads_total{result="success"}"#;
    let pid = lab.gw.proc.child.id().to_string();
    Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.gw.metric(reloads) < 1.0 {
        assert!(Instant::now() < deadline, "no reload");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(&lab.gw, &headers), 429);
}

/// The lab with a per-user limit in Redis at `url`, failing as `mode` says.
fn lab_with_redis(url: &str, mode: &str) -> Lab {
    lab_with_limits(&format!(
        "        - name: rate_limit
          config:
            store: redis
            redis: {{ url: '{url}', timeout: 100ms, failure_mode: {mode} }}
            limits:
              - {{ name: per-user, key: jwt.sub, rate: 10/h }}"
    ))
}

#[test]
fn two_gateways_share_a_limit_through_redis() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = Redis::start(free_port("127.0.0.1"), dir.path());
    let one = lab_with_redis(&redis.url(), "allow");
    let two = lab_with_redis(&redis.url(), "allow");
    let token = auth(&token_for("carol"));
    let headers = [("authorization", token.as_str())];
    let mut passed = 0;
    for i in 0..30 {
        let gw = if i % 2 == 0 { &one.gw } else { &two.gw };
        match status(gw, &headers) {
            200 => passed += 1,
            429 => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(
        passed, 10,
        "together they let the limit through, not twice it"
    );
    let limited = |gw: &Gateway| {
        gw.metric(
            r#"switchyard_rate_limit_total{listener="public",limit="per-user",result="limited"}"#,
        )
    };
    assert_eq!(limited(&one.gw) + limited(&two.gw), 20.0);

    // `explain` shows the limit's state in Redis, and takes nothing from it.
    let config = one.gw.dir.path().join("gateway.yaml");
    for _ in 0..2 {
        let out = run_cli(&[
            "explain",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--token",
            &token_for("carol"),
            "/",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("limit `per-user` (10/h, burst 10): 0 of 10 left, over it for"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run_cli(&[
        "explain",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--token",
        &token_for("erin"),
        "/",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("limit `per-user` (10/h, burst 10): 10 of 10 left"),
        "{text}"
    );
    assert_eq!(
        status(&one.gw, &[("authorization", &auth(&token_for("erin")))]),
        200
    );
}

#[test]
fn redis_down_follows_failure_mode_and_counting_resumes_when_it_is_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port("127.0.0.1");
    // Both gateways start while Redis is down.
    let url = format!("redis://127.0.0.1:{port}/0");
    let open = lab_with_redis(&url, "allow");
    let closed = lab_with_redis(&url, "deny");
    let token = auth(&token_for("dave"));
    let headers = [("authorization", token.as_str())];

    for _ in 0..3 {
        assert_eq!(status(&open.gw, &headers), 200, "fails open");
        let resp = closed.gw.get("/", &headers);
        assert_eq!(resp.status, 503, "fails closed: {}", resp.text());
        assert_eq!(resp.json()["error"], "rate_limit_unavailable");
        assert_eq!(resp.header("retry-after"), Some("1"));
    }
    // A request without a token is not counted by the limit, so Redis is not asked.
    assert_eq!(status(&closed.gw, &[]), 200);
    let failed = |gw: &Gateway, result: &str| {
        gw.metric(&format!(
            r#"switchyard_rate_limit_total{{listener="public",limit="per-user",result="{result}"}}"#
        ))
    };
    assert_eq!(failed(&open.gw, "failed_open"), 3.0);
    assert_eq!(failed(&closed.gw, "failed_closed"), 3.0);

    // Redis comes up: counting starts, shared by both.
    let redis = Redis::start(port, dir.path());
    let deadline = Instant::now() + Duration::from_secs(15);
    while status(&closed.gw, &headers) != 200 {
        assert!(Instant::now() < deadline, "counting did not resume");
        thread::sleep(Duration::from_millis(100));
    }
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(status(&open.gw, &headers));
    }
    assert!(statuses.contains(&429), "counted again: {statuses:?}");

    // Redis stops mid-run, then comes back: the same again.
    drop(redis);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&closed.gw, &headers) != 503 {
        assert!(Instant::now() < deadline, "Redis down not noticed");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status(&open.gw, &headers), 200, "open while Redis is down");
    let _redis = Redis::start(port, dir.path());
    let deadline = Instant::now() + Duration::from_secs(15);
    while status(&closed.gw, &headers) == 503 {
        assert!(
            Instant::now() < deadline,
            "counting did not resume after a restart"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_shipped_example_holds_v2_tenants_to_less_than_the_rest() {
    let lab = lab("conf/examples/rate-limits.yaml", &[]);
    let v2 = auth(&token_for("pinned"));
    let resp = lab.gw.get("/", &[("authorization", &v2)]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.served_by(), "v2");
    assert_eq!(resp.header("ratelimit-limit"), Some("40"));
    assert_eq!(resp.header("ratelimit-remaining"), Some("39"));
    let latest = lab.gw.get(
        "/",
        &[("authorization", &v2), ("x-version-override", "latest")],
    );
    assert_eq!(latest.header("ratelimit-limit"), Some("200"));

    // Without a token: 10 at once per address, then 429.
    let statuses: Vec<u16> = (0..11).map(|_| status(&lab.gw, &[])).collect();
    assert_eq!(&statuses[..10], &[200; 10]);
    assert_eq!(statuses[10], 429);
    let check = run_cli(&["check", "--config", "conf/examples/rate-limits.yaml"]);
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains(
            "limit `v2-tenants`: 20/s burst 40 per `jwt.sub` on routes tenant-v2, override-v2"
        ),
        "{out}"
    );
}
