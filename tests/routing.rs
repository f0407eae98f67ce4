//! The routing matrix over real sockets: each match type, list order, OR and AND, and 404.

mod common;

use common::*;

struct Case {
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// The echo backend expected to answer, or `None` for the gateway's 404.
    expect: Option<&'static str>,
    why: &'static str,
}

#[test]
fn routing_matrix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let names = ["exact", "regex", "and", "or", "prefix"];
    let ips = [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.6",
    ];
    let addrs: Vec<_> = ips.iter().map(|ip| free_addr(ip)).collect();
    let _echoes: Vec<_> = names
        .iter()
        .zip(&addrs)
        .map(|(n, a)| echo(*a, n, dir.path()))
        .collect();
    let listen = free_addr("127.0.0.1");
    let backends: String = names
        .iter()
        .zip(&addrs)
        .map(|(n, a)| {
            format!(
                "  - {{ name: {n}, static: {{ host: {}, port: {} }} }}\n",
                a.ip(),
                a.port()
            )
        })
        .collect();
    let yaml = format!(
        r#"
server: {{ threads: 1 }}
backends:
{backends}
listeners:
  - name: matrix
    address: {listen}
    routes:
      - name: exact
        matches: [{{ path: {{ type: Exact, value: /exact }} }}]
        backend: exact
      - name: regex
        matches:
          - path: {{ type: RegularExpression, value: "/users/[0-9]+" }}
          - headers: [{{ name: x-version, type: RegularExpression, value: "v[0-9]+" }}]
        backend: regex
      - name: and
        matches:
          - method: POST
            path: {{ value: /orders }}
            headers: [{{ name: X-Tier, value: gold }}]
            query_params: [{{ name: region, value: eu west }}]
        backend: and
      - name: or
        matches:
          - headers: [{{ name: x-alt, value: one }}]
          - query_params: [{{ name: alt, value: two }}]
        backend: or
      - name: prefix
        matches: [{{ path: {{ type: PathPrefix, value: /api }} }}]
        backend: prefix
"#
    );
    let gw = Gateway::start(&yaml, listen, &[]);

    let gold: &[(&str, &str)] = &[("x-tier", "gold")];
    let cases = [
        Case {
            method: "GET",
            path: "/exact",
            headers: &[],
            expect: Some("exact"),
            why: "exact path",
        },
        Case {
            method: "GET",
            path: "/exact?q=1",
            headers: &[],
            expect: Some("exact"),
            why: "query is not part of the path",
        },
        Case {
            method: "GET",
            path: "/exact/",
            headers: &[],
            expect: None,
            why: "exact is exact",
        },
        Case {
            method: "GET",
            path: "/users/42",
            headers: &[],
            expect: Some("regex"),
            why: "path regex",
        },
        Case {
            method: "GET",
            path: "/users/42/x",
            headers: &[],
            expect: None,
            why: "path regex is anchored",
        },
        Case {
            method: "GET",
            path: "/other",
            headers: &[("x-version", "v7")],
            expect: Some("regex"),
            why: "header regex, second alternative",
        },
        Case {
            method: "GET",
            path: "/other",
            headers: &[("x-version", "v7-beta")],
            expect: None,
            why: "header regex is anchored",
        },
        Case {
            method: "POST",
            path: "/orders/1?region=eu+west",
            headers: gold,
            expect: Some("and"),
            why: "method, prefix, header and decoded query all pass",
        },
        Case {
            method: "POST",
            path: "/orders/1?region=eu%20west",
            headers: &[("X-TIER", "gold")],
            expect: Some("and"),
            why: "header names are case-insensitive",
        },
        Case {
            method: "GET",
            path: "/orders/1?region=eu+west",
            headers: gold,
            expect: None,
            why: "AND: wrong method",
        },
        Case {
            method: "POST",
            path: "/orders/1?region=us",
            headers: gold,
            expect: None,
            why: "AND: wrong query value",
        },
        Case {
            method: "POST",
            path: "/orders/1?region=eu+west",
            headers: &[("x-tier", "Gold")],
            expect: None,
            why: "header values are case-sensitive",
        },
        Case {
            method: "GET",
            path: "/x",
            headers: &[("x-alt", "one")],
            expect: Some("or"),
            why: "OR: first alternative",
        },
        Case {
            method: "GET",
            path: "/x?alt=two",
            headers: &[],
            expect: Some("or"),
            why: "OR: second alternative",
        },
        Case {
            method: "GET",
            path: "/x?alt=three",
            headers: &[],
            expect: None,
            why: "OR: neither alternative",
        },
        Case {
            method: "GET",
            path: "/api",
            headers: &[],
            expect: Some("prefix"),
            why: "prefix equal to the path",
        },
        Case {
            method: "GET",
            path: "/api/v1/items",
            headers: &[],
            expect: Some("prefix"),
            why: "prefix on a segment boundary",
        },
        Case {
            method: "GET",
            path: "/apiv1",
            headers: &[],
            expect: None,
            why: "prefix is not a string prefix",
        },
        Case {
            method: "GET",
            path: "/api/x",
            headers: &[("x-alt", "one")],
            expect: Some("or"),
            why: "order: the earlier route wins",
        },
        Case {
            method: "GET",
            path: "/exact",
            headers: &[("x-version", "v1")],
            expect: Some("exact"),
            why: "order: first match wins",
        },
    ];

    let mut failures = Vec::new();
    for case in &cases {
        let resp = request(gw.addr, case.method, case.path, case.headers);
        let got = match resp.status {
            200 => Some(resp.served_by()),
            404 => {
                assert_eq!(
                    resp.json()["error"],
                    "no_route",
                    "404 body for {}",
                    case.path
                );
                assert_eq!(resp.header("content-type"), Some("application/json"));
                None
            }
            other => panic!("{} {}: unexpected status {other}", case.method, case.path),
        };
        if got.as_deref() != case.expect {
            failures.push(format!(
                "{} {} {:?}: expected {:?}, got {:?} ({})",
                case.method, case.path, case.headers, case.expect, got, case.why
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "routing mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn host_names_and_answers_at_the_gateway() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (exact, wild) = (free_addr("127.0.0.2"), free_addr("127.0.0.3"));
    let _e = echo(exact, "exact", dir.path());
    let _w = echo(wild, "wild", dir.path());
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        r#"
server: {{ threads: 1 }}
backends:
  - {{ name: exact, static: {{ host: {}, port: {} }} }}
  - {{ name: wild, static: {{ host: {}, port: {} }} }}
listeners:
  - name: hosts
    address: {listen}
    routes:
      - name: retired
        matches: [{{ path: {{ value: /v0 }} }}]
        respond: {{ status: 410, message: "v0 is retired" }}
      - name: api
        hostnames: [API.example.com]
        backend: exact
      - name: tenants
        hostnames: ["*.example.com"]
        backend: wild
      - name: maintenance
        hostnames: [shop.test]
        respond: {{ status: 503 }}
"#,
        exact.ip(),
        exact.port(),
        wild.ip(),
        wild.port()
    );
    let gw = Gateway::start(&yaml, listen, &[]);

    for (host, expect) in [
        ("api.example.com", Some("exact")),
        ("Api.Example.Com:8080", Some("exact")),
        ("a.example.com", Some("wild")),
        ("a.b.example.com", Some("wild")),
        ("example.com", None),
        ("127.0.0.1", None),
        ("other.test", None),
    ] {
        let resp = request(gw.addr, "GET", "/x", &[("host", host)]);
        match expect {
            Some(backend) => {
                assert_eq!(resp.status, 200, "host {host}");
                assert_eq!(resp.served_by(), backend, "host {host}");
            }
            None => {
                assert_eq!(resp.status, 404, "host {host}");
                assert_eq!(resp.json()["error"], "no_route", "host {host}");
            }
        }
    }

    let gone = request(gw.addr, "GET", "/v0/items", &[("host", "api.example.com")]);
    assert_eq!(
        gone.status, 410,
        "a route's own answer comes before later routes"
    );
    let body = gone.json();
    assert_eq!(body["error"], "gone");
    assert_eq!(body["message"], "v0 is retired");
    assert_eq!(body["route"], "retired");
    assert_eq!(gone.header("content-type"), Some("application/json"));

    let closed = request(gw.addr, "GET", "/", &[("host", "shop.test")]);
    assert_eq!(closed.status, 503);
    assert_eq!(closed.json()["error"], "service_unavailable");
    assert_eq!(closed.json()["message"], "answered by route `maintenance`");
}
