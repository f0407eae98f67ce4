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
//! - `../expression.rs` (shared with `rate_limit`): compiling expressions and binding their
//!   variables.
//! - `header_value.rs`: the result rules above.
//! - `stats.rs`: the drop counters.
//! - `tests.rs`: the rules, case by case.

mod config;
mod header_value;
mod stats;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderName;

use crate::expression::{Expression, Uses, Variables};
use config::{HeaderExpr, HeaderOps, TransformationConfig};
use header_value::{to_header_value, Dropped};
use stats::{DropCount, DropCounters};

use crate::headers::HeaderTarget;
use crate::{
    BuildContext, Filter, FilterConfigError, FilterFactory, Flow, MetricKind, MetricSample, Phase,
    RequestContext, ResponseContext,
};

pub const NAME: &str = "transformation";

/// Whether an operation replaces the header or appends to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Set,
    Add,
}

impl OpKind {
    fn as_str(self) -> &'static str {
        match self {
            OpKind::Set => "set",
            OpKind::Add => "add",
        }
    }
}

/// Where an operation's value comes from.
#[derive(Debug)]
enum ValueSource {
    /// A CEL expression, evaluated per request.
    Cel(Expression),
    /// A fixed value, checked at load.
    Text(http::HeaderValue),
}

impl ValueSource {
    fn compile(op: &HeaderExpr, at: &str) -> Result<Self, FilterConfigError> {
        match (&op.value, &op.text) {
            (Some(expr), None) => Ok(ValueSource::Cel(Expression::compile(
                expr,
                &format!("{at}.value"),
            )?)),
            (None, Some(text)) => {
                let value = to_header_value(Ok(cel::Value::String(Arc::new(text.clone()))))
                    .map_err(|_| {
                        FilterConfigError::new(
                            format!("{at}.text"),
                            "not a header value: visible ASCII, spaces and tabs, at most 8 KiB",
                        )
                    })?;
                Ok(ValueSource::Text(value))
            }
            _ => Err(FilterConfigError::new(
                at,
                "give `value` (a CEL expression) or `text` (a fixed value), one of them",
            )),
        }
    }

    fn value(&self, vars: &Variables) -> Result<http::HeaderValue, Dropped> {
        match self {
            ValueSource::Cel(expr) => to_header_value(expr.evaluate(vars)),
            ValueSource::Text(value) => Ok(value.clone()),
        }
    }

    fn uses(&self) -> Uses {
        match self {
            ValueSource::Cel(expr) => expr.uses(),
            ValueSource::Text(_) => Uses::default(),
        }
    }
}

/// The expression's text, or the fixed value quoted.
impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueSource::Cel(expr) => f.write_str(expr.source()),
            ValueSource::Text(value) => {
                write!(f, "{:?}", String::from_utf8_lossy(value.as_bytes()))
            }
        }
    }
}

/// One `set` or `add` entry, compiled.
#[derive(Debug)]
struct HeaderOp {
    kind: OpKind,
    name: HeaderName,
    value: ValueSource,
    drops: DropCounters,
}

impl HeaderOp {
    /// What the operation did with the result of its expression, as `explain` says it.
    fn note(&self, result: &Result<http::HeaderValue, Dropped>) -> String {
        let (kind, name, source) = (self.kind.as_str(), &self.name, &self.value);
        match (result, self.kind) {
            (Ok(v), _) => format!(
                "{kind} {name} = {:?} (from `{source}`)",
                String::from_utf8_lossy(v.as_bytes())
            ),
            (Err(reason), OpKind::Set) => format!(
                "remove {name}: `{source}` gave no usable value ({})",
                reason.code()
            ),
            (Err(reason), OpKind::Add) => format!(
                "add nothing to {name}: `{source}` gave no usable value ({})",
                reason.code()
            ),
        }
    }
}

/// One section (`request` or `response`) of a transformation, compiled.
#[derive(Debug)]
struct Transformation {
    remove: Vec<HeaderName>,
    /// Every `set`, then every `add`, in config order.
    ops: Vec<HeaderOp>,
    uses: Uses,
}

fn header_name(name: &str, at: &str) -> Result<HeaderName, FilterConfigError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| FilterConfigError::new(at, format!("`{name}` is not a valid header name")))
}

impl Transformation {
    /// Compiles one section; `at` is its path (`request` or `response`) for errors.
    fn compile(config: &HeaderOps, at: &str) -> Result<Self, FilterConfigError> {
        let remove = config
            .remove
            .iter()
            .enumerate()
            .map(|(i, n)| header_name(n, &format!("{at}.remove[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ops = Vec::with_capacity(config.set.len() + config.add.len());
        for (kind, list) in [(OpKind::Set, &config.set), (OpKind::Add, &config.add)] {
            for (i, op) in list.iter().enumerate() {
                let at = format!("{at}.{}[{i}]", kind.as_str());
                ops.push(HeaderOp {
                    kind,
                    name: header_name(&op.name, &format!("{at}.name"))?,
                    value: ValueSource::compile(op, &at)?,
                    drops: DropCounters::default(),
                });
            }
        }
        if ops.is_empty() && remove.is_empty() {
            return Err(FilterConfigError::new(
                at,
                "nothing to do: give set, add or remove",
            ));
        }
        let uses = ops
            .iter()
            .fold(Uses::default(), |u, op| u.union(op.value.uses()));
        Ok(Transformation { remove, ops, uses })
    }

    /// Applies the operations to `headers`, evaluating against `vars`: `remove`, then `set`,
    /// then `add`. With `notes`, says what each one did.
    fn apply(
        &self,
        headers: &mut impl HeaderTarget,
        vars: &Variables,
        mut notes: Option<&mut Vec<String>>,
    ) {
        for name in &self.remove {
            headers.remove(name);
            if let Some(notes) = notes.as_deref_mut() {
                notes.push(format!("remove {name}"));
            }
        }
        for op in &self.ops {
            let result = op.value.value(vars);
            if let Some(notes) = notes.as_deref_mut() {
                notes.push(op.note(&result));
            }
            match (result, op.kind) {
                (Ok(value), OpKind::Set) => headers.set(&op.name, value),
                (Ok(value), OpKind::Add) => headers.append(&op.name, value),
                (Err(reason), kind) => {
                    op.drops.record(reason);
                    // A header that cannot be given its value is not left as the client sent it.
                    if kind == OpKind::Set {
                        headers.remove(&op.name);
                    }
                }
            }
        }
    }

    /// The variables this transformation reads.
    fn uses(&self) -> Uses {
        self.uses
    }

    /// Every header drop so far, by header and reason (zero rows left out).
    fn drops(&self) -> Vec<DropCount> {
        self.ops
            .iter()
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
struct TransformationFilter {
    ops: Transformation,
}

#[async_trait]
impl Filter for TransformationFilter {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn on_request(&self, ctx: &mut RequestContext<'_>) -> Flow {
        let vars = Variables::bind(
            self.ops.uses(),
            ctx.jwt_shared(),
            ctx.request(),
            ctx.client_ip(),
            ctx.client_certificate(),
        );
        let mut notes = ctx.is_traced().then(Vec::new);
        self.ops.apply(ctx.request_mut(), &vars, notes.as_mut());
        for line in notes.into_iter().flatten() {
            ctx.note(|| line);
        }
        Flow::Continue
    }

    async fn on_response(&self, ctx: &mut ResponseContext<'_>) {
        let vars = Variables::bind(
            self.ops.uses(),
            ctx.jwt_shared(),
            ctx.request(),
            ctx.client_ip(),
            ctx.client_certificate(),
        );
        self.ops.apply(ctx.response_mut(), &vars, None);
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
        let removes = t
            .remove
            .iter()
            .map(|n| format!("transformation: remove {n}"));
        let ops = t.ops.iter().map(|op| {
            format!(
                "transformation: {} {} = {}",
                op.kind.as_str(),
                op.name,
                op.value
            )
        });
        removes.chain(ops).collect()
    }
}

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
