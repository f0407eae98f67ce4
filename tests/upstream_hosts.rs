//! Backends of several hosts over real sockets: weighted round-robin, a retry on another host
//! when a connection fails, passive ejection, active health checks, and requests that must
//! never be sent twice.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A gateway whose one route goes to backend `pool`, built from `pool_yaml` (the backend's
/// fields after its name).
fn gateway(pool_yaml: &str) -> Gateway {
    gateway_with_route(pool_yaml, "")
}

/// [`gateway`], with `route_yaml` added to the route's fields (`, retry: {...}`).
fn gateway_with_route(pool_yaml: &str, route_yaml: &str) -> Gateway {
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        r#"
server: {{ threads: 2 }}
access_log: {{ enabled: false }}
backends:
  - name: pool
{pool_yaml}
listeners:
  - name: main
    address: {listen}
    routes:
      - {{ name: all, backend: pool{route_yaml} }}
"#
    );
    Gateway::start(&yaml, listen, &[])
}

fn hosts_yaml(hosts: &[(SocketAddr, u32)]) -> String {
    let mut yaml = String::from("    static:\n      hosts:\n");
    for (addr, weight) in hosts {
        yaml.push_str(&format!(
            "        - {{ host: {}, port: {}, weight: {weight} }}\n",
            addr.ip(),
            addr.port()
        ));
    }
    yaml
}

/// Who served each of `n` requests, each on a fresh connection.
fn served_by(gw: &Gateway, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let resp = gw.get("/", &[]);
        assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
        *counts.entry(resp.served_by()).or_insert(0) += 1;
    }
    counts
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {limit:?}");
}

/// The series `name` of host `host` of backend `pool`.
fn host_series(name: &str, host: SocketAddr) -> String {
    format!(r#"{name}{{backend="pool",host="{host}"}}"#)
}

fn metrics(gw: &Gateway) -> String {
    String::from_utf8_lossy(&gw.admin_get("/metrics").body).into_owned()
}

#[test]
fn hosts_share_traffic_by_weight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (free_addr("127.0.0.2"), free_addr("127.0.0.3"));
    let _ea = echo(a, "a", dir.path());
    let _eb = echo(b, "b", dir.path());
    let gw = gateway(&hosts_yaml(&[(a, 3), (b, 1)]));

    let counts = served_by(&gw, 200);
    assert_eq!(counts.get("a"), Some(&150), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&50), "{counts:?}");
    let m = metrics(&gw);
    let healthy = sample(&m, &host_series("switchyard_backend_host_healthy", a));
    assert_eq!(healthy, Some(1.0), "{m}");
}

#[test]
fn a_refused_connection_is_retried_on_another_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = free_addr("127.0.0.2");
    let dead = free_addr("127.0.0.3"); // nothing listens here
    let _e = echo(live, "live", dir.path());
    let gw = gateway(&format!(
        "{}    outlier_detection: {{ consecutive_failures: 0 }}\n",
        hosts_yaml(&[(live, 1), (dead, 1)])
    ));

    // Passive ejection is off, so round-robin keeps sending first attempts to the dead host.
    let counts = served_by(&gw, 20);
    assert_eq!(counts.get("live"), Some(&20), "{counts:?}");
    let m = metrics(&gw);
    let retries = sample(
        &m,
        r#"switchyard_upstream_retries_total{backend="pool",reason="connect_failure"}"#,
    )
    .expect("retries counted");
    let failures = sample(
        &m,
        &host_series("switchyard_backend_host_failures_total", dead),
    );
    assert!(retries >= 5.0, "{m}");
    assert_eq!(
        failures,
        Some(retries),
        "one retry per refused connection: {m}"
    );
    let ejected = sample(&m, &host_series("switchyard_backend_host_ejected", dead));
    assert_eq!(ejected, Some(0.0), "ejection is off: {m}");
}

#[test]
fn connect_retries_zero_answers_502_without_trying_another_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = free_addr("127.0.0.2");
    let dead = free_addr("127.0.0.3");
    let _e = echo(live, "live", dir.path());
    let gw = gateway(&format!(
        "{}    connect_retries: 0\n    outlier_detection: {{ consecutive_failures: 0 }}\n",
        hosts_yaml(&[(live, 1), (dead, 1)])
    ));
    let statuses: Vec<u16> = (0..10).map(|_| gw.get("/", &[]).status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 502).count(),
        5,
        "{statuses:?}"
    );
}

/// When a request finished, and its status or why it got none.
type Outcome = (Instant, Result<u16, String>);

/// Load from `threads` clients, each request on a fresh connection, until `stop`. Returns
/// the statuses seen, in order, per client, and whether any connection failed outright.
fn load(
    addr: SocketAddr,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<Vec<Outcome>>> {
    (0..threads)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) && seen.len() < 5_000 {
                    let outcome = try_request(addr, "GET", "/", &[])
                        .map(|r| r.status)
                        .map_err(|e| e.to_string());
                    seen.push((Instant::now(), outcome));
                }
                seen
            })
        })
        .collect()
}

#[test]
fn a_host_dying_under_load_is_ejected_and_clients_see_no_errors_after() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b, c) = (
        free_addr("127.0.0.2"),
        free_addr("127.0.0.3"),
        free_addr("127.0.0.4"),
    );
    let _ea = echo(a, "a", dir.path());
    let eb = echo(b, "b", dir.path());
    let _ec = echo(c, "c", dir.path());
    let gw = gateway(&format!(
        "{}    outlier_detection: {{ consecutive_failures: 3, ejection_time: 2s }}\n",
        hosts_yaml(&[(a, 1), (b, 1), (c, 1)])
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(gw.addr, 4, stop.clone());
    thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    drop(eb);
    wait_until("host b ejected", Duration::from_secs(5), || {
        sample(
            &metrics(&gw),
            &host_series("switchyard_backend_host_ejected", b),
        ) == Some(1.0)
    });
    let ejected_at = Instant::now();
    thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);

    let mut total = 0;
    for client in clients {
        for (at, outcome) in client.join().expect("client thread") {
            total += 1;
            match outcome {
                Ok(200) => {}
                // Only what was on its way to b when it died may fail, and only as a 502/503.
                Ok(502 | 503) if at < ejected_at && at >= killed_at => {}
                other => panic!("request at {:?} after the kill: {other:?}", at - killed_at),
            }
        }
    }
    assert!(total > 100, "the load ran: {total} requests");

    // After the ejection time, b (back again) takes its share without anyone's help.
    let _eb = echo(b, "b", dir.path());
    wait_until("b serves again", Duration::from_secs(10), || {
        served_by(&gw, 6).contains_key("b")
    });
    let m = metrics(&gw);
    assert_eq!(
        sample(
            &m,
            &host_series("switchyard_backend_host_ejections_total", b)
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn active_health_checks_take_a_host_out_and_bring_it_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (free_addr("127.0.0.2"), free_addr("127.0.0.3"));
    let _ea = echo(a, "a", dir.path());
    let eb = echo(b, "b", dir.path());
    let gw = gateway(&format!(
        "{}    outlier_detection: {{ consecutive_failures: 0 }}
    health_check: {{ path: /healthz, interval: 200ms, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2 }}\n",
        hosts_yaml(&[(a, 1), (b, 1)])
    ));
    let healthy = |gw: &Gateway| {
        sample(
            &metrics(gw),
            &host_series("switchyard_backend_host_healthy", b),
        )
    };
    wait_until("probes pass", Duration::from_secs(5), || {
        sample(
            &metrics(&gw),
            &format!(
                r#"switchyard_backend_host_health_checks_total{{backend="pool",host="{b}",result="passed"}}"#
            ),
        )
        .is_some_and(|n| n >= 2.0)
    });
    assert_eq!(healthy(&gw), Some(1.0));

    drop(eb);
    wait_until("b marked unhealthy", Duration::from_secs(5), || {
        healthy(&gw) == Some(0.0)
    });
    // No request goes to b now: not even a first attempt (which the retry would hide), as
    // the retry counter shows.
    let counts = served_by(&gw, 20);
    assert_eq!(counts.get("a"), Some(&20), "{counts:?}");
    let m = metrics(&gw);
    assert_eq!(
        sample(
            &m,
            r#"switchyard_upstream_retries_total{backend="pool",reason="connect_failure"}"#
        )
        .unwrap_or(0.0),
        0.0,
        "{m}"
    );

    let _eb = echo(b, "b", dir.path());
    wait_until("b healthy again", Duration::from_secs(5), || {
        healthy(&gw) == Some(1.0)
    });
    let counts = served_by(&gw, 20);
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");
}

/// A host that reads one request, counts it, and closes the connection without answering.
fn swallowing_host(addr: SocketAddr) -> Arc<AtomicUsize> {
    let seen = Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind(addr).expect("bind swallowing host");
    let counter = seen.clone();
    thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            if !got.is_empty() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let _ = stream.flush();
            drop(stream);
        }
    });
    seen
}

#[test]
fn a_request_that_reached_a_host_is_never_sent_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let live = free_addr("127.0.0.2");
    let swallow = free_addr("127.0.0.3");
    let _e = echo(live, "live", dir.path());
    let seen = swallowing_host(swallow);
    let gw = gateway(&format!(
        "{}    outlier_detection: {{ consecutive_failures: 0 }}\n",
        hosts_yaml(&[(live, 1), (swallow, 1)])
    ));

    let mut failed = 0;
    for method in ["POST", "GET", "POST", "GET", "POST", "GET"] {
        let resp = request(gw.addr, method, "/", &[("content-length", "0")]);
        match resp.status {
            200 => assert_eq!(resp.served_by(), "live"),
            502 => failed += 1,
            other => panic!("{method}: {other}"),
        }
    }
    // Round-robin sends half to the host that swallows requests; each one it saw came back
    // to the client as a 502, none was sent on to the live host.
    assert_eq!(failed, 3);
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[test]
fn a_backend_that_dies_and_comes_back_under_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = free_addr("127.0.0.2");
    let backend = echo(addr, "only", dir.path());
    let gw = gateway(&format!(
        "    static: {{ host: {}, port: {} }}\n    outlier_detection: {{ consecutive_failures: 3, ejection_time: 500ms }}\n",
        addr.ip(),
        addr.port()
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(gw.addr, 4, stop.clone());
    thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    drop(backend);
    thread::sleep(Duration::from_millis(1000));
    let _backend = echo(addr, "only", dir.path());
    let back_at = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);

    let (mut ok, mut failed, mut ok_after_recovery) = (0, 0, 0);
    for client in clients {
        for (at, outcome) in client.join().expect("client thread") {
            match outcome {
                Ok(200) => {
                    ok += 1;
                    if at > back_at + Duration::from_millis(600) {
                        ok_after_recovery += 1;
                    }
                }
                // Every request is answered; only those meeting the dead backend fail, and
                // they fail as 502/503, never as a dropped or hung connection.
                Ok(502 | 503) => {
                    assert!(
                        at >= killed_at && at <= back_at + Duration::from_millis(600),
                        "a failure outside the outage, {:?} after the kill",
                        at - killed_at
                    );
                    failed += 1;
                }
                other => panic!("{:?} after the kill: {other:?}", at - killed_at),
            }
        }
    }
    assert!(ok > 100 && failed > 0, "ok {ok}, failed {failed}");
    assert!(
        ok_after_recovery > 50,
        "traffic recovered by itself: {ok_after_recovery}"
    );
}

/// A host that answers every request with `status` and closes, counting what it answered;
/// with `reset`, it closes without answering instead.
fn failing_host(ip: &str, status: u16, reset: bool, count: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind(format!("{ip}:0")).expect("bind failing host");
    let addr = listener.local_addr().expect("addr");
    thread::spawn(move || {
        for conn in listener.incoming().take(200) {
            let Ok(mut conn) = conn else { continue };
            let count = count.clone();
            thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                if !reset {
                    let answer = format!(
                        "HTTP/1.1 {status} Failing\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = conn.write_all(answer.as_bytes());
                }
            });
        }
    });
    addr
}

#[test]
fn a_route_retries_listed_failures_on_another_host_and_never_a_post() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = free_addr("127.0.0.2");
    let _good = echo(good, "good", dir.path());
    let unavailable = Arc::new(AtomicUsize::new(0));
    let bad = failing_host("127.0.0.3", 503, false, unavailable.clone());
    let resets = Arc::new(AtomicUsize::new(0));
    let dropping = failing_host("127.0.0.4", 0, true, resets.clone());
    let gw = gateway_with_route(
        &format!(
            "{}    outlier_detection: {{ consecutive_failures: 0 }}\n",
            hosts_yaml(&[(good, 1), (bad, 1), (dropping, 1)])
        ),
        ", retry: { attempts: 2, on: [503, reset], backoff: 10ms }",
    );

    // Whichever host a GET meets first, it is answered by the good one.
    for _ in 0..9 {
        let resp = gw.get("/", &[]);
        assert_eq!(resp.served_by(), "good");
    }
    let (bad_hits, reset_hits) = (
        unavailable.load(Ordering::SeqCst),
        resets.load(Ordering::SeqCst),
    );
    assert!(bad_hits >= 1 && reset_hits >= 1, "{bad_hits} {reset_hits}");
    assert_eq!(
        gw.metric(r#"switchyard_upstream_retries_total{backend="pool",reason="status"}"#),
        bad_hits as f64
    );
    assert_eq!(
        gw.metric(r#"switchyard_upstream_retries_total{backend="pool",reason="reset"}"#),
        reset_hits as f64
    );

    // A POST is never sent twice: the 503 it meets is the answer.
    let before = unavailable.load(Ordering::SeqCst);
    let statuses: Vec<u16> = (0..6)
        .map(|_| request(gw.addr, "POST", "/", &[("content-length", "0")]).status)
        .collect();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert!(refused >= 1, "{statuses:?}");
    assert_eq!(unavailable.load(Ordering::SeqCst) - before, refused);
}

#[test]
fn a_retry_budget_keeps_a_failing_backend_from_a_retry_storm() {
    let hits = Arc::new(AtomicUsize::new(0));
    let bad = failing_host("127.0.0.3", 503, false, hits.clone());
    let gw = gateway_with_route(
        &format!(
            "{}    outlier_detection: {{ consecutive_failures: 0 }}\n    retry_budget: {{ ratio: 0.0, min_per_second: 1 }}\n",
            hosts_yaml(&[(bad, 1)])
        ),
        ", retry: { attempts: 3, on: [5xx], backoff: 1ms }",
    );
    for _ in 0..20 {
        // The backend's own 503 (empty), not one of the gateway's (JSON).
        let resp = gw.get("/", &[]);
        assert_eq!((resp.status, resp.body.len()), (503, 0), "{}", resp.text());
    }
    // Unbounded, 20 requests with 3 retries each would be 80; the budget allows 10 retries a
    // window of 10 s (20 if the run crossed into a second window).
    let total = hits.load(Ordering::SeqCst);
    assert!((30..=40).contains(&total), "{total} attempts");
    assert!(
        gw.metric(r#"switchyard_upstream_retry_budget_exhausted_total{backend="pool"}"#) >= 1.0
    );
}
