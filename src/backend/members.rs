//! A backend's members: the configured hosts, what their names resolve to now, and the
//! [`HostSet`] built from both, replaced whole whenever an answer changes it.
//!
//! `Members` outlives a config: a reload that keeps a backend as it was (same name, hosts and
//! settings) takes over its members through the server's background store, so resolved
//! addresses, health verdicts and ejections carry on, and one resolver task per name and one
//! probe loop keep running. Those tasks hold the members weakly and end once no pipeline does.
//!
//! Hosts that leave the set get no new request; requests already sent to them finish, and
//! their idle pooled connections are never handed out again (pingora pools by address) and
//! close at the backend's `idle_timeout`, or sooner when the host closes them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use pingora::lb::HealthRegistry;
use pingora::upstreams::peer::HttpPeer;
use tokio::sync::Notify;

use super::health::HostState;
use super::hosts::{Empty, Host, HostSet};
use super::MAX_HOSTS;
use crate::config::HostConfig;
use crate::dns::Answer;

/// One configured host: an address, or a name whose addresses come from DNS.
pub(super) struct Entry {
    pub spec: HostConfig,
    pub target: Target,
    /// Its peer (TLS, SNI, timeouts, pool group), copied for each of its addresses.
    pub template: HttpPeer,
    /// The `Host` header of requests the gateway makes itself.
    pub authority: String,
}

pub(super) enum Target {
    Address(IpAddr),
    Name(String),
}

/// What a name resolves to now.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolution {
    /// No answer yet.
    Pending,
    Addresses(Vec<IpAddr>),
    /// No address: why (no records, or no answer ever).
    Nothing(Arc<str>),
}

/// Lookups of a backend's names, for the metrics. They outlive reloads with the members.
#[derive(Debug, Default)]
pub struct DnsStats {
    pub answered: AtomicU64,
    pub no_records: AtomicU64,
    pub failed: AtomicU64,
    /// Unix time of the last lookup that gave addresses; 0 before the first.
    pub last_success: AtomicU64,
}

pub struct Members {
    backend: Arc<str>,
    entries: Vec<Entry>,
    current: ArcSwap<HostSet>,
    /// Woken whenever `current` is replaced.
    changed: Notify,
    pub(super) registry: Arc<HealthRegistry>,
    /// Health that stays with an address while it stays in the set.
    states: Mutex<HashMap<SocketAddr, Arc<HostState>>>,
    /// By entry index; entries given by address stay `Pending` and are not read.
    resolutions: Mutex<Vec<Resolution>>,
    pub(super) dns: DnsStats,
}

impl Members {
    /// The members of `entries`: those given by address are hosts at once, names wait for
    /// their first answer.
    pub(super) fn new(backend: Arc<str>, entries: Vec<Entry>) -> Members {
        let registry = Arc::new(HealthRegistry::new());
        let members = Members {
            backend,
            current: ArcSwap::from_pointee(HostSet::new(Vec::new(), &registry, Empty::FirstLookup)),
            resolutions: Mutex::new(vec![Resolution::Pending; entries.len()]),
            entries,
            changed: Notify::new(),
            registry,
            states: Mutex::default(),
            dns: DnsStats::default(),
        };
        members.publish();
        members
    }

    /// The hosts now.
    pub fn current(&self) -> Arc<HostSet> {
        self.current.load_full()
    }

    /// Resolves once `current` is replaced.
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The names to resolve, by entry index.
    pub(super) fn names(&self) -> impl Iterator<Item = (usize, &str)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.target {
                Target::Name(name) => Some((i, name.as_str())),
                Target::Address(_) => None,
            })
    }

    /// Each configured host's `Host` header.
    pub(super) fn authorities(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.authority.as_str())
    }

    /// Takes in an answer for the name of entry `entry`, and publishes a new host set when
    /// it changes what the name resolves to. A failed lookup keeps the addresses known.
    pub(super) fn record(&self, entry: usize, name: &str, answer: &Answer) {
        self.count(answer);
        let changed = {
            let mut resolutions = lock(&self.resolutions);
            let Some(slot) = resolutions.get_mut(entry) else {
                return;
            };
            let next = match answer {
                Answer::Addresses { ips, .. } => Resolution::Addresses(ips.clone()),
                Answer::NoRecords => {
                    Resolution::Nothing(format!("`{name}` has no address records").into())
                }
                Answer::Failed(why) => {
                    log::warn!(
                        "backend {}: looking up `{name}` failed ({why}); keeping what it had",
                        self.backend
                    );
                    match slot {
                        Resolution::Addresses(_) => slot.clone(),
                        Resolution::Pending | Resolution::Nothing(_) => {
                            Resolution::Nothing(format!("`{name}` did not resolve: {why}").into())
                        }
                    }
                }
            };
            let changed = *slot != next;
            if changed {
                log_change(&self.backend, name, slot, &next);
                *slot = next;
            }
            changed
        };
        if changed {
            self.publish();
        }
    }

    /// Counts a lookup for the metrics.
    fn count(&self, answer: &Answer) {
        let counter = match answer {
            Answer::Addresses { .. } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.dns.last_success.store(now, Relaxed);
                &self.dns.answered
            }
            Answer::NoRecords => &self.dns.no_records,
            Answer::Failed(_) => &self.dns.failed,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Builds the host set from the entries and their names' addresses, and makes it current.
    fn publish(&self) {
        // Held until the set is stored: two names answering at once must not store their
        // sets in the other order, the older last.
        let resolutions = lock(&self.resolutions);
        let mut states = lock(&self.states);
        let mut hosts = Vec::new();
        let mut seen = HashSet::new();
        let mut first_lookup = false;
        let mut why_empty: Option<Arc<str>> = None;
        for (entry, resolution) in self.entries.iter().zip(resolutions.iter()) {
            let ips: &[IpAddr] = match (&entry.target, resolution) {
                (Target::Address(ip), _) => std::slice::from_ref(ip),
                (Target::Name(_), Resolution::Addresses(ips)) => ips,
                (Target::Name(_), Resolution::Pending) => {
                    first_lookup = true;
                    &[]
                }
                (Target::Name(_), Resolution::Nothing(why)) => {
                    why_empty.get_or_insert_with(|| why.clone());
                    &[]
                }
            };
            for ip in ips {
                let address = SocketAddr::new(*ip, entry.spec.port);
                if hosts.len() == MAX_HOSTS {
                    log::warn!(
                        "backend {}: more than {MAX_HOSTS} addresses; {address} and the rest are left out",
                        self.backend
                    );
                    break;
                }
                // The same address from two entries is one host, the first entry's.
                if !seen.insert(address) {
                    continue;
                }
                let label = match &entry.target {
                    Target::Address(_) => format!("{}:{}", entry.spec.host, entry.spec.port),
                    Target::Name(name) => format!("{name}@{address}"),
                };
                let state = states.entry(address).or_default().clone();
                hosts.push(Host::new(
                    label.into(),
                    entry.authority.clone(),
                    address,
                    &entry.template,
                    entry.spec.weight,
                    state,
                ));
            }
        }
        states.retain(|address, _| seen.contains(address));
        drop(states);
        let empty = match (first_lookup, why_empty) {
            (true, _) => Empty::FirstLookup,
            (false, Some(why)) => Empty::Unresolved(why),
            (false, None) => Empty::Unresolved("no host".into()),
        };
        self.current
            .store(Arc::new(HostSet::new(hosts, &self.registry, empty)));
        drop(resolutions);
        self.changed.notify_waiters();
    }
}

fn log_change(backend: &str, name: &str, before: &Resolution, after: &Resolution) {
    match after {
        Resolution::Addresses(ips) => {
            let list: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
            log::info!(
                "backend {backend}: `{name}` resolves to {} (was {})",
                list.join(", "),
                describe(before)
            );
        }
        Resolution::Nothing(why) => {
            log::warn!("backend {backend}: {why}; its hosts are out of rotation");
        }
        Resolution::Pending => {}
    }
}

fn describe(resolution: &Resolution) -> String {
    match resolution {
        Resolution::Pending => "not looked up".to_owned(),
        Resolution::Addresses(ips) => ips
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        Resolution::Nothing(_) => "no address".to_owned(),
    }
}

/// A poisoned lock holds data as good as any: each update replaces a value whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
