//! agentgateway's kinds, as the lab writes them: `AgentgatewayBackend`
//! (`agentgateway.dev/v1alpha1`), and `AgentgatewayPolicy` with its enterprise twin
//! `EnterpriseAgentgatewayPolicy` (`enterpriseagentgateway.solo.io/v1alpha1`), whose
//! `traffic` section carries `jwtAuthentication` and a CEL `transformation`. They become
//! native backends and `jwt_authn` / `transformation` filters.

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::resources::{present, Unsupported};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendSpec {
    #[serde(default, rename = "static")]
    pub static_: Option<StaticBackend>,
    #[serde(default)]
    pub policies: Option<BackendPolicies>,
    #[serde(default)]
    pub ai: Unsupported,
    #[serde(default)]
    pub mcp: Unsupported,
    #[serde(default)]
    pub dynamic_forward_proxy: Unsupported,
    #[serde(default)]
    pub aws: Unsupported,
    #[serde(default)]
    pub a2a: Unsupported,
}

impl BackendSpec {
    /// What the backend uses that this front-end does not implement; it then does not
    /// resolve.
    pub fn unsupported(&self) -> Vec<&'static str> {
        let mut names = present!(self,
            ai => "ai",
            mcp => "mcp",
            dynamic_forward_proxy => "dynamicForwardProxy",
            aws => "aws",
            a2a => "a2a",
        );
        if let Some(s) = &self.static_ {
            names.extend(present!(s, unix_path => "static.unixPath"));
        }
        if let Some(p) = &self.policies {
            names.extend(present!(p,
                http => "policies.http",
                tcp => "policies.tcp",
                auth => "policies.auth",
                ext_auth => "policies.extAuth",
                ai => "policies.ai",
                mcp => "policies.mcp",
                health => "policies.health",
                transformation => "policies.transformation",
                tunnel => "policies.tunnel",
            ));
            if let Some(t) = &p.tls {
                names.extend(present!(t,
                    ca_certificate_refs => "policies.tls.caCertificateRefs",
                    mtls_certificate_ref => "policies.tls.mtlsCertificateRef",
                    insecure_skip_verify => "policies.tls.insecureSkipVerify",
                    verify_subject_alt_names => "policies.tls.verifySubjectAltNames",
                    alpn_protocols => "policies.tls.alpnProtocols",
                    key_exchange_groups => "policies.tls.keyExchangeGroups",
                ));
                if t.certificate_source
                    .as_deref()
                    .is_some_and(|c| c != "Inline")
                {
                    names.push("policies.tls.certificateSource");
                }
            }
        }
        names
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StaticBackend {
    /// Absent only with `unixPath`, which is not served.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub unix_path: Unsupported,
}

/// Policies attached to a backend: only `tls` is read; the rest is reported unsupported.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendPolicies {
    #[serde(default)]
    pub tls: Option<BackendTlsPolicy>,
    #[serde(default)]
    pub http: Unsupported,
    #[serde(default)]
    pub tcp: Unsupported,
    #[serde(default)]
    pub auth: Unsupported,
    #[serde(default)]
    pub ext_auth: Unsupported,
    #[serde(default)]
    pub ai: Unsupported,
    #[serde(default)]
    pub mcp: Unsupported,
    #[serde(default)]
    pub health: Unsupported,
    #[serde(default)]
    pub transformation: Unsupported,
    #[serde(default)]
    pub tunnel: Unsupported,
}

/// TLS to the backend; the system's roots unless CA certificates are given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTlsPolicy {
    /// The name sent as SNI and checked against the certificate; default the host.
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub ca_certificate_refs: Unsupported,
    #[serde(default)]
    pub mtls_certificate_ref: Unsupported,
    #[serde(default)]
    pub insecure_skip_verify: Unsupported,
    #[serde(default)]
    pub verify_subject_alt_names: Unsupported,
    #[serde(default)]
    pub alpn_protocols: Unsupported,
    #[serde(default)]
    pub key_exchange_groups: Unsupported,
    /// `Inline` (the default, and the only one served) or `SPIFFE`.
    #[serde(default)]
    pub certificate_source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    #[serde(default)]
    pub target_selectors: Unsupported,
    #[serde(default)]
    pub traffic: Option<Traffic>,
    #[serde(default)]
    pub frontend: Unsupported,
    #[serde(default)]
    pub backend: Unsupported,
    #[serde(default)]
    pub strategy: Unsupported,
}

impl PolicySpec {
    /// What the policy asks for that this front-end does not implement, as field paths below
    /// `spec`. A policy is applied whole or not at all: leaving out part of an
    /// authentication or authorization policy would open what it was written to close, so
    /// any of these is a load error.
    pub fn unsupported(&self) -> Vec<String> {
        let mut names: Vec<String> = present!(self,
            target_selectors => "targetSelectors",
            frontend => "frontend",
            backend => "backend",
            strategy => "strategy",
        )
        .into_iter()
        .map(str::to_owned)
        .collect();
        for (i, t) in self.target_refs.iter().enumerate() {
            if t.port.is_some() {
                // Only frontend policies may name a port, and those are not served.
                names.push(format!("targetRefs[{i}].port"));
            }
        }
        let Some(t) = &self.traffic else {
            return names;
        };
        let mut add = |found: Vec<&str>, under: &str| {
            names.extend(found.into_iter().map(|f| format!("{under}.{f}")));
        };
        add(
            present!(t,
                cors => "cors",
                ext_auth => "extAuth",
                ext_proc => "extProc",
                rate_limit => "rateLimit",
                api_key_authentication => "apiKeyAuthentication",
                basic_authentication => "basicAuthentication",
                authorization => "authorization",
                csrf => "csrf",
                header_modifiers => "headerModifiers",
                host_rewrite => "hostRewrite",
                timeouts => "timeouts",
                retry => "retry",
                direct_response => "directResponse",
                buffer => "buffer",
                delay => "delay",
            ),
            "traffic",
        );
        if let Some(jwt) = &t.jwt_authentication {
            add(
                present!(jwt, location => "location", mcp => "mcp"),
                "traffic.jwtAuthentication",
            );
            for (i, p) in jwt.providers.iter().enumerate() {
                if let Some(r) = &p.jwks.remote {
                    add(
                        present!(r, url => "url"),
                        &format!("traffic.jwtAuthentication.providers[{i}].jwks.remote"),
                    );
                }
            }
        }
        if let Some(tr) = &t.transformation {
            add(
                present!(tr, conditional => "conditional"),
                "traffic.transformation",
            );
            for (section, h) in [("request", &tr.request), ("response", &tr.response)] {
                if let Some(h) = h {
                    add(
                        present!(h, body => "body", metadata => "metadata"),
                        &format!("traffic.transformation.{section}"),
                    );
                }
            }
        }
        names
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRef {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub section_name: Option<String>,
    /// Only for frontend policies, which are not served.
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Traffic {
    /// `PreRouting` or `PostRouting` (the default).
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub jwt_authentication: Option<JwtAuthentication>,
    #[serde(default)]
    pub transformation: Option<Transformation>,
    #[serde(default)]
    pub cors: Unsupported,
    #[serde(default)]
    pub ext_auth: Unsupported,
    #[serde(default)]
    pub ext_proc: Unsupported,
    #[serde(default)]
    pub rate_limit: Unsupported,
    #[serde(default)]
    pub api_key_authentication: Unsupported,
    #[serde(default)]
    pub basic_authentication: Unsupported,
    #[serde(default)]
    pub authorization: Unsupported,
    #[serde(default)]
    pub csrf: Unsupported,
    #[serde(default)]
    pub header_modifiers: Unsupported,
    #[serde(default)]
    pub host_rewrite: Unsupported,
    #[serde(default)]
    pub timeouts: Unsupported,
    #[serde(default)]
    pub retry: Unsupported,
    #[serde(default)]
    pub direct_response: Unsupported,
    #[serde(default)]
    pub buffer: Unsupported,
    #[serde(default)]
    pub delay: Unsupported,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtAuthentication {
    /// `Strict` (the default), `Optional` or `Permissive`.
    #[serde(default)]
    pub mode: Option<String>,
    pub providers: Vec<JwtProvider>,
    #[serde(default)]
    pub location: Unsupported,
    #[serde(default)]
    pub mcp: Unsupported,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtProvider {
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks: Jwks,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Jwks {
    #[serde(default)]
    pub inline: Option<String>,
    #[serde(default)]
    pub remote: Option<RemoteJwks>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteJwks {
    /// Required with `backendRef`.
    #[serde(default)]
    pub jwks_path: Option<String>,
    #[serde(default)]
    pub backend_ref: Option<ObjectRef>,
    #[serde(default)]
    pub url: Unsupported,
    /// How long fetched keys are kept (`5m`, `1h30m`); the refresh interval when the
    /// provider's answer says nothing.
    #[serde(default)]
    pub cache_duration: Option<String>,
}

/// A reference to a backend object: a `Service` (with `port`) or an `AgentgatewayBackend`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transformation {
    #[serde(default)]
    pub request: Option<HeaderTransform>,
    #[serde(default)]
    pub response: Option<HeaderTransform>,
    #[serde(default)]
    pub conditional: Unsupported,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderTransform {
    #[serde(default)]
    pub set: Vec<NameValue>,
    #[serde(default)]
    pub add: Vec<NameValue>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub body: Unsupported,
    #[serde(default)]
    pub metadata: Unsupported,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameValue {
    pub name: String,
    /// A CEL expression.
    pub value: String,
}

impl JwtAuthentication {
    /// The native `jwt_authn` config; `backend_of` names the model backend a remote JWKS is
    /// fetched through. Provider names are their issuers (with `#index` when one repeats).
    pub fn to_native(
        &self,
        mut backend_of: impl FnMut(&ObjectRef) -> Option<String>,
    ) -> Result<Value, String> {
        let mode = match self.mode.as_deref().unwrap_or("Strict") {
            "Strict" => "strict",
            "Optional" => "optional",
            "Permissive" => "permissive",
            other => {
                return Err(format!(
                    "unknown mode `{other}` (modes: Strict, Optional, Permissive)"
                ))
            }
        };
        let mut providers = Vec::with_capacity(self.providers.len());
        let mut names: Vec<String> = Vec::with_capacity(self.providers.len());
        for (i, p) in self.providers.iter().enumerate() {
            // A provider is named by its issuer, and by its place when an issuer repeats.
            let name = if names.contains(&p.issuer) {
                format!("{}#{i}", p.issuer)
            } else {
                p.issuer.clone()
            };
            names.push(name.clone());
            let mut jwks = Mapping::new();
            match (&p.jwks.inline, &p.jwks.remote) {
                (Some(inline), None) => {
                    jwks.insert("inline".into(), inline.clone().into());
                }
                (None, Some(remote)) => {
                    let (Some(backend_ref), Some(path)) = (&remote.backend_ref, &remote.jwks_path)
                    else {
                        return Err("a remote JWKS needs `backendRef` and `jwksPath`".into());
                    };
                    let backend = backend_of(backend_ref).ok_or_else(|| {
                        format!("the JWKS backend `{}` does not resolve", backend_ref.name)
                    })?;
                    let mut r = Mapping::new();
                    r.insert("backend".into(), backend.into());
                    // agentgateway takes the path with or without its leading `/`.
                    r.insert(
                        "path".into(),
                        format!("/{}", path.trim_start_matches('/')).into(),
                    );
                    if let Some(every) = &remote.cache_duration {
                        r.insert("default_refresh".into(), every.clone().into());
                    }
                    jwks.insert("remote".into(), Value::Mapping(r));
                }
                _ => return Err("a provider's jwks needs `inline` or `remote`, one of them".into()),
            }
            let mut provider = Mapping::new();
            provider.insert("name".into(), name.into());
            provider.insert("issuer".into(), p.issuer.clone().into());
            provider.insert(
                "audiences".into(),
                Value::Sequence(p.audiences.iter().cloned().map(Value::from).collect()),
            );
            provider.insert("jwks".into(), Value::Mapping(jwks));
            providers.push(Value::Mapping(provider));
        }
        let mut config = Mapping::new();
        config.insert("mode".into(), mode.into());
        config.insert("providers".into(), Value::Sequence(providers));
        Ok(Value::Mapping(config))
    }
}

impl HeaderTransform {
    /// The operations as native transformation sections, one per kind that is given, in the
    /// order agentgateway applies them: `add`, then `set`, then `remove`.
    pub fn to_native_steps(&self) -> Vec<(&'static str, Value)> {
        let entries = |list: &[NameValue]| {
            Value::Sequence(
                list.iter()
                    .map(|nv| {
                        let mut m = Mapping::new();
                        m.insert("name".into(), nv.name.clone().into());
                        m.insert("value".into(), nv.value.clone().into());
                        Value::Mapping(m)
                    })
                    .collect(),
            )
        };
        let mut steps = Vec::new();
        if !self.add.is_empty() {
            steps.push(("add", entries(&self.add)));
        }
        if !self.set.is_empty() {
            steps.push(("set", entries(&self.set)));
        }
        if !self.remove.is_empty() {
            let names = self.remove.iter().cloned().map(Value::from).collect();
            steps.push(("remove", Value::Sequence(names)));
        }
        steps
    }
}
