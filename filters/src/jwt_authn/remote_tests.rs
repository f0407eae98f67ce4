//! The remote key cache against a scripted identity provider, on tokio's paused clock: the
//! refresh schedule, rotation, failures and the unknown-kid rate limit, each to the second.
//! (The same behaviour over real HTTPS sockets is in the server's `tests/remote_jwks.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use jsonwebtoken::Algorithm;
use serde_json::json;

use super::config::JwtAuthnConfig;
use super::tests::{claims, jwks_with, run, sign, RSA, RSA_OTHER};
use super::*;
use crate::{Background, BuildContext, FetchError, FetchErrorKind, HttpClient, HttpResponse};

/// What the provider answers now.
#[derive(Clone)]
enum Answer {
    Jwks {
        body: String,
        cache_control: Option<&'static str>,
    },
    Status(u16),
    /// A 302 to this location.
    Redirect(&'static str),
    Down,
    /// Answers after this long (bounded by the caller's timeout, as a real client is).
    Slow(Duration, Box<Answer>),
}

fn jwks(kids: &[&str], cache_control: Option<&'static str>) -> Answer {
    Answer::Jwks {
        body: jwks_with(kids),
        cache_control,
    }
}

struct ScriptedIdp {
    answer: Mutex<Answer>,
    fetches: AtomicUsize,
}

impl ScriptedIdp {
    fn new(answer: Answer) -> Arc<Self> {
        Arc::new(ScriptedIdp {
            answer: Mutex::new(answer),
            fetches: AtomicUsize::new(0),
        })
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().expect("lock") = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn answer(answer: Answer) -> Result<HttpResponse, FetchError> {
    match answer {
        Answer::Jwks {
            body,
            cache_control,
        } => Ok(HttpResponse {
            status: 200,
            cache_control: cache_control.map(str::to_owned),
            location: None,
            body: Bytes::from(body),
        }),
        Answer::Status(status) => Ok(HttpResponse {
            status,
            cache_control: None,
            location: None,
            body: Bytes::from_static(b"{}"),
        }),
        Answer::Redirect(location) => Ok(HttpResponse {
            status: 302,
            cache_control: None,
            location: Some(location.to_owned()),
            body: Bytes::new(),
        }),
        Answer::Down => Err(FetchError::new(FetchErrorKind::Connect, "refused")),
        Answer::Slow(..) => unreachable!("unwrapped by the caller"),
    }
}

#[async_trait]
impl HttpClient for ScriptedIdp {
    async fn get(
        &self,
        path: &str,
        timeout: Duration,
        _max_body: usize,
    ) -> Result<HttpResponse, FetchError> {
        // The configured path, or where a scripted redirect sent the fetch.
        assert!(path == "/jwks" || path == "/again", "{path}");
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let now = self.answer.lock().expect("lock").clone();
        match now {
            Answer::Slow(delay, then) => {
                if delay > timeout {
                    tokio::time::sleep(timeout).await;
                    return Err(FetchError::new(FetchErrorKind::Timeout, "slow"));
                }
                tokio::time::sleep(delay).await;
                answer(*then)
            }
            other => answer(other),
        }
    }

    fn backend(&self) -> &str {
        "idp"
    }

    fn identity(&self) -> &str {
        "scripted idp"
    }
}

/// An `optional`-mode filter whose one provider fetches `/jwks` from `idp`.
fn remote_filter(idp: &Arc<ScriptedIdp>, background: &Background, remote: &str) -> JwtAuthn {
    let yaml = format!(
        "mode: optional\nproviders:\n  - name: idp\n    issuer: '{}'\n    audiences: [{}]\n    \
         jwks:\n      remote: {{ backend: idp, path: /jwks, min_refresh: 10s, max_refresh: 1h, \
         default_refresh: 5m, {remote} }}\n",
        super::tests::ISS,
        super::tests::AUD
    );
    let config: JwtAuthnConfig = serde_yaml::from_str(&yaml).expect("config");
    let names: [Arc<str>; 1] = [Arc::from("idp")];
    let clients: [Arc<dyn HttpClient>; 1] = [idp.clone()];
    let ctx = BuildContext::new(&names, Path::new("."))
        .with_clients(&clients)
        .with_background(background);
    JwtAuthn::build(&config, &ctx).expect("filter builds")
}

use std::path::Path;

fn token(kid: &str) -> String {
    let pem = if kid == "other" { RSA_OTHER } else { RSA };
    sign(Algorithm::RS256, pem, Some(kid), &claims(json!({})))
}

/// `Ok` when the filter accepts the token, else the status and reason it answers with.
async fn verdict(f: &JwtAuthn, token: &str) -> Result<(), (u16, String)> {
    match run(f, Some(token)).await {
        (Flow::Continue, _, state) if state.jwt().is_some() => Ok(()),
        (Flow::Continue, ..) => Err((0, "continued without claims".to_owned())),
        (Flow::Respond(r), ..) => {
            let body: serde_json::Value = serde_json::from_slice(r.body()).expect("json body");
            Err((
                r.status().as_u16(),
                body["reason"].as_str().unwrap_or("").to_owned(),
            ))
        }
    }
}

fn unavailable() -> Result<(), (u16, String)> {
    Err((503, "keys_unavailable".to_owned()))
}

fn unknown_key() -> Result<(), (u16, String)> {
    Err((401, "unknown_key".to_owned()))
}

async fn advance(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

fn metric(f: &JwtAuthn, name: &str, result: &str) -> u64 {
    f.metrics()
        .iter()
        .find(|s| {
            s.name == name
                && (result.is_empty() || s.labels.iter().any(|(_, v)| v.as_str() == result))
        })
        .map_or(0, |s| s.value)
}

#[tokio::test(start_paused = true)]
async fn keys_are_fetched_first_and_refreshed_by_max_age() {
    let background = Background::new(tokio::runtime::Handle::current());
    let idp = ScriptedIdp::new(jwks(&["rs256"], Some("public, max-age=60")));
    let f = remote_filter(&idp, &background, "");
    // The first request waits for the first fetch.
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));
    assert_eq!(idp.fetches(), 1);
    assert!(f.waiting_for().is_empty());

    // The provider rotates; nothing is fetched before max-age has passed...
    idp.set(jwks(&["other"], Some("max-age=60")));
    advance(59).await;
    assert_eq!(idp.fetches(), 1);
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));
    // ...and after it, the new set replaces the old one: the removed key stops verifying.
    advance(2).await;
    assert_eq!(idp.fetches(), 2);
    assert_eq!(verdict(&f, &token("other")).await, Ok(()));
    let before = idp.fetches();
    assert_eq!(verdict(&f, &token("rs256")).await, unknown_key());
    // (That unknown kid asked for one refetch, which did not bring the key back.)
    assert_eq!(idp.fetches(), before + 1);
    assert_eq!(metric(&f, "jwks_fetches_total", "ok"), 3);
}

#[tokio::test(start_paused = true)]
async fn max_age_is_clamped_and_defaulted() {
    let background = Background::new(tokio::runtime::Handle::current());
    // max-age=0 would be a fetch loop: min_refresh (10 s) applies. Fetches happen at t=0,
    // then 10, 20, ...; the checks sit between them.
    let idp = ScriptedIdp::new(jwks(&["rs256"], Some("max-age=0")));
    let _f = remote_filter(&idp, &background, "");
    advance(5).await; // t=5
    assert_eq!(idp.fetches(), 1);
    advance(6).await; // t=11
    assert_eq!(idp.fetches(), 2);

    // No Cache-Control: default_refresh (5 min) after the fetch at t=20.
    idp.set(jwks(&["rs256"], None));
    advance(10).await; // t=21
    assert_eq!(idp.fetches(), 3);
    advance(298).await; // t=319
    assert_eq!(idp.fetches(), 3);
    advance(2).await; // t=321
    assert_eq!(idp.fetches(), 4);

    // A huge max-age: max_refresh (1 h) after the fetch at t=620.
    idp.set(jwks(&["rs256"], Some("max-age=31536000")));
    advance(300).await; // t=621
    assert_eq!(idp.fetches(), 5);
    advance(3598).await; // t=4219
    assert_eq!(idp.fetches(), 5);
    advance(2).await; // t=4221
    assert_eq!(idp.fetches(), 6);
}

#[tokio::test(start_paused = true)]
async fn failed_refreshes_keep_the_last_good_keys_and_back_off() {
    let background = Background::new(tokio::runtime::Handle::current());
    let idp = ScriptedIdp::new(jwks(&["rs256"], Some("max-age=60")));
    let f = remote_filter(&idp, &background, "");
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));

    idp.set(Answer::Down);
    advance(61).await;
    assert_eq!(idp.fetches(), 2);
    assert_eq!(
        verdict(&f, &token("rs256")).await,
        Ok(()),
        "stale keys serve"
    );
    // Retries after 1, 2, 4, 8 s.
    for (wait, fetches) in [(1, 3), (2, 4), (4, 5), (8, 6)] {
        advance(wait).await;
        assert_eq!(idp.fetches(), fetches, "after waiting {wait}s more");
    }
    assert_eq!(metric(&f, "jwks_fetches_total", "connect_failed"), 5);

    // Answers that are not a usable JWKS never replace the keys either.
    for bad in [
        Answer::Status(500),
        Answer::Jwks {
            body: r#"{"keys": 1}"#.to_owned(),
            cache_control: None,
        },
        Answer::Jwks {
            body: r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.to_owned(),
            cache_control: None,
        },
        Answer::Jwks {
            body: "<html>maintenance</html>".to_owned(),
            cache_control: None,
        },
    ] {
        idp.set(bad);
        let fetches = idp.fetches();
        // Retries are at most a minute apart.
        advance(61).await;
        assert!(idp.fetches() > fetches);
        assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));
    }
    assert!(metric(&f, "jwks_fetches_total", "bad_status") >= 1);
    assert!(metric(&f, "jwks_fetches_total", "malformed") >= 3);
    assert_eq!(metric(&f, "jwks_keys", ""), 1);
    assert!(f.waiting_for().is_empty(), "keys are held: ready");

    // Recovery: the next retry installs the new set.
    idp.set(jwks(&["other"], Some("max-age=60")));
    advance(61).await;
    assert_eq!(verdict(&f, &token("other")).await, Ok(()));
}

#[tokio::test(start_paused = true)]
async fn without_a_first_fetch_tokens_get_503_and_the_filter_is_not_ready() {
    let background = Background::new(tokio::runtime::Handle::current());
    let idp = ScriptedIdp::new(Answer::Down);
    let f = remote_filter(&idp, &background, "");
    assert_eq!(verdict(&f, &token("rs256")).await, unavailable());
    // A request without a token is served (optional mode).
    assert!(matches!(run(&f, None).await.0, Flow::Continue));
    let waiting = f.waiting_for();
    assert_eq!(waiting.len(), 1);
    assert!(
        waiting[0].contains("no signing keys yet") && waiting[0].contains("connect_failed"),
        "{waiting:?}"
    );

    // Requests are answered at once while the provider is down: no wait per request.
    let started = tokio::time::Instant::now();
    assert_eq!(verdict(&f, &token("rs256")).await, unavailable());
    assert_eq!(started.elapsed(), Duration::ZERO);

    idp.set(jwks(&["rs256"], None));
    advance(2).await;
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));
    assert!(f.waiting_for().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_first_request_waits_at_most_the_fetch_timeout() {
    let background = Background::new(tokio::runtime::Handle::current());
    // A slow but working provider: the first request waits and is served.
    let idp = ScriptedIdp::new(Answer::Slow(
        Duration::from_secs(1),
        Box::new(jwks(&["rs256"], None)),
    ));
    let f = remote_filter(&idp, &background, "fetch_timeout: 3s");
    let started = tokio::time::Instant::now();
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));
    assert_eq!(started.elapsed(), Duration::from_secs(1));

    // A provider that never answers: the first request gives up with the fetch.
    let idp = ScriptedIdp::new(Answer::Slow(
        Duration::from_secs(3600),
        Box::new(jwks(&["rs256"], None)),
    ));
    let f = remote_filter(&idp, &background, "fetch_timeout: 2s");
    let started = tokio::time::Instant::now();
    assert_eq!(verdict(&f, &token("rs256")).await, unavailable());
    assert!(
        started.elapsed() <= Duration::from_millis(2200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_kids_refetch_at_most_once_per_cooldown() {
    let background = Background::new(tokio::runtime::Handle::current());
    let idp = ScriptedIdp::new(jwks(&["rs256"], Some("max-age=3600")));
    let f = remote_filter(&idp, &background, "unknown_kid_cooldown: 30s");
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));

    // The provider rotated before our refresh: the new kid triggers one refetch and passes.
    idp.set(jwks(&["rs256", "other"], Some("max-age=3600")));
    assert_eq!(verdict(&f, &token("other")).await, Ok(()));
    assert_eq!(idp.fetches(), 2);

    // A flood of made-up kids within the cooldown fetches nothing more.
    for i in 0..200 {
        assert_eq!(
            verdict(&f, &token(&format!("made-up-{i}"))).await,
            unknown_key()
        );
    }
    assert_eq!(idp.fetches(), 2);
    assert_eq!(
        metric(&f, "jwks_unknown_kid_refetches_total", "rate_limited"),
        200
    );
    // Known kids are unaffected.
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));

    // After the cooldown, one more refetch is allowed.
    advance(31).await;
    assert_eq!(verdict(&f, &token("made-up")).await, unknown_key());
    assert_eq!(idp.fetches(), 3);
    assert_eq!(metric(&f, "jwks_unknown_kid_refetches_total", "started"), 2);
}

#[tokio::test(start_paused = true)]
async fn concurrent_unknown_kids_share_one_refetch() {
    let background = Background::new(tokio::runtime::Handle::current());
    let idp = ScriptedIdp::new(jwks(&["rs256"], Some("max-age=3600")));
    let f = Arc::new(remote_filter(&idp, &background, ""));
    assert_eq!(verdict(&f, &token("rs256")).await, Ok(()));
    idp.set(Answer::Slow(
        Duration::from_millis(500),
        Box::new(jwks(&["rs256", "other"], Some("max-age=3600"))),
    ));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { verdict(&f, &token("other")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task"), Ok(()));
    }
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_rebuilt_filter_takes_over_the_cache_and_a_dropped_one_stops_it() {
    let background = Background::new(tokio::runtime::Handle::current());
    let idp = ScriptedIdp::new(jwks(&["rs256"], Some("max-age=60")));
    let old = remote_filter(&idp, &background, "");
    assert_eq!(verdict(&old, &token("rs256")).await, Ok(()));

    // A reload with the provider down: the new filter has the keys at once.
    idp.set(Answer::Down);
    let new = remote_filter(&idp, &background, "");
    drop(old);
    assert_eq!(verdict(&new, &token("rs256")).await, Ok(()));
    assert_eq!(idp.fetches(), 1, "taking over fetches nothing");

    // Other timings are another cache.
    let other = remote_filter(&idp, &background, "fetch_timeout: 1s");
    advance(1).await;
    assert_eq!(idp.fetches(), 2);
    drop(other);

    // Once no filter holds the cache, its task stops.
    drop(new);
    let fetches = idp.fetches();
    advance(3600).await;
    assert_eq!(idp.fetches(), fetches);
}

#[tokio::test]
async fn offline_remote_keys_verify_nothing_and_say_why() {
    let idp = ScriptedIdp::new(jwks(&["rs256"], None));
    let yaml = "mode: optional\nproviders:\n  - name: idp\n    issuer: 'https://idp.test'\n    \
                jwks: { remote: { backend: idp, path: /jwks } }\n";
    let config: JwtAuthnConfig = serde_yaml::from_str(yaml).expect("config");
    let names: [Arc<str>; 1] = [Arc::from("idp")];
    let clients: [Arc<dyn HttpClient>; 1] = [idp.clone()];
    let ctx = BuildContext::new(&names, Path::new(".")).with_clients(&clients);
    let f = JwtAuthn::build(&config, &ctx).expect("builds");
    assert_eq!(verdict(&f, &token("rs256")).await, unavailable());
    assert_eq!(idp.fetches(), 0);
    assert!(
        f.describe()
            .join("\n")
            .contains("fetched at run time from backend idp"),
        "{:?}",
        f.describe()
    );
}

#[tokio::test(start_paused = true)]
async fn cached_verdicts_die_with_a_rotation_and_survive_an_unchanged_refresh() {
    let background = Background::new(tokio::runtime::Handle::current());
    let idp = ScriptedIdp::new(jwks(&["rs256"], Some("max-age=60")));
    let f = remote_filter(&idp, &background, "");
    let cached = |result: &str| metric(&f, "jwt_authn_token_cache_total", result);
    let same = token("rs256");
    assert_eq!(verdict(&f, &same).await, Ok(()));
    assert_eq!(verdict(&f, &same).await, Ok(()));
    assert_eq!(cached("hit"), 1);

    // The same document again: the set is kept, and so are the verdicts.
    advance(61).await;
    assert_eq!(idp.fetches(), 2);
    assert_eq!(verdict(&f, &same).await, Ok(()));
    assert_eq!((cached("hit"), cached("stale")), (2, 0));

    // A rotation that drops the key: the cached verdict is not used.
    idp.set(jwks(&["other"], Some("max-age=60")));
    advance(61).await;
    assert_eq!(verdict(&f, &same).await, unknown_key());
    assert_eq!(cached("stale"), 1);
}

#[tokio::test]
async fn redirects_end_after_three_and_never_leave_the_server() {
    use super::fetch::{fetch, FetchFailure};
    let timeout = Duration::from_secs(1);
    let looping = ScriptedIdp::new(Answer::Redirect("/again"));
    let failure = fetch(&*looping, "/jwks", timeout)
        .await
        .expect_err("an endless redirect");
    assert!(matches!(failure, FetchFailure::Redirect(_)), "{failure}");
    assert_eq!(
        looping.fetches(),
        4,
        "the first request and three redirects"
    );
    let away = ScriptedIdp::new(Answer::Redirect("https://elsewhere.test/jwks.json"));
    let failure = fetch(&*away, "/jwks", timeout)
        .await
        .expect_err("a redirect to another server");
    assert_eq!(failure.code(), "redirect");
    assert_eq!(away.fetches(), 1);
}
