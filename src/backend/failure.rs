//! What went wrong talking to a backend, read from pingora's error type once for everyone
//! who asks: the proxy (what to answer, what to count) and the side-fetch client (why a fetch
//! failed).

use pingora::ErrorType;

/// A failure of the exchange with a backend, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    /// The backend did not accept a connection in time.
    ConnectTimeout,
    /// The backend refused the connection or could not be reached.
    ConnectFailed,
    /// The TLS handshake failed: an untrusted or mismatched certificate, most often.
    TlsFailed,
    /// The backend did not answer (or take the request) in time.
    Timeout,
    /// The backend answered with something that is not HTTP, or hung up.
    BadResponse,
}

impl TransportFailure {
    pub fn of(etype: &ErrorType) -> Self {
        use ErrorType::*;
        match etype {
            ConnectTimedout => TransportFailure::ConnectTimeout,
            TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError => {
                TransportFailure::TlsFailed
            }
            ConnectRefused | ConnectNoRoute | ConnectError | SocketError | BindError => {
                TransportFailure::ConnectFailed
            }
            ReadTimedout | WriteTimedout => TransportFailure::Timeout,
            _ => TransportFailure::BadResponse,
        }
    }

    /// A short, stable code: the `kind` label of `switchyard_upstream_failures_total`.
    pub fn code(self) -> &'static str {
        match self {
            TransportFailure::ConnectTimeout => "connect_timeout",
            TransportFailure::ConnectFailed => "connect_failed",
            TransportFailure::TlsFailed => "tls_failed",
            TransportFailure::Timeout => "timeout",
            TransportFailure::BadResponse => "bad_response",
        }
    }
}
