//! gRPC clients read a call's outcome from `grpc-status`, not from the HTTP status or a JSON
//! body. So when the gateway answers a gRPC request itself (a rejected token, no route, an
//! unreachable backend, a timeout), it answers as a gRPC server would, as Envoy does: HTTP
//! 200, then `grpc-status` and `grpc-message` in trailers (in the header itself on HTTP/1.1,
//! where gRPC does not run but a curious client may look).

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use switchyard_filters::{LocalResponse, RequestHeader};

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Whether `req` is a gRPC call (`content-type: application/grpc`, `+proto` and the like).
/// gRPC-Web is not: its clients read the status from the body, and get the JSON error.
pub fn is_grpc(req: &RequestHeader) -> bool {
    req.headers.get(CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/grpc") && !v.starts_with(b"application/grpc-web")
    })
}

/// The gRPC status code for an error the gateway answers with: by its error code when that
/// says more than the HTTP status (nothing reached a backend it could not connect to, so a
/// client may retry: UNAVAILABLE, not DEADLINE_EXCEEDED), else after gRPC's own mapping of
/// HTTP statuses (doc/http-grpc-status-mapping.md), with a timeout as DEADLINE_EXCEEDED.
fn code(status: StatusCode, error: Option<&str>) -> u8 {
    if let Some("upstream_connect_failed" | "upstream_connect_timeout" | "upstream_tls_failed") =
        error
    {
        return 14; // UNAVAILABLE
    }
    match status.as_u16() {
        400 => 13,             // INTERNAL
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 => 12,             // UNIMPLEMENTED
        413 | 431 => 8,        // RESOURCE_EXHAUSTED
        429 | 502 | 503 => 14, // UNAVAILABLE
        504 => 4,              // DEADLINE_EXCEEDED
        _ => 2,                // UNKNOWN
    }
}

/// What a gRPC client is sent for an error the gateway answers with: a 200 header with
/// `content-type: application/grpc` (and the error's own headers, `www-authenticate` say),
/// then `grpc-status` and `grpc-message` (the error's JSON message) as trailers.
pub struct GrpcAnswer {
    pub header: LocalResponse,
    pub trailers: HeaderMap,
    /// The `grpc-status` sent.
    pub code: u8,
}

pub fn answer(response: &LocalResponse) -> GrpcAnswer {
    let status = response.status();
    let body = serde_json::from_slice::<serde_json::Value>(response.body()).ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name)?.as_str().map(str::to_owned))
    };
    let message = field("message").unwrap_or_else(|| status.to_string());
    let code = code(status, field("error").as_deref());
    let mut header = LocalResponse::empty(StatusCode::OK)
        .with_header(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE {
            header = header.with_header(name.clone(), value.clone());
        }
    }
    let mut trailers = HeaderMap::new();
    trailers.insert(GRPC_STATUS, HeaderValue::from(u16::from(code)));
    if let Ok(value) = HeaderValue::from_str(&percent_encode(&message)) {
        trailers.insert(GRPC_MESSAGE, value);
    }
    GrpcAnswer {
        header,
        trailers,
        code,
    }
}

/// `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX` (UTF-8).
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_becomes_a_trailers_only_grpc_answer() {
        let json = LocalResponse::error(StatusCode::UNAUTHORIZED, "invalid_token", "bad: 100%")
            .with_header(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        let grpc = answer(&json);
        assert_eq!(grpc.header.status(), StatusCode::OK);
        assert!(grpc.header.body().is_empty());
        let header = |n: &str| {
            grpc.header
                .headers()
                .iter()
                .find(|(name, _)| name == n)
                .map(|(_, v)| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(header("content-type").as_deref(), Some("application/grpc"));
        assert_eq!(header("www-authenticate").as_deref(), Some("Bearer"));
        let trailer = |n: &str| grpc.trailers.get(n).and_then(|v| v.to_str().ok());
        assert_eq!(trailer("grpc-status"), Some("16"));
        assert_eq!(trailer("grpc-message"), Some("bad: 100%25"));
        assert_eq!(
            code(StatusCode::GATEWAY_TIMEOUT, Some("upstream_timeout")),
            4
        );
        assert_eq!(
            code(
                StatusCode::GATEWAY_TIMEOUT,
                Some("upstream_connect_timeout")
            ),
            14
        );
        assert_eq!(code(StatusCode::BAD_GATEWAY, None), 14);
        assert_eq!(code(StatusCode::NOT_FOUND, Some("no_route")), 12);
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
