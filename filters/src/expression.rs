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
    /// Set when the expression is a plain field path that can be read without the
    /// interpreter (see [`FieldPath`]); `program` is still compiled, and is the reference.
    path: Option<FieldPath>,
    uses: Uses,
}

/// An expression that only selects a field, read directly: `jwt.version`,
/// `jwt.userMetadata.version`, `jwt["tenant-id"]`, `source.address`. The most common
/// expressions are these, and the interpreter costs several times the lookup. The result is
/// what CEL gives for the same expression: a missing field, or no token, is an error; the
/// field's value is converted as CEL converts the claims (`cel::to_value`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum FieldPath {
    /// Keys into the token's claims, outermost first.
    Jwt(Vec<String>),
    /// `source.address`: the client's IP as text.
    SourceAddress,
}

impl FieldPath {
    /// `source` as a field path, if it is one: a variable then `.name` or `["name"]`
    /// selections, nothing else (no spaces, calls, indexes by number or escapes).
    fn parse(source: &str) -> Option<FieldPath> {
        let text = source.trim();
        let (root, mut rest) = split_ident(text)?;
        let mut keys = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let (name, tail) = split_ident(after)?;
                keys.push(name.to_owned());
                rest = tail;
            } else if let Some(after) = rest.strip_prefix("[\"").or_else(|| rest.strip_prefix("['"))
            {
                let quote = if rest.starts_with("[\"") { '"' } else { '\'' };
                let end = after.find(quote)?;
                let name = &after[..end];
                if name.contains('\\') || name.contains(['"', '\'']) {
                    return None;
                }
                keys.push(name.to_owned());
                rest = after[end + 1..].strip_prefix(']')?;
            } else {
                return None;
            }
        }
        match (root, keys.as_slice()) {
            ("jwt", [_, ..]) => Some(FieldPath::Jwt(keys)),
            ("source", [key]) if key == "address" => Some(FieldPath::SourceAddress),
            _ => None,
        }
    }

    fn read(&self, vars: &Variables) -> Result<Value, cel::ExecutionError> {
        match self {
            FieldPath::Jwt(keys) => {
                let jwt = vars.jwt.as_ref().ok_or_else(|| {
                    cel::ExecutionError::UndeclaredReference(Arc::new("jwt".to_owned()))
                })?;
                let mut value = &jwt.claims;
                for key in keys {
                    value = value
                        .as_object()
                        .and_then(|fields| fields.get(key))
                        .ok_or_else(|| cel::ExecutionError::NoSuchKey(Arc::new(key.clone())))?;
                }
                cel::to_value(value)
                    .map_err(|e| cel::ExecutionError::function_error("jwt", e.to_string()))
            }
            FieldPath::SourceAddress => vars
                .client_ip
                .map(|ip| Value::from(ip.to_string()))
                .ok_or_else(|| cel::ExecutionError::NoSuchKey(Arc::new("address".to_owned()))),
        }
    }
}

/// An identifier at the start of `text`, and what follows it.
fn split_ident(text: &str) -> Option<(&str, &str)> {
    let end = text
        .char_indices()
        .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(text.len(), |(i, _)| i);
    (end > 0).then(|| text.split_at(end))
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
        let path = FieldPath::parse(source);
        let uses = Uses {
            jwt: references.has_variable("jwt"),
            request: references.has_variable("request"),
            // A direct `source.address` reads the client's IP, not the CEL map.
            source: references.has_variable("source") && path.is_none(),
        };
        Ok(Expression {
            source: source.to_owned(),
            program,
            path,
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
        match &self.path {
            Some(path) => path.read(vars),
            None => self.interpret(vars),
        }
    }

    /// Whether the expression is read as a field path, without the interpreter.
    #[cfg(test)]
    pub(crate) fn is_field_path(&self) -> bool {
        self.path.is_some()
    }

    /// Evaluates with the interpreter, whatever the expression: the reference semantics.
    pub(crate) fn interpret(&self, vars: &Variables) -> Result<Value, cel::ExecutionError> {
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
    /// For a direct `source.address`.
    client_ip: Option<IpAddr>,
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
            client_ip,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "version": "v2",
            "userMetadata": { "version": "v1", "plan": { "tier": "gold" } },
            "tenant-id": "acme",
            "n": 42,
            "neg": -3,
            "big": u64::MAX,
            "f": 1.5,
            "b": true,
            "nul": null,
            "list": [1, 2],
            "obj": { "a": 1 },
            "text": "a\u{7f}b",
        })
    }

    #[test]
    fn field_paths_are_recognised_and_nothing_else() {
        for path in [
            "jwt.version",
            " jwt.userMetadata.version ",
            "jwt[\"tenant-id\"]",
            "jwt['tenant-id']",
            "jwt.userMetadata[\"plan\"].tier",
            "source.address",
        ] {
            let e = Expression::compile(path, "x").expect("compiles");
            assert!(e.is_field_path(), "{path}");
        }
        for expr in [
            "has(jwt.sub)",
            "jwt.version + 'x'",
            "jwt.list[0]",
            "jwt",
            "source",
            "source.certificate.subject",
            "request.path",
            "jwt.version == 'v2'",
            "jwt[\"a\\\"b\"]",
            "size(jwt.version)",
        ] {
            let e = Expression::compile(expr, "x").expect("compiles");
            assert!(!e.is_field_path(), "{expr}");
        }
    }

    /// The direct read and the interpreter give the same result on the same inputs: the
    /// same value, or both an error.
    #[test]
    fn a_field_path_reads_what_the_interpreter_gives() {
        let request = RequestHeader::build("GET", b"/", None).expect("request");
        let token =
            |claims: serde_json::Value| Some(Arc::new(VerifiedJwt::new(Arc::from("p"), claims)));
        let inputs = [
            (token(claims()), Some("10.1.2.3".parse().expect("ip"))),
            (token(serde_json::json!({})), None),
            (
                token(serde_json::json!({ "version": { "x": 1 } })),
                Some("::1".parse().expect("ip")),
            ),
            (None, Some("10.1.2.3".parse().expect("ip"))),
        ];
        let paths = [
            "jwt.version",
            "jwt.userMetadata.version",
            "jwt.userMetadata[\"plan\"].tier",
            "jwt['tenant-id']",
            "jwt.n",
            "jwt.neg",
            "jwt.big",
            "jwt.f",
            "jwt.b",
            "jwt.nul",
            "jwt.list",
            "jwt.obj",
            "jwt.text",
            "jwt.missing",
            "jwt.version.deeper",
            "jwt.n.deeper",
            "source.address",
        ];
        for source in paths {
            let e = Expression::compile(source, "x").expect("compiles");
            assert!(e.is_field_path(), "{source}");
            for (jwt, ip) in &inputs {
                let vars = Variables::bind(
                    Uses {
                        jwt: true,
                        request: false,
                        source: true,
                    },
                    jwt.clone(),
                    &request,
                    *ip,
                    None,
                );
                match (e.evaluate(&vars), e.interpret(&vars)) {
                    (Ok(direct), Ok(interpreted)) => {
                        assert_eq!(direct, interpreted, "{source} on {jwt:?} {ip:?}")
                    }
                    (Err(_), Err(_)) => {}
                    (direct, interpreted) => panic!(
                        "{source} on {jwt:?} {ip:?}: direct {direct:?}, interpreter {interpreted:?}"
                    ),
                }
            }
        }
    }
}
