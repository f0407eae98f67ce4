//! What a filter sees of a request and of its response.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use pingora_http::{RequestHeader, ResponseHeader};

use crate::{Filter, LocalResponse};

/// A backend, as resolved from its config name when the config is compiled.
///
/// `index` addresses the server's table of backends, so the request path never looks a backend
/// up by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    pub index: usize,
    pub name: Arc<str>,
}

/// The route the router chose for a request, and the backend that route sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    pub route: Arc<str>,
    pub backend: BackendRef,
    /// The route's own cap on the request body, over the listener's.
    pub max_request_body_bytes: Option<u64>,
    /// The route's time bounds.
    pub timeouts: crate::router::RouteTimeouts,
    /// When a failed attempt is sent again.
    pub retry: Option<Arc<crate::router::RetryPolicy>>,
    /// The route's own filters (and, for a share of a split, the share's after them).
    pub filters: RouteFilters,
}

/// A route's own filters: on the request they run after the listener's `post_routing`
/// filters, on the response before the listener's `response` filters. Cheap to clone; empty
/// for most routes.
#[derive(Clone, Default)]
pub struct RouteFilters(Option<Arc<FilterLists>>);

struct FilterLists {
    request: Vec<Arc<dyn Filter>>,
    response: Vec<Arc<dyn Filter>>,
}

impl RouteFilters {
    pub fn new(request: Vec<Arc<dyn Filter>>, response: Vec<Arc<dyn Filter>>) -> Self {
        if request.is_empty() && response.is_empty() {
            return RouteFilters(None);
        }
        RouteFilters(Some(Arc::new(FilterLists { request, response })))
    }

    pub fn request(&self) -> &[Arc<dyn Filter>] {
        self.0.as_deref().map_or(&[], |f| &f.request)
    }

    pub fn response(&self) -> &[Arc<dyn Filter>] {
        self.0.as_deref().map_or(&[], |f| &f.response)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl std::fmt::Debug for RouteFilters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |list: &[Arc<dyn Filter>]| list.iter().map(|f| f.name()).collect::<Vec<_>>();
        f.debug_struct("RouteFilters")
            .field("request", &names(self.request()))
            .field("response", &names(self.response()))
            .finish()
    }
}

/// The same filters: the same built lists, not equal configs.
impl PartialEq for RouteFilters {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for RouteFilters {}

/// A token that `jwt_authn` verified: which provider vouched for it, and its claims.
#[derive(Debug)]
pub struct VerifiedJwt {
    pub provider: Arc<str>,
    /// The token's payload, always a JSON object.
    pub claims: serde_json::Value,
    /// The claims as a CEL value, converted on first use and then kept with the token: a
    /// cached token is projected on every request it comes with, and the conversion costs
    /// more than the expression.
    cel: OnceLock<Option<Box<dyn cel::common::value::Val>>>,
}

impl VerifiedJwt {
    pub fn new(provider: Arc<str>, claims: serde_json::Value) -> Self {
        VerifiedJwt {
            provider,
            claims,
            cel: OnceLock::new(),
        }
    }

    /// The claims as a CEL value (`None` only if they cannot be one, which JSON always can).
    pub fn cel_claims(&self) -> Option<&dyn cel::common::value::Val> {
        self.cel
            .get_or_init(|| {
                cel::to_value(&self.claims)
                    .ok()
                    .and_then(|value| Box::<dyn cel::common::value::Val>::try_from(value).ok())
            })
            .as_deref()
    }
}

impl Clone for VerifiedJwt {
    fn clone(&self) -> Self {
        VerifiedJwt::new(self.provider.clone(), self.claims.clone())
    }
}

impl PartialEq for VerifiedJwt {
    fn eq(&self, other: &Self) -> bool {
        self.provider == other.provider && self.claims == other.claims
    }
}

/// Per-request state that outlives a single phase: filled in by request filters, read by later
/// ones, by the server when it picks the upstream, and by response filters.
#[derive(Debug, Default)]
pub struct RequestState {
    route: Option<RouteTarget>,
    jwt: Option<Arc<VerifiedJwt>>,
    client_certificate: Option<Arc<ClientCertificate>>,
    /// Headers a request filter asked to add to whatever answers the request.
    response_headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

/// A certificate the client presented and the listener verified (mutual TLS): what CEL sees
/// as `source.certificate` and the access log records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The subject's distinguished name as RFC 4514 writes it (`CN=orders,O=Acme`: the most
    /// specific name first, values escaped).
    pub subject: String,
    /// The subject's first common name (`orders`), when it has one.
    pub common_name: Option<String>,
    /// The DNS names of its subjectAltName, lower case.
    pub dns_names: Vec<String>,
    /// SHA-256 of the certificate's DER, in lower-case hex.
    pub fingerprint: String,
}

impl RequestState {
    /// The state of a request on a connection whose client presented `certificate`.
    pub fn with_client_certificate(certificate: Option<Arc<ClientCertificate>>) -> Self {
        RequestState {
            client_certificate: certificate,
            ..RequestState::default()
        }
    }

    /// The client's verified certificate, on a mutual-TLS listener.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.client_certificate.as_deref()
    }

    /// The route chosen by the router; `None` before routing or when no route matched.
    pub fn route(&self) -> Option<&RouteTarget> {
        self.route.as_ref()
    }

    /// Headers request filters asked to add to the response (see
    /// [`RequestContext::add_response_header`]).
    pub fn response_headers(&self) -> &[(http::HeaderName, http::HeaderValue)] {
        &self.response_headers
    }

    /// The verified token, if `jwt_authn` accepted one.
    pub fn jwt(&self) -> Option<&VerifiedJwt> {
        self.jwt.as_deref()
    }
}

/// A request as a filter sees it during `pre_routing` and `post_routing`.
pub struct RequestContext<'a> {
    request: &'a mut RequestHeader,
    client_ip: Option<IpAddr>,
    state: &'a mut RequestState,
    /// What filters say about what they did, when someone asks (`switchyard explain`).
    notes: Option<Vec<String>>,
    /// The answer of a route that answers itself (a redirect, a fixed answer), held until
    /// `post_routing` has run so that, say, authentication still comes first.
    route_answer: Option<LocalResponse>,
}

impl<'a> RequestContext<'a> {
    pub fn new(
        request: &'a mut RequestHeader,
        client_ip: Option<IpAddr>,
        state: &'a mut RequestState,
    ) -> Self {
        RequestContext {
            request,
            client_ip,
            state,
            notes: None,
            route_answer: None,
        }
    }

    /// The same context, with filters' notes kept: for a request being explained.
    pub fn traced(mut self) -> Self {
        self.notes = Some(Vec::new());
        self
    }

    /// Whether filters' notes are kept for this request.
    pub fn is_traced(&self) -> bool {
        self.notes.is_some()
    }

    /// Says what the filter did and why, in one line, when the request is traced. `line` runs
    /// only then, so a note costs nothing on live traffic.
    pub fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(notes) = &mut self.notes {
            notes.push(line());
        }
    }

    /// The notes made since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        self.notes.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The request header as it stands after earlier filters.
    pub fn request(&self) -> &RequestHeader {
        self.request
    }

    /// The request header, to change what later filters, the router and the upstream see.
    pub fn request_mut(&mut self) -> &mut RequestHeader {
        self.request
    }

    /// The address of the peer of the client connection (not a forwarded address).
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The client's verified certificate, on a mutual-TLS listener.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.state.client_certificate()
    }

    /// The route chosen so far: `None` in `pre_routing`; `Some` in `post_routing`, unless the
    /// route answers the request itself ([`has_route_answer`](Self::has_route_answer)).
    pub fn route(&self) -> Option<&RouteTarget> {
        self.state.route.as_ref()
    }

    /// Records the route the request goes to. Only the router calls this.
    pub fn set_route(&mut self, target: RouteTarget) {
        self.state.route = Some(target);
    }

    /// Records the answer of a route that answers the request itself. Only the router calls
    /// this; the chain sends it once `post_routing` has run, unless a filter answers first.
    pub fn set_route_answer(&mut self, answer: LocalResponse) {
        self.route_answer = Some(answer);
    }

    /// Whether the chosen route answers the request itself rather than proxying it.
    pub fn has_route_answer(&self) -> bool {
        self.route_answer.is_some()
    }

    pub(crate) fn take_route_answer(&mut self) -> Option<LocalResponse> {
        self.route_answer.take()
    }

    /// Adds a header to the response this request gets, whoever answers it (the backend, a
    /// later filter, the gateway on a failure): say, the state of a rate limit.
    pub fn add_response_header(&mut self, name: http::HeaderName, value: http::HeaderValue) {
        self.state.response_headers.push((name, value));
    }

    /// The verified token, if an earlier `jwt_authn` accepted one.
    pub fn jwt(&self) -> Option<&VerifiedJwt> {
        self.state.jwt()
    }

    /// The verified token, shared: for a filter that keeps it while it changes the request.
    pub fn jwt_shared(&self) -> Option<Arc<VerifiedJwt>> {
        self.state.jwt.clone()
    }

    /// Records a verified token (`jwt_authn`), or clears it with `None`.
    pub fn set_jwt(&mut self, jwt: Option<Arc<VerifiedJwt>>) {
        self.state.jwt = jwt;
    }
}

/// A response as a filter sees it in the `response` phase, with the request it answers.
pub struct ResponseContext<'a> {
    response: &'a mut ResponseHeader,
    request: &'a RequestHeader,
    client_ip: Option<IpAddr>,
    state: &'a RequestState,
}

impl<'a> ResponseContext<'a> {
    pub fn new(
        response: &'a mut ResponseHeader,
        request: &'a RequestHeader,
        client_ip: Option<IpAddr>,
        state: &'a RequestState,
    ) -> Self {
        ResponseContext {
            response,
            request,
            client_ip,
            state,
        }
    }

    /// The request as it went upstream (after request filters changed it).
    pub fn request(&self) -> &RequestHeader {
        self.request
    }

    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The client's verified certificate, on a mutual-TLS listener.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.state.client_certificate()
    }

    /// The verified token of the request, if any.
    pub fn jwt(&self) -> Option<&VerifiedJwt> {
        self.state.jwt()
    }

    /// The verified token, shared: for a filter that keeps it while it changes the response.
    pub fn jwt_shared(&self) -> Option<Arc<VerifiedJwt>> {
        self.state.jwt.clone()
    }

    pub fn response(&self) -> &ResponseHeader {
        self.response
    }

    pub fn response_mut(&mut self) -> &mut ResponseHeader {
        self.response
    }

    /// The route the request took, if one was chosen (a local 404 has none).
    pub fn route(&self) -> Option<&RouteTarget> {
        self.state.route()
    }
}
