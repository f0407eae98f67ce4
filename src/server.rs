//! Starting the gateway: one pingora proxy service per listener, sharing one pipeline.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

use crate::pipeline::Pipeline;
use crate::proxy::Gateway;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
    Ok(())
}

/// Runs the gateway until it is told to stop (SIGTERM: graceful, SIGINT: fast). `threads`
/// overrides `server.threads` from the config.
pub fn run(pipeline: Pipeline, threads: Option<usize>) -> Result<(), StartError> {
    check_addresses_free(&pipeline)?;
    let settings = &pipeline.settings;
    let threads = threads.unwrap_or(settings.threads);
    let conf = ServerConf {
        threads,
        // pingora's default grace period is 300 s: an operator's SIGTERM would seem to hang.
        grace_period_seconds: Some(settings.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(settings.shutdown_timeout.as_secs()),
        upstream_keepalive_pool_size: settings.upstream_keepalive_pool_size,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let listeners: Vec<(String, SocketAddr)> = pipeline
        .listeners
        .iter()
        .map(|l| (l.name.to_string(), l.address))
        .collect();
    let shared = Arc::new(ArcSwap::from_pointee(pipeline));
    for (index, (name, address)) in listeners.iter().enumerate() {
        let mut service = http_proxy_service_with_name(
            &server.configuration,
            Gateway::new(shared.clone(), index),
            &format!("listener {name}"),
        );
        service.threads = Some(threads);
        service.add_tcp(&address.to_string());
        server.add_service(service);
        log::info!("listener `{name}` on http://{address} with {threads} worker threads");
    }
    server.run_forever()
}
