//! Remote JWKS end to end: the gateway fetches its signing keys from a stand-in identity
//! provider, an HTTPS server on loopback with a certificate from a test CA made here, through
//! a TLS backend. Refresh, rotation, the provider down at start and later, malformed documents,
//! the unknown-kid rate limit and a certificate signed by the wrong CA.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::idp::{Answer, Idp, Published};
use common::pki::make_pki;
use common::*;
use switchyard::lab::token::{mint, parse_algorithm, TokenSpec};

const ISSUER: &str = "https://idp.test";

/// The test JWKS (`tests/keys/jwks.json`) reduced to the keys with these kids.
fn jwks(kids: &[&str]) -> String {
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/keys/jwks.json")).expect("test jwks"),
    )
    .expect("json");
    let keys: Vec<_> = all["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    serde_json::json!({ "keys": keys }).to_string()
}

/// A token from `ISSUER` signed by the test key of `kid` (`other` is `rsa-other.pem`, every
/// other kid names `rsa.pem`).
fn token(kid: &str) -> String {
    let key = if kid == "other" {
        "rsa-other.pem"
    } else {
        "rsa.pem"
    };
    let bearer = mint(&TokenSpec {
        key_pem: &repo_root().join("tests/keys").join(key),
        alg: parse_algorithm("RS256").expect("alg"),
        kid: Some(kid),
        issuer: Some(ISSUER),
        audience: None,
        ttl: Some(Duration::from_secs(600)),
        claims: &["version=v2".to_owned()],
    })
    .expect("mint");
    format!("Bearer {bearer}")
}

struct Setup {
    gw: Gateway,
    _app: Proc,
    idp_addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// A gateway in `optional` mode whose provider fetches `/jwks.json` from a TLS backend at a
/// free loopback address, trusting `{ca}-ca.pem` (plain HTTP when `ca` is `None`); `remote`
/// adds settings to `jwks.remote`. The provider itself is started by the test (or not).
fn setup(ca: Option<&str>, remote: &str) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    make_pki(dir.path(), "idp", "idp.test");
    make_pki(dir.path(), "other", "idp.test");
    let app_addr = free_addr("127.0.0.2");
    let app = echo(app_addr, "app", dir.path());
    let idp_addr = free_addr("127.0.0.6");
    let listen = free_addr("127.0.0.1");
    let yaml = format!(
        r#"
access_log: {{ enabled: false }}
backends:
  - {{ name: app, static: {{ host: 127.0.0.2, port: {app_port} }} }}
  - name: idp
    static: {{ host: 127.0.0.6, port: {idp_port} }}
    {tls}
listeners:
  - name: main
    address: {listen}
    filters:
      pre_routing:
        - name: jwt_authn
          config:
            mode: optional
            providers:
              - name: idp
                issuer: {ISSUER}
                jwks:
                  remote: {{ backend: idp, path: /jwks.json, min_refresh: 1s, fetch_timeout: 2s, {remote} }}
        - name: transformation
          config: {{ request: {{ set: [{{ name: x-tenant-version, value: jwt.version }}] }} }}
    routes: [{{ name: all, backend: app }}]
"#,
        app_port = app_addr.port(),
        idp_port = idp_addr.port(),
        tls = match ca {
            Some(ca) => format!(
                "tls: {{ sni: idp.test, ca_file: {} }}",
                dir.path().join(format!("{ca}-ca.pem")).display()
            ),
            None => "connect_timeout: 1s".to_owned(),
        },
    );
    let gw = Gateway::start(&yaml, listen, &[]);
    Setup {
        gw,
        _app: app,
        idp_addr,
        dir,
    }
}

impl Setup {
    fn idp(&self, published: &Arc<Published>) -> Idp {
        Idp::start(self.idp_addr, self.dir.path(), "idp", published.clone())
    }

    /// The status of a request with this kid's token, and the reason of a refusal.
    fn verdict(&self, kid: &str) -> (u16, String) {
        let resp = self.gw.get("/", &[("authorization", &token(kid))]);
        let body = resp.json();
        if resp.status == 200 {
            assert_eq!(
                body["headers"]["x-tenant-version"], "v2",
                "claims reach CEL"
            );
            return (200, String::new());
        }
        (
            resp.status,
            body["reason"].as_str().unwrap_or("").to_owned(),
        )
    }

    fn ready(&self) -> (u16, serde_json::Value) {
        let resp = self.gw.admin_get("/readyz");
        (resp.status, resp.json())
    }

    fn metrics(&self) -> String {
        String::from_utf8_lossy(&self.gw.admin_get("/metrics").body).into_owned()
    }

    /// The value of a metric series given by its name and labels as they are rendered.
    fn metric(&self, series: &str) -> u64 {
        sample(&self.metrics(), series).map_or(0, |v| v as u64)
    }
}

/// Polls `done` every 100 ms for up to `limit`.
fn eventually(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ok() -> (u16, String) {
    (200, String::new())
}

fn unknown_key() -> (u16, String) {
    (401, "unknown_key".to_owned())
}

#[test]
fn keys_are_fetched_refreshed_by_max_age_and_rotated() {
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 1));
    let s = setup(Some("idp"), "unknown_kid_cooldown: 60s");
    let _idp = s.idp(&published);
    eventually(
        Duration::from_secs(10),
        "ready after the first fetch",
        || s.ready().0 == 200,
    );
    assert_eq!(s.verdict("rs256"), ok());

    // max-age=1 (and min_refresh 1s): the set is fetched again about every second, with no
    // request asking for it.
    let before = published.served();
    std::thread::sleep(Duration::from_millis(3500));
    let refreshes = published.served() - before;
    assert!(
        (2..=5).contains(&refreshes),
        "{refreshes} refreshes in 3.5 s"
    );

    // Rotation by refresh: the removed key stops verifying, the new one verifies.
    published.set(Answer::jwks(&jwks(&["other"]), 1));
    eventually(Duration::from_secs(5), "the old key is dropped", || {
        s.verdict("rs256") == unknown_key()
    });
    assert_eq!(s.verdict("other"), ok());
    assert!(
        s.metric(r#"switchyard_jwks_fetches_total{listener="main",provider="idp",result="ok"}"#)
            >= 4
    );
    assert_eq!(
        s.metric(r#"switchyard_jwks_keys{listener="main",provider="idp"}"#),
        1
    );
}

#[test]
fn a_new_kid_is_fetched_at_once_and_a_kid_flood_is_rate_limited() {
    // A long max-age: only unknown kids can cause a fetch during this test.
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    let s = setup(Some("idp"), "unknown_kid_cooldown: 60s");
    let _idp = s.idp(&published);
    eventually(Duration::from_secs(10), "ready", || s.ready().0 == 200);
    assert_eq!(s.verdict("rs256"), ok());
    assert_eq!(published.served(), 1);

    // The provider starts signing with a new key before our next refresh is due.
    published.set(Answer::jwks(&jwks(&["rs256", "other"]), 3600));
    assert_eq!(s.verdict("other"), ok(), "accepted after one refetch");
    assert_eq!(published.served(), 2);

    // A flood of made-up kids: all refused, and the provider sees none of it.
    for i in 0..100 {
        assert_eq!(s.verdict(&format!("made-up-{i}")), unknown_key());
    }
    assert_eq!(published.served(), 2);
    assert_eq!(
        s.metric(r#"switchyard_jwks_unknown_kid_refetches_total{listener="main",provider="idp",result="rate_limited"}"#),
        100
    );
    assert_eq!(s.verdict("rs256"), ok());
    assert_eq!(s.verdict("other"), ok());
}

#[test]
fn the_provider_down_at_start_and_coming_up() {
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    // Nothing listens at the provider's address yet.
    let s = setup(Some("idp"), "");
    // The gateway serves requests without a token...
    let resp = s.gw.get("/", &[]);
    assert_eq!(resp.status, 200);
    // ...answers 503 to those with one (the token may be good; the keys are missing)...
    let resp = s.gw.get("/", &[("authorization", &token("rs256"))]);
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("retry-after"), Some("5"));
    assert_eq!(resp.json()["reason"], "keys_unavailable");
    // ...and says it is not ready, and why.
    let (status, body) = s.ready();
    assert_eq!(status, 503);
    let waiting = body["waiting_for"].to_string();
    assert!(
        waiting.contains("provider idp") && waiting.contains("connect_failed"),
        "{body}"
    );

    let _idp = s.idp(&published);
    eventually(
        Duration::from_secs(10),
        "ready once the provider is up",
        || s.ready().0 == 200,
    );
    assert_eq!(s.verdict("rs256"), ok());
}

#[test]
fn when_the_provider_fails_later_the_last_good_keys_serve() {
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 1));
    let s = setup(Some("idp"), "");
    let idp = s.idp(&published);
    eventually(Duration::from_secs(10), "ready", || s.ready().0 == 200);

    // A document that is not a usable JWKS, then an error status: neither replaces the keys.
    for bad in [
        r#"{"keys": "none"}"#,
        r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
    ] {
        published.set(Answer::jwks(bad, 1));
        let before = published.served();
        eventually(Duration::from_secs(5), "refetched", || {
            published.served() > before
        });
        assert_eq!(s.verdict("rs256"), ok());
    }
    published.set(Answer {
        status: 500,
        cache_control: None,
        body: "{}".to_owned(),
    });
    let before = published.served();
    eventually(Duration::from_secs(5), "refetched", || {
        published.served() > before
    });
    assert_eq!(s.verdict("rs256"), ok());

    // The provider goes away entirely.
    idp.stop();
    // (Retries back off: 1, 2, 4 s after the three failures above, so the next comes soon.)
    eventually(
        Duration::from_secs(15),
        "a failed connection is counted",
        || {
            s.metric(r#"switchyard_jwks_fetches_total{listener="main",provider="idp",result="connect_failed"}"#) >= 1
        },
    );
    assert_eq!(s.verdict("rs256"), ok(), "stale keys keep serving");
    assert_eq!(s.ready().0, 200, "keys are held: still ready");
    assert!(
        s.metric(
            r#"switchyard_jwks_fetches_total{listener="main",provider="idp",result="malformed"}"#
        ) >= 2
    );
    assert!(
        s.metric(
            r#"switchyard_jwks_fetches_total{listener="main",provider="idp",result="bad_status"}"#
        ) >= 1
    );
    // The log says what happened without the documents' content.
    let log = s.gw.proc.output();
    assert!(log.contains("the last good keys (1) keep serving"), "{log}");
}

#[test]
fn a_provider_certificate_from_the_wrong_ca_is_refused() {
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    // The backend trusts `other-ca.pem`; the provider's certificate is signed by `idp-ca.pem`.
    let s = setup(Some("other"), "");
    let _idp = s.idp(&published);
    eventually(Duration::from_secs(10), "a TLS failure is counted", || {
        s.metric(
            r#"switchyard_jwks_fetches_total{listener="main",provider="idp",result="tls_failed"}"#,
        ) >= 1
    });
    assert_eq!(
        published.served(),
        0,
        "no request went over the untrusted connection"
    );
    assert_eq!(s.verdict("rs256"), (503, "keys_unavailable".to_owned()));
    let (status, body) = s.ready();
    assert_eq!(status, 503);
    assert!(
        body["waiting_for"].to_string().contains("tls_failed"),
        "{body}"
    );
}

#[test]
fn check_and_explain_do_not_fetch() {
    // They run offline: a remote provider's keys are not there, and they say so.
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    let s = setup(Some("idp"), "");
    let _idp = s.idp(&published);
    eventually(Duration::from_secs(10), "ready", || s.ready().0 == 200);
    let served = published.served();
    let config = s.gw.dir.path().join("gateway.yaml");
    let out = run_cli(&["check", "--config", config.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("keys fetched at run time from backend idp, path /jwks.json"),
        "{summary}"
    );
    let out = run_cli(&[
        "explain",
        "--config",
        config.to_str().expect("path"),
        "--token",
        token("rs256").trim_start_matches("Bearer "),
        "/",
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(
            "token rejected (keys_unavailable: signing keys unavailable); optional mode: 503"
        ),
        "{report}"
    );
    assert_eq!(published.served(), served);
}

#[test]
fn a_plain_http_provider_when_the_backend_says_so() {
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    let s = setup(None, "");
    let _idp = Idp::start_plain(s.idp_addr, published.clone());
    eventually(Duration::from_secs(10), "ready", || s.ready().0 == 200);
    assert_eq!(s.verdict("rs256"), ok());
    assert_eq!(published.served(), 1);
}

#[test]
fn a_reload_keeps_the_keys_while_the_provider_is_down() {
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    let s = setup(Some("idp"), "");
    let idp = s.idp(&published);
    eventually(Duration::from_secs(10), "ready", || s.ready().0 == 200);
    idp.stop();

    // A new config (another route) with the same provider: it takes over the cached keys.
    let config = s.gw.dir.path().join("gateway.yaml");
    let yaml = std::fs::read_to_string(&config).expect("read config");
    let yaml = yaml.replace(
        "routes: [{ name: all, backend: app }]",
        "routes: [{ name: health, matches: [{ path: { value: /health } }], backend: app }, { name: all, backend: app }]",
    );
    std::fs::write(&config, yaml).expect("write config");
    eventually(Duration::from_secs(10), "reloaded", || {
        s.metric(r#"switchyard_config_reloads_total{result="success"}"#) == 1
    });
    assert_eq!(s.verdict("rs256"), ok());
    assert_eq!(s.ready().0, 200);
    assert_eq!(published.served(), 1, "the reload fetched nothing");
}

#[test]
fn redirects_on_the_providers_own_server_are_followed_and_others_refused() {
    let published = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    let s = setup(Some("idp"), "");
    // A path moved twice: once as a path, once as a URL of the same server.
    published.redirect("/jwks.json", "/keys/v1");
    published.redirect(
        "/keys/v1",
        &format!("https://127.0.0.6:{}/keys/v2", s.idp_addr.port()),
    );
    let _idp = s.idp(&published);
    eventually(Duration::from_secs(10), "ready", || s.ready().0 == 200);
    assert_eq!(s.verdict("rs256"), ok());
    assert_eq!(published.served(), 3);

    // A provider whose document moved to another server: not followed, and said so.
    let elsewhere = Published::new(Answer::jwks(&jwks(&["rs256"]), 3600));
    elsewhere.redirect("/jwks.json", "https://evil.test/jwks.json");
    let t = setup(Some("idp"), "");
    let _other = t.idp(&elsewhere);
    eventually(
        Duration::from_secs(10),
        "a refused redirect counted",
        || {
            t.metric(
            r#"switchyard_jwks_fetches_total{listener="main",provider="idp",result="redirect"}"#,
        ) >= 1
        },
    );
    let (status, body) = t.ready();
    assert_eq!(status, 503);
    assert!(body.to_string().contains("evil.test"), "{body}");
}
