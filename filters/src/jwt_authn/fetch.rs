//! One fetch of a published JWKS: GET it through the backend, check the answer, read its keys
//! and how long the provider says they may be cached.

use std::time::Duration;

use tokio::time::Instant;

use super::jwks::{self, JwksError, KeySet};
use crate::{FetchError, HttpClient};

/// The largest JWKS document accepted. Real ones hold a handful of keys in a few KiB; the
/// bound keeps a misbehaving provider from filling memory.
pub(super) const MAX_DOCUMENT: usize = 256 * 1024;

/// A usable key set and its caching instructions.
#[derive(Debug)]
pub(super) struct Fetched {
    pub keys: KeySet,
    /// `Cache-Control: max-age` of the answer (zero for `no-cache` or `no-store`).
    pub max_age: Option<Duration>,
    /// Keys in the document that cannot be used here, skipped.
    pub skipped: Vec<JwksError>,
}

/// Why a fetch gave no usable key set. Nothing it returns replaces keys already held.
#[derive(Debug, thiserror::Error)]
pub(super) enum FetchFailure {
    #[error(transparent)]
    Transport(#[from] FetchError),
    #[error("the provider answered {0}")]
    Status(u16),
    #[error("not a usable JWKS: {0}")]
    Malformed(String),
    #[error("redirect not followed: {0}")]
    Redirect(String),
}

/// Redirects followed in one fetch, as a browser would follow a few.
const MAX_REDIRECTS: usize = 3;

/// Every [`FetchFailure::code`] and `ok`, in a fixed order, for counters.
pub(super) const RESULTS: [&str; 9] = [
    "ok",
    "connect_failed",
    "tls_failed",
    "timeout",
    "bad_response",
    "too_large",
    "bad_status",
    "malformed",
    "redirect",
];

impl FetchFailure {
    /// A short, stable code (one of [`RESULTS`]), for metrics.
    pub(super) fn code(&self) -> &'static str {
        match self {
            FetchFailure::Transport(e) => e.kind.as_str(),
            FetchFailure::Status(_) => "bad_status",
            FetchFailure::Malformed(_) => "malformed",
            FetchFailure::Redirect(_) => "redirect",
        }
    }
}

/// Fetches and parses the JWKS at `path`, all within `timeout`. Redirects to another path of
/// the same server are followed, up to [`MAX_REDIRECTS`] (identity providers move their key
/// documents); one to another server is not, since the backend names the only server the
/// keys may come from.
pub(super) async fn fetch(
    client: &dyn HttpClient,
    path: &str,
    timeout: Duration,
) -> Result<Fetched, FetchFailure> {
    let deadline = Instant::now() + timeout;
    let mut path = path.to_owned();
    let mut redirects = 0;
    let response = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let response = client.get(&path, left, MAX_DOCUMENT).await?;
        if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
            break response;
        }
        let Some(location) = response.location.as_deref() else {
            return Err(FetchFailure::Status(response.status));
        };
        if redirects == MAX_REDIRECTS {
            return Err(FetchFailure::Redirect(format!(
                "more than {MAX_REDIRECTS} redirects (the last to `{location}`)"
            )));
        }
        path = client.local_path(location).ok_or_else(|| {
            FetchFailure::Redirect(format!(
                "`{location}` is another server; point the provider's backend at it"
            ))
        })?;
        redirects += 1;
    };
    if response.status != 200 {
        return Err(FetchFailure::Status(response.status));
    }
    let text = std::str::from_utf8(&response.body)
        .map_err(|_| FetchFailure::Malformed("the body is not UTF-8".to_owned()))?;
    let (keys, skipped) =
        jwks::parse_published(text).map_err(|e| FetchFailure::Malformed(e.to_string()))?;
    Ok(Fetched {
        keys,
        max_age: response.cache_control.as_deref().and_then(max_age),
        skipped,
    })
}

/// The lifetime `Cache-Control` gives a response: its `max-age`, or zero when it may not be
/// reused without asking again (`no-cache`, `no-store`). `None` when it says neither.
pub(super) fn max_age(cache_control: &str) -> Option<Duration> {
    let mut found = None;
    for directive in cache_control.split(',') {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") {
            // RFC 9111 §1.2.2: a delta too large to represent counts as the largest.
            found = value.and_then(|v| {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    Some(Duration::from_secs(
                        v.parse().unwrap_or(u64::from(u32::MAX)),
                    ))
                } else {
                    None
                }
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::max_age;
    use std::time::Duration;

    #[test]
    fn max_age_is_read_from_cache_control() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(max_age("max-age=300"), secs(300));
        assert_eq!(
            max_age("public, max-age=21600, must-revalidate"),
            secs(21600)
        );
        assert_eq!(max_age("Max-Age=\"60\""), secs(60));
        assert_eq!(max_age("public, s-maxage=10"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age("max-age=-1"), None);
        assert_eq!(
            max_age("max-age=99999999999999999999999"),
            secs(u64::from(u32::MAX))
        );
        assert_eq!(max_age("max-age=600, no-cache"), secs(0));
        assert_eq!(max_age("no-store"), secs(0));
        assert_eq!(max_age(""), None);
    }
}
