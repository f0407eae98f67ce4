//! `transformation`: sets, adds and removes headers with values computed by CEL expressions.
//!
//! Its main use is claim projection: in `pre_routing`, after `jwt_authn`, it copies a claim
//! into a header the router matches, e.g. `x-tenant-version` from `jwt.version` or from the
//! nested `jwt.userMetadata.version` (`jwt.userMetadata["version"]` works too).
//!
//! # Variables
//! - `jwt`: the verified claims. Unbound when the request has no valid token, so any use of it
//!   fails and the header it feeds is dropped.
//! - `request`: `method`, `path`, `host`, `headers` (lower-case names), `query` (decoded).
//! - `source`: `address`, the client connection's IP.
//!
//! # Results
//! A string is used as is; an int, uint, double or bool becomes its text. An error (a missing
//! claim, no token), `null`, a list, a map, or text that is not a valid header value (CR, LF,
//! NUL, other control characters, non-ASCII) drops the header: `set` removes it, `add` adds
//! nothing. Every drop is counted by header and reason. So a client-sent `x-tenant-version`
//! never survives `set` when there is no valid claim to replace it with.
//!
//! # Order and phases
//! Within one filter: `remove`, then `set`, then `add`. A filter in `pre_routing` or
//! `post_routing` takes a `request` section and works on the request before it goes upstream;
//! one in the `response` phase takes a `response` section and works on the response header.
//!
//! # Files
//! - `config.rs`: the YAML shape.
//! - `expr.rs`: compiling expressions and binding their variables.
//! - `header_value.rs`: the result rules above.
//! - `stats.rs`: the drop counters.
//! - `tests.rs`: the rules, case by case.

mod config;
mod expr;
mod header_value;
mod stats;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderName;

pub use config::{HeaderExpr, HeaderOps, TransformationConfig};
pub use expr::{Expression, Uses, Variables, MAX_EXPRESSION_LEN, VARIABLES};
pub use header_value::{to_header_value, Dropped, MAX_VALUE_LEN};
pub use stats::{DropCount, DropCounters};

use crate::{
    BuildContext, Filter, FilterConfigError, FilterFactory, Flow, MetricKind, MetricSample, Phase,
    RequestContext, ResponseContext,
};

pub const NAME: &str = "transformation";

/// One `set` or `add` entry, compiled.
#[derive(Debug)]
pub struct HeaderOp {
    pub name: HeaderName,
    pub expr: Expression,
    drops: DropCounters,
}

/// What became of one header operation on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Set(HeaderName, http::HeaderValue),
    Added(HeaderName, http::HeaderValue),
    Removed(HeaderName),
    Dropped(HeaderName, Dropped),
}

#[derive(Debug)]
pub struct Transformation {
    set: Vec<HeaderOp>,
    add: Vec<HeaderOp>,
    remove: Vec<HeaderName>,
    uses: Uses,
}

fn header_name(name: &str, at: &str) -> Result<HeaderName, FilterConfigError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| FilterConfigError::new(at, format!("`{name}` is not a valid header name")))
}

impl Transformation {
    /// Compiles one section; `at` is its path (`request` or `response`) for errors.
    pub fn compile(ops: &HeaderOps, at: &str) -> Result<Self, FilterConfigError> {
        let compile_ops = |list: &[HeaderExpr], kind: &str| {
            list.iter()
                .enumerate()
                .map(|(i, op)| {
                    Ok(HeaderOp {
                        name: header_name(&op.name, &format!("{at}.{kind}[{i}].name"))?,
                        expr: Expression::compile(&op.value, &format!("{at}.{kind}[{i}].value"))?,
                        drops: DropCounters::default(),
                    })
                })
                .collect::<Result<Vec<_>, FilterConfigError>>()
        };
        let set = compile_ops(&ops.set, "set")?;
        let add = compile_ops(&ops.add, "add")?;
        let remove = ops
            .remove
            .iter()
            .enumerate()
            .map(|(i, n)| header_name(n, &format!("{at}.remove[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        if set.is_empty() && add.is_empty() && remove.is_empty() {
            return Err(FilterConfigError::new(
                at,
                "nothing to do: give set, add or remove",
            ));
        }
        let uses = set
            .iter()
            .chain(&add)
            .fold(Uses::default(), |u, op| u.union(op.expr.uses()));
        Ok(Transformation {
            set,
            add,
            remove,
            uses,
        })
    }

    /// Applies the operations to `headers`, evaluating against `vars`; reports each outcome.
    pub fn apply(&self, headers: &mut impl HeaderTarget, vars: &Variables) -> Vec<Applied> {
        let mut applied = Vec::with_capacity(self.remove.len() + self.set.len() + self.add.len());
        for name in &self.remove {
            headers.remove(name);
            applied.push(Applied::Removed(name.clone()));
        }
        for op in &self.set {
            match to_header_value(op.expr.evaluate(vars)) {
                Ok(value) => {
                    headers.set(&op.name, value.clone());
                    applied.push(Applied::Set(op.name.clone(), value));
                }
                Err(reason) => {
                    headers.remove(&op.name);
                    op.drops.record(reason);
                    applied.push(Applied::Dropped(op.name.clone(), reason));
                }
            }
        }
        for op in &self.add {
            match to_header_value(op.expr.evaluate(vars)) {
                Ok(value) => {
                    headers.append(&op.name, value.clone());
                    applied.push(Applied::Added(op.name.clone(), value));
                }
                Err(reason) => {
                    op.drops.record(reason);
                    applied.push(Applied::Dropped(op.name.clone(), reason));
                }
            }
        }
        applied
    }

    /// The variables this transformation reads.
    pub fn uses(&self) -> Uses {
        self.uses
    }

    /// Every header drop so far, by header and reason (zero rows left out).
    pub fn drops(&self) -> Vec<DropCount> {
        self.set
            .iter()
            .chain(&self.add)
            .flat_map(|op| {
                Dropped::ALL.into_iter().filter_map(move |reason| {
                    let count = op.drops.get(reason);
                    (count > 0).then(|| DropCount {
                        header: op.name.to_string(),
                        reason,
                        count,
                    })
                })
            })
            .collect()
    }
}

/// The filter: a request section (request phases) or a response section (response phase).
#[derive(Debug)]
pub struct TransformationFilter {
    ops: Transformation,
}

impl TransformationFilter {
    pub fn transformation(&self) -> &Transformation {
        &self.ops
    }
}

#[async_trait]
impl Filter for TransformationFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn on_request(&self, ctx: &mut RequestContext<'_>) -> Flow {
        let vars = Variables::bind(
            self.ops.uses,
            ctx.jwt_shared(),
            ctx.request(),
            ctx.client_ip(),
        );
        self.ops.apply(ctx.request_mut(), &vars);
        Flow::Continue
    }

    async fn on_response(&self, ctx: &mut ResponseContext<'_>) {
        let vars = Variables::bind(
            self.ops.uses,
            ctx.jwt_shared(),
            ctx.request(),
            ctx.client_ip(),
        );
        self.ops.apply(ctx.response_mut(), &vars);
    }

    fn explain(&self, ctx: &RequestContext<'_>) -> Vec<String> {
        let vars = Variables::bind(
            self.ops.uses,
            ctx.jwt_shared(),
            ctx.request(),
            ctx.client_ip(),
        );
        let mut lines: Vec<String> = self
            .ops
            .remove
            .iter()
            .map(|n| format!("remove {n}"))
            .collect();
        for (kind, ops) in [("set", &self.ops.set), ("add", &self.ops.add)] {
            for op in ops {
                let source = op.expr.source();
                lines.push(match to_header_value(op.expr.evaluate(&vars)) {
                    Ok(v) => format!(
                        "{kind} {} = {:?} (from `{source}`)",
                        op.name,
                        String::from_utf8_lossy(v.as_bytes())
                    ),
                    Err(reason) if kind == "set" => format!(
                        "remove {}: `{source}` gave no usable value ({})",
                        op.name,
                        reason.code()
                    ),
                    Err(reason) => format!(
                        "add nothing to {}: `{source}` gave no usable value ({})",
                        op.name,
                        reason.code()
                    ),
                });
            }
        }
        lines
    }

    fn metrics(&self) -> Vec<MetricSample> {
        self.ops
            .drops()
            .into_iter()
            .map(|d| MetricSample {
                name: "transformation_header_drops_total",
                help: "Headers removed (set) or not added (add) because the expression gave no valid value.",
                kind: MetricKind::Counter,
                labels: vec![("header", d.header), ("reason", d.reason.code().to_owned())],
                value: d.count,
            })
            .collect()
    }

    fn describe(&self) -> Vec<String> {
        let t = &self.ops;
        let mut lines = Vec::new();
        lines.extend(
            t.remove
                .iter()
                .map(|n| format!("transformation: remove {n}")),
        );
        lines.extend(
            t.set
                .iter()
                .map(|op| format!("transformation: set {} = {}", op.name, op.expr.source())),
        );
        lines.extend(
            t.add
                .iter()
                .map(|op| format!("transformation: add {} = {}", op.name, op.expr.source())),
        );
        lines
    }
}

/// Where header operations land. Pingora's request and response headers keep a second map of
/// original name cases, so they are changed through their own methods, which keep both maps in
/// step.
pub trait HeaderTarget {
    fn set(&mut self, name: &HeaderName, value: http::HeaderValue);
    fn append(&mut self, name: &HeaderName, value: http::HeaderValue);
    fn remove(&mut self, name: &HeaderName);
}

impl HeaderTarget for http::HeaderMap {
    fn set(&mut self, name: &HeaderName, value: http::HeaderValue) {
        self.insert(name.clone(), value);
    }
    fn append(&mut self, name: &HeaderName, value: http::HeaderValue) {
        http::HeaderMap::append(self, name.clone(), value);
    }
    fn remove(&mut self, name: &HeaderName) {
        http::HeaderMap::remove(self, name);
    }
}

// Pingora's request and response headers share these methods but no trait. `insert_header`
// and `append_header` only fail on names or values that do not convert; these are already a
// `HeaderName` and a `HeaderValue`.
macro_rules! pingora_header_target {
    ($ty:ty) => {
        impl HeaderTarget for $ty {
            fn set(&mut self, name: &HeaderName, value: http::HeaderValue) {
                let _ = self.insert_header(name.clone(), value);
            }
            fn append(&mut self, name: &HeaderName, value: http::HeaderValue) {
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

pub struct TransformationFactory;

impl FilterFactory for TransformationFactory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn phases(&self) -> &'static [Phase] {
        &[Phase::PreRouting, Phase::PostRouting, Phase::Response]
    }

    fn build(
        &self,
        config: &serde_yaml::Value,
        ctx: &BuildContext<'_>,
    ) -> Result<Arc<dyn Filter>, FilterConfigError> {
        let config: TransformationConfig = FilterConfigError::parse(config)?;
        let on_response = ctx.phase() == Some(Phase::Response);
        let (section, name, other) = if on_response {
            (&config.response, "response", &config.request)
        } else {
            (&config.request, "request", &config.response)
        };
        if other.is_some() {
            let (wrong, phase) = if on_response {
                ("request", "the response phase")
            } else {
                ("response", "a request phase")
            };
            return Err(FilterConfigError::new(
                wrong,
                format!("a `{wrong}` section does nothing in {phase}: put it in a transformation of the {} phase", if on_response { "pre_routing or post_routing" } else { "response" }),
            ));
        }
        let section = section.as_ref().ok_or_else(|| {
            FilterConfigError::new("", format!("a `{name}` section is needed here"))
        })?;
        Ok(Arc::new(TransformationFilter {
            ops: Transformation::compile(section, name)?,
        }))
    }
}
