//! The order in which a listener's route matches are tried, as the Gateway API defines it.
//!
//! The native router takes the first route that matches, so the front-end sorts every match
//! of every route attached to a listener into one list, most precedent first:
//!
//! 1. the host name the entry is for: an exact name before a wildcard, a longer name before a
//!    shorter one, a route without host names last (the spec gives precedence to the route
//!    with the most characters in a matching non-wildcard, then any, host name);
//! 2. the path: `Exact`, then `RegularExpression` (its order is the implementation's to say;
//!    before prefixes, as Envoy Gateway does, so a catch-all prefix never hides it), then
//!    `PathPrefix`, the longest first; a match without a path is `PathPrefix /`;
//! 3. a match with a method before one without;
//! 4. more header matches first, then more query parameter matches first;
//! 5. across routes: the oldest `creationTimestamp` first, then `namespace/name` in
//!    alphabetical order;
//! 6. within a route: rule order, then match order.

use std::cmp::{Ordering, Reverse};
use std::time::SystemTime;

use switchyard_filters::router::{MatchConfig, PathMatchType};

/// How specific the host name an entry answers for is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRank {
    Exact(usize),
    Wildcard(usize),
    Any,
}

impl HostRank {
    pub fn of(hostname: Option<&str>) -> Self {
        match hostname {
            None => HostRank::Any,
            Some(h) if h.starts_with("*.") => HostRank::Wildcard(h.len()),
            Some(h) => HostRank::Exact(h.len()),
        }
    }

    /// Smaller is more specific.
    fn key(&self) -> (u8, Reverse<usize>) {
        match *self {
            HostRank::Exact(len) => (0, Reverse(len)),
            HostRank::Wildcard(len) => (1, Reverse(len)),
            HostRank::Any => (2, Reverse(0)),
        }
    }
}

impl Ord for HostRank {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for HostRank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Everything that places one match of one rule of one route; `Ord` puts the most precedent
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precedence {
    pub host: HostRank,
    path_kind: u8,
    path_len: usize,
    method: bool,
    headers: usize,
    query_params: usize,
    /// `None` (a hand-written manifest) after every known time.
    pub created: Option<SystemTime>,
    /// `namespace/name` of the route.
    pub route: String,
    pub rule: usize,
    pub index: usize,
}

impl Precedence {
    pub fn new(
        host: HostRank,
        m: &MatchConfig,
        created: Option<SystemTime>,
        route: String,
        rule: usize,
        index: usize,
    ) -> Self {
        let (path_kind, path_len) = match &m.path {
            None => (2, 1),
            Some(p) => match p.kind {
                PathMatchType::Exact => (0, p.value.len()),
                PathMatchType::RegularExpression => (1, p.value.len()),
                PathMatchType::PathPrefix => {
                    // `/foo/` and `/foo` are the same prefix.
                    let value = p.value.trim_end_matches('/');
                    (2, value.len().max(1))
                }
            },
        };
        Precedence {
            host,
            path_kind,
            path_len,
            method: m.method.is_some(),
            headers: m.headers.len(),
            query_params: m.query_params.len(),
            created,
            route,
            rule,
            index,
        }
    }
}

impl Ord for Precedence {
    fn cmp(&self, other: &Self) -> Ordering {
        let created = |p: &Precedence| (p.created.is_none(), p.created);
        self.host
            .cmp(&other.host)
            .then(self.path_kind.cmp(&other.path_kind))
            .then(other.path_len.cmp(&self.path_len))
            .then(other.method.cmp(&self.method))
            .then(other.headers.cmp(&self.headers))
            .then(other.query_params.cmp(&self.query_params))
            .then(created(self).cmp(&created(other)))
            .then(self.route.cmp(&other.route))
            .then(self.rule.cmp(&other.rule))
            .then(self.index.cmp(&other.index))
    }
}

impl PartialOrd for Precedence {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(yaml: &str, route: &str, rule: usize) -> Precedence {
        let m: MatchConfig = serde_yaml::from_str(yaml).expect("match");
        Precedence::new(HostRank::Any, &m, None, route.into(), rule, 0)
    }

    fn sorted(mut list: Vec<Precedence>) -> Vec<(String, usize)> {
        list.sort();
        list.into_iter().map(|p| (p.route, p.rule)).collect()
    }

    #[test]
    fn the_spec_order() {
        let order = sorted(vec![
            at("{}", "a/none", 0),
            at("{ path: { value: /api } }", "a/prefix", 0),
            at("{ path: { value: /api/v1 } }", "a/longer", 0),
            at("{ path: { type: Exact, value: /api } }", "a/exact", 0),
            at("{ path: { value: /api }, method: GET }", "a/method", 0),
            at(
                "{ path: { value: /api }, method: GET, headers: [{ name: x, value: y }] }",
                "a/header",
                0,
            ),
            at(
                "{ path: { type: RegularExpression, value: '/u/[0-9]+' } }",
                "a/regex",
                0,
            ),
        ]);
        let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["a/exact", "a/regex", "a/longer", "a/header", "a/method", "a/prefix", "a/none"]
        );
    }

    #[test]
    fn ties_go_to_the_oldest_then_the_name_then_rule_order() {
        let mut old = at("{}", "z/old", 0);
        old.created = Some(SystemTime::UNIX_EPOCH);
        let order = sorted(vec![
            at("{}", "b/r", 1),
            at("{}", "b/r", 0),
            at("{}", "a/r", 3),
            old,
        ]);
        assert_eq!(
            order,
            [
                ("z/old".into(), 0),
                ("a/r".into(), 3),
                ("b/r".into(), 0),
                ("b/r".into(), 1)
            ]
        );
    }

    #[test]
    fn host_names_come_first() {
        let host = |h: Option<&str>| {
            let mut p = at("{ path: { type: Exact, value: /x } }", "a/r", 0);
            p.host = HostRank::of(h);
            p
        };
        let mut list = vec![
            host(None),
            host(Some("*.example.com")),
            host(Some("a.example.com")),
            host(Some("*.a.example.com")),
        ];
        list.sort();
        let hosts: Vec<HostRank> = list.into_iter().map(|p| p.host).collect();
        assert_eq!(
            hosts,
            [
                HostRank::Exact(13),
                HostRank::Wildcard(15),
                HostRank::Wildcard(13),
                HostRank::Any
            ]
        );
    }
}
