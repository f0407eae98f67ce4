//! GET requests to a backend on behalf of filters (a JWKS from the identity provider): to one
//! of its hosts, picked as a request's would be (round-robin among the healthy ones), over
//! that host's connection settings: TLS with its SNI, trusted CAs and client certificate, and
//! the backend's timeouts.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::Error;
use switchyard_filters::{FetchError, FetchErrorKind, HttpClient, HttpResponse, RequestHeader};

use super::{Backend, Empty, TransportFailure, Tried};

pub struct BackendClient {
    backend: Arc<Backend>,
    identity: String,
    /// Built on first use: making one loads TLS roots, which backends never fetched from
    /// should not pay for at every config load.
    connector: OnceLock<Connector>,
}

impl BackendClient {
    pub fn new(backend: Arc<Backend>) -> Self {
        // Everything that decides where and how the connection goes (names, not the
        // addresses they resolve to now).
        let identity = format!("{:?}", backend.config);
        BackendClient {
            backend,
            identity,
            connector: OnceLock::new(),
        }
    }

    async fn exchange(&self, path: &str, max_body: usize) -> Result<HttpResponse, FetchError> {
        let connector = self.connector.get_or_init(|| Connector::new(None));
        let hosts = self
            .backend
            .hosts_when_known(self.backend.config.connect_timeout)
            .await;
        let host = hosts.select(Tried::default()).ok_or_else(|| {
            let why = match hosts.empty() {
                Some(Empty::Unresolved(why)) => format!("no address: {why}"),
                Some(Empty::FirstLookup) => "its host names are being looked up".to_owned(),
                None => "no host to try".to_owned(),
            };
            FetchError::new(
                FetchErrorKind::Connect,
                format!("backend `{}`: {why}", self.backend.name),
            )
        })?;
        let (mut session, _) = connector
            .get_http_session(&*hosts.peer(host))
            .await
            .map_err(|e| {
                self.backend.report(&hosts, host, false);
                transport_error(&e)
            })?;
        let mut request = RequestHeader::build("GET", path.as_bytes(), None)
            .map_err(|e| FetchError::new(FetchErrorKind::BadResponse, e.to_string()))?;
        for (name, value) in [
            ("host", hosts.hosts[host].authority.as_str()),
            ("accept", "application/jwk-set+json, application/json"),
            (
                "user-agent",
                concat!("switchyard/", env!("CARGO_PKG_VERSION")),
            ),
            // One fetch every few minutes: no point keeping the connection.
            ("connection", "close"),
        ] {
            request
                .insert_header(name, value)
                .map_err(|e| FetchError::new(FetchErrorKind::BadResponse, e.to_string()))?;
        }
        session
            .write_request_header(Box::new(request))
            .await
            .map_err(|e| transport_error(&e))?;
        session
            .finish_request_body()
            .await
            .map_err(|e| transport_error(&e))?;
        session
            .read_response_header()
            .await
            .map_err(|e| transport_error(&e))?;
        let header = session
            .response_header()
            .ok_or_else(|| FetchError::new(FetchErrorKind::BadResponse, "no response header"))?;
        let status = header.status.as_u16();
        let cache_control = {
            let values: Vec<&str> = header
                .headers
                .get_all(http::header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(", "))
        };
        let location = header
            .headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = BytesMut::new();
        while let Some(chunk) = session
            .read_response_body()
            .await
            .map_err(|e| transport_error(&e))?
        {
            if body.len() + chunk.len() > max_body {
                return Err(FetchError::new(
                    FetchErrorKind::TooLarge,
                    format!("the body is larger than {max_body} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            cache_control,
            location,
            body: Bytes::from(body),
        })
    }
}

fn transport_error(e: &Error) -> FetchError {
    let kind = match TransportFailure::of(e.etype()) {
        TransportFailure::TlsFailed => FetchErrorKind::Tls,
        TransportFailure::ConnectTimeout | TransportFailure::ConnectFailed => {
            FetchErrorKind::Connect
        }
        TransportFailure::Timeout => FetchErrorKind::Timeout,
        TransportFailure::BadResponse => FetchErrorKind::BadResponse,
    };
    FetchError::new(kind, e.to_string())
}

#[async_trait]
impl HttpClient for BackendClient {
    async fn get(
        &self,
        path: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpResponse, FetchError> {
        tokio::time::timeout(timeout, self.exchange(path, max_body))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::new(
                    FetchErrorKind::Timeout,
                    format!("no complete answer within {timeout:?}"),
                ))
            })
    }

    fn backend(&self) -> &str {
        &self.backend.name
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    /// A path, or a URL of this backend's scheme (`https` when it speaks TLS: never down to
    /// `http`) and one of its hosts' authority.
    fn local_path(&self, location: &str) -> Option<String> {
        if location.starts_with('/') && !location.starts_with("//") {
            return Some(location.to_owned());
        }
        let scheme = if self.backend.config.tls.is_some() {
            "https://"
        } else {
            "http://"
        };
        let rest = location.strip_prefix(scheme)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let ours = self
            .backend
            .authorities()
            .any(|a| a.eq_ignore_ascii_case(authority));
        ours.then(|| if path.is_empty() { "/" } else { path }.to_owned())
    }
}
