//! Prometheus metrics, all prefixed `switchyard_`.
//!
//! Label values come from config names (listener, route, backend, provider, header) and fixed
//! codes (status, reason), never from what a client sends, so a client cannot grow the number
//! of series. Requests that matched no route carry `route="-"` and `backend="-"`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};

use arc_swap::ArcSwap;

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use switchyard_filters::{MetricKind, MetricSample};

use crate::pipeline::Pipeline;

/// Request durations from a few hundred microseconds (the gateway's own answers) to the
/// longest read timeout worth waiting for.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub upstream_failures: IntCounterVec,
    pub upstream_retries: IntCounterVec,
    pub retry_budget_exhausted: IntCounterVec,
    pub in_flight: IntGaugeVec,
    pub connections: IntGaugeVec,
    pub connections_rejected: IntCounterVec,
    pub tls_handshake_failures: IntCounterVec,
    pub access_log_dropped: IntCounter,
    pub config_reloads: IntCounterVec,
    pub config_last_success: Gauge,
    /// Filter counters of pipelines replaced by reloads.
    retired: Mutex<Series>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("switchyard".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "Requests answered, by listener, route, backend, status and protocol (HTTP/1.1, HTTP/2).",
            ),
            &["listener", "route", "backend", "status", "protocol"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "request_duration_seconds",
                "Time from the request header to the end of the response, by listener, route and backend.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["listener", "route", "backend"],
        )?;
        let upstream_failures = IntCounterVec::new(
            Opts::new(
                "upstream_failures_total",
                "Requests that could not be proxied, by backend and kind (connect_failed, tls_failed, connect_timeout, timeout, bad_response, route_timeout, overloaded, unresolved).",
            ),
            &["backend", "kind"],
        )?;
        let upstream_retries = IntCounterVec::new(
            Opts::new(
                "upstream_retries_total",
                "Requests sent again to their backend, by backend and reason (connect_failure: to another host after connecting failed; reset, timeout, status: the route's retry).",
            ),
            &["backend", "reason"],
        )?;
        let retry_budget_exhausted = IntCounterVec::new(
            Opts::new(
                "upstream_retry_budget_exhausted_total",
                "Retries a route asked for that the backend's retry budget refused, by backend.",
            ),
            &["backend"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new("requests_in_flight", "Requests being handled, by listener."),
            &["listener"],
        )?;
        let connections = IntGaugeVec::new(
            Opts::new(
                "downstream_connections",
                "Open client connections, by listener.",
            ),
            &["listener"],
        )?;
        let connections_rejected = IntCounterVec::new(
            Opts::new(
                "downstream_connections_closed_total",
                "Client connections the gateway closed on a limit, by listener and reason (max_connections: answered 503; header_read_timeout: answered 408).",
            ),
            &["listener", "reason"],
        )?;
        let tls_handshake_failures = IntCounterVec::new(
            Opts::new(
                "tls_handshake_failures_total",
                "TLS handshakes that failed, by listener and reason (timeout, no_certificate, client_certificate, incompatible, closed, error).",
            ),
            &["listener", "reason"],
        )?;
        let access_log_dropped = IntCounter::new(
            "access_log_dropped_total",
            "Access log lines dropped because the writer could not keep up.",
        )?;
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "config_reloads_total",
                "Config reloads, by result (success, failure).",
            ),
            &["result"],
        )?;
        let config_last_success = Gauge::new(
            "config_last_success_timestamp_seconds",
            "When the config now serving was loaded (Unix time).",
        )?;
        registry.register(Box::new(config_reloads.clone()))?;
        registry.register(Box::new(config_last_success.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(upstream_failures.clone()))?;
        registry.register(Box::new(upstream_retries.clone()))?;
        registry.register(Box::new(retry_budget_exhausted.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_rejected.clone()))?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        registry.register(Box::new(tls_handshake_failures.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            upstream_failures,
            upstream_retries,
            retry_budget_exhausted,
            in_flight,
            connections,
            connections_rejected,
            tls_handshake_failures,
            access_log_dropped,
            config_reloads,
            config_last_success,
            retired: Mutex::new(BTreeMap::new()),
        })
    }

    /// The text exposition: the server's metrics, then the metrics each filter keeps
    /// (`switchyard_jwt_authn_total`, `switchyard_transformation_header_drops_total`, ...),
    /// labelled with their listener.
    pub fn render(&self, pipeline: &ArcSwap<Pipeline>) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        // Holding the lock keeps a concurrent reload from being seen half done.
        let retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let mut series = retired.clone();
        let live = pipeline.load();
        filter_metrics(&live, &mut series, true);
        drop(retired);
        host_metrics(&live, &mut series);
        render_series(&series, &mut out);
        out
    }

    /// Holds `/metrics` still while the caller replaces the serving pipeline, so no scrape
    /// sees the new pipeline before the old one's counts are kept (see [`Retiring`]).
    pub fn retiring(&self) -> Retiring<'_> {
        Retiring {
            retired: self.retired.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// Filters are rebuilt on a reload and start their counters at zero, so the counts of the
/// pipeline a reload replaces are kept and added to the new one's: the exposed counters never
/// go backwards. Held from before the swap until [`retire`](Retiring::retire).
pub struct Retiring<'m> {
    retired: MutexGuard<'m, Series>,
}

impl Retiring<'_> {
    /// Keeps the counts of `old`, the pipeline just replaced.
    pub fn retire(mut self, old: &Pipeline) {
        filter_metrics(old, &mut self.retired, false);
    }
}

/// A filter metric series: metric name and its rendered labels.
type SeriesKey = (&'static str, String);
/// Its help text, kind and value.
type Series = BTreeMap<SeriesKey, (&'static str, MetricKind, u64)>;

/// The filters' metrics by series. Per-filter counters add up (two filters of one kind in
/// one listener); shared counters and gauges, which every filter sharing the state reports
/// alike, take the largest value. Only per-filter counters are kept when a pipeline retires
/// (`live` false): the rest belongs to state that lives on, or ends, without it.
fn filter_metrics(pipeline: &Pipeline, into: &mut Series, live: bool) {
    for listener in &pipeline.listeners {
        for filter in listener.chain.filters() {
            for MetricSample {
                name,
                help,
                kind,
                labels,
                value,
            } in filter.metrics()
            {
                if !live && kind != MetricKind::Counter {
                    continue;
                }
                let mut series = format!("listener=\"{}\"", escape(&listener.name));
                for (k, v) in &labels {
                    let _ = write!(series, ",{k}=\"{}\"", escape(v));
                }
                let entry = into.entry((name, series)).or_insert((help, kind, 0));
                match kind {
                    MetricKind::Counter => entry.2 += value,
                    MetricKind::SharedCounter | MetricKind::Gauge => entry.2 = entry.2.max(value),
                }
            }
        }
    }
}

/// Each backend host's health. The counts live with the host's health state, which a reload
/// that keeps the backend unchanged carries over; a changed backend starts them anew.
fn host_metrics(pipeline: &Pipeline, into: &mut Series) {
    for backend in &pipeline.backends {
        into.insert(
            (
                "backend_requests_in_flight",
                format!("backend=\"{}\"", escape(&backend.name)),
            ),
            (
                "Requests of the backend in flight now (bounded by its max_requests).",
                MetricKind::Gauge,
                u64::try_from(backend.requests_in_flight()).unwrap_or(u64::MAX),
            ),
        );
        if let Some(slots) = backend.connection_slots() {
            into.insert(
                (
                    "backend_requests_pending",
                    format!("backend=\"{}\"", escape(&backend.name)),
                ),
                (
                    "Requests waiting for one of the backend's max_connections to free.",
                    MetricKind::Gauge,
                    u64::try_from(slots.pending()).unwrap_or(u64::MAX),
                ),
            );
        }
        let hosts = backend.hosts();
        dns_metrics(backend, hosts.hosts.len(), into);
        for host in hosts.host_health() {
            let labels = format!(
                "backend=\"{}\",host=\"{}\"",
                escape(&backend.name),
                escape(host.label)
            );
            let mut put = |name, help, kind, value| {
                into.insert((name, labels.clone()), (help, kind, value));
            };
            put(
                "backend_host_healthy",
                "1 when the host takes traffic: it passes its active health check (if any) and is not ejected.",
                MetricKind::Gauge,
                u64::from(host.checked_healthy && !host.ejected),
            );
            put(
                "backend_host_ejected",
                "1 while the host is ejected for failing consecutive requests.",
                MetricKind::Gauge,
                u64::from(host.ejected),
            );
            put(
                "backend_host_ejections_total",
                "Times the host was ejected for failing consecutive requests.",
                MetricKind::SharedCounter,
                host.ejections,
            );
            put(
                "backend_host_failures_total",
                "Requests to the host that failed: no connection, a transport error, or a 502, 503 or 504 answer.",
                MetricKind::SharedCounter,
                host.failures,
            );
            for (result, value) in [
                ("passed", host.checks_passed),
                ("failed", host.checks_failed),
            ] {
                into.insert(
                    (
                        "backend_host_health_checks_total",
                        format!("{labels},result=\"{result}\""),
                    ),
                    (
                        "Active health check probes of the host, by result.",
                        MetricKind::SharedCounter,
                        value,
                    ),
                );
            }
        }
    }
}

/// How a backend's names resolve: lookups by result, addresses held, the last good answer.
fn dns_metrics(backend: &crate::backend::Backend, addresses: usize, into: &mut Series) {
    let labels = format!("backend=\"{}\"", escape(&backend.name));
    into.insert(
        ("backend_addresses", labels.clone()),
        (
            "Addresses the backend sends to now: its hosts given by address and what its names resolve to.",
            MetricKind::Gauge,
            u64::try_from(addresses).unwrap_or(u64::MAX),
        ),
    );
    if backend.names().next().is_none() {
        return;
    }
    let stats = backend.dns_stats();
    for (result, counter) in [
        ("addresses", &stats.answered),
        ("no_records", &stats.no_records),
        ("failed", &stats.failed),
    ] {
        into.insert(
            (
                "dns_resolutions_total",
                format!("{labels},result=\"{result}\""),
            ),
            (
                "Lookups of the backend's host names, by result: addresses, no_records (NXDOMAIN or none), failed (timeout, SERVFAIL, refused).",
                MetricKind::SharedCounter,
                counter.load(std::sync::atomic::Ordering::Relaxed),
            ),
        );
    }
    into.insert(
        ("dns_last_success_timestamp_seconds", labels),
        (
            "Unix time of the backend's last lookup that gave addresses; 0 before the first.",
            MetricKind::Gauge,
            stats
                .last_success
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
    );
}

/// Appends the series, one HELP/TYPE header per family.
fn render_series(series: &Series, out: &mut String) {
    let mut current = None;
    for ((name, labels), (help, kind, value)) in series {
        if current != Some(*name) {
            current = Some(*name);
            let kind = match kind {
                MetricKind::Counter | MetricKind::SharedCounter => "counter",
                MetricKind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP switchyard_{name} {help}");
            let _ = writeln!(out, "# TYPE switchyard_{name} {kind}");
        }
        let _ = writeln!(out, "switchyard_{name}{{{labels}}} {value}");
    }
}

/// Label value escaping of the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Status codes as label values without allocating for the common ones.
pub fn status_label(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        0 => "0".into(),
        200 => "200".into(),
        204 => "204".into(),
        301 => "301".into(),
        302 => "302".into(),
        304 => "304".into(),
        400 => "400".into(),
        401 => "401".into(),
        403 => "403".into(),
        404 => "404".into(),
        500 => "500".into(),
        502 => "502".into(),
        503 => "503".into(),
        504 => "504".into(),
        other => other.to_string().into(),
    }
}
