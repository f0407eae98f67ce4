//! The admin listener: `/metrics`, `/healthz`, `/readyz` and `/config`.
//!
//! It runs as its own pingora service, on `admin.address`, apart from the traffic listeners,
//! so that scrapes and probes neither share their limits nor show up in their metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// How long `/readyz` waits for each listener to accept a connection.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

pub struct Admin {
    pipeline: Arc<ArcSwap<Pipeline>>,
    metrics: Arc<Metrics>,
    /// The worker threads actually in use (the config's, or `--threads`).
    threads: usize,
}

impl Admin {
    pub fn new(pipeline: Arc<ArcSwap<Pipeline>>, metrics: Arc<Metrics>, threads: usize) -> Self {
        Admin {
            pipeline,
            metrics,
            threads,
        }
    }

    async fn readiness(&self) -> (StatusCode, Value) {
        let pipeline = self.pipeline.load_full();
        let mut listeners = serde_json::Map::new();
        let mut ready = true;
        for l in &pipeline.listeners {
            let up = accepts(l.address).await;
            ready &= up;
            listeners.insert(l.name.to_string(), Value::Bool(up));
        }
        // Filters that cannot serve yet (a provider without signing keys).
        let waiting: Vec<String> = pipeline
            .listeners
            .iter()
            .flat_map(|l| {
                l.chain
                    .filters()
                    .flat_map(|f| f.waiting_for())
                    .map(move |why| format!("listener {}: {why}", l.name))
            })
            .collect();
        ready &= waiting.is_empty();
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (
            status,
            json!({ "ready": ready, "listeners": listeners, "waiting_for": waiting }),
        )
    }

    fn effective_config(&self) -> Value {
        let pipeline = self.pipeline.load_full();
        let mut config = serde_json::to_value(&pipeline.config).unwrap_or(Value::Null);
        redact_key_material(&mut config);
        if let Some(server) = config.get_mut("server") {
            server["threads"] = json!(self.threads);
        }
        json!({
            "source": pipeline.source.display().to_string(),
            "version": env!("CARGO_PKG_VERSION"),
            "config": config,
        })
    }
}

async fn accepts(address: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await,
        Ok(Ok(_))
    )
}

/// Replaces key material anywhere in the config (inline JWKS documents, PEM text) with a marker.
/// Public keys are not secret, but `/config` is for reading settings, and a key pasted in the
/// wrong place should not be one curl away.
fn redact_key_material(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "inline" || key == "key" || key == "key_pem" || key.ends_with("_key") {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact_key_material(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_key_material),
        Value::String(s) if s.contains("PRIVATE KEY") => *s = "[redacted]".into(),
        _ => {}
    }
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

fn json_response(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    respond(status, "application/json", body.to_string().into_bytes())
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_owned();
        if method != Method::GET && method != Method::HEAD {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &json!({ "error": "method_not_allowed" }),
            );
        }
        match path.as_str() {
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(&self.pipeline).into_bytes(),
            ),
            "/healthz" => json_response(StatusCode::OK, &json!({ "status": "ok" })),
            "/readyz" => {
                let (status, body) = self.readiness().await;
                json_response(status, &body)
            }
            "/config" => json_response(StatusCode::OK, &self.effective_config()),
            _ => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "not_found", "paths": ["/metrics", "/healthz", "/readyz", "/config"] }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_is_redacted_everywhere() {
        let mut v = json!({
            "listeners": [{ "filters": { "pre_routing": [{ "config": { "providers": [
                { "name": "lab", "jwks": { "inline": "{\"keys\": []}" } }
            ] } }] } }],
            "tls": { "client_key": "/etc/key.pem", "note": "-----BEGIN PRIVATE KEY-----" },
            "certificates": [{ "cert_pem": "-----BEGIN CERTIFICATE-----", "key_pem": "MIGH..." }],
            "name": "kept",
        });
        redact_key_material(&mut v);
        let text = v.to_string();
        assert!(!text.contains("keys"), "{text}");
        assert!(!text.contains("PRIVATE"), "{text}");
        assert!(!text.contains("/etc/key.pem"), "{text}");
        assert!(!text.contains("MIGH"), "{text}");
        assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
        assert!(text.contains("kept"));
    }
}
