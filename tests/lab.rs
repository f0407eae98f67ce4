//! The shipped default config, `conf/gateway.yaml`, on its own addresses: the header-driven
//! rows of the versioned-routing lab.

mod common;

use common::*;

#[test]
fn shipped_config_routes_by_header() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _latest = echo(
        "127.0.0.2:30080".parse().expect("addr"),
        "latest",
        dir.path(),
    );
    let _v2 = echo("127.0.0.3:30080".parse().expect("addr"), "v2", dir.path());
    let listen = "127.0.0.1:8080".parse().expect("addr");
    let config = repo_root().join("conf/gateway.yaml");
    let _gateway = run_gateway(&config, dir.path(), &[listen]);

    type Headers = &'static [(&'static str, &'static str)];
    let rows: [(Headers, &str, &str); 4] = [
        (&[], "latest", "no header: the default rule"),
        (&[("x-version-override", "v2")], "v2", "explicit override"),
        (
            &[("x-version-override", "latest")],
            "latest",
            "explicit override to latest",
        ),
        (
            &[("x-version-override", "v3")],
            "latest",
            "an unknown version falls back to latest",
        ),
    ];
    for (headers, expected, why) in rows {
        let got = request(listen, "GET", "/", headers).served_by();
        assert_eq!(got, expected, "{why}");
    }
}
