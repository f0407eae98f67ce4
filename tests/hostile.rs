//! What the internet sends, over real sockets: malformed and oversized requests, smuggling
//! attempts, slow and vanishing clients, and more connections than allowed. Each gets a clear
//! answer (or a close), and after each the gateway still serves a normal request.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// The shipped lab (jwt_authn, transformation, the lab's routes) with `limits` on its
/// listener and an `/upload` route that accepts 16 bytes of body.
fn lab(limits: &str) -> Lab {
    common::lab(
        "conf/gateway.yaml",
        &[
            (
                "    filters:\n      # Both run",
                &format!("    limits: {{ {limits} }}\n    filters:\n      # Both run"),
            ),
            (
                "      - name: default\n",
                "      - name: upload\n        matches: [{ path: { type: PathPrefix, value: /upload } }]\n        backend: app-latest\n        max_request_body_bytes: 16\n      - name: default\n",
            ),
        ],
    )
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s
}

/// Writes `bytes` on a fresh connection and returns everything read until the gateway
/// closes it (or the read times out).
fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = raw(addr);
    // The gateway may close as soon as it has seen enough; later writes can fail.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

fn still_serves(lab: &Lab) {
    let resp = lab.gw.get("/alive", &[]);
    assert_eq!(resp.served_by(), "latest");
}

#[test]
fn malformed_requests_get_400_and_the_gateway_goes_on() {
    let lab = lab("");
    let cases: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nhost: x\r\n\r\n",
        b"GET / HTTP/9.9\r\nhost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"GET / HTTP/1.1\r\nx-a: one\rtwo\r\n\r\n",
        b"GET / HTTP/1.1\r\nx-a: nul\0here\r\n\r\n",
        b"GET / HTTP/1.1\r\n\xff\xfe: value\r\n\r\n",
        // Request smuggling: two lengths that disagree.
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
    ];
    for case in cases {
        let answer = exchange(lab.gw.addr, case);
        assert_eq!(
            status_of(&answer),
            400,
            "{:?} got {answer:?}",
            String::from_utf8_lossy(case)
        );
        still_serves(&lab);
    }
}

#[test]
fn a_length_with_chunked_encoding_is_read_as_chunked_and_the_connection_closed() {
    let lab = lab("");
    // RFC 9112 §6.3: transfer-encoding wins, the length is dropped before the request goes
    // upstream, and the connection is not reused, so nothing the client appended can be
    // read as a second request.
    let answer = exchange(
        lab.gw.addr,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 40\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(!answer.contains("/smuggled"), "{answer}");
    assert!(
        !answer.contains("content-length\":"),
        "no length upstream: {answer}"
    );
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
}

#[test]
fn a_bare_lf_ends_a_line_and_never_lands_inside_a_value() {
    let lab = lab("");
    // RFC 9112 §2.2 lets a recipient take a bare LF as a line end: two fields, not one value
    // carrying a newline upstream.
    let answer = exchange(
        lab.gw.addr,
        b"GET / HTTP/1.1\nx-a: one\nx-tenant-version: v2\nconnection: close\n\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    let body = &answer[answer.find("\r\n\r\n").expect("body") + 4..];
    let json: serde_json::Value = serde_json::from_str(body).expect("json");
    assert_eq!(json["headers"]["x-a"], "one");
    assert_eq!(
        json["servedBy"], "latest",
        "a client's x-tenant-version never routes"
    );
    assert!(json["headers"].get("x-tenant-version").is_none(), "{json}");
}

#[test]
fn invalid_utf8_in_path_and_header_values_is_carried_not_crashed_on() {
    let lab = lab("");
    let answer = exchange(
        lab.gw.addr,
        b"GET /caf\xc3/\xff\xfe HTTP/1.1\r\nhost: x\r\nx-junk: \xff\xfe\xfd\r\nconnection: close\r\n\r\n",
    );
    // The path is escaped or refused; either way an answer, and the value never reaches a
    // routing decision as text.
    assert!(matches!(status_of(&answer), 200 | 400), "{answer:?}");
    still_serves(&lab);
}

#[test]
fn oversized_and_too_many_headers_get_431() {
    let lab = lab("max_request_header_bytes: 8192, max_request_headers: 50");
    let big = format!(
        "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let answer = exchange(lab.gw.addr, big.as_bytes());
    assert_eq!(status_of(&answer), 431, "{answer}");
    assert!(answer.contains("request_header_too_large"), "{answer}");

    let mut many = String::from("GET / HTTP/1.1\r\nhost: x\r\n");
    for i in 0..60 {
        many.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    let answer = exchange(lab.gw.addr, many.as_bytes());
    assert_eq!(status_of(&answer), 431, "{answer}");
    assert!(answer.contains("too_many_headers"), "{answer}");

    // Thousands of tiny headers: past the HTTP parser's own bound of 256, refused by it.
    let mut thousands = String::from("GET / HTTP/1.1\r\nhost: x\r\n");
    for _ in 0..5000 {
        thousands.push_str("a: b\r\n");
    }
    thousands.push_str("\r\n");
    let answer = exchange(lab.gw.addr, thousands.as_bytes());
    assert_eq!(status_of(&answer), 400, "{answer}");

    still_serves(&lab);
}

#[test]
fn a_one_megabyte_token_is_refused_before_it_is_parsed() {
    let lab = lab("");
    let token = "a".repeat(1_000_000);
    let request = format!("GET / HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n");
    let answer = exchange(lab.gw.addr, request.as_bytes());
    assert_eq!(
        status_of(&answer),
        431,
        "{}",
        &answer[..answer.len().min(300)]
    );

    // Under the header bound but over the token bound: a 401 with its reason.
    let token = format!("{}.{}.{}", "a".repeat(9000), "b".repeat(9000), "c");
    let resp = lab
        .gw
        .get("/", &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["reason"], "malformed", "{:?}", resp.json());
    still_serves(&lab);
}

#[test]
fn duplicate_version_headers_cannot_pick_v2_by_accident() {
    let lab = lab("");
    // A client sending its own x-tenant-version twice: the transformation removes both.
    let resp = lab.gw.get(
        "/",
        &[("x-tenant-version", "v2"), ("x-tenant-version", "v2")],
    );
    assert_eq!(resp.served_by(), "latest");
    // Two overrides: the router matches on the first value only.
    let resp = lab.gw.get(
        "/",
        &[
            ("x-version-override", "latest"),
            ("x-version-override", "v2"),
        ],
    );
    assert_eq!(resp.status, 200);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let lab = lab("");
    let mut client = Client::connect(lab.gw.addr);
    client
        .write_raw(
            b"GET /one HTTP/1.1\r\nhost: x\r\n\r\nGET /two HTTP/1.1\r\nhost: x\r\n\r\nGET /three HTTP/1.1\r\nhost: x\r\n\r\n",
        )
        .expect("write");
    answered_in_order(&mut client, &["/one", "/two", "/three"]);
}

/// Reads one answer per path: each a 200 from the backend for that path, in this order.
fn answered_in_order(client: &mut Client, paths: &[&str]) {
    for path in paths {
        let resp = client.read().expect("a response per request");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json()["path"], *path);
    }
}

/// Between requests the gateway waits for the next one itself, reading its first bytes
/// (at most 4 KiB) before pingora parses it: however the next request arrives, it is whole.
#[test]
fn a_kept_alive_connection_takes_its_next_requests_however_they_arrive() {
    let lab = lab("");
    let mut client = Client::connect(lab.gw.addr);
    assert_eq!(client.send("GET", "/first", &[]).status, 200);

    // Idle, then a request in three pieces with pauses between them.
    std::thread::sleep(Duration::from_millis(300));
    for piece in [&b"GE"[..], b"T /second HTTP/1.1\r\nho", b"st: x\r\n\r\n"] {
        client.write_raw(piece).expect("write");
        std::thread::sleep(Duration::from_millis(100));
    }
    answered_in_order(&mut client, &["/second"]);

    // A header three times the first read, in one write.
    let big = "v".repeat(12_000);
    client
        .write_raw(format!("GET /third HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n").as_bytes())
        .expect("write");
    let resp = client.read().expect("an answer to the large request");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/third");
    assert_eq!(resp.json()["headers"]["x-big"], big.as_str());

    // Idle again, then two requests in one write: both, in order.
    std::thread::sleep(Duration::from_millis(300));
    client
        .write_raw(b"GET /fourth HTTP/1.1\r\nhost: x\r\n\r\nGET /fifth HTTP/1.1\r\nhost: x\r\n\r\n")
        .expect("write");
    answered_in_order(&mut client, &["/fourth", "/fifth"]);
}

/// The keep-alive timeout counts from the end of the last request, however many came before
/// on the connection.
#[test]
fn the_idle_timeout_counts_from_the_last_request() {
    let lab = lab("idle_timeout: 1s");
    let mut client = Client::connect(lab.gw.addr);
    // 2.4 s of requests 600 ms apart: longer than the timeout, never idle for it.
    for _ in 0..5 {
        assert_eq!(client.send("GET", "/", &[]).status, 200);
        std::thread::sleep(Duration::from_millis(600));
    }
    assert_eq!(client.send("GET", "/", &[]).status, 200);
    std::thread::sleep(Duration::from_millis(1600));
    assert!(
        client.try_send("GET", "/", &[]).is_err(),
        "a connection idle past idle_timeout stayed open"
    );
}

#[test]
fn bodies_over_the_route_limit_get_413() {
    let lab = lab("max_request_body_bytes: 1024");
    // Declared: refused before a byte of the body is read.
    let answer = exchange(
        lab.gw.addr,
        b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 17\r\n\r\n01234567890123456",
    );
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // Within the route's 16 bytes: passes.
    let answer = exchange(
        lab.gw.addr,
        b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 16\r\nconnection: close\r\n\r\n0123456789012345",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
    // Undeclared (chunked): cut off when it passes the limit.
    let answer = exchange(
        lab.gw.addr,
        b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n10\r\n0123456789012345\r\n10\r\n0123456789012345\r\n0\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 413, "{answer}");
    // Other routes have the listener's limit.
    let answer = exchange(
        lab.gw.addr,
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2000\r\n\r\n{}",
            "x".repeat(2000)
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&answer), 413, "{answer}");
    still_serves(&lab);
}

#[test]
fn slow_and_vanishing_clients() {
    let lab = lab("header_read_timeout: 1s, idle_timeout: 1s");
    // Half a request header, then nothing: 408 after the timeout, and the connection closes.
    let started = Instant::now();
    let answer = exchange(lab.gw.addr, b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: ");
    let waited = started.elapsed();
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // A byte at a time, each within any per-read timeout: still cut off at the deadline.
    let mut s = raw(lab.gw.addr);
    let started = Instant::now();
    let mut closed = false;
    for b in b"GET / HTTP/1.1\r\nhost: x\r\nx-drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if s.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        closed || String::from_utf8_lossy(&out).contains("408"),
        "drip-fed header was not cut off: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(6));

    // Stops mid-body: the gateway drops the request and goes on.
    exchange_and_close(
        lab.gw.addr,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly ten..",
    );
    // Idle keep-alive: closed by the gateway after idle_timeout.
    let mut client = Client::connect(lab.gw.addr);
    assert_eq!(client.send("GET", "/", &[]).status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        client.try_send("GET", "/", &[]).is_err(),
        "an idle connection outlived idle_timeout"
    );
    still_serves(&lab);
    let metrics = String::from_utf8_lossy(&lab.gw.admin_get("/metrics").body).into_owned();
    let timeouts = sample(
        &metrics,
        r#"switchyard_downstream_connections_closed_total{listener="public",reason="header_read_timeout"}"#,
    );
    assert!(timeouts.is_some_and(|n| n >= 1.0), "{metrics}");
}

/// Writes `bytes`, then closes the connection without waiting for an answer.
fn exchange_and_close(addr: SocketAddr, bytes: &[u8]) {
    let mut s = raw(addr);
    s.write_all(bytes).expect("write");
    drop(s);
}

#[test]
fn connections_past_the_limit_get_503() {
    let lab = lab("max_connections: 4, header_read_timeout: 5s");
    let held: Vec<TcpStream> = (0..4).map(|_| raw(lab.gw.addr)).collect();
    // Give the gateway a moment to accept all four.
    std::thread::sleep(Duration::from_millis(300));
    let answer = exchange(lab.gw.addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    still_serves(&lab);
}
