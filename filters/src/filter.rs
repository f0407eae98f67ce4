//! The [`Filter`] trait: what a filter is, when each of its methods runs, and what its answer means.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{LocalResponse, RequestContext, ResponseContext};

/// Where in a listener's chain a filter runs.
///
/// The order is fixed: every `pre_routing` filter, then the router, then every `post_routing`
/// filter, then the upstream request; on the way back, every `response` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before a route is chosen: filters whose work decides the route (authentication, claim
    /// projection into headers) run here. [`RequestContext::route`] is always `None`.
    PreRouting,
    /// After the router chose a route: [`RequestContext::route`] is always `Some`.
    PostRouting,
    /// On the response header, before it goes to the client. Runs for upstream responses and for
    /// local responses (a filter's 401, the router's 404) alike.
    Response,
}

impl Phase {
    /// The name of the phase as it is spelled in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PreRouting => "pre_routing",
            Phase::PostRouting => "post_routing",
            Phase::Response => "response",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A filter's verdict on a request.
#[derive(Debug)]
pub enum Flow {
    /// Go on to the next filter (or, after the last one, to the upstream).
    Continue,
    /// Stop here and send this response to the client; no later filter and no upstream sees the
    /// request. Response filters still run on it.
    Respond(LocalResponse),
}

/// One named step of a listener's chain.
///
/// A filter is built once per config load by its [`FilterFactory`](crate::FilterFactory) and
/// shared by every request (and every worker thread) until the config is replaced, so it holds
/// only immutable, pre-compiled state: anything that varies per request lives in the
/// [`RequestContext`]. Filters never panic on request input and never block the thread.
#[async_trait]
pub trait Filter: Send + Sync + 'static {
    /// The filter's registry name (`router`, `jwt_authn`, ...), used in logs and explanations.
    fn name(&self) -> &'static str;

    /// Runs once per request, in the filter's phase (`pre_routing` or `post_routing`), after the
    /// request header has been read and before the body is forwarded.
    ///
    /// Returning [`Flow::Continue`] passes the request to the next filter; returning
    /// [`Flow::Respond`] answers it here. Changes made through `ctx` (headers set or removed, the
    /// route chosen) are what later filters and the upstream see.
    ///
    /// A filter says why it did what it did through [`RequestContext::note`]: `switchyard
    /// explain` runs the chain on a traced context and prints the notes beside the header
    /// changes, which the server shows itself. So a note need only say what a diff cannot (why
    /// a token was rejected, why a header was dropped, which route matched).
    async fn on_request(&self, ctx: &mut RequestContext<'_>) -> Flow;

    /// Runs once per response, in the `response` phase, on the response header before it is sent
    /// to the client. The default does nothing.
    async fn on_response(&self, _ctx: &mut ResponseContext<'_>) {}

    /// A few human-readable lines on what this instance does (its routes, its providers), shown
    /// by `switchyard check`. The default says nothing.
    fn describe(&self) -> Vec<String> {
        Vec::new()
    }

    /// The metrics this filter keeps (its outcomes, its drops, the state of its key cache),
    /// read by the server when `/metrics` is scraped. Label values come from config names and
    /// fixed reason codes, never from requests. The default keeps none.
    fn metrics(&self) -> Vec<MetricSample> {
        Vec::new()
    }

    /// The filters this one holds and runs itself (the router, each route's own): the
    /// server reads their metrics and readiness too. The default holds none.
    fn nested(&self) -> &[Arc<dyn Filter>] {
        &[]
    }

    /// What this filter still waits for before it can serve every request it may see (signing
    /// keys not fetched yet), one line each; empty when it is ready. `/readyz` reports the
    /// gateway not ready while any filter waits. Cheap and non-blocking: it is called on every
    /// probe. The default never waits.
    fn waiting_for(&self) -> Vec<String> {
        Vec::new()
    }
}

/// How the server treats a [`MetricSample`] across filters and reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A count kept by this filter instance, starting at zero when it is built. The server
    /// sums it over filters and carries it over reloads, so the exposed counter never goes
    /// backwards.
    Counter,
    /// A count kept by state that outlives one filter (a key cache shared by the filters of
    /// successive configs): already cumulative, so it is neither summed nor carried over.
    /// Filters sharing the state report the same value; the server takes the largest.
    SharedCounter,
    /// A value at this moment (keys held, the time of the last fetch); the largest wins.
    Gauge,
}

/// One metric value a filter exposes, e.g. `jwt_authn_total{provider="lab",outcome="valid"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSample {
    /// The metric name without the server's prefix; counters end in `_total`.
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub labels: Vec<(&'static str, String)>,
    pub value: u64,
}
