//! The result rules and operations of `transformation`, case by case.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::{ClientCertificate, RequestHeader, RequestState, ResponseHeader, VerifiedJwt};

fn section(yaml: &str) -> Transformation {
    let ops: HeaderOps = serde_yaml::from_str(yaml).expect("yaml");
    Transformation::compile(&ops, "request").expect("compiles")
}

fn compile_err(yaml: &str) -> FilterConfigError {
    let ops: HeaderOps = serde_yaml::from_str(yaml).expect("yaml");
    Transformation::compile(&ops, "request").expect_err("must be rejected")
}

fn jwt(claims: serde_json::Value) -> VerifiedJwt {
    VerifiedJwt::new(Arc::from("idp"), claims)
}

/// Runs one `set x: expr` on a request that carries `x: client-value`, with `claims` verified.
fn set_result(expr: &str, claims: Option<serde_json::Value>) -> (Option<String>, Vec<DropCount>) {
    let t = section(&format!(
        "set: [{{ name: x, value: '{}' }}]",
        expr.replace('\'', "''")
    ));
    let mut req = RequestHeader::build("GET", b"/p?q=1", None).expect("request");
    req.insert_header("x", "client-value").expect("header");
    let jwt = claims.map(jwt);
    let vars = Variables::bind(
        t.uses(),
        jwt.map(Arc::new),
        &req,
        Some(IpAddr::from([192, 0, 2, 7])),
        Some(&ClientCertificate {
            subject: "CN=orders,O=Acme".to_owned(),
            common_name: Some("orders".to_owned()),
            dns_names: vec!["orders.internal".to_owned(), "orders.acme.test".to_owned()],
            fingerprint: "ab12".to_owned(),
        }),
    );
    t.apply(&mut req, &vars, None);
    let value = req
        .headers
        .get("x")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (value, t.drops())
}

#[test]
fn strings_and_scalars_become_header_values() {
    let claims = json!({
        "version": "v2",
        "n": 42,
        "neg": -3,
        "f": 1.5,
        "b": true,
        "userMetadata": { "version": "v3" },
    });
    for (expr, expected) in [
        ("jwt.version", "v2"),
        ("jwt.n", "42"),
        ("jwt.neg", "-3"),
        ("jwt.f", "1.5"),
        ("jwt.b", "true"),
        ("jwt.userMetadata.version", "v3"),
        ("jwt.userMetadata[\"version\"]", "v3"),
        ("'fixed'", "fixed"),
        ("jwt.version + '-' + request.method", "v2-GET"),
        ("source.address", "192.0.2.7"),
        ("source.certificate.subject", "CN=orders,O=Acme"),
        ("source.certificate.dnsNames[1]", "orders.acme.test"),
        (
            "'orders.internal' in source.certificate.dnsNames ? 'in' : 'out'",
            "in",
        ),
        ("source.certificate.fingerprint", "ab12"),
        ("source.certificate.commonName", "orders"),
        ("request.query.q", "1"),
        ("has(jwt.version) ? jwt.version : 'latest'", "v2"),
    ] {
        let (value, drops) = set_result(expr, Some(claims.clone()));
        assert_eq!(value.as_deref(), Some(expected), "{expr}");
        assert!(drops.is_empty(), "{expr}: {drops:?}");
    }
}

#[test]
fn anything_else_removes_the_header_and_is_counted() {
    let claims = json!({
        "list": ["v2"],
        "obj": { "a": 1 },
        "nul": null,
        "crlf": "v2\r\nx-injected: yes",
        "nul_byte": "v2\u{0}",
        "unicode": "vé",
    });
    for (expr, reason) in [
        ("jwt.missing", Dropped::NoValue),
        ("jwt.obj.missing", Dropped::NoValue),
        ("jwt.list", Dropped::NotScalar),
        ("jwt.obj", Dropped::NotScalar),
        ("jwt.nul", Dropped::Null),
        ("jwt.crlf", Dropped::InvalidValue),
        ("jwt.nul_byte", Dropped::InvalidValue),
        ("jwt.unicode", Dropped::InvalidValue),
        ("1 / 0", Dropped::NoValue),
    ] {
        let (value, drops) = set_result(expr, Some(claims.clone()));
        assert_eq!(value, None, "{expr}: the client's value must not survive");
        assert_eq!(
            drops,
            vec![DropCount {
                header: "x".into(),
                reason,
                count: 1
            }],
            "{expr}"
        );
    }
}

#[test]
fn without_a_token_jwt_is_unbound_and_the_header_goes() {
    let (value, drops) = set_result("jwt.version", None);
    assert_eq!(value, None);
    assert_eq!(drops[0].reason, Dropped::NoValue);
}

#[test]
fn remove_then_set_then_add() {
    let t = section(
        r#"
remove: [x-debug]
set: [{ name: x-v, value: "'set'" }]
add: [{ name: x-list, value: "'added'" }, { name: x-bad, value: "jwt.nope" }]
"#,
    );
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    for (n, v) in [
        ("x-debug", "1"),
        ("x-v", "old"),
        ("x-list", "first"),
        ("x-bad", "kept"),
    ] {
        req.insert_header(n, v).expect("header");
    }
    let vars = Variables::bind(t.uses(), None, &req, None, None);
    let mut notes = Vec::new();
    t.apply(&mut req, &vars, Some(&mut notes));
    assert!(req.headers.get("x-debug").is_none());
    assert_eq!(
        req.headers.get("x-v").map(|v| v.as_bytes()),
        Some(&b"set"[..])
    );
    let list: Vec<_> = req
        .headers
        .get_all("x-list")
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    assert_eq!(list, [b"first".to_vec(), b"added".to_vec()]);
    // A failed `add` adds nothing and leaves what is there.
    assert_eq!(
        req.headers.get("x-bad").map(|v| v.as_bytes()),
        Some(&b"kept"[..])
    );
    assert_eq!(
        notes,
        [
            "remove x-debug",
            "set x-v = \"set\" (from `'set'`)",
            "add x-list = \"added\" (from `'added'`)",
            "add nothing to x-bad: `jwt.nope` gave no usable value (no_value)",
        ]
    );
}

#[test]
fn only_the_variables_used_are_bound() {
    assert_eq!(
        section("set: [{ name: x, value: jwt.version }]").uses(),
        Uses {
            jwt: true,
            request: false,
            source: false
        }
    );
    assert_eq!(
        section("set: [{ name: x, value: \"request.path + source.address\" }]").uses(),
        Uses {
            jwt: false,
            request: true,
            source: true
        }
    );
}

#[test]
fn bad_expressions_are_config_errors_with_their_path() {
    let e = compile_err("set: [{ name: x, value: 'jwt.version +' }]");
    assert_eq!(e.path, "request.set[0].value");
    assert!(e.message.starts_with("invalid CEL expression"), "{e}");
    let e = compile_err(&format!(
        "add: [{{ name: x, value: '{}' }}]",
        "1+".repeat(3000) + "1"
    ));
    assert_eq!(e.path, "request.add[0].value");
    assert!(e.message.contains("longer than"), "{e}");
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    let e = compile_err(&format!("set: [{{ name: x, value: '{deep}' }}]"));
    assert_eq!(e.path, "request.set[0].value");
    let e = compile_err("set: [{ name: 'bad name', value: '1' }]");
    assert_eq!(e.path, "request.set[0].name");
    let e = compile_err("{}");
    assert_eq!(e.path, "request");
}

#[test]
fn the_factory_checks_the_section_fits_the_phase() {
    let backends: [Arc<str>; 0] = [];
    let ctx = BuildContext::new(&backends, Path::new("."));
    let request_only: serde_yaml::Value =
        serde_yaml::from_str("request: { set: [{ name: x, value: \"'1'\" }] }").expect("yaml");
    let response_only: serde_yaml::Value =
        serde_yaml::from_str("response: { set: [{ name: x, value: \"'1'\" }] }").expect("yaml");
    let f = TransformationFactory;
    assert!(f
        .build(&request_only, &ctx.in_phase(Phase::PreRouting))
        .is_ok());
    assert!(f
        .build(&response_only, &ctx.in_phase(Phase::Response))
        .is_ok());
    let e = f
        .build(&response_only, &ctx.in_phase(Phase::PreRouting))
        .err()
        .expect("response section in pre_routing");
    assert_eq!(e.path, "response");
    let e = f
        .build(&request_only, &ctx.in_phase(Phase::Response))
        .err()
        .expect("request section in response phase");
    assert_eq!(e.path, "request");
}

#[tokio::test]
async fn the_filter_works_on_requests_and_responses() {
    let backends: [Arc<str>; 0] = [];
    let ctx = BuildContext::new(&backends, Path::new("."));
    let request_filter = TransformationFactory
        .build(
            &serde_yaml::from_str(
                "request: { set: [{ name: x-tenant-version, value: jwt.version }] }",
            )
            .expect("yaml"),
            &ctx.in_phase(Phase::PreRouting),
        )
        .expect("builds");
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    req.insert_header("x-tenant-version", "v2").expect("spoof");
    let mut state = RequestState::default();
    {
        let mut rctx = crate::RequestContext::new(&mut req, None, &mut state);
        assert!(matches!(
            request_filter.on_request(&mut rctx).await,
            Flow::Continue
        ));
    }
    assert!(
        req.headers.get("x-tenant-version").is_none(),
        "spoofed header survived"
    );

    let response_filter = TransformationFactory
        .build(
            &serde_yaml::from_str(
                "response: { set: [{ name: x-version, value: 'request.headers[\"x-want\"]' }] }",
            )
            .expect("yaml"),
            &ctx.in_phase(Phase::Response),
        )
        .expect("builds");
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    req.insert_header("x-want", "v9").expect("header");
    let mut resp = ResponseHeader::build(200, None).expect("response");
    let state = RequestState::default();
    let mut rctx = crate::ResponseContext::new(&mut resp, &req, None, &state);
    response_filter.on_response(&mut rctx).await;
    assert_eq!(
        resp.headers.get("x-version").map(|v| v.as_bytes()),
        Some(&b"v9"[..])
    );
}

#[test]
fn fixed_text_needs_no_expression() {
    let t = section(
        r#"
set: [{ name: x-set, text: "set-overwrites-values" }]
add: [{ name: x-add, text: "header-add" }]
"#,
    );
    let mut req = RequestHeader::build("GET", b"/", None).expect("request");
    req.insert_header("x-set", "old").expect("header");
    req.insert_header("x-add", "original").expect("header");
    let vars = Variables::bind(t.uses(), None, &req, None, None);
    t.apply(&mut req, &vars, None);
    assert_eq!(
        req.headers.get("x-set").map(|v| v.as_bytes()),
        Some(&b"set-overwrites-values"[..])
    );
    let added: Vec<_> = req
        .headers
        .get_all("x-add")
        .iter()
        .map(|v| v.as_bytes().to_vec())
        .collect();
    assert_eq!(added, [b"original".to_vec(), b"header-add".to_vec()]);
    assert_eq!(
        t.uses(),
        Uses::default(),
        "no variable is bound for fixed text"
    );

    let e = compile_err("set: [{ name: x, text: \"a\\nb\" }]");
    assert_eq!(e.path, "request.set[0].text");
    let e = compile_err("set: [{ name: x, text: a, value: \"'b'\" }]");
    assert_eq!(e.path, "request.set[0]");
}
