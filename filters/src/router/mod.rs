//! `router`: picks the route, and so the backend, for each request.
//!
//! The router is the boundary of a listener's chain: every `pre_routing` filter runs before it
//! (so headers they set, such as `x-tenant-version`, can be matched), every `post_routing`
//! filter after it. The server builds it from the listener's `routes` list with [`build`]
//! rather than placing it in a phase, so it is not in the filter registry.
//!
//! # Semantics
//! - Routes are tried **in list order; the first that matches wins** (as Envoy's route table).
//! - `hostnames`: a route with host names takes only requests addressed to one of them
//!   (`hostname.rs`: exact, or `*.` wildcards over any depth below the suffix; the request's
//!   host without its port, without case). Without `hostnames`, any host.
//! - A route's `matches` entries are alternatives (OR); the tests inside one entry must all pass
//!   (AND). A route without `matches` takes every request.
//! - `path`: `Exact`, `PathPrefix` on segment boundaries (`/api` matches `/api` and `/api/x`,
//!   not `/apix`), or `RegularExpression` over the whole path. The query string is not part of
//!   the path.
//! - `headers`: `Exact` (default) or `RegularExpression` over the whole value; names are
//!   case-insensitive, values case-sensitive.
//! - `method`: exact, upper case. `query_params`: URL-decoded, first occurrence, `Exact` or
//!   `RegularExpression`.
//! - A route goes to its `backend`, or splits its traffic over `backends` at random by weight
//!   (each share a backend or an answer; weight 0 gets nothing), or answers itself
//!   (`respond`: a status and the gateway's JSON error body naming the route).
//! - No route matches: `404` with `{"error": "no_route", ...}`.
//!
//! # Files
//! - `config.rs`: the YAML shape of a route.
//! - `hostname.rs`: host names, and the request's host.
//! - `matcher.rs`: compiled tests (regexes, header names, methods) and how each matches.
//! - `tests.rs`: the semantics above, case by case.

mod config;
mod hostname;
mod matcher;
mod redirect;
mod retry;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use http::StatusCode;

pub use crate::rewrite::{PathRewriteConfig, PrefixRewriteConfig};
pub use config::{
    DirectResponseConfig, HeaderMatchConfig, MatchConfig, PathMatchConfig, PathMatchType,
    QueryParamMatchConfig, RedirectConfig, RetryCondition, RetryConfig, RetryOn, RouteConfig,
    RouteFiltersConfig, RouteTimeouts, ValueMatchType, WeightedBackendConfig,
};
use hostname::request_host;
pub use hostname::Hostname;
use matcher::Conditions;
use redirect::Redirect;
pub use retry::RetryPolicy;

use crate::{
    BuildContext, Filter, FilterConfigError, Flow, LocalResponse, Phase, RequestContext,
    RequestHeader, RouteFilters, RouteTarget,
};

/// The registry name of the router.
pub const NAME: &str = "router";

/// A compiled route.
#[derive(Debug)]
struct Route {
    name: Arc<str>,
    /// Empty: any host.
    hostnames: Vec<Hostname>,
    alternatives: Vec<Conditions>,
    action: Action,
}

/// What a route does with the requests it takes.
#[derive(Debug)]
enum Action {
    /// Every request the same way.
    One(Outcome),
    /// Each request one of several ways, at random by weight.
    Split(Split),
}

/// What becomes of one request.
#[derive(Debug)]
enum Outcome {
    /// It goes to this backend, through the route's own filters.
    Proxy(RouteTarget),
    /// It is answered with this, at the gateway.
    Respond(LocalResponse),
    /// It is answered with a redirect built from it.
    Redirect(Redirect),
}

/// Shares of a route's traffic: each outcome with the running total of the weights up to and
/// including its own, so a draw below `total` finds its share by the first bound above it.
#[derive(Debug)]
struct Split {
    shares: Vec<(u64, Outcome)>,
    total: u64,
}

impl Action {
    /// Every outcome the action may have.
    fn outcomes(&self) -> Vec<&Outcome> {
        match self {
            Action::One(outcome) => vec![outcome],
            Action::Split(split) => split.shares.iter().map(|(_, o)| o).collect(),
        }
    }

    /// The outcome for one request.
    fn pick(&self) -> &Outcome {
        match self {
            Action::One(outcome) => outcome,
            Action::Split(split) => {
                let draw = fastrand::u64(0..split.total);
                let at = split.shares.partition_point(|(bound, _)| *bound <= draw);
                // `draw < total`, the last bound, so a share is always found.
                &split.shares[at.min(split.shares.len() - 1)].1
            }
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Proxy(target) => {
                f.write_str(&target.backend.name)?;
                let mut bounds = Vec::new();
                let t = &target.timeouts;
                if let Some(request) = t.request {
                    bounds.push(format!(
                        "request within {}",
                        humantime_serde::re::humantime::format_duration(request)
                    ));
                }
                if let Some(attempt) = t.backend_request {
                    bounds.push(format!(
                        "each attempt within {}",
                        humantime_serde::re::humantime::format_duration(attempt)
                    ));
                }
                if let Some(retry) = &target.retry {
                    bounds.push(retry.to_string());
                }
                if !bounds.is_empty() {
                    write!(f, " ({})", bounds.join("; "))?;
                }
                Ok(())
            }
            Outcome::Respond(response) => write!(f, "answer {}", response.status().as_u16()),
            Outcome::Redirect(redirect) => write!(f, "{redirect}"),
        }
    }
}

impl Route {
    /// `host` is the request's host (see [`request_host`]), looked up once per request.
    fn matches(&self, req: &RequestHeader, host: Option<&str>) -> bool {
        if !self.hostnames.is_empty() {
            let Some(host) = host else {
                return false;
            };
            if !self.hostnames.iter().any(|h| h.matches(host)) {
                return false;
            }
        }
        // No alternatives at all means "every request", as a route without `matches`.
        self.alternatives.is_empty() || self.alternatives.iter().any(|c| c.matches(req))
    }
}

/// `name: conditions -> backend`, as `check` and `explain` print it.
impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.name)?;
        if !self.hostnames.is_empty() {
            let hosts: Vec<String> = self.hostnames.iter().map(|h| h.to_string()).collect();
            write!(f, "host {} and ", hosts.join(" | "))?;
        }
        if self.alternatives.is_empty() {
            f.write_str("any request")?;
        }
        for (i, c) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        match &self.action {
            Action::One(outcome) => write!(f, " -> {outcome}"),
            Action::Split(split) => {
                let mut previous = 0;
                let shares: Vec<String> = split
                    .shares
                    .iter()
                    .map(|(bound, outcome)| {
                        let weight = bound - previous;
                        previous = *bound;
                        format!("{outcome} ({weight})")
                    })
                    .collect();
                write!(f, " -> {}", shares.join(", "))
            }
        }
    }
}

/// The compiled route table of one listener.
struct Router {
    routes: Vec<Route>,
    /// Whether any route has host names, so the request's host is worth looking up.
    by_host: bool,
    /// Every route's own filters, for their metrics and readiness.
    nested: Vec<Arc<dyn Filter>>,
}

/// Compiles a listener's `routes` into its router. Route names, the backends they name and
/// the choice between `backend` and `respond` are checked with the rest of the config before
/// this runs; errors here carry the path inside the list (`[2].matches[0].path`).
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
            let name: Arc<str> = Arc::from(route.name.as_str());
            let hostnames = route
                .hostnames
                .iter()
                .enumerate()
                .map(|(j, h)| Hostname::parse(h, &format!("[{i}].hostnames[{j}]")))
                .collect::<Result<_, _>>()?;
            let alternatives = route
                .matches
                .iter()
                .enumerate()
                .map(|(j, m)| Conditions::compile(m, &format!("[{i}].matches[{j}]")))
                .collect::<Result<_, _>>()?;
            let route_filters = &route.filters;
            let retry = route
                .retry
                .as_ref()
                .map(|r| RetryPolicy::compile(r, &format!("[{i}].retry")).map(Arc::new))
                .transpose()?;
            let outcome = |backend: &Option<String>,
                           respond: &Option<DirectResponseConfig>,
                           redirect: &Option<RedirectConfig>,
                           own: &RouteFiltersConfig,
                           at: &str| {
                match (backend, respond, redirect) {
                    (Some(backend), None, None) => {
                        let backend = ctx
                            .backend(backend)
                            .map_err(|m| FilterConfigError::new(format!("{at}.backend"), m))?;
                        let filters = route_filters_of(
                            &[
                                (route_filters, &format!("[{i}].filters")),
                                (own, &format!("{at}.filters")),
                            ],
                            ctx,
                        )?;
                        Ok(Outcome::Proxy(RouteTarget {
                            route: name.clone(),
                            backend,
                            max_request_body_bytes: route.max_request_body_bytes,
                            timeouts: route.timeouts,
                            retry: retry.clone(),
                            filters,
                        }))
                    }
                    (None, Some(respond), None) => {
                        Ok(Outcome::Respond(direct_response(respond, &name)))
                    }
                    (None, None, Some(redirect)) => Ok(Outcome::Redirect(Redirect::compile(
                        redirect,
                        &format!("{at}.redirect"),
                    )?)),
                    _ => Err(FilterConfigError::new(
                        at,
                        "give one of `backend`, `respond` and `redirect`",
                    )),
                }
            };
            let single = [
                route.backend.is_some(),
                route.respond.is_some(),
                route.redirect.is_some(),
            ]
            .iter()
            .any(|given| *given);
            let action = match (single, route.backends.as_slice()) {
                (true, []) => Action::One(outcome(
                    &route.backend,
                    &route.respond,
                    &route.redirect,
                    &RouteFiltersConfig::default(),
                    &format!("[{i}]"),
                )?),
                (false, shares) if !shares.is_empty() => {
                    let mut split = Split {
                        shares: Vec::with_capacity(shares.len()),
                        total: 0,
                    };
                    for (j, share) in shares.iter().enumerate() {
                        let drawn = outcome(
                            &share.backend,
                            &share.respond,
                            &share.redirect,
                            &share.filters,
                            &format!("[{i}].backends[{j}]"),
                        )?;
                        // A share of weight 0 gets no traffic: it takes no room in the draw.
                        if share.weight > 0 {
                            split.total += u64::from(share.weight);
                            split.shares.push((split.total, drawn));
                        }
                    }
                    if split.total == 0 {
                        return Err(FilterConfigError::new(
                            format!("[{i}].backends"),
                            "every weight is 0: no share would get traffic",
                        ));
                    }
                    Action::Split(split)
                }
                _ => {
                    return Err(FilterConfigError::new(
                        format!("[{i}]"),
                        "give one of `backend`, `backends`, `respond` and `redirect`",
                    ))
                }
            };
            compiled.push(Route {
                name,
                hostnames,
                alternatives,
                action,
            });
        }
        let by_host = compiled.iter().any(|r| !r.hostnames.is_empty());
        let nested = compiled
            .iter()
            .flat_map(|r| r.action.outcomes())
            .filter_map(|o| match o {
                Outcome::Proxy(target) => Some(&target.filters),
                _ => None,
            })
            .flat_map(|f| f.request().iter().chain(f.response()).cloned())
            .collect();
        Ok(Router {
            routes: compiled,
            by_host,
            nested,
        })
    }

    /// The position of the first route, in order, that matches `req`.
    fn first_match(&self, req: &RequestHeader) -> Option<usize> {
        let host = if self.by_host {
            request_host(req)
        } else {
            None
        };
        self.routes
            .iter()
            .position(|r| r.matches(req, host.as_deref()))
    }

    /// The backend `req` goes to, if a route takes it there.
    #[cfg(test)]
    fn select(&self, req: &RequestHeader) -> Option<&RouteTarget> {
        match self.routes[self.first_match(req)?].action.pick() {
            Outcome::Proxy(target) => Some(target),
            Outcome::Respond(_) | Outcome::Redirect(_) => None,
        }
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
        match chosen.map(|i| self.routes[i].action.pick()) {
            Some(Outcome::Proxy(target)) => {
                ctx.set_route(target.clone());
                Flow::Continue
            }
            // `post_routing` still runs on a route that answers itself: a redirect behind
            // authentication is not given to a client that fails it.
            Some(Outcome::Respond(response)) => {
                ctx.set_route_answer(response.clone());
                Flow::Continue
            }
            Some(Outcome::Redirect(redirect)) => {
                let answer = redirect.answer(ctx.request());
                ctx.set_route_answer(answer);
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

    fn nested(&self) -> &[Arc<dyn Filter>] {
        &self.nested
    }
}

/// The answer of a `respond` route, built once.
fn direct_response(config: &DirectResponseConfig, route: &str) -> LocalResponse {
    // Validation keeps the status within 200..=599.
    let status = StatusCode::from_u16(config.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error = config.error.clone().unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace([' ', '-'], "_")
    });
    let message = config
        .message
        .clone()
        .unwrap_or_else(|| format!("answered by route `{route}`"));
    LocalResponse::json(
        status,
        &serde_json::json!({ "error": error, "message": message, "route": route }),
    )
}

/// The built filters of a route and, for a share, its own after them; `lists` gives each
/// config with where it sits, for errors.
fn route_filters_of(
    lists: &[(&RouteFiltersConfig, &str)],
    ctx: &BuildContext<'_>,
) -> Result<RouteFilters, FilterConfigError> {
    let mut request = Vec::new();
    let mut response = Vec::new();
    for (config, at) in lists {
        for (j, entry) in config.request.iter().enumerate() {
            request.push(ctx.build_filter(
                entry,
                Phase::PostRouting,
                &format!("{at}.request[{j}]"),
            )?);
        }
        for (j, entry) in config.response.iter().enumerate() {
            response.push(ctx.build_filter(
                entry,
                Phase::Response,
                &format!("{at}.response[{j}]"),
            )?);
        }
    }
    Ok(RouteFilters::new(request, response))
}
