//! TLS to backends: the certificate is verified against the configured CA (or the system's
//! roots) and the SNI name; anything else is a 502, and the rest of the gateway keeps serving.
//! Certificates come from a test CA made here with the openssl command.

mod common;

use std::path::Path;
use std::process::Command;

use common::pki::make_pki;
use common::*;

fn tls_echo(addr: std::net::SocketAddr, dir: &Path, name: &str, client_ca: Option<&str>) -> Proc {
    let log = dir.join(format!("echo-{name}.log"));
    let file = std::fs::File::create(&log).expect("log");
    let cert = dir.join("server.pem");
    let key = dir.join("server-key.pem");
    let mut args = vec![
        "echo".to_owned(),
        "--listen".to_owned(),
        addr.to_string(),
        "--name".to_owned(),
        name.to_owned(),
        "--tls-cert".to_owned(),
        cert.display().to_string(),
        "--tls-key".to_owned(),
        key.display().to_string(),
    ];
    if let Some(ca) = client_ca {
        args.push("--tls-client-ca".to_owned());
        args.push(dir.join(ca).display().to_string());
    }
    let mut child = Command::new(BIN)
        .args(&args)
        .stdout(file.try_clone().expect("clone"))
        .stderr(file)
        .spawn()
        .expect("spawn echo");
    wait_for_port(addr, &mut child);
    Proc { child, log }
}

#[test]
fn verified_tls_backends_and_the_failures() {
    let dir = tempfile::tempdir().expect("temp dir");
    make_pki(dir.path(), "server", "backend.test");
    make_pki(dir.path(), "other", "backend.test");
    let tls_addr = free_addr("127.0.0.5");
    let _tls = tls_echo(tls_addr, dir.path(), "secure", None);
    let plain_addr = free_addr("127.0.0.2");
    let _plain = echo(plain_addr, "plain", dir.path());
    let listen = free_addr("127.0.0.1");
    let ca = dir.path().join("server-ca.pem");
    let wrong_ca = dir.path().join("other-ca.pem");
    let (ip, port) = (tls_addr.ip(), tls_addr.port());
    let yaml = format!(
        r#"
access_log: {{ enabled: false }}
backends:
  - {{ name: secure, static: {{ host: {ip}, port: {port} }}, tls: {{ sni: backend.test, ca_file: {ca} }} }}
  - {{ name: wrong-ca, static: {{ host: {ip}, port: {port} }}, tls: {{ sni: backend.test, ca_file: {wrong_ca} }} }}
  - {{ name: wrong-name, static: {{ host: {ip}, port: {port} }}, tls: {{ sni: other.test, ca_file: {ca} }} }}
  - {{ name: system-roots, static: {{ host: {ip}, port: {port} }}, tls: {{ sni: backend.test }} }}
  - {{ name: plain, static: {{ host: {pip}, port: {pport} }} }}
listeners:
  - name: main
    address: {listen}
    routes:
      - {{ name: secure, matches: [{{ path: {{ value: /secure }} }}], backend: secure }}
      - {{ name: wrong-ca, matches: [{{ path: {{ value: /wrong-ca }} }}], backend: wrong-ca }}
      - {{ name: wrong-name, matches: [{{ path: {{ value: /wrong-name }} }}], backend: wrong-name }}
      - {{ name: system-roots, matches: [{{ path: {{ value: /system-roots }} }}], backend: system-roots }}
      - {{ name: plain, backend: plain }}
"#,
        ca = ca.display(),
        wrong_ca = wrong_ca.display(),
        pip = plain_addr.ip(),
        pport = plain_addr.port(),
    );
    let gw = Gateway::start(&yaml, listen, &[]);

    let body = gw.get("/secure/x", &[("host", "api.example.com")]).json();
    assert_eq!(body["servedBy"], "secure");
    assert_eq!(body["headers"]["host"], "api.example.com");

    for (path, backend) in [
        ("/wrong-ca", "wrong-ca"),
        ("/wrong-name", "wrong-name"),
        ("/system-roots", "system-roots"),
    ] {
        let resp = gw.get(path, &[]);
        assert_eq!(
            resp.status,
            502,
            "{path}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        let body = resp.json();
        assert_eq!(body["error"], "upstream_tls_failed", "{path}");
        assert_eq!(body["backend"], backend);
    }
    assert_eq!(gw.get("/", &[]).served_by(), "plain");
    assert_eq!(
        gw.get("/secure", &[]).served_by(),
        "secure",
        "good TLS still works"
    );

    let metrics = String::from_utf8_lossy(&gw.admin_get("/metrics").body).into_owned();
    assert!(
        metrics.contains(
            r#"switchyard_upstream_failures_total{backend="wrong-ca",kind="tls_failed"} 1"#
        ),
        "{metrics}"
    );
}

#[test]
fn tls_config_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let check = |tls: &str| {
        let path = dir.path().join("gateway.yaml");
        std::fs::write(
            &path,
            format!("backends:\n  - name: b\n    static: {{ host: 127.0.0.5, port: 443 }}\n    tls: {tls}\nlisteners: [{{ name: l, address: '127.0.0.1:18443', routes: [{{ name: r, backend: b }}] }}]\n"),
        )
        .expect("write");
        let out = run_cli(&["check", "--config", path.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(2), "{tls} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = check("{}");
    assert!(
        e.contains("backends[0].tls: `sni` is required when static.host is an IP address"),
        "{e}"
    );
    let e = check("{ sni: b.test, ca_file: missing.pem }");
    assert!(
        e.contains("backends[0].tls.ca_file: cannot read CA certificates"),
        "{e}"
    );
    let e = check("{ sni: b.test, client_cert: c.pem }");
    assert!(
        e.contains("`client_cert` and `client_key` go together"),
        "{e}"
    );
}

#[test]
fn client_certificates_for_mutual_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    make_pki(dir.path(), "server", "backend.test");
    // The gateway's client certificate, from a CA the backend trusts for clients.
    make_pki(dir.path(), "client", "gateway.test");
    let addr = free_addr("127.0.0.6");
    let _backend = tls_echo(addr, dir.path(), "mutual", Some("client-ca.pem"));
    let listen = free_addr("127.0.0.1");
    let d = dir.path().display();
    let (ip, port) = (addr.ip(), addr.port());
    let yaml = format!(
        r#"
access_log: {{ enabled: false }}
backends:
  - name: with-cert
    static: {{ host: {ip}, port: {port} }}
    tls: {{ sni: backend.test, ca_file: {d}/server-ca.pem, client_cert: {d}/client.pem, client_key: {d}/client-key.pem }}
  - name: without-cert
    static: {{ host: {ip}, port: {port} }}
    tls: {{ sni: backend.test, ca_file: {d}/server-ca.pem }}
listeners:
  - name: main
    address: {listen}
    routes:
      - {{ name: without, matches: [{{ path: {{ value: /without }} }}], backend: without-cert }}
      - {{ name: with, backend: with-cert }}
"#
    );
    let gw = Gateway::start(&yaml, listen, &[]);
    assert_eq!(gw.get("/with", &[]).served_by(), "mutual");
    let resp = gw.get("/without", &[]);
    assert_eq!(resp.status, 502, "{}", String::from_utf8_lossy(&resp.body));
    assert_eq!(gw.get("/with", &[]).served_by(), "mutual");
}
