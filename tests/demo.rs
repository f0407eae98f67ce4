//! `switchyard demo` on the shipped configs, native and Gateway API manifests: it starts its
//! own echo apps and gateway, prints the observed table and exits 0 only when every row is as
//! expected. Both use the lab's fixed addresses, so they run one after the other.

mod common;

use common::*;

#[test]
fn demo_prints_the_lab_table_and_succeeds() {
    for config in ["conf/gateway.yaml", "conf/gateway-api.yaml"] {
        demo(config);
    }
}

fn demo(config: &str) {
    let out = run_cli(&["demo", "--config", config]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    let row = |request: &str, served: &str| {
        stdout.lines().any(|l| {
            let cells: Vec<&str> = l.split("  ").filter(|c| !c.trim().is_empty()).collect();
            cells.len() >= 3 && cells[0].trim() == request && cells[1].trim() == served
        })
    };
    for (request, served) in [
        ("no header, no token", "latest"),
        ("x-version-override: v2", "v2"),
        ("client sends x-tenant-version: v2", "latest"),
        ("JWT version=v2", "v2"),
        ("JWT version=latest", "latest"),
        ("JWT version=v2 + x-version-override: latest", "latest"),
        ("invalid JWT", "401"),
    ] {
        assert!(
            row(request, served),
            "{config}: no row {request:?} -> {served}:\n{stdout}"
        );
    }
    assert!(stdout.contains("all 7 rows as expected"), "{stdout}");
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    // Everything it started is gone: the gateway's address is free again.
    assert!(
        std::net::TcpListener::bind("127.0.0.1:8080").is_ok(),
        "gateway left running"
    );
}
