//! `switchyard check`: the summary printed for a valid config.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use switchyard_filters::{Filter, Phase};

use crate::backend::literal_address;
use crate::config::{BackendProtocol, TlsVersion};
use crate::dns::{Answer, Resolver};
use crate::pipeline::Pipeline;
use crate::tls::TlsTerminator;

/// What each backend host name resolved to when `check` ran.
pub type Lookups = BTreeMap<String, Answer>;

/// Looks up every backend host name once, all at the same time, with the config's resolver
/// settings. A name that does not resolve here may well resolve where the gateway runs: the
/// caller decides whether that is an error (`check --resolve`).
pub fn look_up_names(pipeline: &Pipeline) -> Lookups {
    let names: BTreeSet<String> = pipeline
        .backends
        .iter()
        .flat_map(|b| b.names())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Lookups::new();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let why = format!("cannot start a runtime to resolve names: {e}");
            return names
                .into_iter()
                .map(|n| (n, Answer::Failed(why.clone())))
                .collect();
        }
    };
    runtime.block_on(async {
        let resolver = Arc::new(Resolver::new(&pipeline.settings.dns));
        let mut lookups = tokio::task::JoinSet::new();
        for name in names {
            let resolver = resolver.clone();
            lookups.spawn(async move {
                let answer = resolver.lookup(&name).await;
                (name, answer)
            });
        }
        let mut found = Lookups::new();
        while let Some(done) = lookups.join_next().await {
            if let Ok((name, answer)) = done {
                found.insert(name, answer);
            }
        }
        found
    })
}

/// Names in `lookups` that gave no address, each with why: a warning for `check`, an error
/// for `check --resolve`.
pub fn unresolved(pipeline: &Pipeline, lookups: &Lookups) -> Vec<String> {
    let mut out = Vec::new();
    for b in &pipeline.backends {
        for name in b.names() {
            let why = match lookups.get(name) {
                Some(Answer::Addresses { .. }) => continue,
                Some(Answer::NoRecords) => "it has no address records".to_owned(),
                Some(Answer::Failed(why)) => why.clone(),
                None => "it was not looked up".to_owned(),
            };
            out.push(format!(
                "backend `{}`: `{name}` does not resolve from here: {why}",
                b.name
            ));
        }
    }
    out
}

/// One phase: its filters' names, then what each says it does.
fn write_phase(out: &mut String, phase: Phase, filters: &[Arc<dyn Filter>]) {
    let names: Vec<&str> = filters.iter().map(|f| f.name()).collect();
    let names = if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    };
    let _ = writeln!(out, "  {phase}: {names}");
    for line in filters.iter().flat_map(|f| f.describe()) {
        let _ = writeln!(out, "    {line}");
    }
}

fn protocol_name(protocol: BackendProtocol) -> &'static str {
    match protocol {
        BackendProtocol::Http1 => "HTTP/1.1",
        BackendProtocol::H2 => "HTTP/2 over TLS",
        BackendProtocol::H2c => "HTTP/2 in plaintext (h2c)",
    }
}

/// A TLS listener's certificates and what it asks of clients.
fn write_tls(out: &mut String, tls: &TlsTerminator) {
    let version = match tls.min_version {
        TlsVersion::Tls12 => "1.2",
        TlsVersion::Tls13 => "1.3",
    };
    let clients = if tls.mutual {
        ", client certificate required"
    } else {
        ""
    };
    let _ = writeln!(out, "  tls: TLS {version} and up{clients}");
    for cert in &tls.certificates {
        let _ = writeln!(
            out,
            "    certificate {} for {}, expires {}",
            cert.subject,
            if cert.dns_names.is_empty() {
                "no DNS names".to_owned()
            } else {
                cert.dns_names.join(", ")
            },
            humantime::format_rfc3339_seconds(cert.not_after),
        );
    }
}

/// What the pipeline will do, in the order a request meets it.
pub fn summary(pipeline: &Pipeline, lookups: &Lookups) -> String {
    let mut out = String::new();
    let s = &pipeline.settings;
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{}: ok", pipeline.source.display());
    let _ = writeln!(
        out,
        "server: {} worker threads per listener, admin {}",
        s.threads, pipeline.admin.address
    );
    let _ = writeln!(out, "backends:");
    for b in &pipeline.backends {
        let c = &b.config;
        let hosts: Vec<String> = c
            .endpoint
            .host_list()
            .into_iter()
            .map(|(h, _)| {
                let at = match literal_address(&h.host) {
                    Some(ip) => SocketAddr::new(ip, h.port).to_string(),
                    None => match lookups.get(&h.host) {
                        Some(Answer::Addresses { ips, .. }) => {
                            let ips: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
                            format!("resolves to {} now", ips.join(", "))
                        }
                        _ => "does not resolve now".to_owned(),
                    },
                };
                match h.weight {
                    1 => format!("{}:{} ({at})", h.host, h.port),
                    w => format!("{}:{} ({at}) weight {w}", h.host, h.port),
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "  {} = {} connect {}, read {}, write {}, idle {}",
            b.name,
            hosts.join(", "),
            humantime::format_duration(c.connect_timeout),
            humantime::format_duration(c.read_timeout),
            humantime::format_duration(c.write_timeout),
            humantime::format_duration(c.idle_timeout),
        );
        let mut bounds = Vec::new();
        if c.protocol != BackendProtocol::Http1 {
            bounds.push(format!("speaks {}", protocol_name(c.protocol)));
        }
        if let Some(max) = c.max_requests {
            bounds.push(format!("at most {max} requests in flight"));
        }
        if let Some(max) = c.max_connections {
            bounds.push(format!(
                "at most {max} connections in use, {} waiting",
                c.max_pending
            ));
        }
        if !bounds.is_empty() {
            let _ = writeln!(out, "    {}", bounds.join("; "));
        }
        if let Some(hc) = &c.health_check {
            let _ = writeln!(
                out,
                "    health check GET {} every {}, timeout {}, healthy after {}, unhealthy after {}",
                hc.path,
                humantime::format_duration(hc.interval),
                humantime::format_duration(hc.timeout),
                hc.healthy_threshold,
                hc.unhealthy_threshold,
            );
        }
    }
    for l in &pipeline.listeners {
        let chain = &l.chain;
        let _ = writeln!(
            out,
            "listener {} on {}://{}:",
            l.name,
            l.scheme(),
            l.address
        );
        if let Some(tls) = &l.tls {
            write_tls(&mut out, tls);
        }
        if l.h2c {
            let _ = writeln!(out, "  h2c: HTTP/2 with prior knowledge too");
        }
        write_phase(&mut out, Phase::PreRouting, chain.pre_routing());
        let _ = writeln!(out, "  routes (first match wins):");
        for (i, line) in chain.router().describe().iter().enumerate() {
            let _ = writeln!(out, "    {}. {line}", i + 1);
        }
        write_phase(&mut out, Phase::PostRouting, chain.post_routing());
        write_phase(&mut out, Phase::Response, chain.response());
    }
    if let Some(report) = &pipeline.gateway_api {
        let _ = write!(out, "{report}");
    }
    for warning in unresolved(pipeline, lookups) {
        let _ = writeln!(
            out,
            "warning: {warning}; it is looked up again while the gateway runs"
        );
    }
    for warning in &pipeline.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}
