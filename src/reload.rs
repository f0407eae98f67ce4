//! Live reload: on SIGHUP, and when the content of the config file or of a file it names
//! changes (a Gateway API manifest, or the listing of a manifest folder), the config is read,
//! checked and compiled on a thread of its own, then swapped in whole. Requests in flight
//! finish on the pipeline they started with (each holds its own `Arc`); new requests get the
//! new one. A config that fails is logged and counted, and the last good one keeps serving.
//!
//! Listeners and the admin address are bound when the server starts, so a reload may change
//! everything but them, a listener's `h2c` and its HTTP/2 settings, and the worker threads:
//! a config that changes addresses or `h2c` is rejected with a message saying a restart is
//! needed; the others are logged as waiting for one. A TLS listener's certificates, versions,
//! ALPN and client CA do change on reload (for new handshakes), and a change to a certificate
//! file triggers one.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use switchyard_filters::{Background, Registry};

use crate::config;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// How often the config file is read to see whether it changed.
const POLL_FILE: Duration = Duration::from_secs(1);
/// How often the SIGHUP flag is looked at.
const POLL_SIGNAL: Duration = Duration::from_millis(100);

/// The fingerprint of the config's sources: the content of each file and the names in each
/// folder. A change of content (not just of mtime, which editors and ConfigMap updates handle
/// in different ways) triggers a reload. `None` while the config file itself cannot be read
/// (mid-replace).
fn fingerprint(sources: &[PathBuf]) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    for (i, path) in sources.iter().enumerate() {
        path.hash(&mut hasher);
        if path.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(path)
                .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            names.sort();
            names.hash(&mut hasher);
            continue;
        }
        match std::fs::read(path) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(_) if i == 0 => return None,
            // A manifest gone is a change too; loading will say what is wrong.
            Err(_) => 0u8.hash(&mut hasher),
        }
    }
    Some(hasher.finish())
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Why a new config cannot replace the running one without a restart.
fn incompatible(old: &Pipeline, new: &Pipeline) -> Option<String> {
    let addresses = |p: &Pipeline| -> Vec<(String, std::net::SocketAddr)> {
        p.listeners
            .iter()
            .map(|l| (l.name.to_string(), l.address))
            .collect()
    };
    if addresses(old) != addresses(new) {
        return Some("listeners (names and addresses) cannot change without a restart".into());
    }
    if let Some(l) = old
        .listeners
        .iter()
        .zip(&new.listeners)
        .find(|(a, b)| a.h2c != b.h2c)
        .map(|(a, _)| a)
    {
        return Some(format!(
            "listener `{}`: h2c cannot change without a restart",
            l.name
        ));
    }
    if old.admin.address != new.admin.address {
        return Some("the admin address cannot change without a restart".into());
    }
    None
}

/// Whether a listener's HTTP/2 settings, which pingora fixes when the listener starts,
/// differ between `old` and `new`.
fn http2_settings_changed(old: &Pipeline, new: &Pipeline) -> bool {
    old.listeners.iter().zip(&new.listeners).any(|(a, b)| {
        let (a, b) = (&a.limits, &b.limits);
        a.max_concurrent_streams != b.max_concurrent_streams
            || a.max_request_header_bytes != b.max_request_header_bytes
            || a.idle_timeout != b.idle_timeout
    })
}

struct Reloader {
    path: PathBuf,
    /// The config file and every file and folder it named when last loaded.
    sources: Vec<PathBuf>,
    shared: Arc<ArcSwap<Pipeline>>,
    metrics: Arc<Metrics>,
    registry: Registry,
    background: Arc<Background>,
    last_seen: Option<u64>,
}

impl Reloader {
    fn reload(&mut self, trigger: &str) {
        self.last_seen = fingerprint(&self.sources);
        let started = Instant::now();
        let result = config::load(&self.path)
            .and_then(|loaded| Pipeline::compile(&loaded, &self.registry, Some(&self.background)))
            .map_err(|e| e.to_string())
            .and_then(|new| match incompatible(&self.shared.load(), &new) {
                Some(why) => Err(format!("{}: {why}", self.path.display())),
                None => Ok(new),
            });
        match result {
            Ok(new) => {
                if new.settings.threads != self.shared.load().settings.threads {
                    log::warn!("server.threads changes only on restart");
                }
                if http2_settings_changed(&self.shared.load(), &new) {
                    log::warn!(
                        "HTTP/2 settings (max_concurrent_streams, max_request_header_bytes and \
                         idle_timeout for HTTP/2 connections) change only on restart"
                    );
                }
                for warning in &new.warnings {
                    log::warn!("{warning}");
                }
                self.sources = new.sources.clone();
                self.last_seen = fingerprint(&self.sources);
                let retiring = self.metrics.retiring();
                let old = self.shared.swap(Arc::new(new));
                retiring.retire(&old);
                self.metrics
                    .config_reloads
                    .with_label_values(&["success"])
                    .inc();
                self.metrics.config_last_success.set(unix_now());
                log::info!(
                    "config reloaded ({trigger}) from {} in {:?}",
                    self.path.display(),
                    started.elapsed()
                );
            }
            Err(e) => {
                self.metrics
                    .config_reloads
                    .with_label_values(&["failure"])
                    .inc();
                log::error!(
                    "config reload ({trigger}) rejected, the last good config keeps serving: {e}"
                );
            }
        }
    }

    fn run(mut self, hangup: Arc<AtomicBool>) {
        let mut next_file_check = Instant::now() + POLL_FILE;
        loop {
            std::thread::sleep(POLL_SIGNAL);
            if hangup.swap(false, Ordering::Relaxed) {
                self.reload("SIGHUP");
                next_file_check = Instant::now() + POLL_FILE;
                continue;
            }
            if Instant::now() >= next_file_check {
                next_file_check = Instant::now() + POLL_FILE;
                let now = fingerprint(&self.sources);
                // A file that cannot be read right now (mid-replace) is looked at again later.
                if now.is_some() && now != self.last_seen {
                    self.reload("file changed");
                }
            }
        }
    }
}

/// Starts watching `path` and SIGHUP for the life of the process.
pub fn spawn(
    path: PathBuf,
    shared: Arc<ArcSwap<Pipeline>>,
    metrics: Arc<Metrics>,
    background: Arc<Background>,
) -> std::io::Result<()> {
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())?;
    let sources = shared.load().sources.clone();
    let reloader = Reloader {
        last_seen: fingerprint(&sources),
        sources,
        path,
        shared,
        metrics,
        registry: Registry::with_builtins(),
        background,
    };
    std::thread::Builder::new()
        .name("config-reload".into())
        .spawn(move || reloader.run(hangup))?;
    Ok(())
}
