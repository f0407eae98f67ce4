//! The pingora [`ProxyHttp`] that drives a listener's filter chain.
//!
//! One [`Gateway`] serves one listener. For each request, pingora calls, in order:
//!
//! 0. Before any of this, [`ListenerGuard`] has admitted the connection (`max_connections`),
//!    run its TLS handshake on a TLS listener, and watches that its first request header
//!    arrives within `header_read_timeout`. pingora then speaks HTTP/1.1 or HTTP/2 on it
//!    (ALPN, or h2c prior knowledge); everything below is the same for both.
//! 1. [`new_ctx`](ProxyHttp::new_ctx): pins the current [`Pipeline`] for the request's whole
//!    life, so a reload never changes the rules half-way through a request.
//! 2. [`request_filter`](ProxyHttp::request_filter): notes the connection's TLS side (the
//!    client certificate, for CEL's `source.certificate`), sets `x-request-id`, then runs the
//!    `pre_routing` filters, the router and the `post_routing` filters. A filter that answers
//!    (a 401, the router's 404) ends the request here.
//! 3. [`upstream_peer`](ProxyHttp::upstream_peer): a host of the chosen route's backend. When
//!    connecting to it fails, [`fail_to_connect`](ProxyHttp::fail_to_connect) may send the
//!    request to another host; [`error_while_proxy`](ProxyHttp::error_while_proxy) decides
//!    whether an error past that point may be retried (only when harmless).
//! 4. [`upstream_request_filter`](ProxyHttp::upstream_request_filter): appends
//!    `x-forwarded-for` on the copy of the request that goes upstream.
//! 5. [`response_filter`](ProxyHttp::response_filter): notes the upstream time, runs the
//!    `response` filters.
//! 6. On failure, [`fail_to_proxy`](ProxyHttp::fail_to_proxy): a JSON 502/504 naming the route
//!    and backend, counted by backend and kind.
//! 7. [`logging`](ProxyHttp::logging), for every request however it ended: the request
//!    counter and duration histogram by route, and the access log line.

mod grpc;
mod guard;
mod keepalive;
mod limits;
mod overload;
mod respond;
mod retry;
mod upstream_error;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::header::HeaderValue;
use http::StatusCode;
use pingora::prelude::*;
use pingora::proxy::FailToProxy;
use pingora::upstreams::peer::HttpPeer;
use switchyard_filters::{Flow, LocalResponse, RequestContext, RequestHeader, RequestState};

use crate::access_log::{AccessLog, Entry};
use crate::backend::{Admission, HostSet, Tried};
use crate::drain::InFlightRequests;
use crate::metrics::{self, Metrics};
use crate::pipeline::{Listener, Pipeline};
use crate::tls::TlsConnection;
use prometheus::IntGauge;

pub use guard::ListenerGuard;

pub const REQUEST_ID: &str = "x-request-id";
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// A client-supplied request id longer than this is replaced rather than propagated.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The proxy logic of one listener.
pub struct Gateway {
    pipeline: Arc<ArcSwap<Pipeline>>,
    listener: usize,
    metrics: Arc<Metrics>,
    in_flight: IntGauge,
    all_in_flight: InFlightRequests,
    access_log: Option<AccessLog>,
}

impl Gateway {
    /// Serves `pipeline.listeners[listener]` of whatever pipeline `pipeline` holds.
    pub fn new(
        pipeline: Arc<ArcSwap<Pipeline>>,
        listener: usize,
        metrics: Arc<Metrics>,
        all_in_flight: InFlightRequests,
        access_log: Option<AccessLog>,
    ) -> Self {
        let name = pipeline.load().listeners[listener].name.clone();
        let in_flight = metrics.in_flight.with_label_values(&[&*name]);
        Gateway {
            pipeline,
            listener,
            metrics,
            in_flight,
            all_in_flight,
            access_log,
        }
    }
}

/// Counts a request as in flight from its context's creation until `logging` (which pingora
/// calls once per request, however it ended): in the listener's gauge, and in the count the
/// drain waits on. pingora may keep a context a little longer than that, so the count ends at
/// `logging`; dropping an unfinished one also ends it.
struct InFlight {
    gauge: IntGauge,
    all: InFlightRequests,
    done: bool,
}

impl InFlight {
    fn enter(gauge: &IntGauge, all: &InFlightRequests) -> Self {
        gauge.inc();
        all.enter();
        InFlight {
            gauge: gauge.clone(),
            all: all.clone(),
            done: false,
        }
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.gauge.dec();
            self.all.leave();
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Per-request state.
pub struct RequestCtx {
    pipeline: Arc<Pipeline>,
    listener: usize,
    client_ip: Option<IpAddr>,
    /// The connection's TLS version (`TLSv1_3`), on a TLS listener.
    tls_version: Option<Cow<'static, str>>,
    /// A gRPC call the gateway answered itself: the HTTP status it stands for (the wire says
    /// 200) and the `grpc-status` sent. Metrics and the access log count the former.
    grpc_answer: Option<(u16, u8)>,
    /// The request's place among its backend's requests in flight (`max_requests`), and
    /// its connection slot (`max_connections`).
    admission: Option<Admission>,
    connection_slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// When the route's `timeouts.request` runs out, and when the current attempt's does
    /// (the earlier of that and `timeouts.backend_request` from the attempt's start).
    deadline: Option<Instant>,
    attempt_deadline: Option<Instant>,
    /// Retries of the route's `retry` made so far, the wait before the next one, and the
    /// status of a response held back to be retried.
    retries: u32,
    retry_wait: Option<Duration>,
    status_retry: Option<u16>,
    /// Attempts made (each `upstream_peer`), and connections that failed among them.
    attempts: usize,
    connect_failures: u32,
    /// The route's own deadline ran out: the client's time, not the backend's fault.
    deadline_hit: bool,
    state: RequestState,
    started: Instant,
    upstream_started: Option<Instant>,
    /// Time from sending to the backend to its response header.
    upstream_time: Option<Duration>,
    /// The backend's hosts as the request found them (kept to its end, so the indices below
    /// hold whatever DNS does meanwhile), the host of the current attempt, and the hosts
    /// that failed this request.
    hosts: Option<Arc<HostSet>>,
    host: Option<usize>,
    tried: Tried,
    /// The request body allowed by the route, and how much of it has passed so far.
    body_limit: u64,
    body_seen: u64,
    in_flight: InFlight,
}

impl RequestCtx {
    fn listener(&self) -> &Listener {
        &self.pipeline.listeners[self.listener]
    }

    /// Reports how the current attempt went to its host's passive health.
    fn report_host(&self, success: bool) {
        if let (Some(route), Some(set), Some(host)) = (self.state.route(), &self.hosts, self.host) {
            self.pipeline.backends[route.backend.index].report(set, host, success);
        }
    }
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// The error of a request past its route's `timeouts`: a timeout of the backend's, so it is
/// answered (504 `upstream_timeout`) and counted as one.
fn route_timed_out() -> Box<Error> {
    Error::explain(ReadTimedout, "the route's timeouts ran out").into_up()
}

/// Keeps a well-formed client request id (so traces join up across hops) and mints one
/// otherwise.
fn ensure_request_id(req: &mut RequestHeader) -> Result<()> {
    let acceptable = req.headers.get(REQUEST_ID).is_some_and(|v| {
        !v.is_empty()
            && v.len() <= MAX_REQUEST_ID_LEN
            && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    });
    if !acceptable {
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        req.insert_header(REQUEST_ID, id)?;
    }
    Ok(())
}

/// What answers the request at the gateway, if anything: a limit on its header, a filter
/// (a 401, the router's 404), a limit on its body. `None`: it goes to the chosen route.
async fn local_answer(
    session: &mut Session,
    ctx: &mut RequestCtx,
    listener: &Listener,
) -> Result<Option<LocalResponse>> {
    let limits = &listener.limits;
    if let Some(refusal) = limits::check_header(session.req_header(), limits) {
        // The rest of what this client sent is not worth reading.
        session.set_keepalive(None);
        return Ok(Some(refusal));
    }
    ensure_request_id(session.req_header_mut())?;
    let mut rctx = RequestContext::new(session.req_header_mut(), ctx.client_ip, &mut ctx.state);
    if let Flow::Respond(response) = listener.chain.run_request(&mut rctx).await {
        return Ok(Some(response));
    }
    // The chain continued, so the router chose a route.
    let route = ctx.state.route();
    ctx.body_limit = route
        .and_then(|route| route.max_request_body_bytes)
        .unwrap_or(limits.max_request_body_bytes);
    ctx.deadline = route
        .and_then(|route| route.timeouts.request)
        .map(|t| ctx.started + t);
    let refusal = limits::check_declared_body(session.req_header(), ctx.body_limit);
    if refusal.is_some() {
        session.set_keepalive(None);
    }
    Ok(refusal)
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            pipeline: self.pipeline.load_full(),
            listener: self.listener,
            client_ip: None,
            tls_version: None,
            grpc_answer: None,
            admission: None,
            connection_slot: None,
            deadline: None,
            attempt_deadline: None,
            retries: 0,
            retry_wait: None,
            status_retry: None,
            attempts: 0,
            connect_failures: 0,
            deadline_hit: false,
            state: RequestState::default(),
            started: Instant::now(),
            upstream_started: None,
            upstream_time: None,
            hosts: None,
            host: None,
            tried: Tried::default(),
            body_limit: u64::MAX,
            body_seen: 0,
            in_flight: InFlight::enter(&self.in_flight, &self.all_in_flight),
        }
    }

    /// Runs the request chain. `Ok(true)` means a response was sent here and pingora stops.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let tls = TlsConnection::of(session);
        guard::header_read(session, tls);
        ctx.client_ip = client_ip(session);
        if let Some(tls) = tls {
            ctx.tls_version = session
                .digest()
                .and_then(|d| d.ssl_digest.as_ref())
                .map(|d| d.version.clone());
            ctx.state = RequestState::with_client_certificate(tls.client_certificate.clone());
        }
        let pipeline = ctx.pipeline.clone();
        let listener = &pipeline.listeners[ctx.listener];
        // pingora keeps an HTTP/1.1 connection open for as long as the client likes; bound
        // the wait for its next request.
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(listener.limits.idle_timeout.as_secs().max(1)));
        }
        // Answer pipelined requests in order (RFC 9112 §9.3.2) instead of dropping all but
        // the first: pingora serves them one after another on the kept connection.
        if let pingora::protocols::http::ServerSession::H1(h1) = session.as_downstream_mut() {
            h1.set_pipelining_enabled(true);
        }

        let response = match local_answer(session, ctx, listener).await? {
            Some(response) => response,
            None => match self.admit(ctx).await {
                // pingora keeps each attempt's request body for a retry (up to its buffer's
                // size: past it, `retry_buffer_truncated` and no retry).
                None => return Ok(false),
                Some(refusal) => refusal,
            },
        };
        let grpc = respond::send(
            session,
            &response,
            &listener.chain,
            ctx.client_ip,
            &ctx.state,
        )
        .await?;
        ctx.grpc_answer = grpc.map(|code| (response.status().as_u16(), code));
        Ok(true)
    }

    /// The next host of the route's backend (see [`Backend::select`]): called again for each
    /// retry that `fail_to_connect` or `error_while_proxy` allowed.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = ctx.state.route().ok_or_else(|| {
            Error::explain(
                InternalError,
                "upstream_peer called before a route was chosen",
            )
        })?;
        if let Some(wait) = ctx.retry_wait.take() {
            tokio::time::sleep(wait).await;
        }
        ctx.attempts += 1;
        // A retry sends the body again from its start.
        ctx.body_seen = 0;
        let backend = &ctx.pipeline.backends[route.backend.index];
        let hosts = ctx.hosts.get_or_insert_with(|| backend.hosts());
        let host = hosts.select(ctx.tried).ok_or_else(|| {
            Error::explain(ConnectError, "every host of the backend failed to connect")
        })?;
        let mut peer = hosts.peer(host);
        let now = Instant::now();
        ctx.host = Some(host);
        ctx.upstream_started = Some(now);
        ctx.attempt_deadline = [
            ctx.deadline,
            route.timeouts.backend_request.map(|t| now + t),
        ]
        .into_iter()
        .flatten()
        .min();
        if let Some(deadline) = ctx.attempt_deadline {
            // Each wait of the attempt ends by the deadline; the body's chunks are checked
            // against it as they come (`upstream_response_body_filter`).
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                ctx.deadline_hit = ctx.deadline.is_some_and(|d| d <= now);
                return Err(route_timed_out());
            }
            let options = &mut peer.options;
            for timeout in [
                &mut options.connection_timeout,
                &mut options.total_connection_timeout,
                &mut options.read_timeout,
                &mut options.write_timeout,
            ] {
                *timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
        }
        Ok(peer)
    }

    /// Nothing of the request reached the host, so another host may take it, whatever its
    /// method: up to `connect_retries` more hosts, each tried once. Past those, a route whose
    /// `retry` lists `connect-failure` may try again (see [`Gateway::route_retry`]).
    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let (Some(route), Some(hosts), Some(host)) = (ctx.state.route(), &ctx.hosts, ctx.host)
        else {
            return e;
        };
        let backend = &ctx.pipeline.backends[route.backend.index];
        backend.report(hosts, host, false);
        ctx.tried.add(host);
        ctx.connect_failures += 1;
        let retries_left = ctx.connect_failures <= backend.config.connect_retries;
        let mut retry = retries_left && hosts.has_untried(ctx.tried);
        if retry {
            self.metrics
                .upstream_retries
                .with_label_values(&[&*backend.name, "connect_failure"])
                .inc();
        } else if route.retry.as_ref().is_some_and(|p| p.on_connect_failure()) {
            retry = self.route_retry(session, ctx, "connect_failure");
        }
        e.set_retry(retry);
        e
    }

    /// An error after the connection was made. pingora's default policy first (restated
    /// here, as an override cannot call the trait's default): a retry only when the
    /// connection came from the pool (it may have gone stale), the method is idempotent and
    /// the request body is still buffered. Then the route's `retry`, for a reset or a
    /// timeout it lists, on the same conditions and before any of the answer has gone out
    /// (see [`Gateway::route_retry`]); and a response held back for its status is retried as
    /// `upstream_response_filter` decided. A failure on a fresh connection counts against
    /// the host, unless the route's own deadline ran out (the client's time, not the host's
    /// fault).
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        // A response held back by `upstream_response_filter` for a retry already decided.
        if let Some(status) = ctx.status_retry.take() {
            ctx.report_host(!(502..=504).contains(&status));
            e.set_retry(true);
            return e;
        }
        if ctx.deadline_hit {
            // The route's time ran out (maybe a client reading slowly): not the host's
            // failure, and no time for another attempt.
            e.set_retry(false);
            return e;
        }
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated()
        {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        let upstream_fault = matches!(e.esource(), ErrorSource::Upstream);
        if upstream_fault && !client_reused {
            ctx.report_host(false);
        }
        if !e.retry() && upstream_fault {
            let policy = ctx.state.route().and_then(|r| r.retry.clone());
            let reason = match (policy, e.etype()) {
                (Some(p), ReadTimedout | WriteTimedout) if p.on_timeout() => Some("timeout"),
                (Some(p), ConnectionClosed | ReadError | WriteError | H2Error) if p.on_reset() => {
                    Some("reset")
                }
                _ => None,
            };
            if let Some(reason) = reason {
                let retry = self.route_retry(session, ctx, reason);
                e.set_retry(retry);
            }
        }
        e
    }

    /// Holds back a response whose status the route's `retry` names, when a retry is allowed:
    /// the attempt fails instead (see `error_while_proxy`) and the request goes again.
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        let retried = ctx
            .state
            .route()
            .and_then(|r| r.retry.as_ref())
            .is_some_and(|p| p.on_status(status));
        if retried && self.route_retry(session, ctx, "status") {
            ctx.status_retry = Some(status);
            return Error::e_explain(HTTPStatus(status), "retried for its status")
                .map_err(|e| e.into_up());
        }
        Ok(())
    }

    /// Counts the body as it streams to the backend: a body without a declared length (or
    /// with a false one) is cut off at the route's limit with 413, or with a reset when the
    /// response has begun.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(chunk) = body {
            ctx.body_seen = ctx.body_seen.saturating_add(chunk.len() as u64);
            if ctx.body_seen > ctx.body_limit {
                return Error::e_explain(
                    HTTPStatus(StatusCode::PAYLOAD_TOO_LARGE.as_u16()),
                    format!("request body over {} bytes", ctx.body_limit),
                );
            }
        }
        Ok(())
    }

    /// Runs on pingora's per-attempt copy of the request, after hop-by-hop headers are removed.
    /// The client address is the one `request_filter` recorded.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(ip) = ctx.client_ip {
            let ip = ip.to_string();
            let value = match upstream_request.headers.get(FORWARDED_FOR) {
                Some(prior) if !prior.is_empty() => {
                    let mut v = Vec::with_capacity(prior.len() + 2 + ip.len());
                    v.extend_from_slice(prior.as_bytes());
                    v.extend_from_slice(b", ");
                    v.extend_from_slice(ip.as_bytes());
                    // Taken as it is, not copied again.
                    HeaderValue::from_maybe_shared(bytes::Bytes::from(v))
                        .map_err(|e| Error::because(InternalError, "x-forwarded-for", e))?
                }
                _ => HeaderValue::try_from(ip)
                    .map_err(|e| Error::because(InternalError, "x-forwarded-for", e))?,
            };
            upstream_request.insert_header(FORWARDED_FOR, value)?;
        }
        Ok(())
    }

    /// Cuts off a response still streaming when the route's time is up (`timeouts`): the
    /// client's answer ends there and the upstream connection is closed.
    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        let now = Instant::now();
        match ctx.attempt_deadline {
            // The last piece completes the answer: late or not, it is whole.
            Some(deadline) if now >= deadline && !end_of_stream => {
                ctx.deadline_hit = ctx.deadline.is_some_and(|d| d <= now);
                Err(route_timed_out())
            }
            _ => Ok(None),
        }
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The backend's response header is here: that is the upstream time.
        ctx.upstream_time = ctx.upstream_started.map(|t| t.elapsed());
        // The gateway answers in its own HTTP version (RFC 9110 §6.2), not the backend's: an
        // HTTP/1.0 backend's answer goes to an HTTP/1.1 client as HTTP/1.1, framed by pingora
        // for a kept-alive connection.
        if session.req_header().version == http::Version::HTTP_11 && !session.is_http2() {
            upstream_response.set_version(http::Version::HTTP_11);
        }
        ctx.report_host(!matches!(upstream_response.status.as_u16(), 502..=504));
        respond::run_response_filters(
            &ctx.listener().chain,
            upstream_response,
            session.req_header(),
            ctx.client_ip,
            &ctx.state,
        )
        .await;
        Ok(())
    }

    /// Answers a request that could not be proxied with a JSON body naming its route and
    /// backend. Nothing is written when the response had already begun.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let failure = upstream_error::classify(e);
        // A route's deadline is counted as its own kind: the backend may have been on time.
        let kind = if ctx.deadline_hit {
            Some("route_timeout")
        } else {
            failure.upstream_kind()
        };
        if let (Some(kind), Some(route)) = (kind, ctx.state.route()) {
            self.metrics
                .upstream_failures
                .with_label_values(&[&*route.backend.name, kind])
                .inc();
        }
        let Some(status) = failure.status() else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        if session.response_written().is_some() {
            return FailToProxy {
                error_code: status.as_u16(),
                can_reuse_downstream: false,
            };
        }
        // pingora 0.9 closes the client connection after a failure past peer selection, so say
        // so (`connection: close`) rather than advertise a keep-alive that will not happen.
        session.set_keepalive(None);
        let response = failure.response(ctx.state.route());
        let chain = &ctx.listener().chain;
        match respond::send(session, &response, chain, ctx.client_ip, &ctx.state).await {
            Ok(grpc) => ctx.grpc_answer = grpc.map(|code| (status.as_u16(), code)),
            Err(err) => log::debug!("could not send the error response: {err}"),
        }
        FailToProxy {
            error_code: status.as_u16(),
            can_reuse_downstream: false,
        }
    }

    /// Runs once per request, however it ended (proxied, answered locally, failed).
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.in_flight.finish();
        ctx.admission = None;
        ctx.connection_slot = None;
        let status = match ctx.grpc_answer {
            Some((status, _)) => status,
            None => session.response_written().map_or(0, |r| r.status.as_u16()),
        };
        let elapsed = ctx.started.elapsed();
        let protocol = if session.is_http2() {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        };
        let listener = &*ctx.listener().name;
        let (route, backend) = ctx
            .state
            .route()
            .map_or(("-", "-"), |r| (&*r.route, &*r.backend.name));
        self.metrics
            .requests
            .with_label_values(&[
                listener,
                route,
                backend,
                &metrics::status_label(status),
                protocol,
            ])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[listener, route, backend])
            .observe(elapsed.as_secs_f64());

        if let Some(log) = &self.access_log {
            let entry = Entry {
                request: session.req_header(),
                client: ctx.client_ip,
                status,
                listener,
                route,
                backend,
                upstream_time: ctx.upstream_time,
                total_time: elapsed,
                headers: &ctx.pipeline.logged_headers,
                protocol,
                tls_version: ctx.tls_version.as_deref(),
                client_subject: ctx.state.client_certificate().map(|c| c.subject.as_str()),
                grpc_status: ctx.grpc_answer.map(|(_, code)| code),
            };
            if !log.record(&entry) {
                self.metrics.access_log_dropped.inc();
            }
        }
    }
}
