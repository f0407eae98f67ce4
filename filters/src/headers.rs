//! Small helpers over HTTP headers shared by filters and the server.

use std::collections::BTreeMap;

use http::HeaderMap;

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
