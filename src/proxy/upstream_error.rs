//! What to tell the client when a request could not be proxied.

use http::StatusCode;
use pingora::{Error, ErrorSource, ErrorType};
use switchyard_filters::{LocalResponse, RouteTarget};

/// The kinds of failure a client can be told about, each with its own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The backend did not accept a connection in time: 504.
    ConnectTimeout,
    /// The backend refused the connection or could not be reached: 502.
    ConnectFailed,
    /// The TLS handshake with the backend failed (untrusted or mismatched certificate): 502.
    TlsFailed,
    /// The backend did not answer (or take the request) in time: 504.
    Timeout,
    /// The backend answered with something that is not HTTP, or hung up: 502.
    BadUpstream,
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
        (ErrorSource::Upstream, ConnectTimedout) => Failure::ConnectTimeout,
        (
            ErrorSource::Upstream,
            TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError,
        ) => Failure::TlsFailed,
        (
            ErrorSource::Upstream,
            ConnectRefused | ConnectNoRoute | ConnectError | SocketError | BindError,
        ) => Failure::ConnectFailed,
        (ErrorSource::Upstream, ReadTimedout | WriteTimedout) => Failure::Timeout,
        (ErrorSource::Upstream, _) => Failure::BadUpstream,
        (ErrorSource::Downstream, ReadError | WriteError | ConnectionClosed) => Failure::ClientGone,
        (ErrorSource::Downstream, _) => Failure::BadRequest,
        (ErrorSource::Internal | ErrorSource::Unset, _) => Failure::Internal,
    }
}

impl Failure {
    /// The status to answer with; `None` when the client cannot be answered.
    pub fn status(self) -> Option<StatusCode> {
        Some(match self {
            Failure::ConnectTimeout | Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Failure::ConnectFailed | Failure::TlsFailed | Failure::BadUpstream => {
                StatusCode::BAD_GATEWAY
            }
            Failure::BadRequest => StatusCode::BAD_REQUEST,
            Failure::Status(s) => s,
            Failure::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Failure::ClientGone => return None,
        })
    }

    /// The `kind` label of `switchyard_upstream_failures_total`, for failures of the backend.
    pub fn upstream_kind(self) -> Option<&'static str> {
        Some(match self {
            Failure::ConnectFailed => "connect_failed",
            Failure::TlsFailed => "tls_failed",
            Failure::ConnectTimeout => "connect_timeout",
            Failure::Timeout => "timeout",
            Failure::BadUpstream => "bad_response",
            _ => return None,
        })
    }

    fn code_and_message(self, backend: &str) -> (&'static str, String) {
        match self {
            Failure::ConnectTimeout => (
                "upstream_connect_timeout",
                format!("timed out connecting to backend `{backend}`"),
            ),
            Failure::ConnectFailed => (
                "upstream_connect_failed",
                format!("could not connect to backend `{backend}`"),
            ),
            Failure::TlsFailed => (
                "upstream_tls_failed",
                format!("the TLS handshake with backend `{backend}` failed"),
            ),
            Failure::Timeout => (
                "upstream_timeout",
                format!("backend `{backend}` did not respond in time"),
            ),
            Failure::BadUpstream => (
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
