//! A route's `retry` on the request path: whether a failed attempt is made again, and the
//! bookkeeping that sends it to another host after its backoff. The policy itself (what is
//! retried, how often, how long to wait) is the router's (`switchyard_filters::router::
//! RetryPolicy`); the budget that bounds retries per backend is `backend::retry_budget`.

use std::time::Instant;

use pingora::proxy::Session;

use super::{Gateway, RequestCtx};
use crate::backend::Tried;

impl Gateway {
    /// Whether the failed attempt is sent again under the route's `retry`, for `reason`
    /// (`reset`, `timeout`, `status`, `connect_failure`): when attempts are left, the request
    /// is safe to replay and the backend's retry budget allows it. A retry goes to another
    /// host when one is left, after the policy's backoff.
    pub(super) fn route_retry(
        &self,
        session: &Session,
        ctx: &mut RequestCtx,
        reason: &str,
    ) -> bool {
        let Some(route) = ctx.state.route() else {
            return false;
        };
        let Some(policy) = &route.retry else {
            return false;
        };
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            // Once the client has part of an answer, another attempt's would be spliced in.
            && session.response_written().is_none();
        // pingora makes at most `MAX_ATTEMPTS` of one request, connect retries included: a
        // retry granted past that would be spent and never made.
        let room = ctx.attempts < crate::server::MAX_ATTEMPTS;
        if ctx.retries >= policy.attempts || !replayable || !room || ctx.deadline_hit {
            return false;
        }
        let wait = policy.backoff(ctx.retries + 1);
        if ctx.deadline.is_some_and(|d| Instant::now() + wait >= d) {
            // The request's time would run out before the retry is made: what there is now
            // (a backend's answer held back, or the failure) is the answer.
            return false;
        }
        let backend = &ctx.pipeline.backends[route.backend.index];
        if !backend.retry_budget().withdraw() {
            self.metrics
                .retry_budget_exhausted
                .with_label_values(&[&*backend.name])
                .inc();
            return false;
        }
        ctx.retries += 1;
        ctx.retry_wait = Some(wait);
        if let Some(host) = ctx.host {
            ctx.tried.add(host);
        }
        if !ctx.hosts.as_ref().is_some_and(|h| h.has_untried(ctx.tried)) {
            // Every host has had its try: the same ones may have another.
            ctx.tried = Tried::default();
        }
        self.metrics
            .upstream_retries
            .with_label_values(&[&*backend.name, reason])
            .inc();
        true
    }
}
