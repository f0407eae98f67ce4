//! Starting the gateway: one pingora proxy service per listener, sharing one pipeline.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::apps::HttpServerOptions;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::protocols::http::v2::server::{default_h2_options, H2Options};
use pingora::proxy::http_proxy;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

use pingora::services::listening::Service;
use switchyard_filters::Background;

use crate::access_log::AccessLog;
use crate::admin::Admin;
use crate::config::ListenerLimits;
use crate::drain::{self, InFlightRequests};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::proxy::{Gateway, ListenerGuard};
use crate::reload;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the admin listener cannot listen on {address}: {source}")]
    AdminBind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the access log: {0}")]
    AccessLog(std::io::Error),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot install a signal handler: {0}")]
    Reload(std::io::Error),
    #[error("listener `{listener}` cannot listen on {address}: {source}")]
    Bind {
        listener: String,
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// Fails early, with the listener's name, when an address cannot be bound: pingora would
/// otherwise stop with a less specific error from inside its service thread.
fn check_addresses_free(pipeline: &Pipeline) -> Result<(), StartError> {
    for l in &pipeline.listeners {
        TcpListener::bind(l.address).map_err(|source| StartError::Bind {
            listener: l.name.to_string(),
            address: l.address,
            source,
        })?;
    }
    TcpListener::bind(pipeline.admin.address).map_err(|source| StartError::AdminBind {
        address: pipeline.admin.address,
        source,
    })?;
    Ok(())
}

/// The most attempts pingora makes of one request: the first, connect retries and a route's
/// retries together (pingora's own default, set here so the proxy can count against it).
pub const MAX_ATTEMPTS: usize = 16;

/// The read buffer under each plaintext client connection: none. pingora's default is 64 KiB
/// per connection, allocated (zeroed) at accept and held while the connection idles, under the
/// HTTP layer's own header and body buffers that already take whole reads. `bench/idle.sh`:
/// 53 KB to 43 KB per idle keep-alive connection, throughput unchanged (`bench/ab.sh`). TLS
/// listeners keep pingora's default until measured the same way.
const PLAINTEXT_READ_BUFFER: usize = 0;

/// What starting a listener's service needs of its config. The HTTP/2 settings are fixed
/// when it starts (pingora reads them from the proxy); everything else a listener does is
/// read from the pipeline per connection.
struct ListenerStart {
    name: String,
    address: SocketAddr,
    scheme: &'static str,
    /// Terminates TLS at start (a reload may change it; the L4 buffer stays as started).
    tls: bool,
    h2c: bool,
    limits: ListenerLimits,
}

fn http_options(start: &ListenerStart) -> HttpServerOptions {
    let mut options = HttpServerOptions::default();
    options.h2c = start.h2c;
    // An HTTP/2 connection with no stream open for this long is closed, as an idle
    // HTTP/1.1 keep-alive connection is.
    options.h2_idle_timeout = Some(start.limits.idle_timeout);
    options
}

/// HTTP/2 bounds: the listener's, on pingora's bounded defaults; the h2 crate's own guards
/// (reset-stream and CONTINUATION limits) stay on.
fn h2_options(limits: &ListenerLimits) -> H2Options {
    let mut options = default_h2_options();
    options.max_concurrent_streams(limits.max_concurrent_streams);
    options
        .max_header_list_size(u32::try_from(limits.max_request_header_bytes).unwrap_or(u32::MAX));
    options
}

/// Runs the gateway until it is told to stop (SIGTERM: graceful, SIGINT: fast). `threads`
/// overrides `server.threads` from the config.
/// `background` is the one the pipeline was compiled with; reloads compile with it too.
pub fn run(
    pipeline: Pipeline,
    threads: Option<usize>,
    background: Arc<Background>,
) -> Result<(), StartError> {
    check_addresses_free(&pipeline)?;
    let settings = &pipeline.settings;
    let threads = threads.unwrap_or(settings.threads);
    let conf = ServerConf {
        threads,
        // On SIGTERM pingora stops accepting, waits `grace_period_seconds` (default 300 s) while
        // requests in flight go on, then cancels what is left. That wait is our drain; the
        // drain watcher below ends it early once nothing is in flight.
        grace_period_seconds: Some(settings.shutdown_timeout.as_secs()),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: settings.upstream_keepalive_pool_size,
        // One single-threaded runtime per worker thread, each serving its own connections (as
        // nginx workers do), instead of one work-stealing runtime: measured with bench/ab.sh,
        // 5-8% more requests/s without a token and about 25% more with one, on one worker.
        work_stealing: false,
        max_retries: MAX_ATTEMPTS,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let listeners: Vec<ListenerStart> = pipeline
        .listeners
        .iter()
        .map(|l| ListenerStart {
            name: l.name.to_string(),
            address: l.address,
            scheme: l.scheme(),
            tls: l.tls.is_some(),
            h2c: l.h2c,
            limits: l.limits.clone(),
        })
        .collect();
    let metrics = Arc::new(Metrics::new()?);
    let access_log = if pipeline.config.access_log.enabled {
        Some(
            AccessLog::start(pipeline.config.access_log.path.as_deref())
                .map_err(StartError::AccessLog)?,
        )
    } else {
        None
    };
    let admin_address = pipeline.admin.address;
    let source = pipeline.source.clone();
    let shared = Arc::new(ArcSwap::from_pointee(pipeline));
    metrics.config_last_success.set(reload::unix_now());
    reload::spawn(source, shared.clone(), metrics.clone(), background)
        .map_err(StartError::Reload)?;
    let in_flight = InFlightRequests::default();
    drain::spawn(in_flight.clone(), access_log.clone()).map_err(StartError::Reload)?;

    let mut admin = Service::new(
        "admin".to_owned(),
        Admin::new(shared.clone(), metrics.clone(), threads),
    );
    admin.threads = Some(1);
    admin.add_tcp(&admin_address.to_string());
    server.add_service(admin);
    log::info!("admin on http://{admin_address} (/metrics, /healthz, /readyz, /config)");

    for (index, start) in listeners.iter().enumerate() {
        let (name, address) = (&start.name, start.address);
        let mut proxy = http_proxy(
            &server.configuration,
            Gateway::new(
                shared.clone(),
                index,
                metrics.clone(),
                in_flight.clone(),
                access_log.clone(),
            ),
        );
        proxy.server_options = Some(http_options(start));
        proxy.h2_options = Some(h2_options(&start.limits));
        let mut service = Service::new(
            format!("listener {name}"),
            ListenerGuard::new(proxy, shared.clone(), index, &metrics),
        );
        service.threads = Some(threads);
        let mut endpoint = ListenerConfig::tcp(address.to_string());
        if !start.tls {
            endpoint = endpoint.l4_buffer(L4BufferSettings::default().read(PLAINTEXT_READ_BUFFER));
        }
        service.add_listener(endpoint);
        server.add_service(service);
        log::info!(
            "listener `{name}` on {}://{address} with {threads} worker threads",
            start.scheme
        );
    }
    server.run_forever()
}
