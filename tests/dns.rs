//! Backends given by name, resolved while the gateway runs, against a DNS server on loopback
//! that each test controls: records that change under load, lookups that fail, names that
//! do not exist, a gateway that starts before its names resolve, and `check` offline.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::dns::{DnsServer, Reply};
use common::idp::{Answer, Idp, Published};
use common::*;

const NAME: &str = "api.test";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// The resolver settings of every test: the test's server, refresh as often as allowed.
fn dns_yaml(dns: &DnsServer) -> String {
    format!(
        "server: {{ threads: 2, dns: {{ servers: ['{}'], min_refresh: 100ms, max_refresh: 2s, timeout: 300ms }} }}",
        dns.addr
    )
}

/// A gateway whose route `named` goes to backend `api` (`NAME` on `port`) and route `fixed`
/// (`/fixed...`) to backend `fixed` at `fixed`.
fn gateway(dns: &DnsServer, port: u16, fixed: SocketAddr) -> Gateway {
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        r#"
{server}
access_log: {{ enabled: false }}
backends:
  - {{ name: api, static: {{ host: {NAME}, port: {port} }}, connect_timeout: 2s }}
  - {{ name: fixed, static: {{ host: {fixed_ip}, port: {fixed_port} }} }}
listeners:
  - name: main
    address: {listen}
    routes:
      - {{ name: fixed, matches: [{{ path: {{ type: PathPrefix, value: /fixed }} }}], backend: fixed }}
      - {{ name: named, backend: api }}
"#,
        server = dns_yaml(dns),
        fixed_ip = fixed.ip(),
        fixed_port = fixed.port(),
    );
    Gateway::start(&yaml, listen, &[])
}

/// A DNS server answering `first` for `NAME`, an echo app `a` at the name's address and port,
/// another (`fixed`) behind a route given by address, and the gateway over them.
struct Setup {
    dns: DnsServer,
    a: SocketAddr,
    gw: Gateway,
    _apps: [Proc; 2],
    _dir: tempfile::TempDir,
}

fn setup(first: Reply) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let dns = DnsServer::start();
    let a = free_addr("127.0.0.2");
    let echo_a = echo(a, "a", dir.path());
    let fixed = free_addr("127.0.0.4");
    let echo_fixed = echo(fixed, "fixed", dir.path());
    dns.set(NAME, first);
    let gw = gateway(&dns, a.port(), fixed);
    Setup {
        dns,
        a,
        gw,
        _apps: [echo_a, echo_fixed],
        _dir: dir,
    }
}

fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return start.elapsed();
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("{what}: not within {limit:?}");
}

/// Clients sending requests on kept-alive connections until stopped, counting who served
/// each and every failure: a status other than 200, or a broken connection.
struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<Mutex<HashMap<String, u64>>>,
    failures: Arc<Mutex<Vec<String>>>,
    sent: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(HashMap::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, served, failures, sent) =
                    (stop.clone(), served.clone(), failures.clone(), sent.clone());
                thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    // Bounded: a few thousand requests at most, whatever happens.
                    for _ in 0..20_000 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        sent.fetch_add(1, Ordering::Relaxed);
                        match client.try_send("GET", "/", &[]) {
                            Ok(resp) if resp.status == 200 => {
                                *served
                                    .lock()
                                    .expect("counts")
                                    .entry(resp.served_by())
                                    .or_insert(0) += 1;
                            }
                            Ok(resp) => {
                                failures.lock().expect("failures").push(format!(
                                    "{}: {}",
                                    resp.status,
                                    resp.text()
                                ));
                            }
                            Err(e) => {
                                failures.lock().expect("failures").push(e.to_string());
                                client = Client::connect(addr);
                            }
                        }
                        thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Load {
            stop,
            served,
            failures,
            sent,
            threads,
        }
    }

    fn served_by(&self, name: &str) -> u64 {
        self.served
            .lock()
            .expect("counts")
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn reset(&self) {
        self.served.lock().expect("counts").clear();
    }

    /// Stops the clients; what they saw: (requests sent, failures).
    fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("a load thread");
        }
        let failures = self.failures.lock().expect("failures").clone();
        (self.sent.load(Ordering::Relaxed), failures)
    }
}

#[test]
fn traffic_follows_the_records_under_load_with_no_failed_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dns = DnsServer::start();
    let port = free_port("127.0.0.2");
    let (a, b) = (
        SocketAddr::new(ip("127.0.0.2"), port),
        SocketAddr::new(ip("127.0.0.3"), port),
    );
    let _ea = echo(a, "a", dir.path());
    let _eb = echo(b, "b", dir.path());
    let fixed = free_addr("127.0.0.4");
    let _ef = echo(fixed, "fixed", dir.path());
    dns.set(NAME, Reply::Addresses(vec![a.ip()], 1));
    let gw = gateway(&dns, port, fixed);

    let load = Load::start(gw.addr, 4);
    eventually(Duration::from_secs(10), "a serves", || {
        load.served_by("a") > 20
    });

    // A second record joins: both addresses take traffic, within the TTL and a refresh.
    dns.set(NAME, Reply::Addresses(vec![a.ip(), b.ip()], 1));
    let joined = eventually(Duration::from_secs(5), "b joins", || {
        load.served_by("b") > 0
    });
    assert!(
        joined < Duration::from_millis(2500),
        "joined after {joined:?}"
    );
    load.reset();
    eventually(Duration::from_secs(5), "both serve", || {
        load.served_by("a") > 50 && load.served_by("b") > 50
    });

    // The first record goes: no new request reaches it, within the TTL and a refresh.
    dns.set(NAME, Reply::Addresses(vec![b.ip()], 1));
    let changed = Instant::now();
    thread::sleep(Duration::from_millis(2500));
    load.reset();
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        load.served_by("a"),
        0,
        "a left the set {:?} ago",
        changed.elapsed()
    );
    assert!(load.served_by("b") > 20);

    let (sent, failures) = load.finish();
    assert!(sent > 500, "only {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} failed: {failures:?}",
        failures.len()
    );

    let labels = r#"backend="api""#;
    assert_eq!(
        gw.metric(&format!("switchyard_backend_addresses{{{labels}}}")),
        1.0
    );
    assert!(
        gw.metric(&format!(
            r#"switchyard_dns_resolutions_total{{{labels},result="addresses"}}"#
        )) >= 3.0
    );
    let healthy = format!(r#"switchyard_backend_host_healthy{{{labels},host="{NAME}@{b}"}}"#);
    assert_eq!(gw.metric(&healthy), 1.0);
    let last = gw.metric(&format!(
        "switchyard_dns_last_success_timestamp_seconds{{{labels}}}"
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs_f64();
    assert!((now - last).abs() < 10.0, "last success {last}, now {now}");
}

#[test]
fn a_failed_lookup_keeps_the_addresses_and_nxdomain_empties_the_backend() {
    let Setup {
        dns,
        a,
        gw,
        _apps,
        _dir,
    } = setup(Reply::Addresses(vec![ip("127.0.0.2")], 1));
    assert_eq!(gw.get("/", &[]).served_by(), "a");

    let failed = r#"switchyard_dns_resolutions_total{backend="api",result="failed"}"#;
    // SERVFAIL, then no answer at all: the last good address keeps serving.
    for reply in [Reply::ServFail, Reply::Silent] {
        let before = gw.metric(failed);
        dns.set(NAME, reply);
        eventually(Duration::from_secs(6), "a failed lookup", || {
            gw.metric(failed) > before
        });
        for _ in 0..5 {
            let resp = gw.get("/", &[]);
            assert_eq!(resp.status, 200, "{}", resp.text());
            assert_eq!(resp.served_by(), "a");
        }
    }

    // The name is gone: its requests get 503 upstream_unresolved, the other route serves.
    dns.set(NAME, Reply::NxDomain);
    eventually(Duration::from_secs(6), "the backend empties", || {
        gw.get("/", &[]).status == 503
    });
    let resp = gw.get("/", &[]);
    let body = resp.json();
    assert_eq!(body["error"], "upstream_unresolved", "{body}");
    assert_eq!(body["backend"], "api");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("has no address records")),
        "{body}"
    );
    assert_eq!(gw.get("/fixed", &[]).served_by(), "fixed");
    assert_eq!(
        gw.metric(r#"switchyard_backend_addresses{backend="api"}"#),
        0.0
    );
    assert!(
        gw.metric(r#"switchyard_upstream_failures_total{backend="api",kind="unresolved"}"#) >= 1.0
    );

    // Back again, within the lookup's backoff (capped at max_refresh, 2 s here).
    dns.set(NAME, Reply::Addresses(vec![a.ip()], 1));
    eventually(Duration::from_secs(6), "the name resolves again", || {
        gw.get("/", &[]).status == 200
    });
}

#[test]
fn the_gateway_starts_before_its_names_resolve() {
    // The name's server does not answer at first.
    let Setup {
        dns,
        a,
        gw,
        _apps,
        _dir,
    } = setup(Reply::Silent);

    // Serving from the start; ready, as no filter needs the backend.
    assert_eq!(gw.get("/fixed", &[]).served_by(), "fixed");
    let ready = gw.admin_get("/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    let started = Instant::now();
    let resp = gw.get("/", &[]);
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.json()["error"], "upstream_unresolved");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the 503 took {:?}",
        started.elapsed()
    );

    dns.set(NAME, Reply::Addresses(vec![a.ip()], 30));
    eventually(Duration::from_secs(6), "the name resolves", || {
        gw.get("/", &[]).status == 200
    });
    assert!(dns.queries(NAME) >= 2);
}

#[test]
fn a_key_provider_behind_a_name_holds_readiness_until_it_resolves() {
    let dns = DnsServer::start();
    let app = free_addr("127.0.0.2");
    let dir = tempfile::tempdir().expect("temp dir");
    let _app = echo(app, "app", dir.path());
    let idp_addr = free_addr("127.0.0.6");
    let jwks = std::fs::read_to_string(repo_root().join("tests/keys/jwks.json")).expect("jwks");
    let _idp = Idp::start_plain(idp_addr, Published::new(Answer::jwks(&jwks, 3600)));
    dns.set("idp.test", Reply::NxDomain);
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        r#"
{server}
access_log: {{ enabled: false }}
backends:
  - {{ name: app, static: {{ host: {app_ip}, port: {app_port} }} }}
  - {{ name: idp, static: {{ host: idp.test, port: {idp_port} }}, connect_timeout: 1s }}
listeners:
  - name: main
    address: {listen}
    filters:
      pre_routing:
        - name: jwt_authn
          config:
            mode: optional
            providers:
              - name: idp
                issuer: https://idp.test
                jwks:
                  remote: {{ backend: idp, path: /jwks.json, min_refresh: 1s, fetch_timeout: 2s }}
    routes: [{{ name: all, backend: app }}]
"#,
        server = dns_yaml(&dns),
        app_ip = app.ip(),
        app_port = app.port(),
        idp_port = idp_addr.port(),
    );
    let gw = Gateway::start(&yaml, listen, &[]);

    eventually(Duration::from_secs(10), "a failed fetch", || {
        gw.admin_get("/readyz")
            .text()
            .contains("`idp.test` has no address records")
    });
    let ready = gw.admin_get("/readyz");
    assert_eq!(ready.status, 503);

    dns.set("idp.test", Reply::Addresses(vec![idp_addr.ip()], 30));
    eventually(
        Duration::from_secs(15),
        "ready once the name resolves",
        || gw.admin_get("/readyz").status == 200,
    );
}

#[test]
fn check_warns_of_a_name_that_does_not_resolve_and_resolve_makes_it_an_error() {
    let dns = DnsServer::start();
    dns.set("good.test", Reply::Addresses(vec![ip("127.0.0.2")], 30));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("gateway.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
{server}
backends:
  - {{ name: good, static: {{ host: good.test, port: 8080 }} }}
  - {{ name: gone, static: {{ host: gone.test, port: 8080 }} }}
listeners:
  - name: main
    address: 127.0.0.1:1
    routes:
      - {{ name: one, matches: [{{ path: {{ type: PathPrefix, value: /one }} }}], backend: good }}
      - {{ name: two, backend: gone }}
"#,
            server = dns_yaml(&dns)
        ),
    )
    .expect("write config");
    let path = config.to_str().expect("utf-8 path");

    let out = run_cli(&["check", "--config", path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("good = good.test:8080 (resolves to 127.0.0.2 now)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("gone = gone.test:8080 (does not resolve now)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "warning: backend `gone`: `gone.test` does not resolve from here: it has no address records"
        ),
        "{stdout}"
    );

    let out = run_cli(&["check", "--resolve", "--config", path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`gone.test` does not resolve from here") && stderr.contains(path),
        "{stderr}"
    );
    assert!(!stderr.contains("good.test"), "{stderr}");
}

#[test]
fn a_name_is_looked_up_again_as_its_ttl_says_within_the_bounds() {
    let Setup {
        dns,
        a,
        gw,
        _apps,
        _dir,
    } = setup(Reply::Addresses(vec![ip("127.0.0.2")], 1));
    assert_eq!(gw.get("/", &[]).served_by(), "a");
    let lookups =
        || gw.metric(r#"switchyard_dns_resolutions_total{backend="api",result="addresses"}"#);

    // Lookups over 3 s for each TTL: (TTL, fewest, most). A TTL of 0 is held to min_refresh
    // (100 ms), one of an hour to max_refresh (2 s).
    for (ttl, fewest, most) in [(1, 2.0, 4.0), (0, 15.0, 31.0), (3600, 1.0, 3.0)] {
        dns.set(NAME, Reply::Addresses(vec![a.ip()], ttl));
        // The answer of the previous TTL may still be waiting out its refresh.
        thread::sleep(Duration::from_millis(2200));
        let before = lookups();
        thread::sleep(Duration::from_secs(3));
        let made = lookups() - before;
        assert!(
            (fewest..=most).contains(&made),
            "TTL {ttl}: {made} lookups in 3 s, expected {fewest} to {most}"
        );
    }
}
