//! One backend's hosts at one moment, and how a request picks among them.
//!
//! A [`HostSet`] never changes once built: when a backend's names resolve to other addresses,
//! a new set replaces it (`members.rs`). A request takes the set current when it is admitted
//! and keeps it to its end, so the host indices it has tried and reports on keep their
//! meaning across its retries, whatever the resolver does meanwhile.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pingora::lb::discovery::Static;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend as LbBackend, Backends, HealthRegistry, LoadBalancer};
use pingora::upstreams::peer::HttpPeer;

use super::health::HostState;
use super::MAX_HOSTS;
use crate::config::OutlierDetectionConfig;

/// Enough steps of the selector to visit every host of a backend.
const MAX_SELECT_STEPS: usize = 4 * MAX_HOSTS;

/// One host of a backend: one address.
pub struct Host {
    /// The configured `host:port` for a host given by address; `name@address:port` for one
    /// of a name's addresses. The label in metrics and logs.
    pub label: Arc<str>,
    /// Its `Host` header for requests the gateway makes itself: the configured name, with
    /// the port unless it is the scheme's default.
    pub authority: String,
    pub address: SocketAddr,
    pub weight: u32,
    pub(super) peer: HttpPeer,
    member: LbBackend,
    pub(super) state: Arc<HostState>,
}

impl Host {
    /// The host at `address`, its peer a copy of `template` (the entry's TLS and timeouts).
    pub(super) fn new(
        label: Arc<str>,
        authority: String,
        address: SocketAddr,
        template: &HttpPeer,
        weight: u32,
        state: Arc<HostState>,
    ) -> Host {
        let mut peer = template.clone();
        peer._address = pingora::protocols::l4::socket::SocketAddr::Inet(address);
        Host {
            member: LbBackend {
                addr: pingora::protocols::l4::socket::SocketAddr::Inet(address),
                weight: usize::try_from(weight).unwrap_or(1),
                ext: http::Extensions::new(),
            },
            label,
            authority,
            address,
            weight,
            peer,
            state,
        }
    }
}

/// Why a backend has no host to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Empty {
    /// A name of the backend has not had its first answer yet: worth a short wait.
    FirstLookup,
    /// Its names have no address now: the reason, for the 503.
    Unresolved(Arc<str>),
}

/// A backend's hosts, with their round-robin selector.
pub struct HostSet {
    pub hosts: Vec<Host>,
    /// `None` exactly when `hosts` is empty.
    balancer: Option<LoadBalancer<RoundRobin>>,
    /// Why there is no host, when there is none.
    empty: Option<Empty>,
}

/// Hosts one request has tried already, by index in its [`HostSet`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Tried(u64);

impl Tried {
    pub fn add(&mut self, host: usize) {
        self.0 |= 1 << host;
    }

    pub fn has(self, host: usize) -> bool {
        self.0 & (1 << host) != 0
    }

    pub fn count(self) -> u32 {
        self.0.count_ones()
    }
}

/// What the metrics show of one host.
pub struct HostHealth<'a> {
    pub label: &'a str,
    /// Passing its active check (always, without one).
    pub checked_healthy: bool,
    pub ejected: bool,
    pub ejections: u64,
    pub failures: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
}

impl HostSet {
    /// The set of `hosts` (at most [`MAX_HOSTS`], distinct addresses), health verdicts from
    /// `registry`; `empty` says why when there is no host.
    pub(super) fn new(hosts: Vec<Host>, registry: &Arc<HealthRegistry>, empty: Empty) -> HostSet {
        if hosts.is_empty() {
            return HostSet {
                hosts,
                balancer: None,
                empty: Some(empty),
            };
        }
        let balancer = balancer(&hosts, registry);
        HostSet {
            hosts,
            balancer: Some(balancer),
            empty: None,
        }
    }

    /// Why there is no host; `None` when there is one.
    pub fn empty(&self) -> Option<&Empty> {
        self.empty.as_ref()
    }

    /// The next host for a request that has tried `tried`: in round-robin order among the
    /// healthy ones, or among all untried ones when none is healthy (Envoy's panic mode: a
    /// host that might answer beats a certain 503). `None` once every host has been tried.
    pub fn select(&self, tried: Tried) -> Option<usize> {
        let balancer = self.balancer.as_ref()?;
        if self.hosts.len() == 1 {
            return (!tried.has(0)).then_some(0);
        }
        let healthy = balancer.select_with(b"", MAX_SELECT_STEPS, |member, checked| {
            self.index_of(member).is_some_and(|i| {
                checked && !tried.has(i) && !self.hosts[i].state.outlier.is_ejected()
            })
        });
        let chosen = healthy.or_else(|| {
            balancer.select_with(b"", MAX_SELECT_STEPS, |member, _| {
                self.index_of(member).is_some_and(|i| !tried.has(i))
            })
        })?;
        self.index_of(&chosen)
    }

    /// Whether some host is left for a request that has tried `tried`. Unlike `select`, it
    /// leaves the round-robin position alone.
    pub fn has_untried(&self, tried: Tried) -> bool {
        (tried.count() as usize) < self.hosts.len()
    }

    fn index_of(&self, member: &LbBackend) -> Option<usize> {
        self.hosts.iter().position(|h| h.member.addr == member.addr)
    }

    /// The peer to hand to pingora for one request to host `host`.
    pub fn peer(&self, host: usize) -> Box<HttpPeer> {
        Box::new(self.hosts[host].peer.clone())
    }

    /// Reports how a request to `host` went, for passive ejection.
    pub fn report(
        &self,
        backend: &str,
        outlier: &OutlierDetectionConfig,
        host: usize,
        success: bool,
    ) {
        let Some(host) = self.hosts.get(host) else {
            return;
        };
        let state = &host.state.outlier;
        if success {
            state.record_success();
        } else if state.record_failure(outlier) {
            log::warn!(
                "backend {backend} host {}: ejected for {:?} after {} consecutive failures",
                host.label,
                outlier.ejection_time,
                outlier.consecutive_failures
            );
        }
    }

    /// Each host's health, for the metrics.
    pub fn host_health(&self) -> impl Iterator<Item = HostHealth<'_>> {
        self.hosts.iter().map(|h| HostHealth {
            label: &h.label,
            checked_healthy: self
                .balancer
                .as_ref()
                .is_some_and(|b| b.backends().ready(&h.member)),
            ejected: h.state.outlier.is_ejected(),
            ejections: h.state.outlier.ejections(),
            failures: h.state.outlier.failures(),
            checks_passed: h
                .state
                .checks_passed
                .load(std::sync::atomic::Ordering::Relaxed),
            checks_failed: h
                .state
                .checks_failed
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }
}

/// pingora's weighted round-robin over the hosts, its health verdicts from `registry`.
fn balancer(hosts: &[Host], registry: &Arc<HealthRegistry>) -> LoadBalancer<RoundRobin> {
    let members: BTreeSet<LbBackend> = hosts.iter().map(|h| h.member.clone()).collect();
    let view = Backends::new_with_health_registry(Static::new(members), registry.clone());
    let balancer = LoadBalancer::from_backends(view);
    // Static discovery answers at once: one poll publishes the hosts, with no runtime needed.
    {
        let mut update = std::pin::pin!(balancer.update());
        match update
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => log::error!("publishing a backend's hosts failed: {e}"),
            Poll::Pending => log::error!("publishing a backend's hosts did not finish at once"),
        }
    }
    balancer
}
