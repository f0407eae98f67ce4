//! Hostile HTTP/2, over real sockets with a client that writes raw frames: rapid reset
//! (CVE-2023-44487), CONTINUATION floods, an HPACK bomb, a stream that never sends its body,
//! SETTINGS and PING floods. Each is answered without harm: the attacking connection is told
//! to calm down or its stream ends, the gateway's CPU time and memory stay within bounds, and
//! another client is served normally right after.

mod common;

use std::time::{Duration, Instant};

use common::h2_frames::*;
use common::*;

/// The shipped lab (jwt_authn, transformation, four routes) with h2c on its listener and a
/// 2 s read timeout on its backends.
fn h2c_lab() -> Lab {
    lab(
        "conf/gateway.yaml",
        &[
            (
                "    filters:\n      # Both run",
                "    h2c: true\n    filters:\n      # Both run",
            ),
            ("read_timeout: 30s", "read_timeout: 2s"),
        ],
    )
}

/// The gateway process's CPU time (user + system) and resident memory.
fn usage(lab: &Lab) -> (Duration, u64) {
    let pid = lab.gw.proc.child.id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on every Linux architecture this runs on.
    let cpu = Duration::from_millis(ticks * 10);
    (cpu, rss_bytes(pid))
}

/// Runs `attack`, then checks that it cost the gateway at most `max_cpu` of CPU time and
/// `max_growth` of resident memory, and that a normal HTTP/1.1 client is served at once.
fn bounded<T>(lab: &Lab, max_cpu: Duration, max_growth: u64, attack: impl FnOnce() -> T) -> T {
    let (cpu_before, rss_before) = usage(lab);
    let out = attack();
    let (cpu_after, rss_after) = usage(lab);
    let cpu = cpu_after.saturating_sub(cpu_before);
    let growth = rss_after.saturating_sub(rss_before);
    assert!(cpu <= max_cpu, "the attack cost {cpu:?} of CPU");
    assert!(
        growth <= max_growth,
        "resident memory grew by {} KiB",
        growth / 1024
    );
    let started = Instant::now();
    assert_eq!(lab.gw.get("/after", &[]).served_by(), "latest");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a normal request took {:?}",
        started.elapsed()
    );
    out
}

const MIB: u64 = 1024 * 1024;

/// Requests that came in over HTTP/2, however they ended.
fn http2_requests(lab: &Lab) -> f64 {
    lab.gw
        .admin_get("/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("switchyard_requests_total{") && l.contains("HTTP/2"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What one attack may cost the gateway, with room for a debug build on a busy machine: an
/// unbounded one costs far more (every reset stream proxied, every flood frame queued).
const MAX_CPU: Duration = Duration::from_secs(5);

#[test]
fn rapid_reset_is_told_to_calm_down() {
    let lab = h2c_lab();
    let outcome = bounded(&lab, MAX_CPU, 16 * MIB, || {
        let mut conn = H2Conn::connect(lab.gw.addr);
        let mut sent = 0;
        for i in 0..10_000u32 {
            let id = 2 * i + 1;
            let ok = conn
                .send(
                    HEADERS,
                    END_HEADERS | END_STREAM,
                    id,
                    &request_block("GET", "/"),
                )
                .and_then(|()| conn.send(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
            if ok.is_err() {
                break;
            }
            sent += 1;
        }
        (sent, conn.read_until(IO_TIMEOUT, |f| f.kind == GOAWAY))
    });
    let (sent, outcome) = outcome;
    assert_eq!(
        outcome.goaway(),
        Some(ENHANCE_YOUR_CALM),
        "after {sent} streams: {outcome:?}"
    );
    // Only a handful of the streams were ever proxied.
    let proxied = http2_requests(&lab);
    assert!(
        proxied < 200.0,
        "{proxied} of {sent} reset streams were handled"
    );
}

#[test]
fn a_continuation_flood_is_cut_off() {
    let lab = h2c_lab();
    let (written, outcome) = bounded(&lab, MAX_CPU, 16 * MIB, || {
        let mut conn = H2Conn::connect(lab.gw.addr);
        // A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION
        // frames of 1 KB each, up to 20 MB.
        let piece = literal("x-flood", &[b'a'; 1000], false);
        let mut written = 0usize;
        if conn.send(HEADERS, 0, 1, &request_block("GET", "/")).is_ok() {
            while written < 20 * 1024 * 1024 && conn.send(CONTINUATION, 0, 1, &piece).is_ok() {
                written += piece.len();
            }
        }
        (written, conn.read_until(IO_TIMEOUT, |f| f.kind == GOAWAY))
    });
    assert!(
        outcome.goaway().is_some() || outcome.closed,
        "the flood went on: {outcome:?}"
    );
    assert!(written < 20 * 1024 * 1024, "all 20 MB were accepted");
}

#[test]
fn an_hpack_bomb_does_not_expand() {
    let lab = h2c_lab();
    let outcome = bounded(&lab, MAX_CPU, 16 * MIB, || {
        let mut conn = H2Conn::connect(lab.gw.addr);
        // A 4 KB value into the dynamic table, then blocks of 4000 one-byte references to it:
        // 16 MB of headers per 4 KB on the wire.
        let mut block = request_block("GET", "/");
        block.extend(literal("x-bomb", &[b'b'; 4000], true));
        let _ = conn.send(HEADERS, END_HEADERS | END_STREAM, 1, &block);
        for i in 1..50u32 {
            let mut block = request_block("GET", "/");
            block.extend(std::iter::repeat_n(indexed(62), 4000).flatten());
            if conn
                .send(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, &block)
                .is_err()
            {
                break;
            }
        }
        conn.read_until(IO_TIMEOUT, |f| f.kind == GOAWAY)
    });
    assert!(
        outcome.goaway().is_some() || outcome.closed,
        "the bomb was accepted: {outcome:?}"
    );
    // None of the bomb's requests was handled (the first, which only filled the table, may
    // have been).
    assert!(
        http2_requests(&lab) <= 1.0,
        "{}",
        lab.gw.admin_get("/metrics").text()
    );
}

#[test]
fn settings_and_ping_floods_cost_little() {
    let lab = h2c_lab();
    for (kind, payload) in [(SETTINGS, vec![0, 3, 0, 0, 0, 100]), (PING, vec![7; 8])] {
        // 20 000 frames that each ask for an acknowledgement, none of which is read while
        // they are sent: the gateway may stop reading or close, but must not queue answers
        // without bound (`bounded` checks its memory and CPU, and that others are served).
        bounded(&lab, MAX_CPU, 16 * MIB, || {
            let mut conn = H2Conn::connect(lab.gw.addr);
            for _ in 0..20_000 {
                if conn.send(kind, 0, 0, &payload).is_err() {
                    break;
                }
            }
            conn.read_until(Duration::from_secs(1), |_| false)
        });
    }
}

#[test]
fn a_stream_that_never_sends_its_body_ends_without_holding_the_connection() {
    let lab = h2c_lab();
    let mut conn = H2Conn::connect(lab.gw.addr);
    let mut stalled = request_block("POST", "/upload");
    stalled.extend(literal("content-length", b"100", false));
    conn.send(HEADERS, END_HEADERS, 1, &stalled)
        .expect("headers");
    // Another stream on the same connection is served while the first one waits.
    conn.send(
        HEADERS,
        END_HEADERS | END_STREAM,
        3,
        &request_block("GET", "/"),
    )
    .expect("headers");
    let started = Instant::now();
    let outcome = conn.read_until(Duration::from_secs(10), |f| {
        f.stream == 1 && (f.kind == HEADERS || f.kind == RST_STREAM)
    });
    let waited = started.elapsed();
    let on = |id| {
        outcome
            .frames
            .iter()
            .any(|f| f.stream == id && f.kind == HEADERS)
    };
    assert!(on(3), "the other stream was not answered: {outcome:?}");
    // The backend's read timeout (2 s here) ends the stalled request with 504.
    let answer = outcome.frames.iter().find(|f| f.stream == 1);
    assert!(
        answer.is_some_and(|f| f.kind == HEADERS || f.kind == RST_STREAM),
        "{outcome:?}"
    );
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "ended after {waited:?}"
    );
    assert_eq!(lab.gw.get("/after", &[]).served_by(), "latest");
}

#[test]
fn the_listener_limits_are_what_an_http2_client_is_told() {
    let lab = lab(
        "conf/gateway.yaml",
        &[(
            "    filters:\n      # Both run",
            "    h2c: true\n    limits: { max_concurrent_streams: 7, max_request_header_bytes: 8192 }\n    filters:\n      # Both run",
        )],
    );
    let mut conn = H2Conn::connect(lab.gw.addr);
    let outcome = conn.read_until(IO_TIMEOUT, |f| f.kind == SETTINGS && f.flags & 1 == 0);
    let settings = outcome
        .frames
        .iter()
        .find(|f| f.kind == SETTINGS && f.flags & 1 == 0)
        .expect("the server's SETTINGS");
    let value = |id: u16| {
        settings.payload.chunks(6).find_map(|p| {
            (u16::from_be_bytes([p[0], p[1]]) == id)
                .then(|| u32::from_be_bytes([p[2], p[3], p[4], p[5]]))
        })
    };
    // SETTINGS_MAX_CONCURRENT_STREAMS and SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2).
    assert_eq!(value(0x3), Some(7), "{settings:?}");
    assert_eq!(value(0x6), Some(8192), "{settings:?}");
}
