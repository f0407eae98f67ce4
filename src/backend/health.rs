//! A backend's health, active and passive, kept across reloads with its members.
//!
//! Active checks are pingora-load-balancing's: its `HealthRegistry` keeps each host's verdict
//! and flips it after `healthy_threshold` passed or `unhealthy_threshold` failed probes in a
//! row. What a probe is lives here ([`Probe`]): a GET of the configured path over the host's
//! own peer (TLS, SNI, client certificate), passed by any 2xx within `timeout`. The hosts it
//! probes are those of the backend's current host set, which DNS may change.
//!
//! Passive health ([`HostState`]) stays with an address while the address stays in the set,
//! and with the members across reloads (see `members.rs`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::lb::health_check::HealthCheck;
use pingora::lb::Backend as LbBackend;
use pingora::protocols::ALPN;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use switchyard_filters::RequestHeader;

use super::members::Members;
use super::outlier::Outlier;
use crate::config::HealthCheckConfig;

/// One host's state that outlives a config: its passive health and its probe counts.
#[derive(Debug, Default)]
pub struct HostState {
    pub outlier: Outlier,
    pub checks_passed: AtomicU64,
    pub checks_failed: AtomicU64,
}

/// The active check of one backend's hosts.
pub struct Probe {
    backend: Arc<str>,
    config: HealthCheckConfig,
    /// Weak: the members hold the registry that holds this probe.
    members: Weak<Members>,
    connector: Connector,
}

/// One probe's way to one host.
struct ProbeTarget {
    label: Arc<str>,
    peer: HttpPeer,
    authority: String,
    state: Arc<HostState>,
}

impl Probe {
    pub fn new(backend: Arc<str>, config: HealthCheckConfig, members: Weak<Members>) -> Self {
        Probe {
            backend,
            config,
            members,
            connector: Connector::new(None),
        }
    }

    /// The host at `host`'s address in the current set, with the probe's own timeouts.
    fn target(&self, host: &LbBackend) -> Option<ProbeTarget> {
        let address = host.addr.as_inet()?;
        let set = self.members.upgrade()?.current();
        let host = set.hosts.iter().find(|h| h.address == *address)?;
        let mut peer = host.peer.clone();
        // A probe gets a fresh connection every time: a pooled one would hide a host that
        // stopped accepting new connections.
        peer.options.connection_timeout = Some(self.config.timeout);
        peer.options.read_timeout = Some(self.config.timeout);
        peer.options.write_timeout = Some(self.config.timeout);
        Some(ProbeTarget {
            label: host.label.clone(),
            peer,
            authority: self
                .config
                .host
                .clone()
                .unwrap_or_else(|| host.authority.clone()),
            state: host.state.clone(),
        })
    }

    async fn probe(&self, target: &ProbeTarget) -> pingora::Result<()> {
        let (mut session, _) = self.connector.get_http_session(&target.peer).await?;
        let mut request = RequestHeader::build("GET", self.config.path.as_bytes(), None)?;
        request.insert_header("host", target.authority.as_str())?;
        request.insert_header(
            "user-agent",
            concat!("switchyard-health-check/", env!("CARGO_PKG_VERSION")),
        )?;
        // HTTP/1.1 only: HTTP/2 has no connection-specific headers (RFC 9113 §8.2.2), and
        // the h2 crate refuses to send a request that has one.
        if !matches!(target.peer.options.alpn, ALPN::H2) {
            request.insert_header("connection", "close")?;
        }
        session.write_request_header(Box::new(request)).await?;
        session.finish_request_body().await?;
        session.read_response_header().await?;
        let status = session
            .response_header()
            .map(|r| r.status)
            .ok_or_else(|| Error::explain(ErrorType::InvalidHTTPHeader, "no response header"))?;
        if !status.is_success() {
            return Err(Error::explain(
                ErrorType::CustomCode("health check status", status.as_u16()),
                format!("answered {status}"),
            ));
        }
        // Read a little of the body so the backend does not see a reset mid-answer; the
        // verdict is the status alone.
        let _ = session.read_response_body().await;
        Ok(())
    }
}

#[async_trait]
impl HealthCheck for Probe {
    async fn check(&self, host: &LbBackend) -> pingora::Result<()> {
        // A host DNS took out of the set stays in the registry while requests that started
        // before hold the old set. It is not probed: failing it would leave it unhealthy
        // should its name return it, and it takes no new request either way.
        let Some(target) = self.target(host) else {
            return Ok(());
        };
        let verdict = match tokio::time::timeout(self.config.timeout, self.probe(&target)).await {
            Ok(verdict) => verdict,
            Err(_) => Err(Error::explain(
                ErrorType::ConnectTimedout,
                format!("no answer within {:?}", self.config.timeout),
            )),
        };
        let counter = match &verdict {
            Ok(()) => &target.state.checks_passed,
            Err(_) => &target.state.checks_failed,
        };
        counter.fetch_add(1, Relaxed);
        verdict
    }

    async fn health_status_change(&self, host: &LbBackend, healthy: bool) {
        let target = self.target(host);
        let label = target.as_ref().map_or("?", |t| &*t.label);
        if healthy {
            log::info!(
                "backend {} host {label}: health check passes again",
                self.backend
            );
        } else {
            log::warn!(
                "backend {} host {label}: health check failing, out of rotation",
                self.backend
            );
        }
    }

    fn backend_summary(&self, host: &LbBackend) -> String {
        let target = self.target(host);
        let label = target.as_ref().map_or("?", |t| &*t.label);
        format!("backend {} host {label}", self.backend)
    }

    fn health_threshold(&self, success: bool) -> usize {
        let n = if success {
            self.config.healthy_threshold
        } else {
            self.config.unhealthy_threshold
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }
}

/// Probes every `interval` on `runtime`, as long as some pipeline holds `members`.
pub fn spawn_checks(runtime: &tokio::runtime::Handle, members: &Arc<Members>, interval: Duration) {
    let health: Weak<Members> = Arc::downgrade(members);
    runtime.spawn(async move {
        loop {
            let Some(live) = health.upgrade() else {
                return;
            };
            live.registry.run_health_check(true).await;
            drop(live);
            tokio::time::sleep(interval).await;
        }
    });
}
