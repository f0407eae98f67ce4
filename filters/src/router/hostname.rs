//! The host names a route answers for, and the request's own host name.
//!
//! A name is either exact (`api.example.com`) or a wildcard (`*.example.com`), which matches
//! any name below the suffix, at any depth (`a.example.com`, `a.b.example.com`), never the
//! suffix itself (`example.com`). Names are compared without case; the request's host is its
//! `Host` header (else the authority of its URI) without the port. IP addresses are not host
//! names: a route with `hostnames` never matches a request addressed to an IP.

use std::fmt;

use crate::{FilterConfigError, RequestHeader};

/// Longest host name DNS allows.
const MAX_LEN: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hostname {
    /// The whole name, lower case.
    Exact(String),
    /// The suffix a matching name ends with, lower case and with its leading dot
    /// (`.example.com` for `*.example.com`).
    Wildcard(String),
}

impl Hostname {
    /// Checks `name` as the Gateway API does (RFC 1123 labels, an optional leading `*.`, no IP
    /// address); `at` is its place in the config, for errors.
    pub fn parse(name: &str, at: &str) -> Result<Self, FilterConfigError> {
        let invalid =
            |why: &str| FilterConfigError::new(at, format!("`{name}` is not a host name: {why}"));
        let lower = name.to_ascii_lowercase();
        let (wildcard, labels) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if labels.is_empty() || lower.len() > MAX_LEN {
            return Err(invalid("it must be 1 to 253 characters"));
        }
        if labels.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(invalid("an IP address is not a host name"));
        }
        for label in labels.split('.') {
            let valid = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !valid {
                return Err(invalid(
                    "each label is letters, digits and inner hyphens; only a leading `*.` may \
                     be a wildcard",
                ));
            }
        }
        Ok(if wildcard {
            Hostname::Wildcard(format!(".{labels}"))
        } else {
            Hostname::Exact(lower)
        })
    }

    /// Whether `host` (lower case, without port) is this name or, for a wildcard, below it.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Hostname::Exact(name) => host == name,
            Hostname::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(&**suffix),
        }
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hostname::Exact(name) => f.write_str(name),
            Hostname::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The host the request is addressed to, lower case, without port or trailing dot; `None`
/// when it has none or names an IP address.
pub(super) fn request_host(req: &RequestHeader) -> Option<String> {
    let authority = match req.headers.get(http::header::HOST) {
        Some(value) => value.to_str().ok()?,
        None => req.uri.authority()?.as_str(),
    };
    // An IPv6 literal is bracketed; IPv4 literals are caught below.
    if authority.starts_with('[') {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> Option<String> {
        let mut req = RequestHeader::build("GET", b"/", None).expect("request");
        req.insert_header("host", value).expect("header");
        request_host(&req)
    }

    #[test]
    fn names_parse_as_the_gateway_api_says() {
        for ok in [
            "example.com",
            "A.Example.COM",
            "*.example.com",
            "x",
            "a-b.c",
        ] {
            assert!(Hostname::parse(ok, "h").is_ok(), "{ok}");
        }
        for bad in [
            "", "*", "*.", "a..b", "-a.b", "a-.b", "a.*.b", "**.a", "10.0.0.1", "a_b.c", "a b",
        ] {
            assert!(Hostname::parse(bad, "h").is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_any_depth_below_never_the_apex() {
        let w = Hostname::parse("*.example.com", "h").expect("parses");
        assert!(w.matches("a.example.com"));
        assert!(w.matches("a.b.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("aexample.com"));
        let e = Hostname::parse("Example.com", "h").expect("parses");
        assert!(e.matches("example.com"));
        assert!(!e.matches("a.example.com"));
    }

    #[test]
    fn the_request_host_drops_port_case_and_trailing_dot() {
        assert_eq!(
            host("API.example.com:8080").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(host("api.example.com.").as_deref(), Some("api.example.com"));
        assert_eq!(host("127.0.0.1:80"), None);
        assert_eq!(host("[::1]:80"), None);
    }
}
