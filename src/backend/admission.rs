//! Overload protection: at most `max_requests` requests of a backend in flight at once, as
//! Envoy's circuit breaker of that name. A request past the bound is answered 503 at once
//! instead of queueing behind a backend that is already slow, so one struggling backend
//! cannot take the gateway's connections and memory from the others.
//!
//! The count lives with the backend of one pipeline: requests that started before a reload
//! count against the backend they started with, so for as long as both serve, a backend may
//! briefly have up to twice its bound in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::Backend;

/// Requests of one backend in flight.
#[derive(Debug, Default)]
pub(super) struct InFlight(AtomicUsize);

/// A request's place among its backend's requests in flight, given back when dropped.
pub struct Admission {
    backend: Arc<Backend>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.backend.in_flight.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Backend {
    /// A place for one more request, unless the backend has `max_requests` in flight.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let count = &self.in_flight.0;
        match self.config.max_requests {
            None => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            Some(max) => {
                let max = usize::try_from(max).unwrap_or(usize::MAX);
                count
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        (n < max).then_some(n + 1)
                    })
                    .ok()?;
            }
        }
        Some(Admission {
            backend: self.clone(),
        })
    }

    /// Requests in flight now.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.0.load(Ordering::Relaxed)
    }
}
