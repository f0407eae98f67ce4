//! curl as the real HTTPS and HTTP/2 client of the tests: it speaks TLS with SNI, ALPN,
//! HTTP/2 and h2c prior knowledge, and says which protocol it used. Every call is bounded by
//! `--max-time`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

/// What curl got: the status (0 when no HTTP answer came), the HTTP version it used
/// (`1.1`, `2`), the body, and curl's own error text when it failed.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub version: String,
    pub body: String,
    pub error: String,
}

impl Fetched {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    /// The echo backend that answered.
    pub fn served_by(&self) -> String {
        assert_eq!(self.status, 200, "expected an echo answer: {self:?}");
        self.json()["servedBy"]
            .as_str()
            .expect("servedBy is a string")
            .to_owned()
    }
}

/// One request. `url` (`https://name/path`, without a port) names a host that `--resolve`
/// sends to `addr`, on its port (so curl sends the name as SNI and checks the certificate
/// against it); `args` are further curl options.
pub fn fetch(url: &str, addr: SocketAddr, args: &[&str]) -> Fetched {
    let (scheme, rest) = url.split_once("://").expect("url has a scheme");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let resolve = format!("{host}:{}:{}", addr.port(), addr.ip());
    let url = format!("{scheme}://{host}:{}{path}", addr.port());
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve", &resolve])
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .arg(&url)
        .output()
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (body, trailer) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let mut trailer = trailer.split(' ');
    Fetched {
        status: trailer.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        version: trailer.next().unwrap_or("").to_owned(),
        body: body.to_owned(),
        error: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The subject of the certificate the server at `addr` presents for `sni` (none: no SNI),
/// or `None` when the handshake fails. Read with `openssl s_client`, which can leave SNI out.
pub fn served_certificate(addr: SocketAddr, sni: Option<&str>) -> Option<String> {
    let mut cmd = Command::new("timeout");
    cmd.args(["10", "openssl", "s_client", "-connect", &addr.to_string()]);
    match sni {
        Some(name) => cmd.args(["-servername", name]),
        None => cmd.arg("-noservername"),
    };
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("subject="))
        .map(|s| s.trim().to_owned())
}

/// `--cacert` with the CA file `{name}-ca.pem` of `dir`.
pub fn ca_args(dir: &Path, name: &str) -> [String; 2] {
    [
        "--cacert".to_owned(),
        dir.join(format!("{name}-ca.pem")).display().to_string(),
    ]
}
