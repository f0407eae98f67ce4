//! Every check a config must pass across its fields, in one place: ranges, names, references
//! between sections, and the shape of what serde alone cannot say. A config that passes can
//! be built; what is left to building is what needs the world outside the model (resolving
//! host names, reading certificate files) and each filter's own config, which its factory
//! checks.
//!
//! Each check reports the field it is about, so the error points at its file, line and
//! column whichever front-end wrote the model.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use http::HeaderName;
use switchyard_filters::headers::CREDENTIAL_HEADERS;
use switchyard_filters::router::{DirectResponseConfig, Hostname, RouteConfig, RouteFiltersConfig};
use switchyard_filters::validate::{unique_names, unknown};
use switchyard_filters::{router, Phase, Registry};

use super::{
    BackendConfig, BackendProtocol, ConfigError, DnsSettings, FilterEntry, HealthCheckConfig,
    ListenerConfig, ListenerLimits, ListenerTls, LoadedConfig,
};
use crate::backend::{MAX_HOSTS, MAX_WEIGHT};

/// The most worker threads a listener may ask for; more is a typo, not a tuning.
pub const MAX_THREADS: usize = 1024;

/// Checks `loaded` whole; `registry` says which filters exist and where they may run.
pub fn validate(loaded: &LoadedConfig, registry: &Registry) -> Result<(), ConfigError> {
    let config = &loaded.config;
    if !(1..=MAX_THREADS).contains(&config.server.threads) {
        return Err(loaded.error_at(
            "server.threads",
            format!("must be between 1 and {MAX_THREADS}"),
        ));
    }
    check_dns(&config.server.dns, loaded)?;
    names(
        loaded,
        "backend",
        "backends",
        config.backends.iter().map(|b| b.name.as_str()),
    )?;
    for (i, backend) in config.backends.iter().enumerate() {
        check_backend(backend, &format!("backends[{i}]"), loaded)?;
    }
    if config.listeners.is_empty() {
        return Err(loaded.error_at("listeners", "at least one listener is needed"));
    }
    names(
        loaded,
        "listener",
        "listeners",
        config.listeners.iter().map(|l| l.name.as_str()),
    )?;
    let mut addresses = HashSet::new();
    for (i, listener) in config.listeners.iter().enumerate() {
        let at = format!("listeners[{i}]");
        if !addresses.insert(listener.address) {
            return Err(loaded.error_at(
                format!("{at}.address"),
                format!("address {} is used by another listener", listener.address),
            ));
        }
        if listener.address == config.admin.address {
            return Err(loaded.error_at(
                format!("{at}.address"),
                format!("address {} is the admin address", listener.address),
            ));
        }
        check_listener(listener, &at, loaded, registry)?;
    }
    for (i, header) in config.access_log.headers.iter().enumerate() {
        let at = format!("access_log.headers[{i}]");
        let name = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| loaded.error_at(&at, format!("`{header}` is not a valid header name")))?;
        if CREDENTIAL_HEADERS.contains(&name.as_str()) {
            return Err(loaded.error_at(
                &at,
                format!("`{header}` carries credentials and is never logged"),
            ));
        }
    }
    Ok(())
}

/// Each of `names` (of the entries of the list at `list`) is given and used once.
fn names<'a>(
    loaded: &LoadedConfig,
    what: &str,
    list: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ConfigError> {
    unique_names(what, names)
        .map_err(|e| loaded.error_at(format!("{list}[{}].name", e.index), e.message))
}

fn check_backend(
    backend: &BackendConfig,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    for (field, value) in [
        ("connect_timeout", backend.connect_timeout),
        ("read_timeout", backend.read_timeout),
        ("write_timeout", backend.write_timeout),
    ] {
        if value.is_zero() {
            return Err(loaded.error_at(
                format!("{at}.{field}"),
                "must be greater than zero (a zero timeout would fail every request)",
            ));
        }
    }
    if let Some(check) = &backend.health_check {
        check_health_check(check, &format!("{at}.health_check"), loaded)?;
    }
    check_endpoint(backend, at, loaded)?;
    let ratio = backend.retry_budget.ratio;
    if !(0.0..=1.0).contains(&ratio) {
        return Err(loaded.error_at(
            format!("{at}.retry_budget.ratio"),
            "must be 0 to 1 (the share of requests retries may add)",
        ));
    }
    if backend.max_connections == Some(0) {
        return Err(loaded.error_at(
            format!("{at}.max_connections"),
            "must be greater than zero (zero would refuse every request)",
        ));
    }
    if backend.max_pending > 0 && backend.max_connections.is_none() {
        return Err(loaded.error_at(
            format!("{at}.max_pending"),
            "requests wait only for one of `max_connections`: set it too",
        ));
    }
    if backend.max_requests == Some(0) {
        return Err(loaded.error_at(
            format!("{at}.max_requests"),
            "must be greater than zero (zero would refuse every request)",
        ));
    }
    match (backend.protocol, &backend.tls) {
        (BackendProtocol::H2, None) => {
            return Err(loaded.error_at(
                format!("{at}.protocol"),
                "h2 is HTTP/2 over TLS and needs `tls`; for plaintext HTTP/2 use h2c",
            ))
        }
        (BackendProtocol::H2c, Some(_)) => {
            return Err(loaded.error_at(
                format!("{at}.protocol"),
                "h2c is plaintext HTTP/2; over TLS use h2",
            ))
        }
        _ => {}
    }
    if let Some(tls) = &backend.tls {
        match &tls.sni {
            Some(sni) if sni.is_empty() => {
                return Err(loaded.error_at(format!("{at}.tls.sni"), "the SNI name cannot be empty"))
            }
            Some(_) => {}
            // With rustls an empty SNI turns certificate verification off, so a host given by
            // address needs a name to check the certificate against.
            None => {
                let by_address = backend
                    .endpoint
                    .host_list()
                    .iter()
                    .any(|(h, _)| h.host.parse::<IpAddr>().is_ok());
                if by_address {
                    return Err(loaded.error_at(
                        format!("{at}.tls"),
                        "`sni` is required when static.host is an IP address: it is the name the \
                         backend's certificate is checked against",
                    ));
                }
            }
        }
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            return Err(loaded.error_at(
                format!("{at}.tls"),
                "`client_cert` and `client_key` go together",
            ));
        }
    }
    Ok(())
}

/// Refresh bounds that make sense together.
fn check_dns(dns: &DnsSettings, loaded: &LoadedConfig) -> Result<(), ConfigError> {
    if dns.min_refresh < MIN_DNS_REFRESH {
        return Err(loaded.error_at(
            "server.dns.min_refresh",
            format!(
                "must be at least {}: a name looked up more often loads its servers for nothing",
                humantime::format_duration(MIN_DNS_REFRESH)
            ),
        ));
    }
    if dns.max_refresh < dns.min_refresh {
        return Err(loaded.error_at(
            "server.dns.max_refresh",
            "must not be shorter than `min_refresh`",
        ));
    }
    if dns.timeout.is_zero() {
        return Err(loaded.error_at("server.dns.timeout", "must be more than zero"));
    }
    Ok(())
}

/// The shortest `server.dns.min_refresh`.
const MIN_DNS_REFRESH: std::time::Duration = std::time::Duration::from_millis(100);

/// `static: {host, port}` or `static: {hosts: [...]}`, within bounds.
fn check_endpoint(
    backend: &BackendConfig,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    let endpoint = &backend.endpoint;
    match (&endpoint.host, endpoint.port, endpoint.hosts.is_empty()) {
        (Some(_), Some(_), true) | (None, None, false) => {}
        (None, None, true) => {
            return Err(loaded.error_at(
                format!("{at}.static"),
                "needs `host` and `port`, or a list of `hosts`",
            ))
        }
        (Some(_), None, true) | (None, Some(_), true) => {
            return Err(loaded.error_at(format!("{at}.static"), "`host` and `port` go together"))
        }
        _ => {
            return Err(loaded.error_at(
                format!("{at}.static.hosts"),
                "give either `host` and `port` or `hosts`, not both",
            ))
        }
    }
    let hosts = endpoint.host_list();
    if hosts.len() > MAX_HOSTS {
        return Err(loaded.error_at(
            format!("{at}.static.hosts"),
            format!("at most {MAX_HOSTS} hosts per backend"),
        ));
    }
    for (host, field) in &hosts {
        let field = format!("{at}.{field}");
        if !(1..=MAX_WEIGHT).contains(&host.weight) {
            return Err(loaded.error_at(
                format!("{field}.weight"),
                format!("must be between 1 and {MAX_WEIGHT}"),
            ));
        }
        if host.host.is_empty() {
            return Err(loaded.error_at(field, "the host cannot be empty"));
        }
    }
    Ok(())
}

fn check_health_check(
    check: &HealthCheckConfig,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    let field = |name: &str| format!("{at}.{name}");
    if !check.path.starts_with('/')
        || http::uri::PathAndQuery::try_from(check.path.as_str()).is_err()
    {
        return Err(loaded.error_at(field("path"), "must be a path starting with `/`"));
    }
    if check.interval < std::time::Duration::from_millis(100) {
        return Err(loaded.error_at(field("interval"), "must be at least 100ms"));
    }
    if check.timeout.is_zero() {
        return Err(loaded.error_at(field("timeout"), "must be greater than zero"));
    }
    for (name, value) in [
        ("healthy_threshold", check.healthy_threshold),
        ("unhealthy_threshold", check.unhealthy_threshold),
    ] {
        if value == 0 {
            return Err(loaded.error_at(field(name), "must be at least 1"));
        }
    }
    if let Some(host) = &check.host {
        if http::HeaderValue::from_str(host).is_err() || host.is_empty() {
            return Err(loaded.error_at(field("host"), "not a valid Host header value"));
        }
    }
    Ok(())
}

fn check_listener(
    listener: &ListenerConfig,
    at: &str,
    loaded: &LoadedConfig,
    registry: &Registry,
) -> Result<(), ConfigError> {
    check_limits(&listener.limits, &format!("{at}.limits"), loaded)?;
    if let Some(tls) = &listener.tls {
        check_tls(tls, &format!("{at}.tls"), loaded)?;
        if listener.h2c {
            return Err(loaded.error_at(
                format!("{at}.h2c"),
                "h2c is for plaintext listeners; on TLS, HTTP/2 is offered by `tls.alpn`",
            ));
        }
    }
    let phases = &listener.filters;
    for (phase, entries) in [
        (Phase::PreRouting, &phases.pre_routing),
        (Phase::PostRouting, &phases.post_routing),
        (Phase::Response, &phases.response),
    ] {
        for (j, entry) in entries.iter().enumerate() {
            check_placement(
                entry,
                phase,
                &format!("{at}.filters.{phase}[{j}]"),
                loaded,
                registry,
            )?;
        }
    }
    let routes = &listener.routes;
    names(
        loaded,
        "route",
        &format!("{at}.routes"),
        routes.iter().map(|r| r.name.as_str()),
    )?;
    let backends: Vec<&str> = loaded
        .config
        .backends
        .iter()
        .map(|b| b.name.as_str())
        .collect();
    for (i, route) in routes.iter().enumerate() {
        check_route(
            route,
            &format!("{at}.routes[{i}]"),
            &backends,
            loaded,
            registry,
        )?;
    }
    Ok(())
}

/// The most a share of a split may weigh, as in the Gateway API.
const MAX_SHARE_WEIGHT: u32 = 1_000_000;

/// A route sends to one backend, splits over several, answers, or redirects: exactly one of
/// them, each naming what exists; its own filters are placed as a listener's would be.
fn check_route(
    route: &RouteConfig,
    at: &str,
    backends: &[&str],
    loaded: &LoadedConfig,
    registry: &Registry,
) -> Result<(), ConfigError> {
    let single = [
        route.backend.is_some(),
        route.respond.is_some(),
        route.redirect.is_some(),
    ];
    match (single.iter().filter(|g| **g).count(), route.backends.is_empty()) {
        (0, true) => {
            return Err(loaded.error_at(
                at,
                "a route needs a `backend` to send to, `backends` to split over, a `respond` to answer with or a `redirect`",
            ))
        }
        (1, true) | (0, false) => {}
        _ => {
            return Err(loaded.error_at(
                at,
                "give one of `backend`, `backends`, `respond` and `redirect`",
            ))
        }
    }
    check_outcome(&route.backend, &route.respond, at, backends, loaded)?;
    check_route_filters(&route.filters, &format!("{at}.filters"), loaded, registry)?;
    let timeouts = &route.timeouts;
    for (field, value) in [
        ("request", timeouts.request),
        ("backend_request", timeouts.backend_request),
    ] {
        if value.is_some_and(|v| v.is_zero()) {
            return Err(loaded.error_at(
                format!("{at}.timeouts.{field}"),
                "must be greater than zero; leave it out for no bound",
            ));
        }
    }
    if let (Some(request), Some(backend)) = (timeouts.request, timeouts.backend_request) {
        if backend > request {
            return Err(loaded.error_at(
                format!("{at}.timeouts.backend_request"),
                "cannot be longer than timeouts.request, which bounds every attempt too",
            ));
        }
    }
    for (j, share) in route.backends.iter().enumerate() {
        let at = format!("{at}.backends[{j}]");
        let given = [
            share.backend.is_some(),
            share.respond.is_some(),
            share.redirect.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(loaded.error_at(&at, "give one of `backend`, `respond` and `redirect`"));
        }
        check_outcome(&share.backend, &share.respond, &at, backends, loaded)?;
        check_route_filters(&share.filters, &format!("{at}.filters"), loaded, registry)?;
        if share.weight > MAX_SHARE_WEIGHT {
            return Err(loaded.error_at(
                format!("{at}.weight"),
                format!("must be at most {MAX_SHARE_WEIGHT}"),
            ));
        }
    }
    if !route.backends.is_empty() && route.backends.iter().all(|s| s.weight == 0) {
        return Err(loaded.error_at(
            format!("{at}.backends"),
            "every weight is 0: no share would get traffic",
        ));
    }
    Ok(())
}

/// A backend that exists, an answer within range.
fn check_outcome(
    backend: &Option<String>,
    respond: &Option<DirectResponseConfig>,
    at: &str,
    backends: &[&str],
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    if let Some(backend) = backend {
        known_backend(backend, &format!("{at}.backend"), backends, loaded)?;
    }
    if let Some(respond) = respond {
        check_respond(respond, &format!("{at}.respond"), loaded)?;
    }
    Ok(())
}

/// A route's own filters exist and may run where they are: `request` ones after routing,
/// `response` ones on the response.
fn check_route_filters(
    filters: &RouteFiltersConfig,
    at: &str,
    loaded: &LoadedConfig,
    registry: &Registry,
) -> Result<(), ConfigError> {
    for (phase, list, name) in [
        (Phase::PostRouting, &filters.request, "request"),
        (Phase::Response, &filters.response, "response"),
    ] {
        for (j, entry) in list.iter().enumerate() {
            check_placement(entry, phase, &format!("{at}.{name}[{j}]"), loaded, registry)?;
        }
    }
    Ok(())
}

fn known_backend(
    name: &str,
    at: &str,
    backends: &[&str],
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    if backends.contains(&name) {
        Ok(())
    } else {
        Err(loaded.error_at(at, unknown("backend", name, backends)))
    }
}

fn check_respond(
    respond: &DirectResponseConfig,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    if (200..=599).contains(&respond.status) {
        Ok(())
    } else {
        Err(loaded.error_at(format!("{at}.status"), "must be between 200 and 599"))
    }
}

/// The filter `entry` names exists and may run in `phase`.
fn check_placement(
    entry: &FilterEntry,
    phase: Phase,
    at: &str,
    loaded: &LoadedConfig,
    registry: &Registry,
) -> Result<(), ConfigError> {
    let field = format!("{at}.name");
    if entry.name == router::NAME {
        return Err(loaded.error_at(
            field,
            "`router` is not placed in a phase: it is built from the listener's `routes`",
        ));
    }
    let Some(factory) = registry.get(&entry.name) else {
        return Err(loaded.error_at(field, unknown("filter", &entry.name, registry.names())));
    };
    if !factory.phases().contains(&phase) {
        let allowed: Vec<_> = factory.phases().iter().map(|p| p.as_str()).collect();
        let allowed = if allowed.is_empty() {
            "no phase".to_owned()
        } else {
            allowed.join(", ")
        };
        return Err(loaded.error_at(
            field,
            format!(
                "filter `{}` cannot run in {phase} (it runs in: {allowed})",
                entry.name
            ),
        ));
    }
    Ok(())
}

/// Certificates a client can be given unambiguously: each SNI name listed once, one default
/// at most; a list of protocols to offer. Reading the files is left to building.
fn check_tls(tls: &ListenerTls, at: &str, loaded: &LoadedConfig) -> Result<(), ConfigError> {
    if tls.certificates.is_empty() {
        return Err(loaded.error_at(
            format!("{at}.certificates"),
            "at least one certificate is needed",
        ));
    }
    let mut default = None;
    let mut seen: HashMap<Hostname, usize> = HashMap::new();
    for (i, cert) in tls.certificates.iter().enumerate() {
        let entry = format!("{at}.certificates[{i}]");
        for (file, text, name) in [
            (cert.cert.is_some(), cert.cert_pem.is_some(), "cert"),
            (cert.key.is_some(), cert.key_pem.is_some(), "key"),
        ] {
            match (file, text) {
                (true, true) => {
                    return Err(loaded.error_at(
                        format!("{entry}.{name}_pem"),
                        format!("give `{name}` (a file) or `{name}_pem` (the PEM text), not both"),
                    ))
                }
                (false, false) => {
                    return Err(loaded.error_at(
                        &entry,
                        format!("`{name}` is missing (a PEM file; or `{name}_pem`, its text)"),
                    ))
                }
                _ => {}
            }
        }
        if cert.hostnames.is_empty() {
            if let Some(first) = default.replace(i) {
                return Err(loaded.error_at(
                    format!("{entry}.hostnames"),
                    format!(
                        "certificates[{first}] is already the default (no hostnames); give this \
                         one its hostnames"
                    ),
                ));
            }
        }
        for (j, name) in cert.hostnames.iter().enumerate() {
            let field = format!("{entry}.hostnames[{j}]");
            let hostname =
                Hostname::parse(name, &field).map_err(|e| loaded.error_at(&field, e.message))?;
            if let Some(other) = seen.insert(hostname, i) {
                return Err(loaded.error_at(
                    &field,
                    format!(
                        "overlapping hostnames: `{name}` is listed by certificates[{other}] too"
                    ),
                ));
            }
        }
    }
    if tls.alpn.is_empty() {
        return Err(loaded.error_at(
            format!("{at}.alpn"),
            "offer at least one protocol (`http/1.1`)",
        ));
    }
    if let Some(i) = (1..tls.alpn.len()).find(|&i| tls.alpn[..i].contains(&tls.alpn[i])) {
        return Err(loaded.error_at(format!("{at}.alpn[{i}]"), "listed twice"));
    }
    Ok(())
}

/// Limits of zero would refuse every request or close every connection at once.
fn check_limits(
    limits: &ListenerLimits,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    let zero = [
        (
            "max_request_header_bytes",
            limits.max_request_header_bytes == 0,
        ),
        ("max_request_headers", limits.max_request_headers == 0),
        ("max_connections", limits.max_connections == 0),
        ("header_read_timeout", limits.header_read_timeout.is_zero()),
        ("idle_timeout", limits.idle_timeout.is_zero()),
        (
            "tls_handshake_timeout",
            limits.tls_handshake_timeout.is_zero(),
        ),
        ("max_concurrent_streams", limits.max_concurrent_streams == 0),
    ];
    match zero.iter().find(|(_, zero)| *zero) {
        Some((field, _)) => {
            Err(loaded.error_at(format!("{at}.{field}"), "must be greater than zero"))
        }
        None => Ok(()),
    }
}
