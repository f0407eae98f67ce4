//! The compiled pipeline: every listener's filter chain, the route tables and the backends,
//! built once from a loaded config and then only read by requests.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard_filters::{
    router, Background, BuildContext, Filter, FilterChain, HttpClient, Phase, Registry,
};

use crate::backend::Backend;
use crate::backend_client::BackendClient;
use http::HeaderName;

use crate::config::{
    join_path, AdminSettings, Config, ConfigError, FilterEntry, ListenerLimits, LoadedConfig,
    ServerSettings,
};

/// The most worker threads a listener may ask for; more is a typo, not a tuning.
const MAX_THREADS: usize = 1024;

/// Everything a request needs, compiled and immutable. Shared behind an atomic pointer so a
/// reload can replace it whole while requests in flight keep the one they started with.
pub struct Pipeline {
    pub source: PathBuf,
    /// The config as loaded, for `/config`.
    pub config: Config,
    pub settings: ServerSettings,
    pub admin: AdminSettings,
    /// Request headers the access log records.
    pub logged_headers: Vec<HeaderName>,
    pub backends: Vec<Arc<Backend>>,
    pub listeners: Vec<Listener>,
}

/// Headers that carry credentials: never written to the access log.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// One listening address and the chain its requests run through.
pub struct Listener {
    pub name: Arc<str>,
    pub address: SocketAddr,
    pub chain: FilterChain,
    pub limits: ListenerLimits,
}

impl Pipeline {
    /// Checks the config's cross-references and builds every filter. Errors point at the field.
    ///
    /// `background` is the running server's, for filters that work off the request path
    /// (fetching remote keys); without it (`check`, `explain`) they do no such work.
    pub fn compile(
        loaded: &LoadedConfig,
        registry: &Registry,
        background: Option<&Background>,
    ) -> Result<Pipeline, ConfigError> {
        let config = &loaded.config;
        if !(1..=MAX_THREADS).contains(&config.server.threads) {
            return Err(loaded.error_at(
                "server.threads",
                format!("must be between 1 and {MAX_THREADS}"),
            ));
        }

        let mut backends = Vec::with_capacity(config.backends.len());
        let mut names = HashSet::new();
        for (i, b) in config.backends.iter().enumerate() {
            let at = format!("backends[{i}]");
            if b.name.is_empty() {
                return Err(loaded.error_at(format!("{at}.name"), "a backend needs a name"));
            }
            if !names.insert(b.name.as_str()) {
                return Err(loaded.error_at(
                    format!("{at}.name"),
                    format!("duplicate backend name `{}`", b.name),
                ));
            }
            backends.push(Arc::new(Backend::build(b, &at, loaded, background)?));
        }
        let backend_names: Vec<Arc<str>> = backends.iter().map(|b| b.name.clone()).collect();
        let base_dir = loaded
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let clients: Vec<Arc<dyn HttpClient>> = backends
            .iter()
            .map(|b| Arc::new(BackendClient::new(b.clone())) as Arc<dyn HttpClient>)
            .collect();
        let mut build_ctx = BuildContext::new(&backend_names, &base_dir).with_clients(&clients);
        if let Some(background) = background {
            build_ctx = build_ctx.with_background(background);
        }

        if config.listeners.is_empty() {
            return Err(loaded.error_at("listeners", "at least one listener is needed"));
        }
        let mut listener_names = HashSet::new();
        let mut addresses = HashSet::new();
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for (i, l) in config.listeners.iter().enumerate() {
            let at = format!("listeners[{i}]");
            if l.name.is_empty() {
                return Err(loaded.error_at(format!("{at}.name"), "a listener needs a name"));
            }
            if !listener_names.insert(l.name.as_str()) {
                return Err(loaded.error_at(
                    format!("{at}.name"),
                    format!("duplicate listener name `{}`", l.name),
                ));
            }
            if !addresses.insert(l.address) {
                return Err(loaded.error_at(
                    format!("{at}.address"),
                    format!("address {} is used by another listener", l.address),
                ));
            }
            if l.address == config.admin.address {
                return Err(loaded.error_at(
                    format!("{at}.address"),
                    format!("address {} is the admin address", l.address),
                ));
            }

            let phases = &l.filters;
            let pre_routing = build_phase(
                loaded,
                registry,
                &build_ctx,
                Phase::PreRouting,
                &phases.pre_routing,
                &at,
            )?;
            let router = registry
                .get(router::NAME)
                .ok_or_else(|| loaded.error_at(&at, "the router filter is not registered"))?
                .build(&l.routes, &build_ctx)
                .map_err(|e| {
                    loaded.error_at(join_path(&format!("{at}.routes"), &e.path), e.message)
                })?;
            let post_routing = build_phase(
                loaded,
                registry,
                &build_ctx,
                Phase::PostRouting,
                &phases.post_routing,
                &at,
            )?;
            let response = build_phase(
                loaded,
                registry,
                &build_ctx,
                Phase::Response,
                &phases.response,
                &at,
            )?;
            check_limits(&l.limits, &at, loaded)?;
            listeners.push(Listener {
                name: Arc::from(l.name.as_str()),
                address: l.address,
                limits: l.limits.clone(),
                chain: FilterChain::new(pre_routing, router, post_routing, response),
            });
        }

        let mut logged_headers = Vec::with_capacity(config.access_log.headers.len());
        for (i, h) in config.access_log.headers.iter().enumerate() {
            let at = format!("access_log.headers[{i}]");
            let name = HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| loaded.error_at(&at, format!("`{h}` is not a valid header name")))?;
            if SECRET_HEADERS.contains(&name.as_str()) {
                return Err(loaded.error_at(
                    &at,
                    format!("`{h}` carries credentials and is never logged"),
                ));
            }
            logged_headers.push(name);
        }

        Ok(Pipeline {
            source: loaded.path.clone(),
            config: config.clone(),
            logged_headers,
            settings: config.server.clone(),
            admin: config.admin.clone(),
            backends,
            listeners,
        })
    }
}

fn build_phase(
    loaded: &LoadedConfig,
    registry: &Registry,
    ctx: &BuildContext<'_>,
    phase: Phase,
    entries: &[FilterEntry],
    listener_at: &str,
) -> Result<Vec<Arc<dyn Filter>>, ConfigError> {
    entries
        .iter()
        .enumerate()
        .map(|(j, entry)| {
            let at = format!("{listener_at}.filters.{phase}[{j}]");
            let factory = registry.get(&entry.name).ok_or_else(|| {
                let known: Vec<_> = registry
                    .names()
                    .filter(|n| registry.get(n).is_some_and(|f| !f.phases().is_empty()))
                    .collect();
                loaded.error_at(
                    format!("{at}.name"),
                    format!(
                        "unknown filter `{}` (filters: {})",
                        entry.name,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            if !factory.phases().contains(&phase) {
                let message = if factory.phases().is_empty() {
                    format!(
                        "`{}` is not placed in a phase: it is built from the listener's `routes`",
                        entry.name
                    )
                } else {
                    let allowed: Vec<_> = factory.phases().iter().map(|p| p.as_str()).collect();
                    format!(
                        "filter `{}` cannot run in {phase} (it runs in: {})",
                        entry.name,
                        allowed.join(", ")
                    )
                };
                return Err(loaded.error_at(format!("{at}.name"), message));
            }
            factory
                .build(&entry.config, &ctx.in_phase(phase))
                .map_err(|e| {
                    loaded.error_at(join_path(&format!("{at}.config"), &e.path), e.message)
                })
        })
        .collect()
}

/// Limits of zero would refuse every request or close every connection at once.
fn check_limits(
    limits: &ListenerLimits,
    at: &str,
    loaded: &LoadedConfig,
) -> Result<(), ConfigError> {
    let positive = [
        (
            "max_request_header_bytes",
            limits.max_request_header_bytes == 0,
        ),
        ("max_request_headers", limits.max_request_headers == 0),
        ("max_connections", limits.max_connections == 0),
        ("header_read_timeout", limits.header_read_timeout.is_zero()),
        ("idle_timeout", limits.idle_timeout.is_zero()),
    ];
    if let Some((field, _)) = positive.iter().find(|(_, zero)| *zero) {
        return Err(loaded.error_at(format!("{at}.limits.{field}"), "must be greater than zero"));
    }
    Ok(())
}
