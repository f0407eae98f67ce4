//! `switchyard explain` on the shipped config: what each filter did, the route and backend.

mod common;

use common::*;

fn explain(args: &[&str]) -> String {
    let mut all = vec!["explain", "--config", "conf/gateway.yaml"];
    all.extend_from_slice(args);
    let out = run_cli(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn why_a_spoofed_header_lands_on_latest() {
    let report = explain(&["-H", "x-tenant-version: v2", "/orders"]);
    for expected in [
        "GET /orders on listener public",
        "no token in header authorization (bearer scheme); optional mode: continue without claims",
        "remove x-tenant-version: `jwt.version` gave no usable value (no_value)",
        "- x-tenant-version: v2",
        "first match is route 4 of 4: default: path prefix / -> app-latest",
        "=> route default -> backend app-latest (127.0.0.2:30080)",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}

#[test]
fn a_claim_routes_and_an_override_beats_it() {
    let token = lab_token_cli("v2");
    let report = explain(&["--token", &token, "/"]);
    assert!(
        report.contains("token valid (provider versioned-routing-lab)"),
        "{report}"
    );
    assert!(
        report.contains("set x-tenant-version = \"v2\" (from `jwt.version`)"),
        "{report}"
    );
    assert!(
        report.contains("=> route tenant-v2 -> backend app-v2"),
        "{report}"
    );
    assert!(
        !report.contains(&token),
        "the token is printed whole:\n{report}"
    );

    let report = explain(&["--token", &token, "-H", "x-version-override: latest", "/"]);
    assert!(
        report.contains("=> route override-latest -> backend app-latest"),
        "{report}"
    );
}

#[test]
fn a_bad_token_is_answered_with_its_reason() {
    let report = explain(&["--token", "not.a.token", "/"]);
    assert!(report.contains("token rejected (malformed"), "{report}");
    assert!(
        report.contains("=> answered by the gateway: 401"),
        "{report}"
    );
}
