//! The checks every kind of config makes of its names, one helper each, so the server's
//! config and every filter's say the same thing the same way.

/// A name that is empty or used twice in one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// The position of the offending entry in its list.
    pub index: usize,
    pub message: String,
}

/// Checks that each of `names` is non-empty and used once; `what` is what they name
/// (`backend`, `route`). Names are what metrics, logs and references use, so neither an empty
/// one nor a repeated one can mean anything.
pub fn unique_names<'a>(
    what: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), NameError> {
    let names: Vec<&str> = names.into_iter().collect();
    if let Some(index) = names.iter().position(|n| n.is_empty()) {
        return Err(NameError {
            index,
            message: format!("a {what} needs a name"),
        });
    }
    distinct(&format!("{what} name"), names)
}

/// Checks that no value of `values` is given twice; `what` says what they are
/// (`provider issuer`).
pub fn distinct<'a>(
    what: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<(), NameError> {
    let mut seen = std::collections::HashSet::new();
    match values
        .into_iter()
        .enumerate()
        .find(|(_, v)| !seen.insert(*v))
    {
        Some((index, value)) => Err(NameError {
            index,
            message: format!("duplicate {what} `{value}`"),
        }),
        None => Ok(()),
    }
}

/// The message for a reference to a name that is not defined: ``unknown backend `x`
/// (backends: a, b)``, listing the names it could have been.
pub fn unknown<S: AsRef<str>>(
    what: &str,
    name: &str,
    known: impl IntoIterator<Item = S>,
) -> String {
    let known: Vec<S> = known.into_iter().collect();
    let listed = if known.is_empty() {
        "none".to_owned()
    } else {
        known
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("unknown {what} `{name}` ({what}s: {listed})")
}

/// A child path joined to its parent in serde's notation: `a` and `b` give `a.b`, `a` and
/// `[2].b` give `a[2].b`.
pub fn join(parent: &str, child: &str) -> String {
    if child.is_empty() {
        parent.to_owned()
    } else if parent.is_empty() || child.starts_with('[') {
        format!("{parent}{child}")
    } else {
        format!("{parent}.{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_given_and_unique() {
        assert_eq!(unique_names("route", ["a", "b"]), Ok(()));
        assert_eq!(
            unique_names("route", ["a", "", "b"]),
            Err(NameError {
                index: 1,
                message: "a route needs a name".into()
            })
        );
        assert_eq!(
            unique_names("backend", ["a", "b", "a"]),
            Err(NameError {
                index: 2,
                message: "duplicate backend name `a`".into()
            })
        );
    }

    #[test]
    fn values_must_be_distinct() {
        assert_eq!(distinct("provider issuer", ["a", "b"]), Ok(()));
        assert_eq!(
            distinct("provider issuer", ["a", "b", "b"]),
            Err(NameError {
                index: 2,
                message: "duplicate provider issuer `b`".into()
            })
        );
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        assert_eq!(
            unknown("backend", "c", ["a", "b"]),
            "unknown backend `c` (backends: a, b)"
        );
        assert_eq!(
            unknown("filter", "x", Vec::<String>::new()),
            "unknown filter `x` (filters: none)"
        );
    }
}
