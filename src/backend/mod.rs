//! Static backends: named groups of hosts, and how a request picks one.
//!
//! A backend has one host or several (`static.hosts`), each with a weight. A request takes
//! hosts in weighted round-robin order, skipping those that fail their active health check
//! (`health.rs`) or were ejected for failing real requests (`outlier.rs`). When every host is
//! out, traffic goes to all of them anyway, as in Envoy's panic mode: a backend that might
//! answer beats a certain 503. A request that cannot connect to a host may try another
//! (`connect_retries`); see the proxy's `fail_to_connect`.
//!
//! Host names are resolved once, here, at load: pingora's `HttpPeer::new` would resolve with
//! blocking DNS (and panic on failure) if handed a name per request.

mod admission;
mod client;
pub mod connection_slots;
mod failure;
mod health;
mod outlier;
pub mod retry_budget;
mod tls;

use std::collections::BTreeSet;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pingora::lb::discovery::Static;
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend as LbBackend, Backends, HealthRegistry, LoadBalancer};
use pingora::protocols::ALPN;
use pingora::upstreams::peer::HttpPeer;
use switchyard_filters::Background;

use crate::config::{BackendConfig, BackendProtocol, ConfigError, HostConfig, LoadedConfig};
use health::{HostState, Probe, ProbeTarget, SharedHealth};

pub use admission::Admission;
pub use client::BackendClient;
pub use failure::TransportFailure;

/// A backend's hosts are tracked in a 64-bit set per request.
pub const MAX_HOSTS: usize = 64;
/// Envoy's bound on a host weight.
pub const MAX_WEIGHT: u32 = 128;
/// Enough steps of the selector to visit every host of a backend.
const MAX_SELECT_STEPS: usize = 4 * MAX_HOSTS;

/// A backend ready for the request path: hosts resolved, peers built, health attached.
pub struct Backend {
    pub name: Arc<str>,
    pub config: BackendConfig,
    pub hosts: Vec<Host>,
    balancer: LoadBalancer<RoundRobin>,
    /// Held so the health state lives as long as this backend serves.
    _health: Arc<SharedHealth>,
    in_flight: admission::InFlight,
    retry_budget: retry_budget::RetryBudget,
    connection_slots: Option<connection_slots::ConnectionSlots>,
}

/// One host of a backend.
pub struct Host {
    /// `host:port` as configured: the label in metrics and logs.
    pub label: Arc<str>,
    /// Its `Host` header for requests the gateway makes itself: the configured name, with
    /// the port unless it is the scheme's default.
    pub authority: String,
    pub address: SocketAddr,
    pub weight: u32,
    peer: HttpPeer,
    member: LbBackend,
    state: Arc<HostState>,
}

/// A configured host once resolved, before its health state is attached.
struct Resolved {
    address: SocketAddr,
    peer: HttpPeer,
    label: Arc<str>,
    authority: String,
    weight: u32,
}

/// Hosts one request has tried already.
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

impl Backend {
    /// Resolves the hosts of the validated backend at `at` (`backends[i]`) and builds their
    /// peers. With `background` (a running server), active health checks start, or carry on
    /// from the previous config.
    pub fn build(
        config: &BackendConfig,
        at: &str,
        loaded: &LoadedConfig,
        background: Option<&Background>,
    ) -> Result<Backend, ConfigError> {
        let specs = config.endpoint.host_list();
        let name: Arc<str> = Arc::from(config.name.as_str());

        let tls = config.tls.is_some();
        let mut resolved: Vec<Resolved> = Vec::with_capacity(specs.len());
        for (spec, field) in specs {
            let field = format!("{at}.{field}");
            let address = resolve(&spec, &field, loaded)?;
            if let Some(other) = resolved.iter().find(|r| r.address == address) {
                return Err(loaded.error_at(
                    field,
                    format!("{address} is already the address of {}", other.label),
                ));
            }
            let mut peer = match &config.tls {
                None => HttpPeer::new(address, false, String::new()),
                Some(t) => tls::tls_peer(address, &spec.host, t, at, loaded)?,
            };
            settle_peer(&mut peer, config);
            resolved.push(Resolved {
                address,
                peer,
                label: format!("{}:{}", spec.host, spec.port).into(),
                authority: authority(&spec.host, spec.port, tls),
                weight: spec.weight,
            });
        }

        let identity = format!(
            "backend {config:?} at {:?}",
            resolved.iter().map(|r| r.address).collect::<Vec<_>>()
        );
        let mut fresh = false;
        let mut make = || {
            fresh = true;
            new_health(&name, config, &resolved)
        };
        let health = match background {
            Some(bg) => bg.shared(&identity, make),
            None => Arc::new(make()),
        };
        if let (true, Some(bg), Some(check)) = (fresh, background, &config.health_check) {
            health::spawn_checks(bg.runtime(), &health, check.interval);
        }

        let hosts: Vec<Host> = resolved
            .into_iter()
            .zip(&health.hosts)
            .map(|(r, state)| Host {
                member: member(r.address, r.weight),
                label: r.label,
                authority: r.authority,
                address: r.address,
                weight: r.weight,
                peer: r.peer,
                state: state.clone(),
            })
            .collect();
        let balancer = balancer(&hosts, &health.registry);
        Ok(Backend {
            name,
            config: config.clone(),
            hosts,
            balancer,
            _health: health,
            in_flight: admission::InFlight::default(),
            retry_budget: retry_budget::RetryBudget::new(&config.retry_budget),
            connection_slots: config
                .max_connections
                .map(|max| connection_slots::ConnectionSlots::new(max, config.max_pending)),
        })
    }

    /// The next host for a request that has tried `tried`: in round-robin order among the
    /// healthy ones, or among all untried ones when none is healthy. `None` once every host
    /// has been tried.
    pub fn select(&self, tried: Tried) -> Option<usize> {
        if self.hosts.len() == 1 {
            return (!tried.has(0)).then_some(0);
        }
        let healthy = self
            .balancer
            .select_with(b"", MAX_SELECT_STEPS, |member, checked| {
                self.index_of(member).is_some_and(|i| {
                    checked && !tried.has(i) && !self.hosts[i].state.outlier.is_ejected()
                })
            });
        let chosen = healthy.or_else(|| {
            self.balancer
                .select_with(b"", MAX_SELECT_STEPS, |member, _| {
                    self.index_of(member).is_some_and(|i| !tried.has(i))
                })
        })?;
        self.index_of(&chosen)
    }

    /// What routes' retries may add to this backend's load.
    pub fn retry_budget(&self) -> &retry_budget::RetryBudget {
        &self.retry_budget
    }

    /// Its connection slots, when it bounds them (`max_connections`).
    pub fn connection_slots(&self) -> Option<&connection_slots::ConnectionSlots> {
        self.connection_slots.as_ref()
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
    pub fn report(&self, host: usize, success: bool) {
        let Some(host) = self.hosts.get(host) else {
            return;
        };
        let outlier = &host.state.outlier;
        if success {
            outlier.record_success();
        } else if outlier.record_failure(&self.config.outlier_detection) {
            log::warn!(
                "backend {} host {}: ejected for {:?} after {} consecutive failures",
                self.name,
                host.label,
                self.config.outlier_detection.ejection_time,
                self.config.outlier_detection.consecutive_failures
            );
        }
    }

    /// Each host's health, for the metrics.
    pub fn host_health(&self) -> impl Iterator<Item = HostHealth<'_>> {
        self.hosts.iter().map(|h| HostHealth {
            label: &h.label,
            checked_healthy: self.balancer.backends().ready(&h.member),
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

fn resolve(
    spec: &HostConfig,
    field: &str,
    loaded: &LoadedConfig,
) -> Result<SocketAddr, ConfigError> {
    (spec.host.as_str(), spec.port)
        .to_socket_addrs()
        .map_err(|e| loaded.error_at(field, format!("cannot resolve `{}`: {e}", spec.host)))?
        .next()
        .ok_or_else(|| loaded.error_at(field, format!("`{}` resolves to no address", spec.host)))
}

/// Timeouts and pool grouping shared by every host of a backend.
fn settle_peer(peer: &mut HttpPeer, config: &BackendConfig) {
    // pingora pools upstream connections by a hash that leaves out the trusted CAs: two
    // backends at one address and SNI but with different trust would share connections, and
    // one could skip the other's certificate check. Each backend gets its own pool.
    peer.group_key = {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        config.name.hash(&mut hasher);
        hasher.finish()
    };
    // pingora leaves every timeout unset, which waits on a stuck backend forever.
    peer.options.connection_timeout = Some(config.connect_timeout);
    peer.options.read_timeout = Some(config.read_timeout);
    peer.options.write_timeout = Some(config.write_timeout);
    peer.options.idle_timeout = Some(config.idle_timeout);
    if matches!(config.protocol, BackendProtocol::H2 | BackendProtocol::H2c) {
        // HTTP/2 only: ALPN asks for h2 over TLS; in plaintext pingora takes it as prior
        // knowledge (h2c). No fallback to HTTP/1.1, which a gRPC backend cannot serve.
        peer.options.alpn = ALPN::H2;
        // Requests share a connection up to this many streams, as Envoy's default.
        peer.options.max_h2_streams = H2_STREAMS_PER_CONNECTION;
    }
}

/// Concurrent requests on one HTTP/2 connection to a backend host.
const H2_STREAMS_PER_CONNECTION: usize = 100;

fn member(address: SocketAddr, weight: u32) -> LbBackend {
    LbBackend {
        addr: pingora::protocols::l4::socket::SocketAddr::Inet(address),
        weight: usize::try_from(weight).unwrap_or(1),
        ext: http::Extensions::new(),
    }
}

fn new_health(name: &Arc<str>, config: &BackendConfig, resolved: &[Resolved]) -> SharedHealth {
    let hosts: Vec<Arc<HostState>> = resolved.iter().map(|_| Arc::default()).collect();
    let registry = Arc::new(HealthRegistry::new());
    if let Some(check) = &config.health_check {
        let targets = resolved
            .iter()
            .zip(&hosts)
            .map(|(r, state)| ProbeTarget {
                address: r.address,
                label: r.label.clone(),
                peer: r.peer.clone(),
                authority: r.authority.clone(),
                state: state.clone(),
            })
            .collect();
        registry.set_health_check(Box::new(Probe::new(name.clone(), check.clone(), targets)));
    }
    SharedHealth { registry, hosts }
}

/// The `Host` header for a host: its name, with the port unless it is the scheme's default.
fn authority(host: &str, port: u16, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    if port == default_port {
        host.to_owned()
    } else {
        format!("{host}:{port}")
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
