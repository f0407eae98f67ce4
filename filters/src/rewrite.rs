//! Rewriting a request path: replacing it whole, or replacing a matched prefix. Shared by the
//! router's redirects and the `url_rewrite` filter, which the Gateway API defines alike.

use serde::{Deserialize, Serialize};

use crate::FilterConfigError;

/// A new path: `full` replaces the whole path; `prefix` replaces the prefix `from` (matched on
/// segment boundaries, a trailing `/` ignored) with `to`. One of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathRewriteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixRewriteConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixRewriteConfig {
    pub from: String,
    /// May be empty: the prefix is then taken away.
    pub to: String,
}

/// A compiled path rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathRewrite {
    Full(String),
    /// Both stored without a trailing `/` (so `/` is the empty string).
    Prefix {
        from: String,
        to: String,
    },
}

impl PathRewrite {
    pub(crate) fn compile(config: &PathRewriteConfig, at: &str) -> Result<Self, FilterConfigError> {
        let absolute = |path: &str, field: &str| {
            if path.starts_with('/') {
                Ok(())
            } else {
                Err(FilterConfigError::new(
                    format!("{at}.{field}"),
                    format!("`{path}` must start with `/`"),
                ))
            }
        };
        match (&config.full, &config.prefix) {
            (Some(full), None) => {
                absolute(full, "full")?;
                Ok(PathRewrite::Full(full.clone()))
            }
            (None, Some(p)) => {
                absolute(&p.from, "prefix.from")?;
                if !p.to.is_empty() {
                    absolute(&p.to, "prefix.to")?;
                }
                Ok(PathRewrite::Prefix {
                    from: p.from.trim_end_matches('/').to_owned(),
                    to: p.to.trim_end_matches('/').to_owned(),
                })
            }
            _ => Err(FilterConfigError::new(
                at,
                "give `full` or `prefix`, one of them",
            )),
        }
    }

    /// The rewritten path, or `None` when a prefix rewrite does not apply to `path`.
    ///
    /// For a prefix, the Gateway API's table: `/foo/bar` with `/foo` → `/xyz` is `/xyz/bar`;
    /// `/foo/` gives `/xyz/`; with an empty replacement `/foo/bar` is `/bar` and `/foo` is `/`.
    pub(crate) fn apply(&self, path: &str) -> Option<String> {
        match self {
            PathRewrite::Full(full) => Some(full.clone()),
            PathRewrite::Prefix { from, to } => {
                let rest = path.strip_prefix(from.as_str())?;
                if !(rest.is_empty() || rest.starts_with('/')) {
                    return None;
                }
                let rewritten = format!("{to}{rest}");
                Some(if rewritten.is_empty() {
                    "/".to_owned()
                } else {
                    rewritten
                })
            }
        }
    }
}

impl std::fmt::Display for PathRewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathRewrite::Full(full) => write!(f, "path {full}"),
            PathRewrite::Prefix { from, to } => {
                let shown = |p: &str| {
                    if p.is_empty() {
                        "/".to_owned()
                    } else {
                        p.to_owned()
                    }
                };
                write!(f, "prefix {} -> {}", shown(from), shown(to))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(from: &str, to: &str) -> PathRewrite {
        PathRewrite::compile(
            &PathRewriteConfig {
                full: None,
                prefix: Some(PrefixRewriteConfig {
                    from: from.into(),
                    to: to.into(),
                }),
            },
            "p",
        )
        .expect("compiles")
    }

    #[test]
    fn the_gateway_api_table() {
        for (path, from, to, expected) in [
            ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo/", "/foo", "/xyz", "/xyz/"),
            ("/foo/bar", "/foo", "", "/bar"),
            ("/foo/", "/foo", "", "/"),
            ("/foo", "/foo", "", "/"),
            ("/foo/", "/foo", "/", "/"),
            ("/foo", "/foo", "/", "/"),
            ("/a/b", "/", "/x", "/x/a/b"),
        ] {
            assert_eq!(
                prefix(from, to).apply(path).as_deref(),
                Some(expected),
                "{path} with {from} -> {to:?}"
            );
        }
        assert_eq!(
            prefix("/foo", "/x").apply("/foobar"),
            None,
            "segment boundaries"
        );
    }
}
