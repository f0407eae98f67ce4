//! Gateway API resources into the native model: each served Gateway's listeners become one
//! native listener per port, every HTTPRoute match attached to them becomes a native route in
//! the order the specification gives them, backends and policies become native backends and
//! filters. Every part written is mounted on the document it came from, so a later error
//! points into the manifest.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use switchyard_filters::router::{
    DirectResponseConfig, HeaderMatchConfig, MatchConfig, PathMatchConfig, PathMatchType,
    PathRewriteConfig, PrefixRewriteConfig, QueryParamMatchConfig, RedirectConfig, RetryCondition,
    RetryConfig, RetryOn, RouteConfig, RouteFiltersConfig, RouteTimeouts, ValueMatchType,
    WeightedBackendConfig,
};

use super::agentgateway::{self, ObjectRef};
use super::hostnames;
use super::manifests::Document;
use super::precedence::{HostRank, Precedence};
use super::resources::{
    GatewaySpec, HeaderModifier, HttpBackendRef, HttpHeader, HttpRouteFilter, HttpRouteMatch,
    HttpRouteRule, HttpRouteSpec, ParentReference, PathModifier,
};
use super::status::{Condition, GatewayStatus, ListenerStatus, ParentStatus, Report, RouteStatus};
use crate::config::{
    BackendConfig, BackendTls, CertificateConfig, ConfigError, FilterEntry, GatewayApiSettings,
    ListenerConfig, ListenerLimits, ListenerTls, Mount, PhaseFilters,
};

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
const AGENTGATEWAY_GROUP: &str = "agentgateway.dev";

/// The resources of the manifests, by kind.
pub struct Resources<'d> {
    pub gateways: Vec<(&'d Document, GatewaySpec)>,
    pub routes: Vec<(&'d Document, HttpRouteSpec)>,
    /// `namespace/name` -> the backend.
    pub backends: BTreeMap<String, (&'d Document, agentgateway::BackendSpec)>,
    pub policies: Vec<(&'d Document, agentgateway::PolicySpec)>,
    /// Namespace name -> its labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// ReferenceGrants, each with its namespace.
    pub grants: Vec<(String, super::resources::ReferenceGrantSpec)>,
    /// `namespace/name` -> a Secret (read only when an HTTPS listener names it).
    pub secrets: BTreeMap<String, &'d Document>,
    pub ignored: Vec<String>,
}

/// One HTTP listener of a served Gateway, as it takes routes.
struct GatewayListener {
    name: String,
    port: u16,
    hostname: Option<String>,
    /// Namespaces it takes routes from.
    allowed: Allowed,
    /// Kinds in `allowedRoutes.kinds` that are not served here (only HTTPRoute is).
    invalid_kinds: Vec<String>,
    /// The listener serves (HTTP, or HTTPS with its certificate, no conflict); else why
    /// not, for its status.
    problem: Option<Condition>,
    /// An HTTPS listener's certificate, from its first `certificateRefs` entry.
    certificate: Option<CertificateConfig>,
    attached: usize,
}

enum Allowed {
    All,
    Same,
    Selector(super::resources::LabelSelector),
    /// A kind list without HTTPRoute, or a `from` value this front-end does not know.
    None(String),
}

struct ServedGateway<'d> {
    doc: &'d Document,
    address: IpAddr,
    listeners: Vec<GatewayListener>,
}

/// A route entry on its way into a native listener's list.
struct Entry {
    gateway: usize,
    listener: usize,
    order: Precedence,
    route: RouteConfig,
    /// Where it came from: the route's document, its rule and match.
    doc_index: usize,
    rule: usize,
    r#match: Option<usize>,
}

/// What the front-end adds to the model.
pub struct Translation {
    pub listeners: Vec<ListenerConfig>,
    pub backends: Vec<BackendConfig>,
    /// Mounts with model paths relative to the listeners and backends added: `listeners[0]`
    /// is the first listener added.
    pub mounts: Vec<Mount>,
    pub report: Report,
}

pub fn translate(
    settings: &GatewayApiSettings,
    resources: &Resources<'_>,
) -> Result<Translation, ConfigError> {
    let mut t = Translator {
        settings,
        resources,
        out: Translation {
            listeners: Vec::new(),
            backends: Vec::new(),
            mounts: Vec::new(),
            report: Report {
                ignored: resources.ignored.clone(),
                ..Report::default()
            },
        },
        backend_names: BTreeMap::new(),
    };
    let mut gateways = t.served_gateways()?;
    let entries = t.attach_routes(&mut gateways)?;
    let policies = t.policy_attachments(&gateways)?;
    t.write_listeners(&gateways, entries, &policies)?;
    t.report_gateways(&gateways);
    Ok(t.out)
}

struct Translator<'a, 'd> {
    settings: &'a GatewayApiSettings,
    resources: &'a Resources<'d>,
    out: Translation,
    /// Backends added, by model name.
    backend_names: BTreeMap<String, usize>,
}

impl<'d> Translator<'_, 'd> {
    /// The Gateways of the configured class, with where they bind.
    fn served_gateways(&mut self) -> Result<Vec<ServedGateway<'d>>, ConfigError> {
        let mut served = Vec::new();
        for (doc, spec) in &self.resources.gateways {
            if spec.gateway_class_name != self.settings.gateway_class {
                self.out.report.ignored.push(format!(
                    "Gateway {}: class `{}` is not `{}`",
                    doc.key(),
                    spec.gateway_class_name,
                    self.settings.gateway_class
                ));
                continue;
            }
            let unsupported = spec.unsupported();
            if !unsupported.is_empty() {
                self.out.report.gateways.push(GatewayStatus {
                    name: doc.key(),
                    address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    conditions: vec![Condition::no(
                        "Accepted",
                        "UnsupportedValue",
                        format!(
                            "{} not implemented yet; the Gateway is not served",
                            unsupported.join(", ")
                        ),
                    )],
                    listeners: Vec::new(),
                });
                continue;
            }
            let address = match self.settings.gateway_addresses.get(&doc.key()) {
                Some(ip) => *ip,
                None => first_ip(spec, doc)?,
            };
            let mut listeners: Vec<GatewayListener> = Vec::with_capacity(spec.listeners.len());
            for (i, l) in spec.listeners.iter().enumerate() {
                let at = format!("spec.listeners[{i}]");
                if let Some(h) = &l.hostname {
                    check_hostname(h)
                        .map_err(|why| doc.error_at(&format!("{at}.hostname"), why))?;
                }
                if spec.listeners[..i].iter().any(|o| o.name == l.name) {
                    return Err(doc.error_at(
                        &format!("{at}.name"),
                        format!("two listeners are named `{}`", l.name),
                    ));
                }
                if l.port == 0 {
                    return Err(doc.error_at(&format!("{at}.port"), "a port is 1 to 65535"));
                }
                let hostname = l.hostname.as_ref().map(|h| h.to_ascii_lowercase());
                let (problem, certificate) = match self.listener_tls(doc, l, &at)? {
                    Ok(certificate) => (None, certificate),
                    Err(problem) => (Some(problem), None),
                };
                let (allowed, invalid_kinds) = allowed_routes(l.allowed_routes.as_ref());
                listeners.push(GatewayListener {
                    name: l.name.clone(),
                    port: l.port,
                    hostname,
                    certificate,
                    allowed,
                    invalid_kinds,
                    problem,
                    attached: 0,
                });
            }
            // Listeners that share a port with another protocol, or a port and a host name,
            // are all left out: the specification forbids picking a winner among them.
            for i in 0..listeners.len() {
                let others = |same: &dyn Fn(usize) -> bool| -> Vec<String> {
                    (0..listeners.len())
                        .filter(|&j| j != i && listeners[j].port == listeners[i].port && same(j))
                        .map(|j| listeners[j].name.clone())
                        .collect()
                };
                let protocol = |j: usize| spec.listeners[j].protocol.as_str();
                let other_protocol = others(&|j| protocol(j) != protocol(i));
                let same_host = others(&|j| {
                    protocol(j) == protocol(i) && listeners[j].hostname == listeners[i].hostname
                });
                let conflict = if !other_protocol.is_empty() {
                    Some((
                        "ProtocolConflict",
                        format!(
                            "listener {} uses the same port with another protocol",
                            other_protocol.join(", ")
                        ),
                    ))
                } else if !same_host.is_empty() {
                    Some((
                        "HostnameConflict",
                        format!(
                            "listener {} has the same port and hostname",
                            same_host.join(", ")
                        ),
                    ))
                } else {
                    None
                };
                if let Some((reason, message)) = conflict {
                    if listeners[i].problem.is_none() {
                        listeners[i].problem =
                            Some(Condition::raised("Conflicted", reason, message));
                    }
                }
            }
            served.push(ServedGateway {
                doc,
                address,
                listeners,
            });
        }
        Ok(served)
    }

    /// What a listener's protocol and `tls` make of it: served, with the certificate of an
    /// HTTPS listener; or why not, as the condition its status gets. What the CRD's own
    /// validation would refuse (HTTPS without certificates, in Passthrough) is a load error.
    fn listener_tls(
        &self,
        doc: &Document,
        l: &super::resources::Listener,
        at: &str,
    ) -> Result<Result<Option<CertificateConfig>, Condition>, ConfigError> {
        match (l.protocol.as_str(), &l.tls) {
            ("HTTP", None) => Ok(Ok(None)),
            ("HTTP", Some(_)) => {
                Err(doc.error_at(&format!("{at}.tls"), "an HTTP listener cannot have `tls`"))
            }
            ("HTTPS", None) => Err(doc.error_at(
                &format!("{at}.tls"),
                "an HTTPS listener needs `tls` with `certificateRefs`",
            )),
            ("HTTPS", Some(tls)) => {
                if tls.mode.as_deref().unwrap_or("Terminate") != "Terminate" {
                    return Err(doc.error_at(
                        &format!("{at}.tls.mode"),
                        "an HTTPS listener terminates TLS (mode Terminate); Passthrough is for TLS listeners",
                    ));
                }
                if !tls.options.is_empty() {
                    let names: Vec<&str> = tls.options.keys().map(String::as_str).collect();
                    return Ok(Err(Condition::no(
                        "Accepted",
                        "UnsupportedValue",
                        format!("tls.options {} are not known here", names.join(", ")),
                    )));
                }
                if tls.frontend_validation.is_some() {
                    return Ok(Err(Condition::no(
                        "Accepted",
                        "UnsupportedValue",
                        "tls.frontendValidation is not implemented yet",
                    )));
                }
                let Some(first) = tls.certificate_refs.first() else {
                    return Err(doc.error_at(
                        &format!("{at}.tls.certificateRefs"),
                        "an HTTPS listener in Terminate mode needs a certificate reference",
                    ));
                };
                Ok(self
                    .certificate(doc, first)
                    .map(Some)
                    .map_err(|(reason, message)| Condition::no("ResolvedRefs", reason, message)))
            }
            (other, _) => Ok(Err(Condition::no(
                "Accepted",
                "UnsupportedProtocol",
                format!("protocol {other} is not served yet; HTTP and HTTPS are"),
            ))),
        }
    }

    /// The certificate a Gateway's `certificateRefs` entry names: a `kubernetes.io/tls`
    /// Secret in the manifests, or one `gateway_api.secrets` maps to files; else the reason
    /// and message of the listener's `ResolvedRefs: False`.
    fn certificate(
        &self,
        gateway: &Document,
        r: &super::resources::SecretObjectReference,
    ) -> Result<CertificateConfig, (&'static str, String)> {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("Secret");
        if (group, kind) != ("", "Secret") {
            return Err((
                "InvalidCertificateRef",
                format!("a certificate is a Secret here, not a {kind}"),
            ));
        }
        let namespace = r.namespace.as_deref().unwrap_or(gateway.namespace());
        let key = format!("{namespace}/{}", r.name);
        self.reference_permitted(gateway, namespace, ("", "Secret"), &r.name)?;
        if let Some(doc) = self.resources.secrets.get(&key) {
            let (cert, key) = doc
                .tls_secret()
                .map_err(|why| ("InvalidCertificateRef", why))?;
            return Ok(CertificateConfig {
                cert_pem: Some(cert),
                key_pem: Some(key),
                ..CertificateConfig::default()
            });
        }
        if let Some(files) = self.settings.secrets.get(&key) {
            return Ok(CertificateConfig {
                cert: Some(files.cert.clone()),
                key: Some(files.key.clone()),
                ..CertificateConfig::default()
            });
        }
        Err((
            "InvalidCertificateRef",
            format!("Secret {key} is neither in the manifests nor in gateway_api.secrets"),
        ))
    }

    /// Attaches every HTTPRoute to the listeners it may use, and turns its rules into entries.
    fn attach_routes(
        &mut self,
        gateways: &mut [ServedGateway<'d>],
    ) -> Result<Vec<Entry>, ConfigError> {
        let mut entries = Vec::new();
        for (doc_index, (doc, spec)) in self.resources.routes.iter().enumerate() {
            // A route for other controllers' Gateways is theirs to judge.
            let ours = spec
                .parent_refs
                .iter()
                .any(|p| find_gateway(gateways, doc, p).is_some());
            if !ours {
                self.out.report.routes.push(RouteStatus {
                    name: doc.key(),
                    parents: Vec::new(),
                });
                continue;
            }
            for (i, h) in spec.hostnames.iter().enumerate() {
                check_hostname(h)
                    .map_err(|why| doc.error_at(&format!("spec.hostnames[{i}]"), why))?;
            }
            if let Some((at, why)) = spec.schema_error() {
                return Err(doc.error_at(&at, why));
            }
            let mut status = RouteStatus {
                name: doc.key(),
                parents: Vec::new(),
            };
            let created = doc
                .head
                .metadata
                .creation_timestamp
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
            let unsupported = spec.unsupported();
            // A listener two parentRefs both reach takes the route once.
            let mut taken: Vec<(usize, usize)> = Vec::new();
            for parent in &spec.parent_refs {
                let Some(g) = find_gateway(gateways, doc, parent) else {
                    // Not a Gateway this configuration serves: another controller's business.
                    continue;
                };
                let mut conditions = Vec::new();
                if !unsupported.is_empty() {
                    conditions.push(Condition::no(
                        "Accepted",
                        "UnsupportedValue",
                        format!(
                            "{} not implemented yet; the route is not served",
                            unsupported.join(", ")
                        ),
                    ));
                    status.parents.push(ParentStatus {
                        parent: parent_label(parent, doc),
                        conditions,
                    });
                    continue;
                }
                let attachments = attach(
                    &mut gateways[g],
                    doc,
                    parent,
                    spec,
                    &self.resources.namespaces,
                );
                let accepted = match attachments {
                    Ok(list) => list
                        .into_iter()
                        .filter(|(l, _)| {
                            let fresh = !taken.contains(&(g, *l));
                            taken.push((g, *l));
                            fresh
                        })
                        .collect::<Vec<_>>(),
                    Err(refused) => {
                        conditions.push(refused);
                        status.parents.push(ParentStatus {
                            parent: parent_label(parent, doc),
                            conditions,
                        });
                        continue;
                    }
                };
                let mut problems = Vec::new();
                let mut unresolved = Vec::new();
                for (r, rule) in spec.rules.iter().enumerate() {
                    let action = self.rule_action(doc, r, rule, &mut problems, &mut unresolved)?;
                    let timeouts = rule_timeouts(doc, r, rule)?;
                    let retry = rule_retry(doc, r, rule)?;
                    let matches = rule_matches(rule);
                    for (listener, hosts) in &accepted {
                        let (redirect, backends) =
                            action.on_port(gateways[g].listeners[*listener].port);
                        let hosts: Vec<Option<String>> = if hosts.is_empty() {
                            vec![None]
                        } else {
                            hosts.iter().cloned().map(Some).collect()
                        };
                        for host in &hosts {
                            for (m, native) in matches.iter().enumerate() {
                                let route = RouteConfig {
                                    name: entry_name(
                                        doc,
                                        rule,
                                        (r, m),
                                        &gateways[g].listeners[*listener].name,
                                        host.as_deref(),
                                    ),
                                    hostnames: host.iter().cloned().collect(),
                                    matches: vec![native.clone()],
                                    backend: action.backend.clone(),
                                    backends: backends.clone(),
                                    respond: action.respond.clone(),
                                    redirect: redirect.clone(),
                                    filters: action.filters.clone(),
                                    max_request_body_bytes: None,
                                    timeouts,
                                    retry: retry.clone(),
                                };
                                entries.push(Entry {
                                    gateway: g,
                                    listener: *listener,
                                    order: Precedence::new(
                                        HostRank::of(host.as_deref()),
                                        native,
                                        created,
                                        doc.key(),
                                        r,
                                        m,
                                    ),
                                    route,
                                    doc_index,
                                    rule: r,
                                    r#match: rule.matches.as_ref().map(|_| m),
                                });
                            }
                        }
                    }
                }
                for (listener, _) in &accepted {
                    gateways[g].listeners[*listener].attached += 1;
                }
                // A route with some rules served is accepted, and says which are not.
                if problems.is_empty() {
                    conditions.push(Condition::yes("Accepted", "Accepted"));
                } else if problems.len() < spec.rules.len() {
                    conditions.push(Condition::yes("Accepted", "Accepted"));
                    conditions.push(Condition::raised(
                        "PartiallyInvalid",
                        "UnsupportedValue",
                        problems.join("; "),
                    ));
                } else {
                    conditions.push(Condition::no(
                        "Accepted",
                        "UnsupportedValue",
                        problems.join("; "),
                    ));
                }
                conditions.push(match unresolved.first() {
                    None => Condition::yes("ResolvedRefs", "ResolvedRefs"),
                    Some((reason, message)) => {
                        Condition::no("ResolvedRefs", reason, message.clone())
                    }
                });
                status.parents.push(ParentStatus {
                    parent: parent_label(parent, doc),
                    conditions,
                });
            }
            self.out.report.routes.push(status);
        }
        Ok(entries)
    }

    /// What a rule does with its requests: its one backend, or a 500 when it has none that
    /// resolves or uses what is not implemented yet.
    fn rule_action(
        &mut self,
        doc: &Document,
        r: usize,
        rule: &HttpRouteRule,
        problems: &mut Vec<String>,
        unresolved: &mut Vec<(&'static str, String)>,
    ) -> Result<Action, ConfigError> {
        let unsupported = rule.unsupported();
        if !unsupported.is_empty() {
            let what = unsupported.join(", ");
            problems.push(format!(
                "rule {r}: {what}: not implemented yet; the rule answers 500"
            ));
            return Ok(Action::error(
                "not_implemented",
                format!("this rule uses {what}, which the gateway does not implement yet"),
            ));
        }
        // A prefix replacement needs the rule's one PathPrefix match (checked with the route).
        let prefix = match rule.matches.as_deref() {
            Some([only]) => only
                .path
                .as_ref()
                .and_then(|p| p.value.clone())
                .unwrap_or_else(|| "/".to_owned()),
            _ => "/".to_owned(),
        };
        let (filters, redirect) = native_filters(&rule.filters, &prefix);
        if let Some(redirect) = redirect {
            return Ok(Action {
                redirect: Some(redirect),
                filters,
                ..Action::default()
            });
        }
        let (live, idle): (Vec<&HttpBackendRef>, Vec<&HttpBackendRef>) =
            rule.backend_refs.iter().partition(|b| b.weight != Some(0));
        // A ref without traffic still has its references checked, for the route's status.
        for b in idle {
            if let Err((reason, message)) = self.check_ref(doc, b) {
                unresolved.push((reason, format!("rule {r}: {message}")));
            }
        }
        if live.is_empty() {
            return Ok(Action::error(
                "no_backend",
                "this rule sends to no backend".to_owned(),
            ));
        }
        // Each backendRef keeps its share of the traffic; one that does not resolve answers
        // its share with 500.
        let mut shares = Vec::with_capacity(live.len());
        for b in &live {
            let (own, redirect) = native_filters(&b.filters, &prefix);
            let weight = b.weight.unwrap_or(1);
            let share = match (redirect, own) {
                (Some(redirect), own) => WeightedBackendConfig {
                    redirect: Some(redirect),
                    filters: own,
                    weight,
                    ..WeightedBackendConfig::default()
                },
                (None, own) => match self.resolve_ref(doc, b) {
                    Ok(backend) => WeightedBackendConfig {
                        backend: Some(backend),
                        filters: own,
                        weight,
                        ..WeightedBackendConfig::default()
                    },
                    Err((reason, message)) => {
                        let respond = Action::error("backend_not_found", message.clone()).respond;
                        unresolved.push((reason, format!("rule {r}: {message}")));
                        WeightedBackendConfig {
                            respond,
                            weight,
                            ..WeightedBackendConfig::default()
                        }
                    }
                },
            };
            shares.push(share);
        }
        Ok(match shares.pop() {
            Some(only) if shares.is_empty() && only.filters.is_empty() => Action {
                backend: only.backend,
                respond: only.respond,
                redirect: only.redirect,
                filters,
                ..Action::default()
            },
            Some(last) => {
                shares.push(last);
                Action {
                    backends: shares,
                    filters,
                    ..Action::default()
                }
            }
            None => Action::error("no_backend", "this rule sends to no backend".to_owned()),
        })
    }

    /// Why a backendRef of `doc` would not resolve, without adding its backend.
    fn check_ref(&self, doc: &Document, r: &HttpBackendRef) -> Result<(), (&'static str, String)> {
        self.target(doc, &object_ref(r)).map(|_| ())
    }

    /// The model backend a backendRef of `doc` names, added on first use.
    fn resolve_ref(
        &mut self,
        doc: &Document,
        r: &HttpBackendRef,
    ) -> Result<String, (&'static str, String)> {
        self.resolve(doc, &object_ref(r))
    }

    /// The model backend `r` (in `doc`) names, added on first use.
    fn resolve(&mut self, doc: &Document, r: &ObjectRef) -> Result<String, (&'static str, String)> {
        let target = self.target(doc, r)?;
        Ok(self.add_backend(target))
    }

    /// Whether `doc` may refer to the `(group, kind)` object `name` in `namespace`: always in
    /// its own namespace, elsewhere only when a ReferenceGrant there lets it; else the reason
    /// and message of `RefNotPermitted`.
    fn reference_permitted(
        &self,
        doc: &Document,
        namespace: &str,
        (group, kind): (&str, &str),
        name: &str,
    ) -> Result<(), (&'static str, String)> {
        if namespace == doc.namespace() {
            return Ok(());
        }
        let from = (doc.group(), doc.head.kind.as_str(), doc.namespace());
        let permitted = self.resources.grants.iter().any(|(grant_ns, grant)| {
            grant_ns == namespace && grant.permits(from, (group, kind, name))
        });
        if permitted {
            return Ok(());
        }
        Err((
            "RefNotPermitted",
            format!(
                "{kind} {namespace}/{name} is in another namespace, and no ReferenceGrant there lets {} {} refer to it",
                doc.head.kind,
                doc.key()
            ),
        ))
    }

    /// The backend `r` (in `doc`) names, or why it names none.
    fn target(&self, doc: &Document, r: &ObjectRef) -> Result<Target<'d>, (&'static str, String)> {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("Service");
        let namespace = r.namespace.as_deref().unwrap_or(doc.namespace());
        self.reference_permitted(doc, namespace, (group, kind), &r.name)?;
        match (group, kind) {
            ("", "Service") => {
                let Some(port) = r.port else {
                    return Err((
                        "BackendNotFound",
                        format!("Service {namespace}/{} needs a port", r.name),
                    ));
                };
                let key = format!("{namespace}/{}:{port}", r.name);
                let Some(target) = self.settings.services.get(&key) else {
                    return Err((
                        "BackendNotFound",
                        format!("Service {key} has no entry in gateway_api.services"),
                    ));
                };
                let (host, port) = split_host_port(target).ok_or_else(|| {
                    (
                        "BackendNotFound",
                        format!("gateway_api.services `{key}`: `{target}` is not host:port"),
                    )
                })?;
                Ok(Target {
                    config: BackendConfig::single(key.clone(), host, port),
                    name: key,
                    document: None,
                })
            }
            (AGENTGATEWAY_GROUP, "AgentgatewayBackend") => {
                let key = format!("{namespace}/{}", r.name);
                let Some((backend_doc, spec)) = self.resources.backends.get(&key) else {
                    return Err((
                        "BackendNotFound",
                        format!("AgentgatewayBackend {key} is not in the manifests"),
                    ));
                };
                let unsupported = spec.unsupported();
                if !unsupported.is_empty() {
                    return Err((
                        "UnsupportedValue",
                        format!(
                            "AgentgatewayBackend {key} uses {}, not implemented yet",
                            unsupported.join(", ")
                        ),
                    ));
                }
                let Some((host, port)) = spec
                    .static_
                    .as_ref()
                    .and_then(|s| Some((s.host.clone()?, s.port?)))
                else {
                    return Err((
                        "UnsupportedValue",
                        format!("AgentgatewayBackend {key} has no `static` host and port"),
                    ));
                };
                let tls = spec
                    .policies
                    .as_ref()
                    .and_then(|p| p.tls.as_ref())
                    .map(|t| BackendTls {
                        sni: t.sni.clone(),
                        ca_file: None,
                        client_cert: None,
                        client_key: None,
                    });
                let mut config = BackendConfig::single(key.clone(), host, port);
                config.tls = tls;
                Ok(Target {
                    config,
                    name: key,
                    document: Some(*backend_doc),
                })
            }
            _ => Err((
                "InvalidKind",
                format!("{kind} of group `{group}` is not a backend kind served here"),
            )),
        }
    }

    /// Adds a backend once; returns its model name.
    fn add_backend(&mut self, target: Target<'_>) -> String {
        let Target {
            name,
            config,
            document,
        } = target;
        if !self.backend_names.contains_key(&name) {
            let index = self.out.backends.len();
            self.out.backends.push(config);
            self.backend_names.insert(name.clone(), index);
            if let Some(doc) = document {
                for (model, at) in [("", "spec"), (".static", "spec.static")] {
                    self.out
                        .mounts
                        .push(doc.mount(format!("backends[{index}]{model}"), at));
                }
            }
        }
        name
    }

    /// One native listener per port of each served Gateway, its routes in order.
    fn write_listeners(
        &mut self,
        gateways: &[ServedGateway<'d>],
        mut entries: Vec<Entry>,
        policies: &[Attachment],
    ) -> Result<(), ConfigError> {
        for (g, gateway) in gateways.iter().enumerate() {
            let mut ports: Vec<u16> = gateway
                .listeners
                .iter()
                .filter(|l| l.problem.is_none())
                .map(|l| l.port)
                .collect();
            ports.sort_unstable();
            ports.dedup();
            for port in ports {
                let index = self.out.listeners.len();
                let mut members: Vec<usize> = (0..gateway.listeners.len())
                    .filter(|&i| {
                        gateway.listeners[i].port == port && gateway.listeners[i].problem.is_none()
                    })
                    .collect();
                // The most specific host name first: a request belongs to the most specific
                // listener that matches it.
                members.sort_by_key(|&i| HostRank::of(gateway.listeners[i].hostname.as_deref()));
                let mut routes = Vec::new();
                for &member in &members {
                    let mut mine: Vec<Entry> = Vec::new();
                    let mut rest = Vec::with_capacity(entries.len());
                    for e in entries.drain(..) {
                        if e.gateway == g && e.listener == member {
                            mine.push(e);
                        } else {
                            rest.push(e);
                        }
                    }
                    entries = rest;
                    mine.sort_by(|a, b| a.order.cmp(&b.order));
                    for e in mine {
                        let k = routes.len();
                        let (doc, _) = &self.resources.routes[e.doc_index];
                        self.out.mounts.push(doc.mount(
                            format!("listeners[{index}].routes[{k}]"),
                            &format!("spec.rules[{}]", e.rule),
                        ));
                        if let Some(m) = e.r#match {
                            self.out.mounts.push(doc.mount(
                                format!("listeners[{index}].routes[{k}].matches[0]"),
                                &format!("spec.rules[{}].matches[{m}]", e.rule),
                            ));
                        }
                        routes.push(e.route);
                    }
                    // Listener isolation: what this listener's host name covers ends here,
                    // matched or not, before a less specific listener could take it.
                    let l = &gateway.listeners[member];
                    if let Some(host) = &l.hostname {
                        routes.push(RouteConfig {
                            name: format!("{}/{}/no-route", gateway.doc.key(), l.name),
                            hostnames: vec![host.clone()],
                            matches: Vec::new(),
                            backend: None,
                            backends: Vec::new(),
                            redirect: None,
                            filters: Default::default(),
                            respond: Some(DirectResponseConfig {
                                status: 404,
                                error: Some("no_route".into()),
                                message: Some("no route matches this request".into()),
                            }),
                            max_request_body_bytes: None,
                            timeouts: Default::default(),
                            retry: None,
                        });
                    }
                }
                let filters = self.policy_filters(g, gateway, &members, index, policies)?;
                let tls = listener_tls(gateway, &members);
                let first = members.first().copied().unwrap_or(0);
                self.out.mounts.push(gateway.doc.mount(
                    format!("listeners[{index}]"),
                    &format!("spec.listeners[{first}]"),
                ));
                self.out.listeners.push(ListenerConfig {
                    name: format!("{}:{port}", gateway.doc.key()),
                    address: SocketAddr::new(gateway.address, port),
                    filters,
                    limits: ListenerLimits::default(),
                    routes,
                    tls,
                    h2c: false,
                });
            }
        }
        Ok(())
    }

    /// Where each policy applies: for every targetRef naming a served Gateway (or one of its
    /// listeners, by `sectionName`), one attachment. A policy that names nothing served here
    /// is another controller's and is only listed; one that does is applied whole or not at
    /// all, so what it asks that cannot be applied is a load error.
    fn policy_attachments(
        &mut self,
        gateways: &[ServedGateway<'d>],
    ) -> Result<Vec<Attachment>, ConfigError> {
        let mut attachments = Vec::new();
        for (p, (doc, spec)) in self.resources.policies.iter().enumerate() {
            let gateway_of = |t: &agentgateway::TargetRef| {
                let key = format!("{}/{}", doc.namespace(), t.name);
                let is_gateway = t.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
                    && t.kind == "Gateway";
                is_gateway
                    .then(|| gateways.iter().position(|g| g.doc.key() == key))
                    .flatten()
            };
            let served_route = |t: &agentgateway::TargetRef| {
                let key = format!("{}/{}", doc.namespace(), t.name);
                self.resources.routes.iter().any(|(route, spec)| {
                    route.key() == key
                        && spec
                            .parent_refs
                            .iter()
                            .any(|parent| find_gateway(gateways, route, parent).is_some())
                })
            };
            let ours = spec
                .target_refs
                .iter()
                .any(|t| gateway_of(t).is_some() || (t.kind == "HTTPRoute" && served_route(t)));
            if !ours {
                self.out.report.ignored.push(format!(
                    "{} ({}): targets nothing served here",
                    doc.label(),
                    doc.file.display()
                ));
                continue;
            }
            if let Some(first) = spec.unsupported().first() {
                return Err(doc.error_at(
                    &format!("spec.{first}"),
                    format!("`{first}` is not implemented yet, and a policy is applied whole or not at all"),
                ));
            }
            let Some(traffic) = &spec.traffic else {
                continue;
            };
            let phase = match traffic.phase.as_deref().unwrap_or("PostRouting") {
                "PreRouting" => Phase::PreRouting,
                "PostRouting" => Phase::PostRouting,
                other => {
                    return Err(doc.error_at(
                        "spec.traffic.phase",
                        format!("unknown phase `{other}` (phases: PreRouting, PostRouting)"),
                    ))
                }
            };
            for (i, t) in spec.target_refs.iter().enumerate() {
                let at = format!("spec.targetRefs[{i}]");
                let Some(g) = gateway_of(t) else {
                    let group = t.group.as_deref().unwrap_or(GATEWAY_GROUP);
                    if group == GATEWAY_GROUP && t.kind == "Gateway" {
                        // A Gateway of another class: not this gateway's to apply.
                        continue;
                    }
                    return Err(doc.error_at(
                        &format!("{at}.kind"),
                        format!(
                            "a policy on kind {} is not implemented yet (on a Gateway or one of its listeners it is), and a policy is applied whole or not at all",
                            t.kind
                        ),
                    ));
                };
                let gateway = &gateways[g];
                let listener = match &t.section_name {
                    None => None,
                    Some(section) => {
                        let Some(l) = gateway.listeners.iter().position(|l| l.name == *section)
                        else {
                            return Err(doc.error_at(
                                &format!("{at}.sectionName"),
                                format!(
                                    "Gateway {} has no listener `{section}`",
                                    gateway.doc.key()
                                ),
                            ));
                        };
                        let port = gateway.listeners[l].port;
                        let sharing: Vec<&str> = gateway
                            .listeners
                            .iter()
                            .filter(|o| o.port == port && o.name != *section && o.problem.is_none())
                            .map(|o| o.name.as_str())
                            .collect();
                        if !sharing.is_empty() {
                            return Err(doc.error_at(
                                &format!("{at}.sectionName"),
                                format!(
                                    "listener `{section}` shares port {port} with {}; a policy on one of several listeners on a port is not implemented yet (on all of them, through the Gateway, it is)",
                                    sharing.join(", ")
                                ),
                            ));
                        }
                        Some(l)
                    }
                };
                attachments.push(Attachment {
                    policy: p,
                    gateway: g,
                    listener,
                    phase,
                });
            }
        }
        Ok(attachments)
    }

    /// The filters the policies attached to Gateway `g` (or one of `members`, by section) put
    /// on the native listener at `index`.
    ///
    /// Of several policies setting one field (`jwtAuthentication`, `transformation`) on a
    /// listener, one wins, as agentgateway merges them: the one on the listener over the one
    /// on the Gateway, then the oldest, then the first by namespace/name. In each phase,
    /// authentication runs before transformations, whatever order the policies came in, so
    /// a transformation can read the claims.
    fn policy_filters(
        &mut self,
        g: usize,
        gateway: &ServedGateway<'d>,
        members: &[usize],
        index: usize,
        attachments: &[Attachment],
    ) -> Result<PhaseFilters, ConfigError> {
        let here: Vec<&Attachment> = attachments
            .iter()
            .filter(|a| a.gateway == g && a.listener.is_none_or(|l| members.contains(&l)))
            .collect();
        let policies = self.resources.policies.as_slice();
        // The winner for a field among the attachments that set it.
        let winner = |sets: &dyn Fn(&agentgateway::Traffic) -> bool| {
            let mut claims: Vec<&Attachment> = here
                .iter()
                .copied()
                .filter(|a| policies[a.policy].1.traffic.as_ref().is_some_and(sets))
                .collect();
            claims.sort_by_key(|a| {
                let doc = policies[a.policy].0;
                let created = doc
                    .head
                    .metadata
                    .creation_timestamp
                    .as_deref()
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok());
                (a.listener.is_none(), created.is_none(), created, doc.key())
            });
            // A policy on the Gateway and on a listener of it claims once, as the listener.
            let mut seen = Vec::new();
            claims.retain(|a| {
                let fresh = !seen.contains(&a.policy);
                seen.push(a.policy);
                fresh
            });
            claims
        };
        let jwt = winner(&|t| t.jwt_authentication.is_some());
        let transform = winner(&|t| t.transformation.is_some());
        for (field, claims) in [("jwtAuthentication", &jwt), ("transformation", &transform)] {
            if let [first, rest @ ..] = claims.as_slice() {
                for lost in rest {
                    self.out.report.policies.push(format!(
                        "{}: traffic.{field} is overridden on Gateway {} port {} by {}",
                        policies[lost.policy].0.label(),
                        gateway.doc.key(),
                        gateway.listeners[members[0]].port,
                        policies[first.policy].0.label(),
                    ));
                }
            }
        }

        let mut filters = PhaseFilters::default();
        for phase in [Phase::PreRouting, Phase::PostRouting] {
            if let Some(a) = jwt.first().filter(|a| a.phase == phase) {
                let (doc, spec) = &policies[a.policy];
                let Some(jwt) = spec
                    .traffic
                    .as_ref()
                    .and_then(|t| t.jwt_authentication.as_ref())
                else {
                    continue;
                };
                let mut unresolved = None;
                let config = jwt
                    .to_native(|r| match self.resolve(doc, r) {
                        Ok(name) => Some(name),
                        Err((_, why)) => {
                            unresolved = Some(why);
                            None
                        }
                    })
                    .map_err(|why| {
                        doc.error_at(
                            "spec.traffic.jwtAuthentication",
                            unresolved.clone().unwrap_or(why),
                        )
                    })?;
                let list = phase_list(&mut filters, phase);
                self.out.mounts.push(doc.mount(
                    format!(
                        "listeners[{index}].filters.{}[{}].config",
                        phase.model(),
                        list.len()
                    ),
                    "spec.traffic.jwtAuthentication",
                ));
                list.push(FilterEntry {
                    name: "jwt_authn".into(),
                    config,
                });
                self.report_policy(doc, "jwtAuthentication", gateway, members, phase);
            }
            if let Some(a) = transform.first().filter(|a| a.phase == phase) {
                let (doc, spec) = &policies[a.policy];
                let Some(t) = spec
                    .traffic
                    .as_ref()
                    .and_then(|t| t.transformation.as_ref())
                else {
                    continue;
                };
                if let Some(request) = &t.request {
                    let at = format!("listeners[{index}].filters.{}", phase.model());
                    self.transformations(
                        doc,
                        "request",
                        request,
                        phase_list(&mut filters, phase),
                        &at,
                    );
                }
                if let Some(response) = &t.response {
                    let at = format!("listeners[{index}].filters.response");
                    self.transformations(doc, "response", response, &mut filters.response, &at);
                }
                self.report_policy(doc, "transformation", gateway, members, phase);
            }
        }
        Ok(filters)
    }

    fn report_policy(
        &mut self,
        doc: &Document,
        field: &str,
        gateway: &ServedGateway<'d>,
        members: &[usize],
        phase: Phase,
    ) {
        self.out.report.policies.push(format!(
            "{}: traffic.{field} applies to Gateway {} port {} ({phase:?})",
            doc.label(),
            gateway.doc.key(),
            gateway.listeners[members[0]].port
        ));
    }

    /// A policy's transformation of `section` (`request` or `response`) as native
    /// transformation filters appended to `list` (at model path `at`): one per operation, in
    /// agentgateway's order (add, set, remove) rather than the native filter's own.
    fn transformations(
        &mut self,
        doc: &Document,
        section: &str,
        transform: &agentgateway::HeaderTransform,
        list: &mut Vec<FilterEntry>,
        at: &str,
    ) {
        for (op, ops) in transform.to_native_steps() {
            let mut inner = serde_yaml::Mapping::new();
            inner.insert(op.into(), ops);
            let mut config = serde_yaml::Mapping::new();
            config.insert(section.into(), serde_yaml::Value::Mapping(inner));
            self.out.mounts.push(doc.mount(
                format!("{at}[{}].config.{section}.{op}", list.len()),
                &format!("spec.traffic.transformation.{section}.{op}"),
            ));
            list.push(FilterEntry {
                name: "transformation".into(),
                config: serde_yaml::Value::Mapping(config),
            });
        }
    }

    fn report_gateways(&mut self, gateways: &[ServedGateway<'d>]) {
        for gateway in gateways {
            let listeners: Vec<ListenerStatus> = gateway
                .listeners
                .iter()
                .map(|l| ListenerStatus {
                    name: l.name.clone(),
                    port: l.port,
                    hostname: l.hostname.clone(),
                    attached_routes: l.attached,
                    conditions: match &l.problem {
                        Some(problem) => vec![
                            problem.clone(),
                            Condition::no("Programmed", "Invalid", "the listener is not served"),
                        ],
                        None => vec![
                            Condition::yes("Accepted", "Accepted"),
                            Condition::yes("Programmed", "Programmed"),
                            if l.invalid_kinds.is_empty() {
                                Condition::yes("ResolvedRefs", "ResolvedRefs")
                            } else {
                                Condition::no(
                                    "ResolvedRefs",
                                    "InvalidRouteKinds",
                                    format!(
                                        "{} not served here (HTTPRoute is)",
                                        l.invalid_kinds.join(", ")
                                    ),
                                )
                            },
                        ],
                    },
                })
                .collect();
            let valid = gateway
                .listeners
                .iter()
                .filter(|l| l.problem.is_none())
                .count();
            let invalid = gateway.listeners.len() - valid;
            let conditions = if invalid == 0 {
                vec![
                    Condition::yes("Accepted", "Accepted"),
                    Condition::yes("Programmed", "Programmed"),
                ]
            } else {
                let message = format!("{invalid} of {} listeners are not valid", listeners.len());
                if valid == 0 {
                    vec![
                        Condition::no("Accepted", "ListenersNotValid", message),
                        Condition::no("Programmed", "Invalid", "no listener is served"),
                    ]
                } else {
                    vec![
                        Condition {
                            message,
                            ..Condition::yes("Accepted", "ListenersNotValid")
                        },
                        Condition::yes("Programmed", "Programmed"),
                    ]
                }
            };
            self.out.report.gateways.push(GatewayStatus {
                name: gateway.doc.key(),
                address: gateway.address,
                conditions,
                listeners,
            });
        }
    }
}

/// A policy's place: a served Gateway, or one of its listeners.
struct Attachment {
    /// Its index in [`Resources::policies`].
    policy: usize,
    gateway: usize,
    listener: Option<usize>,
    phase: Phase,
}

/// The phase a policy's traffic settings run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    PreRouting,
    PostRouting,
}

impl Phase {
    /// The native phase list's name.
    fn model(self) -> &'static str {
        match self {
            Phase::PreRouting => "pre_routing",
            Phase::PostRouting => "post_routing",
        }
    }
}

/// The native list of `phase` in `filters`.
fn phase_list(filters: &mut PhaseFilters, phase: Phase) -> &mut Vec<FilterEntry> {
    match phase {
        Phase::PreRouting => &mut filters.pre_routing,
        Phase::PostRouting => &mut filters.post_routing,
    }
}

/// A backend a reference resolves to, before it is added.
struct Target<'d> {
    /// Its model name: `namespace/name:port` for a Service, `namespace/name` otherwise.
    name: String,
    config: BackendConfig,
    /// The manifest that defines it, if any, for errors in it.
    document: Option<&'d Document>,
}

fn object_ref(r: &HttpBackendRef) -> ObjectRef {
    ObjectRef {
        group: r.group.clone(),
        kind: r.kind.clone(),
        name: r.name.clone(),
        namespace: r.namespace.clone(),
        port: r.port,
    }
}

/// A rule's native action: a backend, a split over several, an answer or a redirect; and its
/// own filters.
#[derive(Default)]
struct Action {
    backend: Option<String>,
    backends: Vec<WeightedBackendConfig>,
    respond: Option<DirectResponseConfig>,
    /// A redirect that names neither scheme nor port goes to the listener's port, which
    /// [`on_port`](Action::on_port) fills in.
    redirect: Option<RedirectConfig>,
    filters: RouteFiltersConfig,
}

impl Action {
    /// The action on a listener of `port`: a redirect without scheme or port keeps the
    /// listener's, as the specification says.
    fn on_port(&self, port: u16) -> (Option<RedirectConfig>, Vec<WeightedBackendConfig>) {
        let fill = |r: &Option<RedirectConfig>| {
            r.clone().map(|mut r| {
                if r.scheme.is_none() && r.port.is_none() {
                    r.port = Some(port);
                }
                r
            })
        };
        let shares = self
            .backends
            .iter()
            .map(|s| WeightedBackendConfig {
                redirect: fill(&s.redirect),
                ..s.clone()
            })
            .collect();
        (fill(&self.redirect), shares)
    }

    /// A 500 saying why, as the specification asks of rules that cannot send anywhere.
    fn error(code: &str, message: String) -> Self {
        Action {
            respond: Some(DirectResponseConfig {
                status: 500,
                error: Some(code.to_owned()),
                message: Some(message),
            }),
            ..Action::default()
        }
    }
}

/// A rule's (or backendRef's) filters as native route filters, in their order, and the
/// redirect among them; `prefix` is the path prefix a `ReplacePrefixMatch` replaces.
fn native_filters(
    filters: &[HttpRouteFilter],
    prefix: &str,
) -> (RouteFiltersConfig, Option<RedirectConfig>) {
    let mut native = RouteFiltersConfig::default();
    let mut redirect = None;
    for filter in filters {
        // A modifier or a rewrite that changes nothing is allowed, and has nothing to run.
        if let Some(m) = filter
            .request_header_modifier
            .as_ref()
            .filter(|m| !m.is_empty())
        {
            native.request.push(header_modifier("request", m));
        }
        if let Some(m) = filter
            .response_header_modifier
            .as_ref()
            .filter(|m| !m.is_empty())
        {
            native.response.push(header_modifier("response", m));
        }
        let rewrite = filter
            .url_rewrite
            .as_ref()
            .filter(|u| u.hostname.is_some() || u.path.is_some());
        if let Some(rewrite) = rewrite {
            let mut config = serde_yaml::Mapping::new();
            if let Some(host) = &rewrite.hostname {
                config.insert("hostname".into(), host.clone().into());
            }
            if let Some(path) = rewrite.path.as_ref().and_then(|p| path_rewrite(p, prefix)) {
                let value = serde_yaml::to_value(path).unwrap_or_default();
                config.insert("path".into(), value);
            }
            native.request.push(FilterEntry {
                name: "url_rewrite".into(),
                config: serde_yaml::Value::Mapping(config),
            });
        }
        if let Some(r) = &filter.request_redirect {
            redirect = Some(RedirectConfig {
                scheme: r.scheme.clone(),
                hostname: r.hostname.clone(),
                port: r.port,
                path: r.path.as_ref().and_then(|p| path_rewrite(p, prefix)),
                status: r.status_code,
            });
        }
    }
    (native, redirect)
}

/// A header modifier as a native transformation of fixed values. A modifier that acts twice
/// on one header leaves its route unaccepted before it gets here.
fn header_modifier(section: &str, m: &HeaderModifier) -> FilterEntry {
    let headers = |list: &[HttpHeader]| {
        serde_yaml::Value::Sequence(
            list.iter()
                .map(|h| {
                    let mut entry = serde_yaml::Mapping::new();
                    entry.insert("name".into(), h.name.clone().into());
                    entry.insert("text".into(), h.value.clone().into());
                    serde_yaml::Value::Mapping(entry)
                })
                .collect(),
        )
    };
    let mut ops = serde_yaml::Mapping::new();
    ops.insert("set".into(), headers(&m.set));
    ops.insert("add".into(), headers(&m.add));
    let remove = m.remove.iter().map(|n| n.clone().into()).collect();
    ops.insert("remove".into(), serde_yaml::Value::Sequence(remove));
    let mut config = serde_yaml::Mapping::new();
    config.insert(section.into(), serde_yaml::Value::Mapping(ops));
    FilterEntry {
        name: "transformation".into(),
        config: serde_yaml::Value::Mapping(config),
    }
}

/// A path modifier as a native path rewrite; `prefix` is the matched prefix.
fn path_rewrite(m: &PathModifier, prefix: &str) -> Option<PathRewriteConfig> {
    match m.kind.as_str() {
        "ReplaceFullPath" => Some(PathRewriteConfig {
            full: m.replace_full_path.clone(),
            prefix: None,
        }),
        "ReplacePrefixMatch" => Some(PathRewriteConfig {
            full: None,
            prefix: Some(PrefixRewriteConfig {
                from: prefix.to_owned(),
                to: m.replace_prefix_match.clone().unwrap_or_default(),
            }),
        }),
        // Other types leave the route unaccepted before it gets here.
        _ => None,
    }
}

/// The first IP address of the Gateway's `spec.addresses`, else 0.0.0.0.
fn first_ip(spec: &GatewaySpec, doc: &Document) -> Result<IpAddr, ConfigError> {
    for (i, a) in spec.addresses.iter().enumerate() {
        let Some(value) = &a.value else { continue };
        if a.kind.as_deref().unwrap_or("IPAddress") == "IPAddress" {
            return value.parse().map_err(|_| {
                doc.error_at(
                    &format!("spec.addresses[{i}].value"),
                    format!("`{value}` is not an IP address"),
                )
            });
        }
    }
    Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Checks a host name as the Gateway API's schema does.
fn check_hostname(name: &str) -> Result<(), String> {
    let labels = name.strip_prefix("*.").unwrap_or(name);
    let valid = !labels.is_empty()
        && name.len() <= 253
        && labels.parse::<Ipv4Addr>().is_err()
        && labels.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a host name: lower-case RFC 1123 labels, an optional leading `*.`, no IP address"
        ))
    }
}

/// The routes a listener takes, and the kinds it lists that are not served here.
fn allowed_routes(allowed: Option<&super::resources::AllowedRoutes>) -> (Allowed, Vec<String>) {
    let Some(allowed) = allowed else {
        return (Allowed::Same, Vec::new());
    };
    let is_http_route = |k: &super::resources::RouteGroupKind| {
        k.kind == "HTTPRoute" && k.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
    };
    let invalid: Vec<String> = allowed
        .kinds
        .iter()
        .filter(|k| !is_http_route(k))
        .map(|k| format!("{}/{}", k.group.as_deref().unwrap_or(GATEWAY_GROUP), k.kind))
        .collect();
    if !allowed.kinds.is_empty() && !allowed.kinds.iter().any(is_http_route) {
        let why = "the listener's allowedRoutes.kinds does not list HTTPRoute";
        return (Allowed::None(why.into()), invalid);
    }
    let Some(namespaces) = &allowed.namespaces else {
        return (Allowed::Same, invalid);
    };
    let allowed = match namespaces.from.as_deref().unwrap_or("Same") {
        "All" => Allowed::All,
        "Same" => Allowed::Same,
        "Selector" => match &namespaces.selector {
            Some(selector) => Allowed::Selector(selector.clone()),
            None => Allowed::None(
                "allowedRoutes.namespaces.from is Selector, without a selector".into(),
            ),
        },
        other => Allowed::None(format!(
            "allowedRoutes.namespaces.from `{other}` is not known"
        )),
    };
    (allowed, invalid)
}

/// The served Gateway a parentRef names, if any.
fn find_gateway(
    gateways: &[ServedGateway<'_>],
    route: &Document,
    parent: &ParentReference,
) -> Option<usize> {
    if parent.group.as_deref().unwrap_or(GATEWAY_GROUP) != GATEWAY_GROUP
        || parent.kind.as_deref().unwrap_or("Gateway") != "Gateway"
    {
        return None;
    }
    let key = format!(
        "{}/{}",
        parent.namespace.as_deref().unwrap_or(route.namespace()),
        parent.name
    );
    gateways.iter().position(|g| g.doc.key() == key)
}

fn parent_label(parent: &ParentReference, route: &Document) -> String {
    let mut label = format!(
        "Gateway {}/{}",
        parent.namespace.as_deref().unwrap_or(route.namespace()),
        parent.name
    );
    if let Some(section) = &parent.section_name {
        label.push('/');
        label.push_str(section);
    }
    if let Some(port) = parent.port {
        label.push_str(&format!(":{port}"));
    }
    label
}

/// The listeners of `gateway` the route attaches to through `parent`, each with the host
/// names it serves there (empty: any); or why it attaches to none.
fn attach(
    gateway: &mut ServedGateway<'_>,
    route: &Document,
    parent: &ParentReference,
    spec: &HttpRouteSpec,
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Vec<(usize, Vec<String>)>, Condition> {
    let candidates: Vec<usize> = (0..gateway.listeners.len())
        .filter(|&i| {
            let l = &gateway.listeners[i];
            parent.section_name.as_ref().is_none_or(|s| *s == l.name)
                && parent.port.is_none_or(|p| p == l.port)
        })
        .collect();
    if candidates.is_empty() {
        return Err(Condition::no(
            "Accepted",
            "NoMatchingParent",
            "no listener of the Gateway has that sectionName and port",
        ));
    }
    let gateway_ns = gateway.doc.namespace().to_owned();
    let mut allowed_any = false;
    let mut refusals = Vec::new();
    let mut attached = Vec::new();
    for i in candidates {
        let l = &gateway.listeners[i];
        if l.problem.is_some() {
            continue;
        }
        let allowed = match &l.allowed {
            Allowed::All => true,
            Allowed::Same => route.namespace() == gateway_ns,
            Allowed::Selector(selector) => {
                // The API server labels every namespace with its own name.
                let mut labels = namespaces
                    .get(route.namespace())
                    .cloned()
                    .unwrap_or_default();
                labels.insert(
                    "kubernetes.io/metadata.name".to_owned(),
                    route.namespace().to_owned(),
                );
                selector.matches(&labels)
            }
            Allowed::None(why) => {
                refusals.push(format!("listener {}: {why}", l.name));
                false
            }
        };
        if !allowed {
            continue;
        }
        allowed_any = true;
        if let Some(hosts) = hostnames::intersect(l.hostname.as_deref(), &spec.hostnames) {
            attached.push((i, hosts));
        }
    }
    if attached.is_empty() {
        return Err(if allowed_any {
            Condition::no(
                "Accepted",
                "NoMatchingListenerHostname",
                "no listener's hostname intersects the route's hostnames",
            )
        } else {
            let mut message = "the listeners' allowedRoutes do not admit this route".to_owned();
            if !refusals.is_empty() {
                message = format!("{message} ({})", refusals.join("; "));
            }
            Condition::no("Accepted", "NotAllowedByListeners", message)
        });
    }
    Ok(attached)
}

/// A rule's matches in the native shape; a rule without matches has one, `PathPrefix /`.
fn rule_matches(rule: &HttpRouteRule) -> Vec<MatchConfig> {
    match &rule.matches {
        None => vec![native_match(&HttpRouteMatch::default())],
        Some(list) if list.is_empty() => vec![native_match(&HttpRouteMatch::default())],
        Some(list) => list.iter().map(native_match).collect(),
    }
}

fn native_match(m: &HttpRouteMatch) -> MatchConfig {
    let path = m.path.as_ref().map(|p| PathMatchConfig {
        kind: match p.kind.as_deref().unwrap_or("PathPrefix") {
            "Exact" => PathMatchType::Exact,
            "RegularExpression" => PathMatchType::RegularExpression,
            _ => PathMatchType::PathPrefix,
        },
        value: p.value.clone().unwrap_or_else(|| "/".to_owned()),
    });
    let value_kind = |kind: &Option<String>| match kind.as_deref() {
        Some("RegularExpression") => ValueMatchType::RegularExpression,
        _ => ValueMatchType::Exact,
    };
    MatchConfig {
        path: Some(path.unwrap_or(PathMatchConfig {
            kind: PathMatchType::PathPrefix,
            value: "/".to_owned(),
        })),
        // Of several entries for one name, only the first counts (header names without case,
        // query parameter names exactly).
        headers: first_of_each(&m.headers, |h| h.name.to_ascii_lowercase())
            .map(|h| HeaderMatchConfig {
                name: h.name.clone(),
                kind: value_kind(&h.kind),
                value: h.value.clone(),
            })
            .collect(),
        method: m.method.clone(),
        query_params: first_of_each(&m.query_params, |q| q.name.clone())
            .map(|q| QueryParamMatchConfig {
                name: q.name.clone(),
                kind: value_kind(&q.kind),
                value: q.value.clone(),
            })
            .collect(),
    }
}

/// The entries of `list` whose `key` was not seen in an earlier one.
fn first_of_each<'a, T>(
    list: &'a [T],
    key: impl Fn(&T) -> String + 'a,
) -> impl Iterator<Item = &'a T> + 'a {
    let mut seen = std::collections::HashSet::new();
    list.iter().filter(move |item| seen.insert(key(item)))
}

/// A native route's name: the HTTPRoute, its rule (by name if it has one) and match, the
/// Gateway listener it is on, and the host name it is for.
fn entry_name(
    doc: &Document,
    rule: &HttpRouteRule,
    (r, m): (usize, usize),
    listener: &str,
    host: Option<&str>,
) -> String {
    // A rule's name cannot hold brackets, so an unnamed rule's never meets a named one's.
    let rule = rule.name.clone().unwrap_or_else(|| format!("rules[{r}]"));
    let mut name = format!("{}/{rule}/match{m}/{listener}", doc.key());
    if let Some(host) = host {
        name.push('@');
        name.push_str(host);
    }
    name
}

pub(super) fn split_host_port(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| Some((host.to_owned(), port.parse().ok()?)))?
}

/// The TLS of the native listener serving `members` (listeners of one port, which share a
/// protocol): each HTTPS member's certificate, chosen by its host name (SNI), the member
/// without one the default. `None` for HTTP.
fn listener_tls(gateway: &ServedGateway<'_>, members: &[usize]) -> Option<ListenerTls> {
    let certificates: Vec<CertificateConfig> = members
        .iter()
        .filter_map(|&i| {
            let l = &gateway.listeners[i];
            let certificate = l.certificate.clone()?;
            Some(CertificateConfig {
                hostnames: l.hostname.iter().cloned().collect(),
                ..certificate
            })
        })
        .collect();
    (!certificates.is_empty()).then(|| ListenerTls::with_certificates(certificates))
}

/// A rule's `timeouts` as the native route's. What the CRD refuses (a malformed duration, a
/// backend request bound over the request's) is a load error at its field.
fn rule_timeouts(
    doc: &Document,
    r: usize,
    rule: &super::resources::HttpRouteRule,
) -> Result<RouteTimeouts, ConfigError> {
    let Some(t) = &rule.timeouts else {
        return Ok(RouteTimeouts::default());
    };
    let at = format!("spec.rules[{r}].timeouts");
    let parse = |value: &Option<String>, field: &str| {
        value
            .as_deref()
            .map(gateway_duration)
            .transpose()
            .map(Option::flatten)
            .map_err(|why| doc.error_at(&format!("{at}.{field}"), why))
    };
    let request = parse(&t.request, "request")?;
    let backend_request = parse(&t.backend_request, "backendRequest")?;
    if let (Some(request), Some(backend)) = (request, backend_request) {
        if backend > request {
            return Err(doc.error_at(
                &format!("{at}.backendRequest"),
                "backendRequest cannot be longer than request",
            ));
        }
    }
    Ok(RouteTimeouts {
        request,
        backend_request,
    })
}

/// A rule's `retry` as the native route's: `codes` are the statuses retried (none: only
/// connections that fail), `attempts` the retries (default 1; 0: none), `backoff` the first
/// wait (default 25ms). More retries than the native bound of 10 is a load error.
fn rule_retry(
    doc: &Document,
    r: usize,
    rule: &super::resources::HttpRouteRule,
) -> Result<Option<RetryConfig>, ConfigError> {
    let Some(retry) = &rule.retry else {
        return Ok(None);
    };
    let at = format!("spec.rules[{r}].retry");
    let attempts = retry.attempts.unwrap_or(1);
    if attempts == 0 {
        return Ok(None);
    }
    if attempts > 10 {
        return Err(doc.error_at(
            &format!("{at}.attempts"),
            "at most 10 retries are made here",
        ));
    }
    let on: Vec<RetryOn> = if retry.codes.is_empty() {
        vec![
            RetryOn::Named(RetryCondition::ConnectFailure),
            RetryOn::Named(RetryCondition::Reset),
        ]
    } else {
        retry.codes.iter().copied().map(RetryOn::Status).collect()
    };
    for (i, code) in retry.codes.iter().enumerate() {
        if !(400..=599).contains(code) {
            return Err(doc.error_at(
                &format!("{at}.codes[{i}]"),
                format!("{code} is not an error status (400 to 599)"),
            ));
        }
    }
    let backoff = match &retry.backoff {
        None => Duration::from_millis(25),
        Some(text) => gateway_duration(text)
            .map_err(|why| doc.error_at(&format!("{at}.backoff"), why))?
            .unwrap_or(Duration::from_millis(25)),
    };
    if backoff > Duration::from_secs(10) {
        return Err(doc.error_at(&format!("{at}.backoff"), "at most 10s between retries here"));
    }
    Ok(Some(RetryConfig {
        attempts,
        on,
        backoff,
    }))
}

/// A Gateway API duration (GEP-2257): one to four `<1-5 digits><h|m|s|ms>` parts, as
/// `1h30m` or `500ms`; zero means no bound (`None`).
fn gateway_duration(text: &str) -> Result<Option<Duration>, String> {
    let invalid = || format!("`{text}` is not a Gateway API duration (as `10s`, `1h30m`, `500ms`)");
    let mut total = Duration::ZERO;
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else {
            return Err(invalid());
        };
        rest = &rest[len..];
        total += unit * u32::try_from(value).map_err(|_| invalid())?;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(invalid());
    }
    Ok((!total.is_zero()).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_several_matches_on_one_name_the_first_counts() {
        let m: HttpRouteMatch = serde_yaml::from_str(
            "{ headers: [{ name: X-A, value: '1' }, { name: x-a, value: '2' }], queryParams: [{ name: q, value: a }, { name: q, value: b }, { name: Q, value: c }] }",
        )
        .expect("match");
        let native = native_match(&m);
        assert_eq!(native.headers.len(), 1);
        assert_eq!(native.headers[0].value, "1");
        let queries: Vec<&str> = native
            .query_params
            .iter()
            .map(|q| q.value.as_str())
            .collect();
        assert_eq!(queries, ["a", "c"], "query names are exact");
        let path = native.path.expect("a match without a path is PathPrefix /");
        assert_eq!(
            (path.kind, path.value.as_str()),
            (PathMatchType::PathPrefix, "/")
        );
    }
}
