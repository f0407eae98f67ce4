//! Identity-based version routing end to end: real echo backends, a real gateway on the shipped
//! filters, and real signed tokens.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use common::idp::{Answer, Idp, Published};
use common::pki::make_pki;
use common::*;
use switchyard::lab::demo::{lab_scenarios, Outcome, DEMO_AUDIENCE, DEMO_ISSUER, DEMO_KID};
use switchyard::lab::token::{mint, parse_algorithm, TokenSpec};

fn demo_key() -> PathBuf {
    repo_root().join("conf/demo/jwt-demo-key.pem")
}

fn test_key(name: &str) -> PathBuf {
    repo_root().join("tests/keys").join(name)
}

/// A token with the lab's issuer and audience and these claims (name=value, JSON values).
fn lab_token(claims: &[&str]) -> String {
    let claims: Vec<String> = claims.iter().map(|c| c.to_string()).collect();
    mint(&TokenSpec {
        key_pem: &demo_key(),
        alg: parse_algorithm("RS256").expect("alg"),
        kid: Some(DEMO_KID),
        issuer: Some(DEMO_ISSUER),
        audience: Some(DEMO_AUDIENCE),
        ttl: Some(Duration::from_secs(600)),
        claims: &claims,
    })
    .expect("mint")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn the_seven_scenarios() {
    let lab = lab("conf/gateway.yaml", &[]);
    let scenarios = lab_scenarios(&demo_key()).expect("lab tokens");
    assert_eq!(scenarios.len(), 7);
    let mut table = Vec::new();
    let mut failures = 0;
    for s in &scenarios {
        let headers: Vec<(&str, &str)> = s
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let resp = lab.gw.get("/", &headers);
        let observed = if resp.status == 200 {
            Outcome::ServedBy(resp.served_by())
        } else {
            Outcome::Status(resp.status)
        };
        if observed != s.expected {
            failures += 1;
        }
        table.push(format!(
            "{:<45} {:<8} expected {:<8} {}",
            s.request, observed, s.expected, s.why
        ));
    }
    assert_eq!(failures, 0, "rows differ:\n{}", table.join("\n"));
}

#[test]
fn what_the_backend_sees() {
    let lab = lab("conf/gateway.yaml", &[]);
    let token = lab_token(&["version=v2"]);

    // The claim is projected, the token is not forwarded.
    let body = lab
        .gw
        .get("/", &[("authorization", &bearer(&token))])
        .json();
    assert_eq!(body["servedBy"], "v2");
    assert_eq!(body["headers"]["x-tenant-version"], "v2");
    assert!(
        body["headers"].get("authorization").is_none(),
        "token forwarded"
    );

    // A spoofed header without a token is removed, not routed.
    let body = lab.gw.get("/", &[("x-tenant-version", "v2")]).json();
    assert_eq!(body["servedBy"], "latest");
    assert!(
        body["headers"].get("x-tenant-version").is_none(),
        "spoof survived"
    );

    // A spoofed header with a token is replaced by the claim.
    let latest = lab_token(&["version=latest"]);
    let body = lab
        .gw
        .get(
            "/",
            &[
                ("authorization", &bearer(&latest)),
                ("x-tenant-version", "v2"),
            ],
        )
        .json();
    assert_eq!(body["servedBy"], "latest");
    assert_eq!(body["headers"]["x-tenant-version"], "latest");

    // A valid token without the claim: the spoof is removed all the same.
    let plain = lab_token(&[]);
    let body = lab
        .gw
        .get(
            "/",
            &[
                ("authorization", &bearer(&plain)),
                ("x-tenant-version", "v2"),
            ],
        )
        .json();
    assert_eq!(body["servedBy"], "latest");
    assert!(body["headers"].get("x-tenant-version").is_none());
}

#[test]
fn claims_that_are_not_strings() {
    // Route a numeric version too, to see a number become its text.
    let lab = lab(
        "conf/gateway.yaml",
        &[(
            "      - name: tenant-v2\n",
            "      - name: tenant-2\n        matches: [{ headers: [{ name: x-tenant-version, value: \"2\" }] }]\n        backend: app-v2\n      - name: tenant-v2\n",
        )],
    );
    let numeric = lab_token(&["version=2"]);
    let body = lab
        .gw
        .get("/", &[("authorization", &bearer(&numeric))])
        .json();
    assert_eq!(body["headers"]["x-tenant-version"], "2");
    assert_eq!(body["servedBy"], "v2");

    for (claim, why) in [
        (r#"version={"v":"v2"}"#, "an object"),
        (r#"version=["v2"]"#, "a list"),
        ("version=null", "null"),
        ("version=\"v2\\r\\nx-injected: yes\"", "CR/LF"),
        ("version=\"v2\\u0000\"", "NUL"),
    ] {
        let token = lab_token(&[claim]);
        let body = lab
            .gw
            .get(
                "/",
                &[
                    ("authorization", &bearer(&token)),
                    ("x-tenant-version", "v2"),
                ],
            )
            .json();
        assert_eq!(body["servedBy"], "latest", "{why}");
        assert!(
            body["headers"].get("x-tenant-version").is_none(),
            "{why}: header kept"
        );
        assert!(
            body["headers"].get("x-injected").is_none(),
            "{why}: header injected"
        );
    }
}

#[test]
fn frontegg_nested_claim_with_remote_keys() {
    // A stand-in for acme.frontegg.com on loopback, with a certificate for that name from a
    // test CA, publishing the demo key's JWKS.
    let idp_dir = tempfile::tempdir().expect("temp dir");
    make_pki(idp_dir.path(), "frontegg", "acme.frontegg.com");
    let published = Published::new(Answer::jwks(
        &std::fs::read_to_string(repo_root().join("conf/demo/jwks.json")).expect("demo jwks"),
        3600,
    ));
    let idp_addr = free_addr("127.0.0.6");
    let _idp = Idp::start(idp_addr, idp_dir.path(), "frontegg", published.clone());
    let ca = idp_dir.path().join("frontegg-ca.pem");
    let lab = lab(
        "conf/examples/frontegg.yaml",
        &[
            (
                "{ host: acme.frontegg.com, port: 443 }",
                &format!("{{ host: 127.0.0.6, port: {} }}", idp_addr.port()),
            ),
            (
                "tls: { sni: acme.frontegg.com }",
                &format!(
                    "tls: {{ sni: acme.frontegg.com, ca_file: {} }}",
                    ca.display()
                ),
            ),
        ],
    );
    let mint_for = |claims: &[&str]| {
        let claims: Vec<String> = claims.iter().map(|c| c.to_string()).collect();
        mint(&TokenSpec {
            key_pem: &demo_key(),
            alg: parse_algorithm("RS256").expect("alg"),
            kid: Some(DEMO_KID),
            issuer: Some("https://acme.frontegg.com"),
            audience: Some("acme-environment-id"),
            ttl: Some(Duration::from_secs(600)),
            claims: &claims,
        })
        .expect("mint")
    };
    let alice = mint_for(&[
        "sub=client-id",
        "email=alice@acme.io",
        "tenantId=acme",
        "userMetadata.version=v2",
    ]);
    let body = lab
        .gw
        .get("/", &[("authorization", &bearer(&alice))])
        .json();
    assert_eq!(body["servedBy"], "v2");
    assert_eq!(body["headers"]["x-tenant-version"], "v2");

    let bob = mint_for(&["userMetadata.plan=free"]);
    assert_eq!(
        lab.gw
            .get("/", &[("authorization", &bearer(&bob))])
            .served_by(),
        "latest"
    );
    // The lab's issuer is not Frontegg's: such a token is rejected here.
    let lab_issued = lab_token(&["userMetadata.version=v2"]);
    let resp = lab.gw.get("/", &[("authorization", &bearer(&lab_issued))]);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["reason"], "wrong_issuer");
    assert_eq!(published.served(), 1, "one fetch served every token");
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn test_token(
    key: &str,
    alg: &str,
    kid: Option<&str>,
    iss: &str,
    aud: &str,
    claims: &[&str],
) -> String {
    let claims: Vec<String> = claims.iter().map(|c| c.to_string()).collect();
    mint(&TokenSpec {
        key_pem: &test_key(key),
        alg: parse_algorithm(alg).expect("alg"),
        kid,
        issuer: Some(iss),
        audience: Some(aud),
        ttl: Some(Duration::from_secs(600)),
        claims: &claims,
    })
    .expect("mint")
}

/// A gateway with jwt_authn in `mode`, keys from tests/keys/jwks.json (read as a file), and
/// one echo backend that reports the claim it was routed with.
fn strict_gateway(mode: &str, dir: &tempfile::TempDir) -> (Gateway, Proc) {
    let echo_addr = free_addr("127.0.0.2");
    let backend = echo(echo_addr, "app", dir.path());
    let listen = free_addr("127.0.0.1");
    let jwks = test_key("jwks.json");
    let yaml = format!(
        r#"
backends: [{{ name: app, static: {{ host: {ip}, port: {port} }} }}]
listeners:
  - name: api
    address: {listen}
    filters:
      pre_routing:
        - name: jwt_authn
          config:
            mode: {mode}
            realm: api
            providers:
              - name: idp
                issuer: https://idp.test
                audiences: [api]
                jwks: {{ file: {jwks} }}
        - name: transformation
          config:
            request:
              set: [{{ name: x-user, value: jwt.sub }}]
    routes: [{{ name: all, backend: app }}]
"#,
        ip = echo_addr.ip(),
        port = echo_addr.port(),
        jwks = jwks.display(),
    );
    (Gateway::start(&yaml, listen, &[]), backend)
}

#[test]
fn bad_token_matrix_over_the_wire() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo) = strict_gateway("strict", &dir);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let tok = |claims: &[&str]| {
        test_token(
            "rsa.pem",
            "RS256",
            Some("rs256"),
            "https://idp.test",
            "api",
            claims,
        )
    };
    let alg_none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"rs256"}"#),
        b64(format!(
            r#"{{"iss":"https://idp.test","aud":"api","exp":{}}}"#,
            now + 600
        )
        .as_bytes())
    );
    let exp_past = format!("exp={}", now - 3600);
    let nbf_future = format!("nbf={}", now + 3600);
    let cases: Vec<(&str, Option<String>, u16, Option<&str>)> = vec![
        ("no token", None, 401, None),
        ("valid", Some(tok(&["sub=alice"])), 200, None),
        (
            "alg none",
            Some(alg_none),
            401,
            Some("algorithm_not_allowed"),
        ),
        (
            "HMAC against an RSA kid",
            Some(test_token(
                "rsa.pem",
                "HS256",
                Some("rs256"),
                "https://idp.test",
                "api",
                &[],
            )),
            401,
            Some("algorithm_not_allowed"),
        ),
        ("expired", Some(tok(&[&exp_past])), 401, Some("expired")),
        (
            "not yet valid",
            Some(tok(&[&nbf_future])),
            401,
            Some("not_yet_valid"),
        ),
        (
            "wrong issuer",
            Some(test_token(
                "rsa.pem",
                "RS256",
                Some("rs256"),
                "https://evil.test",
                "api",
                &[],
            )),
            401,
            Some("wrong_issuer"),
        ),
        (
            "wrong audience",
            Some(test_token(
                "rsa.pem",
                "RS256",
                Some("rs256"),
                "https://idp.test",
                "other",
                &[],
            )),
            401,
            Some("wrong_audience"),
        ),
        (
            "unknown kid",
            Some(test_token(
                "rsa.pem",
                "RS256",
                Some("nope"),
                "https://idp.test",
                "api",
                &[],
            )),
            401,
            Some("unknown_key"),
        ),
        (
            "right kid, wrong key",
            Some(test_token(
                "rsa-other.pem",
                "RS256",
                Some("rs256"),
                "https://idp.test",
                "api",
                &[],
            )),
            401,
            Some("bad_signature"),
        ),
        (
            "malformed",
            Some("abc.def".to_owned()),
            401,
            Some("malformed"),
        ),
        (
            "ES256",
            Some(test_token(
                "ec256.pem",
                "ES256",
                Some("es256"),
                "https://idp.test",
                "api",
                &["sub=bob"],
            )),
            200,
            None,
        ),
        (
            "EdDSA",
            Some(test_token(
                "ed25519.pem",
                "EdDSA",
                Some("eddsa"),
                "https://idp.test",
                "api",
                &["sub=carol"],
            )),
            200,
            None,
        ),
    ];
    for (name, token, status, reason) in cases {
        let auth = token.as_deref().map(bearer);
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let resp = gw.get("/", &headers);
        assert_eq!(
            resp.status,
            status,
            "{name}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        if status == 200 {
            assert!(
                resp.json()["headers"]["x-user"].is_string(),
                "{name}: claim not projected"
            );
            continue;
        }
        let challenge = resp
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("{name}: no challenge"));
        let body = resp.json();
        match reason {
            None => {
                assert_eq!(challenge, "Bearer realm=\"api\"", "{name}");
                assert_eq!(body["error"], "missing_token", "{name}");
            }
            Some(reason) => {
                assert!(
                    challenge.starts_with(
                        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\""
                    ),
                    "{name}: {challenge}"
                );
                assert_eq!(body["error"], "invalid_token", "{name}");
                assert_eq!(body["reason"], reason, "{name}");
            }
        }
        if let Some(t) = &token {
            assert!(
                !String::from_utf8_lossy(&resp.body).contains(t.as_str()),
                "{name}: token echoed"
            );
        }
    }
}

#[test]
fn permissive_mode_never_rejects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (gw, _echo) = strict_gateway("permissive", &dir);
    let good = test_token(
        "rsa.pem",
        "RS256",
        Some("rs256"),
        "https://idp.test",
        "api",
        &["sub=alice"],
    );
    let body = gw.get("/", &[("authorization", &bearer(&good))]).json();
    assert_eq!(body["headers"]["x-user"], "alice");
    for auth in [
        None,
        Some("Bearer garbage".to_owned()),
        Some(bearer(&format!("{good}x"))),
    ] {
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let resp = gw.get("/", &headers);
        assert_eq!(resp.status, 200, "{auth:?}");
        assert!(
            resp.json()["headers"].get("x-user").is_none(),
            "{auth:?}: claims without a valid token"
        );
    }
}

#[test]
fn token_cli_mints_tokens_the_gateway_accepts() {
    let lab = lab("conf/gateway.yaml", &[]);
    let out = run_cli(&[
        "token",
        "--key",
        "conf/demo/jwt-demo-key.pem",
        "--kid",
        DEMO_KID,
        "--iss",
        DEMO_ISSUER,
        "--aud",
        DEMO_AUDIENCE,
        "--claim",
        "version=v2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        lab.gw
            .get("/", &[("authorization", &bearer(&token))])
            .served_by(),
        "v2"
    );
}
