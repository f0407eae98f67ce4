//! Ending a graceful shutdown as soon as it is done.
//!
//! On SIGTERM pingora stops accepting and then waits the whole of `server.shutdown_timeout`
//! before it exits, even with nothing left to finish. This watcher sees the same signal and,
//! once no request is in flight, flushes the access log and exits 0; if requests are still
//! running when the timeout ends, pingora ends them and exits as before.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::access_log::AccessLog;

const POLL: Duration = Duration::from_millis(50);

/// Requests in flight on every listener: what the drain waits on. The per-listener gauge
/// `switchyard_requests_in_flight` shows the same for people; this count is for control.
#[derive(Clone, Default)]
pub struct InFlightRequests(Arc<AtomicUsize>);

impl InFlightRequests {
    pub fn enter(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn leave(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    fn none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

pub fn spawn(in_flight: InFlightRequests, access_log: Option<AccessLog>) -> std::io::Result<()> {
    let terminate = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, terminate.clone())?;
    std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            if !terminate.load(Ordering::Relaxed) || !in_flight.none() {
                continue;
            }
            log::info!("shutdown: no request in flight, exiting");
            if let Some(log) = &access_log {
                log.flush(Duration::from_secs(1));
            }
            std::process::exit(0);
        })?;
    Ok(())
}
