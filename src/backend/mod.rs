//! Backends: named groups of hosts, and how a request picks one.
//!
//! A backend has one host or several (`static.hosts`), each with a weight, given by address
//! or by name. A name is resolved while the gateway runs (`discovery.rs`, with the process's
//! resolver from `crate::dns`), and each of its addresses is a host with the entry's weight;
//! what the hosts are at one moment is a [`HostSet`] (`hosts.rs`), replaced whole when an
//! answer changes it (`members.rs`). A request takes hosts in weighted round-robin order,
//! skipping those that fail their active health check (`health.rs`) or were ejected for
//! failing real requests (`outlier.rs`). A request that cannot connect to a host may try
//! another (`connect_retries`); see the proxy's `fail_to_connect`.
//!
//! Nothing here resolves a name on the way: pingora's `HttpPeer::new` would resolve with
//! blocking DNS (and panic on failure) if handed one, so peers are built from addresses.

mod admission;
mod client;
pub mod connection_slots;
mod discovery;
mod failure;
mod health;
mod hosts;
mod members;
mod outlier;
pub mod retry_budget;
mod tls;

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use pingora::protocols::ALPN;
use pingora::upstreams::peer::HttpPeer;
use switchyard_filters::Background;

use crate::config::{BackendConfig, BackendProtocol, ConfigError, DnsSettings, LoadedConfig};
use crate::dns::Resolver;
use members::{Entry, Members, Target};

pub use admission::Admission;
pub use client::BackendClient;
pub use failure::TransportFailure;
pub use hosts::{Empty, Host, HostHealth, HostSet, Tried};
pub use members::DnsStats;

/// A backend's hosts are tracked in a 64-bit set per request.
pub const MAX_HOSTS: usize = 64;
/// Envoy's bound on a host weight.
pub const MAX_WEIGHT: u32 = 128;

/// A backend ready for the request path: peers built, names being resolved, health attached.
pub struct Backend {
    pub name: Arc<str>,
    pub config: BackendConfig,
    members: Arc<Members>,
    in_flight: admission::InFlight,
    retry_budget: retry_budget::RetryBudget,
    connection_slots: Option<connection_slots::ConnectionSlots>,
}

impl Backend {
    /// Builds the peers of the validated backend at `at` (`backends[i]`). With `background`
    /// (a running server), its names are resolved by tasks of their own and active health
    /// checks start, or both carry on from the previous config.
    pub fn build(
        config: &BackendConfig,
        at: &str,
        loaded: &LoadedConfig,
        background: Option<&Background>,
    ) -> Result<Backend, ConfigError> {
        let name: Arc<str> = Arc::from(config.name.as_str());
        let entries = entries(config, at, loaded)?;
        let has_names = entries.iter().any(|e| matches!(e.target, Target::Name(_)));
        let dns = &loaded.config.server.dns;
        // The resolver's settings are part of what a backend with names is.
        let identity = if has_names {
            format!("backend {config:?} dns {dns:?}")
        } else {
            format!("backend {config:?}")
        };
        let mut fresh = false;
        let make = || {
            fresh = true;
            Members::new(name.clone(), entries)
        };
        let members = match background {
            Some(bg) => bg.shared(&identity, make),
            None => Arc::new(make()),
        };
        if let (true, Some(bg)) = (fresh, background) {
            if let Some(check) = &config.health_check {
                members
                    .registry
                    .set_health_check(Box::new(health::Probe::new(
                        name.clone(),
                        check.clone(),
                        Arc::downgrade(&members),
                    )));
                health::spawn_checks(bg.runtime(), &members, check.interval);
            }
            if has_names {
                discovery::spawn(bg.runtime(), &members, &resolver(bg, dns), dns);
            }
        }
        Ok(Backend {
            name,
            config: config.clone(),
            members,
            in_flight: admission::InFlight::default(),
            retry_budget: retry_budget::RetryBudget::new(&config.retry_budget),
            connection_slots: config
                .max_connections
                .map(|max| connection_slots::ConnectionSlots::new(max, config.max_pending)),
        })
    }

    /// Its hosts now.
    pub fn hosts(&self) -> Arc<HostSet> {
        self.members.current()
    }

    /// Its hosts, once a name that has never been looked up has had its first answer (or
    /// `wait` has passed): a request that comes while the gateway starts waits for the
    /// lookup under way rather than fail.
    pub async fn hosts_when_known(&self, wait: Duration) -> Arc<HostSet> {
        let set = self.members.current();
        if set.empty() != Some(&Empty::FirstLookup) {
            return set;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.members.changed();
            let set = self.members.current();
            if set.empty() != Some(&Empty::FirstLookup) {
                return set;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.members.current();
            }
        }
    }

    /// The host names it resolves while running.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.names().map(|(_, name)| name)
    }

    /// The `Host` headers of its configured hosts: where the gateway's own requests to it go.
    pub fn authorities(&self) -> impl Iterator<Item = &str> {
        self.members.authorities()
    }

    /// How looking its names up has gone.
    pub fn dns_stats(&self) -> &DnsStats {
        &self.members.dns
    }

    /// Reports how a request to `host` of `set` went, for passive ejection.
    pub fn report(&self, set: &HostSet, host: usize, success: bool) {
        set.report(&self.name, &self.config.outlier_detection, host, success);
    }

    /// What routes' retries may add to this backend's load.
    pub fn retry_budget(&self) -> &retry_budget::RetryBudget {
        &self.retry_budget
    }

    /// Its connection slots, when it bounds them (`max_connections`).
    pub fn connection_slots(&self) -> Option<&connection_slots::ConnectionSlots> {
        self.connection_slots.as_ref()
    }
}

/// The process's resolver for `settings`, made once and shared by every backend.
fn resolver(bg: &Background, settings: &DnsSettings) -> Arc<Resolver> {
    bg.shared(&format!("dns resolver {settings:?}"), || {
        let _runtime = bg.runtime().enter();
        Resolver::new(settings)
    })
}

/// Each configured host with its peer template. Two hosts given by the same address are an
/// error; names are checked once they resolve.
fn entries(
    config: &BackendConfig,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<Vec<Entry>, ConfigError> {
    let tls = config.tls.is_some();
    let mut entries: Vec<(Entry, String)> = Vec::new();
    for (spec, field) in config.endpoint.host_list() {
        let field = format!("{at}.{field}");
        let target = match literal_address(&spec.host) {
            Some(ip) => Target::Address(ip),
            None => Target::Name(spec.host.clone()),
        };
        let address = match target {
            Target::Address(ip) => {
                let address = SocketAddr::new(ip, spec.port);
                if let Some((_, other)) = entries.iter().find(|(e, _)| {
                    matches!(e.target, Target::Address(o) if SocketAddr::new(o, e.spec.port) == address)
                }) {
                    return Err(loaded.error_at(
                        field,
                        format!("{address} is already the address of {other}"),
                    ));
                }
                address
            }
            // Replaced by each of the name's addresses.
            Target::Name(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), spec.port),
        };
        let mut template = match &config.tls {
            None => HttpPeer::new(address, false, String::new()),
            Some(t) => tls::tls_peer(address, &spec.host, t, at, loaded)?,
        };
        settle_peer(&mut template, config);
        let label = format!("{}:{}", spec.host, spec.port);
        entries.push((
            Entry {
                authority: authority(&spec.host, spec.port, tls),
                spec,
                target,
                template,
            },
            label,
        ));
    }
    Ok(entries.into_iter().map(|(e, _)| e).collect())
}

/// The address a host is given as, if it is one (`10.0.0.1`, `::1`, `[::1]`); `None` for a
/// name.
pub fn literal_address(host: &str) -> Option<IpAddr> {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()
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

/// The `Host` header for a host: its name, with the port unless it is the scheme's default.
fn authority(host: &str, port: u16, tls: bool) -> String {
    let default_port = if tls { 443 } else { 80 };
    if port == default_port {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}
