//! Admission to a backend on the request path, once the route is chosen: hosts to send to
//! (a backend whose names have no address answers 503 `upstream_unresolved`), then overload
//! protection: a place among the backend's requests in flight (`max_requests`, refused at once
//! past it), then one of its connection slots (`max_connections`, with up to `max_pending`
//! requests waiting for one). Both are held until the request ends. A request refused is
//! answered 503 at once.

use http::StatusCode;
use switchyard_filters::LocalResponse;

use super::{Gateway, RequestCtx};
use crate::backend::connection_slots::NoSlot;
use crate::backend::Empty;

impl Gateway {
    /// Admits the request to its backend; `Some` is the 503 when the backend is at a bound.
    pub(super) async fn admit(&self, ctx: &mut RequestCtx) -> Option<LocalResponse> {
        let route = ctx.state.route()?;
        let (route_name, backend) = (
            route.route.clone(),
            ctx.pipeline.backends[route.backend.index].clone(),
        );
        // A name still on its first lookup (the gateway has just started) is worth waiting
        // for, as a connection would be: within the connect timeout and the route's time.
        let wait = ctx.deadline.map_or(backend.config.connect_timeout, |d| {
            d.saturating_duration_since(std::time::Instant::now())
                .min(backend.config.connect_timeout)
        });
        let hosts = backend.hosts_when_known(wait).await;
        if let Some(empty) = hosts.empty() {
            return Some(self.unresolved(&route_name, &backend.name, empty));
        }
        ctx.hosts = Some(hosts);
        let Some(admission) = backend.admit() else {
            let message = format!(
                "backend `{}` has its {} requests in flight",
                backend.name,
                backend.config.max_requests.unwrap_or_default()
            );
            return Some(self.overloaded(&route_name, &backend.name, &message));
        };
        ctx.admission = Some(admission);
        if let Some(slots) = backend.connection_slots() {
            match slots.acquire(backend.config.connect_timeout).await {
                Ok(slot) => ctx.connection_slot = Some(slot),
                Err(why) => {
                    let message = match why {
                        NoSlot::PendingFull => format!(
                            "backend `{}` has its {} connections in use and {} requests waiting",
                            backend.name,
                            backend.config.max_connections.unwrap_or_default(),
                            backend.config.max_pending
                        ),
                        NoSlot::TimedOut => format!(
                            "no connection to backend `{}` freed within {}",
                            backend.name,
                            humantime::format_duration(backend.config.connect_timeout)
                        ),
                    };
                    return Some(self.overloaded(&route_name, &backend.name, &message));
                }
            }
        }
        // Each request admitted earns its backend a share of a retry.
        backend.retry_budget().deposit();
        None
    }

    /// The 503 of a backend without an address, counted.
    fn unresolved(&self, route: &str, backend: &str, why: &Empty) -> LocalResponse {
        self.metrics
            .upstream_failures
            .with_label_values(&[backend, "unresolved"])
            .inc();
        let message = match why {
            Empty::FirstLookup => {
                format!("backend `{backend}`: its host names are being looked up")
            }
            Empty::Unresolved(why) => format!("backend `{backend}` has no address: {why}"),
        };
        LocalResponse::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "error": "upstream_unresolved",
                "message": message,
                "route": route,
                "backend": backend,
            }),
        )
    }

    /// The 503 of a backend at one of its bounds, counted.
    fn overloaded(&self, route: &str, backend: &str, message: &str) -> LocalResponse {
        self.metrics
            .upstream_failures
            .with_label_values(&[backend, "overloaded"])
            .inc();
        LocalResponse::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({
                "error": "upstream_overloaded",
                "message": message,
                "route": route,
                "backend": backend,
            }),
        )
    }
}
