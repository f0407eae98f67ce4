//! Overload protection on the request path, once the route is chosen: a place among the
//! backend's requests in flight (`max_requests`, refused at once past it), then one of its
//! connection slots (`max_connections`, with up to `max_pending` requests waiting for one).
//! Both are held until the request ends. A request refused is answered 503 at once.

use http::StatusCode;
use switchyard_filters::LocalResponse;

use super::{Gateway, RequestCtx};
use crate::backend::connection_slots::NoSlot;

impl Gateway {
    /// Admits the request to its backend; `Some` is the 503 when the backend is at a bound.
    pub(super) async fn admit(&self, ctx: &mut RequestCtx) -> Option<LocalResponse> {
        let route = ctx.state.route()?;
        let (route_name, backend) = (
            route.route.clone(),
            ctx.pipeline.backends[route.backend.index].clone(),
        );
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
