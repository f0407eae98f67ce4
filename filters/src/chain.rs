//! [`FilterChain`]: a listener's filters in the order they run, and the one loop that runs them.
//!
//! Every caller that runs a chain goes through here: the proxy on each request,
//! `switchyard explain`, the fuzz targets and the micro-benchmarks. What they exercise is
//! therefore exactly what serves traffic.

use std::sync::Arc;

use http::StatusCode;

use crate::{Filter, Flow, LocalResponse, RequestContext, ResponseContext};

/// A listener's filters: `pre_routing`, the router, `post_routing`; and `response`.
///
/// The router is held apart from the phase lists, so a chain without one cannot be built.
pub struct FilterChain {
    pre_routing: Vec<Arc<dyn Filter>>,
    router: Arc<dyn Filter>,
    post_routing: Vec<Arc<dyn Filter>>,
    response: Vec<Arc<dyn Filter>>,
}

/// Watches a chain run filter by filter. `switchyard explain` uses it to show what each filter
/// did; the proxy runs the chain with `()`, which watches nothing and costs nothing.
pub trait ChainObserver {
    /// Called before `filter` sees the request.
    fn before(&mut self, filter: &dyn Filter, ctx: &RequestContext<'_>);
    /// Called after `filter` has seen the request and answered `flow`; on a traced context,
    /// `ctx` holds what the filter noted (see [`RequestContext::take_notes`]).
    fn after(&mut self, filter: &dyn Filter, ctx: &mut RequestContext<'_>, flow: &Flow);
}

impl ChainObserver for () {
    fn before(&mut self, _: &dyn Filter, _: &RequestContext<'_>) {}
    fn after(&mut self, _: &dyn Filter, _: &mut RequestContext<'_>, _: &Flow) {}
}

impl FilterChain {
    pub fn new(
        pre_routing: Vec<Arc<dyn Filter>>,
        router: Arc<dyn Filter>,
        post_routing: Vec<Arc<dyn Filter>>,
        response: Vec<Arc<dyn Filter>>,
    ) -> Self {
        FilterChain {
            pre_routing,
            router,
            post_routing,
            response,
        }
    }

    pub fn pre_routing(&self) -> &[Arc<dyn Filter>] {
        &self.pre_routing
    }

    pub fn router(&self) -> &dyn Filter {
        &*self.router
    }

    pub fn post_routing(&self) -> &[Arc<dyn Filter>] {
        &self.post_routing
    }

    pub fn response(&self) -> &[Arc<dyn Filter>] {
        &self.response
    }

    /// The request filters in the order they run: `pre_routing`, the router, `post_routing`.
    pub fn request_filters(&self) -> impl Iterator<Item = &dyn Filter> {
        let router: &dyn Filter = &*self.router;
        self.pre_routing
            .iter()
            .map(|f| &**f)
            .chain(std::iter::once(router))
            .chain(self.post_routing.iter().map(|f| &**f))
    }

    /// Every filter of the chain, request filters first, then the routes' own: for metrics
    /// and readiness.
    pub fn filters(&self) -> impl Iterator<Item = &dyn Filter> {
        self.request_filters()
            .chain(self.response.iter().map(|f| &**f))
            .chain(self.router.nested().iter().map(|f| &**f))
    }

    /// Runs the request filters on one request, in order, until one answers.
    ///
    /// [`Flow::Continue`] means the request goes upstream, and the router has chosen its route
    /// ([`RequestContext::route`] is `Some`). [`Flow::Respond`] is the answer to send instead:
    /// a filter's (a 401, the router's 404); that of a route that answers itself (a redirect,
    /// a fixed answer), sent only after `post_routing` let the request through; or a 500 if
    /// the chain ended without a route.
    pub async fn run_request(&self, ctx: &mut RequestContext<'_>) -> Flow {
        self.run_request_observed(ctx, &mut ()).await
    }

    /// [`run_request`](Self::run_request), telling `observer` about each filter as it runs.
    pub async fn run_request_observed(
        &self,
        ctx: &mut RequestContext<'_>,
        observer: &mut impl ChainObserver,
    ) -> Flow {
        for filter in self.request_filters() {
            if let Flow::Respond(answer) = run_one(filter, ctx, observer).await {
                return Flow::Respond(answer);
            }
        }
        // The chosen route's own filters, after the listener's.
        let route_filters = ctx.route().map(|r| r.filters.clone()).unwrap_or_default();
        for filter in route_filters.request() {
            if let Flow::Respond(answer) = run_one(&**filter, ctx, observer).await {
                return Flow::Respond(answer);
            }
        }
        if let Some(answer) = ctx.take_route_answer() {
            return Flow::Respond(answer);
        }
        if ctx.route().is_none() {
            // The router either chooses a route or answers 404, so this means a filter broke
            // that contract; answer rather than proxy to nowhere.
            return Flow::Respond(LocalResponse::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no_route_selected",
                "the filter chain finished without choosing a route",
            ));
        }
        Flow::Continue
    }

    /// Runs the chosen route's own response filters, then the listener's `response` filters,
    /// on one response header, in order.
    pub async fn run_response(&self, ctx: &mut ResponseContext<'_>) {
        let route_filters = ctx.route().map(|r| r.filters.clone()).unwrap_or_default();
        for filter in route_filters.response().iter().chain(&self.response) {
            filter.on_response(ctx).await;
        }
    }

    /// Whether any response filter may run: the listener's, or some route's.
    pub fn has_response_filters(&self) -> bool {
        !self.response.is_empty() || !self.router.nested().is_empty()
    }
}

/// Runs one request filter, telling `observer`.
async fn run_one(
    filter: &dyn Filter,
    ctx: &mut RequestContext<'_>,
    observer: &mut impl ChainObserver,
) -> Flow {
    observer.before(filter, ctx);
    let flow = filter.on_request(ctx).await;
    observer.after(filter, ctx, &flow);
    flow
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::router::RouteConfig;
    use crate::{BuildContext, RequestHeader, RequestState};

    /// A `post_routing` filter that refuses every request, as `jwt_authn` does a bad token.
    struct Refuse;

    #[async_trait]
    impl Filter for Refuse {
        fn name(&self) -> &'static str {
            "refuse"
        }

        async fn on_request(&self, _: &mut RequestContext<'_>) -> Flow {
            Flow::Respond(LocalResponse::error(
                StatusCode::UNAUTHORIZED,
                "refused",
                "refused",
            ))
        }
    }

    fn chain(routes: &str, post_routing: Vec<Arc<dyn Filter>>) -> FilterChain {
        let backends: Vec<Arc<str>> = vec![Arc::from("b")];
        let routes: Vec<RouteConfig> = serde_yaml::from_str(routes).expect("routes parse");
        let router = crate::router::build(
            &routes,
            &BuildContext::new(&backends, std::path::Path::new(".")),
        )
        .expect("router builds");
        FilterChain::new(Vec::new(), router, post_routing, Vec::new())
    }

    async fn status(chain: &FilterChain) -> Option<u16> {
        let mut request = RequestHeader::build("GET", b"/", None).expect("request");
        let mut state = RequestState::default();
        let mut ctx = RequestContext::new(&mut request, None, &mut state);
        match chain.run_request(&mut ctx).await {
            Flow::Respond(answer) => Some(answer.status().as_u16()),
            Flow::Continue => None,
        }
    }

    #[tokio::test]
    async fn post_routing_runs_before_a_route_that_answers_itself() {
        let redirect = "[{ name: r, redirect: { hostname: example.org } }]";
        assert_eq!(status(&chain(redirect, Vec::new())).await, Some(302));
        assert_eq!(
            status(&chain(redirect, vec![Arc::new(Refuse)])).await,
            Some(401),
            "the refusal comes before the redirect"
        );
        let fixed = "[{ name: f, respond: { status: 503 } }]";
        assert_eq!(status(&chain(fixed, Vec::new())).await, Some(503));
        assert_eq!(
            status(&chain(fixed, vec![Arc::new(Refuse)])).await,
            Some(401)
        );
        let proxied = "[{ name: p, backend: b }]";
        assert_eq!(status(&chain(proxied, Vec::new())).await, None);
    }
}
