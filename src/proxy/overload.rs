//! Overload protection on the request path: a request takes a place among its backend's
//! requests in flight (`max_requests`) once its route is chosen, or is answered 503 at once.

use http::StatusCode;
use switchyard_filters::LocalResponse;

use super::{Gateway, RequestCtx};

impl Gateway {
    /// Takes a place among the chosen backend's requests in flight for the rest of the
    /// request; `Some` is the 503 for a backend at its `max_requests`.
    pub(super) fn admit(&self, ctx: &mut RequestCtx) -> Option<LocalResponse> {
        let route = ctx.state.route()?;
        let backend = &ctx.pipeline.backends[route.backend.index];
        match backend.admit() {
            Some(admission) => {
                ctx.admission = Some(admission);
                // Each request earns its backend a share of a retry.
                backend.retry_budget().deposit();
                None
            }
            None => {
                self.metrics
                    .upstream_failures
                    .with_label_values(&[&*backend.name, "overloaded"])
                    .inc();
                Some(LocalResponse::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({
                        "error": "upstream_overloaded",
                        "message": format!(
                            "backend `{}` has its {} requests in flight",
                            backend.name,
                            backend.config.max_requests.unwrap_or_default()
                        ),
                        "route": &*route.route,
                        "backend": &*backend.name,
                    }),
                ))
            }
        }
    }
}
