//! A route that answers with a redirect, as the Gateway API's `RequestRedirect` does.
//!
//! The `Location` is the request's own URL with what the redirect names replaced: the scheme,
//! the host name, the port, the path (whole, or a prefix). Without a `port`, a redirect that
//! names a scheme goes to that scheme's port (80, 443), and one that does not keeps the port
//! the request was addressed to. A port that is the scheme's own is left out of `Location`.
//! The query string is kept.

use http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::rewrite::{PathRewrite, PathRewriteConfig};
use crate::{FilterConfigError, LocalResponse, RequestHeader};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    /// `http` or `https`. Absent: the request's (`http` on a plaintext listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Absent: the request's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathRewriteConfig>,
    /// 301, 302 (the default), 303, 307 or 308.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// A compiled redirect.
#[derive(Debug)]
pub(super) struct Redirect {
    scheme: Option<&'static str>,
    hostname: Option<String>,
    port: Option<u16>,
    path: Option<PathRewrite>,
    status: StatusCode,
}

impl Redirect {
    pub(super) fn compile(config: &RedirectConfig, at: &str) -> Result<Self, FilterConfigError> {
        let scheme = match config.scheme.as_deref() {
            None => None,
            Some("http") => Some("http"),
            Some("https") => Some("https"),
            Some(other) => {
                return Err(FilterConfigError::new(
                    format!("{at}.scheme"),
                    format!("`{other}` is not a scheme here: http or https"),
                ))
            }
        };
        let status = match config.status.unwrap_or(302) {
            code @ (301 | 302 | 303 | 307 | 308) => {
                StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND)
            }
            other => {
                return Err(FilterConfigError::new(
                    format!("{at}.status"),
                    format!("{other} is not a redirect: 301, 302, 303, 307 or 308"),
                ))
            }
        };
        if let Some(host) = &config.hostname {
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(FilterConfigError::new(
                    format!("{at}.hostname"),
                    format!("`{host}` is not a host name"),
                ));
            }
        }
        if config.port == Some(0) {
            return Err(FilterConfigError::new(
                format!("{at}.port"),
                "must be 1 to 65535",
            ));
        }
        let path = config
            .path
            .as_ref()
            .map(|p| PathRewrite::compile(p, &format!("{at}.path")))
            .transpose()?;
        Ok(Redirect {
            scheme,
            hostname: config.hostname.clone(),
            port: config.port,
            path,
            status,
        })
    }

    /// The redirect for `req`.
    pub(super) fn answer(&self, req: &RequestHeader) -> LocalResponse {
        let (request_host, request_port) = host_and_port(req);
        let scheme = self.scheme.unwrap_or("http");
        let port = match (self.port, self.scheme) {
            (Some(port), _) => Some(port),
            (None, Some("https")) => Some(443),
            (None, Some(_)) => Some(80),
            (None, None) => request_port,
        };
        let host = self.hostname.as_deref().unwrap_or(request_host);
        let mut location = format!("{scheme}://{host}");
        match port {
            Some(80) if scheme == "http" => {}
            Some(443) if scheme == "https" => {}
            Some(port) => location.push_str(&format!(":{port}")),
            None => {}
        }
        let path = req.uri.path();
        match self.path.as_ref().and_then(|p| p.apply(path)) {
            Some(new) => location.push_str(&new),
            None => location.push_str(path),
        }
        if let Some(query) = req.uri.query() {
            location.push('?');
            location.push_str(query);
        }
        let response = LocalResponse::empty(self.status);
        // The parts are a host name, a port and a path that parsed: a valid header value,
        // unless the request's own host was not one (then no Location can be given).
        match HeaderValue::from_str(&location) {
            Ok(value) => response.with_header(header::LOCATION, value),
            Err(_) => LocalResponse::error(
                StatusCode::BAD_REQUEST,
                "bad_host",
                "the request's host cannot be redirected to",
            ),
        }
    }
}

impl std::fmt::Display for Redirect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redirect {}", self.status.as_u16())?;
        if let Some(scheme) = self.scheme {
            write!(f, " {scheme}://")?;
        }
        if let Some(host) = &self.hostname {
            write!(f, " {host}")?;
        }
        if let Some(port) = self.port {
            write!(f, " :{port}")?;
        }
        if let Some(path) = &self.path {
            write!(f, " {path}")?;
        }
        Ok(())
    }
}

/// The host name and port the request is addressed to: its `Host` header (else its URI's
/// authority), split.
fn host_and_port(req: &RequestHeader) -> (&str, Option<u16>) {
    let authority = req
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    // An IPv6 literal keeps its brackets; its port follows the closing one.
    let split_at = if authority.starts_with('[') {
        authority.rfind("]:").map(|i| i + 1)
    } else {
        authority.rfind(':')
    };
    match split_at {
        Some(i) => match authority[i + 1..].parse() {
            Ok(port) => (&authority[..i], Some(port)),
            Err(_) => (authority, None),
        },
        None => (authority, None),
    }
}
