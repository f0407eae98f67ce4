//! A backend's health, active and passive, kept across reloads.
//!
//! Active checks are pingora-load-balancing's: its `HealthRegistry` keeps each host's verdict
//! and flips it after `healthy_threshold` passed or `unhealthy_threshold` failed probes in a
//! row. What a probe is lives here ([`Probe`]): a GET of the configured path over the host's
//! own peer (TLS, SNI, client certificate), passed by any 2xx within `timeout`.
//!
//! A reload builds every backend anew while the old pipeline still serves. A backend of the
//! new config that is the same as one of the old (same name, hosts and settings) takes over
//! its [`SharedHealth`] through the server's background store: hosts found unhealthy or
//! ejected stay so, the counters go on, and one probe loop keeps running. The loop holds the
//! state weakly and ends once no pipeline holds it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::lb::health_check::HealthCheck;
use pingora::lb::{Backend as LbBackend, HealthRegistry};
use pingora::protocols::ALPN;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use switchyard_filters::RequestHeader;

use super::outlier::Outlier;
use crate::config::HealthCheckConfig;

/// One host's state that outlives a config: its passive health and its probe counts.
#[derive(Debug, Default)]
pub struct HostState {
    pub outlier: Outlier,
    pub checks_passed: AtomicU64,
    pub checks_failed: AtomicU64,
}

/// A backend's health state, shared by every pipeline that has the same backend.
pub struct SharedHealth {
    pub registry: Arc<HealthRegistry>,
    pub hosts: Vec<Arc<HostState>>,
}

/// What one probe needs to reach one host.
pub struct ProbeTarget {
    pub address: std::net::SocketAddr,
    pub label: Arc<str>,
    pub peer: HttpPeer,
    /// The `Host` header: the configured one, or the host's name and port.
    pub authority: String,
    pub state: Arc<HostState>,
}

/// The active check of one backend's hosts.
pub struct Probe {
    backend: Arc<str>,
    config: HealthCheckConfig,
    targets: Vec<ProbeTarget>,
    connector: Connector,
}

impl Probe {
    pub fn new(
        backend: Arc<str>,
        config: HealthCheckConfig,
        mut targets: Vec<ProbeTarget>,
    ) -> Self {
        for target in &mut targets {
            // A probe gets a fresh connection every time: a pooled one would hide a host that
            // stopped accepting new connections.
            target.peer.options.connection_timeout = Some(config.timeout);
            target.peer.options.read_timeout = Some(config.timeout);
            target.peer.options.write_timeout = Some(config.timeout);
            if let Some(host) = &config.host {
                target.authority.clone_from(host);
            }
        }
        Probe {
            backend,
            config,
            targets,
            connector: Connector::new(None),
        }
    }

    fn target(&self, host: &LbBackend) -> Option<&ProbeTarget> {
        let address = host.addr.as_inet()?;
        self.targets.iter().find(|t| t.address == *address)
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
        let target = self
            .target(host)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "probe of an unknown host"))?;
        let verdict = match tokio::time::timeout(self.config.timeout, self.probe(target)).await {
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
        let label = self.target(host).map_or("?", |t| &*t.label);
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
        let label = self.target(host).map_or("?", |t| &*t.label);
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

/// Probes every `interval` on `runtime`, as long as some pipeline holds `health`.
pub fn spawn_checks(
    runtime: &tokio::runtime::Handle,
    health: &Arc<SharedHealth>,
    interval: Duration,
) {
    let health: Weak<SharedHealth> = Arc::downgrade(health);
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
