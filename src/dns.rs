//! Looking up backend host names: one resolver per process, built from `server.dns`, and what
//! an answer means for a backend.
//!
//! The resolver is hickory's, asynchronous and off the request path: a backend's hosts are
//! looked up by its own task (`backend::discovery`), never by a request. What matters to a
//! backend is which of three kinds an answer is, because each is handled differently:
//! addresses (use them until their TTL ends), an authoritative "no such records" (the backend
//! is empty), or no usable answer at all (keep what was known and ask again soon).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, ResolveErrorKind, TokioResolver};

use crate::config::DnsSettings;

/// Tries per lookup and server: one lost UDP datagram must not fail a lookup.
const ATTEMPTS: usize = 2;

/// The process's resolver of backend host names.
pub struct Resolver {
    inner: TokioResolver,
}

/// What one lookup of a name said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name's A and AAAA addresses, and how long they may be used (their shortest TTL).
    Addresses { ips: Vec<IpAddr>, ttl: Duration },
    /// The servers answered that the name has no address: NXDOMAIN, or no A or AAAA record.
    NoRecords,
    /// No answer to rely on: a timeout, SERVFAIL, a refusal, no server reachable.
    Failed(String),
}

impl Resolver {
    /// A resolver asking `settings.servers`, or those of `/etc/resolv.conf` (with its search
    /// domains, and `/etc/hosts`) when none are given. A system configuration that cannot be
    /// read leaves a resolver without servers, whose every lookup fails: the gateway still
    /// starts, and backends given by address still serve.
    pub fn new(settings: &DnsSettings) -> Resolver {
        let provider = TokioConnectionProvider::default();
        let mut builder = if settings.servers.is_empty() {
            TokioResolver::builder_tokio().unwrap_or_else(|e| {
                log::error!(
                    "cannot read the system's DNS configuration ({e}); host names will not resolve"
                );
                TokioResolver::builder_with_config(ResolverConfig::new(), provider)
            })
        } else {
            let mut config = ResolverConfig::new();
            for server in &settings.servers {
                // UDP first; TCP for answers too big for a datagram.
                for protocol in [Protocol::Udp, Protocol::Tcp] {
                    let mut ns = NameServerConfig::new(server.0, protocol);
                    // An NXDOMAIN from a configured server is the answer, not a reason to ask
                    // the next one.
                    ns.trust_negative_responses = true;
                    config.add_name_server(ns);
                }
            }
            TokioResolver::builder_with_config(config, provider)
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = settings.timeout;
        options.attempts = ATTEMPTS;
        // Every address of the name is a host of the backend, IPv4 and IPv6 alike.
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        Resolver {
            inner: builder.build(),
        }
    }

    /// Looks `name` up. Runs on a Tokio runtime (hickory spawns its connections there).
    pub async fn lookup(&self, name: &str) -> Answer {
        match self.inner.lookup_ip(name).await {
            Ok(found) => {
                let mut ips: Vec<IpAddr> = found.iter().collect();
                ips.sort_unstable();
                ips.dedup();
                if ips.is_empty() {
                    return Answer::NoRecords;
                }
                let ttl = found
                    .valid_until()
                    .saturating_duration_since(Instant::now());
                Answer::Addresses { ips, ttl }
            }
            Err(e) => classify(&e),
        }
    }
}

/// NXDOMAIN, or a name with no address records, is an answer; every other failure is not.
fn classify(e: &ResolveError) -> Answer {
    if let ResolveErrorKind::Proto(proto) = e.kind() {
        if let ProtoErrorKind::NoRecordsFound { response_code, .. } = proto.kind() {
            if matches!(
                response_code,
                ResponseCode::NXDomain | ResponseCode::NoError
            ) {
                return Answer::NoRecords;
            }
            return Answer::Failed(format!("the server answered {response_code}"));
        }
    }
    Answer::Failed(e.to_string())
}
