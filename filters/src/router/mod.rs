//! `router`: picks the route, and so the backend, for each request.
//!
//! The router is the boundary of a listener's chain: every `pre_routing` filter runs before it
//! (so headers they set, such as `x-tenant-version`, can be matched), every `post_routing`
//! filter after it. The server builds it from the listener's `routes` list with [`build`]
//! rather than placing it in a phase, so it is not in the filter registry.
//!
//! # Semantics
//! - Routes are tried **in list order; the first that matches wins** (as Envoy's route table).
//! - A route's `matches` entries are alternatives (OR); the tests inside one entry must all pass
//!   (AND). A route without `matches` takes every request.
//! - `path`: `Exact`, `PathPrefix` on segment boundaries (`/api` matches `/api` and `/api/x`,
//!   not `/apix`), or `RegularExpression` over the whole path. The query string is not part of
//!   the path.
//! - `headers`: `Exact` (default) or `RegularExpression` over the whole value; names are
//!   case-insensitive, values case-sensitive.
//! - `method`: exact, upper case. `query_params`: URL-decoded, first occurrence, `Exact` or
//!   `RegularExpression`.
//! - No route matches: `404` with `{"error": "no_route", ...}`.
//!
//! # Files
//! - `config.rs`: the YAML shape of a route.
//! - `matcher.rs`: compiled tests (regexes, header names, methods) and how each matches.
//! - `tests.rs`: the semantics above, case by case.

mod config;
mod matcher;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use http::StatusCode;

pub use config::{
    HeaderMatchConfig, MatchConfig, PathMatchConfig, PathMatchType, QueryParamMatchConfig,
    RouteConfig, ValueMatchType,
};
use matcher::Conditions;

use crate::{
    BuildContext, Filter, FilterConfigError, Flow, LocalResponse, RequestContext, RequestHeader,
    RouteTarget,
};

/// The registry name of the router.
pub const NAME: &str = "router";

/// A compiled route.
#[derive(Debug)]
struct Route {
    target: RouteTarget,
    alternatives: Vec<Conditions>,
}

impl Route {
    fn matches(&self, req: &RequestHeader) -> bool {
        // No alternatives at all means "every request", as a route without `matches`.
        self.alternatives.is_empty() || self.alternatives.iter().any(|c| c.matches(req))
    }
}

/// `name: conditions -> backend`, as `check` and `explain` print it.
impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.target.route)?;
        if self.alternatives.is_empty() {
            f.write_str("any request")?;
        }
        for (i, c) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        write!(f, " -> {}", self.target.backend.name)
    }
}

/// The compiled route table of one listener.
#[derive(Debug)]
struct Router {
    routes: Vec<Route>,
}

/// Compiles a listener's `routes` into its router. Route names and the backends they name are
/// checked with the rest of the config before this runs; errors here carry the path inside
/// the list (`[2].matches[0].path`).
pub fn build(
    routes: &[RouteConfig],
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn Filter>, FilterConfigError> {
    Ok(Arc::new(Router::build(routes, ctx)?))
}

impl Router {
    fn build(routes: &[RouteConfig], ctx: &BuildContext<'_>) -> Result<Self, FilterConfigError> {
        let mut compiled = Vec::with_capacity(routes.len());
        for (i, route) in routes.iter().enumerate() {
            let backend = ctx
                .backend(&route.backend)
                .map_err(|message| FilterConfigError::new(format!("[{i}].backend"), message))?;
            let alternatives = route
                .matches
                .iter()
                .enumerate()
                .map(|(j, m)| Conditions::compile(m, &format!("[{i}].matches[{j}]")))
                .collect::<Result<_, _>>()?;
            compiled.push(Route {
                target: RouteTarget {
                    route: Arc::from(route.name.as_str()),
                    backend,
                    max_request_body_bytes: route.max_request_body_bytes,
                },
                alternatives,
            });
        }
        Ok(Router { routes: compiled })
    }

    /// The position of the first route, in order, that matches `req`.
    fn first_match(&self, req: &RequestHeader) -> Option<usize> {
        self.routes.iter().position(|r| r.matches(req))
    }

    /// The route `req` goes to, if any.
    #[cfg(test)]
    fn select(&self, req: &RequestHeader) -> Option<&RouteTarget> {
        self.first_match(req).map(|i| &self.routes[i].target)
    }
}

#[async_trait]
impl Filter for Router {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn on_request(&self, ctx: &mut RequestContext<'_>) -> Flow {
        let chosen = self.first_match(ctx.request());
        ctx.note(|| match chosen {
            Some(i) => format!(
                "first match is route {} of {}: {}",
                i + 1,
                self.routes.len(),
                self.routes[i]
            ),
            None => format!("none of the {} routes matches: 404", self.routes.len()),
        });
        match chosen {
            Some(i) => {
                ctx.set_route(self.routes[i].target.clone());
                Flow::Continue
            }
            None => Flow::Respond(LocalResponse::error(
                StatusCode::NOT_FOUND,
                "no_route",
                "no route matches this request",
            )),
        }
    }

    fn describe(&self) -> Vec<String> {
        self.routes.iter().map(Route::to_string).collect()
    }
}
