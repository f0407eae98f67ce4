//! `url_rewrite`: changes the request's host and path on its way to the backend, as the
//! Gateway API's `URLRewrite` does. It runs after routing (in `post_routing`, or as a route's
//! own filter), so the route was chosen on the request as the client sent it.
//!
//! ```yaml
//! - name: url_rewrite
//!   config:
//!     hostname: internal.example.com          # the Host header the backend sees
//!     path: { prefix: { from: /api, to: /v2 } }   # or { full: /fixed }
//! ```
//!
//! A prefix rewrite follows the Gateway API's table: `/api/items` becomes `/v2/items`, and a
//! path outside the prefix is left as it is. The query string is kept. What the client sees
//! in responses (a `Location` from the backend, say) is not rewritten back.

use std::sync::Arc;

use async_trait::async_trait;
use http::{header, HeaderValue};
use serde::Deserialize;

use crate::rewrite::{PathRewrite, PathRewriteConfig};
use crate::{BuildContext, Filter, FilterConfigError, FilterFactory, Flow, Phase, RequestContext};

pub const NAME: &str = "url_rewrite";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlRewriteConfig {
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    path: Option<PathRewriteConfig>,
}

struct UrlRewrite {
    hostname: Option<HeaderValue>,
    path: Option<PathRewrite>,
}

#[async_trait]
impl Filter for UrlRewrite {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn on_request(&self, ctx: &mut RequestContext<'_>) -> Flow {
        if let Some(host) = &self.hostname {
            // The value was checked at load; a Host header always takes one.
            let _ = ctx.request_mut().insert_header(header::HOST, host.clone());
            ctx.note(|| format!("host {}", String::from_utf8_lossy(host.as_bytes())));
        }
        if let Some(rewrite) = &self.path {
            let uri = &ctx.request().uri;
            if let Some(path) = rewrite.apply(uri.path()) {
                let old = uri.path().to_owned();
                let with_query = match uri.query() {
                    Some(query) => format!("{path}?{query}"),
                    None => path.clone(),
                };
                let mut parts = uri.clone().into_parts();
                let rewritten = with_query.parse().ok().and_then(|pq| {
                    parts.path_and_query = Some(pq);
                    http::Uri::from_parts(parts).ok()
                });
                match rewritten {
                    Some(new_uri) => {
                        ctx.request_mut().set_uri(new_uri);
                        ctx.note(|| format!("path {old} -> {path}"));
                    }
                    None => ctx.note(|| format!("path {old} left as it is: {path} is not a path")),
                }
            }
        }
        Flow::Continue
    }

    fn describe(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(host) = &self.hostname {
            parts.push(format!("host {}", String::from_utf8_lossy(host.as_bytes())));
        }
        if let Some(path) = &self.path {
            parts.push(path.to_string());
        }
        vec![format!("url_rewrite: {}", parts.join(", "))]
    }
}

pub struct UrlRewriteFactory;

impl FilterFactory for UrlRewriteFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> &'static [Phase] {
        &[Phase::PostRouting]
    }

    fn build(
        &self,
        config: &serde_yaml::Value,
        _ctx: &BuildContext<'_>,
    ) -> Result<Arc<dyn Filter>, FilterConfigError> {
        let config: UrlRewriteConfig = FilterConfigError::parse(config)?;
        let hostname = config
            .hostname
            .as_ref()
            .map(|h| {
                let valid = !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
                valid
                    .then(|| HeaderValue::from_str(h).ok())
                    .flatten()
                    .ok_or_else(|| {
                        FilterConfigError::new("hostname", format!("`{h}` is not a host name"))
                    })
            })
            .transpose()?;
        let path = config
            .path
            .as_ref()
            .map(|p| PathRewrite::compile(p, "path"))
            .transpose()?;
        if hostname.is_none() && path.is_none() {
            return Err(FilterConfigError::new(
                "",
                "nothing to do: give hostname, path or both",
            ));
        }
        Ok(Arc::new(UrlRewrite { hostname, path }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RequestHeader, RequestState};

    fn run(yaml: &str, uri: &str) -> RequestHeader {
        let config: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
        let filter = UrlRewriteFactory
            .build(&config, &BuildContext::new(&[], std::path::Path::new(".")))
            .expect("builds");
        let mut req = RequestHeader::build("GET", uri.as_bytes(), None).expect("request");
        req.insert_header("host", "public.example").expect("host");
        let mut state = RequestState::default();
        let mut ctx = RequestContext::new(&mut req, None, &mut state);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("rt");
        rt.block_on(filter.on_request(&mut ctx));
        req
    }

    #[test]
    fn host_and_path_are_rewritten_and_the_query_kept() {
        let req = run(
            "{ hostname: one.example.org, path: { prefix: { from: /prefix, to: /one } } }",
            "/prefix/two?x=1",
        );
        assert_eq!(req.uri.to_string(), "/one/two?x=1");
        assert_eq!(
            req.headers.get("host").map(|h| h.as_bytes()),
            Some(&b"one.example.org"[..])
        );
        let req = run("{ path: { full: /fixed } }", "/a/b");
        assert_eq!(req.uri.path(), "/fixed");
        let req = run(
            "{ path: { prefix: { from: /prefix, to: /one } } }",
            "/other",
        );
        assert_eq!(req.uri.path(), "/other", "outside the prefix: untouched");
    }
}
