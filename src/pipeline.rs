//! The compiled pipeline: every listener's filter chain, the route tables and the backends,
//! built once from a loaded config and then only read by requests.
//!
//! Compiling reads in order: validate the model, build the backends (resolving their hosts),
//! lend filters a client per backend, build each listener's chain, and note the headers the
//! access log keeps.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http::HeaderName;
use switchyard_filters::{
    router, Background, BuildContext, Filter, FilterChain, HttpClient, Phase, Registry,
};

use crate::backend::Backend;
use crate::backend::BackendClient;
use crate::config::{
    join_path, validate, AdminSettings, Config, ConfigError, FilterEntry, ListenerConfig,
    ListenerLimits, LoadedConfig, ServerSettings,
};
use crate::tls::TlsTerminator;

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
    /// What the Gateway API front-end made of the manifests, when the config has them.
    pub gateway_api: Option<crate::gateway_api::Report>,
    /// The files and folders the config was read from, certificate files included: what a
    /// reload watches.
    pub sources: Vec<PathBuf>,
    /// What is wrong but still serves (a certificate about to expire): `check` prints these,
    /// `run` logs them.
    pub warnings: Vec<ConfigError>,
}

/// One listening address and the chain its requests run through.
pub struct Listener {
    pub name: Arc<str>,
    pub address: SocketAddr,
    pub chain: FilterChain,
    pub limits: ListenerLimits,
    /// Present on a TLS listener.
    pub tls: Option<TlsTerminator>,
    /// Plaintext HTTP/2 with prior knowledge accepted beside HTTP/1.1.
    pub h2c: bool,
}

impl Listener {
    /// `https` or `http`, for `check` and the logs.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

impl Pipeline {
    /// Validates the config and builds everything it describes. Errors point at the field.
    ///
    /// `background` is the running server's, for filters and backends that work off the
    /// request path (fetching remote keys, probing hosts); without it (`check`, `explain`)
    /// they do no such work.
    pub fn compile(
        loaded: &LoadedConfig,
        registry: &Registry,
        background: Option<&Background>,
    ) -> Result<Pipeline, ConfigError> {
        validate::validate(loaded, registry)?;
        let config = &loaded.config;
        let backends = build_backends(loaded, background)?;

        let backend_names: Vec<Arc<str>> = backends.iter().map(|b| b.name.clone()).collect();
        let clients: Vec<Arc<dyn HttpClient>> = backends
            .iter()
            .map(|b| Arc::new(BackendClient::new(b.clone())) as Arc<dyn HttpClient>)
            .collect();
        let mut build_ctx = BuildContext::new(&backend_names, loaded.origin.base_dir())
            .with_clients(&clients)
            .with_registry(registry);
        if let Some(background) = background {
            build_ctx = build_ctx.with_background(background);
        }

        let mut warnings = Vec::new();
        let listeners = config
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let at = format!("listeners[{i}]");
                build_listener(l, &at, loaded, registry, &build_ctx, &mut warnings)
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut sources: Vec<PathBuf> = loaded.origin.sources().map(PathBuf::from).collect();
        sources.extend(certificate_files(config, loaded.origin.base_dir()));
        Ok(Pipeline {
            source: loaded.origin.file().to_owned(),
            gateway_api: loaded.gateway_api.clone(),
            sources,
            warnings,
            config: config.clone(),
            logged_headers: logged_headers(&config.access_log.headers),
            settings: config.server.clone(),
            admin: config.admin.clone(),
            backends,
            listeners,
        })
    }
}

fn build_backends(
    loaded: &LoadedConfig,
    background: Option<&Background>,
) -> Result<Vec<Arc<Backend>>, ConfigError> {
    loaded
        .config
        .backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            Ok(Arc::new(Backend::build(
                b,
                &format!("backends[{i}]"),
                loaded,
                background,
            )?))
        })
        .collect()
}

/// One listener's chain: `pre_routing` filters, the router from its routes, `post_routing`
/// and `response` filters.
fn build_listener(
    config: &ListenerConfig,
    at: &str,
    loaded: &LoadedConfig,
    registry: &Registry,
    ctx: &BuildContext<'_>,
    warnings: &mut Vec<ConfigError>,
) -> Result<Listener, ConfigError> {
    let tls = config
        .tls
        .as_ref()
        .map(|tls| TlsTerminator::build(tls, &format!("{at}.tls"), loaded, warnings))
        .transpose()?;
    let phases = &config.filters;
    let route_names: Vec<String> = config.routes.iter().map(|r| r.name.clone()).collect();
    let ctx = &ctx.for_listener(switchyard_filters::Listener {
        name: &config.name,
        routes: &route_names,
    });
    let phase = |phase, entries| build_phase(loaded, registry, ctx, phase, entries, at);
    let pre_routing = phase(Phase::PreRouting, &phases.pre_routing)?;
    let router = router::build(&config.routes, ctx)
        .map_err(|e| loaded.error_at(join_path(&format!("{at}.routes"), &e.path), e.message))?;
    let post_routing = phase(Phase::PostRouting, &phases.post_routing)?;
    let response = phase(Phase::Response, &phases.response)?;
    Ok(Listener {
        name: Arc::from(config.name.as_str()),
        address: config.address,
        limits: config.limits.clone(),
        chain: FilterChain::new(pre_routing, router, post_routing, response),
        tls,
        h2c: config.h2c,
    })
}

/// The certificate, key and CA files of the TLS listeners: a change to one reloads the config.
fn certificate_files<'c>(
    config: &'c Config,
    base: &'c std::path::Path,
) -> impl Iterator<Item = PathBuf> + 'c {
    config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|tls| {
            tls.certificates
                .iter()
                .flat_map(|c| [c.cert.as_ref(), c.key.as_ref()])
                .flatten()
                .chain(tls.client_ca.as_ref())
        })
        .map(move |path| base.join(path))
}

/// The filters of one phase, each built by its factory from its own config.
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
            // Validation has checked that the filter exists and may run here.
            let factory = registry.get(&entry.name).ok_or_else(|| {
                loaded.error_at(format!("{at}.name"), "the filter is not registered")
            })?;
            factory
                .build(&entry.config, &ctx.in_phase(phase))
                .map_err(|e| {
                    loaded.error_at(join_path(&format!("{at}.config"), &e.path), e.message)
                })
        })
        .collect()
}

/// The access log's headers, as names (validation has checked that each is one).
fn logged_headers(headers: &[String]) -> Vec<HeaderName> {
    headers
        .iter()
        .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        .collect()
}
