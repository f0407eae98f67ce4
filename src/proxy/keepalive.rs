//! HTTP/1.x requests on one connection, one after another, holding between them nothing but
//! the connection.
//!
//! pingora serves a kept-alive HTTP/1.x connection by calling its per-request entry point
//! ([`HttpServerApp::process_new_http`]) again for each request, and that call waits for the
//! next request itself: while a client idles, its connection holds the whole request future
//! (about 13 KB), the future of pingora's connection loop (about 4 KB) and a 4 KiB header
//! buffer. An edge proxy holds many idle clients, so [`serve`] runs that loop instead and
//! waits for the next request's first bytes in a future of a few hundred bytes, reading them
//! through one buffer per thread. They reach pingora's parser as the start of the next request
//! (the path pingora takes for pipelined bytes), so nothing is read twice and no system call
//! is added. `bench/idle.sh` shows what an idle connection costs.
//!
//! What a kept-alive connection does is unchanged: the wait is bounded by the keep-alive
//! timeout the previous request left (`idle_timeout`), a server shutting down closes it, bytes
//! of the next request already read (pipelining) are served without waiting, and pingora's
//! `keepalive_request_limit` still counts.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use tokio::io::ReadBuf;

use super::Gateway;

/// The most bytes of a request read while waiting for it: one read of a typical request
/// header. The rest is read by pingora's parser into the same buffer.
const FIRST_READ: usize = 4096;

/// pingora's keep-alive timeout for a connection's first request (its default).
const FIRST_REQUEST_KEEPALIVE_SECS: u64 = 60;

thread_local! {
    /// Where the first bytes of a request land before they are known to exist: one buffer
    /// per thread instead of one per idle connection.
    static SCRATCH: std::cell::RefCell<Box<[u8; FIRST_READ]>> =
        std::cell::RefCell::new(Box::new([0; FIRST_READ]));
}

/// Serves HTTP/1.x on `stream` until the connection ends.
pub async fn serve(proxy: &Arc<HttpProxy<Gateway>>, stream: Stream, shutdown: &ShutdownWatch) {
    let mut session = ServerSession::new_http1(stream);
    if *shutdown.borrow() {
        session.set_keepalive(None);
    } else {
        session.set_keepalive(Some(FIRST_REQUEST_KEEPALIVE_SECS));
    }
    session.set_keepalive_reuses_remaining(
        proxy
            .server_options()
            .and_then(|options| options.keepalive_request_limit),
    );
    let mut reused = proxy.process_new_http(session, shutdown).await;
    while let Some((mut stream, settings)) = reused.map(|r| r.consume()) {
        let Some(settings) = next_request(&mut stream, settings, shutdown).await else {
            return;
        };
        let mut session = ServerSession::new_http1(stream);
        settings.apply_to_session(&mut session);
        reused = proxy.process_new_http(session, shutdown).await;
    }
}

/// Waits for the next request on a kept-alive connection; `None` when the connection is to
/// close instead (the client closed it or went quiet past the keep-alive timeout, or the
/// server is shutting down). The bytes read travel in the returned settings.
async fn next_request(
    stream: &mut Stream,
    settings: Option<HttpPersistentSettings>,
    shutdown: &ShutdownWatch,
) -> Option<HttpPersistentSettings> {
    // pingora hands a reused connection its settings; without them (not in pingora 0.9.1)
    // there is no keep-alive timeout to honour, so close.
    let mut settings = settings?;
    if settings.has_pipelined_prefix() {
        return Some(settings);
    }
    let wait = Duration::from_secs(settings.keepalive_timeout()?);
    let mut shutdown = shutdown.clone();
    if *shutdown.borrow() {
        return None;
    }
    let first = tokio::select! {
        read = tokio::time::timeout(wait, FirstBytes { stream }) => read,
        _ = shutdown.changed() => return None,
    };
    match first {
        Ok(Ok(bytes)) => {
            settings.set_pipelined_prefix(bytes);
            Some(settings)
        }
        // Quiet past the timeout, closed, or broken: the connection ends here, as it would
        // in pingora's own wait.
        Ok(Err(_)) | Err(_) => None,
    }
}

/// The first bytes the stream delivers, read through the thread's scratch buffer and then
/// copied out, so that no buffer is held while waiting. End of stream is an error.
struct FirstBytes<'a> {
    stream: &'a mut Stream,
}

impl Future for FirstBytes<'_> {
    type Output = io::Result<BytesMut>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut buf = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut **self.stream).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed between requests",
                ))),
                Poll::Ready(Ok(())) => {
                    // pingora's parser reads the rest into this buffer: give it the room its
                    // own first read would have had.
                    let mut bytes = BytesMut::with_capacity(FIRST_READ);
                    bytes.extend_from_slice(buf.filled());
                    Poll::Ready(Ok(bytes))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    }
}
