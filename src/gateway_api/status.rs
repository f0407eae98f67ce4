//! What a controller would write in the status of each Gateway, listener and route: its
//! conditions, with the specification's types and reasons. Switchyard writes no status back
//! anywhere; `switchyard check` prints this, so a user sees why a route does not serve.

use std::fmt;

/// One condition, as in `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted`.
    pub kind: &'static str,
    pub status: bool,
    /// `Accepted`, `NoMatchingListenerHostname`, `BackendNotFound`, ...
    pub reason: &'static str,
    pub message: String,
}

impl Condition {
    pub fn yes(kind: &'static str, reason: &'static str) -> Self {
        Condition {
            kind,
            status: true,
            reason,
            message: String::new(),
        }
    }

    /// A condition that holds, with a message: `Conflicted`, `PartiallyInvalid`.
    pub fn raised(kind: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Condition {
            kind,
            status: true,
            reason,
            message: message.into(),
        }
    }

    pub fn no(kind: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Condition {
            kind,
            status: false,
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.status { "True" } else { "False" };
        write!(f, "{}: {status} ({})", self.kind, self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// A Gateway this configuration serves, and its listeners.
#[derive(Debug, Clone)]
pub struct GatewayStatus {
    /// `namespace/name`.
    pub name: String,
    /// Where its listeners bind.
    pub address: std::net::IpAddr,
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

#[derive(Debug, Clone)]
pub struct ListenerStatus {
    pub name: String,
    pub port: u16,
    pub hostname: Option<String>,
    pub attached_routes: usize,
    pub conditions: Vec<Condition>,
}

/// An HTTPRoute and what each of its parents made of it.
#[derive(Debug, Clone)]
pub struct RouteStatus {
    /// `namespace/name`.
    pub name: String,
    pub parents: Vec<ParentStatus>,
}

#[derive(Debug, Clone)]
pub struct ParentStatus {
    /// `Gateway namespace/name`, with `/section` or `:port` as the reference gives them.
    pub parent: String,
    pub conditions: Vec<Condition>,
}

/// Everything the Gateway API front-end made of the manifests.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub gateways: Vec<GatewayStatus>,
    pub routes: Vec<RouteStatus>,
    /// Policies and where they apply.
    pub policies: Vec<String>,
    /// Documents of kinds this front-end does not serve, and Gateways of other classes: one
    /// line each, with where they are.
    pub ignored: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "gateway api:")?;
        for g in &self.gateways {
            writeln!(f, "  Gateway {} on {}", g.name, g.address)?;
            for c in &g.conditions {
                writeln!(f, "    {c}")?;
            }
            for l in &g.listeners {
                writeln!(
                    f,
                    "    listener {} port {} hostname {} ({} routes)",
                    l.name,
                    l.port,
                    l.hostname.as_deref().unwrap_or("*"),
                    l.attached_routes
                )?;
                for c in &l.conditions {
                    writeln!(f, "      {c}")?;
                }
            }
        }
        for r in &self.routes {
            writeln!(f, "  HTTPRoute {}", r.name)?;
            if r.parents.is_empty() {
                writeln!(f, "    no parent served here")?;
            }
            for p in &r.parents {
                writeln!(f, "    parent {}", p.parent)?;
                for c in &p.conditions {
                    writeln!(f, "      {c}")?;
                }
            }
        }
        for p in &self.policies {
            writeln!(f, "  {p}")?;
        }
        for i in &self.ignored {
            writeln!(f, "  ignored: {i}")?;
        }
        Ok(())
    }
}
