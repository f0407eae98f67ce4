//! Proxying over real sockets: what the backend receives, connection reuse, and how dead and
//! slow backends are answered while the rest of the gateway keeps serving.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

/// A gateway with one healthy echo backend (`/`), plus whatever extra backend YAML and routes
/// a test adds in front of the default route.
fn gateway_with(
    extra_backends: &str,
    extra_routes: &str,
    dir: &std::path::Path,
) -> (Gateway, Proc) {
    let echo_addr = free_addr("127.0.0.2");
    let backend = echo(echo_addr, "healthy", dir);
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        r#"
server: {{ threads: 2 }}
backends:
  - {{ name: healthy, static: {{ host: {ip}, port: {port} }} }}
{extra_backends}
listeners:
  - name: main
    address: {listen}
    routes:
{extra_routes}
      - {{ name: default, backend: healthy }}
"#,
        ip = echo_addr.ip(),
        port = echo_addr.port(),
    );
    (Gateway::start(&yaml, listen, &[]), backend)
}

/// A backend that takes connections and never answers: a listener nobody accepts from, so
/// the kernel completes each connection and holds what is sent to it, until dropped.
fn silent_backend(ip: &str) -> TcpListener {
    TcpListener::bind((ip, 0)).expect("bind silent backend")
}

/// [`gateway_with`] plus a backend `silent` (a [`silent_backend`] on 127.0.0.4, with
/// `settings`, the backend's fields after its address) behind the route `/slow`.
fn gateway_to_silent(settings: &str, dir: &std::path::Path) -> (Gateway, Proc, TcpListener) {
    let silent = silent_backend("127.0.0.4");
    let addr = silent.local_addr().expect("addr");
    let (gw, echo) = gateway_with(
        &format!(
            "  - {{ name: silent, static: {{ host: {}, port: {} }}, {settings} }}",
            addr.ip(),
            addr.port()
        ),
        "      - { name: to-silent, matches: [{ path: { value: /slow } }], backend: silent }",
        dir,
    );
    (gw, echo, silent)
}

#[test]
fn backend_sees_host_forwarded_for_and_request_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo) = gateway_with("", "", dir.path());

    let resp = gw.get("/hello?x=1", &[("host", "api.example.com")]);
    let body = resp.json();
    assert_eq!(body["servedBy"], "healthy");
    assert_eq!(body["path"], "/hello?x=1");
    assert_eq!(
        body["headers"]["host"], "api.example.com",
        "client Host passes through"
    );
    assert_eq!(body["headers"]["x-forwarded-for"], "127.0.0.1");
    let id = body["headers"]["x-request-id"]
        .as_str()
        .expect("request id set");
    assert_eq!(id.len(), 36, "a UUID: {id}");

    let resp = gw.get(
        "/",
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-request-id", "trace-abc-123"),
        ],
    );
    let body = resp.json();
    assert_eq!(
        body["headers"]["x-forwarded-for"], "203.0.113.7, 127.0.0.1",
        "the client address is appended"
    );
    assert_eq!(
        body["headers"]["x-request-id"], "trace-abc-123",
        "a sane id is kept"
    );

    let long = "x".repeat(200);
    let body = gw.get("/", &[("x-request-id", &long)]).json();
    assert_ne!(
        body["headers"]["x-request-id"],
        long.as_str(),
        "an oversized id is replaced"
    );
}

#[test]
fn upstream_connections_are_reused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo) = gateway_with("", "", dir.path());

    // The echo reports the address the gateway connected from: the same source port on every
    // request means one pooled upstream connection served them all.
    //
    // pingora puts an upstream connection back in the pool from a task of its own, after the
    // response has gone to the client; a request that follows at once can race it and open a
    // new connection. A short pause after each answer, as between a real client's requests,
    // lets the connection get back first, so on a busy machine the test still asks whether
    // connections are reused rather than how fast.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(50));
    let mut client = Client::connect(gw.addr);
    let sources: Vec<String> = (0..5)
        .map(|_| {
            let body = client.send("GET", "/", &[]).json();
            settle();
            body["client"].as_str().expect("client address").to_owned()
        })
        .collect();
    // The first request may race the pool all the same. From then on one connection serves
    // them all.
    assert!(
        sources[1..].iter().all(|s| s == &sources[1]),
        "upstream connection not reused across keep-alive requests: {sources:?}"
    );

    // A new client connection, served by whichever worker, may pick up a pooled connection too:
    // at most one new upstream connection per worker thread (2) should appear, besides the
    // first request's.
    let mut seen: Vec<String> = sources[..2].to_vec();
    seen.dedup();
    for _ in 0..10 {
        let body = gw.get("/", &[]).json();
        settle();
        let s = body["client"].as_str().expect("client address").to_owned();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    assert!(
        seen.len() <= 4,
        "too many upstream connections for 15 sequential requests: {seen:?}"
    );
}

#[test]
fn refused_backend_is_502_and_others_keep_working() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A port nothing listens on: connections are refused at once.
    let dead = free_addr("127.0.0.3");
    let (gw, _echo) = gateway_with(
        &format!(
            "  - {{ name: dead, static: {{ host: {}, port: {} }} }}",
            dead.ip(),
            dead.port()
        ),
        "      - { name: to-dead, matches: [{ path: { value: /dead } }], backend: dead }",
        dir.path(),
    );

    for _ in 0..3 {
        let resp = gw.get("/dead/x", &[]);
        assert_eq!(resp.status, 502);
        assert_eq!(
            resp.header("connection"),
            Some("close"),
            "the gateway closes after a 502"
        );
        let body = resp.json();
        assert_eq!(body["error"], "upstream_connect_failed");
        assert_eq!(body["route"], "to-dead");
        assert_eq!(body["backend"], "dead");
    }
    assert_eq!(gw.get("/alive", &[]).served_by(), "healthy");
}

#[test]
fn slow_backend_is_504_and_others_keep_working() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo, silent) = gateway_to_silent("read_timeout: 500ms", dir.path());

    // While a request waits on the silent backend, other routes are served without delay.
    let addr = gw.addr;
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let resp = request(addr, "GET", "/slow", &[]);
        (resp, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(gw.get("/fast", &[]).served_by(), "healthy");
    assert!(
        !slow.is_finished(),
        "the healthy route was only served after the slow one timed out"
    );

    let (resp, took) = slow.join().expect("slow request thread");
    assert_eq!(resp.status, 504);
    let body = resp.json();
    assert_eq!(body["error"], "upstream_timeout");
    assert_eq!(body["route"], "to-silent");
    assert_eq!(body["backend"], "silent");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(5),
        "answered after {took:?}, expected about the 500 ms read timeout"
    );

    drop(silent);
}

#[test]
fn no_route_is_404_json_on_a_kept_alive_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let echo_addr = free_addr("127.0.0.2");
    let _echo = echo(echo_addr, "only", dir.path());
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        r#"
backends: [{{ name: only, static: {{ host: {}, port: {} }} }}]
listeners:
  - name: main
    address: {listen}
    routes: [{{ name: api, matches: [{{ path: {{ value: /api }} }}], backend: only }}]
"#,
        echo_addr.ip(),
        echo_addr.port()
    );
    let gw = Gateway::start(&yaml, listen, &[]);
    let mut client = Client::connect(gw.addr);
    let resp = client.send("GET", "/nowhere", &[]);
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["error"], "no_route");
    assert!(
        resp.header("content-length").is_some(),
        "local responses are framed"
    );
    // The same connection still works: the 404 was framed and the connection kept.
    assert_eq!(client.send("GET", "/api/x", &[]).served_by(), "only");
}

#[test]
fn threads_flag_overrides_the_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let echo_addr = free_addr("127.0.0.2");
    let _echo = echo(echo_addr, "t", dir.path());
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        "server: {{ threads: 1 }}\nbackends: [{{ name: t, static: {{ host: {}, port: {} }} }}]\nlisteners: [{{ name: main, address: '{listen}', routes: [{{ name: all, backend: t }}] }}]\n",
        echo_addr.ip(),
        echo_addr.port()
    );
    let gw = Gateway::start(&yaml, listen, &["--threads", "3"]);
    assert_eq!(gw.get("/", &[]).served_by(), "t");
    let log = gw.proc.output();
    assert!(
        log.contains("listener `main` on http://") && log.contains("with 3 worker threads"),
        "startup log does not show the thread count:\n{log}"
    );
}

#[test]
fn an_http10_backends_answer_reaches_an_http11_client_as_http11() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A backend that speaks HTTP/1.0, with a length.
    let old = TcpListener::bind("127.0.0.4:0").expect("bind old backend");
    let old_addr = old.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in old.incoming().take(4) {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match std::io::Read::read(&mut conn, &mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ = std::io::Write::write_all(
                &mut conn,
                b"HTTP/1.0 200 OK\r\ncontent-length: 17\r\n\r\nfrom the old days",
            );
        }
    });
    let (gw, _echo) = gateway_with(
        &format!(
            "  - {{ name: old, static: {{ host: {}, port: {} }} }}",
            old_addr.ip(),
            old_addr.port()
        ),
        "      - { name: to-old, matches: [{ path: { value: /old } }], backend: old }",
        dir.path(),
    );

    let mut client = Client::connect(gw.addr);
    client
        .write_raw(b"GET /old HTTP/1.1\r\nhost: gw\r\n\r\n")
        .expect("send");
    let resp = client.read().expect("answer");
    assert_eq!((resp.version.as_str(), resp.status), ("HTTP/1.1", 200));
    assert_eq!(resp.body, b"from the old days");
    // The connection goes on: the next request on it is answered.
    let next = client.send("GET", "/next", &[]);
    assert_eq!(next.served_by(), "healthy");
}

#[test]
fn a_backend_at_max_requests_answers_503_at_once_and_the_others_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo, silent) = gateway_to_silent(
        "read_timeout: 2s, max_requests: 2, connect_retries: 0",
        dir.path(),
    );
    let in_flight = "switchyard_backend_requests_in_flight{backend=\"silent\"}";

    let addr = gw.addr;
    let waiting: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/slow", &[]).status))
        .collect();
    let deadline = Instant::now() + IO_TIMEOUT;
    while gw.metric(in_flight) < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the two requests never got in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The third is refused at once, with the route and backend named; others are served.
    let started = Instant::now();
    let refused = gw.get("/slow", &[]);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refused.status, 503);
    let body = refused.json();
    assert_eq!(body["error"], "upstream_overloaded");
    assert_eq!(body["backend"], "silent");
    assert_eq!(body["route"], "to-silent");
    assert_eq!(gw.get("/fast", &[]).served_by(), "healthy");
    assert_eq!(
        gw.metric("switchyard_upstream_failures_total{backend=\"silent\",kind=\"overloaded\"}"),
        1.0
    );

    // The two end (504 at the read timeout) and give their places back.
    for w in waiting {
        assert_eq!(w.join().expect("request thread"), 504);
    }
    let deadline = Instant::now() + IO_TIMEOUT;
    while gw.metric(in_flight) > 0.0 {
        assert!(Instant::now() < deadline, "places never given back");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(silent);
}

/// A backend that sends its response header at once, then a 5-byte chunk every 300 ms, ten
/// of them, then the end: about 3 s in all.
fn trickling_backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.4:0").expect("bind trickling backend");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().take(4) {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut conn, &mut buf);
                let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                if std::io::Write::write_all(&mut conn, head).is_err() {
                    return;
                }
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(300));
                    if std::io::Write::write_all(&mut conn, b"5\r\nhello\r\n").is_err() {
                        return;
                    }
                }
                let _ = std::io::Write::write_all(&mut conn, b"0\r\n\r\n");
            });
        }
    });
    addr
}

#[test]
fn route_timeouts_bound_the_whole_exchange_and_each_attempt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trickle = trickling_backend();
    let silent = silent_backend("127.0.0.5");
    let silent_addr = silent.local_addr().expect("addr");
    let (gw, _echo) = gateway_with(
        &format!(
            "  - {{ name: trickle, static: {{ host: {}, port: {} }} }}\n  - {{ name: silent, static: {{ host: {}, port: {} }} }}",
            trickle.ip(),
            trickle.port(),
            silent_addr.ip(),
            silent_addr.port()
        ),
        "      - { name: whole, matches: [{ path: { value: /whole } }], backend: trickle, timeouts: { request: 1s } }
      - { name: unbounded, matches: [{ path: { value: /unbounded } }], backend: trickle }
      - { name: attempt, matches: [{ path: { value: /attempt } }], backend: silent, timeouts: { request: 5s, backend_request: 500ms } }",
        dir.path(),
    );

    // The whole exchange: the response had begun, so it is cut off at 1 s, unfinished.
    let started = Instant::now();
    let mut conn = std::net::TcpStream::connect(gw.addr).expect("connect");
    conn.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    std::io::Write::write_all(&mut conn, b"GET /whole HTTP/1.1\r\nhost: gw\r\n\r\n").expect("send");
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut got);
    let took = started.elapsed();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        !got.ends_with("0\r\n\r\n"),
        "the response was not cut off: {got}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "cut off after {took:?}"
    );
    // Without timeouts, the same backend's response arrives whole.
    let whole = request(gw.addr, "GET", "/unbounded", &[]);
    assert_eq!(whole.body, b"hello".repeat(10));

    // One attempt: the silent backend's 30 s read timeout gives way to the route's 500 ms.
    let started = Instant::now();
    let resp = gw.get("/attempt", &[]);
    let took = started.elapsed();
    assert_eq!(resp.status, 504);
    assert_eq!(resp.json()["error"], "upstream_timeout");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "answered after {took:?}"
    );
    let metrics = String::from_utf8_lossy(&gw.admin_get("/metrics").body).into_owned();
    assert!(
        sample(
            &metrics,
            "switchyard_upstream_failures_total{backend=\"trickle\",kind=\"route_timeout\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    drop(silent);
}

/// A backend that answers every request with `size` bytes, written as fast as the gateway
/// takes them.
fn bulk_backend(size: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.6:0").expect("bind bulk backend");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().take(8) {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut conn, &mut buf);
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n");
                if std::io::Write::write_all(&mut conn, head.as_bytes()).is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut sent = 0;
                while sent < size {
                    let n = chunk.len().min(size - sent);
                    if std::io::Write::write_all(&mut conn, &chunk[..n]).is_err() {
                        return;
                    }
                    sent += n;
                }
            });
        }
    });
    addr
}

#[test]
fn slow_readers_of_big_answers_hold_little_memory_and_others_keep_their_latency() {
    let dir = tempfile::tempdir().expect("temp dir");
    let size = 64 * 1024 * 1024;
    let bulk = bulk_backend(size);
    let (gw, _echo) = gateway_with(
        &format!(
            "  - {{ name: bulk, static: {{ host: {}, port: {} }} }}",
            bulk.ip(),
            bulk.port()
        ),
        "      - { name: to-bulk, matches: [{ path: { value: /bulk } }], backend: bulk }",
        dir.path(),
    );
    // One whole answer first, so that what the first use allocates is not counted below.
    let whole = request(gw.addr, "GET", "/fast", &[]);
    assert_eq!(whole.status, 200);
    let before = rss_bytes(gw.proc.child.id());

    // Four clients ask for 64 MiB each and read none of it for now: the gateway must not
    // buffer what they do not take (256 MiB in all).
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut conn = std::net::TcpStream::connect(gw.addr).expect("connect");
        std::io::Write::write_all(&mut conn, b"GET /bulk HTTP/1.1\r\nhost: gw\r\n\r\n")
            .expect("send");
        stalled.push(conn);
    }
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(gw.get("/fast", &[]).served_by(), "healthy");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a normal request took {:?}",
            started.elapsed()
        );
    }
    let growth = rss_bytes(gw.proc.child.id()).saturating_sub(before);
    assert!(
        growth < 32 * 1024 * 1024,
        "resident memory grew by {} MiB",
        growth / (1024 * 1024)
    );

    // A reader that does take its answer gets all of it.
    let mut reader = stalled.pop().expect("a connection");
    reader.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    while got < size {
        match std::io::Read::read(&mut reader, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got >= size, "read {got} bytes");
}

#[test]
fn an_answer_under_way_is_never_retried() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trickle = trickling_backend();
    let (gw, _echo) = gateway_with(
        &format!(
            "  - {{ name: trickle, static: {{ host: {}, port: {} }} }}",
            trickle.ip(),
            trickle.port()
        ),
        "      - { name: retried, matches: [{ path: { value: /r } }], backend: trickle, timeouts: { backend_request: 1s }, retry: { attempts: 2, on: [gateway-error, reset, 5xx] } }",
        dir.path(),
    );
    let started = Instant::now();
    let mut conn = std::net::TcpStream::connect(gw.addr).expect("connect");
    conn.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    std::io::Write::write_all(&mut conn, b"GET /r HTTP/1.1\r\nhost: gw\r\n\r\n").expect("send");
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut conn, &mut got);
    let got = String::from_utf8_lossy(&got);
    // One answer, cut off when the attempt's time ran out: no second attempt's answer
    // spliced after it.
    assert_eq!(got.matches("HTTP/1.1 200").count(), 1, "{got}");
    assert!(!got.ends_with("0\r\n\r\n"), "{got}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    let metrics = String::from_utf8_lossy(&gw.admin_get("/metrics").body).into_owned();
    assert!(
        !metrics.contains("switchyard_upstream_retries_total{backend=\"trickle\""),
        "{metrics}"
    );
}

#[test]
fn connection_slots_let_a_bounded_line_wait_and_refuse_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo, silent) = gateway_to_silent("read_timeout: 3s, connect_timeout: 1s, max_connections: 1, max_pending: 1, connect_retries: 0", dir.path());
    let in_flight = "switchyard_backend_requests_in_flight{backend=\"silent\"}";
    let addr = gw.addr;
    // The first holds the one slot (the backend never answers: 504 after 3 s).
    let first = std::thread::spawn(move || request(addr, "GET", "/slow", &[]).status);
    let deadline = Instant::now() + IO_TIMEOUT;
    while gw.metric(in_flight) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the first request never got in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The second waits in line for up to connect_timeout (1 s), then gives up.
    let second = std::thread::spawn(move || {
        let started = Instant::now();
        let resp = request(addr, "GET", "/slow", &[]);
        (resp.status, resp.json()["error"].clone(), started.elapsed())
    });
    while gw.metric(in_flight) < 2.0 {
        assert!(Instant::now() < deadline, "the second request never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The third finds the line full: refused at once.
    let started = Instant::now();
    let third = gw.get("/slow", &[]);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (third.status, third.json()["error"].as_str()),
        (503, Some("upstream_overloaded"))
    );
    assert_eq!(gw.get("/fast", &[]).served_by(), "healthy");

    let (status, error, waited) = second.join().expect("second");
    assert_eq!((status, error.as_str()), (503, Some("upstream_overloaded")));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
        "waited {waited:?}"
    );
    assert_eq!(first.join().expect("first"), 504);
    drop(silent);
}
