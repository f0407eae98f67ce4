//! `switchyard demo`: the versioned-routing lab, end to end on this machine.
//!
//! Starts the two versioned echo apps on the addresses of the config's `app-latest` and
//! `app-v2` backends, runs the gateway on the config, sends the lab's requests, prints what was
//! observed beside what was expected, and tears everything down. Exits non-zero when a row
//! differs.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;

use crate::lab::token::{self, TokenError, TokenSpec};
use crate::pipeline::Pipeline;

const STARTUP: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo needs a backend named `{0}` in the config")]
    MissingBackend(&'static str),
    #[error("cannot start `{what}`: {source}")]
    Spawn {
        what: String,
        source: std::io::Error,
    },
    #[error("`{what}` did not start listening on {address} within {STARTUP:?}{log}")]
    NotListening {
        what: String,
        address: SocketAddr,
        log: String,
    },
    #[error("cannot mint the demo tokens: {0}")]
    Token(#[from] TokenError),
    #[error("{failed} of {total} rows differ from the expected outcome")]
    Mismatch { failed: usize, total: usize },
}

/// What a row should come out as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered by the echo app of this version.
    ServedBy(String),
    /// Answered by the gateway itself with this status.
    Status(u16),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::ServedBy(v) => f.write_str(v),
            Outcome::Status(s) => write!(f, "{s}"),
        }
    }
}

/// One request of the lab and its expected outcome.
pub struct Scenario {
    pub request: String,
    pub headers: Vec<(String, String)>,
    pub expected: Outcome,
    pub why: &'static str,
}

/// The demo key's id, issuer and audience, as in `conf/gateway.yaml`.
pub const DEMO_KID: &str = "versioned-routing-key";
pub const DEMO_ISSUER: &str = "versioned-routing-lab";
pub const DEMO_AUDIENCE: &str = "public-api";

/// A lab token carrying `version`, signed with the demo key.
pub fn lab_token(key: &Path, version: &str) -> Result<String, TokenError> {
    token::mint(&TokenSpec {
        key_pem: key,
        alg: Algorithm::RS256,
        kid: Some(DEMO_KID),
        issuer: Some(DEMO_ISSUER),
        audience: Some(DEMO_AUDIENCE),
        ttl: Some(Duration::from_secs(3600)),
        claims: &[format!("version={version}")],
    })
}

/// A token whose signature belongs to other claims: well-formed, signed by the right key, and
/// invalid.
pub fn forged_token(key: &Path) -> Result<String, TokenError> {
    let wanted = lab_token(key, "v2")?;
    let other = lab_token(key, "latest")?;
    let (body, _) = wanted.rsplit_once('.').unwrap_or((&wanted, ""));
    let (_, signature) = other.rsplit_once('.').unwrap_or(("", &other));
    Ok(format!("{body}.{signature}"))
}

fn bearer(token: &str) -> (String, String) {
    ("authorization".into(), format!("Bearer {token}"))
}

/// The lab's seven requests and the outcomes the lab's table gives for them. `key` is the demo
/// signing key (`conf/demo/jwt-demo-key.pem`).
pub fn lab_scenarios(key: &Path) -> Result<Vec<Scenario>, TokenError> {
    let v2 = lab_token(key, "v2")?;
    let latest = lab_token(key, "latest")?;
    let forged = forged_token(key)?;
    let served = |v: &str| Outcome::ServedBy(v.to_owned());
    Ok(vec![
        Scenario {
            request: "no header, no token".into(),
            headers: vec![],
            expected: served("latest"),
            why: "the default rule",
        },
        Scenario {
            request: "x-version-override: v2".into(),
            headers: vec![("x-version-override".into(), "v2".into())],
            expected: served("v2"),
            why: "explicit client header, highest precedence",
        },
        Scenario {
            request: "client sends x-tenant-version: v2".into(),
            headers: vec![("x-tenant-version".into(), "v2".into())],
            expected: served("latest"),
            why: "the transformation clears this header before routing",
        },
        Scenario {
            request: "JWT version=v2".into(),
            headers: vec![bearer(&v2)],
            expected: served("v2"),
            why: "claim projected into the header and re-routed",
        },
        Scenario {
            request: "JWT version=latest".into(),
            headers: vec![bearer(&latest)],
            expected: served("latest"),
            why: "claim routed",
        },
        Scenario {
            request: "JWT version=v2 + x-version-override: latest".into(),
            headers: vec![bearer(&v2), ("x-version-override".into(), "latest".into())],
            expected: served("latest"),
            why: "explicit override beats the claim",
        },
        Scenario {
            request: "invalid JWT".into(),
            headers: vec![bearer(&forged)],
            expected: Outcome::Status(401),
            why: "optional mode still rejects a bad token",
        },
    ])
}

/// A child process that is killed when dropped, so every exit path tears the demo down.
struct Guard {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    exe: &Path,
    args: &[&str],
    what: &str,
    address: SocketAddr,
    dir: &Path,
) -> Result<Guard, DemoError> {
    let log = dir.join(format!("{}.log", what.replace(' ', "-")));
    let spawn_err = |source| DemoError::Spawn {
        what: what.to_owned(),
        source,
    };
    let out = std::fs::File::create(&log).map_err(spawn_err)?;
    let err = out.try_clone().map_err(spawn_err)?;
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(spawn_err)?;
    let mut guard = Guard {
        what: what.to_owned(),
        child,
        log,
    };
    wait_until_listening(&mut guard, address)?;
    Ok(guard)
}

fn wait_until_listening(guard: &mut Guard, address: SocketAddr) -> Result<(), DemoError> {
    let deadline = Instant::now() + STARTUP;
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        let exited = matches!(guard.child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            let log = std::fs::read_to_string(&guard.log).unwrap_or_default();
            return Err(DemoError::NotListening {
                what: guard.what.clone(),
                address,
                log: if log.trim().is_empty() {
                    String::new()
                } else {
                    format!(":\n{}", log.trim_end())
                },
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends one scenario's request and reports what answered it.
fn observe(agent: &ureq::Agent, url: &str, scenario: &Scenario) -> Result<Outcome, String> {
    let mut req = agent.get(url);
    for (name, value) in &scenario.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let mut resp = req.call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Ok(Outcome::Status(status));
    }
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    json["servedBy"]
        .as_str()
        .map(|v| Outcome::ServedBy(v.to_owned()))
        .ok_or_else(|| format!("no servedBy in {body}"))
}

/// Runs the lab against the gateway built from `config_path` and prints the table.
pub fn run(
    config_path: &Path,
    pipeline: &Pipeline,
    scenarios: &[Scenario],
) -> Result<(), DemoError> {
    // A backend named `app-latest`, or `<namespace>/app-latest` as the Gateway API front-end
    // names an AgentgatewayBackend.
    let backend = |name: &'static str| {
        pipeline
            .backends
            .iter()
            .find(|b| &*b.name == name || b.name.rsplit_once('/').is_some_and(|(_, n)| n == name))
            .and_then(|b| b.hosts().hosts.first().map(|h| h.address))
            .ok_or(DemoError::MissingBackend(name))
    };
    let latest = backend("app-latest")?;
    let v2 = backend("app-v2")?;
    let listener = pipeline.listeners[0].address;

    let exe = std::env::current_exe().map_err(|source| DemoError::Spawn {
        what: "switchyard".into(),
        source,
    })?;
    let dir = std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Spawn {
        what: "demo folder".into(),
        source,
    })?;

    let config = config_path.to_string_lossy();
    let (latest_s, v2_s) = (latest.to_string(), v2.to_string());
    println!("starting echo app `latest` on {latest}, `v2` on {v2}, gateway on {listener}");
    let _latest = spawn(
        &exe,
        &["echo", "--listen", &latest_s, "--name", "latest"],
        "echo latest",
        latest,
        &dir,
    )?;
    let _v2 = spawn(
        &exe,
        &["echo", "--listen", &v2_s, "--name", "v2"],
        "echo v2",
        v2,
        &dir,
    )?;
    let _gateway = spawn(
        &exe,
        &["run", "--config", &config],
        "gateway",
        listener,
        &dir,
    )?;

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("http://{listener}/");
    let width = scenarios
        .iter()
        .map(|s| s.request.len())
        .max()
        .unwrap_or(0)
        .max("request".len());
    println!();
    println!(
        "{:<width$}  {:<9}  {:<9}  why",
        "request", "served by", "expected"
    );
    let mut failed = 0;
    for s in scenarios {
        let observed = observe(&agent, &url, s);
        let shown = match &observed {
            Ok(o) => o.to_string(),
            Err(e) => format!("error: {e}"),
        };
        let ok = observed.as_ref() == Ok(&s.expected);
        if !ok {
            failed += 1;
        }
        println!(
            "{:<width$}  {:<9}  {:<9}  {}{}",
            s.request,
            shown,
            s.expected.to_string(),
            s.why,
            if ok { "" } else { "   <-- MISMATCH" }
        );
    }
    println!();
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 {
        return Err(DemoError::Mismatch {
            failed,
            total: scenarios.len(),
        });
    }
    println!("all {} rows as expected", scenarios.len());
    Ok(())
}
