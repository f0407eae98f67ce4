//! Connection-level limits and TLS, in front of pingora's HTTP handling of a listener.
//!
//! [`ListenerGuard`] is the listener's pingora app: it takes each accepted connection first,
//! then hands it to the proxy.
//!
//! - **`max_connections`.** A connection past the listener's bound gets a 503 with
//!   `connection: close` (on a TLS listener it is only closed) before pingora reads a byte
//!   of it. A connection counts from before its TLS handshake.
//! - **TLS.** On a TLS listener the guard runs the handshake (`crate::tls`), bounded by
//!   `tls_handshake_timeout`, and counts the ones that fail by reason. ALPN then decides
//!   between HTTP/1.1 and HTTP/2 inside pingora.
//! - **`header_read_timeout`.** pingora bounds each read of a request header, not the whole
//!   header, so a client sending a byte every few seconds could hold a connection for as long
//!   as it likes. The guard gives a new connection `header_read_timeout` to deliver its
//!   first request header; a client that has not is closed, with a 408 on plaintext
//!   HTTP/1.1 (never inside TLS or HTTP/2, where raw bytes would be garbage). The same holds
//!   for HTTP/2, over TLS or h2c: its first stream's header must come in time. Later requests
//!   on a kept-alive connection are bounded by `idle_timeout` per read; an HTTP/2 connection
//!   by pingora's idle timeout, which closes it once no stream has been open for
//!   `idle_timeout`.
//!
//! All read the listener's settings from the pipeline serving when the connection arrives,
//! so a reload changes them (certificates included) for new connections.

use std::collections::HashMap;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{SocketDigest, Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use prometheus::{IntCounter, IntCounterVec, IntGauge};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::{keepalive, Gateway};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::tls::TlsConnection;

tokio::task_local! {
    /// Set once the connection's first request header has been read, by [`header_read`].
    static HEADER_READ: Arc<AtomicBool>;
}

/// The header flags of open h2c connections, by the address of their socket digest: the one
/// `Arc` pingora shares between a connection and each of its HTTP/2 streams
/// (`Session::digest`), which run on tasks of their own that the task-local does not reach.
static H2C_HEADER_READ: LazyLock<Mutex<HashMap<usize, Arc<AtomicBool>>>> =
    LazyLock::new(Mutex::default);

fn h2c_connections() -> MutexGuard<'static, HashMap<usize, Arc<AtomicBool>>> {
    // The lock guards plain inserts and removals; a panic cannot leave the map half-changed.
    H2C_HEADER_READ
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn socket_key(digest: &Arc<SocketDigest>) -> usize {
    Arc::as_ptr(digest) as usize
}

/// An h2c connection's entry in [`H2C_HEADER_READ`], removed when the connection ends.
struct H2cConnection {
    key: usize,
    header_read: Arc<AtomicBool>,
}

impl H2cConnection {
    fn register(stream: &Stream) -> Option<Self> {
        let key = socket_key(&stream.get_socket_digest()?);
        let header_read = Arc::new(AtomicBool::new(false));
        h2c_connections().insert(key, header_read.clone());
        Some(H2cConnection { key, header_read })
    }
}

impl Drop for H2cConnection {
    fn drop(&mut self) {
        h2c_connections().remove(&self.key);
    }
}

/// Called by the proxy when a request header is in, with the connection's TLS side if it has
/// one: from then on the guard's header deadline no longer applies to the connection,
/// whichever protocol it speaks.
pub fn header_read(session: &pingora::proxy::Session, tls: Option<&TlsConnection>) {
    if let Some(tls) = tls {
        tls.mark_header_read();
    } else if session.is_http2() {
        let digest = session.digest().and_then(|d| d.socket_digest.as_ref());
        if let Some(flag) = digest.and_then(|d| h2c_connections().get(&socket_key(d)).cloned()) {
            flag.store(true, Ordering::Relaxed);
        }
    }
    let _ = HEADER_READ.try_with(|flag| flag.store(true, Ordering::Relaxed));
}

/// A complete JSON answer that closes the connection, as raw bytes.
fn closing_answer(status_line: &str, code: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    format!(
        "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

static TOO_MANY_CONNECTIONS: LazyLock<Vec<u8>> = LazyLock::new(|| {
    closing_answer(
        "503 Service Unavailable",
        "too_many_connections",
        "the listener is at its connection limit",
    )
});

static HEADER_TIMEOUT: LazyLock<Vec<u8>> = LazyLock::new(|| {
    closing_answer(
        "408 Request Timeout",
        "request_timeout",
        "the request header did not arrive in time",
    )
});

pub struct ListenerGuard {
    proxy: Arc<HttpProxy<Gateway>>,
    pipeline: Arc<ArcSwap<Pipeline>>,
    listener: usize,
    /// Whether the proxy was started with h2c on (a restart-only setting).
    h2c: bool,
    open: AtomicUsize,
    open_gauge: IntGauge,
    rejected: IntCounter,
    header_timeouts: IntCounter,
    handshake_failures: IntCounterVec,
}

impl ListenerGuard {
    pub fn new(
        proxy: HttpProxy<Gateway>,
        pipeline: Arc<ArcSwap<Pipeline>>,
        listener: usize,
        metrics: &Metrics,
    ) -> Self {
        let name = pipeline.load().listeners[listener].name.clone();
        let h2c = proxy.server_options.as_ref().is_some_and(|o| o.h2c);
        ListenerGuard {
            proxy: Arc::new(proxy),
            pipeline,
            listener,
            h2c,
            handshake_failures: metrics.tls_handshake_failures.clone(),
            open: AtomicUsize::new(0),
            open_gauge: metrics.connections.with_label_values(&[&*name]),
            rejected: metrics
                .connections_rejected
                .with_label_values(&[&*name, "max_connections"]),
            header_timeouts: metrics
                .connections_rejected
                .with_label_values(&[&*name, "header_read_timeout"]),
        }
    }
}

/// One open connection, counted until dropped.
struct Slot<'a> {
    open: &'a AtomicUsize,
    gauge: &'a IntGauge,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.gauge.dec();
    }
}

/// The socket under a plain-TCP stream: the guard answers 408 on it while the proxy, which
/// owns the stream, is cancelled.
fn raw_fd(stream: &Stream) -> Option<RawFd> {
    stream
        .as_any()
        .downcast_ref::<pingora::protocols::l4::stream::Stream>()
        .map(AsRawFd::as_raw_fd)
}

/// Best effort: one non-blocking write of a short answer into an idle socket's empty send
/// buffer, which takes it whole in practice.
fn write_raw(fd: RawFd, bytes: &[u8]) {
    // SAFETY: `fd` belongs to the stream the caller still holds (inside the proxy's future,
    // not yet dropped), so it is open and is this connection's. ManuallyDrop keeps this
    // borrowed handle from closing it; the stream's owner closes it.
    let socket = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
    let _ = (&*socket).write(bytes);
}

/// The first bytes of an HTTP/2 connection with prior knowledge (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How a plaintext connection on an h2c listener opens.
enum Opening {
    /// With the HTTP/2 preface.
    Http2,
    /// With anything else: HTTP/1.x.
    Http1,
    /// It sent fewer than the preface's 24 bytes by the deadline.
    TimedOut,
    /// It closed.
    Closed,
}

/// Reads how a connection opens, waiting at most until `deadline`. pingora's peek reads the
/// preface's whole length (and so will pingora itself, after this), so an HTTP/1.x request
/// shorter than 24 bytes waits for the deadline.
async fn opening(stream: &mut Stream, deadline: Instant) -> Opening {
    let mut buf = [0u8; H2_PREFACE.len()];
    match tokio::time::timeout_at(deadline, stream.try_peek(&mut buf)).await {
        Ok(Ok(true)) if buf == H2_PREFACE => Opening::Http2,
        // A stream that cannot peek is not a TCP one; let pingora decide.
        Ok(Ok(_)) => Opening::Http1,
        Ok(Err(_)) => Opening::Closed,
        Err(_) => Opening::TimedOut,
    }
}

#[async_trait]
impl ServerApp for ListenerGuard {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // The listener as the pipeline serving now has it; not held past the handshake, so a
        // long-lived connection does not keep a replaced pipeline alive.
        let pipeline = self.pipeline.load_full();
        let listener = &pipeline.listeners[self.listener];
        let limits = listener.limits.clone();
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.open_gauge.inc();
        let _slot = Slot {
            open: &self.open,
            gauge: &self.open_gauge,
        };
        if open > limits.max_connections {
            self.rejected.inc();
            // An HTTP answer means nothing to a client that expects a TLS handshake.
            if listener.tls.is_none() {
                let _ = stream.write_all(&TOO_MANY_CONNECTIONS).await;
            }
            let _ = stream.shutdown().await;
            return None;
        }

        let mut header_deadline = Instant::now() + limits.header_read_timeout;
        let mut tls_connection = None;
        let mut h2c = None;
        if let Some(tls) = &listener.tls {
            // Boxed: a handshake's future holds a TLS session and the TCP stream, many times
            // the size of the rest of this one, which lives as long as the connection.
            stream = match Box::pin(tls.accept(stream, limits.tls_handshake_timeout)).await {
                Ok(stream) => stream,
                Err(failure) => {
                    self.handshake_failures
                        .with_label_values(&[&*listener.name, failure.label()])
                        .inc();
                    return None;
                }
            };
            tls_connection = stream.get_ssl_digest();
            // The handshake had its own bound; the header's starts now.
            header_deadline = Instant::now() + limits.header_read_timeout;
        } else if self.h2c {
            match opening(&mut stream, header_deadline).await {
                Opening::Http2 => {
                    h2c = H2cConnection::register(&stream);
                    if h2c.is_none() {
                        // No socket digest to find the connection by: HTTP/2's idle
                        // timeout is then its only bound.
                        drop(pipeline);
                        return ServerApp::process_new(&self.proxy, stream, shutdown).await;
                    }
                }
                Opening::Http1 => {}
                Opening::Closed => return None,
                Opening::TimedOut => {
                    self.header_timeouts.inc();
                    let _ = stream.write_all(&HEADER_TIMEOUT).await;
                    let _ = stream.shutdown().await;
                    return None;
                }
            }
        }
        drop(pipeline);

        // Plaintext HTTP/1.1: the 408 can be written beside the proxy. Into TLS or HTTP/2 it
        // cannot (bytes from outside their framing would be garbage): those are only closed.
        let fd = if h2c.is_none() { raw_fd(&stream) } else { None };
        // HTTP/1.x (plaintext, or TLS without ALPN's h2) runs the gateway's own request loop,
        // which holds nothing while a kept-alive client idles; pingora takes HTTP/2.
        let http1 = h2c.is_none() && !matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        let header_read = Arc::new(AtomicBool::new(false));
        let serve = HEADER_READ.scope(header_read.clone(), async {
            if http1 {
                keepalive::serve(&self.proxy, stream, shutdown).await;
                None
            } else {
                ServerApp::process_new(&self.proxy, stream, shutdown).await
            }
        });
        tokio::pin!(serve);
        tokio::select! {
            done = &mut serve => return done,
            () = tokio::time::sleep_until(header_deadline) => {}
        }
        // HTTP/2 streams run on tasks of their own, which the task-local does not reach: their
        // requests mark the TLS connection or the h2c entry instead.
        let tls_header_read = tls_connection
            .as_ref()
            .and_then(|digest| digest.extension.get::<TlsConnection>())
            .is_some_and(TlsConnection::header_read);
        let h2c_header_read = h2c
            .as_ref()
            .is_some_and(|c| c.header_read.load(Ordering::Relaxed));
        if header_read.load(Ordering::Relaxed) || tls_header_read || h2c_header_read {
            return serve.await;
        }
        self.header_timeouts.inc();
        if let Some(fd) = fd {
            write_raw(fd, &HEADER_TIMEOUT);
        }
        // Dropping the proxy's future closes the connection.
        None
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(&*self.proxy).await;
    }
}
