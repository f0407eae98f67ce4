//! Connection-level limits, in front of pingora's HTTP handling of a listener.
//!
//! [`ListenerGuard`] is the listener's pingora app: it takes each accepted connection first,
//! then hands it to the proxy.
//!
//! - **`max_connections`.** A connection past the listener's bound gets a 503 with
//!   `connection: close` and is closed before pingora reads a byte of it.
//! - **`header_read_timeout`.** pingora bounds each read of a request header, not the whole
//!   header, so a client sending a byte every few seconds could hold a connection for as long
//!   as it likes. The guard gives a new connection `header_read_timeout` to deliver its
//!   first request header; a client that has not gets 408 and is closed. Later requests on
//!   a kept-alive connection are bounded by `idle_timeout` per read.
//!
//! Both read the listener's limits from the pipeline serving when the connection arrives, so
//! a reload changes them for new connections.

use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use prometheus::{IntCounter, IntGauge};
use tokio::io::AsyncWriteExt;

use super::Gateway;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

tokio::task_local! {
    /// Set once the connection's first request header has been read, by [`header_read`].
    static HEADER_READ: Arc<AtomicBool>;
}

/// Called by the proxy when a request header is in (its context is made): from then on the
/// guard's header deadline no longer applies to the connection.
pub fn header_read() {
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
    open: AtomicUsize,
    open_gauge: IntGauge,
    rejected: IntCounter,
    header_timeouts: IntCounter,
}

impl ListenerGuard {
    pub fn new(
        proxy: HttpProxy<Gateway>,
        pipeline: Arc<ArcSwap<Pipeline>>,
        listener: usize,
        metrics: &Metrics,
    ) -> Self {
        let name = pipeline.load().listeners[listener].name.clone();
        ListenerGuard {
            proxy: Arc::new(proxy),
            pipeline,
            listener,
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

#[async_trait]
impl ServerApp for ListenerGuard {
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let limits = self.pipeline.load().listeners[self.listener].limits.clone();
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.open_gauge.inc();
        let _slot = Slot {
            open: &self.open,
            gauge: &self.open_gauge,
        };
        if open > limits.max_connections {
            self.rejected.inc();
            let _ = stream.write_all(&TOO_MANY_CONNECTIONS).await;
            let _ = stream.shutdown().await;
            return None;
        }

        let fd = raw_fd(&stream);
        let header_read = Arc::new(AtomicBool::new(false));
        let serve = HEADER_READ.scope(
            header_read.clone(),
            ServerApp::process_new(&self.proxy, stream, shutdown),
        );
        tokio::pin!(serve);
        tokio::select! {
            done = &mut serve => return done,
            () = tokio::time::sleep(limits.header_read_timeout) => {}
        }
        if header_read.load(Ordering::Relaxed) {
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
