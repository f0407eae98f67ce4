//! The Gateway API kinds this front-end reads (`gateway.networking.k8s.io/v1`): `Gateway` and
//! `HTTPRoute`, with every field the specification defines, so that a manifest written for a
//! cluster loads as it is. A field the specification defines but Switchyard does not
//! implement is read and then reported (the route or listener is not accepted, reason
//! `UnsupportedValue`); a field it does not define is an error at its line.

use serde::Deserialize;

/// Any value: for fields that are read only to be reported as unsupported.
pub type Unsupported = Option<serde_yaml::Value>;

/// The names of the `Unsupported` fields that are present: `present!(self, a => "a", ...)`.
macro_rules! present {
    ($self:ident, $($field:ident => $name:literal),* $(,)?) => {
        [$($self.$field.as_ref().map(|_| $name)),*]
            .into_iter()
            .flatten()
            .collect::<Vec<&'static str>>()
    };
}
pub(super) use present;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    pub gateway_class_name: String,
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub addresses: Vec<GatewayAddress>,
    /// Labels and parameters for infrastructure a controller would provision; there is none
    /// to provision here, so it is read and left alone.
    #[serde(default, rename = "infrastructure")]
    pub _infrastructure: Unsupported,
    #[serde(default)]
    pub backend_tls: Unsupported,
    #[serde(default)]
    pub allowed_listeners: Unsupported,
    #[serde(default)]
    pub tls: Unsupported,
    #[serde(default)]
    pub default_scope: Unsupported,
}

impl GatewaySpec {
    /// Fields set that this front-end does not implement; the Gateway is then not served.
    /// (`infrastructure` is not among them: it describes infrastructure a controller would
    /// provision, and there is none to provision here.)
    pub fn unsupported(&self) -> Vec<&'static str> {
        present!(self,
            backend_tls => "backendTLS",
            allowed_listeners => "allowedListeners",
            tls => "tls",
            default_scope => "defaultScope",
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayAddress {
    /// `IPAddress` (default), `Hostname`, or an implementation-specific type.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Absent: the implementation picks (optional since v1.3).
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    pub port: u16,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`, or a domain-prefixed protocol.
    pub protocol: String,
    #[serde(default)]
    pub tls: Option<ListenerTlsConfig>,
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// How an `HTTPS` listener terminates TLS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// `Terminate` (default) or `Passthrough`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The certificates, by reference: the first is served (several are for key types a
    /// client may choose among, which one certificate per host name here does not do).
    #[serde(default)]
    pub certificate_refs: Vec<SecretObjectReference>,
    /// Implementation-specific settings; none are defined here.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    /// Client certificate validation (experimental).
    #[serde(default)]
    pub frontend_validation: Unsupported,
}

/// A reference to a Secret (by default) holding a certificate and key.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretObjectReference {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRoutes {
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    #[serde(default)]
    pub kinds: Vec<RouteGroupKind>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteNamespaces {
    /// `All`, `Same` (default) or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteGroupKind {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
}

/// A Kubernetes label selector: every `matchLabels` pair and every expression must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector; an unknown operator matches nothing.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default = "default_rules")]
    pub rules: Vec<HttpRouteRule>,
    #[serde(default)]
    pub use_default_gateways: Unsupported,
}

impl HttpRouteSpec {
    /// What makes the route unusable here: route-level fields this front-end does not
    /// implement, and values outside the specification's enums (which it says must leave the
    /// route not accepted, reason `UnsupportedValue`). The route is then not served.
    pub fn unsupported(&self) -> Vec<String> {
        let mut found: Vec<String> = present!(self, use_default_gateways => "useDefaultGateways")
            .into_iter()
            .map(str::to_owned)
            .collect();
        for (r, rule) in self.rules.iter().enumerate() {
            for (m, matched) in rule.matches.iter().flatten().enumerate() {
                let at = format!("rules[{r}].matches[{m}]");
                let path_kind = matched.path.as_ref().and_then(|p| p.kind.as_deref());
                if let Some(kind) = path_kind.filter(|k| !PATH_MATCH_TYPES.contains(k)) {
                    found.push(format!("{at}.path.type `{kind}`"));
                }
                for (list, what) in [
                    (&matched.headers, "headers"),
                    (&matched.query_params, "queryParams"),
                ] {
                    for (i, v) in list.iter().enumerate() {
                        if let Some(kind) =
                            v.kind.as_deref().filter(|k| !VALUE_MATCH_TYPES.contains(k))
                        {
                            found.push(format!("{at}.{what}[{i}].type `{kind}`"));
                        }
                    }
                }
                if let Some(method) = matched.method.as_deref().filter(|m| !METHODS.contains(m)) {
                    found.push(format!("{at}.method `{method}`"));
                }
            }
            let filters =
                rule.filters
                    .iter()
                    .map(|f| (format!("rules[{r}].filters"), f))
                    .chain(
                        rule.backend_refs
                            .iter()
                            .enumerate()
                            .flat_map(|(b, backend)| {
                                backend.filters.iter().map(move |f| {
                                    (format!("rules[{r}].backendRefs[{b}].filters"), f)
                                })
                            }),
                    );
            for (at, filter) in filters {
                found.extend(
                    filter
                        .invalid_values(rule)
                        .into_iter()
                        .map(|v| format!("{at}: {v}")),
                );
            }
        }
        found
    }
}

impl HttpRouteSpec {
    /// The first rule the API server's schema enforces that the route breaks, as the field
    /// and why: a cluster would refuse the object, so the load does too.
    pub fn schema_error(&self) -> Option<(String, String)> {
        for (r, rule) in self.rules.iter().enumerate() {
            let at = format!("spec.rules[{r}]");
            if let Some(e) = filter_list_error(&rule.filters, &format!("{at}.filters")) {
                return Some(e);
            }
            if has(&rule.filters, "RequestRedirect") && !rule.backend_refs.is_empty() {
                return Some((
                    format!("{at}.backendRefs"),
                    "a rule with a RequestRedirect filter sends to no backend".into(),
                ));
            }
            for (b, backend) in rule.backend_refs.iter().enumerate() {
                let at = format!("{at}.backendRefs[{b}].filters");
                if let Some(e) = filter_list_error(&backend.filters, &at) {
                    return Some(e);
                }
            }
        }
        None
    }
}

/// Whether `filters` holds one of type `kind`.
fn has(filters: &[HttpRouteFilter], kind: &str) -> bool {
    filters.iter().any(|f| f.kind == kind)
}

/// The schema's rules for one list of filters: each filter's configuration is the one its
/// type names; the served kinds and CORS appear at most once; a redirect and a rewrite
/// exclude each other; a header modifier names each header once per list.
fn filter_list_error(filters: &[HttpRouteFilter], at: &str) -> Option<(String, String)> {
    for (f, filter) in filters.iter().enumerate() {
        let at = format!("{at}[{f}]");
        let given = filter.given();
        let member = FILTER_MEMBERS
            .iter()
            .find(|(kind, _)| *kind == filter.kind)
            .map(|(_, member)| *member);
        if let Some(member) = member {
            if !given.contains(&member) {
                return Some((at, format!("a {} filter needs `{member}`", filter.kind)));
            }
        }
        if let Some(other) = given.iter().find(|g| Some(**g) != member) {
            return Some((
                format!("{at}.{other}"),
                format!("`{other}` does not belong in a {} filter", filter.kind),
            ));
        }
        let repeatable = matches!(filter.kind.as_str(), "RequestMirror" | "ExtensionRef");
        if !repeatable && filters[..f].iter().any(|e| e.kind == filter.kind) {
            return Some((at, format!("a {} filter appears twice", filter.kind)));
        }
        for modifier in [
            &filter.request_header_modifier,
            &filter.response_header_modifier,
        ]
        .into_iter()
        .flatten()
        {
            if let Some((list, i, _)) = modifier.repeated_name(false) {
                let member = member.unwrap_or_default();
                return Some((
                    format!("{at}.{member}.{list}[{i}]"),
                    "a header named twice in one list".into(),
                ));
            }
        }
    }
    if has(filters, "RequestRedirect") && has(filters, "URLRewrite") {
        return Some((
            at.to_owned(),
            "RequestRedirect and URLRewrite cannot be used together".into(),
        ));
    }
    None
}

/// Each filter type the specification defines, with the field that configures it.
const FILTER_MEMBERS: [(&str, &str); 8] = [
    ("RequestHeaderModifier", "requestHeaderModifier"),
    ("ResponseHeaderModifier", "responseHeaderModifier"),
    ("RequestMirror", "requestMirror"),
    ("RequestRedirect", "requestRedirect"),
    ("URLRewrite", "urlRewrite"),
    ("CORS", "cors"),
    ("ExternalAuth", "externalAuth"),
    ("ExtensionRef", "extensionRef"),
];

impl HeaderModifier {
    /// The first entry that names a header an earlier one does (names without case): in
    /// the same list only (which the schema refuses, `set` and `add` being maps by name), or
    /// in any of `set`, `add` and `remove` (which the specification calls invalid). As the
    /// list, the index and the list of the earlier entry.
    fn repeated_name(&self, across: bool) -> Option<(&'static str, usize, &'static str)> {
        let mut seen: Vec<(String, &'static str)> = Vec::new();
        let names = self
            .set
            .iter()
            .enumerate()
            .map(|(i, h)| ("set", i, h.name.as_str()))
            .chain(
                self.add
                    .iter()
                    .enumerate()
                    .map(|(i, h)| ("add", i, h.name.as_str())),
            )
            .chain(
                self.remove
                    .iter()
                    .enumerate()
                    .map(|(i, n)| ("remove", i, n.as_str())),
            );
        for (list, i, name) in names {
            let lower = name.to_ascii_lowercase();
            if let Some((_, first)) = seen
                .iter()
                .find(|(n, l)| *n == lower && (across || *l == list))
            {
                return Some((list, i, first));
            }
            seen.push((lower, list));
        }
        None
    }

    /// Whether it changes nothing (the schema allows that).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// The values the specification defines for the open enums a match uses.
const PATH_MATCH_TYPES: [&str; 3] = ["Exact", "PathPrefix", "RegularExpression"];
const VALUE_MATCH_TYPES: [&str; 2] = ["Exact", "RegularExpression"];
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// A route without rules has one rule, matching every request and sending it nowhere.
fn default_rules() -> Vec<HttpRouteRule> {
    vec![HttpRouteRule::default()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentReference {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    #[serde(default)]
    pub name: Option<String>,
    /// Absent: one match of `PathPrefix /`.
    #[serde(default)]
    pub matches: Option<Vec<HttpRouteMatch>>,
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    #[serde(default)]
    pub timeouts: Option<HttpRouteTimeouts>,
    #[serde(default)]
    pub retry: Option<HttpRouteRetry>,
    #[serde(default)]
    pub session_persistence: Unsupported,
}

/// A rule's retries (GEP-1731, experimental): the statuses retried, how many retries, and
/// the wait before each.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRetry {
    #[serde(default)]
    pub codes: Vec<u16>,
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub backoff: Option<String>,
}

/// A rule's time bounds, as Gateway API durations (GEP-2257: `10s`, `1h30m`, `500ms`; `0s`
/// turns a bound off).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteTimeouts {
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub backend_request: Option<String>,
}

impl HttpRouteRule {
    /// Fields set in the rule (or its filters and backendRefs) that this front-end does not
    /// implement yet (filters other than the header modifiers, redirects and rewrites among
    /// them); the rule then answers 500.
    pub fn unsupported(&self) -> Vec<String> {
        let mut names: Vec<String> = present!(self,
            session_persistence => "sessionPersistence",
        )
        .into_iter()
        .map(str::to_owned)
        .collect();
        let unserved = |f: &&HttpRouteFilter| !SERVED_FILTERS.contains(&f.kind.as_str());
        names.extend(
            self.filters
                .iter()
                .filter(unserved)
                .map(|f| format!("filter {}", f.describe())),
        );
        for b in &self.backend_refs {
            names.extend(
                b.filters
                    .iter()
                    .filter(unserved)
                    .map(|f| format!("backendRef filter {}", f.describe())),
            );
        }
        names
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    #[serde(default)]
    pub path: Option<HttpPathMatch>,
    #[serde(default)]
    pub headers: Vec<HttpValueMatch>,
    #[serde(default)]
    pub query_params: Vec<HttpValueMatch>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Default `/`.
    #[serde(default)]
    pub value: Option<String>,
}

/// A header or query parameter match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpValueMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteFilter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub request_header_modifier: Option<HeaderModifier>,
    #[serde(default)]
    pub response_header_modifier: Option<HeaderModifier>,
    #[serde(default)]
    pub request_mirror: Unsupported,
    #[serde(default)]
    pub request_redirect: Option<RequestRedirect>,
    #[serde(default)]
    pub url_rewrite: Option<UrlRewrite>,
    #[serde(default)]
    pub cors: Unsupported,
    #[serde(default)]
    pub external_auth: Unsupported,
    #[serde(default)]
    pub extension_ref: Unsupported,
}

/// `RequestHeaderModifier` and `ResponseHeaderModifier`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderModifier {
    #[serde(default)]
    pub set: Vec<HttpHeader>,
    #[serde(default)]
    pub add: Vec<HttpHeader>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRedirect {
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<PathModifier>,
    #[serde(default)]
    pub port: Option<u16>,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default)]
    pub status_code: Option<u16>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlRewrite {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<PathModifier>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub replace_full_path: Option<String>,
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

/// The filter types this front-end serves.
pub const SERVED_FILTERS: [&str; 4] = [
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
];

impl HttpRouteFilter {
    /// Values of a served filter that the specification does not allow, or that do not fit
    /// `rule` (a prefix replacement needs the rule's one match to be a `PathPrefix`).
    fn invalid_values(&self, rule: &HttpRouteRule) -> Vec<String> {
        let mut found = Vec::new();
        let path = self
            .request_redirect
            .as_ref()
            .and_then(|r| r.path.as_ref())
            .or(self.url_rewrite.as_ref().and_then(|u| u.path.as_ref()));
        if let Some(path) = path {
            match path.kind.as_str() {
                "ReplaceFullPath" if path.replace_full_path.is_some() => {}
                "ReplacePrefixMatch" if path.replace_prefix_match.is_some() => {
                    let one_prefix = match rule.matches.as_deref() {
                        None | Some([]) => true,
                        Some([only]) => only.path.as_ref().is_none_or(|p| {
                            p.kind.as_deref().unwrap_or("PathPrefix") == "PathPrefix"
                        }),
                        Some(_) => false,
                    };
                    if !one_prefix {
                        found.push(
                            "ReplacePrefixMatch needs the rule's one match to be a PathPrefix"
                                .into(),
                        );
                    }
                }
                other => found.push(format!("path.type `{other}` without its value")),
            }
        }
        for (modifier, member) in [
            (&self.request_header_modifier, "requestHeaderModifier"),
            (&self.response_header_modifier, "responseHeaderModifier"),
        ] {
            if let Some((list, i, first)) = modifier.as_ref().and_then(|m| m.repeated_name(true)) {
                found.push(format!(
                    "{member}.{list}[{i}] acts on a header `{first}` already does (one action per header)"
                ));
            }
        }
        if let Some(redirect) = &self.request_redirect {
            if let Some(scheme) = redirect
                .scheme
                .as_deref()
                .filter(|s| !matches!(*s, "http" | "https"))
            {
                found.push(format!("requestRedirect.scheme `{scheme}`"));
            }
            if let Some(code) = redirect
                .status_code
                .filter(|c| ![301, 302, 303, 307, 308].contains(c))
            {
                found.push(format!("requestRedirect.statusCode {code}"));
            }
        }
        found
    }

    /// The configurations given, by field name.
    fn given(&self) -> Vec<&'static str> {
        present!(self,
            request_header_modifier => "requestHeaderModifier",
            response_header_modifier => "responseHeaderModifier",
            request_mirror => "requestMirror",
            request_redirect => "requestRedirect",
            url_rewrite => "urlRewrite",
            cors => "cors",
            external_auth => "externalAuth",
            extension_ref => "extensionRef",
        )
    }

    /// The filter's type, and which of its configurations are given.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.kind, self.given().join(", "))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpBackendRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Default 1; 0 gets no traffic.
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
}

/// `ReferenceGrant` (`gateway.networking.k8s.io/v1beta1`, or `v1`): in its own namespace, lets
/// the objects `from` names refer to the objects `to` names.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantSpec {
    pub from: Vec<ReferenceGrantFrom>,
    pub to: Vec<ReferenceGrantTo>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantFrom {
    pub group: String,
    pub kind: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReferenceGrantTo {
    pub group: String,
    pub kind: String,
    /// Absent: every object of the kind.
    #[serde(default)]
    pub name: Option<String>,
}

impl ReferenceGrantSpec {
    /// Whether an object of `from` (group, kind, namespace) may refer to the object
    /// (group, kind, name) in the grant's namespace.
    pub fn permits(&self, from: (&str, &str, &str), to: (&str, &str, &str)) -> bool {
        self.from
            .iter()
            .any(|f| (f.group.as_str(), f.kind.as_str(), f.namespace.as_str()) == from)
            && self.to.iter().any(|t| {
                t.group == to.0 && t.kind == to.1 && t.name.as_deref().is_none_or(|n| n == to.2)
            })
    }
}
