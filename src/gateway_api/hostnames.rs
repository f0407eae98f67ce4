//! Which host names a route serves on a listener: the intersection of the listener's
//! `hostname` and the route's `hostnames`, as the Gateway API defines it.
//!
//! `*.example.com` stands for every name below `example.com` (at any depth), never
//! `example.com` itself. Where one side is a wildcard and the other a name under it, or both
//! are wildcards and one is within the other, the intersection is the more specific of the
//! two.

/// The host names `route_hostnames` serves on a listener with `listener` as its host name.
/// `Some(empty)`: any host; `None`: none at all, so the route does not attach here.
pub fn intersect(listener: Option<&str>, route_hostnames: &[String]) -> Option<Vec<String>> {
    let route: Vec<String> = route_hostnames
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let Some(listener) = listener.map(str::to_ascii_lowercase) else {
        return Some(route);
    };
    if route.is_empty() {
        return Some(vec![listener]);
    }
    let mut served: Vec<String> = Vec::new();
    for name in &route {
        if let Some(common) = common(&listener, name) {
            if !served.contains(&common) {
                served.push(common);
            }
        }
    }
    (!served.is_empty()).then_some(served)
}

/// The names two host names have in common, as one name.
fn common(a: &str, b: &str) -> Option<String> {
    match (a.strip_prefix('*'), b.strip_prefix('*')) {
        (None, None) => (a == b).then(|| a.to_owned()),
        (Some(suffix), None) => below(b, suffix).then(|| b.to_owned()),
        (None, Some(suffix)) => below(a, suffix).then(|| a.to_owned()),
        (Some(sa), Some(sb)) => {
            if sa.ends_with(sb) {
                Some(a.to_owned())
            } else if sb.ends_with(sa) {
                Some(b.to_owned())
            } else {
                None
            }
        }
    }
}

/// Whether `name` is below `suffix` (`.example.com`), not the suffix's own name.
fn below(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() && name.ends_with(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_spec_examples() {
        assert_eq!(intersect(None, &[]), Some(vec![]));
        assert_eq!(intersect(None, &names(&["a.com"])), Some(names(&["a.com"])));
        assert_eq!(intersect(Some("a.com"), &[]), Some(names(&["a.com"])));
        assert_eq!(
            intersect(
                Some("*.example.com"),
                &names(&["foo.example.com", "other.com"])
            ),
            Some(names(&["foo.example.com"]))
        );
        assert_eq!(
            intersect(Some("foo.example.com"), &names(&["*.example.com"])),
            Some(names(&["foo.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.example.com"), &names(&["*.foo.example.com"])),
            Some(names(&["*.foo.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.foo.example.com"), &names(&["*.example.com"])),
            Some(names(&["*.foo.example.com"]))
        );
        assert_eq!(
            intersect(Some("*.example.com"), &names(&["example.com"])),
            None
        );
        assert_eq!(intersect(Some("a.com"), &names(&["b.com"])), None);
        assert_eq!(
            intersect(Some("A.com"), &names(&["a.COM"])),
            Some(names(&["a.com"]))
        );
    }
}
