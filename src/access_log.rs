//! The access log: one JSON line per request ([`Entry`]), written by a thread of its own so
//! that a slow disk or terminal never holds up a request. When the writer falls behind by more
//! than [`QUEUE`] lines, new lines are dropped and counted rather than queued without bound.
//!
//! A line never carries a secret: the path is logged without its query string (which may
//! carry a token), and only the configured request headers are, which cannot be credential
//! headers (see `config::validate`).

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, SystemTime};

use http::HeaderName;
use switchyard_filters::RequestHeader;

use crate::proxy::REQUEST_ID;

/// What the access log records of one request, however it ended.
pub struct Entry<'a> {
    /// The request as the router saw it (after `pre_routing` filters).
    pub request: &'a RequestHeader,
    pub client: Option<IpAddr>,
    /// The status sent, 0 when none was.
    pub status: u16,
    pub listener: &'a str,
    /// `-` when no route was chosen.
    pub route: &'a str,
    pub backend: &'a str,
    /// From sending to the backend to its response header.
    pub upstream_time: Option<Duration>,
    pub total_time: Duration,
    /// The request headers to record.
    pub headers: &'a [HeaderName],
    /// `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'a str,
    /// The TLS version of the connection (`TLSv1_3`); `None` on plaintext.
    pub tls_version: Option<&'a str>,
    /// The subject of the client's verified certificate (mutual TLS).
    pub client_subject: Option<&'a str>,
    /// The `grpc-status` of a gRPC call the gateway answered itself; `status` is then the HTTP
    /// status that answer stands for.
    pub grpc_status: Option<u8>,
}

impl Entry<'_> {
    /// The JSON line.
    pub fn line(&self) -> String {
        let req = self.request;
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .filter_map(|name| {
                let value = req.headers.get(name)?;
                Some((
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into(),
                ))
            })
            .collect();
        serde_json::json!({
            "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            "client": self.client.map(|ip| ip.to_string()),
            "method": req.method.as_str(),
            // Without the query string, which may carry a token.
            "path": req.uri.path(),
            "protocol": self.protocol,
            "tls": self.tls_version,
            "client_subject": self.client_subject,
            "status": self.status,
            "grpc_status": self.grpc_status,
            "listener": self.listener,
            "route": self.route,
            "backend": self.backend,
            "upstream_ms": self.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
            "total_ms": self.total_time.as_secs_f64() * 1000.0,
            "request_id": req.headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()),
            "headers": headers,
        })
        .to_string()
    }
}

/// Lines queued between two writes: at 50 ms per batch, room for over 300k requests/s.
const QUEUE: usize = 16 * 1024;
/// Lines are written and flushed this often, so `tail -f` keeps up.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

enum Message {
    Line(String),
    /// Flush, then answer.
    Flush(SyncSender<()>),
}

#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Message>,
}

impl AccessLog {
    /// Starts the writer thread, appending to `path` or writing to standard output.
    pub fn start(path: Option<&Path>) -> std::io::Result<AccessLog> {
        let sink: Box<dyn Write + Send> = match path {
            Some(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
            None => Box::new(std::io::stdout()),
        };
        let (tx, rx) = sync_channel::<Message>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = BufWriter::new(sink);
                // The writer polls instead of blocking in `recv`: a blocked receiver is woken
                // by every send, a context switch per request (it halved throughput on one
                // core); polling drains a batch per wake-up instead.
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    loop {
                        match rx.try_recv() {
                            Ok(Message::Line(line)) => {
                                if writeln!(out, "{line}").is_err() {
                                    return;
                                }
                            }
                            Ok(Message::Flush(done)) => {
                                let _ = out.flush();
                                let _ = done.send(());
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                let _ = out.flush();
                                return;
                            }
                        }
                    }
                    if out.flush().is_err() {
                        return;
                    }
                }
            })?;
        Ok(AccessLog { tx })
    }

    /// Queues the line for `entry`; `false` when it had to be dropped.
    pub fn record(&self, entry: &Entry<'_>) -> bool {
        self.write(entry.line())
    }

    /// Queues one line; `false` when it had to be dropped.
    fn write(&self, line: String) -> bool {
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Writes out every line queued so far (before the process exits), waiting at most
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) {
        let (done_tx, done_rx) = sync_channel(1);
        if self.tx.send(Message::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(timeout);
        }
    }
}
