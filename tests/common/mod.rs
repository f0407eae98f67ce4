//! Shared harness for end-to-end tests: real processes, real sockets, loopback only.
//!
//! Every process a test starts is killed when its handle drops, and every wait is bounded.

#![allow(dead_code)] // each test binary uses its own subset

pub mod curl;
pub mod dns;
pub mod h2_frames;
pub mod idp;
pub mod pki;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
pub const STARTUP: Duration = Duration::from_secs(30);
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The repository root, where `conf/` lives.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Ports handed out by [`free_port`], below the kernel's ephemeral range (32768 and up on
/// Linux), so that no client socket of this machine takes one meanwhile, and below 30080,
/// the lab's fixed backend port.
const PORTS: std::ops::Range<u16> = 10_000..30_000;

/// The next port to try: each test binary starts at its own place in [`PORTS`] and never
/// hands out a port twice, so two tests running side by side never get the same one (the
/// kernel's own choice of a free port can give a port just released to both).
static NEXT_PORT: std::sync::LazyLock<std::sync::atomic::AtomicU32> =
    std::sync::LazyLock::new(|| {
        let span = u32::from(PORTS.end - PORTS.start);
        std::sync::atomic::AtomicU32::new((std::process::id() * 97) % span)
    });

/// A port free on `ip` now, and not handed out before by this test binary.
pub fn free_port(ip: &str) -> u16 {
    let ip: IpAddr = ip.parse().expect("test ip parses");
    let span = u32::from(PORTS.end - PORTS.start);
    for _ in 0..span {
        let offset = NEXT_PORT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span;
        let port = PORTS.start + u16::try_from(offset).expect("offset within the range");
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip} in {PORTS:?}")
}

pub fn free_addr(ip: &str) -> SocketAddr {
    format!("{ip}:{}", free_port(ip))
        .parse()
        .expect("addr parses")
}

/// Waits until something accepts connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("process serving {addr} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr} after {STARTUP:?}");
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Everything the process wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn spawn_logged(args: &[&str], log: &Path, cwd: &Path) -> Child {
    let file = std::fs::File::create(log).expect("create log file");
    let err = file.try_clone().expect("clone log file");
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .expect("spawn switchyard")
}

/// An echo backend named `name` on `addr`.
pub fn echo(addr: SocketAddr, name: &str, dir: &Path) -> Proc {
    let log = dir.join(format!("echo-{name}-{}.log", addr.port()));
    let mut child = spawn_logged(
        &["echo", "--listen", &addr.to_string(), "--name", name],
        &log,
        dir,
    );
    wait_for_port(addr, &mut child);
    Proc { child, log }
}

/// A running gateway and the temporary folder holding its config.
pub struct Gateway {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
}

/// Gives the config an admin address of its own, so gateways of parallel tests do not collide
/// on the default one.
fn with_free_admin(yaml: &str) -> (String, SocketAddr) {
    let admin = free_addr("127.0.0.1");
    let yaml = if yaml.contains("address: 127.0.0.1:9901") {
        yaml.replace("address: 127.0.0.1:9901", &format!("address: {admin}"))
    } else if yaml.lines().any(|l| l.starts_with("admin:")) {
        panic!("test config sets its own admin address; use Gateway::start_exact");
    } else {
        format!("admin: {{ address: '{admin}' }}\n{yaml}")
    };
    (yaml, admin)
}

impl Gateway {
    /// Writes `yaml` (given a free admin address) to a config file and runs the gateway on it,
    /// waiting for `addr`.
    pub fn start(yaml: &str, addr: SocketAddr, extra_args: &[&str]) -> Gateway {
        Gateway::start_with_files(yaml, &[], addr, extra_args)
    }

    /// [`start`](Gateway::start), with `files` (path relative to the config's folder, and
    /// content) written beside the config first: Gateway API manifests, keys.
    pub fn start_with_files(
        yaml: &str,
        files: &[(&str, &str)],
        addr: SocketAddr,
        extra_args: &[&str],
    ) -> Gateway {
        let (yaml, admin) = with_free_admin(yaml);
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, content) in files {
            let path = dir.path().join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create folder");
            }
            std::fs::write(path, content).expect("write file");
        }
        let config = dir.path().join("gateway.yaml");
        std::fs::write(&config, &yaml).expect("write config");
        let mut args = vec!["run", "--config", config.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra_args);
        let log = dir.path().join("gateway.log");
        let mut child = spawn_logged(&args, &log, dir.path());
        wait_for_port(addr, &mut child);
        wait_for_port(admin, &mut child);
        Gateway {
            proc: Proc { child, log },
            addr,
            admin,
            dir,
        }
    }

    /// `GET path` on the admin listener.
    pub fn admin_get(&self, path: &str) -> Response {
        request(self.admin, "GET", path, &[])
    }

    /// The value of a `/metrics` series now (`name{labels}` as rendered), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        sample(&self.admin_get("/metrics").text(), series).unwrap_or(0.0)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.addr, "GET", path, headers)
    }
}

/// A shipped config running against the two versioned echo apps.
pub struct Lab {
    pub gw: Gateway,
    pub latest: Proc,
    pub v2: Proc,
    pub dir: tempfile::TempDir,
}

/// Runs `config` (a shipped config, relative to the repository root) with its addresses moved to free loopback ports, after
/// applying `edits` (pairs of text to replace).
pub fn lab(config: &str, edits: &[(&str, &str)]) -> Lab {
    lab_with(config, edits, echo)
}

/// [`lab`], with the two versions served by `backend` (address, name, folder for its log).
pub fn lab_with(
    config: &str,
    edits: &[(&str, &str)],
    backend: impl Fn(SocketAddr, &str, &Path) -> Proc,
) -> Lab {
    let dir = tempfile::tempdir().expect("temp dir");
    let latest_addr = free_addr("127.0.0.2");
    let v2_addr = free_addr("127.0.0.3");
    let latest = backend(latest_addr, "latest", dir.path());
    let v2 = backend(v2_addr, "v2", dir.path());
    let listen = free_addr("127.0.0.1");
    let mut yaml = std::fs::read_to_string(repo_root().join(config)).expect("read shipped config");
    for (from, to) in [
        ("127.0.0.1:8080", listen.to_string()),
        (
            "{ host: 127.0.0.2, port: 30080 }",
            format!("{{ host: 127.0.0.2, port: {} }}", latest_addr.port()),
        ),
        (
            "{ host: 127.0.0.3, port: 30080 }",
            format!("{{ host: 127.0.0.3, port: {} }}", v2_addr.port()),
        ),
    ] {
        assert!(yaml.contains(from), "{config} no longer contains {from}");
        yaml = yaml.replace(from, &to);
    }
    for (from, to) in edits {
        assert!(yaml.contains(from), "{config} does not contain {from}");
        yaml = yaml.replace(from, to);
    }
    let gw = Gateway::start(&yaml, listen, &[]);
    Lab {
        gw,
        latest,
        v2,
        dir,
    }
}

/// Runs the gateway on the config file at `config` as it is (no address rewriting), logging
/// into `dir`, and waits until each of `addresses` accepts connections.
pub fn run_gateway(config: &Path, dir: &Path, addresses: &[SocketAddr]) -> Proc {
    let log = dir.join("gateway.log");
    let mut child = spawn_logged(
        &["run", "--config", config.to_str().expect("utf-8 path")],
        &log,
        dir,
    );
    for addr in addresses {
        wait_for_port(*addr, &mut child);
    }
    Proc { child, log }
}

/// A token for the lab (demo key, issuer and audience) with `version` as its claim, minted by
/// `switchyard token`.
pub fn lab_token_cli(version: &str) -> String {
    lab_token_with(&[&format!("version={version}")])
}

/// A token for the lab with these claims (`name=value`), minted by `switchyard token`.
pub fn lab_token_with(claims: &[&str]) -> String {
    let mut args = vec![
        "token",
        "--key",
        "conf/demo/jwt-demo-key.pem",
        "--kid",
        "versioned-routing-key",
        "--iss",
        "versioned-routing-lab",
        "--aud",
        "public-api",
    ];
    for claim in claims {
        args.extend(["--claim", claim]);
    }
    let out = run_cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs `switchyard` with `args` to completion.
pub fn run_cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .expect("run switchyard")
}

#[derive(Debug)]
pub struct Response {
    /// The status line's version (`HTTP/1.1`).
    pub version: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The echo backend that answered, from its JSON body.
    pub fn served_by(&self) -> String {
        assert_eq!(
            self.status,
            200,
            "expected an echo answer, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        self.json()["servedBy"]
            .as_str()
            .expect("servedBy is a string")
            .to_owned()
    }
}

/// A minimal HTTP/1.1 client over one keep-alive connection, so tests control exactly what goes
/// on the wire and can tell whether a connection was reused.
pub struct Client {
    reader: BufReader<TcpStream>,
    host: String,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        Client {
            reader: BufReader::new(stream),
            host: addr.to_string(),
        }
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.try_send(method, path, headers)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `send`, with a failure of the connection returned instead of a panic.
    pub fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("host: {}\r\n", self.host));
        }
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.reader.get_mut().write_all(req.as_bytes())?;
        self.read_response(method == "HEAD")
    }

    /// Writes raw bytes, for requests no well-behaved client would send.
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads one response, whatever was written before.
    pub fn read(&mut self) -> std::io::Result<Response> {
        self.read_response(false)
    }

    fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }

    fn read_response(&mut self, head: bool) -> std::io::Result<Response> {
        let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
        let status_line = self.read_line()?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("header line without a colon: {line:?}")))?;
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
        let mut resp = Response {
            version: status_line.split(' ').next().unwrap_or("").to_owned(),
            status,
            headers,
            body: Vec::new(),
        };
        if head {
            return Ok(resp);
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("content-length {len:?}")))?;
            let mut body = vec![0; len];
            self.reader.read_exact(&mut body)?;
            resp.body = body;
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line = self.read_line()?;
                let size = usize::from_str_radix(&line, 16)
                    .map_err(|_| bad(format!("chunk size {line:?}")))?;
                let mut chunk = vec![0; size];
                self.reader.read_exact(&mut chunk)?;
                resp.body.extend_from_slice(&chunk);
                self.read_line()?;
                if size == 0 {
                    break;
                }
            }
        } else {
            self.reader.read_to_end(&mut resp.body)?;
        }
        Ok(resp)
    }
}

/// One request on a fresh connection.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    Client::connect(addr).send(method, path, headers)
}

/// One request on a fresh connection; a connection failure is returned, not a panic.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut client = Client {
        reader: BufReader::new(stream),
        host: addr.to_string(),
    };
    client.try_send(method, path, headers)
}

/// The value of the series `name{labels}` (labels as written, in exposition order) in a
/// Prometheus text exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The resident memory of process `pid`, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .expect("VmRSS")
}
