//! Finding the token in a request, and taking it out before the request goes upstream.

use http::HeaderName;

use super::config::TokenSourceConfig;
use crate::{FilterConfigError, RequestHeader};

/// What the request holds where the token should be.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// Nothing (or a header with another auth scheme, e.g. `Basic`: not ours to judge).
    Nothing,
    Token(String),
    /// Something that cannot be a token: sent twice, empty after the scheme, not ASCII.
    Malformed,
}

#[derive(Debug, Clone)]
pub(super) enum TokenSource {
    Header {
        name: HeaderName,
        /// Lower-case scheme, e.g. `bearer`.
        scheme: Option<String>,
    },
    Query {
        name: String,
    },
}

impl TokenSource {
    pub(super) fn from_config(config: &TokenSourceConfig) -> Result<Self, FilterConfigError> {
        match (&config.header, &config.query) {
            (Some(header), None) => {
                let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    FilterConfigError::new(
                        "from.header",
                        format!("`{header}` is not a valid header name"),
                    )
                })?;
                let scheme = match &config.scheme {
                    Some(s) if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                        return Err(FilterConfigError::new(
                            "from.scheme",
                            format!(
                                "`{s}` is not an auth scheme (letters and digits, e.g. Bearer)"
                            ),
                        ))
                    }
                    s => s.as_ref().map(|s| s.to_ascii_lowercase()),
                };
                Ok(TokenSource::Header { name, scheme })
            }
            (None, Some(query)) if config.scheme.is_none() && !query.is_empty() => {
                Ok(TokenSource::Query {
                    name: query.clone(),
                })
            }
            (None, Some(_)) => Err(FilterConfigError::new(
                "from",
                "`query` takes a non-empty parameter name and no `scheme`",
            )),
            _ => Err(FilterConfigError::new(
                "from",
                "give exactly one of `header` and `query`",
            )),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            TokenSource::Header {
                name,
                scheme: Some(s),
            } => format!("header {name} ({s} scheme)"),
            TokenSource::Header { name, scheme: None } => format!("header {name}"),
            TokenSource::Query { name } => format!("query parameter {name}"),
        }
    }

    pub(super) fn find(&self, req: &RequestHeader) -> Found {
        match self {
            TokenSource::Header { name, scheme } => {
                let mut values = req.headers.get_all(name).iter();
                let Some(value) = values.next() else {
                    return Found::Nothing;
                };
                if values.next().is_some() {
                    return Found::Malformed;
                }
                let Ok(value) = value.to_str() else {
                    return Found::Malformed;
                };
                let token = match scheme {
                    None => value.trim(),
                    Some(scheme) => {
                        let value = value.trim();
                        let (given, rest) = value.split_once(' ').unwrap_or((value, ""));
                        if !given.eq_ignore_ascii_case(scheme) {
                            return Found::Nothing;
                        }
                        rest.trim()
                    }
                };
                if token.is_empty() {
                    Found::Malformed
                } else {
                    Found::Token(token.to_owned())
                }
            }
            TokenSource::Query { name } => {
                let query = req.uri.query().unwrap_or("");
                let mut matches = form_urlencoded::parse(query.as_bytes())
                    .filter(|(n, _)| n.as_ref() == name.as_str());
                match (matches.next(), matches.next()) {
                    (None, _) => Found::Nothing,
                    (Some(_), Some(_)) => Found::Malformed,
                    (Some((_, v)), None) if v.is_empty() => Found::Malformed,
                    (Some((_, v)), None) => Found::Token(v.into_owned()),
                }
            }
        }
    }

    /// Takes the token out of the request, so that it does not reach the backend.
    pub(super) fn remove(&self, req: &mut RequestHeader) {
        match self {
            TokenSource::Header { name, .. } => {
                req.remove_header(name);
            }
            TokenSource::Query { name } => {
                let Some(query) = req.uri.query() else {
                    return;
                };
                // Keep every other parameter byte for byte; drop those named `name`.
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let raw_name = pair.split('=').next().unwrap_or("");
                        form_urlencoded::parse(raw_name.as_bytes())
                            .next()
                            .is_none_or(|(n, _)| n.as_ref() != name.as_str())
                    })
                    .collect();
                let path = req.uri.path();
                let new = if kept.is_empty() {
                    path.to_owned()
                } else {
                    format!("{path}?{}", kept.join("&"))
                };
                if let Ok(uri) = new.parse() {
                    req.set_uri(uri);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer() -> TokenSource {
        TokenSource::from_config(&TokenSourceConfig::default()).expect("default source")
    }

    fn req(uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", uri.as_bytes(), None).expect("request");
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).expect("header");
        }
        r
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for h in ["Bearer abc", "bearer abc", "BEARER   abc "] {
            assert_eq!(
                bearer().find(&req("/", &[("authorization", h)])),
                Found::Token("abc".into()),
                "{h}"
            );
        }
    }

    #[test]
    fn other_schemes_and_absence_are_nothing() {
        assert_eq!(bearer().find(&req("/", &[])), Found::Nothing);
        assert_eq!(
            bearer().find(&req("/", &[("authorization", "Basic dXNlcjpwdw==")])),
            Found::Nothing
        );
    }

    #[test]
    fn empty_or_repeated_tokens_are_malformed() {
        assert_eq!(
            bearer().find(&req("/", &[("authorization", "Bearer ")])),
            Found::Malformed
        );
        assert_eq!(
            bearer().find(&req(
                "/",
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")]
            )),
            Found::Malformed
        );
    }

    #[test]
    fn query_tokens_are_found_and_removed_alone() {
        let source = TokenSource::from_config(&TokenSourceConfig {
            header: None,
            scheme: None,
            query: Some("access_token".into()),
        })
        .expect("query source");
        let mut r = req("/x?a=1&access_token=t.o.k&b=%20", &[]);
        assert_eq!(source.find(&r), Found::Token("t.o.k".into()));
        source.remove(&mut r);
        assert_eq!(r.uri.to_string(), "/x?a=1&b=%20");
        let mut only = req("/x?access_token=t", &[]);
        source.remove(&mut only);
        assert_eq!(only.uri.to_string(), "/x");
    }

    #[test]
    fn config_needs_exactly_one_place() {
        let both = TokenSourceConfig {
            header: Some("x".into()),
            scheme: None,
            query: Some("y".into()),
        };
        assert!(TokenSource::from_config(&both).is_err());
        let bad_scheme = TokenSourceConfig {
            header: Some("authorization".into()),
            scheme: Some("Bear er".into()),
            query: None,
        };
        assert_eq!(
            TokenSource::from_config(&bad_scheme).err().map(|e| e.path),
            Some("from.scheme".to_owned())
        );
    }
}
