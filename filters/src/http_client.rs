//! The filters' side-fetch client: a GET to a backend for data a filter needs from
//! elsewhere (a JWKS from the identity provider). It is not the proxied request's upstream,
//! which pingora drives.
//!
//! This crate opens no sockets: the server implements [`HttpClient`] over a backend's own
//! connection settings (its address, TLS, timeouts) and hands one per backend to factories
//! through [`BuildContext::client`](crate::BuildContext::client). A fetch made with it is
//! the same kind of connection a proxied request to that backend would use.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

/// A GET-only HTTP client bound to one backend.
#[async_trait]
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `GET path` to the backend and reads the whole answer. The exchange (connect,
    /// handshake, request, response) is bounded by `timeout` and the body by `max_body` bytes.
    /// Any status is an answer; only a failure to get one is an error.
    async fn get(
        &self,
        path: &str,
        timeout: Duration,
        max_body: usize,
    ) -> Result<HttpResponse, FetchError>;

    /// The backend's name, for logs.
    fn backend(&self) -> &str;

    /// The path on this same server that a redirect's `location` names, if it names one: a
    /// path (`/keys`), or a URL of this server's own scheme and authority. A redirect
    /// elsewhere is `None`: the client only talks to its backend.
    fn local_path(&self, location: &str) -> Option<String> {
        (location.starts_with('/') && !location.starts_with("//")).then(|| location.to_owned())
    }

    /// Changes whenever the backend's connection settings do, so that state keyed by it (a key
    /// cache shared across reloads) is never reused against a backend that changed.
    fn identity(&self) -> &str;
}

/// What a backend answered.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Every `Cache-Control` value of the response, joined with `, `.
    pub cache_control: Option<String>,
    /// The `Location` of a redirect, as sent.
    pub location: Option<String>,
    pub body: Bytes,
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub message: String,
}

impl FetchError {
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> Self {
        FetchError {
            kind,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// No connection: refused, unreachable, or not accepted in time.
    Connect,
    /// The TLS handshake failed: an untrusted or mismatched certificate, most often.
    Tls,
    /// No complete answer within the timeout.
    Timeout,
    /// The answer was not HTTP, or the connection broke while reading it.
    BadResponse,
    /// The body was longer than allowed.
    TooLarge,
}

impl FetchErrorKind {
    /// A short, stable code, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchErrorKind::Connect => "connect_failed",
            FetchErrorKind::Tls => "tls_failed",
            FetchErrorKind::Timeout => "timeout",
            FetchErrorKind::BadResponse => "bad_response",
            FetchErrorKind::TooLarge => "too_large",
        }
    }
}
