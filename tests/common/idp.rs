//! A stand-in identity provider: an HTTPS server on loopback that publishes a JWKS, with a
//! certificate from a test CA. What it answers can be changed while it runs, and it counts
//! the requests it served, so tests can see every fetch the gateway makes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// One HTTP answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub cache_control: Option<String>,
    pub body: String,
}

impl Answer {
    /// A JWKS document with `Cache-Control: max-age=max_age`.
    pub fn jwks(body: &str, max_age: u64) -> Answer {
        Answer {
            status: 200,
            cache_control: Some(format!("public, max-age={max_age}")),
            body: body.to_owned(),
        }
    }
}

/// What the provider answers, and what it has served. Outlives restarts of the server.
pub struct Published {
    answer: Mutex<Answer>,
    /// Paths answered with a 302 to a location instead.
    redirects: Mutex<Vec<(String, String)>>,
    served: AtomicUsize,
}

impl Published {
    pub fn new(answer: Answer) -> Arc<Published> {
        Arc::new(Published {
            answer: Mutex::new(answer),
            redirects: Mutex::new(Vec::new()),
            served: AtomicUsize::new(0),
        })
    }

    /// From now on, a request for `path` is answered `302` to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.redirects
            .lock()
            .expect("lock")
            .push((path.to_owned(), location.to_owned()));
    }

    pub fn set(&self, answer: Answer) {
        *self.answer.lock().expect("lock") = answer;
    }

    /// Requests answered so far (TLS handshakes that failed are not requests).
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// The running server; dropping it (or [`Idp::stop`]) closes the listener.
pub struct Idp {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Idp {
    /// Serves `published` on `addr` with the certificate `{name}.pem` / `{name}-key.pem` in
    /// `dir` (see [`make_pki`](super::pki::make_pki)).
    pub fn start(addr: SocketAddr, dir: &Path, name: &str, published: Arc<Published>) -> Idp {
        Self::run(addr, Some(tls_config(dir, name)), published)
    }

    /// Serves `published` on `addr` over plain HTTP.
    pub fn start_plain(addr: SocketAddr, published: Arc<Published>) -> Idp {
        Self::run(addr, None, published)
    }

    fn run(
        addr: SocketAddr,
        config: Option<Arc<rustls::ServerConfig>>,
        published: Arc<Published>,
    ) -> Idp {
        let listener = TcpListener::bind(addr).expect("bind the idp address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                match &config {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                            continue;
                        };
                        let mut tls = rustls::StreamOwned::new(conn, stream);
                        if serve(&mut tls, &published) {
                            tls.conn.send_close_notify();
                            let _ = tls.flush();
                        }
                    }
                    None => {
                        let mut stream = stream;
                        serve(&mut stream, &published);
                    }
                }
            }
        });
        Idp {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener: from now on connections are refused.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Answers one request on `stream` (the caller closes it); false when none came (a failed
/// TLS handshake lands here).
fn serve(stream: &mut impl ReadWrite, published: &Published) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 16 * 1024 {
            return false;
        }
    }
    published.served.fetch_add(1, Ordering::SeqCst);
    let request_line = String::from_utf8_lossy(&head);
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
    let redirect = published
        .redirects
        .lock()
        .expect("lock")
        .iter()
        .find(|(from, _)| *from == path)
        .map(|(_, to)| to.clone());
    if let Some(location) = redirect {
        let response = format!(
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
        return true;
    }
    let answer = published.answer.lock().expect("lock").clone();
    let mut response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    if let Some(cc) = &answer.cache_control {
        response.push_str(&format!("cache-control: {cc}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&answer.body);
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    true
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn tls_config(dir: &Path, name: &str) -> Arc<rustls::ServerConfig> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join(format!("{name}.pem")))
            .expect("certificate file")
            .collect::<Result<_, _>>()
            .expect("certificates");
    let key =
        PrivateKeyDer::from_pem_file(dir.join(format!("{name}-key.pem"))).expect("private key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server certificate");
    Arc::new(config)
}
