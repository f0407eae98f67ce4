//! CEL expressions, shared by the filters that take them (`transformation`'s header values,
//! `rate_limit`'s keys): compiled once at config load, evaluated per request against the
//! variables `jwt`, `request` and `source`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, Program, Value};

use crate::{ClientCertificate, FilterConfigError, RequestHeader, VerifiedJwt};

/// Longer expressions are refused at load: header values are short, and the parser's work
/// grows with the text.
pub(crate) const MAX_EXPRESSION_LEN: usize = 4096;

/// The standard library, built once: building it costs tens of microseconds, too much per
/// request.
fn stdlib() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib())).clone()
}

/// Which variables a set of expressions reads, so a request binds only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Uses {
    pub jwt: bool,
    pub request: bool,
    pub source: bool,
}

impl Uses {
    pub(crate) fn union(self, other: Uses) -> Uses {
        Uses {
            jwt: self.jwt || other.jwt,
            request: self.request || other.request,
            source: self.source || other.source,
        }
    }
}

/// A compiled expression and the text it came from.
pub(crate) struct Expression {
    source: String,
    program: Program,
    uses: Uses,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl Expression {
    /// Compiles `source`; `at` is its path in the filter config, for errors.
    pub(crate) fn compile(source: &str, at: &str) -> Result<Self, FilterConfigError> {
        if source.trim().is_empty() {
            return Err(FilterConfigError::new(at, "the expression is empty"));
        }
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(FilterConfigError::new(
                at,
                format!("the expression is longer than {MAX_EXPRESSION_LEN} bytes"),
            ));
        }
        let program = Program::compile(source)
            .map_err(|e| FilterConfigError::new(at, format!("invalid CEL expression: {e}")))?;
        let references = program.references();
        let uses = Uses {
            jwt: references.has_variable("jwt"),
            request: references.has_variable("request"),
            source: references.has_variable("source"),
        };
        Ok(Expression {
            source: source.to_owned(),
            program,
            uses,
        })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn uses(&self) -> Uses {
        self.uses
    }

    pub(crate) fn evaluate(&self, vars: &Variables) -> Result<Value, cel::ExecutionError> {
        // A context is an `Arc` clone and empty maps: cheap enough per evaluation, and it lets
        // the resolver borrow `vars` for just this call.
        let mut context = Context::with_env(stdlib());
        context.set_variable_resolver(vars);
        self.program.execute(&context)
    }
}

/// The variables of one evaluation, bound once per request and phase for all its expressions.
///
/// They are handed to CEL through a resolver, so nothing is converted per evaluation: `jwt`
/// is the token's claims in the CEL form the token keeps ([`VerifiedJwt::cel_claims`],
/// converted once per verified token, so a cached token pays nothing here), and `request` and
/// `source` are converted once, here, only when an expression reads them.
pub(crate) struct Variables {
    jwt: Option<Arc<VerifiedJwt>>,
    request: Option<Box<dyn Val>>,
    source: Option<Box<dyn Val>>,
}

impl Variables {
    /// Binds what `uses` asks for. `jwt` stays unbound without a verified token, so reading it
    /// is an error, and the header it would have fed is removed.
    pub(crate) fn bind(
        uses: Uses,
        jwt: Option<Arc<VerifiedJwt>>,
        request: &RequestHeader,
        client_ip: Option<IpAddr>,
        certificate: Option<&ClientCertificate>,
    ) -> Self {
        let as_val = |value: Value| Box::<dyn Val>::try_from(value).ok();
        Variables {
            jwt: jwt.filter(|_| uses.jwt),
            request: uses
                .request
                .then(|| request_value(request))
                .and_then(as_val),
            source: uses
                .source
                .then(|| {
                    let mut source: HashMap<String, Value> = HashMap::new();
                    if let Some(ip) = client_ip {
                        source.insert("address".into(), Value::from(ip.to_string()));
                    }
                    if let Some(cert) = certificate {
                        source.insert("certificate".into(), certificate_value(cert));
                    }
                    Value::from(source)
                })
                .and_then(as_val),
        }
    }
}

impl VariableResolver for Variables {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let val: &'b dyn Val = match variable {
            "jwt" => self.jwt.as_deref()?.cel_claims()?,
            "request" => self.request.as_deref()?,
            "source" => self.source.as_deref()?,
            _ => return None,
        };
        Some(CowVal::Borrowed(val))
    }
}

/// `source.certificate`: `subject` (RFC 4514), `commonName` (when the subject has one),
/// `dnsNames` (a list) and `fingerprint` (SHA-256, hex).
fn certificate_value(cert: &ClientCertificate) -> Value {
    let mut map: HashMap<String, Value> = HashMap::new();
    map.insert("subject".into(), Value::from(cert.subject.clone()));
    if let Some(cn) = &cert.common_name {
        map.insert("commonName".into(), Value::from(cn.clone()));
    }
    map.insert(
        "dnsNames".into(),
        Value::List(Arc::new(
            cert.dns_names.iter().cloned().map(Value::from).collect(),
        )),
    );
    map.insert("fingerprint".into(), Value::from(cert.fingerprint.clone()));
    Value::from(map)
}

/// `request`: `method`, `path`, `host`, `headers` (lower-case names; repeated headers joined
/// with `, `) and `query` (URL-decoded, first occurrence of each name).
fn request_value(req: &RequestHeader) -> Value {
    let headers: HashMap<String, String> =
        crate::headers::folded(&req.headers).into_iter().collect();
    let mut query: HashMap<String, String> = HashMap::new();
    for (k, v) in form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes()) {
        query
            .entry(k.into_owned())
            .or_insert_with(|| v.into_owned());
    }
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.host())
        .unwrap_or("")
        .to_owned();
    let mut map: HashMap<String, Value> = HashMap::new();
    map.insert("method".into(), Value::from(req.method.as_str().to_owned()));
    map.insert("path".into(), Value::from(req.uri.path().to_owned()));
    map.insert("host".into(), Value::from(host));
    map.insert("headers".into(), Value::from(headers));
    map.insert("query".into(), Value::from(query));
    Value::from(map)
}
