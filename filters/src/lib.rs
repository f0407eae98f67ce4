//! Switchyard's filter API and its built-in filters.
//!
//! A listener runs its requests through one chain of named [`Filter`]s, in three phases:
//!
//! ```text
//! pre_routing filters ─► router ─► post_routing filters ─► upstream ─► response filters
//! ```
//!
//! Filters are built once, at config load: those placed in a phase by a [`FilterFactory`]
//! looked up by name in the [`Registry`]. Each filter sees the request through a [`RequestContext`] and either lets it
//! continue or answers it itself with a [`LocalResponse`] (a 401, a 404). The [`router`] is a
//! filter too: it is the boundary between `pre_routing` and `post_routing`, and it is the one
//! filter that selects the route (and so the backend) a request goes to; the server builds it
//! from a listener's routes with [`router::build`].
//!
//! A listener's filters make one [`FilterChain`], whose [`run_request`](FilterChain::run_request)
//! and [`run_response`](FilterChain::run_response) are the only loops that run filters: the
//! proxy, `switchyard explain`, the fuzz targets and the benchmarks all go through them.
//!
//! Each built-in filter is one folder (`jwt_authn/`, `transformation/`, `router/`) whose
//! `mod.rs` tells its whole story and lists its files; a filter placed in a phase exports its
//! `NAME` and its factory. Adding one is one folder and one line in
//! [`Registry::with_builtins`].
//!
//! This crate knows nothing of the server that drives it: it sees HTTP request and response
//! headers and the few facts about the connection that [`RequestContext`] carries.

mod background;
mod chain;
mod context;
mod expression;
mod filter;
pub mod headers;
mod http_client;
mod registry;
mod response;
mod rewrite;

pub mod jwt_authn;
pub mod rate_limit;
pub mod router;
pub mod transformation;
pub mod url_rewrite;
pub mod validate;

pub use background::Background;
pub use chain::{ChainObserver, FilterChain};
pub use context::{
    BackendRef, ClientCertificate, RequestContext, RequestState, ResponseContext, RouteFilters,
    RouteTarget, VerifiedJwt,
};
pub use filter::{Filter, Flow, MetricKind, MetricSample, Phase};
pub use http_client::{FetchError, FetchErrorKind, HttpClient, HttpResponse};
pub use registry::{
    BuildContext, FilterConfigError, FilterEntry, FilterFactory, Listener, Registry,
};
pub use response::LocalResponse;

/// Request and response header types, re-exported so that filter authors and the server agree on
/// one definition.
pub use pingora_http::{RequestHeader, ResponseHeader};
