//! TLS termination and HTTP/2 on listeners, over real sockets with certificates made here:
//! HTTP/1.1 and HTTP/2 (ALPN) over TLS, h2c, SNI choosing the certificate, mutual TLS with
//! the client's identity in CEL, handshake failures counted, certificates reloaded under
//! load, and the lab's seven scenarios over HTTPS and HTTP/2. The client is curl (TLS, SNI,
//! ALPN, HTTP/2, h2c); `openssl s_client` says which certificate a name gets.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::curl::{ca_args, fetch, served_certificate};
use common::pki::{make_leaf, make_pki};
use common::*;
use switchyard::lab::demo::{lab_scenarios, Outcome};

/// Waits (boundedly) until `series` reaches `value`: requests are counted just after their
/// response went out, so a scrape right after may come first.
fn wait_metric(gw: &Gateway, series: &str, value: f64) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while gw.metric(series) < value {
        assert!(
            Instant::now() < deadline,
            "{series} never reached {value}:\n{}",
            gw.admin_get("/metrics").text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// A temporary folder holding the `api` PKI (a CA and a certificate for `api.example.test`)
/// and those of `more` (name, DNS name), and an echo backend `app` beside it.
struct Setup {
    dir: tempfile::TempDir,
    echo_addr: SocketAddr,
    _echo: Proc,
}

fn setup(more: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    make_pki(dir.path(), "api", "api.example.test");
    for (name, dns) in more {
        make_pki(dir.path(), name, dns);
    }
    let echo_addr = free_addr("127.0.0.2");
    let _echo = echo(echo_addr, "app", dir.path());
    Setup {
        dir,
        echo_addr,
        _echo,
    }
}

/// A gateway whose listeners are `listeners` (YAML list items), routing everything to one
/// echo backend `app`.
fn gateway(listeners: &str, echo_addr: SocketAddr, addr: SocketAddr) -> Gateway {
    let yaml = format!(
        "backends:\n  - {{ name: app, static: {{ host: {}, port: {} }} }}\nlisteners:\n{listeners}",
        echo_addr.ip(),
        echo_addr.port()
    );
    Gateway::start(&yaml, addr, &[])
}

const ROUTES: &str = "    routes: [{ name: all, backend: app }]\n";

#[test]
fn tls_listeners_speak_http1_and_http2_and_choose_certificates_by_sni() {
    let setup = setup(&[("wild", "*.example.test"), ("default", "default.test")]);
    let (d, echo_addr) = (setup.dir.path(), setup.echo_addr);
    let (main, h1_only) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let listeners = format!(
        "  - name: main
    address: {main}
    tls:
      certificates:
        - {{ cert: {api}, key: {api_key}, hostnames: [api.example.test] }}
        - {{ cert: {wild}, key: {wild_key}, hostnames: ['*.example.test'] }}
        - {{ cert: {default}, key: {default_key} }}
{ROUTES}  - name: h1-only
    address: {h1_only}
    tls:
      certificates: [{{ cert: {api}, key: {api_key} }}]
      min_version: '1.3'
      alpn: [http/1.1]
{ROUTES}",
        api = path(d, "api.pem"),
        api_key = path(d, "api-key.pem"),
        wild = path(d, "wild.pem"),
        wild_key = path(d, "wild-key.pem"),
        default = path(d, "default.pem"),
        default_key = path(d, "default-key.pem"),
    );
    let gw = gateway(&listeners, echo_addr, main);
    let api_ca = ca_args(d, "api");
    let api_ca: Vec<&str> = api_ca.iter().map(String::as_str).collect();

    let h1 = fetch(
        "https://api.example.test/a",
        main,
        &[&["--http1.1"], &api_ca[..]].concat(),
    );
    assert_eq!(
        (h1.served_by().as_str(), h1.version.as_str()),
        ("app", "1.1"),
        "{h1:?}"
    );
    let h2 = fetch(
        "https://api.example.test/b",
        main,
        &[&["--http2"], &api_ca[..]].concat(),
    );
    assert_eq!(
        (h2.served_by().as_str(), h2.version.as_str()),
        ("app", "2"),
        "{h2:?}"
    );
    assert_eq!(h2.json()["path"], "/b");
    // The wildcard's own CA: the handshake succeeds only if the wildcard certificate came.
    let wild_ca = ca_args(d, "wild");
    let wild_ca: Vec<&str> = wild_ca.iter().map(String::as_str).collect();
    let www = fetch("https://www.example.test/", main, &wild_ca);
    assert_eq!((www.status, www.version.as_str()), (200, "2"), "{www:?}");

    let subject = |sni| served_certificate(main, sni).unwrap_or_default();
    assert!(subject(Some("api.example.test")).contains("api.example.test"));
    assert!(subject(Some("deep.www.example.test")).contains("*.example.test"));
    assert!(subject(Some("other.test")).contains("default.test"));
    assert!(subject(None).contains("default.test"));

    // ALPN offers HTTP/1.1 only there, and TLS 1.2 is refused.
    let old = fetch(
        "https://api.example.test/",
        h1_only,
        &[&["--http2"], &api_ca[..]].concat(),
    );
    assert_eq!((old.status, old.version.as_str()), (200, "1.1"), "{old:?}");
    let tls12 = fetch(
        "https://api.example.test/",
        h1_only,
        &[&["--tlsv1.2", "--tls-max", "1.2"], &api_ca[..]].concat(),
    );
    assert_eq!(tls12.status, 0, "TLS 1.2 accepted: {tls12:?}");

    let requests = |protocol: &str| {
        format!(
            "switchyard_requests_total{{backend=\"app\",listener=\"main\",protocol=\"{protocol}\",route=\"all\",status=\"200\"}}"
        )
    };
    wait_metric(&gw, &requests("HTTP/1.1"), 1.0);
    wait_metric(&gw, &requests("HTTP/2"), 2.0);
    assert_eq!(gw.metric(&requests("HTTP/2")), 2.0);
    wait_metric(
        &gw,
        "switchyard_tls_handshake_failures_total{listener=\"h1-only\",reason=\"incompatible\"}",
        1.0,
    );
    let log = wait_for_log(&gw, "\"path\":\"/b\"");
    assert!(
        log.contains("\"protocol\":\"HTTP/2\"") && log.contains("\"tls\":\"TLSv1_3\""),
        "{log}"
    );
}

/// The access log line containing `needle`, once written (the log is flushed in batches).
fn wait_for_log(gw: &Gateway, needle: &str) -> String {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let out = gw.proc.output();
        if let Some(line) = out.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {needle}:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn failed_handshakes_are_counted_and_the_listener_keeps_serving() {
    let setup = setup(&[]);
    let (d, echo_addr) = (setup.dir.path(), setup.echo_addr);
    let main = free_addr("127.0.0.1");
    let listeners = format!(
        "  - name: main
    address: {main}
    limits: {{ tls_handshake_timeout: 1s }}
    tls:
      certificates: [{{ cert: {}, key: {}, hostnames: [api.example.test] }}]
{ROUTES}",
        path(d, "api.pem"),
        path(d, "api-key.pem"),
    );
    let gw = gateway(&listeners, echo_addr, main);

    // No certificate for the name, and no default: the handshake fails with an alert.
    assert_eq!(served_certificate(main, Some("other.test")), None);
    assert_eq!(served_certificate(main, None), None);
    wait_metric(
        &gw,
        "switchyard_tls_handshake_failures_total{listener=\"main\",reason=\"no_certificate\"}",
        2.0,
    );

    // Plain HTTP to a TLS port gets no HTTP answer.
    let plain = try_request(main, "GET", "/", &[]);
    assert!(plain.is_err(), "plaintext was answered: {plain:?}");

    // A client that never starts its handshake is closed after tls_handshake_timeout.
    let mut silent = TcpStream::connect(main).expect("connect");
    silent
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    let started = Instant::now();
    let read = silent.read(&mut [0u8; 16]);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "unexpected bytes: {read:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    // The count follows the close (the handshake's future, which owns the socket, ends
    // first).
    wait_metric(
        &gw,
        "switchyard_tls_handshake_failures_total{listener=\"main\",reason=\"timeout\"}",
        1.0,
    );

    let ca = ca_args(d, "api");
    let ok = fetch("https://api.example.test/", main, &[ca[0].as_str(), &ca[1]]);
    assert_eq!(ok.served_by(), "app", "{ok:?}");
}

#[test]
fn mutual_tls_requires_a_client_certificate_and_cel_reads_it() {
    let setup = setup(&[
        ("clients", "orders.internal"),
        ("stranger", "orders.internal"),
    ]);
    let (d, echo_addr) = (setup.dir.path(), setup.echo_addr);
    let main = free_addr("127.0.0.1");
    let listeners = format!(
        "  - name: main
    address: {main}
    tls:
      certificates: [{{ cert: {}, key: {} }}]
      client_ca: {}
    filters:
      pre_routing:
        - name: transformation
          config:
            request:
              set:
                - {{ name: x-client-name, value: 'source.certificate.dnsNames[0]' }}
                - {{ name: x-client-subject, value: 'source.certificate.subject' }}
                - {{ name: x-client-cn, value: 'source.certificate.commonName' }}
{ROUTES}",
        path(d, "api.pem"),
        path(d, "api-key.pem"),
        path(d, "clients-ca.pem"),
    );
    let gw = gateway(&listeners, echo_addr, main);
    let ca = ca_args(d, "api");
    let with_cert = |name: &str, extra: &[&str]| {
        let (cert, key) = (
            path(d, &format!("{name}.pem")),
            path(d, &format!("{name}-key.pem")),
        );
        let mut args = vec![
            ca[0].as_str(),
            ca[1].as_str(),
            "--cert",
            &cert,
            "--key",
            &key,
        ];
        args.extend_from_slice(extra);
        fetch("https://api.example.test/", main, &args)
    };

    for protocol in ["--http1.1", "--http2"] {
        let ok = with_cert("clients", &[protocol, "-H", "x-client-name: forged"]);
        assert_eq!(ok.served_by(), "app", "{ok:?}");
        let seen = &ok.json()["headers"];
        assert_eq!(seen["x-client-name"], "orders.internal", "{ok:?}");
        assert_eq!(seen["x-client-subject"], "CN=orders.internal", "{ok:?}");
    }

    // A common name that looks like more of the name cannot pass for it: the subject is
    // RFC 4514, most specific first, with the value's comma escaped.
    make_leaf(
        d,
        "clients",
        "tricky",
        "/O=Acme/CN=orders, O=Evil",
        "tricky.internal",
    );
    let tricky = with_cert("tricky", &[]);
    let seen = &tricky.json()["headers"];
    assert_eq!(
        seen["x-client-subject"], "CN=orders\\, O=Evil,O=Acme",
        "{tricky:?}"
    );
    assert_eq!(seen["x-client-cn"], "orders, O=Evil", "{tricky:?}");

    let stranger = with_cert("stranger", &[]);
    assert_eq!(
        stranger.status, 0,
        "a certificate of another CA was accepted"
    );
    let none = fetch("https://api.example.test/", main, &[ca[0].as_str(), &ca[1]]);
    assert_eq!(none.status, 0, "no certificate was accepted: {none:?}");
    // TLS 1.3 refuses a missing client certificate after the client's handshake is done, so
    // the server's count is what says it was refused.
    wait_metric(
        &gw,
        "switchyard_tls_handshake_failures_total{listener=\"main\",reason=\"client_certificate\"}",
        2.0,
    );
    let log = wait_for_log(&gw, "\"client_subject\"");
    assert!(
        log.contains("\"client_subject\":\"CN=orders.internal\""),
        "{log}"
    );
}

/// A body of `kib` KiB sent at 8 KiB/s: the request lasts well past a 1 s header deadline.
fn slow_upload(url: &str, addr: SocketAddr, body: &Path, args: &[&str]) -> common::curl::Fetched {
    let file = body.display().to_string();
    let mut all = vec!["--limit-rate", "8K", "--data-binary"];
    let at_file = format!("@{file}");
    all.push(&at_file);
    all.extend_from_slice(args);
    fetch(url, addr, &all)
}

/// How long the gateway keeps an h2c connection that sends its preface and SETTINGS and
/// then nothing.
fn idle_h2c(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut conn = common::h2_frames::H2Conn::connect(addr);
    let outcome = conn.read_until(Duration::from_secs(10), |_| false);
    assert!(outcome.closed, "still open after 10 s");
    started.elapsed()
}

/// How long the gateway keeps a TLS connection (ALPN `alpn`) that completes its handshake,
/// sends the HTTP/2 preface if `preface`, and then nothing; measured from the handshake's end
/// by Python's ssl module.
fn idle_tls(addr: SocketAddr, alpn: &str, preface: bool) -> Duration {
    let script = r#"
import socket, ssl, sys, time
addr, alpn, preface = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
host, port = addr.rsplit(":", 1)
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.set_alpn_protocols([alpn])
raw = socket.create_connection((host, int(port)), timeout=10)
conn = context.wrap_socket(raw, server_hostname="api.example.test")
started = time.monotonic()
if preface:
    conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
try:
    while conn.recv(4096):
        pass
except (OSError, ssl.SSLError):
    pass
print(time.monotonic() - started)
"#;
    let out = Command::new("python3")
        .args(["-c", script, &addr.to_string(), alpn])
        .arg(if preface { "1" } else { "0" })
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let seconds: f64 = text.trim().parse().unwrap_or_else(|_| {
        panic!(
            "no lifetime: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Duration::from_secs_f64(seconds)
}

#[test]
fn h2c_and_http2_requests_outlive_the_header_deadline() {
    let setup = setup(&[]);
    let (d, echo_addr) = (setup.dir.path(), setup.echo_addr);
    let (plain, tls) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
    let listeners = format!(
        "  - name: plain
    address: {plain}
    h2c: true
    limits: {{ header_read_timeout: 1s }}
{ROUTES}  - name: tls
    address: {tls}
    limits: {{ header_read_timeout: 1s }}
    tls:
      certificates: [{{ cert: {}, key: {} }}]
{ROUTES}",
        path(d, "api.pem"),
        path(d, "api-key.pem"),
    );
    let gw = gateway(&listeners, echo_addr, plain);
    let body = d.join("body.bin");
    std::fs::write(&body, vec![b'x'; 24 * 1024]).expect("write body");

    let h2c = fetch("http://gw.test/", plain, &["--http2-prior-knowledge"]);
    assert_eq!(
        (h2c.served_by().as_str(), h2c.version.as_str()),
        ("app", "2")
    );
    let h1 = fetch("http://gw.test/", plain, &[]);
    assert_eq!(
        (h1.served_by().as_str(), h1.version.as_str()),
        ("app", "1.1")
    );

    let ca = ca_args(d, "api");
    let started = Instant::now();
    let over_h2c = slow_upload(
        "http://gw.test/up",
        plain,
        &body,
        &["--http2-prior-knowledge"],
    );
    let over_tls = slow_upload(
        "https://api.example.test/up",
        tls,
        &body,
        &["--http2", ca[0].as_str(), &ca[1]],
    );
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "uploads were not slow"
    );
    for (name, got) in [("h2c", &over_h2c), ("h2 over TLS", &over_tls)] {
        assert_eq!(
            (got.status, got.version.as_str()),
            (200, "2"),
            "{name}: {got:?}"
        );
        assert_eq!(got.json()["bodyBytes"], 24 * 1024, "{name}: {got:?}");
    }
    assert_eq!(
        gw.metric("switchyard_downstream_connections_closed_total{listener=\"tls\",reason=\"header_read_timeout\"}"
        ),
        0.0
    );

    // Connections that never send a request are closed at the header deadline, whatever
    // their protocol, and only plaintext HTTP/1.1 is told so with a 408.
    for (name, lifetime) in [
        ("h2c", idle_h2c(plain)),
        ("TLS, HTTP/1.1", idle_tls(tls, "http/1.1", false)),
        ("TLS, HTTP/2", idle_tls(tls, "h2", true)),
    ] {
        assert!(
            lifetime >= Duration::from_millis(800) && lifetime < Duration::from_secs(5),
            "{name}: closed after {lifetime:?}"
        );
    }

    // A plaintext client that sends nothing still gets its 408.
    let mut silent = TcpStream::connect(plain).expect("connect");
    silent
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    let mut answer = String::new();
    let _ = silent.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[test]
fn the_seven_scenarios_over_https_and_http2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    make_pki(d, "api", "api.example.test");
    let tls = format!(
        "    tls:\n      certificates: [{{ cert: {}, key: {} }}]\n    filters:",
        path(d, "api.pem"),
        path(d, "api-key.pem")
    );
    let lab = lab("conf/gateway.yaml", &[("    filters:", tls.as_str())]);
    let scenarios =
        lab_scenarios(&repo_root().join("conf/demo/jwt-demo-key.pem")).expect("lab tokens");
    let ca = ca_args(d, "api");
    for protocol in ["--http1.1", "--http2"] {
        for s in &scenarios {
            let mut args = vec![protocol, ca[0].as_str(), ca[1].as_str()];
            let headers: Vec<String> = s.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            for h in &headers {
                args.extend_from_slice(&["-H", h]);
            }
            let got = fetch("https://api.example.test/", lab.gw.addr, &args);
            let observed = if got.status == 200 {
                Outcome::ServedBy(got.served_by())
            } else {
                Outcome::Status(got.status)
            };
            assert_eq!(observed, s.expected, "{protocol} {}: {got:?}", s.request);
        }
    }
}

#[test]
fn certificates_reload_under_load_and_a_broken_one_keeps_the_last_good() {
    let setup = setup(&[]);
    let (d, echo_addr) = (setup.dir.path(), setup.echo_addr);
    make_leaf(d, "api", "second", "/CN=second", "api.example.test");
    let main = free_addr("127.0.0.1");
    let (cert, key) = (d.join("live.pem"), d.join("live-key.pem"));
    std::fs::copy(d.join("api.pem"), &cert).expect("copy");
    std::fs::copy(d.join("api-key.pem"), &key).expect("copy");
    let listeners = format!(
        "  - name: main\n    address: {main}\n    tls:\n      certificates: [{{ cert: {}, key: {} }}]\n{ROUTES}",
        cert.display(),
        key.display()
    );
    let gw = gateway(&listeners, echo_addr, main);
    assert!(served_certificate(main, Some("api.example.test"))
        .is_some_and(|s| s.contains("api.example.test")));

    // Load: new connections one after another while the certificate changes.
    let stop = Arc::new(AtomicBool::new(false));
    let ca = ca_args(d, "api");
    let load = {
        let stop = stop.clone();
        let ca = ca.clone();
        std::thread::spawn(move || {
            let mut results = Vec::new();
            while !stop.load(Ordering::Relaxed) && results.len() < 400 {
                let got = fetch("https://api.example.test/", main, &[ca[0].as_str(), &ca[1]]);
                results.push(got.status);
            }
            results
        })
    };
    let reloads = |result: &str| {
        gw.metric(&format!(
            "switchyard_config_reloads_total{{result=\"{result}\"}}"
        ))
    };
    std::thread::sleep(Duration::from_millis(500));
    // The key first, then the certificate, a reload apart: the pair is inconsistent in
    // between, which the reload must refuse without harm while the old pair serves.
    let failures_before = reloads("failure");
    replace(&d.join("second-key.pem"), &key);
    wait_metric(
        &gw,
        "switchyard_config_reloads_total{result=\"failure\"}",
        failures_before + 1.0,
    );
    replace(&d.join("second.pem"), &cert);
    let deadline = Instant::now() + IO_TIMEOUT;
    while !served_certificate(main, Some("api.example.test")).is_some_and(|s| s.contains("second"))
    {
        assert!(
            Instant::now() < deadline,
            "the new certificate never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let results = load.join().expect("load thread");
    assert!(results.len() >= 5, "too little load: {results:?}");
    assert!(results.iter().all(|s| *s == 200), "{results:?}");
    assert!(reloads("success") >= 1.0);

    // A broken certificate: the reload fails, is counted, and the last good one serves.
    let failures = reloads("failure");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").expect("write");
    let deadline = Instant::now() + IO_TIMEOUT;
    while reloads("failure") <= failures {
        assert!(
            Instant::now() < deadline,
            "the broken certificate was not refused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        served_certificate(main, Some("api.example.test")).is_some_and(|s| s.contains("second"))
    );
    let ok = fetch("https://api.example.test/", main, &[ca[0].as_str(), &ca[1]]);
    assert_eq!(ok.status, 200, "{ok:?}");
}

/// Replaces `to` with a copy of `from` in one rename, as a secret rotation would.
fn replace(from: &Path, to: &Path) {
    let staged = to.with_extension("new");
    std::fs::copy(from, &staged).expect("copy");
    std::fs::rename(&staged, to).expect("rename");
}

/// Runs `check` on `yaml` written as `gateway.yaml` in `dir`: (exit code, stdout, stderr),
/// with `dir` replaced by `DIR`.
fn check_in(dir: &Path, yaml: &str) -> (Option<i32>, String, String) {
    let config = dir.join("gateway.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let out = run_cli(&["check", "--config", config.to_str().expect("utf-8 path")]);
    let clean = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .replace(&dir.display().to_string(), "DIR")
            .trim()
            .to_owned()
    };
    (out.status.code(), clean(&out.stdout), clean(&out.stderr))
}

#[test]
fn tls_mistakes_are_refused_with_their_field_and_doubts_are_warnings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    make_pki(d, "api", "api.example.test");
    make_pki(d, "other", "other.test");
    std::fs::write(d.join("garbage.pem"), "not a certificate\n").expect("write");
    let config = |tls: &str| {
        format!(
            "backends: [{{ name: app, static: {{ host: 127.0.0.2, port: 30080 }} }}]
listeners:
  - name: main
    address: 127.0.0.1:18443
{tls}
    routes: [{{ name: all, backend: app }}]
"
        )
    };
    let api = "{ cert: api.pem, key: api-key.pem";
    let refused = [
        (
            "    tls:\n      certificates: [{ cert: missing.pem, key: api-key.pem }]".to_owned(),
            "DIR/gateway.yaml:6:24: listeners[0].tls.certificates[0].cert: cannot read DIR/missing.pem: I/O error: No such file",
        ),
        (
            "    tls:\n      certificates: [{ cert: garbage.pem, key: api-key.pem }]".to_owned(),
            "DIR/gateway.yaml:6:24: listeners[0].tls.certificates[0].cert: DIR/garbage.pem holds no PEM certificate",
        ),
        (
            "    tls:\n      certificates: [{ cert: api.pem, key: other-key.pem }]".to_owned(),
            "DIR/gateway.yaml:6:39: listeners[0].tls.certificates[0].key: DIR/other-key.pem is not the key of the certificate in api.pem",
        ),
        (
            format!("    tls:\n      certificates:\n        - {api}, hostnames: [a.test] }}\n        - {api}, hostnames: [b.test, A.test] }}"),
            "DIR/gateway.yaml:8:66: listeners[0].tls.certificates[1].hostnames[1]: overlapping hostnames: `A.test` is listed by certificates[0] too",
        ),
        (
            format!("    tls:\n      certificates: [{api} }}, {api} }}]"),
            "listeners[0].tls.certificates[1].hostnames: certificates[0] is already the default (no hostnames); give this one its hostnames",
        ),
        (
            format!("    h2c: true\n    tls:\n      certificates: [{api} }}]"),
            "DIR/gateway.yaml:5:5: listeners[0].h2c: h2c is for plaintext listeners; on TLS, HTTP/2 is offered by `tls.alpn`",
        ),
        (
            format!("    tls:\n      certificates: [{api} }}]\n      alpn: [h2, h3]"),
            "unknown variant `h3`, expected `h2` or `http/1.1`",
        ),
    ];
    let mut wrong = Vec::new();
    for (tls, expected) in &refused {
        let (code, _, stderr) = check_in(d, &config(tls));
        if code != Some(2) || !stderr.contains(expected) {
            wrong.push(format!("{tls}:\n  got  {stderr}\n  want {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Passes, with what it serves in the summary and its doubts as warnings: every test
    // certificate here expires within two days, and this one does not name b.test.
    let (code, stdout, stderr) = check_in(
        d,
        &config(&format!(
            "    tls:\n      certificates: [{api}, hostnames: [api.example.test, b.test] }}]\n      min_version: '1.3'"
        )),
    );
    assert_eq!(code, Some(0), "{stderr}");
    for expected in [
        "listener main on https://127.0.0.1:18443:",
        "  tls: TLS 1.3 and up",
        "    certificate CN=api.example.test for api.example.test, expires ",
        "warning: DIR/gateway.yaml:6:24: listeners[0].tls.certificates[0].cert: api.pem expires on ",
        "warning: DIR/gateway.yaml:6:87: listeners[0].tls.certificates[0].hostnames[1]: api.pem does not name `b.test`",
    ] {
        assert!(stdout.contains(expected), "summary lacks {expected:?}:\n{stdout}");
    }
}

#[test]
fn a_tls_connection_counts_against_max_connections_from_its_first_byte() {
    let setup = setup(&[]);
    let (d, echo_addr) = (setup.dir.path(), setup.echo_addr);
    let main = free_addr("127.0.0.1");
    let listeners = format!(
        "  - name: main
    address: {main}
    limits: {{ max_connections: 1 }}
    tls:
      certificates: [{{ cert: {}, key: {} }}]
{ROUTES}",
        path(d, "api.pem"),
        path(d, "api-key.pem"),
    );
    let gw = gateway(&listeners, echo_addr, main);
    let ca = ca_args(d, "api");
    let args = [ca[0].as_str(), ca[1].as_str()];

    // A client that has not even started its handshake holds the one slot. (The start-up
    // probe's own connection may still hold it for a moment: then the holder is refused,
    // and tries again.)
    let open_now = |holder: &TcpStream| {
        holder.set_nonblocking(true).expect("nonblocking");
        let open = matches!(
            (&*holder).read(&mut [0u8; 1]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        );
        holder.set_nonblocking(false).expect("blocking");
        open
    };
    let mut attempts = 0;
    let holder = loop {
        attempts += 1;
        assert!(attempts <= 20, "no connection held the one slot");
        let holder = TcpStream::connect(main).expect("connect");
        // Counted, or refused (the gauge may then read 0 once the probe's connection is gone).
        let deadline = Instant::now() + IO_TIMEOUT;
        let counted = loop {
            if gw.metric("switchyard_downstream_connections{listener=\"main\"}") >= 1.0 {
                break true;
            }
            if !open_now(&holder) || Instant::now() >= deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        if counted && open_now(&holder) {
            break holder;
        }
    };
    let refused_before = gw.metric("switchyard_downstream_connections_closed_total{listener=\"main\",reason=\"max_connections\"}",
    );
    let refused = fetch("https://api.example.test/", main, &args);
    assert_eq!(
        refused.status, 0,
        "a second connection was served: {refused:?}"
    );
    assert!(
        !refused.body.contains("HTTP/1.1"),
        "plaintext in a TLS connection"
    );
    wait_metric(
        &gw,
        "switchyard_downstream_connections_closed_total{listener=\"main\",reason=\"max_connections\"}",
        refused_before + 1.0,
    );
    drop(holder);
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        let ok = fetch("https://api.example.test/", main, &args);
        if ok.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot never came back: {ok:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_lets_http2_streams_over_tls_finish() {
    let setup = setup(&[]);
    let (d, echo_addr) = (setup.dir.path(), setup.echo_addr);
    let main = free_addr("127.0.0.1");
    let yaml = format!(
        "server: {{ shutdown_timeout: 10s }}
backends: [{{ name: app, static: {{ host: {}, port: {} }} }}]
listeners:
  - name: main
    address: {main}
    tls:
      certificates: [{{ cert: {}, key: {} }}]
{ROUTES}",
        echo_addr.ip(),
        echo_addr.port(),
        path(d, "api.pem"),
        path(d, "api-key.pem"),
    );
    let mut gw = Gateway::start(&yaml, main, &[]);
    let body = d.join("body.bin");
    std::fs::write(&body, vec![b'x'; 24 * 1024]).expect("write body");
    let ca = ca_args(d, "api");
    let upload = {
        let (body, ca) = (body.clone(), ca.clone());
        std::thread::spawn(move || {
            slow_upload(
                "https://api.example.test/up",
                main,
                &body,
                &["--http2", ca[0].as_str(), &ca[1]],
            )
        })
    };
    // SIGTERM once the upload is surely in flight.
    wait_metric(&gw, "switchyard_requests_in_flight{listener=\"main\"}", 1.0);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gw.proc.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    let done = upload.join().expect("upload thread");
    assert_eq!((done.status, done.version.as_str()), (200, "2"), "{done:?}");
    assert_eq!(done.json()["bodyBytes"], 24 * 1024);
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = gw.proc.child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");
}
