//! Small helpers over HTTP headers shared by filters and the server, and `HeaderTarget`:
//! one way for filters to change a request or a response header.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};

/// Headers that carry credentials: the access log refuses to record them, and `explain` shows
/// them shortened.
pub const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// The headers as one text value per name, repeated headers joined with `, ` as a recipient may
/// combine them (RFC 9110 §5.3). Names are lower case; bytes that are not UTF-8 are replaced.
pub fn folded(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

/// Where header operations land. Pingora's request and response headers keep a second map of
/// original name cases, so they are changed through their own methods, which keep both maps in
/// step.
pub(crate) trait HeaderTarget {
    fn set(&mut self, name: &HeaderName, value: HeaderValue);
    fn append(&mut self, name: &HeaderName, value: HeaderValue);
    fn remove(&mut self, name: &HeaderName);
}

// Pingora's request and response headers share these methods but no trait. `insert_header`
// and `append_header` only fail on names or values that do not convert; these are already a
// `HeaderName` and a `HeaderValue`.
macro_rules! pingora_header_target {
    ($ty:ty) => {
        impl HeaderTarget for $ty {
            fn set(&mut self, name: &HeaderName, value: HeaderValue) {
                let _ = self.insert_header(name.clone(), value);
            }
            fn append(&mut self, name: &HeaderName, value: HeaderValue) {
                let _ = self.append_header(name.clone(), value);
            }
            fn remove(&mut self, name: &HeaderName) {
                self.remove_header(name);
            }
        }
    };
}

pingora_header_target!(crate::RequestHeader);
pingora_header_target!(crate::ResponseHeader);
