//! Compiled route matchers: everything here is built at config load and only read per request.

use std::fmt;

use http::{HeaderName, HeaderValue, Method};
use regex::bytes::{Regex, RegexBuilder};

use super::config::{
    HeaderMatchConfig, MatchConfig, PathMatchConfig, PathMatchType, QueryParamMatchConfig,
    ValueMatchType,
};
use crate::{FilterConfigError, RequestHeader};

/// Compiled regexes are bounded so a config cannot make the gateway build a huge automaton.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn compile_regex(pattern: &str, path: &str) -> Result<Regex, FilterConfigError> {
    // Anchored at both ends: a route regex describes the whole value, as in Envoy.
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| FilterConfigError::new(path, format!("invalid regular expression: {e}")))
}

/// One alternative of a route: all of its tests must pass.
#[derive(Debug)]
pub(super) struct Conditions {
    path: Option<PathMatcher>,
    method: Option<Method>,
    headers: Vec<HeaderMatcher>,
    query_params: Vec<QueryParamMatcher>,
}

impl Conditions {
    /// Compiles one `matches` entry; `at` is its path in the router config, for errors.
    pub(super) fn compile(config: &MatchConfig, at: &str) -> Result<Self, FilterConfigError> {
        let path = config
            .path
            .as_ref()
            .map(|p| PathMatcher::compile(p, &format!("{at}.path")))
            .transpose()?;
        let method = config
            .method
            .as_deref()
            .map(|m| parse_method(m, &format!("{at}.method")))
            .transpose()?;
        let headers = config
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| HeaderMatcher::compile(h, &format!("{at}.headers[{i}]")))
            .collect::<Result<_, _>>()?;
        let query_params = config
            .query_params
            .iter()
            .enumerate()
            .map(|(i, q)| QueryParamMatcher::compile(q, &format!("{at}.query_params[{i}]")))
            .collect::<Result<_, _>>()?;
        Ok(Conditions {
            path,
            method,
            headers,
            query_params,
        })
    }

    /// Cheap tests first: method, path, headers, then the query string, which must be parsed.
    pub(super) fn matches(&self, req: &RequestHeader) -> bool {
        if let Some(method) = &self.method {
            if req.method != *method {
                return false;
            }
        }
        if let Some(path) = &self.path {
            if !path.matches(req.uri.path()) {
                return false;
            }
        }
        if !self.headers.iter().all(|h| h.matches(req)) {
            return false;
        }
        if self.query_params.is_empty() {
            return true;
        }
        let query = req.uri.query().unwrap_or("");
        self.query_params.iter().all(|q| q.matches(query))
    }
}

impl fmt::Display for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(m) = &self.method {
            parts.push(format!("method {m}"));
        }
        if let Some(p) = &self.path {
            parts.push(p.to_string());
        }
        parts.extend(self.headers.iter().map(|h| h.to_string()));
        parts.extend(self.query_params.iter().map(|q| q.to_string()));
        if parts.is_empty() {
            f.write_str("any request")
        } else {
            f.write_str(&parts.join(" and "))
        }
    }
}

fn parse_method(method: &str, at: &str) -> Result<Method, FilterConfigError> {
    // Methods are case-sensitive; `get` would be a different, almost surely unintended, method.
    if method.is_empty() || method.bytes().any(|b| !b.is_ascii_uppercase()) {
        return Err(FilterConfigError::new(
            at,
            format!("`{method}` is not a method: write it in upper case, e.g. GET"),
        ));
    }
    Method::from_bytes(method.as_bytes())
        .map_err(|_| FilterConfigError::new(at, format!("`{method}` is not a valid method")))
}

#[derive(Debug)]
enum PathMatcher {
    Exact(String),
    /// Stored without its trailing `/`; the empty prefix (from `/`) matches every path.
    Prefix(String),
    Regex(Regex),
}

impl PathMatcher {
    fn compile(config: &PathMatchConfig, at: &str) -> Result<Self, FilterConfigError> {
        let value = &config.value;
        if config.kind != PathMatchType::RegularExpression && !value.starts_with('/') {
            return Err(FilterConfigError::new(
                format!("{at}.value"),
                format!("path `{value}` must start with `/`"),
            ));
        }
        Ok(match config.kind {
            PathMatchType::Exact => PathMatcher::Exact(value.clone()),
            PathMatchType::PathPrefix => {
                PathMatcher::Prefix(value.trim_end_matches('/').to_owned())
            }
            PathMatchType::RegularExpression => {
                PathMatcher::Regex(compile_regex(value, &format!("{at}.value"))?)
            }
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Exact(exact) => path == exact,
            PathMatcher::Prefix(prefix) => match path.strip_prefix(prefix.as_str()) {
                // On a segment boundary: the prefix is the whole path or is followed by `/`.
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
            PathMatcher::Regex(re) => re.is_match(path.as_bytes()),
        }
    }
}

impl fmt::Display for PathMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathMatcher::Exact(p) => write!(f, "path = {p}"),
            PathMatcher::Prefix(p) if p.is_empty() => write!(f, "path prefix /"),
            PathMatcher::Prefix(p) => write!(f, "path prefix {p}"),
            PathMatcher::Regex(re) => write!(f, "path ~ {}", unanchored(re)),
        }
    }
}

/// The regex as the user wrote it, without the anchors added at compile time.
fn unanchored(re: &Regex) -> &str {
    let s = re.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

#[derive(Debug)]
enum ValueMatcher {
    Exact(Box<[u8]>),
    Regex(Regex),
}

impl ValueMatcher {
    fn compile(kind: ValueMatchType, value: &str, at: &str) -> Result<Self, FilterConfigError> {
        Ok(match kind {
            ValueMatchType::Exact => ValueMatcher::Exact(value.as_bytes().into()),
            ValueMatchType::RegularExpression => ValueMatcher::Regex(compile_regex(value, at)?),
        })
    }

    fn matches(&self, value: &[u8]) -> bool {
        match self {
            ValueMatcher::Exact(exact) => value == &**exact,
            ValueMatcher::Regex(re) => re.is_match(value),
        }
    }
}

impl fmt::Display for ValueMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueMatcher::Exact(v) => write!(f, "= {:?}", String::from_utf8_lossy(v)),
            ValueMatcher::Regex(re) => write!(f, "~ {}", unanchored(re)),
        }
    }
}

#[derive(Debug)]
struct HeaderMatcher {
    name: HeaderName,
    value: ValueMatcher,
}

impl HeaderMatcher {
    fn compile(config: &HeaderMatchConfig, at: &str) -> Result<Self, FilterConfigError> {
        let name = HeaderName::from_bytes(config.name.as_bytes()).map_err(|_| {
            FilterConfigError::new(
                format!("{at}.name"),
                format!("`{}` is not a valid header name", config.name),
            )
        })?;
        if config.kind == ValueMatchType::Exact && HeaderValue::from_str(&config.value).is_err() {
            return Err(FilterConfigError::new(
                format!("{at}.value"),
                "a header value cannot hold control characters, so this test could never match",
            ));
        }
        let value = ValueMatcher::compile(config.kind, &config.value, &format!("{at}.value"))?;
        Ok(HeaderMatcher { name, value })
    }

    fn matches(&self, req: &RequestHeader) -> bool {
        let mut values = req.headers.get_all(&self.name).iter();
        let Some(first) = values.next() else {
            return false;
        };
        match values.next() {
            None => self.value.matches(first.as_bytes()),
            Some(second) => {
                // Repeated header: test the values folded into one, as a recipient may combine
                // them (RFC 9110 §5.3). Rare, so the allocation stays off the common path.
                let mut folded = Vec::with_capacity(first.len() + second.len() + 1);
                folded.extend_from_slice(first.as_bytes());
                for v in std::iter::once(second).chain(values) {
                    folded.push(b',');
                    folded.extend_from_slice(v.as_bytes());
                }
                self.value.matches(&folded)
            }
        }
    }
}

impl fmt::Display for HeaderMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "header {} {}", self.name, self.value)
    }
}

#[derive(Debug)]
struct QueryParamMatcher {
    name: String,
    value: ValueMatcher,
}

impl QueryParamMatcher {
    fn compile(config: &QueryParamMatchConfig, at: &str) -> Result<Self, FilterConfigError> {
        if config.name.is_empty() {
            return Err(FilterConfigError::new(
                format!("{at}.name"),
                "a query parameter name cannot be empty",
            ));
        }
        let value = ValueMatcher::compile(config.kind, &config.value, &format!("{at}.value"))?;
        Ok(QueryParamMatcher {
            name: config.name.clone(),
            value,
        })
    }

    fn matches(&self, query: &str) -> bool {
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name.as_ref() == self.name)
            .is_some_and(|(_, value)| self.value.matches(value.as_bytes()))
    }
}

impl fmt::Display for QueryParamMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query {} {}", self.name, self.value)
    }
}
