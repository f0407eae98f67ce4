//! Where a provider's keys come from, and the cache that keeps remote keys fresh.
//!
//! Keys from the config (`inline`, `file`) are fixed until the config changes. Keys from a
//! `remote` JWKS live in a [`RemoteKeys`]:
//!
//! - **Refresh.** A background task fetches the document at once, then again after the
//!   answer's `Cache-Control: max-age` (or `default_refresh` without one), clamped to
//!   `[min_refresh, max_refresh]`. Requests read the current set with one atomic load and never
//!   wait on a refresh.
//! - **First fetch.** Until the first fetch has finished, a request with a token for the
//!   provider waits for it, at most `fetch_timeout`. After a failed first fetch, requests are
//!   answered at once (503, see `rejection.rs`) until a retry succeeds.
//! - **Rotation.** A token whose `kid` is not in the set asks for a refetch and waits for it;
//!   the new set decides. At most one such refetch starts per `unknown_kid_cooldown`; tokens
//!   that come while one is running wait for that one, and the rest are judged on the keys
//!   held. Keys gone from a new set stop verifying at once.
//! - **Failure.** A failed fetch (no connection, a TLS failure, a non-200 answer, a document
//!   that is not a usable JWKS) never replaces keys: the last good set keeps serving. Retries
//!   back off from 1 s, doubling, up to a minute (or `max_refresh` if shorter).
//! - **Reloads.** A reload builds new filters while the old ones still serve. The cache is
//!   kept in the server's [`Background`] store under everything it depends on (the backend's
//!   connection settings, the path, the timings), so a new filter with the same source takes
//!   over the cache, its keys and its schedule: a reload neither refetches nor loses keys when
//!   the provider is down. When no filter holds the cache any more, its task stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::config::RemoteJwks;
use super::fetch::{self, FetchFailure, Fetched};
use super::jwks::KeySet;
use super::stats::{self, KeyCacheStats};
use crate::{Background, HttpClient, MetricKind, MetricSample};

/// The first retry after a failed fetch; each further failure doubles it.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between retries of a failing fetch.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Added to `fetch_timeout` when a request waits for a fetch, so that a fetch that uses its
/// whole timeout is still seen to finish.
const WAIT_SLACK: Duration = Duration::from_millis(200);

/// When a remote key set is fetched again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RefreshPolicy {
    pub default_refresh: Duration,
    pub min_refresh: Duration,
    pub max_refresh: Duration,
    pub fetch_timeout: Duration,
    pub unknown_kid_cooldown: Duration,
}

impl RefreshPolicy {
    /// The policy of a `remote` config, or the field that is out of range and why.
    pub(super) fn from_config(config: &RemoteJwks) -> Result<Self, (&'static str, String)> {
        if config.min_refresh.is_zero() {
            return Err(("min_refresh", "must be greater than zero".to_owned()));
        }
        if config.max_refresh < config.min_refresh {
            return Err((
                "max_refresh",
                "must not be shorter than min_refresh".to_owned(),
            ));
        }
        if config.fetch_timeout.is_zero() {
            return Err(("fetch_timeout", "must be greater than zero".to_owned()));
        }
        Ok(RefreshPolicy {
            default_refresh: config.default_refresh,
            min_refresh: config.min_refresh,
            max_refresh: config.max_refresh,
            fetch_timeout: config.fetch_timeout,
            unknown_kid_cooldown: config.unknown_kid_cooldown,
        })
    }

    /// The wait before the next refresh after a good fetch.
    pub(super) fn after_success(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.default_refresh)
            .clamp(self.min_refresh, self.max_refresh)
    }

    /// The wait before a retry after `failures` failed fetches in a row (at least one).
    pub(super) fn after_failure(&self, failures: u32) -> Duration {
        let doubled = BACKOFF_FIRST.saturating_mul(1 << failures.saturating_sub(1).min(16));
        doubled.min(BACKOFF_MAX).min(self.max_refresh)
    }
}

/// Where one provider's keys come from.
pub(super) enum KeySource {
    /// Keys from the config, fixed until it changes.
    Fixed(Arc<KeySet>),
    /// Keys fetched from a backend and kept fresh in the background.
    Remote(Arc<RemoteKeys>),
    /// A remote JWKS in a config that is only checked or explained: nothing is fetched, and
    /// tokens for the provider cannot be verified.
    Offline { backend: String, path: String },
}

impl KeySource {
    /// The generation of the keys held now (see [`KeySet::generation`]), without a refcount.
    pub(super) fn generation(&self) -> Option<u64> {
        match self {
            KeySource::Fixed(keys) => Some(keys.generation()),
            KeySource::Remote(remote) => remote.state.keys.load().as_ref().map(|k| k.generation()),
            KeySource::Offline { .. } => None,
        }
    }

    /// The keys held now, without waiting.
    pub(super) fn current(&self) -> Option<Arc<KeySet>> {
        match self {
            KeySource::Fixed(keys) => Some(keys.clone()),
            KeySource::Remote(remote) => remote.current(),
            KeySource::Offline { .. } => None,
        }
    }

    /// The keys held now or, before the first fetch has finished, after it (bounded).
    pub(super) async fn initial(&self) -> Option<Arc<KeySet>> {
        match self {
            KeySource::Remote(remote) => remote.initial().await,
            _ => self.current(),
        }
    }

    /// The keys to judge a token whose `kid` the current set lacks: the set after a refetch
    /// when one may run (or is running), else the set held now. `None` when keys never change
    /// (config keys).
    pub(super) async fn after_unknown_kid(&self) -> Option<Arc<KeySet>> {
        match self {
            KeySource::Remote(remote) => remote.after_unknown_kid().await,
            _ => None,
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            KeySource::Fixed(keys) => format!("keys [{}]", keys.kids().join(", ")),
            KeySource::Remote(remote) => {
                let held = match remote.current() {
                    Some(keys) => format!("keys [{}]", keys.kids().join(", ")),
                    None => "no keys yet".to_owned(),
                };
                format!("{}; {held}", remote.describe_source())
            }
            KeySource::Offline { backend, path } => {
                format!("keys fetched at run time from backend {backend}, path {path}")
            }
        }
    }

    /// Why the provider cannot verify tokens yet; `None` once it has keys.
    pub(super) fn waiting_for(&self) -> Option<String> {
        match self {
            KeySource::Remote(remote) => remote.waiting_for(),
            _ => None,
        }
    }

    /// The cache's metrics, labelled with `provider`.
    pub(super) fn metrics(&self, provider: &str, out: &mut Vec<MetricSample>) {
        let held = self.current().map_or(0, |k| k.len() as u64);
        out.push(stats::provider_sample(
            "jwks_keys",
            "Signing keys a provider holds now.",
            MetricKind::Gauge,
            provider,
            None,
            held,
        ));
        if let KeySource::Remote(remote) = self {
            remote.stats.samples(provider, out);
        }
    }
}

/// A JWKS fetched through a backend and refreshed in the background. Dropping the last handle
/// stops the refresh task.
pub(super) struct RemoteKeys {
    state: Arc<State>,
    stats: Arc<KeyCacheStats>,
}

struct State {
    client: Arc<dyn HttpClient>,
    path: String,
    policy: RefreshPolicy,
    keys: ArcSwapOption<KeySet>,
    /// Fetches finished (with or without success); waiters watch it move.
    attempts: watch::Sender<u64>,
    /// A fetch is running, or has been asked for and is about to.
    in_flight: AtomicBool,
    /// Wakes the task: for a refetch, or to stop.
    wake: Notify,
    stopped: AtomicBool,
    last_kid_refetch: Mutex<Option<Instant>>,
    /// The last failure, for `/readyz` while no keys are held.
    last_failure: Mutex<Option<String>>,
    stats: Arc<KeyCacheStats>,
}

impl RemoteKeys {
    /// Starts fetching `path` through `client` on the background runtime.
    pub(super) fn start(
        client: Arc<dyn HttpClient>,
        path: String,
        policy: RefreshPolicy,
        background: &Background,
    ) -> Self {
        let stats = Arc::new(KeyCacheStats::default());
        let state = Arc::new(State {
            client,
            path,
            policy,
            keys: ArcSwapOption::empty(),
            attempts: watch::Sender::new(0),
            in_flight: AtomicBool::new(true),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            last_kid_refetch: Mutex::new(None),
            last_failure: Mutex::new(None),
            stats: stats.clone(),
        });
        background.runtime().spawn(refresh(state.clone()));
        RemoteKeys { state, stats }
    }

    /// The key under which a cache for this source is shared (see the module docs).
    pub(super) fn shared_key(
        client: &dyn HttpClient,
        path: &str,
        policy: &RefreshPolicy,
    ) -> String {
        format!(
            "jwt_authn.remote_jwks\n{}\n{path}\n{policy:?}",
            client.identity()
        )
    }

    pub(super) fn current(&self) -> Option<Arc<KeySet>> {
        self.state.keys.load_full()
    }

    async fn initial(&self) -> Option<Arc<KeySet>> {
        if let Some(keys) = self.current() {
            return Some(keys);
        }
        let mut attempts = self.state.attempts.subscribe();
        if *attempts.borrow_and_update() == 0 {
            let bound = self.state.policy.fetch_timeout + WAIT_SLACK;
            let _ = tokio::time::timeout(bound, attempts.changed()).await;
        }
        self.current()
    }

    async fn after_unknown_kid(&self) -> Option<Arc<KeySet>> {
        let state = &self.state;
        let mut attempts = state.attempts.subscribe();
        attempts.borrow_and_update();
        if !state.in_flight.load(Ordering::Acquire) {
            if !state.claim_kid_refetch() {
                self.stats.record_kid_refetch(false);
                return self.current();
            }
            self.stats.record_kid_refetch(true);
            state.in_flight.store(true, Ordering::Release);
            state.wake.notify_one();
        }
        let bound = state.policy.fetch_timeout + WAIT_SLACK;
        let _ = tokio::time::timeout(bound, attempts.changed()).await;
        self.current()
    }

    fn describe_source(&self) -> String {
        let p = &self.state.policy;
        format!(
            "keys from backend {}, path {} (refresh {:?} without max-age, within {:?}..{:?})",
            self.state.client.backend(),
            self.state.path,
            p.default_refresh,
            p.min_refresh,
            p.max_refresh
        )
    }

    fn waiting_for(&self) -> Option<String> {
        if self.current().is_some() {
            return None;
        }
        let last = self
            .state
            .last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Some(format!(
            "no signing keys yet from backend {}, path {}{}",
            self.state.client.backend(),
            self.state.path,
            last.map(|e| format!(" (last attempt: {e})"))
                .unwrap_or_default()
        ))
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::Release);
        self.state.wake.notify_one();
    }
}

impl State {
    /// Takes the right to start an unknown-kid refetch, if the cooldown allows one now.
    fn claim_kid_refetch(&self) -> bool {
        let mut last = self
            .last_kid_refetch
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match *last {
            Some(at) if now.duration_since(at) < self.policy.unknown_kid_cooldown => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    fn source(&self) -> String {
        format!("backend {} path {}", self.client.backend(), self.path)
    }

    /// Installs a good fetch and says when to refresh next.
    fn installed(&self, fetched: Fetched) -> Duration {
        let next = self.policy.after_success(fetched.max_age);
        let unchanged = self
            .keys
            .load()
            .as_ref()
            .is_some_and(|held| held.fingerprint() == fetched.keys.fingerprint());
        if unchanged {
            // The same document: keep the set (and the verdicts cached against it).
            log::debug!(
                "jwks from {}: unchanged; next refresh in {next:?}",
                self.source()
            );
        } else {
            let new_kids = fetched.keys.kids();
            let old = self.keys.swap(Some(Arc::new(fetched.keys)));
            log::info!(
                "jwks from {}: keys [{}]{}; next refresh in {next:?}",
                self.source(),
                new_kids.join(", "),
                old.map(|old| format!(" (were [{}])", old.kids().join(", ")))
                    .unwrap_or_default()
            );
            for skipped in &fetched.skipped {
                log::warn!("jwks from {}: skipped {skipped}", self.source());
            }
        }
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.stats.record_fetch(None);
        next
    }

    /// Records a failed fetch and says when to retry.
    fn failed(&self, failure: &FetchFailure, failures: u32) -> Duration {
        let retry = self.policy.after_failure(failures);
        let held = match self.keys.load().as_ref() {
            Some(keys) => format!("the last good keys ({}) keep serving", keys.len()),
            None => "no keys are held yet".to_owned(),
        };
        log::warn!(
            "jwks from {}: fetch failed ({failure}); {held}; retry in {retry:?}",
            self.source()
        );
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure.to_string());
        self.stats.record_fetch(Some(failure));
        retry
    }
}

/// The refresh task: fetch, wait (for the refresh interval, a retry, or a wake-up), repeat
/// until the last [`RemoteKeys`] handle is dropped.
async fn refresh(state: Arc<State>) {
    let mut failures = 0u32;
    loop {
        if state.stopped.load(Ordering::Acquire) {
            return;
        }
        state.in_flight.store(true, Ordering::Release);
        let wait = match fetch::fetch(&*state.client, &state.path, state.policy.fetch_timeout).await
        {
            Ok(fetched) => {
                failures = 0;
                state.installed(fetched)
            }
            Err(failure) => {
                failures = failures.saturating_add(1);
                state.failed(&failure, failures)
            }
        };
        state.in_flight.store(false, Ordering::Release);
        state.attempts.send_modify(|n| *n += 1);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = state.wake.notified() => {}
        }
    }
}
