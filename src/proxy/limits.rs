//! What a request may be, checked before any filter sees it: the size and number of its
//! header fields (431) and the body length it declares (413). The body it actually sends is
//! counted in `request_body_filter`, and the connection-level limits live in `guard.rs`.

use http::StatusCode;
use switchyard_filters::{LocalResponse, RequestHeader};

use crate::config::ListenerLimits;

/// What a header field costs on the wire besides its name and value: `: ` and CRLF.
const FIELD_OVERHEAD: usize = 4;

/// A 431 when the header section is over the listener's bounds.
pub fn check_header(req: &RequestHeader, limits: &ListenerLimits) -> Option<LocalResponse> {
    let count = req.headers.len();
    if count > limits.max_request_headers {
        return Some(LocalResponse::error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too_many_headers",
            &format!(
                "the request has {count} header fields; at most {} are accepted",
                limits.max_request_headers
            ),
        ));
    }
    let size = req.method.as_str().len()
        + req.raw_path().len()
        + req
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + FIELD_OVERHEAD)
            .sum::<usize>();
    if size > limits.max_request_header_bytes {
        return Some(LocalResponse::error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_too_large",
            &format!(
                "the request header is {size} bytes; at most {} are accepted",
                limits.max_request_header_bytes
            ),
        ));
    }
    None
}

/// A 413 when the declared `content-length` is over `limit`, before a byte of the body is
/// read or sent anywhere.
pub fn check_declared_body(req: &RequestHeader, limit: u64) -> Option<LocalResponse> {
    let declared: u64 = req
        .headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (declared > limit).then(|| {
        LocalResponse::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the request body is {declared} bytes; this route accepts at most {limit}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/path", None).expect("request");
        for (n, v) in headers {
            req.append_header(n.to_string(), *v).expect("header");
        }
        req
    }

    #[test]
    fn header_bounds_answer_431() {
        let limits = ListenerLimits {
            max_request_headers: 3,
            max_request_header_bytes: 64,
            ..ListenerLimits::default()
        };
        assert!(check_header(&request(&[("a", "1"), ("b", "2"), ("c", "3")]), &limits).is_none());
        let too_many = check_header(
            &request(&[("a", "1"), ("a", "2"), ("a", "3"), ("a", "4")]),
            &limits,
        );
        assert_eq!(
            too_many.map(|r| r.status()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let too_big = check_header(&request(&[("a", &"x".repeat(60))]), &limits);
        assert_eq!(
            too_big.map(|r| r.status()),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn declared_body_over_the_limit_answers_413() {
        assert!(check_declared_body(&request(&[("content-length", "10")]), 10).is_none());
        assert!(check_declared_body(&request(&[]), 0).is_none());
        let over = check_declared_body(&request(&[("content-length", "11")]), 10);
        assert_eq!(
            over.map(|r| r.status()),
            Some(StatusCode::PAYLOAD_TOO_LARGE)
        );
    }
}
