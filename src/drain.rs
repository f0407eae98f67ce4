//! Ending a graceful shutdown as soon as it is done.
//!
//! On SIGTERM pingora stops accepting and then waits the whole of `server.shutdown_timeout`
//! before it exits, even with nothing left to finish. This watcher sees the same signal and,
//! once no request is in flight, flushes the access log and exits 0; if requests are still
//! running when the timeout ends, pingora ends them and exits as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;

const POLL: Duration = Duration::from_millis(50);

pub fn spawn(
    metrics: Arc<Metrics>,
    listeners: Vec<String>,
    access_log: Option<AccessLog>,
) -> std::io::Result<()> {
    let terminate = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, terminate.clone())?;
    std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            if !terminate.load(Ordering::Relaxed) {
                continue;
            }
            let in_flight: i64 = listeners
                .iter()
                .map(|l| metrics.in_flight.with_label_values(&[l.as_str()]).get())
                .sum();
            if in_flight == 0 {
                log::info!("shutdown: no request in flight, exiting");
                if let Some(log) = &access_log {
                    log.flush(Duration::from_secs(1));
                }
                std::process::exit(0);
            }
        })?;
    Ok(())
}
