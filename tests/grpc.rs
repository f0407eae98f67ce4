//! gRPC through the gateway, with a real gRPC server and client (Python's grpcio, see
//! `tests/support/grpc_echo.py`): unary and bidirectional streaming calls routed by the lab's
//! identity rules to HTTP/2 backends (h2c, and h2 over TLS), trailers passed through, and the
//! gateway's own answers (a rejected token, a timeout, a dead backend) as gRPC statuses.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::curl::ca_args;
use common::pki::make_pki;
use common::*;

fn script() -> PathBuf {
    repo_root().join("tests/support/grpc_echo.py")
}

/// A gRPC echo server named `name` on `addr`, in plaintext or with `tls` (cert, key).
fn grpc_server(addr: SocketAddr, name: &str, dir: &Path, tls: Option<(&Path, &Path)>) -> Proc {
    let log = dir.join(format!("grpc-{name}-{}.log", addr.port()));
    let file = std::fs::File::create(&log).expect("log");
    let mut cmd = Command::new("python3");
    cmd.arg(script())
        .args(["serve", "--listen", &addr.to_string(), "--name", name]);
    if let Some((cert, key)) = tls {
        cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    let mut child = cmd
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("python3 runs");
    wait_for_port(addr, &mut child);
    Proc { child, log }
}

/// The outcome of one call: its status name, details and replies.
struct Call {
    code: String,
    details: String,
    replies: Vec<String>,
}

/// Calls `method` at `target` with `metadata` (`name=value`) and `messages`; `tls` is the
/// CA file and the name to check the gateway's certificate against.
fn call(
    target: SocketAddr,
    method: &str,
    metadata: &[&str],
    messages: &[&str],
    tls: Option<(&str, &str)>,
) -> Call {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "python3"]).arg(script()).args([
        "call",
        "--target",
        &target.to_string(),
        "--method",
        method,
    ]);
    for m in metadata {
        cmd.args(["--metadata", m]);
    }
    for m in messages {
        cmd.args(["--message", m]);
    }
    if let Some((ca, name)) = tls {
        cmd.args(["--ca", ca, "--server-name", name]);
    }
    let out = cmd.output().expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let field = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
    Call {
        code: field("code"),
        details: field("details"),
        replies: json["replies"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Who answered a unary call, and the metadata it received.
fn unary_served_by(call: &Call) -> (String, serde_json::Value) {
    assert_eq!(call.code, "OK", "{}", call.details);
    let reply: serde_json::Value = serde_json::from_str(&call.replies[0]).expect("JSON reply");
    (
        reply["servedBy"].as_str().unwrap_or_default().to_owned(),
        reply["metadata"].clone(),
    )
}

fn bearer(version: &str) -> String {
    format!("authorization=Bearer {}", lab_token_cli(version))
}

/// The shipped lab with gRPC servers for its two versions (h2c), h2c on its listener, and a
/// 2 s read timeout.
fn grpc_lab() -> Lab {
    lab_with(
        "conf/gateway.yaml",
        &[
            (
                "    filters:\n      # Both run",
                "    h2c: true\n    filters:\n      # Both run",
            ),
            ("read_timeout: 30s", "read_timeout: 2s\n    protocol: h2c"),
        ],
        |addr, name, dir| grpc_server(addr, name, dir, None),
    )
}

#[test]
fn grpc_calls_follow_the_identity_rules_both_ways() {
    let lab = grpc_lab();
    let gw = lab.gw.addr;

    let (by, _) = unary_served_by(&call(gw, "Unary", &[], &["hi"], None));
    assert_eq!(by, "latest");
    let (by, seen) = unary_served_by(&call(gw, "Unary", &[&bearer("v2")], &["hi"], None));
    assert_eq!(by, "v2");
    assert_eq!(seen["x-tenant-version"], "v2", "{seen}");
    let (by, _) = unary_served_by(&call(
        gw,
        "Unary",
        &["x-version-override=v2"],
        &["hi"],
        None,
    ));
    assert_eq!(by, "v2");
    // A client cannot choose its version by sending the header the token's claim becomes.
    let (by, _) = unary_served_by(&call(gw, "Unary", &["x-tenant-version=v2"], &["hi"], None));
    assert_eq!(by, "latest");

    let chat = call(gw, "Chat", &[&bearer("v2")], &["a", "b", "c"], None);
    assert_eq!(chat.code, "OK", "{}", chat.details);
    assert_eq!(chat.replies, ["v2:a", "v2:b", "v2:c"]);

    // The backend's own status and message come through in its trailers.
    let fail = call(gw, "Fail", &[], &["this"], None);
    assert_eq!(
        (fail.code.as_str(), fail.details.as_str()),
        ("INVALID_ARGUMENT", "latest refuses: this")
    );
}

#[test]
fn the_gateways_own_answers_are_grpc_statuses() {
    let mut lab = grpc_lab();
    let gw = lab.gw.addr;

    let forged = format!("authorization=Bearer {}x", lab_token_cli("v2"));
    let rejected = call(gw, "Unary", &[&forged], &["hi"], None);
    assert_eq!(rejected.code, "UNAUTHENTICATED", "{}", rejected.details);

    let slow = call(gw, "Slow", &[], &["hi"], None);
    assert_eq!(slow.code, "DEADLINE_EXCEEDED", "{}", slow.details);
    assert!(
        slow.details.contains("did not respond in time"),
        "{}",
        slow.details
    );

    let _ = lab.v2.child.kill();
    let _ = lab.v2.child.wait();
    let down = call(gw, "Unary", &[&bearer("v2")], &["hi"], None);
    assert_eq!(down.code, "UNAVAILABLE", "{}", down.details);
    // The access log and metrics count what the answer stands for, 502, and say the status.
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let log = lab.gw.proc.output();
        let line = log
            .lines()
            .find(|l| l.contains("\"grpc_status\":14") && l.contains("\"route\":\"tenant-v2\""));
        if let Some(line) = line {
            assert!(line.contains("\"status\":502"), "{line}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no log line:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The other version still serves.
    let (by, _) = unary_served_by(&call(gw, "Unary", &[], &["hi"], None));
    assert_eq!(by, "latest");
}

#[test]
fn grpc_over_tls_both_sides() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    make_pki(d, "api", "api.example.test");
    make_pki(d, "backend", "grpc.internal");
    let backend_addr = free_addr("127.0.0.4");
    let _backend = grpc_server(
        backend_addr,
        "secure",
        d,
        Some((&d.join("backend.pem"), &d.join("backend-key.pem"))),
    );
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        "access_log: {{ enabled: false }}
backends:
  - name: secure
    static: {{ host: {}, port: {} }}
    protocol: h2
    tls: {{ sni: grpc.internal, ca_file: {} }}
listeners:
  - name: public
    address: {listen}
    tls:
      certificates: [{{ cert: {}, key: {} }}]
    routes: [{{ name: all, backend: secure }}]
",
        backend_addr.ip(),
        backend_addr.port(),
        d.join("backend-ca.pem").display(),
        d.join("api.pem").display(),
        d.join("api-key.pem").display(),
    );
    let gw = Gateway::start(&yaml, listen, &[]);
    let ca = ca_args(d, "api");
    let tls = Some((ca[1].as_str(), "api.example.test"));
    let (by, _) = unary_served_by(&call(gw.addr, "Unary", &[], &["hi"], tls));
    assert_eq!(by, "secure");
    let chat = call(gw.addr, "Chat", &[], &["x", "y"], tls);
    assert_eq!(chat.replies, ["secure:x", "secure:y"], "{}", chat.details);
}

#[test]
fn an_h2c_backend_is_probed_and_proxied_over_http2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = free_addr("127.0.0.5");
    let log = dir.path().join("echo.log");
    let file = std::fs::File::create(&log).expect("log");
    let mut child = Command::new(BIN)
        .args([
            "echo",
            "--listen",
            &backend.to_string(),
            "--name",
            "h2",
            "--h2c",
        ])
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("spawn echo");
    wait_for_port(backend, &mut child);
    let _echo = Proc { child, log };
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        "access_log: {{ enabled: false }}
backends:
  - name: h2
    static: {{ host: {}, port: {} }}
    protocol: h2c
    health_check: {{ path: /healthz, interval: 200ms, healthy_threshold: 1 }}
listeners:
  - {{ name: main, address: '{listen}', routes: [{{ name: all, backend: h2 }}] }}
",
        backend.ip(),
        backend.port()
    );
    let gw = Gateway::start(&yaml, listen, &[]);
    // The probe must pass (an HTTP/2 request carries no `connection` header) before traffic
    // flows; then the backend sees HTTP/2 while the client spoke HTTP/1.1.
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let resp = loop {
        let resp = gw.get("/x", &[]);
        if resp.status == 200 || std::time::Instant::now() > deadline {
            break resp;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(resp.served_by(), "h2");
    assert_eq!(resp.json()["version"], "HTTP/2.0");
    // Several probes later, every one has passed.
    let passed = |result: &str| {
        let metrics = String::from_utf8_lossy(&gw.admin_get("/metrics").body).into_owned();
        metrics
            .lines()
            .filter(|l| l.starts_with("switchyard_backend_host_health_checks_total{"))
            .filter(|l| l.contains(&format!("result=\"{result}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    while passed("passed") < 3.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "probes: {} failed",
            passed("failed")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(passed("failed"), 0.0);
}
