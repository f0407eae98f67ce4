//! `switchyard echo`: the versioned echo app used as a backend in the demo, tests and benches.
//!
//! It answers every request with JSON describing what it received:
//! `{"servedBy", "method", "path", "headers", "client", "bodyBytes", "version"}`. A request header
//! `x-echo-set-header: Name-1:value-1,Name-2:value-2` makes it answer with those response
//! headers too, as the Gateway API conformance suite's echo does, so tests can see what the
//! gateway does to a response. `x-echo-delay-ms: N` delays the answer by N ms (at most 10 s),
//! to play a slow backend.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use http::{header, Response, StatusCode};
use std::sync::Arc;

use pingora::apps::http_app::{HttpServer, ServeHttp};
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::ServerSession;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;
use switchyard_filters::RequestHeader;

/// Request bodies are read (so the connection stays usable) but only counted, up to this size.
const MAX_BODY: usize = 1 << 20;

pub struct Echo {
    name: String,
}

impl Echo {
    pub fn new(name: impl Into<String>) -> Self {
        Echo { name: name.into() }
    }
}

#[async_trait]
impl ServeHttp for Echo {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body_bytes = 0usize;
        while body_bytes <= MAX_BODY {
            match session.read_request_body().await {
                Ok(Some(chunk)) => body_bytes += chunk.len(),
                Ok(None) => break,
                Err(_) => {
                    session.set_keepalive(None);
                    break;
                }
            }
        }
        if body_bytes > MAX_BODY {
            session.set_keepalive(None);
        }

        if let Some(delay) = requested_delay(session.req_header()) {
            tokio::time::sleep(delay).await;
        }
        let req = session.req_header();
        let headers = switchyard_filters::headers::folded(&req.headers);
        let path = req
            .uri
            .path_and_query()
            .map_or_else(|| req.uri.path().to_owned(), |p| p.as_str().to_owned());
        let body = serde_json::json!({
            "servedBy": self.name,
            "method": req.method.as_str(),
            "path": path,
            "headers": headers,
            "client": session.client_addr().map(|a| a.to_string()),
            "bodyBytes": body_bytes,
            "version": format!("{:?}", req.version),
        })
        .to_string()
        .into_bytes();

        let mut response = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len());
        for (name, value) in echo_set_headers(req) {
            response = response.header(name, value);
        }
        response
            .body(body)
            .unwrap_or_else(|_| Response::new(Vec::new()))
    }
}

/// The response headers a request asks for with `x-echo-set-header`; pairs that are not a
/// valid header are left out.
fn echo_set_headers(
    req: &pingora::http::RequestHeader,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    req.headers
        .get_all("x-echo-set-header")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|pair| {
            let (name, value) = pair.split_once(':')?;
            let name = http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
            let value = http::HeaderValue::from_str(value.trim()).ok()?;
            Some((name, value))
        })
        .collect()
}

/// The longest `x-echo-delay-ms` honoured: enough for any test of a slow backend.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// How long a request asks the answer to wait (`x-echo-delay-ms: 300`), to play a slow
/// backend; at most [`MAX_DELAY`].
fn requested_delay(req: &RequestHeader) -> Option<Duration> {
    let ms: u64 = req
        .headers
        .get("x-echo-delay-ms")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms).min(MAX_DELAY))
}

/// A certificate and key to serve HTTPS with, and optionally the CA that client certificates
/// must chain to (which makes a client certificate required).
pub struct TlsFiles<'a> {
    pub cert: &'a str,
    pub key: &'a str,
    pub client_ca: Option<&'a str>,
}

fn tls_settings(tls: &TlsFiles<'_>) -> Result<TlsSettings, String> {
    let mut settings = TlsSettings::intermediate(tls.cert, tls.key).map_err(|e| e.to_string())?;
    if let Some(ca) = tls.client_ca {
        pingora::tls::install_default_crypto_provider();
        let mut roots = pingora::tls::RootCertStore::empty();
        pingora::tls::load_ca_file_into_store(ca, &mut roots).map_err(|e| e.to_string())?;
        let verifier = pingora::tls::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| e.to_string())?;
        settings.set_client_cert_verifier(verifier);
    }
    Ok(settings)
}

/// TLS files that cannot be served with.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve TLS with {cert} and {key}: {reason}")]
pub struct TlsError {
    cert: String,
    key: String,
    reason: String,
}

/// Serves the echo app on `listen` (HTTPS with `tls`; h2c too with `h2c`) until stopped;
/// returns only when the TLS files cannot be used.
pub fn run(
    listen: SocketAddr,
    name: &str,
    threads: usize,
    tls: Option<TlsFiles<'_>>,
    h2c: bool,
) -> Result<std::convert::Infallible, TlsError> {
    let tls = tls
        .map(|files| {
            tls_settings(&files).map_err(|reason| TlsError {
                cert: files.cert.to_owned(),
                key: files.key.to_owned(),
                reason,
            })
        })
        .transpose()?;
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut app = HttpServer::new_app(Echo::new(name));
    if h2c {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        app.server_options = Some(options);
    }
    let mut service = Service::new(format!("echo {name}"), app);
    match tls {
        None => service.add_tcp(&listen.to_string()),
        Some(settings) => service.add_tls_with_settings(&listen.to_string(), None, settings),
    }
    server.add_service(service);
    log::info!("echo `{name}` on http://{listen}");
    server.run_forever()
}
