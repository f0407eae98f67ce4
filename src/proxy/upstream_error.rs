//! What to tell the client when a request could not be proxied.

use http::StatusCode;
use pingora::{Error, ErrorSource, ErrorType};

use crate::backend::TransportFailure;
use switchyard_filters::{LocalResponse, RouteTarget};

/// The kinds of failure a client can be told about, each with its own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The exchange with the backend failed: 504 when it was too slow, 502 otherwise.
    Upstream(TransportFailure),
    /// The client's request could not be read or was malformed: 400.
    BadRequest,
    /// The client went away: nothing can be sent.
    ClientGone,
    /// A status decided elsewhere in pingora.
    Status(StatusCode),
    /// A bug or resource failure in the gateway: 500.
    Internal,
}

pub fn classify(e: &Error) -> Failure {
    use ErrorType::*;
    match (e.esource(), e.etype()) {
        (_, HTTPStatus(code)) => StatusCode::from_u16(*code)
            .map(Failure::Status)
            .unwrap_or(Failure::Internal),
        (ErrorSource::Upstream, etype) => Failure::Upstream(TransportFailure::of(etype)),
        (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed) => Failure::ClientGone,
        (ErrorSource::Downstream, _) => Failure::BadRequest,
        (ErrorSource::Internal | ErrorSource::Unset, _) => Failure::Internal,
    }
}

impl Failure {
    /// The status to answer with; `None` when the client cannot be answered.
    pub fn status(self) -> Option<StatusCode> {
        Some(match self {
            Failure::Upstream(TransportFailure::ConnectTimeout | TransportFailure::Timeout) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            Failure::Upstream(_) => StatusCode::BAD_GATEWAY,
            Failure::BadRequest => StatusCode::BAD_REQUEST,
            Failure::Status(s) => s,
            Failure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::ClientGone => return None,
        })
    }

    /// The `kind` label of `switchyard_upstream_failures_total`, for failures of the backend.
    pub fn upstream_kind(self) -> Option<&'static str> {
        match self {
            Failure::Upstream(transport) => Some(transport.code()),
            _ => None,
        }
    }

    fn code_and_message(self, backend: &str) -> (&'static str, String) {
        match self {
            Failure::Upstream(TransportFailure::ConnectTimeout) => (
                "upstream_connect_timeout",
                format!("timed out connecting to backend `{backend}`"),
            ),
            Failure::Upstream(TransportFailure::ConnectFailed) => (
                "upstream_connect_failed",
                format!("could not connect to backend `{backend}`"),
            ),
            Failure::Upstream(TransportFailure::TlsFailed) => (
                "upstream_tls_failed",
                format!("the TLS handshake with backend `{backend}` failed"),
            ),
            Failure::Upstream(TransportFailure::Timeout) => (
                "upstream_timeout",
                format!("backend `{backend}` did not respond in time"),
            ),
            Failure::Upstream(TransportFailure::BadResponse) => (
                "upstream_error",
                format!("backend `{backend}` failed to deliver a valid response"),
            ),
            Failure::BadRequest => ("bad_request", "the request could not be read".to_owned()),
            Failure::Status(StatusCode::PAYLOAD_TOO_LARGE) => (
                "payload_too_large",
                "the request body is larger than this route accepts".to_owned(),
            ),
            Failure::Status(_) => ("error", "the request failed".to_owned()),
            Failure::Internal | Failure::ClientGone => (
                "internal_error",
                "the gateway failed to handle the request".to_owned(),
            ),
        }
    }

    /// The JSON error body, naming route and backend when the request got that far.
    pub fn response(self, route: Option<&RouteTarget>) -> LocalResponse {
        let status = self.status().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let backend = route.map(|r| &*r.backend.name);
        let (code, message) = self.code_and_message(backend.unwrap_or("-"));
        let mut body = serde_json::json!({ "error": code, "message": message });
        if let Some(route) = route {
            body["route"] = serde_json::Value::from(&*route.route);
            body["backend"] = serde_json::Value::from(&*route.backend.name);
        }
        LocalResponse::json(status, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_gateway_statuses() {
        let refused = Error::new(ErrorType::ConnectRefused).into_up();
        assert_eq!(classify(&refused).status(), Some(StatusCode::BAD_GATEWAY));
        let slow = Error::new(ErrorType::ReadTimedout).into_up();
        assert_eq!(classify(&slow).status(), Some(StatusCode::GATEWAY_TIMEOUT));
        let connect_slow = Error::new(ErrorType::ConnectTimedout).into_up();
        assert_eq!(
            classify(&connect_slow).status(),
            Some(StatusCode::GATEWAY_TIMEOUT)
        );
        let gone = Error::new(ErrorType::ConnectionClosed).into_down();
        assert_eq!(classify(&gone).status(), None);
        let garbage = Error::new(ErrorType::InvalidHTTPHeader).into_down();
        assert_eq!(classify(&garbage).status(), Some(StatusCode::BAD_REQUEST));
    }
}
