//! `switchyard check`: the summary printed for a valid config.

use std::fmt::Write;

use switchyard_filters::Filter;

use crate::pipeline::Pipeline;

fn filter_names(filters: &[std::sync::Arc<dyn Filter>]) -> String {
    if filters.is_empty() {
        "(none)".to_owned()
    } else {
        filters
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the pipeline will do, in the order a request meets it.
pub fn summary(pipeline: &Pipeline) -> String {
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
        let hosts: Vec<String> = b
            .hosts
            .iter()
            .map(|h| match h.weight {
                1 => format!("{} ({})", h.label, h.address),
                w => format!("{} ({}) weight {w}", h.label, h.address),
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
        let _ = writeln!(out, "listener {} on {}:", l.name, l.address);
        let _ = writeln!(out, "  pre_routing: {}", filter_names(chain.pre_routing()));
        for line in chain.pre_routing().iter().flat_map(|f| f.describe()) {
            let _ = writeln!(out, "    {line}");
        }
        let _ = writeln!(out, "  routes (first match wins):");
        for (i, line) in chain.router().describe().iter().enumerate() {
            let _ = writeln!(out, "    {}. {line}", i + 1);
        }
        let _ = writeln!(
            out,
            "  post_routing: {}",
            filter_names(chain.post_routing())
        );
        let _ = writeln!(out, "  response: {}", filter_names(chain.response()));
    }
    out
}
